#!/usr/bin/env bash
# Security for containers that bind-mount the tree (docs/security.md): who may
# see and change it (--owner, --mode, -o allow_other), what tables, thin pools,
# backing files and data files may reach. Users are uid 65534 (other) and
# uid 1000 (owner), each also as root of its own user and mount namespace
# (unshare -Urm), which is what a rootless container's root is to the host.
. "$(dirname "$0")/lib.sh"

OWNER=1000
OTHER=65534

# as UID COMMAND...: run as that user (no groups).
as() {
	local uid=$1
	shift
	setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"
}
# in_ns UID SCRIPT: run SCRIPT in bash as root of a new user+mount namespace
# whose root is host uid UID; the tree is bind-mounted at /mnt/sts there ($1).
in_ns() {
	local uid=$1
	shift
	as "$uid" unshare -Urm bash -c 'mount --bind "$0/mnt" "$0/ns" && cd "$0/ns" && eval "$1"' \
		"$WORK" "$1"
}
# ns_err UID ERRNO SCRIPT: SCRIPT fails in the namespace with ERRNO's message.
ns_err() {
	local uid=$1 want=$2 out
	if out=$(in_ns "$uid" "$3" 2>&1); then
		fail "'$3' as root of a namespace of uid $uid succeeded, want $want"
	else
		contains "$out" "$(errtext "$want")" "'$3' in namespace of uid $uid"
	fi
}
# Loop devices made here with losetup, outside stsfs, are detached before
# finish (lib.sh's cleanup also detaches anything backed by $WORK).
q() { "$@" >/dev/null; } # check ... q COMMAND: the command's output is not wanted
chmod 0755 "$WORK" # the users below must reach the mount point
mkdir -m 0755 "$WORK/ns" # where a namespace bind-mounts the tree

# ---------------------------------------------------------------------------
t "without allow_other only root sees the tree"
start_daemon --owner "$OWNER:$OWNER" || exit 1
check "root lists the tree" test -d "$MNT/loop"
expect_err EACCES as "$OTHER" ls "$MNT"
expect_err EACCES as "$OWNER" ls "$MNT"  # even the owner: the kernel lets only the mounter in
expect_err EACCES as "$OTHER" cat "$MNT/version"
ns_err "$OTHER" EACCES 'ls loop'
ns_err "$OWNER" EACCES 'cat version'
stop_daemon

# ---------------------------------------------------------------------------
t "allow_other, --owner, --mode 0755: others read, only the owner changes"
start_daemon -o allow_other --owner "$OWNER:$OWNER" --mode 0755 || exit 1
eq "$(stat -c '%u:%g %a' "$MNT/loop")" "$OWNER:$OWNER 755" "loop/ owner and mode"
check "other lists loop/" q as "$OTHER" ls "$MNT/loop"
check "other reads version" q as "$OTHER" cat "$MNT/version"
expect_err EACCES as "$OTHER" mkdir "$MNT/loop/x"
check "no object made by other" test ! -e "$MNT/loop/x"
check "owner mkdir loop/o" as "$OWNER" mkdir "$MNT/loop/o"
check "owner sets size" as "$OWNER" bash -c "echo 1M > '$MNT/loop/o/size'"
check "owner activates" as "$OWNER" bash -c "echo 1 > '$MNT/loop/o/active'"
eq "$(cat "$MNT/loop/o/active")" 1 "loop/o active"
check "owner writes data" as "$OWNER" dd if=/dev/zero of="$MNT/loop/o/data" bs=4k count=1 conv=notrunc,fsync status=none
check "other reads name" q as "$OTHER" cat "$MNT/loop/o/name"
expect_err EACCES as "$OTHER" bash -c "echo 2M > '$MNT/loop/o/size'"
eq "$(cat "$MNT/loop/o/size")" 1048576 "size unchanged after other's write"
expect_err EACCES as "$OTHER" bash -c "echo 0 > '$MNT/loop/o/active'"
eq "$(cat "$MNT/loop/o/active")" 1 "still active after other's write"
expect_err EACCES as "$OTHER" dd if=/dev/zero of="$MNT/loop/o/data" bs=4k count=1 conv=notrunc status=none
expect_err EACCES as "$OTHER" rmdir "$MNT/loop/o"
expect_err EACCES as "$OTHER" mv "$MNT/loop/o" "$MNT/loop/p"
check "loop/o still there" test -d "$MNT/loop/o"
expect_err EACCES as "$OTHER" mkdir "$MNT/dm/d"
expect_err EACCES as "$OTHER" mkdir "$MNT/thin/p"
expect_err EPERM as "$OTHER" chmod 0777 "$MNT/loop"
expect_err EPERM as "$OTHER" chown "$OTHER" "$MNT/loop/o/size"
expect_err EACCES as "$OTHER" touch "$MNT/loop/newfile"

