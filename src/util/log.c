/* The daemon's log (include/stsfs/log.h). Each line is formatted whole and
 * written with one call, so that lines of concurrent requests do not mix. */
#include "stsfs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

static enum log_level max_level = L_INFO;
static bool use_syslog;
static int test_sock = -1;
static struct sockaddr_un test_addr;
static int journal_stderr = -1; /* unknown yet */

static const struct {
	const char *name;
	enum log_level level;
} levels[] = {
	{ "error", L_ERROR },
	{ "warning", L_WARNING },
	{ "info", L_INFO },
	{ "debug", L_DEBUG },
};

static const char *level_name(enum log_level level)
{
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (levels[i].level == level)
			return levels[i].name;
	return "?";
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (size_t i = 0; s && i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(s, levels[i].name) == 0) {
			*out = levels[i].level;
			return 0;
		}
	return -1;
}

void log_set_level(enum log_level level)
{
	max_level = level;
}

bool log_enabled(enum log_level level)
{
	return level <= max_level;
}

void log_to_syslog(void)
{
	const char *sock = getenv(LOG_SOCKET_ENV);
	if (sock && *sock && strlen(sock) < sizeof(test_addr.sun_path)) {
		test_sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		test_addr.sun_family = AF_UNIX;
		strcpy(test_addr.sun_path, sock);
	} else {
		openlog("stsfs", LOG_PID, LOG_DAEMON);
	}
	use_syslog = true;
}

void log_init_from_env(void)
{
	const char *v = getenv(LOG_ENV);
	if (v && strcmp(v, "syslog") == 0)
		log_to_syslog();
}

const char *log_bytes(unsigned long long bytes, char buf[32])
{
	if (bytes && bytes % (1024 * 1024) == 0)
		snprintf(buf, 32, "%llu MiB", bytes / (1024 * 1024));
	else
		snprintf(buf, 32, "%llu bytes", bytes);
	return buf;
}

/* Whether stderr is the journal's stream (systemd sets JOURNAL_STREAM to
 * its "DEV:INO"): journald then reads a "<PRIORITY>" prefix and records
 * the process itself. */
static bool stderr_is_journal(void)
{
	if (journal_stderr < 0) {
		const char *js = getenv("JOURNAL_STREAM");
		unsigned long long dev, ino;
		struct stat st;
		journal_stderr = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
				 (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
	}
	return journal_stderr;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	if (!use_syslog && stderr_is_journal()) {
		fprintf(stderr, "<%d>%s: %s\n", (int)level, level_name(level), msg);
		return;
	}
	if (!use_syslog) {
		fprintf(stderr, "stsfs[%ld]: %s: %s\n", (long)getpid(), level_name(level), msg);
		return;
	}
	if (test_sock < 0) {
		syslog((int)level, "%s", msg);
		return;
	}
	/* What syslog(3) sends, without the time stamp. */
	char dgram[1200];
	int len = snprintf(dgram, sizeof(dgram), "<%d>stsfs[%ld]: %s", LOG_DAEMON | (int)level, (long)getpid(), msg);
	if (len > 0)
		sendto(test_sock, dgram, (size_t)len < sizeof(dgram) ? (size_t)len : sizeof(dgram) - 1, MSG_NOSIGNAL,
		       (struct sockaddr *)&test_addr, sizeof(test_addr));
}
