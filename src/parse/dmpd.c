/* Output of the device-mapper-persistent-data tools into kv documents.
 * Formats as thin-provisioning-tools 0.9.0 prints them (the C++ tools in
 * Debian 12), with the additions of the Rust 1.x tools where they are known
 * (<def>/<ref> in thin_dump, <marked> in era_dump). Keys: docs/metadata.md. */
#include "stsfs/dmpd_parse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- common -------------------------------------------------------------- */

/* Writes "TOOL line N: reason" (or "TOOL: reason" for line 0) into why and
 * returns -EINVAL. */
static int vfail(char *why, size_t whylen, const char *tool, size_t line, const char *fmt,
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

__attribute__((format(printf, 5, 6)))
static int fail(char *why, size_t whylen, const char *tool, size_t line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(why, whylen, tool, line, fmt, ap);
	va_end(ap);
	return r;
}

static void doc_truncate(struct kv_doc *d, size_t n)
{
	while (d->n > n)
		kv_block_free(&d->blocks[--d->n]);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One line of buf at a time; a trailing '\n' is not part of the line. */
struct lines {
	const char *p, *end;
	size_t no;
};

static bool next_line(struct lines *l, const char **s, size_t *len)
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

static void trim(const char **s, size_t *len)
{
	while (*len && is_blank(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len && is_blank((*s)[*len - 1]))
		(*len)--;
}

/* Strict unsigned decimal: no sign, no spaces, no overflow. */
static bool parse_u64(const char *s, uint64_t *out)
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

/* Length of the valid UTF-8 sequence of 2-4 bytes at s, or 0. */
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

/* Malloc'd one-line copy for a value: tabs become spaces, other control
 * bytes and invalid UTF-8 become '?'. */
static char *clean_copy(const char *s, size_t len)
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

/* ---- check --------------------------------------------------------------- */

struct slice {
	const char *s;
	size_t len;
};

struct slices {
	struct slice *v;
	size_t n, cap;
};

static int slices_push(struct slices *l, const char *s, size_t len)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct slice *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct slice){ s, len };
	return 0;
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(s, prefix, n) == 0;
}

static bool equals(const char *s, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(s, word, len) == 0;
}

/* Progress the tools print while they work, never a finding. 0.9.0 prints
 * "examining superblock", "checking space map counts", ... unindented (its
 * findings are indented under them, or are other text); the Rust tools
 * print a title, sub-titles and "Progress: N%". raw is the untrimmed line. */
static bool is_progress(const char *raw, size_t rawlen, const char *s, size_t len)
{
	if (!rawlen || is_blank(raw[0]))
		return false;
	return starts_with(s, len, "examining ") || starts_with(s, len, "checking ") ||
	       starts_with(s, len, "Checking ") || starts_with(s, len, "Progress: ") ||
	       starts_with(s, len, "number of devices to check: ") ||
	       equals(s, len, "device details tree") || equals(s, len, "mapping tree");
}

#define INFO_KEY_MAX 48

static const char *const check_keys[] = { "result", "exit_code", "problems", "problem" };

/* stdout's KEY=VALUE (thin_check: TRANSACTION_ID=2): adds key=value to b
 * and returns 1, or 0 when the line is not such a line or its key is taken. */
static int add_info_line(struct kv_block *b, const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);
	size_t klen = eq ? (size_t)(eq - s) : 0;
	if (!klen || klen > INFO_KEY_MAX || s[0] < 'A' || s[0] > 'Z')
		return 0;
	char key[INFO_KEY_MAX + 1];
	for (size_t i = 0; i < klen; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
		key[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	key[klen] = '\0';
	for (size_t i = 0; i < sizeof(check_keys) / sizeof(check_keys[0]); i++)
		if (strcmp(key, check_keys[i]) == 0)
			return 0;
	if (kv_get(b, key))
		return 0;
	char *val = clean_copy(eq + 1, len - klen - 1);
	if (!val)
		return -ENOMEM;
	int r = kv_add_auto(b, key, val);
	free(val);
	return r ? r : 1;
}

/* Findings of one stream into found; info lines (stdout only) into b. */
static int scan_check_stream(const char *buf, size_t len, struct kv_block *info,
			     struct slices *found)
{
	struct lines l = { buf, buf + len, 0 };
	const char *raw;
	size_t rawlen;
	while (next_line(&l, &raw, &rawlen)) {
		const char *s = raw;
		size_t n = rawlen;
		trim(&s, &n);
		if (!n || is_progress(raw, rawlen, s, n))
			continue;
		if (info) {
			int r = add_info_line(info, s, n);
			if (r < 0)
				return r;
			if (r)
				continue;
		}
		int r = slices_push(found, s, n);
		if (r)
			return r;
	}
	return 0;
}

static int check_block(const char *out, size_t outlen, const char *err, size_t errlen,
		       int exit_status, struct kv_block *b)
{
	struct slices found = { 0 }, found_out = { 0 };
	int r;
	if ((r = kv_add_str(b, "result", exit_status ? "error" : "ok")) ||
	    (r = kv_add_u64(b, "exit_code", (uint64_t)exit_status)) ||
	    (r = scan_check_stream(out, outlen, b, &found_out)) ||
	    (r = scan_check_stream(err, errlen, NULL, &found)))
		goto out;
	for (size_t i = 0; i < found_out.n && !r; i++)
		r = slices_push(&found, found_out.v[i].s, found_out.v[i].len);
	if (r || (r = kv_add_u64(b, "problems", found.n)) || (r = kv_add_list(b, "problem")))
		goto out;
	for (size_t i = 0; i < found.n && i < DMPD_MAX_PROBLEMS && !r; i++) {
		char *text = clean_copy(found.v[i].s, found.v[i].len);
		r = text ? kv_add_str(b, "problem", text) : -ENOMEM;
		free(text);
	}
out:
	free(found.v);
	free(found_out.v);
	return r;
}

int dmpd_check_parse(const char *out, size_t outlen, const char *err, size_t errlen,
		     int exit_status, struct kv_doc *doc, char *why, size_t whylen)
{
	if (exit_status < 0 || exit_status > 255)
		return fail(why, whylen, "check", 0, "exit status %d out of range 0-255", exit_status);
	size_t n0 = doc->n;
	struct kv_block *b = kv_doc_add_block(doc);
	if (!b)
		return -ENOMEM;
	int r = check_block(out ? out : "", out ? outlen : 0, err ? err : "", err ? errlen : 0,
			    exit_status, b);
	if (r)
		doc_truncate(doc, n0);
	return r;
}

/* ---- thin_ls ------------------------------------------------------------- */

#define LS_MAX_COLS 32
#define LS_NAME_MAX 32

struct ls_col {
	char key[LS_NAME_MAX + 1];
	bool human; /* "4096KiB": always a string */
};

/* Splits a line at runs of spaces/tabs into at most max words. Returns the
 * number of words, max + 1 when there are more. */
static size_t split_words(const char *s, size_t len, struct slice *w, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		while (i < len && is_blank(s[i]))
			i++;
		if (i == len)
			break;
		size_t start = i;
		while (i < len && !is_blank(s[i]))
			i++;
		if (n == max)
			return max + 1;
		w[n++] = (struct slice){ s + start, i - start };
	}
	return n;
}

static int ls_header(const char *s, size_t len, size_t line, struct ls_col *cols, size_t *ncols,
		     char *why, size_t whylen)
{
	struct slice w[LS_MAX_COLS];
	size_t n = split_words(s, len, w, LS_MAX_COLS);
	if (n > LS_MAX_COLS)
		return fail(why, whylen, "thin_ls", line, "more than %d columns", LS_MAX_COLS);
	for (size_t i = 0; i < n; i++) {
		if (w[i].len > LS_NAME_MAX)
			return fail(why, whylen, "thin_ls", line, "column name too long");
		for (size_t j = 0; j < w[i].len; j++) {
			char c = w[i].s[j];
			if (!((c >= 'A' && c <= 'Z') || c == '_' || (j && c >= '0' && c <= '9')))
				return fail(why, whylen, "thin_ls", line,
					    "'%.*s' is not a column name (no header line?)",
					    (int)w[i].len, w[i].s);
			cols[i].key[j] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		}
		cols[i].key[w[i].len] = '\0';
		cols[i].human = strcmp(cols[i].key, "mapped") == 0 ||
				strcmp(cols[i].key, "exclusive") == 0 ||
				strcmp(cols[i].key, "shared") == 0;
		for (size_t j = 0; j < i; j++)
			if (strcmp(cols[j].key, cols[i].key) == 0)
				return fail(why, whylen, "thin_ls", line, "column %.*s repeats",
					    (int)w[i].len, w[i].s);
	}
	*ncols = n;
	return 0;
}

static int ls_row(const char *s, size_t len, size_t line, const struct ls_col *cols, size_t ncols,
		  struct kv_doc *doc, char *why, size_t whylen)
{
	struct slice w[LS_MAX_COLS];
	size_t n = split_words(s, len, w, ncols);
	if (n != ncols)
		return fail(why, whylen, "thin_ls", line, "%s%zu fields, the header has %zu",
			    n > ncols ? "more than " : "", n > ncols ? ncols : n, ncols);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			if (s[i] != '\t')
				return fail(why, whylen, "thin_ls", line, "unexpected byte 0x%02x",
					    (unsigned char)s[i]);
	struct kv_block *b = kv_doc_add_block(doc);
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char *val = strndup(w[i].s, w[i].len);
		if (!val)
			return -ENOMEM;
		int r = cols[i].human ? kv_add_str(b, cols[i].key, val)
				      : kv_add_auto(b, cols[i].key, val);
		free(val);
		if (r)
			return r;
	}
	return 0;
}

