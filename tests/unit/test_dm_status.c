#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_lines.h"
#include "stsfs/dm_parse.h"

static char why[256];
static struct kv_block b;

static void setup(void)
{
	memset(&b, 0, sizeof(b));
	why[0] = '\0';
}

static void teardown(void)
{
	kv_block_free(&b);
}

TestSuite(dm_status, .init = setup, .fini = teardown);

static void parse_ok(const char *line)
{
	kv_block_free(&b);
	int r = dm_status_parse_line(line, &b, why, sizeof(why));
	cr_assert_eq(r, 0, "'%s' failed (%d): %s", line, r, why);
}

/* The block's keys, in order, must be exactly `keys` (space-separated). */
static void want_keys(const char *keys)
{
	char *copy = strdup(keys), *save = NULL;
	size_t i = 0;
	for (char *k = strtok_r(copy, " ", &save); k; k = strtok_r(NULL, " ", &save), i++) {
		cr_assert_lt(i, b.n, "missing key '%s' (block has %zu keys)", k, b.n);
		cr_assert_str_eq(b.v[i].key, k, "key %zu is '%s', want '%s'", i, b.v[i].key, k);
	}
	free(copy);
	cr_assert_eq(i, b.n, "block has %zu keys, want %zu (extra '%s')", b.n, i,
		     i < b.n ? b.v[i].key : "");
}

static const struct kv *want_key(const char *key, enum kv_type type)
{
	const struct kv *e = kv_get(&b, key);
	cr_assert_not_null(e, "no key '%s'", key);
	cr_assert_eq(e->type, type, "%s: type %d, want %d", key, e->type, type);
	return e;
}

static void want_u64(const char *key, uint64_t v)
{
	const struct kv *e = want_key(key, KV_U64);
	cr_assert_eq(e->u, v, "%s=%" PRIu64 ", want %" PRIu64, key, e->u, v);
}

static void want_s64(const char *key, int64_t v)
{
	const struct kv *e = want_key(key, KV_S64);
	cr_assert_eq(e->s, v, "%s=%" PRId64 ", want %" PRId64, key, e->s, v);
}

static void want_str(const char *key, const char *v)
{
	cr_assert_str_eq(want_key(key, KV_STR)->str, v, "%s", key);
}

static void want_bool(const char *key, bool v)
{
	cr_assert_eq(want_key(key, KV_BOOL)->u, (uint64_t)v, "%s", key);
}

static void want_none(const char *key)
{
	want_key(key, KV_NONE);
}

static void want_head(uint64_t start, uint64_t length, const char *target)
{
	want_u64("start", start);
	want_u64("length", length);
	want_str("target", target);
}

/* A malformed status for a known target: -EINVAL, a reason that names the
 * target and contains `reason`, and the block as the caller left it. */
static void parse_bad(const char *target, const char *params, const char *reason)
{
	struct kv_block o = { 0 };
	cr_assert_eq(kv_add_u64(&o, "start", 0), 0);
	cr_assert_eq(kv_add_u64(&o, "length", 8), 0);
	cr_assert_eq(kv_add_str(&o, "target", target), 0);
	why[0] = '\0';
	int r = dm_status_parse(target, params, &o, why, sizeof(why));
	cr_assert_eq(r, -EINVAL, "%s '%s' gave %d, want -EINVAL", target, params, r);
	cr_assert_eq(o.n, 3, "%s '%s' left %zu keys behind", target, params, o.n - 3);
	cr_assert_str_eq(o.v[2].str, target);
	cr_assert_eq(strncmp(why, target, strlen(target)), 0, "reason '%s' does not name %s", why, target);
	cr_assert(strstr(why, reason), "%s '%s': reason '%s' lacks '%s'", target, params, why, reason);
	kv_block_free(&o);
}

/* --- targets with empty status ------------------------------------------------ */

Test(dm_status, empty_targets)
{
	const char *targets[] = { "linear", "zero", "error", "crypt", "snapshot-origin", "flakey", "unstriped" };
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "0 2097152 %s ", targets[i]);
		parse_ok(line);
		want_keys("start length target");
		want_head(0, 2097152, targets[i]);
		snprintf(line, sizeof(line), "8 16 %s", targets[i]);
		parse_ok(line);
		want_head(8, 16, targets[i]);
		want_keys("start length target");
		cr_assert(dm_status_target_known(targets[i]));
	}
	parse_ok("0 32768 flakey \n");
	want_keys("start length target");
}

Test(dm_status, empty_targets_null_and_blank_params)
{
	cr_assert_eq(dm_status_parse("linear", NULL, &b, why, sizeof(why)), 0);
	cr_assert_eq(dm_status_parse("zero", "   ", &b, why, sizeof(why)), 0);
	cr_assert_eq(b.n, 0);
}

Test(dm_status, empty_targets_reject_fields)
{
	parse_bad("linear", "foo", "expected no status fields, got 1");
	parse_bad("crypt", "1 2", "got 2");
	parse_bad("flakey", "Fail", "expected no status fields");
}

