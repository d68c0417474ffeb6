#!/usr/bin/env bash
# README.md's "A tour of loop/" exactly as written: its ```sh blocks, taken
# from the README (never copied here), each run with bash -e -o pipefail
# from a fresh shell on a terminal against a fresh stsfs at /sts (in a private
# mount namespace; /sts is made only if missing and then removed again), and
# what the README promises checked in the transcript. Without device-mapper
# the "dm/ in one breath" block is run too, and must stop where the README
# says: at activation, with ENODEV and a reason. The dm/ block proper runs in
# the VM: tests/vm/test_readme.sh.
. "$(dirname "$0")/../lib-readme.sh"
. "$(dirname "$0")/lib.sh"

readme_start || exit 1

t "README: the blocks of 'A tour of loop/'"
run_section "A tour of loop/" tour
out=$WORK/tour.out
block_ran "$out" '^loop[0-9]+$' "name is loopN"
block_ran "$out" "^back_file=$IMG/disk\.img$" "status has back_file, the owned image"
block_ran "$out" "^\"$IMG/disk\.img\"$" "status.json's back_file"
block_ran "$out" '^1$' "partitions/ lists partition 1"
block_ran "$out" '^1048576$' "partitions/1/start in bytes"
block_ran "$out" '^TYPE=ext4$' "probe says ext4"
block_ran "$out" "loop/disk/size: $(errtext EINVAL)|write error: $(errtext EINVAL)" "shrinking fails with EINVAL"
block_ran "$out" 'shrink' "the error example prints the reason"
check "no prompt on the terminal" bash -c "! grep -q 'Proceed anyway' '$out'"
check "loop/disk is gone" test ! -e /sts/loop/disk
eq "$(ls /sts/loop 2>&1 | grep -vx -e error -e "loop[0-9]*")" "" "loop/ empty after the tour (others' loop devices aside)"
eq "$(ls "$IMG")" "" "the owned image is deleted"

t "README: a loop device with 4096-byte sectors, as the tour's comment says"
mkdir /sts/loop/s4k && put /sts/loop/s4k/size 64M && put /sts/loop/s4k/sector_size 4096 &&
	put /sts/loop/s4k/active 1
check "512-byte assumption: sfdisk on data finds no partition for the kernel" \
	sh -c "printf 'label: gpt\n,,L\n' | sfdisk -q /sts/loop/s4k/data >/dev/null 2>&1; ! test -e /sts/loop/s4k/partitions/1"
dd if=/dev/zero of=/sts/loop/s4k/data bs=1M count=1 conv=notrunc status=none
if sfdisk --help | grep -q -- --sector-size; then
	check "sfdisk --sector-size 4096" sh -c "printf 'label: gpt\n,,L\n' | sfdisk -q --sector-size 4096 /sts/loop/s4k/data"
else
	check "fdisk -b 4096 (sfdisk $(sfdisk --version | awk '{print $NF}') has no --sector-size)" \
		sh -c "printf 'g\nn\n\n\n\nw\n' | fdisk -b 4096 /sts/loop/s4k/data >/dev/null"
fi
check "partitions/1 found" test -d /sts/loop/s4k/partitions/1
eq "$(cat /sts/loop/s4k/partitions/1/start 2>/dev/null)" "1048576" "partition 1 at 1 MiB"
check "rmdir loop/s4k" rmdir /sts/loop/s4k

if dmsetup version >/dev/null 2>&1; then
	echo "$(basename "$0"): this kernel has device-mapper; the dm/ block runs in tests/vm/test_readme.sh"
else
	t "README: 'dm/ in one breath' without device-mapper"
	n=$(readme_blocks "dm/ in one breath" dm)
	check "the section has sh blocks" test "$n" -ge 1
	if ! run_block "$WORK/dm-1.sh" "$WORK/dm-1.out" quiet; then pass; else fail "the dm/ block ran without device-mapper"; fi
	block_ran "$WORK/dm-1.out" "dm/lin/active: $(errtext ENODEV)|write error: $(errtext ENODEV)" "activation fails with ENODEV"
	check "mkdir dm/lin worked" test -d /sts/dm/lin
	check "the table was staged" test -n "$(cat /sts/dm/lin/table)"
	check "dm/lin/error gives a reason" test -n "$(cat /sts/dm/lin/error)"
	check "rmdir dm/lin" rmdir /sts/dm/lin
	check "rmdir loop/base" rmdir /sts/loop/base
fi
eq "$(ls /sts/dm 2>&1 | grep -vx error)" "" "dm/ empty"
eq "$(ls /sts/loop 2>&1 | grep -vx -e error -e "loop[0-9]*")" "" "loop/ empty (others' loop devices aside)"
finish
