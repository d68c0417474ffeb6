/* thin_dump: the superblock's attributes plus devices=, then one block per
 * <device> with its attributes and counted mappings. The Rust tools write
 * runs shared by several devices once, as <def name=...>, and put <ref
 * name=...> in each device; a ref counts the def's blocks. */
#include "dmpd_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static int def_cmp(const void *a, const void *b)
{
	return strcmp(((const struct thin_def *)a)->name, ((const struct thin_def *)b)->name);
}

/* Sorting waits for the first <ref> after new <def>s: the defs usually all
 * come before the devices, so that is one sort for the whole dump. */
static int defs_sort(struct summary *s)
{
	qsort(s->defs, s->ndefs, sizeof(*s->defs), def_cmp);
	for (size_t i = 1; i < s->ndefs; i++)
		if (strcmp(s->defs[i - 1].name, s->defs[i].name) == 0)
			return dmpd_xfail(&s->x, "<def name=\"%.40s\"> appears twice",
					  s->defs[i].name);
	s->defs_sorted = true;
	return 0;
}

static int thin_ref(struct summary *s, const struct xml_tag *t)
{
	const char *name = dmpd_xml_attr(t, "name");
	if (!name)
		return dmpd_xfail(&s->x, "<ref> lacks attribute name");
	if (!s->defs_sorted && s->ndefs) {
		int r = defs_sort(s);
		if (r)
			return r;
	}
	struct thin_def key = { .name = (char *)name };
	const struct thin_def *d =
		s->ndefs ? bsearch(&key, s->defs, s->ndefs, sizeof(*s->defs), def_cmp) : NULL;
	if (!d)
		return dmpd_xfail(&s->x, "<ref name=\"%.40s\"> names no <def>", name);
	s->refs++;
	return dmpd_add_blocks(s, &s->blocks, d->blocks);
}

static int thin_def(struct summary *s, const struct xml_tag *t)
{
	const char *name = dmpd_xml_attr(t, "name");
	if (!name)
		return dmpd_xfail(&s->x, "<def> lacks attribute name");
	if (s->ndefs == s->capdefs) {
		size_t cap = s->capdefs ? s->capdefs * 2 : 16;
		struct thin_def *v = realloc(s->defs, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->defs = v;
		s->capdefs = cap;
	}
	struct thin_def *d = &s->defs[s->ndefs];
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
	if ((r = dmpd_add_total(s, s->cur, "range_mappings", s->ranges)) ||
	    (r = dmpd_add_total(s, s->cur, "single_mappings", s->singles)) ||
	    (r = dmpd_add_total(s, s->cur, "shared_refs", s->refs)) ||
	    (r = dmpd_add_total(s, s->cur, "mapped_blocks_counted", s->blocks)))
		return r;
	s->cur = NO_BLOCK;
	return 0;
}

static int thin_device(struct summary *s, const struct xml_tag *t)
{
	s->devices++;
	s->ranges = s->singles = s->refs = s->blocks = 0;
	int r = dmpd_new_block(s, t, &s->cur);
	if (r)
		return r;
	return t->type == XT_EMPTY ? thin_device_end(s) : 0;
}

/* A mapping inside a <def> counts for the def, to be added at each <ref>. */
static int thin_mapping(struct summary *s, const struct xml_tag *t, bool in_def)
{
	uint64_t len = 1;
	bool range = strcmp(t->name, "range_mapping") == 0;
	if (range) {
		int r = dmpd_need_u64(s, t, "length", &len);
		if (r)
			return r;
	}
	if (in_def)
		return dmpd_add_blocks(s, &s->cur_def->blocks, len);
	if (range)
		s->ranges++;
	else
		s->singles++;
	return dmpd_add_blocks(s, &s->blocks, len);
}

static int thin_tag(struct summary *s, const struct xml_tag *t, const char *parent)
{
	if (strcmp(t->name, "superblock") == 0)
		return dmpd_new_block(s, t, &s->sb);
	if (strcmp(t->name, "def") == 0)
		return thin_def(s, t);
	if (strcmp(t->name, "device") == 0)
		return thin_device(s, t);
	if (strcmp(t->name, "range_mapping") == 0 || strcmp(t->name, "single_mapping") == 0)
		return thin_mapping(s, t, strcmp(parent, "def") == 0);
	return thin_ref(s, t); /* "ref": the rules allow nothing else */
}

static int thin_close(struct summary *s, const char *name)
{
	if (strcmp(name, "superblock") == 0)
		return dmpd_add_total(s, s->sb, "devices", s->devices);
	if (strcmp(name, "device") == 0)
		return thin_device_end(s);
	if (strcmp(name, "def") == 0)
		s->cur_def = NULL;
	return 0;
}

static void thin_release(struct summary *s)
{
	for (size_t i = 0; i < s->ndefs; i++)
		free(s->defs[i].name);
	free(s->defs);
}

const struct dump_tool dmpd_thin_dump = {
	.name = "thin_dump",
	.rules = thin_rules,
	.tag = thin_tag,
	.close = thin_close,
	.release = thin_release,
};
