/* thin/POOL/VOL: thin volumes. A volume is a record in its pool (size, thin
 * id, origin, whether its thin exists in the pool) and, while active, the
 * dm device POOL-VOL with one `thin` line on the pool. Its thin is made by
 * a pool message at the first activation and deleted by rmdir. */
#include "thin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stsfs/dm_parse.h"
#include "stsfs/dmpd_parse.h"
#include "stsfs/log.h"
#include "stsfs/value.h"

struct thin_vol *thin_vol_find(struct thin_pool *p, const char *name)
{
	for (size_t i = 0; i < p->nvols; i++)
		if (strcmp(p->vols[i].name, name) == 0)
			return &p->vols[i];
	return NULL;
}

static bool dm_live(const char *name)
{
	struct kdm_info info;
	return kdm_info(name, &info, NULL) == 0 && info.exists;
}

static void vol_dm(const struct thin_pool *p, const struct thin_vol *v, char *buf, size_t len)
{
	thin_vol_dm_name(p->obj.name, v->name, buf, len);
}

static void vol_owner(const struct thin_pool *p, const char *vol, char *buf, size_t len)
{
	snprintf(buf, len, "thin/%s/%s", p->obj.name, vol);
}

static int vol_table(const struct thin_pool *p, const struct thin_vol *v, char **out)
{
	return show_text(out, "0 %" PRIu64 " thin dm/%s %" PRIu32 "\n", v->size / 512, p->obj.name, v->thin_id);
}

/* ---- activation and the pool's thins ---- */

static int thin_listed(struct ctx *pool, uint32_t id, bool *listed, char *why);

static int create_thin(struct thin_pool *p, struct thin_vol *v, char *why)
{
	char msg[64], odm[THIN_DM_NAME_MAX + 1];
	int r;
	if (!v->origin[0]) {
		snprintf(msg, sizeof(msg), "create_thin %" PRIu32, v->thin_id);
		r = thin_pool_change(p, msg, why);
	} else {
		struct thin_vol *o = thin_vol_find(p, v->origin);
		if (!o)
			return why_set(why, -ENOENT, "origin %s is not a volume of thin/%s", v->origin, p->obj.name);
		if (!o->created)
			return why_set(why, -EINVAL, "origin %s has no thin yet (activate it once first)", o->name);
		snprintf(msg, sizeof(msg), "create_snap %" PRIu32 " %" PRIu32, v->thin_id, o->thin_id);
		/* A live origin is suspended so that its data is on disk. */
		vol_dm(p, o, odm, sizeof(odm));
		bool live = dm_live(odm);
		r = live ? dm_owned_suspend(odm, true, why) : 0;
		r = r ? r : thin_pool_change(p, msg, why);
		if (live) {
			char reason[STSFS_WHY_LEN];
			int rr = dm_owned_suspend(odm, false, reason);
			if (rr && !r)
				r = why_set(why, rr, "%s", reason);
		}
	}
	if (r)
		return r;
	v->created = true;
	return 0;
}

/* A thin id the pool's metadata has already (a restored dump, a reused
 * metadata device) refuses create_thin: say so. */
static int explain_create(struct ctx *c, struct thin_pool *p, struct thin_vol *v, int r)
{
	struct ctx pool;
	bool listed = false;
	ctx_up(c, 1, &pool);
	if (thin_listed(&pool, v->thin_id, &listed, NULL) == 0 && listed)
		return why_set(c->why, -EEXIST, "thin id %" PRIu32 " exists in thin/%s's metadata but is no volume's here "
			       "(write another thin_id)", v->thin_id, p->obj.name);
	return r;
}

/* create_thin with its intent saved first: a daemon killed after the
 * kernel made the thin and before the record said so finds, at the next
 * activation, the thin in the pool and takes it as this volume's. */
