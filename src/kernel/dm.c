/* libdevmapper: one recipe per operation (create task, run, read, destroy);
 * libdm's 1/0 results become -errno at this boundary. */
#include "stsfs/kernel.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <libdevmapper.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/hdreg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stsfs/dm_ref.h"

/* libdm logs to stderr by default; keep its last error per thread so it can
 * become the reason in an `error` file instead. */
static __thread char dm_last_error[STSFS_WHY_LEN];

__attribute__((format(printf, 5, 0)))
static void dm_log(int level, const char *file, int line, int dm_errno, const char *fmt, va_list ap)
{
	if ((level & 7) > 3) /* only errors and worse (_LOG_ERR = 3) */
		return;
	vsnprintf(dm_last_error, sizeof(dm_last_error), fmt, ap);
}

__attribute__((format(printf, 5, 6)))
static void dm_log_cb(int level, const char *file, int line, int dm_errno, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dm_log(level, file, line, dm_errno, fmt, ap);
	va_end(ap);
}

void kdm_init(void)
{
	dm_log_with_errno_init(dm_log_cb);
	/* Without udev (containers, the test VM) nobody would answer a cookie:
	 * libdm then makes the /dev/mapper nodes itself. */
	if (access("/run/udev/control", F_OK) != 0)
		dm_udev_set_sync_support(0);
}

void kdm_library_version(char *buf, size_t len)
{
	if (!dm_get_library_version(buf, len))
		snprintf(buf, len, "unknown");
}

int kdm_driver_version(char *buf, size_t len, char *why)
{
	dm_last_error[0] = '\0';
	if (!dm_driver_version(buf, len)) {
		snprintf(buf, len, "unavailable");
		return why_set(why, -ENODEV, "device-mapper is not available in this kernel%s%s",
			       dm_last_error[0] ? ": " : "", dm_last_error);
	}
	return 0;
}

int kdm_targets(char **text, char *why)
{
	dm_last_error[0] = '\0';
	struct dm_task *dmt = dm_task_create(DM_DEVICE_LIST_VERSIONS);
	if (!dmt)
		return why_set(why, -ENOMEM, "dm_task_create failed");
	int r = 0;
	if (!dm_task_run(dmt)) {
		int e = dm_task_get_errno(dmt);
		r = why_set(why, e == ENOENT || e == ENXIO || e == 0 ? -ENODEV : -e,
			    "cannot list device-mapper targets: %s", dm_last_error[0] ? dm_last_error : "no device-mapper");
		dm_task_destroy(dmt);
		return r;
	}
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	struct dm_versions *v = dm_task_get_versions(dmt), *last;
	do {
		last = v;
		if (f)
			fprintf(f, "%s %u.%u.%u\n", v->name, v->version[0], v->version[1], v->version[2]);
		v = (struct dm_versions *)((char *)v + v->next);
	} while (last != v);
	if (f)
		fclose(f);
	dm_task_destroy(dmt);
	*text = out;
	return out ? 0 : -ENOMEM;
}

/* ---- devices ---- */

/* The kernel's dev_t encoding in dm ioctl results (libdm's kdev_t.h). */
#define KDEV_MAJOR(d) ((unsigned)(((d) & 0xfff00) >> 8))
#define KDEV_MINOR(d) ((unsigned)(((d) & 0xff) | (((d) >> 12) & 0xfff00)))

static const char *last_error(void)
{
	return dm_last_error[0] ? dm_last_error : "no reason given";
}

int kdm_available(char *why)
{
	char buf[64];
	return kdm_driver_version(buf, sizeof(buf), why);
}

static int task_new(int type, const char *name, struct dm_task **out, char *why)
{
	int r = kdm_available(why);
	if (r)
		return r;
	dm_last_error[0] = '\0';
	struct dm_task *dmt = dm_task_create(type);
	if (!dmt)
		return why_set(why, -ENOMEM, "dm_task_create failed");
	if (name && !dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		return why_set(why, -EINVAL, "bad device-mapper name '%s'", name);
	}
	*out = dmt;
	return 0;
}

