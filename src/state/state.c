#include "stsfs/state.h"
#include "stsfs/log.h"

#include "stsfs/fsutil.h"
#include "stsfs/why.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char state_dir[PATH_MAX];

int state_init(const char *dir, char *why)
{
	snprintf(state_dir, sizeof(state_dir), "%s", dir);
	int r = fs_mkdir_p(dir);
	if (r)
		return why_set(why, r, "cannot create state directory %s: %s", dir, strerror(-r));
	return 0;
}

static void kind_dir(const char *kind, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", state_dir, kind);
}

/* The kinds' directories, made once. */
static int made_dir(const char *dir)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char made[8][PATH_MAX];
	static size_t n;
	pthread_mutex_lock(&lock);
	bool known = false;
	for (size_t i = 0; i < n && !known; i++)
		known = strcmp(made[i], dir) == 0;
	int r = known ? 0 : fs_mkdir_p(dir);
	if (!known && !r && n < 8)
		snprintf(made[n++], PATH_MAX, "%s", dir);
	pthread_mutex_unlock(&lock);
	return r;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static void record_paths(const char *kind, const char *name, char *dir, char *tmp, char *path)
{
	kind_dir(kind, dir, PATH_MAX);
	snprintf(path, PATH_MAX + 8, "%s/%s", dir, name);
	snprintf(tmp, PATH_MAX + 16, "%s/.%s.tmp", dir, name);
}

/* Writes the record aside, as .NAME.tmp: a full or read-only state
 * directory fails here, before the caller has changed anything. */
int state_prepare(const char *kind, const char *name, const struct kv_block *b, char *why)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 16], path[PATH_MAX + 8];
	record_paths(kind, name, dir, tmp, path);
	int r = made_dir(dir);
	if (r)
		return why_set(why, r, "cannot save state of %s/%s: cannot create %s: %s", kind, name, dir,
			       strerror(-r));
	struct kv_doc doc = { .blocks = (struct kv_block *)b, .n = 1, .cap = 1 };
	char *text = kv_render_text(&doc);
	if (!text)
		return why_set(why, -ENOMEM, "out of memory saving state");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
	} else {
		r = write_all(fd, text, strlen(text));
		if (close(fd) < 0 && !r)
			r = -errno;
		if (r)
			unlink(tmp);
	}
	free(text);
	if (r)
		return why_set(why, r, "cannot save state of %s/%s: %s%s%s", kind, name, strerror(-r),
			       r == -ENOSPC ? ": the state directory is full, free room in " : "",
			       r == -ENOSPC ? state_dir : "");
	return 0;
}

/* Puts the prepared record in place: a rename, which needs no room. */
int state_commit(const char *kind, const char *name, char *why)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 16], path[PATH_MAX + 8];
	record_paths(kind, name, dir, tmp, path);
	if (rename(tmp, path) < 0) {
		int r = -errno;
		unlink(tmp);
		return why_set(why, r, "cannot save state of %s/%s: %s", kind, name, strerror(-r));
	}
	state_commit_later(path);
	return 0;
}

void state_abort(const char *kind, const char *name)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 16], path[PATH_MAX + 8];
	record_paths(kind, name, dir, tmp, path);
	unlink(tmp);
}

int state_save(const char *kind, const char *name, const struct kv_block *b, char *why)
{
	int r = state_prepare(kind, name, b, why);
	return r ? r : state_commit(kind, name, why);
}

int state_delete(const char *kind, const char *name)
{
	char path[PATH_MAX + 72];
	snprintf(path, sizeof(path), "%s/%s/%s", state_dir, kind, name);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n = getdelim(&buf, &len, '\0', f);
	fclose(f);
	if (n < 0) {
		free(buf);
		return strdup("");
	}
	return buf;
}

static int cmp_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int visible(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static bool is_leftover(const char *name)
{
	size_t len = strlen(name);
	return name[0] == '.' && len > 5 && strcmp(name + len - 4, ".tmp") == 0;
}

/* A save killed before its rename leaves .NAME.tmp: a change that was never
 * acknowledged, so the record beside it is the one that holds. Only at
 * start-up: no save is under way then. */
static void remove_leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (is_leftover(e->d_name) && unlinkat(dirfd(d), e->d_name, 0) == 0)
			log_msg(L_INFO, "removed %s/%s, left by an unfinished save", dir, e->d_name);
	}
	closedir(d);
}

int state_load(const char *kind, void (*cb)(const char *name, const struct kv_block *b, const char *why, void *arg),
	       void *arg)
{
	char dir[PATH_MAX];
	kind_dir(kind, dir, sizeof(dir));
	remove_leftovers(dir);
	struct dirent **list;
	int n = scandir(dir, &list, visible, cmp_names);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX + 260];
		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		char *text = slurp(path);
		struct kv_block b = { 0 };
		char why[STSFS_WHY_LEN] = "";
		if (!text)
			snprintf(why, sizeof(why), "cannot read %s", path);
		else
			kvtext_parse(text, &b, why, sizeof(why));
		cb(list[i]->d_name, why[0] ? NULL : &b, why, arg);
		kv_block_free(&b);
		free(text);
		free(list[i]);
	}
	free(list);
	return 0;
}
