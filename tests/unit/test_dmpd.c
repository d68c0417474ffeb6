/* Parsers of the device-mapper-persistent-data tools' output, against the
 * outputs recorded in tests/unit/data/dm-status/tools (thin-provisioning-tools
 * 0.9.0, see the README there) and hand-written variants. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_lines.h"
#include "stsfs/dmpd_parse.h"

#define TOOLS DATA_DIR "/dm-status/tools"

static char why[256];
static struct kv_doc d;

static void setup(void)
{
	memset(&d, 0, sizeof(d));
	why[0] = '\0';
}

static void teardown(void)
{
	kv_doc_free(&d);
}

TestSuite(dmpd, .init = setup, .fini = teardown);

/* ---- helpers ---------------------------------------------------------------- */

struct buf {
	char *s;
	size_t len;
};

static struct buf slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
	struct buf b = { 0 };
	size_t cap = 0;
	for (;;) {
		if (b.len + 4096 > cap) {
			cap = cap * 2 + 8192;
			b.s = realloc(b.s, cap);
			cr_assert_not_null(b.s);
		}
		size_t n = fread(b.s + b.len, 1, 4096, f);
		if (!n)
			break;
		b.len += n;
	}
	fclose(f);
	b.s[b.len] = '\0';
	return b;
}

static struct buf tool_out(const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s.txt", TOOLS, name);
	return slurp(path);
}

static struct buf tool_err(const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s.stderr.txt", TOOLS, name);
	return slurp(path);
}

struct command {
	char name[64];
	int exit;
	char cmd[256];
};

static struct command commands[64];
static size_t ncommands;

static void command_line(const char *path, size_t lineno, char *line, void *arg)
{
	(void)arg;
	cr_assert_lt(ncommands, sizeof(commands) / sizeof(commands[0]));
	struct command *c = &commands[ncommands];
	char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
	cr_assert(t1 && t2 && sscanf(t1 + 1, "exit=%d", &c->exit) == 1, "%s:%zu: '%s'", path, lineno,
		  line);
	snprintf(c->name, sizeof(c->name), "%.*s", (int)(t1 - line), line);
	snprintf(c->cmd, sizeof(c->cmd), "%s", t2 + 1);
	ncommands++;
}

static void load_commands(void)
{
	if (!ncommands)
		for_each_data_line(TOOLS "/commands.txt", command_line, NULL);
}

static int exit_of(const char *name)
{
	load_commands();
	for (size_t i = 0; i < ncommands; i++)
		if (strcmp(commands[i].name, name) == 0)
			return commands[i].exit;
	cr_assert_fail("%s is not in commands.txt", name);
	return -1;
}

static const struct kv *get(size_t block, const char *key)
{
	cr_assert_lt(block, d.n, "no block %zu (doc has %zu)", block, d.n);
	const struct kv *e = kv_get(&d.blocks[block], key);
	cr_assert_not_null(e, "block %zu: no key '%s'", block, key);
	return e;
}

static void want_u64(size_t block, const char *key, uint64_t v)
{
	const struct kv *e = get(block, key);
	cr_assert_eq(e->type, KV_U64, "block %zu %s: type %d, want a number", block, key, e->type);
	cr_assert_eq(e->u, v, "block %zu %s=%" PRIu64 ", want %" PRIu64, block, key, e->u, v);
}

static void want_str(size_t block, const char *key, const char *v)
{
	const struct kv *e = get(block, key);
	cr_assert_eq(e->type, KV_STR, "block %zu %s: type %d, want a string", block, key, e->type);
	cr_assert_str_eq(e->str, v, "block %zu %s", block, key);
}

/* Block `block` must have exactly these keys, in order (space-separated);
 * list declarations count as their key. */
static void want_keys(size_t block, const char *keys)
{
	cr_assert_lt(block, d.n);
	const struct kv_block *b = &d.blocks[block];
	char *copy = strdup(keys), *save = NULL;
	size_t i = 0;
	for (char *k = strtok_r(copy, " ", &save); k; k = strtok_r(NULL, " ", &save), i++) {
		cr_assert_lt(i, b->n, "block %zu: missing key '%s'", block, k);
		cr_assert_str_eq(b->v[i].key, k, "block %zu key %zu is '%s', want '%s'", block, i,
				 b->v[i].key, k);
	}
	free(copy);
	cr_assert_eq(i, b->n, "block %zu has %zu keys, want %zu (extra '%s')", block, b->n, i,
		     i < b->n ? b->v[i].key : "");
}

/* The problem= values of block 0, in order. */
static size_t problems(const char **out, size_t max)
{
	size_t n = 0;
	const struct kv_block *b = &d.blocks[0];
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->v[i].key, "problem") == 0 && b->v[i].type == KV_STR) {
			cr_assert_lt(n, max);
			out[n++] = b->v[i].str;
		}
	return n;
}

/* Both renderings: text lines are key=value, JSON is valid (UTF-8 checked)
 * and of the expected shape. */
static json_object *render_json(bool as_array)
{
	char *t = kv_render_text(&d);
	cr_assert_not_null(t);
	for (char *p = t; *p; p = strchr(p, '\n') + 1) {
		size_t n = strcspn(p, "\n");
		cr_assert(n == 0 || memchr(p, '=', n), "text line without '=': %.*s", (int)n, p);
		cr_assert(p[n] == '\n', "text does not end in a newline");
	}
	free(t);
	char *j = kv_render_json(&d, as_array);
	cr_assert_not_null(j);
	json_tokener *tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *o = json_tokener_parse_ex(tok, j, (int)strlen(j));
	cr_assert_eq(json_tokener_get_error(tok), json_tokener_success, "invalid JSON: %s", j);
	json_tokener_free(tok);
	free(j);
	return o;
}

static void parse_check(const char *name)
{
	struct buf o = tool_out(name), e = tool_err(name);
	int r = dmpd_check_parse(o.s, o.len, e.s, e.len, exit_of(name), &d, why, sizeof(why));
	cr_assert_eq(r, 0, "%s: %d %s", name, r, why);
	free(o.s);
	free(e.s);
	cr_assert_eq(d.n, 1);
}

static void parse_summary(enum dmpd_kind kind, const char *name)
{
	struct buf o = tool_out(name);
	int r = dmpd_summary_parse(kind, o.s, o.len, &d, why, sizeof(why));
	cr_assert_eq(r, 0, "%s: %d %s", name, r, why);
	free(o.s);
}

