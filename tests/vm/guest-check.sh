#!/bin/bash
# Checks, inside the test VM, that the guest is usable for stsfs tests:
# device-mapper targets, loop devices on the host's disk, /dev/fuse, its own
# /tmp. Run by tests/vm/selftest.sh as
#   tests/vm/run-in-vm.sh tests/vm/guest-check.sh [HOST_TMP_MARKER]
# HOST_TMP_MARKER: a file the host made in its /tmp (must NOT be visible here).
set -euo pipefail

PASSED=0
FAILED=0
WORK=
LOOP=

ok() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
bad() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

cleanup() {
	dmsetup remove stsfs-guest-check 2>/dev/null || true
	[[ -n $LOOP ]] && losetup -d "$LOOP" 2>/dev/null
	[[ -n $WORK ]] && rm -rf "$WORK"
	return 0
}
trap cleanup EXIT

check_basics() {
	check "STSFS_IN_VM is 1" test "${STSFS_IN_VM:-}" = 1
	check "Debian kernel ($(uname -r))" grep -q '^[0-9.]*-[0-9]*-amd64$' <<<"$(uname -r)"
	check "/dev/fuse is a character device" test -c /dev/fuse
	check "/dev/mapper/control exists" test -c /dev/mapper/control
	check "/dev/loop-control exists" test -c /dev/loop-control
	check "/tmp is the guest's own tmpfs" test "$(findmnt -n -o FSTYPE /tmp)" = tmpfs
	if [[ -n ${1:-} ]]; then
		check "the host's /tmp is not visible" test ! -e "$1"
	fi
}

check_targets() {
	local t targets
	targets=$(dmsetup targets | awk '{ print $1 }')
	for t in linear striped zero error delay flakey thin-pool thin cache era writecache \
		integrity crypt snapshot snapshot-origin snapshot-merge mirror unstriped; do
		check "dmsetup targets lists $t" grep -qx "$t" <<<"$targets"
	done
}

check_loop_and_dm() {
	WORK=$(mktemp -d /var/tmp/stsfs-guest-check.XXXXXX)
	truncate -s 16M "$WORK/disk.img"
	LOOP=$(losetup -f --show "$WORK/disk.img")
	check "losetup attached $WORK/disk.img" test -b "$LOOP"
	check "loop device is 16 MiB" test "$(blockdev --getsize64 "$LOOP")" = 16777216
	printf 'stsfs' | dd of="$LOOP" bs=512 seek=100 conv=fsync status=none
	check "write through the loop device reaches the host file" \
		test "$(dd if="$WORK/disk.img" bs=512 skip=100 count=1 status=none | head -c 5)" = stsfs

	dmsetup create stsfs-guest-check --table "0 32768 linear $LOOP 0"
	local devno
	devno=$(dmsetup info -c --noheadings -o major,minor --separator : stsfs-guest-check)
	check "dm device node /dev/dm-N exists (devtmpfs)" test -b "/dev/dm-${devno#*:}"
	check "dmsetup status of the linear device" test "$(dmsetup status stsfs-guest-check)" = "0 32768 linear "
	dmsetup mknodes stsfs-guest-check
	check "dmsetup mknodes makes /dev/mapper/NAME" test -b /dev/mapper/stsfs-guest-check
	dmsetup remove stsfs-guest-check

	losetup -d "$LOOP"
	check "loop device detached" test -z "$(losetup -j "$WORK/disk.img")"
	LOOP=
	rm -rf "$WORK"
	WORK=
}

check_basics "$@"
check_targets
check_loop_and_dm
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
