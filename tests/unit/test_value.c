#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "stsfs/state.h"
#include "stsfs/value.h"

static char why[256];

Test(size, plain_and_suffixes)
{
	uint64_t v;
	cr_assert_eq(value_parse_size("0", &v, why, sizeof(why)), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(value_parse_size("4096", &v, why, sizeof(why)), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(value_parse_size("1K", &v, why, sizeof(why)), 0);
	cr_assert_eq(v, 1024);
	cr_assert_eq(value_parse_size("64M", &v, why, sizeof(why)), 0);
	cr_assert_eq(v, 64ull << 20);
	cr_assert_eq(value_parse_size("2G", &v, why, sizeof(why)), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(value_parse_size("3T", &v, why, sizeof(why)), 0);
	cr_assert_eq(v, 3ull << 40);
	cr_assert_eq(value_parse_size("5MiB", &v, why, sizeof(why)), 0);
	cr_assert_eq(v, 5ull << 20);
	cr_assert_eq(value_parse_size("7kib", &v, why, sizeof(why)), 0);
	cr_assert_eq(v, 7ull << 10);
	cr_assert_eq(value_parse_size("9GiB", &v, why, sizeof(why)), 0);
	cr_assert_eq(v, 9ull << 30);
}

Test(size, rejects_garbage)
{
	uint64_t v = 42;
	const char *bad[] = { "", "K", "-1", "1.5G", "12Q", "1 G", "0x10", "1KK", "M1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		cr_assert_eq(value_parse_size(bad[i], &v, why, sizeof(why)), -EINVAL, "accepted '%s'", bad[i]);
		cr_assert_neq(why[0], '\0', "no reason for '%s'", bad[i]);
	}
	cr_assert_eq(v, 42, "failed parse changed the output");
}

Test(size, overflow)
{
	uint64_t v;
	cr_assert_eq(value_parse_size("18446744073709551615", &v, why, sizeof(why)), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(value_parse_size("18446744073709551616", &v, why, sizeof(why)), -EINVAL);
	cr_assert_eq(value_parse_size("16777216T", &v, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "too large"));
	cr_assert_eq(value_parse_size("16777215T", &v, why, sizeof(why)), 0);
}

Test(u64, parse)
{
	uint64_t v;
	cr_assert_eq(value_parse_u64("123", &v, why, sizeof(why)), 0);
	cr_assert_eq(v, 123);
	cr_assert_eq(value_parse_u64("12a", &v, why, sizeof(why)), -EINVAL);
	cr_assert_eq(value_parse_u64("", &v, why, sizeof(why)), -EINVAL);
}

Test(bool, words)
{
	const char *yes[] = { "1", "y", "Y", "yes", "YES", "on", "true", "True" };
	const char *no[] = { "0", "n", "no", "off", "false", "FALSE" };
	bool b;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		cr_assert_eq(value_parse_bool(yes[i], &b, why, sizeof(why)), 0, "%s", yes[i]);
		cr_assert(b, "%s", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		cr_assert_eq(value_parse_bool(no[i], &b, why, sizeof(why)), 0, "%s", no[i]);
		cr_assert(!b, "%s", no[i]);
	}
	const char *bad[] = { "", "2", "yess", "enable", "01" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(value_parse_bool(bad[i], &b, why, sizeof(why)), -EINVAL, "%s", bad[i]);
}

Test(name, valid_and_invalid)
{
	const char *good[] = { "a", "disk0", "A-b_c.d+e", "9lives" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_eq(value_check_name(good[i], 64, why, sizeof(why)), 0, "%s: %s", good[i], why);
	const char *bad[] = { "", "-a", ".hidden", "_x", "a b", "a/b", "a:b", "a\n", "caf\xc3\xa9" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(value_check_name(bad[i], 64, why, sizeof(why)), -EINVAL, "accepted '%s'", bad[i]);
}

Test(name, length_limit)
{
	char n[130];
	memset(n, 'a', sizeof(n));
	n[64] = '\0';
	cr_assert_eq(value_check_name(n, 64, why, sizeof(why)), 0);
	n[64] = 'a';
	n[65] = '\0';
	cr_assert_eq(value_check_name(n, 64, why, sizeof(why)), -EINVAL);
	cr_assert_eq(value_check_name(n, 127, why, sizeof(why)), 0);
}

Test(name, kernel_loop_names)
{
	cr_assert(value_is_kernel_loop_name("loop0"));
	cr_assert(value_is_kernel_loop_name("loop123"));
	cr_assert(!value_is_kernel_loop_name("loop"));
	cr_assert(!value_is_kernel_loop_name("loopx"));
	cr_assert(!value_is_kernel_loop_name("loop1a"));
	cr_assert(!value_is_kernel_loop_name("myloop1"));
}

Test(path, within)
{
	cr_assert(value_path_within("/srv/img/a.img", "/srv/img"));
	cr_assert(value_path_within("/srv/img", "/srv/img"));
	cr_assert(!value_path_within("/srv/images/a.img", "/srv/img"));
	cr_assert(!value_path_within("/srv", "/srv/img"));
	cr_assert(value_path_within("/anything", "/"));
}

Test(sector, sizes)
{
	cr_assert_eq(value_check_sector_size(512, why, sizeof(why)), 0);
	cr_assert_eq(value_check_sector_size(1024, why, sizeof(why)), 0);
	cr_assert_eq(value_check_sector_size(4096, why, sizeof(why)), 0);
	cr_assert_eq(value_check_sector_size(256, why, sizeof(why)), -EINVAL);
	cr_assert_eq(value_check_sector_size(8192, why, sizeof(why)), -EINVAL);
	cr_assert_eq(value_check_sector_size(1536, why, sizeof(why)), -EINVAL);
}

Test(geometry, values_and_limits)
{
	uint64_t g[4];
	cr_assert_eq(value_parse_geometry("64 64 16 0", g, why, sizeof(why)), 0, "%s", why);
	cr_assert(g[0] == 64 && g[1] == 64 && g[2] == 16 && g[3] == 0);
	cr_assert_eq(value_parse_geometry(" 65535\t255 255  18446744073709551615 ", g, why, sizeof(why)), 0, "%s", why);
	cr_assert(g[0] == 65535 && g[3] == 18446744073709551615ull);
	const char *bad[] = { "", "1 2 3", "1 2 3 4 5", "1 2 3 x", "-1 2 3 4", "1 2 3 4x", "1,2 3 4 5",
			      "0x10 1 1 0", "65536 1 1 0", "1 256 1 0", "1 1 256 0", "1 1 1 18446744073709551616" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		cr_assert_eq(value_parse_geometry(bad[i], g, why, sizeof(why)), -EINVAL, "'%s' accepted", bad[i]);
		cr_assert(why[0], "no reason for '%s'", bad[i]);
	}
	value_parse_geometry("1 256 1 0", g, why, sizeof(why));
	cr_assert_str_eq(why, "geometry: heads 256 is more than 255");
}

Test(trim, whitespace_and_limits)
{
	char out[8];
	cr_assert_eq(value_trim("  1\n", 4, out, sizeof(out), why, sizeof(why)), 0);
	cr_assert_str_eq(out, "1");
	cr_assert_eq(value_trim("\t\n", 2, out, sizeof(out), why, sizeof(why)), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(value_trim("12345678", 8, out, sizeof(out), why, sizeof(why)), -EINVAL);
	cr_assert_eq(value_trim("a\0b", 3, out, sizeof(out), why, sizeof(why)), -EINVAL);
}

Test(kvtext, parse_lines)
{
	struct kv_block b = { 0 };
	cr_assert_eq(kvtext_parse("a=1\nb=x=y\n\nc=\n", &b, why, sizeof(why)), 0);
	cr_assert_eq(b.n, 3);
	cr_assert_str_eq(kv_get(&b, "a")->str, "1");
	cr_assert_str_eq(kv_get(&b, "b")->str, "x=y");
	cr_assert_str_eq(kv_get(&b, "c")->str, "");
	kv_block_free(&b);
	cr_assert_eq(kvtext_parse("novalue\n", &b, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "line 1"));
	kv_block_free(&b);
	cr_assert_eq(kvtext_parse("=v\n", &b, why, sizeof(why)), -EINVAL);
	kv_block_free(&b);
}

/* Tenancy's internal names: "UID:" or "pidns-INODE:" before a valid name. */
Test(name, tenant_prefix)
{
	cr_assert_eq(value_tenant_prefix("1000:disk"), 5);
	cr_assert_eq(value_tenant_prefix("pidns-4026531836:disk"), 17);
	cr_assert_eq(value_tenant_prefix("disk"), 0);
	cr_assert_eq(value_tenant_prefix(":disk"), 0);
	cr_assert_eq(value_tenant_prefix("pidns-:disk"), 0);
	cr_assert_eq(value_tenant_prefix("x1000:disk"), 0);
	cr_assert_eq(value_tenant_prefix("123456789012345678901:disk"), 0);
	cr_assert_eq(value_check_name("1000:disk", 64, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(value_check_name("pidns-4026531836:a.b", 64, why, sizeof(why)), 0, "%s", why);
	const char *bad[] = { "1000:", "1000:-a", "1000:a:b", "1000:1000:a", "a:1000", "pidns-x:a" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(value_check_name(bad[i], 64, why, sizeof(why)), -EINVAL, "accepted '%s'", bad[i]);
	/* The prefix counts against the limit. */
	cr_assert_eq(value_check_name("1000:abcdef", 10, why, sizeof(why)), -EINVAL);
	cr_assert_eq(value_check_name("1000:abcde", 10, why, sizeof(why)), 0, "%s", why);
}
