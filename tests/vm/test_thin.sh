#!/usr/bin/env bash
# thin/: pools and volumes made through the tree, checked against the kernel
# (dmsetup status/table), losetup and the dmpd tools run by hand (inside the
# test VM: tests/vm/run-in-vm.sh -- bash tests/vm/test_thin.sh).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib-dm.sh"

T=$MNT/thin
MiB=1048576

# key=value of a status-like file (the first block's key).
skey() { sed -n "s/^$2=//p" "$1" | head -1; }
# Field N (1-based, after `start length target`) of dmsetup status NAME.
dms() { dmsetup status "$1" | awk -v n="$2" '{print $(n + 3)}'; }
dmlen() { dmsetup table "$1" | awk '{print $2}'; }
# dmsetup table without its trailing blank.
dmt() { dmsetup table "$1" | sed 's/ *$//'; }
# A directory listing without the error file every directory has.
lsd() { ls -A "$1" | grep -vx error | tr '\n' ' '; }
tx() { dms "$1" 1; }
# The metadata of a live pool through a metadata snapshot, as a user would.
thin_dump_live() {
	dmsetup message "$1" 0 reserve_metadata_snap
	thin_dump -m "$2"
	dmsetup message "$1" 0 release_metadata_snap
}
thin_ls_live() {
	dmsetup message "$1" 0 reserve_metadata_snap
	thin_ls -m -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS "$2"
	dmsetup message "$1" 0 release_metadata_snap
}
ls_rows() { awk 'NR > 1 { printf "dev=%s mapped_blocks=%s exclusive_blocks=%s shared_blocks=%s\n", $1, $2, $3, $4 }'; }
our_rows() { jq -r '.[] | "dev=\(.dev) mapped_blocks=\(.mapped_blocks) exclusive_blocks=\(.exclusive_blocks) shared_blocks=\(.shared_blocks)"'; }
# The sorted dev_ids of a thin_dump, and its superblock transaction.
dump_ids() { grep -o '<device dev_id="[0-9]*"' | grep -o '[0-9]*' | sort -n | tr '\n' ' '; }
dump_tx() { grep -o '<superblock [^>]*' | grep -o 'transaction="[0-9]*"' | grep -o '[0-9]*'; }
wr() { # wr VOLPATH OFFSET_MIB COUNT_MIB: random data through data
	dd if=/dev/urandom of="$1/data" bs=64k seek=$(($2 * 16)) count=$(($3 * 16)) oflag=direct conv=notrunc status=none
}
first_mib() { head -c $MiB "$1/data"; }
mkvol() { # mkvol POOL VOL SIZE [ORIGIN] (size and origin fail at write(2))
	mkdir "$T/$1/$2" && echo "$3" >"$T/$1/$2/size" &&
		{ [ -z "${4:-}" ] || echo "$4" >"$T/$1/$2/origin"; } && put "$T/$1/$2/active" 1
}

t "pool: mkdir and defaults"
check "mkdir thin/p" mkdir "$T/p"
eq "$(lsd "$T")" "p " "thin/ lists p"
check "dm/p reserved" test -d "$D/p"
eq "$(cat "$T/p/block_size")" "65536" "block_size default"
eq "$(cat "$T/p/low_water_mark")" "0" "low_water_mark default"
eq "$(cat "$T/p/features")" "" "features default"
eq "$(cat "$T/p/active")" "0" "inactive"
eq "$(cat "$T/p/data_size")" "0" "data_size unset"
eq "$(cat "$T/p/data_dev")" "" "data_dev unset"
eq "$(cat "$T/p/metadata_dev")" "" "metadata_dev unset"
check "no metadata/ before the first activation" test ! -e "$T/p/metadata"
expect_err EEXIST mkdir "$T/p"
expect_err EEXIST mkdir "$D/p"
expect_err EBUSY put "$D/p/table" "0 2048 zero"
contains "$(cat "$D/p/error")" "belongs to thin/p" "dm/p error"
expect_err EBUSY rmdir "$D/p"

t "pool: bad values"
put_fails EINVAL "$T/p/block_size" 100K "multiple of 64K"
put_fails EINVAL "$T/p/block_size" 32K "multiple of 64K"
put_fails EINVAL "$T/p/features" "error_if_no_space bogus" "unknown feature 'bogus'"
put_fails EINVAL "$T/p/data_size" 0 "at least one block"
put_fails EINVAL "$T/p/data_size" 1000 "at least one block"
put_fails EINVAL "$T/p/metadata_size" 1M "from 2M to 16G"
put_fails EINVAL "$T/p/low_water_mark" x ""
put_fails EINVAL "$T/p/active" 1 "set data_size"
eq "$(cat "$T/p/active")" "0" "still inactive"
eq "$(lsd "$L")" "" "no loop made by a failed activation"
check "features normalised" put "$T/p/features" "no_discard_passdown  no_discard_passdown"
eq "$(cat "$T/p/features")" "no_discard_passdown" "features without duplicates"

