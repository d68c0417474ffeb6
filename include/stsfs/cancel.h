/* Ending a blocking operation early. The FUSE layer fires a request's
 * cancel when the caller is interrupted (a signal, even SIGKILL); whatever
 * the request is blocked on is woken through the hook armed at that time:
 * a tool is killed, a wait is woken. No FUSE types here. */
#ifndef STSFS_CANCEL_H
#define STSFS_CANCEL_H

#include <pthread.h>
#include <stdbool.h>

struct cancel {
	pthread_mutex_t lock;  /* hook, arg; held while the hook runs */
	bool fired;            /* atomic */
	void (*hook)(void *arg);
	void *arg;
};
#define CANCEL_INIT { PTHREAD_MUTEX_INITIALIZER, false, NULL, NULL }

/* Marks c fired and runs the armed hook, if any. */
void cancel_fire(struct cancel *c);
/* False for a NULL c (an operation nobody can interrupt). */
bool cancel_fired(struct cancel *c);
/* Runs hook(arg) when c fires, until cancel_disarm; -EINTR (hook not run)
 * when c has fired already. A NULL c never fires. The hook runs on the
 * thread that fires, with c->lock held: it must not arm or disarm. */
int cancel_arm(struct cancel *c, void (*hook)(void *arg), void *arg);
/* After it returns the hook is not running and will not run. */
void cancel_disarm(struct cancel *c);

/* A hook for waits on a condition variable: arm c with it before taking m
 * (the hook takes m, so the order is c->lock, then m), then wait with
 * `while (!done && !cancel_fired(c)) pthread_cond_wait(cv, m)`. */
struct cancel_cond {
	pthread_mutex_t *m;
	pthread_cond_t *cv;
};
void cancel_wake_cond(void *cancel_cond);

#endif
