/* FUSE low-level glue: inodes for tree nodes, and one generic implementation
 * of each operation that walks the dir_kind/file_def tables. */
#include "stsfs/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stsfs/kernel.h"
#include "stsfs/value.h"
#include "watch.h"

/* Attribute files report this size, as configfs and sysfs do; their content
 * is rendered at open and served with direct_io, so the size is a hint. */
#define ATTR_FILE_SIZE 4096
#define MAX_WRITE_VALUE (1 << 20)
#define NODE_BUCKETS 4096

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

static pthread_mutex_t nodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *by_ino[NODE_BUCKETS], *by_name[NODE_BUCKETS];
static fuse_ino_t next_ino = FUSE_ROOT_ID + 1;
static struct node root_node = { .ino = FUSE_ROOT_ID, .nlookup = 1, .name = "", .dir = &root_kind };

static size_t name_hash(fuse_ino_t parent, const char *name)
{
	size_t h = parent * 1099511628211u;
	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211u;
	return h % NODE_BUCKETS;
}

static struct node *node_get(fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &root_node;
	pthread_mutex_lock(&nodes_lock);
	struct node *n = by_ino[ino % NODE_BUCKETS];
	while (n && n->ino != ino)
		n = n->next_ino;
	pthread_mutex_unlock(&nodes_lock);
	return n;
}

static void unhash_name(struct node *n)
{
	if (!n->hashed)
		return;
	struct node **pp = &by_name[name_hash(n->parent->ino, n->name)];
	while (*pp && *pp != n)
		pp = &(*pp)->next_name;
	if (*pp)
		*pp = n->next_name;
	n->hashed = false;
}

/* Finds or makes the node for (parent, name) with this identity and takes
 * one lookup reference, as the kernel will once we reply with its entry. */
static struct node *node_child(struct node *parent, const char *name, const struct dir_kind *dir,
			       const struct file_def *file, bool json)
{
	pthread_mutex_lock(&nodes_lock);
	size_t h = name_hash(parent->ino, name);
	struct node *n = by_name[h];
	while (n && !(n->parent == parent && strcmp(n->name, name) == 0))
		n = n->next_name;
	if (n && (n->dir != dir || n->file != file || n->json != json)) {
		unhash_name(n); /* the object behind the name changed kind */
		n = NULL;
	}
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (n)
			n->name = strdup(name);
		if (!n || !n->name) {
			free(n);
			pthread_mutex_unlock(&nodes_lock);
			return NULL;
		}
		n->ino = next_ino++;
		n->parent = parent;
		n->dir = dir;
		n->file = file;
		n->json = json;
		parent->children++;
		n->next_ino = by_ino[n->ino % NODE_BUCKETS];
		by_ino[n->ino % NODE_BUCKETS] = n;
		n->next_name = by_name[h];
		by_name[h] = n;
		n->hashed = true;
	}
	n->nlookup++;
	pthread_mutex_unlock(&nodes_lock);
	return n;
}

static void node_free_locked(struct node *n)
{
	while (n != &root_node && n->nlookup == 0 && n->children == 0) {
		unhash_name(n);
		struct node **pp = &by_ino[n->ino % NODE_BUCKETS];
		while (*pp && *pp != n)
			pp = &(*pp)->next_ino;
		if (*pp)
			*pp = n->next_ino;
		struct node *parent = n->parent;
		parent->children--;
		free(n->name);
		free(n);
		n = parent;
	}
}

static void node_forget(fuse_ino_t ino, uint64_t count)
{
	struct node *n = node_get(ino);
	if (!n || n == &root_node)
		return;
	pthread_mutex_lock(&nodes_lock);
	n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
	node_free_locked(n);
	pthread_mutex_unlock(&nodes_lock);
}

/* ctx for a directory node (files use their parent's). */
static int ctx_for_dir(struct node *dir, struct ctx *c)
{
	memset(c, 0, sizeof(*c));
	struct node *path[TREE_MAX_DEPTH];
	int depth = 0;
	for (struct node *n = dir; n != &root_node; n = n->parent) {
		if (depth == TREE_MAX_DEPTH)
			return -ENAMETOOLONG;
		path[depth++] = n;
	}
	for (int i = 0; i < depth; i++) {
		c->comp[i] = path[depth - 1 - i]->name;
		c->kinds[i] = path[depth - 1 - i]->dir;
	}
	c->depth = depth;
	c->kind = dir->dir;
	return 0;
}

