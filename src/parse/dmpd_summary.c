/* The element walker behind the XML summaries: checks each tag against the
 * tool's rules (which element may appear where), keeps the open elements,
 * and hands tags to the tool's handlers; plus the helpers those handlers
 * share. The per-tool tables are in dmpd_thin_dump.c, dmpd_cache_dump.c,
 * dmpd_era_dump.c and dmpd_thin_delta.c. */
#include "dmpd_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int dmpd_add_attrs(struct kv_block *b, const struct xml_tag *t)
{
	for (size_t i = 0; i < t->n; i++) {
		int r = kv_add_auto(b, t->a[i].name, t->a[i].val);
		if (r)
			return r;
	}
	return 0;
}

int dmpd_new_block(struct summary *s, const struct xml_tag *t, size_t *idx)
{
	struct kv_block *b = kv_doc_add_block(s->doc);
	if (!b)
		return -ENOMEM;
	*idx = s->doc->n - 1;
	return dmpd_add_attrs(b, t);
}

int dmpd_add_total(struct summary *s, size_t idx, const char *key, uint64_t v)
{
	struct kv_block *b = &s->doc->blocks[idx];
	if (kv_get(b, key))
		return dmpd_xfail(&s->x, "attribute %s clashes with the computed key of that name",
				  key);
	return kv_add_u64(b, key, v);
}

int dmpd_need_u64(struct summary *s, const struct xml_tag *t, const char *name, uint64_t *v)
{
	const char *val = dmpd_xml_attr(t, name);
	if (!val)
		return dmpd_xfail(&s->x, "<%s> lacks attribute %s", t->name, name);
	if (!dmpd_parse_u64(val, v))
		return dmpd_xfail(&s->x, "<%s> attribute %s: '%.40s' is not a number", t->name,
				  name, val);
	return 0;
}

int dmpd_need_bool(struct summary *s, const struct xml_tag *t, const char *name, bool *v)
{
	const char *val = dmpd_xml_attr(t, name);
	if (!val)
		return dmpd_xfail(&s->x, "<%s> lacks attribute %s", t->name, name);
	if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0)
		return dmpd_xfail(&s->x, "<%s> attribute %s: '%.40s' is not true or false", t->name,
				  name, val);
	*v = val[0] == 't';
	return 0;
}

int dmpd_add_blocks(struct summary *s, uint64_t *acc, uint64_t n)
{
	if (*acc > UINT64_MAX - n)
		return dmpd_xfail(&s->x, "block count overflows");
	*acc += n;
	return 0;
}

/* The rule for name under parent; *known tells "no such element" (false)
 * from "not allowed here" (true) for the reason. */
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

static int walk_close(struct summary *s, const struct xml_tag *t, const char *parent)
{
	if (!s->depth || strcmp(parent, t->name) != 0)
		return s->depth ? dmpd_xfail(&s->x, "</%s> closes <%s>", t->name, parent)
				: dmpd_xfail(&s->x, "</%s> closes nothing", t->name);
	s->depth--;
	int r = s->tool->close(s, t->name);
	if (r)
		return r;
	s->root_done = s->depth == 0;
	return 0;
}

static int walk_open(struct summary *s, const struct xml_tag *t, const char *parent)
{
	if (s->root_done)
		return dmpd_xfail(&s->x, "<%s> after the end of <superblock>", t->name);
	bool known;
	const struct elem_rule *rule = find_rule(s->tool->rules, t->name, parent, &known);
	if (!rule)
		return !known ? dmpd_xfail(&s->x, "unknown element <%s>", t->name)
		       : *parent ? dmpd_xfail(&s->x, "<%s> inside <%s>", t->name, parent)
				 : dmpd_xfail(&s->x, "<%s> outside <superblock>", t->name);
	if (t->type == XT_OPEN && !rule->open)
		return dmpd_xfail(&s->x, "<%s> must be an empty element (<%s .../>)", t->name,
				  t->name);
	int r = s->tool->tag(s, t, parent);
	if (r)
		return r;
	if (t->type == XT_OPEN) {
		if (s->depth == XML_DEPTH)
			return dmpd_xfail(&s->x, "elements nested too deep");
		strcpy(s->stack[s->depth++], t->name);
		return 0;
	}
	/* an empty root element (<superblock .../>) ends the document at once */
	if (!s->depth) {
		if ((r = s->tool->close(s, t->name)))
			return r;
		s->root_done = true;
	}
	return 0;
}

static int walk(struct summary *s, struct xml_tag *t)
{
	int more;
	while ((more = dmpd_xml_next(&s->x, t)) > 0) {
		/* reasons name the line the tag starts on */
		size_t line = s->x.line;
		s->x.line = t->line;
		const char *parent = s->depth ? s->stack[s->depth - 1] : "";
		int r = t->type == XT_CLOSE ? walk_close(s, t, parent) : walk_open(s, t, parent);
		if (r)
			return r;
		s->x.line = line;
	}
	if (more < 0)
		return more;
	if (s->depth)
		return dmpd_xfail(&s->x, "end of input inside <%s>", s->stack[s->depth - 1]);
	if (!s->root_done)
		return dmpd_xfail(&s->x, "no <superblock> element (empty output?)");
	return 0;
}

int dmpd_summary_run(const struct dump_tool *tool, const char *xml, size_t len,
		     struct kv_doc *doc, char *why, size_t whylen)
{
	/* on the heap: a tag holds XML_VALUES_MAX bytes of values */
	struct summary *s = calloc(1, sizeof(*s));
	struct xml_tag *t = malloc(sizeof(*t));
	size_t n0 = doc->n;
	int r = -ENOMEM;
	if (s && t) {
		s->tool = tool;
		const char *text = xml ? xml : "";
		s->x = (struct xml){ .p = text, .end = text + (xml ? len : 0), .line = 1,
				     .tool = tool->name, .why = why, .whylen = whylen };
		s->doc = doc;
		s->sb = s->cur = NO_BLOCK;
		r = walk(s, t);
	}
	if (s && tool->release)
		tool->release(s);
	free(s);
	free(t);
	if (r)
		dmpd_doc_truncate(doc, n0);
	return r;
}

int dmpd_summary_parse(enum dmpd_kind kind, const char *xml, size_t len, struct kv_doc *doc,
		       char *why, size_t whylen)
{
	switch (kind) {
	case DMPD_THIN:
		return dmpd_summary_run(&dmpd_thin_dump, xml, len, doc, why, whylen);
	case DMPD_CACHE:
		return dmpd_summary_run(&dmpd_cache_dump, xml, len, doc, why, whylen);
	case DMPD_ERA:
		return dmpd_summary_run(&dmpd_era_dump, xml, len, doc, why, whylen);
	}
	return dmpd_fail(why, whylen, "summary", 0, "unknown metadata kind %d", (int)kind);
}
