# Shared by bench/run.sh and bench/vm_rows.sh (source it): the daemon, the
# interleaved comparison rows, medians and the output format. Needs $W (a
# work directory), $BUILD (the build directory), $ROUNDS.

BT=$BUILD/bench/benchtool
DAEMON_PID=

# start_daemon STATE_DIR IMAGE_DIR MOUNTPOINT: stsfs in the foreground of a
# background job, so that its PID (for VmRSS) is known.
start_daemon() {
	mkdir -p "$1" "$2" "$3"
	# No shared self-bind of the work directory left behind (builds
	# older than --propagation have none to leave).
	local prop=()
	"$BUILD/stsfs" --help 2>&1 | grep -q -- --propagation && prop=(--propagation none)
	"$BUILD/stsfs" -f "${prop[@]}" --image-dir "$2" --state-dir "$1" "$3" >"$W/daemon.log" 2>&1 &
	DAEMON_PID=$!
	local i
	for i in $(seq 100); do
		[ -d "$3/loop" ] && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "bench: the daemon did not start:" >&2
	cat "$W/daemon.log" >&2
	return 1
}

# stop_daemon MOUNTPOINT
stop_daemon() {
	umount "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
		DAEMON_PID=
	fi
}

# The process that serves the tree: the supervisor's (DAEMON_PID's) worker.
worker_pid() { pgrep -P "$DAEMON_PID" -x stsfs | head -1; }

# Memory of both processes (the supervisor's is small and constant).
rss_kib() {
	local total=0 pid
	for pid in "$DAEMON_PID" $(worker_pid); do
		total=$((total + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")))
	done
	echo "$total"
}

median() { # numbers on stdin
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

fmt_us() { # microseconds, shown in a readable unit
	awk -v u="$1" 'BEGIN {
		if (u == "nan") print "-"
		else if (u < 1000) printf "%.1f us\n", u
		else if (u < 1000000) printf "%.2f ms\n", u / 1000
		else printf "%.3f s\n", u / 1000000 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f\n", a / b; else print "-" }'; }

header() {
	printf '%-46s %12s %12s %8s  %s\n' "row" "stsfs" "reference" "ratio" "reference is"
}

# compare LABEL STSFS_CMD REF_NAME REF_CMD [REF_NAME REF_CMD]...
# Each CMD is eval'd and prints microseconds. Per round: STSFS_CMD, then each
# REF_CMD in turn (interleaved, so drift hits both sides alike). Prints one
# line per reference: the medians and stsfs / reference.
compare() {
	local label=$1 a_cmd=$2
	shift 2
	local -a names=() cmds=() samples=()
	while [ $# -ge 2 ]; do
		names+=("$1")
		cmds+=("$2")
		samples+=("")
		shift 2
	done
	local a_samples="" r k v
	for r in $(seq "$ROUNDS"); do
		v=$(eval "$a_cmd") || { echo "bench: $label: stsfs side failed" >&2; return 1; }
		a_samples+="$v"$'\n'
		for k in "${!cmds[@]}"; do
			v=$(eval "${cmds[$k]}") || { echo "bench: $label: ${names[$k]} failed" >&2; return 1; }
			samples[$k]+="$v"$'\n'
		done
	done
	local am bm
	am=$(printf '%s' "$a_samples" | median)
	for k in "${!cmds[@]}"; do
		bm=$(printf '%s' "${samples[$k]}" | median)
		printf '%-46s %12s %12s %8s  %s\n' "$label" "$(fmt_us "$am")" "$(fmt_us "$bm")" \
			"$(ratio "$am" "$bm")" "${names[$k]}"
	done
}

# profile NAME COUNT COMMAND...: the daemon's syscalls while COMMAND runs,
# per operation (COUNT operations), the five most frequent.
profile() {
	local name=$1 count=$2
	shift 2
	local worker
	worker=$(worker_pid)
	strace -f -c -o "$W/trace" -p "$worker" 2>/dev/null &
	local tracer=$!
	for _ in $(seq 50); do
		grep -q 'TracerPid:[[:space:]]*[1-9]' "/proc/$worker/status" && break
		sleep 0.1
	done
	"$@" >/dev/null
	sleep 0.2
	kill "$tracer" 2>/dev/null || true
	wait "$tracer" 2>/dev/null || true
	awk -v name="$name" -v n="$count" '
		$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { calls[$NF] = $4 }
		END {
			total = 0; for (s in calls) total += calls[s]
			printf "%-34s %7.1f to /dev/fuse %7.1f syscalls:", name, calls["writev"] / n, total / n
			k = 0
			while (k < 6) {
				best = ""; for (s in calls) if (best == "" || calls[s] > calls[best]) best = s
				if (best == "") break
				printf " %s %.1f", best, calls[best] / n; delete calls[best]; k++
			}
			printf "\n"
		}' "$W/trace"
}
