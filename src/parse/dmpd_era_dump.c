/* era_dump: the superblock's attributes plus writesets= and
 * era_array_entries=, then one block per <writeset> with its attributes,
 * its bits and how many are set. The Rust tools write runs of set bits as
 * <marked block_begin=... len=.../>. */
#include "dmpd_internal.h"

#include <string.h>

static const struct elem_rule era_rules[] = {
	{ "superblock", "", true, true },
	{ "writeset", "superblock", true, true },
	{ "bit", "writeset", false, true },
	{ "marked", "writeset", false, true },
	{ "era_array", "superblock", true, true },
	{ "era", "era_array", false, true },
	{ NULL, NULL, false, false },
};

static int era_writeset_end(struct summary *s)
{
	int r;
	if ((r = dmpd_add_total(s, s->cur, "bits", s->bits)) ||
	    (r = dmpd_add_total(s, s->cur, "bits_set", s->blocks)))
		return r;
	s->cur = NO_BLOCK;
	return 0;
}

static int era_writeset(struct summary *s, const struct xml_tag *t)
{
	s->writesets++;
	s->bits = s->blocks = 0;
	int r = dmpd_new_block(s, t, &s->cur);
	if (r)
		return r;
	return t->type == XT_EMPTY ? era_writeset_end(s) : 0;
}

static int era_tag(struct summary *s, const struct xml_tag *t, const char *parent)
{
	uint64_t len;
	bool set;
	int r;
	if (strcmp(t->name, "superblock") == 0)
		return dmpd_new_block(s, t, &s->sb);
	if (strcmp(t->name, "writeset") == 0)
		return era_writeset(s, t);
	if (strcmp(t->name, "bit") == 0) {
		if ((r = dmpd_need_bool(s, t, "value", &set)))
			return r;
		s->bits++;
		s->blocks += set;
	} else if (strcmp(t->name, "marked") == 0) {
		if ((r = dmpd_need_u64(s, t, "len", &len)))
			return r;
		return dmpd_add_blocks(s, &s->blocks, len);
	} else if (strcmp(t->name, "era") == 0) {
		s->eras++;
	}
	return 0;
}

static int era_close(struct summary *s, const char *name)
{
	int r;
	if (strcmp(name, "superblock") == 0) {
		if ((r = dmpd_add_total(s, s->sb, "writesets", s->writesets)))
			return r;
		return dmpd_add_total(s, s->sb, "era_array_entries", s->eras);
	}
	if (strcmp(name, "writeset") == 0)
		return era_writeset_end(s);
	return 0;
}

const struct dump_tool dmpd_era_dump = {
	.name = "era_dump",
	.rules = era_rules,
	.tag = era_tag,
	.close = era_close,
};
