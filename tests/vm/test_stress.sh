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

. "$(dirname "$0")/../integration/lib-stress.sh"

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
PAUSE_MAX=9
kill_workers_under_shells
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
