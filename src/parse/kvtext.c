#include "stsfs/state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int kvtext_parse(const char *text, struct kv_block *out, char *why, size_t whylen)
{
	int lineno = 0;
	while (*text) {
		size_t len = strcspn(text, "\n");
		lineno++;
		if (len) {
			const char *eq = memchr(text, '=', len);
			if (!eq || eq == text) {
				snprintf(why, whylen, "line %d: expected key=value", lineno);
				return -EINVAL;
			}
			char key[64];
			size_t klen = (size_t)(eq - text);
			if (klen >= sizeof(key)) {
				snprintf(why, whylen, "line %d: key too long", lineno);
				return -EINVAL;
			}
			memcpy(key, text, klen);
			key[klen] = '\0';
			int r = kv_add_strn(out, key, eq + 1, len - klen - 1);
			if (r)
				return r;
		}
		text += len;
		if (*text == '\n')
			text++;
	}
	return 0;
}
