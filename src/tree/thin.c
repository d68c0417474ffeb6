/* thin/: pools made with mkdir (kept until rmdir), and thin-pool devices
 * made elsewhere listed read-only under their dm names. Here: the registry,
 * the saved state and start-up, mkdir/rmdir of pools and the dir kinds; the
 * pool's files are in thin_pool.c, volumes in thin_vol.c (see thin.h). */
#include "thin.h"
#include "dm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stsfs/log.h"
#include "stsfs/state.h"
#include "stsfs/value.h"

#define STATE_KIND "thin"

static int obj_init(struct obj *o);
static void obj_release(struct obj *o);
static struct obj *external_get(const char *name);
static void device_name(const struct obj *o, char *buf, size_t len);
static int list_devices(char ***names, size_t *n);
static int save_obj(struct obj *o, char *why);

static struct registry pools = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.dir_error = ERRSLOT_INIT,
	.obj_size = sizeof(struct thin_pool),
	.init = obj_init,
	.release = obj_release,
	.external = external_get,
	.device_name = device_name,
	.list_devices = list_devices,
	.save = save_obj,
};

/* ---- registry ---- */

void thin_each_pool(void (*cb)(const struct obj *o, void *arg), void *arg)
{
	reg_each(&pools, cb, arg);
}

struct registry *thin_registry(void)
{
	return &pools;
}

static struct thin_pool *pool_of(struct obj *o)
{
	return (struct thin_pool *)o;
}

static int obj_init(struct obj *o)
{
	pool_of(o)->block_size = THIN_BLOCK_MIN;
	return 0;
}

static void obj_release(struct obj *o)
{
	free(pool_of(o)->vols);
}

/* The first table line of a thin-pool device: "META DATA BLOCK LWM [N F...]". */
static bool pool_table(const char *name, uint64_t *length, char *params, size_t len)
{
	struct kdm_target *t = NULL;
	size_t n = 0;
	bool pool = kdm_table(name, &t, &n, NULL) == 0 && n == 1 && strcmp(t[0].type, "thin-pool") == 0;
	if (pool) {
		*length = t[0].length;
		snprintf(params, len, "%s", t[0].params);
	}
	kdm_targets_free(t, n);
	return pool;
}

/* A pool made elsewhere, described from its table for this one request. */
static struct obj *external_get(const char *name)
{
	uint64_t length;
	char params[512];
	if (strlen(name) > THIN_DM_NAME_MAX || !pool_table(name, &length, params, sizeof(params)))
		return NULL;
	struct thin_pool *p = pool_of(reg_new(&pools, name));
	if (!p)
		return NULL;
	p->obj.external = true;
	/* A pool made through dm/ is changed there. */
	if (dm_owned_by(name, ""))
		snprintf(p->obj.owner, sizeof(p->obj.owner), "dm/%s", name);
	p->initialized = true;
	p->data_size = length * 512;
	unsigned long long block = 0, lwm = 0;
	int used = 0;
	if (sscanf(params, "%127s %127s %llu %llu%n", p->metadata_dev, p->data_dev, &block, &lwm, &used) == 4) {
		p->block_size = block * 512;
		p->low_water_mark = lwm;
		char *f = params + used;
		strtoul(f, &f, 10); /* the feature count */
		snprintf(p->features, sizeof(p->features), "%s", f + strspn(f, " "));
	}
	return &p->obj;
}

/* An owned pool's dm device has the pool's name. */
static void device_name(const struct obj *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s", o->name);
}

/* thin-pool devices; dm objects a thin/ pool owns are that pool. */
static int list_devices(char ***names, size_t *n)
{
	char **all = NULL;
	size_t nall = 0, k = 0;
	if (kdm_list(&all, &nall, NULL) != 0) {
		names_free(all, nall);
		all = NULL;
		nall = 0;
	}
	for (size_t i = 0; i < nall; i++) {
		uint64_t length;
		char params[512];
		if (pool_table(all[i], &length, params, sizeof(params)))
			all[k++] = all[i];
		else
			free(all[i]);
	}
	*names = all;
	*n = k;
	return 0;
}

struct thin_pool *thin_ctx_pool(struct ctx *c)
{
	return c->depth >= 2 ? pool_of(reg_get(&pools, c->comp[1])) : NULL;
}

