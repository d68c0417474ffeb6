/* Generic block devices: node paths, sizes, holders, libblkid probing. */
#include "stsfs/kernel.h"

#include <blkid/blkid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int uevent_devname(dev_t dev, char *name, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent", major(dev), minor(dev));
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char line[256];
	int r = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "DEVNAME=", 8) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(name, len, "%s", line + 8);
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

int kblk_devpath(dev_t dev, const char *kname, char *buf, size_t len)
{
	char name[128];
	if (uevent_devname(dev, name, sizeof(name)) != 0) {
		if (!kname)
			return -ENXIO;
		snprintf(name, sizeof(name), "%s", kname);
	}
	snprintf(buf, len, "/dev/%s", name);
	struct stat st;
	if (stat(buf, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == dev)
		return 0;
	/* Without udev (or before it has run) the node can be missing. */
	if (mknod(buf, S_IFBLK | 0600, dev) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int kblk_size(dev_t dev, uint64_t *bytes)
{
	char path[64], buf[32];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/size", major(dev), minor(dev));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	*bytes = strtoull(buf, NULL, 10) * 512;
	return 0;
}

static bool has_holders(dev_t dev)
{
	char path[64];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/holders", major(dev), minor(dev));
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool any = false;
	struct dirent *e;
	while (!any && (e = readdir(d)))
		any = e->d_name[0] != '.';
	closedir(d);
	return any;
}

bool kblk_in_use(dev_t dev)
{
	if (has_holders(dev))
		return true;
	char path[PATH_MAX];
	if (kblk_devpath(dev, NULL, path, sizeof(path)) != 0)
		return false;
	int fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == EBUSY;
	close(fd);
	return false;
}

static blkid_probe probe_fd(int fd, const char *devpath, uint64_t offset, uint64_t size, char *why)
{
	blkid_probe pr = blkid_new_probe();
	if (!pr || blkid_probe_set_device(pr, fd, (blkid_loff_t)offset, (blkid_loff_t)size) != 0) {
		why_set(why, -ENOMEM, "libblkid cannot probe %s", devpath);
		if (pr)
			blkid_free_probe(pr);
		return NULL;
	}
	return pr;
}

static blkid_probe open_probe(const char *devpath, uint64_t offset, uint64_t size, int *fdp, char *why)
{
	int fd = open(devpath, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		why_set(why, -errno, "cannot open %s: %s", devpath, strerror(errno));
		return NULL;
	}
	blkid_probe pr = probe_fd(fd, devpath, offset, size, why);
	if (!pr)
		close(fd);
	*fdp = fd;
	return pr;
}

/* Sets pr up to find the signatures one by one, with their magic, as
 * wipefs does. */
static void want_signatures(blkid_probe pr)
{
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_MAGIC | BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE |
						      BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_BADCSUM);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC | BLKID_PARTS_FORCE_GPT);
}

static void lookup_str(blkid_probe pr, const char *name, char *buf, size_t len)
{
	const char *v = NULL;
	if (blkid_probe_lookup_value(pr, name, &v, NULL) != 0)
		v = "";
	snprintf(buf, len, "%s", v);
}

/* The signature blkid_do_probe has just found, and the length of its
 * magic; -ENOENT when it has no magic on disk (nothing wipefs would list
 * or erase). */
static int found_sig(blkid_probe pr, struct kblk_sig *s, size_t *magic_len)
{
	memset(s, 0, sizeof(*s));
	bool sb = blkid_probe_has_value(pr, "TYPE");
	if (!sb && !blkid_probe_has_value(pr, "PTTYPE"))
		return -ENOENT;
	const char *off = NULL, *magic = NULL;
	size_t mlen = 0;
	if (blkid_probe_lookup_value(pr, sb ? "SBMAGIC_OFFSET" : "PTMAGIC_OFFSET", &off, NULL) != 0 ||
	    blkid_probe_lookup_value(pr, sb ? "SBMAGIC" : "PTMAGIC", &magic, &mlen) != 0)
		return -ENOENT;
	s->offset = strtoull(off, NULL, 10);
	*magic_len = mlen;
	for (size_t i = 0; i < mlen && 2 * i + 2 < sizeof(s->magic); i++)
		snprintf(s->magic + 2 * i, 3, "%02x", (unsigned char)magic[i]);
	lookup_str(pr, sb ? "TYPE" : "PTTYPE", s->type, sizeof(s->type));
	if (sb)
		lookup_str(pr, "USAGE", s->usage, sizeof(s->usage));
	else
		snprintf(s->usage, sizeof(s->usage), "partition-table");
	lookup_str(pr, sb ? "UUID" : "PTUUID", s->uuid, sizeof(s->uuid));
	if (sb)
		lookup_str(pr, "LABEL", s->label, sizeof(s->label));
	return 0;
}

/* Steps through pr's signatures, erasing each when wipe is set. As
 * wipefs: a prober that found one magic runs again with that magic hidden
 * (listing) or erased (blkid_do_wipe steps back itself), so a file system
 * with several magics (vfat: 0x36, 0x0, 0x1fe) shows each. */
static int each_sig(blkid_probe pr, bool wipe, struct kblk_sig *sigs, size_t *n, const char *devpath,
		    char *why)
{
	*n = 0;
	int rc;
	while ((rc = blkid_do_probe(pr)) == 0) {
		struct kblk_sig s;
		size_t mlen;
		if (found_sig(pr, &s, &mlen) != 0)
			continue;
		errno = 0;
		if (wipe && blkid_do_wipe(pr, 0) != 0) {
			int e = errno ? errno : EIO;
			return why_set(why, -e, "cannot erase the %s signature at %llu of %s: %s", s.type,
				       (unsigned long long)s.offset, devpath, strerror(e));
		}
		if (!wipe && (blkid_probe_hide_range(pr, s.offset, mlen) != 0 || blkid_probe_step_back(pr) != 0))
			return why_set(why, -EIO, "libblkid cannot step past the %s signature at %llu of %s", s.type,
				       (unsigned long long)s.offset, devpath);
		if (sigs && *n < KBLK_MAX_SIGS)
			sigs[*n] = s;
		/* A magic that stays where it was erased (a device that drops
		 * writes) must not loop forever. */
		if (++*n > 16 * KBLK_MAX_SIGS)
			return why_set(why, -EIO, "%s: more than %d signatures; stopped", devpath, 16 * KBLK_MAX_SIGS);
	}
	if (rc < 0)
		return why_set(why, -EIO, "libblkid cannot read %s", devpath);
	return 0;
}

int kblk_signatures(const char *devpath, uint64_t offset, uint64_t size, struct kblk_sig *sigs, size_t *n,
		    char *why)
{
	int fd;
	*n = 0;
	blkid_probe pr = open_probe(devpath, offset, size, &fd, why);
	if (!pr)
		return -EIO;
	want_signatures(pr);
	int r = each_sig(pr, false, sigs, n, devpath, why);
	blkid_free_probe(pr);
	close(fd);
	if (*n > KBLK_MAX_SIGS)
		*n = KBLK_MAX_SIGS;
	return r;
}

int kblk_wipe(const char *devpath, uint64_t offset, uint64_t size, struct kblk_sig *sigs, size_t *n, char *why)
{
	*n = 0;
	/* O_EXCL: the kernel refuses it while the device is mounted, held by
	 * a dm table or open exclusively by anyone else. */
	int fd = open(devpath, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0 && errno == EBUSY)
		return why_set(why, -EBUSY, "%s is in use (mounted, held by another device, or open exclusively): release it first",
			       devpath);
	if (fd < 0 && (errno == EROFS || errno == EACCES))
		return why_set(why, -EROFS, "%s is read-only", devpath);
	if (fd < 0)
		return why_set(why, -errno, "cannot open %s: %s", devpath, strerror(errno));
	blkid_probe pr = probe_fd(fd, devpath, offset, size, why);
	int r = pr ? 0 : -EIO;
	if (pr) {
		want_signatures(pr);
		r = each_sig(pr, true, sigs, n, devpath, why);
		blkid_free_probe(pr);
	}
	if (fsync(fd) != 0 && !r)
		r = why_set(why, -errno, "cannot flush %s: %s", devpath, strerror(errno));
	close(fd);
	if (*n > KBLK_MAX_SIGS)
		*n = KBLK_MAX_SIGS;
	return r;
}

/* libblkid's "ambivalent result": what each signature is and where. */
static int add_signatures(const char *devpath, uint64_t offset, uint64_t size, struct kv_block *out, char *why)
{
	struct kblk_sig sigs[KBLK_MAX_SIGS];
	size_t n;
	int r = kblk_signatures(devpath, offset, size, sigs, &n, why);
	if (r || (r = kv_add_bool(out, "ambivalent", true)) || (r = kv_add_u64(out, "signatures", n)) ||
	    (r = kv_add_list(out, "signature")))
		return r;
	for (size_t i = 0; i < n && !r; i++) {
		struct kv_block *s = kv_add_obj(out, "signature");
		if (!s)
			return -ENOMEM;
		if ((r = kv_add_str(s, "type", sigs[i].type)) || (r = kv_add_str(s, "usage", sigs[i].usage)) ||
		    (r = kv_add_u64(s, "offset", sigs[i].offset)) || (r = kv_add_str(s, "magic", sigs[i].magic)) ||
		    (r = kv_add_str(s, "uuid", sigs[i].uuid)))
			break;
		r = kv_add_str(s, "label", sigs[i].label);
	}
	return r;
}

int kblk_probe(const char *devpath, uint64_t offset, uint64_t size, struct kv_block *out, char *why)
{
	int fd;
	blkid_probe pr = open_probe(devpath, offset, size, &fd, why);
	if (!pr)
		return -EIO;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE |
						      BLKID_SUBLKS_SECTYPE | BLKID_SUBLKS_USAGE |
						      BLKID_SUBLKS_VERSION);
	blkid_probe_enable_partitions(pr, 1);
	int rc = blkid_do_safeprobe(pr);
	int r = 0;
	if (rc == -2) {
		r = add_signatures(devpath, offset, size, out, why);
	} else if (rc == 0) {
		int nvals = blkid_probe_numof_values(pr);
		for (int i = 0; i < nvals && r == 0; i++) {
			const char *name, *data;
			size_t len;
			if (blkid_probe_get_value(pr, i, &name, &data, &len) == 0)
				r = kv_add_str(out, name, data);
		}
	}
	blkid_free_probe(pr);
	close(fd);
	return r;
}

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static void part_type(blkid_partition par, char *buf, size_t len)
{
	const char *s = blkid_partition_get_type_string(par);
	if (s)
		copy_str(buf, len, s);
	else
		snprintf(buf, len, "0x%x", (unsigned)blkid_partition_get_type(par));
}