static int task_errno(struct dm_task *dmt)
{
	int e = dm_task_get_errno(dmt);
	return e > 0 ? -e : -EIO;
}

/* Runs a task and destroys it on failure, with the reason. */
static int task_run(struct dm_task *dmt, const char *what, const char *name, char *why)
{
	if (dm_task_run(dmt))
		return 0;
	int r = task_errno(dmt);
	dm_task_destroy(dmt);
	return why_set(why, r, "%s %s: %s", what, name, dm_last_error[0] ? dm_last_error : strerror(-r));
}

/* libdm keeps the device node changes a task asks for (create, resume,
 * remove, rename) on one list of its own, without a lock, until
 * dm_udev_wait carries them out: two threads doing so at once corrupt it
 * (a worker crashed in dm_udev_wait in the VM stress test). */
static pthread_mutex_t node_ops_lock = PTHREAD_MUTEX_INITIALIZER;

/* Runs a task that changes device nodes, synchronised with udev when it
 * runs; without udev libdm makes the /dev/mapper nodes itself. Destroys dmt. */
static int task_run_cookie(struct dm_task *dmt, const char *what, const char *name, char *why)
{
	uint32_t cookie = 0;
	pthread_mutex_lock(&node_ops_lock);
	if (!dm_task_set_cookie(dmt, &cookie, 0)) {
		pthread_mutex_unlock(&node_ops_lock);
		dm_task_destroy(dmt);
		return why_set(why, -EIO, "%s %s: cannot set up udev synchronisation: %s", what, name, last_error());
	}
	int ok = dm_task_run(dmt);
	int r = ok ? 0 : task_errno(dmt);
	char err[STSFS_WHY_LEN];
	snprintf(err, sizeof(err), "%s", dm_last_error);
	dm_udev_wait(cookie);
	pthread_mutex_unlock(&node_ops_lock);
	dm_task_destroy(dmt);
	if (r)
		return why_set(why, r, "%s %s: %s", what, name, err[0] ? err : strerror(-r));
	return 0;
}

static int add_targets(struct dm_task *dmt, const struct dm_lines *t, char *why)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct dm_line *l = &t->v[i];
		if (!dm_task_add_target(dmt, l->start, l->length, l->type, l->params))
			return why_set(why, -ENOMEM, "table line %zu: cannot add target: %s", i + 1, last_error());
	}
	return 0;
}

/* The kernel says why it refused a table only in its log: read what it
 * logged since mark (an fd on /dev/kmsg at its end; -1 if unavailable). */
static int kmsg_mark(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* "device-mapper: era: 254:3: unsupported message 'x'" -> what follows the
 * subsystem ("era") and an optional MAJ:MIN. */
static const char *after_dm_prefix(const char *m)
{
	const char *sep = strstr(m, ": ");
	m = sep ? sep + 2 : m;
	unsigned ma, mi;
	int used = 0;
	if (sscanf(m, "%u:%u: %n", &ma, &mi, &used) == 2 && used > 0)
		m += used;
	return m;
}

/* The first line device-mapper logged since mark, from subsystem (NULL: any;
 * "table" for table loads), without its prefixes; "" when none. A table
 * refused at resume logs only "TARGET: preresume failed, error = -22" under
 * "table": the target's own explanation, logged just before under its own
 * subsystem, is added to it. */
static void kmsg_reason(int fd, const char *subsystem, char *buf, size_t len)
{
	char rec[1024], want[64], other[STSFS_WHY_LEN] = "";
	const char *any = "device-mapper: ";
	ssize_t n;
	buf[0] = '\0';
	if (fd < 0)
		return;
	snprintf(want, sizeof(want), "%s%s%s", any, subsystem ? subsystem : "", subsystem ? ": " : "");
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = '\0';
		rec[strcspn(rec, "\n")] = '\0';
		const char *m = strstr(rec, want), *dm = strstr(rec, any);
		if (m && !buf[0])
			snprintf(buf, len, "%s", after_dm_prefix(m + strlen(any)));
		else if (!m && dm && !other[0] && !buf[0])
			snprintf(other, sizeof(other), "%s", after_dm_prefix(dm + strlen(any)));
	}
	close(fd);
	size_t used = strlen(buf);
	if (other[0] && strstr(buf, "preresume failed") && used + 2 < len)
		snprintf(buf + used, len - used, ": %s", other);
}

