#!/usr/bin/env bash
# Who may do what, and why not (docs/security.md, "How permissions are
# checked"): stsfs checks modes itself, so that every refusal by ownership or
# mode says in `error` who was refused and what would allow it. Each
# operation (stat, ls, cd, access, read, attribute write, touch, chmod,
# mkdir, rmdir, mv) for the tree's owner, a member of its group, another
# user, root, and roots of user namespaces (unshare --user --map-root-user
# run by an unprivileged uid, as a rootless container's root), with and
# without -o allow_other. Refusals are checked for their errno (EACCES) and
# for the reason root reads in `error`; allowed operations for working.
. "$(dirname "$0")/lib.sh"

OWNER=1000   # the tree's owner (--owner 1000:1000)
MEMBER=2000  # in group 1000 as a supplementary group
PRIMARY=2001 # in group 1000 as its primary group
OTHER=65534
NSUID=100000 # root of a user namespace, as a rootless container's root is
export M=$MNT

# run WHO SCRIPT: SCRIPT in bash as WHO; the mount point is $M.
run() {
	local who=$1
	shift
	case $who in
	root) bash -c "$1" ;;
	owner) setpriv --reuid=$OWNER --regid=$OWNER --clear-groups -- bash -c "$1" ;;
	member) setpriv --reuid=$MEMBER --regid=$MEMBER --groups=$OWNER -- bash -c "$1" ;;
	primary) setpriv --reuid=$PRIMARY --regid=$OWNER --clear-groups -- bash -c "$1" ;;
	other) setpriv --reuid=$OTHER --regid=$OTHER --clear-groups -- bash -c "$1" ;;
	nsroot) setpriv --reuid=$NSUID --regid=$NSUID --clear-groups -- unshare --user --map-root-user bash -c "$1" ;;
	nsowner) setpriv --reuid=$OWNER --regid=$OWNER --clear-groups -- unshare --user --map-root-user bash -c "$1" ;;
	esac
}
uid_of() {
	case $1 in
	root) echo 0 ;; owner | nsowner) echo $OWNER ;; member) echo $MEMBER ;; primary) echo $PRIMARY ;;
	other) echo $OTHER ;; nsroot) echo $NSUID ;;
	esac
}
# ok WHO SCRIPT: SCRIPT works for WHO.
ok() { check "$1: $2" run "$1" "$2"; }
# refused WHO SCRIPT ERRFILE NEEDLE...: SCRIPT fails for WHO with EACCES,
# and ERRFILE (read by root) names WHO's uid and holds each NEEDLE.
refused() {
	local who=$1 script=$2 errfile=$3 out
	shift 3
	if out=$(run "$who" "$script" 2>&1); then
		fail "$who: '$script' succeeded, want EACCES"
		return
	fi
	contains "$out" "Permission denied" "$who: '$script' errno"
	[ "$errfile" = /dev/null ] && return
	local why
	why=$(cat "$errfile")
	contains "$why" "uid $(uid_of "$who") " "$who: '$script': $errfile names the uid"
	local n
	for n in "$@"; do contains "$why" "$n" "$who: '$script': $errfile"; done
}

chmod 0755 "$WORK" # the users below must reach the mount point

# ---------------------------------------------------------------------------
t "without -o allow_other only root may use the tree; error says why"
start_daemon --owner $OWNER:$OWNER --cache-timeout 0 || exit 1
mkdir "$M/loop/o"
HINT="mount with -o allow_other (and --owner/--mode"
for who in owner member other nsroot nsowner; do
	refused "$who" 'ls "$M"' "$M/error" "refused: mounted without -o allow_other" "$HINT"
	refused "$who" 'stat "$M/loop/o/size"' "$M/error" "only uid 0 (the mounter)"
	refused "$who" 'cat "$M/version"' "$M/error" "$HINT"
	refused "$who" 'cd "$M"' "$M/error" "$HINT"
	refused "$who" 'mkdir "$M/loop/x"' "$M/error" "$HINT"
done
contains "$(cat "$M/error")" "uid $OWNER gid $OWNER (root in a user namespace) refused" "a namespace's root is named so"
refused nsroot 'ls "$M/loop"' "$M/error" "uid $NSUID gid $NSUID (root in a user namespace)"
contains "$(grep 'refused' "$WORK/daemon.log" | tail -1)" "uid $NSUID" "refusals are logged"
ok root 'ls "$M/loop" >/dev/null && cat "$M/version" >/dev/null && cd "$M/loop/o" && echo 1M > size'
check "nothing made by the refused" test ! -e "$M/loop/x"
check "statfs is not refused (df)" run other 'stat -f "$M" >/dev/null'
stop_daemon