static int ctx_for(struct node *n, struct ctx *c)
{
	return ctx_for_dir(n->dir ? n : n->parent, c);
}

void ctx_up(const struct ctx *c, int up, struct ctx *out)
{
	*out = *c;
	out->depth = c->depth > up ? c->depth - up : 0;
	out->kind = out->depth ? out->kinds[out->depth - 1] : &root_kind;
	out->why[0] = '\0';
}

static struct ctx *ctx_push(struct ctx *c, const char *name, const struct dir_kind *kind)
{
	c->kinds[c->depth] = kind;
	c->comp[c->depth++] = name;
	c->kind = kind;
	c->why[0] = '\0';
	return c;
}

static void report(struct ctx *c, int r, bool top_level)
{
	const char *msg = c->why[0] ? c->why : strerror(-r);
	struct errslot *slot = errslot_for(c);
	errslot_set(slot, msg);
	if (top_level && slot != &root_error)
		errslot_set(&root_error, msg);
}

/* ---- interrupts ---- */

/* A caller interrupted by a signal (Ctrl-C, timeout, kill -9) makes the
 * kernel send FUSE_INTERRUPT for its request; libfuse calls this from the
 * thread that read it, and the blocked work (a `wait`, a dmpd tool) ends
 * with EINTR. */
static void on_interrupt(fuse_req_t req, void *cancel)
{
	cancel_fire(cancel);
}

static void interruptible(fuse_req_t req, struct ctx *c, struct cancel *cancel)
{
	c->cancel = cancel;
	fuse_req_interrupt_func(req, on_interrupt, cancel);
}

/* Before the reply, and before cancel goes out of scope: libfuse holds the
 * request's lock while it calls on_interrupt, and so does this. */
static void uninterruptible(fuse_req_t req, struct ctx *c)
{
	fuse_req_interrupt_func(req, NULL, NULL);
	c->cancel = NULL;
}

/* ---- resolving names inside a directory ---- */

struct found {
	const struct dir_kind *dir;
	const struct file_def *file;
	bool json;
};

static bool file_visible(struct ctx *c, const struct file_def *f)
{
	return !f->visible || f->visible(c);
}

static bool subdir_visible(struct ctx *c, const struct subdir_def *s)
{
	return !s->visible || s->visible(c);
}

static bool find_file(struct ctx *c, const char *name, struct found *out)
{
	for (int t = 0; t < 3 && c->kind->files[t]; t++) {
		for (const struct file_def *f = c->kind->files[t]; f->name; f++) {
			size_t len = strlen(f->name);
			bool plain = strcmp(name, f->name) == 0;
			bool json = f->kv && strncmp(name, f->name, len) == 0 && strcmp(name + len, ".json") == 0;
			if ((plain || json) && file_visible(c, f)) {
				*out = (struct found){ NULL, f, json };
				return true;
			}
		}
	}
	return false;
}

static bool resolve(struct ctx *c, const char *name, struct found *out)
{
	if (find_file(c, name, out))
		return true;
	for (const struct subdir_def *s = c->kind->subdirs; s && s->name; s++) {
		if (strcmp(s->name, name) == 0 && subdir_visible(c, s)) {
			*out = (struct found){ s->kind, NULL, false };
			return true;
		}
	}
	if (c->kind->child) {
		const struct dir_kind *k = c->kind->child(c, name);
		if (k) {
			*out = (struct found){ k, NULL, false };
			return true;
		}
	}
	return false;
}

/* A node is still valid when its parent still resolves its name to it. */
static bool node_valid(struct node *n)
{
	if (n == &root_node)
		return true;
	if (!node_valid(n->parent))
		return false;
	struct ctx c;
	struct found f;
	if (ctx_for_dir(n->parent, &c) != 0 || !resolve(&c, n->name, &f))
		return false;
	return f.dir == n->dir && f.file == n->file && f.json == n->json;
}

