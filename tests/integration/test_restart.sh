#!/usr/bin/env bash
# The mount survives its worker (issue 10, item 1; docs/reliability.md):
# the worker is SIGKILLed while callers use the tree, and the supervisor's
# next worker serves the same connection. Runs twice: with the kernel's
# resend (Linux 6.9 and later) and with the request slots the supervisor's
# map keeps for older kernels (STSFS_TAKEOVER=replay), unless MODES says.
. "$(dirname "$0")/lib.sh"

L=$MNT/loop

# in_flight FILE: a read of FILE whose answer the worker is made to hold
# (strace delays its writev) while the worker is killed: the next worker
# answers it.
in_flight() {
	local worker out=$WORK/inflight.out
	worker=$(worker_pid)
	strace -f -qq -e trace=writev -e inject=writev:delay_enter=1500000 -o /dev/null -p "$worker" 2>/dev/null &
	local tracer=$!
	for _ in $(seq 50); do
		grep -q 'TracerPid:.*[1-9]' "/proc/$worker/status" && break
		sleep 0.1
	done
	cat "$1" >"$out" 2>&1 &
	local reader_pid=$!
	sleep 0.5
	kill -9 "$worker"
	wait "$tracer" 2>/dev/null
	local ok=1
	for _ in $(seq 100); do
		kill -0 "$reader_pid" 2>/dev/null || { ok=0; break; }
		sleep 0.1
	done
	wait "$reader_pid"
	local rc=$?
	[ "$ok" = 0 ] && [ "$rc" = 0 ]
}

# answered_then_killed: loop/x made and removed while the worker's threads
# are held just after writing their answers (strace delays writev's
# return), and the worker killed then. The answers reached the callers; the
# next worker must not make either change again (a second mkdir would bring
# back the object the caller removed).
answered_then_killed() {
	local worker tracer from
	from=$(($(wc -l <"$WORK/daemon.log") + 1))
	worker=$(worker_pid)
	strace -f -qq -e trace=writev -e inject=writev:delay_exit=2000000 -o /dev/null -p "$worker" 2>/dev/null &
	tracer=$!
	for _ in $(seq 50); do
		grep -q 'TracerPid:.*[1-9]' "/proc/$worker/status" && break
		sleep 0.1
	done
	check "mkdir x" mkdir "$L/x"
	check "rmdir x" rmdir "$L/x"
	check "kill" kill_worker
	wait "$tracer" 2>/dev/null
	eq "$(tail -n "+$from" "$WORK/daemon.log" | grep -c 'loop/x: created')" 1 "x was made once"
	check "x stays removed" test ! -e "$L/x"
}

# crash_the_worker: SIGSEGV to the worker; it logs the signal and a
# backtrace and ends at once, the supervisor says how and starts the next.
crash_the_worker() {
	local from crashed
	from=$(($(wc -l <"$WORK/daemon.log") + 1))
	crashed=$(worker_pid)
	check "SIGSEGV to the worker" kill -SEGV "$crashed"
	for _ in $(seq 100); do [ "$(worker_pid)" != "$crashed" ] && [ -n "$(worker_pid)" ] && break; sleep 0.05; done
	check "a new worker" test "$(worker_pid)" != "$crashed"
	eq "$(cat "$L/a/size")" "4194304" "the tree answers"
	check "the log names the signal" grep -q "worker thread $crashed: fatal signal 11 (Segmentation fault) sent by pid" \
		<(tail -n "+$from" "$WORK/daemon.log")
	check "and the supervisor says how the worker ended" grep -q "the worker was killed by signal 11" \
		<(tail -n "+$from" "$WORK/daemon.log")
}

