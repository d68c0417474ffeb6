/* Objects one kind makes and drives for another: thin/POOL owns the loop
 * objects POOL_tdata and POOL_tmeta and the dm objects POOL and POOL-VOL.
 * They are ordinary objects of their kinds (listed, readable, saved and
 * adopted at start-up like any other) whose owner is recorded; users change
 * them only through the owner (obj_may_change). Tree layer: no FUSE types.
 *
 * Every call takes the object's lock itself; an owner calls them under its
 * own lock (owner before owned, never the other way round). owner is the
 * owner's path, "thin/POOL". */
#ifndef STSFS_TREE_OWNED_H
#define STSFS_TREE_OWNED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stsfs/tree.h"

/* ---- loop/ ---- */

/* Makes loop/NAME for owner (an owned image of size bytes) unless it
 * exists; -EEXIST when a loop object of that name is not owner's. */
int loop_owned_ensure(const char *name, const char *owner, uint64_t size, char *why);
/* Attaches it (creating the image when needed); *made: the image was
 * created now. */
int loop_owned_activate(const char *name, dev_t *dev, bool *made, char *why);
/* True while it is attached. */
bool loop_owned_active(const char *name);
/* Detaches it (the image stays). */
int loop_owned_detach(const char *name, char *why);
/* Grows the image and the live device to size bytes. */
int loop_owned_grow(const char *name, uint64_t size, char *why);
/* Detaches it, deletes its image and forgets it; none (or one that is not
 * owner's) is not an error. */
int loop_owned_remove(const char *name, const char *owner, char *why);
/* Renames it and its image. */
int loop_owned_rename(const char *name, const char *newname, const char *owner, char *why);

/* Start-up: objects whose owner is gone (a daemon killed between making
 * them and saving the owner's record) become ordinary objects again. */
void loop_owned_release_orphans(bool (*alive)(const char *owner));

/* ---- dm/ ---- */

/* Makes dm/NAME for owner unless it exists; -EEXIST when a dm object or
 * device of that name is not owner's. */
int dm_owned_ensure(const char *name, const char *owner, char *why);
/* Sets the table (device references as in dm/NAME/table); a live device
 * reloads it. */
int dm_owned_set_table(const char *name, const char *table, char *why);
int dm_owned_set_active(const char *name, bool on, char *why);
/* Suspends (on) or resumes a live device. */
int dm_owned_suspend(const char *name, bool on, char *why);
/* A message to the live device; *response may be NULL (no answer wanted). */
int dm_owned_message(const char *name, const char *msg, char **response, char *why);
/* Removes the device (-EBUSY while open) and forgets the object; none (or
 * one that is not owner's) is not an error. */
int dm_owned_remove(const char *name, const char *owner, char *why);
int dm_owned_rename(const char *name, const char *newname, const char *owner, char *why);
/* True while dm/NAME is owned by owner. */
bool dm_owned_by(const char *name, const char *owner);
void dm_owned_release_orphans(bool (*alive)(const char *owner));
/* The error slot of dm/NAME (its owner's objects share it). */
struct errslot *dm_owned_errslot(const char *name);
/* The kernel's name of a block device (dm-3, loop0), "?" when unknown. */
void dm_kernel_name(dev_t dev, char *buf, size_t len);

/* A device reference (MAJ:MIN, /dev/..., loop/NAME, dm/NAME, thin/POOL/VOL)
 * as a table would resolve it, policy (--allow-host-devices) included. */
int dm_resolve_ref(const char *ref, dev_t *dev, char *why);

/* The files of dm/NAME that describe the live device (status, status.raw,
 * info, deps, wait), for every kind with a dm_name. */
extern const struct file_def dm_state_files[];
/* dir_kind hooks of dm-backed kinds, through dm_name. */
int dm_block(struct ctx *c, struct blockref *b);
int dm_event_nr(struct ctx *c, uint32_t *nr, char *key, size_t keylen);
int dm_event_wait(const char *name, uint32_t after);
int dm_meta_source(struct ctx *c, struct meta_source *m, bool locate, char *why);
int dm_meta_line(struct ctx *c, uint64_t *length, char *params, size_t len, char *why);

#endif
