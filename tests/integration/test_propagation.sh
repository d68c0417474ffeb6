#!/usr/bin/env bash
# Unmounts and restarts that reach other mount namespaces (issue 13, item 5;
# docs/containers.md, "Mount propagation"). stsfs makes the mount point's
# parent a shared mount (--propagation shared, the default). A namespace
# made with slave propagation (a copy of everything), and one that has only
# a bind of the parent made rslave (a container's -v PARENT:PARENT:rslave),
# see the tree go when the host unmounts it, the daemon end, and the tree
# come back, objects intact, when the daemon starts again. With a private
# parent (--propagation none) the namespace's copy keeps the connection:
# the daemon lingers, says so in its log, and a second daemon on the state
# directory is told which process holds it and why. A namespace that binds
# the mount point follows only if it bound it while nothing was mounted
# there; a bind of the mounted tree keeps its copy whatever the parent.
. "$(dirname "$0")/lib.sh"

SH=$WORK/shared
PRIV=$WORK/private
mkdir -p "$SH/mnt" "$PRIV/mnt" "$WORK/X" "$WORK/Y" "$WORK/m2"
MNT=$SH/mnt

# The namespace side: a loop in the namespace that answers each request
# (NAME.req) with what it sees at DIR (NAME.ans): "gone", or loop/a's
# active and device. Its cwd is /, so it never pins the mount; it ends on
# NAME.stop, or when $WORK goes (cleanup).
cat >"$WORK/nsloop.sh" <<'EOF'
name=$1 dir=$2 work=$3
cd / || exit 1
echo $$ >"$work/$name.pid"
while [ -d "$work" ] && [ ! -e "$work/$name.stop" ]; do
	if [ -e "$work/$name.req" ]; then
		rm -f "$work/$name.req"
		if [ -e "$dir/version" ]; then
			echo "$(cat "$dir/loop/a/active" "$dir/loop/a/device" 2>&1 | tr '\n' ' ')" >"$work/$name.tmp"
		else
			echo gone >"$work/$name.tmp"
		fi
		mv "$work/$name.tmp" "$work/$name.ans"
	fi
	sleep 0.05
done
EOF

# A namespace that holds a copy of the mount keeps the daemon alive: on an
# early exit they end first, or lib.sh's cleanup would wait for the daemon.
trap 'for n in A B C D P; do touch "$WORK/$n.stop"; done; sleep 0.2; cleanup' EXIT

# ns_slave NAME DIR: a namespace with a slave copy of every mount, reading DIR.
ns_slave() {
	rm -f "$WORK/$1".*
	unshare --mount --propagation slave bash "$WORK/nsloop.sh" "$1" "$2" "$WORK" &
	wait_ns "$1"
}

# ns_container NAME: like a container, it binds the shared parent (rbind,
# then rslave) at $WORK/X, drops its copy of the host's path, and reads
# X/mnt.
ns_container() {
	rm -f "$WORK/$1".*
	unshare --mount --propagation slave bash -c "mount --rbind '$SH' '$WORK/X' && mount --make-rslave '$WORK/X' &&
		umount -l '$SH' && exec bash '$WORK/nsloop.sh' '$1' '$WORK/X/mnt' '$WORK'" &
	wait_ns "$1"
}

wait_ns() {
	for _ in $(seq 100); do
		[ -s "$WORK/$1.pid" ] && return 0
		sleep 0.05
	done
	return 1
}

# ask NAME: what the namespace sees now.
ask() {
	rm -f "$WORK/$1.ans"
	touch "$WORK/$1.req"
	for _ in $(seq 100); do
		[ -e "$WORK/$1.ans" ] && { cat "$WORK/$1.ans"; return 0; }
		sleep 0.05
	done
	echo "no answer"
}

