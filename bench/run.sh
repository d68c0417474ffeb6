#!/usr/bin/env bash
# Every comparison of stsfs against what it replaces, side by side on this
# machine, interleaved (stsfs, reference, stsfs, reference, ... per round):
# prints per row the median of each side and the ratio stsfs / reference.
# Absolute times vary on shared machines; the ratios are the result. Root;
# real loop devices. See bench/README.md.
#
#   bench/run.sh [--tiny] [--rounds N] [--no-vm]
#
# --tiny: every row at its smallest size (3 rounds, 10 objects, 8 MiB of
# data, no VM) so that it runs in well under a minute: the CI smoke check.
# It never asserts on timings, only that every row ran.
# STSFS_BUILD_DIR: the build directory (default build/, built with
# scripts/build.sh; another directory is configured with meson if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TINY=0
ROUNDS=
VM=1
while [ $# -gt 0 ]; do
	case $1 in
	--tiny) TINY=1 ;;
	--rounds) ROUNDS=$2; shift ;;
	--rounds=*) ROUNDS=${1#*=} ;;
	--no-vm) VM=0 ;;
	-h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: bench/run.sh [--tiny] [--rounds N] [--no-vm]" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run it as root (loop devices, mounts)" >&2; exit 1; }

if [ "$TINY" = 1 ]; then
	ROUNDS=${ROUNDS:-3}
	SCALES=(10)
	DATA_MIB=8
	ITER=5        # operations per timed sample
	LS_OBJECTS=10 # the `ls -l` comparison row
	VM=0
else
	ROUNDS=${ROUNDS:-7}
	SCALES=(10 100 1000 10000)
	DATA_MIB=256
	ITER=50
	LS_OBJECTS=1000
fi

BUILD=${STSFS_BUILD_DIR:-build}
if [ "$BUILD" = build ]; then
	scripts/build.sh
