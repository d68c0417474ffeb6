/* FUSE low-level glue: inodes for tree nodes, and one generic implementation
 * of each operation that walks the dir_kind/file_def tables of src/tree/.
 * Shared by the files of src/fuse/ only. */
#ifndef STSFS_FUSE_GLUE_H
#define STSFS_FUSE_GLUE_H

#include <fuse_lowlevel.h>

#include "stsfs/log.h"
#include "stsfs/takeover.h"
#include "stsfs/tree.h"

/* Attribute files report this size, as configfs and sysfs do; their content
 * is rendered at open and served with direct_io, so the size is a hint. */
#define ATTR_FILE_SIZE 4096
#define MAX_WRITE_VALUE (1 << 20)

struct node {
	fuse_ino_t ino;
	uint32_t slot; /* in the shared map (takeover.h) */
	uint64_t nlookup;
	unsigned children;
	struct node *parent;
	char *name;
	const struct dir_kind *dir;
	const struct file_def *file;
	bool json;
	bool hashed;
	bool cached; /* the kernel may keep its name and attributes */
	struct node *next_name;
};

/* What a name in a directory is: a subdirectory of some kind, or a file
 * (json: its .json twin). */
struct found {
	const struct dir_kind *dir;
	const struct file_def *file;
	bool json;
	bool cached; /* the kernel may keep the name (dir_kind.kept) */
};

/* The node table lives in the shared map: a worker taking over rebuilds it
 * from there, with every id the kernel holds. */
int nodes_attach(struct shared_map *m);
/* The live node for ino; NULL for unknown ids and for ids whose object was
 * gone when this worker took over. */
struct node *node_get(fuse_ino_t ino);
/* Finds or makes the node for (parent, name) with this identity and takes
 * one lookup reference, as the kernel will once we reply with its entry. */
struct node *node_child(struct node *parent, const char *name, const struct dir_kind *dir,
			const struct file_def *file, bool json);
void node_forget(fuse_ino_t ino, uint64_t count);
/* The kernel moved (parent, name)'s dentry to newname (a rename). */
void node_rename(struct node *parent, const char *name, const char *newname);
/* A node is still valid when its parent still resolves its name to it. */
bool node_valid(struct node *n);

/* The ctx of a directory node, and of any node (a file's is its parent's). */
int ctx_for_dir(struct node *dir, struct ctx *c);
int ctx_for(struct node *n, struct ctx *c);
struct ctx *ctx_push(struct ctx *c, const char *name, const struct dir_kind *kind);
bool file_visible(struct ctx *c, const struct file_def *f);
bool subdir_visible(struct ctx *c, const struct subdir_def *s);
bool resolve(struct ctx *c, const char *name, struct found *out);

/* Stores c's reason (or r's text) in the error file of c's directory; a
 * top-level operation's also in the root's. Logs the refusal at warning as
 * "PATH[/child]: refused OP: reason", OP formatted from opfmt. */
void report(struct ctx *c, int r, bool top_level, const char *child, const char *opfmt, ...)
	__attribute__((format(printf, 5, 6)));
/* c's directory as a path ("loop/disk"; "" for the root). */
void ctx_path(const struct ctx *c, char *buf, size_t len);

/* Until uninterruptible: c->cancel fires when the kernel interrupts req. */
void interruptible(fuse_req_t req, struct ctx *c, struct cancel *cancel);
void uninterruptible(fuse_req_t req, struct ctx *c);

/* n's entry (ino, attributes, timeouts); cached: the kernel may keep it
 * (found.cached). reply_entry replies with it. */
void entry_of(struct node *n, bool cached, struct fuse_entry_param *e);
void reply_entry(fuse_req_t req, struct node *n, bool cached);
/* Calls cb for every node the kernel holds (under the node table's lock:
 * cb must not take it). */
void node_each(void (*cb)(struct node *n, void *arg), void *arg);

/* The kernel's caches (cache.c): the entry and attribute timeout (0: none),
 * and what drops them when a directory's content changed. */
void cache_start(struct fuse_session *se, double timeout);
double cache_timeout(void);
void cache_dir_changed(struct node *dir);
void cache_all_changed(void);
bool cache_stop(void);

/* File handles (handle.c): ids that name their worker and open flags, so
 * that a worker taking over can open a dead worker's handles again. */
void handles_start(uint32_t worker_epoch);
uint64_t handle_new(void *obj, int flags, bool dir);
void *handle_get(uint64_t id);
void *handle_adopt(uint64_t id, void *obj);
void *handle_take(uint64_t id);
bool handle_foreign(uint64_t id);
int handle_open_flags(uint64_t id);

/* Values being written, kept across a takeover (values.c). */
void values_attach(struct shared_map *m);
void value_keep(uint64_t fh, const char *buf, size_t len);
void value_drop(uint64_t fh);
ssize_t value_find(uint64_t fh, char **out);

/* Requests in flight across a takeover (inflight.c): the session's I/O,
 * and answering what a dead worker left. */
int inflight_io(struct fuse_session *se, int fuse_fd, struct shared_map *m, uint32_t worker_epoch);
int inflight_take_over(int fuse_fd, unsigned *rewritten);
bool inflight_replays(void);

/* Tenancy's views (view.c): view_enter sets who calls and refuses a path
 * the caller may not see (-ENOENT); view_name turns a name the caller gave
 * in c's directory into the internal one; view_shown is the caller's name
 * for an internal one (NULL: not shown); view_cached says whether the
 * kernel may keep the name. */
int view_enter(fuse_req_t req, struct ctx *c);
bool view_scoped(const struct ctx *c);
int view_name(struct ctx *c, const char *name, char *out, size_t len);
const char *view_shown(const struct ctx *c, const char *internal);
bool view_cached(const struct ctx *c, const char *name, bool cached);

/* Permissions (perm.c): stsfs, not the kernel, checks modes. perm_check
 * returns 0 when req's caller may search every directory above n and do
 * mask (R_OK, W_OK, X_OK; 0: only the search) on n; else -EACCES, with the
 * reason (who, n's owner and mode, the option that would allow it) in
 * c->why, reported like report(c, -EACCES, ..., child, op). c is the
 * request's ctx (view_enter done). perm_owner: the caller owns n, or is
 * root. node_perm_attr (attr.c): n's owner and mode as checks use them
 * (a file's bits from its table). */
int perm_check(fuse_req_t req, struct node *n, struct ctx *c, int mask, const char *child, const char *op);
bool perm_owner(fuse_req_t req, struct node *n);
void node_perm_attr(struct node *n, uid_t *uid, gid_t *gid, mode_t *mode);

/* Each file's share of the operations. */
void attr_ops(struct fuse_lowlevel_ops *ops);
void dir_ops(struct fuse_lowlevel_ops *ops);
void file_ops(struct fuse_lowlevel_ops *ops);

#endif
