#!/usr/bin/env bash
# dm/ against a real device-mapper (run inside the test VM:
# tests/vm/run-in-vm.sh -- bash tests/vm/test_dm.sh). Devices are built on
# loop/ objects and checked against dmsetup's own view.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib-dm.sh"

KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

trim() { sed 's/ *$//'; }
rd() { trim <"$1"; } # file contents without trailing blanks, as dmsetup

dms_status() { dmsetup status "$1" | trim; }
dms_table() { dmsetup table "$1" | trim; }
# hdgeo DEV: what HDIO_GETGEO reports, as "CYLINDERS HEADS SECTORS START"
# (struct hd_geometry: two bytes, a short, padding, an unsigned long).
hdgeo() {
	perl -e 'open(my $f, "<", $ARGV[0]) or die "$ARGV[0]: $!\n"; my $g = "\0" x 16;
		ioctl($f, 0x0301, $g) or die "HDIO_GETGEO: $!\n";
		my ($h, $s, $c, $st) = unpack("C C S x4 Q", $g); print "$c $h $s $st\n"' "$1"
}

PW=$(dirname "$STSFS")/tests/tools/pollwait
# poll_bg FILE OUT: pollwait in the background (pid in $!), returning once
# it has read FILE; from then on an event is not missed.
poll_bg() {
	rm -f "$2.armed"
	timeout -s KILL 90 "$PW" "$1" 80000 >"$2" 2>"$2.armed" &
	local pid=$! i
	for i in $(seq 100); do
		grep -q armed "$2.armed" 2>/dev/null && break
		sleep 0.1
	done
	return 0
}

t "loop objects for the tables"
for n in a b c o cow tm td pt pm pd; do
	case $n in o | cow | tm | pt | pm) size=16M ;; *) size=64M ;; esac
	check "loop/$n" mkloop "$n" "$size"
done
A=$(cat "$L/a/dev")
B=$(cat "$L/b/dev")
AN=$(cat "$L/a/name") # loop/a as the kernel names it in its log
BN=$(cat "$L/b/name")

t "linear on loop/a"
check "mkdir dm/lin" mkdir "$D/lin"
expect_err EEXIST mkdir "$D/lin"
put_fails EINVAL "$D/lin/active" 1 "write a table first"
check "stage table" put "$D/lin/table" "0 131072 linear loop/a 0"
eq "$(cat "$D/lin/table")" "0 131072 linear loop/a 0" "staged table keeps the reference"
check "activate" put "$D/lin/active" 1
eq "$(cat "$D/lin/active")" "1" "active"
eq "$(cat "$D/lin/table")" "0 131072 linear $A 0" "live table shows MAJ:MIN"
eq "$(cat "$D/lin/table")" "$(dms_table lin)" "table as dmsetup table"
eq "$(cat "$D/lin/status.raw")" "$(dms_status lin)" "status.raw as dmsetup status"
eq "$(jq -r '.[0].target' "$D/lin/status.json")" "linear" "status.json target"
eq "$(jq -r '.[0].length' "$D/lin/status.json")" "131072" "status.json length"
eq "$(cat "$D/lin/size")" "67108864" "size in bytes"
eq "$(jq -r .state "$D/lin/info.json")" "ACTIVE" "info state"
eq "$(jq -r .dev "$D/lin/info.json")" "$(cat "$D/lin/dev")" "info dev"
eq "$(jq -r .dev "$D/lin/info.json")" "$(dmsetup info -c --noheadings -o major,minor --separator : lin | tr -d ' ')" "dev as dmsetup"
contains "$(cat "$D/lin/deps")" "$A loop" "deps names loop/a"
check "device node" test -b "$(cat "$D/lin/device")"
check "write through data" dd if=/dev/urandom of="$WORK/blk" bs=4096 count=4 status=none
check "dd into data" dd if="$WORK/blk" of="$D/lin/data" bs=4096 seek=3 conv=notrunc status=none
check "bytes reached loop/a" cmp -n 16384 "$WORK/blk" <(dd if="$L/a/data" bs=4096 skip=3 count=4 status=none)

t "other targets"
check "striped" mkdm str "0 262144 striped 2 128 loop/b 0 loop/c 0"
check "zero" mkdm z "0 2048 zero"
check "error" mkdm err "0 2048 error"
check "delay" mkdm dly "0 131072 delay loop/a 0 10"
check "flakey" mkdm flk "0 131072 flakey loop/a 0 5 0"
check "crypt" mkdm cr "0 131072 crypt aes-xts-plain64 $KEY 0 loop/b 0"
check "snapshot" mkdm snap "0 32768 snapshot loop/o loop/cow P 8"
for n in str z err dly flk cr snap; do
	eq "$(rd "$D/$n/status.raw")" "$(dms_status "$n")" "$n status.raw as dmsetup"
	eq "$(rd "$D/$n/table")" "$(dms_table "$n")" "$n table as dmsetup"
	check "$n status.json is JSON" json_ok "$D/$n/status.json"
	eq "$(jq -r '.[0].target' "$D/$n/status.json")" "$(dmsetup status "$n" | awk '{print $3}')" "$n parsed target"
