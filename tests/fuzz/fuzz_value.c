/* libFuzzer target for the attribute value parsers and the state text
 * parser: no crash, no leak, and failures leave a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stsfs/state.h"
#include "stsfs/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[STSFS_WHY_LEN];
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	char trimmed[256];
	if (value_trim(text, size, trimmed, sizeof(trimmed), why, sizeof(why)) == 0) {
		uint64_t u;
		bool b;
		why[0] = '\0';
		if (value_parse_size(trimmed, &u, why, sizeof(why)) != 0 && !why[0])
			abort();
		value_parse_u64(trimmed, &u, why, sizeof(why));
		value_parse_bool(trimmed, &b, why, sizeof(why));
		value_check_name(trimmed, 64, why, sizeof(why));
		value_is_kernel_loop_name(trimmed);
		value_path_within(trimmed, "/srv/images");
		uint64_t g[4];
		why[0] = '\0';
		if (value_parse_geometry(trimmed, g, why, sizeof(why)) != 0 && !why[0])
			abort();
	}
	struct kv_block kb = { 0 };
	kvtext_parse(text, &kb, why, sizeof(why));
	kv_block_free(&kb);
	free(text);
	return 0;
}
