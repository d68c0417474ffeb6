# Shared by the random-kill suites (tests/integration/test_stress.sh on
# loop/, tests/vm/test_stress.sh on dm/ and thin/): shells of operations on
# their own objects, and their models. Source after lib.sh; the suite
# defines dir_of ID (the directory of shell ID's objects), prefix_of ID
# (their names' prefix) and configure ID DIR NAME (what makes a new object
# ready), and sets OPS.

# A change the dead worker had done before its answer reached the kernel
# is done again by the next worker: mkdir then finds the object (EEXIST),
# rmdir and mv find it gone (ENOENT). Those are the only failures a kill
# may cause.
done_twice() {
	case "$1" in *"File exists"* | *"No such file or directory"*) return 0 ;; esac
	return 1
}

# shell ID STRICT: operations on its objects PREFIX0..PREFIX3 (create,
# configure, activate, deactivate, rename, remove) until $WORK/stop exists
# and at least OPS were done; STRICT: every failure is logged to
# $WORK/fail.ID. The shell's model (which objects exist, which are active)
# goes to $WORK/model.ID, its count to $WORK/ops.ID.
shell() {
	local id=$1 strict=$2 n=0 log=$WORK/fail.$1 dir pre
	dir=$(dir_of "$id")
	pre=$(prefix_of "$id")
	declare -A exists=() active=()
	while [ "$n" -lt "$OPS" ] || [ ! -e "$WORK/stop" ]; do
		n=$((n + 1))
		local k=$((RANDOM % 4)) name out
		name=$pre$k
		if [ -z "${exists[$name]:-}" ]; then
			out=$(mkdir "$dir/$name" 2>&1) || done_twice "$out" || echo "mkdir $name: $out" >>"$log"
			exists[$name]=1
			active[$name]=0
			out=$(configure "$id" "$dir" "$name" 2>&1) || echo "configure $name: $out" >>"$log"
			continue
		fi
		case $((RANDOM % 5)) in
		0 | 1) out=$(put "$dir/$name/active" 1 2>&1) && active[$name]=1 || echo "activate $name: $out" >>"$log" ;;
		2) out=$(put "$dir/$name/active" 0 2>&1) && active[$name]=0 || echo "deactivate $name: $out" >>"$log" ;;
		3)
			local to=$pre$(((k + 1 + RANDOM % 3) % 4))
			[ -n "${exists[$to]:-}" ] && continue
			if out=$(mv "$dir/$name" "$dir/$to" 2>&1) || { done_twice "$out" && [ -d "$dir/$to" ]; }; then
				exists[$to]=1
				active[$to]=${active[$name]}
				unset "exists[$name]" "active[$name]"
			else
				echo "mv $name $to: $out" >>"$log"
			fi
			;;
		4)
			out=$(rmdir "$dir/$name" 2>&1) || done_twice "$out" || echo "rmdir $name: $out" >>"$log"
			unset "exists[$name]" "active[$name]"
			;;
		esac
	done
	[ "$strict" = 1 ] || : >"$log"
	local o
	for o in $(printf '%s\n' "${!exists[@]}" | sort); do echo "$o ${active[$o]}"; done >"$WORK/model.$id"
	echo "$n" >"$WORK/ops.$id"
}

# The objects of shell ID as the tree shows them: "NAME ACTIVE".
tree_of() {
	local o dir pre
	dir=$(dir_of "$1")
	pre=$(prefix_of "$1")
	for o in "$dir/$pre"*; do
		[ -d "$o" ] || continue
		echo "$(basename "$o") $(cat "$o/active")"
	done
}

run_shells() { # run_shells STRICT: shells 1..4; their pids in SHELL_PIDS
	rm -f "$WORK/stop" "$WORK"/fail.* "$WORK"/model.* "$WORK"/ops.*
	SHELL_PIDS=()
	for i in 1 2 3 4; do
		shell "$i" "$1" &
		SHELL_PIDS+=($!)
	done
}

stop_shells() {
	touch "$WORK/stop"
	wait "${SHELL_PIDS[@]}"
}

ops_done() { cat "$WORK"/ops.* | awk '{ s += $1 } END { print s + 0 }'; }

# Phase 1 of both suites: the shells through KILLS worker kills, waiting
# PAUSE_MAX tenths of a second at most between kills; every operation
# succeeds and each shell's tree is its model.
kill_workers_under_shells() {
	run_shells 1
	local kills=0
	for _ in $(seq "$KILLS"); do
		sleep 0.$((RANDOM % PAUSE_MAX + 1))
		kill_worker && kills=$((kills + 1))
	done
	stop_shells
	eq "$kills" "$KILLS" "workers killed"
	echo "phase 1: $(ops_done) operations, $kills worker kills" >&2
	check "at least $((4 * OPS)) operations ($(ops_done))" test "$(ops_done)" -ge $((4 * OPS))
	eq "$(cat "$WORK"/fail.* 2>/dev/null)" "" "failed operations"
	for i in 1 2 3 4; do
		eq "$(tree_of "$i")" "$(cat "$WORK/model.$i")" "shell $i's objects as it made them"
	done
}
