#!/usr/bin/env bash
# loop/ on real loop devices, driven as a user would: mkdir, echo, cat, dd,
# mkfs, sfdisk, mount, rmdir. Checks the kernel's own view in /sys/block.
. "$(dirname "$0")/lib.sh"

start_daemon || exit 1
L=$MNT/loop

# ---------------------------------------------------------------- root files
t "root files"
v=$(cat "$MNT/version")
for k in stsfs libdevmapper dm_driver kernel thin_tools; do
	contains "$v" "$k=" "version has $k"
done
contains "$v" "kernel=$(uname -r)" "version names the running kernel"
check "version.json is JSON" json_ok "$MNT/version.json"
eq "$(jq -r .kernel "$MNT/version.json")" "$(uname -r)" "version.json kernel"
check "README describes loop/" grep -q "loop/NAME" "$MNT/README"
if [ -e /dev/mapper/control ] && dmsetup version >/dev/null 2>&1; then
	check "targets lists linear" grep -q "^linear [0-9]*\.[0-9]*\.[0-9]*$" "$MNT/targets"
else
	eq "$(cat "$MNT/targets")" "" "targets without device-mapper"
	contains "$v" "dm_driver=unavailable" "dm_driver without device-mapper"
fi
contains "$("$STSFS" --help)" "--allow-backing DIR" "--help lists the options"
contains "$("$STSFS" --version)" "stsfs $(jq -r .stsfs "$MNT/version.json")" "--version"
expect_err "no mount point" "$STSFS"
expect_err "--owner wants UID:GID" "$STSFS" --owner root "$OUTSIDE"
expect_err EPERM mkdir "$MNT/nothing"
contains "$(cat "$MNT/error")" "cannot be created" "root error after mkdir at root"
expect_err EACCES put "$MNT/version" 1

# ------------------------------------------------------------- names, mkdir
t "mkdir and names"
check "mkdir loop/a" mkdir "$L/a"
check "a is listed" test -d "$L/a"
expect_err EEXIST mkdir "$L/a"
for bad in "-x" ".x" "a b" "a:b" "loop7" "$(printf 'n%.0s' $(seq 65))"; do
	expect_err EINVAL mkdir "$L/$bad"
done
contains "$(cat "$L/error")" "64 bytes" "loop/error explains the long name"
check "64-byte name is fine" mkdir "$L/$(printf 'n%.0s' $(seq 64))"
check "rmdir 64-byte name" rmdir "$L/$(printf 'n%.0s' $(seq 64))"
eq "$(cat "$L/a/active")" "0" "new object is inactive"
eq "$(cat "$L/a/name")" "" "inactive object has no name"
eq "$(cat "$L/a/status")" "" "inactive status is empty"
check "inactive status.json is an empty object" jq -e '. == {}' "$L/a/status.json" >/dev/null
check "inactive object has no data file" test ! -e "$L/a/data"
check "inactive object has no partitions/" test ! -e "$L/a/partitions"
expect_err EPERM touch "$L/a/newfile"
expect_err EPERM rm -f "$L/a/size"
expect_err EACCES put "$L/a/status" x

# ------------------------------------------------------- attribute parsing
t "attribute values"
put_fails EINVAL "$L/a/size" "12Q" "unknown size suffix"
put_fails EINVAL "$L/a/size" "1000" "multiple of 512"
put_fails EINVAL "$L/a/sector_size" "1000" "sector size"
put_fails EINVAL "$L/a/read_only" "maybe" "not a boolean"
put_fails EINVAL "$L/a/active" "2" "not a boolean"
put_fails EINVAL "$L/a/active" "1" "set size"
check "size with suffix" put "$L/a/size" "64M"
eq "$(cat "$L/a/size")" "67108864" "size reads back in bytes"
check "size with KiB suffix" put "$L/a/size" " 65536KiB "
eq "$(cat "$L/a/size")" "67108864" "whitespace is ignored"
for w in yes on true y 1; do put "$L/a/partscan" "$w"; eq "$(cat "$L/a/partscan")" 1 "partscan=$w"; done
for w in no off false n 0; do put "$L/a/partscan" "$w"; eq "$(cat "$L/a/partscan")" 0 "partscan=$w"; done
printf '1' >"$L/a/partscan"
eq "$(cat "$L/a/partscan")" "1" "write without a newline"
put "$L/a/partscan" 0

