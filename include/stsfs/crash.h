/* A worker that crashes ends at once and says where (src/util/crash.c). */
#ifndef STSFS_CRASH_H
#define STSFS_CRASH_H

/* Makes the process not dumpable and logs fatal signals with a backtrace
 * to stderr. Call once, early, in the worker. */
void crash_handlers_install(void);

#endif
