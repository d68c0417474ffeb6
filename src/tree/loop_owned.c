/* loop objects that another object owns and drives (owned.h): thin/POOL's
 * data and metadata devices POOL_tdata and POOL_tmeta. */
#include "loop.h"
#include "owned.h"

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

int loop_owned_rename(const char *name, const char *newname, const char *owner, char *why)
{
	int r = loop_check_new_name(newname, why);
	struct loop_obj *lo = r ? NULL : owned_get(name);
	if (!lo)
		return r ? r : why_set(why, -ENOENT, "no loop object %s", name);
	pthread_mutex_lock(&lo->obj.lock);
	char old_owner[sizeof(lo->obj.owner)];
	snprintf(old_owner, sizeof(old_owner), "%s", lo->obj.owner);
	snprintf(lo->obj.owner, sizeof(lo->obj.owner), "%s", owner);
	reg_lock(&loop_registry);
	r = loop_rename_locked(lo, newname, why);
	reg_unlock(&loop_registry);
	if (r)
		snprintf(lo->obj.owner, sizeof(lo->obj.owner), "%s", old_owner);
	pthread_mutex_unlock(&lo->obj.lock);
	loop_obj_put(lo);
	return r;
}

void loop_owned_release_orphans(bool (*alive)(const char *owner))
{
	/* Start-up is single-threaded: nothing else walks the list yet. */
	for (struct obj *o = loop_registry.owned; o; o = o->next) {
		if (o->owner[0] && !alive(o->owner)) {
			fprintf(stderr, "stsfs: loop/%s: its owner %s is gone; it is an ordinary object now\n", o->name, o->owner);
			o->owner[0] = '\0';
			loop_save((struct loop_obj *)o, NULL);
		}
	}
}
