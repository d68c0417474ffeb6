/* The files of thin/POOL: its configuration (data and metadata devices or
 * image sizes, block size, low-water mark, features), active, and the
 * pool messages that change its thins with the transaction id kept right. */
#include "thin.h"
#include "stsfs/tenancy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "stsfs/dm_parse.h"
#include "stsfs/log.h"
#include "stsfs/value.h"

/* thin_metadata_size rounds to this; the kernel reads metadata in 4 KiB blocks. */
#define META_BLOCK 4096
/* LVM's smallest pool metadata; the kernel's largest (it ignores the rest). */
#define META_MIN (2ull << 20)
#define META_MAX (16ull << 30)

static const char *const known_features[] = {
	"skip_block_zeroing", "ignore_discard", "no_discard_passdown", "read_only", "error_if_no_space", NULL,
};

/* ---- locking and reasons ---- */

typedef int (*pool_store_fn)(struct thin_pool *p, const char *value, struct ctx *c);
typedef int (*pool_show_fn)(struct thin_pool *p, char **out, struct ctx *c);

static int with_store(struct ctx *c, const char *value, pool_store_fn fn)
{
	struct thin_pool *p = thin_ctx_pool(c);
	if (!p)
		return why_set(c->why, -ENOENT, "no thin pool %s", c->comp[1]);
	pthread_mutex_lock(&p->obj.lock);
	int r = obj_may_change(&p->obj, c->why);
	r = r ? r : fn(p, value, c);
	pthread_mutex_unlock(&p->obj.lock);
	thin_pool_put(p);
	return r;
}

static int with_show(struct ctx *c, char **out, pool_show_fn fn)
{
	struct thin_pool *p = thin_ctx_pool(c);
	if (!p)
		return -ENOENT;
	pthread_mutex_lock(&p->obj.lock);
	int r = fn(p, out, c);
	pthread_mutex_unlock(&p->obj.lock);
	thin_pool_put(p);
	return r;
}

static int frozen(const struct thin_pool *p, const char *attr, char *why)
{
	return why_set(why, -EBUSY, "%s cannot change while thin/%s is active (echo 0 > active first)", attr, p->obj.name);
}

/* What the kernel formatted the metadata for stays: the devices and the
 * block size. */
static int fixed(const struct thin_pool *p, const char *attr, char *why)
{
	if (thin_pool_active(p))
		return frozen(p, attr, why);
	if (p->initialized)
		return why_set(why, -EBUSY, "%s is fixed once thin/%s's metadata is formatted (make a new pool to change it)",
			       attr, p->obj.name);
	return 0;
}

static int show_u64(char **out, uint64_t v)
{
	return show_text(out, "%" PRIu64 "\n", v);
}

/* ---- sizes and devices ---- */

static int ref_size(const char *ref, uint64_t *bytes, char *why)
{
	dev_t dev;
	int r = dm_resolve_ref(ref, &dev, why);
	if (!r && (r = kblk_size(dev, bytes)) != 0)
		r = why_set(why, r, "%s: cannot read its size", ref);
	return r;
}

static int data_bytes(const struct thin_pool *p, uint64_t *bytes, char *why)
{
	*bytes = p->data_size;
	return p->data_dev[0] && !p->obj.external ? ref_size(p->data_dev, bytes, why) : 0;
}

/* A pool made elsewhere names its devices as MAJ:MIN. */
static int majmin_size(const char *ref, uint64_t *bytes)
{
	unsigned ma, mi;
	*bytes = 0;
	return sscanf(ref, "%u:%u", &ma, &mi) == 2 ? kblk_size(makedev(ma, mi), bytes) : 0;
}

/* The live table's devices, as the kernel shows them (MAJ:MIN). */
static bool live_devs(const struct thin_pool *p, char meta[32], char data[32])
{
	struct kdm_target *t = NULL;
	size_t n = 0;
	bool ok = kdm_table(p->obj.name, &t, &n, NULL) == 0 && n == 1 &&
		  sscanf(t[0].params, "%31s %31s", meta, data) == 2;
	kdm_targets_free(t, n);
	return ok;
}

/* thin_metadata_size's answer for the pool's geometry; 0 before a data size
 * is known. */
