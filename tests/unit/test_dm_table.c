#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_lines.h"
#include "stsfs/dm_parse.h"

static void want_masked(const char *target, const char *params, const char *want)
{
	char *got = dm_table_mask_keys(target, params);
	cr_assert_not_null(got);
	cr_assert_str_eq(got, want, "%s '%s'", target ? target : "(null)", params ? params : "(null)");
	cr_assert_neq(got, params, "not a copy");
	free(got);
}

Test(dm_table, crypt_hex_key)
{
	want_masked("crypt", "aes-xts-plain64 0123456789abcdef0123456789abcdef 0 7:0 0",
		    "aes-xts-plain64 00000000000000000000000000000000 0 7:0 0");
	want_masked("crypt", "aes-cbc-essiv:sha256 deadbeef 0 8:16 4096 2 allow_discards sector_size:4096",
		    "aes-cbc-essiv:sha256 00000000 0 8:16 4096 2 allow_discards sector_size:4096");
	want_masked("crypt", "capi:cbc(aes)-plain abcdef 0 8:16 0 1 integrity:28:aead",
		    "capi:cbc(aes)-plain 000000 0 8:16 0 1 integrity:28:aead");
}

Test(dm_table, crypt_keyring_reference_kept)
{
	const char *p = "aes-xts-plain64 :64:logon:cryptsetup:0123-abcd 0 7:0 0";
	want_masked("crypt", p, p);
}

/* dmsetup masks whatever is in the KEY field, even the "no key" dash. */
Test(dm_table, crypt_edge_cases_as_dmsetup)
{
	want_masked("crypt", "ecb - 0 7:0 0", "ecb 0 0 7:0 0");
	want_masked("crypt", "aes-xts-plain64 abcd", "aes-xts-plain64 0000");
	want_masked("crypt", "aes-xts-plain64", "aes-xts-plain64");
	want_masked("crypt", "aes-xts-plain64 ", "aes-xts-plain64 ");
	want_masked("crypt", "", "");
	want_masked("crypt", NULL, "");
}

Test(dm_table, integrity_keys)
{
	want_masked("integrity",
		    "7:0 0 32 J 3 journal_sectors:1024 internal_hash:hmac(sha256):00112233 journal_mac:hmac(sha256):aabb",
		    "7:0 0 32 J 3 journal_sectors:1024 internal_hash:hmac(sha256):00000000 journal_mac:hmac(sha256):0000");
	want_masked("integrity",
		    "7:0 0 - J 2 journal_crypt:ctr(aes):0102030405060708 internal_hash:crc32c",
		    "7:0 0 - J 2 journal_crypt:ctr(aes):0000000000000000 internal_hash:crc32c");
	want_masked("integrity", "7:0 0 4 J 1 journal_mac:hmac(sha256):ff", "7:0 0 4 J 1 journal_mac:hmac(sha256):00");
}

Test(dm_table, integrity_without_keys_unchanged)
{
	const char *p = "7:0 0 4 J 6 journal_sectors:7616 interleave_sectors:32768 buffer_sectors:128 "
			"journal_watermark:50 commit_time:10000 internal_hash:crc32c";
	want_masked("integrity", p, p);
	p = "7:0 0 32 J 2 internal_hash:hmac(sha256) journal_mac:hmac(sha256)";
	want_masked("integrity", p, p);
	want_masked("integrity", "7:0 0 4 D 0", "7:0 0 4 D 0");
}

Test(dm_table, other_targets_unchanged)
{
	const char *cases[][2] = {
		{ "linear", "7:0 2048" },
		{ "thin-pool", "7:1 7:0 128 0 1 skip_block_zeroing" },
		{ "striped", "2 128 7:0 0 7:1 0" },
		{ "verity", "1 7:0 7:1 4096 4096 256 1 sha256 deadbeef 0011" },
		{ "zero", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		want_masked(cases[i][0], cases[i][1], cases[i][1]);
	want_masked(NULL, "aes deadbeef 0 7:0 0", "aes deadbeef 0 7:0 0");
}

/* A line as `dmsetup table` prints it (optionally "NAME: " first). dmsetup
 * already masked it, so masking again must leave it as it is, and the
 * length never changes. */
static bool table_line_ok(const char *line, char *reason, size_t len)
{
	const char *colon = strchr(line, ':');
	const char *space = strchr(line, ' ');
	if (colon && space && colon + 1 == space)
		line = space + 1;
	unsigned long long start, length;
	char target[64];
	int n = 0;
	if (sscanf(line, "%llu %llu %63s%n", &start, &length, target, &n) != 3) {
		snprintf(reason, len, "not START LENGTH TARGET: '%s'", line);
		return false;
	}
	const char *params = line + n + (line[n] == ' ');
	char *masked = dm_table_mask_keys(target, params);
	bool ok = masked && strcmp(masked, params) == 0;
	if (!ok)
		snprintf(reason, len, "%s: masked to '%s'", target, masked ? masked : "(ENOMEM)");
	free(masked);
	return ok;
}

Test(dm_table, line_checker_can_fail)
{
	char reason[512];
	cr_assert(table_line_ok("0 8 crypt aes-xts-plain64 0000 0 7:0 0", reason, sizeof(reason)));
	cr_assert(table_line_ok("dev: 0 8 linear 7:0 0", reason, sizeof(reason)));
	cr_assert(!table_line_ok("0 8 crypt aes-xts-plain64 abcd 0 7:0 0", reason, sizeof(reason)));
	cr_assert(strstr(reason, "aes-xts-plain64 0000 0 7:0 0"), "%s", reason);
	cr_assert(!table_line_ok("zero", reason, sizeof(reason)));
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

static void table_line_cb(const char *path, size_t lineno, char *line, void *arg)
{
	size_t *lines = arg;
	char reason[512];
	cr_expect(table_line_ok(line, reason, sizeof(reason)), "%s:%zu: %s", path, lineno, reason);
	(*lines)++;
}

static void check_table_file(const char *path, size_t *lines)
{
	for_each_data_line(path, table_line_cb, lines);
}

/* Real `dmsetup table` lines recorded beside the status examples. */
Test(dm_table, recorded_table_files)
{
	DIR *d = opendir(DATA_DIR "/dm-status");
	cr_assert_not_null(d, "cannot open " DATA_DIR "/dm-status: %s", strerror(errno));
	size_t files = 0, lines = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (!has_suffix(e->d_name, ".table"))
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/dm-status/%s", DATA_DIR, e->d_name);
		check_table_file(path, &lines);
		files++;
	}
	closedir(d);
	cr_log_info("%zu recorded .table files, %zu lines", files, lines);
}
