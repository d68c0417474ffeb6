/* What the files of dm/ share: the dm object, its lookup and lock helpers,
 * and the show/store functions that dm.c's file table (dm_files[]) names.
 * Private to src/tree/dm*.c.
 *
 *   dm.c         the object: registry, state, start-up, mkdir/rmdir/rename,
 *                references from other kinds, the file table and dir kinds
 *   dm_ctl.c     settings and switches: uuid, read_only, active, suspended,
 *                message, geometry, clear
 *   dm_table.c   the table: staged or live, device references, reload, and
 *                the metadata device its first line names
 *   dm_read.c    what the kernel says: status, info, deps, size, wait, and
 *                the event counter behind poll(2) */
#ifndef STSFS_TREE_DM_H
#define STSFS_TREE_DM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stsfs/dm_ref.h"
#include "stsfs/kernel.h"
#include "stsfs/tree.h"

#include "owned.h"
#include "registry.h"

#define DM_NAME_MAX 127
#define DM_UUID_MAX 128
_Static_assert(DM_NAME_MAX <= OBJ_NAME_MAX, "dm names fit struct obj");

struct dm_obj {
	struct obj obj;    /* first: the registry's part */
	char *table;       /* staged table as written, normalised; "" = none */
	char uuid[DM_UUID_MAX + 1];
	bool read_only;
	char *response;    /* last message response */
	/* While a rename is under way: the old name, in the new record, so
	 * that a daemon killed between the record and the kernel's rename
	 * finishes it at start-up. */
	char renamed_from[DM_NAME_MAX + 1];
};

/* ---- the object (dm.c) ---- */

/* Owned dm objects; the error slots of the kernel's other dm devices. */
extern struct registry dm_registry;
/* mkdir's checks under the registry lock: the name is free, the record saved. */
int dm_admit_locked(struct obj *o, char *why);
int dm_name_free_locked(const char *name, char *why);

/* The dm object a request's ctx names (owned or external), or NULL: the
 * nearest kind with a dm_name says which. Release with dm_obj_put. */
struct dm_obj *dm_ctx_obj(struct ctx *c);
void dm_obj_put(struct dm_obj *o);
/* True when an owned object is called name. */
bool dm_owns_name(const char *name);
/* True (and *info filled) while the kernel device exists. */
bool dm_is_active(const struct dm_obj *o, struct kdm_info *info);
/* Removes the device (-EBUSY while open) and forgets an owned object.
 * Caller holds o->obj.lock. */
int dm_remove_locked(struct dm_obj *o, char *why);
/* Renames the object, its device and its record. Caller holds o->obj.lock
 * and the registry lock. */
int dm_rename_locked(struct dm_obj *o, const char *newname, char *why);
/* Records an owned object's configuration (external ones have none). */
int dm_save(struct dm_obj *o, char *why);
/* Runs change (a kernel change making the device active or not) between
 * writing the record aside and putting it in place: nothing changes when
 * the record cannot be saved. */
int dm_change(struct dm_obj *o, bool active, int (*change)(struct dm_obj *o, char *why), char *why);

/* Reasons shared by the files: -ENODEV while inactive, -EBUSY for a
 * setting that is fixed while active. */
int dm_not_active(const struct dm_obj *o, char *why);
int dm_frozen(const struct dm_obj *o, const char *attr, char *why);

/* The show and store functions below run under o->obj.lock (dm.c's
 * wrappers take it); why is the request's reason. */

/* ---- settings and switches (dm_ctl.c) ---- */

int dm_show_uuid(struct dm_obj *o, char **out, char *why);
int dm_store_uuid(struct dm_obj *o, const char *value, char *why);
int dm_show_read_only(struct dm_obj *o, char **out, char *why);
int dm_store_read_only(struct dm_obj *o, const char *value, char *why);
int dm_show_active(struct dm_obj *o, char **out, char *why);
int dm_store_active(struct dm_obj *o, const char *value, char *why);
int dm_show_suspended(struct dm_obj *o, char **out, char *why);
int dm_store_suspended(struct dm_obj *o, const char *value, char *why);
int dm_show_message(struct dm_obj *o, char **out, char *why);
int dm_store_message(struct dm_obj *o, const char *value, char *why);
int dm_show_geometry(struct dm_obj *o, char **out, char *why);
int dm_store_geometry(struct dm_obj *o, const char *value, char *why);
int dm_store_clear(struct dm_obj *o, const char *value, char *why);

/* ---- the table (dm_table.c) ---- */

int dm_show_table(struct dm_obj *o, char **out, char *why);
int dm_store_table(struct dm_obj *o, const char *value, char *why);
int dm_check_table(struct dm_obj *o, const char *value, char *why);
/* The live table (status false) or status lines of an active device, as
 * "START LENGTH TARGET PARAMS" lines. */
int dm_show_live(const struct dm_obj *o, bool status, char **out, char *why);
/* A table's text, split and with device references translated. */
int dm_load_table(const char *text, struct dm_lines *l, char *why);

/* ---- what the kernel says (dm_read.c) ---- */

int dm_show_status_raw(struct dm_obj *o, char **out, char *why);
int dm_kv_status(struct ctx *c, struct kv_doc *doc);
int dm_kv_info(struct ctx *c, struct kv_doc *doc);
int dm_show_deps(struct dm_obj *o, char **out, char *why);
int dm_show_size(struct dm_obj *o, char **out, char *why);
/* `wait`: the event counter once the tree's wait for the next event ended. */
int dm_show_wait(struct dm_obj *o, char **out, char *why);

#endif
