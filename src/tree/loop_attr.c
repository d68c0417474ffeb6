/* The attribute files of loop/NAME: configuration (backing_file, size,
 * offset, sizelimit, sector_size, the flags), active, name and status. */
#include "loop.h"
#include "stsfs/tenancy.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/loop.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stsfs/log.h"
#include "stsfs/value.h"

/* ---- attribute helpers ---- */

typedef int (*loop_store_fn)(struct loop_obj *lo, const char *value, char *why);
typedef int (*loop_show_fn)(struct loop_obj *lo, char **out);

/* Runs fn on the object named by c, under its lock. */
static int with_store(struct ctx *c, const char *value, loop_store_fn fn)
{
	struct loop_obj *lo = loop_ctx_obj(c);
	if (!lo)
		return why_set(c->why, -ENOENT, "no loop object %s", c->comp[1]);
	pthread_mutex_lock(&lo->obj.lock);
	int r = obj_may_change(&lo->obj, c->why);
	if (!r && !lo->obj.external)
		loop_refresh(lo, NULL);
	r = r ? r : fn(lo, value, c->why);
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

/* The kernel's state of the device a read renders: queried once per read
 * (with_show), not once more per field. */
static __thread const struct kloop_state *seen;

/* The device's state now, or NULL while it is not bound. */
static const struct kloop_state *query(const struct loop_obj *lo, struct kloop_state *buf)
{
	if (lo->nr < 0)
		return NULL;
	if (seen && seen->nr == lo->nr)
		return seen;
	return kloop_query(lo->nr, buf) == 0 ? buf : NULL;
}

static int with_show(struct ctx *c, char **out, loop_show_fn fn)
{
	struct loop_obj *lo = loop_ctx_obj(c);
	if (!lo)
		return -ENOENT;
	pthread_mutex_lock(&lo->obj.lock);
	struct kloop_state st;
	bool live = lo->obj.external ? kloop_query(lo->nr, &st) == 0 : loop_refresh(lo, &st);
	seen = live ? &st : NULL;
	int r = fn(lo, out);
	seen = NULL;
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
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
	return show_text(out, "%s\n", loop_backing_shown(lo));
}

static int store_backing(struct loop_obj *lo, const char *value, char *why)
{
	if (is_active(lo))
		return frozen(lo, "backing_file", why);
	if (lo->image_made)
		return why_set(why, -EBUSY, "%s owns an image; rmdir and mkdir again to use a backing file", lo->obj.name);
	return loop_backing_store(lo, value, why);
}

/* ---- size ---- */

static uint64_t backing_bytes(const struct loop_obj *lo)
{
	struct stat st;
	if (loop_backing_stat(lo, &st) < 0 || (uint64_t)st.st_size <= lo->offset)
		return 0;
	uint64_t avail = (uint64_t)st.st_size - lo->offset;
	return lo->sizelimit && lo->sizelimit < avail ? lo->sizelimit : avail;
}

static int show_size(struct loop_obj *lo, char **out)
{
	struct kloop_state buf;
	const struct kloop_state *st = query(lo, &buf);
	uint64_t size = lo->size;
	if (st)
		size = st->size_bytes;
	else if (lo->backing[0])
		size = backing_bytes(lo);
	return show_text(out, "%" PRIu64 "\n", size);
}

/* lo->size is the new size (loop_change). */
static int apply_grow_owned(struct loop_obj *lo, const void *arg, char *why)
{
	uint64_t size = lo->size;
	char path[PATH_MAX];
	loop_image_path(lo, path, sizeof(path));
	if (truncate(path, (off_t)size) < 0)
		return loop_sizing_failed(path, size, errno, why);
	if (lo->sizelimit)
		return kloop_set_offset_limit(lo->nr, lo->offset, size, why);
	return kloop_set_capacity(lo->nr, why);
}

/* External backing file: the user grows the file; size makes the kernel follow. */
static int grow_backed(struct loop_obj *lo, uint64_t size, char *why)
{
	struct stat st;
	if (loop_backing_stat(lo, &st) < 0)
		return why_set(why, -errno, "%s: %s", loop_backing_shown(lo), strerror(errno));
	if ((uint64_t)st.st_size < lo->offset + size)
		return why_set(why, -EINVAL, "%s has only %" PRIu64 " bytes after the offset; grow the file first",
			       loop_backing_shown(lo), (uint64_t)st.st_size > lo->offset ? (uint64_t)st.st_size - lo->offset : 0);
	if (lo->sizelimit)
		return kloop_set_offset_limit(lo->nr, lo->offset, size, why);
	return kloop_set_capacity(lo->nr, why);
}

static int store_size(struct loop_obj *lo, const char *value, char *why)
{
	uint64_t size;
	int r = value_parse_size(value, &size, why, STSFS_WHY_LEN);
	if (!r && !lo->backing[0] && !lo->obj.owner[0])
		r = tenant_quota_bytes(lo->obj.name, lo->size, size, why);
	return r ? r : loop_set_size(lo, size, why);
}

int loop_set_size(struct loop_obj *lo, uint64_t size, char *why)
{
	int r;
	if (size == 0 || size % 512)
		return why_set(why, -EINVAL, "size must be a positive multiple of 512 bytes, not %" PRIu64, size);
	struct kloop_state st;
	if (loop_refresh(lo, &st)) {
		if (size < st.size_bytes)
			return why_set(why, -EINVAL, "shrinking an active device (%" PRIu64 " to %" PRIu64 " bytes) is refused",
				       st.size_bytes, size);
		if (size == st.size_bytes)
			return 0;
		if (lo->backing[0]) { /* the size is the file's: no record changes */
			r = grow_backed(lo, size, why);
		} else {
			uint64_t old = lo->size;
			lo->size = size;
			r = loop_change(lo, apply_grow_owned, NULL, why);
			if (r)
				lo->size = old;
		}
		char from[32], to[32];
		if (!r)
			log_msg(L_INFO, "loop/%s: resized from %s to %s (/dev/loop%d)", lo->obj.name,
				log_bytes(st.size_bytes, from), log_bytes(size, to), lo->nr);
		return r;
	}
	if (lo->backing[0])
		return why_set(why, -EINVAL, "size follows backing_file %s (use sizelimit to use less of it)", loop_backing_shown(lo));
	if (lo->image_made && size < lo->size)
		return why_set(why, -EINVAL, "the image already holds %" PRIu64 " bytes; shrinking it is refused", lo->size);
	uint64_t old = lo->size;
	lo->size = size;
	r = loop_save(lo, why);
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
	struct kloop_state buf;
	const struct kloop_state *st = query(lo, &buf);
	uint32_t v = lo->sector_size ? lo->sector_size : 512;
	if (st)
		v = st->sector_size;
	return show_text(out, "%u\n", v);
}

static int apply_offset_limit(struct loop_obj *lo, const void *arg, char *why)
{
	return kloop_set_offset_limit(lo->nr, lo->offset, lo->sizelimit, why);
}

static int set_offset_limit(struct loop_obj *lo, uint64_t offset, uint64_t limit, char *why)
{
	uint64_t o = lo->offset, l = lo->sizelimit;
	lo->offset = offset;
	lo->sizelimit = limit;
	int r = loop_change(lo, is_active(lo) ? apply_offset_limit : NULL, NULL, why);
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

static int apply_sector_size(struct loop_obj *lo, const void *arg, char *why)
{
	return kloop_set_sector_size(lo->nr, lo->sector_size, why);
}

static int store_sector_size(struct loop_obj *lo, const char *value, char *why)
{
	uint64_t v;
	int r = value_parse_size(value, &v, why, STSFS_WHY_LEN);
	r = r ? r : value_check_sector_size(v, why, STSFS_WHY_LEN);
	if (r)
		return r;
	uint32_t old = lo->sector_size;
	lo->sector_size = (uint32_t)v;
	r = loop_change(lo, is_active(lo) ? apply_sector_size : NULL, NULL, why);
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

/* The flag's field holds the new value (loop_change). */
static int apply_flag(struct loop_obj *lo, const void *fa, char *why)
{
	return set_kernel_flag(lo, fa, *flag_field(lo, fa), why);
}

/* Whether the kernel's device must change for the flag to be on. */
static bool kernel_differs(const struct loop_obj *lo, const struct flag_attr *fa, bool on)
{
	struct kloop_state st;
	return is_active(lo) && !(kloop_query(lo->nr, &st) == 0 && kernel_flag(&st, fa) == on);
}

static int store_flag(struct loop_obj *lo, const struct flag_attr *fa, const char *value, char *why)
{
	bool on;
	int r = value_parse_bool(value, &on, why, STSFS_WHY_LEN);
	if (r)
		return r;
	bool apply = kernel_differs(lo, fa, on);
	if (apply && fa->frozen_active)
		return frozen(lo, fa->name, why);
	bool *field = flag_field(lo, fa);
	bool old = *field;
	*field = on;
	r = loop_change(lo, apply ? apply_flag : NULL, fa, why);
	if (r)
		*field = old;
	return r;
}

static int show_flag(struct loop_obj *lo, const struct flag_attr *fa, char **out)
{
	struct kloop_state buf;
	const struct kloop_state *st = query(lo, &buf);
	bool v = *flag_field(lo, fa);
	if (st)
		v = kernel_flag(st, fa);
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
	if (lo->obj.external) {
		r = on ? 0 : loop_detach_settled(lo->nr, why);
		if (!on && !r)
			log_msg(L_INFO, "loop/%s: deactivated (stsfs did not make it)", lo->obj.name);
		return r;
	}
	return on ? loop_attach(lo, why) : loop_detach(lo, why);
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
	/* The kernel's view is the daemon's; the writer's path is the one it
	 * wrote (docs/loop.md, "backing_file"). */
	if (lo->backing[0])
		r = r ? r : kv_add_str(b, "back_file_writer", loop_backing_shown(lo));
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
	struct loop_obj *lo = loop_ctx_obj(c);
	if (!lo)
		return -ENOENT;
	struct kv_block *b = kv_doc_add_block(doc);
	int r = -ENOMEM;
	if (b) {
		pthread_mutex_lock(&lo->obj.lock);
		if (!lo->obj.external)
			loop_refresh(lo, NULL);
		r = status_block(lo, b);
		pthread_mutex_unlock(&lo->obj.lock);
	}
	loop_obj_put(lo);
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
const struct file_def loop_files[] = {
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
	TENANCY_FILES,
	{ .name = "name", .perm = 0444, .show = c_show_name },
	{ .name = "status", .perm = 0444, .kv = kv_status },
	{ .name = "error", .perm = 0444, .show = show_error_file },
	{ NULL },
};
#undef RW
