#!/usr/bin/env bash
# Faults a user meets (issue 10, item 4), on real loop devices: each gives
# a clear error and changes nothing half-way; the daemon and the other
# objects carry on.
. "$(dirname "$0")/lib.sh"

start_daemon || exit 1
L=$MNT/loop

t "a corrupt record: that object is left out, with the reason in loop/error"
check "loop/a" mkdir "$L/a"
check "loop/b" mkdir "$L/b"
check "b size" put "$L/b/size" 4M
stop_daemon
printf 'this is not a record\n' >"$STATE/loop/a"
check "the daemon starts" start_daemon
# Only our objects: another suite's loop devices (loopN) may be listed too.
eq "$(ls "$L" | grep -v -e '^error$' -e '^loop[0-9]' | tr '\n' ' ')" "b " "b is there, a is left out"
contains "$(cat "$L/error")" "saved loop object a left out: line 1: expected key=value" "loop/error says why"
eq "$(cat "$L/b/size")" "4194304" "b kept its size"
check "a can be made again" mkdir "$L/a"
check "rmdir a" rmdir "$L/a"

t "the state directory read-only: a change is refused and nothing changes"
check "read-only bind of the state directory" bash -c "mount --bind '$STATE' '$STATE' && mount -o remount,bind,ro '$STATE'"
expect_err EROFS bash -c "echo 8M > '$L/b/size'"
contains "$(cat "$L/b/error")" "cannot save state of loop/b" "error says the state could not be saved"
eq "$(cat "$L/b/size")" "4194304" "size unchanged"
expect_err EROFS mkdir "$L/c"
check "c was not made" test ! -e "$L/c"
check "state directory writable again" umount "$STATE"
check "the change goes through now" put "$L/b/size" 8M
eq "$(cat "$L/b/size")" "8388608" "new size"

t "the image directory gone: activation makes it again"
rm -rf "$IMG"
check "b active" put "$L/b/active" 1
check "its image is back" test -f "$IMG/b.img"

t "a backing file deleted while active"
truncate -s 4M "$ALLOW/f.img"
check "loop/f" mkdir "$L/f"
check "f backing_file" put "$L/f/backing_file" "$ALLOW/f.img"
check "f active" put "$L/f/active" 1
rm "$ALLOW/f.img"
eq "$(cat "$L/f/active")" "1" "still active: the kernel holds the file"
contains "$(cat "$L/f/status")" "(deleted)" "status shows the kernel's view of the path"
check "its data still reads" dd if="$L/f/data" of=/dev/null bs=64k count=4 status=none
check "f inactive" put "$L/f/active" 0
expect_err ENOENT bash -c "echo 1 > '$L/f/active'"
contains "$(cat "$L/f/error")" "No such file or directory" "reactivation says the file is gone"

check "rmdir f" rmdir "$L/f"

t "missing persistent-data tools: ENODEV, naming the tool and its package"
# The daemon finds the tools through PATH: a wrapper starts it with a PATH
# that has none of them (an empty directory).
mkdir "$WORK/nobin"
printf '#!/bin/sh\nexec env PATH=%s %s "$@"\n' "$WORK/nobin" "$STSFS" >"$WORK/stsfs-notools"
chmod +x "$WORK/stsfs-notools"
stop_daemon
REAL_STSFS=$STSFS
STSFS=$WORK/stsfs-notools
check "the daemon starts without the tools" start_daemon
STSFS=$REAL_STSFS
contains "$(cat "$MNT/version")" "thin_tools=unavailable" "version says the tools are unavailable"
for n in meta tdata; do
	check "loop/$n" mkdir "$L/$n"
	check "$n size" put "$L/$n/size" 4M
	check "$n active" put "$L/$n/active" 1