# ---------------------------------------------------------- owned image
t "owned image"
check "activate" put "$L/a/active" 1
eq "$(cat "$L/a/active")" "1" "active reads 1"
n=$(cat "$L/a/name")
check "name is loopN ($n)" test -n "$n" -a -d "/sys/block/$n"
eq "$(sysfs "$n" loop/backing_file)" "$IMG/a.img" "kernel backing file is the owned image"
eq "$(stat -c %s "$IMG/a.img")" "67108864" "image has the size"
check "image is sparse" test "$(stat -c %b "$IMG/a.img")" -lt 1024
eq "$(($(sysfs "$n" size) * 512))" "67108864" "kernel capacity"
eq "$(cat "$L/a/device")" "/dev/$n" "device"
eq "$(cat "$L/a/dev")" "$(sysfs "$n" dev)" "dev is MAJ:MIN"
s=$(cat "$L/a/status")
for k in name back_file offset sizelimit autoclear ro dio log_sec partscan size; do
	contains "$s" "$k=" "status has $k"
done
contains "$s" "name=/dev/$n" "status name"
contains "$s" "back_file=$IMG/a.img" "status back_file"
check "status.json is JSON" json_ok "$L/a/status.json"
lj=$(losetup -lJ "/dev/$n")
eq "$(jq -r .name "$L/a/status.json")" "$(jq -r '.loopdevices[0].name' <<<"$lj")" "status.json name = losetup"
eq "$(jq -r .back_file "$L/a/status.json")" "$(jq -r '.loopdevices[0]["back-file"]' <<<"$lj")" "back_file = losetup"
eq "$(jq -r .log_sec "$L/a/status.json")" "$(jq -r '.loopdevices[0]["log-sec"]' <<<"$lj")" "log_sec = losetup"
eq "$(jq -r .ro "$L/a/status.json")" "$(jq -r '.loopdevices[0].ro' <<<"$lj")" "ro = losetup"
eq "$(jq -r .size "$L/a/status.json")" "67108864" "status.json size is a number"
put "$L/a/active" 1
eq "$(cat "$L/a/name")" "$n" "activating twice keeps the device"
for attr in backing_file read_only; do
	put_fails EBUSY "$L/a/$attr" "$([ $attr = read_only ] && echo 1 || echo "$ALLOW/x")" "active"
done

# ------------------------------------------------------------ data file
t "data"
eq "$(stat -c %s "$L/a/data")" "67108864" "data has the device's size"
head -c 3M /dev/urandom >"$WORK/pattern"
check "dd into data" dd if="$WORK/pattern" of="$L/a/data" bs=1M seek=2 conv=notrunc,fsync status=none
check "device has the bytes" cmp -n 3145728 "$WORK/pattern" <(dd if="/dev/$n" bs=1M skip=2 count=3 status=none iflag=direct)
check "data reads them back" cmp -n 3145728 "$WORK/pattern" <(dd if="$L/a/data" bs=1M skip=2 count=3 status=none)
check "odd offset read" cmp <(dd if="$L/a/data" bs=1 skip=$((2 * 1048576 + 4097)) count=100 status=none) \
	<(dd if="$WORK/pattern" bs=1 skip=4097 count=100 status=none)
