/* Device-mapper status lines into kv blocks. Formats and key names:
 * shared/dm-status-reference.md; each parser mirrors the kernel's
 * *_status() format code for STATUSTYPE_INFO. */
#include "stsfs/dm_parse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest key built from a kernel-printed name (cache core/policy args). */
#define NAME_MAX_LEN 48

struct toks {
	char *buf;
	char **v;
	size_t n;
};

struct ctx {
	const char *target;
	struct toks t;
	size_t pos; /* next unread token */
	struct kv_block *out;
	char *why;
	size_t whylen;
};

/* A word the kernel prints instead of the whole status. state NULL means
 * the kernel's "-": state is then emitted as none. */
struct line_word {
	const char *text;
	const char *state;
	const char *flag;
};

struct target_parser {
	const char *name;
	int (*parse)(struct ctx *c);
	const struct line_word *words;
};

/* Writes "PREFIX: reason" into why and returns -EINVAL. */
static int vbad(char *why, size_t whylen, const char *prefix, const char *fmt, va_list ap)
{
	if (!why || !whylen)
		return -EINVAL;
	int n = snprintf(why, whylen, "%s: ", prefix);
	if (n >= 0 && (size_t)n < whylen)
		vsnprintf(why + n, whylen - (size_t)n, fmt, ap);
	return -EINVAL;
}

__attribute__((format(printf, 2, 3)))
static int bad(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vbad(c->why, c->whylen, c->target, fmt, ap);
	va_end(ap);
	return r;
}