static int tool_metadata_size(const struct thin_pool *p, struct cancel *cancel, uint64_t *bytes, char *why)
{
	uint64_t data;
	*bytes = 0;
	int r = data_bytes(p, &data, why);
	if (r || data < p->block_size)
		return r;
	struct kmeta_result res;
	r = kmeta_size(KMETA_THIN, p->block_size / 512, data / 512, KMETA_THIN_MAX_THINS, cancel, &res, bytes, why);
	if (!r && res.exit_code)
		r = why_set(why, -EIO, "thin_metadata_size failed (exit %d): %.*s", res.exit_code,
			    (int)strcspn(res.err ? res.err : "", "\n"), res.err ? res.err : "");
	kmeta_result_free(&res);
	return r;
}

/* The metadata image to make: as set, else the tool's answer (rounded up to
 * whole blocks, at least META_MIN). */
static int metadata_bytes(const struct thin_pool *p, struct cancel *cancel, uint64_t *bytes, char *why)
{
	if (p->metadata_size) {
		*bytes = p->metadata_size;
		return 0;
	}
	int r = tool_metadata_size(p, cancel, bytes, why);
	*bytes = (*bytes + META_BLOCK - 1) / META_BLOCK * META_BLOCK;
	if (*bytes && *bytes < META_MIN)
		*bytes = META_MIN;
	return r;
}

static void dev_ref(const struct thin_pool *p, bool data, char *buf, size_t len)
{
	const char *set = data ? p->data_dev : p->metadata_dev;
	if (set[0])
		snprintf(buf, len, "%s", set);
	else
		snprintf(buf, len, "loop/%s_%s", p->obj.name, data ? "tdata" : "tmeta");
}

static int count_words(const char *s)
{
	int n = 0;
	for (s += strspn(s, " "); *s; s += strspn(s, " "), n++)
		s += strcspn(s, " ");
	return n;
}

/* `0 LENGTH thin-pool META DATA BLOCK LWM [N FEATURES]`, devices as
 * references; the length is whole blocks of the data device. */
static int table_text(const struct thin_pool *p, uint64_t data, char **out, char *why)
{
	uint64_t block = p->block_size / 512, len = data / 512 / block * block;
	if (!len)
		return why_set(why, -EINVAL, "the data device (%" PRIu64 " bytes) is smaller than one block (%" PRIu64 ")",
			       data, p->block_size);
	char meta[THIN_REF_MAX + 16], dat[THIN_REF_MAX + 16], feat[THIN_FEATURES_MAX + 16] = "";
	dev_ref(p, false, meta, sizeof(meta));
	dev_ref(p, true, dat, sizeof(dat));
	int n = count_words(p->features);
	if (n)
		snprintf(feat, sizeof(feat), " %d %s", n, p->features);
	return show_text(out, "0 %" PRIu64 " thin-pool %s %s %" PRIu64 " %" PRIu64 "%s\n", len, meta, dat, block,
			 p->low_water_mark, feat);
}

/* A live pool takes a new table (growth, low-water mark) by reload. */
static int reload(const struct thin_pool *p, char *why)
{
	uint64_t data;
	char *table = NULL;
	int r = data_bytes(p, &data, why);
	r = r ? r : table_text(p, data, &table, why);
	r = r ? r : dm_owned_set_table(p->obj.name, table, why);
	free(table);
	return r;
}

/* ---- activation ---- */

/* Fresh metadata is a zeroed superblock block: the kernel formats it. A
 * device that already holds a pool's metadata keeps it. */
static int format_if_fresh(dev_t dev, char *why)
{
	char kname[64], path[64];
	dm_kernel_name(dev, kname, sizeof(kname));
	int r = kblk_devpath(dev, kname, path, sizeof(path));
	if (r)
		return why_set(why, r, "no device node for the metadata device %u:%u", major(dev), minor(dev));
	bool present = false;
	r = kthin_has_superblock(path, &present, why);
	if (r || present)
		return r;
	/* Something else (a file system, a partition table) is not fresh. */
	struct kv_block b = { 0 };
	if (kblk_probe(path, 0, 0, &b, NULL) == 0) {
		const struct kv *t = kv_get(&b, "TYPE");
		if (!t || !t->str)
			t = kv_get(&b, "PTTYPE");
		if (t && t->str)
			r = why_set(why, -EINVAL, "the metadata device %s holds %s, not a thin pool's metadata: stsfs formats "
				    "only empty devices (wipe it first)", path, t->str);
	}
	kv_block_free(&b);
	return r ? r : kthin_wipe_superblock(path, why);
}

