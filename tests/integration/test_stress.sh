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

. "$(dirname "$0")/lib-stress.sh"

dir_of() { echo "$L"; }
prefix_of() { echo "s$1-"; }
configure() { put "$2/$3/size" 4M; }

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

t "phase 1: 4 shells, $KILLS worker kills; every operation succeeds"
PAUSE_MAX=4
kill_workers_under_shells
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
check "operations went on ($(ops_done))" test "$(ops_done)" -ge $((4 * OPS))
stop_daemon
check "the daemon starts once more" start_daemon
agree

t "clean up"
for o in $(ls "$L" | grep '^s'); do check "rmdir $o" rmdir "$L/$o"; done
finish
