/* What must survive a restart: one small key=value file per object under
 * <state-dir>/<kind>/<name>, replaced atomically (temp + rename). A save
 * survives a SIGKILL of the daemon at once and power loss within about a
 * second (group commit, src/state/commit.c). */
#ifndef STSFS_STATE_H
#define STSFS_STATE_H

#include "stsfs/kv.h"

int state_init(const char *dir, char *why);
int state_save(const char *kind, const char *name, const struct kv_block *b, char *why);
/* state_save in two steps, for a change of the kernel that must go with its
 * record: state_prepare writes the record aside (a full or read-only state
 * directory fails here, before anything changed), state_commit puts it in
 * place with a rename that needs no room, state_abort drops it. */
int state_prepare(const char *kind, const char *name, const struct kv_block *b, char *why);
int state_commit(const char *kind, const char *name, char *why);
void state_abort(const char *kind, const char *name);
int state_delete(const char *kind, const char *name);
/* Group commit: path is fsync'd (and its directory) within a second. */
void state_commit_later(const char *path);
/* Every save so far is durable when this returns. */
void state_sync(void);
/* Calls cb for every saved object of a kind, in name order; a file that does
 * not parse is reported through cb's `why` argument (b is NULL then). Removes
 * the temporary files of saves that were killed before their rename. */
int state_load(const char *kind, void (*cb)(const char *name, const struct kv_block *b, const char *why, void *arg),
	       void *arg);

/* Pure: `key=value` lines (no blank-line blocks) into string values. */
int kvtext_parse(const char *text, struct kv_block *out, char *why, size_t whylen);

#endif
