#!/usr/bin/env bash
# A signal ends any blocked read of the tree within a second (inside the
# test VM: tests/vm/run-in-vm.sh -- bash tests/vm/test_interrupt.sh):
# `wait` blocked until a device's next event, and metadata/ reads while a
# dmpd tool runs (the tool is killed). The daemon answers FUSE_INTERRUPT
# with EINTR; without that the reader sits in D state for good.
. "$(dirname "$0")/../integration/lib.sh"

# A thin_check that never finishes on its own, found first in the daemon's
# PATH: a metadata read then blocks for as long as a reader lets it.
SLOW=$WORK/slowbin
mkdir -p "$SLOW"
printf '#!/bin/sh\necho $$ >>%s/slow.pids\nexec sleep 300\n' "$WORK" >"$SLOW/thin_check"
chmod +x "$SLOW/thin_check"
export PATH="$SLOW:$PATH"
. "$(dirname "$0")/lib-dm.sh"

# ends_within PID SECONDS: the process is gone within that time.
ends_within() {
	local pid=$1 i
	for i in $(seq $(($2 * 20))); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# blocked PID: still running, asleep in the kernel (S or D), after a moment.
blocked() {
	sleep 0.5
	kill -0 "$1" 2>/dev/null
}

state_of() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }

# A script's background jobs ignore SIGINT (no job control): give it back,
# as a reader at a terminal has it. A command, not a function: $! must be
# the reader itself, not a subshell running the function.
READER="env --default-signal=INT"

check "loop/a" mkloop a 64M
check "loop/tm" mkloop tm 16M
check "loop/td" mkloop td 64M
check "linear" mkdm lin "0 131072 linear loop/a 0"

for sig in INT TERM KILL; do
	t "SIGINT, SIGTERM, SIGKILL end a blocked wait: $sig"
	$READER cat "$D/lin/wait" >"$WORK/out" 2>&1 &
	pid=$!
	check "cat wait blocks" blocked "$pid"
	kill -s "$sig" "$pid"
	# A reader that does not end is never waited for: the suite reports it.
	check "cat wait ended within a second of SIG$sig (state $(state_of "$pid"))" ends_within "$pid" 1 &&
		wait "$pid" 2>/dev/null
done

t "timeout ends a blocked wait"
start=$SECONDS
timeout 1 cat "$D/lin/wait" >/dev/null 2>&1
eq "$?" "124" "timeout's status"
check "within 3 s" test $((SECONDS - start)) -le 3
eq "$(grep -c . "$D/lin/error")" "0" "an interrupted read leaves no error"

t "the next event still wakes a wait after interrupted ones"
check "thin-pool with low-water mark 1023 of 1024 blocks" mkdm pool "0 131072 thin-pool loop/tm loop/td 128 1023"
check "create_thin 0" put "$D/pool/message" "create_thin 0"
check "thin 0" mkdm thin0 "0 262144 thin dm/pool 0"
ev=$(jq -r .event_nr "$D/pool/info.json")
timeout 1 cat "$D/pool/wait" >/dev/null 2>&1
eq "$?" "124" "an interrupted wait on the pool"
timeout -s KILL 60 cat "$D/pool/wait" >"$WORK/event" &
waiter=$!
check "cat wait blocks" blocked "$waiter"
check "write to the thin" dd if=/dev/urandom of="$D/thin0/data" bs=64k count=4 oflag=direct conv=notrunc status=none
wait "$waiter"
eq "$?" "0" "wait returned"
check "a later event ($ev -> $(cat "$WORK/event"))" test "$(cat "$WORK/event")" -gt "$ev"

t "a metadata read is interrupted and its tool killed"
$READER cat "$D/pool/metadata/check" >/dev/null 2>&1 &
first=$!
check "metadata/check blocks while the tool runs" blocked "$first"
check "the tool runs" test -s "$WORK/slow.pids"
# A second reader waits for the first (reads of one device's metadata take turns).
$READER cat "$D/pool/metadata/check" >/dev/null 2>&1 &
second=$!
check "a second reader waits its turn" blocked "$second"
kill -INT "$second"
check "the waiting reader ended within a second" ends_within "$second" 1
kill -INT "$first"
check "the reader ended within a second" ends_within "$first" 1
ends_within "$first" 0 && ends_within "$second" 0 && wait "$first" "$second" 2>/dev/null
for tool in $(cat "$WORK/slow.pids"); do
	check "the tool ($tool) was killed" ends_within "$tool" 1
done
eq "$(dmsetup status pool | awk '{print $7}')" "-" "the metadata snapshot was released"
eq "$(wc -l <"$WORK/slow.pids")" "1" "the second reader never ran the tool"

t "clean up"
for n in thin0 pool lin; do
	check "rmdir dm/$n" rmdir "$D/$n"
done
for n in a tm td; do
	check "rmdir loop/$n" rmdir "$L/$n"
done
finish