t "pool: configuration and activation"
check "data_size 64M" put "$T/p/data_size" 64M
eq "$(cat "$T/p/data_size")" "$((64 * MiB))" "data_size"
want=$(thin_metadata_size -b 128s -s $((64 * 2048))s -m 1000 -u b -n)
want=$(((want + 4095) / 4096 * 4096))
[ "$want" -lt $((2 * MiB)) ] && want=$((2 * MiB))
eq "$(cat "$T/p/metadata_size")" "$want" "metadata_size from thin_metadata_size"
check "low_water_mark 16" put "$T/p/low_water_mark" 16
check "activate" put "$T/p/active" 1
eq "$(cat "$T/p/active")" "1" "active"
eq "$(lsd "$L")" "p_tdata p_tmeta " "owned loops listed"
tdata=$(cat "$L/p_tdata/device")
tmeta=$(cat "$L/p_tmeta/device")
eq "$(cat "$L/p_tdata/size")" "$((64 * MiB))" "data loop size"
eq "$(cat "$L/p_tmeta/size")" "$want" "metadata loop size"
eq "$(blockdev --getsize64 "$tmeta")" "$want" "metadata device size"
eq "$(losetup -nO BACK-FILE "$tdata" | xargs dirname)" "$IMG" "data image in IMG"
eq "$(losetup -nO BACK-FILE "$tmeta" | xargs dirname)" "$IMG" "metadata image in IMG"
eq "$(dmt p)" "0 131072 thin-pool $(cat "$L/p_tmeta/dev") $(cat "$L/p_tdata/dev") 128 16 1 no_discard_passdown" "dmsetup table p"
check "metadata/ after activation" test -d "$T/p/metadata"
st=$(dmsetup status p)
set -- $st
eq "$(skey "$T/p/status" target)" "thin-pool" "status target"
eq "$(skey "$T/p/status" length)" "$2" "status length"
eq "$(skey "$T/p/status" transaction_id)" "$4" "transaction_id"
eq "$(skey "$T/p/status" used_metadata_blocks)/$(skey "$T/p/status" total_metadata_blocks)" "$5" "metadata blocks"
eq "$(skey "$T/p/status" used_data_blocks)/$(skey "$T/p/status" total_data_blocks)" "$6" "data blocks"
eq "$(skey "$T/p/status" held_metadata_root)" "$7" "held_metadata_root"
eq "$(skey "$T/p/status" mode)" "$8" "mode"
eq "$(skey "$T/p/status" discard_passdown)" "$9" "discard_passdown"
eq "$(skey "$T/p/status" no_space_policy)" "${10}" "no_space_policy"
eq "$(skey "$T/p/status" needs_check)" "$([ "${11}" = - ] && echo 0 || echo 1)" "needs_check (kernel: ${11})"
eq "$(skey "$T/p/status" metadata_low_watermark)" "${12}" "metadata_low_watermark"
eq "$(jq -r '.[0].total_data_blocks' "$T/p/status.json")" "1024" "status.json total_data_blocks"
eq "$(jq -r '.[0].transaction_id' "$T/p/status.json")" "0" "status.json transaction_id"
eq "$(sed 's/ *$//' "$T/p/status.raw")" "$(echo "$st" | sed 's/ *$//')" "status.raw"
eq "$(jq -r .state "$T/p/info.json")" "ACTIVE" "info state"
eq "$(cut -d' ' -f1 "$T/p/deps" | sort | tr '\n' ' ')" "$(printf '%s\n' "$(cat "$L/p_tdata/dev")" "$(cat "$L/p_tmeta/dev")" | sort | tr '\n' ' ')" "deps: the two loops"
expect_err EBUSY rmdir "$L/p_tdata"
contains "$(cat "$L/p_tdata/error")" "belongs to thin/p" "loop/p_tdata error"
expect_err EBUSY rmdir "$L/p_tmeta"
contains "$(cat "$L/p_tmeta/error")" "belongs to thin/p" "loop/p_tmeta error"
expect_err EBUSY put "$L/p_tdata/size" 128M
expect_err EBUSY put "$L/p_tmeta/active" 0
expect_err EBUSY dd if=/dev/zero of="$L/p_tdata/data" bs=4k count=1 conv=notrunc status=none
contains "$(cat "$L/p_tdata/error")" "belongs to thin/p" "write open of data: reason"
expect_err EBUSY mv -T "$L/p_tdata" "$L/other"
expect_err EEXIST mkdir "$L/p_tdata"
expect_err EBUSY bash -c "echo 1 > '$D/p/metadata/repair'"
put_fails EBUSY "$T/p/block_size" 128K "while thin/p is active"
put_fails EBUSY "$T/p/features" "" "while thin/p is active"
put_fails EBUSY "$T/p/metadata_size" 4M "while thin/p is active"
put_fails EBUSY "$T/p/data_dev" "$L/p_tdata" "while thin/p is active"
put_fails EINVAL "$T/p/data_size" 32M "shrinking"
check "low_water_mark reloads" put "$T/p/low_water_mark" 32
eq "$(dmsetup table p | awk '{print $7}')" "32" "table has the new low-water mark"