check "mkfs.ext4 on data" mkfs.ext4 -q -F -L stsfs-test "$L/a/data"
p=$(cat "$L/a/probe")
contains "$p" "TYPE=ext4" "probe sees ext4"
contains "$p" "LABEL=stsfs-test" "probe label"
eq "$(grep '^UUID=' <<<"$p")" "$(blkid -p -o export "/dev/$n" | grep '^UUID=')" "probe UUID = blkid"
eq "$(jq -r .TYPE "$L/a/probe.json")" "ext4" "probe.json"
check "mount the loop device" mkdir -p "$WORK/m"
check "mount" mount "/dev/$n" "$WORK/m"
expect_err EBUSY rmdir "$L/a"
contains "$(cat "$L/a/error")" "in use" "error says why rmdir failed"
eq "$(cat "$L/a/active")" "1" "busy rmdir changed nothing"
expect_err EBUSY put "$L/a/active" 0
check "umount" umount "$WORK/m"
exec 3<"$L/a/data"
expect_err EBUSY put "$L/a/active" 0
eq "$(sysfs "$n" loop/autoclear)" "0" "refused detach left autoclear off"
exec 3<&-

# ------------------------------------------------------------ partitions
t "partitions"
check "sfdisk on data" sh -c "printf 'label: gpt\nsize=8M, type=L, name=first\ntype=S, name=second\n' | sfdisk -q '$L/a/data'"
eq "$(grep ^PTTYPE= <<<"$(cat "$L/a/probe")")" "PTTYPE=gpt" "probe sees the GPT"
eq "$(ls "$L/a/partitions" | tr '\n' ' ')" "1 2 " "two partitions"
dump=$(sfdisk -J "$L/a/data")
eq "$(cat "$L/a/partitions/1/start")" "$(($(jq '.partitiontable.partitions[0].start' <<<"$dump") * 512))" "start in bytes"
eq "$(cat "$L/a/partitions/1/size")" "8388608" "size in bytes"
eq "$(cat "$L/a/partitions/1/name")" "first" "name"
eq "$(cat "$L/a/partitions/2/name")" "second" "second name"
eq "$(cat "$L/a/partitions/1/type")" "0fc63daf-8483-4772-8e79-3d69d8477de4" "Linux filesystem type GUID"
eq "$(cat "$L/a/partitions/1/uuid" | tr a-z A-Z)" "$(jq -r '.partitiontable.partitions[0].uuid' <<<"$dump")" "uuid"
check "format partition 2 through data" mkfs.ext4 -q -F -L sw -E offset="$(cat "$L/a/partitions/2/start")" \
	"$L/a/data" "$(($(cat "$L/a/partitions/2/size") / 1024))k"
eq "$(jq -r .TYPE "$L/a/partitions/2/probe.json")" "ext4" "partition probe"
eq "$(grep ^LABEL= "$L/a/partitions/2/probe")" "LABEL=sw" "partition label"
check "no partition 3" test ! -e "$L/a/partitions/3"

# ---------------------------------------------------------- partscan
t "partscan"
check "turn partscan on while active" put "$L/a/partscan" 1
eq "$(sysfs "$n" loop/partscan)" "1" "kernel partscan"
if kernel_scans_gpt; then
	check "kernel made partition devices" test -e "/sys/block/$n/${n}p1"
else
	echo "note: this kernel makes no partition devices even for losetup -P; not checked" >&2
fi
put_fails EBUSY "$L/a/partscan" 0 "cannot turn partscan off"

# ---------------------------------------------------------- grow
t "grow while active"
check "grow to 96M" put "$L/a/size" 96M
eq "$(($(sysfs "$n" size) * 512))" "100663296" "kernel capacity followed"
eq "$(stat -c %s "$IMG/a.img")" "100663296" "image grew"
eq "$(cat "$L/a/size")" "100663296" "size reads the new capacity"
put_fails EINVAL "$L/a/size" 32M "shrinking"
eq "$(($(sysfs "$n" size) * 512))" "100663296" "refused shrink changed nothing"

