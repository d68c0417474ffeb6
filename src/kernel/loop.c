/* Loop devices through /dev/loop-control, the loop ioctls and sysfs. */
#include "stsfs/kernel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define LOOP_MAJOR 7
/* Attempts at grabbing a free device before giving up: each failure means
 * another program took the device between LOOP_CTL_GET_FREE and configure. */
#define ATTACH_TRIES 64

void kloop_devpath(int nr, char *buf, size_t len)
{
	snprintf(buf, len, "/dev/loop%d", nr);
}

static int open_loop(int nr, int flags, char *why)
{
	char path[32];
	kloop_devpath(nr, path, sizeof(path));
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* No devtmpfs/udev node yet (test VM): make it. */
		char made[64];
		if (kblk_devpath(makedev(LOOP_MAJOR, nr), path + 5, made, sizeof(made)) == 0)
			fd = open(made, flags | O_CLOEXEC);
	}
	if (fd < 0)
		return why_set(why, -errno, "cannot open %s: %s", path, strerror(errno));
	return fd;
}

static int sysfs_read(int nr, const char *attr, char *buf, size_t len)
{
	char path[96];
	snprintf(path, sizeof(path), "/sys/block/loop%d/%s", nr, attr);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	int err = errno;
	close(fd);
	if (n < 0)
		return -err;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return 0;
}

static uint64_t sysfs_u64(int nr, const char *attr)
{
	char buf[64];
	if (sysfs_read(nr, attr, buf, sizeof(buf)) != 0)
		return 0;
	return strtoull(buf, NULL, 10);
}

static void fill_info(struct loop_info64 *info, const struct kloop_config *cfg)
{
	memset(info, 0, sizeof(*info));
	info->lo_offset = cfg->offset;
	info->lo_sizelimit = cfg->sizelimit;
	if (cfg->read_only)
		info->lo_flags |= LO_FLAGS_READ_ONLY;
	if (cfg->autoclear)
		info->lo_flags |= LO_FLAGS_AUTOCLEAR;
	if (cfg->partscan)
		info->lo_flags |= LO_FLAGS_PARTSCAN;
	if (cfg->direct_io)
		info->lo_flags |= LO_FLAGS_DIRECT_IO;
	/* Shown by losetup when sysfs is unavailable; keep the real path. */
	snprintf((char *)info->lo_file_name, sizeof(info->lo_file_name), "%s", cfg->backing);
}

/* Old kernels: two steps, not atomic; EBUSY from LOOP_SET_FD still means
 * someone else won the device. */
static int configure_legacy(int lfd, int bfd, const struct kloop_config *cfg)
{
	if (ioctl(lfd, LOOP_SET_FD, bfd) < 0)
		return -errno;
	struct loop_info64 info;
	fill_info(&info, cfg);
	unsigned dio = info.lo_flags & LO_FLAGS_DIRECT_IO;
	info.lo_flags &= ~(unsigned)LO_FLAGS_DIRECT_IO;
	if (ioctl(lfd, LOOP_SET_STATUS64, &info) < 0 ||
	    (cfg->sector_size && ioctl(lfd, LOOP_SET_BLOCK_SIZE, (unsigned long)cfg->sector_size) < 0) ||
	    (dio && ioctl(lfd, LOOP_SET_DIRECT_IO, 1UL) < 0)) {
		int err = -errno;
		ioctl(lfd, LOOP_CLR_FD, 0);
		return err;
	}
	return 0;
}

static int configure(int lfd, int bfd, const struct kloop_config *cfg)
{
	struct loop_config lc;
	memset(&lc, 0, sizeof(lc));
	lc.fd = (unsigned)bfd;
	lc.block_size = cfg->sector_size;
	fill_info(&lc.info, cfg);
	if (ioctl(lfd, LOOP_CONFIGURE, &lc) == 0)
		return 0;
	if (errno == EINVAL || errno == ENOTTY)
		return configure_legacy(lfd, bfd, cfg);
	return -errno;
}

static int open_backing(const struct kloop_config *cfg)
{
	int flags = (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	if (cfg->backing_fd >= 0)
		return fcntl(cfg->backing_fd, F_DUPFD_CLOEXEC, 0);
	if (!cfg->exact_path)
		return open(cfg->backing, flags);
	struct open_how how = { .flags = (uint64_t)flags | O_NOFOLLOW, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, cfg->backing, &how, sizeof(how));
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		errno = EACCES;
		return -1;
	}
	return fd;
}

