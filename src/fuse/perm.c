/* Who may do what (docs/security.md, "How permissions are checked"). stsfs
 * mounts with allow_other and without the kernel's default_permissions, and
 * checks here, per request, what the kernel would have checked: the mounter
 * only rule when the admin did not ask for -o allow_other, and the owner,
 * group and other bits of each node (as getattr reports them) the way
 * generic_permission does. The kernel's refusals carry no reason; these
 * write one into the `error` file and the log: who was refused, what the
 * node's owner and mode are, and which option would allow it. */
#include "glue.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stsfs/kernel.h"
#include "stsfs/tenancy.h"

#define MAX_GROUPS 256

struct who {
	fuse_req_t req;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int ngroups; /* -1: not read yet (it reads /proc: only when it matters) */
	gid_t groups[MAX_GROUPS];
};

static bool in_group(struct who *w, gid_t gid)
{
	if (w->gid == gid)
		return true;
	if (w->ngroups < 0) {
		int n = fuse_req_getgroups(w->req, MAX_GROUPS, w->groups);
		w->ngroups = n < 0 ? 0 : n > MAX_GROUPS ? MAX_GROUPS : n;
	}
	for (int i = 0; i < w->ngroups; i++)
		if (w->groups[i] == gid)
			return true;
	return false;
}

/* generic_permission's rule for mask (R_OK, W_OK, X_OK): the owner's bits,
 * else the group's for a member, else the others'. The caller's groups are
 * read only when the group and other bits disagree. Root (uid 0 on the
 * host) reads, writes and searches everything, as CAP_DAC_OVERRIDE lets it;
 * the table still refuses what no one may do (file.c). */
static bool allowed(struct who *w, uid_t uid, gid_t gid, mode_t mode, int m)
{
	mode_t mask = (mode_t)m;
	if (w->uid == 0)
		return true;
	if (w->uid == uid)
		return ((mode >> 6) & mask) == mask;
	bool g = ((mode >> 3) & mask) == mask, o = (mode & mask) == mask;
	if (g == o)
		return o;
	return in_group(w, gid) ? g : o;
}

/* "uid 100000 gid 100000 (root in a user namespace)": /proc is read here,
 * when refusing, never on an allowed request. */
static void describe(const struct who *w, char *buf, size_t len)
{
	int ns = kproc_userns(w->pid, w->uid);
	snprintf(buf, len, "uid %u gid %u%s", (unsigned)w->uid, (unsigned)w->gid,
		 ns == 2 ? " (root in a user namespace)" : ns == 1 ? " (in a user namespace)" : "");
}

/* "/loop/o/size", "/" for the root. */
static void node_path(const struct node *n, char *buf, size_t len)
{
	const char *names[TREE_MAX_DEPTH + 4];
	int depth = 0;
	for (; n && n->parent && depth < (int)(sizeof(names) / sizeof(names[0])); n = n->parent)
		names[depth++] = n->name;
	size_t used = 0;
	buf[0] = '\0';
	if (!depth)
		snprintf(buf, len, "/");
	while (depth-- > 0 && used < len)
		used += (size_t)snprintf(buf + used, len - used, "/%s", names[depth]);
}

static const char *verb(bool dir, int mask)
{
	if (dir)
		return mask == X_OK ? "search" : mask == R_OK ? "list" : (mask & W_OK) ? "change entries of" : "use";
	return mask == R_OK ? "read" : mask == W_OK ? "write" : "read and write";
}

static void mask_bits(int mask, char *out)
{
	int i = 0;
	if (mask & R_OK)
		out[i++] = 'r';
	if (mask & W_OK)
		out[i++] = 'w';
	if (mask & X_OK)
		out[i++] = 'x';
	out[i] = '\0';
}

/* What would allow it: the owner's bits are the table's for files, so
 * nothing does if they lack it; else --owner, or --mode for the rest. */
