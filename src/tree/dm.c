/* dm/: device-mapper objects made with mkdir (name = dm device name), and
 * the kernel's other dm devices listed read-only. The kernel is the source
 * of truth for whether an object is active: the device NAME exists. */
#include "stsfs/tree.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stsfs/dm_parse.h"
#include "stsfs/dm_ref.h"
#include "stsfs/kernel.h"
#include "stsfs/state.h"
#include "stsfs/value.h"

#include "registry.h"

#define DM_NAME_MAX 127
#define DM_UUID_MAX 128
#define STATE_KIND "dm"
_Static_assert(DM_NAME_MAX <= OBJ_NAME_MAX, "dm names fit struct obj");

struct dm_obj {
	struct obj obj;    /* first: the registry's part */
	char *table;       /* staged table as written, normalised; "" = none */
	char uuid[DM_UUID_MAX + 1];
	bool read_only;
	char *response;    /* last message response */
};

static int obj_init(struct obj *o);
static void obj_release(struct obj *o);
static struct obj *external_get(const char *name);
static void device_name(const struct obj *o, char *buf, size_t len);
static int list_devices(char ***names, size_t *n);

/* Owned dm objects; the error slots of the kernel's other dm devices. */
static struct registry dms = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.dir_error = ERRSLOT_INIT,
	.obj_size = sizeof(struct dm_obj),
	.init = obj_init,
	.release = obj_release,
	.external = external_get,
	.device_name = device_name,
	.list_devices = list_devices,
};

/* ---- registry ---- */

static struct dm_obj *dm_of(struct obj *o)
{
	return (struct dm_obj *)o;
}

static int obj_init(struct obj *o)
{
	return (dm_of(o)->table = strdup("")) ? 0 : -ENOMEM;
}

static void obj_release(struct obj *o)
{
	free(dm_of(o)->table);
	free(dm_of(o)->response);
}

static struct obj *external_get(const char *name)
{
	struct kdm_info info;
	if (strlen(name) > DM_NAME_MAX || kdm_info(name, &info, NULL) != 0 || !info.exists)
		return NULL;
	struct dm_obj *o = dm_of(reg_new(&dms, name));
	if (o) {
		o->obj.external = true;
		o->read_only = info.read_only;
		snprintf(o->uuid, sizeof(o->uuid), "%s", info.uuid);
	}
	return o ? &o->obj : NULL;
}

/* An owned object's dm device has the object's name. */
static void device_name(const struct obj *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s", o->name);
}

static int list_devices(char ***names, size_t *n)
{
	/* Without device-mapper there are simply no kernel devices. */
	if (kdm_list(names, n, NULL) != 0) {
		names_free(*names, *n);
		*names = NULL;
		*n = 0;
	}
	return 0;
}

static struct dm_obj *obj_get(const char *name)
{
	return dm_of(reg_get(&dms, name));
}

static void obj_put(struct dm_obj *o)
{
	reg_put(&dms, &o->obj);
}

static struct dm_obj *ctx_obj(struct ctx *c)
{
	return c->depth >= 2 ? obj_get(c->comp[1]) : NULL;
}

/* True (and *info filled) while the kernel device exists. */
static bool is_active(const struct dm_obj *o, struct kdm_info *info)
{
	struct kdm_info tmp;
	info = info ? info : &tmp;
	return kdm_info(o->obj.name, info, NULL) == 0 && info->exists;
}

/* ---- persistence ---- */

static int add_table_lines(struct kv_block *b, const char *table)
{
	int r = 0, n = 0;
	const char *p = table;
	while (!r && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char key[32];
		snprintf(key, sizeof(key), "table%d", ++n);
		r = kv_add_strn(b, key, p, len);
		p += len + (nl ? 1 : 0);
	}
	return r;
}

static int save(struct dm_obj *o, char *why)
{
	if (o->obj.external)
		return 0;
	struct kv_block b = { 0 };
	int r = kv_add_str(&b, "uuid", o->uuid);
	r = r ? r : kv_add_bool(&b, "read_only", o->read_only);
	r = r ? r : kv_add_bool(&b, "active", is_active(o, NULL));
	r = r ? r : add_table_lines(&b, o->table);
	r = r ? r : state_save(STATE_KIND, o->obj.name, &b, why);
	kv_block_free(&b);
	return r;
}

/* ---- device references ---- */

