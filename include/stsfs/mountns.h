/* The tree's mount and the mount namespaces that hold it (docs/containers.md,
 * "Mount propagation"): the shared parent that lets an unmount and a new
 * mount reach containers, whether this namespace still has the mount, and
 * who holds a state directory. */
#ifndef STSFS_MOUNTNS_H
#define STSFS_MOUNTNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Makes the directory that holds mountpoint a shared mount: a bind of
 * itself when it is no mount point yet (one, however often this runs), then
 * shared. Nothing is undone at exit: containers that bound it depend on
 * it. 0, or -errno with the reason in why. */
int mountns_share_parent(const char *mountpoint, char *why, size_t len);

/* Whether a mount of the file system dev is in the mount table read from
 * fd (an open /proc/PID/mountinfo, read from its start: this also clears
 * its POLLPRI). 1, 0, or -errno. */
int mountns_has_dev(int fd, dev_t dev);

/* The device of the topmost FUSE mount at path (as mountinfo spells it),
 * read from the mount table alone: a stat of the mount would wait for the
 * daemon. 1 found, 0 none, -errno. */
int mountns_fuse_dev_at(const char *path, dev_t *dev);

/* The state directory's lock: taken, or a message naming the process that
 * holds it, its mount and what to do. Returns the descriptor, kept for the
 * life of the process, or -1. */
int holder_lock(const char *state_dir);

/* What a second daemon reads in the lock file: this process and the
 * connection it serves at mountpoint. */
void holder_note(int lock_fd, dev_t dev, const char *mountpoint);

#endif
