/* Text helpers every dmpd parser uses: failure reasons, line splitting,
 * trimming, strict numbers and the cleaning of tool text into values. */
#include "dmpd_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dmpd_vfail(char *why, size_t whylen, const char *tool, size_t line, const char *fmt,
	       va_list ap)
{
	if (!why || !whylen)
		return -EINVAL;
	int n = line ? snprintf(why, whylen, "%s line %zu: ", tool, line)
		     : snprintf(why, whylen, "%s: ", tool);
	if (n >= 0 && (size_t)n < whylen)
		vsnprintf(why + n, whylen - (size_t)n, fmt, ap);
	return -EINVAL;
}

int dmpd_fail(char *why, size_t whylen, const char *tool, size_t line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = dmpd_vfail(why, whylen, tool, line, fmt, ap);
	va_end(ap);
	return r;
}

void dmpd_doc_truncate(struct kv_doc *d, size_t n)
{
	while (d->n > n)
		kv_block_free(&d->blocks[--d->n]);
}

bool dmpd_next_line(struct dmpd_lines *l, const char **s, size_t *len)
{
	if (l->p >= l->end)
		return false;
	const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
	const char *e = nl ? nl : l->end;
	*s = l->p;
	*len = (size_t)(e - l->p);
	l->p = nl ? nl + 1 : l->end;
	l->no++;
	return true;
}

void dmpd_trim(const char **s, size_t *len)
{
	while (*len && dmpd_is_blank(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len && dmpd_is_blank((*s)[*len - 1]))
		(*len)--;
}

bool dmpd_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* Length of the valid UTF-8 sequence of 2-4 bytes at s, or 0. Overlong
 * forms, surrogates and code points past U+10FFFF are invalid (RFC 3629),
 * so a value never carries what a JSON reader would reject. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

char *dmpd_clean_copy(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		if (u[i] >= 0x80) {
			size_t n = utf8_len(u + i, len - i);
			if (n) {
				memcpy(out + o, s + i, n);
				o += n;
				i += n;
				continue;
			}
			out[o++] = '?';
		} else if (u[i] == '\t') {
			out[o++] = ' ';
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			out[o++] = '?';
		} else {
			out[o++] = s[i];
		}
		i++;
	}
	out[o] = '\0';
	return out;
}
