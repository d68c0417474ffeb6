#!/usr/bin/env bash
# README.md's "dm/ in one breath" exactly as written, against a real
# device-mapper (run inside the test VM:
# tests/vm/run-in-vm.sh -- bash tests/vm/test_readme.sh). Its ```sh blocks,
# taken from the README (never copied here), each run with bash -e -o pipefail
# from a fresh shell on a terminal against a fresh stsfs at /sts (in a private
# mount namespace; /sts is made only if missing and then removed again), and
# what the README promises checked in the transcript and the kernel.
. "$(dirname "$0")/../lib-readme.sh"
. "$(dirname "$0")/../integration/lib.sh"

if ! dmsetup version >/dev/null 2>&1; then
	echo "$(basename "$0"): no device-mapper in this kernel; run it in the VM"
	exit 1
fi
# The kernel's own devices (none in the VM); anything else left at exit is
# the block's and is removed.
DM_BEFORE=$(dmsetup ls 2>/dev/null | awk '$1 != "No" { print $1 }')

readme_start || exit 1

t "README: the blocks of 'dm/ in one breath'"
run_section "dm/ in one breath" dm
out=$WORK/dm.out
block_ran "$out" '^target=linear$' "status of the linear device"
block_ran "$out" '^state=ACTIVE$' "info says ACTIVE"
block_ran "$out" '^[0-9]+:[0-9]+ loop[0-9]+$' "deps names the loop device"
block_ran "$out" '^result=ok$' "metadata/check says ok"
block_ran "$out" '^dev=0$' "metadata/ls lists thin 0"
block_ran "$out" '^(no event within 5 s|[0-9]+)$' "the wait ends (timeout, or an event_nr)"
check "no prompt on the terminal" bash -c "! grep -q 'Proceed anyway' '$out'"

t "the tour leaves nothing behind"
eq "$(ls /sts/dm 2>&1 | grep -vx error)" "" "dm/ empty"
eq "$(ls /sts/loop 2>&1 | grep -vx error)" "" "loop/ empty"
eq "$(new_dm | tr '\n' ' ')" "" "no dm device left"
finish
