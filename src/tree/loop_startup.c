/* loop/ at start-up: the saved objects loaded, renames a stopped worker
 * left half-done finished, and each object's kernel device adopted. */
#include "stsfs/tree.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stsfs/kernel.h"
#include "stsfs/log.h"
#include "stsfs/state.h"

#include "loop.h"

#define STATE_KIND LOOP_STATE_KIND

static uint64_t kv_u64(const struct kv_block *b, const char *key)
{
	const struct kv *e = kv_get(b, key);
	return e && e->str ? strtoull(e->str, NULL, 10) : 0;
}

static bool kv_flag(const struct kv_block *b, const char *key)
{
	const struct kv *e = kv_get(b, key);
	return e && e->str && strcmp(e->str, "1") == 0;
}

static int load_fields(struct obj *o, const struct kv_block *b)
{
	struct loop_obj *lo = loop_of(o);
	const struct kv *bf = kv_get(b, "backing_file");
	if (loop_set_backing(lo, bf && bf->str ? bf->str : "") != 0)
		return -ENOMEM;
	const struct kv *view = kv_get(b, "backing_view");
	free(lo->writer.view);
	lo->writer.view = view && view->str ? strdup(view->str) : NULL;
	if (view && view->str && !lo->writer.view)
		return -ENOMEM;
	lo->writer.private = kv_flag(b, "backing_private");
	lo->writer.read_only = kv_flag(b, "backing_writer_ro");
	lo->size = kv_u64(b, "size");
	lo->offset = kv_u64(b, "offset");
	lo->sizelimit = kv_u64(b, "sizelimit");
	lo->sector_size = (uint32_t)kv_u64(b, "sector_size");
	lo->read_only = kv_flag(b, "read_only");
	lo->autoclear = kv_flag(b, "autoclear");
	lo->partscan = kv_flag(b, "partscan");
	lo->direct_io = kv_flag(b, "direct_io");
	lo->image_made = kv_flag(b, "image_made");
	lo->image_pending = lo->image_made && kv_flag(b, "image_pending");
	const struct kv *nr = kv_get(b, "nr");
	lo->nr = nr && nr->str ? atoi(nr->str) : -1;
	lo->back_dev = (dev_t)kv_u64(b, "back_dev");
	lo->back_ino = (ino_t)kv_u64(b, "back_ino");
	const struct kv *from = kv_get(b, "renamed_from");
	snprintf(lo->renamed_from, sizeof(lo->renamed_from), "%s", from && from->str ? from->str : "");
	return 0;
}

/* A rename the daemon was killed in: the new record names the old one.
 * While the old record is there, the image may still have the old name;
 * the old record and object go, and the new record is saved without the
 * old name. */
static void finish_rename(struct loop_obj *lo)
{
	struct obj *old = reg_get_owned(&loop_registry, lo->renamed_from);
	if (old) {
		char old_img[PATH_MAX], new_img[PATH_MAX];
		loop_image_path(loop_of(old), old_img, sizeof(old_img));
		loop_image_path(lo, new_img, sizeof(new_img));
		if (lo->image_made && access(new_img, F_OK) != 0)
			rename(old_img, new_img);
		log_msg(L_INFO, "loop/%s: renamed to loop/%s (finishing a rename the last worker was stopped in)", lo->renamed_from, lo->obj.name);
		state_delete(STATE_KIND, lo->renamed_from);
		reg_forget(&loop_registry, old);
		reg_put(&loop_registry, old);
	}
	lo->renamed_from[0] = '\0';
	loop_save(lo, NULL);
}

static void finish_renames(void)
{
	for (;;) {
		struct obj *o = loop_registry.owned;
		while (o && !loop_of(o)->renamed_from[0])
			o = o->next;
		if (!o)
			return;
		finish_rename(loop_of(o));
	}
}

/* A daemon killed between attaching and saving left the device unrecorded:
 * an owned image's inode identifies it. */
static void adopt_unrecorded(struct loop_obj *lo, const int *nrs, size_t n)
{
	char path[PATH_MAX];
	struct stat img;
	loop_image_path(lo, path, sizeof(path));
	if (lo->backing[0] || !lo->image_made || stat(path, &img) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct kloop_state st;
		if (kloop_query(nrs[i], &st) == 0 && st.backing_ino == img.st_ino && st.backing_dev == img.st_dev) {
			lo->nr = nrs[i];
			lo->back_dev = img.st_dev;
			lo->back_ino = img.st_ino;
			loop_save(lo, NULL);
			log_msg(L_INFO, "loop/%s: adopted /dev/loop%d (attached to its image %s, not recorded)", lo->obj.name,
				lo->nr, path);
			return;
		}
	}
}

int loop_startup(char *why)
{
	int r = reg_load(&loop_registry, STATE_KIND, LOOP_NAME_MAX, load_fields, why);
	if (r)
		return r;
	finish_renames();
	int *nrs = NULL;
	size_t n = 0;
	kloop_list(&nrs, &n);
	/* Start-up is single-threaded: nothing else walks the list yet. */
	for (struct obj *o = loop_registry.owned; o; o = o->next) {
		struct loop_obj *lo = loop_of(o);
		if (loop_refresh(lo, NULL))
			log_msg(L_INFO, "loop/%s: adopted /dev/loop%d", o->name, lo->nr);
		else
			adopt_unrecorded(lo, nrs, n);
		if (lo->nr < 0)
			log_msg(L_DEBUG, "loop/%s: loaded, inactive", o->name);
	}
	free(nrs);
	return 0;
}