int kloop_attach(const struct kloop_config *cfg, int *nr, char *why)
{
	int bfd = open_backing(cfg);
	if (bfd < 0 && errno == ELOOP)
		return why_set(why, -EACCES, "cannot open backing file %s: a part of the path became a symlink since it was checked",
			       cfg->backing);
	if (bfd < 0)
		return why_set(why, -errno, "cannot open backing file %s: %s%s", cfg->backing,
			       strerror(errno), errno == EROFS || errno == EACCES ? " (set read_only=1)" : "");
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		int err = -errno;
		close(bfd);
		return why_set(why, err, "cannot open /dev/loop-control: %s", strerror(-err));
	}
	int r = -EBUSY;
	for (int attempt = 0; attempt < ATTACH_TRIES && r == -EBUSY; attempt++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0) {
			r = why_set(why, -errno, "no free loop device: %s", strerror(errno));
			break;
		}
		int lfd = open_loop(n, O_RDWR, why);
		if (lfd < 0) {
			r = lfd;
			break;
		}
		r = configure(lfd, bfd, cfg);
		close(lfd);
		if (r == 0)
			*nr = n;
	}
	close(ctl);
	close(bfd);
	if (r == -EBUSY)
		return why_set(why, r, "every free loop device was taken by others in %d attempts", ATTACH_TRIES);
	if (r < 0 && why && !why[0])
		why_set(why, r, "LOOP_CONFIGURE failed: %s", strerror(-r));
	return r;
}

static void query_sysfs(int nr, struct kloop_state *st)
{
	st->offset = sysfs_u64(nr, "loop/offset");
	st->sizelimit = sysfs_u64(nr, "loop/sizelimit");
	st->autoclear = sysfs_u64(nr, "loop/autoclear");
	st->partscan = sysfs_u64(nr, "loop/partscan");
	st->direct_io = sysfs_u64(nr, "loop/dio");
	st->read_only = sysfs_u64(nr, "ro");
	st->size_bytes = sysfs_u64(nr, "size") * 512;
	st->sector_size = (uint32_t)sysfs_u64(nr, "queue/logical_block_size");
}

/* One sysfs read (the backing file's path: also whether the device is
 * bound) and the device's own ioctls for the rest. */
int kloop_query(int nr, struct kloop_state *st)
{
	memset(st, 0, sizeof(*st));
	if (sysfs_read(nr, "loop/backing_file", st->backing, sizeof(st->backing)) != 0)
		return -ENXIO;
	st->nr = nr;
	st->dev = makedev(LOOP_MAJOR, nr);
	int fd = open_loop(nr, O_RDONLY, NULL);
	struct loop_info64 info;
	if (fd < 0 || ioctl(fd, LOOP_GET_STATUS64, &info) != 0) {
		/* No device node to ask (or detached meanwhile): sysfs has all
		 * but the backing file's identity. */
		if (fd >= 0)
			close(fd);
		query_sysfs(nr, st);
		return 0;
	}
	/* Identity of the backing file: the path may have been renamed or
	 * deleted, the inode is what the device really uses. */
	st->backing_dev = (dev_t)info.lo_device;
	st->backing_ino = (ino_t)info.lo_inode;
	st->offset = info.lo_offset;
	st->sizelimit = info.lo_sizelimit;
	st->autoclear = info.lo_flags & LO_FLAGS_AUTOCLEAR;
	st->partscan = info.lo_flags & LO_FLAGS_PARTSCAN;
	st->direct_io = info.lo_flags & LO_FLAGS_DIRECT_IO;
	int ro = 0, ssz = 0;
	uint64_t bytes = 0;
	st->read_only = ioctl(fd, BLKROGET, &ro) == 0 ? ro != 0 : (info.lo_flags & LO_FLAGS_READ_ONLY);
	if (ioctl(fd, BLKGETSIZE64, &bytes) == 0)
		st->size_bytes = bytes;
	if (ioctl(fd, BLKSSZGET, &ssz) == 0)
		st->sector_size = (uint32_t)ssz;
	close(fd);
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int kloop_list(int **nrs, size_t *n)
{
	*nrs = NULL;
	*n = 0;
	DIR *d = opendir("/sys/block");
	if (!d)
		return -errno;
	size_t cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!value_is_kernel_loop_name(e->d_name))
			continue;
		int nr = atoi(e->d_name + 4);
		char buf[8];
		if (sysfs_read(nr, "loop/offset", buf, sizeof(buf)) != 0)
			continue; /* no backing file: free device */
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			int *p = realloc(*nrs, cap * sizeof(int));
			if (!p) {
				closedir(d);
				free(*nrs);
				*nrs = NULL;
				return -ENOMEM;
			}
			*nrs = p;
		}
		(*nrs)[(*n)++] = nr;
	}
	closedir(d);
	if (*n)
		qsort(*nrs, *n, sizeof(int), cmp_int);
	return 0;
}

