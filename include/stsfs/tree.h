/* The tree: every directory kind declares its files once, in a table that
 * lookup, getattr, readdir, open, read and write all walk. */
#ifndef STSFS_TREE_H
#define STSFS_TREE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stsfs/cancel.h"
#include "stsfs/kernel.h"
#include "stsfs/kv.h"
#include "stsfs/why.h"

#define TREE_MAX_DEPTH 8

struct options {
	const char *image_dir;
	const char *state_dir;
	char **allow_backing; /* canonical paths */
	size_t n_allow_backing;
	bool allow_host_devices;
	bool manage_external;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	double cache_timeout; /* seconds the kernel may keep names; 0: none */
	/* Mounted without -o allow_other (and without --tenancy): only the
	 * uid that mounted the tree may use it (docs/security.md). */
	bool mounter_only;
	uid_t mounter;
	bool root_too; /* -o allow_root: root may use a mounter-only tree */
	bool share_parent;    /* --propagation shared: the mount point's parent is a shared mount */
};
extern struct options opts;

/* The last error of an object, readable in its `error` file as one line:
 * when (UTC), what it came from (the file or operation), and why, e.g.
 * `2026-12-04T18:05:11Z size write: size must be ...`. */
struct errslot {
	pthread_mutex_t lock;
	char msg[STSFS_WHY_LEN + 400];
};
#define ERRSLOT_INIT { PTHREAD_MUTEX_INITIALIZER, "" }
void errslot_set(struct errslot *e, const char *source, const char *msg);
char *errslot_show(struct errslot *e);

struct dir_kind;

/* Where a request is: the path components from the root to the directory
 * that holds the file (or is the directory), plus room for a reason. */
struct ctx {
	const char *comp[TREE_MAX_DEPTH];
	const struct dir_kind *kinds[TREE_MAX_DEPTH]; /* kind of each component */
	int depth;
	const struct dir_kind *kind;                  /* kinds[depth-1], or root */
	char why[STSFS_WHY_LEN];
	/* Fires when the caller is interrupted: blocking work ends with -EINTR.
	 * NULL where nothing can interrupt. */
	struct cancel *cancel;
	/* --tenancy (stsfs/tenancy.h): the tenant whose tree the path is in
	 * ("" the host's), and whether the caller is a tenant (false: the
	 * host, or the daemon itself). */
	char tenant[32];
	bool tenant_caller;
	bool via_tenants; /* the host's tenants/TENANT/..., rebased onto the root */
};

enum file_type {
	FT_ATTR, /* rendered text, one value */
	FT_DATA, /* the bytes of a block device */
};

struct file_def {
	const char *name;
	unsigned perm;             /* 0444 read, 0644 read/write, 0200 write */
	/* Exactly one of show/kv renders a readable file; kv also gives X.json. */
	int (*show)(struct ctx *c, char **out);
	int (*kv)(struct ctx *c, struct kv_doc *doc);
	bool kv_array;             /* X.json is always an array */
	/* Applies a written value (whitespace-trimmed unless raw). */
	int (*store)(struct ctx *c, const char *value);
	/* Multi-line values: shells write them one line per write(2). With
	 * check set, each write only checks the value so far (its errno fails
	 * the write) and store runs once, at close (its errno fails close).
	 * check returns 1 when the value is complete and it applied it itself:
	 * close then stores nothing. */
	int (*check)(struct ctx *c, const char *value);
	bool raw;
	/* poll(2) waits for the object's next kernel event (dir_kind.events);
	 * a read at offset 0 after an earlier read renders the file afresh. */
	bool pollable;
	/* open(2) for reading blocks until the object's next kernel event (or
	 * until the caller is interrupted), then renders the file. */
	bool waits;
	bool (*visible)(struct ctx *c); /* NULL: always */
	enum file_type type;
};

struct subdir_def {
	const char *name;
	const struct dir_kind *kind;
	bool (*visible)(struct ctx *c);
};

/* The device behind a block object, for the shared block files. */
struct blockref {
	dev_t dev;
	char devpath[64];
	bool read_only;      /* the device itself is read-only */
	bool data_allowed;   /* external objects without --manage-external: no data */
};

/* Where an object's persistent-data metadata is (thin-pool, cache, era). */
struct meta_source {
	enum kmeta_kind kind;
	char devpath[64];
	char live_name[128]; /* the dm device using it; "" while inactive */
};