static int ls_parse(const char *text, size_t len, struct kv_doc *doc, char *why, size_t whylen)
{
	struct ls_col cols[LS_MAX_COLS];
	size_t ncols = 0;
	bool header = false;
	struct lines l = { text, text + len, 0 };
	const char *s;
	size_t n;
	while (next_line(&l, &s, &n)) {
		trim(&s, &n);
		if (!n)
			continue;
		int r = header ? ls_row(s, n, l.no, cols, ncols, doc, why, whylen)
			       : ls_header(s, n, l.no, cols, &ncols, why, whylen);
		if (r)
			return r;
		header = true;
	}
	if (!header)
		return fail(why, whylen, "thin_ls", 0, "no header line (empty output)");
	return 0;
}

int dmpd_ls_parse(const char *text, size_t len, struct kv_doc *doc, char *why, size_t whylen)
{
	size_t n0 = doc->n;
	int r = ls_parse(text ? text : "", text ? len : 0, doc, why, whylen);
	if (r)
		doc_truncate(doc, n0);
	return r;
}

/* ---- a small strict XML scanner ---------------------------------------------
 * Enough for the tools' output: elements with double-quoted attributes,
 * whitespace between tags, nothing else (no text content, comments,
 * declarations, CDATA). Names are lower-case [a-z_][a-z0-9_]* since they
 * become keys. Attribute values are printable ASCII after decoding the five
 * predefined entities and &#N;/&#xN; references. */

