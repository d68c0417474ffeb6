#!/usr/bin/env bash
# Clears what a suite killed at its time limit left behind: its mounts
# (a hung one is aborted through fusectl first, so umount cannot wait on
# it), its daemons, the loop devices backed by its files and its
# directories. Only the suites' own directories are touched.
set -u
PARENT=${STSFS_TEST_DIR:-/var/tmp}
dirs=("$PARENT"/stsfs-test.*)
[ -e "${dirs[0]}" ] || exit 0

mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null

for d in "${dirs[@]}"; do
	pkill -KILL -f -- "--state-dir $d/" 2>/dev/null
	# mountinfo, not stat(2): a hung mount would hang the stat.
	awk -v w="$d/" 'index($5, w) == 1 { print $3, $5 }' /proc/self/mountinfo | sort -r -k2 |
		while read -r majmin mp; do
			conn=/sys/fs/fuse/connections/${majmin#*:}
			[ -e "$conn/abort" ] && echo 1 >"$conn/abort"
			umount -l "$mp" 2>/dev/null
			echo "reaped mount $mp"
		done
	losetup -nO NAME,BACK-FILE 2>/dev/null | awk -v w="$d/" 'index($2, w) == 1 { print $1 }' | while read -r dev; do
		losetup -d "$dev" && echo "reaped $dev"
	done
	rm -rf "$d"
done
exit 0
