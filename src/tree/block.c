/* Files every active block object has (loop, dm, thin volumes), declared
 * once: device, dev, probe, data, and the partitions/ directory. */
#include "stsfs/tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "stsfs/kernel.h"
#include "stsfs/value.h"

bool block_active(struct ctx *c)
{
	struct blockref b;
	return c->kind->block && c->kind->block(c, &b) == 0;
}

static int get_block(struct ctx *c, struct blockref *b)
{
	int r = c->kind->block ? c->kind->block(c, b) : -ENODEV;
	if (r == -ENODEV && !c->why[0])
		why_set(c->why, r, "the object is not active");
	return r;
}

static int show_device(struct ctx *c, char **out)
{
	struct blockref b;
	int r = get_block(c, &b);
	return r ? r : show_text(out, "%s\n", b.devpath);
}

static int show_dev(struct ctx *c, char **out)
{
	struct blockref b;
	int r = get_block(c, &b);
	return r ? r : show_text(out, "%u:%u\n", major(b.dev), minor(b.dev));
}

static int kv_probe(struct ctx *c, struct kv_doc *doc)
{
	struct blockref b;
	int r = get_block(c, &b);
	struct kv_block *kb = r ? NULL : kv_doc_add_block(doc);
	if (r)
		return r;
	if (!kb)
		return -ENOMEM;
	return kblk_probe(b.devpath, 0, 0, kb, c->why);
}

static bool data_visible(struct ctx *c)
{
	struct blockref b;
	return c->kind->block && c->kind->block(c, &b) == 0 && b.data_allowed;
}

const struct file_def block_files[] = {
	{ .name = "device", .perm = 0444, .show = show_device, .visible = block_active },
	{ .name = "dev", .perm = 0444, .show = show_dev, .visible = block_active },
	{ .name = "probe", .perm = 0444, .kv = kv_probe, .visible = block_active },
	{ .name = "data", .perm = 0644, .type = FT_DATA, .visible = data_visible },
	{ NULL },
};

/* ---- partitions/ and partitions/N/ ---- */

/* The partition table of the block object `up` levels above c. */
static int load_parts(struct ctx *c, int up, struct blockref *b, struct kblk_part **parts, size_t *n)
{
	struct ctx obj;
	ctx_up(c, up, &obj);
	int r = get_block(&obj, b);
	if (r)
		return r;
	return kblk_partitions(b->devpath, parts, n, c->why);
}

static int parts_list(struct ctx *c, int (*emit)(void *arg, const char *name), void *arg)
{
	struct blockref b;
	struct kblk_part *parts;
	size_t n;
	int r = load_parts(c, 1, &b, &parts, &n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%d", parts[i].partno);
		r = emit(arg, name);
	}
	free(parts);
	return r;
}

/* Finds partition `name` of the object `up` levels above c. */
static int find_part(struct ctx *c, int up, const char *name, struct blockref *b, struct kblk_part *out)
{
	struct kblk_part *parts;
	size_t n;
	int r = load_parts(c, up, b, &parts, &n);
	if (r)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n; i++) {
		char pname[16];
		snprintf(pname, sizeof(pname), "%d", parts[i].partno);
		if (strcmp(pname, name) == 0) {
			*out = parts[i];
			r = 0;
			break;
		}
	}
	free(parts);
	return r;
}

extern const struct dir_kind partition_kind;

static const struct dir_kind *parts_child(struct ctx *c, const char *name)
{
	struct blockref b;
	struct kblk_part p;
	return find_part(c, 1, name, &b, &p) == 0 ? &partition_kind : NULL;
}

static int this_part(struct ctx *c, struct blockref *b, struct kblk_part *p)
{
	return find_part(c, 2, c->comp[c->depth - 1], b, p);
}

static int show_part_field(struct ctx *c, char **out, const char *field)
{
	struct blockref b;
	struct kblk_part p;
	int r = this_part(c, &b, &p);
	if (r)
		return r;
	if (strcmp(field, "start") == 0)
		return show_text(out, "%llu\n", (unsigned long long)p.start);
	if (strcmp(field, "size") == 0)
		return show_text(out, "%llu\n", (unsigned long long)p.size);
	if (strcmp(field, "type") == 0)
		return show_text(out, "%s\n", p.type);
	if (strcmp(field, "uuid") == 0)
		return show_text(out, "%s\n", p.uuid);
	return show_text(out, "%s\n", p.name);
}

static int show_part_start(struct ctx *c, char **out) { return show_part_field(c, out, "start"); }
static int show_part_size(struct ctx *c, char **out) { return show_part_field(c, out, "size"); }
static int show_part_type(struct ctx *c, char **out) { return show_part_field(c, out, "type"); }
static int show_part_uuid(struct ctx *c, char **out) { return show_part_field(c, out, "uuid"); }
static int show_part_name(struct ctx *c, char **out) { return show_part_field(c, out, "name"); }

/* Probed through the whole device at the partition's offset, so it works
 * without partscan and without partition device nodes. */
static int kv_part_probe(struct ctx *c, struct kv_doc *doc)
{
	struct blockref b;
	struct kblk_part p;
	int r = this_part(c, &b, &p);
	if (r)
		return r;
	struct kv_block *kb = kv_doc_add_block(doc);
	return kb ? kblk_probe(b.devpath, p.start, p.size, kb, c->why) : -ENOMEM;
}

static const struct file_def partition_files[] = {
	{ .name = "start", .perm = 0444, .show = show_part_start },
	{ .name = "size", .perm = 0444, .show = show_part_size },
	{ .name = "type", .perm = 0444, .show = show_part_type },
	{ .name = "uuid", .perm = 0444, .show = show_part_uuid },
	{ .name = "name", .perm = 0444, .show = show_part_name },
	{ .name = "probe", .perm = 0444, .kv = kv_part_probe },
	{ NULL },
};

const struct dir_kind partition_kind = {
	.name = "partition",
	.files = { partition_files },
};

const struct dir_kind partitions_kind = {
	.name = "partitions",
	.list = parts_list,
	.child = parts_child,
};
