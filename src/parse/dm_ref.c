/* Table text: lines split into start, length, target, params; device
 * references rewritten through a caller's resolver. Pure. */
#include "stsfs/dm_ref.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 5)))
static int fail(char *why, size_t whylen, int err, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return err;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Next whitespace-separated word of *p: start and length. */
static size_t next_word(const char **p, const char **word)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t')
		s++;
	*word = s;
	while (*s && *s != ' ' && *s != '\t')
		s++;
	*p = s;
	return (size_t)(s - *word);
}

static int parse_num(const char *w, size_t n, uint64_t *out)
{
	if (!all_digits(w, n) || n > 19)
		return -EINVAL;
	*out = strtoull(w, NULL, 10);
	return 0;
}

/* Collapsed copy of the rest of the line. */
static char *collapse(const char *s)
{
	char *out = malloc(strlen(s) + 1);
	if (!out)
		return NULL;
	char *o = out;
	const char *w;
	size_t n;
	while ((n = next_word(&s, &w)) > 0) {
		if (o != out)
			*o++ = ' ';
		memcpy(o, w, n);
		o += n;
	}
	*o = '\0';
	return out;
}

/* The kernel splits a target's arguments at every byte its isspace()
 * accepts (also \v, \f and Latin-1's non-breaking space 0xa0) and removes
 * a backslash before any byte. stsfs splits at blanks only, so such bytes
 * would let an argument stsfs saw as one word (not a device reference)
 * reach the kernel as a device: refused. */
static const char *kernel_reads_differently(const char *s)
{
	for (; *s; s++) {
		switch ((unsigned char)*s) {
		case '\\':
			return "a backslash";
		case '\v':
		case '\f':
		case 0xa0:
			return "a vertical tab, form feed or byte 0xa0";
		default:
			break;
		}
	}
	return NULL;
}

static int split_line(const char *line, int lineno, struct dm_line *out, char *why, size_t whylen)
{
	const char *p = line, *w;
	size_t n = next_word(&p, &w);
	if (parse_num(w, n, &out->start))
		return fail(why, whylen, -EINVAL, "table line %d: start '%.*s' is not a number of sectors", lineno, (int)n, w);
	n = next_word(&p, &w);
	if (parse_num(w, n, &out->length) || out->length == 0)
		return fail(why, whylen, -EINVAL, "table line %d: length '%.*s' is not a positive number of sectors",
			    lineno, (int)n, w);
	n = next_word(&p, &w);
	if (n == 0)
		return fail(why, whylen, -EINVAL, "table line %d: no target type", lineno);
	if (n >= DM_TARGET_NAME_MAX)
		return fail(why, whylen, -EINVAL, "table line %d: target type too long", lineno);
	memcpy(out->type, w, n);
	out->type[n] = '\0';
	const char *odd = kernel_reads_differently(p);
	if (odd)
		return fail(why, whylen, -EINVAL,
			    "table line %d: arguments may not contain %s: the kernel would split or unescape "
			    "them differently from how stsfs checks them", lineno, odd);
	out->params = collapse(p);
	return out->params ? 0 : -ENOMEM;
}

static bool blank(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	return *s == '\0';
}

int dm_table_split(const char *text, struct dm_lines *out, char *why, size_t whylen)
{
	out->v = NULL;
	out->n = 0;
	char *copy = strdup(text ? text : "");
	if (!copy)
		return -ENOMEM;
	int r = 0, lineno = 0;
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line && !r; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		char *cr = strchr(line, '\r');
		if (cr)
			*cr = '\0';
		if (blank(line))
			continue;
		struct dm_line *v = realloc(out->v, (out->n + 1) * sizeof(*v));
		if (!v) {
			r = -ENOMEM;
			break;
		}
		out->v = v;
		memset(&v[out->n], 0, sizeof(v[0]));
		r = split_line(line, lineno, &v[out->n], why, whylen);
		out->n++;
	}
	free(copy);
	if (!r && out->n == 0)
		r = fail(why, whylen, -EINVAL, "the table is empty");
	if (r)
		dm_lines_free(out);
	return r;
}

void dm_lines_free(struct dm_lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].params);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* The kernel takes an argument it expects a device in as MAJ:MIN, and
 * anything else as a path (relative ones from the daemon's working
 * directory, which is /). Every word with a slash is therefore treated as a
 * reference: one that names no device stsfs may use is refused, and none
 * reaches the kernel as a path. */
bool dm_is_devref(const char *tok)
{
	const char *colon = strchr(tok, ':');
	if (colon && all_digits(tok, (size_t)(colon - tok)) && all_digits(colon + 1, strlen(colon + 1)))
		return true;
	return strchr(tok, '/') != NULL;
}

/* params with each device reference replaced; *out malloc'd. */
static int translate_params(const char *params, dm_resolve_fn resolve, void *arg, char **out, char *why,
			    size_t whylen)
{
	size_t cap = strlen(params) * 2 + 64, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	const char *p = params, *w;
	size_t n;
	int r = 0;
	while (!r && (n = next_word(&p, &w)) > 0) {
		char tok[4096], rep[64];
		if (n >= sizeof(tok)) {
			r = fail(why, whylen, -EINVAL, "argument too long");
			break;
		}
		memcpy(tok, w, n);
		tok[n] = '\0';
		const char *use = tok;
		if (dm_is_devref(tok)) {
			r = resolve(arg, tok, rep, sizeof(rep), why, whylen);
			use = rep;
		}
		size_t ul = strlen(use);
		if (!r && len + ul + 2 > cap) {
			char *nb = realloc(buf, cap = (len + ul + 2) * 2);
			r = nb ? 0 : -ENOMEM;
			buf = nb ? nb : buf;
		}
		if (!r) {
			if (len)
				buf[len++] = ' ';
			memcpy(buf + len, use, ul);
			len += ul;
		}
	}
	buf[len] = '\0';
	if (r)
		free(buf);
	else
		*out = buf;
	return r;
}

int dm_lines_translate(struct dm_lines *l, dm_resolve_fn resolve, void *arg, char *why, size_t whylen)
{
	for (size_t i = 0; i < l->n; i++) {
		char reason[256] = "";
		char *np = NULL;
		int r = translate_params(l->v[i].params, resolve, arg, &np, reason, sizeof(reason));
		if (r)
			return fail(why, whylen, r, "table line %zu: %s", i + 1, reason[0] ? reason : strerror(-r));
		free(l->v[i].params);
		l->v[i].params = np;
	}
	return 0;
}

char *dm_lines_format(const struct dm_lines *l)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		fprintf(f, "%" PRIu64 " %" PRIu64 " %s%s%s\n", l->v[i].start, l->v[i].length, l->v[i].type,
			l->v[i].params[0] ? " " : "", l->v[i].params);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