static int attach_loop(const struct thin_pool *p, const char *what, uint64_t size, dev_t *dev, char *why)
{
	char owner[OBJ_OWNER_MAX], name[OBJ_NAME_MAX + 1];
	bool made;
	thin_owner(p, owner, sizeof(owner));
	thin_loop_name(p, what, name, sizeof(name));
	int r = loop_owned_ensure(name, owner, size, why);
	return r ? r : loop_owned_activate(name, dev, &made, why);
}

static int prepare_data(struct thin_pool *p, uint64_t *bytes, char *why)
{
	dev_t dev;
	if (p->data_dev[0])
		return data_bytes(p, bytes, why);
	if (!p->data_size)
		return why_set(why, -EINVAL, "set data_size (the size of a data image) or data_dev first");
	*bytes = p->data_size;
	return attach_loop(p, "tdata", p->data_size, &dev, why);
}

/* The default size is fixed at the first activation: metadata_size then
 * reads what the image has. */
static int prepare_metadata(struct thin_pool *p, struct cancel *cancel, dev_t *dev, char *why)
{
	if (p->metadata_dev[0])
		return dm_resolve_ref(p->metadata_dev, dev, why);
	uint64_t size;
	int r = metadata_bytes(p, cancel, &size, why);
	r = r ? r : attach_loop(p, "tmeta", size, dev, why);
	if (!r)
		p->metadata_size = size;
	return r;
}

/* A failed activation detaches the loops it attached. */
static void detach_new_loops(const struct thin_pool *p, const bool was_active[2])
{
	const char *what[] = { "tdata", "tmeta" };
	for (int i = 0; i < 2; i++) {
		char name[OBJ_NAME_MAX + 1];
		thin_loop_name(p, what[i], name, sizeof(name));
		if (!was_active[i])
			loop_owned_detach(name, NULL);
	}
}

int thin_pool_activate(struct thin_pool *p, struct cancel *cancel, char *why)
{
	int r = kdm_available(why);
	if (r || thin_pool_active(p))
		return r;
	uint64_t data, meta_size = p->metadata_size;
	dev_t meta;
	char owner[OBJ_OWNER_MAX], *table = NULL, name[OBJ_NAME_MAX + 1];
	thin_owner(p, owner, sizeof(owner));
	bool was_active[2];
	thin_loop_name(p, "tdata", name, sizeof(name));
	was_active[0] = loop_owned_active(name);
	thin_loop_name(p, "tmeta", name, sizeof(name));
	was_active[1] = loop_owned_active(name);
	r = prepare_data(p, &data, why);
	r = r ? r : prepare_metadata(p, cancel, &meta, why);
	r = r || p->initialized ? r : format_if_fresh(meta, why);
	r = r ? r : table_text(p, data, &table, why);
	r = r ? r : dm_owned_ensure(p->obj.name, owner, why);
	r = r ? r : dm_owned_set_table(p->obj.name, table, why);
	r = r ? r : dm_owned_set_active(p->obj.name, true, why);
	free(table);
	if (r) {
		p->metadata_size = meta_size;
		detach_new_loops(p, was_active);
		return r;
	}
	if (!p->initialized || p->metadata_size != meta_size) {
		p->initialized = true;
		r = thin_save(p, why);
	}
	char size[32];
	if (!r)
		log_msg(L_INFO, "thin/%s: activated as /dev/mapper/%s (data %s)", p->obj.name, p->obj.name,
			log_bytes(data, size));
	return r;
}

/* Volumes first: the pool cannot go while they use it. The loops stay, so
 * that metadata/ can work on the inactive pool. */
