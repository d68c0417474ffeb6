/* The object registry that loop/ and dm/ share (see registry.h). */
#include "registry.h"
#include "stsfs/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stsfs/state.h"
#include "stsfs/value.h"

struct ext_err {
	char key[OBJ_NAME_MAX + 1];
	struct errslot err;
	struct ext_err *next;
};

/* ---- objects ---- */

struct obj *reg_new(struct registry *reg, const char *name)
{
	struct obj *o = calloc(1, reg->obj_size);
	if (!o)
		return NULL;
	snprintf(o->name, sizeof(o->name), "%s", name);
	pthread_mutex_init(&o->lock, NULL);
	pthread_mutex_init(&o->err.lock, NULL);
	o->refs = 1;
	if (reg->init && reg->init(o) != 0) {
		reg_discard(reg, o);
		return NULL;
	}
	return o;
}

void reg_discard(struct registry *reg, struct obj *o)
{
	if (reg->release)
		reg->release(o);
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->err.lock);
	free(o);
}

int obj_may_change(const struct obj *o, char *why)
{
	if (o->owner[0])
		return why_set(why, -EBUSY, "%s belongs to %s: change it through %s", o->name, o->owner, o->owner);
	if (o->external && !opts.manage_external)
		return why_set(why, -EPERM, "%s was not created by stsfs (start stsfs with --manage-external to change it)",
			       o->name);
	return 0;
}

int reg_save_owner(const struct obj *o, struct kv_block *b)
{
	int r = o->owner[0] ? kv_add_str(b, "owner", o->owner) : 0;
	return r ? r : o->ephemeral ? kv_add_str(b, "ephemeral", "1") : 0;
}

int reg_refuses(struct registry *reg, const char *name, char *why)
{
	struct obj *o = reg_get(reg, name);
	if (!o)
		return 0;
	int r = obj_may_change(o, why);
	reg_put(reg, o);
	return r;
}

/* ---- references ---- */

void reg_lock(struct registry *reg)
{
	pthread_mutex_lock(&reg->lock);
}

void reg_unlock(struct registry *reg)
{
	pthread_mutex_unlock(&reg->lock);
}

static size_t name_bucket(const char *name)
{
	size_t h = 14695981039346656037u;
	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211u;
	return h % REG_BUCKETS;
}

struct obj *reg_find_locked(struct registry *reg, const char *name)
{
	for (struct obj *o = reg->by_name[name_bucket(name)]; o; o = o->next_hash)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

static void index_locked(struct registry *reg, struct obj *o)
{
	struct obj **b = &reg->by_name[name_bucket(o->name)];
	o->next_hash = *b;
	*b = o;
}

static void unindex_locked(struct registry *reg, struct obj *o)
{
	for (struct obj **pp = &reg->by_name[name_bucket(o->name)]; *pp; pp = &(*pp)->next_hash) {
		if (*pp == o) {
			*pp = o->next_hash;
			return;
		}
	}
}

void reg_rename_locked(struct registry *reg, struct obj *o, const char *newname)
{
	unindex_locked(reg, o);
	snprintf(o->name, sizeof(o->name), "%s", newname);
	index_locked(reg, o);
}

struct obj *reg_get_owned(struct registry *reg, const char *name)
{
	reg_lock(reg);
	struct obj *o = reg_find_locked(reg, name);
	if (o)
		o->refs++;
	reg_unlock(reg);
	return o;
}

struct obj *reg_get(struct registry *reg, const char *name)
{
	struct obj *o = reg_get_owned(reg, name);
	return o ? o : reg->external(name);
}

/* An owned object keeps the registry's reference until reg_forget, so only
 * rmdir's own reg_put (or a request's that outlived it) frees it; a
 * transient external object goes with its one request. */
void reg_put(struct registry *reg, struct obj *o)
{
	reg_lock(reg);
	bool last = --o->refs == 0;
	reg_unlock(reg);
	if (last)
		reg_discard(reg, o);
}

bool reg_exists(struct registry *reg, const char *name)
{
	struct obj *o = reg_get(reg, name);
	if (o)
		reg_put(reg, o);
	return o != NULL;
}

bool reg_owns(struct registry *reg, const char *name)
{
	reg_lock(reg);
	bool owned = reg_find_locked(reg, name) != NULL;
	reg_unlock(reg);
	return owned;
}

/* ---- the owned list ---- */

static void link_locked(struct registry *reg, struct obj *o)
{
	o->next = reg->owned;
	reg->owned = o;
	index_locked(reg, o);
}

static void link_owned(struct registry *reg, struct obj *o)
{
	reg_lock(reg);
	link_locked(reg, o);
	reg_unlock(reg);
}

int reg_mkdir(struct registry *reg, const char *name, const char *owner,
	      int (*admit_locked)(struct obj *o, char *why), char *why)
{
	struct obj *o = reg_new(reg, name);
	if (!o)
		return -ENOMEM;
	snprintf(o->owner, sizeof(o->owner), "%s", owner ? owner : "");
	reg_lock(reg);
	int r = admit_locked(o, why);
	if (r == 0)
		link_locked(reg, o);
	reg_unlock(reg);
	if (r)
		reg_discard(reg, o);
	return r;
}

void reg_forget(struct registry *reg, struct obj *o)
{
	reg_lock(reg);
	for (struct obj **pp = &reg->owned; *pp; pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			unindex_locked(reg, o);
			break;
		}
	}
	o->refs--; /* the registry's reference */
	reg_unlock(reg);
}