/* --- striped ------------------------------------------------------------------- */

Test(dm_status, striped)
{
	parse_ok("0 4194304 striped 2 8:16 8:32 1 AA");
	want_keys("start length target stripes devices health dead_stripes");
	want_u64("stripes", 2);
	want_str("devices", "8:16 8:32");
	want_str("health", "AA");
	want_u64("dead_stripes", 0);

	parse_ok("0 32768 striped 2 7:0 7:1 1 AA");
	want_str("devices", "7:0 7:1");
}

Test(dm_status, striped_dead_stripes)
{
	parse_ok("0 6291456 striped 3 8:16 8:32 8:48 1 DAD");
	want_u64("stripes", 3);
	want_str("health", "DAD");
	want_u64("dead_stripes", 2);
	parse_ok("0 100 striped 1 8:16 1 D");
	want_u64("dead_stripes", 1);
}

Test(dm_status, striped_malformed)
{
	parse_bad("striped", "", "missing stripes");
	parse_bad("striped", "x 8:16 1 A", "stripes: 'x' is not a number");
	parse_bad("striped", "0 1 A", "stripe count is 0");
	parse_bad("striped", "5 8:16 1 A", "stripes 5 overruns the 3 fields left");
	parse_bad("striped", "2 8:16 8:32 1", "missing health");
	parse_bad("striped", "2 8:16 8:32 2 AA", "expected '1', got '2'");
	parse_bad("striped", "2 8:16 8:32 1 A", "expected 2 characters");
	parse_bad("striped", "2 8:16 8:32 1 AX", "outside 'AD'");
	parse_bad("striped", "2 8:16 8:32 1 AA extra", "unexpected field 6 'extra'");
	parse_bad("striped", "-1 8:16 1 A", "is not a number");
}

/* --- delay --------------------------------------------------------------------- */

Test(dm_status, delay)
{
	parse_ok("0 32768 delay 0 0 0");
	want_keys("start length target reads writes flushes");
	want_u64("reads", 0);
	parse_ok("0 32768 delay 3 14 1");
	want_u64("reads", 3);
	want_u64("writes", 14);
	want_u64("flushes", 1);
	/* kernels before flush support */
	parse_ok("0 32768 delay 5 6");
	want_keys("start length target reads writes");
	want_u64("writes", 6);
}

Test(dm_status, delay_malformed)
{
	parse_bad("delay", "", "expected 2 to 3 fields, got 0");
	parse_bad("delay", "1", "expected 2 to 3 fields, got 1");
	parse_bad("delay", "1 2 3 4", "got 4");
	parse_bad("delay", "1 x 3", "writes: 'x' is not a number");
	parse_bad("delay", "1 2 18446744073709551616", "flushes");
}

/* --- thin-pool ----------------------------------------------------------------- */

Test(dm_status, thin_pool_recorded)
{
	parse_ok("0 524288 thin-pool 2 420/4096 80/4096 - rw discard_passdown queue_if_no_space - 1024 ");
	want_keys("start length target transaction_id used_metadata_blocks total_metadata_blocks "
		  "used_data_blocks total_data_blocks held_metadata_root mode discard_passdown "
		  "no_space_policy needs_check metadata_low_watermark");
	want_head(0, 524288, "thin-pool");
	want_u64("transaction_id", 2);
	want_u64("used_metadata_blocks", 420);
	want_u64("total_metadata_blocks", 4096);
	want_u64("used_data_blocks", 80);
	want_u64("total_data_blocks", 4096);
	want_none("held_metadata_root");
	want_str("mode", "rw");
	want_str("discard_passdown", "discard_passdown");
	want_str("no_space_policy", "queue_if_no_space");
	want_bool("needs_check", false);
	want_u64("metadata_low_watermark", 1024);

	parse_ok("0 524288 thin-pool 2 421/4096 80/4096 39 rw discard_passdown queue_if_no_space - 1024 ");
	want_u64("held_metadata_root", 39);
}

Test(dm_status, thin_pool_flags_and_spacing)
{
	parse_ok("0 524288 thin-pool 18446744073709551615 4096/4096 4096/4096 -  out_of_data_space "
		 "ignore_discard   error_if_no_space needs_check 1024   \n");
	want_u64("transaction_id", UINT64_MAX);
	want_str("mode", "out_of_data_space");
	want_str("discard_passdown", "ignore_discard");
	want_str("no_space_policy", "error_if_no_space");
	want_bool("needs_check", true);
}

Test(dm_status, thin_pool_words)
{
	parse_ok("0 524288 thin-pool Fail");
	want_keys("start length target state fail");
	want_str("state", "Fail");
	want_bool("fail", true);
	parse_ok("0 524288 thin-pool Error ");
	want_keys("start length target state error");
	want_str("state", "Error");
	want_bool("error", true);
}