static bool device_is(const char *devname, dev_t dev)
{
	struct kdm_info info;
	return kdm_info(devname, &info, NULL) == 0 && info.exists && info.dev == dev;
}

bool dm_owns_dev(dev_t dev)
{
	return reg_owns_dev(&dms, dev, device_is);
}

int dm_object_dev(const char *name, dev_t *dev, char *why)
{
	struct kdm_info info;
	int r = kdm_info(name, &info, why);
	if (r)
		return r;
	if (!info.exists)
		return why_set(why, -ENOENT, "dm/%s is not active", name);
	*dev = info.dev;
	return 0;
}

static int majmin_dev(const char *ref, dev_t *dev, char *why)
{
	unsigned ma, mi;
	char path[64];
	if (sscanf(ref, "%u:%u", &ma, &mi) != 2)
		return why_set(why, -EINVAL, "'%s' is not MAJ:MIN", ref);
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", ma, mi);
	if (access(path, F_OK) != 0)
		return why_set(why, -ENOENT, "no block device %s", ref);
	*dev = makedev(ma, mi);
	return 0;
}

static int path_dev(const char *ref, dev_t *dev, char *why)
{
	struct stat st;
	if (stat(ref, &st) < 0)
		return why_set(why, -ENOENT, "%s: %s", ref, strerror(errno));
	if (!S_ISBLK(st.st_mode))
		return why_set(why, -EINVAL, "%s is not a block device", ref);
	*dev = st.st_rdev;
	return 0;
}

/* thin/POOL/VOL is the thin volume VOL of pool POOL: the dm device POOL-VOL,
 * whose live table is one `thin` line on the dm device POOL (the names the
 * thin/ tree gives its devices). */
static bool is_thin_of(const char *vol, dev_t pool_dev)
{
	struct kdm_target *t = NULL;
	size_t n = 0;
	unsigned ma, mi;
	bool thin = kdm_table(vol, &t, &n, NULL) == 0 && n == 1 && strcmp(t[0].type, "thin") == 0 &&
		    sscanf(t[0].params, "%u:%u", &ma, &mi) == 2 && makedev(ma, mi) == pool_dev;
	kdm_targets_free(t, n);
	return thin;
}

static int thin_ref_dev(const char *ref, dev_t *dev, bool *ours, char *why)
{
	const char *pv = ref + strlen("thin/");
	const char *slash = strchr(pv, '/');
	size_t pool_len = slash ? (size_t)(slash - pv) : 0;
	char pool[DM_NAME_MAX + 1], vol[DM_NAME_MAX + 1];
	if (!pool_len || !slash[1] || strchr(slash + 1, '/') || pool_len >= sizeof(pool) ||
	    (size_t)snprintf(vol, sizeof(vol), "%.*s-%s", (int)pool_len, pv, slash + 1) >= sizeof(vol))
		return why_set(why, -EINVAL, "%s: write thin/POOL/VOL", ref);
	snprintf(pool, sizeof(pool), "%.*s", (int)pool_len, pv);
	dev_t pool_dev = 0;
	if (dm_object_dev(pool, &pool_dev, NULL) != 0)
		return why_set(why, -ENOENT, "%s: no active thin pool %s", ref, pool);
	if (dm_object_dev(vol, dev, NULL) != 0 || !is_thin_of(vol, pool_dev))
		return why_set(why, -ENOENT, "%s: no active thin volume %s in pool %s", ref, vol, pool);
	*ours = reg_owns(&dms, vol);
	return 0;
}

static int ref_dev(const char *ref, dev_t *dev, bool *ours, char *why)
{
	*ours = false;
	if (strncmp(ref, "loop/", 5) == 0) {
		*ours = true;
		return loop_object_dev(ref + 5, dev, why);
	}
	if (strncmp(ref, "dm/", 3) == 0) {
		*ours = reg_owns(&dms, ref + 3);
		return dm_object_dev(ref + 3, dev, why);
	}
	if (strncmp(ref, "thin/", 5) == 0)
		return thin_ref_dev(ref, dev, ours, why);
	if (strncmp(ref, "/dev/", 5) == 0)
		return path_dev(ref, dev, why);
	return majmin_dev(ref, dev, why);
}

