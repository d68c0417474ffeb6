/* A dm object's table: the staged text while inactive, the kernel's live
 * table while active (a write reloads it), the device references a table
 * may name, and the metadata device its first line names (metadata/).
 * References are translated to MAJ:MIN only when the kernel is to see the
 * table; the staged text keeps them as written. */
#include "dm.h"
#include "stsfs/tenancy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stsfs/dm_parse.h"

#include "loop.h"

#include "stsfs/log.h"

/* ---- device references: MAJ:MIN, /dev/..., loop/NAME, dm/NAME, thin/POOL/VOL ---- */

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

/* A /dev path is the writer's: looked up in its root and mount namespace,
 * as it (src/kernel/caller.c). */
static int path_dev(const char *ref, dev_t *dev, char *why)
{
	return kcaller_dev(kcaller_current(), ref, dev, why);
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
	*ours = dm_owns_name(vol);
	return 0;
}

/* A tenant's references name its own objects (the host's, any): the
 * reference with the tenant's prefix put before the object's name. */
static int scoped_ref(const char *ref, char *out, size_t len, char *why)
{
	const char *scope = tenant_scope();
	const char *slash = strchr(ref, '/');
	size_t sl = strlen(scope);
	bool internal = slash && strncmp(slash + 1, scope, sl) == 0 && slash[1 + sl] == ':';
	if (!scope[0] || !slash || internal) /* internal: a pool's own loop/T:POOL_tdata */
		return snprintf(out, len, "%s", ref) < (int)len ? 0 : why_set(why, -EINVAL, "%s: too long", ref);
	if (strchr(ref, ':'))
		return why_set(why, -ENOENT, "%s: names have no ':'", ref);
	if ((size_t)snprintf(out, len, "%.*s/%s:%s", (int)(slash - ref), ref, scope, slash + 1) >= len)
		return why_set(why, -EINVAL, "%s: too long", ref);
	return 0;
}

static int ref_dev_scoped(const char *user_ref, const char *ref, dev_t *dev, bool *ours, char *why);

static int ref_dev(const char *user_ref, dev_t *dev, bool *ours, char *why)
{
	*ours = false;
	char ref[2 * DM_NAME_MAX + 16];
	int sr = scoped_ref(user_ref, ref, sizeof(ref), why);
	if (sr)
		return sr;
	int r = ref_dev_scoped(user_ref, ref, dev, ours, why);
	if (r)
		tenant_unscope(why, tenant_scope());
	return r;
}

static int ref_dev_scoped(const char *user_ref, const char *ref, dev_t *dev, bool *ours, char *why)
{
	if (tenant_scope()[0] && strncmp(ref, "loop/", 5) != 0 && strncmp(ref, "dm/", 3) != 0 &&
	    strncmp(ref, "thin/", 5) != 0)
		return why_set(why, -EACCES, "'%s': a tenant names devices as loop/NAME, dm/NAME or thin/POOL/VOL of "
			       "its own tree, not by number or path", user_ref);
	if (strncmp(ref, "loop/", 5) == 0) {
		*ours = true;
		return loop_object_dev(ref + 5, dev, why);
	}
	if (strncmp(ref, "dm/", 3) == 0) {
		*ours = dm_owns_name(ref + 3);
		return dm_object_dev(ref + 3, dev, why);
	}
	if (strncmp(ref, "thin/", 5) == 0)
		return thin_ref_dev(ref, dev, ours, why);
	/* Any absolute path (a symlink, /var/../dev/X) is what it names now;
	 * only MAJ:MIN reaches the kernel. Other words with a slash are no
	 * reference: the kernel would open them relative to / (dm_is_devref). */
	if (ref[0] == '/')
		return path_dev(ref, dev, why);
	if (strchr(ref, '/'))
		return why_set(why, -EINVAL, "'%s' is not a device reference (MAJ:MIN, /dev/..., loop/NAME, dm/NAME, "
			       "thin/POOL/VOL)", ref);
	return majmin_dev(ref, dev, why);
}

struct loop_match {
	dev_t dev;
	bool found;
};

static int match_loop(void *arg, const char *name)
{
	struct loop_match *m = arg;
	dev_t d;
	if (!m->found && loop_object_dev(name, &d, NULL) == 0 && d == m->dev)
		m->found = true;
	return 0;
}

