#!/usr/bin/env bash
# bench/profile.sh's counts for the device-mapper rows, in the test VM:
#   tests/vm/run-in-vm.sh -- bash bench/profile_dm.sh [N]
# the daemon's system calls per dm status read (dm/p/status of a thin pool)
# and per thin volume lifecycle (mkdir thin/p/v, size 16M, active, rmdir).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50}
BUILD=$(cd "${STSFS_BUILD_DIR:-build}" && pwd)
if ! dmsetup version >/dev/null 2>&1; then
	echo "bench/profile_dm.sh: no device-mapper in this kernel; run it in the VM" >&2
	exit 1
fi
command -v strace >/dev/null || { echo "profile_dm: needs strace" >&2; exit 1; }
W=$(mktemp -d "${STSFS_BENCH_DIR:-/tmp}/stsfs-profile-dm.XXXXXX")
M=$W/mnt
# shellcheck source=bench/lib.sh
. bench/lib.sh
cleanup() {
	set +e
	[ -d "$M/thin/p" ] && rmdir "$M/thin/p"
	stop_daemon "$M"
	rm -rf "$W"
}
trap cleanup EXIT
start_daemon "$W/state" "$W/img" "$M"
echo "stsfs dm profile: $(uname -r), N=$N; per operation:"
mkdir "$M/thin/p"
echo 64M >"$M/thin/p/data_size"
echo 1 >"$M/thin/p/active"
profile "dm status read (dm/p/status)" "$N" "$BT" read "$N" "$M/dm/p/status"
profile "thin lifecycle" "$((N / 10))" "$BT" thintree "$((N / 10))" "$M/thin/p" 16M
echo "(to /dev/fuse: replies and cache notifications)"