static int resolve_ref(void *arg, const char *ref, char *out, size_t outlen, char *why, size_t whylen)
{
	char reason[STSFS_WHY_LEN] = "";
	dev_t dev;
	bool ours;
	int r = ref_dev(ref, &dev, &ours, reason);
	if (!r && !ours && !opts.allow_host_devices && !loop_owns_dev(dev) && !dm_owns_dev(dev))
		r = why_set(reason, -EACCES, "%s (%u:%u) was not created by stsfs (start stsfs with --allow-host-devices)",
			    ref, major(dev), minor(dev));
	if (r) {
		snprintf(why, whylen, "%s", reason);
		return r;
	}
	snprintf(out, outlen, "%u:%u", major(dev), minor(dev));
	return 0;
}

/* The staged or written table, split and with references translated. */
static int load_table(const char *text, struct dm_lines *l, char *why)
{
	int r = dm_table_split(text, l, why, STSFS_WHY_LEN);
	if (r)
		return r;
	r = dm_lines_translate(l, resolve_ref, NULL, why, STSFS_WHY_LEN);
	if (r)
		dm_lines_free(l);
	return r;
}

/* ---- attribute helpers ---- */

static int not_active(const struct dm_obj *o, char *why)
{
	return why_set(why, -ENODEV, "dm/%s is not active (echo 1 > active first)", o->obj.name);
}

static int frozen(const struct dm_obj *o, const char *attr, char *why)
{
	return why_set(why, -EBUSY, "%s cannot change while dm/%s is active (echo 0 > active first)", attr, o->obj.name);
}

typedef int (*dm_store_fn)(struct dm_obj *o, const char *value, char *why);
typedef int (*dm_show_fn)(struct dm_obj *o, char **out, char *why);

static int with_store(struct ctx *c, const char *value, dm_store_fn fn)
{
	struct dm_obj *o = ctx_obj(c);
	if (!o)
		return why_set(c->why, -ENOENT, "no dm object %s", c->comp[1]);
	pthread_mutex_lock(&o->obj.lock);
	int r = obj_may_change(&o->obj, c->why);
	r = r ? r : fn(o, value, c->why);
	pthread_mutex_unlock(&o->obj.lock);
	obj_put(o);
	return r;
}

static int with_show(struct ctx *c, char **out, dm_show_fn fn)
{
	struct dm_obj *o = ctx_obj(c);
	if (!o)
		return -ENOENT;
	pthread_mutex_lock(&o->obj.lock);
	int r = fn(o, out, c->why);
	pthread_mutex_unlock(&o->obj.lock);
	obj_put(o);
	return r;
}

/* ---- table ---- */

static int format_targets(const struct kdm_target *t, size_t n, bool mask, char **out)
{
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	if (!f)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		char *p = mask ? dm_table_mask_keys(t[i].type, t[i].params) : strdup(t[i].params);
		if (!p)
			r = -ENOMEM;
		fprintf(f, "%" PRIu64 " %" PRIu64 " %s%s%s\n", t[i].start, t[i].length, t[i].type,
			p && p[0] ? " " : "", p ? p : "");
		free(p);
	}
	if (fclose(f) != 0)
		r = -ENOMEM;
	if (r) {
		free(*out);
		*out = NULL;
	}
	return r;
}

static int show_live(const struct dm_obj *o, bool status, char **out, char *why)
{
	struct kdm_target *t;
	size_t n;
	int r = status ? kdm_status(o->obj.name, &t, &n, why) : kdm_table(o->obj.name, &t, &n, why);
	if (r)
		return r;
	r = format_targets(t, n, !status, out);
	kdm_targets_free(t, n);
	return r;
}

static int show_table(struct dm_obj *o, char **out, char *why)
{
	if (is_active(o, NULL))
		return show_live(o, false, out, why);
	return show_text(out, "%s", o->table);
}

static int set_staged(struct dm_obj *o, char *text, char *why)
{
	char *old = o->table;
	o->table = text;
	int r = save(o, why);
	if (r) {
		o->table = old;
		free(text);
	} else {
		free(old);
	}
	return r;
}

static int store_table(struct dm_obj *o, const char *value, char *why)
{
	struct dm_lines l;
	int r = dm_table_split(value, &l, why, STSFS_WHY_LEN);
	if (r)
		return r;
	char *normal = dm_lines_format(&l);
	if (!normal)
		r = -ENOMEM;
	if (!r && is_active(o, NULL)) {
		r = dm_lines_translate(&l, resolve_ref, NULL, why, STSFS_WHY_LEN);
		r = r ? r : kdm_reload(o->obj.name, &l, why);
	}
	dm_lines_free(&l);
	if (r) {
		free(normal);
		return r;
	}
	return o->obj.external ? (free(normal), 0) : set_staged(o, normal, why);
}

