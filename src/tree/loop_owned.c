/* loop objects that another object owns and drives (owned.h): thin/POOL's
 * data and metadata devices POOL_tdata and POOL_tmeta. */
#include "loop.h"
#include "owned.h"

#include "stsfs/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct loop_obj *owned_get(const char *name)
{
	return (struct loop_obj *)reg_get_owned(&loop_registry, name);
}

int loop_owned_ensure(const char *name, const char *owner, uint64_t size, char *why)
{
	struct loop_obj *lo = owned_get(name);
	int r = 0;
	if (!lo) {
		r = loop_check_new_name(name, why);
		r = r ? r : reg_mkdir(&loop_registry, name, owner, loop_admit_locked, why);
		lo = r ? NULL : owned_get(name);
		if (!lo)
			return r ? r : -ENOENT;
		log_msg(L_INFO, "loop/%s: created for %s", name, owner);
	}
	pthread_mutex_lock(&lo->obj.lock);
	if (strcmp(lo->obj.owner, owner) != 0)
		r = why_set(why, -EEXIST, "loop/%s exists and is not %s's", name, owner);
	else if (lo->size < size || !lo->image_made)
		r = loop_set_size(lo, size, why);
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

int loop_owned_activate(const char *name, dev_t *dev, bool *made, char *why)
{
	struct loop_obj *lo = owned_get(name);
	if (!lo)
		return why_set(why, -ENOENT, "no loop object %s", name);
	pthread_mutex_lock(&lo->obj.lock);
	bool had_image = lo->image_made;
	struct kloop_state st;
	int r = loop_refresh(lo, NULL) ? 0 : loop_attach(lo, why);
	*made = !had_image && lo->image_made;
	if (!r && kloop_query(lo->nr, &st) == 0)
		*dev = st.dev;
	else if (!r)
		r = why_set(why, -ENXIO, "loop/%s went away", name);
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

bool loop_owned_active(const char *name)
{
	struct loop_obj *lo = owned_get(name);
	if (!lo)
		return false;
	pthread_mutex_lock(&lo->obj.lock);
	bool active = loop_refresh(lo, NULL);
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return active;
}

int loop_owned_detach(const char *name, char *why)
{
	struct loop_obj *lo = owned_get(name);
	if (!lo)
		return 0;
	pthread_mutex_lock(&lo->obj.lock);
	int r = loop_detach(lo, why);
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

int loop_owned_grow(const char *name, uint64_t size, char *why)
{
	struct loop_obj *lo = owned_get(name);
	if (!lo)
		return why_set(why, -ENOENT, "no loop object %s", name);
	pthread_mutex_lock(&lo->obj.lock);
	int r = loop_set_size(lo, size, why);
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

int loop_owned_remove(const char *name, const char *owner, char *why)
{
	struct loop_obj *lo = owned_get(name);
	if (!lo)
		return 0;
	pthread_mutex_lock(&lo->obj.lock);
	int r = strcmp(lo->obj.owner, owner) == 0 ? loop_remove_locked(lo, why) : 0;
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

static int rename_locked(struct obj *o, const char *newname, char *why)
{
	return loop_rename_locked((struct loop_obj *)o, newname, why);
}

int loop_owned_rename(const char *name, const char *newname, const char *owner, char *why)
{
	int r = loop_check_new_name(newname, why);
	struct loop_obj *lo = r ? NULL : owned_get(name);
	if (!lo)
		return r ? r : why_set(why, -ENOENT, "no loop object %s", name);
	pthread_mutex_lock(&lo->obj.lock);
	r = reg_rename_owned(&loop_registry, &lo->obj, newname, owner, rename_locked, why);
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

void loop_owned_release_orphans(bool (*alive)(const char *owner))
{
	reg_release_orphans(&loop_registry, "loop", alive);
}