else
	[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" >/dev/null
	ninja -C "$BUILD" >/dev/null
fi
BUILD=$(cd "$BUILD" && pwd)

W=$(mktemp -d /var/tmp/stsfs-bench.XXXXXX)
MNT=$W/mnt
L=$MNT/loop
source bench/lib.sh

cleanup() {
	set +e
	local o
	# Active objects first, so that their devices go with them.
	for o in x b; do
		[ -d "$L/$o" ] && { echo 0 >"$L/$o/active"; rmdir "$L/$o"; } 2>/dev/null
	done
	for o in "$L"/bench_*; do # an interrupted lifecycle
		[ -d "$o" ] && rmdir "$o" 2>/dev/null
	done
	stop_daemon "$MNT"
	umount "$W/tmpfs" 2>/dev/null
	# Any loop device still backed by a file of ours (an interrupted lifecycle).
	losetup -nO NAME,BACK-FILE 2>/dev/null | while read -r dev back; do
		case $back in "$W"/*) losetup -d "$dev" ;; esac
	done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_daemon "$W/state" "$W/img" "$MNT"

echo "stsfs bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, rounds=$ROUNDS$([ "$TINY" = 1 ] && echo ', --tiny')"
echo "state dir $W/state on $(df --output=source,fstype "$W" | tail -1 | tr -s ' ' ' ') (the default /var/lib/stsfs: $(df --output=source,fstype /var/lib 2>/dev/null | tail -1 | tr -s ' ' ' '))"
if commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
	git -C "$ROOT" diff --quiet HEAD -- src include meson.build 2>/dev/null ||
		commit+=" plus uncommitted changes in src/ include/"
else
	commit=${STSFS_BENCH_COMMIT:-"unknown (not a git checkout; name it with STSFS_BENCH_COMMIT)"}
fi
echo "commit $commit"
echo
header

# 1. Loop lifecycle: through the tree vs the ioctls in one process vs losetup.
truncate -s 4M "$W/raw.img"
compare "loop lifecycle (mkdir, size 4M, active, rmdir)" \
	"\$BT looptree $ITER \$L 4M" \
	"raw ioctls in one process" "\$BT loopraw $ITER \$W/raw.img" \
	"losetup -f --show + losetup -d" "\$BT losetup $ITER \$W/raw.img"

# 2. One attribute read of an active object vs the same value in sysfs.
mkdir "$L/x"
echo 4M >"$L/x/size"
echo 1 >"$L/x/active"
xdev=$(cat "$L/x/name")
compare "attribute read (open+read+close loop/x/size)" \
	"\$BT read $((ITER * 10)) \$L/x/size" \
	"/sys/block/$xdev/size" "\$BT read $((ITER * 10)) /sys/block/$xdev/size"

# 5. Data throughput: whole device through `data` vs O_DIRECT on the node.
mkdir "$L/b"
echo "${DATA_MIB}M" >"$L/b/size"
echo 1 >"$L/b/active"
bdev=$(cat "$L/b/device")
dd if=/dev/urandom of="$bdev" bs=1M count="$DATA_MIB" oflag=direct status=none
dd_us() { # dd_us DD-ARGS...: microseconds of one dd, page cache dropped first
	local s e
	sync
	echo 3 >/proc/sys/vm/drop_caches
	s=$(date +%s%N)
	dd "$@" bs=1M count="$DATA_MIB" status=none
	e=$(date +%s%N)
	echo $(((e - s) / 1000))
}
compare "data read ${DATA_MIB} MiB (dd bs=1M)" \
	"dd_us if=\$L/b/data of=/dev/null" \
	"the device node, iflag=direct" "dd_us if=\$bdev of=/dev/null iflag=direct"
compare "data write ${DATA_MIB} MiB (dd bs=1M)" \
	"dd_us if=/dev/zero of=\$L/b/data conv=notrunc" \
	"the device node, oflag=direct" "dd_us if=/dev/zero of=\$bdev oflag=direct conv=notrunc"
echo 0 >"$L/b/active"
rmdir "$L/b"

# 3. and 4. Listing and scale: inactive objects idle_0 ... idle_N-1 (left to
# the state dir's removal at exit: they hold nothing else).
mkdir "$W/tmpfs"
mount -t tmpfs -o size=64M bench "$W/tmpfs"
"$BT" mkdirs "$W/tmpfs" e 0 "$LS_OBJECTS" >/dev/null
have=0
declare -a SCALE_ROWS=()
for n in "${SCALES[@]}"; do
	mk_us=$("$BT" mkdirs "$L" idle_ "$have" "$n")
	mk_per=$(awk -v t="$mk_us" -v k="$((n - have))" 'BEGIN { printf "%.0f", t / k }')
	have=$n
	# Let the daemon's group commit of the new objects (within a second)
	# finish before measuring, so that its fsyncs do not land in the rows.
	sleep 1.5
	if [ "$n" = "$LS_OBJECTS" ]; then
		compare "readdir+stat of loop/, $n objects (C)" \
			"\$BT lsl 1 \$L" \
			"a $n-entry tmpfs directory" "\$BT lsl 1 \$W/tmpfs"
		compare "ls -l loop/, $n objects (process)" \
			"\$BT exec 1 ls -l \$L" \
			"ls -l of a $n-entry tmpfs directory" "\$BT exec 1 ls -l \$W/tmpfs"
	fi
	# Scale: fewer rounds for the big ones (ls -l of 10,000 objects is slow today).
	sr=$ROUNDS
	[ "$n" -ge 10000 ] && sr=1
	[ "$n" -ge 1000 ] && [ "$sr" -gt 3 ] && sr=3
	ls_s="" all_s="" one_s=""
	for r in $(seq "$sr"); do
		ls_s+="$("$BT" exec 1 ls -l "$L")"$'\n'
		all_s+="$("$BT" readall 1 "$L" size)"$'\n'
		one_s+="$("$BT" read "$ITER" "$L/idle_0/size")"$'\n'
	done
	SCALE_ROWS+=("$(printf '%-8s %14s %16s %14s %12s %10s' "$n" \
		"$(fmt_us "$(printf '%s' "$ls_s" | median)")" \
		"$(fmt_us "$(printf '%s' "$all_s" | median)")" \
		"$(fmt_us "$(printf '%s' "$one_s" | median)")" \
		"$(fmt_us "$mk_per")" \
		"$(awk -v k="$(rss_kib)" 'BEGIN { printf "%.1f MiB", k / 1024 }')")")
done

echo
echo "scale: inactive loop objects (medians of up to 3 rounds; 1 at 10000)"
printf '%-8s %14s %16s %14s %12s %10s\n' objects "ls -l loop/" "read every size" "one size read" "mkdir each" "daemon RSS"
printf '%s\n' "${SCALE_ROWS[@]}"

# 6. device-mapper rows, in the VM (this kernel has no device-mapper).
echo
if [ "$VM" = 0 ]; then
	echo "dm/ and thin/ rows: skipped ($([ "$TINY" = 1 ] && echo '--tiny' || echo '--no-vm'); they run in the VM: tests/vm/run-in-vm.sh)"
elif dmsetup version >/dev/null 2>&1 && [ -e /dev/mapper/control ]; then
	echo "dm/ and thin/ rows: this kernel has device-mapper, running them here"
	STSFS_BUILD_DIR=$BUILD bash bench/vm_rows.sh "$ROUNDS"
else
	set +e
	tests/vm/run-in-vm.sh --skip-ok --timeout 1800 --env STSFS_BUILD_DIR="$BUILD" \
		-- bash bench/vm_rows.sh "$ROUNDS" 2>&1 | tr -d '\r' | grep -v -e '^stsfs-vm:' -e '^\[ *[0-9.]*\]'
	st=${PIPESTATUS[0]}
	set -e
	case $st in
	0) ;;
	77) echo "dm/ and thin/ rows: skipped (the VM cannot run here: see above)" ;;
	*) echo "dm/ and thin/ rows: failed in the VM (status $st)"; exit 1 ;;
	esac
fi
echo
echo "ratio = stsfs / reference (1.00: as fast as the reference; 2.00: twice its time)"