void thin_pool_put(struct thin_pool *p)
{
	reg_put(&pools, &p->obj);
}

void thin_owner(const struct thin_pool *p, char *buf, size_t len)
{
	snprintf(buf, len, "thin/%s", p->obj.name);
}

void thin_loop_name(const struct thin_pool *p, const char *what, char *buf, size_t len)
{
	snprintf(buf, len, "%s_%s", p->obj.name, what);
}

int thin_vol_dm_name(const char *pool, const char *vol, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s-%s", pool, vol) >= len || strlen(buf) > THIN_DM_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

bool thin_pool_active(const struct thin_pool *p)
{
	struct kdm_info info;
	return kdm_info(p->obj.name, &info, NULL) == 0 && info.exists;
}

int thin_not_active(const struct thin_pool *p, char *why)
{
	return why_set(why, -ENODEV, "thin/%s is not active (echo 1 > thin/%s/active first)", p->obj.name, p->obj.name);
}

/* ---- state ---- */

static int add_vol(struct kv_block *b, const struct thin_vol *v)
{
	char key[THIN_NAME_MAX + 8];
	snprintf(key, sizeof(key), "vol.%s", v->name);
	char *val = NULL;
	/* The third field: 1 created, plus the intent times 2 (older records
	 * have 0 or 1 there). */
	if (asprintf(&val, "%" PRIu64 " %" PRIu32 " %d %s", v->size, v->thin_id, v->created | v->intent << 1, v->origin) < 0)
		return -ENOMEM;
	int r = kv_add_str(b, key, val);
	free(val);
	return r;
}

int thin_save(struct thin_pool *p, char *why)
{
	if (p->obj.external)
		return 0;
	struct kv_block b = { 0 };
	int r = kv_add_u64(&b, "data_size", p->data_size);
	r = r ? r : kv_add_str(&b, "data_dev", p->data_dev);
	r = r ? r : kv_add_u64(&b, "metadata_size", p->metadata_size);
	r = r ? r : kv_add_str(&b, "metadata_dev", p->metadata_dev);
	r = r ? r : kv_add_u64(&b, "block_size", p->block_size);
	r = r ? r : kv_add_u64(&b, "low_water_mark", p->low_water_mark);
	r = r ? r : kv_add_str(&b, "features", p->features);
	r = r ? r : kv_add_bool(&b, "initialized", p->initialized);
	r = r ? r : reg_save_owner(&p->obj, &b);
	for (size_t i = 0; !r && i < p->nvols; i++)
		r = add_vol(&b, &p->vols[i]);
	r = r ? r : state_save(STATE_KIND, p->obj.name, &b, why);
	kv_block_free(&b);
	return r;
}

static const char *kv_text(const struct kv_block *b, const char *key)
{
	const struct kv *e = kv_get(b, key);
	return e && e->str ? e->str : "";
}

static uint64_t kv_num(const struct kv_block *b, const char *key)
{
	return strtoull(kv_text(b, key), NULL, 10);
}

static int load_vol(struct thin_pool *p, const char *name, const char *val)
{
	struct thin_vol v = { 0 };
	unsigned long long size;
	unsigned id;
	int created, used = 0;
	if (value_check_name(name, THIN_NAME_MAX, NULL, 0) != 0 ||
	    sscanf(val, "%llu %u %d %n", &size, &id, &created, &used) != 3)
		return 0; /* a damaged line: that volume is dropped, the pool kept */
	snprintf(v.name, sizeof(v.name), "%s", name);
	snprintf(v.origin, sizeof(v.origin), "%s", val + used);
	v.size = size;
	v.thin_id = id;
	v.created = created & 1;
	v.intent = (uint8_t)(created >> 1);
	struct thin_vol *nv = realloc(p->vols, (p->nvols + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	p->vols = nv;
	p->vols[p->nvols++] = v;
	return 0;
}

static int load_fields(struct obj *o, const struct kv_block *b)
{
	struct thin_pool *p = pool_of(o);
	p->data_size = kv_num(b, "data_size");
	p->metadata_size = kv_num(b, "metadata_size");
	p->block_size = kv_num(b, "block_size") ? kv_num(b, "block_size") : THIN_BLOCK_MIN;
	p->low_water_mark = kv_num(b, "low_water_mark");
	snprintf(p->data_dev, sizeof(p->data_dev), "%s", kv_text(b, "data_dev"));
	snprintf(p->metadata_dev, sizeof(p->metadata_dev), "%s", kv_text(b, "metadata_dev"));
	snprintf(p->features, sizeof(p->features), "%s", kv_text(b, "features"));
	p->initialized = strcmp(kv_text(b, "initialized"), "1") == 0;
	int r = 0;
	for (size_t i = 0; !r && i < b->n; i++)
		if (strncmp(b->v[i].key, "vol.", 4) == 0 && b->v[i].str)
			r = load_vol(p, b->v[i].key + 4, b->v[i].str);
	return r;
}

/* "thin/POOL" or "thin/POOL/VOL" names a pool or volume that exists. */
static bool owner_alive(const char *owner)
{
	if (strncmp(owner, "thin/", 5) != 0)
		return true;
	char pool[THIN_NAME_MAX + 1];
	const char *vol = strchr(owner + 5, '/');
	snprintf(pool, sizeof(pool), "%.*s", vol ? (int)(vol - owner - 5) : (int)strlen(owner + 5), owner + 5);
	struct thin_pool *p = pool_of(reg_get_owned(&pools, pool));
	bool alive = p && (!vol || thin_vol_find(p, vol + 1));
	if (p)
		thin_pool_put(p);
	return alive;
}

struct vol_orphans {
	char (*names)[OBJ_NAME_MAX + 1];
	char (*owners)[OBJ_OWNER_MAX];
	size_t n, cap;
};

/* dm objects owned by "thin/POOL/VOL" of a pool that lists no VOL. */
static void find_vol_orphan(const struct obj *o, void *arg)
{
	struct vol_orphans *v = arg;
	const char *slash = strncmp(o->owner, "thin/", 5) == 0 ? strchr(o->owner + 5, '/') : NULL;
	if (!slash || owner_alive(o->owner))
		return;
	char pool[OBJ_NAME_MAX + 1];
	snprintf(pool, sizeof(pool), "%.*s", (int)(slash - o->owner - 5), o->owner + 5);
	if (!reg_owns(&pools, pool))
		return;
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 8;
		void *a = realloc(v->names, cap * sizeof(*v->names)), *b = a ? realloc(v->owners, cap * sizeof(*v->owners)) : NULL;
		if (a)
			v->names = a;
		if (!b)
			return;
		v->owners = b;
		v->cap = cap;
	}
	snprintf(v->names[v->n], sizeof(v->names[0]), "%s", o->name);
	snprintf(v->owners[v->n++], sizeof(v->owners[0]), "%s", o->owner);
}

/* The volume of p that has no dm object, when exactly one has none. */
static const struct thin_vol *vol_without_dm(const struct thin_pool *p, char *dm, size_t len)
{
	const struct thin_vol *found = NULL;
	for (size_t i = 0; i < p->nvols; i++) {
		char name[THIN_DM_NAME_MAX + 1];
		if (thin_vol_dm_name(p->obj.name, p->vols[i].name, name, sizeof(name)) == 0 && !reg_owns(&dm_registry, name)) {
			if (found)
				return NULL;
			found = &p->vols[i];
			snprintf(dm, len, "%s", name);
		}
	}
	return found;
}

/* A volume's dm object is made (mkdir) or renamed (mv) before the pool's
 * record says so. A daemon killed in between leaves a dm object its pool
 * does not list: after a rename, the one volume without its dm object gets
 * it back (the rename undone); after a mkdir (no such volume) it goes, so
 * that the name is free again. */
static void settle_vol_orphans(void)
{
	struct vol_orphans v = { 0 };
	reg_each(&dm_registry, find_vol_orphan, &v);
	for (size_t i = 0; i < v.n; i++) {
		const char *slash = strchr(v.owners[i] + 5, '/');
		char pool[OBJ_NAME_MAX + 1], dm[THIN_DM_NAME_MAX + 1], owner[OBJ_OWNER_MAX];
		snprintf(pool, sizeof(pool), "%.*s", (int)(slash - v.owners[i] - 5), v.owners[i] + 5);
		struct thin_pool *p = pool_of(reg_get_owned(&pools, pool));
		const struct thin_vol *vol = p ? vol_without_dm(p, dm, sizeof(dm)) : NULL;
		if (vol) {
			snprintf(owner, sizeof(owner), "thin/%s/%s", pool, vol->name);
			if (dm_owned_rename(v.names[i], dm, owner, NULL) == 0)
				log_msg(L_INFO, "thin/%s/%s: its dm object %s renamed back (a rename the last worker was stopped in)",
					pool, vol->name, v.names[i]);
		} else if (p && dm_owned_remove(v.names[i], v.owners[i], NULL) == 0) {
			log_msg(L_INFO, "dm/%s: removed (made for %s, which a stopped mkdir never saved)", v.names[i], v.owners[i]);
		}
		if (p)
			thin_pool_put(p);
	}
	free(v.names);
	free(v.owners);
}

/* Whether a pool or volume is active is never saved: its dm device says. */
int thin_startup(char *why)
{
	int r = reg_load(&pools, STATE_KIND, THIN_POOL_NAME_MAX, load_fields, why);
	if (!r) {
		settle_vol_orphans();
		loop_owned_release_orphans(owner_alive);
		dm_owned_release_orphans(owner_alive);
	}
	/* Start-up is single-threaded: nothing else walks the list yet. */
	for (struct obj *o = pools.owned; !r && o; o = o->next) {
		struct thin_pool *p = pool_of(o);
		if (!thin_pool_active(p)) {
			log_msg(L_DEBUG, "thin/%s: loaded, inactive", o->name);
			continue;
		}
		log_msg(L_INFO, "thin/%s: adopted /dev/mapper/%s", o->name, o->name);
		for (size_t i = 0; i < p->nvols; i++) {
			char dm[THIN_DM_NAME_MAX + 1];
			struct kdm_info info;
			if (thin_vol_dm_name(o->name, p->vols[i].name, dm, sizeof(dm)) == 0 &&
			    kdm_info(dm, &info, NULL) == 0 && info.exists)
				log_msg(L_INFO, "thin/%s/%s: adopted /dev/mapper/%s", o->name, p->vols[i].name, dm);
		}
	}
	return r;
}

/* ---- the pool directory ---- */

static int pool_dm_name(struct ctx *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s", c->comp[1]);
	return 0;
}

static int pool_refuses(struct ctx *c, char *why)
{
	return reg_refuses(&pools, c->comp[1], why);
}

static struct errslot *pool_errslot(struct ctx *c)
{
	return reg_errslot(&pools, c->comp[1], c->comp[1]);
}

/* Tools on an inactive pool read its metadata device: attach the pool's own
 * loops when a restart or reboot left them detached. */
static int pool_meta_source(struct ctx *c, struct meta_source *m, bool locate, char *why)
{
	struct thin_pool *p = thin_ctx_pool(c);
	if (p && locate && !p->obj.external) {
		pthread_mutex_lock(&p->obj.lock);
		char name[OBJ_NAME_MAX + 1];
		const char *what[] = { "tmeta", "tdata" };
		for (int i = 0; i < 2; i++) {
			dev_t dev;
			bool made;
			thin_loop_name(p, what[i], name, sizeof(name));
			if (p->initialized && !(i ? p->data_dev : p->metadata_dev)[0])
				loop_owned_activate(name, &dev, &made, NULL);
		}
		pthread_mutex_unlock(&p->obj.lock);
	}
	if (p)
		thin_pool_put(p);
	return dm_meta_source(c, m, locate, why);
}

static int pool_remove(struct ctx *c)
{
	struct thin_pool *p = thin_ctx_pool(c);
	if (!p)
		return why_set(c->why, -ENOENT, "no thin pool %s", c->comp[1]);
	pthread_mutex_lock(&p->obj.lock);
	int r = obj_may_change(&p->obj, c->why);
	if (!r && p->nvols)
		r = why_set(c->why, -EBUSY, "thin/%s has %zu volume%s (%s%s): rmdir them first", p->obj.name, p->nvols,
			    p->nvols > 1 ? "s" : "", p->vols[0].name, p->nvols > 1 ? ", ..." : "");
	if (!r && p->obj.external)
		r = kdm_remove(p->obj.name, c->why);
	else if (!r)
		r = thin_pool_deactivate(p, c->why);
	char owner[OBJ_OWNER_MAX], name[OBJ_NAME_MAX + 1];
	thin_owner(p, owner, sizeof(owner));
	if (!r && !p->obj.external)
		r = dm_owned_remove(p->obj.name, owner, c->why);
	thin_loop_name(p, "tdata", name, sizeof(name));
	if (!r && !p->obj.external)
		r = loop_owned_remove(name, owner, c->why);
	thin_loop_name(p, "tmeta", name, sizeof(name));
	if (!r && !p->obj.external)
		r = loop_owned_remove(name, owner, c->why);
	if (!r)
		log_msg(L_INFO, "thin/%s: removed%s", p->obj.name, p->obj.external ? " (stsfs did not make it)" : "");
	if (!r && !p->obj.external) {
		state_delete(STATE_KIND, p->obj.name);
		reg_forget(&pools, &p->obj);
	}
	pthread_mutex_unlock(&p->obj.lock);
	thin_pool_put(p);
	return r;
}

static const struct subdir_def pool_subdirs[] = {
	{ .name = "metadata", .kind = &metadata_kind, .visible = has_metadata },
	{ NULL },
};

static const struct dir_kind pool_kind = {
	.name = "thin pool",
	.files = { thin_pool_files, dm_state_files },
	.subdirs = pool_subdirs,
	.list = thin_vol_list,
	.child = thin_vol_child,
	.kept = thin_vol_kept,
	.mkdir = thin_vol_mkdir,
	.remove = pool_remove,
	.refuses = pool_refuses,
	.errslot = pool_errslot,
	.event_nr = dm_event_nr,
	.event_wait = dm_event_wait,
	.meta_source = pool_meta_source,
	.meta_line = dm_meta_line,
	.dm_name = pool_dm_name,
};

/* ---- thin/ itself ---- */

static int dir_list(struct ctx *c, int (*emit)(void *arg, const char *name), void *arg)
{
	return reg_list(&pools, emit, arg);
}

static const struct dir_kind *dir_child(struct ctx *c, const char *name)
{
	return reg_exists(&pools, name) ? &pool_kind : NULL;
}

/* The pool's dm object takes its name now, so that dm/ cannot take it. */
static int admit_locked(struct obj *o, char *why)
{
	struct kdm_info info;
	if (reg_find_locked(&pools, o->name))
		return why_set(why, -EEXIST, "thin/%s exists", o->name);
	if (kdm_info(o->name, &info, NULL) == 0 && info.exists)
		return why_set(why, -EEXIST, "a dm device called %s exists", o->name);
	return thin_save(pool_of(o), why);
}

static bool dir_kept(struct ctx *c, const char *name)
{
	return reg_owns(&pools, name);
}

static int dir_mkdir(struct ctx *c, const char *name)
{
	int r = value_check_name(name, THIN_POOL_NAME_MAX, c->why, sizeof(c->why));
	r = r ? r : reg_mkdir(&pools, name, NULL, admit_locked, c->why);
	if (r)
		return r;
	char owner[OBJ_OWNER_MAX];
	snprintf(owner, sizeof(owner), "thin/%s", name);
	r = dm_owned_ensure(name, owner, c->why);
	if (r) { /* someone took the dm name meanwhile */
		struct thin_pool *p = pool_of(reg_get_owned(&pools, name));
		if (p) {
			pthread_mutex_lock(&p->obj.lock);
			state_delete(STATE_KIND, name);
			reg_forget(&pools, &p->obj);
			pthread_mutex_unlock(&p->obj.lock);
			thin_pool_put(p);
		}
	} else {
		log_msg(L_INFO, "thin/%s: created", name);
	}
	return r;
}

static struct errslot *dir_errslot(struct ctx *c)
{
	return &pools.dir_error;
}

const struct dir_kind thin_dir_kind = {
	.name = "thin",
	.files = { reg_dir_files },
	.list = dir_list,
	.child = dir_child,
	.kept = dir_kept,
	.mkdir = dir_mkdir,
	.errslot = dir_errslot,
};

static int save_obj(struct obj *o, char *why)
{
	return thin_save((struct thin_pool *)o, why);
}
