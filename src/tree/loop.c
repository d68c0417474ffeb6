/* loop/: loop objects made with mkdir, and the kernel's own loop devices
 * (loopN) listed read-only. */
#include "stsfs/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stsfs/fsutil.h"
#include "stsfs/kernel.h"
#include "stsfs/state.h"
#include "stsfs/value.h"

#include "registry.h"

#define LOOP_NAME_MAX 64
#define STATE_KIND "loop"
_Static_assert(LOOP_NAME_MAX <= OBJ_NAME_MAX, "loop names fit struct obj");

struct loop_obj {
	struct obj obj;         /* first: the registry's part */
	/* configuration */
	char backing[PATH_MAX]; /* "" = owned image <image-dir>/NAME.img */
	uint64_t size, offset, sizelimit;
	uint32_t sector_size;
	bool read_only, autoclear, partscan, direct_io;
	bool image_made;
	/* binding to the kernel */
	int nr;                 /* -1 while inactive */
	dev_t back_dev;
	ino_t back_ino;
};

static int obj_init(struct obj *o);
static struct obj *external_get(const char *name);
static void device_name(const struct obj *o, char *buf, size_t len);
static int list_devices(char ***names, size_t *n);

/* Owned loop objects; the error slots of the kernel's other loop devices. */
static struct registry loops = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.dir_error = ERRSLOT_INIT,
	.obj_size = sizeof(struct loop_obj),
	.init = obj_init,
	.external = external_get,
	.device_name = device_name,
	.list_devices = list_devices,
};

/* ---- registry ---- */

static struct loop_obj *loop_of(struct obj *o)
{
	return (struct loop_obj *)o;
}

static int obj_init(struct obj *o)
{
	loop_of(o)->nr = -1;
	return 0;
}

/* A kernel device bound to an owned object is that object, not loopN. */
static bool nr_owned_locked(int nr)
{
	for (struct obj *o = loops.owned; o; o = o->next)
		if (loop_of(o)->nr == nr)
			return true;
	return false;
}

static void fill_from_kernel(struct loop_obj *lo, const struct kloop_state *st)
{
	snprintf(lo->backing, sizeof(lo->backing), "%s", st->backing);
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
	reg_lock(&loops);
	bool owned = nr_owned_locked(nr);
	reg_unlock(&loops);
	struct loop_obj *lo = owned ? NULL : loop_of(reg_new(&loops, name));
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
	return loop_of(reg_get(&loops, name));
}

static void obj_put(struct loop_obj *lo)
{
	reg_put(&loops, &lo->obj);
}

static struct loop_obj *ctx_obj(struct ctx *c)
{
	/* loop/NAME/...: the object is always the second component. */
	return c->depth >= 2 ? obj_get(c->comp[1]) : NULL;
}

/* ---- kernel binding ---- */

static int save(struct loop_obj *lo, char *why)
{
	if (lo->obj.external)
		return 0;
	struct kv_block b = { 0 };
	int r = kv_add_str(&b, "backing_file", lo->backing);
	r = r ? r : kv_add_u64(&b, "size", lo->size);
	r = r ? r : kv_add_u64(&b, "offset", lo->offset);
	r = r ? r : kv_add_u64(&b, "sizelimit", lo->sizelimit);
	r = r ? r : kv_add_u64(&b, "sector_size", lo->sector_size);
	r = r ? r : kv_add_bool(&b, "read_only", lo->read_only);
	r = r ? r : kv_add_bool(&b, "autoclear", lo->autoclear);
	r = r ? r : kv_add_bool(&b, "partscan", lo->partscan);
	r = r ? r : kv_add_bool(&b, "direct_io", lo->direct_io);
	r = r ? r : kv_add_bool(&b, "image_made", lo->image_made);
	r = r ? r : kv_add_s64(&b, "nr", lo->nr);
	r = r ? r : kv_add_u64(&b, "back_dev", lo->back_dev);
	r = r ? r : kv_add_u64(&b, "back_ino", lo->back_ino);
	r = r ? r : state_save(STATE_KIND, lo->obj.name, &b, why);
	kv_block_free(&b);
	return r;
}

