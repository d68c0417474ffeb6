#!/usr/bin/env bash
# Runs VM test_stress RUNS (5) times in one boot and, when any task stays
# in D state for 90 s (a hang), prints the kernel stacks of every D-state
# task and of every stsfs thread, the FUSE connections' waiting counts and
# the tail of each daemon log, then aborts the connections so the run ends.
# For chasing an intermittent hang (docs/vm.md):
#   tests/vm/run-in-vm.sh --timeout 3400 -- env RUNS=5 bash tests/vm/stress-repeat.sh
cd "$(dirname "$0")/../.." || exit 1
RUNS=${RUNS:-5}

state_of() { awk '/^State:/ { print $2 }' "$1/status" 2>/dev/null; }

dump() {
	local p t c l
	echo "===== hang at $(date +%T)"
	for p in /proc/[0-9]*; do
		[ "$(state_of "$p")" = D ] || [ "$(cat "$p/comm" 2>/dev/null)" = stsfs ] || continue
		echo "--- pid ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-200)"
		for t in "$p"/task/*; do
			echo "tid ${t##*/} $(cat "$t/comm" 2>/dev/null) state $(state_of "$t") wchan $(cat "$t/wchan" 2>/dev/null)"
			cat "$t/stack" 2>/dev/null
		done
	done
	for c in /sys/fs/fuse/connections/*; do echo "connection ${c##*/}: waiting $(cat "$c/waiting")"; done
	for l in /var/tmp/stsfs-test.*/daemon.log; do
		echo "== $l"
		tail -60 "$l"
	done
	echo "===== end"
}

# The set of D-state tasks, every 10 s; the same set for 90 s is a hang.
watch() {
	local prev= now held=0 p c
	while sleep 10; do
		now=$(for p in /proc/[0-9]*; do [ "$(state_of "$p")" = D ] && echo "${p#/proc/}"; done | tr '\n' ' ')
		if [ -n "$now" ] && [ "$now" = "$prev" ]; then held=$((held + 10)); else held=0; fi
		prev=$now
		if [ "$held" -ge 90 ]; then
			dump
			for c in /sys/fs/fuse/connections/*; do echo 1 >"$c/abort"; done
			held=0
		fi
	done
}

mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections
watch &
watcher=$!
failed=0
out=$(mktemp /tmp/stress-repeat.XXXXXX)
for ((i = 1; i <= RUNS; i++)); do
	echo "##### run $i of $RUNS at $(date +%T)"
	timeout 900 bash tests/vm/test_stress.sh 2>&1 | grep -v 'FS-Cache\|9p,hostroot' >"$out"
	[ "${PIPESTATUS[0]}" = 0 ] || { failed=$((failed + 1)); grep -A60 '^FAIL' "$out" | head -120; }
	tail -8 "$out"
done
kill "$watcher"
rm -f "$out"
echo "stress-repeat: $failed of $RUNS runs failed"
[ "$failed" = 0 ]