#define XML_NAME_MAX 32
#define XML_MAX_ATTRS 16
#define XML_VALUES_MAX 4096

enum xml_type { XT_OPEN, XT_CLOSE, XT_EMPTY };

struct xml_attr {
	char name[XML_NAME_MAX + 1];
	const char *val; /* into xml_tag.buf */
};

struct xml_tag {
	enum xml_type type;
	char name[XML_NAME_MAX + 1];
	size_t line;
	size_t n;
	struct xml_attr a[XML_MAX_ATTRS];
	char buf[XML_VALUES_MAX];
};

struct xml {
	const char *p, *end;
	size_t line;
	const char *tool;
	char *why;
	size_t whylen;
};

__attribute__((format(printf, 2, 3)))
static int xfail(struct xml *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(x->why, x->whylen, x->tool, x->line, fmt, ap);
	va_end(ap);
	return r;
}

static bool xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skips whitespace; true when there was some. */
static bool xml_skip_space(struct xml *x)
{
	const char *start = x->p;
	for (; x->p < x->end && xml_space(*x->p); x->p++)
		if (*x->p == '\n')
			x->line++;
	return x->p != start;
}

/* A printable description of the byte at p for error messages. */
static const char *xml_what(const struct xml *x, char *buf, size_t len)
{
	if (x->p >= x->end)
		return "end of input";
	unsigned char c = (unsigned char)*x->p;
	if (c > 0x20 && c < 0x7f)
		snprintf(buf, len, "'%c'", c);
	else
		snprintf(buf, len, "byte 0x%02x", c);
	return buf;
}

static int xml_name(struct xml *x, char *out, const char *what)
{
	size_t n = 0;
	for (; x->p < x->end; x->p++, n++) {
		char c = *x->p;
		if (!((c >= 'a' && c <= 'z') || c == '_' || (n && c >= '0' && c <= '9')))
			break;
		if (n == XML_NAME_MAX)
			return xfail(x, "%s name longer than %d bytes", what, XML_NAME_MAX);
		out[n] = c;
	}
	out[n] = '\0';
	if (!n) {
		char b[16];
		return xfail(x, "expected %s name, found %s", what, xml_what(x, b, sizeof(b)));
	}
	return 0;
}

