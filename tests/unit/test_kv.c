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
