#!/usr/bin/env bash
# Tenancy (issue 12, docs/tenancy.md): with --tenancy uid, two users, and
# with --tenancy pidns, two `unshare --pid` containers, each make objects
# of the same names without seeing each other; one cannot read, change,
# reference or remove the other's; quotas stop the third loop and an image
# too large; the host sees each tenant under tenants/ and quota/; a daemon
# restart keeps owners and quotas; with --reap, a container whose last
# process is killed loses its loops and images within 5 s while the other
# keeps its own. dm/ and thin/ parts: tests/vm/test_tenancy.sh.
. "$(dirname "$0")/lib.sh"

L=$MNT/loop
A=4242
B=4243
chmod 0755 "$WORK" # the users below must reach the mount point
# uid tenants are gone when no process runs as them: none may be left over.
pkill -KILL -u "$A,$B" 2>/dev/null
trap 'pkill -KILL -u "$A,$B" 2>/dev/null; cleanup' EXIT

as() { # as UID COMMAND...
	local uid=$1
	shift
	setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"
}
# as_err UID ERRNO COMMAND...: fails as that user with ERRNO's message.
as_err() {
	local uid=$1 want=$2 out
	shift 2
	if out=$(as "$uid" "$@" 2>&1); then
		fail "'$*' as $uid succeeded, want $want"
	else
		contains "$out" "$(errtext "$want")" "'$*' as $uid"
	fi
}
as_put() { as "$1" bash -c 'printf "%s\n" "$2" >"$1"' _ "$2" "$3"; }
listing() { ls "$1" | tr '\n' ' '; }

QUOTA=(--quota loops=2,bytes=64M)

t "options: bad values are refused at start, with the reason"
for bad in "--tenancy=gid" "--tenancy uid --quota loops=x" "--tenancy uid --quota disks=2" "--quota loops=1" "--reap"; do
	# shellcheck disable=SC2086 # the words are the options
	out=$("$STSFS" -f $bad --image-dir "$IMG" --state-dir "$STATE" "$MNT" 2>&1)
	eq "$?" 1 "stsfs $bad exits 1"
	contains "$out" "stsfs: --" "stsfs $bad says why"
done
check "and mounted nothing" bash -c "! grep -q ' $MNT ' /proc/mounts"

t "uid: the tree as the host and as tenants see it"
start_daemon --tenancy uid "${QUOTA[@]}" || exit 1
eq "$(stat -c %a "$L")" "777" "loop/ lets every tenant mkdir (mode 0777)"
check "allow_other was added" grep -q " $MNT fuse.stsfs .*allow_other" /proc/mounts
check "host: tenants/" test -d "$MNT/tenants"
check "host: quota/" test -d "$MNT/quota"
as_err $A ENOENT ls "$MNT/tenants"
as_err $A ENOENT cat "$MNT/quota/limits"
eq "$(as $A ls "$MNT" | grep -c -E '^(tenants|quota)$')" 0 "a tenant's root lists no tenants/ or quota/"

t "uid: two tenants, one name"
check "host: loop/disk" mkdir "$L/disk"
check "A: mkdir loop/disk" as $A mkdir "$L/disk"
check "A: size" as_put $A "$L/disk/size" 8M
check "B: mkdir loop/disk" as $B mkdir "$L/disk"
check "B: size" as_put $B "$L/disk/size" 4M
eq "$(as $A cat "$L/disk/size")" "8388608" "A reads its own disk"
eq "$(as $B cat "$L/disk/size")" "4194304" "B reads its own disk"
eq "$(cat "$L/disk/size" 2>&1)" "0" "the host's disk has no size yet"
eq "$(as $A ls "$L" | tr '\n' ' ')" "disk error " "A lists only its own"
check "A: mkdir loop/a2" as $A mkdir "$L/a2"
as_err $B ENOENT cat "$L/a2/size"
as_err $B ENOENT rmdir "$L/a2"
as_err $B ENOENT mv "$L/a2" "$L/b2"
eq "$(as $B ls "$L" | tr '\n' ' ')" "disk error " "B does not see A's a2"
check "state records keep the owners apart" test -e "$STATE/loop/$A:disk" -a -e "$STATE/loop/$B:disk" -a -e "$STATE/loop/disk"

t "uid: a name the kernel cached for one tenant is not another's"
as $A stat "$L/a2" >/dev/null
as_err $B ENOENT stat "$L/a2"
as_err $B ENOENT cat "$L/a2/size"
as $A ls -l "$L" >/dev/null
as_err $B ENOENT ls "$L/a2"

