/* Requests in flight when a worker dies. Where the kernel resends them on
 * FUSE_NOTIFY_RESEND (Linux 6.9 and later), a new worker asks it to. Where
 * it does not, each worker thread reads /dev/fuse straight into a request
 * slot of the shared map, so a request is in the map the moment the kernel
 * hands it out, and stays marked until its answer is written; the next
 * worker answers what a dead one left. A worker killed after its answer
 * reached the kernel but before the mark was cleared has that request run
 * again: the kernel drops the second answer. STSFS_TAKEOVER=replay uses the
 * slots on any kernel (the tests do, to cover both ways natively). */
#include "glue.h"
#include "stsfs/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef FUSE_NOTIFY_RESEND
#define FUSE_NOTIFY_RESEND 7
#endif

static struct shared_map *map;
static uint32_t epoch;
static bool replay_mode;
static struct fuse_session *session;
static __thread int my_slot = -1;

bool inflight_replays(void)
{
	return replay_mode;
}

static struct fuse_in_header *slot_header(unsigned slot)
{
	return (struct fuse_in_header *)map_req_data(map, slot);
}

static pthread_key_t slot_key;

static bool replayable(const struct fuse_in_header *ih);

/* A thread that ends (libfuse ends idle ones and starts others as load
 * changes) gives its slot back: a slot kept by a thread that is gone would
 * be lost to every later one, and with no free slot a request could not
 * be replayed. Its slot may still hold a request answered elsewhere (a
 * `wait` is answered by the thread its event came to) or never answered
 * (FUSE_INTERRUPT). Only a worker asked to stop cancels its threads
 * mid-request: those keep their request there for the next worker. */
static void release_slot(void *arg)
{
	unsigned slot = (unsigned)(uintptr_t)arg - 1;
	struct fuse_in_header *ih = slot_header(slot);
	if (fuse_session_exited(session) && __atomic_load_n(&ih->len, __ATOMIC_ACQUIRE) != 0 && replayable(ih))
		return;
	__atomic_store_n(&ih->len, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&map->hdr->req[slot].state, REQ_FREE, __ATOMIC_RELEASE);
}

static int claim_slot(void)
{
	for (unsigned i = 0; i < MAP_REQ_SLOTS; i++) {
		uint32_t free_state = REQ_FREE;
		if (__atomic_compare_exchange_n(&map->hdr->req[i].state, &free_state, REQ_READING, false,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			map->hdr->req[i].epoch = epoch;
			pthread_setspecific(slot_key, (void *)(uintptr_t)(i + 1));
			return (int)i;
		}
	}
	return -1;
}

/* The kernel copies the request into the slot; the header is cleared first,
 * so a header in a slot means a request was read into it. */
static ssize_t slot_read(int fd, void *buf, size_t len, void *userdata)
{
	if (my_slot < 0 && (my_slot = claim_slot()) < 0) {
		log_msg(L_ERROR, "no free request slot");
		return read(fd, buf, len);
	}
	struct fuse_in_header *ih = slot_header((unsigned)my_slot);
	__atomic_store_n(&ih->len, 0, __ATOMIC_RELEASE);
	ssize_t n = read(fd, ih, len < MAP_REQ_BUF ? len : MAP_REQ_BUF);
	if (n > 0)
		memcpy(buf, ih, (size_t)n);
	return n;
}

/* An answer written clears its request's slot. */
static ssize_t slot_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	ssize_t n = writev(fd, iov, count);
	if (my_slot >= 0 && count > 0 && iov[0].iov_len >= sizeof(struct fuse_out_header)) {
		const struct fuse_out_header *oh = iov[0].iov_base;
		struct fuse_in_header *ih = slot_header((unsigned)my_slot);
		if (oh->unique && oh->unique == ih->unique)
			__atomic_store_n(&ih->len, 0, __ATOMIC_RELEASE);
	}
	return n;
}

static ssize_t plain_read(int fd, void *buf, size_t len, void *userdata)
{
	return read(fd, buf, len);
}

