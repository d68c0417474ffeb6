/* Files every active block object has (loop, dm, thin volumes), declared
 * once: device, dev, probe, wipe, data, and the partitions/ directory. */
#include "stsfs/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stsfs/kernel.h"
#include "stsfs/log.h"
#include "stsfs/value.h"

bool block_active(struct ctx *c)
{
	struct blockref b;
	return c->kind->block && c->kind->block(c, &b) == 0;
}

static int get_block(struct ctx *c, struct blockref *b)
{
	int r = c->kind->block ? c->kind->block(c, b) : -ENODEV;
	if (r == -ENODEV && !c->why[0])
		why_set(c->why, r, "the object is not active");
	return r;
}

static int show_device(struct ctx *c, char **out)
{
	struct blockref b;
	int r = get_block(c, &b);
	return r ? r : show_text(out, "%s\n", b.devpath);
}

static int show_dev(struct ctx *c, char **out)
{
	struct blockref b;
	int r = get_block(c, &b);
	return r ? r : show_text(out, "%u:%u\n", major(b.dev), minor(b.dev));
}

static int kv_probe(struct ctx *c, struct kv_doc *doc)
{
	struct blockref b;
	int r = get_block(c, &b);
	struct kv_block *kb = r ? NULL : kv_doc_add_block(doc);
	if (r)
		return r;
	if (!kb)
		return -ENOMEM;
	return kblk_probe(b.devpath, 0, 0, kb, c->why);
}

/* ---- data opens, for wipe ---- */

static pthread_mutex_t opens_lock = PTHREAD_MUTEX_INITIALIZER;
static dev_t *opens; /* one entry per open data file */
static size_t n_opens, cap_opens;

void block_data_opened(dev_t dev)
{
	pthread_mutex_lock(&opens_lock);
	if (n_opens == cap_opens) {
		size_t cap = cap_opens ? cap_opens * 2 : 16;
		dev_t *v = realloc(opens, cap * sizeof(*v));
		if (v) {
			opens = v;
			cap_opens = cap;
		}
	}
	/* Without memory the open goes uncounted: only wipe's check is lost. */
	if (n_opens < cap_opens)
		opens[n_opens++] = dev;
	pthread_mutex_unlock(&opens_lock);
}

void block_data_closed(dev_t dev)
{
	pthread_mutex_lock(&opens_lock);
	for (size_t i = 0; i < n_opens; i++) {
		if (opens[i] == dev) {
			opens[i] = opens[--n_opens];
			break;
		}
	}
	pthread_mutex_unlock(&opens_lock);
}

/* The whole device of partition device dev; dev itself when it is not a
 * partition. */
static dev_t whole_of(dev_t dev)
{
	char path[96], buf[32];
	unsigned maj, min;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/partition", major(dev), minor(dev));
	if (access(path, F_OK) != 0)
		return dev;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../dev", major(dev), minor(dev));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return dev;
	buf[n] = '\0';
	return sscanf(buf, "%u:%u", &maj, &min) == 2 ? makedev(maj, min) : dev;
}

/* An open data file of dev, of whole device `whole`, or of one of
 * whole's partitions. */
static bool data_open(dev_t dev, dev_t whole)
{
	pthread_mutex_lock(&opens_lock);
	dev_t *v = n_opens ? malloc(n_opens * sizeof(*v)) : NULL;
	size_t n = v ? n_opens : 0;
	if (v)
		memcpy(v, opens, n * sizeof(*v));
	pthread_mutex_unlock(&opens_lock);
	bool busy = false;
	for (size_t i = 0; i < n && !busy; i++)
		busy = v[i] == dev || v[i] == whole || whole_of(v[i]) == whole;
	free(v);
	return busy;
}

/* ---- wipe ---- */

static void obj_path(const struct ctx *c, char *buf, size_t len)
{
	buf[0] = '\0';
	for (int i = 0; i < c->depth; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "/" : "", c->comp[i]);
}

static void log_wiped(const struct ctx *c, const struct kblk_sig *sigs, size_t n)
{
	char path[256], list[512] = "";
	obj_path(c, path, sizeof(path));
	for (size_t i = 0; i < n && i < KBLK_MAX_SIGS; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s at %llu", i ? ", " : "",
			 sigs[i].type, (unsigned long long)sigs[i].offset);
	log_msg(L_INFO, "%s: wiped %zu signature%s%s%s%s", path, n, n == 1 ? "" : "s", n ? " (" : "", list,
		n ? ")" : "");
}

/* Checks a wipe of b's device (of the region of the whole device b at
 * offset/size for a partition; dev its kernel partition device, if any)
 * and does it. obj is the object whose changes it is. */
