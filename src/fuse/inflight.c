/* Requests in flight when a worker dies. Where the kernel resends them on
 * FUSE_NOTIFY_RESEND (Linux 6.9 and later), a new worker asks it to. Where
 * it does not, each worker thread reads /dev/fuse straight into a request
 * slot of the shared map, so a request is in the map the moment the kernel
 * hands it out, and stays marked until its answer is written; the next
 * worker answers what a dead one left.
 *
 * An answer is kept in the slot, after its request, before it is written:
 * a worker killed between writing it and clearing the mark leaves it there,
 * and the next worker writes it again (the kernel drops it if the first
 * arrived) rather than running the request a second time. A second run
 * would do its change twice and race with what the kernel does next once
 * it has the answer (a RELEASE of the file, a FORGET of the node).
 *
 * STSFS_TAKEOVER=replay uses the slots on any kernel (the tests do, to
 * cover both ways natively). STSFS_TAKEOVER=replay-answered also leaves
 * each thread's last answer marked until the thread reads its next
 * request, as a kill right after every answer would. */
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
static bool keep_answered;
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

/* Where the answer to a slot's request is kept: after the request. */
static size_t answer_offset(const struct fuse_in_header *ih)
{
	return (ih->len + 7u) & ~(size_t)7;
}

static void slot_clear(unsigned slot)
{
	__atomic_store_n(&map->hdr->answer_len[slot], 0, __ATOMIC_RELEASE);
	__atomic_store_n(&slot_header(slot)->len, 0, __ATOMIC_RELEASE);
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
	slot_clear(slot);
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
	if (!keep_answered)
		slot_clear((unsigned)my_slot);
	ssize_t n = read(fd, ih, len < MAP_REQ_BUF ? len : MAP_REQ_BUF);
	if (n > 0)
		memcpy(buf, ih, (size_t)n);
	return n;
}

/* Copies the answer to the slot's request after it, then marks it kept.
 * An answer that does not fit is not kept (the request runs again). */
static void keep_answer(unsigned slot, const struct iovec *iov, int count)
{
	struct fuse_in_header *ih = slot_header(slot);
	size_t at = answer_offset(ih), len = 0;
	for (int i = 0; i < count; i++)
		len += iov[i].iov_len;
	if (at + len > MAP_REQ_BUF)
		return;
	unsigned char *p = (unsigned char *)ih + at;
	for (int i = 0; i < count; p += iov[i].iov_len, i++)
		memcpy(p, iov[i].iov_base, iov[i].iov_len);
	__atomic_store_n(&map->hdr->answer_len[slot], (uint32_t)len, __ATOMIC_RELEASE);
}

/* The answer to the slot's request is kept, written, and then the slot is
 * cleared. Notifications (unique 0) and answers to other requests pass. */
static ssize_t slot_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	bool mine = false;
	if (my_slot >= 0 && count > 0 && iov[0].iov_len >= sizeof(struct fuse_out_header)) {
		const struct fuse_out_header *oh = iov[0].iov_base;
		const struct fuse_in_header *ih = slot_header((unsigned)my_slot);
		mine = oh->unique && oh->unique == ih->unique && __atomic_load_n(&ih->len, __ATOMIC_ACQUIRE) != 0;
	}
	if (mine)
		keep_answer((unsigned)my_slot, iov, count);
	ssize_t n = writev(fd, iov, count);
	if (mine && !keep_answered)
		slot_clear((unsigned)my_slot);
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
	keep_answered = want && strcmp(want, "replay-answered") == 0;
	replay_mode = (want && strncmp(want, "replay", 6) == 0) || !init_has_resend(m->hdr->init, m->hdr->init_len);
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
	slot_clear(slot);
	__atomic_store_n(&map->hdr->req[slot].state, REQ_FREE, __ATOMIC_RELEASE);
	return NULL;
}

/* The answer a dead worker kept for the request in a slot, if it is there
 * whole: its unique is the request's. */
static const struct fuse_out_header *kept_answer(unsigned slot)
{
	const struct fuse_in_header *ih = slot_header(slot);
	uint32_t len = __atomic_load_n(&map->hdr->answer_len[slot], __ATOMIC_ACQUIRE);
	if (len < sizeof(struct fuse_out_header) || answer_offset(ih) + len > MAP_REQ_BUF)
		return NULL;
	const struct fuse_out_header *oh = (const void *)((const unsigned char *)ih + answer_offset(ih));
	return oh->len == len && oh->unique == ih->unique ? oh : NULL;
}

/* FORGET is not answered, and running it twice would drop a reference the
 * kernel still holds: a lost one only keeps a node a while longer.
 * INTERRUPT names a request of the dead worker's: nothing to do. */
static bool replayable(const struct fuse_in_header *ih)
{
	return ih->len >= sizeof(*ih) && ih->len <= MAP_REQ_BUF && ih->opcode != FUSE_FORGET &&
	       ih->opcode != FUSE_BATCH_FORGET && ih->opcode != FUSE_INIT && ih->opcode != FUSE_INTERRUPT;
}

/* A dead worker's slots: a kept answer is written again (the kernel drops
 * it if the first arrived); each request without one is answered by a
 * thread of its own (it may block, as a `wait` does); the rest are freed. */
static unsigned replay_dead_workers(int fuse_fd, unsigned *rewritten)
{
	unsigned n = 0;
	for (unsigned i = 0; i < MAP_REQ_SLOTS; i++) {
		struct reqslot *rs = &map->hdr->req[i];
		if (rs->state == REQ_FREE || rs->epoch == epoch)
			continue;
		struct fuse_in_header *ih = slot_header(i);
		const struct fuse_out_header *kept = kept_answer(i);
		pthread_t t;
		if (kept && __atomic_load_n(&ih->len, __ATOMIC_ACQUIRE) != 0) {
			if (write(fuse_fd, kept, kept->len) < 0 && errno != ENOENT)
				log_msg(L_WARNING, "writing a kept answer again: %s", strerror(errno));
			++*rewritten;
		}
		if (kept || !replayable(ih) || __atomic_load_n(&ih->len, __ATOMIC_ACQUIRE) == 0) {
			slot_clear(i);
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
 * kernel, or replayed from the slots (*rewritten: answers it had kept and
 * are written again). Returns how many were replayed, or -errno. */
int inflight_take_over(int fuse_fd, unsigned *rewritten)
{
	*rewritten = 0;
	if (replay_mode)
		return (int)replay_dead_workers(fuse_fd, rewritten);
	return notify_resend(fuse_fd);
}
