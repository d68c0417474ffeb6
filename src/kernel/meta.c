/* Reading persistent-data metadata with the dmpd tools without racing the
 * kernel that writes it (see kmeta_run in kernel.h). */
#include "stsfs/kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COPY_CHUNK (1 << 20)

/* ---- one reader per device ---- */

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t busy_cond = PTHREAD_COND_INITIALIZER;
static struct kmeta_claim *busy_list;

static bool is_busy_locked(const char *name)
{
	for (struct kmeta_claim *b = busy_list; b; b = b->next)
		if (strcmp(b->name, name) == 0)
			return true;
	return false;
}

/* Waits until no other run uses name, then claims it; -EINTR when cancel
 * fires first. */
int kmeta_claim(struct kmeta_claim *b, const char *name, struct cancel *cancel, char *why)
{
	snprintf(b->name, sizeof(b->name), "%s", name);
	struct cancel_cond wake = { &busy_lock, &busy_cond };
	if (cancel_arm(cancel, cancel_wake_cond, &wake))
		return why_set(why, -EINTR, "interrupted");
	pthread_mutex_lock(&busy_lock);
	while (is_busy_locked(name) && !cancel_fired(cancel))
		pthread_cond_wait(&busy_cond, &busy_lock);
	bool claimed = !is_busy_locked(name);
	if (claimed) {
		b->next = busy_list;
		busy_list = b;
	}
	pthread_mutex_unlock(&busy_lock);
	cancel_disarm(cancel);
	return claimed ? 0 : why_set(why, -EINTR, "interrupted while another read of %s's metadata ran", name);
}

void kmeta_unclaim(struct kmeta_claim *b)
{
	pthread_mutex_lock(&busy_lock);
	for (struct kmeta_claim **pp = &busy_list; *pp; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	pthread_cond_broadcast(&busy_cond);
	pthread_mutex_unlock(&busy_lock);
}

/* ---- argv ---- */

static const char *const tool_names[3][4] = {
	[KMETA_THIN] = { "thin_check", "thin_dump", "thin_ls", "thin_delta" },
	[KMETA_CACHE] = { "cache_check", "cache_dump", NULL, NULL },
	[KMETA_ERA] = { "era_check", "era_dump", NULL, NULL },
};

int kmeta_kind_of(const char *target, enum kmeta_kind *kind)
{
	if (strcmp(target, "thin-pool") == 0)
		*kind = KMETA_THIN;
	else if (strcmp(target, "cache") == 0)
		*kind = KMETA_CACHE;
	else if (strcmp(target, "era") == 0)
		*kind = KMETA_ERA;
	else
		return -EINVAL;
	return 0;
}

#define MAX_ARGS 12

static void build_argv(const struct kmeta_req *q, const char *path, bool snap, const char *argv[MAX_ARGS],
		       char s1[24], char s2[24])
{
	int n = 0;
	argv[n++] = tool_names[q->kind][q->op];
	if (snap)
		argv[n++] = "-m";
	if (q->op == KMETA_LS) {
		argv[n++] = "-o";
		argv[n++] = "DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,TRANSACTION,CREATE_TIME,SNAP_TIME";
	} else if (q->op == KMETA_DELTA) {
		snprintf(s1, 24, "%" PRIu64, q->snap1);
		snprintf(s2, 24, "%" PRIu64, q->snap2);
		argv[n++] = "--snap1";
		argv[n++] = s1;
		argv[n++] = "--snap2";
		argv[n++] = s2;
	}
	argv[n++] = path;
	argv[n] = NULL;
}

static int run_tool(const struct kmeta_req *q, const char *path, bool snap, struct kmeta_result *res, char *why)
{
	const char *argv[MAX_ARGS];
	char s1[24], s2[24];
	build_argv(q, path, snap, argv, s1, s2);
	res->kind = q->kind;
	snprintf(res->argv0, sizeof(res->argv0), "%s", argv[0]);
	return ktool_run(argv, q->cancel, &res->out, &res->err, &res->exit_code, why);
}

/* ---- live thin pool: a metadata snapshot ---- */

static int run_on_thin_snapshot(const struct kmeta_req *q, struct kmeta_result *res, char *why)
{
	char *resp = NULL;
	char reason[STSFS_WHY_LEN] = "";
	int r = kdm_message(q->live_name, 0, "reserve_metadata_snap", &resp, reason);
	free(resp);
	resp = NULL;
	/* EBUSY: somebody holds a snapshot already; read it, leave it held. */
	bool ours = r == 0;
	if (r && r != -EBUSY)
		return why_set(why, r, "cannot take a metadata snapshot of %s: %s", q->live_name, reason);
	r = run_tool(q, q->devpath, true, res, why);
	if (ours && kdm_message(q->live_name, 0, "release_metadata_snap", &resp, reason) != 0 && r == 0)
		r = why_set(why, -EIO, "cannot release the metadata snapshot of %s: %s", q->live_name, reason);
	free(resp);
	return r;
}

/* ---- live cache/era: a copy made while suspended ---- */

static int open_copy_file(const char *dir, char *path, size_t len, char *why)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		/* The tool opens the unnamed file through our descriptor. */
		snprintf(path, len, "/proc/%d/fd/%d", (int)getpid(), fd);
		return fd;
	}
	/* Filesystems without O_TMPFILE (9p): a named file, unlinked after. */
	snprintf(path, len, "%s/.metadata-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return why_set(why, -errno, "cannot make a file in %s: %s", dir, strerror(errno));
	return fd;
}

