/* A loop object's backing file, as its writer named it (docs/loop.md,
 * "backing_file"; docs/containers.md, "Paths"). The path is the writer's:
 * resolved in its root and mount namespace and opened with its
 * credentials, so a container attaches /back/x.img as it sees it, and
 * only a file it may read (or write, unless read_only). The policy
 * (--allow-backing) judges the host file it is, found again in the
 * daemon's namespace, by that host path, at the write and again at each
 * activation. A file the host cannot reach (a container's own tmpfs) has
 * no host path: the file opened at the write is kept for activation, so
 * it is lost when the daemon restarts before activation. */
#include "stsfs/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stsfs/kernel.h"
#include "stsfs/value.h"

#include "loop.h"

/* A backing_file value resolved as its writer sees it. */
struct loop_backing {
	char host[PATH_MAX]; /* the daemon's path to it; the view when private */
	char view[PATH_MAX]; /* the writer's */
	int fd;              /* opened as the writer */
	bool writer_read_only, private;
};

/* The policy: an external backing file lies in an allowed directory. */
static int allowed(const char *value, const char *real, char *why)
{
	for (size_t i = 0; i < opts.n_allow_backing; i++)
		if (value_path_within(real, opts.allow_backing[i]))
			return 0;
	return why_set(why, -EACCES, "%s (resolves to %s) is outside the allowed directories%s", value, real,
		       opts.n_allow_backing ? "" : " (start stsfs with --allow-backing DIR)");
}

static int well_formed(const char *value, char *why)
{
	if (value[0] != '/')
		return why_set(why, -EINVAL, "backing_file must be an absolute path, not '%s'", value);
	if (strpbrk(value, "\n\r"))
		return why_set(why, -EINVAL, "backing_file path has a line break");
	return 0;
}