int reg_rename_owned(struct registry *reg, struct obj *o, const char *newname, const char *owner,
		     int (*rename_locked)(struct obj *o, const char *newname, char *why), char *why)
{
	char old_owner[sizeof(o->owner)];
	snprintf(old_owner, sizeof(old_owner), "%s", o->owner);
	snprintf(o->owner, sizeof(o->owner), "%s", owner);
	reg_lock(reg);
	int r = rename_locked(o, newname, why);
	reg_unlock(reg);
	if (r)
		snprintf(o->owner, sizeof(o->owner), "%s", old_owner);
	return r;
}

/* ---- start-up ---- */

void reg_release_orphans(struct registry *reg, const char *kind, bool (*alive)(const char *owner))
{
	/* Start-up is single-threaded: nothing else walks the list yet. */
	for (struct obj *o = reg->owned; o; o = o->next) {
		if (o->owner[0] && !alive(o->owner)) {
			log_msg(L_INFO, "%s/%s: its owner %s is gone; it is an ordinary object now", kind, o->name,
				o->owner);
			o->owner[0] = '\0';
			reg->save(o, NULL);
		}
	}
}

struct load_args {
	struct registry *reg;
	const char *kind;
	size_t name_max;
	int (*fill)(struct obj *o, const struct kv_block *b);
};

static void load_one(const char *name, const struct kv_block *b, const char *why, void *arg)
{
	const struct load_args *a = arg;
	if (!b || value_check_name(name, a->name_max, NULL, 0) != 0) {
		/* The others load; the reason stays readable in KIND/error. */
		char msg[STSFS_WHY_LEN];
		snprintf(msg, sizeof(msg), "saved %s object %s left out: %s (fix or remove its record in the state directory)",
			 a->kind, name, why && why[0] ? why : "not a valid name");
		log_msg(L_WARNING, "%s", msg);
		errslot_set(&a->reg->dir_error, "start-up", msg);
		return;
	}
	struct obj *o = reg_new(a->reg, name);
	const struct kv *owner = kv_get(b, "owner");
	if (o && owner && owner->str)
		snprintf(o->owner, sizeof(o->owner), "%s", owner->str);
	const struct kv *eph = kv_get(b, "ephemeral");
	if (o && eph && eph->str)
		o->ephemeral = strcmp(eph->str, "1") == 0;
	if (o && a->fill(o, b) != 0) {
		reg_discard(a->reg, o);
		o = NULL;
	}
	if (o)
		link_owned(a->reg, o);
}

int reg_load(struct registry *reg, const char *kind, size_t name_max,
	     int (*fill)(struct obj *o, const struct kv_block *b), char *why)
{
	struct load_args a = { reg, kind, name_max, fill };
	int r = state_load(kind, load_one, &a);
	if (r)
		return why_set(why, r, "cannot read saved %s objects: %s", kind, strerror(-r));
	return 0;
}

