/* dm objects that another object owns and drives (owned.h): thin/POOL's
 * pool device POOL and its volumes' devices POOL-VOL. */
#include "dm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stsfs/log.h"
#include "stsfs/value.h"

static struct dm_obj *owned_get(const char *name)
{
	return (struct dm_obj *)reg_get_owned(&dm_registry, name);
}

int dm_owned_ensure(const char *name, const char *owner, char *why)
{
	struct dm_obj *o = owned_get(name);
	if (o) {
		int r = strcmp(o->obj.owner, owner) == 0 ? 0 : why_set(why, -EEXIST, "dm/%s exists and is not %s's", name, owner);
		dm_obj_put(o);
		return r;
	}
	int r = value_check_name(name, DM_NAME_MAX, why, STSFS_WHY_LEN);
	r = r ? r : reg_mkdir(&dm_registry, name, owner, dm_admit_locked, why);
	if (!r)
		log_msg(L_INFO, "dm/%s: created for %s", name, owner);
	return r;
}

bool dm_owned_by(const char *name, const char *owner)
{
	struct dm_obj *o = owned_get(name);
	bool yes = o && strcmp(o->obj.owner, owner) == 0;
	if (o)
		dm_obj_put(o);
	return yes;
}

struct errslot *dm_owned_errslot(const char *name)
{
	return reg_errslot(&dm_registry, name, NULL);
}

typedef int (*owned_fn)(struct dm_obj *o, const void *arg, char *why);

/* Runs fn on the owned object name under its lock. */
static int with_owned(const char *name, owned_fn fn, const void *arg, char *why)
{
	struct dm_obj *o = owned_get(name);
	if (!o)
		return why_set(why, -ENOENT, "no dm object %s", name);
	pthread_mutex_lock(&o->obj.lock);
	int r = fn(o, arg, why);
	pthread_mutex_unlock(&o->obj.lock);
	dm_obj_put(o);
	return r;
}

static int set_table(struct dm_obj *o, const void *table, char *why)
{
	return dm_store_table(o, table, why);
}

int dm_owned_set_table(const char *name, const char *table, char *why)
{
	return with_owned(name, set_table, table, why);
}

static int set_active(struct dm_obj *o, const void *on, char *why)
{
	return dm_store_active(o, *(const bool *)on ? "1" : "0", why);
}

int dm_owned_set_active(const char *name, bool on, char *why)
{
	return with_owned(name, set_active, &on, why);
}

static int suspend(struct dm_obj *o, const void *on, char *why)
{
	return dm_store_suspended(o, *(const bool *)on ? "1" : "0", why);
}

int dm_owned_suspend(const char *name, bool on, char *why)
{
	return with_owned(name, suspend, &on, why);
}

struct message {
	const char *msg;
	char **response;
};

static int message(struct dm_obj *o, const void *arg, char *why)
{
	const struct message *m = arg;
	if (!dm_is_active(o, NULL))
		return dm_not_active(o, why);
	char *resp = NULL;
	int r = kdm_message(o->obj.name, 0, m->msg, &resp, why);
	if (m->response)
		*m->response = resp;
	else
		free(resp);
	return r;
}

int dm_owned_message(const char *name, const char *msg, char **response, char *why)
{
	struct message m = { msg, response };
	return with_owned(name, message, &m, why);
}

int dm_owned_remove(const char *name, const char *owner, char *why)
{
	struct dm_obj *o = owned_get(name);
	if (!o)
		return 0;
	pthread_mutex_lock(&o->obj.lock);
	int r = strcmp(o->obj.owner, owner) == 0 ? dm_remove_locked(o, why) : 0;
	pthread_mutex_unlock(&o->obj.lock);
	dm_obj_put(o);
	return r;
}

static int rename_locked(struct obj *o, const char *newname, char *why)
{
	return dm_rename_locked((struct dm_obj *)o, newname, why);
}

int dm_owned_rename(const char *name, const char *newname, const char *owner, char *why)
{
	int r = value_check_name(newname, DM_NAME_MAX, why, STSFS_WHY_LEN);
	struct dm_obj *o = r ? NULL : owned_get(name);
	if (!o)
		return r ? r : why_set(why, -ENOENT, "no dm object %s", name);
	pthread_mutex_lock(&o->obj.lock);
	r = reg_rename_owned(&dm_registry, &o->obj, newname, owner, rename_locked, why);
	pthread_mutex_unlock(&o->obj.lock);
	dm_obj_put(o);
	return r;
}

void dm_owned_release_orphans(bool (*alive)(const char *owner))
{
	reg_release_orphans(&dm_registry, "dm", alive);
}
