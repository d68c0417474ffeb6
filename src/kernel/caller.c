/* Paths as the process that wrote them sees them (docs/containers.md,
 * "Paths"). A container writes /back/x.img or /dev/sdb: names in its own
 * root and mount namespace, which the daemon's may not have or may give
 * another file. So the path is resolved from the writer's root
 * (/proc/PID/root, with RESOLVE_IN_ROOT: an absolute symlink or .. stays
 * inside it) and opened with the writer's uid, gid and groups, set on this
 * thread only (setfsuid, and the raw setgroups system call: glibc's
 * wrapper would change every thread). Then the file is looked for again
 * in the daemon's own namespace, so that policy (--allow-backing) judges
 * the host file it is. */
#include "stsfs/kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stsfs/why.h"

#define MAX_GROUPS 256

static const struct kcaller daemon_itself = { 0, 0, 0 };
static __thread const struct kcaller *current;

void kcaller_set(const struct kcaller *who)
{
	current = who;
}

const struct kcaller *kcaller_current(void)
{
	return current ? current : &daemon_itself;
}

/* The writer's supplementary groups, from /proc/PID/status. */
static int caller_groups(pid_t pid, gid_t *groups, int max)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		char *p = line + 7, *end;
		for (unsigned long g; n < max && (g = strtoul(p, &end, 10), end != p); p = end)
			groups[n++] = (gid_t)g;
		break;
	}
	fclose(f);
	return n;
}

struct saved_ids {
	gid_t groups[MAX_GROUPS];
	int ngroups;
};

static int become(const struct kcaller *who, struct saved_ids *s)
{
	gid_t groups[MAX_GROUPS];
	int n = who->pid > 0 ? caller_groups(who->pid, groups, MAX_GROUPS) : 0;
	if (n < 0)
		return n;
	s->ngroups = getgroups(MAX_GROUPS, s->groups);
	if (s->ngroups < 0 || syscall(SYS_setgroups, (size_t)n, groups) != 0)
		return -errno;
	setfsgid(who->gid);
	setfsuid(who->uid);
	return 0;
}

static void restore(const struct saved_ids *s)
{
	setfsuid(getuid());
	setfsgid(getgid());
	syscall(SYS_setgroups, (size_t)s->ngroups, s->groups);
}

int kcaller_open(const struct kcaller *who, const char *path, int flags, int *fd, char *why)
{
	char rootp[64] = "/";
	if (who->pid > 0)
		snprintf(rootp, sizeof(rootp), "/proc/%d/root", (int)who->pid);
	int root = open(rootp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return why_set(why, -ENOENT, "%s: the writing process (pid %d) is gone", path, (int)who->pid);
	struct saved_ids saved;
	int r = become(who, &saved);
	if (r < 0) {
		close(root);
		return why_set(why, r, "%s: cannot take on the writer's groups: %s", path, strerror(-r));
	}
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | (flags & O_PATH ? 0 : O_NOCTTY)),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	*fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
	int err = errno;
	restore(&saved);
	close(root);
	if (*fd >= 0)
		return 0;
	if (err == EACCES || err == EPERM)
		return why_set(why, -EACCES, "%s: permission denied to uid %u (gid %u) %s", path, (unsigned)who->uid,
			       (unsigned)who->gid, flags & O_PATH ? "on the way to it" :
			       (flags & O_ACCMODE) == O_RDONLY ? "to read it" : "to write it");
	return why_set(why, -err, "%s: %s (resolved in the writer's root and mount namespace)", path, strerror(err));
}

/* One line of mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
struct mount_line {
	int id;
	unsigned major, minor;
	char root[PATH_MAX], point[PATH_MAX];
};

/* mountinfo escapes blanks, tabs, newlines and backslashes as \ooo. */
static void unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] && p[3]) {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

/* Calls fn for each mount of PID's mountinfo (0: the daemon's) until it
 * returns true; true when one did. */
static bool each_mount(pid_t pid, bool (*fn)(const struct mount_line *m, void *arg), void *arg)
{
	char path[64];
	snprintf(path, sizeof(path), pid > 0 ? "/proc/%d/mountinfo" : "/proc/self/mountinfo", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char *line = NULL;
	size_t cap = 0;
	bool hit = false;
	struct mount_line *m = malloc(sizeof(*m));
	while (m && !hit && getline(&line, &cap, f) > 0) {
		int parent;
		if (sscanf(line, "%d %d %u:%u %4095s %4095s", &m->id, &parent, &m->major, &m->minor, m->root, m->point) != 6)
			continue;
		unescape(m->root);
		unescape(m->point);
		hit = fn(m, arg);
	}
	free(m);
	free(line);
	fclose(f);
	return hit;
}

static int fd_mount_id(int fd)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "re");
	int id = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "mnt_id: %d", &id) == 1)
			break;
	if (f)
		fclose(f);
	return id;
}

