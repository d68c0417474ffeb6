#!/usr/bin/env bash
# Where the time of each native bench/run.sh row goes, as the daemon's
# system calls per operation (strace -c -f on the daemon while benchtool
# repeats the operation N times). Root; real loop devices. Writes to /dev/fuse (writev) are the
# replies to the kernel's FUSE requests plus the daemon's cache
# notifications (docs/tree.md, "Caching").
#   bench/profile.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
command -v strace >/dev/null || { echo "profile: needs strace" >&2; exit 1; }
BUILD=${STSFS_BUILD_DIR:-build}
if [ "$BUILD" = build ]; then
	[ -f build/build.ninja ] || meson setup build . >/dev/null
	ninja -C build >/dev/null
fi
BUILD=$(cd "$BUILD" && pwd)
W=$(mktemp -d /var/tmp/stsfs-profile.XXXXXX)
# shellcheck source=bench/lib.sh
. bench/lib.sh
M=$W/mnt
cleanup() {
	stop_daemon "$M"
	rm -rf "$W"
}
trap cleanup EXIT
start_daemon "$W/state" "$W/img" "$M"

echo "stsfs profile: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), N=$N"
echo "per operation:"
mkdir "$M/loop/x"
echo 4M >"$M/loop/x/size"
echo 1 >"$M/loop/x/active"
profile "loop lifecycle" "$N" "$BT" looptree "$N" "$M/loop" 4M
profile "attribute read (loop/x/size)" "$N" "$BT" read "$N" "$M/loop/x/size"
"$BT" mkdirs "$M/loop" o 0 1000 >/dev/null
sleep 1.5 # the group commit of the mkdirs stays out of the profile
profile "readdir+stat of 1000 objects" 1000 "$BT" lsl 1 "$M/loop"
echo 256M >"$M/loop/x/size"
profile "data read 256 MiB (1 MiB requests)" 256 dd if="$M/loop/x/data" of=/dev/null bs=1M count=256 status=none
profile "data write 256 MiB (1 MiB requests)" 256 dd if=/dev/zero of="$M/loop/x/data" bs=1M count=256 conv=notrunc status=none
for i in $(seq 0 999); do rmdir "$M/loop/o$i"; done
echo 0 >"$M/loop/x/active"
rmdir "$M/loop/x"
echo "(to /dev/fuse: replies and cache notifications; data replies may also be spliced)"

# The kernel's requests for one lifecycle, by opcode: a second daemon
# with -d (libfuse's trace) for a warmed-up lifecycle.
stop_daemon "$M"
mkdir -p "$W/dstate" "$W/dimg"
"$BUILD/stsfs" -d -f --propagation none --image-dir "$W/dimg" --state-dir "$W/dstate" "$M" 2>"$W/trace.d" &
DAEMON_PID=$!
for _ in $(seq 100); do [ -d "$M/loop" ] && break; sleep 0.1; done
"$BT" looptree 1 "$M/loop" 4M >/dev/null
sleep 0.5
from=$(wc -l <"$W/trace.d")
"$BT" looptree 1 "$M/loop" 4M >/dev/null
sleep 0.5
printf 'requests of one loop lifecycle:'
tail -n +"$from" "$W/trace.d" | grep -o 'opcode: [A-Z_]*' | sort | uniq -c | sort -rn |
	awk '{ printf " %s %s", $3, $1 } END { printf "\n" }'