static bool is_sep(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static size_t count_tokens(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (!is_sep(*s) && (s[1] == '\0' || is_sep(s[1])))
			n++;
	return n;
}

static int toks_split(struct toks *t, const char *s)
{
	t->n = count_tokens(s);
	t->buf = strdup(s);
	t->v = calloc(t->n ? t->n : 1, sizeof(*t->v));
	if (!t->buf || !t->v)
		return -ENOMEM;
	size_t i = 0;
	for (char *p = t->buf; *p;) {
		while (is_sep(*p))
			*p++ = '\0';
		if (!*p)
			break;
		t->v[i++] = p;
		while (*p && !is_sep(*p))
			p++;
	}
	return 0;
}

static void toks_free(struct toks *t)
{
	free(t->buf);
	free(t->v);
}

static void kv_truncate(struct kv_block *b, size_t n)
{
	while (b->n > n) {
		b->n--;
		free(b->v[b->n].key);
		free(b->v[b->n].str);
	}
}

/* Strict unsigned decimal of len bytes: no sign, no spaces, no overflow. */
static bool parse_u64n(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static size_t left(const struct ctx *c)
{
	return c->t.n - c->pos;
}

static int expect_fields(struct ctx *c, size_t min, size_t max)
{
	if (c->t.n >= min && c->t.n <= max)
		return 0;
	if (min == max)
		return bad(c, "expected %zu fields, got %zu", min, c->t.n);
	return bad(c, "expected %zu to %zu fields, got %zu", min, max, c->t.n);
}

static int expect_end(struct ctx *c)
{
	if (!left(c))
		return 0;
	return bad(c, "unexpected field %zu '%.40s'", c->pos + 1, c->t.v[c->pos]);
}

static int next_tok(struct ctx *c, const char *what, const char **tok)
{
	if (!left(c))
		return bad(c, "missing %s (field %zu)", what, c->pos + 1);
	*tok = c->t.v[c->pos++];
	return 0;
}

static int parse_num(struct ctx *c, const char *what, const char *tok, uint64_t *v)
{
	if (parse_u64n(tok, strlen(tok), v))
		return 0;
	return bad(c, "%s: '%.40s' is not a number", what, tok);
}

static int take_u64(struct ctx *c, const char *key)
{
	const char *tok = NULL;
	uint64_t v = 0;
	int r = next_tok(c, key, &tok);
	if (!r)
		r = parse_num(c, key, tok, &v);
	return r ? r : kv_add_u64(c->out, key, v);
}

/* A number, or the kernel's "-" for "none". */
static int take_u64_or_none(struct ctx *c, const char *key)
{
	const char *tok = NULL;
	uint64_t v = 0;
	int r = next_tok(c, key, &tok);
	if (r)
		return r;
	if (strcmp(tok, "-") == 0)
		return kv_add_none(c->out, key);
	r = parse_num(c, key, tok, &v);
	return r ? r : kv_add_u64(c->out, key, v);
}

/* A signed decimal (writecache prints its error as a negative errno). */
static int take_s64(struct ctx *c, const char *key)
{
	const char *tok = NULL;
	uint64_t v = 0;
	int r = next_tok(c, key, &tok);
	if (r)
		return r;
	bool neg = tok[0] == '-';
	if (!parse_u64n(tok + neg, strlen(tok + neg), &v) || v > (uint64_t)INT64_MAX)
		return bad(c, "%s: '%.40s' is not a number", key, tok);
	return kv_add_s64(c->out, key, neg ? -(int64_t)v : (int64_t)v);
}

/* `used/total` into two keys. */
static int take_ratio(struct ctx *c, const char *used_key, const char *total_key)
{
	const char *tok = NULL;
	int r = next_tok(c, used_key, &tok);
	if (r)
		return r;
	const char *slash = strchr(tok, '/');
	uint64_t used = 0, total = 0;
	if (!slash || !parse_u64n(tok, (size_t)(slash - tok), &used) ||
	    !parse_u64n(slash + 1, strlen(slash + 1), &total))
		return bad(c, "%s/%s: '%.40s' is not USED/TOTAL", used_key, total_key, tok);
	r = kv_add_u64(c->out, used_key, used);
	return r ? r : kv_add_u64(c->out, total_key, total);
}

static int take_word(struct ctx *c, const char *key)
{
	const char *tok = NULL;
	int r = next_tok(c, key, &tok);
	return r ? r : kv_add_str(c->out, key, tok);
}

static int take_word_or_none(struct ctx *c, const char *key)
{
	const char *tok = NULL;
	int r = next_tok(c, key, &tok);
	if (r)
		return r;
	return strcmp(tok, "-") == 0 ? kv_add_none(c->out, key) : kv_add_str(c->out, key, tok);
}

/* The kernel prints `word` when a flag is set and "-" when it is not. */
static int take_flag(struct ctx *c, const char *key, const char *word)
{
	const char *tok = NULL;
	int r = next_tok(c, key, &tok);
	if (r)
		return r;
	if (strcmp(tok, word) != 0 && strcmp(tok, "-") != 0)
		return bad(c, "%s: expected '%s' or '-', got '%.40s'", key, word, tok);
	return kv_add_bool(c->out, key, strcmp(tok, word) == 0);
}

static int take_literal(struct ctx *c, const char *what, const char *literal)
{
	const char *tok = NULL;
	int r = next_tok(c, what, &tok);
	if (r)
		return r;
	if (strcmp(tok, literal) != 0)
		return bad(c, "%s: expected '%s', got '%.40s'", what, literal, tok);
	return 0;
}

/* A count prefixing a list; the list must fit in the fields left. */
static int take_count(struct ctx *c, const char *key, size_t *n)
{
	const char *tok = NULL;
	uint64_t v = 0;
	int r = next_tok(c, key, &tok);
	if (!r)
		r = parse_num(c, key, tok, &v);
	if (r)
		return r;
	if (v > left(c))
		return bad(c, "%s %" PRIu64 " overruns the %zu fields left", key, v, left(c));
	*n = (size_t)v;
	return kv_add_u64(c->out, key, v);
}

/* The next n tokens as one space-separated value. */
static int take_list(struct ctx *c, const char *key, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(c->t.v[c->pos + i]) + 1;
	char *s = malloc(len + 1);
	if (!s)
		return -ENOMEM;
	char *p = s;
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ' ';
		size_t l = strlen(c->t.v[c->pos + i]);
		memcpy(p, c->t.v[c->pos + i], l);
		p += l;
	}
	*p = '\0';
	c->pos += n;
	int r = kv_add_str(c->out, key, s);
	free(s);
	return r;
}

/* One character per device, each from `allowed`. */
static int take_health(struct ctx *c, size_t n, const char *allowed, const char **health)
{
	const char *tok = NULL;
	int r = next_tok(c, "health", &tok);
	if (r)
		return r;
	*health = tok;
	if (strlen(tok) != n)
		return bad(c, "health: expected %zu characters, got '%.40s'", n, tok);
	if (tok[strspn(tok, allowed)] != '\0')
		return bad(c, "health: '%.40s' has a character outside '%s'", tok, allowed);
	return kv_add_str(c->out, "health", tok);
}

static bool is_key_name(const char *s)
{
	size_t len = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_");
	return len > 0 && len <= NAME_MAX_LEN && s[len] == '\0';
}

/* n tokens as `name value` pairs, each stored as prefix+name=value. Names
 * come from the kernel, so they are checked before they become keys. */
static int take_pairs(struct ctx *c, const char *what, const char *prefix, size_t n)
{
	if (n % 2)
		return bad(c, "%s: odd count %zu, expected name/value pairs", what, n);
	for (size_t i = 0; i < n; i += 2) {
		const char *name = c->t.v[c->pos];
		const char *val = c->t.v[c->pos + 1];
		c->pos += 2;
		if (!is_key_name(name))
			return bad(c, "%s: bad name '%.40s'", what, name);
		char key[2 * NAME_MAX_LEN];
		snprintf(key, sizeof(key), "%s%s", prefix, name);
		if (kv_get(c->out, key))
			return bad(c, "%s: '%s' given twice", what, key);
		int r = kv_add_auto(c->out, key, val);
		if (r)
			return r;
	}
	return 0;
}

/* linear, zero, error, crypt, snapshot-origin, flakey report nothing. */
static int parse_empty(struct ctx *c)
{
	if (c->t.n)
		return bad(c, "expected no status fields, got %zu", c->t.n);
	return 0;
}

static int parse_striped(struct ctx *c)
{
	size_t n;
	int r = take_count(c, "stripes", &n);
	if (r)
		return r;
	if (n == 0)
		return bad(c, "stripe count is 0");
	const char *health = NULL;
	if ((r = take_list(c, "devices", n)) || (r = take_literal(c, "health group count", "1")) ||
	    (r = take_health(c, n, "AD", &health)))
		return r;
	uint64_t dead = 0;
	for (const char *h = health; *h; h++)
		dead += *h == 'D';
	if ((r = kv_add_u64(c->out, "dead_stripes", dead)))
		return r;
	return expect_end(c);
}

/* Kernels before flush support print only reads and writes. */
static int parse_delay(struct ctx *c)
{
	int r = expect_fields(c, 2, 3);
	if (r || (r = take_u64(c, "reads")) || (r = take_u64(c, "writes")))
		return r;
	return left(c) ? take_u64(c, "flushes") : 0;
}

static int parse_thin_pool(struct ctx *c)
{
	int r;
	if ((r = expect_fields(c, 9, 9)) ||
	    (r = take_u64(c, "transaction_id")) ||
	    (r = take_ratio(c, "used_metadata_blocks", "total_metadata_blocks")) ||
	    (r = take_ratio(c, "used_data_blocks", "total_data_blocks")) ||
	    (r = take_u64_or_none(c, "held_metadata_root")) ||
	    (r = take_word(c, "mode")) ||
	    (r = take_word(c, "discard_passdown")) ||
	    (r = take_word(c, "no_space_policy")) ||
	    (r = take_flag(c, "needs_check", "needs_check")))
		return r;
	return take_u64(c, "metadata_low_watermark");
}

static int parse_thin(struct ctx *c)
{
	int r = expect_fields(c, 2, 2);
	if (r || (r = take_u64(c, "mapped_sectors")))
		return r;
	return take_u64_or_none(c, "highest_mapped_sector");
}

static int take_cache_features(struct ctx *c)
{
	size_t n;
	int r = take_count(c, "nr_features", &n);
	if (r)
		return r;
	const char *io_mode = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *f = c->t.v[c->pos + i];
		if (!strcmp(f, "writeback") || !strcmp(f, "writethrough") || !strcmp(f, "passthrough"))
			io_mode = f;
	}
	if ((r = take_list(c, "features", n)))
		return r;
	return io_mode ? kv_add_str(c->out, "io_mode", io_mode) : 0;
}

