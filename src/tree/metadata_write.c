/* metadata/ write side: size, restore, repair, previous, trim. The tools
 * run through kmeta_write / kmeta_size; the geometry comes from the owning
 * object's table (dir_kind.meta_line). The previous metadata is kept per
 * dm object: the owner's (dm_name). */
#include "metadata.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "dm.h"

/* The first table line's geometry: length (sectors) and the params. */
struct geometry {
	enum kmeta_kind kind;
	uint64_t length;
	char params[512];
};

static int geometry(struct ctx *c, struct geometry *g)
{
	struct meta_source m;
	int r = meta_owner_source(c, 1, &m, false, NULL);
	if (r)
		return r;
	g->kind = m.kind;
	struct ctx obj;
	ctx_up(c, 1, &obj);
	if (!obj.kind->meta_line)
		return -ENOENT;
	return obj.kind->meta_line(&obj, &g->length, g->params, sizeof(g->params), c->why);
}

/* The nth word of params. */
static int param(const struct geometry *g, int nth, char *buf, size_t len)
{
	const char *p = g->params;
	for (int i = 0; i < nth && *p; i++) {
		p += strcspn(p, " ");
		p += strspn(p, " ");
	}
	size_t w = strcspn(p, " ");
	if (!w || w >= len)
		return -EINVAL;
	memcpy(buf, p, w);
	buf[w] = '\0';
	return 0;
}

static int param_u64(struct ctx *c, const struct geometry *g, int nth, const char *what, uint64_t *v)
{
	char buf[32], *end;
	if (param(g, nth, buf, sizeof(buf)) || (*v = strtoull(buf, &end, 10), *end))
		return why_set(c->why, -EINVAL, "no %s in the table", what);
	return 0;
}

static int param_dev(struct ctx *c, const struct geometry *g, int nth, const char *what, dev_t *dev)
{
	char buf[32];
	unsigned ma, mi;
	if (param(g, nth, buf, sizeof(buf)) || sscanf(buf, "%u:%u", &ma, &mi) != 2)
		return why_set(c->why, -EINVAL, "no %s in the table", what);
	*dev = makedev(ma, mi);
	return 0;
}

static bool has_size(struct ctx *c)
{
	struct meta_source m;
	return meta_owner_source(c, 1, &m, false, NULL) == 0 && m.kind != KMETA_ERA;
}

static bool thin_only(struct ctx *c)
{
	struct meta_source m;
	return meta_owner_source(c, 1, &m, false, NULL) == 0 && m.kind == KMETA_THIN;
}

/* thin-pool: META DATA BLOCK ...; its data blocks are the line's length
 * over the block size. cache: META CACHE ORIGIN BLOCK ...; its blocks are
 * the cache device's over the block size. */
static int show_size(struct ctx *c, char **out)
{
	struct geometry g;
	int r = geometry(c, &g);
	if (r)
		return r;
	uint64_t block, len = g.length;
	if (g.kind == KMETA_THIN) {
		r = param_u64(c, &g, 2, "data block size", &block);
	} else {
		dev_t dev;
		r = param_u64(c, &g, 3, "block size", &block);
		if (!r)
			r = param_dev(c, &g, 1, "cache device", &dev);
		if (!r && (r = kblk_size(dev, &len)) != 0)
			r = why_set(c->why, r, "size of the cache device %u:%u: %s", major(dev), minor(dev), strerror(-r));
		len /= 512;
	}
	if (r)
		return r;
	struct kmeta_result res;
	uint64_t bytes = 0;
	r = kmeta_size(g.kind, block, len, KMETA_THIN_MAX_THINS, c->cancel, &res, &bytes, c->why);
	if (r)
		return r;
	r = res.exit_code ? meta_tool_failed(c, &res) : show_text(out, "%" PRIu64 "\n", bytes);
	kmeta_result_free(&res);
	return r;
}

/* Writes need the metadata device to themselves. */
static int inactive_source(struct ctx *c, struct meta_source *m)
{
	struct ctx obj;
	ctx_up(c, 1, &obj);
	int r = obj.kind->refuses ? obj.kind->refuses(&obj, c->why) : 0;
	if (r)
		return r;
	r = meta_owner_source(c, 1, m, true, c->why);
	if (!r && m->live_name[0])
		r = why_set(c->why, -EBUSY, "%s/%s is active: deactivate it to rewrite its metadata", obj.comp[0],
			    obj.comp[1]);
	return r;
}

static int run_write(struct ctx *c, struct kmeta_wreq *q)
{
	q->tmp_dir = opts.state_dir;
	q->cancel = c->cancel;
	struct kmeta_result res;
	int r = kmeta_write(q, &res, c->why);
	if (r)
		return r;
	r = res.exit_code ? meta_tool_failed(c, &res) : 0;
	kmeta_result_free(&res);
	return r;
}

