/* loop/: loop objects made with mkdir, and the kernel's own loop devices
 * (loopN) listed read-only. Here: the registry, the binding to the kernel,
 * mkdir/rmdir/mv, start-up and references from other kinds; the attribute
 * files are in loop_attr.c. */
#include "stsfs/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stsfs/fsutil.h"
#include "stsfs/kernel.h"
#include "stsfs/log.h"
#include "stsfs/state.h"
#include "stsfs/value.h"

#include "loop.h"

#define STATE_KIND LOOP_STATE_KIND

static int obj_init(struct obj *o);
static void obj_release(struct obj *o);
static struct obj *external_get(const char *name);
static void device_name(const struct obj *o, char *buf, size_t len);
static int list_devices(char ***names, size_t *n);
static int save_obj(struct obj *o, char *why);

struct registry loop_registry = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.dir_error = ERRSLOT_INIT,
	.obj_size = sizeof(struct loop_obj),
	.init = obj_init,
	.release = obj_release,
	.external = external_get,
	.device_name = device_name,
	.list_devices = list_devices,
	.save = save_obj,
};

/* ---- registry ---- */

static int obj_init(struct obj *o)
{
	loop_of(o)->nr = -1;
	loop_of(o)->writer.fd = -1;
	/* The path is allocated: a fixed PATH_MAX per object was most of the
	 * daemon's memory at ten thousand objects. */
	return (loop_of(o)->backing = strdup("")) ? 0 : -ENOMEM;
}

static void obj_release(struct obj *o)
{
	struct loop_obj *lo = loop_of(o);
	free(lo->backing);
	free(lo->writer.view);
	if (lo->writer.fd >= 0)
		close(lo->writer.fd);
}

int loop_set_backing(struct loop_obj *lo, const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	free(lo->backing);
	lo->backing = copy;
	return 0;
}

/* A kernel device bound to an owned object is that object, not loopN. */
static bool nr_owned_locked(int nr)
{
	for (struct obj *o = loop_registry.owned; o; o = o->next)
		if (loop_of(o)->nr == nr)
			return true;
	return false;
}

static void fill_from_kernel(struct loop_obj *lo, const struct kloop_state *st)
{
	loop_set_backing(lo, st->backing);
	lo->size = st->size_bytes;
	lo->offset = st->offset;
	lo->sizelimit = st->sizelimit;
	lo->sector_size = st->sector_size;
	lo->read_only = st->read_only;
	lo->autoclear = st->autoclear;
	lo->partscan = st->partscan;
	lo->direct_io = st->direct_io;
	lo->nr = st->nr;
	lo->back_dev = st->backing_dev;
	lo->back_ino = st->backing_ino;
}

/* An external device, described from the kernel for this one request. */
static struct obj *external_get(const char *name)
{
	if (!value_is_kernel_loop_name(name) || strlen(name) > 14)
		return NULL;
	int nr = atoi(name + 4);
	struct kloop_state st;
	if (kloop_query(nr, &st) != 0)
		return NULL;
	reg_lock(&loop_registry);
	bool owned = nr_owned_locked(nr);
	reg_unlock(&loop_registry);
	struct loop_obj *lo = owned ? NULL : loop_of(reg_new(&loop_registry, name));
	if (lo) {
		lo->obj.external = true;
		fill_from_kernel(lo, &st);
	}
	return lo ? &lo->obj : NULL;
}

/* An owned object's device is loopN while it is active. */
static void device_name(const struct obj *o, char *buf, size_t len)
{
	int nr = ((const struct loop_obj *)o)->nr;
	if (nr >= 0)
		snprintf(buf, len, "loop%d", nr);
	else
		buf[0] = '\0';
}

static int list_devices(char ***names, size_t *n)
{
	int *nrs = NULL;
	size_t nk = 0;
	int r = kloop_list(&nrs, &nk);
	/* calloc: names that fail to copy stay NULL and are freed as nothing. */
	*names = r ? NULL : calloc(nk ? nk : 1, sizeof(char *));
	*n = *names ? nk : 0;
	if (!r && !*names)
		r = -ENOMEM;
	for (size_t i = 0; !r && i < nk; i++) {
		char kname[24];
		snprintf(kname, sizeof(kname), "loop%d", nrs[i]);
		r = ((*names)[i] = strdup(kname)) ? 0 : -ENOMEM;
	}
	free(nrs);
	return r;
}

