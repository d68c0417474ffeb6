/* The objects of one kind (loop/, dm/): those stsfs made with mkdir (owned,
 * kept until rmdir) and, for one request at a time, transient objects that
 * describe kernel devices stsfs did not make (external). Tree layer: no
 * FUSE types.
 *
 * Locking: an object's lock is taken before the registry lock, never the
 * other way round. The registry lock guards the owned list, every object's
 * refs and next, the names of owned objects and the external error slots. */
#ifndef STSFS_TREE_REGISTRY_H
#define STSFS_TREE_REGISTRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "stsfs/tree.h"

/* The longest name any kind allows (dm/'s); each kind checks its own. */
#define OBJ_NAME_MAX 127
/* "thin/POOL/VOL" */
#define OBJ_OWNER_MAX 136

/* The first member of every kind's object, so that a struct obj * from the
 * registry converts back to the kind's object with a cast. */
struct obj {
	char name[OBJ_NAME_MAX + 1];
	pthread_mutex_t lock;  /* the kind's fields */
	unsigned refs;         /* registry lock */
	bool external;         /* a kernel device stsfs did not make */
	/* --tenancy uid --reap: removed when its tenant has no process left
	 * (tenancy.h); saved with the owner. */
	bool ephemeral;
	/* The object that made this one and drives it ("thin/POOL"), or "":
	 * users change it only through its owner. */
	char owner[OBJ_OWNER_MAX];
	struct errslot err;
	struct obj *next;      /* owned list; registry lock */
	struct obj *next_hash; /* name index; registry lock */
};

/* Buckets of a registry's name index: lookups stay constant up to tens of
 * thousands of objects. */
#define REG_BUCKETS 4096

struct ext_err;

struct registry {
	pthread_mutex_t lock;
	struct obj *owned;
	struct obj *by_name[REG_BUCKETS];
	/* Error slots of external devices: they outlive the transient objects,
	 * so that `error` still explains a failed write after it. */
	struct ext_err *ext_errors;
	struct errslot dir_error;  /* the kind directory's own `error` */
	size_t obj_size;           /* sizeof the kind's object */
	/* Sets the kind's fields of a new object; an error discards it. */
	int (*init)(struct obj *o);
	/* Frees what the kind's object holds beyond itself; may be NULL. */
	void (*release)(struct obj *o);
	/* A transient object (external set) for the kernel device called name,
	 * or NULL. Called without the registry lock, which it may take. */
	struct obj *(*external)(const char *name);
	/* The name of an owned object's kernel device ("" for none), under the
	 * registry lock: listings show that device once, as the object. */
	void (*device_name)(const struct obj *o, char *buf, size_t len);
	/* Names of the kernel's devices of this kind; free with names_free. */
	int (*list_devices)(char ***names, size_t *n);
	/* Records an owned object (its owner included). */
	int (*save)(struct obj *o, char *why);
};

/* A new object with one reference (the caller's), not yet in the registry. */
struct obj *reg_new(struct registry *reg, const char *name);
/* Frees an object nobody refers to any more. */
void reg_discard(struct registry *reg, struct obj *o);

/* External devices change only with --manage-external (-EPERM otherwise);
 * objects another object owns only through their owner (-EBUSY). */
int obj_may_change(const struct obj *o, char *why);
/* Adds the owner and the ephemeral mark to a saved record (nothing for
 * none); reg_load reads them back. */
int reg_save_owner(const struct obj *o, struct kv_block *b);

/* obj_may_change of the object called name (0 when there is none): for
 * dir_kind.refuses. */
int reg_refuses(struct registry *reg, const char *name, char *why);

/* The object a request names: the owned one, else a transient external
 * one; NULL when there is neither. Release with reg_put. */
struct obj *reg_get(struct registry *reg, const char *name);
/* Only an owned object (for references between kinds), or NULL. */
struct obj *reg_get_owned(struct registry *reg, const char *name);
void reg_put(struct registry *reg, struct obj *o);
/* True when reg_get would find an object. */
bool reg_exists(struct registry *reg, const char *name);
/* True when an owned object is called name. */
bool reg_owns(struct registry *reg, const char *name);

void reg_lock(struct registry *reg);
void reg_unlock(struct registry *reg);
struct obj *reg_find_locked(struct registry *reg, const char *name);
/* An owned object takes a new name (rename, and its undo). Caller holds the
 * registry lock. */
void reg_rename_locked(struct registry *reg, struct obj *o, const char *newname);

/* Start-up: an owned object for each one saved under state kind `kind`
 * (also the word for it in messages) with a valid name of at most name_max
 * bytes; fill sets the kind's fields from the saved values, and an error
 * drops that object. Only a state directory that cannot be read fails. */
int reg_load(struct registry *reg, const char *kind, size_t name_max,
	     int (*fill)(struct obj *o, const struct kv_block *b), char *why);
/* mkdir: a new object called name (owned by owner, NULL for none) joins the
 * registry when admit_locked (name free? state saved?) returns 0, under the
 * registry lock so that two mkdirs of one name cannot both succeed;
 * otherwise it is discarded. */
int reg_mkdir(struct registry *reg, const char *name, const char *owner,
	      int (*admit_locked)(struct obj *o, char *why), char *why);
/* rmdir: unlinks an owned object and drops the registry's reference; the
 * caller's reg_put then frees it. Caller holds o->lock. */
void reg_forget(struct registry *reg, struct obj *o);

/* Renames o (caller holds o->lock) with rename_locked (the kind's rename,
 * under the registry lock), o taking owner as its new owner. */
int reg_rename_owned(struct registry *reg, struct obj *o, const char *newname, const char *owner,
		     int (*rename_locked)(struct obj *o, const char *newname, char *why), char *why);
/* Start-up: owned objects whose owner is not alive become the user's. */
void reg_release_orphans(struct registry *reg, const char *kind, bool (*alive)(const char *owner));

/* The error slot for object name: an owned object's own; else the slot of
 * the external device ext_key (the kind's canonical name for it, kept for
 * good); with ext_key NULL, the directory's. */
struct errslot *reg_errslot(struct registry *reg, const char *name, const char *ext_key);

/* The kind directory's listing: owned objects, then the kernel's devices
 * that are not an owned object's. */
int reg_list(struct registry *reg, int (*emit)(void *arg, const char *name), void *arg);

/* Calls cb for every owned object, under the registry lock (cb must not
 * take it). */
void reg_each(struct registry *reg, void (*cb)(const struct obj *o, void *arg), void *arg);

/* Frees an array of n malloc'd names. */
void names_free(char **names, size_t n);

/* True when the kernel device of an owned object is dev: is_dev tells,
 * without the registry lock, for each device name that is not "". */
bool reg_owns_dev(struct registry *reg, dev_t dev, bool (*is_dev)(const char *devname, dev_t dev));

/* The kind directory's files: `error`, of dir_error (see dir_kind.errslot). */
extern const struct file_def reg_dir_files[];

#endif