/* Per write: syntax and device references of the lines so far; the kernel
 * sees the table once, at close (store_table). */
static int check_table(struct dm_obj *o, const char *value, char *why)
{
	struct dm_lines l;
	int r = dm_table_split(value, &l, why, STSFS_WHY_LEN);
	if (r)
		return r;
	r = dm_lines_translate(&l, resolve_ref, NULL, why, STSFS_WHY_LEN);
	dm_lines_free(&l);
	return r;
}

static int c_check_table(struct ctx *c, const char *value)
{
	return with_store(c, value, check_table);
}

/* ---- uuid, read_only ---- */

static int show_uuid(struct dm_obj *o, char **out, char *why)
{
	struct kdm_info info;
	return show_text(out, "%s\n", is_active(o, &info) ? info.uuid : o->uuid);
}

static int store_uuid(struct dm_obj *o, const char *value, char *why)
{
	if (is_active(o, NULL))
		return frozen(o, "uuid", why);
	if (strlen(value) > DM_UUID_MAX || strpbrk(value, " \t\n"))
		return why_set(why, -EINVAL, "a uuid is at most %d bytes without blanks", DM_UUID_MAX);
	char old[sizeof(o->uuid)];
	snprintf(old, sizeof(old), "%s", o->uuid);
	snprintf(o->uuid, sizeof(o->uuid), "%s", value);
	int r = save(o, why);
	if (r)
		snprintf(o->uuid, sizeof(o->uuid), "%s", old);
	return r;
}

static int show_read_only(struct dm_obj *o, char **out, char *why)
{
	struct kdm_info info;
	return show_text(out, "%d\n", is_active(o, &info) ? info.read_only : o->read_only);
}