# ns_stop NAME: the namespace's process ends (and with it its mounts).
ns_stop() {
	local pid
	pid=$(cat "$WORK/$1.pid" 2>/dev/null)
	touch "$WORK/$1.stop"
	for _ in $(seq 100); do
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# mounts_at DIR: how many mounts this namespace has at DIR.
mounts_at() { awk -v d="$1" '$5 == d' /proc/self/mountinfo | wc -l; }

# ended PID: the process is gone within 5 s.
ended() {
	for _ in $(seq 100); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# ------------------------------------------------ the shared parent (default)
t "the default: the parent becomes a shared bind of itself"
start_daemon || exit 1
eq "$(mounts_at "$SH")" 1 "one mount at the parent"
contains "$(awk -v d="$SH" '$5 == d' /proc/self/mountinfo)" "shared:" "the parent is shared"
contains "$(cat "$WORK/daemon.log")" "$SH: made a shared mount" "the log says so"
make_kept_objects
seen=$(cat "$MNT/loop/a/active" "$MNT/loop/a/device" | tr '\n' ' ')
contains "$seen" "1 /dev/loop" "loop/a active"

t "namespaces: a slave copy, and a container-like rslave bind of the parent"
check "slave namespace" ns_slave A "$MNT"
check "container-like namespace" ns_container B
eq "$(ask A)" "$seen" "A sees loop/a"
eq "$(ask B)" "$seen" "B sees loop/a"

t "a second daemon on the state dir names the one that serves it"
out=$("$STSFS" --state-dir "$STATE" --image-dir "$IMG" "$WORK/m2" 2>&1) && { fail "a second daemon started"; umount "$WORK/m2"; }
contains "$out" "in use by another stsfs" "refused"
contains "$out" "process $DAEMON_PID serves $MNT; stop it first" "names the process and its mount"

t "umount on the host: the namespaces see the tree go, and the daemon ends"
pid=$DAEMON_PID
check "umount" umount "$MNT"
check "the daemon ended" ended "$pid"
kill -9 "$pid" 2>/dev/null # a failed run: not left behind
wait "$pid" 2>/dev/null
DAEMON_PID=
eq "$(ask A)" "gone" "A: gone"
eq "$(ask B)" "gone" "B: gone"

t "a namespace that binds the mount point while nothing is mounted there"
# The bind is then of the directory, a slave of the shared parent: later
# mounts on it follow (unlike a bind of the tree itself, below).
rm -f "$WORK/D".*
unshare --mount --propagation slave bash -c "mount --bind '$MNT' '$WORK/Y' && mount --make-rslave '$WORK/Y' &&
	umount -l '$SH' && exec bash '$WORK/nsloop.sh' D '$WORK/Y' '$WORK'" &
check "the namespace" wait_ns D
eq "$(ask D)" "gone" "D: nothing yet"

t "a restart reaches them: objects intact"
start_daemon || exit 1
eq "$(mounts_at "$SH")" 1 "still one mount at the parent (no stacked binds)"
eq "$(ask A)" "$seen" "A sees loop/a again"
eq "$(ask B)" "$seen" "B sees loop/a again"
eq "$(ask D)" "$seen" "D sees loop/a"

t "SIGKILL, then a restart"
kill_daemon
eq "$(ask A)" "gone" "A: gone after the kill"
eq "$(ask B)" "gone" "B: gone after the kill"
eq "$(ask D)" "gone" "D: gone after the kill"
start_daemon || exit 1
eq "$(ask A)" "$seen" "A sees loop/a again"
eq "$(ask B)" "$seen" "B sees loop/a again"
eq "$(ask D)" "$seen" "D sees loop/a again"
eq "$(mounts_at "$SH")" 1 "still one mount at the parent"
check "A ends" ns_stop A
check "B ends" ns_stop B
check "D ends" ns_stop D

t "a namespace that binds the mount point itself (-v /sts:/sts) does not follow"
rm -f "$WORK/C".*
unshare --mount --propagation slave bash -c "mount --bind '$MNT' '$WORK/X' && mount --make-rslave '$WORK/X' &&
	exec bash '$WORK/nsloop.sh' C '$WORK/X' '$WORK'" &
check "the namespace" wait_ns C
eq "$(ask C)" "$seen" "C sees loop/a"
pid=$DAEMON_PID
check "umount on the host" umount "$MNT"
eq "$(ask C)" "$seen" "C still sees loop/a"
check "the daemon lingers" kill -0 "$pid"
check "C ends" ns_stop C
check "then the daemon ends" ended "$pid"
kill -9 "$pid" 2>/dev/null # a failed run: not left behind
wait "$pid" 2>/dev/null
DAEMON_PID=

# ------------------------------------------ a private parent: the failure mode
t "a private parent (--propagation none): the namespace keeps its copy"
grep -v "is gone from this mount namespace" "$WORK/daemon.log" >"$WORK/daemon.log.1"
mv "$WORK/daemon.log.1" "$WORK/daemon.log"
# Private on every host (systemd makes / shared; a bind made private is not).
mount --bind "$PRIV" "$PRIV" && mount --make-private "$PRIV"
MNT=$PRIV/mnt
start_daemon --propagation none || exit 1
check "no shared parent" bash -c "! awk -v d='$PRIV' '\$5 == d' /proc/self/mountinfo | grep -q shared:"
eq "$(cat "$MNT/loop/a/active")" 1 "objects adopted"
minor=$(awk -v m="$MNT" '$5 == m { split($3, d, ":"); print d[2] }' /proc/self/mountinfo)
check "slave namespace" ns_slave P "$MNT"
eq "$(ask P)" "$seen" "P sees loop/a"
check "umount on the host" umount "$MNT"
eq "$(mounts_at "$MNT")" 0 "gone from the host's namespace"
eq "$(ask P)" "$seen" "P still sees loop/a"
check "the daemon lingers" kill -0 "$DAEMON_PID"

t "the lingering daemon says so in its log"
for _ in $(seq 60); do grep -q "is gone from this mount namespace" "$WORK/daemon.log" && break; sleep 0.05; done
log=$(grep "is gone from this mount namespace" "$WORK/daemon.log")
contains "$log" "the mount at $MNT is gone from this mount namespace, but other mount namespaces still use it" "the warning"
contains "$log" "to end it now: kill $DAEMON_PID, or echo 1 > /sys/fs/fuse/connections/$minor/abort" "how to end it"
eq "$(grep -c "is gone from this mount namespace" "$WORK/daemon.log")" 1 "said once"

t "a second daemon on the state dir says which process holds it and why"
out=$("$STSFS" --state-dir "$STATE" --image-dir "$IMG" "$WORK/m2" 2>&1) && { fail "a second daemon started"; umount "$WORK/m2"; }
contains "$out" "in use by another stsfs" "refused"
contains "$out" "process $DAEMON_PID still serves the tree it mounted at $MNT, which is gone from this mount namespace" "names the lingering process"
contains "$out" "kill $DAEMON_PID, or echo 1 > /sys/fs/fuse/connections/$minor/abort" "and how to end it"

t "the namespace's process ends: so does the daemon"
pid=$DAEMON_PID
check "P ends" ns_stop P
check "the daemon ended" ended "$pid"
kill -9 "$pid" 2>/dev/null # a failed run: not left behind
wait "$pid" 2>/dev/null
DAEMON_PID=

t "the objects are still there"
start_daemon --propagation none || exit 1
eq "$(cat "$MNT/loop/a/active" "$MNT/loop/a/device" | tr '\n' ' ')" "$seen" "loop/a intact"
check "rmdir a b" rmdir "$MNT/loop/a" "$MNT/loop/b"
finish
