#!/usr/bin/env bash
# The daemon's log (issue 11, item 4; docs/logging.md): one line per device
# change naming the object, refusals at warning with the reason,
# --log-level, adoption at restart, and syslog when daemonized.
. "$(dirname "$0")/lib.sh"

LOG=$WORK/daemon.log
L=$MNT/loop

# log_since MARK: the log's lines after byte MARK.
log_since() { tail -c +$(($1 + 1)) "$LOG"; }
log_size() { stat -c %s "$LOG" 2>/dev/null || echo 0; }

# one_line MARK PATTERN DESCRIPTION: exactly one line after MARK matches.
one_line() {
	local n
	n=$(log_since "$1" | grep -c -- "$2")
	eq "$n" 1 "$3: lines matching '$2'"
}

t "info: a loop object's life, one line per change"
: >"$LOG"
start_daemon
m=$(log_size)
mkdir "$L/disk"
one_line "$m" ": info: loop/disk: created$" "mkdir"
put "$L/disk/size" 64M
m=$(log_size)
put "$L/disk/active" 1
one_line "$m" ": info: loop/disk: activated as /dev/loop[0-9]* (image $IMG/disk.img, 64 MiB)" "activate"
m=$(log_size)
put "$L/disk/size" 128M
one_line "$m" ": info: loop/disk: resized from 64 MiB to 128 MiB" "resize"
m=$(log_size)
mv "$L/disk" "$L/disk2"
one_line "$m" ": info: loop/disk: renamed to loop/disk2$" "rename"
m=$(log_size)
put "$L/disk2/active" 0
one_line "$m" ": info: loop/disk2: deactivated (was /dev/loop[0-9]*)" "deactivate"
m=$(log_size)
rmdir "$L/disk2"
one_line "$m" ": info: loop/disk2: removed" "rmdir"
check "the prefix names the process" grep -qE '^stsfs\[[0-9]+\]: info: loop/disk: created$' "$LOG"
check "no FUSE trace without -d" bash -c "! grep -q 'unique:' '$LOG'"
check "written values are not logged at info" bash -c "! grep -q 'written:' '$LOG'"

t "warning: a refused write, with the reason"
mkdir "$L/r"
m=$(log_size)
expect_err EINVAL put "$L/r/size" 1000
one_line "$m" ": warning: loop/r: refused size write: size must be a positive multiple of 512 bytes, not 1000" "refused write"
m=$(log_size)
expect_err EINVAL mkdir "$L/loop7"
one_line "$m" ": warning: loop/loop7: refused mkdir: names like 'loop7' belong to the kernel's loop devices" "refused mkdir"
rmdir "$L/r"
stop_daemon

t "--log-level warning hides info"
: >"$LOG"
start_daemon --log-level warning
mkdir "$L/quiet"
put "$L/quiet/size" 16M
put "$L/quiet/active" 1
expect_err EINVAL put "$L/quiet/size" 1000
put "$L/quiet/active" 0
rmdir "$L/quiet"
check "no info lines" bash -c "! grep -q ': info: ' '$LOG'"
one_line 0 ": warning: loop/quiet: refused size write" "the refusal still"
stop_daemon

t "-o log_level=debug shows written values"
: >"$LOG"
start_daemon -o log_level=debug
mkdir "$L/dbg"
put "$L/dbg/size" 16M
one_line 0 ": debug: loop/dbg: size written: 16M" "debug"
rmdir "$L/dbg"
stop_daemon

t "an invalid level refuses to start"
out=$("$STSFS" -f --image-dir "$IMG" --state-dir "$STATE" --log-level loud "$MNT" 2>&1)
eq "$?" 1 "exit status"
contains "$out" "--log-level wants error, warning, info or debug, not 'loud'" "message"
check "nothing mounted" bash -c "! grep -q ' $MNT fuse.stsfs ' /proc/mounts"

t "adopted at restart"
: >"$LOG"
start_daemon
mkdir "$L/kept"
put "$L/kept/size" 16M
put "$L/kept/active" 1
kill_daemon
start_daemon
one_line 0 ": info: loop/kept: adopted /dev/loop[0-9]*$" "adoption"
put "$L/kept/active" 0
rmdir "$L/kept"
stop_daemon

t "daemonized: to syslog, not stderr"
SOCK=$WORK/syslog.sock
SYSLOG=$WORK/syslog.out
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(4096) + b"\n")
' "$SOCK" "$SYSLOG" &
LISTENER=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
STSFS_SYSLOG_SOCKET=$SOCK "$STSFS" --image-dir "$IMG" --state-dir "$STATE" "$MNT" 2>"$WORK/detached.err"
eq "$?" 0 "the daemon detached"
check "mounted" wait_mounted
mkdir "$L/sys"
expect_err EINVAL put "$L/sys/size" 1000
rmdir "$L/sys"
umount "$MNT"
for _ in $(seq 50); do pgrep -f -- "--state-dir $STATE" >/dev/null || break; sleep 0.1; done
sleep 0.2
kill "$LISTENER" 2>/dev/null
wait "$LISTENER" 2>/dev/null
check "created, as LOG_DAEMON|LOG_INFO" grep -qE '^<30>stsfs\[[0-9]+\]: loop/sys: created$' "$SYSLOG"
check "the refusal, as LOG_DAEMON|LOG_WARNING" \
	grep -qE '^<28>stsfs\[[0-9]+\]: loop/sys: refused size write: size must be' "$SYSLOG"
check "removed" grep -qE 'loop/sys: removed$' "$SYSLOG"
eq "$(cat "$WORK/detached.err")" "" "nothing on the detached daemon's stderr"
if [ -S /dev/log ]; then
	echo "note: /dev/log exists; the real syslog path is not checked here (the test socket stands in)"
else
	echo "note: no /dev/log here: syslog(3) itself is not checked, only what stsfs sends (skipped, not counted)"
fi

finish
