/* dm/: device-mapper objects made with mkdir (name = dm device name), and
 * the kernel's other dm devices listed read-only. The kernel is the source
 * of truth for whether an object is active: the device NAME exists.
 *
 * This file is the object itself: the registry, its saved state and
 * start-up, mkdir/rmdir/rename, references from other kinds, and the one
 * file table (dm_files[]) whose functions live in dm_ctl.c, dm_table.c and
 * dm_read.c (see dm.h). */
#include "dm.h"
#include "stsfs/tenancy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "stsfs/log.h"
#include "stsfs/state.h"
#include "stsfs/value.h"

#define STATE_KIND "dm"

static int obj_init(struct obj *o);
static void obj_release(struct obj *o);
static struct obj *external_get(const char *name);
static void device_name(const struct obj *o, char *buf, size_t len);
static int list_devices(char ***names, size_t *n);
static int save_obj(struct obj *o, char *why);

struct registry dm_registry = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.dir_error = ERRSLOT_INIT,
	.obj_size = sizeof(struct dm_obj),
	.init = obj_init,
	.release = obj_release,
	.external = external_get,
	.device_name = device_name,
	.list_devices = list_devices,
	.save = save_obj,
};

/* ---- registry ---- */

static struct dm_obj *dm_of(struct obj *o)
{
	return (struct dm_obj *)o;
}

static int obj_init(struct obj *o)
{
	return (dm_of(o)->table = strdup("")) ? 0 : -ENOMEM;
}

static void obj_release(struct obj *o)
{
	free(dm_of(o)->table);
	free(dm_of(o)->response);
}

static struct obj *external_get(const char *name)
{
	struct kdm_info info;
	if (strlen(name) > DM_NAME_MAX || kdm_info(name, &info, NULL) != 0 || !info.exists)
		return NULL;
	struct dm_obj *o = dm_of(reg_new(&dm_registry, name));
	if (o) {
		o->obj.external = true;
		o->read_only = info.read_only;
		snprintf(o->uuid, sizeof(o->uuid), "%s", info.uuid);
	}
	return o ? &o->obj : NULL;
}

/* An owned object's dm device has the object's name. */
static void device_name(const struct obj *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s", o->name);
}

static int list_devices(char ***names, size_t *n)
{
	/* Without device-mapper there are simply no kernel devices. */
	if (kdm_list(names, n, NULL) != 0) {
		names_free(*names, *n);
		*names = NULL;
		*n = 0;
	}
	return 0;
}

static struct dm_obj *obj_get(const char *name)
{
	return dm_of(reg_get(&dm_registry, name));
}

void dm_obj_put(struct dm_obj *o)
{
	reg_put(&dm_registry, &o->obj);
}

struct dm_obj *dm_ctx_obj(struct ctx *c)
{
	char name[DM_NAME_MAX + 1];
	for (int up = 0; up < c->depth; up++) {
		struct ctx k;
		ctx_up(c, up, &k);
		if (k.kind->dm_name)
			return k.kind->dm_name(&k, name, sizeof(name)) == 0 ? obj_get(name) : NULL;
	}
	return NULL;
}

bool dm_is_active(const struct dm_obj *o, struct kdm_info *info)
{
	struct kdm_info tmp;
	info = info ? info : &tmp;
	return kdm_info(o->obj.name, info, NULL) == 0 && info->exists;
}

/* ---- state: the saved configuration, read back at start-up ---- */

static int add_table_lines(struct kv_block *b, const char *table)
{
	int r = 0, n = 0;
	const char *p = table;
	while (!r && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char key[32];
		snprintf(key, sizeof(key), "table%d", ++n);
		r = kv_add_strn(b, key, p, len);
		p += len + (nl ? 1 : 0);
	}
	return r;
}

/* o's record, saying active as given; written aside (prepare_only, for
 * dm_prepare) or in place. */