/* ---- attributes ---- */

/* Owner bits as the file allows, group and other bits from --mode. */
static mode_t mode_bits(unsigned perm)
{
	mode_t m = 0;
	if (perm & 0400)
		m |= 0400 | (opts.mode & 044);
	if (perm & 0200)
		m |= 0200 | (opts.mode & 022);
	return m;
}

/* The device behind a `data` file: -ENODEV while its object is inactive. */
static int data_block(struct ctx *c, struct blockref *b, uint64_t *size)
{
	*size = 0;
	int r = c->kind->block ? c->kind->block(c, b) : -ENODEV;
	if (r == 0)
		kblk_size(b->dev, size);
	return r;
}

static uint64_t data_size(struct node *n)
{
	struct ctx c;
	struct blockref b;
	uint64_t size = 0;
	if (ctx_for(n, &c) == 0)
		data_block(&c, &b, &size);
	return size;
}

/* What a file allows now, so that `ls -l` does not promise writes that
 * would fail: the table's bits, no writes where the object refuses them
 * by policy or for a .json twin, and for `data` what the device allows. */
static unsigned file_perm(struct node *n, uint64_t *size)
{
	unsigned perm = n->json ? n->file->perm & 0444 : n->file->perm;
	struct ctx c;
	*size = ATTR_FILE_SIZE;
	if (ctx_for(n, &c) != 0)
		return perm;
	if (c.kind->read_only && c.kind->read_only(&c))
		perm &= ~0222u;
	if (n->file->type == FT_DATA) {
		struct blockref b;
		if (data_block(&c, &b, size) == 0) {
			if (b.read_only)
				perm &= ~0222u;
			if (!b.data_allowed)
				perm = 0;
		}
	}
	return perm;
}

static struct timespec mount_time;

static void fill_attr(struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_atim = st->st_mtim = st->st_ctim = mount_time;
	st->st_ino = n->ino;
	st->st_uid = opts.uid;
	st->st_gid = opts.gid;
	st->st_blksize = 4096;
	if (n->dir) {
		st->st_mode = S_IFDIR | (opts.mode & 07777);
		st->st_nlink = 2;
	} else {
		uint64_t size;
		st->st_mode = S_IFREG | mode_bits(file_perm(n, &size));
		st->st_nlink = 1;
		st->st_size = (off_t)size;
	}
}

