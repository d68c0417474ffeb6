#include "watch.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_KEY_MAX 160

struct waiter {
	uint64_t fh_id;
	struct fuse_pollhandle *ph;
	struct waiter *next;
};

struct watch {
	const struct dir_kind *kind;
	char key[WATCH_KEY_MAX];
	uint32_t after;
	struct waiter *waiters;
	struct watch *next;
};

static pthread_mutex_t watches_lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch *watches;
static bool shutting_down;

static void notify_all(struct waiter *w, bool notify)
{
	while (w) {
		struct waiter *next = w->next;
		if (notify)
			fuse_lowlevel_notify_poll(w->ph);
		fuse_pollhandle_destroy(w->ph);
		free(w);
		w = next;
	}
}

static void *watch_thread(void *arg)
{
	struct watch *wt = arg;
	/* Returns on the next event, and when the device is removed or
	 * renamed (the kernel raises an event for both). */
	wt->kind->event_wait(wt->key, wt->after);
	pthread_mutex_lock(&watches_lock);
	for (struct watch **pp = &watches; *pp; pp = &(*pp)->next) {
		if (*pp == wt) {
			*pp = wt->next;
			break;
		}
	}
	struct waiter *w = wt->waiters;
	/* Notifying under the lock keeps watch_shutdown from returning while
	 * a notification is on its way to the session. */
	notify_all(w, !shutting_down);
	pthread_mutex_unlock(&watches_lock);
	free(wt);
	return NULL;
}

static struct watch *find_locked(const struct dir_kind *kind, const char *key, uint32_t after)
{
	for (struct watch *wt = watches; wt; wt = wt->next)
		if (wt->kind == kind && wt->after == after && strcmp(wt->key, key) == 0)
			return wt;
	return NULL;
}

/* Keeps one handle per open file: a poll(2) that timed out and is called
 * again brings a new handle for the same file. */
static int add_waiter_locked(struct watch *wt, uint64_t fh_id, struct fuse_pollhandle *ph)
{
	for (struct waiter *w = wt->waiters; w; w = w->next) {
		if (w->fh_id == fh_id) {
			fuse_pollhandle_destroy(w->ph);
			w->ph = ph;
			return 0;
		}
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fh_id = fh_id;
	w->ph = ph;
	w->next = wt->waiters;
	wt->waiters = w;
	return 0;
}

static struct watch *start_watch_locked(const struct dir_kind *kind, const char *key, uint32_t after)
{
	struct watch *wt = calloc(1, sizeof(*wt));
	if (!wt || strlen(key) >= sizeof(wt->key)) {
		free(wt);
		return NULL;
	}
	wt->kind = kind;
	strcpy(wt->key, key);
	wt->after = after;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_t tid;
	/* The thread takes the lock before it touches the list, so linking
	 * after the start is safe. */
	int e = pthread_create(&tid, &attr, watch_thread, wt);
	pthread_attr_destroy(&attr);
	if (e) {
		free(wt);
		return NULL;
	}
	wt->next = watches;
	watches = wt;
	return wt;
}

void watch_shutdown(void)
{
	pthread_mutex_lock(&watches_lock);
	shutting_down = true;
	pthread_mutex_unlock(&watches_lock);
}

int watch_add(const struct dir_kind *kind, const char *key, uint32_t after, uint64_t fh_id,
	      struct fuse_pollhandle *ph)
{
	pthread_mutex_lock(&watches_lock);
	struct watch *wt = find_locked(kind, key, after);
	if (!wt)
		wt = start_watch_locked(kind, key, after);
	int r = wt ? add_waiter_locked(wt, fh_id, ph) : -EAGAIN;
	if (r < 0) {
		fuse_lowlevel_notify_poll(ph);
		fuse_pollhandle_destroy(ph);
	}
	pthread_mutex_unlock(&watches_lock);
	return r;
}