done
eq "$(grep -c . "$D/str/status.raw")" "1" "striped has one line"
eq "$(jq -r '.[0].stripes' "$D/str/status.json")" "2" "striped stripes"
eq "$(jq -r '.[0].health' "$D/str/status.json")" "$(dmsetup status str | awk '{print $NF}')" "striped health"
eq "$(jq -r '.[0].reads' "$D/dly/status.json")" "$(dmsetup status dly | awk '{print $4}')" "delay reads"
snap_used=$(dmsetup status snap | awk '{print $4}')
eq "$(jq -r '.[0].sectors_allocated' "$D/snap/status.json")/$(jq -r '.[0].total_sectors' "$D/snap/status.json")" "$snap_used" "snapshot usage"
eq "$(jq -r '.[0].metadata_sectors' "$D/snap/status.json")" "$(dmsetup status snap | awk '{print $5}')" "snapshot metadata"
contains "$(cat "$D/cr/table")" "aes-xts-plain64 $(printf '0%.0s' $(seq 64)) 0 $B 0" "crypt key masked"
check "crypt key not shown" bash -c "! grep -q $KEY '$D/cr/table'"
eq "$(cat "$D/str/size")" "134217728" "striped size"
eq "$(cat "$D/err/size")" "1048576" "error size"
check "error target fails reads" bash -c "! dd if='$D/err/data' of=/dev/null bs=512 count=1 status=none 2>/dev/null"
eq "$(dd if="$D/z/data" bs=1k count=1 status=none | tr -d '\0' | wc -c)" "0" "zero reads zeros"

t "probe and partitions of a dm device"
check "dm/part on loop/pt" mkdm part "0 32768 linear loop/pt 0"
check "sfdisk on data" sh -c "printf 'label: gpt\nsize=4M, type=L, name=first\ntype=L, name=second\n' | sfdisk -q '$D/part/data'"
eq "$(grep ^PTTYPE= "$D/part/probe")" "PTTYPE=gpt" "probe sees the GPT"
eq "$(grep ^PTTYPE= "$D/part/probe")" "$(blkid -p -o export "$(cat "$D/part/device")" | grep ^PTTYPE=)" "probe as blkid -p"
eq "$(ls "$D/part/partitions" | tr '\n' ' ')" "1 2 " "two partitions"
dump=$(sfdisk -J "$(cat "$D/part/device")")
eq "$(cat "$D/part/partitions/2/start")" "$(($(jq '.partitiontable.partitions[1].start' <<<"$dump") * 512))" "start as sfdisk"
eq "$(cat "$D/part/partitions/2/size")" "$(($(jq '.partitiontable.partitions[1].size' <<<"$dump") * 512))" "size as sfdisk"
eq "$(cat "$D/part/partitions/1/name")" "first" "partition name"
check "format partition 2 through data" mkfs.ext4 -q -F -L dmpart -E offset="$(cat "$D/part/partitions/2/start")" \
	"$D/part/data" "$(($(cat "$D/part/partitions/2/size") / 1024))k"
eq "$(jq -r .TYPE "$D/part/partitions/2/probe.json")" "ext4" "partition probe"
eq "$(grep ^LABEL= "$D/part/partitions/2/probe")" "LABEL=dmpart" "partition label"

t "wipe on a dm device"
# loop/pt is in dm/part's table: the kernel refuses it O_EXCL.
expect_err EBUSY put "$L/pt/wipe" 1
contains "$(cat "$L/pt/error")" "in use" "loop/pt: held by dm/part"
check "wipe partition 2" put "$D/part/partitions/2/wipe" 1
eq "$(cat "$D/part/partitions/2/probe")" "" "partition 2 probe empty after its wipe"
eq "$(jq -r .PTTYPE "$D/part/probe.json")" "gpt" "the table is kept"
check "wipe dm/part" put "$D/part/wipe" 1
eq "$(cat "$D/part/probe")" "" "probe empty after wipe (GPT, backup GPT, PMBR)"
eq "$(wipefs "$(cat "$D/part/device")")" "" "wipefs finds nothing"
# vfat and ext2 at once (see test_loop.sh: mke2fs zeroes vfat's boot
# sector, written back here).
check "mkfs.vfat on dm data" mkfs.vfat "$D/part/data" >/dev/null
dd if="$D/part/data" of="$WORK/vfat-boot" bs=512 count=2 status=none
check "mkfs.ext2 over it" mkfs.ext2 -q -F "$D/part/data"
check "vfat's boot sector back" dd if="$WORK/vfat-boot" of="$D/part/data" bs=512 conv=notrunc status=none
want=$(wipefs -J "$(cat "$D/part/device")" | jq -r '.signatures[] | "\(.type) \(.offset)"' | while read -r ty off; do
	echo "$ty $((off))"
done)
eq "$(jq -r .ambivalent "$D/part/probe.json")" "true" "dm probe ambivalent"
eq "$(jq -r '.signature[] | "\(.type) \(.offset)"' "$D/part/probe.json")" "$want" "dm probe signatures = wipefs"
exec 3<"$D/part/data"
put_fails EBUSY "$D/part/wipe" 1 "data file is open"
exec 3<&-
check "wipe dm/part again" put "$D/part/wipe" 1
eq "$(cat "$D/part/probe")" "" "dm probe empty"
check "rmdir part" rmdir "$D/part"