static void reply_entry(fuse_req_t req, struct node *n)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	/* Listings follow the kernel: never let the VFS cache what exists. */
	e.attr_timeout = 0;
	e.entry_timeout = 0;
	fill_attr(n, &e.attr);
	if (fuse_reply_entry(req, &e) != 0)
		node_forget(n->ino, 1);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *p = node_get(parent);
	struct ctx c;
	struct found f;
	if (!p || !p->dir || ctx_for_dir(p, &c) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!resolve(&c, name, &f)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct node *n = node_child(p, name, f.dir, f.file, f.json);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_entry(req, n);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *list)
{
	for (size_t i = 0; i < count; i++)
		node_forget(list[i].ino, list[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_get(ino);
	if (!n || !node_valid(n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct stat st;
	fill_attr(n, &st);
	fuse_reply_attr(req, &st, 0);
}

/* Truncation means nothing for attributes (a write replaces the value) or
 * for device bytes (a block device cannot change size by truncate), so
 * accept it as a block device accepts O_TRUNC: by ignoring it. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct node *n = node_get(ino);
	if (!n || !node_valid(n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) && n->file && n->file->type == FT_DATA &&
	    (uint64_t)attr->st_size > data_size(n)) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	struct stat st;
	fill_attr(n, &st);
	fuse_reply_attr(req, &st, 0);
}

/* ---- directories ---- */

struct dirbuf {
	char **names;
	mode_t *types;
	size_t n, cap;
	int err;
};

static int dirbuf_put(struct dirbuf *d, const char *name, mode_t type)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		char **p = realloc(d->names, cap * sizeof(*p));
		if (p)
			d->names = p;
		mode_t *t = p ? realloc(d->types, cap * sizeof(*t)) : NULL;
		if (!t) {
			d->err = ENOMEM;
			return -ENOMEM;
		}
		d->types = t;
		d->cap = cap;
	}
	if (!(d->names[d->n] = strdup(name))) {
		d->err = ENOMEM;
		return -ENOMEM;
	}
	d->types[d->n++] = type;
	return 0;
}

static int dirbuf_add(void *arg, const char *name)
{
	return dirbuf_put(arg, name, S_IFDIR);
}

static void dirbuf_free(struct dirbuf *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->names[i]);
	free(d->names);
	free(d->types);
	free(d);
}

static void add_file_entries(struct ctx *c, struct dirbuf *d)
{
	for (int t = 0; t < 3 && c->kind->files[t]; t++) {
		for (const struct file_def *f = c->kind->files[t]; f->name; f++) {
			if (!file_visible(c, f))
				continue;
			dirbuf_put(d, f->name, S_IFREG);
			if (f->kv) {
				char json[128];
				snprintf(json, sizeof(json), "%s.json", f->name);
				dirbuf_put(d, json, S_IFREG);
			}
		}
	}
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_get(ino);
	struct ctx c;
	if (!n || !n->dir || !node_valid(n) || ctx_for_dir(n, &c) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct dirbuf *d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dirbuf_add(d, ".");
	dirbuf_add(d, "..");
	add_file_entries(&c, d);
	for (const struct subdir_def *s = c.kind->subdirs; s && s->name; s++)
		if (subdir_visible(&c, s))
			dirbuf_add(d, s->name);
	if (c.kind->list)
		c.kind->list(&c, dirbuf_add, d);
	if (d->err) {
		int err = d->err;
		dirbuf_free(d);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0)
		dirbuf_free(d);
}

/* The snapshot taken at opendir is served by index: off is the next one. */
static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct dirbuf *d = (struct dirbuf *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat st = { .st_ino = 0xffffffff, .st_mode = d->types[i] };
		size_t need = fuse_add_direntry(req, buf + used, size - used, d->names[i], &st, (off_t)(i + 1));
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	dirbuf_free((struct dirbuf *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct node *p = node_get(parent);
	struct ctx c;
	struct found f;
	if (!p || !p->dir || !node_valid(p) || ctx_for_dir(p, &c) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (resolve(&c, name, &f)) {
		why_set(c.why, -EEXIST, "'%s' already exists", name);
		report(&c, -EEXIST, true);
		fuse_reply_err(req, EEXIST);
		return;
	}
	if (!c.kind->mkdir) {
		why_set(c.why, -EPERM, "objects cannot be created in %s/", c.depth ? c.comp[c.depth - 1] : "the root");
		report(&c, -EPERM, true);
		fuse_reply_err(req, EPERM);
		return;
	}
	int r = c.kind->mkdir(&c, name);
	if (r < 0) {
		report(&c, r, true);
		fuse_reply_err(req, -r);
		return;
	}
	if (!resolve(&c, name, &f) || !f.dir) {
		fuse_reply_err(req, EIO);
		return;
	}
	struct node *n = node_child(p, name, f.dir, NULL, false);
	if (!n)
		fuse_reply_err(req, ENOMEM);
	else
		reply_entry(req, n);
}

/* Resolves (parent, name) to an object directory ctx, or replies an error. */
static bool object_ctx(fuse_req_t req, fuse_ino_t parent, const char *name, struct ctx *c)
{
	struct node *p = node_get(parent);
	struct found f;
	if (!p || !p->dir || ctx_for_dir(p, c) != 0 || !resolve(c, name, &f)) {
		fuse_reply_err(req, ENOENT);
		return false;
	}
	if (!f.dir) {
		fuse_reply_err(req, ENOTDIR);
		return false;
	}
	ctx_push(c, name, f.dir);
	return true;
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ctx c;
	if (!object_ctx(req, parent, name, &c))
		return;
	int r = -EPERM;
	if (c.kind->remove)
		r = c.kind->remove(&c);
	else
		why_set(c.why, r, "%s cannot be removed", name);
	if (r < 0) {
		report(&c, r, true);
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_err(req, 0);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct ctx c;
	if (!object_ctx(req, parent, name, &c))
		return;
	int r;
	if (newparent != parent)
		r = why_set(c.why, -EXDEV, "objects can only be renamed within their directory");
	else if (flags & RENAME_EXCHANGE)
		r = why_set(c.why, -EINVAL, "objects cannot be exchanged (RENAME_EXCHANGE); rename them one at a time");
	else if (flags & ~(unsigned)RENAME_NOREPLACE) /* never replacing is what rename does here */
		r = why_set(c.why, -EINVAL, "rename flags %#x are not supported", flags);
	else if (!c.kind->rename)
		r = why_set(c.why, -EPERM, "%s cannot be renamed", name);
	else
		r = c.kind->rename(&c, newname);
	if (r < 0) {
		report(&c, r, true);
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_err(req, 0);
}

static void refuse_file_op(fuse_req_t req, fuse_ino_t parent, const char *name, const char *what)
{
	struct node *p = node_get(parent);
	struct ctx c;
	if (p && p->dir && ctx_for_dir(p, &c) == 0) {
		why_set(c.why, -EPERM, "cannot %s '%s': files in this tree are fixed by the object kind", what, name);
		report(&c, -EPERM, false);
	}
	fuse_reply_err(req, EPERM);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	refuse_file_op(req, parent, name, "remove");
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	refuse_file_op(req, parent, name, "create");
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	refuse_file_op(req, parent, name, "create");
}

/* ---- files ---- */

struct fh {
	struct node *node;
	char *text;       /* rendered at open */
	size_t len;
	char *wbuf;       /* value being written */
	size_t wlen;
	bool pending;     /* a checked value (file_def.check) to store at close */
	int refused;      /* errno of a refused write: later writes fail too */
	int fd;           /* FT_DATA: the device */
	/* Pollable files: the event counter the text was rendered at. */
	uint64_t id;
	bool has_event;
	uint32_t event_nr;
	char event_key[160];
	bool was_read;
	/* Reads of one handle may run on several threads at once; a read that
	 * renders afresh must not free text another is replying from. */
	pthread_mutex_t text_lock;
};

static void fh_free(struct fh *h)
{
	if (h->fd >= 0)
		close(h->fd);
	pthread_mutex_destroy(&h->text_lock);
	free(h->text);
	free(h->wbuf);
	free(h);
}

static uint64_t next_fh_id(void)
{
	static uint64_t last;
	return __atomic_add_fetch(&last, 1, __ATOMIC_RELAXED);
}

static int render(struct ctx *c, const struct file_def *f, bool json, char **out)
{
	if (f->show)
		return f->show(c, out);
	struct kv_doc doc = { 0 };
	int r = f->kv(c, &doc);
	if (r == 0) {
		*out = json ? kv_render_json(&doc, f->kv_array) : kv_render_text(&doc);
		if (!*out)
			r = -ENOMEM;
	}
	kv_doc_free(&doc);
	return r;
}

/* Renders h's file; for a pollable file first notes the event counter, so
 * an event during the rendering wakes a later poll rather than being lost. */
static int render_fh(struct ctx *c, struct fh *h)
{
	const struct file_def *f = h->node->file;
	if (f->pollable && c->kind->event_nr)
		h->has_event = c->kind->event_nr(c, &h->event_nr, h->event_key, sizeof(h->event_key)) == 0;
	char *text = NULL;
	int r = render(c, f, h->node->json, &text);
	if (r == 0) {
		free(h->text);
		h->text = text;
		h->len = strlen(text);
	}
	return r;
}

/* `wait`: blocks until the object's event counter moves past the one it
 * has now. An inactive object returns at once; rendering says why. */
static int wait_event(struct ctx *c)
{
	uint32_t nr;
	char key[sizeof(((struct fh *)NULL)->event_key)];
	if (!c->kind->event_nr || c->kind->event_nr(c, &nr, key, sizeof(key)) != 0)
		return 0;
	int r = watch_block(c->kind, key, nr, c->cancel);
	if (r == -EAGAIN)
		return why_set(c->why, r, "cannot start a thread to wait for %s", key);
	return r;
}

static int open_data(struct ctx *c, struct fh *h, int flags)
{
	struct blockref b;
	int r = c->kind->block(c, &b);
	if (r)
		return r;
	bool wr = (flags & O_ACCMODE) != O_RDONLY;
	if (wr && (b.read_only || !b.data_allowed))
		return why_set(c->why, -EROFS, "%s is read-only", b.devpath);
	if (!b.data_allowed)
		return why_set(c->why, -EPERM, "%s was not created by stsfs", b.devpath);
	h->fd = open(b.devpath, (wr ? O_RDWR : O_RDONLY) | O_CLOEXEC | (flags & (O_SYNC | O_DSYNC)));
	if (h->fd < 0)
		return why_set(c->why, -errno, "cannot open %s: %s", b.devpath, strerror(errno));
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_get(ino);
	struct ctx c;
	if (!n || !n->file || !node_valid(n) || ctx_for(n, &c) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	const struct file_def *f = n->file;
	int acc = fi->flags & O_ACCMODE;
	bool wants_write = acc != O_RDONLY;
	bool wants_read = acc != O_WRONLY;
	/* Root passes the permission bits; the table still decides. */
	if ((wants_write && !(f->perm & 0200)) || (wants_read && !(f->perm & 0400)) || (wants_write && n->json)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	struct fh *h = calloc(1, sizeof(*h));
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->node = n;
	h->fd = -1;
	pthread_mutex_init(&h->text_lock, NULL);
	h->id = next_fh_id();
	int r = 0;
	struct cancel cancel = CANCEL_INIT;
	interruptible(req, &c, &cancel);
	if (f->type == FT_DATA)
		r = open_data(&c, h, fi->flags);
	else if (wants_read && f->waits)
		r = wait_event(&c);
	if (r == 0 && f->type != FT_DATA && wants_read)
		r = render_fh(&c, h);
	uninterruptible(req, &c);
	if (r < 0) {
		if (c.why[0] && r != -EINTR)
			report(&c, r, false);
		fh_free(h);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0)
		fh_free(h);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	if (h->fd >= 0) {
		/* Device bytes: spliced from the device without a copy here. */
		struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
		buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		buf.buf[0].fd = h->fd;
		buf.buf[0].pos = off;
		fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	pthread_mutex_lock(&h->text_lock);
	/* After poll(2) said an event came, lseek(0) + read shows the new state. */
	int r = 0;
	if (off == 0 && h->was_read && h->node->file->pollable) {
		struct ctx c;
		struct cancel cancel = CANCEL_INIT;
		r = ctx_for(h->node, &c);
		if (r == 0) {
			interruptible(req, &c, &cancel);
			r = render_fh(&c, h);
			uninterruptible(req, &c);
		}
	}
	h->was_read = true;
	if (r < 0)
		fuse_reply_err(req, -r);
	else if ((size_t)off >= h->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, h->text + off, h->len - (size_t)off < size ? h->len - (size_t)off : size);
	pthread_mutex_unlock(&h->text_lock);
}

static int apply_with(fuse_req_t req, struct fh *h, bool only_check)
{
	struct ctx c;
	const struct file_def *f = h->node->file;
	if (ctx_for(h->node, &c) != 0)
		return -ENOENT;
	struct cancel cancel = CANCEL_INIT;
	char *val = malloc(h->wlen + 1);
	if (!val)
		return -ENOMEM;
	int r;
	if (!f->raw) {
		r = value_trim(h->wbuf, h->wlen, val, h->wlen + 1, c.why, sizeof(c.why));
	} else if (memchr(h->wbuf, '\0', h->wlen)) {
		r = why_set(c.why, -EINVAL, "value contains a NUL byte");
	} else {
		memcpy(val, h->wbuf, h->wlen);
		val[h->wlen] = '\0';
		r = 0;
	}
	if (r == 0) {
		interruptible(req, &c, &cancel);
		r = only_check ? f->check(&c, val) : f->store(&c, val);
		uninterruptible(req, &c);
	}
	free(val);
	if (r < 0 && r != -EINTR)
		report(&c, r, false);
	return r;
}

/* Each write(2) is applied when it arrives, so that it fails itself with
 * the reason (bash ignores close's errno). A write at offset 0 starts a
 * value; one at the end of what this open file wrote continues it, and the
 * whole value so far is applied again. Multi-line values (check set) are
 * checked per write and stored once, at close. A refused write ends the
 * value: later writes to this open file fail with the same errno and apply
 * nothing, so the rest of a value never takes effect on its own. */
static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off, struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	size_t size = fuse_buf_size(in);
	if (h->fd >= 0) {
		struct fuse_bufvec out = FUSE_BUFVEC_INIT(size);
		out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		out.buf[0].fd = h->fd;
		out.buf[0].pos = off;
		ssize_t n = fuse_buf_copy(&out, in, 0);
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_write(req, (size_t)n);
		return;
	}
	if (!h->node->file->store) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (h->refused) {
		fuse_reply_err(req, h->refused);
		return;
	}
	if ((off != 0 && (size_t)off != h->wlen) || (size_t)off + size > MAX_WRITE_VALUE) {
		fuse_reply_err(req, off ? EINVAL : EFBIG);
		return;
	}
	char *p = realloc(h->wbuf, (size_t)off + size + 1);
	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->wbuf = p;
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
	dst.buf[0].mem = h->wbuf + off;
	ssize_t n = fuse_buf_copy(&dst, in, 0);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	h->wlen = (size_t)off + (size_t)n;
	bool deferred = h->node->file->check != NULL;
	int r = apply_with(req, h, deferred);
	h->pending = deferred && r == 0;
	if (r < 0) {
		h->refused = -r;
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	int r = 0;
	if (h->pending) {
		h->pending = false;
		r = apply_with(req, h, false);
	}
	fuse_reply_err(req, -r);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	int r = 0;
	if (h->fd >= 0 && (datasync ? fdatasync(h->fd) : fsync(h->fd)) < 0)
		r = errno;
	fuse_reply_err(req, r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fh_free((struct fh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Pollable files are readable again once the object's event counter moved
 * past the one their text was rendered at (as sysfs_notify for sysfs
 * attributes); until then poll(2) blocks. Other files are always ready. */
static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	const unsigned ready = POLLIN | POLLRDNORM | POLLPRI;
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	const struct file_def *f = h->node->file;
	struct ctx c;
	if (!f->pollable || ctx_for(h->node, &c) != 0 || !c.kind->event_nr) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, f->pollable ? ready : POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
		return;
	}
	uint32_t now, seen;
	char key[sizeof(h->event_key)], seen_key[sizeof(h->event_key)];
	/* A read on another thread may be rendering afresh. */
	pthread_mutex_lock(&h->text_lock);
	bool has_event = h->has_event;
	seen = h->event_nr;
	memcpy(seen_key, h->event_key, sizeof(seen_key));
	pthread_mutex_unlock(&h->text_lock);
	bool moved = !has_event || c.kind->event_nr(&c, &now, key, sizeof(key)) != 0 || now != seen ||
		     strcmp(key, seen_key) != 0;
	if (moved) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, ready);
		return;
	}
	if (ph)
		watch_add(c.kind, key, seen, h->id, ph);
	fuse_reply_poll(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255 };
	fuse_reply_statfs(req, &st);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Large device I/O in one request: 1 MiB writes (the kernel's max_pages). */
	conn->max_write = 1 << 20;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mkdir = op_mkdir,
	.mknod = op_mknod,
	.create = op_create,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.read = op_read,
	.write_buf = op_write_buf,
	.flush = op_flush,
	.fsync = op_fsync,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.poll = op_poll,
	.statfs = op_statfs,
};

int tree_run(struct fuse_args *args, const char *mountpoint, bool foreground, bool single_thread)
{
	clock_gettime(CLOCK_REALTIME, &mount_time);
	struct fuse_session *se = fuse_session_new(args, &ops, sizeof(ops), NULL);
	if (!se)
		return 1;
	int ret = 1;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(foreground);
	if (single_thread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		/* Blocking reads (dm `wait`) hold a thread each; keep spares. */
		fuse_loop_cfg_set_max_threads(cfg, 64);
		fuse_loop_cfg_set_idle_threads(cfg, 8);
		ret = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	watch_shutdown();
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return ret ? 1 : 0;
}