static int parse_cache(struct ctx *c)
{
	static const char *const counters[] = {
		"read_hits", "read_misses", "write_hits", "write_misses",
		"demotions", "promotions", "dirty",
	};
	size_t n;
	int r;
	if ((r = take_u64(c, "metadata_block_size")) ||
	    (r = take_ratio(c, "used_metadata_blocks", "total_metadata_blocks")) ||
	    (r = take_u64(c, "cache_block_size")) ||
	    (r = take_ratio(c, "used_cache_blocks", "total_cache_blocks")))
		return r;
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		if ((r = take_u64(c, counters[i])))
			return r;
	if ((r = take_cache_features(c)) ||
	    (r = take_count(c, "nr_core_args", &n)) ||
	    (r = take_pairs(c, "core args", "", n)) ||
	    (r = take_word(c, "policy")) ||
	    (r = take_count(c, "nr_policy_args", &n)) ||
	    (r = take_pairs(c, "policy args", "policy_", n)) ||
	    (r = take_word(c, "metadata_mode")) ||
	    (r = take_flag(c, "needs_check", "needs_check")))
		return r;
	return expect_end(c);
}

static int parse_era(struct ctx *c)
{
	int r;
	if ((r = expect_fields(c, 4, 4)) ||
	    (r = take_u64(c, "metadata_block_size")) ||
	    (r = take_ratio(c, "used_metadata_blocks", "total_metadata_blocks")) ||
	    (r = take_u64(c, "current_era")))
		return r;
	return take_u64_or_none(c, "held_metadata_root");
}