t "root of a container (user+mount namespace of another uid) is another user"
check "ns of other reads through its bind mount" q in_ns "$OTHER" 'cat loop/o/name >/dev/null && ls dm >/dev/null'
ns_err "$OTHER" EACCES 'mkdir loop/c'
ns_err "$OTHER" EACCES 'echo 0 > loop/o/active'
ns_err "$OTHER" EACCES 'echo 4M > loop/o/size'
ns_err "$OTHER" EACCES 'rmdir loop/o'
ns_err "$OTHER" EACCES 'mv loop/o loop/c'
ns_err "$OTHER" EACCES 'dd if=/dev/zero of=loop/o/data bs=4k count=1 conv=notrunc status=none'
ns_err "$OTHER" EPERM 'chmod 0777 loop'
eq "$(cat "$MNT/loop/o/active") $(cat "$MNT/loop/o/size")" "1 1048576" "loop/o unchanged"
check "ns of the owner makes, renames and removes" in_ns "$OWNER" \
	'mkdir loop/c && echo 1M > loop/c/size && echo 1 > loop/c/active && mv loop/c loop/c2 && rmdir loop/c2'
check "nothing of loop/c left" test ! -e "$MNT/loop/c" -a ! -e "$MNT/loop/c2"
check "owner renames" as "$OWNER" mv "$MNT/loop/o" "$MNT/loop/o2"
check "owner removes" as "$OWNER" rmdir "$MNT/loop/o2"
stop_daemon

t "--mode 0750: others cannot even list"
start_daemon -o allow_other --owner "$OWNER:$OWNER" --mode 0750 || exit 1
expect_err EACCES as "$OTHER" ls "$MNT/loop"
ns_err "$OTHER" EACCES 'ls loop'
check "owner lists" q as "$OWNER" ls "$MNT/loop"
stop_daemon