/* ---- error slots ---- */

static struct errslot *ext_errslot_locked(struct registry *reg, const char *key)
{
	struct ext_err *e = reg->ext_errors;
	while (e && strcmp(e->key, key) != 0)
		e = e->next;
	if (!e && (e = calloc(1, sizeof(*e)))) {
		snprintf(e->key, sizeof(e->key), "%s", key);
		pthread_mutex_init(&e->err.lock, NULL);
		e->next = reg->ext_errors;
		reg->ext_errors = e;
	}
	return e ? &e->err : &reg->dir_error;
}

struct errslot *reg_errslot(struct registry *reg, const char *name, const char *ext_key)
{
	reg_lock(reg);
	struct obj *o = reg_find_locked(reg, name);
	/* Owned objects are freed only by rmdir, which cannot race a request
	 * on the same object's files in a way that matters for a message. */
	struct errslot *e = o ? &o->err : ext_key ? ext_errslot_locked(reg, ext_key) : &reg->dir_error;
	reg_unlock(reg);
	return e;
}

/* ---- listing ---- */

void reg_each(struct registry *reg, void (*cb)(const struct obj *o, void *arg), void *arg)
{
	reg_lock(reg);
	for (struct obj *o = reg->owned; o; o = o->next)
		cb(o, arg);
	reg_unlock(reg);
}

void names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static size_t count_locked(struct registry *reg)
{
	size_t n = 0;
	for (struct obj *o = reg->owned; o; o = o->next)
		n++;
	return n;
}

/* The owned objects' names and their kernel devices' (device_name), copied
 * under the registry lock so that the caller can ask the kernel about each
 * without holding it. */
struct snapshot {
	char **names;
	char **devs;
	size_t n;
};

static void snapshot_free(struct snapshot *s)
{
	names_free(s->names, s->names ? s->n : 0);
	names_free(s->devs, s->devs ? s->n : 0);
	s->names = s->devs = NULL;
	s->n = 0;
}

static int snapshot_take(struct registry *reg, struct snapshot *s)
{
	reg_lock(reg);
	s->n = count_locked(reg);
	/* calloc: an entry a failure leaves NULL is freed as nothing. */
	s->names = calloc(s->n ? s->n : 1, sizeof(char *));
	s->devs = calloc(s->n ? s->n : 1, sizeof(char *));
	int r = s->names && s->devs ? 0 : -ENOMEM;
	size_t i = 0;
	for (struct obj *o = reg->owned; !r && o; o = o->next, i++) {
		char dev[OBJ_NAME_MAX + 1] = "";
		reg->device_name(o, dev, sizeof(dev));
		s->names[i] = strdup(o->name);
		s->devs[i] = strdup(dev);
		r = s->names[i] && s->devs[i] ? 0 : -ENOMEM;
	}
	reg_unlock(reg);
	if (r)
		snapshot_free(s);
	return r;
}

static bool in_list(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

int reg_list(struct registry *reg, int (*emit)(void *arg, const char *name), void *arg)
{
	struct snapshot s;
	int r = snapshot_take(reg, &s);
	for (size_t i = 0; !r && i < s.n; i++)
		r = emit(arg, s.names[i]);
	char **kernel = NULL;
	size_t nk = 0;
	if (!r)
		r = reg->list_devices(&kernel, &nk);
	for (size_t i = 0; !r && i < nk; i++)
		if (!in_list(s.devs, s.n, kernel[i]))
			r = emit(arg, kernel[i]);
	snapshot_free(&s);
	names_free(kernel, nk);
	return r;
}

bool reg_owns_dev(struct registry *reg, dev_t dev, bool (*is_dev)(const char *devname, dev_t dev))
{
	struct snapshot s;
	bool found = false;
	if (snapshot_take(reg, &s) != 0)
		return false;
	for (size_t i = 0; i < s.n && !found; i++)
		found = s.devs[i][0] && is_dev(s.devs[i], dev);
	snapshot_free(&s);
	return found;
}

const struct file_def reg_dir_files[] = {
	{ .name = "error", .perm = 0444, .show = show_error_file },
	{ NULL },
};
