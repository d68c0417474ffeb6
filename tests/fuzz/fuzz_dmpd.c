/* libFuzzer target for the persistent-data tool parsers (dmpd_parse.h).
 * Every input goes through all of them: as check output (first byte the
 * exit status, then stdout, a NUL, stderr), as thin_ls output, as each dump
 * kind and as thin_delta output. Besides memory safety it checks what
 * callers rely on: failures return -EINVAL with a reason and leave the
 * caller's blocks alone; successes render to key=value lines (one per
 * value, so no value carries a newline) and to valid UTF-8 JSON. */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stsfs/dmpd_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json(const struct kv_doc *d, bool as_array)
{
	char *j = kv_render_json(d, as_array);
	if (!j)
		abort();
	json_tokener *tok = json_tokener_new();
	if (!tok)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *o = json_tokener_parse_ex(tok, j, (int)strlen(j));
	if (json_tokener_get_error(tok) != json_tokener_success)
		abort();
	if (as_array && (!json_object_is_type(o, json_type_array) ||
			 json_object_array_length(o) != d->n))
		abort();
	json_object_put(o);
	json_tokener_free(tok);
	free(j);
}

static void check_text(const struct kv_doc *d)
{
	char *text = kv_render_text(d);
	if (!text)
		abort();
	size_t lines = 0, values = 0;
	for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
		size_t n = strcspn(p, "\n");
		if (!p[n])
			abort(); /* every line ends in a newline */
		if (n) {
			if (!memchr(p, '=', n))
				abort();
			lines++;
		}
	}
	for (size_t i = 0; i < d->n; i++)
		for (size_t k = 0; k < d->blocks[i].n; k++)
			values += d->blocks[i].v[k].type != KV_LIST;
	if (lines != values)
		abort();
	free(text);
}

/* A doc holding one block of the caller's: parse errors must keep it. */
static void seed(struct kv_doc *d)
{
	struct kv_block *b = kv_doc_add_block(d);
	if (!b || kv_add_str(b, "mine", "x"))
		abort();
}

static void after(struct kv_doc *d, int r, const char *why, const char *tool, bool as_array)
{
	if (r == -EINVAL) {
		if (d->n != 1 || strncmp(why, tool, strlen(tool)) != 0)
			abort();
	} else if (r != 0) {
		abort();
	} else {
		if (d->n < 1 || strcmp(d->blocks[0].v[0].key, "mine") != 0)
			abort();
		check_text(d);
		/* the caller's block aside, what the parser added */
		struct kv_doc mine = { .blocks = d->blocks + 1, .n = d->n - 1, .cap = d->n - 1 };
		check_json(&mine, as_array);
	}
	kv_doc_free(d);
}

static void fuzz_check(const uint8_t *data, size_t size)
{
	if (!size)
		return;
	const char *s = (const char *)data + 1;
	size_t len = size - 1;
	const char *nul = memchr(s, '\0', len);
	size_t outlen = nul ? (size_t)(nul - s) : len;
	const char *err = nul ? nul + 1 : NULL;
	size_t errlen = nul ? len - outlen - 1 : 0;
	struct kv_doc d = { 0 };
	char why[256] = "";
	seed(&d);
	int r = dmpd_check_parse(s, outlen, err, errlen, data[0], &d, why, sizeof(why));
	if (r != 0 || d.n != 2)
		abort();
	const struct kv_block *b = &d.blocks[1];
	const struct kv *res = kv_get(b, "result"), *code = kv_get(b, "exit_code");
	const struct kv *n = kv_get(b, "problems");
	if (!res || !code || code->u != data[0] || !n || strcmp(res->str, data[0] ? "error" : "ok"))
		abort();
	size_t listed = 0;
	for (size_t i = 0; i < b->n; i++)
		listed += strcmp(b->v[i].key, "problem") == 0 && b->v[i].type == KV_STR;
	if (listed > n->u || listed > DMPD_MAX_PROBLEMS ||
	    (listed < n->u && listed != DMPD_MAX_PROBLEMS))
		abort();
	after(&d, r, why, "check", false);
	/* an exit status out of range is the only refusal */
	seed(&d);
	r = dmpd_check_parse(s, outlen, err, errlen, 256 + data[0], &d, why, sizeof(why));
	if (r != -EINVAL)
		abort();
	after(&d, r, why, "check", false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct kv_doc d = { 0 };
	char why[256] = "";
	int r;

	fuzz_check(data, size);

	seed(&d);
	r = dmpd_ls_parse(s, size, &d, why, sizeof(why));
	if (r == 0)
		for (size_t i = 2; i < d.n; i++)
			if (d.blocks[i].n != d.blocks[1].n)
				abort(); /* every row has every column */
	after(&d, r, why, "thin_ls", true);

	static const char *const tools[] = { "thin_dump", "cache_dump", "era_dump" };
	for (int k = DMPD_THIN; k <= DMPD_ERA; k++) {
		seed(&d);
		r = dmpd_summary_parse((enum dmpd_kind)k, s, size, &d, why, sizeof(why));
		if (r == 0 && (d.n < 2 || (k == DMPD_CACHE && d.n != 2)))
			abort(); /* the superblock block comes first */
		after(&d, r, why, tools[k], true);
	}

	seed(&d);
	r = dmpd_delta_parse(s, size, &d, why, sizeof(why));
	if (r == 0)
		for (size_t i = 1; i < d.n; i++)
			if (!kv_get(&d.blocks[i], "kind") || !kv_get(&d.blocks[i], "begin") ||
			    !kv_get(&d.blocks[i], "length"))
				abort();
	after(&d, r, why, "thin_delta", true);
	return 0;
}
