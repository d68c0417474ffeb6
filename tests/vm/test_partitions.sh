#!/usr/bin/env bash
# partitions/N/data on a kernel that makes partition devices for loop
# devices (Debian's 6.1 in the test VM; the development machines' kernel
# makes none, so tests/integration/test_containers.sh cannot check it):
# a GPT written through data, partscan, a filesystem written into
# partitions/1/data and seen by the kernel and by probe.
# Inside the test VM: tests/vm/run-in-vm.sh -- bash tests/vm/test_partitions.sh
. "$(dirname "$0")/../integration/lib.sh"

start_daemon || exit 1
L=$MNT/loop
P=$L/img/partitions

t "a GPT written through data, then partscan"
check "loop/img" mkdir "$L/img"
check "img size" put "$L/img/size" 64M
check "img active" put "$L/img/active" 1
check "sfdisk onto data" bash -c "printf 'label: gpt\n,16M\n,16M\n' | sfdisk -q --no-reread --no-tell-kernel '$L/img/data' >/dev/null"
check "no partitions/1/data before partscan" test ! -e "$P/1/data"
check "partscan 1" put "$L/img/partscan" 1
dev=$(cat "$L/img/name")
for _ in $(seq 50); do [ -e "/sys/block/$dev/${dev}p1" ] && break; sleep 0.1; done
check "the kernel made ${dev}p1" test -e "/sys/block/$dev/${dev}p1"
check "partitions/1/data" test -e "$P/1/data"
eq "$(stat -c %s "$P/1/data")" "$((16 * 1024 * 1024))" "its size is the partition's"

t "a filesystem through partitions/1/data"
check "mkfs.ext4 onto partitions/1/data" mkfs.ext4 -q -F -L part1 "$P/1/data"
eq "$(blkid -o value -s TYPE "/dev/${dev}p1")" "ext4" "the kernel's partition device holds it"
contains "$(cat "$P/1/probe")" "TYPE=ext4" "partitions/1/probe"
eq "$(blkid -o value -s TYPE "/dev/${dev}p2" 2>/dev/null)" "" "partition 2 untouched"

t "a read-only device's partitions refuse writes"
check "img inactive" put "$L/img/active" 0
check "read_only 1" put "$L/img/read_only" 1
check "img active read-only" put "$L/img/active" 1
dev=$(cat "$L/img/name")
for _ in $(seq 50); do [ -e "/sys/block/$dev/${dev}p1" ] && break; sleep 0.1; done
eq "$(stat -c %A "$P/1/data" 2>/dev/null | cut -c1-4)" "-r--" "partitions/1/data is r--"
expect_err EROFS bash -c "echo x > '$P/1/data'"
check "img inactive" put "$L/img/active" 0
check "rmdir img" rmdir "$L/img"
finish