static int check_one(struct ctx *c, const char *value)
{
	if (strcmp(value, "1") != 0)
		return why_set(c->why, -EINVAL, "write 1");
	return 0;
}

/* ---- restore ---- */

/* The dump so far may be a dump: the device is free and the text starts as
 * one. */
static int restore_valid(struct ctx *c, const char *value, struct meta_source *m)
{
	int r = inactive_source(c, m);
	if (r)
		return r;
	static const char head[] = "<superblock";
	size_t n = strlen(value) < sizeof(head) - 1 ? strlen(value) : sizeof(head) - 1;
	if (strncmp(value, head, n) != 0)
		return why_set(c->why, -EINVAL, "not a dump: it starts with <superblock");
	return 0;
}

static int restore(struct ctx *c, const char *value, const struct meta_source *m)
{
	struct kmeta_wreq q = { .kind = m->kind, .op = KMETA_RESTORE, .devpath = m->devpath, .xml = value, .prev_fd = -1 };
	return run_write(c, &q);
}

/* Per write. The write that completes the dump (its closing tag ends it)
 * runs the tool, so that the tool's refusal fails that write(2): bash
 * ignores close's errno. Returning 1 tells the tree nothing is left for
 * close. */
static int check_restore(struct ctx *c, const char *value)
{
	static const char tail[] = "</superblock>";
	struct meta_source m;
	int r = restore_valid(c, value, &m);
	size_t len = strlen(value);
	if (r || len < sizeof(tail) - 1 || strcmp(value + len - (sizeof(tail) - 1), tail) != 0)
		return r;
	r = restore(c, value, &m);
	return r ? r : 1;
}

/* At close, for a dump that never completed itself. */
static int store_restore(struct ctx *c, const char *value)
{
	struct meta_source m;
	int r = restore_valid(c, value, &m);
	if (!r && !value[0])
		r = why_set(c->why, -EINVAL, "no dump written");
	return r ? r : restore(c, value, &m);
}

/* ---- repair and previous ----
 * The metadata a repair replaced lives in a file in the state directory
 * (unnamed, or named where there is no O_TMPFILE), held open here per dm
 * object (with a reference to the object: a new object of the same name
 * is another one). */

struct prev {
	struct dm_obj *o;
	int fd;
	char path[PATH_MAX]; /* a named file (no O_TMPFILE, e.g. 9p), or "" */
	struct prev *next;
};

static pthread_mutex_t prev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct prev *prevs;

static void prev_drop(struct prev *e)
{
	close(e->fd);
	if (e->path[0])
		unlink(e->path);
	dm_obj_put(e->o);
	free(e);
}

/* Under prev_lock: o's entry (o NULL: none). Drops the entries of removed
 * objects: no object of that name any more, or another one (o's name). */
static struct prev **prev_find(struct dm_obj *o)
{
	struct prev **found = NULL;
	for (struct prev **pp = &prevs; *pp;) {
		struct prev *e = *pp;
		if (e->o == o) {
			found = pp;
		} else if ((o && strcmp(e->o->obj.name, o->obj.name) == 0) || !dm_owns_name(e->o->obj.name)) {
			*pp = e->next;
			prev_drop(e);
			continue;
		}
		pp = &e->next;
	}
	/* found may have moved when an entry before it was dropped. */
	if (found)
		for (struct prev **pp = &prevs; *pp; pp = &(*pp)->next)
			if ((*pp)->o == o)
				return pp;
	return NULL;
}

static void prev_exit(void)
{
	pthread_mutex_lock(&prev_lock);
	for (struct prev *e = prevs; e; e = e->next)
		if (e->path[0])
			unlink(e->path);
	pthread_mutex_unlock(&prev_lock);
}

/* Forgets the previous metadata of removed objects (their named files go). */
void metadata_previous_sweep(void)
{
	pthread_mutex_lock(&prev_lock);
	prev_find(NULL);
	pthread_mutex_unlock(&prev_lock);
}

static int prev_fd(struct ctx *c)
{
	struct ctx obj;
	ctx_up(c, 1, &obj);
	struct dm_obj *o = dm_ctx_obj(&obj);
	if (!o)
		return -ENOENT;
	pthread_mutex_lock(&prev_lock);
	struct prev **pp = prev_find(o);
	int fd = pp ? (*pp)->fd : -ENODEV;
	pthread_mutex_unlock(&prev_lock);
	dm_obj_put(o);
	return fd;
}

static void prev_close(int fd, const char *path)
{
	close(fd);
	if (path[0])
		unlink(path);
}