Test(dm_status, thin_pool_malformed)
{
	parse_bad("thin-pool", "2 420/4096 80/4096", "thin-pool: expected 9 fields, got 3");
	parse_bad("thin-pool", "", "expected 9 fields, got 0");
	parse_bad("thin-pool", "2 420/4096 80/4096 - rw discard_passdown queue_if_no_space - 1024 7",
		  "got 10");
	parse_bad("thin-pool", "x 420/4096 80/4096 - rw discard_passdown queue_if_no_space - 1024",
		  "transaction_id: 'x' is not a number");
	parse_bad("thin-pool", "2 420-4096 80/4096 - rw discard_passdown queue_if_no_space - 1024",
		  "is not USED/TOTAL");
	parse_bad("thin-pool", "2 420/ 80/4096 - rw discard_passdown queue_if_no_space - 1024",
		  "used_metadata_blocks/total_metadata_blocks");
	parse_bad("thin-pool", "2 420/4096 /4096 - rw discard_passdown queue_if_no_space - 1024",
		  "used_data_blocks/total_data_blocks");
	parse_bad("thin-pool", "2 420/4096 80/40/96 - rw discard_passdown queue_if_no_space - 1024",
		  "is not USED/TOTAL");
	parse_bad("thin-pool", "2 420/4096 80/4096 x rw discard_passdown queue_if_no_space - 1024",
		  "held_metadata_root");
	parse_bad("thin-pool", "2 420/4096 80/4096 - rw discard_passdown queue_if_no_space yes 1024",
		  "needs_check: expected 'needs_check' or '-', got 'yes'");
	parse_bad("thin-pool", "2 420/4096 80/4096 - rw discard_passdown queue_if_no_space - -",
		  "metadata_low_watermark");
	parse_bad("thin-pool", "Fail now", "expected 9 fields, got 2");
	parse_bad("thin-pool", "fail", "expected 9 fields");
}

/* --- thin ---------------------------------------------------------------------- */

Test(dm_status, thin)
{
	parse_ok("0 2097152 thin 8192 8191");
	want_keys("start length target mapped_sectors highest_mapped_sector");
	want_u64("mapped_sectors", 8192);
	want_u64("highest_mapped_sector", 8191);
	parse_ok("0 2097152 thin 0 -");
	want_u64("mapped_sectors", 0);
	want_none("highest_mapped_sector");
}

Test(dm_status, thin_words)
{
	parse_ok("0 2097152 thin Fail");
	want_keys("start length target state");
	want_str("state", "Fail");
	parse_ok("0 2097152 thin Error");
	want_keys("start length target state");
	want_str("state", "Error");
	parse_ok("0 2097152 thin -");
	want_keys("start length target state");
	want_none("state");
}

Test(dm_status, thin_malformed)
{
	parse_bad("thin", "", "expected 2 fields, got 0");
	parse_bad("thin", "8192", "expected 2 fields, got 1");
	parse_bad("thin", "8192 8191 1", "got 3");
	parse_bad("thin", "- 8191", "mapped_sectors: '-' is not a number");
	parse_bad("thin", "8192 0x10", "highest_mapped_sector: '0x10' is not a number");
	parse_bad("thin", "- -", "mapped_sectors");
}

/* --- cache --------------------------------------------------------------------- */

#define CACHE_KEYS                                                                              \
	"start length target metadata_block_size used_metadata_blocks total_metadata_blocks "   \
	"cache_block_size used_cache_blocks total_cache_blocks read_hits read_misses "           \
	"write_hits write_misses demotions promotions dirty nr_features features io_mode "       \
	"nr_core_args migration_threshold policy nr_policy_args "

Test(dm_status, cache_recorded)
{
	parse_ok("0 131072 cache 8 7/2048 512 0/128 0 30 0 0 0 0 0 1 writethrough 2 "
		 "migration_threshold 2048 smq 0 rw - ");
	want_keys(CACHE_KEYS "metadata_mode needs_check");
	want_u64("metadata_block_size", 8);
	want_u64("used_metadata_blocks", 7);
	want_u64("total_metadata_blocks", 2048);
	want_u64("cache_block_size", 512);
	want_u64("used_cache_blocks", 0);
	want_u64("total_cache_blocks", 128);
	want_u64("read_hits", 0);
	want_u64("read_misses", 30);
	want_u64("write_hits", 0);
	want_u64("write_misses", 0);
	want_u64("demotions", 0);
	want_u64("promotions", 0);
	want_u64("dirty", 0);
	want_u64("nr_features", 1);
	want_str("features", "writethrough");
	want_str("io_mode", "writethrough");
	want_u64("nr_core_args", 2);
	want_u64("migration_threshold", 2048);
	want_str("policy", "smq");
	want_u64("nr_policy_args", 0);
	want_str("metadata_mode", "rw");
	want_bool("needs_check", false);
}