static int create_new_thin(struct ctx *c, struct thin_pool *p, struct thin_vol *v)
{
	bool retried = v->intent == VOL_INTENT_CREATE;
	v->intent = VOL_INTENT_CREATE;
	int r = thin_save(p, c->why);
	r = r ? r : create_thin(p, v, c->why);
	if (r && retried) {
		struct ctx pool;
		bool listed = false;
		ctx_up(c, 1, &pool);
		if (thin_listed(&pool, v->thin_id, &listed, NULL) == 0 && listed) {
			v->created = true;
			r = 0;
		}
	}
	v->intent = VOL_INTENT_NONE;
	if (r) {
		thin_save(p, NULL);
		return explain_create(c, p, v, r);
	}
	return thin_save(p, c->why);
}

static int vol_activate(struct thin_pool *p, struct thin_vol *v, struct ctx *c)
{
	char *why = c->why;
	char name[THIN_DM_NAME_MAX + 1], owner[OBJ_OWNER_MAX], *table = NULL;
	vol_dm(p, v, name, sizeof(name));
	if (dm_live(name))
		return 0;
	if (!thin_pool_active(p))
		return thin_not_active(p, why);
	const struct thin_vol *o = v->origin[0] ? thin_vol_find(p, v->origin) : NULL;
	uint64_t size = v->size;
	if (!v->size && o) /* a snapshot is as large as its origin unless told */
		v->size = o->size;
	if (!v->size)
		return why_set(why, -EINVAL, "write size first");
	if (v->intent == VOL_INTENT_REMOVE)
		return why_set(why, -ENOENT, "thin/%s/%s was being removed when stsfs stopped: rmdir it again",
			       p->obj.name, v->name);
	bool was_created = v->created;
	int r = 0;
	if (!v->created && (r = create_new_thin(c, p, v)) != 0) {
		v->size = size;
		return r;
	}
	vol_owner(p, v->name, owner, sizeof(owner));
	r = dm_owned_ensure(name, owner, why);
	r = r ? r : vol_table(p, v, &table);
	r = r ? r : dm_owned_set_table(name, table, why);
	r = r ? r : dm_owned_set_active(name, true, why);
	free(table);
	char sz[32];
	if (!r)
		log_msg(L_INFO, "thin/%s/%s: activated as /dev/mapper/%s (thin id %" PRIu32 ", %s%s%s)", p->obj.name, v->name,
			name, v->thin_id, log_bytes(v->size, sz), v->origin[0] ? ", a snapshot of " : "", v->origin);
	if (r && was_created) {
		char reason[STSFS_WHY_LEN];
		snprintf(reason, sizeof(reason), "%s", why);
		why_set(why, r, "%s (is thin id %" PRIu32 " still in the pool? see thin/%s/metadata/ls)", reason,
			v->thin_id, p->obj.name);
	}
	return r;
}

static int vol_deactivate(struct thin_pool *p, struct thin_vol *v, char *why)
{
	char name[THIN_DM_NAME_MAX + 1];
	vol_dm(p, v, name, sizeof(name));
	if (!dm_live(name))
		return 0;
	int r = dm_owned_set_active(name, false, why);
	if (!r)
		log_msg(L_INFO, "thin/%s/%s: deactivated", p->obj.name, v->name);
	return r;
}

/* None goes unless all can: an open one is found before any is removed. */
int thin_vols_deactivate(struct thin_pool *p, char *why)
{
	for (size_t i = 0; i < p->nvols; i++) {
		char name[THIN_DM_NAME_MAX + 1];
		struct kdm_info info;
		vol_dm(p, &p->vols[i], name, sizeof(name));
		if (kdm_info(name, &info, NULL) == 0 && info.exists && info.open_count > 0)
			return why_set(why, -EBUSY, "thin/%s/%s is open (mounted or in use): close it first", p->obj.name,
				       p->vols[i].name);
	}
	int r = 0;
	for (size_t i = 0; !r && i < p->nvols; i++)
		r = vol_deactivate(p, &p->vols[i], why);
	return r;
}