static void parse_ls(const char *name)
{
	struct buf o = tool_out(name);
	int r = dmpd_ls_parse(o.s, o.len, &d, why, sizeof(why));
	cr_assert_eq(r, 0, "%s: %d %s", name, r, why);
	free(o.s);
}

static void parse_delta(const char *name)
{
	struct buf o = tool_out(name);
	int r = dmpd_delta_parse(o.s, o.len, &d, why, sizeof(why));
	cr_assert_eq(r, 0, "%s: %d %s", name, r, why);
	free(o.s);
}

/* ---- every recorded output ---------------------------------------------------- */

static bool is_tool(const char *name, const char *tool)
{
	size_t n = strlen(tool);
	return strncmp(name, tool, n) == 0 && (name[n] == '\0' || name[n] == '-');
}

/* Each run in commands.txt through the parser for its file: a successful
 * run always parses; check runs always parse; a failed thin_ls printed
 * nothing on stdout, which is refused. */
Test(dmpd, every_recorded_output_parses)
{
	load_commands();
	/* every recorded NAME.txt has its run in commands.txt, and back */
	DIR *dir = opendir(TOOLS);
	cr_assert_not_null(dir, "cannot open " TOOLS ": %s", strerror(errno));
	size_t files = 0;
	for (struct dirent *de; (de = readdir(dir));) {
		size_t n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".txt") != 0 ||
		    strcmp(de->d_name, "commands.txt") == 0 ||
		    (n > 11 && strcmp(de->d_name + n - 11, ".stderr.txt") == 0))
			continue;
		char name[256];
		snprintf(name, sizeof(name), "%.*s", (int)(n - 4), de->d_name);
		exit_of(name);
		files++;
	}
	closedir(dir);
	cr_assert_eq(files, ncommands, "%zu recorded outputs, %zu runs", files, ncommands);
	cr_log_info("%zu recorded tool runs", ncommands);
	for (size_t i = 0; i < ncommands; i++) {
		const struct command *c = &commands[i];
		struct buf o = tool_out(c->name), e = tool_err(c->name);
		kv_doc_free(&d);
		int r;
		bool array = true;
		if (is_tool(c->name, "thin_check") || is_tool(c->name, "cache_check") ||
		    is_tool(c->name, "era_check")) {
			r = dmpd_check_parse(o.s, o.len, e.s, e.len, c->exit, &d, why, sizeof(why));
			array = false;
		} else if (is_tool(c->name, "thin_ls")) {
			r = dmpd_ls_parse(o.s, o.len, &d, why, sizeof(why));
		} else if (is_tool(c->name, "thin_delta")) {
			r = dmpd_delta_parse(o.s, o.len, &d, why, sizeof(why));
		} else if (is_tool(c->name, "thin_dump")) {
			r = dmpd_summary_parse(DMPD_THIN, o.s, o.len, &d, why, sizeof(why));
		} else if (is_tool(c->name, "cache_dump")) {
			r = dmpd_summary_parse(DMPD_CACHE, o.s, o.len, &d, why, sizeof(why));
		} else if (is_tool(c->name, "era_dump")) {
			r = dmpd_summary_parse(DMPD_ERA, o.s, o.len, &d, why, sizeof(why));
		} else {
			cr_assert_fail("%s: no parser for this tool", c->name);
			r = -1;
		}
		if (c->exit == 0 || !array) {
			cr_assert_eq(r, 0, "%s (%s): %d %s", c->name, c->cmd, r, why);
			json_object *j = render_json(array);
			json_object_put(j);
		} else {
			cr_assert_eq(o.len, 0, "%s failed but printed", c->name);
			cr_assert_eq(r, -EINVAL, "%s: empty output gave %d", c->name, r);
			cr_assert_eq(d.n, 0);
		}
		if (!array) {
			const struct kv *res = get(0, "result");
			cr_assert_str_eq(res->str, c->exit ? "error" : "ok", "%s", c->name);
			want_u64(0, "exit_code", (uint64_t)c->exit);
		}
		free(o.s);
		free(e.s);
	}
}

/* ---- check ------------------------------------------------------------------ */

Test(dmpd, thin_check_ok)
{
	parse_check("thin_check");
	want_keys(0, "result exit_code transaction_id metadata_free_blocks problems problem");
	want_str(0, "result", "ok");
	want_u64(0, "exit_code", 0);
	want_u64(0, "transaction_id", 2);
	want_u64(0, "metadata_free_blocks", 2047);
	want_u64(0, "problems", 0);
	cr_assert_eq(get(0, "problem")->type, KV_LIST);
	json_object *j = render_json(false), *v;
	cr_assert(json_object_object_get_ex(j, "problem", &v));
	cr_assert(json_object_is_type(v, json_type_array) && json_object_array_length(v) == 0);
	json_object_put(j);
	char *t = kv_render_text(&d);
	cr_assert_str_eq(t, "result=ok\nexit_code=0\ntransaction_id=2\nmetadata_free_blocks=2047\n"
			    "problems=0\n");
	free(t);
}

Test(dmpd, thin_check_metadata_snap)
{
	parse_check("thin_check-m");
	want_str(0, "result", "ok");
	want_u64(0, "transaction_id", 2);
	want_u64(0, "problems", 0);
}

Test(dmpd, thin_check_corrupt)
{
	parse_check("thin_check-corrupt");
	want_keys(0, "result exit_code problems problem problem problem");
	want_str(0, "result", "error");
	want_u64(0, "exit_code", 1);
	want_u64(0, "problems", 2);
	const char *p[4];
	cr_assert_eq(problems(p, 4), 2);
	cr_assert_str_eq(p[0], "superblock is corrupt");
	cr_assert_str_eq(p[1], "bad checksum in superblock, wanted 3848107652");
	json_object *j = render_json(false), *v;
	cr_assert(json_object_object_get_ex(j, "problem", &v));
	cr_assert_eq(json_object_array_length(v), 2);
	cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 1)),
			 "bad checksum in superblock, wanted 3848107652");
	json_object_put(j);
}

