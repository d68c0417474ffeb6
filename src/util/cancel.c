#include "stsfs/cancel.h"

#include <errno.h>
#include <stddef.h>

void cancel_fire(struct cancel *c)
{
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->fired, true, __ATOMIC_SEQ_CST);
	if (c->hook)
		c->hook(c->arg);
	pthread_mutex_unlock(&c->lock);
}

bool cancel_fired(struct cancel *c)
{
	return c && __atomic_load_n(&c->fired, __ATOMIC_SEQ_CST);
}

int cancel_arm(struct cancel *c, void (*hook)(void *arg), void *arg)
{
	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	bool fired = c->fired;
	if (!fired) {
		c->hook = hook;
		c->arg = arg;
	}
	pthread_mutex_unlock(&c->lock);
	return fired ? -EINTR : 0;
}

void cancel_disarm(struct cancel *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->hook = NULL;
	c->arg = NULL;
	pthread_mutex_unlock(&c->lock);
}

/* Broadcasting under the waiter's mutex: a waiter that saw c unfired is
 * either still holding m (and will see fired before it sleeps) or asleep
 * on cv (and is woken here). */
void cancel_wake_cond(void *arg)
{
	struct cancel_cond *cc = arg;
	pthread_mutex_lock(cc->m);
	pthread_cond_broadcast(cc->cv);
	pthread_mutex_unlock(cc->m);
}
