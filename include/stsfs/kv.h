/* Parsed-file documents: ordered key=value blocks rendered as text or JSON.
 *
 * Every parsed file (status, info, probe, ...) is built once as a kv_doc and
 * rendered twice, so `X` and `X.json` can never disagree. Pure: no I/O. */
#ifndef STSFS_KV_H
#define STSFS_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kv_type {
	KV_STR,  /* text; JSON string */
	KV_U64,  /* unsigned number; JSON number */
	KV_S64,  /* signed number; JSON number */
	KV_BOOL, /* text 0/1; JSON true/false */
	KV_NONE, /* text "-"; JSON null (kernel's "nothing here") */
	KV_LIST, /* declares a list key (kv_add_list): no text line; JSON array */
	KV_OBJ,  /* a record (kv_add_obj): text key_subkey= lines; JSON object */
};

struct kv {
	char *key;
	enum kv_type type;
	char *str;
	uint64_t u;
	int64_t s;
	struct kv_block *obj; /* KV_OBJ: the record's entries */
};

struct kv_block {
	struct kv *v;
	size_t n, cap;
};

struct kv_doc {
	struct kv_block *blocks;
	size_t n, cap;
};

/* All adders return 0 or -ENOMEM. */
int kv_add_str(struct kv_block *b, const char *key, const char *val);
int kv_add_strn(struct kv_block *b, const char *key, const char *val, size_t len);
int kv_add_u64(struct kv_block *b, const char *key, uint64_t val);
int kv_add_s64(struct kv_block *b, const char *key, int64_t val);
int kv_add_bool(struct kv_block *b, const char *key, bool val);
int kv_add_none(struct kv_block *b, const char *key);
/* Number when the text is a plain decimal, `-` as none, otherwise string. */
int kv_add_auto(struct kv_block *b, const char *key, const char *val);

/* Repeated keys: a key may be added several times to one block. Text shows
 * one line per entry; JSON shows the key once, where it first appears, as an
 * array of its values in order (never "last one wins").
 * kv_add_list declares key a list before (or without) any value: text shows
 * nothing for the declaration, JSON always makes the key an array, `[]` when
 * no value follows, `["x"]` for one value. kv_get finds the declaration. */
int kv_add_list(struct kv_block *b, const char *key);

/* Records: a key whose value is a flat key=value record of its own (one
 * signature of a probe: type, offset, ...). Returns the record's (empty)
 * block to fill, NULL on ENOMEM; it stays valid while b does. Text shows
 * each of the record's entries as `key_subkey=value`; JSON shows the record
 * as an object. Repeated (or declared with kv_add_list) it is an array of
 * objects. Records do not nest. */
struct kv_block *kv_add_obj(struct kv_block *b, const char *key);

const struct kv *kv_get(const struct kv_block *b, const char *key);
void kv_block_free(struct kv_block *b);

/* Returns the new (empty) block, or NULL on ENOMEM. Pointer valid until the
 * next kv_doc_add_block call. */
struct kv_block *kv_doc_add_block(struct kv_doc *d);
void kv_doc_free(struct kv_doc *d);

/* Text: `key=value\n` lines; blocks separated by one blank line. */
char *kv_render_text(const struct kv_doc *d);
/* JSON: one block as an object, or, with as_array (or several blocks), an
 * array of objects. Returns malloc'd text ending in a newline, NULL on ENOMEM. */
char *kv_render_json(const struct kv_doc *d, bool as_array);

#endif
