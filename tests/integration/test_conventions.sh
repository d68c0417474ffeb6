#!/usr/bin/env bash
# The tree's conventions where a new user meets them first, on real loop
# devices: values split across writes, mv and renameat2's flags, what
# `ls -l` promises, and reasons that name the real cause.
. "$(dirname "$0")/lib.sh"

R2=$(dirname "$STSFS")/tests/tools/rename2
start_daemon || exit 1
L=$MNT/loop

mkobj() { # mkobj NAME SIZE [read_only]
	mkdir "$L/$1" && put "$L/$1/size" "$2" && put "$L/$1/read_only" "${3:-0}" && put "$L/$1/active" 1
}

# ------------------------------------------------------------ split writes
t "a value split across writes"
check "loop/s" mkobj s 8M
# Each printf is one write(2); the first is refused, so the second must be too.
out=$({ printf 5; printf 12M; } 2>&1 >"$L/s/size")
eq "$(grep -c 'Invalid argument' <<<"$out")" "2" "both writes fail ($out)"
eq "$(cat "$L/s/size")" "8388608" "size unchanged"
contains "$(cat "$L/s/error")" "multiple of 512" "error keeps the first write's reason"
# A valid value in two parts: applied as it grows, complete at the end.
check "offset in two writes" bash -c "{ printf 1; printf 024; } >'$L/s/offset'"
eq "$(cat "$L/s/offset")" "1024" "offset joined"
eq "$(sysfs "$(cat "$L/s/name")" loop/offset)" "1024" "kernel offset"
# One open file, a refused write, then more: nothing more is applied.
out=$(bash -c "exec 3>'$L/s/offset'; printf bad >&3; printf 0 >&3" 2>&1)
eq "$(grep -c 'Invalid argument' <<<"$out")" "2" "writes after a refused one fail ($out)"
eq "$(cat "$L/s/offset")" "1024" "offset unchanged"
# A new open starts afresh.
check "a later echo works" put "$L/s/offset" 0
eq "$(cat "$L/s/offset")" "0" "offset reset"

# ------------------------------------------------------------------ rename
t "mv renames a loop object, its image and its record"
check "loop/a" mkobj a 8M
nm=$(cat "$L/a/name")
check "marker written" bash -c "printf stsfs-marker | dd of='$L/a/data' conv=notrunc status=none"
before_root=$(cat "$MNT/error")
check "mv loop/a loop/b" mv "$L/a" "$L/b"
check "loop/a is gone" test ! -e "$L/a"
eq "$(cat "$L/b/name")" "$nm" "the kernel device is unaffected"
eq "$(sysfs "$nm" loop/backing_file)" "$IMG/b.img" "the image was renamed with it"
check "old image name gone" test ! -e "$IMG/a.img"
eq "$(cat "$L/b/error")" "" "mv leaves no false error in the object"
eq "$(cat "$MNT/error")" "$before_root" "mv leaves no false error at the root"
eq "$(cat "$L/error")" "" "mv leaves no false error in loop/"
check "detach" put "$L/b/active" 0
check "attach again from the renamed image" put "$L/b/active" 1
eq "$(head -c 12 "$L/b/data")" "stsfs-marker" "data kept"
stop_daemon
start_daemon || exit 1
check "loop/b after a restart" test -d "$L/b"
check "loop/a not back after a restart" test ! -e "$L/a"
eq "$(cat "$L/b/active")" "1" "still active after a restart"

t "renameat2 flags"
check "RENAME_NOREPLACE to a free name" "$R2" "$L/b" "$L/c" noreplace
check "loop/d" mkdir "$L/d"
eq "$("$R2" "$L/c" "$L/d" noreplace)" "EEXIST" "RENAME_NOREPLACE onto an object"
eq "$("$R2" "$L/c" "$L/d")" "EEXIST" "plain rename onto an object never replaces it"
contains "$(cat "$L/c/error")" "loop object d exists" "reason"
eq "$("$R2" "$L/c" "$L/d" exchange)" "EINVAL" "RENAME_EXCHANGE"
contains "$(cat "$L/c/error")" "cannot be exchanged" "reason"
eq "$("$R2" "$L/c" "$L/loop7")" "EINVAL" "a kernel loop name"
contains "$(cat "$L/c/error")" "belong to the kernel" "reason"
eq "$("$R2" "$L/c" "$L/bad name")" "EINVAL" "a bad name"
check "both still there" test -d "$L/c" -a -d "$L/d"
check "inactive object without an image" mv "$L/d" "$L/e"
touch "$IMG/taken.img"
eq "$("$R2" "$L/c" "$L/taken")" "EEXIST" "an image file of that name exists"
contains "$(cat "$L/c/error")" "not this object's image" "reason"
check "c kept its image" test -f "$IMG/c.img"
rm -f "$IMG/taken.img"
check "rmdir deletes the renamed image" rmdir "$L/c"
check "image gone" test ! -e "$IMG/c.img"
rmdir "$L/e"

# ------------------------------------------------------------------- modes
t "ls -l shows what is allowed"
check "read-only loop/ro" mkobj ro 4M 1
eq "$(stat -c %A "$L/ro/data")" "-r--r--r--" "data of a read-only device"
eq "$(stat -c %A "$L/s/data")" "-rw-r--r--" "data of a writable device"
eq "$(stat -c %A "$L/s/size")" "-rw-r--r--" "an attribute"
eq "$(stat -c %A "$L/s/status.json")" "-r--r--r--" "a .json twin"
truncate -s 4M "$OUTSIDE/foreign.img"
fdev=$(losetup -f --show "$OUTSIDE/foreign.img")
fn=${fdev#/dev/}
eq "$(find "$L/$fn" -type f -perm /222 | tr '\n' ' ')" "" "no file of an external device shows write bits"
put_fails EPERM "$L/$fn/size" 16M "manage-external"
losetup -d "$fdev"

# ----------------------------------------------------------------- reasons
t "an image larger than its file system allows"
if [ "$(stat -f -c %T "$IMG")" = ext2/ext3 ]; then
	check "loop/huge" mkdir "$L/huge"
	check "size 100T" put "$L/huge/size" 100T
	expect_err ENOSPC put "$L/huge/active" 1
	contains "$(cat "$L/huge/error")" "does not allow files that large" "reason"
	case $(cat "$L/huge/error") in *"File too large"*) fail "reason says File too large" ;; *) pass ;; esac
	check "rmdir loop/huge" rmdir "$L/huge"
else
	echo "note: the image directory is not ext4; the 100T check needs ext4's 16T file limit"
fi

t "error says when and what"
check "loop/w" mkdir "$L/w"
expect_err EINVAL put "$L/w/size" 5
stamped "$L/w/error" "size write"
eq "$(reason "$L/w/error")" "$(reason "$L/w/error")" "reading it twice gives the same"
first=$(cat "$L/w/error")
sleep 1.1
check "a later write succeeds" put "$L/w/size" 4M
eq "$(cat "$L/w/error")" "$first" "a success leaves the old failure, whose time shows its age"
expect_err EINVAL put "$L/w/sector_size" 3
stamped "$L/w/error" "sector_size write"
case $(cat "$L/w/error") in "$first") fail "the next failure replaces the old one" ;; *) pass ;; esac
expect_err EINVAL mkdir "$L/bad:name"
stamped "$L/error" "mkdir bad:name"
stamped "$MNT/error" "loop/bad:name mkdir"
check "rmdir loop/w" rmdir "$L/w"

for n in s b ro; do rmdir "$L/$n" 2>/dev/null; done
for n in s ro; do check "rmdir loop/$n" test ! -e "$L/$n"; done
finish