int thin_pool_deactivate(struct thin_pool *p, char *why)
{
	struct kdm_info info;
	if (kdm_info(p->obj.name, &info, NULL) != 0 || !info.exists)
		return 0;
	/* Each live volume holds the pool open; anything more is a user. */
	size_t live = 0;
	for (size_t i = 0; i < p->nvols; i++) {
		char name[THIN_DM_NAME_MAX + 1];
		struct kdm_info vi;
		thin_vol_dm_name(p->obj.name, p->vols[i].name, name, sizeof(name));
		live += kdm_info(name, &vi, NULL) == 0 && vi.exists;
	}
	if ((size_t)info.open_count > live)
		return why_set(why, -EBUSY, "thin/%s's device is open by something besides its volumes", p->obj.name);
	int r = thin_vols_deactivate(p, why);
	r = r ? r : dm_owned_set_active(p->obj.name, false, why);
	if (!r)
		log_msg(L_INFO, "thin/%s: deactivated", p->obj.name);
	return r;
}

/* ---- changes of the pool's thins ---- */

static int transaction_id(const struct thin_pool *p, uint64_t *t, char *why)
{
	struct kdm_target *tg = NULL;
	size_t n = 0;
	struct kv_block b = { 0 };
	int r = kdm_status(p->obj.name, &tg, &n, why);
	const struct kv *e = NULL;
	if (!r && n == 1 && dm_status_parse(tg[0].type, tg[0].params, &b, NULL, 0) == 0)
		e = kv_get(&b, "transaction_id");
	if (e && e->type == KV_U64)
		*t = e->u;
	else if (!r)
		r = why_set(why, -EIO, "thin/%s reports no transaction id (status: %s): see its status", p->obj.name,
			    n ? tg[0].params : "none");
	kv_block_free(&b);
	kdm_targets_free(tg, n);
	return r;
}

static int set_transaction(const struct thin_pool *p, uint64_t from, uint64_t to, char *why)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "set_transaction_id %" PRIu64 " %" PRIu64, from, to);
	return dm_owned_message(p->obj.name, msg, NULL, why);
}

/* The id moves first, so that a thin records the transaction that made it;
 * a refused change moves it back. */
int thin_pool_change(struct thin_pool *p, const char *msg, char *why)
{
	uint64_t t = 0;
	char reason[STSFS_WHY_LEN] = "";
	int r = transaction_id(p, &t, reason);
	r = r ? r : set_transaction(p, t, t + 1, reason);
	if (!r && (r = dm_owned_message(p->obj.name, msg, NULL, reason)) != 0)
		set_transaction(p, t + 1, t, NULL);
	/* Name the change: the refusal may be the transaction id's message. */
	return r ? why_set(why, r, "%s: %s", msg, reason) : 0;
}

/* ---- the files ---- */

static int show_data_size(struct thin_pool *p, char **out, struct ctx *c)
{
	uint64_t bytes;
	int r = data_bytes(p, &bytes, c->why);
	return r ? r : show_u64(out, bytes);
}

