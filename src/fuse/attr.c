/* Attributes: lookup, forget, getattr and setattr, with file modes that
 * show what each file allows now. */
#include "glue.h"
#include "stsfs/tenancy.h"

#include <stdlib.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
	if (c.kind->refuses && c.kind->refuses(&c, NULL))
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

/* --owner, or with --tenancy uid the tenant's uid for its objects. */
static void node_owner(struct node *n, uid_t *uid, gid_t *gid)
{
	*uid = opts.uid;
	*gid = opts.gid;
	struct ctx c;
	if (tenancy.mode == TENANCY_UID && ctx_for(n, &c) == 0 && c.tenant[0] && c.depth >= 2)
		*uid = (uid_t)strtoul(c.tenant, NULL, 10);
}

void node_perm_attr(struct node *n, uid_t *uid, gid_t *gid, mode_t *mode)
{
	node_owner(n, uid, gid);
	if (n->dir)
		*mode = S_IFDIR | (opts.mode & 07777);
	else
		*mode = S_IFREG | mode_bits(n->json ? n->file->perm & 0444 : n->file->perm);
}

static void fill_attr(struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_atim = st->st_mtim = st->st_ctim = mount_time;
	st->st_ino = n->ino;
	node_owner(n, &st->st_uid, &st->st_gid);
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

void entry_of(struct node *n, bool cached, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->ino;
	n->cached = cached;
	e->attr_timeout = cached ? cache_timeout() : 0;
	e->entry_timeout = e->attr_timeout;
	fill_attr(n, &e->attr);
}

void reply_entry(fuse_req_t req, struct node *n, bool cached)
{
	struct fuse_entry_param e;
	entry_of(n, cached, &e);
	if (fuse_reply_entry(req, &e) != 0)
		node_forget(n->ino, 1);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *p = node_get(parent);
	struct ctx c;
	struct found f;
	char internal[NAME_MAX + 1];
	if (!p || !p->dir || ctx_for_dir(p, &c) != 0 || view_enter(req, &c) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int r = perm_check(req, p, &c, X_OK, name, "lookup");
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (view_name(&c, name, internal, sizeof(internal)) != 0 || !resolve(&c, internal, &f)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct node *n = node_child(p, internal, f.dir, f.file, f.json);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_entry(req, n, view_cached(&c, name, f.cached));
}

/* n's ctx as req's caller sees it: with --tenancy, a node reached through
 * a name another caller looked up is checked against this caller's view. */
static bool node_ctx(fuse_req_t req, struct node *n, struct ctx *c)
{
	return ctx_for(n, c) == 0 && view_enter(req, c) == 0;
}

/* The name to report a refusal under: a file's (its ctx is its parent's). */
static const char *child_of(struct node *n)
{
	return n->dir ? NULL : n->name;
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
	struct ctx c;
	if (!n || !node_valid(n) || !node_ctx(req, n, &c)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int r = perm_check(req, n, &c, 0, child_of(n), "stat");
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	struct stat st;
	fill_attr(n, &st);
	fuse_reply_attr(req, &st, n->cached ? cache_timeout() : 0);
}

/* What setattr may change, and who may: owners and modes never (they are
 * the tree's: --owner, --mode); the size (a no-op, see below) with write
 * permission; times, which stay the mount's, as utimensat(2) lets: the
 * owner any, a writer "now". 0 or a negative errno, reported. */
static int setattr_allowed(fuse_req_t req, struct node *n, struct ctx *c, const struct stat *attr, int to_set,
			   bool by_fd)
{
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		why_set(c->why, -EPERM, "%s: owners and modes are the whole tree's: start stsfs with --owner and --mode",
			to_set & FUSE_SET_ATTR_MODE ? "chmod" : "chown");
		report(c, -EPERM, false, child_of(n), "%s", to_set & FUSE_SET_ATTR_MODE ? "chmod" : "chown");
		return -EPERM;
	}
	int r = perm_check(req, n, c, (to_set & FUSE_SET_ATTR_SIZE) && !by_fd ? W_OK : 0, child_of(n), "truncate");
	if (r < 0 || !(to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) || perm_owner(req, n))
		return r;
	bool now = (!(to_set & FUSE_SET_ATTR_ATIME) || (to_set & FUSE_SET_ATTR_ATIME_NOW)) &&
		   (!(to_set & FUSE_SET_ATTR_MTIME) || (to_set & FUSE_SET_ATTR_MTIME_NOW));
	if (now)
		return perm_check(req, n, c, W_OK, child_of(n), "touch");
	why_set(c->why, -EPERM, "setting times: only the owner may (uid %u)", (unsigned)fuse_req_ctx(req)->uid);
	report(c, -EPERM, false, child_of(n), "touch");
	return -EPERM;
}

/* Truncation means nothing for attributes (a write replaces the value) or
 * for device bytes (a block device cannot change size by truncate), so
 * accept it as a block device accepts O_TRUNC: by ignoring it. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct node *n = node_get(ino);
	struct ctx c;
	if (!n || !node_valid(n) || !node_ctx(req, n, &c)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int r = setattr_allowed(req, n, &c, attr, to_set, fi != NULL);
	if (r < 0) {
		fuse_reply_err(req, -r);
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

/* access(2), and chdir: the kernel asks (FUSE_ACCESS) since it checks no
 * modes itself. Files are never executable: that is an answer, not a
 * refusal, and is not reported. */
static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct node *n = node_get(ino);
	struct ctx c;
	if (!n || !node_valid(n) || !node_ctx(req, n, &c)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((mask & X_OK) && !n->dir) {
		fuse_reply_err(req, EACCES);
		return;
	}
	int r = perm_check(req, n, &c, mask & (R_OK | W_OK | X_OK), child_of(n), "access");
	fuse_reply_err(req, -r);
}

void attr_ops(struct fuse_lowlevel_ops *ops)
{
	clock_gettime(CLOCK_REALTIME, &mount_time);
	ops->lookup = op_lookup;
	ops->forget = op_forget;
	ops->forget_multi = op_forget_multi;
	ops->getattr = op_getattr;
	ops->setattr = op_setattr;
	ops->access = op_access;
}