/* The daemon's own view (a record read at start-up, a re-activation). */
int loop_check_backing(const char *value, char *out, char *why)
{
	int r = well_formed(value, why);
	if (r)
		return r;
	char real[PATH_MAX];
	if (!realpath(value, real))
		return why_set(why, -errno, "backing_file %s: %s", value, strerror(errno));
	if ((r = allowed(value, real, why)) != 0)
		return r;
	struct stat st;
	if (stat(real, &st) < 0)
		return why_set(why, -errno, "backing_file %s: %s", real, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return why_set(why, -EINVAL, "backing_file %s is not a regular file", real);
	snprintf(out, PATH_MAX, "%s", real);
	return 0;
}

/* The file as the writer finds it (O_PATH: no access asked yet). */
static int find_as_writer(const struct kcaller *who, const char *value, int *fd, char *why)
{
	int r = kcaller_open(who, value, O_PATH, fd, why);
	if (r == -ENOENT && who->pid > 0)
		return why_set(why, r, "backing_file %s: No such file or directory (as pid %d sees it)", value, (int)who->pid);
	if (r == -ENOENT)
		return why_set(why, r, "backing_file %s: No such file or directory", value);
	return r;
}

/* Opens what find_as_writer found, read-write if the writer may, else
 * read-only (then only a read_only device can use it). Opened by name
 * again, so the same file is checked to be there. */
static int open_as_writer(const struct kcaller *who, const char *value, const struct stat *found, int *fd,
			  bool *read_only, char *why)
{
	int r = kcaller_open(who, value, O_RDWR, fd, why);
	*read_only = false;
	if (r == -EACCES || r == -EROFS || r == -ETXTBSY) {
		char first[STSFS_WHY_LEN];
		snprintf(first, sizeof(first), "%s", why);
		why[0] = '\0';
		r = kcaller_open(who, value, O_RDONLY, fd, why);
		*read_only = r == 0;
		if (r == -EACCES)
			snprintf(why, STSFS_WHY_LEN, "backing_file %s", first);
	}
	struct stat st;
	if (r == 0 && (fstat(*fd, &st) < 0 || st.st_dev != found->st_dev || st.st_ino != found->st_ino)) {
		close(*fd);
		return why_set(why, -EAGAIN, "backing_file %s changed while it was checked; write it again", value);
	}
	return r;
}

/* What the writer found: the host file it is (host: "" when the daemon's
 * namespace has none), within policy, and a regular file. */
static int judge(const struct kcaller *who, const char *value, int path_fd, struct stat *st, char *host, char *why)
{
	if (fstat(path_fd, st) < 0)
		return why_set(why, -errno, "backing_file %s: %s", value, strerror(errno));
	int r = kcaller_host_path(who, path_fd, host, PATH_MAX);
	if (r < 0)
		return why_set(why, r, "backing_file %s: %s", value, strerror(-r));
	if (host[0] && (r = allowed(value, host, why)) != 0)
		return r;
	if (!S_ISREG(st->st_mode))
		return why_set(why, -EINVAL, "backing_file %s is not a regular file", value);
	return 0;
}

static int resolve(const char *value, struct loop_backing *out, char *why)
{
	const struct kcaller *who = kcaller_current();
	int r = well_formed(value, why);
	if (r)
		return r;
	int path_fd, fd = -1;
	if ((r = find_as_writer(who, value, &path_fd, why)) != 0)
		return r;
	struct stat st;
	char host[PATH_MAX] = "";
	bool read_only = false;
	r = judge(who, value, path_fd, &st, host, why);
	if (!r)
		r = open_as_writer(who, value, &st, &fd, &read_only, why);
	close(path_fd);
	if (r)
		return r;
	/* A file the daemon reaches is attached by that path, checked again
	 * then (as after a restart); only a private one is kept open. */
	if (host[0]) {
		close(fd);
		fd = -1;
	}
	*out = (struct loop_backing){ .fd = fd, .writer_read_only = read_only, .private = !host[0] };
	snprintf(out->host, sizeof(out->host), "%s", host[0] ? host : value);
	snprintf(out->view, sizeof(out->view), "%s", value);
	return 0;
}

/* The backing fields of an object, to swap in and back. */
struct fields {
	char *backing;
	struct loop_writer writer;
	uint64_t size;
};

static void swap(struct loop_obj *lo, struct fields *f)
{
	struct fields was = { lo->backing, lo->writer, lo->size };
	lo->backing = f->backing;
	lo->writer = f->writer;
	lo->size = f->size;
	*f = was;
}

static void drop(struct fields *f)
{
	free(f->backing);
	free(f->writer.view);
	if (f->writer.fd >= 0)
		close(f->writer.fd);
}

int loop_backing_store(struct loop_obj *lo, const char *value, char *why)
{
	struct loop_backing b = { .fd = -1 };
	int r = value[0] ? resolve(value, &b, why) : 0;
	if (r)
		return r;
	bool same = strcmp(b.view, b.host) == 0;
	/* The size now follows the file. */
	struct fields f = { strdup(b.host), { same ? NULL : strdup(b.view), b.fd, b.private, b.writer_read_only }, 0 };
	if (!f.backing || (!same && !f.writer.view)) {
		drop(&f);
		return why_set(why, -ENOMEM, "out of memory");
	}
	swap(lo, &f);
	r = loop_save(lo, why);
	if (r)
		swap(lo, &f);
	drop(&f);
	return r;
}

/* For activation: the kept file (fd >= 0, a duplicate) or the host path
 * checked again (fd -1, path in out). */
int loop_backing_for_attach(struct loop_obj *lo, char *out, int *fd, char *why)
{
	*fd = -1;
	if (lo->writer.read_only && !lo->read_only)
		return why_set(why, -EACCES, "the writer of backing_file may only read %s: echo 1 > read_only, or write "
			       "backing_file as a user who may write it", loop_backing_shown(lo));
	if (lo->writer.private && lo->writer.fd >= 0) {
		snprintf(out, PATH_MAX, "%s", lo->backing);
		*fd = fcntl(lo->writer.fd, F_DUPFD_CLOEXEC, 0);
		return *fd >= 0 ? 0 : why_set(why, -errno, "%s: %s", lo->backing, strerror(errno));
	}
	if (lo->writer.private)
		return why_set(why, -ENOENT, "backing_file %s was only in its writer's mount namespace, and the daemon "
			       "restarted since it was written: write backing_file again", loop_backing_shown(lo));
	return loop_check_backing(lo->backing, out, why);
}

const char *loop_backing_shown(const struct loop_obj *lo)
{
	return lo->writer.view ? lo->writer.view : lo->backing;
}

int loop_backing_stat(const struct loop_obj *lo, struct stat *st)
{
	return lo->writer.fd >= 0 ? fstat(lo->writer.fd, st) : stat(lo->backing, st);
}
