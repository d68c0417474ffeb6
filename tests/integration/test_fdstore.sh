#!/usr/bin/env bash
# `systemctl restart stsfs` keeps the mount (issue 10, item 1;
# docs/systemd.md): the supervisor stores the FUSE connection and its map in
# systemd's file descriptor store and the next start serves them again.
# tests/tools/fake-service-manager.py stands in for systemd: it receives
# READY=1 and the stored descriptors, stops the daemon with SIGTERM and
# starts it again with LISTEN_FDS. Runs with the kernel's resend and with
# the map's request slots (STSFS_TAKEOVER=replay), unless MODES says.
. "$(dirname "$0")/lib.sh"

L=$MNT/loop
MGR=$(cd "$(dirname "$0")/../tools" && pwd)/fake-service-manager.py
CTL=$WORK/ctl
EV=$WORK/events
MGR_PID=

# The manager runs the daemon, so lib.sh's stop_daemon (which waits for
# DAEMON_PID) does not apply: DAEMON_PID stays empty and the manager ends
# the daemon first.
mgr_cleanup() {
	if [ -n "$MGR_PID" ]; then
		kill -TERM "$MGR_PID" 2>/dev/null
		wait "$MGR_PID" 2>/dev/null
		MGR_PID=
	fi
}
trap 'mgr_cleanup; cleanup' EXIT

cmd() { echo "$1" >"$CTL"; }

# wait_event PATTERN [N]: until the events file has N lines (1) matching.
wait_event() {
	local n=${2:-1}
	for _ in $(seq 200); do
		[ "$(count "$1")" -ge "$n" ] && return 0
		sleep 0.05
	done
	echo "no event '$1' (x$n); events:" >&2
	cat "$EV" >&2
	echo "daemon log:" >&2
	cat "$WORK/daemon.log" >&2
	return 1
}

count() {
	local c
	c=$(grep -s -c -E -- "$1" "$EV")
	echo "${c:-0}"
}

supervisor() { sed -n "s/.*READY=1 MAINPID=\([0-9]*\).*/\1/p" "$EV" | tail -1; }
worker() { pgrep -P "$(supervisor)" -x stsfs | head -1; }
mounted() { grep -q " $MNT fuse.stsfs " /proc/mounts; }

start_manager() {
	rm -f "$CTL" "$EV"
	mkfifo "$CTL"
	python3 "$MGR" --control "$CTL" --events "$EV" -- \
		"$STSFS" -f --image-dir "$IMG" --state-dir "$STATE" --allow-backing "$ALLOW" "$MNT" \
		2>>"$WORK/daemon.log" &
	MGR_PID=$!
}

# restart HOW: the daemon is stopped (term or termall) and started again
# with the stored descriptors; a cat issued between the two completes.
restart() {
	local how=$1 old_sup old_worker n_ready
	old_sup=$(supervisor)
	old_worker=$(worker)
	n_ready=$(count '^ready ')
	local n_done
	n_done=$(count "^done $how\$")
	cmd "$how"
	wait_event "^done $how\$" $((n_done + 1)) || return 1
	check "the supervisor exited 0" grep -q "^exited $old_sup 0\$" "$EV"
	check "the mount stayed" mounted
	eq "$(count '^removed ')" 0 "nothing removed from the store"
	cat "$L/a/size" >"$WORK/gap.out" 2>&1 &
	local gap=$!
	sleep 0.5
	check "a cat while no daemon runs waits" kill -0 "$gap"
	cmd start
	wait_event '^ready ' $((n_ready + 1)) || return 1
	check "a new supervisor" test "$(supervisor)" != "$old_sup"
	eq "$(sed -n 's/^ready //p' "$EV" | tail -1)" "stsfs-fuse,stsfs-map" "the store after the restart"
	local ok=1
	for _ in $(seq 100); do kill -0 "$gap" 2>/dev/null || { ok=0; break; }; sleep 0.05; done
	eq "$ok" 0 "the waiting cat returned"
	# A thread of the old worker may wait in the kernel (a notification
	# behind a caller's lock) until the new worker answers that caller.
	for _ in $(seq 100); do kill -0 "$old_worker" 2>/dev/null || break; sleep 0.05; done
	check "the old worker ended" bash -c "! kill -0 $old_worker 2>/dev/null"
	check "and succeeded" wait "$gap"
	eq "$(cat "$WORK/gap.out")" "4194304" "with the value"
}

