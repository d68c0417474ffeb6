/* cache_dump: one block, the superblock's attributes plus counts of the
 * mappings (and how many are dirty), hints and discards. */
#include "dmpd_internal.h"

#include <string.h>

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

static int cache_tag(struct summary *s, const struct xml_tag *t, const char *parent)
{
	bool dirty;
	int r;
	if (strcmp(t->name, "superblock") == 0)
		return dmpd_new_block(s, t, &s->sb);
	if (strcmp(t->name, "mapping") == 0) {
		if ((r = dmpd_need_bool(s, t, "dirty", &dirty)))
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

static int cache_close(struct summary *s, const char *name)
{
	int r;
	if (strcmp(name, "superblock") != 0)
		return 0;
	if ((r = dmpd_add_total(s, s->sb, "mappings", s->mappings)) ||
	    (r = dmpd_add_total(s, s->sb, "dirty_mappings", s->dirty)) ||
	    (r = dmpd_add_total(s, s->sb, "hints", s->hints)))
		return r;
	return dmpd_add_total(s, s->sb, "discards", s->discards);
}

const struct dump_tool dmpd_cache_dump = {
	.name = "cache_dump",
	.rules = cache_rules,
	.tag = cache_tag,
	.close = cache_close,
};
