/* The kernel's caches of names (dentries) and attributes: how long it may
 * keep them, and telling it when they change.
 *
 * A write to an object's file drops the names the kernel holds in the
 * object's directory before the write returns. rmdir and mv (which may
 * change objects elsewhere: a thin pool's loops and dm devices), and what
 * others change (losetup, dmsetup, a device going away) arriving as a
 * block uevent, ask for a sweep that drops every object directory the
 * kernel holds (and with it everything below), from a thread of its own;
 * requests made while one is pending are one sweep. mkdir drops nothing:
 * failed lookups are never cached. Names of objects stsfs does not keep (devices made
 * elsewhere, partitions) are never cached (dir_kind.kept). Without uevents
 * (no netlink, as in some sandboxes) nothing is cached.
 *
 * File contents are never cached (attribute files use direct I/O), and
 * neither is a name that does not exist (lookups that fail are not kept). */
#include "glue.h"
#include "stsfs/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct inval {
	fuse_ino_t parent; /* 0: the node's attributes (ino) */
	fuse_ino_t ino;
	char *name;
	struct inval *next;
};

static struct fuse_session *session;
static double timeout_s;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct inval *queue, **tail = &queue;
static bool sending, stopped; /* under lock: the notifier is talking to the kernel; cache_stop ran */
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;

double cache_timeout(void)
{
	return timeout_s;
}

static struct inval *inval_new(fuse_ino_t parent, fuse_ino_t ino, const char *name)
{
	struct inval *e = calloc(1, sizeof(*e));
	if (!e || (name && !(e->name = strdup(name)))) {
		free(e);
		return NULL; /* the timeout still bounds how stale it gets */
	}
	e->parent = parent;
	e->ino = ino;
	return e;
}

/* ENOENT: the kernel did not hold it; nothing to drop. NULL session
 * (stopped): only frees. */
static void send_all(struct fuse_session *se, struct inval *list)
{
	while (list) {
		struct inval *e = list;
		list = e->next;
		if (se && e->parent)
			fuse_lowlevel_notify_inval_entry(se, e->parent, e->name, strlen(e->name));
		else if (se)
			fuse_lowlevel_notify_inval_inode(se, e->ino, -1, 0);
		free(e->name);
		free(e);
	}
}

static bool sweep_wanted;

static void sweep(void);

/* Sends what writes queued, and runs the sweeps asked for; any number of
 * requests for a sweep made while one is pending are one sweep. */
static void *notifier(void *arg)
{
	pthread_mutex_lock(&lock);
	for (;;) {
		sending = false;
		pthread_cond_broadcast(&idle);
		while ((!queue && !sweep_wanted) || stopped)
			pthread_cond_wait(&wake, &lock);
		struct inval *list = queue;
		bool want = sweep_wanted;
		queue = NULL;
		tail = &queue;
		sweep_wanted = false;
		sending = true;
		pthread_mutex_unlock(&lock);
		send_all(session, list);
		if (want)
			sweep();
		pthread_mutex_lock(&lock);
	}
	return arg;
}

/* Before the session goes: the notifier must not be inside a notification
 * then (it would call through the freed session). Waits up to a second
 * for it to finish one: a notification can wait in the kernel on a
 * directory that a caller holds while it waits for an answer this worker
 * will no longer give. false: it did not finish; keep the session. */
bool cache_stop(void)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	pthread_mutex_lock(&lock);
	stopped = true;
	int e = 0;
	while (sending && e == 0)
		e = pthread_cond_timedwait(&idle, &lock, &until);
	bool quiet = !sending;
	pthread_mutex_unlock(&lock);
	return quiet;
}

struct scope {
	const struct node *dir; /* NULL: every node below the root's own */
	struct inval *list, **tail;
};

static void add(struct scope *s, fuse_ino_t parent, fuse_ino_t ino, const char *name)
{
	struct inval *e = inval_new(parent, ino, name);
	if (e) {
		*s->tail = e;
		s->tail = &e->next;
	}
}

static void collect(struct node *n, void *arg)
{
	struct scope *s = arg;
	if (!n->parent)
		return;
	if (s->dir && n->parent == s->dir) {
		/* The next lookup of the name brings fresh attributes too. */
		add(s, n->parent->ino, n->ino, n->name);
	} else if (!s->dir && n->dir && n->parent->parent && !n->parent->parent->parent) {
		/* An object's directory (loop/x, dm/x, thin/p): dropping it
		 * drops everything the kernel holds below it. */
		add(s, n->parent->ino, n->ino, n->name);
	}
}

/* A write changed what an object shows (active: data, device, ...): the
 * names the kernel holds in its directory go before the write returns, so
 * that the writer's next lookup sees the change. Safe from the request:
 * a write holds its file's lock, not the directory's. */
void cache_dir_changed(struct node *dir)
{
	if (!timeout_s || !session)
		return;
	struct scope s = { dir, NULL, &s.list };
	node_each(collect, &s);
	add(&s, 0, dir->ino, NULL);
	send_all(session, s.list);
}

/* Every object's directory the kernel holds, from the notifier thread. */
static void sweep(void)
{
	struct scope s = { NULL, NULL, &s.list };
	node_each(collect, &s);
	send_all(session, s.list);
}

/* rmdir and mv (which may change objects in other directories:
 * a thin pool's loops and dm devices) and uevents ask for a sweep; they
 * hold their directory's lock until they return, so it runs later, on the
 * notifier thread. */
void cache_all_changed(void)
{
	if (!timeout_s || !session)
		return;
	pthread_mutex_lock(&lock);
	sweep_wanted = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
}

/* Uevents come in bursts (a loop attach is several): one sweep per burst. */
static void *listener(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char dev[64];
	while (kuevent_next(fd, dev, sizeof(dev)) == 0) {
		struct timespec settle = { 0, 20 * 1000 * 1000 };
		nanosleep(&settle, NULL);
		cache_all_changed();
	}
	return NULL;
}

void cache_start(struct fuse_session *se, double timeout)
{
	session = se;
	char why[STSFS_WHY_LEN] = "";
	int fd = timeout > 0 ? kuevent_open(why) : -1;
	pthread_t t;
	if (fd < 0 || pthread_create(&t, NULL, notifier, NULL) != 0) {
		if (timeout > 0)
			log_msg(L_WARNING, "names are not cached: %s", why[0] ? why : "no thread");
		if (fd >= 0)
			close(fd);
		return;
	}
	pthread_detach(t);
	if (pthread_create(&t, NULL, listener, (void *)(intptr_t)fd) != 0) {
		log_msg(L_WARNING, "names are not cached: no thread");
		close(fd);
		return;
	}
	pthread_detach(t);
	timeout_s = timeout;
}
