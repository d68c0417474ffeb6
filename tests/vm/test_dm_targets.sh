#!/usr/bin/env bash
# Every device-mapper target through dm/, its parsed status checked field by
# field against `dmsetup status` (run inside the test VM:
# tests/vm/run-in-vm.sh -- bash tests/vm/test_dm_targets.sh).
#
# test_dm.sh covers the dm/ object itself; this suite covers the targets:
# linear, striped, delay, flakey, crypt, snapshot, snapshot-origin,
# snapshot-merge, mirror (core and disk log), unstriped, cache (smq and the
# mq alias, whose policy prints arguments), era, writecache (ssd), integrity
# (J, D, B with recalculate), thin-pool and thin. Each device is built on
# loop/ objects, then status.raw is compared with dmsetup's line and every
# parsed key of status and status.json with the token of that line it comes
# from (expected values are always derived from the kernel's text), before
# and after I/O through `data` and after each message.
#
# Not here: writecache in `p` (pmem) mode. Loading such a table on a loop
# device oopses Debian 12's 6.1 kernel (NULL pointer dereference in
# dax_synchronous, the guest panics), so it cannot be tried.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib-dm.sh"

KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

# Processes are slow under TCG (a fork+exec costs ~50 ms, jq ~300 ms): the
# helpers below read files and trim text with bash builtins.