t "uid: names with ':' (the internal prefix) are refused"
as_err $A EINVAL mkdir "$L/$B:disk"
contains "$(as $A cat "$L/error")" "names have no ':'" "A's loop/error"
as_err $B ENOENT cat "$L/$A:disk/size"
as_err $A ENOENT ls "$MNT/tenants/$B"

t "uid: errors are per tenant"
eq "$(as $B cat "$L/error")" "" "B does not read A's loop/error"
eq "$(cat "$L/error")" "" "nor does the host, in loop/error"
contains "$(cat "$MNT/tenants/$A/loop/error")" "names have no ':'" "the host reads A's in tenants/$A/loop/error"

t "uid: quotas"
as_err $A EDQUOT mkdir "$L/a3"
contains "$(as $A cat "$L/error")" "--quota loops=2" "the limit in loop/error"
check "B still may make a second" as $B mkdir "$L/b2"
as_err $B EDQUOT bash -c 'printf "%s\n" 61M >"$1"' _ "$L/b2/size"
contains "$(as $B cat "$L/b2/error")" "--quota bytes=67108864" "the limit in b2/error"
eq "$(as $B cat "$L/b2/size")" "0" "b2's size unchanged"
check "under the bytes quota" as_put $B "$L/b2/size" 60M
check "A activates its disk" as_put $A "$L/disk/active" 1
check "B activates its disk" as_put $B "$L/disk/active" 1
eq "$(our_loops | wc -l)" 2 "two loop devices"
check "images kept apart" test -e "$IMG/$A:disk.img" -a -e "$IMG/$B:disk.img"
usage=$(cat "$MNT/quota/$A/usage")
contains "$usage" "loops=2" "quota/$A/usage counts A's loops"
contains "$usage" "loops_limit=2" "and shows the limit"
contains "$usage" "bytes=8388608" "and A's bytes"
contains "$(cat "$MNT/quota/$B/usage")" "bytes=67108864" "B's bytes: 4M + 60M"
contains "$(cat "$MNT/quota/limits")" "dm=unlimited" "quota/limits"
check "quota/$A/usage.json" json_ok "$MNT/quota/$A/usage.json"

t "uid: the host sees and manages each tenant"
eq "$(listing "$MNT/tenants")" "$A $B error " "tenants/"
eq "$(listing "$MNT/tenants/$A/loop")" "a2 disk error " "tenants/$A/loop"
eq "$(cat "$MNT/tenants/$B/loop/disk/size")" "4194304" "the host reads B's disk"
eq "$(stat -c %u "$MNT/tenants/$A/loop/disk")" "$A" "A's objects are A's (uid mode)"
check "the host removes A's a2" rmdir "$MNT/tenants/$A/loop/a2"
as_err $A ENOENT ls "$L/a2"
check "the host makes one for A" mkdir "$MNT/tenants/$A/loop/gift"
check "A sees it" as $A test -d "$L/gift"
expect_err EDQUOT mkdir "$MNT/tenants/$B/loop/gift"

t "uid: a restart keeps owners and quotas"
before_a=$(as $A ls "$L" | tr '\n' ' ')
before_b=$(as $B ls "$L" | tr '\n' ' ')
stop_daemon
start_daemon --tenancy uid "${QUOTA[@]}" || exit 1
eq "$(as $A ls "$L" | tr '\n' ' ')" "$before_a" "A's objects after the restart"
eq "$(as $B ls "$L" | tr '\n' ' ')" "$before_b" "B's objects after the restart"
eq "$(as $A cat "$L/disk/active")" "1" "A's disk still active"
as_err $B EDQUOT mkdir "$L/b3"

t "uid: each tenant cleans up its own"
check "A: deactivate" as_put $A "$L/disk/active" 0
check "A: rmdir disk" as $A rmdir "$L/disk"
check "A: rmdir gift" as $A rmdir "$L/gift"
check "B: deactivate" as_put $B "$L/disk/active" 0
for o in disk b2; do check "B: rmdir $o" as $B rmdir "$L/$o"; done
check "host: rmdir disk" rmdir "$L/disk"
eq "$(listing "$MNT/tenants")" "error " "no tenant has objects"
stop_daemon