static bool bound_to_us(const struct loop_obj *lo, const struct kloop_state *st)
{
	return st->backing_ino == lo->back_ino && st->backing_dev == lo->back_dev;
}

/* The kernel is the source of truth: a device detached behind our back
 * (autoclear, losetup -d) makes the object inactive. Caller holds lo->obj.lock. */
static bool refresh(struct loop_obj *lo, struct kloop_state *st)
{
	struct kloop_state tmp;
	st = st ? st : &tmp;
	if (lo->nr < 0)
		return false;
	if (kloop_query(lo->nr, st) == 0 && bound_to_us(lo, st))
		return true;
	lo->nr = -1;
	save(lo, NULL);
	return false;
}

static void image_path(const struct loop_obj *lo, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.img", opts.image_dir, lo->obj.name);
}

/* ftruncate's EFBIG (larger than the image directory's file system allows)
 * is a lack of room to the user: ENOSPC, saying so. */
static int sizing_failed(const char *path, uint64_t size, int err, char *why)
{
	if (err == EFBIG)
		return why_set(why, -ENOSPC, "cannot size image %s to %" PRIu64 " bytes: the file system of %s "
			       "does not allow files that large", path, size, opts.image_dir);
	return why_set(why, -err, "cannot size image %s to %" PRIu64 " bytes: %s", path, size, strerror(err));
}

/* Creates (or grows) the owned sparse image to lo->size. */
static int prepare_image(struct loop_obj *lo, char *path, size_t len, char *why)
{
	image_path(lo, path, len);
	int r = fs_mkdir_p(opts.image_dir);
	if (r)
		return why_set(why, r, "cannot create image directory %s: %s", opts.image_dir, strerror(-r));
	int flags = O_RDWR | O_CLOEXEC | (lo->image_made ? 0 : O_CREAT | O_EXCL);
	int fd = open(path, flags, 0600);
	if (fd < 0 && errno == EEXIST)
		return why_set(why, -EEXIST, "%s exists and is not this object's image", path);
	if (fd < 0)
		return why_set(why, -errno, "cannot create image %s: %s", path, strerror(errno));
	if (!lo->image_made) {
		lo->image_made = true;
		r = save(lo, why);
	}
	struct stat st;
	if (r == 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size < lo->size && ftruncate(fd, (off_t)lo->size) < 0)
		r = sizing_failed(path, lo->size, errno, why);
	close(fd);
	return r;
}

