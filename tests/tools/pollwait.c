/* pollwait FILE TIMEOUT_MS: reads FILE, says "armed" on stderr (from then
 * on no event is missed: the file was rendered at a known event counter),
 * then waits in poll(2) for it to change. On an event it reads FILE again from offset 0 (lseek, as sysfs
 * pollers do), prints that text and exits 0; exit 1 on timeout, 2 on error.
 * Used by the tests of pollable status files. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int read_all(int fd, int out)
{
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (out >= 0 && write(out, buf, (size_t)n) != n)
			return -1;
	return n < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: pollwait FILE TIMEOUT_MS\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0 || read_all(fd, -1) < 0) {
		fprintf(stderr, "pollwait: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	fprintf(stderr, "armed\n");
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLPRI };
	int n = poll(&p, 1, atoi(argv[2]));
	if (n < 0) {
		fprintf(stderr, "pollwait: poll: %s\n", strerror(errno));
		return 2;
	}
	if (n == 0)
		return 1;
	if (lseek(fd, 0, SEEK_SET) < 0 || read_all(fd, STDOUT_FILENO) < 0) {
		fprintf(stderr, "pollwait: re-read %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	close(fd);
	return 0;
}
