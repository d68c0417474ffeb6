#!/usr/bin/env bash
# SIGKILL at random points (issue 10, item 2; docs/reliability.md): 4 shells
# run mixed loop/ operations (create, configure, activate, deactivate,
# rename, remove) while the worker is killed 30 times; every operation
# succeeds and each shell's tree is what it made. Then the whole daemon
# (supervisor and worker) is killed 3 times and started again while the
# shells go on. Afterwards the tree, the records, the kernel's loop devices
# and the image dir agree: nothing lost, duplicated or leaked.
#   OPS (per shell, default 260), KILLS (default 30), DAEMON_KILLS (3)
. "$(dirname "$0")/lib.sh"

OPS=${OPS:-260}
KILLS=${KILLS:-30}
DAEMON_KILLS=${DAEMON_KILLS:-3}
L=$MNT/loop
SHELLS=4

# op LOG COMMAND...: runs one operation; a failure is logged with its errno text.
op() {
	local log=$1 out
	shift
	out=$("$@" 2>&1) && return 0
	echo "$* : $out" >>"$log"
	return 1
}

# A write or mkdir the dead worker had done before its answer reached the
# kernel is done again by the next worker: mkdir then finds the object
# (EEXIST), rmdir and mv find it gone (ENOENT). Those are the only failures
# a kill may cause.
done_twice() { # done_twice OUTPUT
	case "$1" in *"File exists"* | *"No such file or directory"*) return 0 ;; esac
	return 1
}

# shell ID STRICT: operations on its own objects sI-0..sI-3 until $WORK/stop
# and at least OPS of them; STRICT: every failure is logged. The shell's
# model (which objects exist, which are active) goes to $WORK/model.ID.
shell() {
	local id=$1 strict=$2 n=0 log=$WORK/fail.$1
	declare -A exists=() active=()
	while [ "$n" -lt "$OPS" ] || [ ! -e "$WORK/stop" ]; do
		n=$((n + 1))
		local k=$((RANDOM % 4)) name out
		name=s$id-$k
		if [ -z "${exists[$name]:-}" ]; then
			out=$(mkdir "$L/$name" 2>&1) || done_twice "$out" || echo "mkdir $name: $out" >>"$log"
			exists[$name]=1
			active[$name]=0
			op "$log" put "$L/$name/size" 4M
			continue
		fi
		case $((RANDOM % 5)) in
		0 | 1)
			op "$log" put "$L/$name/active" 1 && active[$name]=1
			;;
		2)
			op "$log" put "$L/$name/active" 0 && active[$name]=0
			;;
		3)
			local j to
			j=$(((k + 1 + RANDOM % 3) % 4))
			to=s$id-$j
			[ -n "${exists[$to]:-}" ] && continue
			if out=$(mv "$L/$name" "$L/$to" 2>&1) || { done_twice "$out" && [ -d "$L/$to" ]; }; then
				exists[$to]=1
				active[$to]=${active[$name]}
				unset "exists[$name]" "active[$name]"
			else
				echo "mv $name $to: $out" >>"$log"
			fi
			;;
		4)
			out=$(rmdir "$L/$name" 2>&1) || done_twice "$out" || echo "rmdir $name: $out" >>"$log"
			unset "exists[$name]" "active[$name]"
			;;
		esac
	done
	[ "$strict" = 1 ] || : >"$log"
	local o
	for o in $(printf '%s\n' "${!exists[@]}" | sort); do echo "$o ${active[$o]}"; done >"$WORK/model.$id"
	echo "$n" >"$WORK/ops.$id"
}

# The tree as each shell should see it: "NAME ACTIVE" for its objects.
tree_of() {
	local o
	for o in "$L"/s"$1"-*; do
		[ -d "$o" ] || continue
		echo "$(basename "$o") $(cat "$o/active")"
	done
}

run_shells() { # run_shells STRICT: starts the shells; SHELL_PIDS
	rm -f "$WORK/stop" "$WORK"/fail.* "$WORK"/model.* "$WORK"/ops.*
	SHELL_PIDS=()
	for i in $(seq $SHELLS); do
		shell "$i" "$1" &
		SHELL_PIDS+=($!)
	done
}

stop_shells() {
	touch "$WORK/stop"
	wait "${SHELL_PIDS[@]}"
}

ops_done() { cat "$WORK"/ops.* | awk '{ s += $1 } END { print s + 0 }'; }

# Every object, record, device and image accounted for, once.
agree() {
	local objs recs o problems=
	objs=$(ls "$L" | grep -v -e '^error$' -e '^loop[0-9]' | sort)
	recs=$(ls "$STATE/loop" | grep -v '^\.' | sort)
	eq "$recs" "$objs" "records and objects"
	local want_loops=
	for o in $objs; do
		if [ "$(cat "$L/$o/active")" = 1 ]; then
			local dev
			dev=$(cat "$L/$o/name")
			want_loops+="/dev/$dev $IMG/$o.img"$'\n'
		fi
	done
	eq "$(losetup -nO NAME,BACK-FILE | awk -v w="$WORK" 'index($2, w) == 1 { print $1, $2 }' | sort)" \
		"$(printf '%s' "$want_loops" | sort)" "each active object has one loop device on its image, and no other loop uses an image"
	for o in $(ls "$IMG"); do
		case " $(echo $objs) " in *" ${o%.img} "*) ;; *) problems+="$o " ;; esac
	done
	eq "$problems" "" "images that belong to no object"
}

start_daemon || exit 1

t "phase 1: $SHELLS shells, $KILLS worker kills; every operation succeeds"
run_shells 1
kills=0
for _ in $(seq "$KILLS"); do
	sleep 0.$((RANDOM % 4 + 1))
	kill_worker && kills=$((kills + 1))
done
stop_shells
eq "$kills" "$KILLS" "workers killed"
echo "phase 1: $(ops_done) operations, $kills worker kills" >&2
check "at least $((SHELLS * OPS)) operations ($(ops_done))" test "$(ops_done)" -ge $((SHELLS * OPS))
eq "$(cat "$WORK"/fail.* 2>/dev/null)" "" "failed operations"
for i in $(seq $SHELLS); do
	eq "$(tree_of "$i")" "$(cat "$WORK/model.$i")" "shell $i's objects as it made them"
done
agree

t "phase 2: $DAEMON_KILLS kills of the whole daemon, each started again"
run_shells 0
for _ in $(seq "$DAEMON_KILLS"); do
	sleep 0.$((RANDOM % 8 + 2))
	kill_daemon
	start_daemon || break
done
sleep 0.5
stop_shells
echo "phase 2: $(ops_done) operations, $DAEMON_KILLS daemon kills" >&2
check "operations went on ($(ops_done))" test "$(ops_done)" -ge $((SHELLS * OPS))
stop_daemon
check "the daemon starts once more" start_daemon
agree

t "clean up"
for o in $(ls "$L" | grep '^s'); do check "rmdir $o" rmdir "$L/$o"; done
finish
