/* Pure parsers for the values users write into attribute files. No I/O.
 * Each returns 0 or -EINVAL and, on error, a readable reason in `why`. */
#ifndef STSFS_VALUE_H
#define STSFS_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stsfs/why.h"

/* Copy of `text` (len bytes, not NUL-terminated) without surrounding
 * whitespace into dst (size dstlen). -EINVAL when it does not fit or
 * contains a NUL byte. */
int value_trim(const char *text, size_t len, char *dst, size_t dstlen, char *why, size_t whylen);

/* Bytes with optional suffix K M G T (powers of 1024), also KiB MiB GiB TiB
 * and lower-case k m g t; plain decimal otherwise. Overflow is an error. */
int value_parse_size(const char *s, uint64_t *out, char *why, size_t whylen);

/* Plain unsigned decimal. */
int value_parse_u64(const char *s, uint64_t *out, char *why, size_t whylen);

/* 0/1, y/n, yes/no, on/off, true/false (any case). */
int value_parse_bool(const char *s, bool *out, char *why, size_t whylen);

/* Object names: [A-Za-z0-9][A-Za-z0-9_.+-]*, at most maxlen bytes, after
 * an optional tenant prefix (value_tenant_prefix; the whole name counts). */
int value_check_name(const char *s, size_t maxlen, char *why, size_t whylen);
/* The length of s's tenant prefix "UID:" or "pidns-INODE:" (':' included),
 * 0 when it has none (docs/tenancy.md). */
size_t value_tenant_prefix(const char *s);

/* True for names of the kernel's own loop devices ("loop" + digits). */
bool value_is_kernel_loop_name(const char *s);

/* True when canonical absolute path `path` equals `dir` or lies below it.
 * Both must already be canonical (no "..", no symlinks, no trailing '/'). */
bool value_path_within(const char *path, const char *dir);

/* A disk geometry as dmsetup setgeometry takes it: "CYLINDERS HEADS SECTORS
 * START", decimal, within what the kernel accepts (65535, 255, 255, and an
 * unsigned long). out: the four numbers in that order. */
int value_parse_geometry(const char *s, uint64_t out[4], char *why, size_t whylen);

/* Logical sector size: power of two in 512..4096. */
int value_check_sector_size(uint64_t v, char *why, size_t whylen);

#endif