/* Decodes the entity at x->p (just after '&') into *c. */
static int xml_entity(struct xml *x, char *c)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' }, { "quot;", '"' }, { "apos;", '\'' },
	};
	size_t left = (size_t)(x->end - x->p);
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);
		if (left >= n && memcmp(x->p, named[i].name, n) == 0) {
			x->p += n;
			*c = named[i].c;
			return 0;
		}
	}
	if (left && *x->p == '#') {
		bool hex = left > 1 && x->p[1] == 'x';
		const char *q = x->p + (hex ? 2 : 1);
		unsigned v = 0, digits = 0;
		for (; q < x->end && *q != ';' && digits < 8; q++, digits++) {
			int d = *q >= '0' && *q <= '9'		   ? *q - '0'
				: hex && *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
				: hex && *q >= 'A' && *q <= 'F' ? *q - 'A' + 10
								: -1;
			if (d < 0)
				break;
			v = v * (hex ? 16 : 10) + (unsigned)d;
		}
		if (digits && q < x->end && *q == ';' && v >= 0x20 && v < 0x7f) {
			x->p = q + 1;
			*c = (char)v;
			return 0;
		}
	}
	return xfail(x, "unsupported entity (only &amp; &lt; &gt; &quot; &apos; and printable "
			"ASCII character references)");
}

static int xml_value(struct xml *x, struct xml_tag *t, size_t *used, const char **val)
{
	if (x->p >= x->end || *x->p != '"') {
		char b[16];
		return xfail(x, "expected '\"' to open an attribute value, found %s",
			     xml_what(x, b, sizeof(b)));
	}
	x->p++;
	char *out = t->buf + *used;
	size_t n = 0;
	for (;;) {
		if (x->p >= x->end)
			return xfail(x, "attribute value not closed at end of input");
		char c = *x->p;
		if (c == '"') {
			x->p++;
			break;
		}
		if (c == '&') {
			x->p++;
			int r = xml_entity(x, &c);
			if (r)
				return r;
		} else if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f || c == '<') {
			char b[16];
			return xfail(x, "%s in an attribute value", xml_what(x, b, sizeof(b)));
		} else {
			x->p++;
		}
		if (*used + n + 1 >= XML_VALUES_MAX)
			return xfail(x, "attribute values longer than %d bytes", XML_VALUES_MAX);
		out[n++] = c;
	}
	out[n] = '\0';
	*used += n + 1;
	*val = out;
	return 0;
}

/* The next tag: 1, 0 at the end of input, or -EINVAL. */
static int xml_next(struct xml *x, struct xml_tag *t)
{
	char b[16];
	xml_skip_space(x);
	if (x->p >= x->end)
		return 0;
	if (*x->p != '<')
		return xfail(x, "unexpected text starting with %s", xml_what(x, b, sizeof(b)));
	t->line = x->line;
	t->n = 0;
	x->p++;
	if (x->p < x->end && (*x->p == '?' || *x->p == '!'))
		return xfail(x, "declarations, comments and DOCTYPE are not supported");
	bool close = x->p < x->end && *x->p == '/';
	if (close)
		x->p++;
	int r = xml_name(x, t->name, "element");
	if (r)
		return r;
	size_t used = 0;
	for (;;) {
		bool space = xml_skip_space(x);
		if (x->p >= x->end)
			return xfail(x, "<%s%s> not finished at end of input", close ? "/" : "", t->name);
		if (*x->p == '>') {
			x->p++;
			t->type = close ? XT_CLOSE : XT_OPEN;
			return 1;
		}
		if (*x->p == '/' && !close) {
			x->p++;
			if (x->p >= x->end || *x->p != '>')
				return xfail(x, "expected '>' after '/' in <%s>", t->name);
			x->p++;
			t->type = XT_EMPTY;
			return 1;
		}
		if (close)
			return xfail(x, "unexpected %s in </%s>", xml_what(x, b, sizeof(b)), t->name);
		if (!space)
			return xfail(x, "unexpected %s in <%s>", xml_what(x, b, sizeof(b)), t->name);
		if (t->n == XML_MAX_ATTRS)
			return xfail(x, "<%s> has more than %d attributes", t->name, XML_MAX_ATTRS);
		struct xml_attr *a = &t->a[t->n];
		if ((r = xml_name(x, a->name, "attribute")))
			return r;
		for (size_t i = 0; i < t->n; i++)
			if (strcmp(t->a[i].name, a->name) == 0)
				return xfail(x, "<%s> repeats attribute %s", t->name, a->name);
		xml_skip_space(x);
		if (x->p >= x->end || *x->p != '=')
			return xfail(x, "expected '=' after attribute %s, found %s", a->name,
				     xml_what(x, b, sizeof(b)));
		x->p++;
		xml_skip_space(x);
		if ((r = xml_value(x, t, &used, &a->val)))
			return r;
		t->n++;
	}
}