/* loop_owns_dev goes by the device number an object last had; a device
 * detached behind its back (losetup -d) and taken by someone else keeps
 * that number. Only a loop object still bound to its backing file (what
 * loop_object_dev checks) owns it. */
static bool loop_dev_ours(dev_t dev)
{
	struct loop_match m = { .dev = dev };
	if (!loop_owns_dev(dev))
		return false;
	reg_list(&loop_registry, match_loop, &m);
	return m.found;
}

/* dm_resolve_fn: a reference must name a device stsfs made, unless the
 * daemon runs with --allow-host-devices. */
static int resolve_ref(void *arg, const char *ref, char *out, size_t outlen, char *why, size_t whylen)
{
	char reason[STSFS_WHY_LEN] = "";
	dev_t dev;
	bool ours;
	int r = ref_dev(ref, &dev, &ours, reason);
	if (!r && !ours && !opts.allow_host_devices && !loop_dev_ours(dev) && !dm_owns_dev(dev))
		r = why_set(reason, -EACCES, "%s (%u:%u) was not created by stsfs (start stsfs with --allow-host-devices)",
			    ref, major(dev), minor(dev));
	if (r) {
		snprintf(why, whylen, "%s", reason);
		return r;
	}
	snprintf(out, outlen, "%u:%u", major(dev), minor(dev));
	return 0;
}

int dm_resolve_ref(const char *ref, dev_t *dev, char *why)
{
	char out[32];
	unsigned ma, mi;
	int r = resolve_ref(NULL, ref, out, sizeof(out), why, STSFS_WHY_LEN);
	if (!r && sscanf(out, "%u:%u", &ma, &mi) == 2)
		*dev = makedev(ma, mi);
	return r;
}

static int translate(struct dm_lines *l, char *why)
{
	return dm_lines_translate(l, resolve_ref, NULL, why, STSFS_WHY_LEN);
}

/* The staged or written table, split and with references translated. */
int dm_load_table(const char *text, struct dm_lines *l, char *why)
{
	int r = dm_table_split(text, l, why, STSFS_WHY_LEN);
	if (r)
		return r;
	r = translate(l, why);
	if (r)
		dm_lines_free(l);
	return r;
}

/* ---- the table file ---- */

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

int dm_show_live(const struct dm_obj *o, bool status, char **out, char *why)
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

int dm_show_table(struct dm_obj *o, char **out, char *why)
{
	if (dm_is_active(o, NULL))
		return dm_show_live(o, false, out, why);
	return show_text(out, "%s", o->table);
}

static int set_staged(struct dm_obj *o, char *text, char *why)
{
	char *old = o->table;
	o->table = text;
	int r = dm_save(o, why);
	if (r) {
		o->table = old;
		free(text);
	} else {
		free(old);
	}
	return r;
}

int dm_store_table(struct dm_obj *o, const char *value, char *why)
{
	struct dm_lines l;
	int r = dm_table_split(value, &l, why, STSFS_WHY_LEN);
	if (r)
		return r;
	char *normal = dm_lines_format(&l);
	if (!normal)
		r = -ENOMEM;
	struct kdm_info info;
	bool active = !r && dm_is_active(o, &info);
	if (active) {
		r = translate(&l, why);
		/* The writes loaded it already (dm_check_table): swap it in. */
		if (!r)
			r = info.inactive_table ? kdm_swap(o->obj.name, &l, why) : kdm_reload(o->obj.name, &l, why);
	}
	if (!r)
		log_msg(active ? L_INFO : L_DEBUG, "dm/%s: %s (%zu lines)", o->obj.name,
			active ? "table reloaded" : "table set, for activation", l.n);
	dm_lines_free(&l);
	if (r) {
		free(normal);
		return r;
	}
	return o->obj.external ? (free(normal), 0) : set_staged(o, normal, why);
}

/* What the kernel checks of a table as a whole before any target sees it:
 * the first line starts at sector 0 and each next one where the one before
 * ends (the kernel's "Gap in table"). */
