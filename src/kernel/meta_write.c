/* Writing persistent-data metadata with the dmpd tools (restore, repair,
 * trim) and the metadata size a geometry needs. The tools that write
 * metadata write into a new image; the device only changes once the tool
 * has succeeded (see kmeta_write in kernel.h). */
#include "stsfs/kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COPY_CHUNK (1 << 20)

static const char *const write_tools[3][3] = {
	[KMETA_THIN] = { "thin_restore", "thin_repair", "thin_trim" },
	[KMETA_CACHE] = { "cache_restore", "cache_repair", NULL },
	[KMETA_ERA] = { "era_restore", "era_repair", NULL },
};

/* A named file in dir (the tools open their files by name), removed by the
 * caller once the tool has run. */
static int temp_file(const char *dir, char *path, size_t len, char *why)
{
	snprintf(path, len, "%s/.metadata-XXXXXX", dir);
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return why_set(why, -errno, "cannot make a file in %s: %s", dir, strerror(errno));
	return fd;
}

static int write_all(int fd, const char *buf, size_t len, const char *what, char *why)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return why_set(why, n < 0 ? -errno : -ENOSPC, "writing %s: %s", what,
				       strerror(n < 0 ? errno : ENOSPC));
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copies len bytes from the start of in to the start of out. */
static int copy_fd(int in, int out, uint64_t len, const char *what, char *why)
{
	char *buf = malloc(COPY_CHUNK);
	if (!buf)
		return why_set(why, -ENOMEM, "out of memory");
	int r = 0;
	for (uint64_t off = 0; !r && off < len;) {
		size_t want = len - off < COPY_CHUNK ? (size_t)(len - off) : COPY_CHUNK;
		ssize_t n = pread(in, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = why_set(why, n < 0 ? -errno : -EIO, "reading for %s: %s", what, n < 0 ? strerror(errno) : "short file");
			break;
		}
		for (ssize_t done = 0; !r && done < n;) {
			ssize_t w = pwrite(out, buf + done, (size_t)(n - done), (off_t)(off + (uint64_t)done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				r = why_set(why, w < 0 ? -errno : -ENOSPC, "writing %s: %s", what,
					    strerror(w < 0 ? errno : ENOSPC));
			else
				done += w;
		}
		off += (uint64_t)n;
	}
	free(buf);
	if (!r && fsync(out) < 0)
		r = why_set(why, -errno, "syncing %s: %s", what, strerror(errno));
	return r;
}

static int run(const struct kmeta_wreq *q, const char *const argv[], struct kmeta_result *res, char *why)
{
	res->kind = q->kind;
	snprintf(res->argv0, sizeof(res->argv0), "%s", argv[0]);
	return ktool_run(argv, q->cancel, &res->out, &res->err, &res->exit_code, why);
}

/* The tool's new image takes the device's place: the device is opened
 * exclusively (nothing else, e.g. a dm table, may hold it), for a repair its
 * old content goes to prev_fd first. */
static int install(const struct kmeta_wreq *q, int image, uint64_t size, char *why)
{
	int dev = open(q->devpath, O_RDWR | O_EXCL | O_CLOEXEC);
	if (dev < 0)
		return why_set(why, -errno, "cannot open %s: %s", q->devpath, strerror(errno));
	int r = 0;
	if (q->op == KMETA_REPAIR) {
		if (ftruncate(q->prev_fd, 0) < 0)
			r = why_set(why, -errno, "cannot keep the old metadata: %s", strerror(errno));
		if (!r)
			r = copy_fd(dev, q->prev_fd, size, "the old metadata", why);
	}
	if (!r && (r = copy_fd(image, dev, size, q->devpath, why)) != 0 && q->op == KMETA_REPAIR) {
		/* Half-copied: put the old content back. */
		char ignored[STSFS_WHY_LEN];
		copy_fd(q->prev_fd, dev, size, q->devpath, ignored);
	}
	close(dev);
	return r;
}

static int device_size(const char *path, uint64_t *size, char *why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return why_set(why, -errno, "cannot open %s: %s", path, strerror(errno));
	off_t end = lseek(fd, 0, SEEK_END);
	int e = errno;
	close(fd);
	if (end < 0)
		return why_set(why, -e, "size of %s: %s", path, strerror(e));
	*size = (uint64_t)end;
	return 0;
}

static int rewrite(const struct kmeta_wreq *q, const char *tool, struct kmeta_result *res, char *why)
{
	uint64_t size = 0;
	int r = device_size(q->devpath, &size, why);
	if (r)
		return r;
	char xml_path[PATH_MAX] = "", img_path[PATH_MAX];
	if (q->op == KMETA_RESTORE) {
		int x = temp_file(q->tmp_dir, xml_path, sizeof(xml_path), why);
		if (x < 0)
			return x;
		r = write_all(x, q->xml, strlen(q->xml), xml_path, why);
		if (!r)
			r = write_all(x, "\n", 1, xml_path, why);
		close(x);
		if (r) {
			unlink(xml_path);
			return r;
		}
	}
	int img = temp_file(q->tmp_dir, img_path, sizeof(img_path), why);
	if (img < 0) {
		r = img;
	} else if (ftruncate(img, (off_t)size) < 0) {
		r = why_set(why, -errno, "cannot size %s: %s", img_path, strerror(errno));
	} else {
		const char *argv[] = { tool, "-i", q->op == KMETA_RESTORE ? xml_path : q->devpath, "-o", img_path, NULL };
		r = run(q, argv, res, why);
		if (!r && res->exit_code == 0)
			r = install(q, img, size, why);
	}
	if (img >= 0) {
		close(img);
		unlink(img_path);
	}
	if (xml_path[0])
		unlink(xml_path);
	return r;
}

int kmeta_write(const struct kmeta_wreq *q, struct kmeta_result *res, char *why)
{
	memset(res, 0, sizeof(*res));
	const char *tool = write_tools[q->kind][q->op];
	if (!tool)
		return why_set(why, -EINVAL, "no such metadata tool for this target");
	struct kmeta_claim b;
	int r = kmeta_claim(&b, q->devpath, q->cancel, why);
	if (r)
		return r;
	if (q->op == KMETA_TRIM) {
		const char *argv[] = { tool, "--metadata-dev", q->devpath, "--data-dev", q->data_path, NULL };
		r = run(q, argv, res, why);
	} else {
		r = rewrite(q, tool, res, why);
	}
	kmeta_unclaim(&b);
	if (r)
		kmeta_result_free(res);
	return r;
}

int kmeta_size(enum kmeta_kind kind, uint64_t block_sectors, uint64_t len_sectors, uint64_t max_thins,
	       struct cancel *cancel, struct kmeta_result *res, uint64_t *bytes, char *why)
{
	memset(res, 0, sizeof(*res));
	char b[32], s[32], m[32];
	const char *thin[] = { "thin_metadata_size", "-b", b, "-s", s, "-m", m, "-u", "b", "-n", NULL };
	const char *cache[] = { "cache_metadata_size", "--block-size", b, "--device-size", s, NULL };
	const char *const *argv;
	if (kind == KMETA_THIN) {
		snprintf(b, sizeof(b), "%" PRIu64 "s", block_sectors);
		snprintf(s, sizeof(s), "%" PRIu64 "s", len_sectors);
		snprintf(m, sizeof(m), "%" PRIu64, max_thins);
		argv = thin;
	} else if (kind == KMETA_CACHE) {
		snprintf(b, sizeof(b), "%" PRIu64, block_sectors);
		snprintf(s, sizeof(s), "%" PRIu64, len_sectors);
		argv = cache;
	} else {
		return why_set(why, -EINVAL, "era has no metadata size tool");
	}
	res->kind = kind;
	snprintf(res->argv0, sizeof(res->argv0), "%s", argv[0]);
	int r = ktool_run(argv, cancel, &res->out, &res->err, &res->exit_code, why);
	if (r || res->exit_code)
		return r;
	/* "4132864" (thin, -u b -n) or "8248 sectors" (cache). */
	char *end;
	errno = 0;
	unsigned long long v = strtoull(res->out, &end, 10);
	while (*end == ' ')
		end++;
	bool sectors = strncmp(end, "sectors", 7) == 0;
	if (errno || end == res->out || (kind == KMETA_CACHE && !sectors)) {
		r = why_set(why, -EINVAL, "%s printed '%.*s', not a size", argv[0], (int)strcspn(res->out, "\n"),
			    res->out);
		kmeta_result_free(res);
		return r;
	}
	*bytes = sectors ? (uint64_t)v * 512 : (uint64_t)v;
	return 0;
}