t "uid --reap: objects marked ephemeral go with the tenant's last process"
start_daemon --tenancy uid --reap || exit 1
# Not through as(): $! must be the process itself (setpriv execs sleep).
setpriv --reuid=$A --regid=$A --clear-groups -- sleep 600 &
keeper=$!
check "A: mkdir tmp" as $A mkdir "$L/tmp"
check "A: tmp size" as_put $A "$L/tmp/size" 4M
check "A: tmp active" as_put $A "$L/tmp/active" 1
eq "$(as $A cat "$L/tmp/ephemeral")" "0" "not ephemeral unless marked"
check "A: mark tmp ephemeral" as_put $A "$L/tmp/ephemeral" 1
as_err $A EINVAL bash -c 'printf "%s\n" maybe >"$1"' _ "$L/tmp/ephemeral"
check "A: mkdir keep" as $A mkdir "$L/keep"
check "A: keep size" as_put $A "$L/keep/size" 4M
stop_daemon
start_daemon --tenancy uid --reap || exit 1
eq "$(as $A cat "$L/tmp/ephemeral")" "1" "the mark survives a restart"
sleep 1.5
check "kept while A has a process" test -e "$IMG/$A:tmp.img"
kill "$keeper"
wait "$keeper" 2>/dev/null
for _ in $(seq 50); do [ -e "$IMG/$A:tmp.img" ] || break; sleep 0.1; done
check "tmp's image deleted within 5 s" test ! -e "$IMG/$A:tmp.img"
eq "$(our_loops | wc -l)" 0 "its loop device detached"
eq "$(listing "$MNT/tenants/$A/loop")" "error keep " "keep (not ephemeral) stays"
check "the reaper said so" grep -q "reap: tenant $A is gone: removed loop/$A:tmp" "$WORK/daemon.log"
check "host: rmdir A's keep" rmdir "$MNT/tenants/$A/loop/keep"
stop_daemon

# ---- pidns ----

# container NAME SCRIPT: runs SCRIPT in bash as pid 1's child of a new pid
# namespace, in the background; when unshare is killed, the namespace goes.
declare -A CPID
container() {
	unshare --pid --fork --kill-child --mount-proc bash -c "$2" &
	CPID[$1]=$!
}
ns_of() { stat -L -c %i "/proc/$(pgrep -P "${CPID[$1]}" | head -1)/ns/pid"; }
wait_file() { for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }

t "pidns: two containers, one name"
start_daemon --tenancy pidns --reap "${QUOTA[@]}" || exit 1
for c in c1 c2; do
	container $c "mkdir $L/disk && echo 4M > $L/disk/size && echo 1 > $L/disk/active &&
		ls $L > $WORK/$c.ls && cat $L/disk/status > $WORK/$c.status && touch $WORK/$c.ready; exec sleep 600"
done
check "c1 ready" wait_file "$WORK/c1.ready"
check "c2 ready" wait_file "$WORK/c2.ready"
eq "$(tr '\n' ' ' <"$WORK/c1.ls")" "disk error " "c1 lists only its own"
eq "$(tr '\n' ' ' <"$WORK/c2.ls")" "disk error " "c2 lists only its own"
n1=pidns-$(ns_of c1)
n2=pidns-$(ns_of c2)
eq "$(listing "$MNT/tenants")" "$(printf '%s\n' "$n1" "$n2" error | sort | tr '\n' ' ')" "the host sees both containers"
eq "$(our_loops | wc -l)" 2 "two loop devices"
eq "$(ls "$L" | grep -c '^disk$')" 0 "the host's own loop/ has no disk"
check "the host reads c1's disk" grep -q "^back_file=$IMG/$n1:disk.img" "$MNT/tenants/$n1/loop/disk/status"

t "pidns: a container cannot reach the other's"
out=$(unshare --pid --fork --mount-proc bash -c "ls $MNT/tenants 2>&1; cat $L/disk/size 2>&1; ls $L")
contains "$out" "No such file or directory" "a third container has no tenants/"
eq "$(echo "$out" | tail -1)" "error" "and no disk"

t "pidns: killing the container's last process removes its objects"
kill -9 "${CPID[c1]}"
wait "${CPID[c1]}" 2>/dev/null
gone=1
for _ in $(seq 50); do
	[ -e "$IMG/$n1:disk.img" ] || { gone=0; break; }
	sleep 0.1
done
eq "$gone" 0 "c1's image deleted within 5 s"
eq "$(listing "$MNT/tenants")" "error $n2 " "only c2 is left"
eq "$(our_loops | wc -l)" 1 "c1's loop device detached"
check "c2's image stays" test -e "$IMG/$n2:disk.img"
check "the reaper said so" grep -q "reap: tenant $n1 is gone: removed loop/$n1:disk" "$WORK/daemon.log"

t "pidns: and the other's, when it goes"
kill -9 "${CPID[c2]}"
wait "${CPID[c2]}" 2>/dev/null
for _ in $(seq 50); do [ -e "$IMG/$n2:disk.img" ] || break; sleep 0.1; done
eq "$(listing "$MNT/tenants")" "error " "no tenant is left"
eq "$(our_loops | wc -l)" 0 "no loop device is left"
finish
