/* Running the device-mapper-persistent-data tools and friends. */
#include "stsfs/kernel.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct sink {
	int fd;
	char *buf;
	size_t len, cap;
	bool keep;
};

static int sink_read(struct sink *s)
{
	char chunk[4096];
	ssize_t n = read(s->fd, chunk, sizeof(chunk));
	if (n <= 0) {
		close(s->fd);
		s->fd = -1;
		return n < 0 && errno != EINTR ? -errno : 0;
	}
	if (!s->keep)
		return 0;
	if (s->len + (size_t)n + 1 > s->cap) {
		size_t cap = (s->cap ? s->cap * 2 : 8192) + (size_t)n;
		char *p = realloc(s->buf, cap);
		if (!p)
			return -ENOMEM;
		s->buf = p;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, chunk, (size_t)n);
	s->len += (size_t)n;
	s->buf[s->len] = '\0';
	return 0;
}

/* Drains both pipes together so a chatty stderr cannot stall the tool. */
static int drain(struct sink *s, size_t ns)
{
	for (;;) {
		struct pollfd p[2];
		nfds_t np = 0;
		for (size_t i = 0; i < ns; i++)
			if (s[i].fd >= 0)
				p[np++] = (struct pollfd){ .fd = s[i].fd, .events = POLLIN };
		if (!np)
			return 0;
		if (poll(p, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (size_t i = 0; i < ns; i++) {
			for (nfds_t j = 0; j < np; j++) {
				if (s[i].fd == p[j].fd && p[j].revents) {
					int r = sink_read(&s[i]);
					if (r)
						return r;
					break;
				}
			}
		}
	}
}

/* The Debian package that provides a tool stsfs runs, or NULL. */
static const char *tool_package(const char *tool)
{
	static const char *const prefixes[] = { "thin_", "cache_", "era_" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(tool, prefixes[i], strlen(prefixes[i])) == 0)
			return "thin-provisioning-tools";
	return NULL;
}

/* A missing tool is a feature this host lacks, as a kernel without
 * device-mapper is (ENODEV), not a missing file the user named (ENOENT):
 * the reason says what to install. */
static int not_installed(const char *tool, char *why)
{
	const char *pkg = tool_package(tool);
	if (!pkg)
		return why_set(why, -ENODEV, "%s is not installed (not found in PATH)", tool);
	return why_set(why, -ENODEV, "%s is not installed: install the %s package (Debian: apt-get install %s)", tool,
		       pkg, pkg);
}

static void kill_tool(void *pid)
{
	kill(*(pid_t *)pid, SIGKILL);
}

int ktool_run(const char *const argv[], struct cancel *cancel, char **out, char **err, int *exit_code, char *why)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return why_set(why, -errno, "pipe: %s", strerror(errno));
	if (pipe2(pe, O_CLOEXEC) < 0) {
		int e = -errno;
		close(po[0]);
		close(po[1]);
		return why_set(why, e, "pipe: %s", strerror(-e));
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	if (rc != 0) {
		close(po[0]);
		close(pe[0]);
		if (rc == ENOENT)
			return not_installed(argv[0], why);
		return why_set(why, -rc, "cannot run %s: %s", argv[0], strerror(rc));
	}
	struct sink s[2] = { { po[0], NULL, 0, 0, out != NULL }, { pe[0], NULL, 0, 0, err != NULL } };
	/* An interrupted reader kills the tool: its pipes then close. */
	int r = cancel_arm(cancel, kill_tool, &pid);
	if (r)
		kill(pid, SIGKILL);
	else
		r = drain(s, 2);
	/* Before waitpid: the pid must not be killed once it may be reused. */
	cancel_disarm(cancel);
	for (int i = 0; i < 2; i++)
		if (s[i].fd >= 0)
			close(s[i].fd);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!r && cancel_fired(cancel))
		r = -EINTR;
	if (r) {
		free(s[0].buf);
		free(s[1].buf);
		if (r == -EINTR)
			return why_set(why, r, "%s was killed: the reader was interrupted", argv[0]);
		return why_set(why, r, "reading output of %s: %s", argv[0], strerror(-r));
	}
	/* posix_spawnp reports a missing binary as exit 127 of the child. */
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !s[0].len) {
		free(s[0].buf);
		free(s[1].buf);
		return not_installed(argv[0], why);
	}
	*exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (out)
		*out = s[0].buf ? s[0].buf : strdup("");
	if (err)
		*err = s[1].buf ? s[1].buf : strdup("");
	return 0;
}
