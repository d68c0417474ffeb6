/* The node table: an inode per tree node, looked up by number or by
 * (parent, name); the ctx of a node; names resolved through the kinds' tables;
 * errors reported to the right `error` file; interrupts. */
#include "glue.h"
#include "stsfs/tenancy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_BUCKETS 4096

/* Nodes live in slots of the shared map (takeover.h), so that the ids the
 * kernel holds keep their meaning for the next worker; by_slot and by_name
 * are this worker's index of them. */
static pthread_mutex_t nodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shared_map *map;
static struct node **by_slot, *by_name[NAME_BUCKETS];
static uint32_t *free_slots;
static size_t n_free;
static struct node root_node = { .ino = FUSE_ROOT_ID, .slot = FUSE_ROOT_ID, .nlookup = 1, .name = "", .dir = &root_kind };

static size_t name_hash(fuse_ino_t parent, const char *name)
{
	size_t h = parent * 1099511628211u;
	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211u;
	return h % NAME_BUCKETS;
}

static uint32_t slot_of(fuse_ino_t ino)
{
	return (uint32_t)ino;
}

static struct nodeslot *slot_rec(const struct node *n)
{
	return &map->nodes[n->slot];
}

/* The node for ino, dead ones (takeover found no object) included. */
static struct node *node_find(fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &root_node;
	uint32_t s = slot_of(ino);
	if (s >= MAP_NODE_SLOTS)
		return NULL;
	pthread_mutex_lock(&nodes_lock);
	struct node *n = by_slot[s];
	if (n && n->ino != ino)
		n = NULL;
	pthread_mutex_unlock(&nodes_lock);
	return n;
}

struct node *node_get(fuse_ino_t ino)
{
	struct node *n = node_find(ino);
	return n && (n->dir || n->file) ? n : NULL;
}

static void hash_name(struct node *n)
{
	size_t h = name_hash(n->parent->ino, n->name);
	n->next_name = by_name[h];
	by_name[h] = n;
	n->hashed = true;
	slot_rec(n)->hashed = 1;
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
	slot_rec(n)->hashed = 0;
}

static void set_nlookup(struct node *n, uint64_t count)
{
	n->nlookup = count;
	if (n != &root_node)
		slot_rec(n)->nlookup = count;
}

/* A slot for a new node: a freed one (its generation moved on) or a new
 * one. 0 when the map is full. */
static uint32_t take_slot(void)
{
	if (n_free)
		return free_slots[--n_free];
	if (map->hdr->hwm >= MAP_NODE_SLOTS)
		return 0;
	return map->hdr->hwm++;
}

/* The slot is written before it is marked used: a worker killed half-way
 * leaves a free slot, never a half-written node. */
static struct node *node_new(struct node *parent, const char *name)
{
	struct node *n = calloc(1, sizeof(*n));
	uint32_t s = n && strlen(name) <= NAME_MAX ? take_slot() : 0;
	if (!s || !(n->name = strdup(name))) {
		if (s)
			free_slots[n_free++] = s;
		free(n);
		return NULL;
	}
	struct nodeslot *rec = &map->nodes[s];
	n->slot = s;
	n->ino = (uint64_t)rec->gen << 32 | s;
	n->parent = parent;
	rec->parent = parent->ino;
	rec->nlookup = 0;
	memcpy(rec->name, name, strlen(name) + 1);
	__atomic_store_n(&rec->used, 1, __ATOMIC_RELEASE);
	by_slot[s] = n;
	parent->children++;
	hash_name(n);
	return n;
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
	if (!n && (n = node_new(parent, name))) {
		n->dir = dir;
		n->file = file;
		n->json = json;
	}
	if (n)
		set_nlookup(n, n->nlookup + 1);
	pthread_mutex_unlock(&nodes_lock);
	return n;
}

static void node_free_locked(struct node *n)
{
	while (n != &root_node && n->nlookup == 0 && n->children == 0) {
		unhash_name(n);
		struct nodeslot *rec = slot_rec(n);
		__atomic_store_n(&rec->used, 0, __ATOMIC_RELEASE);
		rec->gen++;
		by_slot[n->slot] = NULL;
		free_slots[n_free++] = n->slot;
		struct node *parent = n->parent;
		parent->children--;
		free(n->name);
		free(n);
		n = parent;
	}
}

void node_forget(fuse_ino_t ino, uint64_t count)
{
	struct node *n = node_find(ino);
	if (!n || n == &root_node)
		return;
	pthread_mutex_lock(&nodes_lock);
	set_nlookup(n, n->nlookup > count ? n->nlookup - count : 0);
	node_free_locked(n);
	pthread_mutex_unlock(&nodes_lock);
}

void node_rename(struct node *parent, const char *name, const char *newname)
{
	char *copy = strdup(newname);
	if (!copy || strlen(newname) > NAME_MAX) {
		free(copy);
		return;
	}
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
		memcpy(slot_rec(moved)->name, newname, strlen(newname) + 1);
		hash_name(moved);
	}
	pthread_mutex_unlock(&nodes_lock);
	free(copy);
}

void node_each(void (*cb)(struct node *n, void *arg), void *arg)
{
	pthread_mutex_lock(&nodes_lock);
	for (uint32_t s = FUSE_ROOT_ID + 1; s < map->hdr->hwm; s++)
		if (by_slot[s] && (by_slot[s]->dir || by_slot[s]->file))
			cb(by_slot[s], arg);
	pthread_mutex_unlock(&nodes_lock);
}

/* ---- taking over the nodes of a dead worker ---- */

/* What the node's name means now: the parent first. Nodes whose object is
 * gone stay dead (no dir, no file): their ids answer ENOENT until the
 * kernel forgets them. */