static int record_write(struct dm_obj *o, bool active, bool prepare_only, char *why)
{
	if (o->obj.external)
		return 0;
	struct kv_block b = { 0 };
	int r = kv_add_str(&b, "uuid", o->uuid);
	r = r ? r : reg_save_owner(&o->obj, &b);
	r = r ? r : kv_add_bool(&b, "read_only", o->read_only);
	r = r ? r : kv_add_bool(&b, "active", active);
	r = r ? r : add_table_lines(&b, o->table);
	if (o->renamed_from[0])
		r = r ? r : kv_add_str(&b, "renamed_from", o->renamed_from);
	if (r)
		r = why_set(why, r, "out of memory saving state");
	else if (prepare_only)
		r = state_prepare(STATE_KIND, o->obj.name, &b, why);
	else
		r = state_save(STATE_KIND, o->obj.name, &b, why);
	kv_block_free(&b);
	return r;
}

int dm_save(struct dm_obj *o, char *why)
{
	return record_write(o, dm_is_active(o, NULL), false, why);
}

/* A change of the kernel's device (create, remove): the record as it will
 * be is written aside first, so that a full or read-only state directory
 * refuses the change before the kernel has it; change runs, and the record
 * is put in place (a rename, which needs no room) or dropped. */
int dm_change(struct dm_obj *o, bool active, int (*change)(struct dm_obj *o, char *why), char *why)
{
	int r = record_write(o, active, true, why);
	if (r)
		return r;
	r = change(o, why);
	if (o->obj.external)
		return r;
	if (r) {
		state_abort(STATE_KIND, o->obj.name);
		return r;
	}
	return state_commit(STATE_KIND, o->obj.name, why);
}

