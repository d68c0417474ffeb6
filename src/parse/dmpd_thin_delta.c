/* thin_delta: one block per range, kind= and the range's attributes. Plain
 * output puts begin/length on the section element itself (<same begin=...
 * length=.../>); --verbose wraps <range>s in the section. */
#include "dmpd_internal.h"

#include <errno.h>
#include <string.h>

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

static int delta_range(struct summary *s, const struct xml_tag *t, const char *kind)
{
	uint64_t v;
	int r;
	if ((r = dmpd_need_u64(s, t, "begin", &v)) || (r = dmpd_need_u64(s, t, "length", &v)))
		return r;
	if (dmpd_xml_attr(t, "kind"))
		return dmpd_xfail(&s->x, "<%s> has an attribute kind", t->name);
	struct kv_block *b = kv_doc_add_block(s->doc);
	if (!b)
		return -ENOMEM;
	if ((r = kv_add_str(b, "kind", kind)))
		return r;
	return dmpd_add_attrs(b, t);
}

static int delta_tag(struct summary *s, const struct xml_tag *t, const char *parent)
{
	if (strcmp(t->name, "superblock") == 0)
		return 0;
	if (strcmp(t->name, "diff") == 0)
		return s->diffs++ ? dmpd_xfail(&s->x, "more than one <diff>") : 0;
	if (strcmp(t->name, "range") == 0)
		return delta_range(s, t, parent);
	/* a section: with its own begin/length (plain), or holding <range>s */
	if (t->type == XT_EMPTY)
		return delta_range(s, t, t->name);
	if (t->n)
		return dmpd_xfail(&s->x, "<%s> with attributes holds <range>s", t->name);
	return 0;
}

/* The superblock is not summarised, so no element's end adds anything. */
static int delta_close(struct summary *s, const char *name)
{
	return 0;
}

static const struct dump_tool thin_delta = {
	.name = "thin_delta",
	.rules = delta_rules,
	.tag = delta_tag,
	.close = delta_close,
};

int dmpd_delta_parse(const char *xml, size_t len, struct kv_doc *doc, char *why, size_t whylen)
{
	return dmpd_summary_run(&thin_delta, xml, len, doc, why, whylen);
}