Test(dm_status, cache_all_features_and_policy_args)
{
	parse_ok("0 131072 cache 8 90/2048 128 512/512 10 20 30 40 5 6 7 3 metadata2 writeback "
		 "no_discard_passdown 2 migration_threshold 4096 mq 6 random_threshold 4 "
		 "sequential_threshold 512 read_promote_adjustment - ro needs_check");
	want_keys(CACHE_KEYS "policy_random_threshold policy_sequential_threshold "
			     "policy_read_promote_adjustment metadata_mode needs_check");
	want_u64("nr_features", 3);
	want_str("features", "metadata2 writeback no_discard_passdown");
	want_str("io_mode", "writeback");
	want_u64("migration_threshold", 4096);
	want_str("policy", "mq");
	want_u64("nr_policy_args", 6);
	want_u64("policy_random_threshold", 4);
	want_u64("policy_sequential_threshold", 512);
	want_none("policy_read_promote_adjustment");
	want_str("metadata_mode", "ro");
	want_bool("needs_check", true);
	want_u64("dirty", 7);
	want_u64("promotions", 6);
	want_u64("demotions", 5);
}

Test(dm_status, cache_passthrough_and_no_core_args)
{
	parse_ok("0 8 cache 8 1/2 64 0/10 0 0 0 0 0 0 0 1 passthrough 0 cleaner 0 rw -");
	want_keys("start length target metadata_block_size used_metadata_blocks "
		  "total_metadata_blocks cache_block_size used_cache_blocks total_cache_blocks "
		  "read_hits read_misses write_hits write_misses demotions promotions dirty "
		  "nr_features features io_mode nr_core_args policy nr_policy_args metadata_mode "
		  "needs_check");
	want_str("io_mode", "passthrough");
	want_str("policy", "cleaner");
}

Test(dm_status, cache_no_io_mode_feature)
{
	parse_ok("0 8 cache 8 1/2 64 0/10 0 0 0 0 0 0 0 0 2 migration_threshold 1 smq 0 rw -");
	cr_assert_null(kv_get(&b, "io_mode"));
	want_str("features", "");
	want_u64("nr_features", 0);
}

Test(dm_status, cache_words)
{
	parse_ok("0 131072 cache Fail");
	want_keys("start length target state");
	want_str("state", "Fail");
	parse_ok("0 131072 cache Error");
	want_str("state", "Error");
}

#define CACHE_HEAD "8 7/2048 512 0/128 0 30 0 0 0 0 0 "

Test(dm_status, cache_malformed)
{
	parse_bad("cache", "", "missing metadata_block_size");
	parse_bad("cache", "8 7/2048 512", "missing used_cache_blocks");
	parse_bad("cache", "8 7/2048 512 0/128 0 x 0 0 0 0 0 1 writethrough 2 migration_threshold 2048 smq 0 rw -",
		  "read_misses: 'x' is not a number");
	parse_bad("cache", CACHE_HEAD "9 writethrough 2 migration_threshold 2048 smq 0 rw -",
		  "nr_features 9 overruns the 8 fields left");
	parse_bad("cache", CACHE_HEAD "1 writethrough 3 migration_threshold 2048 smq 0 rw -",
		  "core args: odd count 3");
	parse_bad("cache", CACHE_HEAD "1 writethrough 2 migration_threshold 2048 smq 1 x rw -",
		  "policy args: odd count 1");
	parse_bad("cache", CACHE_HEAD "1 writethrough 2 migration_threshold 2048 smq 40 a 1 rw -",
		  "nr_policy_args 40 overruns");
	parse_bad("cache", CACHE_HEAD "1 writethrough 2 migration_threshold 2048 smq 0 rw",
		  "missing needs_check");
	parse_bad("cache", CACHE_HEAD "1 writethrough 2 migration_threshold 2048 smq 0",
		  "missing metadata_mode");
	parse_bad("cache", CACHE_HEAD "1 writethrough 2 migration_threshold 2048 smq 0 rw - extra",
		  "unexpected field 21 'extra'");
	parse_bad("cache", CACHE_HEAD "1 writethrough 2 migration_threshold 2048 smq 0 rw check",
		  "needs_check: expected 'needs_check' or '-'");
	parse_bad("cache", CACHE_HEAD "1 writethrough 2 Migration=x 2048 smq 0 rw -",
		  "core args: bad name 'Migration=x'");
	parse_bad("cache", CACHE_HEAD "1 writethrough 2 dirty 5 smq 0 rw -",
		  "core args: 'dirty' given twice");
	parse_bad("cache", CACHE_HEAD "1 writethrough 4 migration_threshold 1 migration_threshold 2 smq 0 rw -",
		  "given twice");
	parse_bad("cache", CACHE_HEAD "1 writethrough 2 migration_threshold 2048 smq 2 a.b 1 rw -",
		  "policy args: bad name 'a.b'");
	parse_bad("cache", CACHE_HEAD "x writethrough", "nr_features: 'x' is not a number");
	parse_bad("cache", "Fail Error", "metadata_block_size: 'Fail' is not a number");
}

