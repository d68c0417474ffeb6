/* The daemon's log: one line per event, to stderr in the foreground and to
 * syslog (the journal) when daemonized. No FUSE types. docs/logging.md. */
#ifndef STSFS_LOG_H
#define STSFS_LOG_H

#include <stdbool.h>

/* The levels, with syslog's priorities: device changes are info, refused
 * requests (the reason the `error` file shows) warning, internal failures
 * error, per-request detail debug. */
enum log_level {
	L_ERROR = 3,
	L_WARNING = 4,
	L_INFO = 6,
	L_DEBUG = 7,
};

/* Set by the supervisor for the workers it starts once it has left the
 * terminal: "syslog" makes their log go to syslog too. */
#define LOG_ENV "STSFS_LOG"
/* Test only: syslog mode sends its datagrams to this unix socket instead
 * of /dev/log (tests/integration/test_logging.sh). */
#define LOG_SOCKET_ENV "STSFS_SYSLOG_SOCKET"

/* "error", "warning", "info" or "debug"; -1 for anything else. */
int log_parse_level(const char *s, enum log_level *out);
/* Lines above level are dropped (default L_INFO). */
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* From now on to syslog (ident "stsfs", LOG_PID, LOG_DAEMON), not stderr. */
void log_to_syslog(void);
/* A worker: syslog when LOG_ENV says so. */
void log_init_from_env(void);

/* bytes for a log line: "256 MiB" when whole MiB, else "1000 bytes". */
const char *log_bytes(unsigned long long bytes, char buf[32]);

/* One line; a trailing newline is not needed. */
__attribute__((format(printf, 2, 3)))
void log_msg(enum log_level level, const char *fmt, ...);

#endif
