#!/usr/bin/env bash
# What the supervisor costs and what a takeover takes, side by side in one
# run (medians; the ratios are the result, bench/README.md):
#   - takeover: SIGKILL of the worker to the first answered `cat version`
#     (the next worker started, INIT answered again, objects adopted),
#     against a fresh start (stsfs started to the first answered `cat`);
#   - with OLD_BUILD (a build dir of an earlier commit, e.g. one before the
#     supervisor): the loop lifecycle and an attribute read of this build
#     against that one, interleaved.
#   bench/takeover.sh [--rounds N] [OLD_BUILD]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=9
OLD=
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift ;;
	-h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) OLD=$(cd "$1" && pwd) ;;
	esac
	shift
done
BUILD=$(cd "${STSFS_BUILD_DIR:-build}" && pwd)
W=$(mktemp -d /var/tmp/stsfs-bench.XXXXXX)
source bench/lib.sh
trap 'stop_daemon "$W/m" 2>/dev/null; stop_daemon "$W/o" 2>/dev/null; rm -rf "$W"' EXIT

now_us() { echo $(($(date +%s%N) / 1000)); }

# Microseconds from SIGKILL of the worker to the first answered read.
takeover_us() {
	local t0 worker
	worker=$(worker_pid)
	t0=$(now_us)
	kill -9 "$worker"
	cat "$W/m/version" >/dev/null
	echo $(($(now_us) - t0))
}

# Microseconds from starting a daemon to the first answered read.
fresh_us() {
	stop_daemon "$W/f"
	local t0
	t0=$(now_us)
	start_daemon "$W/fs" "$W/fi" "$W/f" >/dev/null
	cat "$W/f/version" >/dev/null
	echo $(($(now_us) - t0))
}

echo "stsfs takeover bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, rounds=$ROUNDS"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
take=() fresh=()
for _ in $(seq "$ROUNDS"); do
	fresh+=("$(fresh_us)")
	stop_daemon "$W/f"
	start_daemon "$W/ms" "$W/mi" "$W/m"
	mkdir -p "$W/m/loop/x"
	echo 4M >"$W/m/loop/x/size"
	take+=("$(takeover_us)")
	rmdir "$W/m/loop/x"
	stop_daemon "$W/m"
done
t=$(printf '%s\n' "${take[@]}" | median)
f=$(printf '%s\n' "${fresh[@]}" | median)
printf '%-40s %12s\n' "takeover (kill -9 worker to answer)" "$(fmt_us "$t")"
printf '%-40s %12s\n' "fresh start (start to answer)" "$(fmt_us "$f")"
printf '%-40s %12s\n' "ratio takeover / fresh start" "$(ratio "$t" "$f")"

[ -n "$OLD" ] || exit 0
# This build and OLD_BUILD, each in its own mount, interleaved per round.
BT=$BUILD/bench/benchtool
start_daemon "$W/ms" "$W/mi" "$W/m"
NEW_PID=$DAEMON_PID
BUILD_NEW=$BUILD
BUILD=$OLD
DAEMON_PID=
start_daemon "$W/os" "$W/oi" "$W/o"
BUILD=$BUILD_NEW
for m in m o; do mkdir "$W/$m/loop/r" && echo 4M >"$W/$m/loop/r/size"; done
life=() olife=() rd=() ord=()
for _ in $(seq "$ROUNDS"); do
	life+=("$("$BT" looptree 20 "$W/m/loop" 4M)")
	olife+=("$("$BT" looptree 20 "$W/o/loop" 4M)")
	rd+=("$("$BT" read 200 "$W/m/loop/r/size")")
	ord+=("$("$BT" read 200 "$W/o/loop/r/size")")
done
for m in m o; do rmdir "$W/$m/loop/r"; done
stop_daemon "$W/o"
DAEMON_PID=$NEW_PID
stop_daemon "$W/m"
header
for row in "loop lifecycle:life:olife" "attribute read:rd:ord"; do
	IFS=: read -r label a b <<<"$row"
	declare -n A=$a B=$b
	x=$(printf '%s\n' "${A[@]}" | median)
	y=$(printf '%s\n' "${B[@]}" | median)
	printf '%-46s %12s %12s %8s  %s\n' "$label" "$(fmt_us "$x")" "$(fmt_us "$y")" "$(ratio "$x" "$y")" "$OLD"
done