# ---------------------------------------------------------- deactivate
t "deactivate and reactivate"
check "detach" put "$L/a/active" 0
check "kernel device is free" test ! -e "/sys/block/$n/loop/backing_file"
eq "$(cat "$L/a/active")" "0" "active reads 0"
check "image kept while inactive" test -f "$IMG/a.img"
check "block files gone" test ! -e "$L/a/data" -a ! -e "$L/a/device"
eq "$(cat "$L/a/size")" "100663296" "configuration kept"
put_fails EINVAL "$L/a/size" 64M "shrinking it is refused"
put_fails EBUSY "$L/a/backing_file" "$ALLOW/x" "owns an image"
check "reactivate" put "$L/a/active" 1
n=$(cat "$L/a/name")
eq "$(jq -r .LABEL "$L/a/partitions/2/probe.json")" "sw" "data survived deactivation"

# ------------------------------------------------ ambivalent probe, wipe
t "ambivalent probe and wipe"
mkdir "$L/w"
put "$L/w/size" 64M
put "$L/w/active" 1
wn=$(cat "$L/w/name")
check "mkfs.vfat on data" mkfs.vfat "$L/w/data" >/dev/null
dd if="$L/w/data" of="$WORK/vfat-boot" bs=512 count=2 status=none
check "mkfs.ext2 over it" mkfs.ext2 -q -F "$L/w/data"
eq "$(grep -c ambivalent "$L/w/probe")" "0" "one file system: probe as before"
# mke2fs here zeroes sectors 0-1 (its ZAP_BOOTBLOCK; mkfs.vfat likewise
# clears an ext2 superblock), so vfat's boot sector, with all three of its
# magics, is gone. An mkfs that leaves sector 0 alone (mke2fs on sparc,
# minimal mkfs tools in images) leaves it: the boot sector written back
# makes that device, vfat and ext2 at once.
check "vfat's boot sector back" dd if="$WORK/vfat-boot" of="$L/w/data" bs=512 conv=notrunc status=none
want=$(wipefs -J "/dev/$wn" | jq -r '.signatures[] | "\(.type) \(.offset)"' | while read -r ty off; do
	echo "$ty $((off))"
done)
contains "$want" "vfat" "wipefs sees vfat"
contains "$want" "ext2 1080" "wipefs sees ext2"
p=$(cat "$L/w/probe")
contains "$p" "ambivalent=1" "probe says ambivalent"
eq "$(grep -c '^TYPE=' <<<"$p")" "0" "no single TYPE"
eq "$(grep '^signatures=' <<<"$p")" "signatures=$(wc -l <<<"$want")" "signature count = wipefs"
eq "$(paste -d' ' <(sed -n 's/^signature_type=//p' <<<"$p") <(sed -n 's/^signature_offset=//p' <<<"$p"))" \
	"$want" "signature_type/signature_offset = wipefs"
check "probe.json parses" json_ok "$L/w/probe.json"
eq "$(jq -r '.signature[] | "\(.type) \(.offset)"' "$L/w/probe.json")" "$want" "probe.json signatures = wipefs"
eq "$(jq -r '.signature[] | select(.type == "ext2") | .magic' "$L/w/probe.json")" "53ef" "ext2 magic in hex"
eq "$(jq -r .ambivalent "$L/w/probe.json")" "true" "probe.json ambivalent"
check "mount the ext2" mount -t ext2 "/dev/$wn" "$WORK/m"
put_fails EBUSY "$L/w/wipe" 1 "in use"
check "umount" umount "$WORK/m"
exec 3<"$L/w/data"
put_fails EBUSY "$L/w/wipe" 1 "data file is open"
exec 3<&-
put_fails EINVAL "$L/w/wipe" 0 "write 1"
put_fails EINVAL "$L/w/wipe" yes-please "boolean"
eq "$(jq .signatures "$L/w/probe.json")" "$(wc -l <<<"$want")" "refused wipes erased nothing"
check "wipe" put "$L/w/wipe" 1
eq "$(cat "$L/w/probe")" "" "probe empty after wipe"
eq "$(wipefs "/dev/$wn")" "" "wipefs finds nothing"
contains "$(cat "$WORK/daemon.log")" "loop/w: wiped $(wc -l <<<"$want") signatures (vfat at 54" "wipe logged"
check "wipe of a blank device" put "$L/w/wipe" 1
eq "$(stat -c %a "$L/w/wipe")" "200" "wipe is write-only"
check "GPT on data" sh -c "printf 'label: gpt\nsize=8M, type=L\n' | sfdisk -q '$L/w/data'"
start=$(cat "$L/w/partitions/1/start")
check "vfat in partition 1" mkfs.vfat --offset $((start / 512)) "$L/w/data" 8192 >/dev/null 2>&1
eq "$(jq -r .TYPE "$L/w/partitions/1/probe.json")" "vfat" "partition probe vfat"
check "wipe partition 1" put "$L/w/partitions/1/wipe" 1
eq "$(cat "$L/w/partitions/1/probe")" "" "partition probe empty after its wipe"
eq "$(jq -r .PTTYPE "$L/w/probe.json")" "gpt" "the table outside the partition is kept"
check "rmdir w" rmdir "$L/w"

