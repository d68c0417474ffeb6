#!/usr/bin/env bash
# Throughput of a loop device's bytes through stsfs's `data` file, as a ratio
# to the same I/O on the device node, measured side by side in one run (the
# machines are noisy: compare ratios, not seconds). Root; real loop devices.
#   bench/data_throughput.sh [SIZE_MIB] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-256}
rounds=${2:-3}
scripts/build.sh
W=$(mktemp -d /var/tmp/stsfs-bench.XXXXXX)
mkdir -p "$W/mnt" "$W/img" "$W/state"
build/stsfs --propagation none --image-dir "$W/img" --state-dir "$W/state" "$W/mnt"
cleanup() {
	rmdir "$W/mnt/loop/b" 2>/dev/null || true
	umount "$W/mnt" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
mkdir "$W/mnt/loop/b"
echo "${size_mib}M" >"$W/mnt/loop/b/size"
echo 1 >"$W/mnt/loop/b/active"
dev=$(cat "$W/mnt/loop/b/device")
dd if=/dev/urandom of="$dev" bs=1M count="$size_mib" oflag=direct status=none

# seconds for one dd; drops the page cache of the loop device first
secs() {
	local start end
	sync
	echo 3 >/proc/sys/vm/drop_caches
	start=$(date +%s.%N)
	dd "$@" bs=1M count="$size_mib" status=none
	end=$(date +%s.%N)
	echo "$end - $start" | bc -l
}

printf '%-6s %-5s %10s %10s %8s\n' round op device data ratio
for r in $(seq "$rounds"); do
	d=$(secs if="$dev" of=/dev/null iflag=direct)
	f=$(secs if="$W/mnt/loop/b/data" of=/dev/null)
	printf '%-6s %-5s %10.3f %10.3f %8.2f\n' "$r" read "$d" "$f" "$(echo "$f / $d" | bc -l)"
	d=$(secs if=/dev/zero of="$dev" oflag=direct conv=notrunc)
	f=$(secs if=/dev/zero of="$W/mnt/loop/b/data" conv=notrunc)
	printf '%-6s %-5s %10.3f %10.3f %8.2f\n' "$r" write "$d" "$f" "$(echo "$f / $d" | bc -l)"
done
echo "ratio = seconds through data / seconds on the device node (1.00 = no overhead)"