# trimv VAR TEXT: TEXT without trailing blanks on each line, as dmsetup
# prints it minus its trailing space.
trimv() {
	local in=$2 out= line
	while [[ $in == *$'\n' ]]; do in=${in%$'\n'}; done
	while IFS= read -r line; do out+="${line%"${line##*[! ]}"}"$'\n'; done <<<"$in"
	printf -v "$1" '%s' "${out%$'\n'}"
}
# readv VAR FILE: the file's text, trimmed as trimv (no trailing newline).
readv() {
	local text=
	IFS= read -r -d '' text <"$2"
	trimv "$1" "$text"
}
rd() { local v; readv v "$1"; printf '%s\n' "$v"; }

dms_status() { local v; trimv v "$(dmsetup status "$1")"; printf '%s\n' "$v"; }
dms_table() { local v; trimv v "$(dmsetup table "$1")"; printf '%s\n' "$v"; }

msg() { put "$D/$1/message" "$2"; } # msg NAME MESSAGE

# ---------------------------------------------------------------- I/O

# 4 MiB of random bytes; writes take slices of it so they can be compared.
# Synced at once: $WORK is on 9p, and a lookup after drop_caches while its
# writeback runs reads the host's half-written copy (docs/vm.md).
head -c 4M /dev/urandom >"$WORK/rand"
sync "$WORK/rand"

wr() { # wr NAME OFFSET_KIB SIZE_KIB (SIZE at most 4096): random bytes, synced
	dd if="$WORK/rand" of="$D/$1/data" bs=64K seek=$(($2 / 64)) count=$(($3 / 64)) \
		oflag=direct conv=notrunc,fsync status=none
}

rdd() { # rdd NAME OFFSET_KIB SIZE_KIB: read from the device, not the page cache
	echo 3 >/proc/sys/vm/drop_caches
	dd if="$D/$1/data" of=/dev/null bs=64K skip=$(($2 / 64)) count=$(($3 / 64)) \
		iflag=direct status=none
}

same_bytes() { # same_bytes FILE1 OFFSET1_KIB FILE2 OFFSET2_KIB SIZE_KIB
	echo 3 >/proc/sys/vm/drop_caches
	cmp -s <(dd if="$1" bs=64K skip=$(($2 / 64)) count=$(($5 / 64)) status=none) \
		<(dd if="$3" bs=64K skip=$(($4 / 64)) count=$(($5 / 64)) status=none)
}

# ---------------------------------------------------------------- expected keys

# expect_status TARGET PARAM...: the keys and JSON values stsfs must show for
# a status line, derived from the kernel's tokens (docs/dm-status.md), in
# EK[] and EV[].
EK=()
EV=()
ek() { EK+=("$1"); EV+=("$2"); }
e_num() { ek "$1" "$2"; }
e_str() { ek "$1" "\"$2\""; }
e_non() { if [[ $2 == - ]]; then ek "$1" null; else ek "$1" "$2"; fi; }
e_flag() { if [[ $2 == "$3" ]]; then ek "$1" true; else ek "$1" false; fi; }
e_auto() {
	if [[ $2 == - ]]; then
		ek "$1" null
	elif [[ $2 =~ ^(0|[1-9][0-9]{0,18})$ ]]; then
		ek "$1" "$2"
	else
		e_str "$1" "$2"
	fi
}
e_ratio() { e_num "$1" "${3%%/*}"; e_num "$2" "${3#*/}"; }
e_pairs() { # e_pairs PREFIX NAME VALUE...
	local prefix=$1
	shift
	while (($# >= 2)); do
		e_auto "$prefix$1" "$2"
		shift 2
	done
}

expect_status() {
	local target=$1
	shift
	local p=("$@") n i j f mode
	EK=()
	EV=()
	case $target in
	linear | zero | error | crypt | flakey | snapshot-origin | unstriped) ;;
	striped)
		n=${p[0]}
		e_num stripes "$n"
		e_str devices "${p[*]:1:n}"
		e_str health "${p[n + 2]}"
		f=${p[n + 2]//[^D]/}
		e_num dead_stripes "${#f}"
		;;
	delay)
		e_num reads "${p[0]}"
		e_num writes "${p[1]}"
		(($# > 2)) && e_num flushes "${p[2]}"
		;;
	thin-pool)
		case "$*" in
		Fail) e_str state Fail; ek fail true ;;
		Error) e_str state Error; ek error true ;;
		*)
			e_num transaction_id "${p[0]}"
			e_ratio used_metadata_blocks total_metadata_blocks "${p[1]}"
			e_ratio used_data_blocks total_data_blocks "${p[2]}"
			e_non held_metadata_root "${p[3]}"
			e_str mode "${p[4]}"
			e_str discard_passdown "${p[5]}"
			e_str no_space_policy "${p[6]}"
			e_flag needs_check "${p[7]}" needs_check
			e_num metadata_low_watermark "${p[8]}"
			;;
		esac
		;;
	thin)
		case "$*" in
		Fail | Error) e_str state "$*" ;;
		-) ek state null ;;
		*)
			e_num mapped_sectors "${p[0]}"
			e_non highest_mapped_sector "${p[1]}"
			;;
		esac
		;;
	cache)
		case "$*" in
		Fail | Error) e_str state "$*" ;;
		*)
			e_num metadata_block_size "${p[0]}"
			e_ratio used_metadata_blocks total_metadata_blocks "${p[1]}"
			e_num cache_block_size "${p[2]}"
			e_ratio used_cache_blocks total_cache_blocks "${p[3]}"
			i=4
			for f in read_hits read_misses write_hits write_misses demotions promotions dirty; do
				e_num "$f" "${p[i]}"
				i=$((i + 1))
			done
			n=${p[i]}
			e_num nr_features "$n"
			e_str features "${p[*]:i+1:n}"
			mode=
			for f in "${p[@]:i+1:n}"; do
				case $f in writeback | writethrough | passthrough) mode=$f ;; esac
			done
			[[ -n $mode ]] && e_str io_mode "$mode"
			i=$((i + 1 + n))
			n=${p[i]}
			e_num nr_core_args "$n"
			e_pairs "" "${p[@]:i+1:n}"
			i=$((i + 1 + n))
			e_str policy "${p[i]}"
			n=${p[i + 1]}
			e_num nr_policy_args "$n"
			e_pairs policy_ "${p[@]:i+2:n}"
			i=$((i + 2 + n))
			e_str metadata_mode "${p[i]}"
			e_flag needs_check "${p[i + 1]}" needs_check
			;;
		esac
		;;
	era)
		case "$*" in
		Error) e_str state Error ;;
		*)
			e_num metadata_block_size "${p[0]}"
			e_ratio used_metadata_blocks total_metadata_blocks "${p[1]}"
			e_num current_era "${p[2]}"
			e_non held_metadata_root "${p[3]}"
			;;
		esac
		;;
	writecache)
		local names=(error total_blocks free_blocks writeback_blocks read_blocks read_hits
			write_blocks write_hits_uncommitted write_hits_committed writes_around
			writes_allocate writes_blocked_on_freelist flushes discards)
		for ((j = 0; j < $#; j++)); do e_num "${names[j]}" "${p[j]}"; done
		;;
	integrity)
		e_num mismatches "${p[0]}"
		e_num provided_data_sectors "${p[1]}"
		e_non recalculate_sector "${p[2]}"
		;;
	snapshot | snapshot-merge)
		case "$*" in
		Invalid) e_str state invalid ;;
		"Merge failed") e_str state merge_failed ;;
		Overflow) e_str state overflow ;;
		Unknown) e_str state unknown ;;
		*)
			e_ratio sectors_allocated total_sectors "${p[0]}"
			e_num metadata_sectors "${p[1]}"
			;;
		esac
		;;
	mirror)
		n=${p[0]}
		e_num mirrors "$n"
		e_str devices "${p[*]:1:n}"
		e_ratio in_sync_regions total_regions "${p[n + 1]}"
		e_str health "${p[n + 3]}"
		i=$((n + 4))
		n=${p[i]}
		e_num nr_log_args "$n"
		e_str log_type "${p[i + 1]}"
		if ((n == 3)); then
			e_str log_device "${p[i + 2]}"
			e_str log_health "${p[i + 3]}"
		elif ((n > 1)); then
			e_str log_status "${p[*]:i+2:n-1}"
		fi
		;;
	*) e_str args "$*" ;;
	esac
}