static int copy_device(const char *devpath, int out, char *why)
{
	int in = open(devpath, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return why_set(why, -errno, "cannot open %s: %s", devpath, strerror(errno));
	char *buf = malloc(COPY_CHUNK);
	int r = buf ? 0 : -ENOMEM;
	ssize_t n;
	while (!r && (n = read(in, buf, COPY_CHUNK)) != 0) {
		if (n < 0) {
			r = why_set(why, -errno, "reading %s: %s", devpath, strerror(errno));
		} else if (write(out, buf, (size_t)n) != n) {
			r = why_set(why, errno ? -errno : -ENOSPC, "copying %s: %s", devpath, strerror(errno ? errno : ENOSPC));
		}
	}
	free(buf);
	close(in);
	return r;
}

static int copy_suspended(const struct kmeta_req *q, int out, char *why)
{
	struct kdm_info info;
	int r = kdm_info(q->live_name, &info, why);
	if (r)
		return r;
	/* A device the user suspended stays suspended (its metadata is
	 * committed already). */
	bool resume = !info.suspended;
	if (resume && (r = kdm_suspend(q->live_name, false, why)) != 0)
		return r;
	r = copy_device(q->devpath, out, why);
	char reason[STSFS_WHY_LEN];
	if (resume && kdm_resume(q->live_name, reason) != 0 && r == 0)
		r = why_set(why, -EIO, "%s", reason);
	return r;
}

static int run_on_copy(const struct kmeta_req *q, struct kmeta_result *res, char *why)
{
	char path[PATH_MAX];
	int fd = open_copy_file(q->tmp_dir, path, sizeof(path), why);
	if (fd < 0)
		return fd;
	bool named = strncmp(path, "/proc/", 6) != 0;
	int r = copy_suspended(q, fd, why);
	if (!r)
		r = run_tool(q, path, false, res, why);
	if (named)
		unlink(path);
	close(fd);
	return r;
}

int kmeta_run(const struct kmeta_req *q, struct kmeta_result *res, char *why)
{
	memset(res, 0, sizeof(*res));
	if (!tool_names[q->kind][q->op])
		return why_set(why, -EINVAL, "no such metadata tool for this target");
	struct kmeta_claim b;
	int r = kmeta_claim(&b, q->live_name ? q->live_name : q->devpath, q->cancel, why);
	if (r)
		return r;
	if (!q->live_name)
		r = run_tool(q, q->devpath, false, res, why);
	else if (q->kind == KMETA_THIN)
		r = run_on_thin_snapshot(q, res, why);
	else
		r = run_on_copy(q, res, why);
	kmeta_unclaim(&b);
	if (r)
		kmeta_result_free(res);
	return r;
}

void kmeta_result_free(struct kmeta_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}
