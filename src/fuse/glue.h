/* FUSE low-level glue: inodes for tree nodes, and one generic implementation
 * of each operation that walks the dir_kind/file_def tables of src/tree/.
 * Shared by the files of src/fuse/ only. */
#ifndef STSFS_FUSE_GLUE_H
#define STSFS_FUSE_GLUE_H

#include <fuse_lowlevel.h>

#include "stsfs/tree.h"

/* Attribute files report this size, as configfs and sysfs do; their content
 * is rendered at open and served with direct_io, so the size is a hint. */
#define ATTR_FILE_SIZE 4096
#define MAX_WRITE_VALUE (1 << 20)

struct node {
	fuse_ino_t ino;
	uint64_t nlookup;
	unsigned children;
	struct node *parent;
	char *name;
	const struct dir_kind *dir;
	const struct file_def *file;
	bool json;
	bool hashed;
	struct node *next_ino, *next_name;
};

/* What a name in a directory is: a subdirectory of some kind, or a file
 * (json: its .json twin). */
struct found {
	const struct dir_kind *dir;
	const struct file_def *file;
	bool json;
};

struct node *node_get(fuse_ino_t ino);
/* Finds or makes the node for (parent, name) with this identity and takes
 * one lookup reference, as the kernel will once we reply with its entry. */
struct node *node_child(struct node *parent, const char *name, const struct dir_kind *dir,
			const struct file_def *file, bool json);
void node_forget(fuse_ino_t ino, uint64_t count);
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
 * top-level operation's also in the root's. */
void report(struct ctx *c, int r, bool top_level);

/* Until uninterruptible: c->cancel fires when the kernel interrupts req. */
void interruptible(fuse_req_t req, struct ctx *c, struct cancel *cancel);
void uninterruptible(fuse_req_t req, struct ctx *c);

void reply_entry(fuse_req_t req, struct node *n);

/* Each file's share of the operations. */
void attr_ops(struct fuse_lowlevel_ops *ops);
void dir_ops(struct fuse_lowlevel_ops *ops);
void file_ops(struct fuse_lowlevel_ops *ops);

#endif
