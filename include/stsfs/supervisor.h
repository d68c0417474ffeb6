/* The process that holds a mount: it mounts, keeps the FUSE connection and
 * the shared map (takeover.h), and runs the worker that serves the tree,
 * starting a new one whenever a worker dies. */
#ifndef STSFS_SUPERVISOR_H
#define STSFS_SUPERVISOR_H

#include <stdbool.h>

struct fuse_args;

/* The variable that tells a started worker its descriptors:
 * "FUSE_FD:MAP_FD:READY_FD:CWD_FD". */
#define WORKER_ENV "STSFS_WORKER"
/* A worker's log (log.h): LOG_ENV=syslog when the supervisor left the
 * terminal (no -f), unset otherwise (stderr); the level comes from the
 * options on the worker's command line, the supervisor's own. */
/* A worker that cannot start at all (bad options, the kernel refusing
 * what the state dir holds) exits with this: starting it again would not
 * help. */
#define WORKER_EXIT_FATAL 3

/* Mounts at mountpoint with args and serves it by workers, each a new
 * execution of this program with argv. Under systemd (fdstore.h) the
 * connection and the map are stored in the service manager, and a start
 * that is handed them back serves that connection instead of mounting.
 * lock_fd is the state directory's lock (mountns.h), noted with the
 * connection once it is known. Returns the exit status. */
int supervise(struct fuse_args *args, const char *mountpoint, char **argv, bool foreground, int lock_fd);

#endif
