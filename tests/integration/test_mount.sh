#!/usr/bin/env bash
# mount -t fuse.stsfs and /etc/fstab (docs/mount.md): mount(8) runs
# mount.fuse3, which runs "stsfs SOURCE MOUNTPOINT -o OPTIONS" (stsfs found
# in PATH); every stsfs option also works as a -o mount option.
. "$(dirname "$0")/lib.sh"

if ! command -v mount.fuse3 >/dev/null; then
	echo "test_mount.sh: mount.fuse3 is missing (the fuse3 package)"
	exit 1
fi
# mount(8) gives its helpers a fixed PATH (/usr/local/sbin first): the
# build's binary goes there for the length of the test, where an installed
# stsfs would be.
HELPER=/usr/local/sbin/stsfs
if [ -e "$HELPER" ] || command -v stsfs >/dev/null; then
	echo "test_mount.sh: an stsfs is installed ($(command -v stsfs || echo "$HELPER")); this test would mount it, not the build's"
	exit 1
fi
ln -s "$STSFS" "$HELPER"
trap 'rm -f "$HELPER"; cleanup' EXIT
OPTS=image_dir=$IMG,state_dir=$STATE,allow_backing=$ALLOW,cache_timeout=0,log_level=warning
L=$MNT/loop

# The supervisor of the mount at $MNT.
supervisor_of_mount() { pgrep -f "stsfs.* $MNT( |$)" -o; }

t "mount -t fuse.stsfs with -o options"
check "mount" mount -t fuse.stsfs stsfs "$MNT" -o "$OPTS"
check "mounted as fuse.stsfs" grep -q " $MNT fuse.stsfs " /proc/mounts
check "the tree answers" test -f "$MNT/version"
truncate -s 4M "$ALLOW/back.img"
check "loop/m" mkdir "$L/m"
check "allow_backing= took effect" put "$L/m/backing_file" "$ALLOW/back.img"
check "m active" put "$L/m/active" 1
check "state_dir= took effect" test -f "$STATE/loop/m"
check "m inactive" put "$L/m/active" 0
check "rmdir m" rmdir "$L/m"
check "loop/i" mkdir "$L/i"
check "i size" put "$L/i/size" 4M
check "i active" put "$L/i/active" 1
check "image_dir= took effect" test -f "$IMG/i.img"
check "rmdir i" rmdir "$L/i"
sup=$(supervisor_of_mount)
check "umount" umount "$MNT"
for _ in $(seq 50); do kill -0 "$sup" 2>/dev/null || break; sleep 0.1; done
check "the daemon ended with the unmount" bash -c "! kill -0 $sup 2>/dev/null"

t "owner= and mode= as mount options"
check "mount" mount -t fuse.stsfs stsfs "$MNT" -o "$OPTS,owner=1000:1000,mode=0750,allow_other"
eq "$(stat -c '%u:%g %a' "$MNT/loop")" "1000:1000 750" "owner and mode of loop/"
check "stsfs's options never reached mount(2)" bash -c "! grep ' $MNT ' /proc/mounts | grep -Eq 'mode=0750|owner=|image_dir='"
check "umount" umount "$MNT"
sleep 0.3

t "allow_backing= repeated, allow_host_devices and manage_external as mount options"
mkdir -p "$WORK/allowed2"
truncate -s 4M "$WORK/allowed2/two.img"
check "mount" mount -t fuse.stsfs stsfs "$MNT" -o "$OPTS,allow_backing=$WORK/allowed2,allow_host_devices,manage_external"
check "loop/a" mkdir "$L/a"
check "the first allow_backing= still holds" put "$L/a/backing_file" "$ALLOW/back.img"
check "rmdir a" rmdir "$L/a"
check "loop/b" mkdir "$L/b"
check "the second allow_backing= holds" put "$L/b/backing_file" "$WORK/allowed2/two.img"
check "rmdir b" rmdir "$L/b"
check "umount" umount "$MNT"
sleep 0.3

t "an /etc/fstab line, mounted by its mount point"
printf 'stsfs %s fuse.stsfs %s,nofail 0 0\n' "$MNT" "$OPTS" >"$WORK/fstab"
check "mount -T FSTAB MOUNTPOINT" mount -T "$WORK/fstab" "$MNT"
check "the tree answers" test -f "$MNT/version"
check "umount" umount "$MNT"
sleep 0.3

t "a bad mount option fails the mount with the reason"
out=$(mount -t fuse.stsfs stsfs "$MNT" -o "$OPTS,mode=99x" 2>&1)
eq "$?" "1" "mount's exit status"
contains "$out" "--mode wants an octal mode" "the reason"
check "nothing mounted" bash -c "! grep -q ' $MNT ' /proc/mounts"
t "a relative mount point and relative directories, from where stsfs was started"
check "stsfs mnt (relative)" bash -c "cd '$WORK' && '$STSFS' --image-dir images --state-dir state mnt"
check "the tree answers" test -f "$MNT/version"
check "mkdir loop/rel" mkdir "$MNT/loop/rel"
check "its record is in the relative state dir" test -f "$STATE/loop/rel"
check "rmdir loop/rel" rmdir "$MNT/loop/rel"
check "umount" umount "$MNT"
sleep 0.3

rm -f "$HELPER"
finish
