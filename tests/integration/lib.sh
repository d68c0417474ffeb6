# Shared helpers for the shell-driven integration suites: a throwaway stsfs
# mount, checks that count, and a cleanup that leaves nothing behind.
# Source it; set STSFS to the daemon binary (default: build/stsfs).

set -u

STSFS=${STSFS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/stsfs}
# Not /tmp: the test VM has its own /tmp, and images must be on a real disk.
WORK_PARENT=${STSFS_TEST_DIR:-/var/tmp}
WORK=$(mktemp -d "$WORK_PARENT/stsfs-test.XXXXXX")
MNT=$WORK/mnt
IMG=$WORK/images
STATE=$WORK/state
ALLOW=$WORK/allowed
OUTSIDE=$WORK/outside
mkdir -p "$MNT" "$IMG" "$STATE" "$ALLOW" "$OUTSIDE"
# A daemon built with -Db_sanitize=address,undefined writes its reports to
# files of their own (sanitizer.PID), whole, not interleaved with its log.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$WORK/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$WORK/sanitizer:print_stacktrace=1"
DAEMON_PID=
DAEMON_ARGS=()
PASSED=0
FAILED=0
CURRENT=

t() { CURRENT=$*; }

pass() { PASSED=$((PASSED + 1)); }

fail() {
	FAILED=$((FAILED + 1))
	echo "FAIL [$CURRENT]: $*" >&2
}

check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then pass; else fail "$what"; fi
}

eq() { # eq ACTUAL EXPECTED DESCRIPTION
	if [ "$1" == "$2" ]; then pass; else fail "$3: got '$1', want '$2'"; fi
}

contains() { # contains HAYSTACK NEEDLE DESCRIPTION
	case "$1" in *"$2"*) pass ;; *) fail "$3: '$1' lacks '$2'" ;; esac
}

# strerror texts, as the shell and coreutils print them.
errtext() {
	case $1 in
	EINVAL) echo "Invalid argument" ;;
	ENOENT) echo "No such file or directory" ;;
	EEXIST) echo "File exists" ;;
	EBUSY) echo "Device or resource busy" ;;
	EACCES) echo "Permission denied" ;;
	EPERM) echo "Operation not permitted" ;;
	EROFS) echo "Read-only file system" ;;
	ENOSPC) echo "No space left on device" ;;
	ENODEV) echo "No such device" ;;
	ENOTEMPTY) echo "Directory not empty" ;;
	EXDEV) echo "Invalid cross-device link" ;;
	EIO) echo "Input/output error" ;;
	EOPNOTSUPP) echo "Operation not supported" ;;
	EDQUOT) echo "Disk quota exceeded" ;;
	*) echo "$1" ;;
	esac
}

# expect_err ERRNO COMMAND...: the command fails with that errno's message.
expect_err() {
	local want=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		fail "'$*' succeeded, want $want"
		return 1
	fi
	contains "$out" "$(errtext "$want")" "'$*' errno"
}

# put FILE VALUE: write like `echo VALUE > FILE` would.
put() { printf '%s\n' "$2" >"$1"; }

# put_fails ERRNO FILE VALUE REASON: the write fails with ERRNO, changes
# nothing, and the object's error file tells why.
put_fails() {
	local want=$1 file=$2 value=$3 reason=$4
	local before readable=1
	# A write-only file (wipe) is not read: the refused read would be the
	# last error then.
	[[ $(stat -c %A "$file" 2>/dev/null) == -r* ]] || readable=
	[ -n "$readable" ] && before=$(cat "$file" 2>/dev/null)
	expect_err "$want" put "$file" "$value"
	[ -n "$readable" ] && eq "$(cat "$file" 2>/dev/null)" "$before" "$file unchanged after failed write"
	contains "$(cat "$(dirname "$file")/error")" "$reason" "$(dirname "$file")/error"
	stamped "$(dirname "$file")/error" "$(basename "$file") (write|open)"
}

# stamped ERROR_FILE SOURCE_REGEX: the error file is one line saying when
# (UTC, within the last minute) and what (SOURCE) failed.
stamped() {
	local line when
	line=$(cat "$1")
	if ! [[ $line =~ ^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)\ ($2):\  ]]; then
		fail "$1 says when and what ($2): got '$line'"
		return
	fi
	when=$(date -u -d "${BASH_REMATCH[1]/T/ }" +%s 2>/dev/null) || when=0
	if [ $(($(date +%s) - when)) -le 60 ] && [ "$when" -le "$(date +%s)" ]; then pass; else fail "$1: time ${BASH_REMATCH[1]} is not the last minute's"; fi
}

# reason ERROR_FILE: the reason alone, without when and what.
reason() { sed -E 's/^[0-9T:-]+Z [^:]+: //' "$@"; }

json_ok() { jq -e . "$1" >/dev/null 2>&1; }

wait_mounted() {
	for _ in $(seq 100); do
		grep -q " $MNT fuse.stsfs " /proc/mounts && [ -e "$MNT/version" ] && return 0
		sleep 0.05
	done
	return 1
}

start_daemon() { # start_daemon [extra stsfs options]
	DAEMON_ARGS=("$@")
	"$STSFS" -f --image-dir "$IMG" --state-dir "$STATE" --allow-backing "$ALLOW" "$@" "$MNT" \
		2>>"$WORK/daemon.log" &
	DAEMON_PID=$!
	wait_mounted || { echo "stsfs did not mount; log:" >&2; cat "$WORK/daemon.log" >&2; return 1; }
}

stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

# SIGKILL: the mount is left broken, as after a crash. A worker thread the
# kill found inside a cache notification can stay in the kernel, waiting on
# a directory that a caller holds while it waits for an answer nobody will
# give; that thread keeps the connection open after umount -l. Aborting
# the connection (fusectl, as docs/faults.md tells admins) ends both.
kill_daemon() {
	local minor
	minor=$(awk -v m="$MNT" '$5 == m { split($3, d, ":"); print d[2] }' /proc/self/mountinfo | tail -1)
	kill -9 "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
	mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null
	[ -n "$minor" ] && [ -e "/sys/fs/fuse/connections/$minor/abort" ] && echo 1 >"/sys/fs/fuse/connections/$minor/abort"
	umount -l "$MNT" 2>/dev/null
}

# The worker serving the mount: the supervisor's (DAEMON_PID's) child.
worker_pid() { pgrep -P "$DAEMON_PID" -x stsfs | head -1; }

# kill_worker: SIGKILLs the worker and waits until the next one serves.
kill_worker() {
	local old
	old=$(worker_pid)
	[ -n "$old" ] || return 1
	kill -9 "$old"
	for _ in $(seq 200); do
		local now
		now=$(worker_pid)
		[ -n "$now" ] && [ "$now" != "$old" ] && return 0
		sleep 0.02
	done
	return 1
}

# For the takeover suites (test_restart.sh, test_fdstore.sh):
# reader DIR OUT: reads status files with its cwd in DIR until $WORK/stop
# exists; each failure's message goes to OUT, the number of reads to OUT.n.
# Its pid is READER.
reader() {
	(
		cd "$1" || exit 1
		n=0
		while [ ! -e "$WORK/stop" ]; do
			cat size status >/dev/null 2>>"$2" || echo "read $n failed" >>"$2"
			n=$((n + 1))
		done
		echo "$n" >"$2.n"
	) &
	READER=$!
}

# What the takeover suites keep across restarts: loop/a (4M, active) and
# loop/b (8M).
make_kept_objects() {
	check "loop/a" mkdir "$MNT/loop/a"
	check "a size" put "$MNT/loop/a/size" 4M
	check "a active" put "$MNT/loop/a/active" 1
	check "loop/b" mkdir "$MNT/loop/b"
	check "b size" put "$MNT/loop/b/size" 8M
}

# The tree and the kernel as a user sees them: objects, attributes, loops.
# Loop devices made outside stsfs (loopN: other suites running at the same
# time) come and go on their own: they are left out.
snapshot() {
	local o
	for o in "$MNT"/loop/*/; do
		o=${o%/}
		[[ $(basename "$o") =~ ^loop[0-9]+$ ]] && continue
		echo "$(basename "$o") $(cat "$o/size" "$o/active" "$o/status" 2>&1 | tr '\n' ' ')"
	done
	our_loops | sort
}

# Loop devices whose backing file lies in this run's directory.
our_loops() {
	losetup -nO NAME,BACK-FILE 2>/dev/null | awk -v w="$WORK" 'index($2, w) == 1 { print $1 }'
}

cleanup() {
	local mp
	stop_daemon
	for mp in $(awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
		umount -l "$mp" 2>/dev/null
	done
	for dev in $(our_loops); do losetup -d "$dev" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT

# The closing line, and the exit status, of a suite.
finish() {
	stop_daemon
	local mp
	for mp in $(awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/mounts); do umount -l "$mp"; done
	t "nothing left behind"
	eq "$(our_loops | tr '\n' ' ')" "" "loop devices left attached"
	eq "$(awk -v w="$WORK" 'index($2, w) == 1' /proc/mounts)" "" "mounts left behind"
	eq "$(ls "$IMG")" "" "images left behind"
	# A daemon built with -Db_sanitize=address,undefined reports here.
	local san
	san=$(cat "$WORK"/sanitizer.* 2>/dev/null
		grep -E -A20 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK/daemon.log" 2>/dev/null)
	eq "$(head -c 20000 <<<"$san")" "" "sanitizer reports"
	# A worker that crashed logged the signal and a backtrace (src/util/crash.c);
	# a signal sent on purpose (test_restart) says "sent by".
	eq "$(grep -A40 'fatal signal.* at address' "$WORK/daemon.log" 2>/dev/null | head -60)" "" \
		"worker crashes in the daemon log"
	echo "$(basename "$0"): $PASSED passed, $FAILED failed"
	# $WORK goes at exit: what the daemon said is kept in the output.
	if [ "$FAILED" -gt 0 ] && [ -s "$WORK/daemon.log" ]; then
		echo "last 60 lines of the daemon's log:"
		tail -n 60 "$WORK/daemon.log"
	fi >&2
	[ "$FAILED" -eq 0 ]
}

# sysfs attribute of a loop device by kernel name (loopN).
sysfs() { cat "/sys/block/$1/$2"; }

# Whether the running kernel creates partition devices for a GPT loop device
# at all (some minimal kernels lack the partition parsers).
kernel_scans_gpt() {
	local img=$WORK/gpt-probe.img dev ok=1
	truncate -s 4M "$img"
	printf 'label: gpt\n,1M\n' | sfdisk -q "$img" >/dev/null 2>&1
	dev=$(losetup -P -f --show "$img") || return 1
	[ -e "/sys/block/${dev#/dev/}/${dev#/dev/}p1" ] && ok=0
	losetup -d "$dev"
	rm -f "$img"
	return $ok
}
