/* Directories: listings from the kinds' tables and objects; mkdir, rmdir
 * and rename handed to the kinds; files cannot be created or removed. */
#include "glue.h"
#include "stsfs/tenancy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stsfs/state.h"

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

struct view_filter {
	struct ctx *c;
	struct dirbuf *d;
};

/* A tenant's listing of loop/, dm/, thin/: its own objects, as it names them. */
static int dirbuf_add_shown(void *arg, const char *internal)
{
	struct view_filter *v = arg;
	const char *shown = view_shown(v->c, internal);
	return shown ? dirbuf_add(v->d, shown) : 0;
}

/* The listing of directory n as it is now, as req's caller sees it;
 * checked: whether the caller may list it (not for a dead worker's
 * handle, which was checked when opened). */
static int dirbuf_open(fuse_req_t req, struct node *n, bool checked, struct dirbuf **out)
{
	struct ctx c;
	if (!n || !n->dir || !node_valid(n) || ctx_for_dir(n, &c) != 0 || view_enter(req, &c) != 0)
		return -ENOENT;
	int r = checked ? perm_check(req, n, &c, R_OK, NULL, "ls") : 0;
	if (r < 0)
		return r;
	struct dirbuf *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	dirbuf_add(d, ".");
	dirbuf_add(d, "..");
	add_file_entries(&c, d);
	for (const struct subdir_def *s = c.kind->subdirs; s && s->name; s++)
		if (subdir_visible(&c, s))
			dirbuf_add(d, s->name);
	struct view_filter v = { &c, d };
	if (c.kind->list)
		c.kind->list(&c, dirbuf_add_shown, &v);
	if (d->err) {
		int err = d->err;
		dirbuf_free(d);
		return -err;
	}
	*out = d;
	return 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirbuf *d;
	int r = dirbuf_open(req, node_get(ino), true, &d);
	if (r == 0 && !(fi->fh = handle_new(d, O_RDONLY, true))) {
		dirbuf_free(d);
		r = -ENOMEM;
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (fuse_reply_open(req, fi) != 0)
		dirbuf_free(handle_take(fi->fh));
}

/* The listing behind fi; a dead worker's is listed afresh. NULL after
 * replying with the error. */
static struct dirbuf *dirbuf_of(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirbuf *d = handle_get(fi->fh), *mine;
	if (d)
		return d;
	int r = handle_foreign(fi->fh) ? dirbuf_open(req, node_get(ino), false, &mine) : -EBADF;
	if (r == 0 && (d = handle_adopt(fi->fh, mine)) != mine)
		dirbuf_free(mine);
	if (!d)
		fuse_reply_err(req, r < 0 ? -r : ENOMEM);
	return d;
}

/* The snapshot taken at opendir is served by index: off is the next one. */
static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct dirbuf *d = dirbuf_of(req, ino, fi);
	if (!d)
		return;
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

/* As readdir, with each entry's attributes (and a lookup reference the
 * kernel takes): `ls -l` then needs no LOOKUP per name. "." and ".." carry
 * none (the kernel ignores them). */
static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct dirbuf *d = dirbuf_of(req, ino, fi);
	if (!d)
		return;
	struct node *dir = node_get(ino);
	struct ctx c;
	char *buf = malloc(size);
	if (!buf || !dir || ctx_for_dir(dir, &c) != 0 || view_enter(req, &c) != 0) {
		free(buf);
		fuse_reply_err(req, buf ? ENOENT : ENOMEM);
		return;
	}
	size_t used = 0;
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct fuse_entry_param e = { .attr = { .st_mode = d->types[i] } };
		struct found f;
		struct node *n = NULL;
		bool dots = strcmp(d->names[i], ".") == 0 || strcmp(d->names[i], "..") == 0;
		char internal[NAME_MAX + 1];
		if (!dots && view_name(&c, d->names[i], internal, sizeof(internal)) == 0 && resolve(&c, internal, &f))
			n = node_child(dir, internal, f.dir, f.file, f.json);
		if (n)
			entry_of(n, view_cached(&c, d->names[i], f.cached), &e);
		size_t need = fuse_add_direntry_plus(req, buf + used, size - used, d->names[i], &e, (off_t)(i + 1));
		if (need > size - used) {
			if (n)
				node_forget(n->ino, 1); /* not sent: the kernel takes no reference */
			break;
		}
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirbuf *d = handle_take(fi->fh);
	if (d)
		dirbuf_free(d);
	fuse_reply_err(req, 0);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *shown, mode_t mode)
{
	struct node *p = node_get(parent);
	struct ctx c;
	struct found f;
	char name[NAME_MAX + 1];
	if (!p || !p->dir || !node_valid(p) || ctx_for_dir(p, &c) != 0 || view_enter(req, &c) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int r = perm_check(req, p, &c, W_OK | X_OK, shown, "mkdir");
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	/* ':' marks a tenant's internal names: no name a user gives has it. */
	r = strchr(shown, ':') ? why_set(c.why, -EINVAL, "'%s': names have no ':' (allowed: A-Z a-z 0-9 _ . + -)", shown)
				   : view_name(&c, shown, name, sizeof(name));
	if (r < 0) {
		report(&c, r, true, shown, "mkdir");
		fuse_reply_err(req, -r);
		return;
	}
	if (resolve(&c, name, &f)) {
		why_set(c.why, -EEXIST, "'%s' already exists", shown);
		report(&c, -EEXIST, true, shown, "mkdir");
		fuse_reply_err(req, EEXIST);
		return;
	}
	if (!c.kind->mkdir) {
		why_set(c.why, -EPERM, "objects cannot be created in %s/", c.depth ? c.comp[c.depth - 1] : "the root");
		report(&c, -EPERM, true, shown, "mkdir");
		fuse_reply_err(req, EPERM);
		return;
	}
	/* A tenant's count and its new object, one mkdir at a time, so that
	 * two at once cannot both pass the quota. */
	static pthread_mutex_t quota_lock = PTHREAD_MUTEX_INITIALIZER;
	bool counted = c.tenant[0] != '\0';
	if (counted)
		pthread_mutex_lock(&quota_lock);
	if (counted)
		r = tenant_quota_object(c.kinds[0] == &loop_dir_kind ? "loop" : c.kinds[0] == &dm_dir_kind ? "dm" : "thin",
					c.tenant, c.why);
	r = r ? r : c.kind->mkdir(&c, name);
	if (counted)
		pthread_mutex_unlock(&quota_lock);
	if (r < 0) {
		report(&c, r, true, shown, "mkdir");
		fuse_reply_err(req, -r);
		return;
	}
	/* Nothing to drop: failed lookups are never cached, so the new name
	 * (and what an owner made elsewhere) is found at once. */
	if (!resolve(&c, name, &f) || !f.dir) {
		fuse_reply_err(req, EIO);
		return;
	}
	struct node *n = node_child(p, name, f.dir, NULL, false);
	if (!n)
		fuse_reply_err(req, ENOMEM);
	else
		reply_entry(req, n, view_cached(&c, shown, f.cached));
}

/* Resolves (parent, name) to an object directory ctx, or replies an error;
 * internal gets the object's internal name (view_name). The caller must
 * be allowed to change parent's entries for op. */
static bool object_ctx(fuse_req_t req, fuse_ino_t parent, const char *name, struct ctx *c, char *internal,
		       const char *op)
{
	struct node *p = node_get(parent);
	struct found f;
	if (!p || !p->dir || ctx_for_dir(p, c) != 0 || view_enter(req, c) != 0) {
		fuse_reply_err(req, ENOENT);
		return false;
	}
	int r = perm_check(req, p, c, W_OK | X_OK, name, op);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return false;
	}
	if (view_name(c, name, internal, NAME_MAX + 1) != 0 || !resolve(c, internal, &f)) {
		fuse_reply_err(req, ENOENT);
		return false;
	}
	if (!f.dir) {
		fuse_reply_err(req, ENOTDIR);
		return false;
	}
	ctx_push(c, internal, f.dir);
	return true;
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ctx c;
	char internal[NAME_MAX + 1];
	if (!object_ctx(req, parent, name, &c, internal, "rmdir"))
		return;
	int r = -EPERM;
	if (c.kind->remove)
		r = c.kind->remove(&c);
	else
		why_set(c.why, r, "%s cannot be removed", name);
	if (r < 0) {
		report(&c, r, true, NULL, "rmdir");
		fuse_reply_err(req, -r);
		return;
	}
	cache_all_changed();
	fuse_reply_err(req, 0);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct ctx c;
	char internal[NAME_MAX + 1], newinternal[NAME_MAX + 1];
	if (!object_ctx(req, parent, name, &c, internal, "rename"))
		return;
	struct ctx dirc;
	ctx_up(&c, 1, &dirc);
	int r = strchr(newname, ':') ? -EINVAL : view_name(&dirc, newname, newinternal, sizeof(newinternal));
	if (r < 0)
		r = why_set(c.why, -EINVAL, "'%s': names have no ':' (allowed: A-Z a-z 0-9 _ . + -)", newname);
	else if (newparent != parent)
		r = why_set(c.why, -EXDEV, "objects can only be renamed within their directory");
	else if (flags & RENAME_EXCHANGE)
		r = why_set(c.why, -EINVAL, "objects cannot be exchanged (RENAME_EXCHANGE); rename them one at a time");
	else if (flags & ~(unsigned)RENAME_NOREPLACE) /* never replacing is what rename does here */
		r = why_set(c.why, -EINVAL, "rename flags %#x are not supported", flags);
	else if (!c.kind->rename)
		r = why_set(c.why, -EPERM, "%s cannot be renamed", name);
	else
		r = c.kind->rename(&c, newinternal);
	if (r < 0) {
		report(&c, r, true, NULL, "rename to %s", newname);
		fuse_reply_err(req, -r);
		return;
	}
	/* The kernel moves its dentry to the new name: the node follows. */
	struct node *p = node_get(parent);
	if (p)
		node_rename(p, internal, newinternal);
	cache_all_changed();
	fuse_reply_err(req, 0);
}

static void refuse_file_op(fuse_req_t req, fuse_ino_t parent, const char *name, const char *what)
{
	struct node *p = node_get(parent);
	struct ctx c;
	if (!p || !p->dir || ctx_for_dir(p, &c) != 0 || view_enter(req, &c) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int r = perm_check(req, p, &c, W_OK | X_OK, name, what);
	if (r == 0) {
		r = why_set(c.why, -EPERM, "cannot %s '%s': files in this tree are fixed by the object kind", what, name);
		report(&c, r, false, NULL, "%s %s", what, name);
	}
	fuse_reply_err(req, -r);
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


/* fsync(2) on an object's directory: its saved state is durable now. */
static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	state_sync();
	fuse_reply_err(req, 0);
}

void dir_ops(struct fuse_lowlevel_ops *ops)
{
	ops->opendir = op_opendir;
	ops->fsyncdir = op_fsyncdir;
	ops->readdir = op_readdir;
	ops->readdirplus = op_readdirplus;
	ops->releasedir = op_releasedir;
	ops->mkdir = op_mkdir;
	ops->rmdir = op_rmdir;
	ops->rename = op_rename;
	ops->unlink = op_unlink;
	ops->mknod = op_mknod;
	ops->create = op_create;
}