static int store_data_size(struct thin_pool *p, const char *value, struct ctx *c)
{
	uint64_t size;
	int r = value_parse_size(value, &size, c->why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (p->data_dev[0])
		return why_set(c->why, -EINVAL, "data_size follows data_dev %s (write an empty data_dev to use an image)",
			       p->data_dev);
	if (size < p->block_size || size % 512)
		return why_set(c->why, -EINVAL, "data_size must be a multiple of 512 bytes and at least one block (%" PRIu64 ")",
			       p->block_size);
	if (size < p->data_size && p->initialized)
		return why_set(c->why, -EINVAL, "shrinking thin/%s (%" PRIu64 " to %" PRIu64 " bytes) is refused",
			       p->obj.name, p->data_size, size);
	if ((r = tenant_quota_bytes(p->obj.name, p->data_size, size, c->why)) != 0)
		return r;
	uint64_t old = p->data_size;
	p->data_size = size;
	bool live = thin_pool_active(p) && size != old;
	if (live) {
		char name[OBJ_NAME_MAX + 1];
		thin_loop_name(p, "tdata", name, sizeof(name));
		r = loop_owned_grow(name, size, c->why);
		r = r ? r : reload(p, c->why);
	}
	r = r ? r : thin_save(p, c->why);
	char from[32], to[32];
	if (r)
		p->data_size = old;
	else if (live)
		log_msg(L_INFO, "thin/%s: data resized from %s to %s", p->obj.name, log_bytes(old, from), log_bytes(size, to));
	return r;
}

static int store_dev(struct thin_pool *p, const char *value, char *field, size_t len, const char *attr, char *why)
{
	dev_t dev;
	int r = fixed(p, attr, why);
	if (r)
		return r;
	if (strlen(value) >= len || strpbrk(value, " \t"))
		return why_set(why, -EINVAL, "%s takes one device reference (MAJ:MIN, /dev/..., loop/NAME, dm/NAME)", attr);
	if (value[0] && (r = dm_resolve_ref(value, &dev, why)) != 0)
		return r;
	char old[THIN_REF_MAX];
	snprintf(old, sizeof(old), "%s", field);
	snprintf(field, len, "%s", value);
	r = thin_save(p, why);
	if (r)
		snprintf(field, len, "%s", old);
	return r;
}

/* While active: the device the kernel uses, as MAJ:MIN. */
static int show_data_dev(struct thin_pool *p, char **out, struct ctx *c)
{
	char meta[32], data[32];
	if (p->data_dev[0] && live_devs(p, meta, data))
		return show_text(out, "%s\n", data);
	return show_text(out, "%s%s", p->data_dev, p->data_dev[0] ? "\n" : "");
}

static int store_data_dev(struct thin_pool *p, const char *value, struct ctx *c)
{
	return store_dev(p, value, p->data_dev, sizeof(p->data_dev), "data_dev", c->why);
}

static int show_metadata_dev(struct thin_pool *p, char **out, struct ctx *c)
{
	char meta[32], data[32];
	if (p->metadata_dev[0] && live_devs(p, meta, data))
		return show_text(out, "%s\n", meta);
	return show_text(out, "%s%s", p->metadata_dev, p->metadata_dev[0] ? "\n" : "");
}

static int store_metadata_dev(struct thin_pool *p, const char *value, struct ctx *c)
{
	return store_dev(p, value, p->metadata_dev, sizeof(p->metadata_dev), "metadata_dev", c->why);
}

static int show_metadata_size(struct thin_pool *p, char **out, struct ctx *c)
{
	uint64_t bytes = 0;
	int r;
	if (p->obj.external)
		r = majmin_size(p->metadata_dev, &bytes);
	else if (p->metadata_dev[0])
		r = ref_size(p->metadata_dev, &bytes, c->why);
	else
		r = metadata_bytes(p, c->cancel, &bytes, c->why);
	return r ? r : show_u64(out, bytes);
}

static int store_metadata_size(struct thin_pool *p, const char *value, struct ctx *c)
{
	uint64_t size;
	int r = fixed(p, "metadata_size", c->why);
	r = r ? r : value_parse_size(value, &size, c->why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (p->metadata_dev[0])
		return why_set(c->why, -EINVAL, "metadata_size follows metadata_dev %s", p->metadata_dev);
	if (size && (size < META_MIN || size > META_MAX || size % META_BLOCK))
		return why_set(c->why, -EINVAL, "metadata_size must be a multiple of 4K from 2M to 16G (0: thin_metadata_size's answer)");
	uint64_t old = p->metadata_size;
	p->metadata_size = size;
	r = thin_save(p, c->why);
	if (r)
		p->metadata_size = old;
	return r;
}

static int show_block_size(struct thin_pool *p, char **out, struct ctx *c)
{
	return show_u64(out, p->block_size);
}

static int store_block_size(struct thin_pool *p, const char *value, struct ctx *c)
{
	uint64_t size;
	int r = fixed(p, "block_size", c->why);
	r = r ? r : value_parse_size(value, &size, c->why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (size < THIN_BLOCK_MIN || size > THIN_BLOCK_MAX || size % THIN_BLOCK_MIN)
		return why_set(c->why, -EINVAL, "block_size must be a multiple of 64K from 64K to 1G, not %" PRIu64, size);
	uint64_t old = p->block_size;
	p->block_size = size;
	r = thin_save(p, c->why);
	if (r)
		p->block_size = old;
	return r;
}

static int show_low_water_mark(struct thin_pool *p, char **out, struct ctx *c)
{
	return show_u64(out, p->low_water_mark);
}

static int store_low_water_mark(struct thin_pool *p, const char *value, struct ctx *c)
{
	uint64_t v;
	int r = value_parse_u64(value, &v, c->why, STSFS_WHY_LEN);
	if (r)
		return r;
	uint64_t old = p->low_water_mark;
	p->low_water_mark = v;
	r = thin_pool_active(p) && v != old ? reload(p, c->why) : 0;
	r = r ? r : thin_save(p, c->why);
	if (r)
		p->low_water_mark = old;
	return r;
}

static bool known_feature(const char *w, size_t len)
{
	for (int i = 0; known_features[i]; i++)
		if (strlen(known_features[i]) == len && strncmp(known_features[i], w, len) == 0)
			return true;
	return false;
}

static int show_features(struct thin_pool *p, char **out, struct ctx *c)
{
	return show_text(out, "%s%s", p->features, p->features[0] ? "\n" : "");
}

/* Space-separated known features, each once, in the order written. */
static int store_features(struct thin_pool *p, const char *value, struct ctx *c)
{
	if (thin_pool_active(p))
		return frozen(p, "features", c->why);
	char norm[THIN_FEATURES_MAX] = "";
	size_t used = 0;
	for (const char *w = value + strspn(value, " \t"); *w; w += strspn(w, " \t")) {
		size_t len = strcspn(w, " \t");
		if (!known_feature(w, len))
			return why_set(c->why, -EINVAL, "unknown feature '%.*s' (known: skip_block_zeroing ignore_discard "
				       "no_discard_passdown read_only error_if_no_space)", (int)len, w);
		char word[64];
		snprintf(word, sizeof(word), "%.*s", (int)len, w);
		bool dup = false;
		for (const char *s = norm; *s && !dup; s += strspn(s, " ")) {
			size_t l = strcspn(s, " ");
			dup = l == len && strncmp(s, word, len) == 0;
			s += l;
		}
		if (!dup)
			used += (size_t)snprintf(norm + used, sizeof(norm) - used, "%s%s", used ? " " : "", word);
		w += len;
	}
	char old[THIN_FEATURES_MAX];
	snprintf(old, sizeof(old), "%s", p->features);
	snprintf(p->features, sizeof(p->features), "%s", norm);
	int r = thin_save(p, c->why);
	if (r)
		snprintf(p->features, sizeof(p->features), "%s", old);
	return r;
}

static int show_active(struct thin_pool *p, char **out, struct ctx *c)
{
	return show_text(out, "%d\n", thin_pool_active(p));
}

static int store_active(struct thin_pool *p, const char *value, struct ctx *c)
{
	bool on;
	int r = value_parse_bool(value, &on, c->why, STSFS_WHY_LEN);
	if (r || on == thin_pool_active(p))
		return r;
	if (p->obj.external) /* --manage-external: its device can go, not come back */
		return on ? why_set(c->why, -EPERM, "thin/%s was made elsewhere; stsfs cannot create it", p->obj.name)
			  : kdm_remove(p->obj.name, c->why);
	return on ? thin_pool_activate(p, c->cancel, c->why) : thin_pool_deactivate(p, c->why);
}

#define POOL_SHOW(fname)                                                                       \
	static int c_show_##fname(struct ctx *c, char **out)                                   \
	{                                                                                      \
		return with_show(c, out, show_##fname);                                        \
	}
#define POOL_STORE(fname)                                                                      \
	static int c_store_##fname(struct ctx *c, const char *v)                               \
	{                                                                                      \
		return with_store(c, v, store_##fname);                                        \
	}
#define POOL_RW(fname) POOL_SHOW(fname) POOL_STORE(fname)
POOL_RW(data_size)
POOL_RW(data_dev)
POOL_RW(metadata_size)
POOL_RW(metadata_dev)
POOL_RW(block_size)
POOL_RW(low_water_mark)
POOL_RW(features)
POOL_RW(active)

#define RW(n) { .name = #n, .perm = 0644, .show = c_show_##n, .store = c_store_##n }
const struct file_def thin_pool_files[] = {
	TENANCY_FILES,
	RW(data_size),
	RW(data_dev),
	RW(metadata_size),
	RW(metadata_dev),
	RW(block_size),
	RW(low_water_mark),
	RW(features),
	RW(active),
	{ .name = "error", .perm = 0444, .show = show_error_file },
	{ NULL },
};
#undef RW
