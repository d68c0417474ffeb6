/* The tree's mount across mount namespaces (include/stsfs/mountns.h).
 *
 * A container that bound the tree holds a copy of its mount. An unmount on
 * the host reaches that copy only through propagation: the copy must sit
 * under a slave of a shared mount that holds the tree's mount point, which
 * is why stsfs makes the mount point's parent a shared mount. Without that,
 * the copy keeps the FUSE connection, and with it this daemon, alive after
 * the host's unmount: the daemon says so (supervisor.c) and a second one
 * on the same state directory is told which process holds it. */
#include "stsfs/mountns.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stsfs/log.h"
#include "stsfs/mountinfo.h"

/* The whole of fd from its start, NUL-terminated; NULL on error. */
static char *read_all(int fd)
{
	size_t cap = 16384, len = 0;
	char *buf = malloc(cap);
	if (!buf || lseek(fd, 0, SEEK_SET) < 0) {
		free(buf);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *p = realloc(buf, cap * 2);
			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0) {
				buf[len] = '\0';
				return buf;
			}
			break;
		}
		len += (size_t)n;
	}
	free(buf);
	return NULL;
}

/* The topmost mount at path in this namespace (of a FUSE file system only,
 * with fuse_only): 1 found (its device and whether it is shared in *out;
 * target and fstype are not kept), 0 none, -errno. */
static int top_mount_at(const char *path, bool fuse_only, struct mountinfo_line *out)
{
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char *buf = read_all(fd);
	close(fd);
	if (!buf)
		return -EIO;
	int found = 0;
	char *save = NULL;
	/* Later lines are mounted later: the last one at path is on top. */
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct mountinfo_line m;
		if (mountinfo_parse_line(line, &m) == 0 && strcmp(m.target, path) == 0 &&
		    (!fuse_only || strncmp(m.fstype, "fuse", 4) == 0)) {
			found = 1;
			*out = (struct mountinfo_line){ .major = m.major, .minor = m.minor, .shared = m.shared };
		}
	}
	free(buf);
	return found;
}

static int mount_at(const char *path, bool *shared)
{
	struct mountinfo_line m;
	int r = top_mount_at(path, false, &m);
	if (r == 1)
		*shared = m.shared;
	return r;
}

int mountns_share_parent(const char *mountpoint, char *why, size_t len)
{
	char real[PATH_MAX], parent[PATH_MAX];
	if (!realpath(mountpoint, real)) {
		int e = errno;
		snprintf(why, len, "%s: %s", mountpoint, strerror(e));
		return -e;
	}
	snprintf(parent, sizeof(parent), "%s", real);
	dirname(parent);
	if (strcmp(real, "/") == 0)
		return 0; /* the root has no parent to share */
	bool shared = false;
	int r = mount_at(parent, &shared);
	if (r < 0) {
		snprintf(why, len, "reading /proc/self/mountinfo: %s", strerror(-r));
		return r;
	}
	/* A directory is made a mount (so that it can be shared on its own)
	 * by binding it onto itself; the bind of a restart's earlier start is
	 * found above and used again. */
	if (r == 0) {
		if (mount(parent, parent, NULL, MS_BIND, NULL) < 0) {
			int e = errno;
			snprintf(why, len, "binding %s onto itself: %s", parent, strerror(e));
			return -e;
		}
		log_msg(L_INFO, "%s: bound onto itself, to be a shared mount (--propagation)", parent);
		if (mount_at(parent, &shared) < 0)
			shared = false;
	}
	if (shared)
		return 0;
	/* Just this mount: mounts below it keep their own propagation. */
	if (mount(NULL, parent, NULL, MS_SHARED, NULL) < 0) {
		int e = errno;
		snprintf(why, len, "making %s a shared mount: %s", parent, strerror(e));
		return -e;
	}
	log_msg(L_INFO, "%s: made a shared mount, so that unmounts and restarts of %s reach "
			"the mount namespaces that bind it with rslave (docs/containers.md)",
		parent, real);
	return 0;
}

int mountns_has_dev(int fd, dev_t dev)
{
	char *buf = read_all(fd);
	if (!buf)
		return -EIO;
	int found = 0;
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
		struct mountinfo_line m;
		if (mountinfo_parse_line(line, &m) == 0 && makedev(m.major, m.minor) == dev)
			found = 1;
	}
	free(buf);
	return found;
}