# ----------------------------------------------- read-only and sector size
t "read_only, sector_size, direct_io"
mkdir "$L/ro"
put "$L/ro/size" 16M
put "$L/ro/read_only" 1
put "$L/ro/sector_size" 4096
put "$L/ro/active" 1
rn=$(cat "$L/ro/name")
eq "$(sysfs "$rn" ro)" "1" "kernel read-only"
eq "$(sysfs "$rn" queue/logical_block_size)" "4096" "kernel sector size"
eq "$(jq .log_sec "$L/ro/status.json")" "4096" "status log_sec"
eq "$(jq .ro "$L/ro/status.json")" "true" "status ro"
expect_err EROFS dd if=/dev/zero of="$L/ro/data" bs=4k count=1 conv=notrunc status=none
put_fails EROFS "$L/ro/wipe" 1 "read-only"
check "read-only data still reads" dd if="$L/ro/data" of=/dev/null bs=1M count=1 status=none
check "sector size changes while active" put "$L/ro/sector_size" 512
eq "$(sysfs "$rn" queue/logical_block_size)" "512" "kernel followed"
if put "$L/ro/direct_io" 1 2>/dev/null; then
	eq "$(sysfs "$rn" loop/dio)" "1" "kernel direct I/O"
	put "$L/ro/direct_io" 0
	eq "$(sysfs "$rn" loop/dio)" "0" "direct I/O off"
else
	contains "$(cat "$L/ro/error")" "LOOP_SET_DIRECT_IO" "direct_io refusal names the ioctl"
fi
check "rmdir active read-only object" rmdir "$L/ro"
check "its device is detached" test ! -e "/sys/block/$rn/loop/backing_file"
check "its image is deleted" test ! -e "$IMG/ro.img"