static int wipe_device(struct ctx *c, struct ctx *obj, const struct blockref *b, dev_t dev, uint64_t offset,
		       uint64_t size)
{
	int r = obj->kind->refuses ? obj->kind->refuses(obj, c->why) : 0;
	if (r)
		return r;
	if (!b->data_allowed)
		return why_set(c->why, -EPERM, "%s was not created by stsfs", b->devpath);
	if (b->read_only)
		return why_set(c->why, -EROFS, "%s is read-only", b->devpath);
	if (data_open(dev, b->dev))
		return why_set(c->why, -EBUSY, "%s: a data file is open: close it first", b->devpath);
	struct kblk_sig sigs[KBLK_MAX_SIGS];
	size_t n = 0;
	r = kblk_wipe(b->devpath, offset, size, sigs, &n, c->why);
	if (r == 0 || n)
		log_wiped(c, sigs, n);
	return r;
}

static int parse_wipe(struct ctx *c, const char *value)
{
	bool on;
	int r = value_parse_bool(value, &on, c->why, STSFS_WHY_LEN);
	if (r == 0 && !on)
		r = why_set(c->why, -EINVAL, "write 1 to erase every signature");
	return r;
}

static int store_wipe(struct ctx *c, const char *value)
{
	struct blockref b;
	int r = parse_wipe(c, value);
	if (r || (r = get_block(c, &b)))
		return r;
	return wipe_device(c, c, &b, b.dev, 0, 0);
}

static bool data_visible(struct ctx *c)
{
	struct blockref b;
	return c->kind->block && c->kind->block(c, &b) == 0 && b.data_allowed;
}

const struct file_def block_files[] = {
	{ .name = "device", .perm = 0444, .show = show_device, .visible = block_active },
	{ .name = "dev", .perm = 0444, .show = show_dev, .visible = block_active },
	{ .name = "probe", .perm = 0444, .kv = kv_probe, .visible = block_active },
	{ .name = "wipe", .perm = 0200, .store = store_wipe, .visible = block_active },
	{ .name = "data", .perm = 0644, .type = FT_DATA, .visible = data_visible },
	{ NULL },
};

/* ---- partitions/ and partitions/N/ ---- */

/* The partition table of the block object `up` levels above c. */
static int load_parts(struct ctx *c, int up, struct blockref *b, struct kblk_part **parts, size_t *n)
{
	struct ctx obj;
	ctx_up(c, up, &obj);
	int r = get_block(&obj, b);
	if (r)
		return r;
	return kblk_partitions(b->devpath, parts, n, c->why);
}

static int parts_list(struct ctx *c, int (*emit)(void *arg, const char *name), void *arg)
{
	struct blockref b;
	struct kblk_part *parts;
	size_t n;
	int r = load_parts(c, 1, &b, &parts, &n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%d", parts[i].partno);
		r = emit(arg, name);
	}
	free(parts);
	return r;
}

/* Finds partition `name` of the object `up` levels above c. */
static int find_part(struct ctx *c, int up, const char *name, struct blockref *b, struct kblk_part *out)
{
	struct kblk_part *parts;
	size_t n;
	int r = load_parts(c, up, b, &parts, &n);
	if (r)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n; i++) {
		char pname[16];
		snprintf(pname, sizeof(pname), "%d", parts[i].partno);
		if (strcmp(pname, name) == 0) {
			*out = parts[i];
			r = 0;
			break;
		}
	}
	free(parts);
	return r;
}

extern const struct dir_kind partition_kind;

static const struct dir_kind *parts_child(struct ctx *c, const char *name)
{
	struct blockref b;
	struct kblk_part p;
	return find_part(c, 1, name, &b, &p) == 0 ? &partition_kind : NULL;
}

static int this_part(struct ctx *c, struct blockref *b, struct kblk_part *p)
{
	return find_part(c, 2, c->comp[c->depth - 1], b, p);
}

static int show_part_field(struct ctx *c, char **out, const char *field)
{
	struct blockref b;
	struct kblk_part p;
	int r = this_part(c, &b, &p);
	if (r)
		return r;
	if (strcmp(field, "start") == 0)
		return show_text(out, "%llu\n", (unsigned long long)p.start);
	if (strcmp(field, "size") == 0)
		return show_text(out, "%llu\n", (unsigned long long)p.size);
	if (strcmp(field, "type") == 0)
		return show_text(out, "%s\n", p.type);
	if (strcmp(field, "uuid") == 0)
		return show_text(out, "%s\n", p.uuid);
	return show_text(out, "%s\n", p.name);
}

static int show_part_start(struct ctx *c, char **out) { return show_part_field(c, out, "start"); }
static int show_part_size(struct ctx *c, char **out) { return show_part_field(c, out, "size"); }
static int show_part_type(struct ctx *c, char **out) { return show_part_field(c, out, "type"); }
static int show_part_uuid(struct ctx *c, char **out) { return show_part_field(c, out, "uuid"); }
static int show_part_name(struct ctx *c, char **out) { return show_part_field(c, out, "name"); }

/* Probed through the whole device at the partition's offset, so it works
 * without partscan and without partition device nodes. */
static int kv_part_probe(struct ctx *c, struct kv_doc *doc)
{
	struct blockref b;
	struct kblk_part p;
	int r = this_part(c, &b, &p);
	if (r)
		return r;
	struct kv_block *kb = kv_doc_add_block(doc);
	return kb ? kblk_probe(b.devpath, p.start, p.size, kb, c->why) : -ENOMEM;
}

