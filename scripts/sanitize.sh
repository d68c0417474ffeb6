#!/usr/bin/env bash
# The daemon under AddressSanitizer and UndefinedBehaviorSanitizer: the
# loop/, restart and stress suites on this machine and the dm/ and thin/ suites in the VM (each
# suite fails on a sanitizer report in the daemon's log), then every
# libFuzzer target for FUZZ_SECONDS (default 60) from a copy of its seed
# corpus. Builds go to build-asan/ and build-fuzz/.
#   scripts/sanitize.sh [suites|fuzz]   (default: both)
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
seconds=${FUZZ_SECONDS:-60}
failed=0
step() { # step NAME COMMAND...
	echo "== $1"
	"${@:2}" || { failed=$((failed + 1)); echo "== $1 FAILED"; }
}

if [ "$what" != fuzz ]; then
	[ -f build-asan/build.ninja ] ||
		meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || exit 1
	ninja -C build-asan >/dev/null || exit 1
	asan=$PWD/build-asan/stsfs
	step "loop/ suite, ASan+UBSan" env STSFS="$asan" bash tests/integration/test_loop.sh
	# The takeover code under the sanitizers: kills in both ways of
	# answering requests in flight (the replay is 6.1's way).
	step "restart suite, ASan+UBSan" env STSFS="$asan" bash tests/integration/test_restart.sh
	# replay-answered: every thread's last answer is left marked, as a kill
	# right after each answer would leave it (it once ran again, into freed
	# nodes).
	step "stress suite (replayed requests, kept answers), ASan+UBSan" env STSFS="$asan" \
		STSFS_TAKEOVER=replay-answered bash tests/integration/test_stress.sh
	for t in test_dm test_thin; do
		step "$t (in the VM), ASan+UBSan" tests/vm/run-in-vm.sh --timeout 900 --env STSFS="$asan" -- bash "tests/vm/$t.sh"
	done
fi

if [ "$what" != suites ]; then
	[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true >/dev/null || exit 1
	ninja -C build-fuzz >/dev/null || exit 1
	work=$(mktemp -d /var/tmp/stsfs-fuzz.XXXXXX)
	for name in dm_status value dmpd; do
		cp -r "tests/fuzz/corpus/$name" "$work/$name"
		dict=()
		[ -f "tests/fuzz/$name.dict" ] && dict=("-dict=tests/fuzz/$name.dict")
		echo "== fuzz_$name for ${seconds} s"
		if ! build-fuzz/tests/fuzz/"fuzz_$name" "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 \
			-artifact_prefix="$work/$name-" "$work/$name" >"$work/$name.log" 2>&1; then
			failed=$((failed + 1))
			echo "== fuzz_$name FAILED: $(ls "$work" | grep "^$name-" | tr '\n' ' ')"
			tail -n 40 "$work/$name.log"
		fi
		grep -E '^stat::number_of_executed_units' "$work/$name.log"
	done
	rm -rf "$work"
fi
echo "sanitize: $failed failed"
[ "$failed" -eq 0 ]