# ---------------------------------------------------------------------------
t "tables and pools cannot reach host devices"
start_daemon -o allow_other || exit 1
truncate -s 4M "$OUTSIDE/host.img"
H=$(losetup -f --show "$OUTSIDE/host.img")
HN=${H#/dev/loop}
HMM=$(printf '%d:%d' "0x$(stat -c %t "$H")" "0x$(stat -c %T "$H")")
ln -s "$H" "$OUTSIDE/link"
ln -s "$H" "$ALLOW/link"
mkdir "$MNT/dm/t" "$MNT/loop/mine"
put "$MNT/loop/mine/size" 4M
put "$MNT/loop/mine/active" 1
check "our own loop is accepted by name" put "$MNT/dm/t/table" "0 8 linear loop/mine 0"
check "our own loop is accepted by number" put "$MNT/dm/t/table" "0 8 linear $(cat "$MNT/loop/mine/dev") 0"
check "our own loop is accepted by path" put "$MNT/dm/t/table" "0 8 linear $(cat "$MNT/loop/mine/device") 0"
for ref in "$H" "$HMM" "7:$HN" "$OUTSIDE/link" "$ALLOW/link" "/dev/../dev/loop$HN" "$OUTSIDE/$(realpath -m --relative-to="$OUTSIDE" "$H")"; do
	put_fails EACCES "$MNT/dm/t/table" "0 8 linear $ref 0" "was not created by stsfs (start stsfs with --allow-host-devices)"
	put_fails EACCES "$MNT/dm/t/table" "0 8 zero
8 8 linear loop/mine 0
16 8 linear $ref 0" "table line 3: "
done
put_fails EACCES "$MNT/dm/t/table" "0 8 striped 2 4 loop/mine 0 $HMM 0" "($HMM) was not created by stsfs"
eq "$(cat "$MNT/dm/t/table")" "0 8 linear $(cat "$MNT/loop/mine/device") 0" "staged table kept"
# The kernel splits arguments at \v, \f and 0xa0 and removes backslashes:
# such words would hide a device from the check.
put_fails EINVAL "$MNT/dm/t/table" "0 8 linear 7\\:$HN 0" "may not contain a backslash"
put_fails EINVAL "$MNT/dm/t/table" "0 8 linear \\$H 0" "may not contain a backslash"
put_fails EINVAL "$MNT/dm/t/table" "$(printf '0 8 linear x\v7:%s 0' "$HN")" "may not contain a vertical tab"
put_fails EINVAL "$MNT/dm/t/table" "$(printf '0 8 linear x\f7:%s 0' "$HN")" "may not contain a vertical tab"
put_fails EINVAL "$MNT/dm/t/table" "$(printf '0 8 linear x\xa07:%s 0' "$HN")" "may not contain a vertical tab"
# Any other word with a slash is a path the kernel would open: refused.
put_fails EINVAL "$MNT/dm/t/table" "0 8 linear dev/loop$HN 0" "'dev/loop$HN' is not a device reference"
put_fails EINVAL "$MNT/dm/t/table" "0 8 linear ./dev/loop$HN 0" "is not a device reference"
put_fails EINVAL "$MNT/dm/t/table" "0 8 linear $OUTSIDE/host.img 0" "is not a block device"
put_fails EINVAL "$MNT/dm/t/table" "0 8 crypt aes-xts-plain64 0 0 /etc/passwd 0" "/etc/passwd is not a block device"
put_fails ENOENT "$MNT/dm/t/table" "0 8 linear loop/mine/../..$H 0" "no loop object loop/mine/../..$H"
# thin pools: data_dev and metadata_dev
mkdir "$MNT/thin/p"
for ref in "$H" "$HMM" "$OUTSIDE/link"; do
	put_fails EACCES "$MNT/thin/p/data_dev" "$ref" "was not created by stsfs (start stsfs with --allow-host-devices)"
	put_fails EACCES "$MNT/thin/p/metadata_dev" "$ref" "was not created by stsfs"
done
eq "$(cat "$MNT/thin/p/data_dev")" "" "data_dev unset"
# the same refusals for a container's root, through its bind mount
ns_err "$OTHER" EACCES "echo '0 8 linear $H 0' > dm/t/table"

t "a loop number stsfs released and someone else reused is not ours"
N=$(cat "$MNT/loop/mine/name")
put "$MNT/loop/mine/active" 0
truncate -s 4M "$OUTSIDE/reuse.img"
# what losetup -f picks when nothing else is attaching (named here, so that
# suites running at the same time cannot take it first)
R=/dev/$N
check "host takes the released number" losetup "$R" "$OUTSIDE/reuse.img"
put_fails EACCES "$MNT/dm/t/table" "0 8 linear 7:${N#loop} 0" "was not created by stsfs"
put_fails EACCES "$MNT/dm/t/table" "0 8 linear $R 0" "was not created by stsfs"
losetup -d "$R"
put "$MNT/loop/mine/active" 1
N=$(cat "$MNT/loop/mine/name")
# detached behind the object's back, then taken by someone else
losetup -d "/dev/$N"
check "host takes the number again" losetup "$R" "$OUTSIDE/reuse.img"
put_fails EACCES "$MNT/dm/t/table" "0 8 linear 7:${N#loop} 0" "was not created by stsfs"
put_fails EACCES "$MNT/dm/t/table" "0 8 linear $R 0" "was not created by stsfs"
put_fails ENOENT "$MNT/dm/t/table" "0 8 linear loop/mine 0" "loop/mine is not active"
eq "$(cat "$MNT/loop/mine/active")" 0 "loop/mine reads inactive"
check "the host's device is listed as external" test -d "$MNT/loop/$N"
losetup -d "$R"
check "rmdir dm/t" rmdir "$MNT/dm/t"
check "rmdir thin/p" rmdir "$MNT/thin/p"
check "rmdir loop/mine" rmdir "$MNT/loop/mine"
stop_daemon

t "--allow-host-devices lets them through"
start_daemon --allow-host-devices || exit 1
mkdir "$MNT/dm/h"
check "host device by path" put "$MNT/dm/h/table" "0 8 linear $H 0"
check "host device by symlink" put "$MNT/dm/h/table" "0 8 linear $OUTSIDE/link 0"
eq "$(cat "$MNT/dm/h/table")" "0 8 linear $OUTSIDE/link 0" "staged as written"
put_fails EINVAL "$MNT/dm/h/table" "0 8 linear $OUTSIDE/host.img 0" "is not a block device"
put_fails EINVAL "$MNT/dm/h/table" "0 8 linear 7\\:$HN 0" "may not contain a backslash"
check "rmdir dm/h" rmdir "$MNT/dm/h"
stop_daemon

# ---------------------------------------------------------------------------
t "data of devices stsfs did not create"
start_daemon -o allow_other --owner "$OWNER:$OWNER" || exit 1
X=${H#/dev/}
check "external $X listed" test -d "$MNT/loop/$X"
check "no data file" test ! -e "$MNT/loop/$X/data"
case " $(ls "$MNT/loop/$X" | tr '\n' ' ') " in *" data "*) fail "ls shows data" ;; *) pass ;; esac
expect_err ENOENT cat "$MNT/loop/$X/data"
expect_err EPERM dd if=/dev/zero of="$MNT/loop/$X/data"  # no such file, and none can be made: bs=512 count=1 conv=notrunc status=none
expect_err ENOENT as "$OWNER" cat "$MNT/loop/$X/data"
ns_err "$OWNER" ENOENT "cat loop/$X/data"
put_fails EPERM "$MNT/loop/$X/active" 0 "not created by stsfs"
expect_err EPERM rmdir "$MNT/loop/$X"
expect_err EPERM as "$OWNER" rmdir "$MNT/loop/$X"
check "still attached" q losetup "$H"
# a backing file cannot be a device either
mkdir "$MNT/loop/b"
put_fails EACCES "$MNT/loop/b/backing_file" "$H" "outside the allowed directories"
put_fails EACCES "$MNT/loop/b/backing_file" "$ALLOW/link" "resolves to $H) is outside the allowed directories"
check "rmdir loop/b" rmdir "$MNT/loop/b"
stop_daemon

