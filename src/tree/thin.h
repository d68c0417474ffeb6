/* thin/: thin pools and their volumes, built on loop/ and dm/ objects the
 * pool owns (owned.h). Private to src/tree/thin*.c.
 *
 *   thin.c       the pool object: registry, saved state, start-up, pools
 *                made elsewhere, mkdir/rmdir, and thin/ itself
 *   thin_pool.c  the pool's files: configuration, activation, growth, and
 *                the pool messages that change its thins
 *   thin_vol.c   volumes: thin/POOL/VOL, their files, mkdir/rmdir/mv
 *
 * Names: pool POOL has the dm device POOL, the loop objects POOL_tdata and
 * POOL_tmeta (unless data_dev / metadata_dev name other devices) and one dm
 * device POOL-VOL per volume. Volumes live in their pool's record and are
 * guarded by the pool's lock. */
#ifndef STSFS_TREE_THIN_H
#define STSFS_TREE_THIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stsfs/tree.h"

#include "owned.h"
#include "registry.h"

#define THIN_NAME_MAX 64
/* A pool's loops are POOL_tdata and POOL_tmeta: loop names are at most 64. */
#define THIN_POOL_NAME_MAX (64 - 6)
#define THIN_DM_NAME_MAX 127
#define THIN_REF_MAX 128
#define THIN_FEATURES_MAX 128
/* The kernel's largest thin device id (24 bits). */
#define THIN_ID_MAX ((1u << 24) - 1)
#define THIN_BLOCK_MIN (64u * 1024)
#define THIN_BLOCK_MAX (1024u * 1024 * 1024)

struct thin_vol {
	char name[THIN_NAME_MAX + 1];
	uint64_t size;                   /* bytes */
	uint32_t thin_id;
	bool created;                    /* its thin exists in the pool */
	/* A change of the pool's metadata under way, saved before the kernel
	 * is asked, so that a daemon killed in between knows at start-up. */
	uint8_t intent;
	char origin[THIN_NAME_MAX + 1];  /* "" unless a snapshot */
};

enum { VOL_INTENT_NONE, VOL_INTENT_CREATE, VOL_INTENT_REMOVE };

struct thin_pool {
	struct obj obj;                  /* first: the registry's part */
	uint64_t data_size;              /* bytes of the owned data image */
	uint64_t metadata_size;          /* bytes; 0 = thin_metadata_size's */
	uint64_t block_size;             /* bytes */
	uint64_t low_water_mark;         /* blocks */
	char data_dev[THIN_REF_MAX];     /* "" = loop/POOL_tdata */
	char metadata_dev[THIN_REF_MAX]; /* "" = loop/POOL_tmeta */
	char features[THIN_FEATURES_MAX];
	bool initialized;                /* the kernel has formatted its metadata */
	struct thin_vol *vols;
	size_t nvols;
};

/* ---- the pool object (thin.c) ---- */

/* The pool a request's ctx names (thin/POOL/...), owned or made elsewhere,
 * or NULL; release with thin_pool_put. */
struct thin_pool *thin_ctx_pool(struct ctx *c);
void thin_pool_put(struct thin_pool *p);
/* Calls cb for every owned pool (a struct thin_pool), under the registry
 * lock. */
void thin_each_pool(void (*cb)(const struct obj *o, void *arg), void *arg);
struct registry *thin_registry(void);
int thin_save(struct thin_pool *p, char *why);
/* "thin/POOL", the owner of its loop and dm objects. */
void thin_owner(const struct thin_pool *p, char *buf, size_t len);
/* Names of the objects it owns. */
void thin_loop_name(const struct thin_pool *p, const char *what, char *buf, size_t len);
int thin_vol_dm_name(const char *pool, const char *vol, char *buf, size_t len);
/* ENODEV and how to activate it. */
int thin_not_active(const struct thin_pool *p, char *why);
bool thin_pool_active(const struct thin_pool *p);

/* The object's lock is held by the callers of the functions below. */

/* ---- the pool's files and changes (thin_pool.c) ---- */

extern const struct file_def thin_pool_files[];
int thin_pool_activate(struct thin_pool *p, struct cancel *cancel, char *why);
int thin_pool_deactivate(struct thin_pool *p, char *why);
/* One change of the pool's thins (create_thin, create_snap, delete), with
 * the transaction id moved on by one around it. */
int thin_pool_change(struct thin_pool *p, const char *msg, char *why);

/* ---- volumes (thin_vol.c) ---- */

extern const struct dir_kind thin_vol_kind;
struct thin_vol *thin_vol_find(struct thin_pool *p, const char *name);
int thin_vol_list(struct ctx *c, int (*emit)(void *arg, const char *name), void *arg);
const struct dir_kind *thin_vol_child(struct ctx *c, const char *name);
bool thin_vol_kept(struct ctx *c, const char *name);
int thin_vol_mkdir(struct ctx *c, const char *name);
/* Deactivates every volume (-EBUSY, naming it, when one is open). */
int thin_vols_deactivate(struct thin_pool *p, char *why);

#endif