t "multi-line table and parsed blocks"
check "two-line table" mkdm two "0 1024 zero
1024 1024 error"
eq "$(jq length "$D/two/status.json")" "2" "two status blocks"
eq "$(jq -r '.[1].start' "$D/two/status.json")" "1024" "second block start"
eq "$(grep -c '^$' "$D/two/status")" "1" "blocks separated by one blank line"
eq "$(cat "$D/two/status.raw")" "$(dms_status two)" "two status.raw"
printf '0 1024 error\n1024 1024 zero\n' >"$D/two/table" # bash: one write(2) per line
eq "$(dms_table two | tr '\n' ';')" "0 1024 error;1024 1024 zero;" "line-by-line writes reload the whole table"

t "reload: good and bad tables"
check "reload shorter" put "$D/lin/table" "0 65536 linear loop/a 0"
eq "$(dms_table lin)" "0 65536 linear $A 0" "kernel has the new table"
eq "$(cat "$D/lin/size")" "33554432" "size follows the table"
put_fails EINVAL "$D/lin/table" "0 65536 lineer loop/a 0" "table line 1: unknown target type 'lineer'"
put_fails EINVAL "$D/lin/table" "0 1024 zero
1024 65536 lineer loop/a 0" "table line 2: unknown target type 'lineer'"
put_fails ENOENT "$D/lin/table" "0 65536 linear loop/nope 0" "no loop object loop/nope"
put_fails EINVAL "$D/lin/table" "0 999999999 linear loop/a 0" "too small"
eq "$(reason "$D/lin/error")" "table line 1: $AN too small for target: start=0, len=999999999, dev_size=131072" \
	"reload: the kernel's reason names the line"
put_fails EINVAL "$D/lin/table" "0 65536 linear loop/a 0
65536 999999999 linear loop/b 0" "table line 2: $BN too small for target: start=0, len=999999999, dev_size=131072"
put_fails EINVAL "$D/lin/table" "0 1024 linear loop/a 0
1024 999999999 linear loop/a 1024" "table refused: $AN too small for target: start=1024, len=999999999"
put_fails EINVAL "$D/lin/table" "0 x linear loop/a 0" "table line 1"
eq "$(dms_table lin)" "0 65536 linear $A 0" "live table untouched after bad loads"
eq "$(jq -r .state "$D/lin/info.json")" "ACTIVE" "not left suspended"
eq "$(jq -r .inactive_table "$D/lin/info.json")" "false" "no inactive table left"
put_fails EINVAL "$D/lin/table" "0 1024 linear /dev/null 0" "not a block device"

t "reload from bash builtins: the kernel's refusal fails write(2) itself"
# bash ignores close(2)'s errno: what the kernel refuses when it loads a
# table must fail the write. (What it refuses only at resume, a device too
# small for its target, fails close(2): see docs/dm.md.)
out=$(bash -c "echo '0 65536 linear loop/a' >'$D/lin/table'" 2>&1)
eq "$?" "1" "echo's status ($out)"
contains "$out" "Invalid argument" "echo reports the errno"
contains "$(cat "$D/lin/error")" "table line 1: linear: Invalid argument count" "the kernel's reason"
out=$(bash -c "echo '0 65536 lineer loop/a 0' >'$D/lin/table'" 2>&1)
eq "$?" "1" "an unknown target type fails echo ($out)"
contains "$(cat "$D/lin/error")" "unknown target type 'lineer'" "reason"
out=$(bash -c "printf '0 1024 zero\\n1024 1024 linear loop/a\\n' >'$D/lin/table'" 2>&1)
eq "$?" "1" "printf of a two-line table whose second line the kernel refuses ($out)"
contains "$(cat "$D/lin/error")" "table line 2: linear: Invalid argument count" "reason names line 2"
eq "$(dms_table lin)" "0 65536 linear $A 0" "live table untouched"
eq "$(jq -r .inactive_table "$D/lin/info.json")" "false" "no inactive table left by refused writes"
check "a good table from echo" bash -c "echo '0 32768 linear loop/a 0' >'$D/lin/table'"
eq "$(dms_table lin)" "0 32768 linear $A 0" "reloaded"
eq "$(jq -r .inactive_table "$D/lin/info.json")" "false" "no inactive table after the reload"
check "back to 65536 sectors" put "$D/lin/table" "0 65536 linear loop/a 0"

t "inactive: target types and layout are checked at write(2)"
# No kernel device yet, so nothing to load the table into: stsfs checks
# what it can itself, and an echo from bash (which ignores close's errno)
# gets the refusal.
check "mkdir dm/ina" mkdir "$D/ina"
check "stage a zero table" put "$D/ina/table" "0 2048 zero"
out=$(bash -c "echo '0 100 lineer' >'$D/ina/table'" 2>&1)
eq "$?" "1" "echo of an unknown target type fails at write ($out)"
contains "$out" "write error: Invalid argument" "echo reports EINVAL"
eq "$(reason "$D/ina/error")" \
	"table line 1: unknown target type 'lineer': the kernel does not list it and /lib/modules/$(uname -r) has no module dm-lineer" \
	"the reason names the target"