/* --- era ----------------------------------------------------------------------- */

Test(dm_status, era)
{
	parse_ok("0 65536 era 8 9/2048 1 -");
	want_keys("start length target metadata_block_size used_metadata_blocks "
		  "total_metadata_blocks current_era held_metadata_root");
	want_u64("metadata_block_size", 8);
	want_u64("used_metadata_blocks", 9);
	want_u64("total_metadata_blocks", 2048);
	want_u64("current_era", 1);
	want_none("held_metadata_root");
	parse_ok("0 65536 era 8 11/2048 2 17");
	want_u64("current_era", 2);
	want_u64("held_metadata_root", 17);
	parse_ok("0 65536 era Error");
	want_keys("start length target state");
	want_str("state", "Error");
}

Test(dm_status, era_malformed)
{
	parse_bad("era", "8 9/2048 1", "expected 4 fields, got 3");
	parse_bad("era", "8 9/2048 1 - 5", "got 5");
	parse_bad("era", "8 9 1 -", "used_metadata_blocks/total_metadata_blocks: '9' is not USED/TOTAL");
	parse_bad("era", "8 9/2048 one -", "current_era");
	parse_bad("era", "Fail", "expected 4 fields, got 1");
}

/* --- writecache ---------------------------------------------------------------- */

Test(dm_status, writecache_14)
{
	parse_ok("0 2097152 writecache 0 32256 31744 0 120 8 512 0 0 0 512 0 4 0");
	want_keys("start length target error total_blocks free_blocks writeback_blocks read_blocks "
		  "read_hits write_blocks write_hits_uncommitted write_hits_committed writes_around "
		  "writes_allocate writes_blocked_on_freelist flushes discards");
	want_s64("error", 0);
	want_u64("total_blocks", 32256);
	want_u64("free_blocks", 31744);
	want_u64("writeback_blocks", 0);
	want_u64("read_blocks", 120);
	want_u64("read_hits", 8);
	want_u64("write_blocks", 512);
	want_u64("writes_allocate", 512);
	want_u64("flushes", 4);
	want_u64("discards", 0);
}

Test(dm_status, writecache_4_and_error)
{
	parse_ok("0 2097152 writecache 0 32256 31744 12");
	want_keys("start length target error total_blocks free_blocks writeback_blocks");
	want_u64("writeback_blocks", 12);
	/* the kernel prints the error as a negative errno */
	parse_ok("0 2097152 writecache -5 32256 31744 0");
	want_s64("error", -5);
}

Test(dm_status, writecache_malformed)
{
	parse_bad("writecache", "0 1 2", "expected 4 to 14 fields, got 3");
	parse_bad("writecache", "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14", "got 15");
	parse_bad("writecache", "- 1 2 3", "error: '-' is not a number");
	parse_bad("writecache", "--5 1 2 3", "error");
	parse_bad("writecache", "0 1 2 -3", "writeback_blocks: '-3' is not a number");
	parse_bad("writecache", "0 1 2 3 4 5 6 7 8 9 10 11 12 z", "discards");
}

/* --- integrity ----------------------------------------------------------------- */

Test(dm_status, integrity)
{
	parse_ok("0 1949696 integrity 0 1949696 -");
	want_keys("start length target mismatches provided_data_sectors recalculate_sector");
	want_u64("mismatches", 0);
	want_u64("provided_data_sectors", 1949696);
	want_none("recalculate_sector");
	parse_ok("0 1949696 integrity 3 1949696 524288");
	want_u64("mismatches", 3);
	want_u64("recalculate_sector", 524288);
}

Test(dm_status, integrity_malformed)
{
	parse_bad("integrity", "0 1949696", "expected 3 fields, got 2");
	parse_bad("integrity", "0 1949696 - -", "got 4");
	parse_bad("integrity", "- 1949696 -", "mismatches");
	parse_bad("integrity", "Error", "expected 3 fields, got 1");
}

/* --- snapshot ------------------------------------------------------------------ */

Test(dm_status, snapshot)
{
	parse_ok("0 32768 snapshot 16/16384 16");
	want_keys("start length target sectors_allocated total_sectors metadata_sectors");
	want_u64("sectors_allocated", 16);
	want_u64("total_sectors", 16384);
	want_u64("metadata_sectors", 16);
	parse_ok("0 8388608 snapshot-merge 16/2097152 16");
	want_head(0, 8388608, "snapshot-merge");
	want_u64("total_sectors", 2097152);
}

Test(dm_status, snapshot_words)
{
	const char *words[][2] = {
		{ "Invalid", "invalid" },
		{ "Merge failed", "merge_failed" },
		{ "  Merge   failed  ", "merge_failed" },
		{ "Overflow", "overflow" },
		{ "Unknown", "unknown" },
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		for (int merge = 0; merge < 2; merge++) {
			char line[64];
			snprintf(line, sizeof(line), "0 32768 %s %s", merge ? "snapshot-merge" : "snapshot",
				 words[i][0]);
			parse_ok(line);
			want_keys("start length target state");
			want_str("state", words[i][1]);
		}
	}
}

