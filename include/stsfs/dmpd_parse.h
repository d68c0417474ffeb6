/* Pure parsers for the output of the device-mapper-persistent-data tools
 * (thin_check, thin_ls, thin_dump, thin_delta, cache_check, cache_dump,
 * era_check, era_dump): the files of metadata/ and thin/POOL/VOL/delta.
 * No I/O, no process handling: the caller runs the tool and passes its
 * output here. Keys and examples: docs/metadata.md.
 *
 * Inputs are byte buffers (pointer and length; NULL with length 0 is empty).
 * Each parser appends blocks to doc. Errors follow the project rule: a
 * negative errno is returned and, for -EINVAL, a readable reason naming the
 * tool and the input line is written to why (whylen bytes, may be NULL),
 * e.g. "thin_dump line 7: <range_mapping> lacks attribute length". On any
 * error doc is left with the blocks the caller had. */
#ifndef STSFS_DMPD_PARSE_H
#define STSFS_DMPD_PARSE_H

#include <stddef.h>

#include "stsfs/kv.h"

enum dmpd_kind {
	DMPD_THIN,  /* thin_dump */
	DMPD_CACHE, /* cache_dump */
	DMPD_ERA,   /* era_dump */
};

/* At most this many problem= lines are kept (problems= still counts all). */
#define DMPD_MAX_PROBLEMS 1000

/* thin_check / cache_check / era_check. exit_status is the tool's exit
 * status as a shell reports it: 0-255, 128+N when killed by signal N (the
 * 0.9.0 era_check aborts on some damage). Appends one block:
 *   result=ok|error     ok exactly when exit_status is 0
 *   exit_code=N
 *   KEY=VALUE           stdout's KEY=VALUE lines (TRANSACTION_ID=...), key lower-cased
 *   problems=N          number of finding lines
 *   problem=TEXT        one per finding, in order (stderr, then stdout); a
 *                       declared list, so JSON always has an array
 * A finding is every non-blank line that is not progress (an unindented
 * "examining ..."/"checking ..." line and the like) nor a stdout KEY=VALUE;
 * lines are trimmed, control characters and invalid UTF-8 become '?'.
 * -EINVAL only for an exit_status out of range. */
int dmpd_check_parse(const char *out, size_t outlen, const char *err, size_t errlen,
		     int exit_status, struct kv_doc *doc, char *why, size_t whylen);

/* thin_ls stdout (with its header line; any -o column set): one block per
 * row, keys the lower-cased header names, values numbers when plain
 * decimals. The human-readable columns MAPPED, EXCLUSIVE and SHARED are
 * always strings ("4096KiB", "0"). A header alone gives no block. */
int dmpd_ls_parse(const char *text, size_t len, struct kv_doc *doc, char *why, size_t whylen);

/* thin_dump / cache_dump / era_dump XML. The first block holds every
 * attribute of <superblock> plus totals; then thin: one block per <device>
 * (its attributes plus counted mappings), era: one block per <writeset>;
 * cache has the one block. */
int dmpd_summary_parse(enum dmpd_kind kind, const char *xml, size_t len, struct kv_doc *doc,
		       char *why, size_t whylen);

/* thin_delta XML, plain or --verbose: one block per range, kind=
 * (different, same, left_only, right_only) followed by the range's
 * attributes (begin, length; verbose adds data_begin or left_data_begin and
 * right_data_begin). Units are pool data blocks. No range gives no block. */
int dmpd_delta_parse(const char *xml, size_t len, struct kv_doc *doc, char *why, size_t whylen);

#endif