static const char *xml_attr(const struct xml_tag *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->a[i].name, name) == 0)
			return t->a[i].val;
	return NULL;
}

/* ---- documents ------------------------------------------------------------- */

enum doc_mode { M_THIN, M_CACHE, M_ERA, M_DELTA };

/* Which element may appear where; parent "" is the document root. */
struct elem_rule {
	const char *name, *parent;
	bool open, empty; /* may be a start tag / an empty-element tag */
};

static const struct elem_rule thin_rules[] = {
	{ "superblock", "", true, true },
	{ "def", "superblock", true, true },
	{ "device", "superblock", true, true },
	{ "range_mapping", "device", false, true },
	{ "single_mapping", "device", false, true },
	{ "ref", "device", false, true },
	{ "range_mapping", "def", false, true },
	{ "single_mapping", "def", false, true },
	{ NULL, NULL, false, false },
};

static const struct elem_rule cache_rules[] = {
	{ "superblock", "", true, true },
	{ "mappings", "superblock", true, true },
	{ "mapping", "mappings", false, true },
	{ "hints", "superblock", true, true },
	{ "hint", "hints", false, true },
	{ "discards", "superblock", true, true },
	{ "discard", "discards", false, true },
	{ NULL, NULL, false, false },
};

static const struct elem_rule era_rules[] = {
	{ "superblock", "", true, true },
	{ "writeset", "superblock", true, true },
	{ "bit", "writeset", false, true },
	{ "marked", "writeset", false, true },
	{ "era_array", "superblock", true, true },
	{ "era", "era_array", false, true },
	{ NULL, NULL, false, false },
};

static const struct elem_rule delta_rules[] = {
	{ "superblock", "", true, true },
	{ "diff", "superblock", true, true },
	{ "different", "diff", true, true },
	{ "same", "diff", true, true },
	{ "left_only", "diff", true, true },
	{ "right_only", "diff", true, true },
	{ "range", "different", false, true },
	{ "range", "same", false, true },
	{ "range", "left_only", false, true },
	{ "range", "right_only", false, true },
	{ NULL, NULL, false, false },
};

struct def {
	char *name;
	uint64_t blocks;
};

#define XML_DEPTH 4
#define NO_BLOCK SIZE_MAX

struct summary {
	enum doc_mode mode;
	struct xml x;
	struct kv_doc *doc;
	char stack[XML_DEPTH][XML_NAME_MAX + 1];
	size_t depth;
	bool root_done;
	size_t sb;  /* block of <superblock>, NO_BLOCK for delta */
	size_t cur; /* block of the open <device>/<writeset>, or NO_BLOCK */
	/* totals for the superblock block */
	uint64_t devices, mappings, dirty, hints, discards, writesets, eras, diffs;
	/* the open <device>, <def> or <writeset> */
	uint64_t ranges, singles, refs, blocks, bits;
	/* thin_dump's shared runs (Rust): <def name=...> referenced by <ref> */
	struct def *defs;
	size_t ndefs, capdefs;
	bool defs_sorted;
	struct def *cur_def;
};

static struct kv_block *blk(struct summary *s, size_t i)
{
	return &s->doc->blocks[i];
}

static int add_attrs(struct kv_block *b, const struct xml_tag *t)
{
	for (size_t i = 0; i < t->n; i++) {
		int r = kv_add_auto(b, t->a[i].name, t->a[i].val);
		if (r)
			return r;
	}
	return 0;
}

static int new_block(struct summary *s, const struct xml_tag *t, size_t *idx)
{
	struct kv_block *b = kv_doc_add_block(s->doc);
	if (!b)
		return -ENOMEM;
	*idx = s->doc->n - 1;
	return add_attrs(b, t);
}

/* A computed key; an attribute of the same name would make it ambiguous. */
static int add_total(struct summary *s, size_t idx, const char *key, uint64_t v)
{
	if (kv_get(blk(s, idx), key))
		return xfail(&s->x, "attribute %s clashes with the computed key of that name", key);
	return kv_add_u64(blk(s, idx), key, v);
}

static int need_u64(struct summary *s, const struct xml_tag *t, const char *name, uint64_t *v)
{
	const char *val = xml_attr(t, name);
	if (!val)
		return xfail(&s->x, "<%s> lacks attribute %s", t->name, name);
	if (!parse_u64(val, v))
		return xfail(&s->x, "<%s> attribute %s: '%.40s' is not a number", t->name, name, val);
	return 0;
}

