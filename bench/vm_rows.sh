#!/usr/bin/env bash
# The device-mapper rows of bench/run.sh, for a kernel with device-mapper (the
# test VM: tests/vm/run-in-vm.sh -- bash bench/vm_rows.sh [ROUNDS]). Same
# output format: medians of interleaved rounds and stsfs / reference.
#   dm status:      read dm/p/status vs DM_TABLE_STATUS in one process
#                   (libdevmapper) vs `dmsetup status p` as a process
#   thin lifecycle: mkdir thin/p/v, size 16M, active 1, rmdir vs
#                   dmsetup message create_thin, create, remove, message delete
# Work files go to $STSFS_BENCH_DIR (default /tmp: the guest's own tmpfs,
# so neither the images nor the state dir go through 9p).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${1:-5}
BUILD=$(cd "${STSFS_BUILD_DIR:-build}" && pwd)
if ! dmsetup version >/dev/null 2>&1; then
	echo "bench/vm_rows.sh: no device-mapper in this kernel; run it in the VM" >&2
	exit 1
fi

W=$(mktemp -d "${STSFS_BENCH_DIR:-/tmp}/stsfs-bench-dm.XXXXXX")
MNT=$W/mnt
source bench/lib.sh
QLOOPS=()

cleanup() {
	set +e
	local v
	for v in "$MNT"/thin/p/bench_*; do [ -d "$v" ] && rmdir "$v"; done
	[ -d "$MNT/thin/p" ] && rmdir "$MNT/thin/p"
	stop_daemon "$MNT"
	dmsetup remove q-v 2>/dev/null
	dmsetup remove q 2>/dev/null
	for v in "${QLOOPS[@]}"; do losetup -d "$v"; done
	rm -rf "$W"
}
trap cleanup EXIT

start_daemon "$W/state" "$W/img" "$MNT"
echo "in the VM: $(uname -r), $(nproc) CPUs, device-mapper $(dmsetup version | awk '/Driver/ { print $3 }'), work files on $(df --output=fstype "$W" | tail -1)"
header

# The pool stsfs makes (thin/p, whose dm device is p) ...
T=$MNT/thin
mkdir "$T/p"
echo 64M >"$T/p/data_size"
echo 1 >"$T/p/active"

# ... and the same pool made with dmsetup (q), for the reference lifecycle.
truncate -s 64M "$W/qdata"
truncate -s 8M "$W/qmeta"
QLOOPS+=("$(losetup -f --show "$W/qmeta")")
QLOOPS+=("$(losetup -f --show "$W/qdata")")
dmsetup create q --table "0 $((64 * 2048)) thin-pool ${QLOOPS[0]} ${QLOOPS[1]} 128 0"
qdev=$(dmsetup info -c --noheadings -o major,minor --separator : q)

compare "dm status read (thin pool, dm/p/status)" \
	"\$BT read 50 \$MNT/dm/p/status" \
	"DM_TABLE_STATUS ioctl in one process" "\$BT dmstatus 50 p" \
	"dmsetup status p (a process)" "\$BT exec 10 dmsetup status p"

dmsetup_thin_us() { # N lifecycles of thin id 1 in pool q, as a script would
	local s e i
	s=$(date +%s%N)
	for i in $(seq "$1"); do
		dmsetup message q 0 "create_thin 1"
		dmsetup create q-v --table "0 $((16 * 2048)) thin $qdev 1"
		dmsetup remove q-v
		dmsetup message q 0 "delete 1"
	done
	e=$(date +%s%N)
	echo $(((e - s) / 1000 / $1))
}
compare "thin lifecycle (mkdir, size 16M, active, rmdir)" \
	"\$BT thintree 5 \$T/p 16M" \
	"the same with dmsetup (4 processes)" "dmsetup_thin_us 5"