int mountns_fuse_dev_at(const char *path, dev_t *dev)
{
	struct mountinfo_line m;
	int r = top_mount_at(path, true, &m);
	if (r == 1)
		*dev = makedev(m.major, m.minor);
	return r;
}

/* ------------------------------------------------------------ the lock */

void holder_note(int lock_fd, dev_t dev, const char *mountpoint)
{
	char line[PATH_MAX + 64];
	int n = snprintf(line, sizeof(line), "%ld %u:%u %s\n", (long)getpid(), major(dev), minor(dev), mountpoint);
	if (lock_fd < 0 || n < 0 || (size_t)n >= sizeof(line))
		return;
	/* Best effort: the lock itself is the flock, this only explains it. */
	if (ftruncate(lock_fd, 0) < 0 || pwrite(lock_fd, line, (size_t)n, 0) != n)
		log_msg(L_DEBUG, "noting the holder in the state lock: %s", strerror(errno));
}

/* Whether process pid is in this process's mount namespace. */
static bool same_mntns(long pid)
{
	char path[64], ours[64] = "", theirs[64] = "";
	snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", pid);
	ssize_t a = readlink("/proc/self/ns/mnt", ours, sizeof(ours) - 1);
	ssize_t b = readlink(path, theirs, sizeof(theirs) - 1);
	return a > 0 && b > 0 && strcmp(ours, theirs) == 0;
}

/* Why the lock is held, from what its holder noted (holder_note). */
static void explain_holder(const char *dir, int fd)
{
	char *note = read_all(fd);
	long pid = 0;
	unsigned maj = 0, min = 0;
	char mp[PATH_MAX] = "";
	int got = note ? sscanf(note, "%ld %u:%u %4095[^\n]", &pid, &maj, &min, mp) : 0;
	free(note);
	if (got < 1 || pid <= 0) {
		log_msg(L_ERROR, "state directory %s is in use by another stsfs (its process is in /proc/locks)", dir);
		return;
	}
	if (got < 4) {
		log_msg(L_ERROR, "state directory %s is in use by another stsfs: process %ld, still starting", dir, pid);
		return;
	}
	int mi = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	int here = mi >= 0 ? mountns_has_dev(mi, makedev(maj, min)) : -1;
	if (mi >= 0)
		close(mi);
	if (maj == 0 && min == 0)
		log_msg(L_ERROR, "state directory %s is in use by another stsfs: process %ld serves %s; stop it first",
			dir, pid, mp);
	else if (!same_mntns(pid))
		log_msg(L_ERROR,
			"state directory %s is in use by another stsfs: process %ld serves %s in another mount "
			"namespace; stop it there first",
			dir, pid, mp);
	else if (here != 0)
		log_msg(L_ERROR,
			"state directory %s is in use by another stsfs: process %ld serves %s; stop it first "
			"(umount %s, or systemctl stop stsfs)",
			dir, pid, mp, mp);
	else
		log_msg(L_ERROR,
			"state directory %s is in use by another stsfs: process %ld still serves the tree it "
			"mounted at %s, which is gone from this mount namespace but still mounted in others "
			"(containers that bound it, without a shared parent to carry the unmount): it serves "
			"them until they unmount it. Unmount it there (or stop them), or end it at once with "
			"kill %ld, or echo 1 > /sys/fs/fuse/connections/%u/abort (their calls then fail with "
			"ENOTCONN); docs/containers.md, \"Mount propagation\"",
			dir, pid, mp, pid, min);
}

/* Two daemons on one state directory would both think they own its
 * objects. */
int holder_lock(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_msg(L_ERROR, "state directory %s: opening its lock %s: %s", dir, path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			explain_holder(dir, fd);
		else
			log_msg(L_ERROR, "state directory %s is in use by another stsfs (%s)", dir, strerror(errno));
		close(fd);
		return -1;
	}
	char line[32];
	int n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)n, 0) != n)
		log_msg(L_DEBUG, "noting the holder in the state lock: %s", strerror(errno));
	return fd; /* held for the life of the process */
}