static int need_bool(struct summary *s, const struct xml_tag *t, const char *name, bool *v)
{
	const char *val = xml_attr(t, name);
	if (!val)
		return xfail(&s->x, "<%s> lacks attribute %s", t->name, name);
	if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0)
		return xfail(&s->x, "<%s> attribute %s: '%.40s' is not true or false", t->name, name,
			     val);
	*v = val[0] == 't';
	return 0;
}

static int add_blocks(struct summary *s, uint64_t *acc, uint64_t n)
{
	if (*acc > UINT64_MAX - n)
		return xfail(&s->x, "block count overflows");
	*acc += n;
	return 0;
}

static int def_cmp(const void *a, const void *b)
{
	return strcmp(((const struct def *)a)->name, ((const struct def *)b)->name);
}

static int thin_ref(struct summary *s, const struct xml_tag *t)
{
	const char *name = xml_attr(t, "name");
	if (!name)
		return xfail(&s->x, "<ref> lacks attribute name");
	if (!s->defs_sorted && s->ndefs) {
		qsort(s->defs, s->ndefs, sizeof(*s->defs), def_cmp);
		for (size_t i = 1; i < s->ndefs; i++)
			if (strcmp(s->defs[i - 1].name, s->defs[i].name) == 0)
				return xfail(&s->x, "<def name=\"%.40s\"> appears twice", s->defs[i].name);
		s->defs_sorted = true;
	}
	struct def key = { .name = (char *)name };
	const struct def *d = s->ndefs ? bsearch(&key, s->defs, s->ndefs, sizeof(*s->defs), def_cmp)
				       : NULL;
	if (!d)
		return xfail(&s->x, "<ref name=\"%.40s\"> names no <def>", name);
	s->refs++;
	return add_blocks(s, &s->blocks, d->blocks);
}