eq "$(cat "$D/ina/table")" "0 2048 zero" "staged table unchanged"
out=$(bash -c "printf '0 1024 zero\\n1024 100 lineer\\n' >'$D/ina/table'" 2>&1)
eq "$?" "1" "printf of a two-line table with an unknown second target fails ($out)"
contains "$(cat "$D/ina/error")" "table line 2: unknown target type 'lineer'" "reason names line 2"
eq "$(cat "$D/ina/table")" "0 2048 zero" "staged table still unchanged"
put_fails EINVAL "$D/ina/table" "0 100 lineer loop/nope 0" "table line 1: unknown target type 'lineer'"
put_fails EINVAL "$D/ina/table" "0 100 Linear loop/a 0" "unknown target type 'Linear'"
put_fails EINVAL "$D/ina/table" "1 100 zero" "table line 1: starts at sector 1, not 0"
put_fails EINVAL "$D/ina/table" "0 100 zero
50 100 zero" "table line 2: starts at sector 50, not 100 where line 1 ends"
put_fails EINVAL "$D/ina/table" "0 100 zero
200 100 zero" "table line 2: starts at sector 200, not 100 where line 1 ends"
put_fails EINVAL "$D/ina/table" "0 9999999999999999999 zero
9999999999999999999 9999999999999999999 zero" "table line 2: start + length is beyond 2^64 sectors"
put_fails EINVAL "$D/lin/table" "0 100 zero
50 100 zero" "table line 2: starts at sector 50, not 100"
eq "$(dms_table lin)" "0 65536 linear $A 0" "a live device: the layout is refused before the kernel sees it"
check "linear accepted at write" bash -c "echo '0 2048 linear loop/a 0' >'$D/ina/table'"
eq "$(cat "$D/ina/table")" "0 2048 linear loop/a 0" "linear staged"
check "lines that follow each other" put "$D/ina/table" "0 1024 zero
1024 1024 error
2048 4096 linear loop/a 0"
check "kernel-listed thin-pool accepted" put "$D/ina/table" "0 2048 thin-pool loop/a loop/b 128 0"
check "ina activates with a good table" put "$D/ina/table" "0 2048 linear loop/a 0"
check "activate ina" put "$D/ina/active" 1
check "deactivate ina" put "$D/ina/active" 0

# A target type the kernel does not list but has a module for is accepted
# without loading anything; the kernel loads it when the table is loaded.
# The guest has no modules directory for its kernel (and cannot autoload:
# docs/vm.md), so the daemon is given one with STSFS_MODULES_DIR, laid out
# as depmod does for Debian 12's kernel.
MODS=$WORK/modules
mkdir -p "$MODS/kernel/drivers/md"
touch "$MODS/kernel/drivers/md/"{dm-verity,dm-bufio,dm-raid,dm-mod}.ko
printf '%s\n' "kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko" \
	"kernel/drivers/md/dm-raid.ko: kernel/drivers/md/dm-mod.ko" \
	"kernel/drivers/md/dm-switch.ko: kernel/drivers/md/dm-mod.ko" >"$MODS/modules.dep"
printf '%s\n' "alias dm-raid1 dm_raid" "alias dm-raid10 dm_raid" "alias devname:mapper/control dm_mod" >"$MODS/modules.alias"
echo "kernel/drivers/md/dm-log-writes.ko" >"$MODS/modules.builtin"
stop_daemon
STSFS_MODULES_DIR=$MODS start_daemon || exit 1
check "verity is not loaded in the guest" bash -c "! grep -q '^dm_verity ' /proc/modules && ! dmsetup targets | grep -qw verity"
check "a module-only target (verity) accepted at write" \
	bash -c "echo '0 8 verity 1 loop/a loop/b 4096 4096 1 1 sha256 $KEY $KEY' >'$D/ina/table'"
contains "$(cat "$D/ina/table")" "0 8 verity 1 loop/a loop/b" "verity staged"
check "the check loaded nothing" bash -c "! grep -q '^dm_verity ' /proc/modules && ! dmesg | grep -q 'load module.*dm-verity'"
check "raid1 through a module alias" put "$D/ina/table" "0 8 raid1 x"
check "built-in per modules.builtin" put "$D/ina/table" "0 8 log-writes x"
put_fails EINVAL "$D/ina/table" "0 8 switch x" "table line 1: unknown target type 'switch': the kernel does not list it and $MODS has no module dm-switch"
put_fails EINVAL "$D/ina/table" "0 8 lineer" "$MODS has no module dm-lineer"
check "verity once more" put "$D/ina/table" "0 8 verity x"
# The kernel asks for dm-verity at the table load; the guest cannot load it.
put_fails EINVAL "$D/ina/active" 1 "table line 1: unknown target type 'verity'"
check "now the kernel asked for the module" bash -c "dmesg | grep -q 'load module.*dm-verity'"
eq "$(cat "$D/ina/active")" "0" "ina still inactive"
check "rmdir ina" rmdir "$D/ina"
stop_daemon
start_daemon || exit 1

