/* Pure device-mapper table text handling: splitting a table into its lines
 * and rewriting device references. No I/O; the caller resolves references.
 * Errors: a negative errno and a reason in why (whylen bytes, may be NULL)
 * naming the table line, e.g. "table line 2: length 'x' is not a number". */
#ifndef STSFS_DM_REF_H
#define STSFS_DM_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DM_TARGET_NAME_MAX 64

struct dm_line {
	uint64_t start, length;
	char type[DM_TARGET_NAME_MAX];
	char *params; /* malloc'd, whitespace runs collapsed; "" when none */
};

struct dm_lines {
	struct dm_line *v;
	size_t n;
};

/* "START LENGTH TARGET [PARAMS]" per line; blank lines are skipped. At least
 * one line is required. -EINVAL on malformed text, -ENOMEM. */
int dm_table_split(const char *text, struct dm_lines *out, char *why, size_t whylen);
void dm_lines_free(struct dm_lines *l);

/* True for a token that names a device: MAJ:MIN, /dev/..., a path
 * relative to the mount root (loop/NAME, dm/NAME, thin/POOL/VOL), and any
 * other word with a slash (a path the kernel would open: the resolver
 * must check or refuse it). dm_table_split refuses parameters with a
 * backslash, \v, \f or 0xa0, which the kernel splits or unescapes. */
bool dm_is_devref(const char *tok);

/* Resolves one reference into "MAJ:MIN" (out, outlen bytes); 0 or -errno
 * with a reason in why (whylen bytes). */
typedef int (*dm_resolve_fn)(void *arg, const char *ref, char *out, size_t outlen, char *why, size_t whylen);

/* Rewrites every device reference in the params of every line through
 * resolve. On error the reason is prefixed with the table line. */
int dm_lines_translate(struct dm_lines *l, dm_resolve_fn resolve, void *arg, char *why, size_t whylen);

/* "START LENGTH TARGET PARAMS\n" lines, malloc'd; NULL on ENOMEM. */
char *dm_lines_format(const struct dm_lines *l);

#endif