Test(dmpd, cache_check_ok_and_corrupt)
{
	const char *ok[] = { "cache_check", "cache_check-writethrough", "era_check" };
	for (size_t i = 0; i < 3; i++) {
		kv_doc_free(&d);
		parse_check(ok[i]);
		want_keys(0, "result exit_code problems problem");
		want_str(0, "result", "ok");
		want_u64(0, "problems", 0);
	}
	const char *bad[] = { "cache_check-corrupt", "era_check-corrupt" };
	for (size_t i = 0; i < 2; i++) {
		kv_doc_free(&d);
		parse_check(bad[i]);
		want_str(0, "result", "error");
		want_u64(0, "exit_code", 1);
		const char *p[4];
		cr_assert_eq(problems(p, 4), 2, "%s", bad[i]);
		cr_assert_str_eq(p[0], "superblock is corrupt");
		cr_assert_str_eq(p[1], "bad checksum in superblock");
	}
}

/* What 0.9.0 printed on locally damaged images (thin_restore/era_restore of
 * the recorded dumps, then a metadata block overwritten): a finding after the
 * last progress line and unindented, and era_check's abort (exit 134) with
 * the assertion glued to the unfinished line. */
Test(dmpd, check_damage_seen_with_0_9_0)
{
	const char *err = "examining superblock\n"
			  "examining devices tree\n"
			  "examining mapping tree\n"
			  "checking space map counts\n"
			  "bad checksum in btree node (block 2)\n";
	const char *out = "TRANSACTION_ID=5\nMETADATA_FREE_BLOCKS=2047\n";
	cr_assert_eq(dmpd_check_parse(out, strlen(out), err, strlen(err), 1, &d, why, sizeof(why)), 0);
	want_keys(0, "result exit_code transaction_id metadata_free_blocks problems problem problem");
	const char *p[4];
	cr_assert_eq(problems(p, 4), 1);
	cr_assert_str_eq(p[0], "bad checksum in btree node (block 2)");

	kv_doc_free(&d);
	err = "examining superblock\n"
	      "examining devices tree\n"
	      "examining mapping tree\n"
	      "  thin device 0 is missing mappings [755, 1008]\n"
	      "    bad checksum in btree node (block 20)\n";
	cr_assert_eq(dmpd_check_parse(NULL, 0, err, strlen(err), 1, &d, why, sizeof(why)), 0);
	cr_assert_eq(problems(p, 4), 2);
	cr_assert_str_eq(p[0], "thin device 0 is missing mappings [755, 1008]");
	cr_assert_str_eq(p[1], "bad checksum in btree node (block 20)");

	kv_doc_free(&d);
	err = "examining superblock\n"
	      "examining writesets\n"
	      "missing eras from writeset tree\n"
	      "  bad checksum in btree node (block 4)\n"
	      "  Effected eras: [0, era_check: /usr/include/boost/optional/optional.hpp:1211: "
	      "boost::optional<T>::reference_const_type boost::optional<T>::get() const [with T = "
	      "unsigned int; boost::optional<T>::reference_const_type = const unsigned int&]: "
	      "Assertion `this->is_initialized()' failed.\n";
	cr_assert_eq(dmpd_check_parse("", 0, err, strlen(err), 134, &d, why, sizeof(why)), 0);
	want_str(0, "result", "error");
	want_u64(0, "exit_code", 134);
	cr_assert_eq(problems(p, 4), 3);
	cr_assert_str_eq(p[0], "missing eras from writeset tree");
	cr_assert(strncmp(p[2], "Effected eras: [0, era_check: ", 30) == 0, "%s", p[2]);
}

/* A tool refusing to run (thin_ls on live metadata without -m: the same
 * shape as a check tool refusing) still gives its reason as problems. */
Test(dmpd, check_tool_refused)
{
	struct buf o = tool_out("thin_ls-live-no-m"), e = tool_err("thin_ls-live-no-m");
	cr_assert_eq(dmpd_check_parse(o.s, o.len, e.s, e.len, exit_of("thin_ls-live-no-m"), &d, why,
				      sizeof(why)),
		     0);
	const char *p[4];
	cr_assert_eq(problems(p, 4), 2);
	cr_assert_str_eq(p[0], "syscall 'open' failed: Device or resource busy");
	cr_assert_str_eq(p[1], "Note: you cannot run this tool with these options on live metadata.");
	free(o.s);
	free(e.s);
}

/* Rust 1.x progress lines are not findings either. */
Test(dmpd, check_rust_progress)
{
	const char *err = "Checking thin metadata\ndevice details tree\nmapping tree\n"
			  "number of devices to check: 2\nProgress: 50%\n";
	const char *out = "TRANSACTION_ID=2\nMETADATA_FREE_BLOCKS=2047\n";
	cr_assert_eq(dmpd_check_parse(out, strlen(out), err, strlen(err), 0, &d, why, sizeof(why)), 0);
	want_u64(0, "problems", 0);
	want_u64(0, "transaction_id", 2);
}

Test(dmpd, check_line_rules)
{
	/* stdout text that is not KEY=VALUE, a reserved or repeated key, CRLF,
	 * indented progress words, control bytes and bad UTF-8 */
	const char out[] = "RESULT=fine\nTRANSACTION_ID=1\nTRANSACTION_ID=2\nplain words\n"
			   "lower=case\n";
	const char err[] = "\r\n   \n  examining is indented so it is a finding\r\n"
			   "tab\there\x01 bell\x7f\n"
			   "caf\xc3\xa9 \xff\xc3 ok\n";
	cr_assert_eq(dmpd_check_parse(out, sizeof(out) - 1, err, sizeof(err) - 1, 2, &d, why,
				      sizeof(why)),
		     0);
	want_u64(0, "transaction_id", 1);
	want_u64(0, "problems", 7);
	const char *p[8];
	cr_assert_eq(problems(p, 8), 7);
	cr_assert_str_eq(p[0], "examining is indented so it is a finding");
	cr_assert_str_eq(p[1], "tab here? bell?");
	cr_assert_str_eq(p[2], "caf\xc3\xa9 ?? ok");
	cr_assert_str_eq(p[3], "RESULT=fine");
	cr_assert_str_eq(p[4], "TRANSACTION_ID=2");
	cr_assert_str_eq(p[5], "plain words");
	cr_assert_str_eq(p[6], "lower=case");
	json_object *j = render_json(false);
	json_object_put(j);
}

/* UTF-8 is kept when valid; overlong forms, surrogates, code points past
 * U+10FFFF and cut sequences are not. */