/* Whether reason names the block device dev (a MAJ:MIN word of a table
 * line) by its kernel name ("loop0", "dm-3"), as the kernel's log does. */
static bool names_device(const char *reason, const char *dev)
{
	unsigned ma, mi;
	int used = 0;
	if (sscanf(dev, "%u:%u%n", &ma, &mi, &used) != 2 || dev[used])
		return false;
	char link[64], target[256];
	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", ma, mi);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	const char *kname = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
	size_t kl = strlen(kname);
	for (const char *m = strstr(reason, kname); kl && m; m = strstr(m + 1, kname)) {
		bool starts = m == reason || !isalnum((unsigned char)m[-1]);
		if (starts && !isalnum((unsigned char)m[kl]))
			return true;
	}
	return false;
}

/* Whether a device the line references is named in reason. */
static bool line_names_device(const struct dm_line *l, const char *reason)
{
	char *params = strdup(l->params);
	bool found = false;
	char *save = NULL;
	for (char *w = params ? strtok_r(params, " ", &save) : NULL; w && !found; w = strtok_r(NULL, " ", &save))
		found = names_device(reason, w);
	free(params);
	return found;
}

/* The one line the kernel's reason is about, 0 when it cannot tell: the
 * only line, the only line of the target type the reason starts with
 * ("linear: Device lookup failed"), or the only line referencing the device
 * the reason names ("loop0 too small for target: ..."). */
static size_t reason_line(const struct dm_lines *t, const char *kreason)
{
	if (t->n == 1)
		return 1;
	size_t line = 0, hits = 0;
	for (size_t i = 0; i < t->n; i++) {
		size_t tl = strlen(t->v[i].type);
		if (strncmp(kreason, t->v[i].type, tl) == 0 && kreason[tl] == ':') {
			hits++;
			line = i + 1;
		}
	}
	if (hits)
		return hits == 1 ? line : 0;
	for (size_t i = 0; i < t->n; i++) {
		if (line_names_device(&t->v[i], kreason)) {
			hits++;
			line = i + 1;
		}
	}
	return hits == 1 ? line : 0;
}

/* A refused table's reason, naming the line when only one can be meant. */
static int table_refused(const struct dm_lines *t, int r, const char *name, const char *kreason,
			 const char *liberr, char *why)
{
	for (size_t i = 0; i < t->n; i++)
		if (!kdm_target_loaded(t->v[i].type))
			return why_set(why, -EINVAL, "table line %zu: unknown target type '%s'", i + 1, t->v[i].type);
	if (kreason[0]) {
		size_t line = reason_line(t, kreason);
		if (line)
			return why_set(why, r, "table line %zu: %s", line, kreason);
		return why_set(why, r, "table refused: %s", kreason);
	}
	if (t->n == 1)
		return why_set(why, r, "table line 1: %s refused the table: %s", t->v[0].type, liberr);
	return why_set(why, r, "table for %s refused: %s", name, liberr);
}

/* A create or reload task carrying the whole table; destroyed on failure. */
static int task_with_table(int type, const char *name, const char *uuid, bool read_only,
			   const struct dm_lines *table, struct dm_task **dmt, char *why)
{
	int r = task_new(type, name, dmt, why);
	if (r)
		return r;
	if ((uuid && uuid[0] && !dm_task_set_uuid(*dmt, uuid)) || (read_only && !dm_task_set_ro(*dmt)))
		r = why_set(why, -EINVAL, "cannot set uuid or read-only: %s", last_error());
	r = r ? r : add_targets(*dmt, table, why);
	if (r) {
		dm_task_destroy(*dmt);
		*dmt = NULL;
	}
	return r;
}

