#!/usr/bin/env bash
# The mount survives its worker on Debian's 6.1 kernel, which cannot resend
# requests (no FUSE_NOTIFY_RESEND): requests in flight are replayed from the
# map's request slots (docs/reliability.md). Runs the native restart suite
# here, then dm/ and thin/ across kills: a `wait` blocked through 3 kills
# returns at the event, live devices are untouched, and data written
# through thin/ while the worker is killed 10 times reads back whole.
# Inside the test VM: tests/vm/run-in-vm.sh -- bash tests/vm/test_restart.sh
here=$(dirname "$0")
MODES=replay bash "$here/../integration/test_restart.sh" || native_failed=1
. "$here/../integration/lib.sh"
. "$here/lib-dm.sh"
T=$MNT/thin

t "the native restart suite on 6.1"
eq "${native_failed:-0}" 0 "tests/integration/test_restart.sh passed"

t "dm/: a wait blocked through 3 kills returns at the event"
check "loop/tm" mkloop tm 4M
check "loop/td" mkloop td 64M
check "thin-pool" mkdm pool "0 131072 thin-pool loop/tm loop/td 128 1023"
check "create_thin 0" put "$D/pool/message" "0 create_thin 0"
check "thin volume" mkdm thin0 "0 262144 thin dm/pool 0"
table_before=$(dmsetup table)
ev=$(jq -r .event_nr "$D/pool/info.json")
timeout -s KILL 120 cat "$D/pool/wait" >"$WORK/event" 2>"$WORK/event.err" &
waiter=$!
sleep 1
for _ in 1 2 3; do
	check "kill" kill_worker
	sleep 0.5
done
check "the waiter still waits" kill -0 "$waiter"
check "write to the thin" dd if=/dev/urandom of="$D/thin0/data" bs=64k count=4 oflag=direct conv=notrunc status=none
wait "$waiter"
eq "$?" "0" "wait returned"
check "with a later event ($ev -> $(cat "$WORK/event"))" test "$(cat "$WORK/event")" -gt "$ev"
eq "$(cat "$WORK/event.err")" "" "and no error"
eq "$(dmsetup table)" "$table_before" "the live devices' tables unchanged"
check "rmdir thin0 pool" rmdir "$D/thin0" "$D/pool"
check "rmdir tm td" rmdir "$L/tm" "$L/td"

t "thin/: data written while the worker is killed 10 times"
check "thin/p" mkdir "$T/p"
check "data_size" put "$T/p/data_size" 64M
check "pool active" put "$T/p/active" 1
check "thin/p/v" mkdir "$T/p/v"
check "v size" put "$T/p/v/size" 32M
check "v active" put "$T/p/v/active" 1
head -c $((24 * 1024 * 1024)) /dev/urandom >"$WORK/payload"
dd if="$WORK/payload" of="$T/p/v/data" bs=1M oflag=direct conv=notrunc status=none 2>"$WORK/dd.err" &
writer=$!
kills=0
for _ in $(seq 10); do
	sleep 0.$((RANDOM % 3 + 1))
	kill_worker && kills=$((kills + 1))
done
wait "$writer"
eq "$?" "0" "dd through the kills succeeded $(cat "$WORK/dd.err")"
eq "$kills" 10 "workers killed"
eq "$(head -c $((24 * 1024 * 1024)) "$T/p/v/data" | md5sum)" "$(md5sum <"$WORK/payload")" "the data reads back whole"
eq "$(head -c $((24 * 1024 * 1024)) "$(cat "$T/p/v/device")" | md5sum)" \
	"$(md5sum <"$WORK/payload")" "and so does the device node"
check "rmdir v" rmdir "$T/p/v"
check "rmdir p" rmdir "$T/p"
eq "$(dmsetup ls 2>/dev/null | grep -v 'No devices')" "" "no dm device left"
finish