Test(dmpd, check_utf8)
{
	const char err[] = "ok \xf0\x9f\x98\x80 \xc3\xa9\n"
			   "overlong \xe0\x80\x80 \xc0\xaf\n"
			   "surrogate \xed\xa0\x80\n"
			   "too big \xf4\x90\x80\x80\n"
			   "cut \xe2\x82\n";
	cr_assert_eq(dmpd_check_parse(NULL, 0, err, sizeof(err) - 1, 1, &d, why, sizeof(why)), 0);
	const char *p[8];
	cr_assert_eq(problems(p, 8), 5);
	cr_assert_str_eq(p[0], "ok \xf0\x9f\x98\x80 \xc3\xa9");
	cr_assert_str_eq(p[1], "overlong ??? ??");
	cr_assert_str_eq(p[2], "surrogate ???");
	cr_assert_str_eq(p[3], "too big ????");
	cr_assert_str_eq(p[4], "cut ??");
	json_object *j = render_json(false);
	json_object_put(j);
}

Test(dmpd, check_embedded_nul_and_no_newline)
{
	const char err[] = "first\0second\nthird";
	cr_assert_eq(dmpd_check_parse(NULL, 0, err, sizeof(err) - 1, 1, &d, why, sizeof(why)), 0);
	const char *p[4];
	cr_assert_eq(problems(p, 4), 2);
	cr_assert_str_eq(p[0], "first?second");
	cr_assert_str_eq(p[1], "third");
}

Test(dmpd, check_caps_problem_lines)
{
	size_t n = DMPD_MAX_PROBLEMS + 5;
	char *err = malloc(n * 8 + 1), *q = err;
	for (size_t i = 0; i < n; i++)
		q += sprintf(q, "e%05zu\n", i);
	cr_assert_eq(dmpd_check_parse(NULL, 0, err, (size_t)(q - err), 1, &d, why, sizeof(why)), 0);
	want_u64(0, "problems", n);
	const char **p = calloc(n, sizeof(*p));
	cr_assert_eq(problems(p, n), DMPD_MAX_PROBLEMS);
	cr_assert_str_eq(p[DMPD_MAX_PROBLEMS - 1], "e00999");
	free(p);
	free(err);
}

Test(dmpd, check_bad_exit_status)
{
	cr_assert_eq(dmpd_check_parse(NULL, 0, NULL, 0, -1, &d, why, sizeof(why)), -EINVAL);
	cr_assert_str_eq(why, "check: exit status -1 out of range 0-255");
	cr_assert_eq(dmpd_check_parse(NULL, 0, NULL, 0, 256, &d, NULL, 0), -EINVAL);
	cr_assert_eq(d.n, 0);
	cr_assert_eq(dmpd_check_parse(NULL, 0, NULL, 0, 255, &d, why, sizeof(why)), 0);
	want_str(0, "result", "error");
}

/* ---- ls -------------------------------------------------------------------- */

Test(dmpd, ls_recorded)
{
	const char *names[] = { "thin_ls", "thin_ls-m" };
	for (size_t i = 0; i < 2; i++) {
		kv_doc_free(&d);
		parse_ls(names[i]);
		cr_assert_eq(d.n, 2);
		want_keys(0, "dev mapped_blocks exclusive_blocks shared_blocks transaction create_time "
			     "snap_time mapped_bytes");
		want_u64(0, "dev", 0);
		want_u64(0, "mapped_blocks", 64);
		want_u64(0, "exclusive_blocks", 16);
		want_u64(0, "shared_blocks", 48);
		want_u64(0, "transaction", 0);
		want_u64(0, "create_time", 0);
		want_u64(0, "snap_time", 1);
		want_u64(0, "mapped_bytes", 4194304);
		want_u64(1, "dev", 1);
		want_u64(1, "mapped_blocks", 72);
		want_u64(1, "exclusive_blocks", 24);
		want_u64(1, "shared_blocks", 48);
		want_u64(1, "transaction", 1);
		want_u64(1, "create_time", 1);
		want_u64(1, "snap_time", 1);
		want_u64(1, "mapped_bytes", 4718592);
	}
	json_object *j = render_json(true);
	cr_assert(json_object_is_type(j, json_type_array) && json_object_array_length(j) == 2);
	json_object_put(j);
}

Test(dmpd, ls_other_columns)
{
	parse_ls("thin_ls-sectors");
	cr_assert_eq(d.n, 2);
	want_keys(1, "dev mapped_sectors exclusive_sectors shared_sectors mapped exclusive shared");
	want_u64(1, "mapped_sectors", 9216);
	want_str(1, "mapped", "4608KiB");
	want_str(1, "shared", "3072KiB");
	kv_doc_free(&d);
	parse_ls("thin_ls-m-default");
	want_keys(0, "dev mapped create_time snap_time");
	want_str(0, "mapped", "4096KiB");
	want_u64(0, "snap_time", 1);
	/* a human-readable column stays a string when it is 0 (0.9.0 prints no unit) */
	kv_doc_free(&d);
	const char *t = "DEV MAPPED_BLOCKS MAPPED EXCLUSIVE  SHARED \n"
			"  0          3000 188MiB    188MiB      0 \n";
	cr_assert_eq(dmpd_ls_parse(t, strlen(t), &d, why, sizeof(why)), 0, "%s", why);
	want_str(0, "shared", "0");
	want_u64(0, "mapped_blocks", 3000);
}