int kdm_remove(const char *name, char *why)
{
	struct kdm_info info;
	int r = kdm_info(name, &info, why);
	if (r)
		return r;
	if (!info.exists)
		return 0;
	if (info.open_count > 0)
		return why_set(why, -EBUSY, "%s is open %d time%s (in use)", name, info.open_count,
			       info.open_count == 1 ? "" : "s");
	struct dm_task *dmt = NULL;
	r = task_new(DM_DEVICE_REMOVE, name, &dmt, why);
	return r ? r : task_run_cookie(dmt, "remove", name, why);
}

static int resume_or_suspend(int type, const char *name, bool noflush, char *why)
{
	struct dm_task *dmt = NULL;
	int r = task_new(type, name, &dmt, why);
	if (r)
		return r;
	if (noflush)
		dm_task_no_flush(dmt);
	if (type == DM_DEVICE_RESUME)
		return task_run_cookie(dmt, "resume", name, why);
	r = task_run(dmt, "suspend", name, why);
	if (!r)
		dm_task_destroy(dmt);
	return r;
}

int kdm_suspend(const char *name, bool noflush, char *why)
{
	return resume_or_suspend(DM_DEVICE_SUSPEND, name, noflush, why);
}

int kdm_resume(const char *name, char *why)
{
	return resume_or_suspend(DM_DEVICE_RESUME, name, false, why);
}

/* The kernel says why it refused a table only in its log: what it logged
 * while op ran, as the reason for that table. */
struct refusal {
	int kfd;
	char liberr[STSFS_WHY_LEN];
};

static void refusal_begin(struct refusal *f)
{
	f->kfd = kmsg_mark();
	f->liberr[0] = '\0';
}

static int refusal_end(struct refusal *f, int r, const char *name, const struct dm_lines *table, char *why)
{
	char kreason[STSFS_WHY_LEN];
	kmsg_reason(f->kfd, "table", kreason, sizeof(kreason));
	if (!r)
		return 0;
	return table_refused(table, r == -ENODEV ? -ENOENT : r, name, kreason, f->liberr, why);
}

static void clear_inactive(const char *name)
{
	struct dm_task *dmt = NULL;
	if (task_new(DM_DEVICE_CLEAR, name, &dmt, NULL) == 0 && task_run(dmt, "clear", name, NULL) == 0)
		dm_task_destroy(dmt);
}

/* Loads table as the inactive table of name (the kernel checks it now). An
 * earlier inactive table is dropped first: a snapshot hands its exception
 * store to the first table that takes it, so a second one loaded beside it
 * is refused. A refused table leaves no inactive table behind. */
static int load_inactive(const char *name, bool read_only, const struct dm_lines *table, char *why)
{
	struct dm_task *dmt = NULL;
	int r = task_with_table(DM_DEVICE_RELOAD, name, NULL, read_only, table, &dmt, why);
	if (r)
		return r;
	clear_inactive(name);
	struct refusal f;
	refusal_begin(&f);
	r = task_run(dmt, "reload", name, f.liberr);
	if (!r)
		dm_task_destroy(dmt);
	r = refusal_end(&f, r, name, table, why);
	if (r)
		clear_inactive(name);
	return r;
}

/* Resumes name with its inactive table. Some tables pass the load and fail
 * here (a pool smaller than its metadata says): a device that had a live
 * table gets it back; a fresh one (fresh) is left without one. */
static int swap_in(const char *name, bool fresh, const struct dm_lines *table, char *why)
{
	struct refusal f;
	refusal_begin(&f);
	int r = kdm_resume(name, f.liberr);
	r = refusal_end(&f, r, name, table, why);
	if (r && !fresh) {
		clear_inactive(name);
		kdm_resume(name, NULL);
	}
	return r;
}

/* A create makes the device without a table, then loads and resumes it as
 * a reload does: libdm's create with a table does the same steps in one
 * task, but reverts a refused load and loses the kernel's errno. A refused
 * load or resume removes the half-made device again. */
