/* Waiting for a device's next event: poll(2) handles and blocked reads
 * (the `wait` file) per (device, event counter), each set served by one
 * thread blocked in the kind's event_wait. */
#ifndef STSFS_TREE_WATCH_H
#define STSFS_TREE_WATCH_H

#include <stdint.h>

#include "stsfs/tree.h"

struct fuse_pollhandle;

/* Notifies ph once the event counter of device key (of kind) moves past
 * after. A newer handle for the same open file (fh_id) replaces an older
 * one. Takes ph in every case; -errno when no waiter could be started (ph
 * is then notified at once, so the caller's poll is re-evaluated). */
int watch_add(const struct dir_kind *kind, const char *key, uint32_t after, uint64_t fh_id,
	      struct fuse_pollhandle *ph);

/* Blocks until the event counter of device key (of kind) moves past after,
 * or the device goes away: 0. -EINTR when cancel fires first (or the
 * session goes away); -EAGAIN when no waiter thread could be started. */
int watch_block(const struct dir_kind *kind, const char *key, uint32_t after, struct cancel *cancel);

/* Before the session goes away: pending handles are dropped, not notified
 * (waiter threads still blocked in the kernel end with the process). */
void watch_shutdown(void);

#endif