run_mode() {
	local mode=$1
	export STSFS_TAKEOVER=$mode
	t "$mode: start under the fake service manager"
	start_manager
	wait_event '^ready ' || return 1
	check "mounted" mounted
	eq "$(grep -c '^stored ' "$EV")" 2 "two descriptors stored"
	eq "$(sed -n 's/^ready //p' "$EV")" "stsfs-fuse,stsfs-map" "stored by name before READY=1"
	check "READY=1 names the main pid" grep -q "^notify $(supervisor) READY=1 MAINPID=$(supervisor) fds=0\$" "$EV"
	check "FDSTORE=1 carried one fd each" test "$(grep -c 'FDSTORE=1 FDNAME=stsfs-[a-z]* fds=1$' "$EV")" = 2

	t "$mode: objects to keep"
	make_kept_objects
	local before
	before=$(snapshot)

	t "$mode: a reader with its cwd in the tree and open files, through 3 restarts"
	rm -f "$WORK/stop" "$WORK/reader.err" "$WORK/reader.err.n"
	reader "$L/a" "$WORK/reader.err"
	# Not the test's own descriptors: every command the test runs would
	# inherit them and wait at its exit (FLUSH) while no daemon runs.
	rm -f "$WORK/hold.open" "$WORK/hold.go"
	python3 -c 'import os,sys,time
a = os.open(sys.argv[1], os.O_RDONLY)
b = os.open(sys.argv[2], os.O_WRONLY)
open(sys.argv[3], "w").close()
while not os.path.exists(sys.argv[4]): time.sleep(0.05)
print(os.read(a, 64).decode().strip())
os.write(b, b"16M\n")' "$L/a/size" "$L/b/size" "$WORK/hold.open" "$WORK/hold.go" >"$WORK/hold.out" 2>&1 &
	local holder=$!
	for _ in $(seq 100); do [ -e "$WORK/hold.open" ] && break; sleep 0.05; done
	restart term || return 1
	restart termall || return 1
	restart term || return 1
	touch "$WORK/stop"
	wait "$READER"
	eq "$(cat "$WORK/reader.err" 2>/dev/null)" "" "the reader saw no error"
	check "the reader kept reading ($(cat "$WORK/reader.err.n") reads)" test "$(cat "$WORK/reader.err.n")" -gt 3
	touch "$WORK/hold.go"
	check "files opened before the restarts read and write" wait "$holder"
	eq "$(cat "$WORK/hold.out")" "4194304" "the file opened for reading"
	eq "$(cat "$L/b/size")" "16777216" "the value was applied"
	check "b size back" put "$L/b/size" 8M
	eq "$(snapshot)" "$before" "objects and loop devices unchanged"
	check "the restarted supervisor said so" grep -q "on the connection the service manager kept" "$WORK/daemon.log"

	t "$mode: systemctl stop: the store is emptied, the mount is dead and unmounted"
	local n_done
	n_done=$(count '^done term$')
	cmd term
	wait_event '^done term$' $((n_done + 1)) || return 1
	check "mounted still, after the stop signal" mounted
	cmd drop
	wait_event '^dropped stsfs-map$' || return 1
	sleep 0.2
	expect_err "Transport endpoint is not connected" stat "$MNT/version"
	check "umount -l (the unit's ExecStopPost)" umount -l "$MNT"
	check "not mounted" bash -c "! grep -q ' $MNT ' /proc/mounts"
	eq "$(our_loops | wc -l)" 1 "the loop device stays attached (the state keeps it)"

	t "$mode: a start with an empty store mounts anew and adopts the objects"
	cmd start
	wait_event '^ready ' 5 || return 1
	check "mounted" mounted
	eq "$(snapshot)" "$before" "objects adopted"
	check "not a takeover" test "$(grep -c 'on the connection the service manager kept' "$WORK/daemon.log")" = 3

	t "$mode: umount: FDSTOREREMOVE for both, the daemon exits 0"
	check "rmdir a b" rmdir "$L/a" "$L/b"
	local sup
	sup=$(supervisor)
	check "umount" umount "$MNT"
	wait_event "^exited $sup " || return 1
	check "exit status 0" grep -q "^exited $sup 0\$" "$EV"
	check "FDSTOREREMOVE stsfs-fuse" grep -q '^notify [0-9]* FDSTOREREMOVE=1 FDNAME=stsfs-fuse fds=0$' "$EV"
	check "FDSTOREREMOVE stsfs-map" grep -q '^notify [0-9]* FDSTOREREMOVE=1 FDNAME=stsfs-map fds=0$' "$EV"
	eq "$(count '^removed ')" 2 "the store is empty"
	mgr_cleanup
	: >"$WORK/daemon.log.$mode"
	cat "$WORK/daemon.log" >>"$WORK/daemon.log.$mode"
	: >"$WORK/daemon.log"
	unset STSFS_TAKEOVER
}

for mode in ${MODES:-resend replay}; do
	run_mode "$mode"
done
finish