int kdm_create(const char *name, const char *uuid, bool read_only, const struct dm_lines *table, char *why)
{
	static const struct dm_lines no_table;
	struct dm_task *dmt = NULL;
	int r = task_with_table(DM_DEVICE_CREATE, name, uuid, false, &no_table, &dmt, why);
	r = r ? r : task_run_cookie(dmt, "create", name, why); /* EBUSY: the name is taken */
	if (r)
		return r;
	r = load_inactive(name, read_only, table, why);
	r = r ? r : swap_in(name, true, table, why);
	if (r)
		kdm_remove(name, NULL);
	return r;
}

int kdm_load(const char *name, const struct dm_lines *table, char *why)
{
	return load_inactive(name, false, table, why);
}

int kdm_swap(const char *name, const struct dm_lines *table, char *why)
{
	return swap_in(name, false, table, why);
}

int kdm_reload(const char *name, const struct dm_lines *table, char *why)
{
	int r = load_inactive(name, false, table, why);
	return r ? r : swap_in(name, false, table, why);
}

int kdm_rename(const char *name, const char *newname, char *why)
{
	struct dm_task *dmt = NULL;
	int r = task_new(DM_DEVICE_RENAME, name, &dmt, why);
	if (r)
		return r;
	if (!dm_task_set_newname(dmt, newname)) {
		dm_task_destroy(dmt);
		return why_set(why, -EINVAL, "bad new name '%s': %s", newname, last_error());
	}
	return task_run_cookie(dmt, "rename", name, why);
}

/* Runs dmt (destroyed on failure) for a request the kernel explains only
 * in its log: a refusal's reason is "LABEL: ERRNO TEXT[: WHAT IT LOGGED]". */
static int task_run_logged(struct dm_task *dmt, const char *label, char *why)
{
	int kfd = kmsg_mark();
	char liberr[STSFS_WHY_LEN];
	int r = task_run(dmt, label, "", liberr);
	char kreason[STSFS_WHY_LEN];
	kmsg_reason(kfd, NULL, kreason, sizeof(kreason));
	if (r)
		return why_set(why, r, "%s: %s%s%s", label, strerror(-r), kreason[0] ? ": " : "", kreason);
	return 0;
}

int kdm_message(const char *name, uint64_t sector, const char *msg, char **response, char *why)
{
	*response = NULL;
	struct dm_task *dmt = NULL;
	int r = task_new(DM_DEVICE_TARGET_MSG, name, &dmt, why);
	if (r)
		return r;
	if (!dm_task_set_sector(dmt, sector) || !dm_task_set_message(dmt, msg)) {
		dm_task_destroy(dmt);
		return why_set(why, -ENOMEM, "cannot prepare message: %s", last_error());
	}
	char label[STSFS_WHY_LEN];
	snprintf(label, sizeof(label), "message '%s' to %s", msg, name);
	r = task_run_logged(dmt, label, why);
	if (r)
		return r;
	const char *resp = dm_task_get_message_response(dmt);
	if (resp && resp[0] && !(*response = strdup(resp)))
		r = -ENOMEM;
	dm_task_destroy(dmt);
	return r;
}

/* The kernel keeps a dm device's geometry (DM_DEV_SET_GEOMETRY) and checks
 * it there: the ranges, and a start beyond CYLINDERS*HEADS*SECTORS, which it
 * explains only in its log. */
int kdm_set_geometry(const char *name, const struct kdm_geometry *g, char *why)
{
	char c[24], h[24], s[24], st[24], text[100];
	snprintf(c, sizeof(c), "%u", g->cylinders);
	snprintf(h, sizeof(h), "%u", g->heads);
	snprintf(s, sizeof(s), "%u", g->sectors);
	snprintf(st, sizeof(st), "%llu", (unsigned long long)g->start);
	snprintf(text, sizeof(text), "%s %s %s %s", c, h, s, st);
	struct dm_task *dmt = NULL;
	int r = task_new(DM_DEVICE_SET_GEOMETRY, name, &dmt, why);
	if (r)
		return r;
	if (!dm_task_set_geometry(dmt, c, h, s, st)) {
		dm_task_destroy(dmt);
		return why_set(why, -ENOMEM, "cannot prepare geometry: %s", last_error());
	}
	char label[STSFS_WHY_LEN];
	snprintf(label, sizeof(label), "geometry '%s' for %s", text, name);
	r = task_run_logged(dmt, label, why);
	if (!r)
		dm_task_destroy(dmt);
	return r;
}