t "volumes: write through data"
check "mkdir v1" mkdir "$T/p/v1"
check "dm/p-v1 reserved" test -d "$D/p-v1"
eq "$(cat "$T/p/v1/thin_id")" "0" "thin_id default"
eq "$(cat "$T/p/v1/origin")" "" "no origin"
check "no delta for a plain volume" test ! -e "$T/p/v1/delta"
put_fails EINVAL "$T/p/v1/active" 1 "write size first"
put_fails EINVAL "$T/p/v1/size" 1000 "multiple of 512"
check "size 64M" put "$T/p/v1/size" 64M
put_fails ENOENT "$T/p/v1/origin" nope "no volume nope"
check "v1 active" put "$T/p/v1/active" 1
eq "$(tx p)" "1" "one change: create_thin"
eq "$(dmt p-v1)" "0 131072 thin $(cat "$D/p/dev") 0" "dmsetup table p-v1"
eq "$(skey "$T/p/v1/status" mapped_sectors)" "0" "nothing mapped"
eq "$(skey "$T/p/v1/status" highest_mapped_sector)" "-" "no highest sector"
check "write 4 MiB" wr "$T/p/v1" 0 4
eq "$(skey "$T/p/v1/status" mapped_sectors)" "8192" "mapped_sectors"
eq "$(skey "$T/p/v1/status" highest_mapped_sector)" "8191" "highest_mapped_sector"
eq "$(dmsetup status p-v1)" "0 131072 thin 8192 8191" "dmsetup status p-v1"
eq "$(jq -r '.[] | select(.dev == 0) | .mapped_blocks' "$T/p/metadata/ls.json")" "64" "metadata/ls: 64 blocks"
eq "$(our_rows <"$T/p/metadata/ls.json")" "$(thin_ls_live p "$tmeta" | ls_rows)" "metadata/ls as thin_ls"
eq "$(skey "$T/p/status" used_data_blocks)" "64" "pool: 64 data blocks used"
put_fails EBUSY "$T/p/v1/thin_id" 5 "fixed"
put_fails EBUSY "$T/p/v1/origin" v1 "fixed"
put_fails EINVAL "$T/p/v1/size" 32M "shrinking"
check "grow v1 live" put "$T/p/v1/size" 128M
eq "$(dmlen p-v1)" "262144" "p-v1 table grew"
eq "$(blockdev --getsize64 "$(cat "$T/p/v1/device")")" "$((128 * MiB))" "v1 device size"
check "mkdir v2" mkdir "$T/p/v2"
eq "$(cat "$T/p/v2/thin_id")" "1" "lowest free thin_id"
put_fails EEXIST "$T/p/v2/thin_id" 0 "thin/p/v1's"
check "rmdir an uncreated volume" rmdir "$T/p/v2"
eq "$(tx p)" "1" "no change for a volume never created"
expect_err EEXIST mkdir "$T/p/status"
expect_err EEXIST mkdir "$T/p/metadata"
expect_err EBUSY rmdir "$T/p"
contains "$(cat "$T/p/error")" "has 1 volume" "rmdir pool: reason"
expect_err EBUSY rmdir "$D/p-v1"
contains "$(cat "$D/p-v1/error")" "belongs to thin/p/v1" "dm/p-v1 error"
check "dm table on thin/p/v1" mkdm onthin "0 2048 linear thin/p/v1 0"
eq "$(cut -d' ' -f1 "$D/onthin/deps")" "$(cat "$T/p/v1/dev")" "deps: the thin volume"
check "rmdir dm/onthin" rmdir "$D/onthin"

t "volumes: pool inactive"
exec 3<"$(cat "$T/p/v1/device")"
put_fails EBUSY "$T/p/active" 0 "thin/p/v1 is open"
eq "$(cat "$T/p/v1/active")" "1" "v1 still active"
exec 3<&-
check "pool down" put "$T/p/active" 0
eq "$(cat "$T/p/v1/active")" "0" "v1 went down with the pool"
eq "$(dmsetup ls 2>&1)" "No devices found" "no dm device"
eq "$(our_loops | wc -l)" "2" "loops stay attached"
put_fails ENODEV "$T/p/v1/active" 1 "thin/p is not active"
check "metadata/ on the inactive pool" test "$(jq -r .result "$T/p/metadata/check.json")" = ok
put_fails EBUSY "$T/p/block_size" 128K "fixed once"
put_fails EBUSY "$T/p/metadata_size" 8M "fixed once"
check "features change while inactive" put "$T/p/features" ""
check "pool up" put "$T/p/active" 1
eq "$(dmsetup table p | awk '{print NF}')" "8" "table without features"
check "v1 up" put "$T/p/v1/active" 1
eq "$(skey "$T/p/v1/status" mapped_sectors)" "8192" "v1 mapping kept"

