/* Group commit of the state directory. A save is a write and a rename in
 * the page cache: that alone survives a SIGKILL of the daemon. What makes
 * it survive power loss is an fsync of the file and of its directory; this
 * thread does those for every save of the last half second at once, so
 * that a burst of changes costs one round of fsyncs, and a change is
 * durable at most about a second after it was acknowledged. state_sync
 * does it at once (fsync(2) on an object's file, exit). */
#include "stsfs/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMMIT_DELAY_NS (500 * 1000 * 1000L)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
static char **pending;   /* paths saved since the last commit */
static size_t npending, cap;
static unsigned long long generation, committed; /* commits asked for, done */
static bool started, urgent;

static void fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Each file, then each directory once (a rename is durable with its
 * directory). */
static void commit(char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fsync_path(paths[i], O_RDONLY);
	for (size_t i = 0; i < n; i++) {
		char *slash = strrchr(paths[i], '/');
		if (!slash)
			continue;
		*slash = '\0';
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(paths[j], paths[i]) == 0;
		if (!seen)
			fsync_path(paths[i], O_RDONLY | O_DIRECTORY);
	}
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

static void *committer(void *arg)
{
	pthread_mutex_lock(&lock);
	for (;;) {
		while (!npending && committed == generation)
			pthread_cond_wait(&wake, &lock);
		if (!urgent) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += COMMIT_DELAY_NS;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			while (!urgent && pthread_cond_timedwait(&wake, &lock, &until) == 0)
				;
		}
		char **paths = pending;
		size_t n = npending;
		unsigned long long gen = generation;
		pending = NULL;
		npending = cap = 0;
		urgent = false;
		pthread_mutex_unlock(&lock);
		commit(paths, n);
		pthread_mutex_lock(&lock);
		committed = gen;
		pthread_cond_broadcast(&done);
	}
	return arg;
}

static bool start_locked(void)
{
	pthread_t t;
	if (!started && pthread_create(&t, NULL, committer, NULL) == 0) {
		pthread_detach(t);
		started = true;
	}
	return started;
}

void state_commit_later(const char *path)
{
	pthread_mutex_lock(&lock);
	bool queued = false;
	for (size_t i = 0; i < npending && !queued; i++)
		queued = strcmp(pending[i], path) == 0;
	if (!queued && npending == cap) {
		size_t ncap = cap ? cap * 2 : 16;
		char **np = realloc(pending, ncap * sizeof(*np));
		if (np) {
			pending = np;
			cap = ncap;
		}
	}
	char *copy = queued || npending == cap ? NULL : strdup(path);
	if (copy)
		pending[npending++] = copy;
	if (!queued && !copy) {
		/* No room to remember it: make it durable now. */
		pthread_mutex_unlock(&lock);
		fsync_path(path, O_RDONLY);
		return;
	}
	generation++;
	if (start_locked())
		pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	if (!started)
		fsync_path(path, O_RDONLY);
}

void state_sync(void)
{
	pthread_mutex_lock(&lock);
	unsigned long long want = generation;
	if (started && committed < want) {
		urgent = true;
		pthread_cond_signal(&wake);
		while (committed < want)
			pthread_cond_wait(&done, &lock);
	}
	pthread_mutex_unlock(&lock);
}
