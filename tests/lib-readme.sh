# Runs README.md's command blocks as written, against a fresh stsfs at /sts.
# Source it first (it re-executes the suite in a private mount namespace, so
# the mount at /sts is seen by nobody else), then tests/integration/lib.sh,
# then call readme_start.
#
#   readme_blocks HEADING PREFIX  the ```sh blocks under "## HEADING", one
#                                 file each ($WORK/PREFIX-N.sh); prints N
#   run_block FILE OUT [quiet]    bash -e -o pipefail FILE from a fresh shell
#                                 on a terminal, the transcript in OUT (its
#                                 end shown on failure, unless quiet)
#   run_section HEADING PREFIX    every block of the section, each checked to
#                                 run to its end; their transcripts joined in
#                                 $WORK/PREFIX.out
#   block_ran OUT PATTERN DESC    OUT has a line matching PATTERN (ERE)

if [ "${STSFS_README_NS:-}" != 1 ]; then
	STSFS_README_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

README_MD=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/README.md
# A block that takes longer than this is stuck (a blocked read, a prompt).
BLOCK_TIMEOUT=${STSFS_README_TIMEOUT:-300}
MADE_STS=

readme_blocks() { # readme_blocks HEADING PREFIX
	awk -v heading="## $1" -v out="$WORK/$2" '
		!inblk && /^## / { insec = ($0 == heading); next }
		insec && !inblk && /^```sh[ \t]*$/ { n++; inblk = 1; file = out "-" n ".sh"; printf "" >file; next }
		inblk && /^```[ \t]*$/ { inblk = 0; close(file); next }
		inblk { print >file }
		END { print n + 0 }
	' "$README_MD"
}

# The tree at /sts, as the README expects it (mkdir /sts only if missing).
readme_start() {
	# One README suite at a time per machine: they share the path /sts.
	exec 8>/run/stsfs-readme.lock
	flock 8
	if [ ! -d /sts ]; then
		mkdir /sts && MADE_STS=1
	fi
	MNT=/sts
	trap readme_cleanup EXIT
	start_daemon "$@"
}

# A shell as a reader's: a clean environment, a terminal (script(1): tools
# that ask on a terminal ask here too; stdin at EOF answers "no"), started
# in a directory other than /sts. Its transcript (stdout and stderr) goes to
# OUT with carriage returns and colours removed.
run_block() { # run_block FILE OUT [quiet]
	local file=$1 out=$2 quiet=${3:-} rc
	(
		cd "$WORK" &&
			exec timeout -k 5 "$BLOCK_TIMEOUT" env -i PATH="$PATH" HOME="${HOME:-/root}" \
				TERM=xterm SHELL=/bin/bash LC_ALL=C.UTF-8 \
				script -qec "bash -e -o pipefail $file" /dev/null </dev/null
	) >"$out.raw" 2>&1
	rc=$?
	sed -e 's/\r$//' -e 's/\x1b\[[0-9;]*m//g' "$out.raw" >"$out"
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "$(basename "$file") did not finish within ${BLOCK_TIMEOUT}s; its transcript ends:" >&2
		tail -5 "$out" | sed 's/^/    /' >&2
		echo "  and these processes were still in /sts:" >&2
		stuck_processes | sed 's/^/    /' >&2
		unstick
	elif [ "$rc" -ne 0 ] && [ -z "$quiet" ]; then
		echo "$(basename "$file") exited with status $rc; its transcript ends:" >&2
		tail -5 "$out" | sed 's/^/    /' >&2
	fi
	return "$rc"
}

run_section() { # run_section HEADING PREFIX
	local n i start
	n=$(readme_blocks "$1" "$2")
	check "'$1' has sh blocks" test "$n" -ge 1
	for i in $(seq "$n"); do
		start=$SECONDS
		check "$2 block $i runs to its end" run_block "$WORK/$2-$i.sh" "$WORK/$2-$i.out"
		echo "$2 block $i: $((SECONDS - start)) s" >&2
	done
	cat "$WORK/$2"-*.out >"$WORK/$2.out" 2>/dev/null
}

block_ran() { # block_ran OUT PATTERN DESCRIPTION
	if grep -Eq -- "$2" "$1"; then pass; else fail "$3: no line matching '$2' in the transcript"; fi
}

# Processes left with their working directory in /sts (a block's commands).
stuck_processes() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/cwd" 2>/dev/null)" = /sts ] || continue
		ps -o pid=,stat=,wchan:28=,args= -p "${p#/proc/}" 2>/dev/null
	done
}

# A command stuck in a request the daemon never answers keeps the mount and
# the daemon alive: abort the FUSE connection, then stop the daemon.
unstick() {
	local conn
	[ -n "$DAEMON_PID" ] || return 0
	conn=$(stat -c %d /sts 2>/dev/null)
	if [ -n "$conn" ]; then
		[ -d /sys/fs/fuse/connections/"$conn" ] ||
			mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null
		echo 1 >/sys/fs/fuse/connections/"$conn"/abort 2>/dev/null
	fi
	umount -l /sts 2>/dev/null
	for _ in $(seq 50); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

# Device-mapper devices that are not the host's own (set DM_BEFORE to the
# `dmsetup ls` names before the suite), removed users first.
remove_new_dm() {
	local i n
	for i in 1 2 3 4 5; do
		for n in $(new_dm); do dmsetup remove "$n" 2>/dev/null; done
		[ -z "$(new_dm)" ] && return 0
	done
}
new_dm() {
	dmsetup ls 2>/dev/null | awk '$1 != "No" { print $1 }' | grep -vxF -f <(printf '%s\n' "${DM_BEFORE:-}" "") || true
}

readme_cleanup() {
	unstick_if_hung
	[ -n "${DM_BEFORE+set}" ] && remove_new_dm
	cleanup
	if [ -n "$MADE_STS" ]; then
		rmdir /sts 2>/dev/null
	fi
}

# At exit the daemon normally stops on unmount; if it does not within 5 s,
# something holds the mount: abort it.
unstick_if_hung() {
	local _
	[ -n "$DAEMON_PID" ] || return 0
	umount /sts 2>/dev/null || {
		stuck_processes >&2
		unstick
		return
	}
	for _ in $(seq 50); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$DAEMON_PID" 2>/dev/null && unstick
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}
