/* libFuzzer target for the device-mapper parsers. Besides memory safety it
 * checks the contracts callers rely on: failures leave the block as it was,
 * known targets never fall back to args=, rendered values stay on one line,
 * and masking keeps the length and only ever writes '0'. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stsfs/dm_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const targets[] = {
	"linear", "striped", "zero", "error", "delay", "flakey", "thin-pool", "thin", "cache",
	"era", "writecache", "integrity", "crypt", "snapshot", "snapshot-merge",
	"snapshot-origin", "mirror", "dust", "vdo", "raid",
};

static void check_block(const struct kv_block *b, int r, const char *target)
{
	if (r != 0) {
		if (b->n != 0)
			abort();
		return;
	}
	if (target && dm_status_target_known(target) && kv_get(b, "args"))
		abort();
	struct kv_doc d = { .blocks = (struct kv_block *)b, .n = 1, .cap = 1 };
	char *text = kv_render_text(&d);
	if (!text)
		abort();
	size_t lines = 0;
	for (const char *p = text; *p; p = strchr(p, '\n') + 1, lines++)
		if (!memchr(p, '=', strcspn(p, "\n")) || !strchr(p, '\n'))
			abort();
	if (lines != b->n)
		abort();
	free(text);
}

static void fuzz_line(const char *s)
{
	struct kv_block b = { 0 };
	char why[256];
	int r = dm_status_parse_line(s, &b, why, sizeof(why));
	const struct kv *t = kv_get(&b, "target");
	if (r == 0 && (!t || !kv_get(&b, "start") || !kv_get(&b, "length")))
		abort();
	check_block(&b, r, t ? t->str : NULL);
	kv_block_free(&b);
}

/* The first byte picks a target so every parser gets the rest as params. */
static void fuzz_params(unsigned char pick, const char *params)
{
	const char *target = targets[pick % (sizeof(targets) / sizeof(targets[0]))];
	struct kv_block b = { 0 };
	char why[64];
	int r = dm_status_parse(target, params, &b, why, sizeof(why));
	if (r != 0 && r != -EINVAL)
		abort();
	check_block(&b, r, target);
	kv_block_free(&b);
}

/* dmsetup's integrity masking looks only at the first occurrence of each
 * option name, so on nonsense input a second pass can find another one:
 * only crypt and non-secret targets are checked for a fixed point. */
static void fuzz_mask(const char *target, const char *params, bool fixed_point)
{
	char *m = dm_table_mask_keys(target, params);
	if (!m || strlen(m) != strlen(params))
		abort();
	for (size_t i = 0; params[i]; i++)
		if (m[i] != params[i] && m[i] != '0')
			abort();
	if (fixed_point) {
		char *again = dm_table_mask_keys(target, m);
		if (!again || strcmp(again, m) != 0)
			abort();
		free(again);
	}
	free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_line(s);
	if (size)
		fuzz_params(data[0], s + 1);
	fuzz_mask("crypt", s, true);
	fuzz_mask("integrity", s, false);
	fuzz_mask("linear", s, true);
	free(s);
	return 0;
}
