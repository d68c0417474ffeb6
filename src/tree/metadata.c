/* metadata/ of thin pools, cache and era devices: the dmpd tools' output,
 * read through kmeta_run (snapshot or suspended copy while live) and
 * parsed by the pure dmpd parsers. The owning object says where the
 * metadata is (dir_kind.meta_source). */
#include "metadata.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stsfs/dmpd_parse.h"

int meta_owner_source(struct ctx *c, int up, struct meta_source *m, bool locate, char *why)
{
	struct ctx obj;
	ctx_up(c, up, &obj);
	if (!obj.kind->meta_source)
		return -ENOENT;
	memset(m, 0, sizeof(*m));
	return obj.kind->meta_source(&obj, m, locate, why);
}

bool has_metadata(struct ctx *c)
{
	metadata_previous_sweep();
	struct meta_source m;
	return meta_owner_source(c, 0, &m, false, NULL) != -EINVAL;
}

/* Runs the tool on the metadata of the object above c (a metadata/ file's
 * ctx is the metadata/ directory). */
static int run(struct ctx *c, enum kmeta_op op, struct kmeta_result *res)
{
	struct meta_source m;
	int r = meta_owner_source(c, 1, &m, true, c->why);
	if (r)
		return r;
	struct kmeta_req q = {
		.kind = m.kind,
		.op = op,
		.devpath = m.devpath,
		.live_name = m.live_name[0] ? m.live_name : NULL,
		.tmp_dir = opts.state_dir,
		.cancel = c->cancel,
	};
	return kmeta_run(&q, res, c->why);
}

/* A tool that failed (other than a check, whose failure is its result):
 * its first line of stderr is the reason. */
int meta_tool_failed(struct ctx *c, const struct kmeta_result *res)
{
	const char *msg = res->err && res->err[0] ? res->err : "no output";
	size_t len = strcspn(msg, "\n");
	return why_set(c->why, -EIO, "%s failed (exit %d): %.*s", res->argv0, res->exit_code, (int)len, msg);
}

static int kv_check(struct ctx *c, struct kv_doc *doc)
{
	struct kmeta_result res;
	int r = run(c, KMETA_CHECK, &res);
	if (r)
		return r;
	r = dmpd_check_parse(res.out, strlen(res.out), res.err, strlen(res.err), res.exit_code, doc, c->why,
			     STSFS_WHY_LEN);
	kmeta_result_free(&res);
	return r;
}

static int kv_ls(struct ctx *c, struct kv_doc *doc)
{
	struct kmeta_result res;
	int r = run(c, KMETA_LS, &res);
	if (r)
		return r;
	r = res.exit_code ? meta_tool_failed(c, &res) : dmpd_ls_parse(res.out, strlen(res.out), doc, c->why, STSFS_WHY_LEN);
	kmeta_result_free(&res);
	return r;
}

static int dump(struct ctx *c, struct kmeta_result *res)
{
	int r = run(c, KMETA_DUMP, res);
	if (!r && res->exit_code) {
		r = meta_tool_failed(c, res);
		kmeta_result_free(res);
	}
	return r;
}

static int show_dump(struct ctx *c, char **out)
{
	struct kmeta_result res;
	int r = dump(c, &res);
	if (r)
		return r;
	*out = res.out;
	res.out = NULL;
	kmeta_result_free(&res);
	return 0;
}

static const enum dmpd_kind dmpd_kinds[] = {
	[KMETA_THIN] = DMPD_THIN,
	[KMETA_CACHE] = DMPD_CACHE,
	[KMETA_ERA] = DMPD_ERA,
};

static int kv_summary(struct ctx *c, struct kv_doc *doc)
{
	struct kmeta_result res;
	int r = dump(c, &res);
	if (r)
		return r;
	r = dmpd_summary_parse(dmpd_kinds[res.kind], res.out, strlen(res.out), doc, c->why, STSFS_WHY_LEN);
	kmeta_result_free(&res);
	return r;
}

static bool is_thin(struct ctx *c)
{
	struct meta_source m;
	return meta_owner_source(c, 1, &m, false, NULL) == 0 && m.kind == KMETA_THIN;
}

static const struct file_def metadata_files[] = {
	{ .name = "check", .perm = 0444, .kv = kv_check },
	{ .name = "ls", .perm = 0444, .kv = kv_ls, .kv_array = true, .visible = is_thin },
	{ .name = "dump", .perm = 0444, .show = show_dump },
	{ .name = "summary", .perm = 0444, .kv = kv_summary, .kv_array = true },
	{ NULL },
};

const struct dir_kind metadata_kind = {
	.name = "metadata",
	.files = { metadata_files, metadata_write_files },
	.block = metadata_previous_block,
};