static void settle(struct node *n, uint8_t *done)
{
	if (n == &root_node || done[n->slot])
		return;
	done[n->slot] = 1;
	settle(n->parent, done);
	struct ctx c;
	struct found f;
	if ((n->parent->dir || n->parent == &root_node) && ctx_for_dir(n->parent, &c) == 0 &&
	    resolve(&c, n->name, &f)) {
		n->dir = f.dir;
		n->file = f.file;
		n->json = f.json;
	}
}

static struct node *adopt_slot(uint32_t s)
{
	struct nodeslot *rec = &map->nodes[s];
	struct node *n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strndup(rec->name, NAME_MAX))) {
		free(n);
		return NULL;
	}
	n->slot = s;
	n->ino = (uint64_t)rec->gen << 32 | s;
	n->nlookup = rec->nlookup;
	by_slot[s] = n;
	return n;
}

static struct node *parent_of(struct node *n)
{
	fuse_ino_t pino = map->nodes[n->slot].parent;
	struct node *p = pino == FUSE_ROOT_ID ? &root_node : by_slot[slot_of(pino)];
	return p && p->ino == pino ? p : NULL;
}

/* A node whose chain of parents does not reach the root (a worker killed
 * between freeing a parent and its child) cannot be named: it is dropped. */
static bool rooted(struct node *n)
{
	for (int depth = 0; n != &root_node; depth++) {
		if (depth > 2 * TREE_MAX_DEPTH || !(n = parent_of(n)))
			return false;
	}
	return true;
}

/* Rebuilds the node table from the map: every slot in use becomes a node
 * with its id, its lookup count and its parent; then each name is resolved
 * against the tree as it is now. */
static int adopt_nodes(void)
{
	uint32_t hwm = map->hdr->hwm;
	for (uint32_t s = FUSE_ROOT_ID + 1; s < hwm; s++)
		if (map->nodes[s].used && !adopt_slot(s))
			return -ENOMEM;
	uint8_t *keep = calloc(hwm, 1), *done = calloc(hwm, 1);
	if (!keep || !done) {
		free(keep);
		return -ENOMEM;
	}
	for (uint32_t s = FUSE_ROOT_ID + 1; s < hwm; s++)
		keep[s] = by_slot[s] && rooted(by_slot[s]);
	for (uint32_t s = FUSE_ROOT_ID + 1; s < hwm; s++) {
		struct node *n = by_slot[s];
		if (keep[s]) {
			n->parent = parent_of(n);
			continue;
		}
		if (n) {
			free(n->name);
			free(n);
			by_slot[s] = NULL;
		}
		map->nodes[s].used = 0;
		free_slots[n_free++] = s;
	}
	for (uint32_t s = FUSE_ROOT_ID + 1; s < hwm; s++)
		if (keep[s])
			by_slot[s]->parent->children++;
	for (uint32_t s = FUSE_ROOT_ID + 1; s < hwm; s++) {
		struct node *n = by_slot[s];
		if (!n)
			continue;
		settle(n, done);
		if (map->nodes[s].hashed && (n->dir || n->file))
			hash_name(n);
	}
	free(keep);
	free(done);
	return 0;
}

int nodes_attach(struct shared_map *m)
{
	map = m;
	by_slot = calloc(MAP_NODE_SLOTS, sizeof(*by_slot));
	free_slots = calloc(MAP_NODE_SLOTS, sizeof(*free_slots));
	if (!by_slot || !free_slots)
		return -ENOMEM;
	return adopt_nodes();
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
	/* tenants/TENANT/X... is the tenant's X...: the tree sees the root's
	 * paths, with the tenant set. */
	if (depth > 2 && path[depth - 1]->dir == &tenants_kind) {
		snprintf(c->tenant, sizeof(c->tenant), "%s", path[depth - 2]->name);
		c->via_tenants = true;
		depth -= 2;
	}
	for (int i = 0; i < depth; i++) {
		c->comp[i] = path[depth - 1 - i]->name;
		c->kinds[i] = path[depth - 1 - i]->dir;
	}
	c->depth = depth;
	c->kind = dir->dir;
	if (!c->via_tenants)
		ctx_object_tenant(c, c->tenant, sizeof(c->tenant));
	tenant_scope_set(c->tenant);
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

void ctx_path(const struct ctx *c, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (int i = 0; i < c->depth && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "/" : "", c->comp[i]);
}

/* The object's (or, for a child that failed, the directory's) slot says
 * what failed by its operation; the root's, which collects top-level
 * failures from everywhere, by its path too. */
void report(struct ctx *c, int r, bool top_level, const char *child, const char *opfmt, ...)
{
	if (c->tenant[0] && c->why[0]) /* the tenant's names, not the internal ones */
		tenant_unscope(c->why, c->tenant);
	const char *msg = c->why[0] ? c->why : strerror(-r);
	char path[512], op[320], where[640], source[1000];
	ctx_path(c, path, sizeof(path));
	snprintf(where, sizeof(where), "%s%s%s", path, path[0] && child ? "/" : "", child ? child : "");
	va_list ap;
	va_start(ap, opfmt);
	vsnprintf(op, sizeof(op), opfmt, ap);
	va_end(ap);
	log_msg(L_WARNING, "%s: refused %s: %s", where, op, msg);
	struct errslot *slot = errslot_for(c);
	snprintf(source, sizeof(source), "%s%s%s", op, child ? " " : "", child ? child : "");
	errslot_set(slot, source, msg);
	struct errslot *root = c->tenant[0] ? tenant_errslot(c->tenant, "") : &root_error;
	if (!top_level || slot == root)
		return;
	if (c->tenant[0])
		tenant_unscope(where, c->tenant);
	snprintf(source, sizeof(source), "%s%s%s", where, where[0] ? " " : "", op);
	errslot_set(root, source, msg);
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