t "--manage-external opens them"
start_daemon --manage-external || exit 1
check "data present" test -e "$MNT/loop/$X/data"
stop_daemon
losetup -d "$H"

# ---------------------------------------------------------------------------
t "backing files outside --allow-backing"
start_daemon -o allow_other --owner "$OWNER:$OWNER" || exit 1
truncate -s 1M "$ALLOW/ok.img" "$OUTSIDE/secret.img"
mkdir -p "$ALLOW/sub"
ln -s "$OUTSIDE/secret.img" "$ALLOW/sym.img"
ln -s "$OUTSIDE" "$ALLOW/subdir-link"
mkdir "$MNT/loop/e"
check "inside is accepted" put "$MNT/loop/e/backing_file" "$ALLOW/ok.img"
eq "$(cat "$MNT/loop/e/backing_file")" "$ALLOW/ok.img" "backing_file reads back"
for path in "$OUTSIDE/secret.img" "$ALLOW/sym.img" "$ALLOW/subdir-link/secret.img" "$ALLOW/../outside/secret.img" \
	"$ALLOW/sub/../../outside/secret.img" "/etc/passwd" "$ALLOW/../allowed-not/x"; do
	if [ -e "$path" ]; then
		put_fails EACCES "$MNT/loop/e/backing_file" "$path" "is outside the allowed directories"
	else
		put_fails ENOENT "$MNT/loop/e/backing_file" "$path" "No such file"
	fi
done
put_fails EACCES "$MNT/loop/e/backing_file" "$ALLOW/sym.img" "(resolves to $OUTSIDE/secret.img)"
put_fails EINVAL "$MNT/loop/e/backing_file" "allowed/ok.img" "must be an absolute path"
put_fails EINVAL "$MNT/loop/e/backing_file" "$ALLOW/sub" "is not a regular file"
eq "$(cat "$MNT/loop/e/backing_file")" "$ALLOW/ok.img" "backing_file unchanged"
ns_err "$OWNER" EACCES "echo $OUTSIDE/secret.img > loop/e/backing_file"
# the check is made again at activation: a file swapped for a symlink since
check "activate with the allowed file" put "$MNT/loop/e/active" 1
check "deactivate" put "$MNT/loop/e/active" 0
mv "$ALLOW/ok.img" "$ALLOW/ok.real"
ln -s "$OUTSIDE/secret.img" "$ALLOW/ok.img"
put_fails EACCES "$MNT/loop/e/active" 1 "is outside the allowed directories"
eq "$(cat "$MNT/loop/e/active")" 0 "not activated"
rm "$ALLOW/ok.img"
mv "$ALLOW/ok.real" "$ALLOW/ok.img"
check "rmdir loop/e" rmdir "$MNT/loop/e"
check "the external file is kept" test -f "$ALLOW/ok.img"
stop_daemon

t "without --allow-backing nothing outside is allowed"
"$STSFS" -f --image-dir "$IMG" --state-dir "$STATE" "$MNT" 2>>"$WORK/daemon.log" &
DAEMON_PID=$!
wait_mounted || fail "no mount without --allow-backing"
mkdir "$MNT/loop/f"
put_fails EACCES "$MNT/loop/f/backing_file" "$ALLOW/ok.img" "start stsfs with --allow-backing DIR"
check "rmdir loop/f" rmdir "$MNT/loop/f"

rm -rf "$WORK/ns"
finish