t "activation: a table the kernel refuses"
check "mkdir dm/big" mkdir "$D/big"
check "stage a table longer than loop/a" put "$D/big/table" "0 999999999 linear loop/a 0"
put_fails EINVAL "$D/big/active" 1 "too small for target"
eq "$(reason "$D/big/error")" "table line 1: $AN too small for target: start=0, len=999999999, dev_size=131072" \
	"create: the kernel's reason names the line"
check "no device big in the kernel" bash -c "! dmsetup info big >/dev/null 2>&1"
check "no /dev/mapper/big" test ! -e /dev/mapper/big
eq "$(cat "$D/big/info")" "" "info empty"
eq "$(cat "$D/big/table")" "0 999999999 linear loop/a 0" "staged table kept"
check "stage two lines, the second too long" put "$D/big/table" "0 1024 zero
1024 999999999 linear loop/b 0"
put_fails EINVAL "$D/big/active" 1 "table line 2: $BN too small for target: start=0, len=999999999, dev_size=131072"
check "still no device big" bash -c "! dmsetup info big >/dev/null 2>&1"
# A pool's metadata remembers its data size: a shorter pool table loads,
# and the target refuses it at resume.
check "thin-pool big" put "$D/big/table" "0 131072 thin-pool loop/pm loop/pd 128 0"
check "activate the pool" put "$D/big/active" 1
check "deactivate the pool" put "$D/big/active" 0
check "stage a shorter pool" put "$D/big/table" "0 65536 thin-pool loop/pm loop/pd 128 0"
put_fails EINVAL "$D/big/active" 1 "table line 1: thin-pool"
contains "$(cat "$D/big/error")" "too small: expected" "a resume refusal carries the target's own reason"
check "a table refused at resume leaves no device" bash -c "! dmsetup info big >/dev/null 2>&1"
check "stage a good table" put "$D/big/table" "0 2048 zero"
check "the name is free for a good table" put "$D/big/active" 1
eq "$(dms_table big)" "0 2048 zero" "big has the good table"
check "rmdir big" rmdir "$D/big"
eq "$(dmsetup ls | grep -cw big)" "0" "nothing left of big"
check "loop/pm is free again" rmdir "$L/pm"
check "loop/pd is free again" rmdir "$L/pd"

t "host devices need --allow-host-devices"
truncate -s 1M "$OUTSIDE/host.img"
hostdev=$(losetup -f --show "$OUTSIDE/host.img")
hostmm=$(lsblk -dno MAJ:MIN "$hostdev" | tr -d ' ')
put_fails EACCES "$D/z/table" "0 2048 linear $hostmm 0" "--allow-host-devices"
put_fails EACCES "$D/z/table" "0 2048 linear $hostdev 0" "was not created by stsfs"
check "own device by MAJ:MIN" put "$D/z/table" "0 2048 linear $A 0"
check "own device by dm/NAME" put "$D/z/table" "0 2048 linear dm/lin 0"
eq "$(cat "$D/z/deps")" "$(cat "$D/lin/dev") $(basename "$(cat "$D/lin/device")")" "deps of a dm on dm"
losetup -d "$hostdev"

t "uuid and read_only"
check "mkdir ro" mkdir "$D/ro"
check "uuid" put "$D/ro/uuid" "STSFS-ro-1"
check "read_only" put "$D/ro/read_only" 1
check "ro table" put "$D/ro/table" "0 2048 zero"
check "activate ro" put "$D/ro/active" 1
eq "$(dmsetup info -c --noheadings -o uuid ro)" "STSFS-ro-1" "kernel uuid"
eq "$(jq -r .read_only "$D/ro/info.json")" "true" "info read_only"
contains "$(dmsetup info ro)" "READ-ONLY" "dmsetup sees read-only"
put_fails EBUSY "$D/ro/uuid" "other" "cannot change while"
expect_err EROFS dd if=/dev/zero of="$D/ro/data" bs=512 count=1 conv=notrunc status=none
put_fails EROFS "$D/ro/wipe" 1 "read-only"

t "suspend and resume"
check "suspend" put "$D/lin/suspended" 1
contains "$(dmsetup info lin)" "SUSPENDED" "dmsetup sees SUSPENDED"
eq "$(cat "$D/lin/suspended")" "1" "suspended reads 1"
eq "$(jq -r .state "$D/lin/info.json")" "SUSPENDED" "info state SUSPENDED"
check "resume" put "$D/lin/suspended" 0
contains "$(dmsetup info lin)" "ACTIVE" "dmsetup sees ACTIVE"
check "noflush" put "$D/lin/suspended" noflush
contains "$(dmsetup info lin)" "SUSPENDED" "noflush suspends"
check "resume again" put "$D/lin/suspended" 0
eq "$(cat "$D/lin/suspended")" "0" "suspended reads 0"
put_fails EINVAL "$D/lin/suspended" "later" "suspended takes"

t "messages"
check "stats_create" put "$D/lin/message" "@stats_create - /1"
eq "$(cat "$D/lin/message")" "0" "response of @stats_create"
check "stats_list" put "$D/lin/message" "0 @stats_list"
contains "$(cat "$D/lin/message")" "0:" "response of @stats_list"
check "stats_delete" put "$D/lin/message" "@stats_delete 0"
put_fails EINVAL "$D/lin/message" "0 bogus_message" "message 'bogus_message' to lin: Invalid argument: Target type does not support messages"

