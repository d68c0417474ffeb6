/* loop/ objects: what the object itself (loop.c: registry, kernel binding,
 * lifecycle, start-up) shares with its attribute files (loop_attr.c).
 * Tree layer: no FUSE types. */
#ifndef STSFS_TREE_LOOP_H
#define STSFS_TREE_LOOP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "stsfs/kernel.h"
#include "registry.h"

#define LOOP_NAME_MAX 64
_Static_assert(LOOP_NAME_MAX <= OBJ_NAME_MAX, "loop names fit struct obj");

struct loop_obj {
	struct obj obj;         /* first: the registry's part */
	/* configuration */
	char *backing;          /* "" = owned image <image-dir>/NAME.img; never NULL */
	/* backing_file as its writer named it (view; NULL: as backing) and the
	 * file opened as the writer (fd; -1: none kept). private: the daemon's
	 * namespace has no path to it (backing is then the view); read_only:
	 * the writer may only read it (loop_backing.c). */
	struct loop_writer {
		char *view;
		int fd;
		bool private, read_only;
	} writer;
	uint64_t size, offset, sizelimit;
	uint32_t sector_size;
	bool read_only, autoclear, partscan, direct_io;
	/* image_made: <image-dir>/NAME.img is this object's. image_pending:
	 * claimed, and perhaps not made yet (a try killed in between). */
	bool image_made, image_pending;
	/* While a rename is under way: the old name, in the new record, so
	 * that a daemon killed half-way finishes it at start-up. */
	char renamed_from[OBJ_NAME_MAX + 1];
	/* binding to the kernel */
	int nr;                 /* -1 while inactive */
	dev_t back_dev;
	ino_t back_ino;
};

#define LOOP_STATE_KIND "loop" /* records in <state-dir>/loop/ */

static inline struct loop_obj *loop_of(struct obj *o)
{
	return (struct loop_obj *)o;
}

/* Owned loop objects; the error slots of the kernel's other loop devices. */
extern struct registry loop_registry;
/* mkdir's checks: a name users may give; under the registry lock, the name
 * is free and the record saved. */
int loop_check_new_name(const char *name, char *why);
int loop_admit_locked(struct obj *o, char *why);
/* rmdir: detach, delete an owned image, forget. Caller holds lo->obj.lock. */
int loop_remove_locked(struct loop_obj *lo, char *why);
/* The object and its owned image take newname. Caller holds lo->obj.lock
 * and the registry lock. */
int loop_rename_locked(struct loop_obj *lo, const char *newname, char *why);
/* `size`: an owned image's size while inactive; grows a live device. */
int loop_set_size(struct loop_obj *lo, uint64_t size, char *why);

/* The object loop/NAME/... names (NULL when none); release with loop_obj_put. */
struct loop_obj *loop_ctx_obj(struct ctx *c);
void loop_obj_put(struct loop_obj *lo);

/* Replaces the backing file's path (a copy; -ENOMEM leaves the old one). */
int loop_set_backing(struct loop_obj *lo, const char *path);

/* Records the object's configuration and binding (owned objects only). */
int loop_save(struct loop_obj *lo, char *why);
/* A change of the kernel device and its record, both or neither: lo's
 * fields already hold the new values; apply (NULL: none) changes the kernel
 * only once the record is written aside (src/tree/loop.c). */
typedef int (*loop_apply_fn)(struct loop_obj *lo, const void *arg, char *why);
int loop_change(struct loop_obj *lo, loop_apply_fn apply, const void *arg, char *why);
/* True while the object's device is still bound to its backing file; a
 * device detached behind our back makes the object inactive. Caller holds
 * lo->obj.lock; st (may be NULL) gets the kernel's view. */
bool loop_refresh(struct loop_obj *lo, struct kloop_state *st);

void loop_image_path(const struct loop_obj *lo, char *buf, size_t len);
/* The reason for a failed ftruncate of an owned image to size. */
int loop_sizing_failed(const char *path, uint64_t size, int err, char *why);
/* Canonical path of an allowed external backing file, in the daemon's own
 * view (out: PATH_MAX). */
int loop_check_backing(const char *value, char *out, char *why);
/* backing_file's write: the path resolved and opened as its writer sees
 * it, judged as the host file it is, then recorded ("": an owned image). */
int loop_backing_store(struct loop_obj *lo, const char *value, char *why);
/* What backing_file reads: the writer's path. */
const char *loop_backing_shown(const struct loop_obj *lo);
/* For activation: the file kept from the write (*fd a duplicate) or the
 * host path checked again (*fd -1); out: PATH_MAX, the path. */
int loop_backing_for_attach(struct loop_obj *lo, char *out, int *fd, char *why);
struct stat;
int loop_backing_stat(const struct loop_obj *lo, struct stat *st);

int loop_attach(struct loop_obj *lo, char *why);
int loop_detach(struct loop_obj *lo, char *why);
/* Detach device nr, giving our own `data` releases a moment (-EBUSY). */
int loop_detach_settled(int nr, char *why);

/* The attribute files of a loop object (loop_attr.c). */
extern const struct file_def loop_files[];

#endif