t "snapshots"
first_mib "$T/p/v1" >"$WORK/v1.a"
check "snapshot s1 of active v1" mkvol p s1 128M v1
eq "$(tx p)" "2" "create_snap is one change"
eq "$(cat "$T/p/s1/thin_id")" "1" "s1 thin id"
eq "$(jq -r .state "$D/p-v1/info.json")" "ACTIVE" "origin resumed"
check "overwrite v1's first MiB" wr "$T/p/v1" 0 1
check "v1 changed" bash -c "! cmp -s <(head -c $MiB '$T/p/v1/data') '$WORK/v1.a'"
check "s1 keeps the data" cmp <(first_mib "$T/p/s1") "$WORK/v1.a"
check "delta listed for a snapshot" bash -c "ls '$T/p/s1' | grep -qx delta"
delta=$(cat "$T/p/s1/delta")
eq "$(echo "$delta" | sed -n '/^kind=different$/,/^$/p' | tr '\n' ' ')" "kind=different begin=0 length=16  " "delta: the changed MiB"
eq "$(jq -c '[.[] | select(.kind == "different") | [.begin, .length]]' "$T/p/s1/delta.json")" "[[0,16]]" "delta.json: the changed range"
check "mkdir s2" mkdir "$T/p/s2"
check "s2 origin s1" put "$T/p/s2/origin" s1
check "s2 active without a size" put "$T/p/s2/active" 1
eq "$(cat "$T/p/s2/size")" "$((128 * MiB))" "s2 takes its origin's size"
eq "$(tx p)" "3" "three changes"
check "s2 has s1's data" cmp <(first_mib "$T/p/s2") "$WORK/v1.a"
check "write to s2" wr "$T/p/s2" 2 1
check "s1 unchanged by s2's write" cmp <(first_mib "$T/p/s1") "$WORK/v1.a"
eq "$(jq -r '.[] | select(.dev == 2) | .exclusive_blocks' "$T/p/metadata/ls.json")" "16" "s2's exclusive blocks"
head -c $((4 * MiB)) "$T/p/s1/data" | md5sum >"$WORK/s1.sum"
head -c $((4 * MiB)) "$T/p/s2/data" | md5sum >"$WORK/s2.sum"
check "rmdir origin v1" rmdir "$T/p/v1"
eq "$(tx p)" "4" "delete is one change"
check "dm/p-v1 gone" test ! -e "$D/p-v1"
eq "$(cat "$T/p/s1/origin")" "" "s1 is nobody's snapshot now"
check "no delta for s1" test ! -e "$T/p/s1/delta"
eq "$(cat "$T/p/s2/origin")" "s1" "s2 still s1's snapshot"
eq "$(head -c $((4 * MiB)) "$T/p/s1/data" | md5sum)" "$(cat "$WORK/s1.sum")" "s1 data after rmdir of its origin"
eq "$(head -c $((4 * MiB)) "$T/p/s2/data" | md5sum)" "$(cat "$WORK/s2.sum")" "s2 data after rmdir of v1"
eq "$(thin_dump_live p "$tmeta" | dump_ids)" "1 2 " "thin_dump: thins 1 and 2 left"
eq "$(skey "$T/p/status" held_metadata_root)" "-" "no metadata snapshot held"

