#!/bin/bash
# The tree as a rootless container sees it, without a container engine: a
# process of host uid 1000 as root of its own user, mount and pid
# namespaces (unshare --user --map-root-user --mount --pid --fork, the shape
# podman gives a rootless container) with the tree bind-mounted into its
# mount namespace, the daemon started with -o allow_other --owner 1000:1000.
# Inside: a loop object made and activated, an ext4 file system written
# through `data` and read back through `probe`; a GPT written through
# `data`, and, where the kernel makes partition devices, a file system
# written into partitions/1/data. A read-only bind refuses every change
# with EROFS. See docs/containers.md.
. "$(dirname "$0")/lib.sh"

OWNER=1000
SKIPPED=0

# ctr SCRIPT: run SCRIPT in bash as root of a new user+mount+pid namespace
# of host uid $OWNER, with the tree bind-mounted at $WORK/ns (its cwd).
# With RO=1 the bind is made read-only, as `-v /sts:/sts:ro` does.
ctr() {
	setpriv --reuid="$OWNER" --regid="$OWNER" --clear-groups -- \
		unshare --user --map-root-user --mount --pid --fork bash -c '
		set -e
		mount --bind "$0/mnt" "$0/ns"
		[ "$1" != 1 ] || mount -o remount,bind,ro "$0/ns"
		cd "$0/ns"
		set +e
		eval "$2"' "$WORK" "${RO:-0}" "$1"
}
# ctr_err ERRNO SCRIPT: SCRIPT fails in the container with ERRNO's message.
ctr_err() {
	local want=$1 out
	if out=$(ctr "$2" 2>&1); then
		fail "'$2' in the container succeeded, want $want"
	else
		contains "$out" "$(errtext "$want")" "'$2' in the container"
	fi
}
skip() {
	SKIPPED=$((SKIPPED + 1))
	echo "NOT CHECKED [$CURRENT]: $*" >&2
}

chmod 0755 "$WORK" # uid 1000 must reach the mount point
mkdir -m 0755 "$WORK/ns"
start_daemon -o allow_other --owner "$OWNER:$OWNER" --mode 0750 || exit 1

# ---------------------------------------------------------------------------
t "the container's root is the tree's owner"
eq "$(ctr 'id -u; stat -c %u:%a loop')" "$(printf '0\n0:750')" "uid 0 inside, the tree owned by it"

t "make an image, write ext4 through data, read probe"
check "mkdir, size, active" ctr 'mkdir loop/img && echo 64M > loop/img/size && echo 1 > loop/img/active'
eq "$(cat "$MNT/loop/img/active")" "1" "active, seen from the host"
eq "$(ctr 'stat -c %s loop/img/data')" "$((64 << 20))" "data is the device's size"
check "mkfs.ext4 onto data" ctr 'mkfs.ext4 -q -F -L ctrfs loop/img/data'
eq "$(ctr 'grep -E "^(TYPE|LABEL)=" loop/img/probe | sort')" "$(printf 'LABEL=ctrfs\nTYPE=ext4')" "probe in the container"
dev=$(cat "$MNT/loop/img/device")
eq "$(blkid -p -s TYPE -o value "$dev")" "ext4" "blkid of $dev on the host"
check "deactivate, rmdir" ctr 'echo 0 > loop/img/active && rmdir loop/img'

t "re-format: vfat then ext2, an ambivalent probe, wipe"
check "mkdir, size, active" ctr 'mkdir loop/re && echo 64M > loop/re/size && echo 1 > loop/re/active'
# mke2fs zeroes vfat's boot sector; written back, it stands for an mkfs
# that leaves sector 0 alone (test_loop.sh says more).
check "vfat, ext2 over it, vfat's boot sector back" ctr 'b=$(mktemp) && mkfs.vfat loop/re/data >/dev/null &&
	dd if=loop/re/data of="$b" bs=512 count=2 status=none && mkfs.ext2 -q -F loop/re/data &&
	dd if="$b" of=loop/re/data bs=512 conv=notrunc status=none; rc=$?; rm -f "$b"; exit $rc'
eq "$(ctr 'grep -E "^(ambivalent|signature_type)=" loop/re/probe | sort -u')" \
	"$(printf 'ambivalent=1\nsignature_type=ext2\nsignature_type=vfat')" "probe in the container"