Test(dm_status, snapshot_malformed)
{
	parse_bad("snapshot", "Merge", "expected 2 fields, got 1");
	parse_bad("snapshot", "Merge failed now", "got 3");
	parse_bad("snapshot", "failed Merge", "is not USED/TOTAL");
	parse_bad("snapshot", "16/16384", "expected 2 fields, got 1");
	parse_bad("snapshot", "16/16384 16 3", "got 3");
	parse_bad("snapshot", "16 16", "sectors_allocated/total_sectors");
	parse_bad("snapshot-merge", "16/16384 -", "metadata_sectors");
	parse_bad("snapshot", "invalid", "expected 2 fields");
}

/* --- mirror -------------------------------------------------------------------- */

#define MIRROR_KEYS "start length target mirrors devices in_sync_regions total_regions health nr_log_args log_type"

Test(dm_status, mirror_disk_log)
{
	parse_ok("0 2097152 mirror 2 253:1 253:2 2048/2048 1 AA 3 disk 253:0 A");
	want_keys(MIRROR_KEYS " log_device log_health");
	want_u64("mirrors", 2);
	want_str("devices", "253:1 253:2");
	want_u64("in_sync_regions", 2048);
	want_u64("total_regions", 2048);
	want_str("health", "AA");
	want_u64("nr_log_args", 3);
	want_str("log_type", "disk");
	want_str("log_device", "253:0");
	want_str("log_health", "A");
}

Test(dm_status, mirror_core_log)
{
	parse_ok("0 2097152 mirror 2 253:1 253:2 1024/2048 1 AD 1 core");
	want_keys(MIRROR_KEYS);
	want_u64("in_sync_regions", 1024);
	want_str("health", "AD");
	want_str("log_type", "core");
	parse_ok("0 32768 mirror 2 7:0 7:1 32/32 1 AA 1 core");
	want_str("devices", "7:0 7:1");
	parse_ok("0 32768 mirror 3 7:0 7:1 7:2 32/32 1 FSR 1 core ");
	want_str("health", "FSR");
}

Test(dm_status, mirror_other_log)
{
	parse_ok("0 32768 mirror 2 7:0 7:1 32/32 1 AU 2 clustered-core x");
	want_keys(MIRROR_KEYS " log_status");
	want_str("log_type", "clustered-core");
	want_str("log_status", "x");
	parse_ok("0 32768 mirror 1 7:0 32/32 1 A 4 userlog a b c");
	want_str("log_status", "a b c");
}

Test(dm_status, mirror_malformed)
{
	parse_bad("mirror", "", "missing mirrors");
	parse_bad("mirror", "0 1/1 1 1 core", "mirror count is 0");
	parse_bad("mirror", "3 253:1 253:2", "mirrors 3 overruns the 2 fields left");
	parse_bad("mirror", "2 253:1 253:2 2048 1 AA 1 core", "is not USED/TOTAL");
	parse_bad("mirror", "2 253:1 253:2 2048/2048 0 AA 1 core", "expected '1', got '0'");
	parse_bad("mirror", "2 253:1 253:2 2048/2048 1 AAA 1 core", "expected 2 characters");
	parse_bad("mirror", "2 253:1 253:2 2048/2048 1 AZ 1 core", "outside 'AFDSRU'");
	parse_bad("mirror", "2 253:1 253:2 2048/2048 1 AA", "missing nr_log_args");
	parse_bad("mirror", "2 253:1 253:2 2048/2048 1 AA 0", "log status count is 0");
	parse_bad("mirror", "2 253:1 253:2 2048/2048 1 AA 3 disk 253:0", "nr_log_args 3 overruns the 2 fields left");
	parse_bad("mirror", "2 253:1 253:2 2048/2048 1 AA 3 disk 253:0 Q", "log_health: expected A, D or F");
	parse_bad("mirror", "2 253:1 253:2 2048/2048 1 AA 1 core extra", "unexpected field 9 'extra'");
	parse_bad("mirror", "2 253:1 253:2 2048/2048 1 AA x core", "nr_log_args: 'x' is not a number");
}

/* --- dust, vdo ----------------------------------------------------------------- */

Test(dm_status, dust)
{
	parse_ok("0 33552384 dust 252:17 bypass verbose");
	want_keys("start length target device mode verbosity");
	want_str("device", "252:17");
	want_str("mode", "bypass");
	want_str("verbosity", "verbose");
	parse_ok("0 33552384 dust 252:17 fail_read_on_bad_block quiet");
	want_str("mode", "fail_read_on_bad_block");
	want_str("verbosity", "quiet");
	/* older kernels print no verbosity */
	parse_ok("0 33552384 dust 252:17 bypass");
	want_keys("start length target device mode");
}

