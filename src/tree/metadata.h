/* metadata/ of objects with persistent-data metadata: what its read side
 * (metadata.c) and its write side (metadata_write.c) share. */
#ifndef STSFS_TREE_METADATA_H
#define STSFS_TREE_METADATA_H

#include "stsfs/tree.h"

/* The metadata source of the object `up` levels above c. */
int meta_owner_source(struct ctx *c, int up, struct meta_source *m, bool locate, char *why);
/* A tool that exited non-zero: its first line of stderr is the reason. */
int meta_tool_failed(struct ctx *c, const struct kmeta_result *res);

extern const struct file_def metadata_write_files[];
/* `previous` as a block object: the file the last repair kept. */
int metadata_previous_block(struct ctx *c, struct blockref *b);
/* Forgets the previous metadata of objects that are gone. */
void metadata_previous_sweep(void);

#endif