/* What the kernel feeds HDIO_GETGEO of a dm device is its stored geometry,
 * zeros when none was set; only the device node answers it. */
int kdm_geometry(const char *name, struct kdm_geometry *g, char *why)
{
	memset(g, 0, sizeof(*g));
	struct kdm_info info;
	int r = kdm_info(name, &info, why);
	if (r)
		return r;
	if (!info.exists)
		return why_set(why, -ENODEV, "no dm device %s", name);
	char kname[24], path[64];
	snprintf(kname, sizeof(kname), "dm-%u", minor(info.dev));
	r = kblk_devpath(info.dev, kname, path, sizeof(path));
	if (r)
		return why_set(why, r, "geometry of %s: no device node: %s", name, strerror(-r));
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return why_set(why, -errno, "geometry of %s: open %s: %s", name, path, strerror(errno));
	struct hd_geometry geo;
	memset(&geo, 0, sizeof(geo));
	if (ioctl(fd, HDIO_GETGEO, &geo) < 0)
		r = why_set(why, -errno, "geometry of %s: HDIO_GETGEO: %s", name, strerror(errno));
	close(fd);
	if (r)
		return r;
	g->cylinders = geo.cylinders;
	g->heads = geo.heads;
	g->sectors = geo.sectors;
	g->start = geo.start;
	return 0;
}

int kdm_clear(const char *name, char *why)
{
	struct dm_task *dmt = NULL;
	int r = task_new(DM_DEVICE_CLEAR, name, &dmt, why);
	r = r ? r : task_run(dmt, "clear", name, why);
	if (!r)
		dm_task_destroy(dmt);
	return r;
}

static void fill_info(struct dm_task *dmt, const struct dm_info *di, struct kdm_info *info)
{
	memset(info, 0, sizeof(*info));
	info->exists = di->exists;
	if (!di->exists)
		return;
	info->dev = makedev((unsigned)di->major, (unsigned)di->minor);
	info->open_count = di->open_count;
	info->event_nr = di->event_nr;
	info->target_count = (uint32_t)di->target_count;
	info->live_table = di->live_table;
	info->inactive_table = di->inactive_table;
	info->suspended = di->suspended;
	info->read_only = di->read_only;
	const char *uuid = dm_task_get_uuid(dmt);
	snprintf(info->uuid, sizeof(info->uuid), "%s", uuid ? uuid : "");
}

/* INFO and WAITEVENT tasks both answer with the device's info. */
static int info_task(int type, const char *name, uint32_t event_nr, struct kdm_info *info, char *why)
{
	memset(info, 0, sizeof(*info));
	struct dm_task *dmt = NULL;
	int r = task_new(type, name, &dmt, why);
	if (r)
		return r;
	bool wait = type == DM_DEVICE_WAITEVENT;
	if (wait)
		dm_task_set_event_nr(dmt, event_nr);
	r = task_run(dmt, wait ? "wait for" : "info of", name, why);
	if (r)
		return r;
	struct dm_info di;
	if (!dm_task_get_info(dmt, &di))
		r = why_set(why, -EIO, "info of %s: %s", name, last_error());
	else
		fill_info(dmt, &di, info);
	dm_task_destroy(dmt);
	return r;
}

int kdm_info(const char *name, struct kdm_info *info, char *why)
{
	return info_task(DM_DEVICE_INFO, name, 0, info, why);
}

void kdm_targets_free(struct kdm_target *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(t[i].params);
	free(t);
}

