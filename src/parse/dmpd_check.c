/* thin_check, cache_check and era_check: exit status, stdout's KEY=VALUE
 * lines and the findings of both streams, as one block. */
#include "dmpd_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INFO_KEY_MAX 48

struct slices {
	struct dmpd_slice *v;
	size_t n, cap;
};

static int slices_push(struct slices *l, const char *s, size_t len)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct dmpd_slice *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct dmpd_slice){ s, len };
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
	if (!rawlen || dmpd_is_blank(raw[0]))
		return false;
	return starts_with(s, len, "examining ") || starts_with(s, len, "checking ") ||
	       starts_with(s, len, "Checking ") || starts_with(s, len, "Progress: ") ||
	       starts_with(s, len, "number of devices to check: ") ||
	       equals(s, len, "device details tree") || equals(s, len, "mapping tree");
}

/* Keys of the block itself: a tool's KEY=VALUE line must not shadow them. */
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
		key[i] = dmpd_ascii_lower(c);
	}
	key[klen] = '\0';
	for (size_t i = 0; i < sizeof(check_keys) / sizeof(check_keys[0]); i++)
		if (strcmp(key, check_keys[i]) == 0)
			return 0;
	if (kv_get(b, key))
		return 0;
	char *val = dmpd_clean_copy(eq + 1, len - klen - 1);
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
	struct dmpd_lines l = { buf, buf + len, 0 };
	const char *raw;
	size_t rawlen;
	while (dmpd_next_line(&l, &raw, &rawlen)) {
		const char *s = raw;
		size_t n = rawlen;
		dmpd_trim(&s, &n);
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

/* problems= counts every finding, problem= keeps the first DMPD_MAX_PROBLEMS:
 * stderr's come first, so stdout's are gathered apart and appended. */
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
		char *text = dmpd_clean_copy(found.v[i].s, found.v[i].len);
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
		return dmpd_fail(why, whylen, "check", 0, "exit status %d out of range 0-255",
				 exit_status);
	size_t n0 = doc->n;
	struct kv_block *b = kv_doc_add_block(doc);
	if (!b)
		return -ENOMEM;
	int r = check_block(out ? out : "", out ? outlen : 0, err ? err : "", err ? errlen : 0,
			    exit_status, b);
	if (r)
		dmpd_doc_truncate(doc, n0);
	return r;
}