# as_text JSON: TEXTV = how the key=value files render that JSON value.
as_text() {
	case $1 in
	null) TEXTV=- ;;
	true) TEXTV=1 ;;
	false) TEXTV=0 ;;
	\"*\") TEXTV=${1#\"} TEXTV=${TEXTV%\"} ;;
	*) TEXTV=$1 ;;
	esac
}

# ---------------------------------------------------------------- comparison

# snap_status NAME: K (dmsetup status), JS (status.json), TXT (status) and
# RAW (status.raw), read in that order and retried until RAW equals K, so
# the parsed files were read while the line stood still (background work:
# cache migrations, mirror resync, merges, integrity recalculation).
snap_status() {
	local n=$1 try
	for ((try = 0; try < 20; try++)); do
		trimv K "$(dmsetup status "$n")"
		JS= TXT=
		IFS= read -r -d '' JS <"$D/$n/status.json"
		IFS= read -r -d '' TXT <"$D/$n/status"
		readv RAW "$D/$n/status.raw"
		[[ $RAW == "$K" ]] && return 0
		sleep 0.25
	done
}

# cmp_status NAME [WHEN]: status.raw is dmsetup's line, and status and
# status.json have, for each line, exactly the keys expect_status derives,
# in order, with its values. The parsed values stay in PV for pv.
declare -A PV=()
PV_NAME=
cmp_status() {
	local n=$1 when=${2:+ ($2)} i=0 j line got want blocks b k v l
	local w=() tb=()
	local -a keys=()
	PV=()
	PV_NAME=$n
	snap_status "$n"
	eq "$RAW" "$K" "$n$when: status.raw as dmsetup status"
	# "#<TAB>N" (N blocks), then "BLOCK<TAB>KEY<TAB>JSON" per key, in order.
	if ! got=$(jq -r 'if type == "array" then "#\t\(length)", (to_entries[] | .key as $b
		| .value | to_entries[] | "\($b)\t\(.key)\t\(.value | tojson)") else error end' \
		2>/dev/null <<<"$JS"); then
		fail "$n$when: status.json is not a JSON array: $JS"
		return
	fi
	pass
	while IFS=$'\t' read -r b k v; do
		if [[ $b == "#" ]]; then
			blocks=$k
			continue
		fi
		PV[$b/$k]=$v
		keys[b]+="${keys[b]:+ }$k"
	done <<<"$got"
	# status: blocks of key=value lines separated by one blank line
	b=0
	while IFS= read -r l; do
		if [[ -z $l ]]; then b=$((b + 1)); else tb[b]+="$l"$'\n'; fi
	done <<<"${TXT%$'\n'}"
	j=0
	while IFS= read -r line; do j=$((j + 1)); done <<<"$K"
	eq "$blocks" "$j" "$n$when: one status.json block per line"
	eq "$((b + 1))" "$j" "$n$when: one status block per line"
	while IFS= read -r line; do
		read -r -a w <<<"$line"
		expect_status "${w[2]}" "${w[@]:3}"
		EK=(start length target "${EK[@]}")
		EV=("${w[0]}" "${w[1]}" "\"${w[2]}\"" "${EV[@]}")
		eq "${keys[i]:-}" "${EK[*]}" "$n$when: block $i keys"
		want=
		for ((j = 0; j < ${#EK[@]}; j++)); do
			eq "${PV[$i/${EK[j]}]:-(missing)}" "${EV[j]}" "$n$when: block $i ${EK[j]} (status.json)"
			as_text "${EV[j]}"
			want+="${EK[j]}=$TEXTV"$'\n'
		done
		eq "${tb[i]:-}" "$want" "$n$when: block $i (status)"
		i=$((i + 1))
	done <<<"$K"
}

cmp_table() {
	local live
	readv live "$D/$1/table"
	eq "$live" "$(dms_table "$1")" "$1: table as dmsetup table"
}

# pv KEY [BLOCK]: a value of the last cmp_status, as the status file shows it
pv() {
	as_text "${PV[${2:-0}/$1]:-(missing)}"
	printf '%s\n' "$TEXTV"
}

positive() { # positive NAME KEY: the counter parsed by the last cmp_status of NAME moved
	local v
	v=$(pv "$2")
	check "$1 $2 > 0 (got $v)" test "$PV_NAME" == "$1" -a "$v" -gt 0
}

wait_status() { # wait_status NAME AWK_CONDITION SECONDS: on dmsetup's line
	local i
	for ((i = 0; i < $3 * 4; i++)); do
		dmsetup status "$1" | awk "{ exit !($2) }" && return 0
		sleep 0.25
	done
	return 1
}

# fresh LOOP: zeroes the first 64 KiB of a loop object, so that cache, era,
# thin-pool, integrity and writecache see an unformatted device again.
fresh() {
	dd if=/dev/zero of="$L/$1/data" bs=64K count=1 oflag=direct conv=notrunc,fsync status=none
}

# ---------------------------------------------------------------- loops

t "loop objects"
# Reused between targets (fresh zeroes metadata where a target formats it).
for spec in base:64M sa:16M sb:16M mlog:1M so:32M scow:16M cm:8M cc:16M co:64M ij:32M \
	tm:8M td:64M; do
	check "loop/${spec%:*}" mkloop "${spec%:*}" "${spec#*:}"
done

t "linear: two segments"
check "lin" mkdm lin "0 16384 linear loop/base 16384
16384 16384 linear loop/base 0"
cmp_table lin
cmp_status lin fresh
check "write" wr lin 0 1024
cmp_status lin "after I/O"
check "lin's first half is base's second" same_bytes "$D/lin/data" 0 "$L/base/data" 8192 1024
check "rmdir lin" rmdir "$D/lin"

t "striped"
check "str" mkdm str "0 65536 striped 2 128 loop/sa 0 loop/sb 0"
cmp_table str
cmp_status str fresh
check "write" wr str 0 1024
cmp_status str "after I/O"
check "chunk 1 is on stripe b" same_bytes "$D/str/data" 64 "$L/sb/data" 0 64
check "rmdir str" rmdir "$D/str"

t "delay: reads undelayed, writes (and flushes) 3 s"
check "dly" mkdm dly "0 32768 delay loop/base 0 0 loop/base 0 3000"
cmp_table dly
cmp_status dly idle
wr dly 0 64 &
writer=$!
check "a write is held" wait_status dly '$5 > 0' 5
cmp_status dly "a write held"
positive dly writes
check "delayed write completes" wait $writer
cmp_status dly "idle again"

t "flakey and crypt"
check "flk" mkdm flk "0 32768 flakey loop/base 0 60 0"
check "flk2" mkdm flk2 "0 32768 flakey loop/base 0 0 60 1 drop_writes"
check "cr" mkdm cr "0 32768 crypt aes-xts-plain64 $KEY 0 loop/base 32768"
for n in flk flk2; do
	cmp_table "$n"
	cmp_status "$n" fresh
done
check "write through crypt" wr cr 0 1024
cmp_status cr "after I/O"
check "crypt stores ciphertext" bash -c "! cmp -s -n 1048576 '$WORK/rand' <(dd if='$L/base/data' bs=64K skip=256 count=16 status=none)"
check "crypt reads plaintext" same_bytes "$D/cr/data" 0 "$WORK/rand" 0 1024
for n in flk flk2 cr dly; do check "rmdir $n" rmdir "$D/$n"; done

t "snapshot-origin with a snapshot"
check "sreal" mkdm sreal "0 65536 linear loop/so 0"
check "sorig" mkdm sorig "0 65536 snapshot-origin dm/sreal"
# As LVM does: the origin suspended while the snapshot is added, so it
# splits writes at the snapshot's chunk size.
check "suspend sorig" put "$D/sorig/suspended" 1
check "snap" mkdm snap "0 65536 snapshot dm/sreal loop/scow P 16"
check "resume sorig" put "$D/sorig/suspended" 0
cmp_table sorig
cmp_table snap
cmp_status sorig fresh
cmp_status snap fresh
check "write 2 MiB to the origin" wr sorig 0 2048
cmp_status snap "after origin writes"
check "sectors_allocated grew" test "$(pv sectors_allocated)" -gt "$(pv metadata_sectors)"
check "the snapshot kept the old bytes" same_bytes "$D/snap/data" 0 /dev/zero 0 1024
check "write 1 MiB to the snapshot" wr snap 4096 1024
cmp_status snap "after snapshot writes"
cmp_status sorig "with a written snapshot"

t "snapshot-merge"
check "rmdir snap" rmdir "$D/snap"
check "origin becomes snapshot-merge" put "$D/sorig/table" "0 65536 snapshot-merge dm/sreal loop/scow P 16"
check "merge finishes" wait_status sorig '$3 == "snapshot-merge" && substr($4, 1, index($4, "/") - 1) == $5' 60
cmp_status sorig "merged"
eq "$(pv target)" "snapshot-merge" "sorig target"
cmp_table sorig
check "merged bytes reached the origin" same_bytes "$D/sorig/data" 4096 "$WORK/rand" 0 1024
check "merged bytes on loop/so" same_bytes "$L/so/data" 4096 "$WORK/rand" 0 1024
check "origin writes rolled back" same_bytes "$D/sorig/data" 0 /dev/zero 0 2048
for n in sorig sreal; do check "rmdir $n" rmdir "$D/$n"; done

t "mirror: core log"
check "mir" mkdm mir "0 16384 mirror core 1 1024 2 loop/sa 0 loop/sb 0"
cmp_table mir
check "mir syncs" wait_status mir 'split($(5 + $4), a, "/") && a[1] == a[2]' 60
cmp_status mir synced
check "write" wr mir 0 1024
cmp_status mir "after I/O"
check "leg a has the bytes" same_bytes "$L/sa/data" 0 "$WORK/rand" 0 1024
check "leg b has the bytes" same_bytes "$L/sb/data" 0 "$WORK/rand" 0 1024
check "rmdir mir" rmdir "$D/mir"

t "mirror: disk log, nosync"
check "mird" mkdm mird "0 32768 mirror disk 3 loop/mlog 1024 nosync 2 loop/sa 0 loop/sb 0 1 handle_errors"
cmp_table mird
cmp_status mird "in sync at once"
eq "$(pv in_sync_regions)" "$(pv total_regions)" "nosync: all regions in sync"
eq "$(pv log_device)" "$(cat "$L/mlog/dev")" "log_device is loop/mlog"
check "rmdir mird" rmdir "$D/mird"

t "unstriped"
check "ubase" mkdm ubase "0 65536 striped 2 128 loop/sa 0 loop/sb 0"
check "us0" mkdm us0 "0 32768 unstriped 2 128 0 dm/ubase 0"
check "us1" mkdm us1 "0 32768 unstriped 2 128 1 dm/ubase 0"
cmp_table us0
cmp_status us0 fresh
check "write us1" wr us1 0 256
cmp_table us1
cmp_status us1 "after I/O"
check "us1 is stripe b" same_bytes "$L/sb/data" 0 "$WORK/rand" 0 256
check "ubase chunk 1 is us1 chunk 0" same_bytes "$D/ubase/data" 64 "$WORK/rand" 0 64
for n in us0 us1 ubase; do check "rmdir $n" rmdir "$D/$n"; done

t "cache: smq, writeback, metadata2"
check "cache" mkdm cache "0 131072 cache loop/cm loop/cc loop/co 128 2 metadata2 writeback smq 2 migration_threshold 4096"
cmp_table cache
cmp_status cache fresh
eq "$(pv migration_threshold)" "4096" "policy arg became the core arg"
for i in 1 2 3 4; do rdd cache 0 2048 || fail "read pass $i"; done
cmp_status cache "after reads"
positive cache read_misses
check "write 2 MiB" wr cache 0 2048
cmp_status cache "after writes"
check "message migration_threshold" msg cache "migration_threshold 2048"
cmp_status cache "migration_threshold 2048"
eq "$(pv migration_threshold)" "2048" "message took effect"
expect_err EINVAL put "$D/cache/message" "no_such_tunable 1"
contains "$(cat "$D/cache/error")" "cache" "cache/error names the device"
check "bytes through the cache" same_bytes "$D/cache/data" 0 "$WORK/rand" 0 2048
check "rmdir cache" rmdir "$D/cache"

t "cache: mq (an alias of smq that prints policy arguments)"
check "fresh metadata" fresh cm
check "cmq" mkdm cmq "0 32768 cache loop/cm loop/cc loop/co 128 1 writethrough mq 2 sequential_threshold 100"
cmp_table cmq
cmp_status cmq fresh
check "policy_random_threshold is a key" test "$(pv policy_random_threshold)" != "(missing)"
check "message random_threshold" msg cmq "random_threshold 7"
check "read" rdd cmq 0 1024
cmp_status cmq "after message and reads"
check "rmdir cmq" rmdir "$D/cmq"

t "era"
check "fresh metadata" fresh cm
check "era" mkdm era "0 131072 era loop/cm loop/co 128"
cmp_table era
cmp_status era fresh
check "write" wr era 0 2048
cmp_status era "after I/O"
before=$(pv current_era)
check "checkpoint" msg era checkpoint
cmp_status era "after checkpoint"
check "current_era advanced" test "$(pv current_era)" -gt "$before"
check "take_metadata_snap" msg era take_metadata_snap
cmp_status era "metadata snapshot held"
check "held_metadata_root set" test "$(pv held_metadata_root)" != -
check "drop_metadata_snap" msg era drop_metadata_snap
cmp_status era "metadata snapshot dropped"
eq "$(pv held_metadata_root)" "-" "held_metadata_root cleared"
expect_err EINVAL put "$D/era/message" "bogus"
contains "$(cat "$D/era/error")" "message 'bogus' to era: Invalid argument: unsupported message 'bogus'" "era/error has the kernel's reason"
check "rmdir era" rmdir "$D/era"

t "writecache: ssd"
check "fresh cache device" fresh cc
check "wc" mkdm wc "0 131072 writecache s loop/co loop/cc 4096 4 high_watermark 60 low_watermark 40"
cmp_table wc
cmp_status wc fresh
check "write 2 MiB" wr wc 0 2048
cmp_status wc "after writes"
check "blocks in use" test "$(pv free_blocks)" -lt "$(pv total_blocks)"
positive wc write_blocks
check "read 4 MiB" rdd wc 0 4096
cmp_status wc "after reads"
positive wc read_blocks
check "flush" msg wc flush
cmp_status wc "after flush"
eq "$(pv free_blocks)" "$(pv total_blocks)" "flush wrote everything back"
check "clear_stats" msg wc clear_stats
cmp_status wc "after clear_stats"
eq "$(pv read_blocks)" "0" "statistics cleared"
check "rmdir wc" rmdir "$D/wc"
check "written back to the origin" same_bytes "$L/co/data" 0 "$WORK/rand" 0 2048

# integrity_dev NAME ARGS: as LVM does it, first with 8 sectors, then (a
# reload through table) with the size the target provides.
integrity_dev() {
	local n=$1 args="loop/ij 0 4 $2" provided
	mkdm "$n" "0 8 integrity $args" || return 1
	provided=$(dmsetup status "$n" | awk '{ print $5 }')
	[[ $provided =~ ^[0-9]+$ ]] || return 1
	put "$D/$n/table" "0 $provided integrity $args"
}

t "integrity: journal"
check "ij" integrity_dev ij "J 1 internal_hash:crc32c"
cmp_table ij
cmp_status ij fresh
eq "$(pv length)" "$(pv provided_data_sectors)" "table spans the provided sectors"
check "reading unwritten sectors fails" bash -c "! dd if='$D/ij/data' of=/dev/null bs=64K count=1 iflag=direct status=none 2>/dev/null"
cmp_status ij "after a mismatch"
positive ij mismatches
check "write 1 MiB" wr ij 0 1024
check "read it back" same_bytes "$D/ij/data" 0 "$WORK/rand" 0 1024
cmp_status ij "after I/O"
check "rmdir ij" rmdir "$D/ij"

t "integrity: direct"
check "fresh" fresh ij
check "id" integrity_dev id "D 1 internal_hash:crc32c"
cmp_status id fresh
check "write" wr id 0 1024
check "read back" same_bytes "$D/id/data" 0 "$WORK/rand" 0 1024
cmp_status id "after I/O"
check "rmdir id" rmdir "$D/id"

t "integrity: bitmap with recalculate"
check "fresh" fresh ij
check "ib" integrity_dev ib "B 2 internal_hash:crc32c recalculate"
cmp_table ib
check "recalculation finishes" wait_status ib '$6 == $5' 60
cmp_status ib recalculated
check "recalculated device reads" rdd ib 0 1024
check "rmdir ib" rmdir "$D/ib"

t "thin-pool and thin"
check "pool" mkdm pool "0 131072 thin-pool loop/tm loop/td 128 16 1 skip_block_zeroing"
cmp_table pool
cmp_status pool fresh
check "create_thin 0" msg pool "create_thin 0"
check "set_transaction_id 0 1" msg pool "set_transaction_id 0 1"
cmp_status pool "transaction 1"
eq "$(pv transaction_id)" "1" "transaction_id set"
check "thin0" mkdm thin0 "0 65536 thin dm/pool 0"
cmp_table thin0
cmp_status thin0 fresh
eq "$(pv highest_mapped_sector)" "-" "nothing mapped"
check "write 2 MiB" wr thin0 0 2048
cmp_status thin0 "after I/O"
cmp_status pool "after I/O"
positive pool used_data_blocks
check "suspend thin0" put "$D/thin0/suspended" 1
check "create_snap 1 0" msg pool "create_snap 1 0"
check "resume thin0" put "$D/thin0/suspended" 0
check "set_transaction_id 1 2" msg pool "set_transaction_id 1 2"
check "thin1" mkdm thin1 "0 65536 thin dm/pool 1"
check "snapshot has the origin's bytes" same_bytes "$D/thin1/data" 0 "$WORK/rand" 0 2048
check "write 1 MiB at 8 MiB" wr thin1 8192 1024
cmp_status thin1 "snapshot after I/O"
cmp_status pool "with a snapshot"
check "reserve_metadata_snap" msg pool reserve_metadata_snap
cmp_status pool "metadata snapshot held"
check "held_metadata_root set" test "$(pv held_metadata_root)" != -
check "release_metadata_snap" msg pool release_metadata_snap
cmp_status pool "metadata snapshot released"
eq "$(pv held_metadata_root)" "-" "held_metadata_root cleared"
check "reload read_only" put "$D/pool/table" "0 131072 thin-pool loop/tm loop/td 128 16 2 skip_block_zeroing read_only"
cmp_status pool "read_only"
eq "$(pv mode)" "ro" "mode ro"
expect_err "Operation not supported" put "$D/pool/message" "create_thin 5"
check "reload read-write" put "$D/pool/table" "0 131072 thin-pool loop/tm loop/td 128 16 1 skip_block_zeroing"
cmp_status pool "read-write again"
eq "$(pv mode)" "rw" "mode rw"
for n in thin1 thin0; do check "rmdir $n" rmdir "$D/$n"; done
check "delete 1" msg pool "delete 1"
check "delete 0" msg pool "delete 0"
cmp_status pool "thins deleted"
eq "$(pv used_data_blocks)" "0" "blocks freed"
check "rmdir pool" rmdir "$D/pool"

t "thin-pool out of data space"
# 2 MiB of data: a pool's data size is its table length.
check "fresh metadata" fresh tm
check "full" mkdm full "0 4096 thin-pool loop/tm loop/td 128 0 2 error_if_no_space no_discard_passdown"
cmp_status full fresh
check "create_thin 0" msg full "create_thin 0"
check "fthin" mkdm fthin "0 16384 thin dm/full 0"
check "writing past the pool fails" bash -c "! dd if='$WORK/rand' of='$D/fthin/data' bs=64K count=64 oflag=direct conv=notrunc,fsync status=none 2>/dev/null"
cmp_status fthin "pool full"
cmp_status full "out of data space"
eq "$(pv mode)" "out_of_data_space" "mode out_of_data_space"
eq "$(pv no_space_policy)" "error_if_no_space" "no_space_policy"

t "teardown"
for n in fthin full; do check "rmdir $n" rmdir "$D/$n"; done
eq "$(ls "$D" | grep -vx error | tr '\n' ' ')" "" "dm/ empty"
eq "$(dmsetup ls 2>&1)" "No devices found" "dmsetup ls"
for n in $(ls "$L" | grep -vx error); do check "rmdir loop/$n" rmdir "$L/$n"; done
eq "$(ls "$L" | grep -vx error | tr '\n' ' ')" "" "loop/ empty"
finish