static char *table_from_state(const struct kv_block *b)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	for (int i = 1;; i++) {
		char key[32];
		snprintf(key, sizeof(key), "table%d", i);
		const struct kv *e = kv_get(b, key);
		if (!e || !e->str)
			break;
		fprintf(f, "%s\n", e->str);
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int load_fields(struct obj *obj, const struct kv_block *b)
{
	struct dm_obj *o = dm_of(obj);
	char *table = table_from_state(b);
	if (!table)
		return -ENOMEM;
	free(o->table);
	o->table = table;
	const struct kv *u = kv_get(b, "uuid");
	snprintf(o->uuid, sizeof(o->uuid), "%s", u && u->str ? u->str : "");
	const struct kv *ro = kv_get(b, "read_only");
	o->read_only = ro && ro->str && strcmp(ro->str, "1") == 0;
	const struct kv *from = kv_get(b, "renamed_from");
	snprintf(o->renamed_from, sizeof(o->renamed_from), "%s", from && from->str ? from->str : "");
	return 0;
}

/* A rename a killed worker left half-done: the new record names the old
 * one. The kernel's device takes the new name if it still has the old,
 * and the old record goes. */
static void finish_rename(struct dm_obj *o)
{
	struct kdm_info old_dev, new_dev;
	bool has_old = kdm_info(o->renamed_from, &old_dev, NULL) == 0 && old_dev.exists;
	bool has_new = kdm_info(o->obj.name, &new_dev, NULL) == 0 && new_dev.exists;
	if (has_old && !has_new)
		kdm_rename(o->renamed_from, o->obj.name, NULL);
	struct obj *old = reg_get_owned(&dm_registry, o->renamed_from);
	if (old) {
		state_delete(STATE_KIND, o->renamed_from);
		reg_forget(&dm_registry, old);
		reg_put(&dm_registry, old);
	}
	log_msg(L_INFO, "dm/%s: renamed to dm/%s (finishing a rename the last worker was stopped in)",
		o->renamed_from, o->obj.name);
	o->renamed_from[0] = '\0';
	dm_save(o, NULL);
}

static void finish_renames(void)
{
	for (;;) {
		struct obj *o = dm_registry.owned;
		while (o && !dm_of(o)->renamed_from[0])
			o = o->next;
		if (!o)
			return;
		finish_rename(dm_of(o));
	}
}

/* Saved objects return to the registry as configured; whether one is active
 * is never read back: the kernel says so (its dm device exists). */
int dm_startup(char *why)
{
	int r = reg_load(&dm_registry, STATE_KIND, DM_NAME_MAX, load_fields, why);
	if (!r)
		finish_renames();
	/* Start-up is single-threaded: nothing else walks the list yet. */
	for (struct obj *o = dm_registry.owned; !r && o; o = o->next) {
		struct kdm_info info;
		if (dm_is_active(dm_of(o), &info))
			log_msg(L_INFO, "dm/%s: adopted /dev/mapper/%s (%u:%u)", o->name, o->name, major(info.dev),
				minor(info.dev));
		else
			log_msg(L_DEBUG, "dm/%s: loaded, inactive", o->name);
	}
	return r;
}

/* ---- references from other kinds and from tables ---- */

static bool device_is(const char *devname, dev_t dev)
{
	struct kdm_info info;
	return kdm_info(devname, &info, NULL) == 0 && info.exists && info.dev == dev;
}

bool dm_owns_dev(dev_t dev)
{
	return reg_owns_dev(&dm_registry, dev, device_is);
}

int dm_object_dev(const char *name, dev_t *dev, char *why)
{
	struct kdm_info info;
	int r = kdm_info(name, &info, why);
	if (r)
		return r;
	if (!info.exists)
		return why_set(why, -ENOENT, "dm/%s is not active", name);
	*dev = info.dev;
	return 0;
}

bool dm_owns_name(const char *name)
{
	return reg_owns(&dm_registry, name);
}

/* ---- reasons and locking for the file table ---- */

int dm_not_active(const struct dm_obj *o, char *why)
{
	return why_set(why, -ENODEV, "dm/%s is not active (echo 1 > active first)", o->obj.name);
}

int dm_frozen(const struct dm_obj *o, const char *attr, char *why)
{
	return why_set(why, -EBUSY, "%s cannot change while dm/%s is active (echo 0 > active first)", attr, o->obj.name);
}

typedef int (*dm_store_fn)(struct dm_obj *o, const char *value, char *why);
typedef int (*dm_show_fn)(struct dm_obj *o, char **out, char *why);

/* A write holds the object for the whole change, and an external device
 * changes only with --manage-external. */
static int with_store(struct ctx *c, const char *value, dm_store_fn fn)
{
	struct dm_obj *o = dm_ctx_obj(c);
	if (!o)
		return why_set(c->why, -ENOENT, "no dm object %s", c->comp[1]);
	pthread_mutex_lock(&o->obj.lock);
	int r = obj_may_change(&o->obj, c->why);
	r = r ? r : fn(o, value, c->why);
	pthread_mutex_unlock(&o->obj.lock);
	dm_obj_put(o);
	return r;
}

/* A read holds the object too, so that it renders one consistent state. */
static int with_show(struct ctx *c, char **out, dm_show_fn fn)
{
	struct dm_obj *o = dm_ctx_obj(c);
	if (!o)
		return -ENOENT;
	pthread_mutex_lock(&o->obj.lock);
	int r = fn(o, out, c->why);
	pthread_mutex_unlock(&o->obj.lock);
	dm_obj_put(o);
	return r;
}

static int c_check_table(struct ctx *c, const char *value)
{
	return with_store(c, value, dm_check_table);
}

/* ---- file table ---- */

/* The table's show/store functions, wrapped to find and lock the object. */
#define DM_SHOW(fname)                                                                         \
	static int c_show_##fname(struct ctx *c, char **out)                                   \
	{                                                                                      \
		return with_show(c, out, dm_show_##fname);                                     \
	}
#define DM_STORE(fname)                                                                        \
	static int c_store_##fname(struct ctx *c, const char *v)                               \
	{                                                                                      \
		return with_store(c, v, dm_store_##fname);                                     \
	}
DM_SHOW(table)
DM_STORE(table)
DM_SHOW(uuid)
DM_STORE(uuid)
DM_SHOW(read_only)
DM_STORE(read_only)
DM_SHOW(active)
DM_STORE(active)
DM_SHOW(suspended)
DM_STORE(suspended)
DM_SHOW(message)
DM_STORE(message)
DM_SHOW(geometry)
DM_STORE(geometry)
DM_STORE(clear)
DM_SHOW(status_raw)
DM_SHOW(deps)
DM_SHOW(size)
DM_SHOW(wait)

#define RW(n, fn) { .name = n, .perm = 0644, .show = c_show_##fn, .store = c_store_##fn }
static const struct file_def dm_files[] = {
	{ .name = "table", .perm = 0644, .show = c_show_table, .store = c_store_table, .check = c_check_table,
	},
	RW("uuid", uuid),
	RW("read_only", read_only),
	RW("active", active),
	TENANCY_FILES,
	RW("suspended", suspended),
	RW("message", message),
	RW("geometry", geometry),
	{ .name = "clear", .perm = 0200, .store = c_store_clear },
	{ .name = "size", .perm = 0444, .show = c_show_size, .visible = block_active },
	{ .name = "error", .perm = 0444, .show = show_error_file },
	{ NULL },
};

const struct file_def dm_state_files[] = {
	{ .name = "status", .perm = 0444, .kv = dm_kv_status, .kv_array = true, .pollable = true },
	{ .name = "status.raw", .perm = 0444, .show = c_show_status_raw, .pollable = true },
	{ .name = "info", .perm = 0444, .kv = dm_kv_info, .pollable = true },
	{ .name = "deps", .perm = 0444, .show = c_show_deps },
	{ .name = "wait", .perm = 0444, .show = c_show_wait, .waits = true },
	{ NULL },
};
#undef RW

/* ---- the object directory ---- */

static int obj_refuses(struct ctx *c, char *why)
{
	return reg_refuses(&dm_registry, c->comp[1], why);
}

static struct errslot *obj_errslot(struct ctx *c)
{
	/* An external device's error slot is kept under its dm name. */
	return reg_errslot(&dm_registry, c->comp[1], c->comp[1]);
}

int dm_block(struct ctx *c, struct blockref *b)
{
	struct dm_obj *o = dm_ctx_obj(c);
	if (!o)
		return -ENOENT;
	struct kdm_info info;
	int r = -ENODEV;
	if (dm_is_active(o, &info)) {
		b->dev = info.dev;
		b->read_only = info.read_only;
		b->data_allowed = !o->obj.external || opts.manage_external;
		char kname[24];
		snprintf(kname, sizeof(kname), "dm-%u", minor(info.dev));
		r = kblk_devpath(info.dev, kname, b->devpath, sizeof(b->devpath));
	}
	dm_obj_put(o);
	return r;
}

int dm_remove_locked(struct dm_obj *o, char *why)
{
	bool was = dm_is_active(o, NULL);
	int r = was ? kdm_remove(o->obj.name, why) : 0;
	if (!r)
		log_msg(L_INFO, "dm/%s: removed%s%s", o->obj.name, was ? " (its device with it)" : "",
			o->obj.external ? " (stsfs did not make it)" : "");
	if (!r && !o->obj.external) {
		state_delete(STATE_KIND, o->obj.name);
		reg_forget(&dm_registry, &o->obj);
	}
	return r;
}

static int obj_remove(struct ctx *c)
{
	struct dm_obj *o = dm_ctx_obj(c);
	if (!o)
		return why_set(c->why, -ENOENT, "no dm object %s", c->comp[1]);
	pthread_mutex_lock(&o->obj.lock);
	int r = obj_may_change(&o->obj, c->why);
	r = r ? r : dm_remove_locked(o, c->why);
	pthread_mutex_unlock(&o->obj.lock);
	dm_obj_put(o);
	return r;
}

int dm_name_free_locked(const char *name, char *why)
{
	struct kdm_info info;
	if (reg_find_locked(&dm_registry, name) || (kdm_info(name, &info, NULL) == 0 && info.exists))
		return why_set(why, -EEXIST, "dm/%s exists", name);
	return 0;
}

/* The new record (naming the old) comes first, then the kernel's rename,
 * then the old record goes: a kill anywhere leaves a record that start-up
 * finishes (finish_rename), never a device no record names. */
int dm_rename_locked(struct dm_obj *o, const char *newname, char *why)
{
	int r = dm_name_free_locked(newname, why);
	bool active = !r && dm_is_active(o, NULL);
	if (!r && o->obj.external) {
		r = active ? kdm_rename(o->obj.name, newname, why) : 0;
		if (!r)
			log_msg(L_INFO, "dm/%s: renamed to dm/%s (stsfs did not make it)", o->obj.name, newname);
	}
	if (r || o->obj.external)
		return r;
	char old[sizeof(o->obj.name)];
	snprintf(old, sizeof(old), "%s", o->obj.name);
	reg_rename_locked(&dm_registry, &o->obj, newname);
	snprintf(o->renamed_from, sizeof(o->renamed_from), "%s", old);
	r = record_write(o, active, false, why);
	if (!r && active && (r = kdm_rename(old, newname, why)) != 0)
		state_delete(STATE_KIND, newname);
	if (r) { /* keep the kernel and the record in step */
		o->renamed_from[0] = '\0';
		reg_rename_locked(&dm_registry, &o->obj, old);
		return r;
	}
	state_delete(STATE_KIND, old);
	o->renamed_from[0] = '\0';
	dm_save(o, NULL); /* without renamed_from; if not, start-up drops it */
	log_msg(L_INFO, "dm/%s: renamed to dm/%s", old, newname);
	return 0;
}

static int obj_rename(struct ctx *c, const char *newname)
{
	int r = value_check_name(newname, DM_NAME_MAX, c->why, sizeof(c->why));
	if (r)
		return r;
	struct dm_obj *o = dm_ctx_obj(c);
	if (!o)
		return why_set(c->why, -ENOENT, "no dm object %s", c->comp[1]);
	pthread_mutex_lock(&o->obj.lock);
	r = obj_may_change(&o->obj, c->why);
	if (!r && strcmp(o->obj.name, newname) != 0) {
		/* The registry lock keeps the new name free until it is taken. */
		reg_lock(&dm_registry);
		r = dm_rename_locked(o, newname, c->why);
		reg_unlock(&dm_registry);
	}
	pthread_mutex_unlock(&o->obj.lock);
	dm_obj_put(o);
	return r;
}

static int obj_dm_name(struct ctx *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s", c->comp[1]);
	return 0;
}

static const struct subdir_def dm_obj_subdirs[] = {
	{ .name = "partitions", .kind = &partitions_kind, .visible = block_active },
	{ .name = "metadata", .kind = &metadata_kind, .visible = has_metadata },
	{ NULL },
};

static const struct dir_kind dm_obj_kind = {
	.name = "dm object",
	.files = { dm_files, dm_state_files, block_files },
	.subdirs = dm_obj_subdirs,
	.remove = obj_remove,
	.rename = obj_rename,
	.refuses = obj_refuses,
	.errslot = obj_errslot,
	.block = dm_block,
	.event_nr = dm_event_nr,
	.event_wait = dm_event_wait,
	.meta_source = dm_meta_source,
	.meta_line = dm_meta_line,
	.dm_name = obj_dm_name,
};

/* ---- dm/ itself ---- */

static int dir_list(struct ctx *c, int (*emit)(void *arg, const char *name), void *arg)
{
	return reg_list(&dm_registry, emit, arg);
}

static const struct dir_kind *dir_child(struct ctx *c, const char *name)
{
	return reg_exists(&dm_registry, name) ? &dm_obj_kind : NULL;
}

int dm_admit_locked(struct obj *o, char *why)
{
	int r = dm_name_free_locked(o->name, why);
	return r ? r : dm_save(dm_of(o), why);
}

static bool dir_kept(struct ctx *c, const char *name)
{
	return reg_owns(&dm_registry, name);
}

static int dir_mkdir(struct ctx *c, const char *name)
{
	int r = value_check_name(name, DM_NAME_MAX, c->why, sizeof(c->why));
	r = r ? r : reg_mkdir(&dm_registry, name, NULL, dm_admit_locked, c->why);
	if (!r)
		log_msg(L_INFO, "dm/%s: created", name);
	return r;
}

static struct errslot *dir_errslot(struct ctx *c)
{
	return &dm_registry.dir_error;
}

const struct dir_kind dm_dir_kind = {
	.name = "dm",
	.files = { reg_dir_files },
	.list = dir_list,
	.child = dir_child,
	.kept = dir_kept,
	.mkdir = dir_mkdir,
	.errslot = dir_errslot,
};

static int save_obj(struct obj *o, char *why)
{
	return dm_save((struct dm_obj *)o, why);
}