/* The writer's mount of the file: the file's path within its file system
 * is that mount's root plus the part of the path below its mount point. */
struct in_fs {
	int id;
	const char *seen; /* the path the kernel gives the open file */
	char fs_path[PATH_MAX];
	unsigned major, minor;
};

static bool within(const char *path, const char *dir, const char **rest)
{
	size_t n = strcmp(dir, "/") == 0 ? 0 : strlen(dir);
	if (strncmp(path, dir, n) != 0 || (path[n] && path[n] != '/'))
		return false;
	*rest = path + n;
	return true;
}

static bool writer_mount(const struct mount_line *m, void *arg)
{
	struct in_fs *w = arg;
	const char *rest;
	if (m->id != w->id || !within(w->seen, m->point, &rest))
		return false;
	snprintf(w->fs_path, sizeof(w->fs_path), "%s%s", strcmp(m->root, "/") == 0 ? "" : m->root, rest);
	if (!w->fs_path[0])
		snprintf(w->fs_path, sizeof(w->fs_path), "/");
	w->major = m->major;
	w->minor = m->minor;
	return true;
}

struct host_search {
	const struct in_fs *w;
	const struct stat *file;
	char *out;
	size_t len;
};

static bool same_file(const char *path, const struct stat *file)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_dev == file->st_dev && st.st_ino == file->st_ino;
}

static bool daemon_mount(const struct mount_line *m, void *arg)
{
	struct host_search *h = arg;
	const char *rest;
	if (m->major != h->w->major || m->minor != h->w->minor || !within(h->w->fs_path, m->root, &rest))
		return false;
	char cand[PATH_MAX * 2];
	snprintf(cand, sizeof(cand), "%s%s", strcmp(m->point, "/") == 0 && rest[0] ? "" : m->point, rest);
	char real[PATH_MAX];
	if (!realpath(cand, real) || !same_file(real, h->file))
		return false;
	snprintf(h->out, h->len, "%s", real);
	return true;
}

int kcaller_host_path(const struct kcaller *who, int fd, char *out, size_t len)
{
	struct stat file;
	char link[64], seen[PATH_MAX];
	out[0] = '\0';
	if (fstat(fd, &file) < 0)
		return -errno;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, seen, sizeof(seen) - 1);
	if (n < 0)
		return -errno;
	seen[n] = '\0';
	/* The same name here (no namespace of its own, or one that shares
	 * this mount) */
	char real[PATH_MAX];
	if (seen[0] == '/' && realpath(seen, real) && same_file(real, &file)) {
		snprintf(out, len, "%s", real);
		return 0;
	}
	/* A bind mount (-v /srv/back:/back): the same file system mounted here
	 * at another place, or from another root. The kernel names the file
	 * from the writer's namespace root, as its mountinfo names mounts. */
	struct in_fs w = { .id = fd_mount_id(fd), .seen = seen };
	if (w.id < 0 || who->pid <= 0 || !each_mount(who->pid, writer_mount, &w))
		return 0;
	struct host_search h = { &w, &file, out, len };
	each_mount(0, daemon_mount, &h);
	return 0;
}

int kcaller_dev(const struct kcaller *who, const char *path, dev_t *dev, char *why)
{
	int fd;
	int r = kcaller_open(who, path, O_PATH, &fd, why);
	if (r < 0)
		return r == -EACCES ? r : -ENOENT;
	struct stat st;
	r = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return why_set(why, r, "%s: %s", path, strerror(-r));
	if (!S_ISBLK(st.st_mode))
		return why_set(why, -EINVAL, "%s is not a block device", path);
	*dev = st.st_rdev;
	return 0;
}
