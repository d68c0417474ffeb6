#!/usr/bin/env bash
# Paths as the writer sees them (docs/containers.md, "Paths"): backing_file
# and the /dev paths of table references are resolved in the writing
# process's root and mount namespace and opened with its credentials, then
# judged by policy as the host file they are. Containers are played by
# unshare: a mount namespace of its own (a rootful container), and a user
# namespace of uid 1000 (a rootless one).
. "$(dirname "$0")/lib.sh"

USR=1000
chmod 0755 "$WORK"
mkdir -p "$WORK/priv" "$WORK/view" "$WORK/devns" "$ALLOW/inner"
start_daemon --allow-backing "$ALLOW" -o allow_other --owner "$USR:$USR" || exit 1
L=$MNT/loop

# in_mountns SCRIPT: bash as root in a mount namespace of its own.
in_mountns() { unshare --mount --propagation private bash -c "$1"; }
# in_userns SCRIPT: bash as root of a user+mount namespace of host uid 1000.
in_userns() { setpriv --reuid=$USR --regid=$USR --clear-groups -- unshare -Urm bash -c "$1"; }
# kv FILE KEY: the value of KEY in a key=value file.
kv() { sed -n "s/^$2=//p" "$1"; }

# ------------------------------------------------------------------------
t "a file only the writer's mount namespace has"
mkdir "$L/v"
out=$(in_mountns "mount -t tmpfs none '$WORK/priv' && truncate -s 8M '$WORK/priv/f.img' &&
	printf in-ns | dd of='$WORK/priv/f.img' conv=notrunc status=none &&
	echo '$WORK/priv/f.img' > '$L/v/backing_file' && echo 1 > '$L/v/active'" 2>&1)
eq "$out" "" "attached from inside the namespace"
check "the host has no such file" test ! -e "$WORK/priv/f.img"
eq "$(cat "$L/v/active")" "1" "active"
eq "$(cat "$L/v/backing_file")" "$WORK/priv/f.img" "backing_file reads back what the writer wrote"
eq "$(kv "$L/v/status" back_file_writer)" "$WORK/priv/f.img" "status adds the writer's path"
check "status keeps the kernel's view" grep -q '^back_file=' "$L/v/status"
eq "$(head -c 5 "$L/v/data")" "in-ns" "data reads the namespace's file"
check "deactivate" put "$L/v/active" 0
check "activate again (the file opened at the write is kept)" put "$L/v/active" 1
check "deactivate" put "$L/v/active" 0
stop_daemon
start_daemon --allow-backing "$ALLOW" -o allow_other --owner "$USR:$USR" || exit 1
put_fails ENOENT "$L/v/active" 1 "only in its writer's mount namespace"
contains "$(cat "$L/v/error")" "write backing_file again" "the reason says what to do"
check "rmdir loop/v" rmdir "$L/v"

# ------------------------------------------------------------------------
t "a bind mount: the writer's path, judged as the host file"
truncate -s 4M "$ALLOW/inner/b.img" "$OUTSIDE/s.img"
mkdir "$L/b"
out=$(in_mountns "mount --bind '$ALLOW/inner' '$WORK/view' &&
	echo '$WORK/view/b.img' > '$L/b/backing_file' && echo 1 > '$L/b/active'" 2>&1)
eq "$out" "" "attached through the namespace's bind mount"
eq "$(cat "$L/b/backing_file")" "$WORK/view/b.img" "backing_file reads back the writer's path"
eq "$(kv "$L/b/status" back_file)" "$ALLOW/inner/b.img" "status: the kernel's view is the host path"
eq "$(kv "$L/b/status" back_file_writer)" "$WORK/view/b.img" "status: and the writer's"
check "deactivate" put "$L/b/active" 0
out=$(in_mountns "mount --bind '$OUTSIDE' '$WORK/view' && echo '$WORK/view/s.img' > '$L/b/backing_file'" 2>&1)
contains "$out" "Permission denied" "a host file outside --allow-backing, through a bind mount: EACCES"
contains "$(cat "$L/b/error")" "resolves to $OUTSIDE/s.img) is outside the allowed directories" "the reason names the host file"
eq "$(cat "$L/b/backing_file")" "$WORK/view/b.img" "backing_file unchanged"
# An absolute symlink in the namespace stays inside its root.
out=$(in_mountns "mount -t tmpfs none '$WORK/priv' && ln -s '$ALLOW/inner/b.img' '$WORK/priv/link' &&
	echo '$WORK/priv/link' > '$L/b/backing_file'" 2>&1)
eq "$out" "" "a symlink the namespace resolves"
check "rmdir loop/b" rmdir "$L/b"

# ------------------------------------------------------------------------
t "opened with the writer's credentials"
truncate -s 4M "$ALLOW/secret.img" "$ALLOW/ro.img" "$ALLOW/mine.img"
chmod 0600 "$ALLOW/secret.img"
chmod 0644 "$ALLOW/ro.img"
chown $USR:$USR "$ALLOW/mine.img"
chmod 0755 "$ALLOW"
mkdir "$L/c"
out=$(in_userns "echo '$ALLOW/secret.img' > '$L/c/backing_file'" 2>&1)
contains "$out" "Permission denied" "a file uid $USR may not read: EACCES"
contains "$(cat "$L/c/error")" "permission denied to uid $USR" "the reason names the writer"
eq "$(cat "$L/c/backing_file")" "" "nothing recorded"
check "root may attach the same file" put "$L/c/backing_file" "$ALLOW/secret.img"
check "unset" put "$L/c/backing_file" ""
out=$(in_userns "echo '$ALLOW/ro.img' > '$L/c/backing_file'" 2>&1)
eq "$out" "" "a file uid $USR may only read is accepted"
put_fails EACCES "$L/c/active" 1 "may only read"
check "read_only 1" put "$L/c/read_only" 1
check "then it activates" put "$L/c/active" 1
eq "$(kv "$L/c/status" ro)" "1" "read-only device"
check "deactivate" put "$L/c/active" 0
out=$(in_userns "echo '$ALLOW/mine.img' > '$L/c/backing_file' && echo 0 > '$L/c/read_only' && echo 1 > '$L/c/active'" 2>&1)
eq "$out" "" "its own file, read-write"
eq "$(kv "$L/c/status" ro)" "0" "read-write device"
check "rmdir loop/c" rmdir "$L/c"

# ------------------------------------------------------------------------
t "a /dev path in a table is the writer's"
check "loop/m" bash -c "mkdir '$L/m' && echo 4M > '$L/m/size' && echo 1 > '$L/m/active'"
mn=$(cat "$L/m/name")
mkdir "$MNT/dm/t"
out=$(in_mountns "mount -t tmpfs none '$WORK/devns' && mknod '$WORK/devns/disk' b 7 ${mn#loop} &&
	echo '0 8 linear $WORK/devns/disk 0' > '$MNT/dm/t/table'" 2>&1)
eq "$out" "" "a device node only the namespace has, naming our loop device"
check "the host has no such node" test ! -e "$WORK/devns/disk"
truncate -s 4M "$OUTSIDE/host.img"
hdev=$(losetup -f --show "$OUTSIDE/host.img")
out=$(in_mountns "mount -t tmpfs none '$WORK/devns' && mknod '$WORK/devns/host' b 7 ${hdev#/dev/loop} &&
	echo '0 8 linear $WORK/devns/host 0' > '$MNT/dm/t/table'" 2>&1)
contains "$out" "Permission denied" "a node for a host device: EACCES"
contains "$(cat "$MNT/dm/t/error")" "was not created by stsfs" "the policy judges the device it names"
losetup -d "$hdev"
out=$(in_mountns "echo '0 8 linear $WORK/devns/none 0' > '$MNT/dm/t/table'" 2>&1)
contains "$out" "No such file or directory" "a path the writer does not have: ENOENT"
check "rmdir dm/t" rmdir "$MNT/dm/t"
check "rmdir loop/m" rmdir "$L/m"

finish
