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
eq "$(ls "$L" | grep -v error | tr '\n' ' ')" "b " "b is there, a is left out"
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

check "rmdir f b" rmdir "$L/f" "$L/b"
finish
