#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests, the
# loop/ suite on this machine's real loop devices, the device-mapper
# suites inside a QEMU guest running Debian's own kernel, and the daemon
# under ASan+UBSan and the fuzz targets (scripts/sanitize.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test || exit 1
scripts/build.sh || exit 1

passed=0
failed=0
run() { # run NAME COMMAND...
	echo "== $1"
	if "${@:2}"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "== $1 FAILED"; fi
}

run "unit tests" meson test -C build --print-errorlogs
for t in tests/integration/test_*.sh; do
	run "$t" bash "$t"
done
run "VM runner self-test" tests/vm/selftest.sh
for t in tests/vm/test_*.sh; do
	[ -e "$t" ] || continue
	run "$t (in the VM)" tests/vm/run-in-vm.sh -- bash "$t"
done
run "bench smoke (bench/run.sh --tiny; never asserts on timings)" bench/run.sh --tiny
run "sanitizers: loop/, dm/ and thin/ suites under ASan+UBSan, fuzz targets 60 s each" scripts/sanitize.sh
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