static int store_read_only(struct dm_obj *o, const char *value, char *why)
{
	bool on;
	int r = value_parse_bool(value, &on, why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (is_active(o, NULL))
		return on == o->read_only ? 0 : frozen(o, "read_only", why);
	bool old = o->read_only;
	o->read_only = on;
	r = save(o, why);
	if (r)
		o->read_only = old;
	return r;
}

/* ---- active, suspended ---- */

static int show_active(struct dm_obj *o, char **out, char *why)
{
	return show_text(out, "%d\n", is_active(o, NULL));
}

static int activate(struct dm_obj *o, char *why)
{
	int r = kdm_available(why);
	if (r)
		return r;
	if (!o->table[0])
		return why_set(why, -EINVAL, "write a table first");
	struct dm_lines l;
	r = load_table(o->table, &l, why);
	if (r)
		return r;
	r = kdm_create(o->obj.name, o->uuid, o->read_only, &l, why);
	dm_lines_free(&l);
	return r ? r : save(o, why);
}

static int store_active(struct dm_obj *o, const char *value, char *why)
{
	bool on;
	int r = value_parse_bool(value, &on, why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (on == is_active(o, NULL))
		return 0;
	if (on)
		return activate(o, why);
	r = kdm_remove(o->obj.name, why);
	return r ? r : save(o, why);
}

static int show_suspended(struct dm_obj *o, char **out, char *why)
{
	struct kdm_info info;
	return show_text(out, "%d\n", is_active(o, &info) && info.suspended);
}

static int store_suspended(struct dm_obj *o, const char *value, char *why)
{
	bool on, noflush = strcmp(value, "noflush") == 0;
	int r = noflush ? 0 : value_parse_bool(value, &on, why, STSFS_WHY_LEN);
	if (r)
		return why_set(why, r, "suspended takes 1, noflush or 0, not '%s'", value);
	struct kdm_info info;
	if (!is_active(o, &info))
		return not_active(o, why);
	if (noflush || on)
		return info.suspended ? 0 : kdm_suspend(o->obj.name, noflush, why);
	return info.suspended ? kdm_resume(o->obj.name, why) : 0;
}

/* ---- message ---- */

static int show_message(struct dm_obj *o, char **out, char *why)
{
	const char *resp = o->response ? o->response : "";
	return show_text(out, "%s%s", resp, resp[0] ? "\n" : "");
}

/* "[SECTOR ]MESSAGE": a leading number followed by more words is the sector. */
static const char *split_sector(const char *value, uint64_t *sector)
{
	*sector = 0;
	const char *sp = strchr(value, ' ');
	if (!sp || sp == value || strspn(value, "0123456789") != (size_t)(sp - value))
		return value;
	*sector = strtoull(value, NULL, 10);
	while (*sp == ' ')
		sp++;
	return sp;
}

static int store_message(struct dm_obj *o, const char *value, char *why)
{
	uint64_t sector;
	const char *msg = split_sector(value, &sector);
	if (!msg[0])
		return why_set(why, -EINVAL, "empty message");
	if (!is_active(o, NULL))
		return not_active(o, why);
	char *resp = NULL;
	int r = kdm_message(o->obj.name, sector, msg, &resp, why);
	if (r)
		return r;
	free(o->response);
	o->response = resp;
	return 0;
}

/* ---- status, info, deps, size, wait ---- */

static int show_status_raw(struct dm_obj *o, char **out, char *why)
{
	if (!is_active(o, NULL))
		return show_text(out, "%s", "");
	return show_live(o, true, out, why);
}

static int status_blocks(const char *name, struct kv_doc *doc, char *why)
{
	struct kdm_target *t = NULL;
	size_t n = 0;
	int r = kdm_status(name, &t, &n, why);
	for (size_t i = 0; !r && i < n; i++) {
		struct kv_block *b = kv_doc_add_block(doc);
		if (!b) {
			r = -ENOMEM;
			break;
		}
		r = kv_add_u64(b, "start", t[i].start);
		r = r ? r : kv_add_u64(b, "length", t[i].length);
		r = r ? r : kv_add_str(b, "target", t[i].type);
		char perr[STSFS_WHY_LEN] = "";
		if (!r && dm_status_parse(t[i].type, t[i].params, b, perr, sizeof(perr)) == -EINVAL) {
			r = kv_add_str(b, "args", t[i].params);
			r = r ? r : kv_add_str(b, "parse_error", perr);
		}
	}
	kdm_targets_free(t, n);
	return r;
}

static int kv_status(struct ctx *c, struct kv_doc *doc)
{
	struct dm_obj *o = ctx_obj(c);
	if (!o)
		return -ENOENT;
	int r = is_active(o, NULL) ? status_blocks(o->obj.name, doc, c->why) : 0;
	obj_put(o);
	return r;
}

static const char *state_word(const struct kdm_info *info)
{
	return info->suspended ? "SUSPENDED" : "ACTIVE";
}

static int info_block(const char *name, const struct kdm_info *info, struct kv_block *b)
{
	char dev[32];
	snprintf(dev, sizeof(dev), "%u:%u", major(info->dev), minor(info->dev));
	int r = kv_add_str(b, "name", name);
	r = r ? r : kv_add_str(b, "uuid", info->uuid);
	r = r ? r : kv_add_str(b, "dev", dev);
	r = r ? r : kv_add_str(b, "state", state_word(info));
	r = r ? r : kv_add_bool(b, "read_only", info->read_only);
	r = r ? r : kv_add_u64(b, "open_count", (uint64_t)info->open_count);
	r = r ? r : kv_add_u64(b, "event_nr", info->event_nr);
	r = r ? r : kv_add_u64(b, "target_count", info->target_count);
	r = r ? r : kv_add_bool(b, "live_table", info->live_table);
	r = r ? r : kv_add_bool(b, "inactive_table", info->inactive_table);
	return r;
}

static int kv_info(struct ctx *c, struct kv_doc *doc)
{
	struct dm_obj *o = ctx_obj(c);
	if (!o)
		return -ENOENT;
	struct kv_block *b = kv_doc_add_block(doc);
	struct kdm_info info;
	int r = b ? 0 : -ENOMEM;
	if (b && is_active(o, &info))
		r = info_block(o->obj.name, &info, b);
	obj_put(o);
	return r;
}

/* Kernel name of a block device: the /sys/dev/block link's target. */
static void kernel_name(dev_t dev, char *buf, size_t len)
{
	char path[64], target[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	const char *slash = strrchr(target, '/');
	snprintf(buf, len, "%s", slash ? slash + 1 : (n > 0 ? target : "?"));
}

static int show_deps(struct dm_obj *o, char **out, char *why)
{
	dev_t *devs = NULL;
	size_t n = 0;
	int r = is_active(o, NULL) ? kdm_deps(o->obj.name, &devs, &n, why) : 0;
	size_t len = 0;
	FILE *f = r ? NULL : open_memstream(out, &len);
	if (!r && !f)
		r = -ENOMEM;
	for (size_t i = 0; f && i < n; i++) {
		char kname[64];
		kernel_name(devs[i], kname, sizeof(kname));
		fprintf(f, "%u:%u %s\n", major(devs[i]), minor(devs[i]), kname);
	}
	if (f && fclose(f) != 0)
		r = -ENOMEM;
	free(devs);
	return r;
}

static int show_size(struct dm_obj *o, char **out, char *why)
{
	struct kdm_info info;
	uint64_t bytes = 0;
	if (is_active(o, &info))
		kblk_size(info.dev, &bytes);
	return show_text(out, "%" PRIu64 "\n", bytes);
}

static int show_wait(struct dm_obj *o, char **out, char *why)
{
	struct kdm_info info;
	if (!is_active(o, &info))
		return not_active(o, why);
	char name[sizeof(o->obj.name)];
	snprintf(name, sizeof(name), "%s", o->obj.name);
	uint32_t ev = 0;
	/* Waiting must not hold the object. */
	pthread_mutex_unlock(&o->obj.lock);
	int r = kdm_wait_event(name, info.event_nr, &ev, why);
	pthread_mutex_lock(&o->obj.lock);
	return r ? r : show_text(out, "%u\n", ev);
}

/* poll(2) on status and info: the event counter and a wait on a thread. */
static int obj_event_nr(struct ctx *c, uint32_t *nr, char *key, size_t keylen)
{
	struct dm_obj *o = ctx_obj(c);
	if (!o)
		return -ENOENT;
	struct kdm_info info;
	int r = -ENODEV;
	if (is_active(o, &info)) {
		*nr = info.event_nr;
		snprintf(key, keylen, "%s", o->obj.name);
		r = 0;
	}
	obj_put(o);
	return r;
}

static int obj_event_wait(const char *name, uint32_t after)
{
	uint32_t ev = after;
	int r;
	do
		r = kdm_wait_event(name, after, &ev, NULL);
	while (r == -EINTR || (r == 0 && ev == after));
	return r;
}

/* ---- metadata/ ---- */

/* The first table line's target and, with locate, metadata device (its
 * first argument): the live table while active, the staged one (references
 * resolved) while inactive. */
static int meta_line(struct dm_obj *o, bool active, bool locate, char type[DM_TARGET_NAME_MAX], char *dev,
		     size_t devlen, char *why)
{
	struct kdm_target *t = NULL;
	size_t n = 0;
	struct dm_lines l = { 0 };
	const char *params = NULL;
	int r;
	if (active) {
		r = kdm_table(o->obj.name, &t, &n, why);
		if (!r && n) {
			snprintf(type, DM_TARGET_NAME_MAX, "%s", t[0].type);
			params = t[0].params;
		}
	} else {
		r = o->table[0] ? dm_table_split(o->table, &l, why, STSFS_WHY_LEN) : 0;
		if (!r && l.n)
			snprintf(type, DM_TARGET_NAME_MAX, "%s", l.v[0].type);
		enum kmeta_kind k;
		if (!r && l.n && locate && kmeta_kind_of(type, &k) == 0 &&
		    (r = dm_lines_translate(&l, resolve_ref, NULL, why, STSFS_WHY_LEN)) == 0)
			params = l.v[0].params;
	}
	if (params)
		snprintf(dev, devlen, "%.*s", (int)strcspn(params, " "), params);
	kdm_targets_free(t, n);
	dm_lines_free(&l);
	return r;
}

static int obj_meta_source(struct ctx *c, struct meta_source *m, bool locate, char *why)
{
	struct dm_obj *o = ctx_obj(c);
	if (!o)
		return -ENOENT;
	pthread_mutex_lock(&o->obj.lock);
	bool active = is_active(o, NULL);
	char type[DM_TARGET_NAME_MAX] = "", dev[32] = "";
	char reason[STSFS_WHY_LEN] = "";
	int r = meta_line(o, active, locate, type, dev, sizeof(dev), reason);
	unsigned ma, mi;
	if (kmeta_kind_of(type, &m->kind) != 0)
		r = -EINVAL;
	else if (!locate)
		r = 0;
	else if (r)
		r = why_set(why, r, "%s", reason);
	else if (sscanf(dev, "%u:%u", &ma, &mi) != 2)
		r = why_set(why, -EINVAL, "dm/%s: no metadata device in the table", o->obj.name);
	else if (active && o->obj.external && !opts.manage_external && m->kind != KMETA_THIN)
		/* Reading live cache/era metadata suspends the device. */
		r = why_set(why, -EPERM, "%s was not created by stsfs (start stsfs with --manage-external)", o->obj.name);
	if (!r && locate) {
		char kname[64];
		kernel_name(makedev(ma, mi), kname, sizeof(kname));
		r = kblk_devpath(makedev(ma, mi), kname, m->devpath, sizeof(m->devpath));
		snprintf(m->live_name, sizeof(m->live_name), "%s", active ? o->obj.name : "");
	}
	pthread_mutex_unlock(&o->obj.lock);
	obj_put(o);
	return r;
}

/* ---- file table ---- */

#define DM_SHOW(fname)                                                                         \
	static int c_show_##fname(struct ctx *c, char **out)                                   \
	{                                                                                      \
		return with_show(c, out, show_##fname);                                        \
	}
#define DM_STORE(fname)                                                                        \
	static int c_store_##fname(struct ctx *c, const char *v)                               \
	{                                                                                      \
		return with_store(c, v, store_##fname);                                        \
	}
DM_SHOW(table)
DM_STORE(table)
DM_SHOW(uuid)
DM_STORE(uuid)
DM_SHOW(read_only)
DM_STORE(read_only)
DM_SHOW(active)
DM_STORE(active)
DM_SHOW(suspended)
DM_STORE(suspended)
DM_SHOW(message)
DM_STORE(message)
DM_SHOW(status_raw)
DM_SHOW(deps)
DM_SHOW(size)
DM_SHOW(wait)

#define RW(n, fn) { .name = n, .perm = 0644, .show = c_show_##fn, .store = c_store_##fn }
static const struct file_def dm_files[] = {
	{ .name = "table", .perm = 0644, .show = c_show_table, .store = c_store_table, .check = c_check_table,
	},
	RW("uuid", uuid),
	RW("read_only", read_only),
	RW("active", active),
	RW("suspended", suspended),
	RW("message", message),
	{ .name = "status", .perm = 0444, .kv = kv_status, .kv_array = true, .pollable = true },
	{ .name = "status.raw", .perm = 0444, .show = c_show_status_raw, .pollable = true },
	{ .name = "info", .perm = 0444, .kv = kv_info, .pollable = true },
	{ .name = "deps", .perm = 0444, .show = c_show_deps },
	{ .name = "size", .perm = 0444, .show = c_show_size, .visible = block_active },
	{ .name = "wait", .perm = 0444, .show = c_show_wait },
	{ .name = "error", .perm = 0444, .show = show_error_file },
	{ NULL },
};
#undef RW

/* ---- the object directory ---- */

static struct errslot *obj_errslot(struct ctx *c)
{
	/* An external device's error slot is kept under its dm name. */
	return reg_errslot(&dms, c->comp[1], c->comp[1]);
}

static int obj_block(struct ctx *c, struct blockref *b)
{
	struct dm_obj *o = ctx_obj(c);
	if (!o)
		return -ENOENT;
	struct kdm_info info;
	int r = -ENODEV;
	if (is_active(o, &info)) {
		b->dev = info.dev;
		b->read_only = info.read_only;
		b->data_allowed = !o->obj.external || opts.manage_external;
		char kname[24];
		snprintf(kname, sizeof(kname), "dm-%u", minor(info.dev));
		r = kblk_devpath(info.dev, kname, b->devpath, sizeof(b->devpath));
	}
	obj_put(o);
	return r;
}

static int obj_remove(struct ctx *c)
{
	struct dm_obj *o = ctx_obj(c);
	if (!o)
		return why_set(c->why, -ENOENT, "no dm object %s", c->comp[1]);
	pthread_mutex_lock(&o->obj.lock);
	int r = obj_may_change(&o->obj, c->why);
	if (!r && is_active(o, NULL))
		r = kdm_remove(o->obj.name, c->why);
	if (!r && !o->obj.external) {
		state_delete(STATE_KIND, o->obj.name);
		reg_forget(&dms, &o->obj);
	}
	pthread_mutex_unlock(&o->obj.lock);
	obj_put(o);
	return r;
}

static int name_free_locked(const char *name, char *why)
{
	struct kdm_info info;
	if (reg_find_locked(&dms, name) || (kdm_info(name, &info, NULL) == 0 && info.exists))
		return why_set(why, -EEXIST, "dm/%s exists", name);
	return 0;
}

static int rename_locked(struct dm_obj *o, const char *newname, char *why)
{
	int r = name_free_locked(newname, why);
	if (!r && is_active(o, NULL))
		r = kdm_rename(o->obj.name, newname, why);
	if (r || o->obj.external)
		return r;
	char old[sizeof(o->obj.name)];
	snprintf(old, sizeof(old), "%s", o->obj.name);
	snprintf(o->obj.name, sizeof(o->obj.name), "%s", newname);
	r = save(o, why);
	if (r) { /* keep the kernel and the record in step */
		if (is_active(o, NULL))
			kdm_rename(newname, old, NULL);
		snprintf(o->obj.name, sizeof(o->obj.name), "%s", old);
		return r;
	}
	state_delete(STATE_KIND, old);
	return 0;
}

static int obj_rename(struct ctx *c, const char *newname)
{
	int r = value_check_name(newname, DM_NAME_MAX, c->why, sizeof(c->why));
	if (r)
		return r;
	struct dm_obj *o = ctx_obj(c);
	if (!o)
		return why_set(c->why, -ENOENT, "no dm object %s", c->comp[1]);
	pthread_mutex_lock(&o->obj.lock);
	r = obj_may_change(&o->obj, c->why);
	if (!r && strcmp(o->obj.name, newname) != 0) {
		/* The registry lock keeps the new name free until it is taken. */
		reg_lock(&dms);
		r = rename_locked(o, newname, c->why);
		reg_unlock(&dms);
	}
	pthread_mutex_unlock(&o->obj.lock);
	obj_put(o);
	return r;
}

static const struct subdir_def dm_obj_subdirs[] = {
	{ .name = "partitions", .kind = &partitions_kind, .visible = block_active },
	{ .name = "metadata", .kind = &metadata_kind, .visible = has_metadata },
	{ NULL },
};

static const struct dir_kind dm_obj_kind = {
	.name = "dm object",
	.files = { dm_files, block_files },
	.subdirs = dm_obj_subdirs,
	.remove = obj_remove,
	.rename = obj_rename,
	.errslot = obj_errslot,
	.block = obj_block,
	.event_nr = obj_event_nr,
	.event_wait = obj_event_wait,
	.meta_source = obj_meta_source,
};

/* ---- dm/ itself ---- */

static int dir_list(struct ctx *c, int (*emit)(void *arg, const char *name), void *arg)
{
	return reg_list(&dms, emit, arg);
}

static const struct dir_kind *dir_child(struct ctx *c, const char *name)
{
	return reg_exists(&dms, name) ? &dm_obj_kind : NULL;
}

static int admit_locked(struct obj *o, char *why)
{
	int r = name_free_locked(o->name, why);
	return r ? r : save(dm_of(o), why);
}

static int dir_mkdir(struct ctx *c, const char *name)
{
	int r = value_check_name(name, DM_NAME_MAX, c->why, sizeof(c->why));
	return r ? r : reg_mkdir(&dms, name, admit_locked, c->why);
}

static struct errslot *dir_errslot(struct ctx *c)
{
	return &dms.dir_error;
}

const struct dir_kind dm_dir_kind = {
	.name = "dm",
	.files = { reg_dir_files },
	.list = dir_list,
	.child = dir_child,
	.mkdir = dir_mkdir,
	.errslot = dir_errslot,
};

/* ---- start-up: persisted objects; the kernel says which are active ---- */

static char *table_from_state(const struct kv_block *b)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	for (int i = 1;; i++) {
		char key[32];
		snprintf(key, sizeof(key), "table%d", i);
		const struct kv *e = kv_get(b, key);
		if (!e || !e->str)
			break;
		fprintf(f, "%s\n", e->str);
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int load_fields(struct obj *obj, const struct kv_block *b)
{
	struct dm_obj *o = dm_of(obj);
	char *table = table_from_state(b);
	if (!table)
		return -ENOMEM;
	free(o->table);
	o->table = table;
	const struct kv *u = kv_get(b, "uuid");
	snprintf(o->uuid, sizeof(o->uuid), "%s", u && u->str ? u->str : "");
	const struct kv *ro = kv_get(b, "read_only");
	o->read_only = ro && ro->str && strcmp(ro->str, "1") == 0;
	return 0;
}

int dm_startup(char *why)
{
	return reg_load(&dms, STATE_KIND, DM_NAME_MAX, load_fields, why);
}