/* The object a request names; NULL when there is none. Release with obj_put. */
static struct loop_obj *obj_get(const char *name)
{
	return loop_of(reg_get(&loop_registry, name));
}

void loop_obj_put(struct loop_obj *lo)
{
	reg_put(&loop_registry, &lo->obj);
}

struct loop_obj *loop_ctx_obj(struct ctx *c)
{
	/* loop/NAME/...: the object is always the second component. */
	return c->depth >= 2 ? obj_get(c->comp[1]) : NULL;
}

/* ---- kernel binding ---- */

static int loop_record(const struct loop_obj *lo, struct kv_block *b)
{
	int r = kv_add_str(b, "backing_file", lo->backing);
	if (lo->writer.view)
		r = r ? r : kv_add_str(b, "backing_view", lo->writer.view);
	if (lo->writer.private)
		r = r ? r : kv_add_bool(b, "backing_private", true);
	if (lo->writer.read_only)
		r = r ? r : kv_add_bool(b, "backing_writer_ro", true);
	r = r ? r : reg_save_owner(&lo->obj, b);
	r = r ? r : kv_add_u64(b, "size", lo->size);
	r = r ? r : kv_add_u64(b, "offset", lo->offset);
	r = r ? r : kv_add_u64(b, "sizelimit", lo->sizelimit);
	r = r ? r : kv_add_u64(b, "sector_size", lo->sector_size);
	r = r ? r : kv_add_bool(b, "read_only", lo->read_only);
	r = r ? r : kv_add_bool(b, "autoclear", lo->autoclear);
	r = r ? r : kv_add_bool(b, "partscan", lo->partscan);
	r = r ? r : kv_add_bool(b, "direct_io", lo->direct_io);
	r = r ? r : kv_add_bool(b, "image_made", lo->image_made);
	if (lo->image_pending)
		r = r ? r : kv_add_bool(b, "image_pending", true);
	r = r ? r : kv_add_s64(b, "nr", lo->nr);
	r = r ? r : kv_add_u64(b, "back_dev", lo->back_dev);
	r = r ? r : kv_add_u64(b, "back_ino", lo->back_ino);
	if (lo->renamed_from[0])
		r = r ? r : kv_add_str(b, "renamed_from", lo->renamed_from);
	return r;
}

/* Writes lo's record (prepare_only: aside, for loop_change). */
static int record_write(struct loop_obj *lo, bool prepare_only, char *why)
{
	struct kv_block b = { 0 };
	int r = loop_record(lo, &b);
	if (r)
		r = why_set(why, r, "out of memory saving state");
	else if (prepare_only)
		r = state_prepare(STATE_KIND, lo->obj.name, &b, why);
	else
		r = state_save(STATE_KIND, lo->obj.name, &b, why);
	kv_block_free(&b);
	return r;
}

int loop_save(struct loop_obj *lo, char *why)
{
	return lo->obj.external ? 0 : record_write(lo, false, why);
}

/* lo's fields already say what the kernel is to become. The record is
 * written aside first, so that a full or read-only state directory refuses
 * the change before the kernel has it; it is put in place (a rename, which
 * needs no room) once apply succeeded, and dropped when apply failed. The
 * caller puts lo's fields back on failure. apply may be NULL: nothing to
 * change in the kernel (inactive). */
int loop_change(struct loop_obj *lo, loop_apply_fn apply, const void *arg, char *why)
{
	if (lo->obj.external)
		return apply ? apply(lo, arg, why) : 0;
	int r = record_write(lo, true, why);
	if (r)
		return r;
	r = apply ? apply(lo, arg, why) : 0;
	if (r) {
		state_abort(STATE_KIND, lo->obj.name);
		return r;
	}
	return state_commit(STATE_KIND, lo->obj.name, why);
}

