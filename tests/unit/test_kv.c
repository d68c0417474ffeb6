#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "stsfs/kv.h"

Test(kv, text_render_blocks)
{
	struct kv_doc d = { 0 };
	struct kv_block *b = kv_doc_add_block(&d);
	kv_add_str(b, "name", "/dev/loop0");
	kv_add_u64(b, "size", 1048576);
	kv_add_bool(b, "ro", true);
	kv_add_none(b, "held");
	kv_add_s64(b, "delta", -3);
	b = kv_doc_add_block(&d);
	kv_add_str(b, "x", "y");
	char *t = kv_render_text(&d);
	cr_assert_str_eq(t, "name=/dev/loop0\nsize=1048576\nro=1\nheld=-\ndelta=-3\n\nx=y\n");
	free(t);
	kv_doc_free(&d);
}

Test(kv, json_types_match_text)
{
	struct kv_doc d = { 0 };
	struct kv_block *b = kv_doc_add_block(&d);
	kv_add_str(b, "back_file", "/srv/a \"b\".img");
	kv_add_u64(b, "size", 18446744073709551615ull);
	kv_add_bool(b, "ro", false);
	kv_add_none(b, "held");
	char *j = kv_render_json(&d, false);
	json_object *o = json_tokener_parse(j);
	cr_assert_not_null(o, "invalid JSON: %s", j);
	cr_assert(json_object_is_type(o, json_type_object));
	json_object *v;
	cr_assert(json_object_object_get_ex(o, "back_file", &v));
	cr_assert_str_eq(json_object_get_string(v), "/srv/a \"b\".img");
	cr_assert(json_object_object_get_ex(o, "size", &v));
	cr_assert_eq(json_object_get_uint64(v), 18446744073709551615ull);
	cr_assert(json_object_object_get_ex(o, "ro", &v));
	cr_assert(json_object_is_type(v, json_type_boolean));
	cr_assert(!json_object_get_boolean(v));
	cr_assert(json_object_object_get_ex(o, "held", &v));
	cr_assert_null(v);
	json_object_put(o);
	free(j);
	kv_doc_free(&d);
}

Test(kv, json_array_forms)
{
	struct kv_doc d = { 0 };
	char *j = kv_render_json(&d, false);
	json_object *e = json_tokener_parse(j);
	cr_assert(json_object_is_type(e, json_type_object) && json_object_object_length(e) == 0, "%s", j);
	json_object_put(e);
	free(j);
	j = kv_render_json(&d, true);
	e = json_tokener_parse(j);
	cr_assert(json_object_is_type(e, json_type_array) && json_object_array_length(e) == 0, "%s", j);
	json_object_put(e);
	free(j);
	kv_add_u64(kv_doc_add_block(&d), "a", 1);
	j = kv_render_json(&d, true);
	json_object *o = json_tokener_parse(j);
	cr_assert(json_object_is_type(o, json_type_array));
	cr_assert_eq(json_object_array_length(o), 1);
	json_object_put(o);
	free(j);
	kv_doc_free(&d);
}

Test(kv, auto_types)
{
	struct kv_block b = { 0 };
	kv_add_auto(&b, "n", "42");
	kv_add_auto(&b, "dash", "-");
	kv_add_auto(&b, "word", "rw");
	kv_add_auto(&b, "lead0", "007");
	cr_assert_eq(kv_get(&b, "n")->type, KV_U64);
	cr_assert_eq(kv_get(&b, "n")->u, 42);
	cr_assert_eq(kv_get(&b, "dash")->type, KV_NONE);
	cr_assert_eq(kv_get(&b, "word")->type, KV_STR);
	cr_assert_eq(kv_get(&b, "lead0")->type, KV_STR);
	cr_assert_null(kv_get(&b, "missing"));
	kv_block_free(&b);
}

/* A key added twice is one JSON array, in order, where the key first appears;
 * text keeps one line per entry. Before, json-c kept only the last value. */