static int collect_targets(struct dm_task *dmt, struct kdm_target **out, size_t *n)
{
	struct kdm_target *t = NULL;
	size_t cnt = 0;
	void *next = NULL;
	do {
		uint64_t start, length;
		char *type = NULL, *params = NULL;
		next = dm_get_next_target(dmt, next, &start, &length, &type, &params);
		if (!type)
			break;
		struct kdm_target *nt = realloc(t, (cnt + 1) * sizeof(*t));
		if (!nt) {
			kdm_targets_free(t, cnt);
			return -ENOMEM;
		}
		t = nt;
		t[cnt].start = start;
		t[cnt].length = length;
		snprintf(t[cnt].type, sizeof(t[cnt].type), "%s", type);
		t[cnt].params = strdup(params ? params : "");
		if (!t[cnt++].params) {
			kdm_targets_free(t, cnt);
			return -ENOMEM;
		}
	} while (next);
	*out = t;
	*n = cnt;
	return 0;
}

static int get_targets(int type, const char *what, const char *name, struct kdm_target **t, size_t *n, char *why)
{
	*t = NULL;
	*n = 0;
	struct dm_task *dmt = NULL;
	int r = task_new(type, name, &dmt, why);
	r = r ? r : task_run(dmt, what, name, why);
	if (r)
		return r;
	r = collect_targets(dmt, t, n);
	dm_task_destroy(dmt);
	return r;
}

int kdm_table(const char *name, struct kdm_target **t, size_t *n, char *why)
{
	return get_targets(DM_DEVICE_TABLE, "table of", name, t, n, why);
}

int kdm_status(const char *name, struct kdm_target **t, size_t *n, char *why)
{
	return get_targets(DM_DEVICE_STATUS, "status of", name, t, n, why);
}

int kdm_deps(const char *name, dev_t **devs, size_t *n, char *why)
{
	*devs = NULL;
	*n = 0;
	struct dm_task *dmt = NULL;
	int r = task_new(DM_DEVICE_DEPS, name, &dmt, why);
	r = r ? r : task_run(dmt, "dependencies of", name, why);
	if (r)
		return r;
	struct dm_deps *deps = dm_task_get_deps(dmt);
	if (deps && deps->count) {
		*devs = calloc(deps->count, sizeof(dev_t));
		r = *devs ? 0 : -ENOMEM;
		for (uint32_t i = 0; !r && i < deps->count; i++)
			(*devs)[i] = makedev(KDEV_MAJOR(deps->device[i]), KDEV_MINOR(deps->device[i]));
		*n = r ? 0 : deps->count;
	}
	dm_task_destroy(dmt);
	return r;
}

static int add_name(char ***names, size_t *n, const char *name)
{
	char **nn = realloc(*names, (*n + 1) * sizeof(char *));
	if (!nn)
		return -ENOMEM;
	*names = nn;
	return (nn[*n] = strdup(name)) ? (int)(++*n, 0) : -ENOMEM;
}

int kdm_list(char ***names, size_t *n, char *why)
{
	*names = NULL;
	*n = 0;
	struct dm_task *dmt = NULL;
	int r = task_new(DM_DEVICE_LIST, NULL, &dmt, why);
	r = r ? r : task_run(dmt, "list", "devices", why);
	if (r)
		return r;
	struct dm_names *nm = dm_task_get_names(dmt);
	if (nm && nm->dev) {
		unsigned next = 0;
		do {
			nm = (struct dm_names *)((char *)nm + next);
			r = add_name(names, n, nm->name);
			next = nm->next;
		} while (!r && next);
	}
	dm_task_destroy(dmt);
	return r;
}

int kdm_wait_event(const char *name, uint32_t event_nr, uint32_t *new_event_nr, char *why)
{
	struct kdm_info info;
	int r = info_task(DM_DEVICE_WAITEVENT, name, event_nr, &info, why);
	if (!r)
		*new_event_nr = info.event_nr;
	return r;
}

bool kdm_target_loaded(const char *type)
{
	char *text = NULL;
	if (kdm_targets(&text, NULL) != 0)
		return true;
	bool found = false;
	size_t tl = strlen(type);
	for (char *line = text; line && *line && !found; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		found = strncmp(line, type, tl) == 0 && line[tl] == ' ';
	free(text);
	return found;
}