/* 4 numbers before the statistics counters were added (~5.15), 14 after. */
static int parse_writecache(struct ctx *c)
{
	static const char *const names[] = {
		"total_blocks", "free_blocks", "writeback_blocks", "read_blocks",
		"read_hits", "write_blocks", "write_hits_uncommitted", "write_hits_committed",
		"writes_around", "writes_allocate", "writes_blocked_on_freelist", "flushes",
		"discards",
	};
	size_t max = 1 + sizeof(names) / sizeof(names[0]);
	int r = expect_fields(c, 4, max);
	if (r || (r = take_s64(c, "error")))
		return r;
	for (size_t i = 0; left(c); i++)
		if ((r = take_u64(c, names[i])))
			return r;
	return 0;
}

static int parse_integrity(struct ctx *c)
{
	int r;
	if ((r = expect_fields(c, 3, 3)) ||
	    (r = take_u64(c, "mismatches")) ||
	    (r = take_u64(c, "provided_data_sectors")))
		return r;
	return take_u64_or_none(c, "recalculate_sector");
}

static int parse_snapshot(struct ctx *c)
{
	int r = expect_fields(c, 2, 2);
	if (r || (r = take_ratio(c, "sectors_allocated", "total_sectors")))
		return r;
	return take_u64(c, "metadata_sectors");
}

/* The log appends its own count-prefixed status: `1 core`, `3 disk DEV
 * HEALTH`; the rest of other log types' status is kept as one value. */