static bool bound_to_us(const struct loop_obj *lo, const struct kloop_state *st)
{
	return st->backing_ino == lo->back_ino && st->backing_dev == lo->back_dev;
}

/* The kernel is the source of truth: a device detached behind our back
 * (autoclear, losetup -d) makes the object inactive. Caller holds lo->obj.lock. */
bool loop_refresh(struct loop_obj *lo, struct kloop_state *st)
{
	struct kloop_state tmp;
	st = st ? st : &tmp;
	if (lo->nr < 0)
		return false;
	if (kloop_query(lo->nr, st) == 0 && bound_to_us(lo, st))
		return true;
	lo->nr = -1;
	loop_save(lo, NULL);
	return false;
}

void loop_image_path(const struct loop_obj *lo, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.img", opts.image_dir, lo->obj.name);
}

/* ftruncate's EFBIG (larger than the image directory's file system allows)
 * is a lack of room to the user: ENOSPC, saying so. */
int loop_sizing_failed(const char *path, uint64_t size, int err, char *why)
{
	if (err == EFBIG)
		return why_set(why, -ENOSPC, "cannot size image %s to %" PRIu64 " bytes: the file system of %s "
			       "does not allow files that large", path, size, opts.image_dir);
	return why_set(why, -err, "cannot size image %s to %" PRIu64 " bytes: %s", path, size, strerror(err));
}

/* Creates (or grows) the owned sparse image to lo->size. The first time,
 * the record claims the image before the file is made (image_made and
 * image_pending saved together): a worker killed between making the file
 * and saving that it did would otherwise leave NAME.img that no record
 * claims, and every later activation of NAME (and mv to NAME) would find
 * it there (EEXIST) while rmdir left it behind. A pending claim found in
 * the record is such a killed try: the file, if it is there, is the one
 * that try made. */
static int prepare_image(struct loop_obj *lo, char *path, size_t len, char *why)
{
	loop_image_path(lo, path, len);
	bool claimed_now = false;
	if (!lo->image_made) {
		lo->image_made = lo->image_pending = true;
		int r = loop_save(lo, why);
		if (r) {
			lo->image_made = lo->image_pending = false;
			return r;
		}
		claimed_now = true;
	}
	int flags = O_RDWR | O_CLOEXEC | (lo->image_pending ? O_CREAT : 0) | (claimed_now ? O_EXCL : 0);
	int fd = open(path, flags, 0600);
	int r = 0;
	if (fd < 0 && errno == ENOENT && lo->image_pending) { /* the first image: make the directory */
		r = fs_mkdir_p(opts.image_dir);
		if (!r)
			fd = open(path, flags, 0600);
	}
	if (fd < 0 || r) {
		int e = r ? -r : errno;
		if (lo->image_pending) { /* no image made: the claim goes, or rmdir would delete a file not ours */
			lo->image_made = lo->image_pending = false;
			loop_save(lo, NULL);
		}
		if (r)
			return why_set(why, r, "cannot create image directory %s: %s", opts.image_dir, strerror(-r));
		if (e == EEXIST)
			return why_set(why, -EEXIST, "%s exists and is not this object's image", path);
		return why_set(why, -e, "cannot create image %s: %s", path, strerror(e));
	}
	if (lo->image_pending && !claimed_now)
		log_msg(L_INFO, "loop/%s: taking image %s (claimed by an activation that was stopped)", lo->obj.name, path);
	/* The next save (the attach's) records the image as made; until then
	 * the pending claim in the record takes this file. */
	lo->image_pending = false;
	struct stat st;
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size < lo->size && ftruncate(fd, (off_t)lo->size) < 0)
		r = loop_sizing_failed(path, lo->size, errno, why);
	close(fd);
	return r;
}