# FUSE's allow_root: libfuse would refuse others itself, with a bare EACCES
# and nothing in error; stsfs keeps it. The mounter is root, so only root.
t "-o allow_root: mounts; root may use the tree, others may not"
check "-o allow_root mounts" start_daemon -o allow_root --owner $OWNER:$OWNER --cache-timeout 0
check "allow_root is not passed to the kernel" bash -c "! grep ' $M fuse.stsfs .*allow_root' /proc/mounts"
for who in owner other nsroot; do
	refused "$who" 'ls "$M"' "$M/error" "refused: mounted without -o allow_other" "$HINT"
done
ok root 'ls "$M/loop" >/dev/null && cat "$M/version" >/dev/null'
stop_daemon

# ---------------------------------------------------------------------------
t "-o allow_other --owner --mode 0750: the owner changes, the group reads, others nothing"
start_daemon -o allow_other --owner $OWNER:$OWNER --mode 0750 --cache-timeout 0 || exit 1
eq "$(stat -c '%u:%g %a' "$M/loop")" "$OWNER:$OWNER 750" "loop/ owner and mode"
for who in owner nsowner root; do
	ok "$who" 'mkdir "$M/loop/a" && echo 1M > "$M/loop/a/size" && stat "$M/loop/a/size" >/dev/null'
	ok "$who" 'ls "$M/loop" | grep -qx a && cd "$M/loop/a" && [ -r size ] && [ -w size ] && cat size >/dev/null'
	ok "$who" 'touch "$M/loop/a/size" && mv "$M/loop/a" "$M/loop/b" && rmdir "$M/loop/b"'
done
mkdir -p "$M/loop/o" # kept from the first section
put "$M/loop/o/size" 1M
for who in member primary; do
	ok "$who" 'ls "$M/loop" >/dev/null && stat "$M/loop/o/size" >/dev/null && cat "$M/loop/o/size" >/dev/null'
	ok "$who" 'cd "$M/loop/o" && [ -r size ] && [ ! -w size ]'
	G="--owner $(uid_of "$who"):"
	refused "$who" 'echo 2M > "$M/loop/o/size"' "$M/loop/o/error" \
		"may not write /loop/o/size (owner $OWNER, group $OWNER, mode 0640)" "$G" "or a --mode giving the group w"
	refused "$who" 'touch "$M/loop/o/size"' "$M/loop/o/error" "may not write /loop/o/size"
	refused "$who" 'mkdir "$M/loop/x"' "$M/loop/error" \
		"may not change entries of /loop (owner $OWNER, group $OWNER, mode 0750)" "$G" "a --mode giving the group wx"
	refused "$who" 'rmdir "$M/loop/o"' "$M/loop/error" "may not change entries of /loop"
	refused "$who" 'mv "$M/loop/o" "$M/loop/p"' "$M/loop/error" "may not change entries of /loop"
	refused "$who" 'touch "$M/loop/o/new"' "$M/loop/o/error" "may not change entries of /loop/o"
done
put "$M/loop/o/size" bad 2>/dev/null # root's failure: the slot no longer names the member
ok member '[ ! -w "$M/loop/o/size" ]'
contains "$(cat "$M/loop/o/error")" "uid $MEMBER gid $MEMBER may not write /loop/o/size" "access(W_OK)'s refusal"
for who in other nsroot; do
	for op in 'ls "$M"' 'ls "$M/loop"' 'stat "$M/loop/o/size"' 'cat "$M/loop/o/size"' 'cd "$M"' 'cd "$M/loop"' \
		'echo 2M > "$M/loop/o/size"' 'mkdir "$M/loop/x"' 'rmdir "$M/loop/o"' 'mv "$M/loop/o" "$M/loop/p"'; do
		refused "$who" "$op" "$M/error" " (owner $OWNER, group $OWNER, mode 0750): --owner $(uid_of "$who"):" \
			"or a --mode giving others"
	done