static int loop_ioctl(int nr, unsigned long req, unsigned long arg, const char *what, char *why)
{
	int fd = open_loop(nr, O_RDONLY, why);
	if (fd < 0)
		return fd;
	int r = ioctl(fd, req, arg) < 0 ? -errno : 0;
	close(fd);
	if (r)
		return why_set(why, r, "%s on loop%d failed: %s", what, nr, strerror(-r));
	return 0;
}

int kloop_set_capacity(int nr, char *why)
{
	return loop_ioctl(nr, LOOP_SET_CAPACITY, 0, "LOOP_SET_CAPACITY", why);
}

int kloop_set_direct_io(int nr, bool on, char *why)
{
	return loop_ioctl(nr, LOOP_SET_DIRECT_IO, on, "LOOP_SET_DIRECT_IO", why);
}

int kloop_set_sector_size(int nr, uint32_t size, char *why)
{
	return loop_ioctl(nr, LOOP_SET_BLOCK_SIZE, size, "LOOP_SET_BLOCK_SIZE", why);
}

static int update_status(int nr, char *why, void (*edit)(struct loop_info64 *, const void *), const void *arg)
{
	int fd = open_loop(nr, O_RDONLY, why);
	if (fd < 0)
		return fd;
	struct loop_info64 info;
	int r = 0;
	if (ioctl(fd, LOOP_GET_STATUS64, &info) < 0) {
		r = why_set(why, -errno, "LOOP_GET_STATUS64 on loop%d: %s", nr, strerror(errno));
	} else {
		edit(&info, arg);
		if (ioctl(fd, LOOP_SET_STATUS64, &info) < 0)
			r = why_set(why, -errno, "LOOP_SET_STATUS64 on loop%d: %s", nr, strerror(errno));
	}
	close(fd);
	return r;
}

static void edit_offset_limit(struct loop_info64 *info, const void *arg)
{
	const uint64_t *v = arg;
	info->lo_offset = v[0];
	info->lo_sizelimit = v[1];
}

int kloop_set_offset_limit(int nr, uint64_t offset, uint64_t sizelimit, char *why)
{
	uint64_t v[2] = { offset, sizelimit };
	return update_status(nr, why, edit_offset_limit, v);
}

struct flag_edit {
	unsigned flag;
	bool on;
};

static void edit_flag(struct loop_info64 *info, const void *arg)
{
	const struct flag_edit *fe = arg;
	if (fe->on)
		info->lo_flags |= fe->flag;
	else
		info->lo_flags &= ~fe->flag;
}

int kloop_set_flag(int nr, unsigned lo_flag, bool on, char *why)
{
	struct flag_edit fe = { lo_flag, on };
	return update_status(nr, why, edit_flag, &fe);
}

int kloop_detach(int nr, char *why)
{
	/* An exclusive opener (mount, dm table, LVM) refuses O_EXCL outright. */
	if (kblk_in_use(makedev(LOOP_MAJOR, nr)))
		return why_set(why, -EBUSY, "loop%d is in use (mounted, or used by a device-mapper table)", nr);
	int fd = open_loop(nr, O_RDONLY, why);
	if (fd < 0)
		return fd;
	struct loop_info64 before;
	bool had_autoclear = ioctl(fd, LOOP_GET_STATUS64, &before) == 0 &&
			     (before.lo_flags & LO_FLAGS_AUTOCLEAR);
	int r = ioctl(fd, LOOP_CLR_FD, 0) < 0 ? -errno : 0;
	/* Since 5.x the kernel does not refuse LOOP_CLR_FD on a device others
	 * hold open: it turns on autoclear and detaches at their last close.
	 * We want EBUSY and no change instead, so undo that and say so. */
	struct loop_info64 after;
	bool still_bound = r == 0 && ioctl(fd, LOOP_GET_STATUS64, &after) == 0;
	if (still_bound) {
		if (!had_autoclear) {
			after.lo_flags &= ~(unsigned)LO_FLAGS_AUTOCLEAR;
			ioctl(fd, LOOP_SET_STATUS64, &after);
		}
		r = -EBUSY;
	}
	close(fd);
	if (r == -EBUSY)
		return why_set(why, r, "loop%d is open elsewhere; close it first", nr);
	if (r == -ENXIO)
		return 0; /* already gone */
	if (r)
		return why_set(why, r, "LOOP_CLR_FD on loop%d: %s", nr, strerror(-r));
	return 0;
}