Test(dm_status, dust_malformed)
{
	parse_bad("dust", "252:17", "expected 2 to 3 fields, got 1");
	parse_bad("dust", "252:17 bypass verbose x", "got 4");
	parse_bad("dust", "", "got 0");
}

Test(dm_status, vdo)
{
	parse_ok("0 2097152 vdo /dev/dm-1 normal - online offline 73590 262144");
	want_keys("start length target device operating_mode in_recovery index_state "
		  "compression_state used_physical_blocks total_physical_blocks");
	want_str("device", "/dev/dm-1");
	want_str("operating_mode", "normal");
	want_none("in_recovery");
	want_str("index_state", "online");
	want_str("compression_state", "offline");
	want_u64("used_physical_blocks", 73590);
	want_u64("total_physical_blocks", 262144);
	parse_ok("0 2097152 vdo /dev/dm-1 recovering recovering opening online 1 2");
	want_str("in_recovery", "recovering");
}

Test(dm_status, vdo_malformed)
{
	parse_bad("vdo", "/dev/dm-1 normal - online offline 73590", "expected 7 fields, got 6");
	parse_bad("vdo", "/dev/dm-1 normal - online offline 73590 262144 1", "got 8");
	parse_bad("vdo", "/dev/dm-1 normal - online offline many 262144", "used_physical_blocks");
}

/* --- unknown targets, lines, error handling ------------------------------------ */

Test(dm_status, unknown_target_args)
{
	parse_ok("0 100 raid raid1 2 AA 100/100 idle 0 0 -");
	want_keys("start length target args");
	want_str("args", "raid1 2 AA 100/100 idle 0 0 -");
	parse_ok("0 100 multipath  2 0  0 0 \n");
	want_str("args", "2 0 0 0");
	parse_ok("0 100 verity ");
	want_keys("start length target args");
	want_str("args", "");
	parse_ok("0 100 Linear Fail");
	want_str("args", "Fail");
	cr_assert(!dm_status_target_known("raid"));
	cr_assert(!dm_status_target_known(NULL));
	cr_assert(!dm_status_target_known(""));
}

Test(dm_status, words_only_for_their_targets)
{
	parse_bad("integrity", "Error", "expected 3 fields");
	parse_bad("era", "Fail", "expected 4 fields");
	parse_bad("thin-pool", "-", "expected 9 fields");
	parse_bad("cache", "Invalid", "metadata_block_size");
}

