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
# Each suite has a time limit, so one that hangs fails alone and the rest
# still run; what it left behind is cleared (scripts/reap-tests.sh).
# The VM's own limit (run-in-vm.sh --timeout) stops a guest that hangs.
export STSFS_VM_TIMEOUT=${STSFS_VM_TIMEOUT:-1200}
run() { # run NAME LIMIT_SECONDS COMMAND...
	local start=$SECONDS rc
	echo "== $1"
	timeout --kill-after=30 "$2" "${@:3}"
	rc=$?
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		[ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && echo "== $1 TIMED OUT after $2 s"
		echo "== $1 FAILED"
		scripts/reap-tests.sh
	fi
	echo "== $1: $((SECONDS - start)) s"
}

run "unit tests" 600 meson test -C build --print-errorlogs
for t in tests/integration/test_*.sh; do
	run "$t" 900 bash "$t"
done
run "VM runner self-test" 900 tests/vm/selftest.sh
for t in tests/vm/test_*.sh; do
	[ -e "$t" ] || continue
	run "$t (in the VM)" $((STSFS_VM_TIMEOUT + 60)) tests/vm/run-in-vm.sh -- bash "$t"
done
run "bench smoke (bench/run.sh --tiny; never asserts on timings)" 900 bench/run.sh --tiny
run "sanitizers: loop/, dm/ and thin/ suites under ASan+UBSan, fuzz targets 60 s each" 2400 scripts/sanitize.sh
# What every suite and bench must leave: no mount of theirs (a daemon's,
# or the shared self-bind of a mount point's parent), no loop device on
# their files.
leftovers() {
	awk '$2 ~ /^\/var\/tmp\/stsfs-(test|bench|profile|fuzz)\./ { print "mount " $2 }' /proc/mounts
	losetup -nO NAME,BACK-FILE 2>/dev/null | awk '$2 ~ /^\/var\/tmp\/stsfs-(test|bench|profile)\./ { print "loop " $1 " " $2 }'
}
run "nothing left behind by the suites" 60 bash -c "$(declare -f leftovers); out=\$(leftovers); [ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }"
echo "suites: $passed passed, $failed failed in $SECONDS s"
[ "$failed" -eq 0 ]
