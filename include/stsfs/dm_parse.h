/* Pure device-mapper text parsers: status lines into kv blocks, and table
 * text with key material masked. No I/O, no globals, no libdevmapper.
 *
 * Formats and key names: shared/dm-status-reference.md, documented for users
 * in docs/. Errors follow the project rule: a negative errno is returned and,
 * for -EINVAL, a readable reason is written to why (whylen bytes, may be NULL),
 * prefixed with the target type, e.g. "thin-pool: expected 9 fields, got 3". */
#ifndef STSFS_DM_PARSE_H
#define STSFS_DM_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "stsfs/kv.h"

/* Appends the parsed status keys of one table entry to out. The caller has
 * already added start, length and target. params is the status text after
 * the target type (NULL is taken as ""); runs of whitespace and trailing
 * spaces are ignored.
 *
 * - Known target: its keys in kernel-documentation order. A whole-line word
 *   the target may report instead (thin-pool Fail, snapshot Merge failed, a
 *   lone - for thin, ...) gives state= (and fail=/error= for thin-pool).
 * - Unknown target: args= with the params, whitespace runs collapsed, and 0.
 * - Malformed params for a known target: -EINVAL with the reason in why.
 * - -ENOMEM when out cannot grow.
 * On any error out is truncated back to what the caller had, so it can fall
 * back to args=. */
int dm_status_parse(const char *target_type, const char *params, struct kv_block *out,
		    char *why, size_t whylen);

/* Parses one `dmsetup status` line, `START LENGTH TARGET PARAMS` (a trailing
 * newline is ignored): adds start, length and target, then as
 * dm_status_parse. On error out is left as the caller had it. */
int dm_status_parse_line(const char *line, struct kv_block *out, char *why, size_t whylen);

/* True when dm_status_parse has a parser for this target type (so it never
 * answers with args=). */
bool dm_status_target_known(const char *target_type);

/* Malloc'd copy of table params (the text after the target type) with key
 * material replaced by '0' characters exactly as `dmsetup table` does without
 * --showkeys: the crypt KEY field unless it is a keyring reference (starts
 * with ':'), and the key part of integrity's internal_hash:ALG:KEY,
 * journal_crypt:ALG:KEY and journal_mac:ALG:KEY. The length never changes.
 * Other targets: an unchanged copy. NULL params is taken as "". Returns NULL
 * on ENOMEM. */
char *dm_table_mask_keys(const char *target_type, const char *params);

#endif