Test(dm_status, line_malformed)
{
	const char *bad[][2] = {
		{ "", "missing start" },
		{ "   \n", "missing start" },
		{ "0", "missing length" },
		{ "0 100", "missing target type" },
		{ "x 100 linear", "start: 'x' is not a number" },
		{ "0 -1 linear", "length: '-1' is not a number" },
		{ "0 99999999999999999999 linear", "length" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		cr_assert_eq(dm_status_parse_line(bad[i][0], &b, why, sizeof(why)), -EINVAL, "'%s'", bad[i][0]);
		cr_assert_eq(b.n, 0, "'%s' left keys", bad[i][0]);
		cr_assert(strstr(why, bad[i][1]), "'%s': reason '%s' lacks '%s'", bad[i][0], why, bad[i][1]);
		cr_assert_eq(strncmp(why, "status line: ", 13), 0, "%s", why);
	}
	cr_assert_eq(dm_status_parse_line("0 8 thin 1", &b, why, sizeof(why)), -EINVAL);
	cr_assert_eq(b.n, 0, "a bad thin line left start/length/target behind");
	cr_assert_eq(dm_status_parse_line(NULL, &b, why, sizeof(why)), -EINVAL);
}

Test(dm_status, failure_keeps_callers_keys)
{
	cr_assert_eq(kv_add_str(&b, "name", "pool"), 0);
	cr_assert_eq(kv_add_u64(&b, "start", 0), 0);
	cr_assert_eq(dm_status_parse_line("0 8 cache 8 1/2 64 0/10 0 0 0 0 0 0 0 1 writeback 2 "
					  "migration_threshold 9 smq 0 rw bogus", &b, why, sizeof(why)),
		     -EINVAL);
	cr_assert_eq(b.n, 2);
	want_str("name", "pool");
	want_u64("start", 0);
}

Test(dm_status, no_reason_buffer)
{
	cr_assert_eq(dm_status_parse("thin", "x", &b, NULL, 0), -EINVAL);
	cr_assert_eq(dm_status_parse("thin", "x", &b, why, 0), -EINVAL);
	cr_assert_eq(dm_status_parse_line("x", &b, NULL, 0), -EINVAL);
	char tiny[4] = "abc";
	cr_assert_eq(dm_status_parse("thin-pool", "1", &b, tiny, sizeof(tiny)), -EINVAL);
	cr_assert_str_eq(tiny, "thi");
	cr_assert_eq(dm_status_parse(NULL, "1", &b, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "no target type"));
	cr_assert_eq(b.n, 0);
}

Test(dm_status, renders_none_and_bool)
{
	struct kv_doc d = { 0 };
	struct kv_block *blk = kv_doc_add_block(&d);
	cr_assert_not_null(blk);
	cr_assert_eq(dm_status_parse_line("0 524288 thin-pool 2 420/4096 80/4096 - rw discard_passdown "
					  "queue_if_no_space - 1024 ", blk, why, sizeof(why)), 0, "%s", why);
	char *text = kv_render_text(&d);
	cr_assert_not_null(text);
	cr_assert_str_eq(text, "start=0\nlength=524288\ntarget=thin-pool\ntransaction_id=2\n"
			       "used_metadata_blocks=420\ntotal_metadata_blocks=4096\n"
			       "used_data_blocks=80\ntotal_data_blocks=4096\nheld_metadata_root=-\n"
			       "mode=rw\ndiscard_passdown=discard_passdown\n"
			       "no_space_policy=queue_if_no_space\nneeds_check=0\n"
			       "metadata_low_watermark=1024\n");
	char *json = kv_render_json(&d, false);
	cr_assert_not_null(json);
	cr_assert(strstr(json, "\"held_metadata_root\": null"), "%s", json);
	cr_assert(strstr(json, "\"needs_check\": false"), "%s", json);
	free(text);
	free(json);
	kv_doc_free(&d);
}

/* --- example files ------------------------------------------------------------- */

struct file_check {
	size_t lines;
	size_t failures;
	char first[512];
};

/* One line as `dmsetup status` prints it; `dmsetup status` without a name
 * prefixes each line with "NAME: ", which is skipped. */
static void check_status_line(const char *path, size_t lineno, const char *line, struct file_check *fc)
{
	const char *colon = strchr(line, ':');
	const char *space = strchr(line, ' ');
	if (colon && space && colon + 1 == space)
		line = space + 1;
	struct kv_block blk = { 0 };
	char reason[256] = "";
	int r = dm_status_parse_line(line, &blk, reason, sizeof(reason));
	const struct kv *target = kv_get(&blk, "target");
	if (!r && target && dm_status_target_known(target->str) && kv_get(&blk, "args")) {
		r = -EINVAL;
		snprintf(reason, sizeof(reason), "known target %s reduced to args=", target->str);
	}
	fc->lines++;
	if (r && !fc->failures++)
		snprintf(fc->first, sizeof(fc->first), "%s:%zu: %s", path, lineno, reason);
	kv_block_free(&blk);
}

static void status_line_cb(const char *path, size_t lineno, char *line, void *arg)
{
	check_status_line(path, lineno, line, arg);
}

static void check_status_file(const char *path, struct file_check *fc)
{
	for_each_data_line(path, status_line_cb, fc);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

Test(dm_status_files, documented_examples)
{
	struct file_check fc = { 0 };
	check_status_file(DATA_DIR "/dm-status/documented.txt", &fc);
	cr_assert_geq(fc.lines, 17, "only %zu documented lines found", fc.lines);
	cr_assert_eq(fc.failures, 0, "%zu failures, first: %s", fc.failures, fc.first);
}

/* Real lines recorded from a kernel (tests/unit/data/dm-status/README):
 * every one must parse, and known targets must not fall back to args=. */
Test(dm_status_files, recorded_status_files)
{
	DIR *d = opendir(DATA_DIR "/dm-status");
	cr_assert_not_null(d, "cannot open " DATA_DIR "/dm-status: %s", strerror(errno));
	struct file_check fc = { 0 };
	size_t files = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (!has_suffix(e->d_name, ".status"))
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/dm-status/%s", DATA_DIR, e->d_name);
		check_status_file(path, &fc);
		files++;
	}
	closedir(d);
	cr_log_info("%zu recorded .status files, %zu lines", files, fc.lines);
	cr_assert_eq(fc.failures, 0, "%zu of %zu recorded lines failed, first: %s", fc.failures, fc.lines,
		     fc.first);
}

/* The checker above must be able to fail, or the recorded-file test proves
 * nothing when files are present. */
Test(dm_status_files, checker_catches_bad_lines)
{
	char path[] = "/tmp/test_dm_status_XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	const char text[] = "# comment\n"
			    "\n"
			    "0 2097152 thin 8192 8191\n"
			    "pool: 0 524288 thin-pool Fail\n"
			    "0 100 raid raid1 2 AA 100/100 idle 0 0 -\n"
			    "0 524288 thin-pool 2 420/4096\n"
			    "0 8 linear unexpected\n";
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	struct file_check fc = { 0 };
	check_status_file(path, &fc);
	unlink(path);
	cr_assert_eq(fc.lines, 5);
	cr_assert_eq(fc.failures, 2);
	cr_assert(strstr(fc.first, ":6: thin-pool: expected 9 fields, got 2"), "%s", fc.first);
}