# ------------------------------------------------- external backing files
t "backing files"
truncate -s 24M "$ALLOW/ext.img"
truncate -s 1M "$OUTSIDE/secret.img"
ln -s "$OUTSIDE/secret.img" "$ALLOW/escape"
mkdir "$ALLOW/sub"
mkdir "$L/b"
put_fails EACCES "$L/b/backing_file" "$OUTSIDE/secret.img" "outside the allowed"
put_fails EACCES "$L/b/backing_file" "$ALLOW/escape" "resolves to"
put_fails EACCES "$L/b/backing_file" "$ALLOW/sub/../../outside/secret.img" "outside the allowed"
put_fails EINVAL "$L/b/backing_file" "allowed/ext.img" "absolute path"
put_fails ENOENT "$L/b/backing_file" "$ALLOW/missing.img" "No such file"
put_fails EINVAL "$L/b/backing_file" "$ALLOW/sub" "not a regular file"
check "allowed backing file" put "$L/b/backing_file" "$ALLOW/sub/../ext.img"
eq "$(cat "$L/b/backing_file")" "$ALLOW/sub/../ext.img" "reads back as written"
eq "$(cat "$L/b/size")" "25165824" "size follows the file"
put_fails EINVAL "$L/b/size" 8M "follows backing_file"
put "$L/b/offset" 1M
put "$L/b/sizelimit" 4M
eq "$(cat "$L/b/size")" "4194304" "size honours offset and sizelimit"
put "$L/b/active" 1
bn=$(cat "$L/b/name")
eq "$(sysfs "$bn" loop/offset)" "1048576" "kernel offset"
eq "$(sysfs "$bn" loop/sizelimit)" "4194304" "kernel sizelimit"
eq "$(($(sysfs "$bn" size) * 512))" "4194304" "kernel capacity"
check "sizelimit changes while active" put "$L/b/sizelimit" 8M
eq "$(($(sysfs "$bn" size) * 512))" "8388608" "kernel capacity followed sizelimit"
printf 'stsfs' | dd of="$L/b/data" conv=notrunc status=none
eq "$(dd if="$ALLOW/ext.img" bs=1 skip=1048576 count=5 status=none)" "stsfs" "data lands at the offset"
put "$L/b/sizelimit" 0
truncate -s 40M "$ALLOW/ext.img"
check "grow after the file grew" put "$L/b/size" 39M
eq "$(($(sysfs "$bn" size) * 512))" "40894464" "kernel capacity after grow"
put_fails EINVAL "$L/b/size" 64M "grow the file first"
check "rmdir external-backed object" rmdir "$L/b"
check "external backing file is never deleted" test -f "$ALLOW/ext.img"

# ------------------------------------------------------ autoclear
t "autoclear"
mkdir "$L/ac"
put "$L/ac/size" 8M
put "$L/ac/active" 1
an=$(cat "$L/ac/name")
mkfs.ext4 -q "/dev/$an"
mount "/dev/$an" "$WORK/m"
check "autoclear on while mounted" put "$L/ac/autoclear" 1
eq "$(sysfs "$an" loop/autoclear)" "1" "kernel autoclear"
umount "$WORK/m"
check "kernel detached at the last close" test ! -e "/sys/block/$an/loop/backing_file"
eq "$(cat "$L/ac/active")" "0" "object follows the kernel"
check "reactivate after autoclear" put "$L/ac/active" 1
rmdir "$L/ac"