static void hint(struct who *w, gid_t gid, mode_t mode, int mask, char *buf, size_t len)
{
	char bits[4];
	mask_bits(mask, bits);
	if (((mode >> 6) & (mode_t)mask) != (mode_t)mask) {
		if (S_ISDIR(mode))
			snprintf(buf, len, "only root may: give --mode %s for the owner", bits);
		else
			snprintf(buf, len, "only root may: the file is %s", (mode & 0200) ? "write-only" : "read-only");
		return;
	}
	const char *whom = in_group(w, gid) ? "the group" : "others";
	if (tenancy_on())
		snprintf(buf, len, "a --mode giving %s %s allows it", whom, bits);
	else
		snprintf(buf, len, "--owner %u:%u, or a --mode giving %s %s, allows it", (unsigned)w->uid,
			 (unsigned)w->gid, whom, bits);
}

/* The reason goes to c's error file and the log (report()); a getattr of
 * the mount's root, which `ls -l /`, `df` and `find /` do in passing, is
 * logged at debug only. */
static int refuse(struct ctx *c, bool quiet, bool top_level, const char *child, const char *op)
{
	if (quiet) {
		errslot_set(errslot_for(c), op, c->why);
		log_msg(L_DEBUG, "refused %s of the root: %s", op, c->why);
		return -EACCES;
	}
	report(c, -EACCES, top_level, child, "%s", op);
	return -EACCES;
}

static int refuse_mode(struct who *w, struct node *at, int mask, struct ctx *c, bool quiet, const char *child,
		       const char *op)
{
	uid_t uid;
	gid_t gid;
	mode_t mode;
	node_perm_attr(at, &uid, &gid, &mode);
	char who[96], path[128], why[160];
	describe(w, who, sizeof(who));
	node_path(at, path, sizeof(path));
	hint(w, gid, mode, mask, why, sizeof(why));
	/* Not "UID:GID": with --tenancy uid, report() takes "TENANT:" for a
	 * tenant's name prefix. */
	why_set(c->why, -EACCES, "%s may not %s %s (owner %u, group %u, mode %04o): %s", who, verb(S_ISDIR(mode), mask), path,
		(unsigned)uid, (unsigned)gid, (unsigned)(mode & 07777), why);
	/* As their other failures, mkdir's, rmdir's and rename's also go to
	 * the root's error. */
	bool top = strcmp(op, "mkdir") == 0 || strcmp(op, "rmdir") == 0 || strcmp(op, "rename") == 0;
	return refuse(c, quiet, top, child, op);
}

static int refuse_mounter(struct who *w, struct ctx *c, bool quiet, const char *child, const char *op)
{
	char who[96];
	describe(w, who, sizeof(who));
	why_set(c->why, -EACCES,
		"%s refused: mounted without -o allow_other, only uid %u (the mounter)%s may use the tree; "
		"mount with -o allow_other (and --owner/--mode to say who may read and change it)",
		who, (unsigned)opts.mounter, opts.root_too && opts.mounter != 0 ? " and root" : "");
	return refuse(c, quiet, true, child, op);
}

int perm_check(fuse_req_t req, struct node *n, struct ctx *c, int mask, const char *child, const char *op)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	if (fc->uid == 0 && opts.mounter == 0)
		return 0; /* root, the mounter: the common case costs nothing */
	struct who w = { .req = req, .uid = fc->uid, .gid = fc->gid, .pid = fc->pid, .ngroups = -1 };
	bool quiet = !n->parent && mask == 0;
	if (opts.mounter_only && w.uid != opts.mounter && !(opts.root_too && w.uid == 0))
		return refuse_mounter(&w, c, quiet, child, op);
	if (w.uid == 0)
		return 0;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	/* Every directory has --mode: with x for all, every search passes. */
	if ((opts.mode & 0111) != 0111) {
		for (struct node *a = n->parent; a; a = a->parent) {
			node_perm_attr(a, &uid, &gid, &mode);
			if (!allowed(&w, uid, gid, mode, X_OK))
				return refuse_mode(&w, a, X_OK, c, false, child, op);
		}
	}
	if (!mask)
		return 0;
	node_perm_attr(n, &uid, &gid, &mode);
	if (!allowed(&w, uid, gid, mode, mask))
		return refuse_mode(&w, n, mask, c, false, child, op);
	return 0;
}

bool perm_owner(fuse_req_t req, struct node *n)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	uid_t uid;
	gid_t gid;
	mode_t mode;
	node_perm_attr(n, &uid, &gid, &mode);
	return fc->uid == 0 || fc->uid == uid;
}
