#!/bin/bash
# Records what a real kernel prints for each device-mapper target, for the
# status/table parsers' unit tests, and what the persistent-data tools print.
# Meant to run inside the test VM (needs device-mapper and loop):
#
#   tests/vm/run-in-vm.sh tests/vm/record-dm-status.sh tests/unit/data/dm-status
#
# Writes OUTDIR/<target>.status and OUTDIR/<target>.table (the exact lines of
# `dmsetup status` / `dmsetup table`, each state preceded by a `# ` comment),
# OUTDIR/tools/* (thin/cache/era tool output), OUTDIR/targets.txt and
# OUTDIR/README.md. Images live in /var/tmp/stsfs-record-XXXXXX (the host's
# disk when run in the VM); every dm device, loop device and image made here is
# removed at the end, also on failure.
set -euo pipefail

readonly PREFIX=stsfs-rec-
readonly SELF_CMDLINE="tests/vm/$(basename "$0") $*"
OUT=
WORK=
FAILED=()
RECORDED=()
SKIPPED=()

log() { echo "record-dm-status: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- devices

# new_loop NAME MIB: a sparse image under $WORK on a loop device; prints it.
new_loop() {
	local img=$WORK/$1.img
	truncate -s "$2M" "$img"
	losetup -f --show "$img"
}

# dm NAME TABLE_LINE...: creates dm device $PREFIX$NAME, with a /dev/mapper
# node (no udev in the VM: dmsetup mknodes makes it).
dm() {
	local name=$PREFIX$1
	shift
	printf '%s\n' "$@" | dmsetup create "$name"
	dmsetup mknodes "$name"
}

node() { echo "/dev/mapper/$PREFIX$1"; }

devno() { dmsetup info -c --noheadings -o major,minor --separator : "$PREFIX$1"; }

msg() { # msg NAME MESSAGE...
	local name=$1
	shift
	dmsetup message "$PREFIX$name" 0 "$@"
}

# reload NAME TABLE_LINE...: swaps the live table.
reload() {
	local name=$PREFIX$1
	shift
	printf '%s\n' "$@" | dmsetup reload "$name"
	dmsetup resume "$name"
}

remove() { dmsetup remove "$PREFIX$1"; }

wr() { # wr NAME OFFSET_KIB SIZE_KIB: direct writes of zeros
	dd if=/dev/zero of="$(node "$1")" bs=64K seek=$(($2 / 64)) count=$(($3 / 64)) \
		oflag=direct conv=fsync status=none
}

rd() { # rd NAME OFFSET_KIB SIZE_KIB: direct reads
	dd if="$(node "$1")" of=/dev/null bs=64K skip=$(($2 / 64)) count=$(($3 / 64)) \
		iflag=direct status=none
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# field NAME N: the Nth word of the device's status line.
field() { dmsetup status "$PREFIX$1" | awk -v n="$2" '{ print $n }'; }

# ---------------------------------------------------------------- recording

# record FILE LABEL NAME...: appends "# LABEL" and the devices' status and
# table lines to FILE.status and FILE.table.
record() {
	local file=$1 label=$2 name
	shift 2
	{
		echo "# $label"
		for name; do dmsetup status "$PREFIX$name"; done
	} >>"$OUT/$file.status"
	{
		echo "# $label"
		for name; do dmsetup table "$PREFIX$name"; done
	} >>"$OUT/$file.table"
	log "$file: $label"
	for name; do log "    $(dmsetup status "$PREFIX$name")"; done
}

# tool NAME COMMAND...: stdout to tools/NAME.txt, stderr to
# tools/NAME.stderr.txt; the command line and exit status to tools/commands.txt.
tool() {
	local name=$1 rc=0
	shift
	"$@" >"$OUT/tools/$name.txt" 2>"$OUT/tools/$name.stderr.txt" || rc=$?
	printf '%s\texit=%s\t%s\n' "$name" "$rc" "$*" >>"$OUT/tools/commands.txt"
	log "tools/$name: exit $rc: $*"
}

# corrupt IMAGE COPY: a copy of a metadata image with a damaged superblock.
corrupt() {
	cp --sparse=always "$1" "$2"
	printf 'stsfs-corrupted' | dd of="$2" bs=1 seek=64 conv=notrunc status=none
}

# ---------------------------------------------------------------- targets

rec_linear() {
	local l
	l=$(new_loop linear 16)
	dm linear "0 32768 linear $l 0"
	record linear "linear: one segment over a 16 MiB loop device" linear
	dm linear2 "0 16384 linear $l 16384" "16384 16384 linear $l 0"
	record linear "linear: two segments (the loop device's halves swapped)" linear2
}

rec_striped() {
	local a b c d
	a=$(new_loop stripe-a 16)
	b=$(new_loop stripe-b 16)
	dm striped "0 65536 striped 2 128 $a 0 $b 0"
	wr striped 0 1024
	record striped "striped: 2 stripes (16 MiB loop devices), 64 KiB chunks, after 1 MiB written" striped
	c=$(new_loop stripe-c 16)
	d=$(new_loop stripe-d 16)
	dm stripe-leg "0 32768 linear $d 0"
	dm striped-bad "0 65536 striped 2 128 $c 0 $(devno stripe-leg) 0"
	reload stripe-leg "0 32768 error"
	rd striped-bad 64 64 2>/dev/null && die "read from the failed stripe succeeded"
	record striped "striped: failure: a read from stripe 1 failed (its device was reloaded with the error target)" striped-bad
}

rec_zero() {
	dm zero "0 65536 zero"
	record zero "zero: 32 MiB" zero
}

rec_error() {
	dm error "0 65536 error"
	record error "error: 32 MiB" error
}

rec_delay() {
	local l
	l=$(new_loop delay 16)
	dm delay "0 32768 delay $l 0 20"
	rd delay 0 256
	wr delay 0 256
	record delay "delay: 20 ms for reads and writes (3 arguments), idle after 256 KiB read and written" delay
	dm delay2 "0 32768 delay $l 0 0 $l 0 2000"
	wr delay2 0 64 &
	sleep 1
	record delay "delay: reads 0 ms, writes 2000 ms (6 arguments), while one write is delayed" delay2
	wait
	record delay "delay: the same, idle again" delay2
}

rec_flakey() {
	local l
	l=$(new_loop flakey 16)
	dm flakey "0 32768 flakey $l 0 60 0"
	record flakey "flakey: up 60 s, down 0 s, no features" flakey
	dm flakey2 "0 32768 flakey $l 0 0 60 1 drop_writes"
	record flakey "flakey: always down, drop_writes" flakey2
	dm flakey3 "0 32768 flakey $l 0 5 5 5 corrupt_bio_byte 32 r 1 0"
	record flakey "flakey: up 5 s, down 5 s, corrupt_bio_byte 32 r 1 0" flakey3
}

rec_thin() {
	local meta data pool
	meta=$(new_loop pool-meta 8)
	data=$(new_loop pool-data 64)
	dm pool "0 131072 thin-pool $meta $data 128 16"
	pool=$(devno pool)
	record thin-pool "thin-pool: fresh; 8 MiB metadata, 64 MiB data, 64 KiB blocks, low water mark 16 blocks" pool
	msg pool "create_thin 0"
	msg pool "set_transaction_id 0 1"
	dm thin0 "0 65536 thin $pool 0"
	record thin "thin: volume 0 (32 MiB), nothing written" thin0
	wr thin0 0 4096
	record thin "thin: volume 0 after writing its first 4 MiB" thin0
	record thin-pool "thin-pool: 1 thin volume, transaction 1, 4 MiB written" pool

	dmsetup suspend "${PREFIX}thin0"
	msg pool "create_snap 1 0"
	dmsetup resume "${PREFIX}thin0"
	msg pool "set_transaction_id 1 2"
	dm thin1 "0 65536 thin $pool 1"
	wr thin1 0 1024
	wr thin1 8192 512
	record thin "thin: volume 1, a snapshot of volume 0, after writing 1 MiB at 0 and 512 KiB at 8 MiB" thin1
	record thin-pool "thin-pool: volume 0 and its snapshot 1, transaction 2" pool

	msg pool reserve_metadata_snap
	record thin-pool "thin-pool: while a metadata snapshot is held (reserve_metadata_snap)" pool
	thin_tools_live "$meta"
	msg pool release_metadata_snap
	record thin-pool "thin-pool: after release_metadata_snap" pool

	remove thin1
	remove thin0
	remove pool
	thin_tools_inactive "$meta"
	rec_thin_no_space
	rec_thin_metadata_failure
}

thin_tools_live() {
	local meta=$1
	local fields=DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,TRANSACTION,CREATE_TIME,SNAP_TIME,MAPPED_BYTES
	tool thin_ls-m thin_ls -m -o "$fields" "$meta"
	tool thin_ls-m-default thin_ls -m "$meta"
	tool thin_check-m thin_check -m "$meta"
	tool thin_dump-m thin_dump -m "$meta"
	tool thin_delta-m thin_delta -m --snap1 0 --snap2 1 "$meta"
	tool thin_delta-m-verbose thin_delta -m --verbose --snap1 0 --snap2 1 "$meta"
	tool thin_ls-live-no-m thin_ls -o "$fields" "$meta"
}

thin_tools_inactive() {
	local meta=$1
	local fields=DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,TRANSACTION,CREATE_TIME,SNAP_TIME,MAPPED_BYTES
	tool thin_check thin_check "$meta"
	tool thin_ls thin_ls -o "$fields" "$meta"
	tool thin_ls-sectors thin_ls -o DEV,MAPPED_SECTORS,EXCLUSIVE_SECTORS,SHARED_SECTORS,MAPPED,EXCLUSIVE,SHARED "$meta"
	tool thin_dump thin_dump "$meta"
	tool thin_delta thin_delta --snap1 0 --snap2 1 "$meta"
	corrupt "$WORK/pool-meta.img" "$WORK/pool-meta-corrupt.img"
	tool thin_check-corrupt thin_check "$WORK/pool-meta-corrupt.img"
	tool thin_ls-corrupt thin_ls "$WORK/pool-meta-corrupt.img"
}

# A pool whose data device is full, with error_if_no_space.
rec_thin_no_space() {
	local meta data pool
	meta=$(new_loop full-meta 4)
	data=$(new_loop full-data 2)
	dm full "0 4096 thin-pool $meta $data 128 0 1 error_if_no_space"
	pool=$(devno full)
	msg full "create_thin 0"
	dm full-thin "0 16384 thin $pool 0"
	wr full-thin 0 4096 2>/dev/null && die "writing past a full pool succeeded"
	record thin-pool "thin-pool: failure: out of data space (2 MiB data, error_if_no_space, 4 MiB written to a thin)" full
	record thin "thin: failure: volume of a pool that is out of data space" full-thin
	remove full-thin
	remove full
}

# A pool whose metadata device starts failing (reloaded with the error target).
rec_thin_metadata_failure() {
	local meta data pool mode
	meta=$(new_loop bad-meta 4)
	data=$(new_loop bad-data 16)
	dm bad-meta "0 8192 linear $meta 0"
	dm bad "0 32768 thin-pool $(devno bad-meta) $data 128 0"
	pool=$(devno bad)
	msg bad "create_thin 0"
	dm bad-thin "0 16384 thin $pool 0"
	wr bad-thin 0 256
	reload bad-meta "0 8192 error"
	wr bad-thin 1024 256 2>/dev/null || true
	msg bad "create_thin 1" 2>/dev/null || true
	mode=$(dmsetup status "${PREFIX}bad")
	record thin-pool "thin-pool: failure: after its metadata device was reloaded with the error target and a commit failed" bad
	record thin "thin: failure: volume of that pool" bad-thin
	log "failed pool: $mode"
	dmsetup remove --force "${PREFIX}bad-thin" "${PREFIX}bad" || true
}

rec_cache() {
	local meta cdev origin
	meta=$(new_loop wt-meta 8)
	cdev=$(new_loop wt-cache 16)
	origin=$(new_loop wt-origin 64)
	dm cache-wt "0 131072 cache $meta $cdev $origin 128 1 writethrough smq 0"
	record cache "cache: writethrough, smq; 8 MiB metadata, 16 MiB cache, 64 MiB origin, 64 KiB blocks; fresh" cache-wt
	local i
	for i in 1 2 3 4 5 6 7 8; do
		rd cache-wt 0 4096
		sleep 0.2
	done
	record cache "cache: writethrough after reading the first 4 MiB eight times" cache-wt
	wr cache-wt 0 1024
	wr cache-wt 16384 1024
	record cache "cache: writethrough after writing 1 MiB at 0 and at 16 MiB" cache-wt
	remove cache-wt
	tool cache_check-writethrough cache_check "$meta"
	tool cache_dump-writethrough cache_dump "$meta"

	meta=$(new_loop wb-meta 8)
	cdev=$(new_loop wb-cache 16)
	origin=$(new_loop wb-origin 64)
	dm cache-wb "0 131072 cache $meta $cdev $origin 128 1 writeback smq 2 migration_threshold 4096"
	record cache "cache: writeback, smq with migration_threshold 4096; fresh" cache-wb
	for i in 1 2 3 4; do rd cache-wb 0 2048; done
	wr cache-wb 0 2048
	wr cache-wb 32768 1024
	record cache "cache: writeback after reading 2 MiB four times and writing 2 MiB at 0 and 1 MiB at 32 MiB" cache-wb
	remove cache-wb
	tool cache_check cache_check "$meta"
	tool cache_dump cache_dump "$meta"
	corrupt "$WORK/wb-meta.img" "$WORK/wb-meta-corrupt.img"
	tool cache_check-corrupt cache_check "$WORK/wb-meta-corrupt.img"
}

rec_era() {
	local meta origin
	meta=$(new_loop era-meta 8)
	origin=$(new_loop era-origin 64)
	dm era "0 131072 era $meta $origin 128"
	record era "era: fresh; 8 MiB metadata, 64 MiB origin, 64 KiB blocks" era
	wr era 0 2048
	record era "era: after writing 2 MiB" era
	msg era checkpoint
	record era "era: after the checkpoint message" era
	wr era 8192 1024
	msg era checkpoint
	record era "era: after writing 1 MiB at 8 MiB and another checkpoint" era
	msg era take_metadata_snap
	record era "era: while a metadata snapshot is held (take_metadata_snap)" era
	msg era drop_metadata_snap
	record era "era: after drop_metadata_snap" era
	remove era
	tool era_check era_check "$meta"
	tool era_dump era_dump "$meta"
	tool era_dump-logical era_dump --logical "$meta"
	corrupt "$WORK/era-meta.img" "$WORK/era-meta-corrupt.img"
	tool era_check-corrupt era_check "$WORK/era-meta-corrupt.img"
}

rec_writecache() {
	local origin cdev
	origin=$(new_loop wc-origin 64)
	cdev=$(new_loop wc-cache 16)
	dm wc "0 131072 writecache s $origin $cdev 4096 0"
	record writecache "writecache: ssd mode, 16 MiB cache, 64 MiB origin, 4 KiB blocks; fresh" wc
	wr wc 0 4096
	record writecache "writecache: after writing 4 MiB" wc
	rd wc 0 8192
	record writecache "writecache: after reading 8 MiB" wc
	msg wc flush
	record writecache "writecache: after the flush message" wc
	remove wc
	dm wc2 "0 131072 writecache s $origin $cdev 4096 6 high_watermark 60 low_watermark 40 writeback_jobs 64"
	record writecache "writecache: the same devices again, with high_watermark 60 low_watermark 40 writeback_jobs 64" wc2
	remove wc2

	local origin2 cdev2
	origin2=$(new_loop wcbad-origin 16)
	cdev2=$(new_loop wcbad-cache 8)
	dm wcbad-cache "0 16384 linear $cdev2 0"
	dm wcbad "0 32768 writecache s $origin2 $(devno wcbad-cache) 4096 0"
	reload wcbad-cache "0 16384 error"
	wr wcbad 0 256 2>/dev/null || true
	record writecache "writecache: failure: after its cache device was reloaded with the error target and written" wcbad
	dmsetup remove --force "${PREFIX}wcbad" || true
}

rec_integrity() {
	local l provided table
	l=$(new_loop integrity 32)
	table="$l 0 4 J 1 internal_hash:crc32c"
	# The size the target provides is known once it has formatted the device.
	dm integrity "0 8 integrity $table"
	provided=$(field integrity 5)
	reload integrity "0 $provided integrity $table"
	record integrity "integrity: standalone, journal mode, crc32c tags, 32 MiB loop device; fresh" integrity
	if ! rd integrity 0 64 2>/dev/null; then
		record integrity "integrity: failure: after reading sectors that were never written (no tags yet)" integrity
	fi
	dd if=/dev/zero of="$(node integrity)" bs=1M oflag=direct conv=fsync status=none 2>/dev/null || true
	rd integrity 0 1024
	record integrity "integrity: after writing the whole device and reading 1 MiB (the mismatch counter is cumulative)" integrity
	remove integrity

	local l2 i
	l2=$(new_loop integrity-recalc 256)
	table="$l2 0 4 J 2 internal_hash:crc32c recalculate"
	dm integrity-recalc "0 8 integrity $table"
	provided=$(field integrity-recalc 5)
	reload integrity-recalc "0 $provided integrity $table"
	record integrity "integrity: with recalculate, 256 MiB loop device, just after activation" integrity-recalc
	# recalculate_sector reaches provided_data_sectors when done (it stays a
	# number while the table has recalculate).
	for i in $(seq 240); do
		[[ $(field integrity-recalc 6) == "$provided" ]] && break
		sleep 0.5
	done
	record integrity "integrity: with recalculate, after the recalculation finished" integrity-recalc

	local l3
	l3=$(new_loop integrity-bitmap 32)
	table="$l3 0 4 B 3 internal_hash:crc32c sectors_per_bit:8 bitmap_flush_interval:500"
	dm integrity-bitmap "0 8 integrity $table"
	provided=$(field integrity-bitmap 5)
	reload integrity-bitmap "0 $provided integrity $table"
	record integrity "integrity: bitmap mode with crc32c tags" integrity-bitmap
}

rec_crypt() {
	local l
	l=$(new_loop crypt 16)
	dm crypt "0 32768 crypt aes-xts-plain64 $(random_hex 64) 0 $l 0"
	wr crypt 0 1024
	record crypt "crypt: aes-xts-plain64, random throwaway 512-bit key, after writing 1 MiB" crypt
	dm crypt2 "0 16384 crypt aes-xts-plain64 $(random_hex 64) 0 $l 16384 2 allow_discards sector_size:4096"
	record crypt "crypt: the same with allow_discards sector_size:4096 (a second key)" crypt2
}

rec_snapshot() {
	local o c small po base
	o=$(new_loop snap-origin 32)
	c=$(new_loop snap-cow 16)
	dm snap-real "0 65536 linear $o 0"
	base=$(devno snap-real)
	dm snap-origin "0 65536 snapshot-origin $base"
	add_snapshot snap "0 65536 snapshot $base $c P 16"
	record snapshot "snapshot: persistent, 8 KiB chunks, 16 MiB COW; fresh" snap
	record snapshot-origin "snapshot-origin: over a 32 MiB linear device with one snapshot" snap-origin
	wr snap-origin 0 2048
	record snapshot "snapshot: after writing 2 MiB to the origin" snap
	wr snap 4096 1024
	record snapshot "snapshot: after writing 1 MiB to the snapshot itself" snap

	small=$(new_loop snap-small 1)
	add_snapshot snap-small "0 65536 snapshot $base $small P 16"
	wr snap-origin 8192 4096
	record snapshot "snapshot: failure: a snapshot with a 1 MiB COW after 4 MiB were written to the origin" snap-small
	record snapshot "snapshot: the first snapshot after that write" snap
	remove snap-small

	po=$(new_loop snap-po 1)
	add_snapshot snap-po "0 65536 snapshot $base $po PO 16"
	wr snap-po 0 4096 2>/dev/null && die "overfilling a PO snapshot succeeded"
	record snapshot "snapshot: failure: PO (overflow-aware) with a 1 MiB COW after 4 MiB were written to it" snap-po
	remove snap-po

	# Merge the first snapshot back: its exceptions persist on the COW device.
	remove snap
	dmsetup suspend "${PREFIX}snap-origin"
	reload snap-origin "0 65536 snapshot-merge $base $c P 16"
	record snapshot-merge "snapshot-merge: just after replacing the origin's table (merge running)" snap-origin
	local i
	for i in $(seq 120); do
		local st
		st=$(dmsetup status "${PREFIX}snap-origin")
		[[ $(awk '{ split($4, a, "/"); print (a[1] == $5) }' <<<"$st") == 1 ]] && break
		sleep 0.5
	done
	record snapshot-merge "snapshot-merge: after the merge finished" snap-origin
}

# add_snapshot NAME TABLE: as LVM does it, with the origin suspended. The
# origin splits writes at the smallest snapshot chunk size it computed when it
# was last resumed: a snapshot added to a running origin without a
# suspend/resume only gets the first chunk of each larger write copied.
add_snapshot() {
	dmsetup suspend "${PREFIX}snap-origin"
	dm "$1" "$2"
	dmsetup resume "${PREFIX}snap-origin"
}

rec_mirror() {
	local a b la lb log i
	a=$(new_loop mirror-a 16)
	b=$(new_loop mirror-b 16)
	dm mirror "0 32768 mirror core 1 1024 2 $a 0 $b 0"
	record mirror "mirror: core log, 512 KiB regions, two 16 MiB legs; just after activation" mirror
	wait_mirror_sync mirror
	record mirror "mirror: core log, after the initial sync" mirror

	la=$(new_loop mirror-la 16)
	lb=$(new_loop mirror-lb 16)
	log=$(new_loop mirror-log 1)
	dm leg-a "0 32768 linear $la 0"
	dm leg-b "0 32768 linear $lb 0"
	dm mirror-disk "0 32768 mirror disk 2 $log 1024 2 $(devno leg-a) 0 $(devno leg-b) 0 1 handle_errors"
	wait_mirror_sync mirror-disk
	record mirror "mirror: disk log, handle_errors, after the initial sync" mirror-disk
	reload leg-b "0 32768 error"
	# With handle_errors the kernel holds the write until userspace (dmeventd)
	# repairs the mirror; the forced remove below fails it.
	wr mirror-disk 0 256 2>/dev/null &
	sleep 2
	record mirror "mirror: failure: disk log, handle_errors, after leg 2 was reloaded with the error target and the mirror written (the write is held)" mirror-disk
	dmsetup remove --force "${PREFIX}mirror-disk" || true
	wait || true
}

wait_mirror_sync() {
	local i
	for i in $(seq 240); do
		[[ $(dmsetup status "$PREFIX$1" | awk '{ split($(5 + $4), a, "/"); print (a[1] == a[2]) }') == 1 ]] && return 0
		sleep 0.5
	done
	log "warning: $1 did not sync in time"
}

rec_unstriped() {
	local a b base
	a=$(new_loop unstripe-a 16)
	b=$(new_loop unstripe-b 16)
	dm unstripe-base "0 65536 striped 2 128 $a 0 $b 0"
	base=$(devno unstripe-base)
	dm unstriped0 "0 32768 unstriped 2 128 0 $base 0"
	dm unstriped1 "0 32768 unstriped 2 128 1 $base 0"
	record unstriped "unstriped: stripe 0 of a 2-stripe device with 64 KiB chunks" unstriped0
	record unstriped "unstriped: stripe 1 of the same device" unstriped1
}

# NAME:TARGETS-IT-NEEDS
readonly RECORDERS=(linear:linear striped:striped zero:zero error:error delay:delay
	flakey:flakey thin:thin-pool,thin cache:cache era:era writecache:writecache
	integrity:integrity crypt:crypt snapshot:snapshot,snapshot-origin,snapshot-merge
	mirror:mirror unstriped:unstriped,striped)

# ---------------------------------------------------------------- cleanup

remove_devices() {
	local names name try
	for try in 1 2 3 4 5 6; do
		names=$(dmsetup ls 2>/dev/null | awk -v p="$PREFIX" 'index($1, p) == 1 { print $1 }')
		[[ -n $names ]] || return 0
		for name in $names; do
			dmsetup resume "$name" 2>/dev/null || true
			if ((try < 4)); then
				dmsetup remove "$name" 2>/dev/null || true
			else
				dmsetup remove --force "$name" 2>/dev/null || true
			fi
		done
	done
	log "warning: could not remove: $names"
}

detach_loops() {
	[[ -n $WORK ]] || return 0
	local dev
	for dev in $(losetup -n -l -O NAME,BACK-FILE | awk -v w="$WORK/" 'index($2, w) == 1 { print $1 }'); do
		losetup -d "$dev" || log "warning: cannot detach $dev"
	done
}

cleanup_target() {
	remove_devices
	detach_loops
	rm -f "$WORK"/*.img
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	wait 2>/dev/null || true
	remove_devices
	detach_loops
	[[ -n $WORK ]] && rm -rf "$WORK"
	exit "$rc"
}

# ---------------------------------------------------------------- main

have_targets() {
	local t
	for t in ${1//,/ }; do
		grep -q "^$t " "$OUT/targets.txt" || return 1
	done
}

run_recorder() {
	local name=${1%%:*} needs=${1#*:} rc
	if ! have_targets "$needs"; then
		log "$name: skipped, the kernel lacks one of: $needs"
		SKIPPED+=("$name ($needs)")
		return 0
	fi
	log "--- $name"
	set +e
	(
		set -e
		"rec_$name"
	)
	rc=$?
	set -e
	cleanup_target
	if ((rc)); then
		log "$name: FAILED (exit $rc)"
		FAILED+=("$name")
	else
		RECORDED+=("$name")
	fi
}

check_environment() {
	((EUID == 0)) || die "must run as root"
	local cmd
	for cmd in dmsetup losetup thin_check thin_ls thin_dump thin_delta cache_check cache_dump era_check era_dump; do
		command -v "$cmd" >/dev/null || die "$cmd not found (packages dmsetup, thin-provisioning-tools)"
	done
	dmsetup version >/dev/null 2>&1 || die "no device-mapper in this kernel: run it in the VM: tests/vm/run-in-vm.sh $0 OUTDIR"
	[[ ${STSFS_IN_VM:-} == 1 ]] || log "note: not in the stsfs test VM; recording this machine's kernel"
}

prepare_outdir() {
	mkdir -p "$OUT"
	rm -rf "$OUT/tools"
	rm -f "$OUT"/*.status "$OUT"/*.table "$OUT/targets.txt"
	mkdir -p "$OUT/tools"
	: >"$OUT/tools/commands.txt"
	dmsetup targets | sort >"$OUT/targets.txt"
}

list_states() { # list_states FILE: the comment lines of a status file
	sed -n 's/^# /  - /p' "$1"
}

write_readme() {
	local f
	{
		cat <<EOF
# Recorded device-mapper status and table lines

Recorded by \`tests/vm/record-dm-status.sh\` on a real kernel, for the
status/table parser unit tests. Re-record with (from the repository root):

    tests/vm/run-in-vm.sh tests/vm/record-dm-status.sh tests/unit/data/dm-status

Inside the guest that ran: \`$SELF_CMDLINE\`

| what | value |
|---|---|
| date (UTC) | $(date -u '+%Y-%m-%d %H:%M:%S') |
| kernel (uname -r) | $(uname -r) |
| kernel build (uname -v) | $(uname -v) |
| dmsetup version | $(dmsetup version | tr '\n' ';' | sed 's/;$//; s/;/; /g; s/  */ /g') |
| thin-provisioning-tools | $(thin_check --version 2>&1 | head -n 1) |
| in the stsfs test VM | $([[ ${STSFS_IN_VM:-} == 1 ]] && echo yes || echo no) |

## Files

- \`TARGET.status\`: lines exactly as \`dmsetup status NAME\` printed them
  (\`START LENGTH TARGET PARAMS\`, trailing spaces kept), and \`TARGET.table\`:
  as \`dmsetup table NAME\` printed them. Each recorded state is preceded by a
  comment line starting with \`# \` that says what had been done to the device.
  Devices show as \`MAJ:MIN\` (loop devices are major 7; device-mapper's major
  is dynamic). Files named after the kernel's target names (\`unstriped\`, not
  \`unstripe\`).
- Crypt tables: \`dmsetup table\` prints the key as zeros (it masks keys
  unless given \`--showkeys\`); the keys used were random throwaway keys.
- \`targets.txt\`: \`dmsetup targets\` in the guest (sorted).
- \`tools/NAME.txt\`: stdout, \`tools/NAME.stderr.txt\`: stderr of the
  persistent-data tools; \`tools/commands.txt\` has one line per run:
  \`NAME<TAB>exit=STATUS<TAB>COMMAND\`. Names ending in \`-m\` ran with \`-m\`
  against the live pool while a metadata snapshot was held
  (\`reserve_metadata_snap\` ... \`release_metadata_snap\`); the others ran on
  inactive metadata (after \`dmsetup remove\`). \`*-corrupt\` ran on a copy of
  the metadata whose superblock was overwritten at byte 64. \`thin_ls-live-no-m\`
  shows what thin_ls says about a live pool's metadata without \`-m\`.
- A state may have several lines: one per table line of the device (the
  two-segment linear device).
- All backing devices were loop devices over sparse files on the host's disk
  shared into the VM over virtio-9p: such loop devices do not support discard
  (\`discard_max_bytes\` 0), which shows in the thin-pool status.

## Recorded states
EOF
		for f in "$OUT"/*.status; do
			echo
			echo "$(basename "$f"):"
			echo
			list_states "$f"
		done
		echo
		echo "## Not recorded"
		echo
		if ((${#SKIPPED[@]})); then
			printf -- '- %s: target not in this kernel\n' "${SKIPPED[@]}"
		fi
		echo "- dust, vdo: not in this kernel (\`CONFIG_DM_DUST\` is off in Debian 12; dm-vdo is in mainline since 6.9)"
		if ((${#FAILED[@]})); then
			printf -- '- %s: the recording FAILED\n' "${FAILED[@]}"
		fi
	} >"$OUT/README.md"
}

main() {
	[[ $# -eq 1 && $1 != -* ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
	check_environment
	OUT=$(realpath -m "$1")
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	WORK=$(mktemp -d /var/tmp/stsfs-record-XXXXXX)
	prepare_outdir
	local r
	for r in "${RECORDERS[@]}"; do
		run_recorder "$r"
	done
	write_readme
	log "recorded: ${RECORDED[*]}"
	if ((${#FAILED[@]})); then
		log "FAILED: ${FAILED[*]}"
		exit 1
	fi
}

main "$@"
