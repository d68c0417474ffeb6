#include "watch.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_KEY_MAX 160

/* A poll(2) handle to notify, or a read blocked in watch_block. */
struct waiter {
	uint64_t fh_id;
	struct fuse_pollhandle *ph;
	bool *woken;            /* blocked read: set when the watch ends */
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
/* Blocked reads sleep here until their watch ends (or they are cancelled). */
static pthread_cond_t woken_cond = PTHREAD_COND_INITIALIZER;
static struct watch *watches;
static bool shutting_down;

static void notify_all(struct waiter *w, bool notify)
{
	while (w) {
		struct waiter *next = w->next;
		if (w->woken) {
			*w->woken = true;
		} else {
			if (notify)
				fuse_lowlevel_notify_poll(w->ph);
			fuse_pollhandle_destroy(w->ph);
		}
		free(w);
		w = next;
	}
	pthread_cond_broadcast(&woken_cond);
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
		if (!w->woken && w->fh_id == fh_id) {
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
	pthread_cond_broadcast(&woken_cond);
	pthread_mutex_unlock(&watches_lock);
}

static struct watch *get_watch_locked(const struct dir_kind *kind, const char *key, uint32_t after)
{
	struct watch *wt = find_locked(kind, key, after);
	return wt ? wt : start_watch_locked(kind, key, after);
}

static void unlink_waiter_locked(struct watch *wt, struct waiter *w)
{
	for (struct waiter **pp = &wt->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			free(w);
			return;
		}
	}
}

int watch_block(const struct dir_kind *kind, const char *key, uint32_t after, struct cancel *cancel)
{
	struct cancel_cond wake = { &watches_lock, &woken_cond };
	if (cancel_arm(cancel, cancel_wake_cond, &wake))
		return -EINTR;
	bool woken = false;
	struct waiter *w = calloc(1, sizeof(*w));
	pthread_mutex_lock(&watches_lock);
	struct watch *wt = w && !shutting_down ? get_watch_locked(kind, key, after) : NULL;
	if (wt) {
		w->woken = &woken;
		w->next = wt->waiters;
		wt->waiters = w;
		while (!woken && !cancel_fired(cancel) && !shutting_down)
			pthread_cond_wait(&woken_cond, &watches_lock);
		/* Not woken: the watch still holds w (it frees waiters only
		 * when it ends, under this lock). */
		if (!woken)
			unlink_waiter_locked(wt, w);
	} else {
		free(w);
	}
	pthread_mutex_unlock(&watches_lock);
	cancel_disarm(cancel);
	if (!wt)
		return shutting_down ? -EINTR : -EAGAIN;
	return woken ? 0 : -EINTR;
}

int watch_add(const struct dir_kind *kind, const char *key, uint32_t after, uint64_t fh_id,
	      struct fuse_pollhandle *ph)
{
	pthread_mutex_lock(&watches_lock);
	struct watch *wt = get_watch_locked(kind, key, after);
	int r = wt ? add_waiter_locked(wt, fh_id, ph) : -EAGAIN;
	if (r < 0) {
		fuse_lowlevel_notify_poll(ph);
		fuse_pollhandle_destroy(ph);
	}
	pthread_mutex_unlock(&watches_lock);
	return r;
}