static int take_mirror_log(struct ctx *c)
{
	size_t n;
	int r = take_count(c, "nr_log_args", &n);
	if (r)
		return r;
	if (n == 0)
		return bad(c, "log status count is 0");
	if ((r = take_word(c, "log_type")))
		return r;
	if (n == 3) {
		const char *tok = NULL;
		if ((r = take_word(c, "log_device")) || (r = next_tok(c, "log_health", &tok)))
			return r;
		if (strlen(tok) != 1 || !strchr("ADF", tok[0]))
			return bad(c, "log_health: expected A, D or F, got '%.40s'", tok);
		return kv_add_str(c->out, "log_health", tok);
	}
	return n > 1 ? take_list(c, "log_status", n - 1) : 0;
}

static int parse_mirror(struct ctx *c)
{
	size_t n;
	const char *health = NULL;
	int r = take_count(c, "mirrors", &n);
	if (r)
		return r;
	if (n == 0)
		return bad(c, "mirror count is 0");
	if ((r = take_list(c, "devices", n)) ||
	    (r = take_ratio(c, "in_sync_regions", "total_regions")) ||
	    (r = take_literal(c, "health group count", "1")) ||
	    (r = take_health(c, n, "AFDSRU", &health)) ||
	    (r = take_mirror_log(c)))
		return r;
	return expect_end(c);
}

/* Older kernels do not print the verbosity. */
static int parse_dust(struct ctx *c)
{
	int r = expect_fields(c, 2, 3);
	if (r || (r = take_word(c, "device")) || (r = take_word(c, "mode")))
		return r;
	return left(c) ? take_word(c, "verbosity") : 0;
}

static int parse_vdo(struct ctx *c)
{
	int r;
	if ((r = expect_fields(c, 7, 7)) ||
	    (r = take_word(c, "device")) ||
	    (r = take_word(c, "operating_mode")) ||
	    (r = take_word_or_none(c, "in_recovery")) ||
	    (r = take_word(c, "index_state")) ||
	    (r = take_word(c, "compression_state")) ||
	    (r = take_u64(c, "used_physical_blocks")))
		return r;
	return take_u64(c, "total_physical_blocks");
}

static const struct line_word pool_words[] = {
	{ "Fail", "Fail", "fail" },
	{ "Error", "Error", "error" },
	{ NULL, NULL, NULL },
};

static const struct line_word thin_words[] = {
	{ "Fail", "Fail", NULL },
	{ "Error", "Error", NULL },
	{ "-", NULL, NULL },
	{ NULL, NULL, NULL },
};

static const struct line_word cache_words[] = {
	{ "Fail", "Fail", NULL },
	{ "Error", "Error", NULL },
	{ NULL, NULL, NULL },
};

static const struct line_word era_words[] = {
	{ "Error", "Error", NULL },
	{ NULL, NULL, NULL },
};

/* In the order the kernel checks them. */
static const struct line_word snapshot_words[] = {
	{ "Invalid", "invalid", NULL },
	{ "Merge failed", "merge_failed", NULL },
	{ "Overflow", "overflow", NULL },
	{ "Unknown", "unknown", NULL },
	{ NULL, NULL, NULL },
};

static const struct target_parser parsers[] = {
	{ "linear", parse_empty, NULL },
	{ "striped", parse_striped, NULL },
	{ "zero", parse_empty, NULL },
	{ "error", parse_empty, NULL },
	{ "delay", parse_delay, NULL },
	{ "flakey", parse_empty, NULL },
	{ "thin-pool", parse_thin_pool, pool_words },
	{ "thin", parse_thin, thin_words },
	{ "cache", parse_cache, cache_words },
	{ "era", parse_era, era_words },
	{ "writecache", parse_writecache, NULL },
	{ "integrity", parse_integrity, NULL },
	{ "crypt", parse_empty, NULL },
	{ "snapshot", parse_snapshot, snapshot_words },
	{ "snapshot-merge", parse_snapshot, snapshot_words },
	{ "snapshot-origin", parse_empty, NULL },
	{ "unstriped", parse_empty, NULL },
	{ "mirror", parse_mirror, NULL },
	{ "dust", parse_dust, NULL },
	{ "vdo", parse_vdo, NULL },
};