int loop_attach(struct loop_obj *lo, char *why)
{
	char path[PATH_MAX];
	int r, bfd = -1;
	if (lo->backing[0]) {
		r = loop_backing_for_attach(lo, path, &bfd, why);
	} else if (!lo->size) {
		r = why_set(why, -EINVAL, "set size (for an image) or backing_file first");
	} else {
		r = prepare_image(lo, path, sizeof(path), why);
	}
	if (r)
		return r;
	struct stat st;
	if ((bfd >= 0 ? fstat(bfd, &st) : stat(path, &st)) < 0) {
		r = why_set(why, -errno, "%s: %s", path, strerror(errno));
		if (bfd >= 0)
			close(bfd);
		return r;
	}
	struct kloop_config cfg = {
		.backing = path, .backing_fd = bfd, .offset = lo->offset, .sizelimit = lo->sizelimit,
		.sector_size = lo->sector_size, .read_only = lo->read_only,
		.autoclear = lo->autoclear, .partscan = lo->partscan, .direct_io = lo->direct_io,
		.exact_path = lo->backing[0] != '\0', /* stored resolved (realpath) when written */
	};
	int nr;
	r = kloop_attach(&cfg, &nr, why);
	if (bfd >= 0)
		close(bfd);
	if (r)
		return r;
	lo->nr = nr;
	lo->back_dev = st.st_dev;
	lo->back_ino = st.st_ino;
	/* The device number is the kernel's answer, so the record can only
	 * follow the attach: a record that cannot be saved detaches again. */
	r = loop_save(lo, why);
	if (r) {
		loop_detach_settled(nr, NULL);
		lo->nr = -1;
		return r;
	}
	struct kloop_state ks;
	char size[32];
	log_msg(L_INFO, "loop/%s: activated as /dev/loop%d (%s %s, %s)", lo->obj.name, nr,
		lo->backing[0] ? "backing file" : "image", lo->backing[0] ? loop_backing_shown(lo) : path,
		log_bytes(kloop_query(nr, &ks) == 0 ? ks.size_bytes : lo->size, size));
	return 0;
}

/* close(2) of a `data` file returns before FUSE's release reaches us, so a
 * script's `dd of=data; rmdir` can find the device still open by our own
 * handle for a moment: give such releases a second before calling it busy. */
int loop_detach_settled(int nr, char *why)
{
	int r = kloop_detach(nr, why);
	for (int i = 0; r == -EBUSY && i < 20; i++) {
		usleep(50 * 1000);
		r = kloop_detach(nr, why);
	}
	return r;
}

static int apply_detach(struct loop_obj *lo, const void *nr, char *why)
{
	return loop_detach_settled(*(const int *)nr, why);
}

int loop_detach(struct loop_obj *lo, char *why)
{
	if (!loop_refresh(lo, NULL))
		return 0;
	int nr = lo->nr;
	lo->nr = -1;
	int r = loop_change(lo, apply_detach, &nr, why);
	if (r)
		lo->nr = nr;
	else
		log_msg(L_INFO, "loop/%s: deactivated (was /dev/loop%d)", lo->obj.name, nr);
	return r;
}

/* rmdir deletes the record after the detach, so it writes none in between:
 * a full state directory does not hold up a removal. */
static int detach_for_removal(struct loop_obj *lo, char *why)
{
	if (!loop_refresh(lo, NULL))
		return 0;
	int r = loop_detach_settled(lo->nr, why);
	if (!r)
		lo->nr = -1;
	return r;
}

/* ---- the object directory ---- */

static struct errslot *obj_errslot(struct ctx *c)
{
	const char *name = c->comp[1];
	/* loop7 and loop07 are one device: its error slot is keyed by number. */
	char key[24];
	bool kernel = value_is_kernel_loop_name(name);
	if (kernel)
		snprintf(key, sizeof(key), "loop%d", atoi(name + 4));
	return reg_errslot(&loop_registry, name, kernel ? key : NULL);
}