int kblk_partitions(const char *devpath, struct kblk_part **parts, size_t *n, char *why)
{
	*parts = NULL;
	*n = 0;
	int fd;
	blkid_probe pr = open_probe(devpath, 0, 0, &fd, why);
	if (!pr)
		return -EIO;
	blkid_probe_enable_superblocks(pr, 0);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
	int r = 0;
	blkid_partlist ls = blkid_do_safeprobe(pr) == 0 ? blkid_probe_get_partitions(pr) : NULL;
	int count = ls ? blkid_partlist_numof_partitions(ls) : 0;
	if (count > 0) {
		*parts = calloc((size_t)count, sizeof(**parts));
		if (!*parts)
			r = -ENOMEM;
	}
	for (int i = 0; r == 0 && i < count; i++) {
		blkid_partition par = blkid_partlist_get_partition(ls, i);
		struct kblk_part *p = &(*parts)[(*n)++];
		p->partno = blkid_partition_get_partno(par);
		p->start = (uint64_t)blkid_partition_get_start(par) * 512;
		p->size = (uint64_t)blkid_partition_get_size(par) * 512;
		part_type(par, p->type, sizeof(p->type));
		copy_str(p->uuid, sizeof(p->uuid), blkid_partition_get_uuid(par));
		copy_str(p->name, sizeof(p->name), blkid_partition_get_name(par));
	}
	blkid_free_probe(pr);
	close(fd);
	return r;
}