/* The pool's metadata lists thin id (read through a metadata snapshot). */
static int thin_listed(struct ctx *pool, uint32_t id, bool *listed, char *why)
{
	struct meta_source m;
	int r = dm_meta_source(pool, &m, true, why);
	if (r)
		return r;
	struct kmeta_req q = { .kind = KMETA_THIN, .op = KMETA_LS, .devpath = m.devpath,
			       .live_name = m.live_name[0] ? m.live_name : NULL, .tmp_dir = opts.state_dir };
	struct kmeta_result res;
	struct kv_doc doc = { 0 };
	r = kmeta_run(&q, &res, why);
	if (r)
		return r;
	r = res.exit_code ? why_set(why, -EIO, "thin_ls failed: %.*s", (int)strcspn(res.err, "\n"), res.err)
			  : dmpd_ls_parse(res.out, strlen(res.out), &doc, why, STSFS_WHY_LEN);
	*listed = false;
	for (size_t i = 0; !r && i < doc.n; i++) {
		const struct kv *e = kv_get(&doc.blocks[i], "dev");
		*listed |= e && e->type == KV_U64 && e->u == id;
	}
	kv_doc_free(&doc);
	kmeta_result_free(&res);
	return r;
}

/* Deletes the volume's thin, activating the pool for it when it is not. A
 * thin that is already gone from the metadata (restored or repaired
 * without it) is not an error. */
static int delete_thin(struct ctx *pool, struct thin_pool *p, struct thin_vol *v, struct cancel *cancel, char *why)
{
	bool was_active = thin_pool_active(p);
	int r = was_active ? 0 : thin_pool_activate(p, cancel, why);
	if (r)
		return r;
	char msg[64];
	snprintf(msg, sizeof(msg), "delete %" PRIu32, v->thin_id);
	r = thin_pool_change(p, msg, why);
	bool listed = true;
	if (r && thin_listed(pool, v->thin_id, &listed, NULL) == 0 && !listed)
		r = 0;
	if (!was_active)
		thin_pool_deactivate(p, r ? NULL : why);
	return r;
}

/* ---- the files ---- */

typedef int (*vol_store_fn)(struct thin_pool *p, struct thin_vol *v, const char *value, struct ctx *c);
typedef int (*vol_show_fn)(struct thin_pool *p, struct thin_vol *v, char **out);

static int with_vol(struct ctx *c, const char *value, vol_store_fn store, vol_show_fn show, char **out)
{
	struct thin_pool *p = thin_ctx_pool(c);
	if (!p)
		return why_set(c->why, -ENOENT, "no thin pool %s", c->comp[1]);
	pthread_mutex_lock(&p->obj.lock);
	struct thin_vol *v = c->depth >= 3 ? thin_vol_find(p, c->comp[2]) : NULL;
	int r = v ? 0 : why_set(c->why, -ENOENT, "no volume %s in thin/%s", c->depth >= 3 ? c->comp[2] : "", p->obj.name);
	if (!r && store)
		r = obj_may_change(&p->obj, c->why);
	if (!r)
		r = store ? store(p, v, value, c) : show(p, v, out);
	pthread_mutex_unlock(&p->obj.lock);
	thin_pool_put(p);
	return r;
}

static int fixed_once_created(const struct thin_pool *p, const struct thin_vol *v, const char *attr, char *why)
{
	return why_set(why, -EBUSY, "%s is fixed: the thin of thin/%s/%s exists in the pool (id %" PRIu32 ")", attr,
		       p->obj.name, v->name, v->thin_id);
}

static int show_size(struct thin_pool *p, struct thin_vol *v, char **out)
{
	return show_text(out, "%" PRIu64 "\n", v->size);
}