static int obj_block(struct ctx *c, struct blockref *b)
{
	struct loop_obj *lo = loop_ctx_obj(c);
	if (!lo)
		return -ENOENT;
	pthread_mutex_lock(&lo->obj.lock);
	struct kloop_state st;
	bool active = lo->obj.external ? kloop_query(lo->nr, &st) == 0 : loop_refresh(lo, &st);
	int r = -ENODEV;
	if (active) {
		b->dev = st.dev;
		b->read_only = st.read_only;
		b->data_allowed = !lo->obj.external || opts.manage_external;
		char kname[24];
		snprintf(kname, sizeof(kname), "loop%d", lo->nr);
		r = kblk_devpath(st.dev, kname, b->devpath, sizeof(b->devpath));
	}
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

int loop_remove_locked(struct loop_obj *lo, char *why)
{
	if (lo->obj.external) {
		int e = loop_detach_settled(lo->nr, why);
		if (!e)
			log_msg(L_INFO, "loop/%s: removed (detached; stsfs did not make it)", lo->obj.name);
		return e;
	}
	int was = lo->nr;
	int r = detach_for_removal(lo, why);
	char path[PATH_MAX];
	loop_image_path(lo, path, sizeof(path));
	if (!r && lo->image_made && unlink(path) < 0 && errno != ENOENT) {
		r = why_set(why, -errno, "cannot delete image %s: %s", path, strerror(errno));
		loop_save(lo, NULL); /* it stays, inactive; the kernel is checked at start-up anyway */
	}
	if (!r) {
		if (was >= 0 && lo->nr < 0)
			log_msg(L_INFO, "loop/%s: removed (was /dev/loop%d)%s", lo->obj.name, was,
				lo->image_made ? "; its image deleted" : "");
		else
			log_msg(L_INFO, "loop/%s: removed%s", lo->obj.name, lo->image_made ? "; its image deleted" : "");
		state_delete(STATE_KIND, lo->obj.name);
		reg_forget(&loop_registry, &lo->obj);
	}
	return r;
}

static int obj_remove(struct ctx *c)
{
	struct loop_obj *lo = loop_ctx_obj(c);
	if (!lo)
		return why_set(c->why, -ENOENT, "no loop object %s", c->comp[1]);
	pthread_mutex_lock(&lo->obj.lock);
	int r = obj_may_change(&lo->obj, c->why);
	r = r ? r : loop_remove_locked(lo, c->why);
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

int loop_check_new_name(const char *name, char *why)
{
	int r = value_check_name(name, LOOP_NAME_MAX, why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (value_is_kernel_loop_name(name))
		return why_set(why, -EINVAL, "names like '%s' belong to the kernel's loop devices", name);
	return 0;
}

/* The owned image is renamed with its object; the kernel device keeps its
 * open backing file (sysfs shows the new path). Caller holds the registry
 * lock, so the new name stays free until it is taken.
 * Crash-safe in steps: the new record, naming the old name, is saved
 * first; then the image is renamed and the old record deleted; then the
 * new record is saved again without the old name. A daemon killed in
 * between finishes the rename at start-up (finish_renames). */
int loop_rename_locked(struct loop_obj *lo, const char *newname, char *why)
{
	if (reg_find_locked(&loop_registry, newname))
		return why_set(why, -EEXIST, "loop object %s exists", newname);
	char old[sizeof(lo->obj.name)], old_img[PATH_MAX], new_img[PATH_MAX];
	snprintf(old, sizeof(old), "%s", lo->obj.name);
	loop_image_path(lo, old_img, sizeof(old_img));
	snprintf(new_img, sizeof(new_img), "%s/%s.img", opts.image_dir, newname);
	bool move_image = lo->image_made && access(old_img, F_OK) == 0;
	if (move_image && access(new_img, F_OK) == 0)
		return why_set(why, -EEXIST, "cannot rename image %s to %s: that file exists and is not this object's image",
			       old_img, new_img);
	reg_rename_locked(&loop_registry, &lo->obj, newname);
	snprintf(lo->renamed_from, sizeof(lo->renamed_from), "%s", old);
	int r = loop_save(lo, why);
	if (!r && move_image && renameat2(AT_FDCWD, old_img, AT_FDCWD, new_img, RENAME_NOREPLACE) < 0) {
		r = why_set(why, -errno, "cannot rename image %s to %s: %s", old_img, new_img, strerror(errno));
		state_delete(STATE_KIND, newname);
	}
	lo->renamed_from[0] = '\0';
	if (r) {
		reg_rename_locked(&loop_registry, &lo->obj, old);
		return r;
	}
	state_delete(STATE_KIND, old);
	loop_save(lo, NULL);
	log_msg(L_INFO, "loop/%s: renamed to loop/%s", old, newname);
	return 0;
}

static int obj_rename(struct ctx *c, const char *newname)
{
	int r = loop_check_new_name(newname, c->why);
	if (r)
		return r;
	struct loop_obj *lo = loop_ctx_obj(c);
	if (!lo)
		return why_set(c->why, -ENOENT, "no loop object %s", c->comp[1]);
	pthread_mutex_lock(&lo->obj.lock);
	r = obj_may_change(&lo->obj, c->why);
	if (!r && lo->obj.external)
		r = why_set(c->why, -EPERM, "%s is the kernel's name for a device stsfs did not make; it cannot be renamed",
			    lo->obj.name);
	if (!r && strcmp(lo->obj.name, newname) != 0) {
		reg_lock(&loop_registry);
		r = loop_rename_locked(lo, newname, c->why);
		reg_unlock(&loop_registry);
	}
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

static int obj_refuses(struct ctx *c, char *why)
{
	return reg_refuses(&loop_registry, c->comp[1], why);
}

static const struct subdir_def loop_obj_subdirs[] = {
	{ .name = "partitions", .kind = &partitions_kind, .visible = block_active },
	{ NULL },
};

static const struct dir_kind loop_obj_kind = {
	.name = "loop object",
	.files = { loop_files, block_files },
	.subdirs = loop_obj_subdirs,
	.remove = obj_remove,
	.rename = obj_rename,
	.refuses = obj_refuses,
	.errslot = obj_errslot,
	.block = obj_block,
};

/* ---- loop/ itself ---- */

static int dir_list(struct ctx *c, int (*emit)(void *arg, const char *name), void *arg)
{
	return reg_list(&loop_registry, emit, arg);
}

static const struct dir_kind *dir_child(struct ctx *c, const char *name)
{
	return reg_exists(&loop_registry, name) ? &loop_obj_kind : NULL;
}

int loop_admit_locked(struct obj *o, char *why)
{
	if (reg_find_locked(&loop_registry, o->name))
		return why_set(why, -EEXIST, "loop object %s exists", o->name);
	return loop_save(loop_of(o), why);
}

static bool dir_kept(struct ctx *c, const char *name)
{
	return reg_owns(&loop_registry, name);
}

static int dir_mkdir(struct ctx *c, const char *name)
{
	int r = loop_check_new_name(name, c->why);
	r = r ? r : reg_mkdir(&loop_registry, name, NULL, loop_admit_locked, c->why);
	if (!r)
		log_msg(L_INFO, "loop/%s: created", name);
	return r;
}

static struct errslot *dir_errslot(struct ctx *c)
{
	return &loop_registry.dir_error;
}

const struct dir_kind loop_dir_kind = {
	.name = "loop",
	.files = { reg_dir_files },
	.list = dir_list,
	.child = dir_child,
	.kept = dir_kept,
	.mkdir = dir_mkdir,
	.errslot = dir_errslot,
};

/* ---- for other kinds: device references ---- */

int loop_object_dev(const char *name, dev_t *dev, char *why)
{
	struct loop_obj *lo = loop_of(reg_get_owned(&loop_registry, name));
	if (!lo)
		return why_set(why, -ENOENT, "no loop object loop/%s", name);
	pthread_mutex_lock(&lo->obj.lock);
	struct kloop_state st;
	int r = loop_refresh(lo, &st) ? 0 : why_set(why, -ENOENT, "loop/%s is not active", name);
	if (!r)
		*dev = st.dev;
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

static bool device_is(const char *devname, dev_t dev)
{
	struct kloop_state st;
	return kloop_query(atoi(devname + 4), &st) == 0 && st.dev == dev;
}

bool loop_owns_dev(dev_t dev)
{
	return reg_owns_dev(&loop_registry, dev, device_is);
}

static int save_obj(struct obj *o, char *why)
{
	return loop_save((struct loop_obj *)o, why);
}