run_mode() {
	local mode=$1
	export STSFS_TAKEOVER=$mode
	start_daemon || return 1

	t "$mode: objects to keep"
	make_kept_objects
	local before
	before=$(snapshot)

	t "$mode: a reader with its cwd in the tree, through 20 kills"
	rm -f "$WORK/stop" "$WORK/reader.err" "$WORK/reader.err.n"
	reader "$L/a" "$WORK/reader.err"
	local kills=0
	for _ in $(seq 20); do
		sleep 0.$((RANDOM % 3 + 1))
		kill_worker && kills=$((kills + 1))
	done
	touch "$WORK/stop"
	wait "$READER"
	eq "$kills" 20 "workers killed"
	eq "$(cat "$WORK/reader.err" 2>/dev/null)" "" "the reader saw no error"
	check "the reader kept reading ($(cat "$WORK/reader.err.n") reads)" test "$(cat "$WORK/reader.err.n")" -gt 20
	eq "$(snapshot)" "$before" "objects and loop devices unchanged"

	t "$mode: a process in its own mount namespace with the tree bind-mounted"
	mkdir -p "$WORK/ns"
	unshare -m bash -c "mount --bind '$MNT' '$WORK/ns' && cat '$WORK/ns/loop/a/size' >'$WORK/ns.1' &&
		while [ ! -e '$WORK/ns.go' ]; do sleep 0.05; done && cat '$WORK/ns/loop/b/size' >'$WORK/ns.2' &&
		mkdir '$WORK/ns/loop/c' && echo 2M >'$WORK/ns/loop/c/size'" &
	local ns_pid=$!
	sleep 0.3
	check "kill" kill_worker
	touch "$WORK/ns.go"
	check "the namespace's shell succeeded" wait "$ns_pid"
	eq "$(cat "$WORK/ns.1" "$WORK/ns.2" | tr '\n' ' ')" "4194304 8388608 " "it read before and after"
	eq "$(cat "$L/c/size")" "2097152" "what it made is in the tree"
	check "rmdir c" rmdir "$L/c"
	rm -f "$WORK/ns.go"

	t "$mode: open files and directories across a kill"
	exec 3<"$L/a/size" 4>"$L/b/size"
	python3 -c 'import os,sys,time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
open(sys.argv[2], "w").close()
while os.path.exists(sys.argv[2]): time.sleep(0.05)
print(" ".join(sorted(e.name for e in os.scandir(fd) if not e.name.startswith("loop"))))' "$L" "$WORK/dir.hold" >"$WORK/dir.out" &
	local lister=$!
	for _ in $(seq 100); do [ -e "$WORK/dir.hold" ] && break; sleep 0.05; done
	check "kill" kill_worker
	rm -f "$WORK/dir.hold"
	check "the directory opened before the kill lists" wait "$lister"
	eq "$(cat "$WORK/dir.out")" "a b error" "its listing"
	eq "$(cat <&3)" "4194304" "a file opened before the kill reads"
	check "a file opened for writing before the kill takes a value" printf '16M\n' >&4
	exec 3<&- 4>&-
	eq "$(cat "$L/b/size")" "16777216" "the value was applied"

	t "$mode: a value begun before a kill is finished after it"
	exec 4>"$L/b/size"
	printf '1024' >&4
	check "kill" kill_worker
	check "the rest of the value is taken" bash -c "printf 'K\n' >&4"
	exec 4>&-
	eq "$(cat "$L/b/size")" "1048576" "the whole value was applied"

	t "$mode: a value stored at close (a multi-line one) survives a kill before close"
	exec 4>"$L/b/size"
	printf '8M\n' >&4
	check "kill" kill_worker
	check "close" exec 4>&-
	eq "$(cat "$L/b/size")" "8388608" "the value was applied"

	t "$mode: a request in flight when the worker dies is answered"
	if command -v strace >/dev/null; then
		check "cat of a held request returns" in_flight "$L/a/size"
		eq "$(cat "$WORK/inflight.out")" "4194304" "with the value"
	fi

	t "$mode: changes answered just before the kill are not made again"
	if command -v strace >/dev/null; then
		answered_then_killed
		if [ "$mode" = replay ]; then
			local again
			again=$(grep -o '([0-9]* answers written again)' "$WORK/daemon.log" | tail -1 | tr -dc 0-9)
			check "the kept answers were written again, not run ($again)" test "${again:-0}" -ge 2
		fi
	fi
	eq "$(snapshot | sed 's/^b .*//')" "$(echo "$before" | sed 's/^b .*//')" "objects unchanged"

	t "$mode: a worker that crashes ends at once, says where, and the next one serves"
	# (not under AddressSanitizer, which reports the signal itself)
	if ! ldd "$STSFS" | grep -q libasan; then
		crash_the_worker
	fi

	t "$mode: SIGTERM to the supervisor unmounts, and both processes end"
	local worker
	worker=$(worker_pid)
	check "SIGTERM" kill -TERM "$DAEMON_PID"
	check "the supervisor ended" wait "$DAEMON_PID"
	DAEMON_PID=
	check "not mounted" bash -c "! grep -q ' $MNT fuse' /proc/mounts"
	check "the worker ended" bash -c "! kill -0 $worker 2>/dev/null"

	t "$mode: SIGKILL of the supervisor takes the worker with it"
	start_daemon || return 1
	eq "$(cat "$L/a/size")" "4194304" "objects adopted again"
	worker=$(worker_pid)
	kill -9 "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
	for _ in $(seq 50); do kill -0 "$worker" 2>/dev/null || break; sleep 0.05; done
	check "the worker ended" bash -c "! kill -0 $worker 2>/dev/null"
	umount -l "$MNT"

	t "$mode: umount ends both, and a new daemon adopts everything"
	start_daemon || return 1
	worker=$(worker_pid)
	eq "$(snapshot | sed 's/^b .*//')" "$(echo "$before" | sed 's/^b .*//')" "objects adopted"
	check "rmdir a b" rmdir "$L/a" "$L/b"
	check "umount" umount "$MNT"
	check "the supervisor ended" wait "$DAEMON_PID"
	DAEMON_PID=
	check "the worker ended" bash -c "! kill -0 $worker 2>/dev/null"
	unset STSFS_TAKEOVER
}

for mode in ${MODES:-resend replay}; do
	run_mode "$mode"
done
finish
