#!/usr/bin/env bash
# What --tenancy costs the host, side by side in one run (medians of
# interleaved rounds; the ratios are the result, bench/README.md): two
# daemons, one plain and one with --tenancy uid, each with N loop objects;
# per round, `ls -l loop/` and a read of every object's size, on each.
# With tenancy the names in loop/ are never cached by the kernel (every
# path walk asks the daemon again), which is what the ratio shows.
#   ROUNDS=9 OBJECTS=200 bench/tenancy.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=${ROUNDS:-9}
N=${OBJECTS:-200}
BUILD=$(cd "${STSFS_BUILD_DIR:-build}" && pwd)
W=$(mktemp -d /var/tmp/stsfs-bench.XXXXXX)
source bench/lib.sh
PIDS=()
cleanup() {
	for m in "$W/plain" "$W/tenancy"; do umount "$m/m" 2>/dev/null || umount -l "$m/m" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT

start() { # start NAME [OPTIONS]
	local d=$W/$1
	shift
	mkdir -p "$d/s" "$d/i" "$d/m"
	"$BUILD/stsfs" -f --propagation none --image-dir "$d/i" --state-dir "$d/s" "$@" "$d/m" 2>"$d/log" &
	PIDS+=($!)
	for _ in $(seq 100); do [ -d "$d/m/loop" ] && break; sleep 0.05; done
	for i in $(seq "$N"); do mkdir "$d/m/loop/o$i"; done
}

now_us() { echo $(($(date +%s%N) / 1000)); }
ls_us() { local t0; t0=$(now_us); ls -l "$1/loop" >/dev/null; echo $(($(now_us) - t0)); }
sizes_us() {
	local t0 i
	t0=$(now_us)
	for i in $(seq "$N"); do read -r _ <"$1/loop/o$i/size"; done
	echo $(($(now_us) - t0))
}

start plain
start tenancy --tenancy uid
for kind in ls sizes; do
	: >"$W/$kind.plain"
	: >"$W/$kind.tenancy"
done
for _ in $(seq "$ROUNDS"); do
	for d in plain tenancy; do
		ls_us "$W/$d/m" >>"$W/ls.$d"
		sizes_us "$W/$d/m" >>"$W/sizes.$d"
	done
done
printf '%-36s %12s %12s %8s\n' "row ($N objects, $ROUNDS rounds)" plain "--tenancy" ratio
for kind in ls sizes; do
	p=$(median <"$W/$kind.plain")
	t=$(median <"$W/$kind.tenancy")
	label=$([ "$kind" = ls ] && echo "ls -l loop/" || echo "read every object's size")
	printf '%-36s %12s %12s %8s\n' "$label" "$(fmt_us "$p")" "$(fmt_us "$t")" "$(ratio "$t" "$p")x"
done