static const struct target_parser *find_parser(const char *target_type)
{
	for (size_t i = 0; i < sizeof(parsers) / sizeof(parsers[0]); i++)
		if (strcmp(parsers[i].name, target_type) == 0)
			return &parsers[i];
	return NULL;
}

bool dm_status_target_known(const char *target_type)
{
	return target_type && find_parser(target_type);
}

/* True when the tokens, joined by single spaces, spell `text`. */
static bool tokens_spell(const struct toks *t, const char *text)
{
	if (!t->n)
		return false;
	for (size_t i = 0; i < t->n; i++) {
		size_t len = strlen(t->v[i]);
		if (strncmp(text, t->v[i], len) != 0)
			return false;
		text += len;
		if (i + 1 < t->n && *text++ != ' ')
			return false;
	}
	return *text == '\0';
}

static const struct line_word *find_line_word(const struct target_parser *p, const struct toks *t)
{
	for (const struct line_word *w = p->words; w && w->text; w++)
		if (tokens_spell(t, w->text))
			return w;
	return NULL;
}

static int add_line_word(struct ctx *c, const struct line_word *w)
{
	int r = w->state ? kv_add_str(c->out, "state", w->state) : kv_add_none(c->out, "state");
	if (!r && w->flag)
		r = kv_add_bool(c->out, w->flag, true);
	return r;
}

static int dispatch(struct ctx *c)
{
	const struct target_parser *p = find_parser(c->target);
	if (!p)
		return take_list(c, "args", c->t.n);
	const struct line_word *w = find_line_word(p, &c->t);
	return w ? add_line_word(c, w) : p->parse(c);
}

int dm_status_parse(const char *target_type, const char *params, struct kv_block *out,
		    char *why, size_t whylen)
{
	struct ctx c = {
		.target = target_type ? target_type : "(null)",
		.out = out,
		.why = why,
		.whylen = whylen,
	};
	if (!target_type)
		return bad(&c, "no target type");
	size_t n0 = out->n;
	int r = toks_split(&c.t, params ? params : "");
	if (!r)
		r = dispatch(&c);
	toks_free(&c.t);
	if (r)
		kv_truncate(out, n0);
	return r;
}

/* The next whitespace-separated word of *p: its start, length in *len. */
static const char *line_word(const char **p, size_t *len)
{
	const char *s = *p;
	while (is_sep(*s))
		s++;
	*len = 0;
	while (s[*len] && !is_sep(s[*len]))
		(*len)++;
	*p = s + *len;
	return s;
}

__attribute__((format(printf, 3, 4)))
static int bad_line(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vbad(why, whylen, "status line", fmt, ap);
	va_end(ap);
	return r;
}

static int add_line_number(struct kv_block *out, const char *key, const char **p, char *why,
			   size_t whylen)
{
	size_t len;
	const char *s = line_word(p, &len);
	uint64_t v = 0;
	if (!len)
		return bad_line(why, whylen, "missing %s", key);
	if (!parse_u64n(s, len, &v))
		return bad_line(why, whylen, "%s: '%.*s' is not a number", key, (int)(len > 40 ? 40 : len), s);
	return kv_add_u64(out, key, v);
}

static int parse_line(const char *line, struct kv_block *out, char *why, size_t whylen)
{
	const char *p = line;
	int r;
	if ((r = add_line_number(out, "start", &p, why, whylen)) ||
	    (r = add_line_number(out, "length", &p, why, whylen)))
		return r;
	size_t len;
	const char *s = line_word(&p, &len);
	if (!len)
		return bad_line(why, whylen, "missing target type");
	char *target = strndup(s, len);
	if (!target)
		return -ENOMEM;
	r = kv_add_str(out, "target", target);
	if (!r)
		r = dm_status_parse(target, p, out, why, whylen);
	free(target);
	return r;
}

int dm_status_parse_line(const char *line, struct kv_block *out, char *why, size_t whylen)
{
	size_t n0 = out->n;
	int r = parse_line(line ? line : "", out, why, whylen);
	if (r)
		kv_truncate(out, n0);
	return r;
}
