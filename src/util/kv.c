#include "stsfs/kv.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kv *kv_push(struct kv_block *b, const char *key, enum kv_type type)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 8;
		struct kv *v = realloc(b->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		b->v = v;
		b->cap = cap;
	}
	struct kv *e = &b->v[b->n];
	memset(e, 0, sizeof(*e));
	e->key = strdup(key);
	if (!e->key)
		return NULL;
	e->type = type;
	b->n++;
	return e;
}

int kv_add_strn(struct kv_block *b, const char *key, const char *val, size_t len)
{
	char *copy = strndup(val, len);
	if (!copy)
		return -ENOMEM;
	struct kv *e = kv_push(b, key, KV_STR);
	if (!e) {
		free(copy);
		return -ENOMEM;
	}
	e->str = copy;
	return 0;
}

int kv_add_str(struct kv_block *b, const char *key, const char *val)
{
	return kv_add_strn(b, key, val ? val : "", val ? strlen(val) : 0);
}

int kv_add_u64(struct kv_block *b, const char *key, uint64_t val)
{
	struct kv *e = kv_push(b, key, KV_U64);
	if (!e)
		return -ENOMEM;
	e->u = val;
	return 0;
}

int kv_add_s64(struct kv_block *b, const char *key, int64_t val)
{
	struct kv *e = kv_push(b, key, KV_S64);
	if (!e)
		return -ENOMEM;
	e->s = val;
	return 0;
}

int kv_add_bool(struct kv_block *b, const char *key, bool val)
{
	struct kv *e = kv_push(b, key, KV_BOOL);
	if (!e)
		return -ENOMEM;
	e->u = val;
	return 0;
}

int kv_add_none(struct kv_block *b, const char *key)
{
	return kv_push(b, key, KV_NONE) ? 0 : -ENOMEM;
}

int kv_add_list(struct kv_block *b, const char *key)
{
	return kv_push(b, key, KV_LIST) ? 0 : -ENOMEM;
}

static bool is_plain_decimal(const char *s)
{
	if (!*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int kv_add_auto(struct kv_block *b, const char *key, const char *val)
{
	if (strcmp(val, "-") == 0)
		return kv_add_none(b, key);
	if (is_plain_decimal(val) && strlen(val) < 20)
		return kv_add_u64(b, key, strtoull(val, NULL, 10));
	return kv_add_str(b, key, val);
}

struct kv_block *kv_add_obj(struct kv_block *b, const char *key)
{
	struct kv_block *sub = calloc(1, sizeof(*sub));
	if (!sub)
		return NULL;
	struct kv *e = kv_push(b, key, KV_OBJ);
	if (!e) {
		free(sub);
		return NULL;
	}
	e->obj = sub;
	return sub;
}

const struct kv *kv_get(const struct kv_block *b, const char *key)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->v[i].key, key) == 0)
			return &b->v[i];
	return NULL;
}

void kv_block_free(struct kv_block *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->v[i].key);
		free(b->v[i].str);
		if (b->v[i].obj) {
			kv_block_free(b->v[i].obj);
			free(b->v[i].obj);
		}
	}
	free(b->v);
	memset(b, 0, sizeof(*b));
}

struct kv_block *kv_doc_add_block(struct kv_doc *d)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 2;
		struct kv_block *nb = realloc(d->blocks, cap * sizeof(*nb));
		if (!nb)
			return NULL;
		d->blocks = nb;
		d->cap = cap;
	}
	struct kv_block *b = &d->blocks[d->n++];
	memset(b, 0, sizeof(*b));
	return b;
}

void kv_doc_free(struct kv_doc *d)
{
	for (size_t i = 0; i < d->n; i++)
		kv_block_free(&d->blocks[i]);
	free(d->blocks);
	memset(d, 0, sizeof(*d));
}

static void put_value(FILE *f, const struct kv *e)
{
	switch (e->type) {
	case KV_STR:
		fputs(e->str, f);
		break;
	case KV_U64:
		fprintf(f, "%" PRIu64, e->u);
		break;
	case KV_S64:
		fprintf(f, "%" PRId64, e->s);
		break;
	case KV_BOOL:
		fputc(e->u ? '1' : '0', f);
		break;
	case KV_NONE:
		fputc('-', f);
		break;
	case KV_LIST:
	case KV_OBJ:
		break;
	}
}

static void put_line(FILE *f, const char *prefix, const struct kv *e)
{
	if (e->type == KV_LIST)
		return;
	if (e->type == KV_OBJ) {
		for (size_t k = 0; k < e->obj->n; k++) {
			char *sub = NULL;
			if (asprintf(&sub, "%s%s_", prefix, e->key) >= 0)
				put_line(f, sub, &e->obj->v[k]);
			free(sub);
		}
		return;
	}
	fprintf(f, "%s%s=", prefix, e->key);
	put_value(f, e);
	fputc('\n', f);
}

char *kv_render_text(const struct kv_doc *d)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < d->n; i++) {
		if (i)
			fputc('\n', f);
		const struct kv_block *b = &d->blocks[i];
		for (size_t j = 0; j < b->n; j++)
			put_line(f, "", &b->v[j]);
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static json_object *json_block(const struct kv_block *b);

static json_object *json_value(const struct kv *e)
{
	switch (e->type) {
	case KV_STR:
		return json_object_new_string(e->str);
	case KV_U64:
		return json_object_new_uint64(e->u);
	case KV_S64:
		return json_object_new_int64(e->s);
	case KV_BOOL:
		return json_object_new_boolean(e->u != 0);
	case KV_OBJ:
		return json_block(e->obj);
	case KV_NONE:
	case KV_LIST:
		break;
	}
	return NULL;
}

/* Entries j.. sharing b->v[j]'s key: as an array when the key repeats or was
 * declared a list, otherwise as the plain value. */
static json_object *json_member(const struct kv_block *b, size_t j)
{
	const char *key = b->v[j].key;
	size_t n = 0;
	bool list = false;
	for (size_t k = j; k < b->n; k++) {
		if (strcmp(b->v[k].key, key) != 0)
			continue;
		n++;
		list = list || b->v[k].type == KV_LIST;
	}
	if (n == 1 && !list)
		return json_value(&b->v[j]);
	json_object *a = json_object_new_array();
	for (size_t k = j; a && k < b->n; k++)
		if (strcmp(b->v[k].key, key) == 0 && b->v[k].type != KV_LIST)
			json_object_array_add(a, json_value(&b->v[k]));
	return a;
}

static bool key_seen_before(const struct kv_block *b, size_t j)
{
	for (size_t k = 0; k < j; k++)
		if (strcmp(b->v[k].key, b->v[j].key) == 0)
			return true;
	return false;
}

static json_object *json_block(const struct kv_block *b)
{
	json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	for (size_t j = 0; j < b->n; j++)
		if (!key_seen_before(b, j))
			json_object_object_add(o, b->v[j].key, json_member(b, j));
	return o;
}

char *kv_render_json(const struct kv_doc *d, bool as_array)
{
	json_object *root;
	if (!as_array && d->n == 1) {
		root = json_block(&d->blocks[0]);
	} else if (!as_array && d->n == 0) {
		root = json_object_new_object();
	} else {
		root = json_object_new_array();
		for (size_t i = 0; root && i < d->n; i++)
			json_object_array_add(root, json_block(&d->blocks[i]));
	}
	if (!root)
		return NULL;
	const char *s = json_object_to_json_string_ext(
		root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = NULL;
	if (s && asprintf(&out, "%s\n", s) < 0)
		out = NULL;
	json_object_put(root);
	return out;
}