struct dir_kind {
	const char *name;
	const struct file_def *files[3]; /* tables, each ending with { NULL } */
	const struct subdir_def *subdirs; /* ends with { NULL } */
	/* Dynamic children (objects). */
	int (*list)(struct ctx *c, int (*emit)(void *arg, const char *name), void *arg);
	const struct dir_kind *(*child)(struct ctx *c, const char *name);
	/* True when the child called name changes only through stsfs (an
	 * object it keeps), so that the kernel may cache the name; others
	 * (devices made elsewhere, partitions) are looked up every time.
	 * NULL: never cached. */
	bool (*kept)(struct ctx *c, const char *name);
	int (*mkdir)(struct ctx *c, const char *name);
	/* Object operations, with c naming the object itself. */
	int (*remove)(struct ctx *c);
	int (*rename)(struct ctx *c, const char *newname);
	/* 0 when the object accepts changes; else the errno every change gets
	 * (EPERM: a device stsfs did not make, without --manage-external;
	 * EBUSY: an object another object owns) with the reason in why (may
	 * be NULL). Its files then show no write bits. NULL: always 0. */
	int (*refuses)(struct ctx *c, char *why);
	/* NULL: errors go to the nearest directory above that has one. */
	struct errslot *(*errslot)(struct ctx *c);
	/* Block objects: the device, -ENODEV while inactive. */
	int (*block)(struct ctx *c, struct blockref *b);
	/* Objects whose kernel device counts events (dm): the counter now and
	 * the kernel name to wait on; -ENODEV while inactive. */
	int (*event_nr)(struct ctx *c, uint32_t *nr, char *key, size_t keylen);
	/* Blocks until the event counter of device key moves past after (or
	 * the device goes away); runs on a thread of its own. */
	int (*event_wait)(const char *key, uint32_t after);
	/* Objects with metadata/: -EINVAL when the object has no
	 * persistent-data metadata (no metadata/ then). Without locate only
	 * m->kind is set (cheap: listings ask it); with locate also where the
	 * metadata device is, or an error when it cannot be reached now. */
	int (*meta_source)(struct ctx *c, struct meta_source *m, bool locate, char *why);
	/* Objects with metadata/: the first line of the table that uses the
	 * metadata (length in sectors; params with devices as MAJ:MIN), for
	 * metadata/size and trim. */
	int (*meta_line)(struct ctx *c, uint64_t *length, char *params, size_t len, char *why);
	/* Objects whose kernel device is a dm device (dm/NAME, thin/POOL,
	 * thin/POOL/VOL): its dm name, for the dm files they share. */
	int (*dm_name)(struct ctx *c, char *buf, size_t len);
};

/* Tree kinds. */
extern const struct dir_kind root_kind;
extern const struct dir_kind loop_dir_kind;
extern const struct dir_kind dm_dir_kind;
extern const struct dir_kind thin_dir_kind;
extern const struct file_def block_files[];
extern const struct dir_kind partitions_kind;
extern const struct dir_kind metadata_kind;
/* For subdir visible(): the object has persistent-data metadata. */
bool has_metadata(struct ctx *c);
extern struct errslot root_error;

/* The ctx of the directory `up` levels above c's. */
void ctx_up(const struct ctx *c, int up, struct ctx *out);

/* Shared helpers for file tables. */
int show_text(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int show_error_file(struct ctx *c, char **out);
/* The error slot of c's directory: its kind's, or the nearest one above. */
struct errslot *errslot_for(const struct ctx *c);
/* For visible(): true while the object's block device exists. */
bool block_active(struct ctx *c);
/* `data` files stsfs has open, per device (the FUSE layer counts them): a
 * wipe refuses while one is open on the device or one of its partitions,
 * which O_EXCL alone does not see. */
void block_data_opened(dev_t dev);
void block_data_closed(dev_t dev);

/* Object kinds' start-up: load persisted objects and adopt kernel devices. */
int loop_startup(char *why);
int dm_startup(char *why);
int thin_startup(char *why);

/* Device references between kinds. loop_object_dev: -ENOENT when there is
 * no such loop object or it is inactive. */
int loop_object_dev(const char *name, dev_t *dev, char *why);
bool loop_owns_dev(dev_t dev);
int dm_object_dev(const char *name, dev_t *dev, char *why);
bool dm_owns_dev(dev_t dev);

struct fuse_args;
/* Serves the tree on a connection the supervisor mounted (src/fuse/session.c):
 * the worker's side of include/stsfs/supervisor.h. */
int worker_run(struct fuse_args *args, int fuse_fd, int map_fd, int ready_fd, bool single_thread);

#endif