static ssize_t plain_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	return writev(fd, iov, count);
}

static ssize_t plain_splice_receive(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
				    unsigned int flags, void *userdata)
{
	return splice(fdin, offin, fdout, offout, len, flags);
}

static ssize_t plain_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
				 unsigned int flags, void *userdata)
{
	return splice(fdin, offin, fdout, offout, len, flags);
}

/* Splice bypasses the slots, so the replaying way reads and writes by copy. */
int inflight_io(struct fuse_session *se, int fuse_fd, struct shared_map *m, uint32_t worker_epoch)
{
	static const struct fuse_custom_io slots = { .read = slot_read, .writev = slot_writev };
	static const struct fuse_custom_io plain = { .read = plain_read,
						     .writev = plain_writev,
						     .splice_receive = plain_splice_receive,
						     .splice_send = plain_splice_send };
	const char *want = getenv("STSFS_TAKEOVER");
	map = m;
	epoch = worker_epoch;
	session = se;
	if (pthread_key_create(&slot_key, release_slot) != 0)
		return -1;
	replay_mode = (want && strcmp(want, "replay") == 0) || !init_has_resend(m->hdr->init, m->hdr->init_len);
	return fuse_session_custom_io(se, replay_mode ? &slots : &plain, fuse_fd);
}

static void *replay_one(void *arg)
{
	unsigned slot = (unsigned)(uintptr_t)arg;
	struct fuse_in_header *ih = slot_header(slot);
	struct fuse_buf buf = { .mem = ih, .size = ih->len };
	my_slot = (int)slot;
	fuse_session_process_buf(session, &buf);
	my_slot = -1;
	__atomic_store_n(&map->hdr->req[slot].state, REQ_FREE, __ATOMIC_RELEASE);
	return NULL;
}

/* FORGET is not answered, and running it twice would drop a reference the
 * kernel still holds: a lost one only keeps a node a while longer.
 * INTERRUPT names a request of the dead worker's: nothing to do. */
static bool replayable(const struct fuse_in_header *ih)
{
	return ih->len >= sizeof(*ih) && ih->len <= MAP_REQ_BUF && ih->opcode != FUSE_FORGET &&
	       ih->opcode != FUSE_BATCH_FORGET && ih->opcode != FUSE_INIT && ih->opcode != FUSE_INTERRUPT;
}

/* A dead worker's slots: each unanswered request is answered by a thread
 * of its own (it may block, as a `wait` does); the rest are freed. */
static unsigned replay_dead_workers(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < MAP_REQ_SLOTS; i++) {
		struct reqslot *rs = &map->hdr->req[i];
		if (rs->state == REQ_FREE || rs->epoch == epoch)
			continue;
		struct fuse_in_header *ih = slot_header(i);
		pthread_t t;
		if (!replayable(ih) || __atomic_load_n(&ih->len, __ATOMIC_ACQUIRE) == 0) {
			rs->state = REQ_FREE;
			continue;
		}
		rs->state = REQ_REPLAY;
		rs->epoch = epoch;
		if (pthread_create(&t, NULL, replay_one, (void *)(uintptr_t)i) == 0) {
			pthread_detach(t);
			n++;
		} else {
			replay_one((void *)(uintptr_t)i);
		}
	}
	return n;
}

static int notify_resend(int fuse_fd)
{
	struct fuse_out_header oh = { .len = sizeof(oh), .error = FUSE_NOTIFY_RESEND, .unique = 0 };
	return write(fuse_fd, &oh, sizeof(oh)) == (ssize_t)sizeof(oh) ? 0 : -errno;
}

/* What the dead worker left unanswered is answered now: resent by the
 * kernel, or replayed from the slots. Returns how many were replayed, or
 * -errno. */
int inflight_take_over(int fuse_fd)
{
	if (replay_mode)
		return (int)replay_dead_workers();
	return notify_resend(fuse_fd);
}
