/* thin_ls: a header line naming the columns, then one block per row. */
#include "dmpd_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LS_MAX_COLS 32
#define LS_NAME_MAX 32

struct ls_col {
	char key[LS_NAME_MAX + 1];
	bool human; /* "4096KiB": always a string */
};

/* Splits a line at runs of spaces/tabs into at most max words. Returns the
 * number of words, max + 1 when there are more. */
static size_t split_words(const char *s, size_t len, struct dmpd_slice *w, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		while (i < len && dmpd_is_blank(s[i]))
			i++;
		if (i == len)
			break;
		size_t start = i;
		while (i < len && !dmpd_is_blank(s[i]))
			i++;
		if (n == max)
			return max + 1;
		w[n++] = (struct dmpd_slice){ s + start, i - start };
	}
	return n;
}

/* MAPPED, EXCLUSIVE and SHARED read "4096KiB"; "0" there must stay a string
 * too, or the column's JSON type would depend on the value. */
static bool is_human_column(const char *key)
{
	return strcmp(key, "mapped") == 0 || strcmp(key, "exclusive") == 0 ||
	       strcmp(key, "shared") == 0;
}

static int ls_header(const char *s, size_t len, size_t line, struct ls_col *cols, size_t *ncols,
		     char *why, size_t whylen)
{
	struct dmpd_slice w[LS_MAX_COLS];
	size_t n = split_words(s, len, w, LS_MAX_COLS);
	if (n > LS_MAX_COLS)
		return dmpd_fail(why, whylen, "thin_ls", line, "more than %d columns", LS_MAX_COLS);
	for (size_t i = 0; i < n; i++) {
		if (w[i].len > LS_NAME_MAX)
			return dmpd_fail(why, whylen, "thin_ls", line, "column name too long");
		for (size_t j = 0; j < w[i].len; j++) {
			char c = w[i].s[j];
			if (!((c >= 'A' && c <= 'Z') || c == '_' || (j && c >= '0' && c <= '9')))
				return dmpd_fail(why, whylen, "thin_ls", line,
						 "'%.*s' is not a column name (no header line?)",
						 (int)w[i].len, w[i].s);
			cols[i].key[j] = dmpd_ascii_lower(c);
		}
		cols[i].key[w[i].len] = '\0';
		cols[i].human = is_human_column(cols[i].key);
		for (size_t j = 0; j < i; j++)
			if (strcmp(cols[j].key, cols[i].key) == 0)
				return dmpd_fail(why, whylen, "thin_ls", line,
						 "column %.*s repeats", (int)w[i].len, w[i].s);
	}
	*ncols = n;
	return 0;
}

static int ls_row(const char *s, size_t len, size_t line, const struct ls_col *cols, size_t ncols,
		  struct kv_doc *doc, char *why, size_t whylen)
{
	struct dmpd_slice w[LS_MAX_COLS];
	size_t n = split_words(s, len, w, ncols);
	if (n != ncols)
		return dmpd_fail(why, whylen, "thin_ls", line, "%s%zu fields, the header has %zu",
				 n > ncols ? "more than " : "", n > ncols ? ncols : n, ncols);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			if (s[i] != '\t')
				return dmpd_fail(why, whylen, "thin_ls", line,
						 "unexpected byte 0x%02x", (unsigned char)s[i]);
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
	struct dmpd_lines l = { text, text + len, 0 };
	const char *s;
	size_t n;
	while (dmpd_next_line(&l, &s, &n)) {
		dmpd_trim(&s, &n);
		if (!n)
			continue;
		int r = header ? ls_row(s, n, l.no, cols, ncols, doc, why, whylen)
			       : ls_header(s, n, l.no, cols, &ncols, why, whylen);
		if (r)
			return r;
		header = true;
	}
	if (!header)
		return dmpd_fail(why, whylen, "thin_ls", 0, "no header line (empty output)");
	return 0;
}

int dmpd_ls_parse(const char *text, size_t len, struct kv_doc *doc, char *why, size_t whylen)
{
	size_t n0 = doc->n;
	int r = ls_parse(text ? text : "", text ? len : 0, doc, why, whylen);
	if (r)
		dmpd_doc_truncate(doc, n0);
	return r;
}