t "geometry"
LINDEV=$(cat "$D/lin/device")
eq "$(cat "$D/lin/geometry")" "" "no geometry set: empty"
eq "$(hdgeo "$LINDEV")" "0 0 0 0" "the kernel has none"
check "set geometry" put "$D/lin/geometry" "64 64 16 0"
eq "$(cat "$D/lin/geometry")" "64 64 16 0" "geometry reads back"
eq "$(hdgeo "$LINDEV")" "64 64 16 0" "HDIO_GETGEO reports it"
contains "$(sfdisk -g "$LINDEV")" "64 cylinders, 64 heads, 16 sectors/track" "sfdisk -g sees it"
check "dmsetup setgeometry" dmsetup setgeometry lin 32 128 16 8
eq "$(cat "$D/lin/geometry")" "32 128 16 8" "read back from the kernel"
check "blanks between the numbers" put "$D/lin/geometry" "  64	64  16 0 "
eq "$(cat "$D/lin/geometry")" "64 64 16 0" "normalised"
put_fails EINVAL "$D/lin/geometry" "65536 1 1 0" "geometry: cylinders 65536 is more than 65535"
put_fails EINVAL "$D/lin/geometry" "1 256 1 0" "geometry: heads 256 is more than 255"
put_fails EINVAL "$D/lin/geometry" "1 1 256 0" "geometry: sectors 256 is more than 255"
put_fails EINVAL "$D/lin/geometry" "1 1 1 99999999999999999999999" "geometry: start 99999999999999999999999 is more than"
put_fails EINVAL "$D/lin/geometry" "64 64 16" "geometry takes CYLINDERS HEADS SECTORS START, not '64 64 16'"
put_fails EINVAL "$D/lin/geometry" "64 64 16 0 0" "geometry takes CYLINDERS HEADS SECTORS START"
put_fails EINVAL "$D/lin/geometry" "-1 64 16 0" "geometry takes CYLINDERS HEADS SECTORS START"
put_fails EINVAL "$D/lin/geometry" "64 64 16x 0" "geometry takes CYLINDERS HEADS SECTORS START"
put_fails EINVAL "$D/lin/geometry" "1 1 1 2" \
	"geometry '1 1 1 2' for lin: Invalid argument: Start sector is beyond the geometry limits"
eq "$(hdgeo "$LINDEV")" "64 64 16 0" "the kernel kept the geometry"
out=$(bash -c "echo '1 1 1 2' >'$D/lin/geometry'" 2>&1)
eq "$?" "1" "echo's status ($out)"
contains "$out" "Invalid argument" "echo reports the errno"
out=$(bash -c "echo 1 2 3 >'$D/lin/geometry'" 2>&1)
eq "$?" "1" "echo's status for a malformed value ($out)"
check "a reload of the same size" put "$D/lin/table" "0 65536 linear loop/a 0"
eq "$(cat "$D/lin/geometry")" "64 64 16 0" "keeps the geometry"
check "a reload that changes the size" put "$D/lin/table" "0 32768 linear loop/a 0"
eq "$(cat "$D/lin/geometry")" "" "the kernel wiped the geometry"
check "back to 65536 sectors" put "$D/lin/table" "0 65536 linear loop/a 0"
check "set again" put "$D/lin/geometry" "64 64 16 0"
check "0 0 0 0 unsets it" put "$D/lin/geometry" "0 0 0 0"
eq "$(cat "$D/lin/geometry")" "" "empty again"
eq "$(hdgeo "$LINDEV")" "0 0 0 0" "the kernel has none again"
check "mkdir inactive geo" mkdir "$D/geo"
check "geo table" put "$D/geo/table" "0 2048 zero"
put_fails ENODEV "$D/geo/geometry" "1 1 1 0" "dm/geo is not active"
eq "$(cat "$D/geo/geometry")" "" "inactive: empty"
put_fails EINVAL "$D/geo/geometry" "1 1" "geometry takes"

t "clear"
check "dmsetup load an inactive table" dmsetup load lin --table "0 2048 zero"
eq "$(jq -r .inactive_table "$D/lin/info.json")" "true" "info: inactive_table"
contains "$(dmsetup info lin)" "LIVE & INACTIVE" "dmsetup sees both tables"
put_fails EINVAL "$D/lin/clear" 2 "clear takes 1 (drop the inactive table) or 0, not '2'"
out=$(bash -c "echo 2 >'$D/lin/clear'" 2>&1)
eq "$?" "1" "echo's status for a bad value ($out)"
check "clear 0" put "$D/lin/clear" 0
eq "$(jq -r .inactive_table "$D/lin/info.json")" "true" "0 keeps the inactive table"
check "clear 1" bash -c "echo 1 >'$D/lin/clear'"
eq "$(jq -r .inactive_table "$D/lin/info.json")" "false" "inactive table dropped"
eq "$(sed -n 's/^inactive_table=//p' "$D/lin/info")" "0" "info: inactive_table=0"
contains "$(dmsetup info lin)" "Tables present:    LIVE" "dmsetup sees the live table"
check "dmsetup: no inactive table" bash -c "! dmsetup info lin | grep -q INACTIVE"
eq "$(dms_table lin)" "0 65536 linear $A 0" "live table unchanged"
eq "$(jq -r .state "$D/lin/info.json")" "ACTIVE" "still active"
check "clear without an inactive table" put "$D/lin/clear" 1
expect_err EACCES cat "$D/lin/clear"
put_fails ENODEV "$D/geo/clear" 1 "dm/geo is not active"
put_fails ENODEV "$D/geo/clear" 0 "dm/geo is not active"
check "rmdir geo" rmdir "$D/geo"

