#include "stsfs/value.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

__attribute__((format(printf, 3, 4)))
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (why && whylen)
		vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int value_trim(const char *text, size_t len, char *dst, size_t dstlen, char *why, size_t whylen)
{
	if (memchr(text, '\0', len))
		return fail(why, whylen, "value contains a NUL byte");
	while (len && isspace((unsigned char)*text)) {
		text++;
		len--;
	}
	while (len && isspace((unsigned char)text[len - 1]))
		len--;
	if (len >= dstlen)
		return fail(why, whylen, "value too long (%zu bytes, at most %zu)", len, dstlen - 1);
	memcpy(dst, text, len);
	dst[len] = '\0';
	return 0;
}

int value_parse_u64(const char *s, uint64_t *out, char *why, size_t whylen)
{
	uint64_t v = 0;
	if (!*s)
		return fail(why, whylen, "empty value, expected a number");
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return fail(why, whylen, "'%s' is not a number", s);
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return fail(why, whylen, "'%s' is too large", s);
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int suffix_shift(const char *suf)
{
	static const struct { const char *name; int shift; } units[] = {
		{ "", 0 }, { "B", 0 },
		{ "K", 10 }, { "KiB", 10 }, { "KB", 10 },
		{ "M", 20 }, { "MiB", 20 }, { "MB", 20 },
		{ "G", 30 }, { "GiB", 30 }, { "GB", 30 },
		{ "T", 40 }, { "TiB", 40 }, { "TB", 40 },
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcasecmp(suf, units[i].name) == 0)
			return units[i].shift;
	return -1;
}

int value_parse_size(const char *s, uint64_t *out, char *why, size_t whylen)
{
	size_t digits = strspn(s, "0123456789");
	if (digits == 0)
		return fail(why, whylen, "'%s' is not a size (bytes, optional suffix K, M, G, T)", s);
	char num[32];
	if (digits >= sizeof(num))
		return fail(why, whylen, "'%s' is too large", s);
	memcpy(num, s, digits);
	num[digits] = '\0';
	int shift = suffix_shift(s + digits);
	if (shift < 0)
		return fail(why, whylen, "'%s': unknown size suffix '%s' (use K, M, G or T)", s, s + digits);
	uint64_t v;
	int r = value_parse_u64(num, &v, why, whylen);
	if (r)
		return r;
	if (shift && v > (UINT64_MAX >> shift))
		return fail(why, whylen, "'%s' is too large", s);
	*out = v << shift;
	return 0;
}

int value_parse_bool(const char *s, bool *out, char *why, size_t whylen)
{
	static const char *const yes[] = { "1", "y", "yes", "on", "true" };
	static const char *const no[] = { "0", "n", "no", "off", "false" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return fail(why, whylen, "'%s' is not a boolean (0/1, y/n, yes/no, on/off, true/false)", s);
}

size_t value_tenant_prefix(const char *s)
{
	const char *d = strncmp(s, "pidns-", 6) == 0 ? s + 6 : s;
	size_t digits = strspn(d, "0123456789");
	if (digits == 0 || digits > 20 || d[digits] != ':')
		return 0;
	return (size_t)(d - s) + digits + 1;
}

int value_check_name(const char *s, size_t maxlen, char *why, size_t whylen)
{
	size_t len = strlen(s), prefix = value_tenant_prefix(s);
	if (prefix && len > maxlen)
		return fail(why, whylen, "name '%.32s...' is longer than %zu bytes with its tenant's prefix", s + prefix,
			    maxlen > prefix ? maxlen - prefix : 0);
	s += prefix;
	len -= prefix;
	if (len == 0)
		return fail(why, whylen, "empty name");
	if (len > maxlen)
		return fail(why, whylen, "name '%.32s...' is longer than %zu bytes", s, maxlen);
	if (!isalnum((unsigned char)s[0]) || !isascii((unsigned char)s[0]))
		return fail(why, whylen, "name '%s' must start with a letter or digit", s);
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!(isascii(c) && (isalnum(c) || strchr("_.+-", c))))
			return fail(why, whylen, "name '%s' has character '%c' (allowed: A-Z a-z 0-9 _ . + -)", s,
				    isprint(c) ? c : '?');
	}
	return 0;
}

bool value_is_kernel_loop_name(const char *s)
{
	if (strncmp(s, "loop", 4) != 0 || !s[4])
		return false;
	return strspn(s + 4, "0123456789") == strlen(s + 4);
}

bool value_path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int value_check_sector_size(uint64_t v, char *why, size_t whylen)
{
	if (v < 512 || v > 4096 || (v & (v - 1)))
		return fail(why, whylen, "sector size %llu: must be 512, 1024, 2048 or 4096",
			    (unsigned long long)v);
	return 0;
}

int value_parse_geometry(const char *s, uint64_t out[4], char *why, size_t whylen)
{
	static const char *const what[4] = { "cylinders", "heads", "sectors", "start" };
	static const uint64_t max[4] = { 65535, 255, 255, ULONG_MAX };
	const char *p = s;
	for (int i = 0; i < 4; i++) {
		p += strspn(p, " \t");
		size_t len = strspn(p, "0123456789");
		if (!len || (p[len] && !strchr(" \t", p[len])))
			return fail(why, whylen, "geometry takes CYLINDERS HEADS SECTORS START, not '%s'", s);
		errno = 0;
		unsigned long long v = strtoull(p, NULL, 10);
		if (errno == ERANGE || v > max[i])
			return fail(why, whylen, "geometry: %s %.*s is more than %llu", what[i], (int)len, p,
				       (unsigned long long)max[i]);
		out[i] = v;
		p += len;
	}
	if (p[strspn(p, " \t")])
		return fail(why, whylen, "geometry takes CYLINDERS HEADS SECTORS START, not '%s'", s);
	return 0;
}