Test(kv, repeated_key_is_json_array)
{
	struct kv_doc d = { 0 };
	struct kv_block *b = kv_doc_add_block(&d);
	kv_add_str(b, "result", "error");
	kv_add_str(b, "problem", "superblock is corrupt");
	kv_add_u64(b, "exit_code", 1);
	kv_add_str(b, "problem", "bad checksum in superblock");
	char *t = kv_render_text(&d);
	cr_assert_str_eq(t, "result=error\nproblem=superblock is corrupt\nexit_code=1\n"
			    "problem=bad checksum in superblock\n");
	free(t);
	char *j = kv_render_json(&d, false);
	json_object *o = json_tokener_parse(j);
	cr_assert_not_null(o, "invalid JSON: %s", j);
	cr_assert_eq(json_object_object_length(o), 3, "%s", j);
	json_object *v;
	cr_assert(json_object_object_get_ex(o, "problem", &v));
	cr_assert(json_object_is_type(v, json_type_array), "%s", j);
	cr_assert_eq(json_object_array_length(v), 2);
	cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 0)), "superblock is corrupt");
	cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 1)), "bad checksum in superblock");
	/* member order follows the first appearance */
	struct json_object_iterator it = json_object_iter_begin(o);
	cr_assert_str_eq(json_object_iter_peek_name(&it), "result");
	json_object_iter_next(&it);
	cr_assert_str_eq(json_object_iter_peek_name(&it), "problem");
	json_object_put(o);
	free(j);
	kv_doc_free(&d);
}

/* A declared list is an array even with zero or one value, and the
 * declaration itself never shows in text. Values may mix types. */
Test(kv, declared_list)
{
	struct kv_doc d = { 0 };
	struct kv_block *b = kv_doc_add_block(&d);
	cr_assert_eq(kv_add_str(b, "result", "ok"), 0);
	cr_assert_eq(kv_add_list(b, "problem"), 0);
	cr_assert_eq(kv_add_list(b, "n"), 0);
	cr_assert_eq(kv_add_u64(b, "n", 7), 0);
	cr_assert_eq(kv_get(b, "problem")->type, KV_LIST);
	char *t = kv_render_text(&d);
	cr_assert_str_eq(t, "result=ok\nn=7\n");
	free(t);
	char *j = kv_render_json(&d, false);
	json_object *o = json_tokener_parse(j), *v;
	cr_assert_not_null(o, "invalid JSON: %s", j);
	cr_assert(json_object_object_get_ex(o, "problem", &v));
	cr_assert(json_object_is_type(v, json_type_array) && json_object_array_length(v) == 0, "%s", j);
	cr_assert(json_object_object_get_ex(o, "n", &v));
	cr_assert(json_object_is_type(v, json_type_array) && json_object_array_length(v) == 1, "%s", j);
	cr_assert_eq(json_object_get_uint64(json_object_array_get_idx(v, 0)), 7);
	json_object_put(o);
	free(j);
	kv_add_none(b, "n");
	j = kv_render_json(&d, false);
	o = json_tokener_parse(j);
	cr_assert(json_object_object_get_ex(o, "n", &v));
	cr_assert_eq(json_object_array_length(v), 2, "%s", j);
	cr_assert_null(json_object_array_get_idx(v, 1));
	json_object_put(o);
	free(j);
	kv_doc_free(&d);
}

/* Records (a probe's signatures): text key_subkey= lines in order, JSON an
 * array of objects with the record's own keys and types. */
Test(kv, records)
{
	struct kv_doc d = { 0 };
	struct kv_block *b = kv_doc_add_block(&d);
	cr_assert_eq(kv_add_bool(b, "ambivalent", true), 0);
	cr_assert_eq(kv_add_list(b, "signature"), 0);
	struct kv_block *s = kv_add_obj(b, "signature");
	cr_assert_not_null(s);
	kv_add_str(s, "type", "vfat");
	kv_add_u64(s, "offset", 54);
	s = kv_add_obj(b, "signature");
	kv_add_str(s, "type", "ext2");
	kv_add_u64(s, "offset", 1080);
	kv_add_u64(b, "signatures", 2);
	cr_assert_eq(kv_get(b, "signature")->type, KV_LIST);
	char *t = kv_render_text(&d);
	cr_assert_str_eq(t, "ambivalent=1\nsignature_type=vfat\nsignature_offset=54\n"
			    "signature_type=ext2\nsignature_offset=1080\nsignatures=2\n");
	free(t);
	char *j = kv_render_json(&d, false);
	json_object *o = json_tokener_parse(j), *v, *x;
	cr_assert_not_null(o, "invalid JSON: %s", j);
	cr_assert(json_object_object_get_ex(o, "signature", &v));
	cr_assert(json_object_is_type(v, json_type_array) && json_object_array_length(v) == 2, "%s", j);
	json_object *second = json_object_array_get_idx(v, 1);
	cr_assert(json_object_is_type(second, json_type_object), "%s", j);
	cr_assert(json_object_object_get_ex(second, "type", &x));
	cr_assert_str_eq(json_object_get_string(x), "ext2");
	cr_assert(json_object_object_get_ex(second, "offset", &x));
	cr_assert_eq(json_object_get_uint64(x), 1080);
	json_object_put(o);
	free(j);
	kv_doc_free(&d);
}
