/* systemd's file descriptor store, spoken directly (sd_notify(3),
 * sd_listen_fds(3); no libsystemd): the supervisor stores the FUSE
 * connection and the shared map (takeover.h) in the service manager, which
 * hands them to the next start of the service, so that `systemctl restart`
 * keeps the mount (docs/systemd.md). */
#ifndef STSFS_FDSTORE_H
#define STSFS_FDSTORE_H

#include <stdbool.h>

#define FDSTORE_FUSE "stsfs-fuse"
#define FDSTORE_MAP "stsfs-map"

/* Takes $NOTIFY_SOCKET (and $FDSTORE, the store's size where systemd
 * tells it, v254 and later) out of the environment, so that no worker or
 * tool inherits them. Whether there is a service manager to notify. */
bool fdstore_init(void);
/* Whether the manager may keep descriptors: a notify socket, and $FDSTORE
 * unset (systemd before v254 does not tell) or not 0. */
bool fdstore_usable(void);
/* Sends one notification (sd_notify(3)), with fd attached (SCM_RIGHTS)
 * unless it is -1. 0 or -errno. */
int fdstore_notify(const char *state, int fd);

/* The descriptors a manager passed to this process (LISTEN_PID,
 * LISTEN_FDS, LISTEN_FDNAMES; taken out of the environment): 1 and both
 * set when the connection and the map are among them, 0 when not (the
 * passed descriptors are closed then), -errno when they are there but not
 * what they claim to be (a /dev/fuse descriptor, a map with its magic). */
int fdstore_take(int *fuse_fd, int *map_fd);
/* FDSTORE=1 for the connection and the map, by name. 0 when both went. */
int fdstore_save(int fuse_fd, int map_fd);
/* FDSTOREREMOVE=1 for both: the mount has ended. */
void fdstore_remove(void);

#endif
