#!/bin/bash
# Tests the VM runner itself, from the host: exit status and environment pass
# through, the guest's devices (guest-check.sh), the timeout, and that nothing
# is left behind on the host. Prints "N passed, N failed".
#   tests/vm/selftest.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
readonly RUN=tests/vm/run-in-vm.sh
PASSED=0
FAILED=0
MARKER=

ok() { PASSED=$((PASSED + 1)); echo "selftest: ok: $*"; }
bad() { FAILED=$((FAILED + 1)); echo "selftest: FAIL: $*"; }

expect_status() { # expect_status WANT DESCRIPTION COMMAND...
	local want=$1 what=$2 rc=0
	shift 2
	"$@" || rc=$?
	if ((rc == want)); then ok "$what"; else bad "$what: exit status $rc, want $want"; fi
}

cleanup() {
	[[ -n $MARKER ]] && rm -f "$MARKER"
	[[ -n ${TMPCHECKOUT:-} ]] && rm -rf "$TMPCHECKOUT"
	return 0
}
trap cleanup EXIT

run_dirs() { ls -d /var/tmp/stsfs-vm.* /var/tmp/stsfs-guest-check.* 2>/dev/null || true; }

# The kernel keeps 15 characters of a process name: qemu-system-x86_64
# is "qemu-system-x86" (pgrep -x of the full name never matches).
qemu_pids() { pgrep -x qemu-system-x86 | sort || true; }

main() {
	local qemu_before loops_before dirs_before start ms
	qemu_before=$(qemu_pids)
	loops_before=$(losetup -l -n 2>/dev/null || true)
	dirs_before=$(run_dirs)
	MARKER=$(mktemp /tmp/stsfs-vm-selftest.XXXXXX)

	start=$(date +%s%N)
	expect_status 0 "true exits 0" "$RUN" true
	ms=$((($(date +%s%N) - start) / 1000000))
	printf 'selftest: run-in-vm.sh true took %d.%03d s\n' $((ms / 1000)) $((ms % 1000))

	expect_status 42 "exit status 42 is passed back" "$RUN" bash -c 'exit 42'
	expect_status 0 "working directory, PATH and STSFS_*/CI variables are passed" \
		env STSFS_SELFTEST='a b$c' CI=selftest "$RUN" --env EXTRA=x bash -c \
		'[[ $PWD == '"$PWD"' && $PATH == "'"$PATH"'" && $STSFS_SELFTEST == "a b\$c" && $CI == selftest && $EXTRA == x ]]'
	expect_status 0 "guest-check.sh passes in the guest" "$RUN" tests/vm/guest-check.sh "$MARKER"
	expect_status 124 "--timeout kills the guest (exit 124)" "$RUN" --timeout 8 sleep 60
	expect_status 125 "/tmp itself as the working directory is refused" bash -c "cd /tmp && '$PWD/$RUN' true"
	expect_status 77 "--skip-ok turns 'cannot run' into 77" bash -c "cd /tmp && '$PWD/$RUN' --skip-ok true"
	TMPCHECKOUT=$(mktemp -d /tmp/stsfs-vm-selftest-checkout.XXXXXX)
	mkdir "$TMPCHECKOUT/sub" && echo here >"$TMPCHECKOUT/sub/file"
	expect_status 0 "a checkout below /tmp is carried into the guest" bash -c \
		"cd '$TMPCHECKOUT/sub' && '$PWD/$RUN' bash -c '[[ \$(cat file) == here && \$PWD == $TMPCHECKOUT/sub ]] && echo back >file2'"
	[[ $(cat "$TMPCHECKOUT/sub/file2" 2>/dev/null) == back ]] && ok "what the guest wrote there is on the host" ||
		bad "the guest's write below /tmp did not reach the host"
	rm -rf "$TMPCHECKOUT"

	if [[ $(qemu_pids) == "$qemu_before" ]]; then ok "no QEMU left running"; else bad "QEMU processes left: $(qemu_pids)"; fi
	if [[ $(losetup -l -n 2>/dev/null || true) == "$loops_before" ]]; then ok "no host loop devices changed"; else bad "host loop devices changed"; fi
	if [[ $(run_dirs) == "$dirs_before" ]]; then ok "no files left in /var/tmp"; else bad "left in /var/tmp: $(run_dirs)"; fi

	echo "$PASSED passed, $FAILED failed"
	((FAILED == 0))
}

main "$@"