Test(dmpd, ls_empty_pool)
{
	const char *t = "DEV MAPPED_BLOCKS EXCLUSIVE_BLOCKS SHARED_BLOCKS TRANSACTION CREATE_TIME "
			"SNAP_TIME \n";
	cr_assert_eq(dmpd_ls_parse(t, strlen(t), &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(d.n, 0);
	json_object *j = render_json(true);
	cr_assert(json_object_is_type(j, json_type_array) && json_object_array_length(j) == 0);
	json_object_put(j);
}

static void ls_bad(const char *text, const char *reason)
{
	struct kv_doc keep = { 0 };
	kv_add_str(kv_doc_add_block(&keep), "mine", "x");
	why[0] = '\0';
	int r = dmpd_ls_parse(text, text ? strlen(text) : 0, &keep, why, sizeof(why));
	cr_assert_eq(r, -EINVAL, "'%s' gave %d", text, r);
	cr_assert_eq(keep.n, 1, "'%s' left blocks behind", text);
	cr_assert(strstr(why, reason), "'%s': reason '%s' lacks '%s'", text, why, reason);
	cr_assert_eq(strncmp(why, "thin_ls", 7), 0, "%s", why);
	kv_doc_free(&keep);
}

Test(dmpd, ls_malformed)
{
	ls_bad(NULL, "no header line");
	ls_bad("\n  \n", "no header line");
	ls_bad("  0  64\n", "line 1: '0' is not a column name");
	ls_bad("DEV MAPPED_BLOCKS\n  0 64\n  1\n", "line 3: 1 fields, the header has 2");
	ls_bad("DEV MAPPED_BLOCKS\n  0 64 7\n", "line 2: more than 2 fields");
	ls_bad("DEV dev\n", "'dev' is not a column name");
	ls_bad("DEV DEV\n", "column DEV repeats");
	ls_bad("DEV 9X\n", "'9X' is not a column name");
	ls_bad("DEV MAPPED_BLOCKS\n  0 6\x01\n", "line 2: unexpected byte 0x01");
	ls_bad("DEV MAPPED_BLOCKS\n  0 6\xc3\xa9\n", "unexpected byte 0xc3");
	ls_bad("A_VERY_LONG_COLUMN_NAME_THAT_GOES_ON\n", "column name too long");
	char many[200] = "";
	for (int i = 0; i < 33; i++)
		sprintf(many + strlen(many), "C%d ", i);
	ls_bad(many, "more than 32 columns");
}

/* ---- summary ------------------------------------------------------------------ */

Test(dmpd, thin_dump_summary)
{
	parse_summary(DMPD_THIN, "thin_dump");
	cr_assert_eq(d.n, 3);
	want_keys(0, "uuid time transaction flags version data_block_size nr_data_blocks devices");
	want_str(0, "uuid", "");
	want_u64(0, "time", 1);
	want_u64(0, "transaction", 2);
	want_u64(0, "flags", 0);
	want_u64(0, "version", 2);
	want_u64(0, "data_block_size", 128);
	want_u64(0, "nr_data_blocks", 1024);
	want_u64(0, "devices", 2);
	want_keys(1, "dev_id mapped_blocks transaction creation_time snap_time range_mappings "
		     "single_mappings shared_refs mapped_blocks_counted");
	want_u64(1, "dev_id", 0);
	want_u64(1, "mapped_blocks", 64);
	want_u64(1, "range_mappings", 1);
	want_u64(1, "mapped_blocks_counted", 64);
	want_u64(2, "dev_id", 1);
	want_u64(2, "mapped_blocks", 72);
	want_u64(2, "transaction", 1);
	want_u64(2, "creation_time", 1);
	want_u64(2, "snap_time", 1);
	want_u64(2, "range_mappings", 3);
	want_u64(2, "single_mappings", 0);
	want_u64(2, "shared_refs", 0);
	want_u64(2, "mapped_blocks_counted", 72);
	/* the dump taken through the metadata snapshot has no data space map */
	kv_doc_free(&d);
	parse_summary(DMPD_THIN, "thin_dump-m");
	want_u64(0, "nr_data_blocks", 0);
	want_u64(2, "mapped_blocks_counted", 72);
}

Test(dmpd, cache_dump_summary)
{
	parse_summary(DMPD_CACHE, "cache_dump");
	cr_assert_eq(d.n, 1);
	want_keys(0, "uuid block_size nr_cache_blocks policy hint_width mappings dirty_mappings hints "
		     "discards");
	want_u64(0, "block_size", 128);
	want_u64(0, "nr_cache_blocks", 256);
	want_str(0, "policy", "smq");
	want_u64(0, "hint_width", 4);
	want_u64(0, "mappings", 48);
	want_u64(0, "dirty_mappings", 48);
	want_u64(0, "hints", 48);
	want_u64(0, "discards", 0);
	kv_doc_free(&d);
	parse_summary(DMPD_CACHE, "cache_dump-writethrough");
	want_u64(0, "mappings", 64);
	want_u64(0, "dirty_mappings", 0);
	want_u64(0, "hints", 64);
	json_object *j = render_json(false);
	cr_assert(json_object_is_type(j, json_type_object));
	json_object_put(j);
}

Test(dmpd, era_dump_summary)
{
	parse_summary(DMPD_ERA, "era_dump");
	cr_assert_eq(d.n, 2);
	want_keys(0, "uuid block_size nr_blocks current_era writesets era_array_entries");
	want_u64(0, "nr_blocks", 1024);
	want_u64(0, "current_era", 4);
	want_u64(0, "writesets", 1);
	want_u64(0, "era_array_entries", 1024);
	want_keys(1, "era nr_bits bits bits_set");
	want_u64(1, "era", 4);
	want_u64(1, "nr_bits", 1024);
	want_u64(1, "bits", 1024);
	want_u64(1, "bits_set", 0);
	kv_doc_free(&d);
	parse_summary(DMPD_ERA, "era_dump-logical");
	cr_assert_eq(d.n, 1);
	want_u64(0, "writesets", 0);
	want_u64(0, "era_array_entries", 1024);
}

/* The Rust thin_dump shares runs between devices: <def> blocks referenced
 * by <ref>; its era_dump --repair/compact form writes <marked> ranges. */
Test(dmpd, rust_forms)
{
	const char *x = "<superblock uuid=\"\" time=\"1\" transaction=\"2\" version=\"2\" "
			"data_block_size=\"128\" nr_data_blocks=\"1024\">\n"
			"  <def name=\"7\">\n"
			"    <range_mapping origin_begin=\"16\" data_begin=\"16\" length=\"48\" time=\"0\"/>\n"
			"    <single_mapping origin_block=\"99\" data_block=\"300\" time=\"0\"/>\n"
			"  </def>\n"
			"  <def name=\"3\"/>\n"
			"  <device dev_id=\"0\" mapped_blocks=\"65\" transaction=\"0\" creation_time=\"0\" snap_time=\"1\">\n"
			"    <ref name=\"7\"/>\n"
			"    <single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\"/>\n"
			"  </device>\n"
			"  <device dev_id=\"1\" mapped_blocks=\"50\" transaction=\"1\" creation_time=\"1\" snap_time=\"1\">\n"
			"    <ref name=\"7\"/>\n"
			"    <ref name=\"3\"/>\n"
			"    <range_mapping origin_begin=\"0\" data_begin=\"64\" length=\"1\" time=\"1\"/>\n"
			"  </device>\n"
			"  <device dev_id=\"2\" mapped_blocks=\"0\" transaction=\"2\" creation_time=\"1\" snap_time=\"1\"/>\n"
			"</superblock>\n";
	cr_assert_eq(dmpd_summary_parse(DMPD_THIN, x, strlen(x), &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(d.n, 4);
	want_u64(0, "devices", 3);
	want_u64(1, "shared_refs", 1);
	want_u64(1, "single_mappings", 1);
	want_u64(1, "range_mappings", 0);
	want_u64(1, "mapped_blocks_counted", 50);
	want_u64(2, "shared_refs", 2);
	want_u64(2, "range_mappings", 1);
	want_u64(2, "mapped_blocks_counted", 50);
	want_keys(3, "dev_id mapped_blocks transaction creation_time snap_time range_mappings "
		     "single_mappings shared_refs mapped_blocks_counted");
	want_u64(3, "mapped_blocks_counted", 0);

	kv_doc_free(&d);
	x = "<superblock uuid=\"\" block_size=\"128\" nr_blocks=\"1024\" current_era=\"5\">\n"
	    "  <writeset era=\"3\" nr_bits=\"1024\">\n"
	    "    <marked block_begin=\"0\" len=\"32\"/>\n"
	    "    <marked block_begin=\"128\" len=\"16\"/>\n"
	    "  </writeset>\n"
	    "  <writeset era=\"4\" nr_bits=\"1024\"/>\n"
	    "  <era_array/>\n"
	    "</superblock>\n";
	cr_assert_eq(dmpd_summary_parse(DMPD_ERA, x, strlen(x), &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(d.n, 3);
	want_u64(0, "writesets", 2);
	want_u64(0, "era_array_entries", 0);
	want_u64(1, "bits", 0);
	want_u64(1, "bits_set", 48);
	want_u64(2, "era", 4);
	want_u64(2, "bits_set", 0);
}

Test(dmpd, summary_small_forms)
{
	/* an empty pool, one-line, entities, whitespace inside tags, CRLF */
	const char *x = "<superblock uuid=\"a&amp;b&lt;&gt;&quot;&apos;&#65;&#x42;\" time = \"0\"\r\n"
			"   transaction=\"0\" flags=\"0\" version=\"2\" data_block_size=\"128\" "
			"nr_data_blocks=\"1024\" ></superblock >\r\n";
	cr_assert_eq(dmpd_summary_parse(DMPD_THIN, x, strlen(x), &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(d.n, 1);
	want_str(0, "uuid", "a&b<>\"'AB");
	kv_doc_free(&d);
	x = "<superblock uuid=\"&#x4a;&#x4A;&#126;\" time=\"0\" transaction=\"0\"/>";
	cr_assert_eq(dmpd_summary_parse(DMPD_THIN, x, strlen(x), &d, why, sizeof(why)), 0, "%s", why);
	want_str(0, "uuid", "JJ~");
	want_u64(0, "devices", 0);
	kv_doc_free(&d);
	x = "<superblock uuid=\"\" block_size=\"64\" nr_cache_blocks=\"8\" policy=\"smq\" "
	    "hint_width=\"4\"><mappings/><hints></hints><discards><discard dbegin=\"0\" "
	    "dend=\"4\"/></discards></superblock>";
	cr_assert_eq(dmpd_summary_parse(DMPD_CACHE, x, strlen(x), &d, why, sizeof(why)), 0, "%s", why);
	want_u64(0, "mappings", 0);
	want_u64(0, "discards", 1);
	kv_doc_free(&d);
	x = "<superblock uuid=\"\" block_size=\"128\" nr_blocks=\"0\" current_era=\"0\"/>";
	cr_assert_eq(dmpd_summary_parse(DMPD_ERA, x, strlen(x), &d, why, sizeof(why)), 0, "%s", why);
	want_u64(0, "writesets", 0);
	cr_assert_eq(dmpd_summary_parse((enum dmpd_kind)9, x, strlen(x), &d, why, sizeof(why)), -EINVAL);
}

/* Malformed input: -EINVAL, a reason naming the tool and the line, and the
 * caller's blocks untouched. */
static void summary_bad(enum dmpd_kind kind, const char *xml, const char *reason)
{
	static const char *const tools[] = { "thin_dump", "cache_dump", "era_dump" };
	struct kv_doc keep = { 0 };
	kv_add_str(kv_doc_add_block(&keep), "mine", "x");
	why[0] = '\0';
	int r = dmpd_summary_parse(kind, xml, xml ? strlen(xml) : 0, &keep, why, sizeof(why));
	cr_assert_eq(r, -EINVAL, "'%s' gave %d", xml, r);
	cr_assert_eq(keep.n, 1, "'%s' left blocks behind", xml);
	cr_assert_eq(strncmp(why, tools[kind], strlen(tools[kind])), 0, "reason '%s'", why);
	cr_assert(strstr(why, reason), "'%s': reason '%s' lacks '%s'", xml, why, reason);
	kv_doc_free(&keep);
}

#define SB_THIN "<superblock uuid=\"\" time=\"1\" transaction=\"2\" data_block_size=\"128\" nr_data_blocks=\"8\">\n"
#define DEV "  <device dev_id=\"0\" mapped_blocks=\"1\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n"

Test(dmpd, summary_malformed)
{
	summary_bad(DMPD_THIN, NULL, "line 1: no <superblock> element");
	summary_bad(DMPD_THIN, "\n\n", "line 3: no <superblock> element");
	summary_bad(DMPD_THIN, "hello", "line 1: unexpected text starting with 'h'");
	summary_bad(DMPD_THIN, "<?xml version=\"1.0\"?>\n" SB_THIN "</superblock>",
		    "line 1: declarations, comments and DOCTYPE are not supported");
	summary_bad(DMPD_THIN, SB_THIN "<!-- c -->\n</superblock>", "line 2: declarations");
	summary_bad(DMPD_THIN, SB_THIN DEV, "line 3: end of input inside <device>");
	summary_bad(DMPD_THIN, SB_THIN DEV "  </superblock>\n", "line 3: </superblock> closes <device>");
	summary_bad(DMPD_THIN, "</superblock>", "line 1: </superblock> closes nothing");
	summary_bad(DMPD_THIN, SB_THIN DEV "    <range_mapping origin_begin=\"0\" data_begin=\"0\" time=\"0\"/>\n",
		    "line 3: <range_mapping> lacks attribute length");
	summary_bad(DMPD_THIN, SB_THIN DEV "    <range_mapping length=\"-1\"/>\n",
		    "line 3: <range_mapping> attribute length: '-1' is not a number");
	summary_bad(DMPD_THIN, SB_THIN DEV "    <range_mapping length=\"99999999999999999999\"/>\n",
		    "is not a number");
	summary_bad(DMPD_THIN, SB_THIN DEV "    <range_mapping length=\"18446744073709551615\"/>\n"
				   "    <single_mapping/>\n",
		    "line 4: block count overflows");
	summary_bad(DMPD_THIN, SB_THIN DEV "    <range_mapping length=\"1\">\n", "line 3: <range_mapping> must be an empty element");
	summary_bad(DMPD_THIN, SB_THIN "  <range_mapping length=\"1\"/>\n", "line 2: <range_mapping> inside <superblock>");
	summary_bad(DMPD_THIN, "<device dev_id=\"0\"/>", "line 1: <device> outside <superblock>");
	summary_bad(DMPD_THIN, SB_THIN "  <mapping/>\n", "line 2: unknown element <mapping>");
	summary_bad(DMPD_THIN, SB_THIN "</superblock>\n" SB_THIN "</superblock>\n",
		    "line 3: <superblock> after the end of <superblock>");
	summary_bad(DMPD_THIN, SB_THIN "</superblock>\ntrailing", "line 3: unexpected text");
	summary_bad(DMPD_THIN, "<superblock uuid='x'/>", "expected '\"' to open an attribute value, found '''");
	summary_bad(DMPD_THIN, "<superblock uuid=x/>", "found 'x'");
	summary_bad(DMPD_THIN, "<superblock uuid/>", "expected '=' after attribute uuid, found '/'");
	summary_bad(DMPD_THIN, "<superblock uuid=\"a\"time=\"1\"/>", "unexpected 't' in <superblock>");
	summary_bad(DMPD_THIN, "<superblock uuid=\"a\" uuid=\"b\"/>", "<superblock> repeats attribute uuid");
	summary_bad(DMPD_THIN, "<superblock uuid=\"a&b;\"/>", "unsupported entity");
	summary_bad(DMPD_THIN, "<superblock uuid=\"&#10;\"/>", "unsupported entity");
	summary_bad(DMPD_THIN, "<superblock uuid=\"&#;\"/>", "unsupported entity");
	summary_bad(DMPD_THIN, "<superblock uuid=\"&#X41;\"/>", "unsupported entity");
	summary_bad(DMPD_THIN, "<superblock uuid=\"&#x41\"/>", "unsupported entity");
	summary_bad(DMPD_THIN, "<superblock uuid=\"&#127;\"/>", "unsupported entity");
	summary_bad(DMPD_THIN, "<superblock uuid=\"&#0000000065;\"/>", "unsupported entity");
	summary_bad(DMPD_THIN, "<superblock uuid=\"&amp\"/>", "unsupported entity");
	{
		char *big = malloc(5000);
		strcpy(big, "<superblock uuid=\"");
		memset(big + strlen(big), 'u', 4200);
		strcpy(big + 18 + 4200, "\"/>");
		summary_bad(DMPD_THIN, big, "attribute values longer than 4096 bytes");
		/* the limit is per element: two long values still fit */
		strcpy(big, "<superblock a=\"");
		memset(big + strlen(big), 'u', 2000);
		strcpy(big + 15 + 2000, "\" b=\"");
		memset(big + strlen(big), 'v', 2000);
		strcpy(big + 15 + 2000 + 5 + 2000, "\"/>");
		kv_doc_free(&d);
		cr_assert_eq(dmpd_summary_parse(DMPD_ERA, big, strlen(big), &d, why, sizeof(why)), 0, "%s", why);
		cr_assert_eq(strlen(get(0, "b")->str), 2000);
		free(big);
	}
	summary_bad(DMPD_THIN, "<superblock uuid=\"a<b\"/>", "'<' in an attribute value");
	summary_bad(DMPD_THIN, "<superblock uuid=\"a\nb\"/>", "line 1: byte 0x0a in an attribute value");
	summary_bad(DMPD_THIN, "<superblock uuid=\"caf\xc3\xa9\"/>", "byte 0xc3 in an attribute value");
	summary_bad(DMPD_THIN, "<superblock uuid=\"abc", "attribute value not closed at end of input");
	summary_bad(DMPD_THIN, "<superblock uuid=\"\"", "<superblock> not finished at end of input");
	summary_bad(DMPD_THIN, "<superblock/ >", "expected '>' after '/' in <superblock>");
	summary_bad(DMPD_THIN, "<Superblock/>", "expected element name, found 'S'");
	summary_bad(DMPD_THIN, "<superblock UUID=\"\"/>", "expected attribute name, found 'U'");
	summary_bad(DMPD_THIN, "<superblock></superblock x>", "unexpected 'x' in </superblock>");
	summary_bad(DMPD_THIN, "<superblock devices=\"1\"/>", "attribute devices clashes with the computed key");
	summary_bad(DMPD_THIN, "<superblock a0=\"\" a1=\"\" a2=\"\" a3=\"\" a4=\"\" a5=\"\" a6=\"\" a7=\"\" "
			       "a8=\"\" a9=\"\" b0=\"\" b1=\"\" b2=\"\" b3=\"\" b4=\"\" b5=\"\" b6=\"\"/>",
		    "<superblock> has more than 16 attributes");
	summary_bad(DMPD_THIN, "<superblock_element_name_that_is_far_too_long/>", "element name longer than 32 bytes");
	summary_bad(DMPD_THIN, SB_THIN DEV "    <ref name=\"1\"/>\n", "line 3: <ref name=\"1\"> names no <def>");
	summary_bad(DMPD_THIN, SB_THIN "<def name=\"1\"/><def name=\"1\"/>" DEV "<ref name=\"1\"/>\n",
		    "<def name=\"1\"> appears twice");
	summary_bad(DMPD_THIN, SB_THIN "<def/>", "line 2: <def> lacks attribute name");
	summary_bad(DMPD_THIN, SB_THIN DEV "<ref/>", "<ref> lacks attribute name");
	summary_bad(DMPD_THIN, SB_THIN "  <device dev_id=\"0\" range_mappings=\"1\">\n  </device>\n",
		    "line 3: attribute range_mappings clashes");

	summary_bad(DMPD_CACHE, "<superblock><mappings><mapping dirty=\"yes\"/>",
		    "<mapping> attribute dirty: 'yes' is not true or false");
	summary_bad(DMPD_CACHE, "<superblock><mappings><mapping/>", "<mapping> lacks attribute dirty");
	summary_bad(DMPD_CACHE, "<superblock><hint/>", "<hint> inside <superblock>");
	summary_bad(DMPD_CACHE, "<superblock>\n<device/>", "line 2: unknown element <device>");

	summary_bad(DMPD_ERA, "<superblock><writeset><bit value=\"1\"/>", "'1' is not true or false");
	summary_bad(DMPD_ERA, "<superblock><writeset><marked/>", "<marked> lacks attribute len");
	summary_bad(DMPD_ERA, "<superblock><era_array><bit value=\"true\"/>", "<bit> inside <era_array>");
	summary_bad(DMPD_ERA, "<superblock bits=\"1\"><writeset bits=\"1\"/></superblock>",
		    "attribute bits clashes");
	summary_bad(DMPD_ERA, "<superblock writesets=\"1\"/>", "attribute writesets clashes");
}

/* ---- delta ----------------------------------------------------------------- */

Test(dmpd, delta_recorded)
{
	const char *plain[] = { "thin_delta", "thin_delta-m" };
	for (size_t i = 0; i < 2; i++) {
		kv_doc_free(&d);
		parse_delta(plain[i]);
		cr_assert_eq(d.n, 3);
		for (size_t b = 0; b < 3; b++)
			want_keys(b, "kind begin length");
		want_str(0, "kind", "different");
		want_u64(0, "begin", 0);
		want_u64(0, "length", 16);
		want_str(1, "kind", "same");
		want_u64(1, "begin", 16);
		want_u64(1, "length", 48);
		want_str(2, "kind", "right_only");
		want_u64(2, "begin", 128);
		want_u64(2, "length", 8);
	}
	kv_doc_free(&d);
	parse_delta("thin_delta-m-verbose");
	cr_assert_eq(d.n, 3);
	want_keys(0, "kind begin left_data_begin right_data_begin length");
	want_str(0, "kind", "different");
	want_u64(0, "left_data_begin", 0);
	want_u64(0, "right_data_begin", 64);
	want_keys(1, "kind begin data_begin length");
	want_str(1, "kind", "same");
	want_u64(1, "data_begin", 16);
	want_keys(2, "kind begin data_begin length");
	want_str(2, "kind", "right_only");
	want_u64(2, "begin", 128);
	want_u64(2, "data_begin", 80);
	want_u64(2, "length", 8);
	json_object *j = render_json(true);
	cr_assert_eq(json_object_array_length(j), 3);
	json_object_put(j);
}

Test(dmpd, delta_forms)
{
	/* no differences at all; several ranges in one verbose section */
	const char *x = "<superblock uuid=\"\" time=\"1\" transaction=\"2\" data_block_size=\"128\" "
			"nr_data_blocks=\"0\">\n  <diff left=\"0\" right=\"1\">\n  </diff>\n</superblock>\n";
	cr_assert_eq(dmpd_delta_parse(x, strlen(x), &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(d.n, 0);
	x = "<superblock>\n <diff left=\"0\" right=\"1\">\n  <left_only>\n"
	    "   <range begin=\"0\" data_begin=\"5\" length=\"1\"/>\n"
	    "   <range begin=\"4\" data_begin=\"9\" length=\"2\"/>\n"
	    "  </left_only>\n  <same/>\n </diff>\n</superblock>\n";
	cr_assert_eq(dmpd_delta_parse(x, strlen(x), &d, why, sizeof(why)), -EINVAL);
	cr_assert_str_eq(why, "thin_delta line 7: <same> lacks attribute begin");
	x = "<superblock>\n <diff left=\"0\" right=\"1\">\n  <left_only>\n"
	    "   <range begin=\"0\" data_begin=\"5\" length=\"1\"/>\n"
	    "   <range begin=\"4\" data_begin=\"9\" length=\"2\"/>\n"
	    "  </left_only>\n </diff>\n</superblock>\n";
	cr_assert_eq(dmpd_delta_parse(x, strlen(x), &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(d.n, 2);
	want_str(1, "kind", "left_only");
	want_u64(1, "data_begin", 9);
}

static void delta_bad(const char *xml, const char *reason)
{
	struct kv_doc keep = { 0 };
	kv_add_str(kv_doc_add_block(&keep), "mine", "x");
	why[0] = '\0';
	int r = dmpd_delta_parse(xml, strlen(xml), &keep, why, sizeof(why));
	cr_assert_eq(r, -EINVAL, "'%s' gave %d", xml, r);
	cr_assert_eq(keep.n, 1, "'%s' left blocks behind", xml);
	cr_assert_eq(strncmp(why, "thin_delta", 10), 0, "reason '%s'", why);
	cr_assert(strstr(why, reason), "'%s': reason '%s' lacks '%s'", xml, why, reason);
	kv_doc_free(&keep);
}

Test(dmpd, delta_malformed)
{
	delta_bad("", "no <superblock> element");
	delta_bad("<superblock><diff><different begin=\"0\"/>", "<different> lacks attribute length");
	delta_bad("<superblock><diff><different begin=\"x\" length=\"1\"/>", "'x' is not a number");
	delta_bad("<superblock><diff><same begin=\"0\" length=\"1\" kind=\"z\"/>", "<same> has an attribute kind");
	delta_bad("<superblock><diff><same begin=\"0\" length=\"1\"></same>", "<same> with attributes holds <range>s");
	delta_bad("<superblock><diff/><diff/>", "more than one <diff>");
	delta_bad("<superblock><range begin=\"0\" length=\"1\"/>", "<range> inside <superblock>");
	delta_bad("<superblock><diff><range begin=\"0\" length=\"1\"/>", "<range> inside <diff>");
	delta_bad("<superblock><diff><same>\n<same/>", "line 2: <same> inside <same>");
	delta_bad("<superblock><diff><different>\n<range begin=\"0\" length=\"1\"/>\n</same>",
		  "line 3: </same> closes <different>");
	delta_bad("<superblock><diff><different><range begin=\"0\" length=\"1\"/></different></diff>",
		  "end of input inside <superblock>");
}