t "20 volumes, 20 snapshots"
check "mkdir thin/q" mkdir "$T/q"
check "q data_size" put "$T/q/data_size" 128M
check "q active" put "$T/q/active" 1
qmeta=$(cat "$L/q_tmeta/device")
ok=0
for i in $(seq 0 19); do mkvol q "v$i" 16M && ok=$((ok + 1)); done
eq "$ok" "20" "20 volumes"
ok=0
for i in $(seq 0 19); do mkvol q "s$i" 16M "v$i" && ok=$((ok + 1)); done
eq "$ok" "20" "20 snapshots"
eq "$(tx q)" "40" "transaction_id: 40 changes"
thin_dump_live q "$qmeta" >"$WORK/q.xml"
eq "$(dump_tx <"$WORK/q.xml")" "40" "thin_dump transaction"
ids=$(for v in "$T"/q/*/thin_id; do cat "$v"; done | sort -n | tr '\n' ' ')
eq "$ids" "$(seq 0 39 | tr '\n' ' ')" "thin ids 0..39"
eq "$(dump_ids <"$WORK/q.xml")" "$ids" "thin_dump dev_ids as the volumes' thin ids"
eq "$(cat "$T/q/s7/thin_id")" "27" "s7's id"
eq "$(jq length "$T/q/metadata/ls.json")" "40" "metadata/ls: 40 thins"
check "write to v3" wr "$T/q/v3" 0 1
first_mib "$T/q/v3" >"$WORK/v3"
check "mv v3 w3" mv -T "$T/q/v3" "$T/q/w3"
check "w3 listed" test -d "$T/q/w3"
check "v3 gone" test ! -e "$T/q/v3"
check "dm q-w3" dmsetup info -c q-w3 >/dev/null
check "no dm q-v3" bash -c "! dmsetup info q-v3 >/dev/null 2>&1"
eq "$(cat "$T/q/s3/origin")" "w3" "s3's origin renamed"
check "w3's data" cmp <(first_mib "$T/q/w3") "$WORK/v3"
eq "$(dmsetup table q-w3 | awk '{print $5}')" "3" "q-w3 is thin 3"
expect_err EEXIST mv -T "$T/q/w3" "$T/q/v4"
check "pool q down" put "$T/q/active" 0
check "rmdir v0 while the pool is inactive" rmdir "$T/q/v0"
eq "$(cat "$T/q/active")" "0" "pool inactive again"
check "q up" put "$T/q/active" 1
eq "$(tx q)" "41" "the delete counted"
ok=0
for v in "$T"/q/*/thin_id; do rmdir "${v%/thin_id}" && ok=$((ok + 1)); done
eq "$ok" "39" "39 volumes removed"
eq "$(tx q)" "80" "transaction_id: 80 changes"
thin_dump_live q "$qmeta" >"$WORK/q.xml"
eq "$(dump_tx <"$WORK/q.xml")" "80" "thin_dump transaction after the deletes"
eq "$(dump_ids <"$WORK/q.xml")" "" "no thin left"
eq "$(skey "$T/q/status" used_data_blocks)" "0" "blocks freed"
eq "$(dmsetup ls | grep -c '^q-')" "0" "no volume device left"
eq "$(skey "$T/q/status" held_metadata_root)" "-" "no metadata snapshot held"
check "rmdir q" rmdir "$T/q"
check "q's loops gone" test ! -e "$L/q_tdata" -a ! -e "$L/q_tmeta"

t "out of data space"
check "mkdir thin/r" mkdir "$T/r"
check "r features" put "$T/r/features" error_if_no_space
check "r data_size 4M" put "$T/r/data_size" 4M
check "r metadata_size 4M" put "$T/r/metadata_size" 4M
eq "$(cat "$T/r/metadata_size")" "$((4 * MiB))" "metadata_size as set"
check "r low_water_mark 20" put "$T/r/low_water_mark" 20
check "r active" put "$T/r/active" 1
eq "$(cat "$L/r_tmeta/size")" "$((4 * MiB))" "metadata loop as set"
eq "$(dmt r)" "0 8192 thin-pool $(cat "$L/r_tmeta/dev") $(cat "$L/r_tdata/dev") 128 20 1 error_if_no_space" "dmsetup table r"
eq "$(skey "$T/r/status" no_space_policy)" "error_if_no_space" "no_space_policy"
check "r/big" mkvol r big 64M
ev=$(jq -r .event_nr "$T/r/info.json")
timeout 10 cat "$T/r/wait" >"$WORK/wait.out" 2>&1 &
waiter=$!
check "write 3 MiB (below the mark)" wr "$T/r/big" 0 3
wait $waiter
eq "$?" "0" "wait returned at the low-water mark"
check "wait printed a later event_nr" test "$(cat "$WORK/wait.out")" -gt "$ev"
check "write 4 MiB more fails" bash -c "! dd if=/dev/urandom of='$T/r/big/data' bs=64k seek=48 count=64 oflag=direct conv=notrunc status=none 2>/dev/null"
eq "$(skey "$T/r/status" mode)" "out_of_data_space" "mode"
eq "$(dms r 5)" "out_of_data_space" "dmsetup status mode"
eq "$(skey "$T/r/status" used_data_blocks)" "64" "all blocks used"
put_fails EINVAL "$T/r/data_size" 2M "shrinking"
check "grow data_size live" put "$T/r/data_size" 16M
eq "$(cat "$T/r/data_size")" "$((16 * MiB))" "data_size"
eq "$(cat "$L/r_tdata/size")" "$((16 * MiB))" "data loop 16M"
eq "$(blockdev --getsize64 "$(cat "$L/r_tdata/device")")" "$((16 * MiB))" "data device 16M"
eq "$(($(sysfs "$(basename "$(cat "$L/r_tdata/device")")" size) * 512))" "$((16 * MiB))" "loop size in sysfs"
eq "$(dmlen r)" "32768" "dmsetup table length grew"
eq "$(skey "$T/r/status" total_data_blocks)" "256" "total_data_blocks"
eq "$(skey "$T/r/status" mode)" "rw" "mode back to rw"
check "write 4 MiB now" wr "$T/r/big" 3 4
eq "$(skey "$T/r/big/status" mapped_sectors)" "14336" "7 MiB mapped"
eq "$(jq -r .result "$T/r/metadata/check.json")" "ok" "r metadata ok"
check "rmdir r/big" rmdir "$T/r/big"
check "rmdir r" rmdir "$T/r"

t "damaged metadata"
head -c $((4 * MiB)) "$T/p/s1/data" | md5sum >"$WORK/s1.sum"
check "p down" put "$T/p/active" 0
cat "$T/p/metadata/dump" >"$WORK/p.xml"
eq "$(dump_ids <"$WORK/p.xml")" "1 2 " "dump of p"
eq "$(jq -r .result "$T/p/metadata/check.json")" "ok" "check ok"
check "save the superblock" dd if="$tmeta" of="$WORK/sb" bs=4096 count=1 iflag=direct status=none
cp "$WORK/sb" "$WORK/sb.bad"
dd if=/dev/urandom of="$WORK/sb.bad" bs=1 seek=64 count=64 conv=notrunc status=none
check "corrupt the superblock" dd if="$WORK/sb.bad" of="$tmeta" bs=4096 count=1 oflag=direct conv=notrunc status=none
eq "$(jq -r .result "$T/p/metadata/check.json")" "error" "check finds the damage"
out=$(put "$T/p/active" 1 2>&1)
eq "$?" "1" "activation fails ($out)"
contains "$out" "Invalid or incomplete multibyte or wide character" "activation errno (EILSEQ)"
contains "$(cat "$T/p/error")" "Error creating metadata object" "error has the kernel's reason"
eq "$(cat "$T/p/active")" "0" "still inactive"
expect_err EIO bash -c "echo 1 > '$T/p/metadata/repair'"
contains "$(cat "$T/p/error")" "thin_repair failed" "repair of a destroyed superblock fails"
check "restore the saved dump" bash -c "cat '$WORK/p.xml' > '$T/p/metadata/restore'"
eq "$(jq -r .result "$T/p/metadata/check.json")" "ok" "check ok after restore"
check "p up after restore" put "$T/p/active" 1
check "s1 up" put "$T/p/s1/active" 1
check "s2 up" put "$T/p/s2/active" 1
eq "$(head -c $((4 * MiB)) "$T/p/s1/data" | md5sum)" "$(cat "$WORK/s1.sum")" "s1 data after restore"
eq "$(head -c $((4 * MiB)) "$T/p/s2/data" | md5sum)" "$(cat "$WORK/s2.sum")" "s2 data after restore"
check "p down" put "$T/p/active" 0
check "damage a space map block" dd if=/dev/urandom of="$tmeta" bs=4096 seek=1 count=1 oflag=direct conv=notrunc status=none
eq "$(jq -r .result "$T/p/metadata/check.json")" "error" "check finds the space map damage"
check "repair" bash -c "echo 1 > '$T/p/metadata/repair'"
eq "$(jq -r .result "$T/p/metadata/check.json")" "ok" "check ok after repair"
check "p up after repair" put "$T/p/active" 1
check "s1 up" put "$T/p/s1/active" 1
eq "$(head -c $((4 * MiB)) "$T/p/s1/data" | md5sum)" "$(cat "$WORK/s1.sum")" "s1 data after repair"

t "restore"
check "p down" put "$T/p/active" 0
cat "$T/p/metadata/dump" >"$WORK/p2.xml"
t0=$(dump_tx <"$WORK/p2.xml")
check "p up" put "$T/p/active" 1
check "s1 up" put "$T/p/s1/active" 1
check "overwrite s1" wr "$T/p/s1" 0 4
check "new volume n1" mkvol p n1 16M
check "write n1" wr "$T/p/n1" 0 1
check "rmdir s2" rmdir "$T/p/s2"
eq "$(tx p)" "$((t0 + 2))" "two changes"
check "p down" put "$T/p/active" 0
check "restore the dump" bash -c "cat '$WORK/p2.xml' > '$T/p/metadata/restore'"
check "p up" put "$T/p/active" 1
eq "$(tx p)" "$t0" "transaction as in the dump"
check "s1 up" put "$T/p/s1/active" 1
eq "$(head -c $((4 * MiB)) "$T/p/s1/data" | md5sum)" "$(cat "$WORK/s1.sum")" "s1's data back"
eq "$(jq -r '[.[].dev] | sort | join(" ")' "$T/p/metadata/ls.json")" "1 2" "thins 1 and 2 in the pool again"
out=$(put "$T/p/n1/active" 1 2>&1)
eq "$?" "1" "n1's thin is gone ($out)"
contains "$(cat "$T/p/n1/error")" "still in the pool" "n1 error gives the hint"
check "rmdir n1 (thin already gone)" rmdir "$T/p/n1"
# s2's thin (id 2) came back with the dump, but no volume has it any more.
check "mkdir n2" mkdir "$T/p/n2"
eq "$(cat "$T/p/n2/thin_id")" "0" "n2 takes the lowest id no volume has (v1's, deleted)"
check "n2 thin_id 2 (s2's, orphaned by the restore)" put "$T/p/n2/thin_id" 2
check "n2 size" put "$T/p/n2/size" 16M
out=$(put "$T/p/n2/active" 1 2>&1)
eq "$?" "1" "create_thin of a thin id the pool has fails ($out)"
contains "$out" "$(errtext EEXIST)" "EEXIST"
contains "$(cat "$T/p/n2/error")" "thin id 2 exists in thin/p's metadata" "n2 error"
eq "$(tx p)" "$t0" "a refused change leaves the transaction id"
check "n2 thin_id 3" put "$T/p/n2/thin_id" 3
check "n2 up" put "$T/p/n2/active" 1
eq "$(tx p)" "$((t0 + 1))" "created"
check "rmdir n2" rmdir "$T/p/n2"
eq "$(tx p)" "$((t0 + 2))" "deleted"

t "daemon restart adopts, reboot reactivates"
check "s1 up" put "$T/p/s1/active" 1
stop_daemon
eq "$(dmsetup ls | awk '{print $1}' | sort | tr '\n' ' ')" "p p-s1 " "devices stay without the daemon"
check "restart" start_daemon
contains "$(lsd "$T/p")" "s1 " "s1 adopted"
eq "$(cat "$T/p/active") $(cat "$T/p/s1/active")" "1 1" "adopted active"
eq "$(cat "$T/p/s1/thin_id")" "1" "s1 thin id kept"
eq "$(head -c $((4 * MiB)) "$T/p/s1/data" | md5sum)" "$(cat "$WORK/s1.sum")" "s1's data after a restart"
expect_err EBUSY rmdir "$L/p_tdata"
stop_daemon
dmsetup remove p-s1 && dmsetup remove p
for dev in $(our_loops); do losetup -d "$dev"; done
eq "$(dmsetup ls 2>&1) $(our_loops)" "No devices found " "as after a reboot"
check "start again" start_daemon
eq "$(cat "$T/p/active") $(cat "$T/p/s1/active")" "0 0" "inactive after a reboot"
eq "$(jq -r .result "$T/p/metadata/check.json")" "ok" "metadata/ attaches the loops again"
check "p up after the reboot" put "$T/p/active" 1
check "s1 up after the reboot" put "$T/p/s1/active" 1
eq "$(head -c $((4 * MiB)) "$T/p/s1/data" | md5sum)" "$(cat "$WORK/s1.sum")" "s1's data after a reboot"
tmeta=$(cat "$L/p_tmeta/device")

t "a read-only pool: mode ro in status, refused writes and creates explained"
check "mkdir thin/r" mkdir "$T/r"
check "r data_size" put "$T/r/data_size" 8M
check "r active" put "$T/r/active" 1
check "r/v" mkvol r v 16M
check "write 64K to r/v" dd if=/dev/urandom of="$T/r/v/data" bs=64k count=1 oflag=direct conv=notrunc status=none
check "r inactive" put "$T/r/active" 0
check "features read_only" put "$T/r/features" read_only
check "r active, read-only" put "$T/r/active" 1
eq "$(skey "$T/r/status" mode)" "ro" "status mode=ro"
check "r/v active" put "$T/r/v/active" 1
check "mapped data reads" dd if="$T/r/v/data" of=/dev/null bs=64k count=1 status=none
expect_err EIO dd if=/dev/zero of="$T/r/v/data" bs=64k count=1 seek=8 oflag=direct conv=notrunc status=none
contains "$(cat "$T/r/v/error")" "data: writing 65536 bytes at offset 524288" "the refused write is in error"
check "mkdir r/w" mkdir "$T/r/w"
check "r/w size" put "$T/r/w/size" 16M
expect_err EOPNOTSUPP bash -c "echo 1 > '$T/r/w/active'"
contains "$(cat "$T/r/w/error")" "create_thin" "the refused create_thin is named"
contains "$(cat "$T/r/w/error")" "READ_ONLY" "with the kernel's reason"
eq "$(skey "$T/r/status" transaction_id)" "1" "a refused create leaves the transaction id"
check "r inactive again" put "$T/r/active" 0
check "features rw" put "$T/r/features" ""
check "r active, rw" put "$T/r/active" 1
eq "$(skey "$T/r/status" mode)" "rw" "status mode=rw"
check "r/w now" put "$T/r/w/active" 1
check "rmdir r/v r/w" rmdir "$T/r/v" "$T/r/w"
check "rmdir r" rmdir "$T/r"

t "pools made elsewhere: read-only, --manage-external removes them"
check "loop/xm" mkloop xm 8M
check "loop/xd" mkloop xd 16M
check "dm/hand: a pool through dm/" mkdm hand "0 32768 thin-pool loop/xm loop/xd 128 0"
contains "$(lsd "$T")" "hand " "thin/ lists dm/hand's pool"
eq "$(cat "$T/hand/active") $(cat "$T/hand/data_size") $(cat "$T/hand/block_size")" "1 16777216 65536" "read from its table"
eq "$(cat "$T/hand/data_dev")" "$(cat "$L/xd/dev")" "data_dev as MAJ:MIN"
eq "$(cat "$T/hand/metadata_size")" "8388608" "metadata_size is the device's"
expect_err EBUSY bash -c "echo 0 > '$T/hand/active'"
contains "$(cat "$T/hand/error")" "belongs to dm/hand" "a dm/ pool is changed through dm/"
expect_err EBUSY rmdir "$T/hand"
check "rmdir dm/hand" rmdir "$D/hand"
xm=$(cat "$L/xm/dev") xd=$(cat "$L/xd/dev")
check "dm/ read before" ls "$D"
check "dmsetup create ext" dmsetup create ext --table "0 32768 thin-pool $xm $xd 128 0"
contains "$(lsd "$T")" "ext " "thin/ lists a dmsetup pool"
contains "$(lsd "$D")" "ext " "dm/ lists it in the next ls"
check "dm/ext resolves at once" test -d "$D/ext"
eq "$(stat -c %A "$T/ext/active")" "-r--r--r--" "its files are read-only"
expect_err EPERM bash -c "echo 0 > '$T/ext/active'"
contains "$(cat "$T/ext/error")" "--manage-external" "error says how to manage it"
expect_err EPERM mkdir "$T/ext/v"
expect_err EPERM rmdir "$T/ext"
eq "$(jq -r .result "$T/ext/metadata/check.json")" "ok" "its metadata/ reads"
stop_daemon
check "restart with --manage-external" start_daemon --manage-external
check "thin/ext resolves" test -d "$T/ext"
check "active 0 removes it" put "$T/ext/active" 0
check "dm/ext no longer resolves" test ! -e "$D/ext"
check "thin/ext no longer resolves" test ! -e "$T/ext"
check "gone from the kernel" bash -c "! dmsetup info ext >/dev/null 2>&1"
check "dmsetup create ext again" dmsetup create ext --table "0 32768 thin-pool $xm $xd 128 0"
check "thin/ext is back at once" test -d "$T/ext"
check "dmsetup remove ext" dmsetup remove ext
check "gone from thin/ at once" test ! -e "$T/ext"
check "gone from dm/'s next ls" bash -c "! ls '$D' | grep -qx ext"
check "dmsetup create ext a third time" dmsetup create ext --table "0 32768 thin-pool $xm $xd 128 0"
check "rmdir removes it" rmdir "$T/ext"
check "gone again" bash -c "! dmsetup info ext >/dev/null 2>&1"
stop_daemon
check "restart without" start_daemon
check "rmdir loop/xm loop/xd" rmdir "$L/xm" "$L/xd"

t "a daemon killed inside rmdir or the first activation of a volume"
# What the record holds when the daemon dies after saving its intent and
# before the kernel answered: the flag field is created + 2 * intent.
check "thin/p/kr" mkdir "$T/p/kr"
check "kr size" put "$T/p/kr/size" 4M
check "kr active" put "$T/p/kr/active" 1
check "kr inactive" put "$T/p/kr/active" 0
kr_id=$(cat "$T/p/kr/thin_id")
stop_daemon
sed -i "s/^vol\.kr=\([0-9]*\) \([0-9]*\) 1 /vol.kr=\1 \2 5 /" "$STATE/thin/p"
check "the record says: being removed" grep -q "^vol.kr=[0-9]* [0-9]* 5 " "$STATE/thin/p"
check "start" start_daemon
put_fails ENOENT "$T/p/kr/active" 1 "was being removed when stsfs stopped: rmdir it again"
check "rmdir finishes the removal" rmdir "$T/p/kr"
thin_ls_live p "$tmeta" | awk '{ print $1 }' | grep -qx "$kr_id"
eq "$?" 1 "its thin is gone from the pool"
check "thin/p/kc" mkdir "$T/p/kc"
check "kc size" put "$T/p/kc/size" 4M
kc_id=$(cat "$T/p/kc/thin_id")
stop_daemon
# The kernel made the thin; the record was saved with the intent only.
tid=$(dms p 1)
check "set_transaction_id" dmsetup message p 0 "set_transaction_id $tid $((tid + 1))"
check "create_thin $kc_id by hand" dmsetup message p 0 "create_thin $kc_id"
sed -i "s/^vol\.kc=\([0-9]*\) \([0-9]*\) 0 /vol.kc=\1 \2 2 /" "$STATE/thin/p"
check "the record says: being created" grep -q "^vol.kc=[0-9]* [0-9]* 2 " "$STATE/thin/p"
check "start" start_daemon
check "activation takes the thin the kernel made" put "$T/p/kc/active" 1
check "rmdir kc" rmdir "$T/p/kc"

t "a daemon killed inside a volume's mkdir or mv"
# The volume's dm object is made (renamed) before the pool's record lists
# it: the records a kill in between leaves, and what start-up makes of them.
check "thin/p/kg" mkdir "$T/p/kg"
check "thin/p/km" mkdir "$T/p/km"
check "km size" put "$T/p/km/size" 4M
stop_daemon
sed -i '/^vol\.kg=/d' "$STATE/thin/p"
mv "$STATE/dm/p-km" "$STATE/dm/p-kn"
sed -i 's|^owner=thin/p/km$|owner=thin/p/kn|' "$STATE/dm/p-kn"
check "the dm record was renamed, the pool's not" grep -q "^owner=thin/p/kn$" "$STATE/dm/p-kn"
check "start" start_daemon
check "mkdir's leftover dm object is gone" test ! -e "$STATE/dm/p-kg"
check "and its name is free again" mkdir "$T/p/kg"
check "mv's dm object is the volume's again" test -e "$STATE/dm/p-km" -a ! -e "$STATE/dm/p-kn"
eq "$(cat "$T/p/km/size")" "4194304" "km keeps its size"
check "mv km kn" mv "$T/p/km" "$T/p/kn"
check "dm object follows" test -e "$STATE/dm/p-kn" -a ! -e "$STATE/dm/p-km"
check "rmdir kn" rmdir "$T/p/kn"
check "rmdir kg" rmdir "$T/p/kg"
check "the start-up said so" grep -q "renamed back" "$WORK/daemon.log"

t "teardown"
eq "$(skey "$T/p/status" held_metadata_root)" "-" "no metadata snapshot held"
eq "$(dms p 4)" "-" "dmsetup: no held root"
check "rmdir s1" rmdir "$T/p/s1"
check "rmdir p" rmdir "$T/p"
eq "$(lsd "$T")" "" "thin/ empty"
eq "$(lsd "$D")" "" "dm/ empty"
eq "$(lsd "$L")" "" "loop/ empty"
eq "$(dmsetup ls 2>&1)" "No devices found" "dmsetup ls"
eq "$(losetup -a)" "" "no loop device left"
eq "$(ls -A "$IMG")" "" "no image left"
[ "$FAILED" -eq 0 ] || { echo "--- daemon log (tail)" >&2; tail -n 40 "$WORK/daemon.log" >&2; }
finish
