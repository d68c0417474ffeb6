#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stsfs/dm_ref.h"

Test(dm_ref, split_lines)
{
	struct dm_lines l;
	char why[256] = "";
	cr_assert_eq(dm_table_split("0 1024  zero\n\n1024 2048 linear   7:0 0 \n", &l, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(l.v[1].start, 1024);
	cr_assert_eq(l.v[1].length, 2048);
	cr_assert_str_eq(l.v[1].type, "linear");
	cr_assert_str_eq(l.v[1].params, "7:0 0");
	cr_assert_str_eq(l.v[0].params, "");
	char *f = dm_lines_format(&l);
	cr_assert_str_eq(f, "0 1024 zero\n1024 2048 linear 7:0 0\n");
	free(f);
	dm_lines_free(&l);
}

Test(dm_ref, split_errors_name_the_line)
{
	struct dm_lines l;
	char why[256] = "";
	cr_assert_eq(dm_table_split("0 1 zero\n1 x zero", &l, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "table line 2") != NULL, "%s", why);
	cr_assert_eq(dm_table_split("0 0 zero", &l, why, sizeof(why)), -EINVAL);
	cr_assert_eq(dm_table_split("0 1", &l, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "no target type") != NULL, "%s", why);
	cr_assert_eq(dm_table_split(" \n", &l, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "empty") != NULL, "%s", why);
}

Test(dm_ref, devrefs)
{
	cr_assert(dm_is_devref("7:0"));
	cr_assert(dm_is_devref("/dev/sda"));
	cr_assert(dm_is_devref("loop/a"));
	cr_assert(dm_is_devref("dm/x"));
	cr_assert(dm_is_devref("thin/p/v"));
	cr_assert(!dm_is_devref("aes-xts-plain64"));
	cr_assert(!dm_is_devref("7:x"));
	cr_assert(!dm_is_devref("sector_size:4096"));
	cr_assert(!dm_is_devref("0"));
	/* any other word with a slash is a path the kernel would open: a
	 * reference for the resolver to check, never passed through */
	cr_assert(dm_is_devref("/var/tmp/link-to-loop0"));
	cr_assert(dm_is_devref("/sys/../dev/sda"));
	cr_assert(dm_is_devref("./loop0"));
	cr_assert(dm_is_devref("../dev/loop0"));
	cr_assert(dm_is_devref("dev/loop0"));
	cr_assert(dm_is_devref("loopy/x"));
	cr_assert(!dm_is_devref("loop0"));
}

static int fake_resolve(void *arg, const char *ref, char *out, size_t outlen, char *why, size_t whylen)
{
	if (strcmp(ref, "loop/a") == 0) {
		snprintf(out, outlen, "7:3");
		return 0;
	}
	if (strchr(ref, ':')) {
		snprintf(out, outlen, "%s", ref);
		return 0;
	}
	snprintf(why, whylen, "no %s", ref);
	return -ENOENT;
}

/* Bytes the kernel splits arguments at or unescapes, which would hide a
 * device from the check: 7\:0 is 7:0 to the kernel, x\v7:0 two words. */
Test(dm_ref, kernel_splitting_bytes_refused)
{
	static const char *const bad[] = {
		"0 8 linear 7\\:0 0", "0 8 linear \\/dev/loop0 0", "0 8 linear x\v7:0 0",
		"0 8 linear x\f7:0 0", "0 8 linear x\xa0" "7:0 0", "0 8 zero\n8 8 linear 7:0\\ 0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dm_lines l;
		char why[256] = "";
		cr_assert_eq(dm_table_split(bad[i], &l, why, sizeof(why)), -EINVAL, "%s", bad[i]);
		cr_assert(strstr(why, "the kernel would split or unescape") != NULL, "%s", why);
	}
	struct dm_lines l;
	char why[256] = "";
	cr_assert_eq(dm_table_split("0 8 zero\n8 8 linear 7:0\\ 0", &l, why, sizeof(why)), -EINVAL);
	cr_assert(strncmp(why, "table line 2: ", 14) == 0, "%s", why);
	cr_assert_eq(dm_table_split("0 8 crypt aes-xts-plain64 :32:logon:k 0 7:0 0", &l, why, sizeof(why)), 0, "%s", why);
	dm_lines_free(&l);
}

/* A slash word that names no device is refused by the resolver, so it
 * cannot reach the kernel as a path. */
Test(dm_ref, slash_words_go_to_the_resolver)
{
	struct dm_lines l;
	char why[256] = "";
	cr_assert_eq(dm_table_split("0 8 linear /var/tmp/link 0", &l, why, sizeof(why)), 0);
	cr_assert_eq(dm_lines_translate(&l, fake_resolve, NULL, why, sizeof(why)), -ENOENT);
	cr_assert_str_eq(why, "table line 1: no /var/tmp/link");
	dm_lines_free(&l);
}

Test(dm_ref, translate)
{
	struct dm_lines l;
	char why[256] = "";
	cr_assert_eq(dm_table_split("0 8 striped 2 4 loop/a 0 8:1 0", &l, why, sizeof(why)), 0);
	cr_assert_eq(dm_lines_translate(&l, fake_resolve, NULL, why, sizeof(why)), 0, "%s", why);
	cr_assert_str_eq(l.v[0].params, "2 4 7:3 0 8:1 0");
	dm_lines_free(&l);
	cr_assert_eq(dm_table_split("0 8 zero\n8 8 linear loop/b 0", &l, why, sizeof(why)), 0);
	cr_assert_eq(dm_lines_translate(&l, fake_resolve, NULL, why, sizeof(why)), -ENOENT);
	cr_assert_str_eq(why, "table line 2: no loop/b");
	dm_lines_free(&l);
}
