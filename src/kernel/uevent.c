/* Block device uevents (the kernel's netlink broadcast, with or without
 * udev): loop and device-mapper devices appearing, changing and going,
 * whoever made the change. */
#include "stsfs/kernel.h"

#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int kuevent_open(char *why)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
	if (fd < 0)
		return why_set(why, -errno, "no uevent socket: %s", strerror(errno));
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = errno;
		close(fd);
		return why_set(why, -err, "cannot listen to uevents: %s", strerror(err));
	}
	return fd;
}

/* The message is "ACTION@DEVPATH" then NUL-separated KEY=VALUE pairs. */
static bool is_ours(const char *msg, size_t len, char *devname, size_t dlen)
{
	bool block = false;
	devname[0] = '\0';
	for (size_t off = strlen(msg) + 1; off < len; off += strlen(msg + off) + 1) {
		const char *kv = msg + off;
		if (strcmp(kv, "SUBSYSTEM=block") == 0)
			block = true;
		else if (strncmp(kv, "DEVNAME=", 8) == 0)
			snprintf(devname, dlen, "%s", kv + 8);
	}
	return block && (strncmp(devname, "loop", 4) == 0 || strncmp(devname, "dm-", 3) == 0);
}

int kuevent_next(int fd, char *devname, size_t len)
{
	char buf[8192];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf[n] = '\0';
		if (is_ours(buf, (size_t)n, devname, len))
			return 0;
	}
}