t "thin-pool messages and wait"
# Low-water mark 1023 of 1024 blocks: the first block a thin maps raises an event.
check "thin-pool" mkdm pool "0 131072 thin-pool loop/tm loop/td 128 1023"
check "create_thin 0" put "$D/pool/message" "0 create_thin 0"
check "set_transaction_id" put "$D/pool/message" "set_transaction_id 0 1"
eq "$(jq -r '.[0].transaction_id' "$D/pool/status.json")" "1" "transaction_id"
eq "$(rd "$D/pool/status.raw")" "$(dms_status pool)" "pool status.raw"
check "thin volume on dm/pool" mkdm thin0 "0 262144 thin dm/pool 0"
eq "$(rd "$D/thin0/status.raw")" "$(dms_status thin0)" "thin status.raw"
put_fails EEXIST "$D/pool/message" "create_thin 0" "File exists"
ev=$(jq -r .event_nr "$D/pool/info.json")
"$PW" "$D/pool/status" 300 >/dev/null 2>&1
eq "$?" "1" "poll on status without an event times out"
"$PW" "$D/pool/table" 60000 >/dev/null 2>&1
eq "$?" "0" "poll on a file without events returns at once"
timeout -s KILL 60 cat "$D/pool/wait" >"$WORK/event" &
waiter=$!
poll_bg "$D/pool/status.json" "$WORK/polled"
poller=$!
poll_bg "$D/pool/info" "$WORK/polled-info"
poller2=$!
sleep 1
check "write to the thin" dd if=/dev/urandom of="$D/thin0/data" bs=64k count=4 oflag=direct conv=notrunc status=none
wait $waiter
got=$(cat "$WORK/event")
check "wait returned a later event ($ev -> $got)" test "${got:-0}" -gt "$ev"
wait $poller
eq "$?" "0" "poll on status.json woke at the event"
check "re-read after poll: used blocks" test "$(jq -r '.[0].used_data_blocks' "$WORK/polled")" -ge 1
wait $poller2
eq "$?" "0" "poll on info woke at the event"
check "re-read after poll: later event_nr" test "$(sed -n 's/^event_nr=//p' "$WORK/polled-info")" -gt "$ev"
eq "$(jq -r '.[0].used_data_blocks' "$D/pool/status.json")" "4" "four data blocks used"

t "thin/POOL/VOL references"
check "create_thin 1" put "$D/pool/message" "create_thin 1"
check "thin volume pool-v1" mkdm pool-v1 "0 2048 thin dm/pool 1"
check "linear on thin/pool/v1" mkdm onthin "0 2048 linear thin/pool/v1 0"
eq "$(cut -d' ' -f1 "$D/onthin/deps")" "$(cat "$D/pool-v1/dev")" "deps: the thin volume"
eq "$(cat "$D/onthin/table")" "$(dms_table onthin)" "onthin table as dmsetup"
put_fails ENOENT "$D/onthin/table" "0 2048 linear thin/pool/nope 0" "no active thin volume pool-nope in pool pool"
put_fails ENOENT "$D/onthin/table" "0 2048 linear thin/nopool/v1 0" "no active thin pool nopool"
check "a zero device named lin-fake" mkdm lin-fake "0 2048 zero"
put_fails ENOENT "$D/onthin/table" "0 2048 linear thin/lin/fake 0" "no active thin volume lin-fake in pool lin"
put_fails EINVAL "$D/onthin/table" "0 2048 linear thin/pool 0" "write thin/POOL/VOL"
put_fails EINVAL "$D/onthin/table" "0 2048 linear thin/pool/v1/x 0" "write thin/POOL/VOL"
eq "$(dms_table onthin)" "$(cat "$D/onthin/table")" "onthin kept its table"
for n in onthin lin-fake pool-v1; do
	check "rmdir $n" rmdir "$D/$n"
done
check "delete thin 1" put "$D/pool/message" "delete 1"

check "thin0 down" put "$D/thin0/active" 0
check "rmdir thin0" rmdir "$D/thin0"
check "delete thin" put "$D/pool/message" "delete 0"

t "poll wakes when the device goes away"
poll_bg "$D/two/info" "$WORK/gone"
poller=$!
check "two down" put "$D/two/active" 0
wait $poller
eq "$?" "0" "poll on info woke at removal"
eq "$(cat "$WORK/gone")" "" "info of a removed device is empty"

t "busy devices"
exec 3<"$D/lin/data"
expect_err EBUSY rmdir "$D/lin"
contains "$(cat "$D/lin/error")" "open" "error says open"
put_fails EBUSY "$D/lin/active" 0 "open"
exec 3<&-
expect_err EBUSY rmdir "$D/lin"  # dm/z uses it
contains "$(cat "$D/lin/error")" "open" "held by dm/z"