/* Canonical path of an allowed external backing file. */
static int check_backing(const char *value, char *out, char *why)
{
	if (value[0] != '/')
		return why_set(why, -EINVAL, "backing_file must be an absolute path, not '%s'", value);
	if (strpbrk(value, "\n\r"))
		return why_set(why, -EINVAL, "backing_file path has a line break");
	char real[PATH_MAX];
	if (!realpath(value, real))
		return why_set(why, -errno, "backing_file %s: %s", value, strerror(errno));
	bool allowed = false;
	for (size_t i = 0; i < opts.n_allow_backing && !allowed; i++)
		allowed = value_path_within(real, opts.allow_backing[i]);
	if (!allowed)
		return why_set(why, -EACCES, "%s (resolves to %s) is outside the allowed directories%s", value, real,
			       opts.n_allow_backing ? "" : " (start stsfs with --allow-backing DIR)");
	struct stat st;
	if (stat(real, &st) < 0)
		return why_set(why, -errno, "backing_file %s: %s", real, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return why_set(why, -EINVAL, "backing_file %s is not a regular file", real);
	snprintf(out, PATH_MAX, "%s", real);
	return 0;
}

static int attach(struct loop_obj *lo, char *why)
{
	char path[PATH_MAX];
	int r;
	if (lo->backing[0]) {
		r = check_backing(lo->backing, path, why);
	} else if (!lo->size) {
		r = why_set(why, -EINVAL, "set size (for an image) or backing_file first");
	} else {
		r = prepare_image(lo, path, sizeof(path), why);
	}
	if (r)
		return r;
	struct stat st;
	if (stat(path, &st) < 0)
		return why_set(why, -errno, "%s: %s", path, strerror(errno));
	struct kloop_config cfg = {
		.backing = path, .offset = lo->offset, .sizelimit = lo->sizelimit,
		.sector_size = lo->sector_size, .read_only = lo->read_only,
		.autoclear = lo->autoclear, .partscan = lo->partscan, .direct_io = lo->direct_io,
	};
	int nr;
	r = kloop_attach(&cfg, &nr, why);
	if (r)
		return r;
	lo->nr = nr;
	lo->back_dev = st.st_dev;
	lo->back_ino = st.st_ino;
	r = save(lo, why);
	if (r) {
		kloop_detach(nr, NULL);
		lo->nr = -1;
	}
	return r;
}

/* close(2) of a `data` file returns before FUSE's release reaches us, so a
 * script's `dd of=data; rmdir` can find the device still open by our own
 * handle for a moment: give such releases a second before calling it busy. */
static int detach_settled(int nr, char *why)
{
	int r = kloop_detach(nr, why);
	for (int i = 0; r == -EBUSY && i < 20; i++) {
		usleep(50 * 1000);
		r = kloop_detach(nr, why);
	}
	return r;
}

static int detach(struct loop_obj *lo, char *why)
{
	if (!refresh(lo, NULL))
		return 0;
	int r = detach_settled(lo->nr, why);
	if (r)
		return r;
	lo->nr = -1;
	return save(lo, why);
}

/* ---- attribute helpers ---- */

typedef int (*loop_store_fn)(struct loop_obj *lo, const char *value, char *why);
typedef int (*loop_show_fn)(struct loop_obj *lo, char **out);

/* Runs fn on the object named by c, under its lock. */
static int with_store(struct ctx *c, const char *value, loop_store_fn fn)
{
	struct loop_obj *lo = ctx_obj(c);
	if (!lo)
		return why_set(c->why, -ENOENT, "no loop object %s", c->comp[1]);
	pthread_mutex_lock(&lo->obj.lock);
	int r = obj_may_change(&lo->obj, c->why);
	if (!r && !lo->obj.external)
		refresh(lo, NULL);
	r = r ? r : fn(lo, value, c->why);
	pthread_mutex_unlock(&lo->obj.lock);
	obj_put(lo);
	return r;
}

static int with_show(struct ctx *c, char **out, loop_show_fn fn)
{
	struct loop_obj *lo = ctx_obj(c);
	if (!lo)
		return -ENOENT;
	pthread_mutex_lock(&lo->obj.lock);
	if (!lo->obj.external)
		refresh(lo, NULL);
	int r = fn(lo, out);
	pthread_mutex_unlock(&lo->obj.lock);
	obj_put(lo);
	return r;
}

static bool is_active(const struct loop_obj *lo)
{
	return lo->nr >= 0;
}

static int frozen(const struct loop_obj *lo, const char *attr, char *why)
{
	return why_set(why, -EBUSY, "%s cannot change while %s is active (echo 0 > active first)", attr, lo->obj.name);
}

/* ---- backing_file ---- */

static int show_backing(struct loop_obj *lo, char **out)
{
	return show_text(out, "%s\n", lo->backing);
}

static int store_backing(struct loop_obj *lo, const char *value, char *why)
{
	if (is_active(lo))
		return frozen(lo, "backing_file", why);
	if (lo->image_made)
		return why_set(why, -EBUSY, "%s owns an image; rmdir and mkdir again to use a backing file", lo->obj.name);
	char real[PATH_MAX] = "";
	if (value[0]) {
		int r = check_backing(value, real, why);
		if (r)
			return r;
	}
	char old[PATH_MAX];
	uint64_t old_size = lo->size;
	snprintf(old, sizeof(old), "%s", lo->backing);
	snprintf(lo->backing, sizeof(lo->backing), "%s", real);
	lo->size = 0; /* the size now follows the file */
	int r = save(lo, why);
	if (r) {
		snprintf(lo->backing, sizeof(lo->backing), "%s", old);
		lo->size = old_size;
	}
	return r;
}

/* ---- size ---- */

static uint64_t backing_bytes(const struct loop_obj *lo)
{
	struct stat st;
	if (stat(lo->backing, &st) < 0 || (uint64_t)st.st_size <= lo->offset)
		return 0;
	uint64_t avail = (uint64_t)st.st_size - lo->offset;
	return lo->sizelimit && lo->sizelimit < avail ? lo->sizelimit : avail;
}

static int show_size(struct loop_obj *lo, char **out)
{
	struct kloop_state st;
	uint64_t size = lo->size;
	if (is_active(lo) && kloop_query(lo->nr, &st) == 0)
		size = st.size_bytes;
	else if (lo->backing[0])
		size = backing_bytes(lo);
	return show_text(out, "%" PRIu64 "\n", size);
}

static int grow_owned(struct loop_obj *lo, uint64_t size, char *why)
{
	char path[PATH_MAX];
	image_path(lo, path, sizeof(path));
	if (truncate(path, (off_t)size) < 0)
		return sizing_failed(path, size, errno, why);
	if (lo->sizelimit)
		return kloop_set_offset_limit(lo->nr, lo->offset, size, why);
	return kloop_set_capacity(lo->nr, why);
}

/* External backing file: the user grows the file; size makes the kernel follow. */
static int grow_backed(struct loop_obj *lo, uint64_t size, char *why)
{
	struct stat st;
	if (stat(lo->backing, &st) < 0)
		return why_set(why, -errno, "%s: %s", lo->backing, strerror(errno));
	if ((uint64_t)st.st_size < lo->offset + size)
		return why_set(why, -EINVAL, "%s has only %" PRIu64 " bytes after the offset; grow the file first",
			       lo->backing, (uint64_t)st.st_size > lo->offset ? (uint64_t)st.st_size - lo->offset : 0);
	if (lo->sizelimit)
		return kloop_set_offset_limit(lo->nr, lo->offset, size, why);
	return kloop_set_capacity(lo->nr, why);
}

static int store_size(struct loop_obj *lo, const char *value, char *why)
{
	uint64_t size;
	int r = value_parse_size(value, &size, why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (size == 0 || size % 512)
		return why_set(why, -EINVAL, "size must be a positive multiple of 512 bytes, not %" PRIu64, size);
	struct kloop_state st;
	if (refresh(lo, &st)) {
		if (size < st.size_bytes)
			return why_set(why, -EINVAL, "shrinking an active device (%" PRIu64 " to %" PRIu64 " bytes) is refused",
				       st.size_bytes, size);
		if (size == st.size_bytes)
			return 0;
		r = lo->backing[0] ? grow_backed(lo, size, why) : grow_owned(lo, size, why);
		if (r)
			return r;
		if (!lo->backing[0]) {
			lo->size = size;
			r = save(lo, why);
		}
		return r;
	}
	if (lo->backing[0])
		return why_set(why, -EINVAL, "size follows backing_file %s (use sizelimit to use less of it)", lo->backing);
	if (lo->image_made && size < lo->size)
		return why_set(why, -EINVAL, "the image already holds %" PRIu64 " bytes; shrinking it is refused", lo->size);
	uint64_t old = lo->size;
	lo->size = size;
	r = save(lo, why);
	if (r)
		lo->size = old;
	return r;
}

/* ---- numeric attributes: offset, sizelimit, sector_size ---- */

static int show_offset(struct loop_obj *lo, char **out)
{
	return show_text(out, "%" PRIu64 "\n", lo->offset);
}

static int show_sizelimit(struct loop_obj *lo, char **out)
{
	return show_text(out, "%" PRIu64 "\n", lo->sizelimit);
}

static int show_sector_size(struct loop_obj *lo, char **out)
{
	struct kloop_state st;
	uint32_t v = lo->sector_size ? lo->sector_size : 512;
	if (is_active(lo) && kloop_query(lo->nr, &st) == 0)
		v = st.sector_size;
	return show_text(out, "%u\n", v);
}

static int set_offset_limit(struct loop_obj *lo, uint64_t offset, uint64_t limit, char *why)
{
	if (is_active(lo)) {
		int r = kloop_set_offset_limit(lo->nr, offset, limit, why);
		if (r)
			return r;
	}
	uint64_t o = lo->offset, l = lo->sizelimit;
	lo->offset = offset;
	lo->sizelimit = limit;
	int r = save(lo, why);
	if (r) {
		lo->offset = o;
		lo->sizelimit = l;
	}
	return r;
}

static int store_offset(struct loop_obj *lo, const char *value, char *why)
{
	uint64_t v;
	int r = value_parse_size(value, &v, why, STSFS_WHY_LEN);
	return r ? r : set_offset_limit(lo, v, lo->sizelimit, why);
}

static int store_sizelimit(struct loop_obj *lo, const char *value, char *why)
{
	uint64_t v;
	int r = value_parse_size(value, &v, why, STSFS_WHY_LEN);
	return r ? r : set_offset_limit(lo, lo->offset, v, why);
}

static int store_sector_size(struct loop_obj *lo, const char *value, char *why)
{
	uint64_t v;
	int r = value_parse_size(value, &v, why, STSFS_WHY_LEN);
	r = r ? r : value_check_sector_size(v, why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (is_active(lo) && (r = kloop_set_sector_size(lo->nr, (uint32_t)v, why)) != 0)
		return r;
	uint32_t old = lo->sector_size;
	lo->sector_size = (uint32_t)v;
	r = save(lo, why);
	if (r)
		lo->sector_size = old;
	return r;
}

/* ---- flags ---- */

struct flag_attr {
	const char *name;
	size_t field;            /* offsetof the bool in loop_obj */
	unsigned lo_flag;        /* LO_FLAGS_* for LOOP_SET_STATUS64, 0: other */
	bool frozen_active;
};

static const struct flag_attr flag_attrs[] = {
	{ "read_only", offsetof(struct loop_obj, read_only), 0, true },
	{ "autoclear", offsetof(struct loop_obj, autoclear), LO_FLAGS_AUTOCLEAR, false },
	{ "partscan", offsetof(struct loop_obj, partscan), LO_FLAGS_PARTSCAN, false },
	{ "direct_io", offsetof(struct loop_obj, direct_io), LO_FLAGS_DIRECT_IO, false },
};

static bool *flag_field(struct loop_obj *lo, const struct flag_attr *fa)
{
	return (bool *)((char *)lo + fa->field);
}

static bool kernel_flag(const struct kloop_state *st, const struct flag_attr *fa)
{
	switch (fa->lo_flag) {
	case LO_FLAGS_AUTOCLEAR:
		return st->autoclear;
	case LO_FLAGS_PARTSCAN:
		return st->partscan;
	case LO_FLAGS_DIRECT_IO:
		return st->direct_io;
	}
	return st->read_only;
}

static int set_kernel_flag(struct loop_obj *lo, const struct flag_attr *fa, bool on, char *why)
{
	int r = fa->lo_flag == LO_FLAGS_DIRECT_IO ? kloop_set_direct_io(lo->nr, on, why)
						  : kloop_set_flag(lo->nr, fa->lo_flag, on, why);
	if (r)
		return r;
	/* LOOP_SET_STATUS64 silently ignores flags it cannot clear. */
	struct kloop_state st;
	if (kloop_query(lo->nr, &st) == 0 && kernel_flag(&st, fa) != on)
		return why_set(why, -EBUSY, "the kernel cannot turn %s %s while the device is attached", fa->name,
			       on ? "on" : "off");
	return 0;
}

static int store_flag(struct loop_obj *lo, const struct flag_attr *fa, const char *value, char *why)
{
	bool on;
	int r = value_parse_bool(value, &on, why, STSFS_WHY_LEN);
	if (r)
		return r;
	bool *field = flag_field(lo, fa);
	if (is_active(lo)) {
		struct kloop_state st;
		if (kloop_query(lo->nr, &st) == 0 && kernel_flag(&st, fa) == on)
			goto remember;
		if (fa->frozen_active)
			return frozen(lo, fa->name, why);
		r = set_kernel_flag(lo, fa, on, why);
		if (r)
			return r;
	}
remember:;
	bool old = *field;
	*field = on;
	r = save(lo, why);
	if (r)
		*field = old;
	return r;
}

static int show_flag(struct loop_obj *lo, const struct flag_attr *fa, char **out)
{
	struct kloop_state st;
	bool v = *flag_field(lo, fa);
	if (is_active(lo) && kloop_query(lo->nr, &st) == 0)
		v = kernel_flag(&st, fa);
	return show_text(out, "%d\n", v);
}

#define FLAG_FILE_FNS(idx, fname)                                                              \
	static int show_##fname(struct loop_obj *lo, char **out)                                \
	{                                                                                       \
		return show_flag(lo, &flag_attrs[idx], out);                                    \
	}                                                                                       \
	static int store_##fname(struct loop_obj *lo, const char *v, char *why)                 \
	{                                                                                       \
		return store_flag(lo, &flag_attrs[idx], v, why);                                \
	}
FLAG_FILE_FNS(0, read_only)
FLAG_FILE_FNS(1, autoclear)
FLAG_FILE_FNS(2, partscan)
FLAG_FILE_FNS(3, direct_io)

/* ---- active, name, status ---- */

static int show_active(struct loop_obj *lo, char **out)
{
	return show_text(out, "%d\n", is_active(lo));
}

static int store_active(struct loop_obj *lo, const char *value, char *why)
{
	bool on;
	int r = value_parse_bool(value, &on, why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (on == is_active(lo))
		return 0;
	if (lo->obj.external)
		return on ? 0 : detach_settled(lo->nr, why);
	return on ? attach(lo, why) : detach(lo, why);
}

static int show_name(struct loop_obj *lo, char **out)
{
	if (!is_active(lo))
		return show_text(out, "\n");
	return show_text(out, "loop%d\n", lo->nr);
}

/* The fields of `losetup -lJ`, in its order, with its meanings. */
static int status_block(struct loop_obj *lo, struct kv_block *b)
{
	struct kloop_state st;
	if (!is_active(lo) || kloop_query(lo->nr, &st) != 0)
		return 0;
	char dev[32];
	kloop_devpath(lo->nr, dev, sizeof(dev));
	int r = kv_add_str(b, "name", dev);
	r = r ? r : kv_add_str(b, "back_file", st.backing);
	r = r ? r : kv_add_u64(b, "offset", st.offset);
	r = r ? r : kv_add_u64(b, "sizelimit", st.sizelimit);
	r = r ? r : kv_add_bool(b, "autoclear", st.autoclear);
	r = r ? r : kv_add_bool(b, "ro", st.read_only);
	r = r ? r : kv_add_bool(b, "dio", st.direct_io);
	r = r ? r : kv_add_u64(b, "log_sec", st.sector_size);
	r = r ? r : kv_add_bool(b, "partscan", st.partscan);
	r = r ? r : kv_add_u64(b, "size", st.size_bytes);
	return r;
}

static int kv_status(struct ctx *c, struct kv_doc *doc)
{
	struct loop_obj *lo = ctx_obj(c);
	if (!lo)
		return -ENOENT;
	struct kv_block *b = kv_doc_add_block(doc);
	int r = -ENOMEM;
	if (b) {
		pthread_mutex_lock(&lo->obj.lock);
		if (!lo->obj.external)
			refresh(lo, NULL);
		r = status_block(lo, b);
		pthread_mutex_unlock(&lo->obj.lock);
	}
	obj_put(lo);
	return r;
}

/* ---- file table ---- */

#define LOOP_ATTR(fname)                                                                       \
	static int c_show_##fname(struct ctx *c, char **out)                                   \
	{                                                                                      \
		return with_show(c, out, show_##fname);                                        \
	}                                                                                      \
	static int c_store_##fname(struct ctx *c, const char *v)                               \
	{                                                                                      \
		return with_store(c, v, store_##fname);                                        \
	}
LOOP_ATTR(backing)
LOOP_ATTR(size)
LOOP_ATTR(offset)
LOOP_ATTR(sizelimit)
LOOP_ATTR(sector_size)
LOOP_ATTR(read_only)
LOOP_ATTR(autoclear)
LOOP_ATTR(partscan)
LOOP_ATTR(direct_io)
LOOP_ATTR(active)

static int c_show_name(struct ctx *c, char **out)
{
	return with_show(c, out, show_name);
}

#define RW(n, fn) { .name = n, .perm = 0644, .show = c_show_##fn, .store = c_store_##fn }
static const struct file_def loop_files[] = {
	RW("backing_file", backing),
	RW("size", size),
	RW("offset", offset),
	RW("sizelimit", sizelimit),
	RW("sector_size", sector_size),
	RW("read_only", read_only),
	RW("autoclear", autoclear),
	RW("partscan", partscan),
	RW("direct_io", direct_io),
	RW("active", active),
	{ .name = "name", .perm = 0444, .show = c_show_name },
	{ .name = "status", .perm = 0444, .kv = kv_status },
	{ .name = "error", .perm = 0444, .show = show_error_file },
	{ NULL },
};
#undef RW

/* ---- the object directory ---- */

static struct errslot *obj_errslot(struct ctx *c)
{
	const char *name = c->comp[1];
	/* loop7 and loop07 are one device: its error slot is keyed by number. */
	char key[24];
	bool kernel = value_is_kernel_loop_name(name);
	if (kernel)
		snprintf(key, sizeof(key), "loop%d", atoi(name + 4));
	return reg_errslot(&loops, name, kernel ? key : NULL);
}

static int obj_block(struct ctx *c, struct blockref *b)
{
	struct loop_obj *lo = ctx_obj(c);
	if (!lo)
		return -ENOENT;
	pthread_mutex_lock(&lo->obj.lock);
	struct kloop_state st;
	bool active = lo->obj.external ? kloop_query(lo->nr, &st) == 0 : refresh(lo, &st);
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
	obj_put(lo);
	return r;
}

static int obj_remove(struct ctx *c)
{
	struct loop_obj *lo = ctx_obj(c);
	if (!lo)
		return why_set(c->why, -ENOENT, "no loop object %s", c->comp[1]);
	pthread_mutex_lock(&lo->obj.lock);
	int r = obj_may_change(&lo->obj, c->why);
	if (!r && lo->obj.external)
		r = detach_settled(lo->nr, c->why);
	else if (!r)
		r = detach(lo, c->why);
	if (!r && !lo->obj.external) {
		char path[PATH_MAX];
		image_path(lo, path, sizeof(path));
		if (lo->image_made && unlink(path) < 0 && errno != ENOENT)
			r = why_set(c->why, -errno, "cannot delete image %s: %s", path, strerror(errno));
	}
	if (!r && !lo->obj.external) {
		state_delete(STATE_KIND, lo->obj.name);
		reg_forget(&loops, &lo->obj);
	}
	pthread_mutex_unlock(&lo->obj.lock);
	obj_put(lo);
	return r;
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
	.errslot = obj_errslot,
	.block = obj_block,
};

/* ---- loop/ itself ---- */

static int dir_list(struct ctx *c, int (*emit)(void *arg, const char *name), void *arg)
{
	return reg_list(&loops, emit, arg);
}

static const struct dir_kind *dir_child(struct ctx *c, const char *name)
{
	return reg_exists(&loops, name) ? &loop_obj_kind : NULL;
}

static int admit_locked(struct obj *o, char *why)
{
	if (reg_find_locked(&loops, o->name))
		return why_set(why, -EEXIST, "loop object %s exists", o->name);
	return save(loop_of(o), why);
}

static int dir_mkdir(struct ctx *c, const char *name)
{
	int r = value_check_name(name, LOOP_NAME_MAX, c->why, sizeof(c->why));
	if (r)
		return r;
	if (value_is_kernel_loop_name(name))
		return why_set(c->why, -EINVAL, "names like '%s' belong to the kernel's loop devices", name);
	return reg_mkdir(&loops, name, admit_locked, c->why);
}

static struct errslot *dir_errslot(struct ctx *c)
{
	return &loops.dir_error;
}

const struct dir_kind loop_dir_kind = {
	.name = "loop",
	.files = { reg_dir_files },
	.list = dir_list,
	.child = dir_child,
	.mkdir = dir_mkdir,
	.errslot = dir_errslot,
};

/* ---- start-up: persisted objects, re-adopted from the kernel ---- */

static uint64_t kv_u64(const struct kv_block *b, const char *key)
{
	const struct kv *e = kv_get(b, key);
	return e && e->str ? strtoull(e->str, NULL, 10) : 0;
}

static bool kv_flag(const struct kv_block *b, const char *key)
{
	const struct kv *e = kv_get(b, key);
	return e && e->str && strcmp(e->str, "1") == 0;
}

static int load_fields(struct obj *o, const struct kv_block *b)
{
	struct loop_obj *lo = loop_of(o);
	const struct kv *bf = kv_get(b, "backing_file");
	snprintf(lo->backing, sizeof(lo->backing), "%s", bf && bf->str ? bf->str : "");
	lo->size = kv_u64(b, "size");
	lo->offset = kv_u64(b, "offset");
	lo->sizelimit = kv_u64(b, "sizelimit");
	lo->sector_size = (uint32_t)kv_u64(b, "sector_size");
	lo->read_only = kv_flag(b, "read_only");
	lo->autoclear = kv_flag(b, "autoclear");
	lo->partscan = kv_flag(b, "partscan");
	lo->direct_io = kv_flag(b, "direct_io");
	lo->image_made = kv_flag(b, "image_made");
	const struct kv *nr = kv_get(b, "nr");
	lo->nr = nr && nr->str ? atoi(nr->str) : -1;
	lo->back_dev = (dev_t)kv_u64(b, "back_dev");
	lo->back_ino = (ino_t)kv_u64(b, "back_ino");
	return 0;
}

/* A daemon killed between attaching and saving left the device unrecorded:
 * an owned image's inode identifies it. */
static void adopt_unrecorded(struct loop_obj *lo, const int *nrs, size_t n)
{
	char path[PATH_MAX];
	struct stat img;
	image_path(lo, path, sizeof(path));
	if (lo->backing[0] || !lo->image_made || stat(path, &img) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct kloop_state st;
		if (kloop_query(nrs[i], &st) == 0 && st.backing_ino == img.st_ino && st.backing_dev == img.st_dev) {
			lo->nr = nrs[i];
			lo->back_dev = img.st_dev;
			lo->back_ino = img.st_ino;
			save(lo, NULL);
			return;
		}
	}
}

int loop_startup(char *why)
{
	int r = reg_load(&loops, STATE_KIND, LOOP_NAME_MAX, load_fields, why);
	if (r)
		return r;
	int *nrs = NULL;
	size_t n = 0;
	kloop_list(&nrs, &n);
	/* Start-up is single-threaded: nothing else walks the list yet. */
	for (struct obj *o = loops.owned; o; o = o->next) {
		if (!refresh(loop_of(o), NULL))
			adopt_unrecorded(loop_of(o), nrs, n);
	}
	free(nrs);
	return 0;
}

/* ---- for other kinds: device references ---- */

int loop_object_dev(const char *name, dev_t *dev, char *why)
{
	struct loop_obj *lo = loop_of(reg_get_owned(&loops, name));
	if (!lo)
		return why_set(why, -ENOENT, "no loop object loop/%s", name);
	pthread_mutex_lock(&lo->obj.lock);
	struct kloop_state st;
	int r = refresh(lo, &st) ? 0 : why_set(why, -ENOENT, "loop/%s is not active", name);
	if (!r)
		*dev = st.dev;
	pthread_mutex_unlock(&lo->obj.lock);
	obj_put(lo);
	return r;
}

static bool device_is(const char *devname, dev_t dev)
{
	struct kloop_state st;
	return kloop_query(atoi(devname + 4), &st) == 0 && st.dev == dev;
}

bool loop_owns_dev(dev_t dev)
{
	return reg_owns_dev(&loops, dev, device_is);
}
