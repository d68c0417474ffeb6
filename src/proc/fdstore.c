/* systemd's notify protocol and file descriptor store
 * (include/stsfs/fdstore.h): a datagram to $NOTIFY_SOCKET, descriptors
 * attached with SCM_RIGHTS; stored descriptors come back as 3, 4, ...
 * named by $LISTEN_FDNAMES. */
#include "stsfs/fdstore.h"
#include "stsfs/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "stsfs/takeover.h"

#define LISTEN_FDS_START 3
/* /dev/fuse: the misc device 10:229. */
#define FUSE_MAJOR 10
#define FUSE_MINOR 229

static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static bool store_off;

bool fdstore_init(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t n = e ? strlen(e) : 0;
	/* A path or, with '@', an abstract name; vsock addresses are not
	 * for a local daemon. */
	if (n >= 2 && n < sizeof(notify_addr.sun_path) && (e[0] == '/' || e[0] == '@')) {
		notify_addr.sun_family = AF_UNIX;
		memcpy(notify_addr.sun_path, e, n);
		if (e[0] == '@')
			notify_addr.sun_path[0] = '\0';
		notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/'));
	}
	const char *max = getenv("FDSTORE");
	store_off = max && strtol(max, NULL, 10) <= 0;
	unsetenv("NOTIFY_SOCKET");
	unsetenv("FDSTORE");
	return notify_len > 0;
}

bool fdstore_usable(void)
{
	return notify_len > 0 && !store_off;
}

int fdstore_notify(const char *state, int fd)
{
	if (!notify_len)
		return -ENOTCONN;
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	struct iovec iov = { .iov_base = (void *)state, .iov_len = strlen(state) };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	memset(&control, 0, sizeof(control));
	struct msghdr msg = {
		.msg_name = &notify_addr,
		.msg_namelen = notify_len,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	if (fd >= 0) {
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t r = sendmsg(s, &msg, MSG_NOSIGNAL);
	int e = r < 0 ? -errno : 0;
	close(s);
	return e;
}

static bool is_fuse_dev(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == FUSE_MAJOR &&
	       minor(st.st_rdev) == FUSE_MINOR;
}

/* A map made by map_create: its magic, and an INIT request in it. */
static bool is_map(int fd)
{
	struct map_header h;
	return pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && h.magic == MAP_MAGIC && h.init_len > 0 &&
	       h.init_len <= MAP_INIT_MAX;
}

int fdstore_take(int *fuse_fd, int *map_fd)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char *copy = names ? strdup(names) : NULL;
	long n = 0;
	if (pid && fds && strtol(pid, NULL, 10) == (long)getpid())
		n = strtol(fds, NULL, 10);
	if (n < 0 || n > 64)
		n = 0;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	*fuse_fd = *map_fd = -1;
	char *save = NULL, *name = copy ? strtok_r(copy, ":", &save) : NULL;
	for (int i = 0; i < n; i++) {
		int fd = LISTEN_FDS_START + i;
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
			continue;
		if (name && !strcmp(name, FDSTORE_FUSE) && *fuse_fd < 0)
			*fuse_fd = fd;
		else if (name && !strcmp(name, FDSTORE_MAP) && *map_fd < 0)
			*map_fd = fd;
		else
			close(fd); /* not ours, or a duplicate */
		name = name ? strtok_r(NULL, ":", &save) : NULL;
	}
	free(copy);
	if (*fuse_fd >= 0 && *map_fd >= 0) {
		if (!is_fuse_dev(*fuse_fd)) {
			log_msg(L_ERROR, "the stored %s is not /dev/fuse", FDSTORE_FUSE);
			return -EINVAL;
		}
		if (!is_map(*map_fd)) {
			log_msg(L_ERROR, "the stored %s is not a map of stsfs", FDSTORE_MAP);
			return -EINVAL;
		}
		return 1;
	}
	if (*fuse_fd >= 0 || *map_fd >= 0)
		log_msg(L_WARNING, "the service manager passed %s without %s; mounting anew",
			*fuse_fd >= 0 ? FDSTORE_FUSE : FDSTORE_MAP, *fuse_fd >= 0 ? FDSTORE_MAP : FDSTORE_FUSE);
	if (*fuse_fd >= 0)
		close(*fuse_fd);
	if (*map_fd >= 0)
		close(*map_fd);
	*fuse_fd = *map_fd = -1;
	return 0;
}

int fdstore_save(int fuse_fd, int map_fd)
{
	int r = fdstore_notify("FDSTORE=1\nFDNAME=" FDSTORE_FUSE "\n", fuse_fd);
	if (r == 0)
		r = fdstore_notify("FDSTORE=1\nFDNAME=" FDSTORE_MAP "\n", map_fd);
	return r;
}

void fdstore_remove(void)
{
	fdstore_notify("FDSTOREREMOVE=1\nFDNAME=" FDSTORE_FUSE "\n", -1);
	fdstore_notify("FDSTOREREMOVE=1\nFDNAME=" FDSTORE_MAP "\n", -1);
}
