/* The node table: an inode per tree node, looked up by number or by
 * (parent, name); the ctx of a node; names resolved through the kinds' tables;
 * errors reported to the right `error` file; interrupts. */
#include "glue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NODE_BUCKETS 4096

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

struct node *node_get(fuse_ino_t ino)
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
struct node *node_child(struct node *parent, const char *name, const struct dir_kind *dir,
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

void node_forget(fuse_ino_t ino, uint64_t count)
{
	struct node *n = node_get(ino);
	if (!n || n == &root_node)
		return;
	pthread_mutex_lock(&nodes_lock);
	n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
	node_free_locked(n);
	pthread_mutex_unlock(&nodes_lock);
}

void node_rename(struct node *parent, const char *name, const char *newname)
{
	char *copy = strdup(newname);
	if (!copy)
		return;
	pthread_mutex_lock(&nodes_lock);
	struct node *moved = NULL, *stale = NULL;
	for (struct node *n = by_name[name_hash(parent->ino, name)]; n && !moved; n = n->next_name)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			moved = n;
	for (struct node *n = by_name[name_hash(parent->ino, newname)]; n && !stale; n = n->next_name)
		if (n->parent == parent && strcmp(n->name, newname) == 0)
			stale = n;
	if (stale)
		unhash_name(stale); /* a name the kernel no longer has */
	if (moved) {
		unhash_name(moved);
		free(moved->name);
		moved->name = copy;
		copy = NULL;
		size_t h = name_hash(parent->ino, newname);
		moved->next_name = by_name[h];
		by_name[h] = moved;
		moved->hashed = true;
	}
	pthread_mutex_unlock(&nodes_lock);
	free(copy);
}

void node_each(void (*cb)(struct node *n, void *arg), void *arg)
{
	pthread_mutex_lock(&nodes_lock);
	for (size_t b = 0; b < NODE_BUCKETS; b++)
		for (struct node *n = by_ino[b]; n; n = n->next_ino)
			cb(n, arg);
	pthread_mutex_unlock(&nodes_lock);
}

/* ctx for a directory node (files use their parent's). */
int ctx_for_dir(struct node *dir, struct ctx *c)
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

int ctx_for(struct node *n, struct ctx *c)
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

struct ctx *ctx_push(struct ctx *c, const char *name, const struct dir_kind *kind)
{
	c->kinds[c->depth] = kind;
	c->comp[c->depth++] = name;
	c->kind = kind;
	c->why[0] = '\0';
	return c;
}

void report(struct ctx *c, int r, bool top_level)
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

void interruptible(fuse_req_t req, struct ctx *c, struct cancel *cancel)
{
	c->cancel = cancel;
	fuse_req_interrupt_func(req, on_interrupt, cancel);
}

/* Before the reply, and before cancel goes out of scope: libfuse holds the
 * request's lock while it calls on_interrupt, and so does this. */
void uninterruptible(fuse_req_t req, struct ctx *c)
{
	fuse_req_interrupt_func(req, NULL, NULL);
	c->cancel = NULL;
}

/* ---- resolving names inside a directory ---- */

bool file_visible(struct ctx *c, const struct file_def *f)
{
	return !f->visible || f->visible(c);
}

bool subdir_visible(struct ctx *c, const struct subdir_def *s)
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
				*out = (struct found){ NULL, f, json, true };
				return true;
			}
		}
	}
	return false;
}

bool resolve(struct ctx *c, const char *name, struct found *out)
{
	if (find_file(c, name, out))
		return true;
	for (const struct subdir_def *s = c->kind->subdirs; s && s->name; s++) {
		if (strcmp(s->name, name) == 0 && subdir_visible(c, s)) {
			*out = (struct found){ s->kind, NULL, false, true };
			return true;
		}
	}
	if (c->kind->child) {
		const struct dir_kind *k = c->kind->child(c, name);
		if (k) {
			*out = (struct found){ k, NULL, false, c->kind->kept && c->kind->kept(c, name) };
			return true;
		}
	}
	return false;
}

/* A node is still valid when its parent still resolves its name to it. */
bool node_valid(struct node *n)
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
