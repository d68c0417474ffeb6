#!/usr/bin/env bash
# Shows why a VM suite syncs a file it writes on the shared root before it
# compares it after drop_caches (docs/vm.md, "A file written in the guest can
# read back half-written"). Run in the VM:
#   tests/vm/run-in-vm.sh -- bash tests/vm/9p-writeback.sh [--sync]
# It writes SIZE (64M) of random bytes under /var/tmp (9p), then for SECS (50)
# drops the caches and compares the file with a copy on the guest's /dev/shm,
# printing each read that differs. With --sync the file is synced first and
# no read differs.
set -u
[[ -d /sys/module/9p ]] || { echo "not in the VM (no 9p)"; exit 125; }
d=$(mktemp -d /var/tmp/stsfs-9p.XXXXXX)
ref=$(mktemp /dev/shm/stsfs-9p.XXXXXX)
trap 'rm -rf "$d" "$ref"' EXIT
head -c "${SIZE:-64M}" /dev/urandom >"$ref"
cp "$ref" "$d/rand"
[[ ${1:-} == --sync ]] && sync "$d/rand"
start=$SECONDS bad=0 n=0
while ((SECONDS - start < ${SECS:-50})); do
	echo 3 >/proc/sys/vm/drop_caches
	n=$((n + 1))
	if ! cmp -s "$d/rand" "$ref"; then
		bad=$((bad + 1))
		echo "t=$((SECONDS - start))s read $n differs: size $(stat -c %s "$d/rand") of $(stat -c %s "$ref")"
	fi
done
echo "reads=$n differing=$bad"
