/* Private to the dmpd parsers (include/stsfs/dmpd_parse.h), shared between
 * their files: the text helpers (dmpd_text.c), the XML scanner (dmpd_xml.c)
 * and the element walker behind the dump and delta summaries
 * (dmpd_summary.c), with the per-tool tables it walks. Formats as
 * thin-provisioning-tools 0.9.0 prints them (the C++ tools in Debian 12),
 * with the additions of the Rust 1.x tools where they are known. Shared
 * names carry a dmpd_ prefix because the static library is linked into
 * programs with many other symbols. */
#ifndef STSFS_DMPD_INTERNAL_H
#define STSFS_DMPD_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stsfs/dmpd_parse.h"

/* ---- text helpers: dmpd_text.c ------------------------------------------ */

/* Write "TOOL line N: reason" (or "TOOL: reason" for line 0) into why and
 * return -EINVAL. */
int dmpd_vfail(char *why, size_t whylen, const char *tool, size_t line, const char *fmt,
	       va_list ap);
__attribute__((format(printf, 5, 6)))
int dmpd_fail(char *why, size_t whylen, const char *tool, size_t line, const char *fmt, ...);

/* Drops the blocks a failed parse added: on error doc keeps what the caller had. */
void dmpd_doc_truncate(struct kv_doc *d, size_t n);

static inline bool dmpd_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static inline char dmpd_ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* A piece of an input buffer, not NUL-terminated. */
struct dmpd_slice {
	const char *s;
	size_t len;
};

/* One line of a buffer at a time; a trailing '\n' is not part of the line. */
struct dmpd_lines {
	const char *p, *end;
	size_t no; /* number of the line last returned, from 1 */
};

bool dmpd_next_line(struct dmpd_lines *l, const char **s, size_t *len);
void dmpd_trim(const char **s, size_t *len);
/* Strict unsigned decimal: no sign, no spaces, no overflow. */
bool dmpd_parse_u64(const char *s, uint64_t *out);
/* Malloc'd one-line copy for a value: tabs become spaces, other control
 * bytes and invalid UTF-8 become '?'. */
char *dmpd_clean_copy(const char *s, size_t len);

/* ---- XML scanner: dmpd_xml.c -------------------------------------------- */

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

/* dmpd_fail naming x's tool and current line. */
__attribute__((format(printf, 2, 3)))
int dmpd_xfail(struct xml *x, const char *fmt, ...);
/* The next tag: 1, 0 at the end of input, or -EINVAL. */
int dmpd_xml_next(struct xml *x, struct xml_tag *t);
const char *dmpd_xml_attr(const struct xml_tag *t, const char *name);

/* ---- summaries of the XML documents: dmpd_summary.c ---------------------- */

/* Which element may appear where; parent "" is the document root. A table
 * ends with a NULL name. */
struct elem_rule {
	const char *name, *parent;
	bool open, empty; /* may be a start tag / an empty-element tag */
};

struct summary;

/* What one tool's document looks like and what its elements add to doc. */
struct dump_tool {
	const char *name; /* names the tool in reasons */
	const struct elem_rule *rules;
	/* a start or empty-element tag the rules allow under parent */
	int (*tag)(struct summary *s, const struct xml_tag *t, const char *parent);
	/* the end of an element, also of an empty one at the root */
	int (*close)(struct summary *s, const char *name);
	/* frees what the tool kept beyond the counters; may be NULL */
	void (*release)(struct summary *s);
};

extern const struct dump_tool dmpd_thin_dump, dmpd_cache_dump, dmpd_era_dump;

/* thin_dump's shared runs (Rust): <def name=...> referenced by <ref>. */
struct thin_def {
	char *name;
	uint64_t blocks;
};

#define XML_DEPTH 4
#define NO_BLOCK SIZE_MAX

struct summary {
	const struct dump_tool *tool;
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
	/* thin_dump's <def>s, sorted on the first <ref> after a new one */
	struct thin_def *defs;
	size_t ndefs, capdefs;
	bool defs_sorted;
	struct thin_def *cur_def;
};

/* Walks xml (NULL with len 0 is empty) with tool's rules and handlers. */
int dmpd_summary_run(const struct dump_tool *tool, const char *xml, size_t len,
		     struct kv_doc *doc, char *why, size_t whylen);

/* For the handlers. Each returns 0, -ENOMEM, or -EINVAL with a reason. */
int dmpd_add_attrs(struct kv_block *b, const struct xml_tag *t);
/* A block for t holding its attributes; *idx is its index in doc. */
int dmpd_new_block(struct summary *s, const struct xml_tag *t, size_t *idx);
/* A computed key; an attribute of the same name would make it ambiguous. */
int dmpd_add_total(struct summary *s, size_t idx, const char *key, uint64_t v);
int dmpd_need_u64(struct summary *s, const struct xml_tag *t, const char *name, uint64_t *v);
int dmpd_need_bool(struct summary *s, const struct xml_tag *t, const char *name, bool *v);
/* *acc += n, refusing overflow. */
int dmpd_add_blocks(struct summary *s, uint64_t *acc, uint64_t n);

#endif
