#!/usr/bin/env bash
# SIGKILL at random points for dm/ and thin/ (issue 10, item 2), on 6.1
# where requests in flight are replayed: 2 shells run dm/ objects (linear
# tables over their loop objects) and 2 run thin/ volumes of one pool,
# creating, activating, deactivating, renaming and removing, while the
# worker is killed KILLS times; every operation succeeds and each shell's
# tree is what it made. Then the whole daemon is killed DAEMON_KILLS times
# and started again while the shells go on. Afterwards the tree, the
# records and the kernel's dm devices agree.
# Inside the test VM: tests/vm/run-in-vm.sh -- bash tests/vm/test_stress.sh
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib-dm.sh"

OPS=${OPS:-250}
KILLS=${KILLS:-20}
DAEMON_KILLS=${DAEMON_KILLS:-3}
T=$MNT/thin

# As lib-dm.sh's put (close's errno counts), with a value file per shell.
put() {
	local f=$WORK/value.$BASHPID r
	printf '%s\n' "$2" >"$f"
	cat "$f" >"$1"
	r=$?
	rm -f "$f"
	return $r
}

done_twice() {
	case "$1" in *"File exists"* | *"No such file or directory"*) return 0 ;; esac
	return 1
}

# The directory of shell ID's objects, and how one is made ready.
dir_of() { if [ "$1" -le 2 ]; then echo "$D"; else echo "$T/p"; fi; }
prefix_of() { if [ "$1" -le 2 ]; then echo "d$1-"; else echo "t$1-"; fi; }
configure() { # configure ID DIR NAME
	if [ "$1" -le 2 ]; then
		put "$2/$3/table" "0 2048 linear loop/b$1 0"
	else
		put "$2/$3/size" 4M
	fi
}

# shell ID STRICT: as tests/integration/test_stress.sh's shells.
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

tree_of() {
	local o dir pre
	dir=$(dir_of "$1")
	pre=$(prefix_of "$1")
	for o in "$dir/$pre"*; do
		[ -d "$o" ] || continue
		echo "$(basename "$o") $(cat "$o/active")"
	done
}

run_shells() {
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

# dm devices as the tree says they should be: the dm objects that are
# active, the pool, and pool-VOL for each active volume.
want_dm() {
	local o
	for o in "$D"/d*; do
		[ -d "$o" ] && [ "$(cat "$o/active")" = 1 ] && basename "$o"
	done
	echo p
	for o in "$T"/p/t*; do
		[ -d "$o" ] && [ "$(cat "$o/active")" = 1 ] && echo "p-$(basename "$o")"
	done
}

agree() {
	eq "$(dmsetup ls | awk '{ print $1 }' | sort)" "$(want_dm | sort)" "dm devices and active objects"
	eq "$(ls "$STATE/dm" | grep '^d' | sort)" "$(ls "$D" | grep '^d' | sort)" "dm records and objects"
	local vols
	vols=$(ls "$T/p" | grep '^t' | sort | tr '\n' ' ')
	eq "$(sed -n 's/^vol\.\([^=]*\)=.*/\1/p' "$STATE/thin/p" 2>/dev/null | sort | tr '\n' ' ')" \
		"$vols" "the pool's record lists its volumes"
	local o problems=
	for o in "$T"/p/t*; do
		[ -d "$o" ] || continue
		# A volume made while the daemon was killed may have no size yet.
		[ "$(cat "$o/size")" = 0 ] && continue
		# A volume whose rmdir was killed says so, and rmdir finishes it.
		if [ "$(cat "$o/active")" = 0 ] && ! put "$o/active" 1 2>/dev/null &&
			! grep -q "was being removed" "$o/error"; then
			problems+="$(basename "$o"): $(cat "$o/error") "
		fi
	done
	eq "$problems" "" "every volume can be activated (its thin is in the pool)"
}

t "setup: a loop per dm shell, a thin pool"
check "loop/b1" mkloop b1 4M
check "loop/b2" mkloop b2 4M
check "thin/p" mkdir "$T/p"
check "p data_size" put "$T/p/data_size" 128M
check "p active" put "$T/p/active" 1

t "phase 1: 4 shells, $KILLS worker kills; every operation succeeds"
run_shells 1
kills=0
for _ in $(seq "$KILLS"); do
	sleep 0.$((RANDOM % 8 + 2))
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
agree

t "phase 2: $DAEMON_KILLS kills of the whole daemon, each started again"
run_shells 0
for _ in $(seq "$DAEMON_KILLS"); do
	sleep $((RANDOM % 3 + 2))
	kill_daemon
	start_daemon || break
done
sleep 1
stop_shells
stop_daemon
check "the daemon starts once more" start_daemon
agree

t "clean up"
for o in "$T"/p/t* "$D"/d*; do [ -d "$o" ] && check "rmdir $o" rmdir "$o"; done
check "rmdir thin/p" rmdir "$T/p"
check "rmdir b1 b2" rmdir "$L/b1" "$L/b2"
eq "$(dmsetup ls 2>/dev/null | grep -v 'No devices')" "" "no dm device left"
finish