/* Reads sysfs file dir/name into buf as one trimmed line. */
static int read_sys(int dir, const char *name, char *buf, size_t len)
{
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* The kernel's partition device of the whole device `whole` with number
 * partno, if the kernel made one (partscan): its dev_t, kernel name, first
 * sector and length in sectors, and whether it is read-only. */
static int kernel_part(dev_t whole, int partno, dev_t *dev, char *kname, size_t klen,
		       uint64_t *start, uint64_t *sectors, bool *ro)
{
	char path[64];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(whole), minor(whole));
	DIR *d = opendir(path);
	if (!d)
		return -ENODEV;
	int r = -ENODEV;
	struct dirent *e;
	while (r == -ENODEV && (e = readdir(d))) {
		char buf[64];
		if (e->d_name[0] == '.')
			continue;
		int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub < 0)
			continue;
		unsigned maj, min;
		if (read_sys(sub, "partition", buf, sizeof(buf)) == 0 && atoi(buf) == partno &&
		    read_sys(sub, "dev", buf, sizeof(buf)) == 0 && sscanf(buf, "%u:%u", &maj, &min) == 2) {
			*dev = makedev(maj, min);
			snprintf(kname, klen, "%s", e->d_name);
			*start = read_sys(sub, "start", buf, sizeof(buf)) == 0 ? strtoull(buf, NULL, 10) : 0;
			*sectors = read_sys(sub, "size", buf, sizeof(buf)) == 0 ? strtoull(buf, NULL, 10) : 0;
			*ro = read_sys(sub, "ro", buf, sizeof(buf)) == 0 && atoi(buf) == 1;
			r = 0;
		}
		close(sub);
	}
	closedir(d);
	return r;
}

/* partitions/N's `data`: the kernel's partition device (/dev/loopNpM), so
 * only where the kernel made one (partscan on, a table it can parse) and
 * only while it covers the bytes libblkid reads in the table now (a table
 * rewritten and not yet reread by the kernel has no `data`). Read-only
 * and refused as the whole device is. */
static int part_block(struct ctx *c, struct blockref *b)
{
	struct blockref whole;
	struct kblk_part p;
	int r = this_part(c, &whole, &p);
	if (r)
		return r;
	dev_t dev;
	char kname[32];
	uint64_t start, sectors;
	bool ro;
	if (kernel_part(whole.dev, p.partno, &dev, kname, sizeof(kname), &start, &sectors, &ro) != 0)
		return why_set(c->why, -ENODEV, "the kernel has no device for partition %d of %s (partscan off, or a table it cannot parse)",
			       p.partno, whole.devpath);
	if (start * 512 != p.start || sectors * 512 != p.size)
		return why_set(c->why, -ENODEV, "the kernel's %s is not partition %d as the table now has it (turn partscan on again or reactivate to reread it)",
			       kname, p.partno);
	memset(b, 0, sizeof(*b));
	b->dev = dev;
	b->read_only = whole.read_only || ro;
	b->data_allowed = whole.data_allowed;
	return kblk_devpath(dev, kname, b->devpath, sizeof(b->devpath));
}

/* Through the whole device at the partition's offset, as its probe reads;
 * O_EXCL on the whole device also refuses while another partition of it
 * is mounted. */
static int store_part_wipe(struct ctx *c, const char *value)
{
	struct blockref whole, pb;
	struct kblk_part p;
	int r = parse_wipe(c, value);
	if (r || (r = this_part(c, &whole, &p)))
		return r;
	struct ctx quiet = *c; /* no kernel partition device is no error here */
	dev_t dev = part_block(&quiet, &pb) == 0 ? pb.dev : whole.dev;
	struct ctx obj;
	ctx_up(c, 2, &obj);
	return wipe_device(c, &obj, &whole, dev, p.start, p.size);
}

/* Changes through a partition are the whole object's changes. */
static int part_refuses(struct ctx *c, char *why)
{
	struct ctx obj;
	ctx_up(c, 2, &obj);
	return obj.kind->refuses ? obj.kind->refuses(&obj, why) : 0;
}

static const struct file_def partition_files[] = {
	{ .name = "start", .perm = 0444, .show = show_part_start },
	{ .name = "size", .perm = 0444, .show = show_part_size },
	{ .name = "type", .perm = 0444, .show = show_part_type },
	{ .name = "uuid", .perm = 0444, .show = show_part_uuid },
	{ .name = "name", .perm = 0444, .show = show_part_name },
	{ .name = "probe", .perm = 0444, .kv = kv_part_probe },
	{ .name = "wipe", .perm = 0200, .store = store_part_wipe },
	{ .name = "data", .perm = 0644, .type = FT_DATA, .visible = data_visible },
	{ NULL },
};

const struct dir_kind partition_kind = {
	.name = "partition",
	.files = { partition_files },
	.block = part_block,
	.refuses = part_refuses,
};

const struct dir_kind partitions_kind = {
	.name = "partitions",
	.list = parts_list,
	.child = parts_child,
};