static int thin_def(struct summary *s, const struct xml_tag *t)
{
	const char *name = xml_attr(t, "name");
	if (!name)
		return xfail(&s->x, "<def> lacks attribute name");
	if (s->ndefs == s->capdefs) {
		size_t cap = s->capdefs ? s->capdefs * 2 : 16;
		struct def *v = realloc(s->defs, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->defs = v;
		s->capdefs = cap;
	}
	struct def *d = &s->defs[s->ndefs];
	d->name = strdup(name);
	if (!d->name)
		return -ENOMEM;
	d->blocks = 0;
	s->ndefs++;
	s->defs_sorted = false;
	s->cur_def = t->type == XT_OPEN ? d : NULL;
	return 0;
}

static int thin_device_end(struct summary *s)
{
	int r;
	if ((r = add_total(s, s->cur, "range_mappings", s->ranges)) ||
	    (r = add_total(s, s->cur, "single_mappings", s->singles)) ||
	    (r = add_total(s, s->cur, "shared_refs", s->refs)) ||
	    (r = add_total(s, s->cur, "mapped_blocks_counted", s->blocks)))
		return r;
	s->cur = NO_BLOCK;
	return 0;
}

static int thin_tag(struct summary *s, const struct xml_tag *t, const char *parent)
{
	uint64_t len;
	int r;
	bool in_def = strcmp(parent, "def") == 0;
	if (strcmp(t->name, "superblock") == 0)
		return new_block(s, t, &s->sb);
	if (strcmp(t->name, "def") == 0)
		return thin_def(s, t);
	if (strcmp(t->name, "device") == 0) {
		s->devices++;
		s->ranges = s->singles = s->refs = s->blocks = 0;
		if ((r = new_block(s, t, &s->cur)))
			return r;
		return t->type == XT_EMPTY ? thin_device_end(s) : 0;
	}
	if (strcmp(t->name, "range_mapping") == 0) {
		if ((r = need_u64(s, t, "length", &len)))
			return r;
		if (in_def)
			return add_blocks(s, &s->cur_def->blocks, len);
		s->ranges++;
		return add_blocks(s, &s->blocks, len);
	}
	if (strcmp(t->name, "single_mapping") == 0) {
		if (in_def)
			return add_blocks(s, &s->cur_def->blocks, 1);
		s->singles++;
		return add_blocks(s, &s->blocks, 1);
	}
	return thin_ref(s, t); /* "ref": the rules allow nothing else */
}

static int cache_tag(struct summary *s, const struct xml_tag *t)
{
	bool dirty;
	int r;
	if (strcmp(t->name, "superblock") == 0)
		return new_block(s, t, &s->sb);
	if (strcmp(t->name, "mapping") == 0) {
		if ((r = need_bool(s, t, "dirty", &dirty)))
			return r;
		s->mappings++;
		s->dirty += dirty;
	} else if (strcmp(t->name, "hint") == 0) {
		s->hints++;
	} else if (strcmp(t->name, "discard") == 0) {
		s->discards++;
	}
	return 0;
}

static int era_writeset_end(struct summary *s)
{
	int r;
	if ((r = add_total(s, s->cur, "bits", s->bits)) ||
	    (r = add_total(s, s->cur, "bits_set", s->blocks)))
		return r;
	s->cur = NO_BLOCK;
	return 0;
}

static int era_tag(struct summary *s, const struct xml_tag *t)
{
	uint64_t len;
	bool set;
	int r;
	if (strcmp(t->name, "superblock") == 0)
		return new_block(s, t, &s->sb);
	if (strcmp(t->name, "writeset") == 0) {
		s->writesets++;
		s->bits = s->blocks = 0;
		if ((r = new_block(s, t, &s->cur)))
			return r;
		return t->type == XT_EMPTY ? era_writeset_end(s) : 0;
	}
	if (strcmp(t->name, "bit") == 0) {
		if ((r = need_bool(s, t, "value", &set)))
			return r;
		s->bits++;
		s->blocks += set;
	} else if (strcmp(t->name, "marked") == 0) {
		if ((r = need_u64(s, t, "len", &len)))
			return r;
		return add_blocks(s, &s->blocks, len);
	} else if (strcmp(t->name, "era") == 0) {
		s->eras++;
	}
	return 0;
}

static int delta_range(struct summary *s, const struct xml_tag *t, const char *kind)
{
	uint64_t v;
	int r;
	if ((r = need_u64(s, t, "begin", &v)) || (r = need_u64(s, t, "length", &v)))
		return r;
	if (xml_attr(t, "kind"))
		return xfail(&s->x, "<%s> has an attribute kind", t->name);
	struct kv_block *b = kv_doc_add_block(s->doc);
	if (!b)
		return -ENOMEM;
	if ((r = kv_add_str(b, "kind", kind)))
		return r;
	return add_attrs(b, t);
}

static int delta_tag(struct summary *s, const struct xml_tag *t, const char *parent)
{
	if (strcmp(t->name, "superblock") == 0)
		return 0;
	if (strcmp(t->name, "diff") == 0)
		return s->diffs++ ? xfail(&s->x, "more than one <diff>") : 0;
	if (strcmp(t->name, "range") == 0)
		return delta_range(s, t, parent);
	/* a section: with its own begin/length (plain), or holding <range>s */
	if (t->type == XT_EMPTY)
		return delta_range(s, t, t->name);
	if (t->n)
		return xfail(&s->x, "<%s> with attributes holds <range>s", t->name);
	return 0;
}

static int on_tag(struct summary *s, const struct xml_tag *t, const char *parent)
{
	switch (s->mode) {
	case M_THIN:
		return thin_tag(s, t, parent);
	case M_CACHE:
		return cache_tag(s, t);
	case M_ERA:
		return era_tag(s, t);
	case M_DELTA:
		return delta_tag(s, t, parent);
	}
	return 0;
}

static int superblock_end(struct summary *s)
{
	int r = 0;
	switch (s->mode) {
	case M_THIN:
		r = add_total(s, s->sb, "devices", s->devices);
		break;
	case M_CACHE:
		if ((r = add_total(s, s->sb, "mappings", s->mappings)) ||
		    (r = add_total(s, s->sb, "dirty_mappings", s->dirty)) ||
		    (r = add_total(s, s->sb, "hints", s->hints)))
			break;
		r = add_total(s, s->sb, "discards", s->discards);
		break;
	case M_ERA:
		if ((r = add_total(s, s->sb, "writesets", s->writesets)))
			break;
		r = add_total(s, s->sb, "era_array_entries", s->eras);
		break;
	case M_DELTA:
		break;
	}
	return r;
}

static int on_close(struct summary *s, const char *name)
{
	if (strcmp(name, "superblock") == 0)
		return superblock_end(s);
	if (s->mode == M_THIN && strcmp(name, "device") == 0)
		return thin_device_end(s);
	if (s->mode == M_THIN && strcmp(name, "def") == 0)
		s->cur_def = NULL;
	if (s->mode == M_ERA && strcmp(name, "writeset") == 0)
		return era_writeset_end(s);
	return 0;
}

static const struct elem_rule *find_rule(const struct elem_rule *rules, const char *name,
					 const char *parent, bool *known)
{
	*known = false;
	for (const struct elem_rule *r = rules; r->name; r++) {
		if (strcmp(r->name, name) != 0)
			continue;
		*known = true;
		if (strcmp(r->parent, parent) == 0)
			return r;
	}
	return NULL;
}

static int walk(struct summary *s, const struct elem_rule *rules, struct xml_tag *t)
{
	int r;
	while ((r = xml_next(&s->x, t)) > 0) {
		/* reasons name the line the tag starts on */
		size_t line = s->x.line;
		s->x.line = t->line;
		const char *parent = s->depth ? s->stack[s->depth - 1] : "";
		if (t->type == XT_CLOSE) {
			if (!s->depth || strcmp(parent, t->name) != 0)
				return s->depth ? xfail(&s->x, "</%s> closes <%s>", t->name, parent)
						: xfail(&s->x, "</%s> closes nothing", t->name);
			s->depth--;
			if ((r = on_close(s, t->name)))
				return r;
			s->root_done = s->depth == 0;
		} else {
			if (s->root_done)
				return xfail(&s->x, "<%s> after the end of <superblock>", t->name);
			bool known;
			const struct elem_rule *rule = find_rule(rules, t->name, parent, &known);
			if (!rule)
				return !known ? xfail(&s->x, "unknown element <%s>", t->name)
				       : *parent ? xfail(&s->x, "<%s> inside <%s>", t->name, parent)
						 : xfail(&s->x, "<%s> outside <superblock>", t->name);
			if (t->type == XT_OPEN && !rule->open)
				return xfail(&s->x, "<%s> must be an empty element (<%s .../>)", t->name,
					     t->name);
			if ((r = on_tag(s, t, parent)))
				return r;
			if (t->type == XT_OPEN) {
				if (s->depth == XML_DEPTH)
					return xfail(&s->x, "elements nested too deep");
				strcpy(s->stack[s->depth++], t->name);
			} else if (!s->depth) {
				if ((r = on_close(s, t->name)))
					return r;
				s->root_done = true;
			}
		}
		s->x.line = line;
	}
	if (r < 0)
		return r;
	if (s->depth)
		return xfail(&s->x, "end of input inside <%s>", s->stack[s->depth - 1]);
	if (!s->root_done)
		return xfail(&s->x, "no <superblock> element (empty output?)");
	return 0;
}

static int summary_run(enum doc_mode mode, const char *tool, const char *xml, size_t len,
		       struct kv_doc *doc, char *why, size_t whylen)
{
	static const struct elem_rule *const rules[] = {
		[M_THIN] = thin_rules, [M_CACHE] = cache_rules, [M_ERA] = era_rules,
		[M_DELTA] = delta_rules,
	};
	struct summary *s = calloc(1, sizeof(*s));
	struct xml_tag *t = malloc(sizeof(*t));
	size_t n0 = doc->n;
	int r = -ENOMEM;
	if (s && t) {
		s->mode = mode;
		const char *text = xml ? xml : "";
		s->x = (struct xml){ .p = text, .end = text + (xml ? len : 0), .line = 1,
				     .tool = tool, .why = why, .whylen = whylen };
		s->doc = doc;
		s->sb = s->cur = NO_BLOCK;
		r = walk(s, rules[mode], t);
	}
	if (s) {
		for (size_t i = 0; i < s->ndefs; i++)
			free(s->defs[i].name);
		free(s->defs);
	}
	free(s);
	free(t);
	if (r)
		doc_truncate(doc, n0);
	return r;
}

int dmpd_summary_parse(enum dmpd_kind kind, const char *xml, size_t len, struct kv_doc *doc,
		       char *why, size_t whylen)
{
	switch (kind) {
	case DMPD_THIN:
		return summary_run(M_THIN, "thin_dump", xml, len, doc, why, whylen);
	case DMPD_CACHE:
		return summary_run(M_CACHE, "cache_dump", xml, len, doc, why, whylen);
	case DMPD_ERA:
		return summary_run(M_ERA, "era_dump", xml, len, doc, why, whylen);
	}
	return fail(why, whylen, "summary", 0, "unknown metadata kind %d", (int)kind);
}

int dmpd_delta_parse(const char *xml, size_t len, struct kv_doc *doc, char *why, size_t whylen)
{
	return summary_run(M_DELTA, "thin_delta", xml, len, doc, why, whylen);
}