check "wipe in the container" ctr 'echo 1 > loop/re/wipe'
eq "$(ctr 'cat loop/re/probe')" "" "probe empty after wipe"
eq "$(wipefs "$(cat "$MNT/loop/re/device")")" "" "wipefs on the host finds nothing"
RO=1 ctr_err EROFS 'echo 1 > loop/re/wipe'
check "deactivate, rmdir" ctr 'echo 0 > loop/re/active && rmdir loop/re'

t "partition an image through data, write into partitions/1"
check "mkdir, size, active" ctr 'mkdir loop/disk && echo 64M > loop/disk/size && echo 1 > loop/disk/active'
check "sfdisk onto data" ctr 'printf "label: gpt\n,16M,L,*\n,,L\n" | sfdisk -q --no-reread --no-tell-kernel loop/disk/data'
eq "$(ctr 'grep "^PTTYPE=" loop/disk/probe')" "PTTYPE=gpt" "probe sees the table"
eq "$(ctr 'ls loop/disk/partitions | tr "\n" " "')" "1 2 " "partitions/ from the table, without partscan"
eq "$(ctr 'cat loop/disk/partitions/1/size')" "$((16 << 20))" "partitions/1/size"
check "no partitions/1/data without a kernel partition device" ctr '! test -e loop/disk/partitions/1/data'
check "partscan on while active" ctr 'echo 1 > loop/disk/partscan'
if kernel_scans_gpt; then
	name=$(cat "$MNT/loop/disk/name")
	check "the kernel made ${name}p1" test -e "/sys/block/$name/${name}p1"
	check "partitions/1 has data" ctr 'test -f loop/disk/partitions/1/data'
	eq "$(ctr 'stat -c %s loop/disk/partitions/1/data')" "$((16 << 20))" "partitions/1/data is the partition's size"
	check "mkfs.ext4 onto partitions/1/data" ctr 'mkfs.ext4 -q -F -L part1 loop/disk/partitions/1/data'
	eq "$(ctr 'grep -E "^(TYPE|LABEL)=" loop/disk/partitions/1/probe | sort')" "$(printf 'LABEL=part1\nTYPE=ext4')" "partitions/1/probe"
	eq "$(blkid -p -s LABEL -o value "/dev/${name}p1")" "part1" "blkid of /dev/${name}p1 on the host"
	eq "$(ctr 'grep "^TYPE=" loop/disk/partitions/2/probe')" "" "partition 2 untouched"
	check "deactivate, read_only 1, activate" ctr 'echo 0 > loop/disk/active && echo 1 > loop/disk/read_only && echo 1 > loop/disk/active'
	eq "$(ctr 'stat -c %A loop/disk/partitions/1/data')" "-r--r-----" "a read-only device's partition data shows no write bits"
	ctr_err EROFS 'dd if=/dev/zero of=loop/disk/partitions/1/data bs=4k count=1 conv=notrunc status=none'
	check "deactivate, read_only 0" ctr 'echo 0 > loop/disk/active && echo 0 > loop/disk/read_only'
else
	skip "this kernel makes no partition devices for loop devices (no GPT parser):" \
		"partitions/N/data, mkfs.ext4 into it and its probe were not checked"
	check "partitions/1/probe still reads (at the partition's offset)" ctr 'cat loop/disk/partitions/1/probe >/dev/null'
	check "deactivate" ctr 'echo 0 > loop/disk/active'
fi

t "a read-only bind (-v /sts:/sts:ro) refuses every change with EROFS"
check "an active object to look at" ctr 'echo 1 > loop/disk/active'
RO=1 ctr_err EROFS 'mkdir loop/other'
RO=1 ctr_err EROFS 'echo 0 > loop/disk/active'
RO=1 ctr_err EROFS 'dd if=/dev/zero of=loop/disk/data bs=4k count=1 conv=notrunc status=none'
RO=1 ctr_err EROFS 'rmdir loop/disk'
eq "$(RO=1 ctr 'grep "^PTTYPE=" loop/disk/probe')" "PTTYPE=gpt" "reads still work through the read-only bind"
eq "$(cat "$MNT/loop/disk/active")" "1" "nothing changed"
check "deactivate, rmdir" ctr 'echo 0 > loop/disk/active && rmdir loop/disk'

[ "$SKIPPED" -eq 0 ] || echo "$(basename "$0"): $SKIPPED group(s) NOT CHECKED on this kernel (see above)" >&2
finish
