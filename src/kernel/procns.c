/* Processes as /proc shows them: pid namespaces and uids, for tenancy. */
#include "stsfs/kernel.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int kproc_pidns(pid_t pid, uint64_t *ino)
{
	char path[64];
	struct stat st;
	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/pid");
	if (stat(path, &st) != 0)
		return -errno;
	*ino = (uint64_t)st.st_ino;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_uid(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;
	return x < y ? -1 : x > y;
}

/* A process's real uid: the owner of /proc/PID is its effective uid, and a
 * setuid helper would hide its user; the status line tells the real one. */
static int real_uid(const char *pid, uid_t *uid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int r = -ENOENT;
	while (r && fgets(line, sizeof(line), f)) {
		unsigned u;
		if (sscanf(line, "Uid: %u", &u) == 1) {
			*uid = (uid_t)u;
			r = 0;
		}
	}
	fclose(f);
	return r;
}

int kproc_census(uint64_t **pidns, size_t *n_pidns, uid_t **uids, size_t *n_uids)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	size_t cap = 256, n = 0;
	uint64_t *ns = malloc(cap * sizeof(*ns));
	uid_t *us = malloc(cap * sizeof(*us));
	int r = ns && us ? 0 : -ENOMEM;
	struct dirent *e;
	while (!r && (e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		if (n == cap) {
			cap *= 2;
			uint64_t *ns2 = realloc(ns, cap * sizeof(*ns));
			if (ns2)
				ns = ns2;
			uid_t *us2 = ns2 ? realloc(us, cap * sizeof(*us)) : NULL;
			if (!us2) {
				r = -ENOMEM;
				break;
			}
			us = us2;
		}
		/* A process gone meanwhile is simply not counted. */
		if (kproc_pidns(atoi(e->d_name), &ns[n]) == 0 && real_uid(e->d_name, &us[n]) == 0)
			n++;
	}
	closedir(d);
	if (r) {
		free(ns);
		free(us);
		return r;
	}
	qsort(ns, n, sizeof(*ns), cmp_u64);
	qsort(us, n, sizeof(*us), cmp_uid);
	*pidns = ns;
	*n_pidns = n;
	*uids = us;
	*n_uids = n;
	return 0;
}

int kproc_userns(pid_t pid, uid_t uid)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	FILE *f = pid > 0 ? fopen(path, "re") : NULL;
	if (!f)
		return -1;
	int r = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long inside, outside, count;
		if (sscanf(line, "%lu %lu %lu", &inside, &outside, &count) != 3)
			continue;
		if (inside == 0 && outside == 0 && count == 4294967295ul)
			break; /* the host's own map: no user namespace */
		r = 1;
		if (inside == 0 && outside == uid) {
			r = 2;
			break;
		}
	}
	fclose(f);
	return r;
}