static int store_size(struct thin_pool *p, struct thin_vol *v, const char *value, struct ctx *c)
{
	char *why = c->why;
	uint64_t size;
	int r = value_parse_size(value, &size, why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (!size || size % 512)
		return why_set(why, -EINVAL, "size must be a positive multiple of 512 bytes, not %" PRIu64, size);
	if (v->created && size < v->size)
		return why_set(why, -EINVAL, "shrinking thin/%s/%s (%" PRIu64 " to %" PRIu64 " bytes) is refused", p->obj.name,
			       v->name, v->size, size);
	uint64_t old = v->size;
	v->size = size;
	char name[THIN_DM_NAME_MAX + 1], *table = NULL;
	vol_dm(p, v, name, sizeof(name));
	if (size != old && dm_live(name)) {
		r = vol_table(p, v, &table);
		r = r ? r : dm_owned_set_table(name, table, why);
		free(table);
	}
	bool live = size != old && dm_live(name);
	r = r ? r : thin_save(p, why);
	char from[32], to[32];
	if (r)
		v->size = old;
	else if (live)
		log_msg(L_INFO, "thin/%s/%s: resized from %s to %s", p->obj.name, v->name, log_bytes(old, from),
			log_bytes(size, to));
	return r;
}

static int show_thin_id(struct thin_pool *p, struct thin_vol *v, char **out)
{
	return show_text(out, "%" PRIu32 "\n", v->thin_id);
}

static int store_thin_id(struct thin_pool *p, struct thin_vol *v, const char *value, struct ctx *c)
{
	char *why = c->why;
	uint64_t id;
	int r = value_parse_u64(value, &id, why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (id == v->thin_id)
		return 0;
	if (v->created)
		return fixed_once_created(p, v, "thin_id", why);
	if (id > THIN_ID_MAX)
		return why_set(why, -EINVAL, "a thin id is at most %u", THIN_ID_MAX);
	for (size_t i = 0; i < p->nvols; i++)
		if (p->vols[i].thin_id == id)
			return why_set(why, -EEXIST, "thin id %" PRIu64 " is thin/%s/%s's", id, p->obj.name, p->vols[i].name);
	uint32_t old = v->thin_id;
	v->thin_id = (uint32_t)id;
	r = thin_save(p, why);
	if (r)
		v->thin_id = old;
	return r;
}

static int show_origin(struct thin_pool *p, struct thin_vol *v, char **out)
{
	return show_text(out, "%s%s", v->origin, v->origin[0] ? "\n" : "");
}

static int store_origin(struct thin_pool *p, struct thin_vol *v, const char *value, struct ctx *c)
{
	char *why = c->why;
	if (strcmp(value, v->origin) == 0)
		return 0;
	if (v->created)
		return fixed_once_created(p, v, "origin", why);
	if (value[0]) {
		const struct thin_vol *o = thin_vol_find(p, value);
		if (!o)
			return why_set(why, -ENOENT, "no volume %s in thin/%s", value, p->obj.name);
		/* An origin chain that reaches this volume would never be created. */
		for (int n = 0; o && n <= (int)p->nvols; n++) {
			if (o == v)
				return why_set(why, -EINVAL, "%s cannot be its own origin", v->name);
			o = o->origin[0] ? thin_vol_find(p, o->origin) : NULL;
		}
	}
	char old[sizeof(v->origin)];
	snprintf(old, sizeof(old), "%s", v->origin);
	snprintf(v->origin, sizeof(v->origin), "%s", value);
	int r = thin_save(p, why);
	if (r)
		snprintf(v->origin, sizeof(v->origin), "%s", old);
	return r;
}

static int show_active(struct thin_pool *p, struct thin_vol *v, char **out)
{
	char name[THIN_DM_NAME_MAX + 1];
	vol_dm(p, v, name, sizeof(name));
	return show_text(out, "%d\n", dm_live(name));
}

static int store_active(struct thin_pool *p, struct thin_vol *v, const char *value, struct ctx *c)
{
	char *why = c->why;
	bool on;
	int r = value_parse_bool(value, &on, why, STSFS_WHY_LEN);
	if (r)
		return r;
	return on ? vol_activate(p, v, c) : vol_deactivate(p, v, why);
}

#define VOL_RW(fname)                                                                          \
	static int c_show_##fname(struct ctx *c, char **out)                                   \
	{                                                                                      \
		return with_vol(c, NULL, NULL, show_##fname, out);                             \
	}                                                                                      \
	static int c_store_##fname(struct ctx *c, const char *v)                               \
	{                                                                                      \
		return with_vol(c, v, store_##fname, NULL, NULL);                              \
	}
VOL_RW(size)
VOL_RW(thin_id)
VOL_RW(origin)
VOL_RW(active)

/* The thin target's keys (mapped_sectors, highest_mapped_sector) of the
 * live device; nothing while inactive. */
static int kv_status(struct ctx *c, struct kv_doc *doc)
{
	char name[THIN_DM_NAME_MAX + 1];
	if (thin_vol_dm_name(c->comp[1], c->comp[2], name, sizeof(name)) != 0 || !dm_live(name))
		return 0;
	struct kdm_target *t = NULL;
	size_t n = 0;
	int r = kdm_status(name, &t, &n, c->why);
	struct kv_block *b = r || n != 1 ? NULL : kv_doc_add_block(doc);
	if (b)
		r = dm_status_parse(t[0].type, t[0].params, b, c->why, STSFS_WHY_LEN);
	else if (!r)
		r = why_set(c->why, -EIO, "%s has %zu table lines, not one thin line", name, n);
	kdm_targets_free(t, n);
	return r;
}

/* thin_delta of the volume against its origin: what the ids are, under
 * the pool's lock; the tool runs without it. */
static int delta_ids(struct ctx *c, uint64_t *snap1, uint64_t *snap2)
{
	struct thin_pool *p = thin_ctx_pool(c);
	if (!p)
		return -ENOENT;
	pthread_mutex_lock(&p->obj.lock);
	struct thin_vol *v = thin_vol_find(p, c->comp[2]);
	struct thin_vol *o = v && v->origin[0] ? thin_vol_find(p, v->origin) : NULL;
	int r = 0;
	if (!v)
		r = -ENOENT;
	else if (!o)
		r = why_set(c->why, -ENOENT, "thin/%s/%s is not a snapshot of a volume of the pool", p->obj.name, v->name);
	else if (!v->created || !o->created)
		r = why_set(c->why, -ENODATA, "%s has no thin yet (activate it once first)", v->created ? o->name : v->name);
	if (!r) {
		*snap1 = o->thin_id;
		*snap2 = v->thin_id;
	}
	pthread_mutex_unlock(&p->obj.lock);
	thin_pool_put(p);
	return r;
}

static int kv_delta(struct ctx *c, struct kv_doc *doc)
{
	uint64_t snap1, snap2;
	int r = delta_ids(c, &snap1, &snap2);
	if (r)
		return r;
	struct ctx pool;
	struct meta_source m;
	ctx_up(c, 1, &pool);
	r = pool.kind->meta_source(&pool, &m, true, c->why);
	if (r)
		return r;
	struct kmeta_req q = { .kind = KMETA_THIN, .op = KMETA_DELTA, .devpath = m.devpath,
			       .live_name = m.live_name[0] ? m.live_name : NULL, .tmp_dir = opts.state_dir,
			       .snap1 = snap1, .snap2 = snap2, .cancel = c->cancel };
	struct kmeta_result res;
	r = kmeta_run(&q, &res, c->why);
	if (r)
		return r;
	r = res.exit_code ? why_set(c->why, -EIO, "thin_delta failed (exit %d): %.*s", res.exit_code,
				    (int)strcspn(res.err, "\n"), res.err)
			  : dmpd_delta_parse(res.out, strlen(res.out), doc, c->why, STSFS_WHY_LEN);
	kmeta_result_free(&res);
	return r;
}

static bool is_snapshot(struct ctx *c)
{
	struct thin_pool *p = thin_ctx_pool(c);
	if (!p)
		return false;
	pthread_mutex_lock(&p->obj.lock);
	struct thin_vol *v = thin_vol_find(p, c->comp[2]);
	bool snap = v && v->origin[0];
	pthread_mutex_unlock(&p->obj.lock);
	thin_pool_put(p);
	return snap;
}

#define RW(n) { .name = #n, .perm = 0644, .show = c_show_##n, .store = c_store_##n }
static const struct file_def vol_files[] = {
	RW(size),
	RW(thin_id),
	RW(origin),
	RW(active),
	{ .name = "status", .perm = 0444, .kv = kv_status },
	{ .name = "delta", .perm = 0444, .kv = kv_delta, .kv_array = true, .visible = is_snapshot },
	{ .name = "error", .perm = 0444, .show = show_error_file },
	{ NULL },
};
#undef RW

/* ---- the volume directory ---- */

static int vol_dm_name(struct ctx *c, char *buf, size_t len)
{
	return thin_vol_dm_name(c->comp[1], c->comp[2], buf, len);
}

/* A volume's errors are kept with its dm object. */
static struct errslot *vol_errslot(struct ctx *c)
{
	char name[THIN_DM_NAME_MAX + 1];
	thin_vol_dm_name(c->comp[1], c->comp[2], name, sizeof(name));
	return dm_owned_errslot(name);
}

static int vol_refuses(struct ctx *c, char *why)
{
	struct thin_pool *p = thin_ctx_pool(c);
	int r = p ? obj_may_change(&p->obj, why) : 0;
	if (p)
		thin_pool_put(p);
	return r;
}

static void forget_vol(struct thin_pool *p, struct thin_vol *v)
{
	/* Snapshots keep their data; they are no longer anyone's snapshot. */
	for (size_t i = 0; i < p->nvols; i++)
		if (strcmp(p->vols[i].origin, v->name) == 0)
			p->vols[i].origin[0] = '\0';
	size_t i = (size_t)(v - p->vols);
	memmove(v, v + 1, (p->nvols - i - 1) * sizeof(*v));
	p->nvols--;
}

static int vol_remove(struct ctx *c)
{
	struct thin_pool *p = thin_ctx_pool(c);
	if (!p)
		return why_set(c->why, -ENOENT, "no thin pool %s", c->comp[1]);
	pthread_mutex_lock(&p->obj.lock);
	struct thin_vol *v = thin_vol_find(p, c->comp[2]);
	int r = obj_may_change(&p->obj, c->why);
	if (!r && !v)
		r = why_set(c->why, -ENOENT, "no volume %s in thin/%s", c->comp[2], p->obj.name);
	r = r ? r : vol_deactivate(p, v, c->why);
	struct ctx pool;
	ctx_up(c, 1, &pool);
	/* Saved first: a daemon killed after the thin is gone shows the
	 * volume as being removed, and rmdir finishes it. */
	if (!r && v->created && v->intent != VOL_INTENT_REMOVE) {
		v->intent = VOL_INTENT_REMOVE;
		if ((r = thin_save(p, c->why)) != 0)
			v->intent = VOL_INTENT_NONE;
	}
	if (!r && v->created && (r = delete_thin(&pool, p, v, c->cancel, c->why)) != 0) {
		v->intent = VOL_INTENT_NONE;
		thin_save(p, NULL);
	}
	char name[THIN_DM_NAME_MAX + 1], owner[OBJ_OWNER_MAX];
	if (!r) {
		vol_dm(p, v, name, sizeof(name));
		vol_owner(p, v->name, owner, sizeof(owner));
		r = dm_owned_remove(name, owner, c->why);
	}
	if (!r) {
		log_msg(L_INFO, "thin/%s/%s: removed%s", p->obj.name, v->name, v->created ? " (its thin deleted)" : "");
		forget_vol(p, v);
		r = thin_save(p, c->why);
	}
	pthread_mutex_unlock(&p->obj.lock);
	thin_pool_put(p);
	return r;
}

/* A volume's name must not hide one of the pool's files. */
static int check_vol_name(const char *name, char *why)
{
	int r = value_check_name(name, THIN_NAME_MAX, why, STSFS_WHY_LEN);
	if (r)
		return r;
	const struct file_def *tables[] = { thin_pool_files, dm_state_files };
	for (size_t t = 0; t < 2; t++) {
		for (const struct file_def *f = tables[t]; f->name; f++) {
			size_t len = strlen(f->name);
			if (strncmp(name, f->name, len) == 0 && (!name[len] || strcmp(name + len, ".json") == 0))
				return why_set(why, -EEXIST, "%s is a file of the pool", name);
		}
	}
	if (strcmp(name, "metadata") == 0)
		return why_set(why, -EEXIST, "metadata is a directory of the pool");
	return 0;
}

static int vol_rename(struct ctx *c, const char *newname)
{
	int r = check_vol_name(newname, c->why);
	struct thin_pool *p = r ? NULL : thin_ctx_pool(c);
	if (!p)
		return r ? r : why_set(c->why, -ENOENT, "no thin pool %s", c->comp[1]);
	pthread_mutex_lock(&p->obj.lock);
	struct thin_vol *v = thin_vol_find(p, c->comp[2]);
	char old_dm[THIN_DM_NAME_MAX + 1], new_dm[THIN_DM_NAME_MAX + 1], owner[OBJ_OWNER_MAX];
	r = obj_may_change(&p->obj, c->why);
	if (!r && !v)
		r = why_set(c->why, -ENOENT, "no volume %s in thin/%s", c->comp[2], p->obj.name);
	if (!r && strcmp(v->name, newname) == 0) {
		pthread_mutex_unlock(&p->obj.lock);
		thin_pool_put(p);
		return 0;
	}
	if (!r && thin_vol_find(p, newname))
		r = why_set(c->why, -EEXIST, "thin/%s/%s exists", p->obj.name, newname);
	if (!r && thin_vol_dm_name(p->obj.name, newname, new_dm, sizeof(new_dm)) != 0)
		r = why_set(c->why, -EINVAL, "%s-%s is longer than a dm name may be (127 bytes)", p->obj.name, newname);
	if (!r) {
		vol_dm(p, v, old_dm, sizeof(old_dm));
		vol_owner(p, newname, owner, sizeof(owner));
		r = dm_owned_rename(old_dm, new_dm, owner, c->why);
	}
	if (!r) {
		char old[sizeof(v->name)];
		snprintf(old, sizeof(old), "%s", v->name);
		snprintf(v->name, sizeof(v->name), "%s", newname);
		for (size_t i = 0; i < p->nvols; i++)
			if (strcmp(p->vols[i].origin, old) == 0)
				snprintf(p->vols[i].origin, sizeof(p->vols[i].origin), "%s", newname);
		r = thin_save(p, c->why);
		if (r) { /* keep the record and the dm object in step */
			vol_owner(p, old, owner, sizeof(owner));
			dm_owned_rename(new_dm, old_dm, owner, NULL);
			snprintf(v->name, sizeof(v->name), "%s", old);
			for (size_t i = 0; i < p->nvols; i++)
				if (strcmp(p->vols[i].origin, newname) == 0)
					snprintf(p->vols[i].origin, sizeof(p->vols[i].origin), "%s", old);
		} else {
			log_msg(L_INFO, "thin/%s/%s: renamed to thin/%s/%s", p->obj.name, old, p->obj.name, newname);
		}
	}
	pthread_mutex_unlock(&p->obj.lock);
	thin_pool_put(p);
	return r;
}

static const struct subdir_def vol_subdirs[] = {
	{ .name = "partitions", .kind = &partitions_kind, .visible = block_active },
	{ NULL },
};

const struct dir_kind thin_vol_kind = {
	.name = "thin volume",
	.files = { vol_files, block_files },
	.subdirs = vol_subdirs,
	.remove = vol_remove,
	.rename = vol_rename,
	.refuses = vol_refuses,
	.errslot = vol_errslot,
	.block = dm_block,
	.dm_name = vol_dm_name,
};

/* ---- the pool's listing of its volumes ---- */

int thin_vol_list(struct ctx *c, int (*emit)(void *arg, const char *name), void *arg)
{
	struct thin_pool *p = thin_ctx_pool(c);
	if (!p)
		return -ENOENT;
	pthread_mutex_lock(&p->obj.lock);
	int r = 0;
	for (size_t i = 0; !r && i < p->nvols; i++)
		r = emit(arg, p->vols[i].name);
	pthread_mutex_unlock(&p->obj.lock);
	thin_pool_put(p);
	return r;
}

const struct dir_kind *thin_vol_child(struct ctx *c, const char *name)
{
	struct thin_pool *p = thin_ctx_pool(c);
	if (!p)
		return NULL;
	pthread_mutex_lock(&p->obj.lock);
	bool found = thin_vol_find(p, name) != NULL;
	pthread_mutex_unlock(&p->obj.lock);
	thin_pool_put(p);
	return found ? &thin_vol_kind : NULL;
}

/* A pool's volumes change only through stsfs. */
bool thin_vol_kept(struct ctx *c, const char *name)
{
	struct thin_pool *p = thin_ctx_pool(c);
	bool kept = p && !p->obj.external;
	if (p)
		thin_pool_put(p);
	return kept;
}

static uint32_t lowest_free_id(const struct thin_pool *p)
{
	for (uint32_t id = 0;; id++) {
		bool used = false;
		for (size_t i = 0; i < p->nvols && !used; i++)
			used = p->vols[i].thin_id == id;
		if (!used)
			return id;
	}
}

static int add_vol(struct thin_pool *p, const char *name, char *why)
{
	char dm[THIN_DM_NAME_MAX + 1], owner[OBJ_OWNER_MAX];
	if (thin_vol_find(p, name))
		return why_set(why, -EEXIST, "thin/%s/%s exists", p->obj.name, name);
	if (thin_vol_dm_name(p->obj.name, name, dm, sizeof(dm)) != 0)
		return why_set(why, -EINVAL, "%s-%s is longer than a dm name may be (127 bytes)", p->obj.name, name);
	struct thin_vol *nv = realloc(p->vols, (p->nvols + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	p->vols = nv;
	struct thin_vol v = { .thin_id = lowest_free_id(p) };
	snprintf(v.name, sizeof(v.name), "%s", name);
	vol_owner(p, name, owner, sizeof(owner));
	/* The dm object takes the device name now, so that dm/ cannot. */
	int r = dm_owned_ensure(dm, owner, why);
	if (r)
		return r;
	p->vols[p->nvols++] = v;
	r = thin_save(p, why);
	if (r) {
		p->nvols--;
		dm_owned_remove(dm, owner, NULL);
	}
	return r;
}

int thin_vol_mkdir(struct ctx *c, const char *name)
{
	int r = check_vol_name(name, c->why);
	struct thin_pool *p = r ? NULL : thin_ctx_pool(c);
	if (!p)
		return r ? r : why_set(c->why, -ENOENT, "no thin pool %s", c->comp[1]);
	pthread_mutex_lock(&p->obj.lock);
	r = p->obj.external ? why_set(c->why, -EPERM, "thin/%s was made elsewhere: its volumes are not stsfs's", p->obj.name)
			    : add_vol(p, name, c->why);
	if (!r)
		log_msg(L_INFO, "thin/%s/%s: created", p->obj.name, name);
	pthread_mutex_unlock(&p->obj.lock);
	thin_pool_put(p);
	return r;
}