done
D=$MNT/dm
check "dm/p" mkdir "$D/p"
check "a thin-pool table on the loops (staged)" put "$D/p/table" "0 8192 thin-pool loop/meta loop/tdata 128 0"
expect_err ENODEV cat "$D/p/metadata/check"
contains "$(cat "$D/p/error")" "thin_check is not installed" "error names the tool"
contains "$(cat "$D/p/error")" "thin-provisioning-tools" "error names the package"
expect_err ENODEV cat "$D/p/metadata/dump"
contains "$(cat "$D/p/error")" "thin_dump is not installed" "error names thin_dump"
check "mkdir thin/q" mkdir "$MNT/thin/q"
check "q data_size" put "$MNT/thin/q/data_size" 16M
expect_err ENODEV cat "$MNT/thin/q/metadata_size"
contains "$(cat "$MNT/thin/q/error")" "thin_metadata_size is not installed: install the thin-provisioning-tools" \
	"error names thin_metadata_size and the package"
check "rmdir thin/q" rmdir "$MNT/thin/q"
check "rmdir dm/p" rmdir "$D/p"
check "rmdir meta tdata" rmdir "$L/meta" "$L/tdata"
stop_daemon
check "the daemon starts with the tools" start_daemon

t "a temporary record left by a killed save is removed at start-up, not loaded"
stop_daemon
printf 'size=1048576\n' >"$STATE/loop/.b.tmp"
printf 'size=1048576\n' >"$STATE/loop/.ghost.tmp"
check "the daemon starts" start_daemon
check "the leftovers are gone" test ! -e "$STATE/loop/.b.tmp" -a ! -e "$STATE/loop/.ghost.tmp"
eq "$(ls -A "$STATE/loop" | tr '\n' ' ')" "b " "only b's record is left"
contains "$(cat "$WORK/daemon.log")" "loop/.ghost.tmp, left by an unfinished save" "the daemon says so"
eq "$(cat "$L/b/size")" "8388608" "b has its saved size, not the leftover's"
check "no object ghost" test ! -e "$L/ghost" -a ! -e "$L/.ghost"
check "rmdir b" rmdir "$L/b"

