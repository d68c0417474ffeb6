#!/usr/bin/env bash
# The kernel caches names and attributes (--cache-timeout, default 1 s);
# what they show must still be fresh at once: devices made and removed
# with losetup appear and go in the next lookup, an object's files follow
# its writes before the write returns, renames move the name, and a device
# detached behind the tree's back is noticed (uevents).
. "$(dirname "$0")/lib.sh"

start_daemon || exit 1
L=$MNT/loop
img=$ALLOW/ext.img
truncate -s 8M "$img"

# until SECONDS COMMAND...: COMMAND succeeds within that time (asynchronous
# notice of a change made behind the tree's back).
until_ok() {
	local n=$(($1 * 20))
	shift
	for _ in $(seq "$n"); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

t "devices made and removed with losetup"
check "loop/ read before" ls "$L"
dev=$(losetup -f --show "$img")
name=$(basename "$dev")
check "$name is in the next ls" bash -c "ls '$L' | grep -qx '$name'"
check "$name resolves" test -d "$L/$name"
eq "$(cat "$L/$name/active")" "1" "$name reads active"
losetup -d "$dev"
check "$name is gone from the next ls" bash -c "! ls '$L' | grep -qx '$name'"
check "$name no longer resolves" test ! -e "$L/$name"

t "an object's files follow its writes"
check "mkdir loop/c" mkdir "$L/c"
check "no data while inactive" test ! -e "$L/c/data"
check "size" put "$L/c/size" 4M
check "active" put "$L/c/active" 1
check "data right after activation" test -e "$L/c/data"
eq "$(stat -c %s "$L/c/data")" "4194304" "data's size"
check "grow" put "$L/c/size" 8M
eq "$(stat -c %s "$L/c/data")" "8388608" "data's size right after growing"
check "inactive" put "$L/c/active" 0
check "no data right after deactivation" test ! -e "$L/c/data"
eq "$(stat -c %A "$L/c/active")" "-rw-r--r--" "active's mode"

t "renames move the name"
check "mv loop/c loop/d" mv "$L/c" "$L/d"
check "c is gone" test ! -e "$L/c"
eq "$(cat "$L/d/size")" "8388608" "d reads c's size"
check "mkdir c again" mkdir "$L/c"
eq "$(cat "$L/c/size")" "0" "a new c is a new object"
check "rmdir c" rmdir "$L/c"

t "a device detached behind the tree's back"
check "d active" put "$L/d/active" 1
check "d's data" test -e "$L/d/data"
losetup -d "$(cat "$L/d/device")"
eq "$(cat "$L/d/active")" "0" "d reads inactive at once"
check "d's data goes (uevent)" until_ok 5 test ! -e "$L/d/data"
check "rmdir d" rmdir "$L/d"

t "--cache-timeout 0 caches nothing and works the same"
stop_daemon
check "restart with --cache-timeout 0" start_daemon --cache-timeout 0
check "mkdir loop/z" mkdir "$L/z"
check "z size" put "$L/z/size" 4M
check "z active" put "$L/z/active" 1
check "z data" test -e "$L/z/data"
check "rmdir z" rmdir "$L/z"
stop_daemon
check "--cache-timeout -1 is refused" bash -c "! '$STSFS' --cache-timeout -1 '$MNT' 2>/dev/null"
start_daemon || exit 1
finish