static int check_layout(const struct dm_lines *l, char *why)
{
	uint64_t end = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct dm_line *v = &l->v[i];
		if (i == 0 && v->start != 0)
			return why_set(why, -EINVAL, "table line 1: starts at sector %" PRIu64 ", not 0", v->start);
		if (v->start != end)
			return why_set(why, -EINVAL,
				       "table line %zu: starts at sector %" PRIu64 ", not %" PRIu64
				       " where line %zu ends (lines follow each other without gaps or overlaps)",
				       i + 1, v->start, end, i);
		if (v->length > UINT64_MAX - v->start)
			return why_set(why, -EINVAL, "table line %zu: start + length is beyond 2^64 sectors", i + 1);
		end = v->start + v->length;
	}
	return 0;
}

/* Every line's target type is one the kernel has or would load a module
 * for (kdm_target_known); without device-mapper nothing can be told and
 * every type passes. */
static int check_targets(const struct dm_lines *l, char *why)
{
	for (size_t i = 0; i < l->n; i++) {
		char reason[STSFS_WHY_LEN] = "";
		int r = kdm_target_known(l->v[i].type, reason);
		if (r == -ENODEV)
			return 0;
		if (r)
			return why_set(why, r, "table line %zu: %s", i + 1, reason);
	}
	return 0;
}

/* Per write: syntax, layout, target types and device references of the
 * lines so far and, while active, the kernel's own check: the lines so far
 * are loaded as the inactive table, so that the kernel's refusal fails this
 * write(2) (bash ignores close's errno). The live table changes once, at
 * close (dm_store_table). */
int dm_check_table(struct dm_obj *o, const char *value, char *why)
{
	struct dm_lines l;
	int r = dm_table_split(value, &l, why, STSFS_WHY_LEN);
	if (r)
		return r;
	r = check_layout(&l, why);
	r = r ? r : check_targets(&l, why);
	r = r ? r : translate(&l, why);
	if (!r && dm_is_active(o, NULL))
		r = kdm_load(o->obj.name, &l, why);
	dm_lines_free(&l);
	return r;
}

/* ---- metadata/: where the persistent-data metadata is ---- */

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
		    (r = translate(&l, why)) == 0)
			params = l.v[0].params;
	}
	if (params)
		snprintf(dev, devlen, "%.*s", (int)strcspn(params, " "), params);
	kdm_targets_free(t, n);
	dm_lines_free(&l);
	return r;
}

/* Under the object lock: a write may replace the staged table meanwhile. */
int dm_meta_source(struct ctx *c, struct meta_source *m, bool locate, char *why)
{
	struct dm_obj *o = dm_ctx_obj(c);
	if (!o)
		return -ENOENT;
	pthread_mutex_lock(&o->obj.lock);
	bool active = dm_is_active(o, NULL);
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
		dm_kernel_name(makedev(ma, mi), kname, sizeof(kname));
		r = kblk_devpath(makedev(ma, mi), kname, m->devpath, sizeof(m->devpath));
		snprintf(m->live_name, sizeof(m->live_name), "%s", active ? o->obj.name : "");
	}
	pthread_mutex_unlock(&o->obj.lock);
	dm_obj_put(o);
	return r;
}

/* The first line of the live table (active) or of the staged one with its
 * references resolved. */
int dm_meta_line(struct ctx *c, uint64_t *length, char *params, size_t len, char *why)
{
	struct dm_obj *o = dm_ctx_obj(c);
	if (!o)
		return -ENOENT;
	struct kdm_target *t = NULL;
	size_t n = 0;
	struct dm_lines l = { 0 };
	int r = 0;
	*length = 0;
	pthread_mutex_lock(&o->obj.lock);
	if (dm_is_active(o, NULL)) {
		r = kdm_table(o->obj.name, &t, &n, why);
		if (!r && n) {
			*length = t[0].length;
			snprintf(params, len, "%s", t[0].params);
		}
	} else if (o->table[0]) {
		r = dm_load_table(o->table, &l, why);
		if (!r && l.n) {
			*length = l.v[0].length;
			snprintf(params, len, "%s", l.v[0].params);
		}
	}
	if (!r && !*length)
		r = why_set(why, -ENOENT, "dm/%s has no table", o->obj.name);
	pthread_mutex_unlock(&o->obj.lock);
	kdm_targets_free(t, n);
	dm_lines_free(&l);
	dm_obj_put(o);
	return r;
}
