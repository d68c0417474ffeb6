/* A thin pool's metadata device before the kernel sees it: does it hold a
 * pool's superblock, and wiping one so that the kernel formats fresh
 * metadata (it does so when the superblock block is all zeros). */
#include "stsfs/kernel.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define THIN_SUPERBLOCK_BYTES 4096
/* struct thin_disk_superblock: csum, flags, blocknr, uuid[16], then magic. */
#define THIN_MAGIC_OFFSET 32
#define THIN_SUPERBLOCK_MAGIC 27022010ULL

int kthin_has_superblock(const char *devpath, bool *present, char *why)
{
	int fd = open(devpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return why_set(why, -errno, "%s: %s", devpath, strerror(errno));
	uint64_t magic = 0;
	ssize_t n = pread(fd, &magic, sizeof(magic), THIN_MAGIC_OFFSET);
	int err = errno;
	close(fd);
	if (n != (ssize_t)sizeof(magic))
		return why_set(why, n < 0 ? -err : -EIO, "cannot read the superblock of %s", devpath);
	*present = le64toh(magic) == THIN_SUPERBLOCK_MAGIC;
	return 0;
}

int kthin_wipe_superblock(const char *devpath, char *why)
{
	static const char zeros[THIN_SUPERBLOCK_BYTES];
	int fd = open(devpath, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return why_set(why, -errno, "%s: %s", devpath, strerror(errno));
	ssize_t n = pwrite(fd, zeros, sizeof(zeros), 0);
	int r = n == (ssize_t)sizeof(zeros) ? 0 : (n < 0 ? -errno : -EIO);
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r ? why_set(why, r, "cannot wipe the metadata superblock on %s: %s", devpath, strerror(-r)) : 0;
}