/* Keeps fd (named path, or "") as o's previous metadata, replacing the one
 * before. */
static void prev_keep(struct ctx *c, int fd, const char *path)
{
	struct ctx obj;
	ctx_up(c, 1, &obj);
	struct dm_obj *o = dm_ctx_obj(&obj);
	if (!o) {
		prev_close(fd, path);
		return;
	}
	pthread_mutex_lock(&prev_lock);
	static bool registered;
	if (!registered)
		registered = atexit(prev_exit) == 0;
	struct prev **pp = prev_find(o);
	struct prev *e = pp ? *pp : calloc(1, sizeof(*e));
	if (!e) {
		prev_close(fd, path);
	} else {
		if (pp) {
			prev_close(e->fd, e->path);
		} else {
			e->o = o;
			e->next = prevs;
			prevs = e;
			o = NULL; /* the entry keeps the reference */
		}
		e->fd = fd;
		snprintf(e->path, sizeof(e->path), "%s", path);
	}
	pthread_mutex_unlock(&prev_lock);
	if (o)
		dm_obj_put(o);
}

int metadata_previous_block(struct ctx *c, struct blockref *b)
{
	memset(b, 0, sizeof(*b));
	int fd = prev_fd(c);
	if (fd < 0)
		return fd;
	snprintf(b->devpath, sizeof(b->devpath), "/proc/self/fd/%d", fd);
	/* Its size (stat) is the metadata device's: the copy is as large. */
	struct meta_source m;
	struct stat st;
	if (meta_owner_source(c, 1, &m, true, NULL) == 0 && stat(m.devpath, &st) == 0)
		b->dev = st.st_rdev;
	b->read_only = true;
	b->data_allowed = true;
	return 0;
}

static bool has_previous(struct ctx *c)
{
	return prev_fd(c) >= 0;
}

static int store_repair(struct ctx *c, const char *value)
{
	struct meta_source m;
	int r = check_one(c, value);
	if (r || (r = inactive_source(c, &m)) != 0)
		return r;
	/* An unnamed file; where the file system has no O_TMPFILE (9p) a named
	 * one, kept while it is the previous metadata. */
	char path[PATH_MAX] = "";
	int fd = open(opts.state_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(path, sizeof(path), "%s/.metadata-previous-XXXXXX", opts.state_dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0)
			return why_set(c->why, -errno, "cannot make a file in %s: %s", opts.state_dir, strerror(errno));
	}
	struct kmeta_wreq q = { .kind = m.kind, .op = KMETA_REPAIR, .devpath = m.devpath, .prev_fd = fd };
	r = run_write(c, &q);
	if (r)
		prev_close(fd, path);
	else
		prev_keep(c, fd, path);
	return r;
}

/* ---- trim (thin pools) ---- */

static int store_trim(struct ctx *c, const char *value)
{
	struct meta_source m;
	struct geometry g;
	dev_t dev;
	int r = check_one(c, value);
	if (r || (r = inactive_source(c, &m)) != 0)
		return r;
	/* The C++ tools' thin_trim starts each discard one block early: it
	 * destroys the last mapped block before every free range (0.9.0 on a
	 * pool mapping blocks 0-31 discards from block 31). */
	const char *v = ksys_thin_tools_version();
	if (strncmp(v, "0.", 2) == 0)
		return why_set(c->why, -EOPNOTSUPP,
			       "thin_trim %s discards a mapped block before each free range: trim needs "
			       "thin-provisioning-tools 1.0 or later",
			       v);
	if ((r = geometry(c, &g)) != 0 ||
	    (r = param_dev(c, &g, 1, "data device", &dev)) != 0)
		return r;
	char kname[64], data[64];
	dm_kernel_name(dev, kname, sizeof(kname));
	if ((r = kblk_devpath(dev, kname, data, sizeof(data))) != 0)
		return why_set(c->why, r, "no device node for the data device %u:%u", major(dev), minor(dev));
	struct kmeta_wreq q = { .kind = m.kind, .op = KMETA_TRIM, .devpath = m.devpath, .data_path = data, .prev_fd = -1 };
	return run_write(c, &q);
}

const struct file_def metadata_write_files[] = {
	{ .name = "size", .perm = 0444, .show = show_size, .visible = has_size },
	{ .name = "restore", .perm = 0200, .store = store_restore, .check = check_restore },
	{ .name = "repair", .perm = 0200, .store = store_repair },
	{ .name = "previous", .perm = 0444, .type = FT_DATA, .visible = has_previous },
	{ .name = "trim", .perm = 0200, .store = store_trim, .visible = thin_only },
	{ NULL },
};