t "rename"
check "mv z z2" mv "$D/z" "$D/z2"
check "dmsetup knows z2" bash -c "dmsetup info z2 >/dev/null"
check "z is gone in the kernel" bash -c "! dmsetup info z >/dev/null 2>&1"
check "z2 listed" test -d "$D/z2"
check "z gone" test ! -e "$D/z"
check "mkdir taken" mkdir "$D/taken"
expect_err EEXIST mv -T "$D/z2" "$D/taken"
# rename(2) fails with EINVAL, which mv reports as "subdirectory of itself".
check "bad new name refused" bash -c "! mv -T '$D/z2' '$D/bad name' 2>/dev/null"
check "z2 kept its name" test -d "$D/z2"

t "external devices"
dmsetup create ext --table "0 100 zero"
check "ext listed" test -d "$D/ext"
eq "$(cat "$D/ext/table")" "0 100 zero" "ext table"
put_fails EPERM "$D/ext/table" "0 200 zero" "--manage-external"
expect_err EPERM rmdir "$D/ext"
check "no data for ext" test ! -e "$D/ext/data"
expect_err EEXIST mkdir "$D/ext"
put_fails EPERM "$D/ext/geometry" "1 1 1 0" "--manage-external"
put_fails EPERM "$D/ext/clear" 1 "--manage-external"
put_fails EPERM "$D/ext/wipe" 1 "--manage-external"
eq "$(cat "$D/ext/geometry")" "" "ext geometry readable"
dmsetup remove ext

t "restart keeps active devices"
stop_daemon
start_daemon || exit 1
eq "$(cat "$D/lin/active")" "1" "lin active after restart"
eq "$(cat "$D/lin/table")" "$(dms_table lin)" "lin table after restart"
eq "$(cat "$D/taken/active")" "0" "inactive object kept"

t "a daemon killed inside a rename finishes it at start-up"
# mv writes the new record (naming the old) before the kernel's rename and
# deletes the old record after it: the records a kill leaves at each step.
check "dm/k1" bash -c "mkdir '$D/k1' && echo '0 2048 zero' > '$D/k1/table' && echo 1 > '$D/k1/active'"
check "dm/k3" bash -c "mkdir '$D/k3' && echo '0 2048 zero' > '$D/k3/table' && echo 1 > '$D/k3/active'"
stop_daemon
# k1 -> k2, killed before the kernel's rename; k3 -> k4, killed after it.
for f in k1:k2 k3:k4; do
	cp "$STATE/dm/${f%:*}" "$STATE/dm/${f#*:}"
	echo "renamed_from=${f%:*}" >>"$STATE/dm/${f#*:}"
done
dmsetup rename k3 k4
check "start" start_daemon
for f in k1:k2 k3:k4; do
	o=${f%:*} n=${f#*:}
	check "dm/$n is there, active" test "$(cat "$D/$n/active")" = 1
	check "dm/$o is gone" test ! -e "$D/$o"
	check "the kernel's device is $n" bash -c "dmsetup info $n >/dev/null && ! dmsetup info $o >/dev/null 2>&1"
	check "$o's record is gone" test ! -e "$STATE/dm/$o"
	check "$n's record no longer names $o" bash -c "! grep -q '^renamed_from=' '$STATE/dm/$n'"
	check "rmdir dm/$n" rmdir "$D/$n"
done
check "the start-up said so" grep -q "finishing a rename" "$WORK/daemon.log"

t "the state directory full: activation and removal change nothing"
stop_daemon
FULL=$WORK/fullstate
mkdir -p "$FULL"
check "tmpfs state directory" mount -t tmpfs -o size=1m,mode=0700 stsfs-full "$FULL"
check "the daemon starts on it" start_daemon --state-dir "$FULL"
check "dm/f" mkdir "$D/f"
check "f table" put "$D/f/table" "0 2048 zero"
dd if=/dev/zero of="$FULL/.filler" bs=4k status=none 2>/dev/null
put_fails ENOSPC "$D/f/active" 1 "state directory is full"
check "no device f in the kernel" bash -c "! dmsetup info f >/dev/null 2>&1"
rm "$FULL/.filler"
check "f active once there is room" put "$D/f/active" 1
dd if=/dev/zero of="$FULL/.filler" bs=4k status=none 2>/dev/null
put_fails ENOSPC "$D/f/active" 0 "state directory is full"
check "device f still there" dmsetup info f
rm "$FULL/.filler"
check "f inactive once there is room" put "$D/f/active" 0
check "rmdir f" rmdir "$D/f"
stop_daemon
check "unmount the tmpfs" umount "$FULL"
check "the daemon starts on its own state again" start_daemon

t "teardown"
for n in z2 two snap cr flk dly err str ro pool lin taken; do
	[ -d "$D/$n" ] || continue
	check "rmdir $n" rmdir "$D/$n"
done
eq "$(ls "$D" | grep -vx error)" "" "dm/ empty"
eq "$(dmsetup ls 2>&1)" "No devices found" "dmsetup ls"
for n in a b c o cow tm td pt; do
	check "rmdir loop/$n" rmdir "$L/$n"
done
finish