t "the state directory full: a change is refused with ENOSPC and nothing changes"
# A small tmpfs as the state directory from the start, then filled up.
stop_daemon
check "tmpfs state directory" mount -t tmpfs -o size=1m,mode=0700 stsfs-faults "$STATE"
check "the daemon starts" start_daemon
check "loop/s" mkdir "$L/s"
check "s size" put "$L/s/size" 4M
check "s active" put "$L/s/active" 1
S=$(cat "$L/s/name")
check "loop/i (no image yet)" mkdir "$L/i"
check "i size" put "$L/i/size" 4M
check "loop/j (its image made)" mkdir "$L/j"
check "j size" put "$L/j/size" 4M
check "j active" put "$L/j/active" 1
check "j inactive" put "$L/j/active" 0
check "loop/k" mkdir "$L/k"
check "k size" put "$L/k/size" 4M
check "k active" put "$L/k/active" 1
cp "$STATE/loop/s" "$WORK/s.record"
loops_before=$(our_loops | wc -l)
dd if=/dev/zero of="$STATE/.filler" bs=4k status=none 2>/dev/null
check "the state directory is full" bash -c "! printf x > '$STATE/.probe' 2>/dev/null || ! test -s '$STATE/.probe'"
rm -f "$STATE/.probe"
expect_err ENOSPC mkdir "$L/c"
check "c was not made" test ! -e "$L/c"
contains "$(cat "$L/error")" "cannot save state of loop/c: No space left on device" "loop/error says why"
contains "$(cat "$L/error")" "state directory is full" "... and that the state directory is full"
put_fails ENOSPC "$L/s/size" 8M "cannot save state of loop/s"
eq "$(( $(sysfs "$S" size) * 512 ))" "4194304" "the kernel's size unchanged"
eq "$(stat -c %s "$IMG/s.img")" "4194304" "the image unchanged"
put_fails ENOSPC "$L/s/autoclear" 1 "No space left on device"
eq "$(sysfs "$S" loop/autoclear)" "0" "the kernel's autoclear unchanged"
put_fails ENOSPC "$L/s/active" 0 "No space left on device"
eq "$(sysfs "$S" loop/backing_file)" "$IMG/s.img" "the device still attached"
put_fails ENOSPC "$L/i/active" 1 "state directory is full"
check "i has no image" test ! -e "$IMG/i.img"
put_fails ENOSPC "$L/j/active" 1 "state directory is full"
eq "$(our_loops | wc -l)" "$loops_before" "no loop device attached or left"
expect_err ENOSPC mv "$L/s" "$L/t"
check "s keeps its name" test -d "$L/s" -a ! -e "$L/t" -a -e "$IMG/s.img"
eq "$(cat "$STATE/loop/s")" "$(cat "$WORK/s.record")" "s's record intact"
eq "$(ls -A "$STATE/loop" | tr '\n' ' ')" "i j k s " "no temporary record left"
check "rmdir works while full (it only deletes)" rmdir "$L/j" "$L/k"
check "free the room" rm "$STATE/.filler"
check "mkdir now" mkdir "$L/c"
check "size now" put "$L/s/size" 8M
eq "$(( $(sysfs "$S" size) * 512 ))" "8388608" "the kernel's size follows"
check "autoclear now" put "$L/s/autoclear" 0
check "i active now" put "$L/i/active" 1
check "s inactive now" put "$L/s/active" 0
check "rmdir c i s" rmdir "$L/c" "$L/i" "$L/s"
stop_daemon
check "unmount the tmpfs" umount "$STATE"
t "a rename interrupted by a kill is finished at start-up"
check "the daemon starts" start_daemon
check "loop/r" mkdir "$L/r"
check "r size" put "$L/r/size" 4M
check "r active" put "$L/r/active" 1
check "r inactive" put "$L/r/active" 0
stop_daemon
# What mv loop/r loop/r2 leaves when killed after its first step: the new
# record, naming the old one, beside the old record and the old image.
{ cat "$STATE/loop/r"; echo "renamed_from=r"; } >"$STATE/loop/r2"
check "the daemon starts" start_daemon
eq "$(ls "$L" | grep '^r' | tr '\n' ' ')" "r2 " "only the new name is listed"
check "the image has the new name" test -f "$IMG/r2.img"
check "the old image is gone" test ! -e "$IMG/r.img"
check "the old record is gone" test ! -e "$STATE/loop/r"
check "the new record no longer names the old" bash -c "! grep -q renamed_from '$STATE/loop/r2'"
eq "$(cat "$L/r2/size")" "4194304" "r2 kept the size"
check "r2 activates on its image" put "$L/r2/active" 1
check "rmdir r2" rmdir "$L/r2"

t "a first activation interrupted by a kill: its image is the object's"
check "the daemon starts" start_daemon
check "loop/f (made by a kill after the file)" mkdir "$L/f"
check "loop/g (made by a kill before the file)" mkdir "$L/g"
check "loop/h (an image not its own)" mkdir "$L/h"
for o in f g h; do check "$o size" put "$L/$o/size" 4M; done
stop_daemon
# What echo 1 > active leaves when killed once the record claims the image:
# f's image made (empty), g's not yet. No record claims h.img.
for o in f g; do
	sed -i 's/^image_made=.*/image_made=1/' "$STATE/loop/$o"
	echo "image_pending=1" >>"$STATE/loop/$o"
done
: >"$IMG/f.img"
echo "not h's" >"$IMG/h.img"
check "the daemon starts" start_daemon
check "f activates on the image the killed try made" put "$L/f/active" 1
check "g activates, its image made now" put "$L/g/active" 1
check "f's image sized" test "$(stat -c %s "$IMG/f.img")" = 4194304
check "the records no longer say pending" bash -c "! grep -q image_pending '$STATE/loop/f' '$STATE/loop/g'"
expect_err EEXIST put "$L/h/active" 1
contains "$(cat "$L/h/error")" "not this object's image" "h/error says why"
check "h claims no image" grep -q "^image_made=0" "$STATE/loop/h"
check "rmdir f g h" rmdir "$L/f" "$L/g" "$L/h"
check "f's and g's images deleted" test ! -e "$IMG/f.img" -a ! -e "$IMG/g.img"
eq "$(cat "$IMG/h.img")" "not h's" "h.img, not h's, kept"
rm -f "$IMG/h.img"

finish