done
contains "$(cat "$M/error")" "uid $NSUID gid $NSUID (root in a user namespace) may not" "a namespace's root is named so"
refused other 'ls "$M"' "$M/error" "may not list / (owner $OWNER, group $OWNER, mode 0750)" "a --mode giving others r,"
refused other 'cd "$M"' "$M/error" "may not search / " "a --mode giving others x,"
eq "$(cat "$M/loop/o/size")" 1048576 "loop/o/size unchanged by the refused"
check "loop/o kept, loop/x and loop/p not made" test -d "$M/loop/o" -a ! -e "$M/loop/x" -a ! -e "$M/loop/p"
stop_daemon

# ---------------------------------------------------------------------------
t "-o allow_other, the default --mode 0755: others read, cannot change"
start_daemon -o allow_other --owner $OWNER:$OWNER || exit 1
mkdir -p "$M/loop/o"
put "$M/loop/o/size" 1M
for who in other nsroot member; do
	ok "$who" 'ls "$M/loop" >/dev/null && cd "$M/loop/o" && cat size name >/dev/null && [ -r size ] && [ ! -w size ]'
	refused "$who" 'echo 2M > "$M/loop/o/size"' "$M/loop/o/error" "may not write /loop/o/size (owner $OWNER, group $OWNER, mode 0644)"
	refused "$who" 'mkdir "$M/loop/x"' "$M/loop/error" "may not change entries of /loop (owner $OWNER, group $OWNER, mode 0755)"
	refused "$who" 'mv "$M/loop/o" "$M/loop/p"' "$M/loop/error" "may not change entries of /loop"
	refused "$who" 'rmdir "$M/loop/o"' "$M/loop/error" "may not change entries of /loop"
done
contains "$(cat "$M/error")" "uid $MEMBER gid $MEMBER may not change entries of /loop" \
	"rmdir's refusal also in the root's error"
expect_err EPERM run other 'chmod 0777 "$M/loop/o/size"'
contains "$(cat "$M/loop/o/error")" "chmod: owners and modes are the whole tree's" "chmod's reason"
expect_err EPERM run other 'touch -c -d 2020-01-01 "$M/loop/o/size"'
contains "$(cat "$M/loop/o/error")" "setting times: only the owner may (uid $OTHER)" "explicit times' reason"
check "a file is never executable" run owner '! [ -x "$M/loop/o/size" ]'
ok owner 'echo 2M > "$M/loop/o/size" && mv "$M/loop/o" "$M/loop/p" && rmdir "$M/loop/p"'
t "root: modes do not hold it, the table does"
mkdir "$M/loop/r"
ok root 'echo 1M > "$M/loop/r/size" && cd "$M/loop/r" && [ -w size ] && touch size'
expect_err EACCES put "$M/version" x
contains "$(cat "$M/error")" "version is read-only: no one may write it" "a read-only file's reason"
expect_err EACCES put "$M/loop/r/status.json" x
contains "$(cat "$M/loop/r/error")" "status.json is read-only" "a .json twin's reason"
rmdir "$M/loop/r"
stop_daemon

# ---------------------------------------------------------------------------
t "--mode 0700: the owner only; a group member is other"
start_daemon -o allow_other --owner $OWNER:$OWNER --mode 0700 --cache-timeout 0 || exit 1
ok owner 'mkdir "$M/loop/a" && rmdir "$M/loop/a"'
refused member 'ls "$M"' "$M/error" "may not list / (owner $OWNER, group $OWNER, mode 0700)" "a --mode giving the group r,"
refused primary 'cat "$M/version"' "$M/error" "may not search /" "a --mode giving the group x,"
stop_daemon

# ---------------------------------------------------------------------------
t "--tenancy uid: a tenant's refusal goes to its own error files"
start_daemon --tenancy uid --owner 0:$OWNER --mode 0775 --cache-timeout 0 || exit 1
ok primary 'mkdir "$M/loop/t" && ls "$M/loop" | grep -qx t'
refused other 'mkdir "$M/loop/x"' /dev/null
eq "$(run other 'cat "$M/loop/error"' | reason)" \
	"uid $OTHER gid $OTHER may not change entries of /loop (owner 0, group $OWNER, mode 0775): a --mode giving others wx allows it" \
	"the refused tenant reads its reason in its loop/error"
check "another tenant does not read it" run primary '! grep -q "uid '$OTHER'" "$M/loop/error" "$M/error"'
check "nor does the host's loop/error" bash -c '! grep -q "uid '$OTHER'" "$M/loop/error" "$M/error"'
ok primary 'rmdir "$M/loop/t"'
stop_daemon

finish