# --------------------------------------------------- devices made outside
t "external loop devices"
truncate -s 8M "$OUTSIDE/foreign.img"
fdev=$(losetup -f --show "$OUTSIDE/foreign.img")
fn=${fdev#/dev/}
check "listed under its kernel name" test -d "$L/$fn"
contains "$(ls "$L")" "$fn" "readdir lists $fn"
eq "$(jq -r .back_file "$L/$fn/status.json")" "$OUTSIDE/foreign.img" "external status"
eq "$(cat "$L/$fn/active")" "1" "external is active"
put_fails EPERM "$L/$fn/active" 0 "not created by stsfs"
put_fails EPERM "$L/$fn/size" 16M "manage-external"
put_fails EPERM "$L/$fn/wipe" 1 "not created by stsfs"
expect_err EPERM rmdir "$L/$fn"
check "no data file for external" test ! -e "$L/$fn/data"
check "external still attached" test -e "/sys/block/$fn/loop/backing_file"
check "owned devices are not listed twice" test ! -e "$L/$n"
losetup -d "$fdev"
check "gone from the listing when detached" test ! -e "$L/$fn"

# ------------------------------------------------- concurrency with losetup
t "concurrent attach"
for i in 1 2 3 4 5 6; do mkdir "$L/c$i"; put "$L/c$i/size" 4M; done
for i in 1 2 3 4 5 6; do truncate -s 4M "$OUTSIDE/race$i.img"; done
pids=()
for i in 1 2 3 4 5 6; do
	put "$L/c$i/active" 1 &
	pids+=($!)
	losetup -f "$OUTSIDE/race$i.img" &
	pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3 4 5 6; do
	cn=$(cat "$L/c$i/name")
	eq "$(sysfs "$cn" loop/backing_file)" "$IMG/c$i.img" "c$i bound to its own image"
done
eq "$(for i in 1 2 3 4 5 6; do cat "$L/c$i/name"; done | sort -u | wc -l)" "6" "six distinct devices"
eq "$(losetup -nO BACK-FILE | grep -c "$OUTSIDE/race")" "6" "losetup users all got devices"
for d in $(losetup -nO NAME,BACK-FILE | awk -v o="$OUTSIDE/race" 'index($2, o) == 1 { print $1 }'); do losetup -d "$d"; done
pids=()
for i in 1 2 3 4 5 6; do rmdir "$L/c$i" & pids+=($!); done
wait "${pids[@]}"
eq "$(ls "$IMG" | grep -c '^c')" "0" "concurrent rmdirs deleted all images"

# ------------------------------------------------------- restart
t "restart keeps objects"
mkdir "$L/keep"
put "$L/keep/size" 4M
put "$L/keep/sector_size" 4096
eq "$(cat "$L/a/active")" "1" "a active before restart"
stop_daemon
check "clean unmount leaves the device" test "$(sysfs "$n" loop/backing_file)" = "$IMG/a.img"
start_daemon "${DAEMON_ARGS[@]}"
eq "$(cat "$L/a/active")" "1" "a adopted after restart"
eq "$(cat "$L/a/name")" "$n" "same device"
eq "$(cat "$L/keep/active")" "0" "inactive object survives"
eq "$(cat "$L/keep/sector_size")" "4096" "with its configuration"
eq "$(cat "$L/keep/size")" "4194304" "and its size"
kill_daemon
start_daemon "${DAEMON_ARGS[@]}"
eq "$(cat "$L/a/name")" "$n" "adopted after SIGKILL"
eq "$(ls "$L" | grep -c '^a$')" "1" "not duplicated"
put "$L/keep/active" 1
kn=$(cat "$L/keep/name")
losetup -d "/dev/$kn"
eq "$(cat "$L/keep/active")" "0" "detached behind our back reads inactive"
check "and can be activated again" put "$L/keep/active" 1

# ----------------------------------------- second daemon, --manage-external
t "--manage-external"
stop_daemon
M2=$WORK/mnt2
mkdir -p "$M2" "$WORK/state2"
truncate -s 8M "$OUTSIDE/managed.img"
mdev=$(losetup -f --show "$OUTSIDE/managed.img")
mn=${mdev#/dev/}
"$STSFS" --manage-external --state-dir "$WORK/state2" --image-dir "$IMG" --owner 1234:5678 --mode 0770 "$M2"
eq "$(stat -c '%u:%g %a' "$M2/loop")" "1234:5678 770" "--owner and --mode on directories"
eq "$(stat -c '%a' "$M2/loop/$mn/active")" "660" "writable attribute takes group bits from --mode"
eq "$(stat -c '%a' "$M2/loop/$mn/status")" "440" "read-only file"
check "data of external with --manage-external" dd if="$M2/loop/$mn/data" of=/dev/null bs=1M count=1 status=none
check "rmdir external with --manage-external" rmdir "$M2/loop/$mn"
check "kernel device detached" test ! -e "/sys/block/$mn/loop/backing_file"
umount "$M2"
start_daemon "${DAEMON_ARGS[@]}"
if out=$("$STSFS" --state-dir "$STATE" "$M2" 2>&1); then
	fail "a second daemon started on the same state dir"
	umount "$M2"
fi
contains "$out" "in use by another stsfs" "second daemon on the same state dir refuses"

# ------------------------------------------------------- cleanup
t "rmdir everything"
check "rmdir a" rmdir "$L/a"
check "rmdir keep" rmdir "$L/keep"
check "a's device detached" test ! -e "/sys/block/$n/loop/backing_file"
check "a's image deleted" test ! -e "$IMG/a.img"
eq "$(ls "$STATE/loop" 2>/dev/null)" "" "state forgotten"

finish
