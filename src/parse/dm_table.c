/* Table text with key material masked the way `dmsetup table` prints it
 * without --showkeys (lvm2 libdm/dm-tools/dmsetup.c, _status() and
 * hide_key()). Masking keeps the length and replaces key bytes by '0'. */
#include "stsfs/dm_parse.h"

#include <stdlib.h>
#include <string.h>

static void zero_word(char *c)
{
	while (*c && *c != ' ')
		*c++ = '0';
}

/* crypt: CIPHER KEY ...; a keyring reference (":SIZE:TYPE:DESC") names a
 * key without containing it, so dmsetup leaves it visible. */
static void mask_crypt(char *params)
{
	char *c = params;
	while (*c && *c != ' ')
		c++;
	if (*c)
		c++;
	if (*c != ':')
		zero_word(c);
}

/* integrity: NAME:ALG[:KEY], key optional; only the first occurrence of
 * NAME is looked at, as dmsetup does. */
static void mask_option_key(char *params, const char *name)
{
	char *c = strstr(params, name);
	if (!c)
		return;
	c = strpbrk(c + strlen(name), " :");
	if (c && *c == ':')
		zero_word(c + 1);
}

char *dm_table_mask_keys(const char *target_type, const char *params)
{
	char *copy = strdup(params ? params : "");
	if (!copy || !target_type)
		return copy;
	if (strcmp(target_type, "crypt") == 0) {
		mask_crypt(copy);
	} else if (strcmp(target_type, "integrity") == 0) {
		mask_option_key(copy, "internal_hash:");
		mask_option_key(copy, "journal_crypt:");
		mask_option_key(copy, "journal_mac:");
	}
	return copy;
}
