#!/usr/bin/env bash
# The state directory's contract (docs/tree.md, "State and restart"), seen
# from the daemon's system calls: a save is durable within about a second
# without an fsync per change (group commit), fsync(2) on an object's file
# makes it durable before it returns, and steady-state work makes no
# directories. Counts only: nothing here depends on how fast the machine is.
. "$(dirname "$0")/lib.sh"

if ! command -v strace >/dev/null; then
	echo "test_state.sh: strace is missing (scripts/deps.sh test installs it)"
	exit 1
fi
start_daemon || exit 1
L=$MNT/loop
TRACE=$WORK/trace

# trace CALLS: follows the daemon's threads until untrace, paths shown (-y).
trace() {
	local worker
	worker=$(worker_pid)
	strace -f -y -qq -e trace="$1" -o "$TRACE" -p "$worker" 2>/dev/null &
	TRACER=$!
	for _ in $(seq 50); do
		grep -q TracerPid:.*[1-9] "/proc/$worker/status" && return 0
		sleep 0.1
	done
	return 1
}
untrace() { kill "$TRACER" 2>/dev/null; wait "$TRACER" 2>/dev/null; }
calls_on() { grep -c "$1" "$TRACE"; } # lines naming a path

check "loop/s" mkdir "$L/s"
t "group commit: many changes, few fsyncs"
check "tracing fsync" trace fsync,fdatasync
for i in $(seq 40); do put "$L/s/size" "$((i + 1))M"; done
sleep 1.5 # the commit comes within a second of the last change
untrace
saved=$(calls_on "$STATE/loop/s>")
check "the record was made durable ($saved fsyncs of it)" test "$saved" -ge 1
check "fewer fsyncs than the 40 changes ($saved)" test "$saved" -lt 40
eq "$(sed -n 's/^size=//p' "$STATE/loop/s")" "$((41 * 1024 * 1024))" "the record has the last value"

t "fsync(2) on an object's file makes it durable before it returns"
check "tracing fsync" trace fsync,fdatasync
put "$L/s/size" 64M
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.close(fd); print("synced", flush=True)' \
	"$L/s/size" >/dev/null
before=$(calls_on "$STATE/loop/s>")
untrace
check "the record was fsync'd by the time fsync returned ($before)" test "$before" -ge 1
check "and its directory" grep -q "fsync([0-9]*<$STATE/loop>" "$TRACE"

t "no directories made in steady state"
check "loop/warm" mkdir "$L/warm" # the first object makes the image directory
check "warm size" put "$L/warm/size" 4M
check "warm active" put "$L/warm/active" 1
check "rmdir warm" rmdir "$L/warm"
check "tracing mkdir" trace mkdir,mkdirat
for i in $(seq 5); do
	mkdir "$L/c$i" && put "$L/c$i/size" 4M && put "$L/c$i/active" 1 && rmdir "$L/c$i" || fail "lifecycle $i"
done
untrace
eq "$(grep -c mkdir "$TRACE")" "0" "mkdir calls by the daemon during 5 lifecycles"

check "rmdir s" rmdir "$L/s"
finish
