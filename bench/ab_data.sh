#!/usr/bin/env bash
# Reads of a loop object's `data` through this build and through another
# (OLD_BUILD, a build dir of an earlier commit), two daemons side by side,
# interleaved per round: the median of each and new / old. The answer path
# is the subject (kept answers, docs/reliability.md): STSFS_TAKEOVER=replay
# in the environment makes both answer from the map's slots, as on 6.1.
#   bench/ab_data.sh [--rounds N] [--mib N] OLD_BUILD
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=15
MIB=256
OLD=
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift ;;
	--mib) MIB=$2; shift ;;
	-h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) OLD=$(cd "$1" && pwd) ;;
	esac
	shift
done
[ -n "$OLD" ] || { echo "usage: bench/ab_data.sh [--rounds N] [--mib N] OLD_BUILD" >&2; exit 2; }
NEW=$(cd "${STSFS_BUILD_DIR:-build}" && pwd)
W=$(mktemp -d /var/tmp/stsfs-bench.XXXXXX)
BUILD=$NEW
source bench/lib.sh # median
PIDS=()
cleanup() {
	local side
	for side in new old; do
		rmdir "$W/$side/mnt/loop/x" 2>/dev/null || true
		umount "$W/$side/mnt" 2>/dev/null || umount -l "$W/$side/mnt" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT

start() { # start SIDE BUILD
	local d=$W/$1
	mkdir -p "$d/mnt" "$d/img" "$d/state"
	"$2/stsfs" -f --propagation none --image-dir "$d/img" --state-dir "$d/state" "$d/mnt" 2>"$d/log" &
	PIDS+=($!)
	for _ in $(seq 100); do [ -d "$d/mnt/loop" ] && break; sleep 0.1; done
	mkdir "$d/mnt/loop/x"
	echo "${MIB}M" >"$d/mnt/loop/x/size"
	echo 1 >"$d/mnt/loop/x/active"
	dd if=/dev/urandom of="$d/mnt/loop/x/data" bs=1M count="$MIB" status=none
}

read_ms() { # read_ms SIDE
	local s e
	s=$(date +%s%N)
	dd if="$W/$1/mnt/loop/x/data" of=/dev/null bs=1M status=none
	e=$(date +%s%N)
	echo $(((e - s) / 1000000))
}

start new "$NEW"
start old "$OLD"
for _ in $(seq "$ROUNDS"); do
	for side in new old; do echo "$side $(read_ms "$side")"; done
done >"$W/times"
n=$(awk '$1 == "new" { print $2 }' "$W/times" | median)
o=$(awk '$1 == "old" { print $2 }' "$W/times" | median)
echo "data read ${MIB} MiB (dd bs=1M), medians of $ROUNDS interleaved rounds, STSFS_TAKEOVER=${STSFS_TAKEOVER:-}"
echo "this build: $n ms   old build: $o ms   ratio new/old: $(awk -v n="$n" -v o="$o" 'BEGIN { printf "%.2f", n / o }')"
