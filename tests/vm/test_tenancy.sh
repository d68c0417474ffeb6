#!/usr/bin/env bash
# Tenancy (--tenancy uid|pidns) for dm/ and thin/ against a real
# device-mapper (run inside the test VM: tests/vm/run-in-vm.sh -- bash
# tests/vm/test_tenancy.sh). Part 1: two unprivileged users (uids 1000 and
# 1001) as tenants, each with the same names; references, the host's
# tenants/ and quota/, quotas, a restart. Part 2: pid namespaces made with
# unshare as "containers", and --reap tearing a gone one's objects down.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib-dm.sh"

T=$MNT/thin
U1=1000
U2=1001
MiB=1048576

# Users other than root must reach the mount point through the work dir.
chmod 755 "$WORK"
for u in $U1 $U2; do
	mkdir -p "$WORK/u$u"
	chown "$u:$u" "$WORK/u$u"
done

# as U COMMAND...: COMMAND as uid/gid U, no supplementary groups, no user
# namespace.
as() {
	local u=$1
	shift
	setpriv --reuid "$u" --regid "$u" --clear-groups "$@"
}
# uput U FILE VALUE: put as user U (one write; cat reports close(2)'s errno).
uput() {
	as "$1" sh -c 'printf "%s\n" "$3" >"$1" && cat "$1" >"$2"' sh "$WORK/u$1/value" "$2" "$3"
}
ucat() { as "$1" cat "$2"; }
# A directory listing without the error file every directory has.
lsd() { ls -A "$1" | grep -vx error | tr '\n' ' '; }
ulsd() { as "$1" ls -A "$2" | grep -vx error | tr '\n' ' '; }
umkloop() { as "$1" mkdir "$L/$2" && uput "$1" "$L/$2/size" "$3" && uput "$1" "$L/$2/active" 1; }
umkdm() { as "$1" mkdir "$D/$2" && uput "$1" "$D/$2/table" "$3" && uput "$1" "$D/$2/active" 1; }
umkpool() { as "$1" mkdir "$T/$2" && uput "$1" "$T/$2/data_size" "$3" && uput "$1" "$T/$2/active" 1; }
umkvol() { as "$1" mkdir "$T/$2/$3" && uput "$1" "$T/$2/$3/size" "$4" && uput "$1" "$T/$2/$3/active" 1; }
# uput_fails U ERRNO FILE VALUE REASON: the write fails as user U with ERRNO,
# changes nothing, and the object's error file (as U reads it) tells why.
uput_fails() {
	local u=$1 want=$2 file=$3 value=$4 reason=$5 before
	before=$(ucat "$u" "$file" 2>/dev/null)
	expect_err "$want" uput "$u" "$file" "$value"
	eq "$(ucat "$u" "$file" 2>/dev/null)" "$before" "$file unchanged after failed write (uid $u)"
	contains "$(ucat "$u" "$(dirname "$file")/error")" "$reason" "$(dirname "$file")/error (uid $u)"
}
# The kernel's dm device names, sorted, on one line.
dmnames() { dmsetup ls 2>/dev/null | awk '$1 != "No" { print $1 }' | sort | tr '\n' ' '; }
dmdev() { dmsetup info -c --noheadings -o major,minor --separator : "$1" | tr -d ' '; }
has_dm() { dmsetup info "$1" >/dev/null 2>&1; }
kv() { sed -n "s/^$2=//p" "$1" | head -1; }
EDQUOT="Disk quota exceeded"

CONTAINERS=()
USERNS_MAX=$(cat /proc/sys/user/max_user_namespaces)
on_exit() {
	local p
	for p in "${CONTAINERS[@]}"; do kill -9 "$p" 2>/dev/null; done
	echo "$USERNS_MAX" >/proc/sys/user/max_user_namespaces 2>/dev/null
	cleanup
}
trap on_exit EXIT

########################################################################
# Part 1: --tenancy uid

t "uid mode: start"
stop_daemon
check "start with --tenancy uid" start_daemon --tenancy uid
check "allow_other is on" grep -q " $MNT fuse.stsfs .*allow_other" /proc/mounts
eq "$(stat -c %a "$MNT/loop")" "777" "kind directories are 0777"
# No user namespace is involved: with none allowed, everything works.
echo 0 >/proc/sys/user/max_user_namespaces
check "user namespaces are off" bash -c "! setpriv --reuid $U1 --regid $U1 --clear-groups unshare -U true 2>/dev/null"

t "uid mode: a loop and a linear dm device per user, same names"
for u in $U1 $U2; do
	check "uid $u: loop/disk" umkloop $u disk 64M
	check "uid $u: dm/lin" umkdm $u lin "0 131072 linear loop/disk 0"
	eq "$(ucat $u "$D/lin/active")" "1" "uid $u: dm/lin active"
	eq "$(ulsd $u "$L")" "disk " "uid $u: loop/ lists its own disk only"
	eq "$(ulsd $u "$D")" "lin " "uid $u: dm/ lists its own lin only"
done
A1=$(cat "$MNT/tenants/$U1/loop/disk/dev")
A2=$(cat "$MNT/tenants/$U2/loop/disk/dev")
check "two different loop devices" test -n "$A1" -a -n "$A2" -a "$A1" != "$A2"
eq "$(ucat $U1 "$L/disk/dev")" "$A1" "uid $U1 loop/disk is its own"
eq "$(ucat $U2 "$L/disk/dev")" "$A2" "uid $U2 loop/disk is its own"
eq "$(dmnames)" "$U1:lin $U2:lin " "the kernel has $U1:lin and $U2:lin"
eq "$(dmsetup table "$U1:lin" | sed 's/ *$//')" "0 131072 linear $A1 0" "$U1:lin maps $U1's disk"
eq "$(dmsetup table "$U2:lin" | sed 's/ *$//')" "0 131072 linear $A2 0" "$U2:lin maps $U2's disk"
eq "$(ucat $U1 "$D/lin/table")" "0 131072 linear $A1 0" "uid $U1 reads its table"
eq "$(ucat $U1 "$D/lin/dev")" "$(dmdev "$U1:lin")" "uid $U1 dm/lin/dev"
eq "$(ucat $U2 "$D/lin/dev")" "$(dmdev "$U2:lin")" "uid $U2 dm/lin/dev"
check "images named TENANT:NAME" test -f "$IMG/$U1:disk.img" -a -f "$IMG/$U2:disk.img"
eq "$(stat -c %u "$MNT/tenants/$U1/dm/lin")" "$U1" "owner of $U1's dm/lin"
eq "$(as $U2 stat -c %u "$D/lin")" "$U2" "owner of $U2's dm/lin, as it sees it"
check "random block" sh -c "head -c 65536 /dev/urandom >'$WORK/blk' && chmod 644 '$WORK/blk'"
check "dd into dm/lin/data as $U1" as $U1 dd if="$WORK/blk" of="$D/lin/data" bs=4096 conv=notrunc status=none
check "the bytes reached $U1's loop/disk" cmp -n 65536 "$WORK/blk" <(as $U1 head -c 65536 "$L/disk/data")
check "and not $U2's" bash -c "! cmp -s -n 65536 '$WORK/blk' '$IMG/$U2:disk.img'"

t "uid mode: what a tenant does not see"
eq "$(ulsd $U1 "$MNT" | tr ' ' '\n' | grep -xE 'tenants|quota')" "" "no tenants/ or quota/ in a tenant's root"
expect_err ENOENT as $U1 ls "$MNT/tenants"
expect_err ENOENT as $U1 cat "$MNT/quota/limits"
expect_err ENOENT as $U2 ls "$L/$U1:disk"
expect_err ENOENT as $U2 cat "$D/$U1:lin/status"
check "host: dmsetup create ext" dmsetup create ext --table "0 2048 zero"
check "the host sees dm/ext" test -d "$D/ext"
expect_err ENOENT as $U1 cat "$D/ext/table"
eq "$(ulsd $U1 "$D")" "lin " "a device made elsewhere is not in a tenant's dm/"
check "dmsetup remove ext" dmsetup remove ext
# The host's own trees do not list the tenants' objects.
eq "$(lsd "$D")" "" "host dm/ empty"
eq "$(lsd "$L" | tr ' ' '\n' | grep -v '^loop[0-9]*$' | tr -d '\n')" "" "host loop/ has no objects"
check "host: no dm/lin of its own" test ! -e "$D/lin"
check "host: no loop/disk of its own" test ! -e "$L/disk"

t "uid mode: references to another tenant's devices"
DM1=$(dmdev "$U1:lin")
N1=$(cat "$MNT/tenants/$U1/loop/disk/name")
check "loop/disk of $U1 is a loop device" test -b "/dev/$N1"
# A live table: the reload is refused and the kernel keeps the old one.
uput_fails $U2 ENOENT "$D/lin/table" "0 131072 linear loop/$U1:disk 0" "names have no ':'"
uput_fails $U2 EACCES "$D/lin/table" "0 131072 linear $A1 0" "not by number or path"
eq "$(dmsetup table "$U2:lin" | sed 's/ *$//')" "0 131072 linear $A2 0" "$U2:lin still maps $U2's disk"
as $U2 mkdir "$D/x"
check "uid $U2: dm/x" test -d "$MNT/tenants/$U2/dm/x"
uput_fails $U2 ENOENT "$D/x/table" "0 131072 linear loop/$U1:disk 0" "names have no ':'"
uput_fails $U2 EACCES "$D/x/table" "0 131072 linear $A1 0" "not by number or path"
# Reasons name objects as the tenant does.
uput_fails $U2 ENOENT "$D/x/table" "0 131072 linear loop/nope 0" "no loop object loop/nope"
uput_fails $U2 EACCES "$D/x/table" "0 131072 linear /dev/$N1 0" "not by number or path"
uput_fails $U2 EACCES "$D/x/table" "0 131072 linear $DM1 0" "not by number or path"
uput_fails $U2 EACCES "$D/x/table" "0 131072 linear /dev/dm-${DM1#*:} 0" "not by number or path"
check "dmsetup mknodes $U1:lin" dmsetup mknodes "$U1:lin"
uput_fails $U2 ENOENT "$D/x/table" "0 131072 linear /dev/mapper/$U1:lin 0" "names have no ':'"
check "no reference leaked into the kernel" bash -c "! dmsetup info '$U2:x' >/dev/null 2>&1"
# dm/lin in 1001's table is 1001's own.
check "uid $U2: dm/x on dm/lin" uput $U2 "$D/x/table" "0 131072 linear dm/lin 0"
check "uid $U2: dm/x active" uput $U2 "$D/x/active" 1
eq "$(dmsetup table "$U2:x" | sed 's/ *$//')" "0 131072 linear $(dmdev "$U2:lin") 0" "dm/lin resolved in $U2's tree"
check "uid $U2: rmdir dm/x" as $U2 rmdir "$D/x"
# The host's tables are not confined.
check "host: dm/h on tenants' device by number" mkdm h "0 2048 linear $A1 0"
check "host: rmdir dm/h" rmdir "$D/h"
rm -f "/dev/mapper/$U1:lin"

t "uid mode: a thin pool and a volume per user, same names"
for u in $U1 $U2; do
	check "uid $u: thin/pool" umkpool $u pool 64M
	check "uid $u: thin/pool/vol" umkvol $u pool vol 32M
	eq "$(ucat $u "$T/pool/vol/active")" "1" "uid $u: vol active"
	eq "$(ulsd $u "$T")" "pool " "uid $u: thin/ lists its pool"
	eq "$(ulsd $u "$D")" "lin pool pool-vol " "uid $u: dm/ lists the pool's devices"
	eq "$(ulsd $u "$L")" "disk pool_tdata pool_tmeta " "uid $u: loop/ lists the pool's loops"
	eq "$(ucat $u "$T/pool/vol/dev")" "$(dmdev "$u:pool-vol")" "uid $u: vol is $u:pool-vol"
	check "uid $u: mkfs on its volume" as $u mkfs.ext4 -q -F "$T/pool/vol/data"
	eq "$(kv "$MNT/tenants/$u/thin/pool/vol/probe" TYPE)" "ext4" "the host probes $u's volume"
	# The pool's own dm device: writes and rmdir refused by stsfs, naming
	# the owner (as for root: EBUSY, not a bare EACCES from the mode).
	expect_err EBUSY uput $u "$D/pool/table" "0 2048 zero"
	contains "$(ucat $u "$D/pool/error")" "belongs to thin/pool" "uid $u: the write's reason names the owner"
	expect_err EBUSY as $u rmdir "$D/pool"
	contains "$(ucat $u "$D/pool/error")" "belongs to thin/pool" "uid $u: dm/pool error names its owner as it knows it"
done
eq "$(dmnames)" "$U1:lin $U1:pool $U1:pool-vol $U2:lin $U2:pool $U2:pool-vol " "the kernel's dm devices"
check "pool images named TENANT:NAME" test -f "$IMG/$U1:pool_tdata.img" -a -f "$IMG/$U2:pool_tmeta.img"
eq "$(dmsetup table "$U1:pool-vol" | awk '{print $4}')" "$(dmdev "$U1:pool")" "$U1's volume sits on $U1's pool"
eq "$(dmsetup table "$U2:pool-vol" | awk '{print $4}')" "$(dmdev "$U2:pool")" "$U2's volume sits on $U2's pool"
# thin/POOL/VOL in a tenant's table is its own.
check "uid $U1: dm/onvol on thin/pool/vol" umkdm $U1 onvol "0 2048 linear thin/pool/vol 0"
eq "$(dmsetup table "$U1:onvol" | awk '{print $4}')" "$(dmdev "$U1:pool-vol")" "thin/pool/vol resolved in $U1's tree"
check "uid $U1: rmdir dm/onvol" as $U1 rmdir "$D/onvol"
# data_dev and metadata_dev name the tenant's own devices too.
check "uid $U2: loop/dd" umkloop $U2 dd 16M
check "uid $U2: thin/pd" as $U2 mkdir "$T/pd"
uput_fails $U2 EACCES "$T/pd/data_dev" "$A1" "not by number or path"
uput_fails $U2 EACCES "$T/pd/data_dev" "/dev/$N1" "not by number or path"
uput_fails $U2 EACCES "$T/pd/metadata_dev" "$DM1" "not by number or path"
uput_fails $U2 ENOENT "$T/pd/data_dev" "loop/$U1:disk" "names have no ':'"
uput_fails $U2 ENOENT "$T/pd/metadata_dev" "dm/$U1:lin" "names have no ':'"
check "uid $U2: data_dev loop/dd" uput $U2 "$T/pd/data_dev" loop/dd
check "uid $U2: thin/pd active" uput $U2 "$T/pd/active" 1
DD2=$(ucat $U2 "$L/dd/dev")
eq "$(dmsetup table "$U2:pd" | awk '{print $5}')" "$DD2" "the pool's data is $U2's loop/dd"
eq "$(ucat $U2 "$T/pd/data_dev")" "$DD2" "data_dev shows it as MAJ:MIN"

t "uid mode: the host's tenants/ and quota/"
eq "$(lsd "$MNT/tenants")" "$U1 $U2 " "tenants/ lists both"
for u in $U1 $U2; do
	eq "$(lsd "$MNT/tenants/$u")" "dm loop thin " "tenants/$u has loop/ dm/ thin/"
	eq "$(lsd "$MNT/tenants/$u/dm")" "$(ulsd $u "$D")" "tenants/$u/dm as $u sees dm/"
	eq "$(lsd "$MNT/tenants/$u/thin")" "$(ulsd $u "$T")" "tenants/$u/thin as $u sees thin/"
	eq "$(lsd "$MNT/tenants/$u/loop")" "$(ulsd $u "$L")" "tenants/$u/loop as $u sees loop/"
	eq "$(cat "$MNT/tenants/$u/dm/lin/status.raw" | sed 's/ *$//')" "$(dmsetup status "$u:lin" | sed 's/ *$//')" \
		"host reads $u's dm/lin status"
	eq "$(jq -r .state "$MNT/tenants/$u/dm/lin/info.json")" "ACTIVE" "host reads $u's dm/lin info"
	eq "$(kv "$MNT/tenants/$u/thin/pool/status" transaction_id)" "$(dmsetup status "$u:pool" | awk '{print $4}')" \
		"host reads $u's pool status"
	eq "$(cat "$MNT/tenants/$u/thin/pool/vol/size")" "$((32 * MiB))" "host reads $u's volume size"
	eq "$(kv "$MNT/quota/$u/usage" tenant)" "$u" "quota/$u/usage tenant"
	eq "$(kv "$MNT/quota/$u/usage" dm)" "1" "quota/$u/usage dm"
	eq "$(kv "$MNT/quota/$u/usage" dm_limit)" "unlimited" "quota/$u/usage dm_limit"
done
eq "$(kv "$MNT/quota/$U1/usage" thin)" "2" "quota/$U1/usage thin: pool and volume"
eq "$(kv "$MNT/quota/$U2/usage" thin)" "3" "quota/$U2/usage thin: two pools and a volume"
eq "$(kv "$MNT/quota/$U1/usage" bytes)" "$((128 * MiB))" "quota/$U1/usage bytes: disk and pool data"
eq "$(kv "$MNT/quota/$U2/usage" bytes)" "$((144 * MiB))" "quota/$U2/usage bytes: disk, dd and pool data"
eq "$(kv "$MNT/quota/$U2/usage" loops)" "2" "quota/$U2/usage loops"
eq "$(tr '\n' ' ' <"$MNT/quota/limits")" "loops=unlimited dm=unlimited thin=unlimited bytes=unlimited " "quota/limits"
# The host makes an object for a tenant, and removes one.
check "host: mkdir tenants/$U1/dm/byhost" mkdir "$MNT/tenants/$U1/dm/byhost"
check "host: its table, named in $U1's tree" put "$MNT/tenants/$U1/dm/byhost/table" "0 2048 linear loop/disk 0"
check "host: activate it" put "$MNT/tenants/$U1/dm/byhost/active" 1
eq "$(dmsetup table "$U1:byhost" | awk '{print $4}')" "$A1" "loop/disk under tenants/$U1 is $U1's"
eq "$(ulsd $U1 "$D")" "byhost lin pool pool-vol " "uid $U1 sees the host's dm/byhost"
eq "$(as $U1 stat -c %u "$D/byhost")" "$U1" "and owns it"
check "host: rmdir tenants/$U1/dm/byhost" rmdir "$MNT/tenants/$U1/dm/byhost"
check "gone from the kernel" bash -c "! dmsetup info '$U1:byhost' >/dev/null 2>&1"

t "uid mode: restart with quotas keeps every tenant's objects and owners"
for u in $U1 $U2; do
	ucat $u "$D/lin/table" >"$WORK/lin.$u"
	dmsetup table "$u:pool-vol" >"$WORK/vol.$u"
done
before=$(dmnames)
stop_daemon
eq "$(dmnames)" "$before" "devices stay while no daemon runs"
check "start again with --quota" start_daemon --tenancy uid --quota dm=1,thin=2,bytes=160M
eq "$(tr '\n' ' ' <"$MNT/quota/limits")" "loops=unlimited dm=1 thin=2 bytes=$((160 * MiB)) " "quota/limits"
eq "$(lsd "$MNT/tenants")" "$U1 $U2 " "tenants/ lists both again"
for u in $U1 $U2; do
	eq "$(ucat $u "$D/lin/active")" "1" "uid $u: dm/lin active after restart"
	eq "$(ucat $u "$D/lin/table")" "$(cat "$WORK/lin.$u")" "uid $u: dm/lin table after restart"
	eq "$(ucat $u "$T/pool/vol/active")" "1" "uid $u: vol active after restart"
	eq "$(dmsetup table "$u:pool-vol")" "$(cat "$WORK/vol.$u")" "uid $u: the kernel's volume unchanged"
	eq "$(ulsd $u "$D")" "lin $([ $u = $U2 ] && echo 'pd ')pool pool-vol " "uid $u: dm/ after restart"
	eq "$(as $u stat -c %u "$D/lin" "$T/pool" "$T/pool/vol" "$L/disk" | sort -u)" "$u" "uid $u owns its objects after restart"
	eq "$(stat -c %u "$MNT/tenants/$u/thin/pool")" "$u" "the host sees $u as the owner"
	check "uid $u: data readable" as $u dd if="$T/pool/vol/data" of=/dev/null bs=64k count=4 status=none
done
eq "$(ucat $U2 "$T/pd/active")" "1" "uid $U2: thin/pd (data_dev loop/dd) active after restart"
eq "$(ucat $U2 "$T/pd/data_dev")" "$DD2" "uid $U2: thin/pd data_dev after restart"
eq "$(dmnames)" "$before" "no device made or lost by the restart"

t "uid mode: quota dm=1"
expect_err "$EDQUOT" as $U1 mkdir "$D/second"
contains "$(ucat $U1 "$D/error")" "dm=1" "dm/error names the limit"
check "no dm/second" as $U1 test ! -e "$D/second"
eq "$(kv "$MNT/quota/$U1/usage" dm_limit)" "1" "usage dm_limit"
check "the host's dm/error does not have it" bash -c "! grep -q quota '$D/error'"
check "nor $U2's" bash -c "! setpriv --reuid $U2 --regid $U2 --clear-groups cat '$D/error' | grep -q 'tenant $U1'"
check "the host is not held to quotas" mkdir "$D/host1"
check "host: mkdir dm/host2" mkdir "$D/host2"
check "host: rmdir dm/host1 dm/host2" rmdir "$D/host1" "$D/host2"
check "uid $U1: rmdir dm/lin frees its quota" as $U1 rmdir "$D/lin"
check "uid $U1: dm/lin again" umkdm $U1 lin "0 131072 linear loop/disk 0"

t "uid mode: quota thin=2"
expect_err "$EDQUOT" as $U1 mkdir "$T/pool/vol2"
contains "$(ucat $U1 "$T/pool/error")" "thin=2" "thin/pool/error names the limit"
check "no thin/pool/vol2" as $U1 test ! -e "$T/pool/vol2"
expect_err "$EDQUOT" as $U1 mkdir "$T/pool2"
contains "$(ucat $U1 "$T/error")" "thin=2" "thin/error names the limit"
eq "$(ulsd $U1 "$T")" "pool " "uid $U1: thin/ unchanged"
eq "$(kv "$MNT/quota/$U1/usage" thin)" "2" "usage thin"
check "uid $U1: rmdir vol" as $U1 rmdir "$T/pool/vol"
check "gone from the kernel" bash -c "! dmsetup info '$U1:pool-vol' >/dev/null 2>&1"
check "uid $U1: another volume fits" umkvol $U1 pool vol2 16M
eq "$(kv "$MNT/quota/$U1/usage" thin)" "2" "usage thin"

t "uid mode: quota bytes"
uput_fails $U1 "$EDQUOT" "$T/pool/data_size" 128M "bytes=$((160 * MiB))"
check "uid $U1: loop/big" as $U1 mkdir "$L/big"
uput_fails $U1 "$EDQUOT" "$L/big/size" 64M "bytes=$((160 * MiB))"
check "32M fits" uput $U1 "$L/big/size" 32M
eq "$(kv "$MNT/quota/$U1/usage" bytes)" "$((160 * MiB))" "usage bytes at the limit"
check "uid $U1: rmdir loop/big" as $U1 rmdir "$L/big"

t "uid mode: teardown, by the tenant and by the host"
check "uid $U1: rmdir vol2" as $U1 rmdir "$T/pool/vol2"
check "uid $U1: rmdir pool" as $U1 rmdir "$T/pool"
check "uid $U1: rmdir dm/lin loop/disk" as $U1 rmdir "$D/lin" "$L/disk"
eq "$(ulsd $U1 "$L")$(ulsd $U1 "$D")$(ulsd $U1 "$T")" "" "uid $U1: nothing left"
check "host: rmdir $U2's vol" rmdir "$MNT/tenants/$U2/thin/pool/vol"
check "host: rmdir $U2's pools" rmdir "$MNT/tenants/$U2/thin/pool" "$MNT/tenants/$U2/thin/pd"
check "host: rmdir $U2's dm/lin" rmdir "$MNT/tenants/$U2/dm/lin"
check "host: rmdir $U2's loops" rmdir "$MNT/tenants/$U2/loop/disk" "$MNT/tenants/$U2/loop/dd"
eq "$(ulsd $U2 "$L")$(ulsd $U2 "$D")$(ulsd $U2 "$T")" "" "uid $U2: nothing left"
eq "$(lsd "$MNT/tenants")" "" "tenants/ empty"
eq "$(dmnames)" "" "no dm device left"
eq "$(ls -A "$IMG")" "" "no image left"
echo "$USERNS_MAX" >/proc/sys/user/max_user_namespaces

########################################################################
# Part 2: --tenancy pidns --reap

# container NAME: a pid namespace whose init makes loop/disk, dm/lin,
# thin/pool and thin/pool/vol through the tree and sleeps; its unshare's pid
# in CPID_NAME, its init's in INIT_NAME, its tenant in TEN_NAME.
cat >"$WORK/container.sh" <<'EOF'
M=$1
OUT=$2
put() { printf '%s\n' "$2" >"$OUT.value" && cat "$OUT.value" >"$1"; }
{
	mkdir "$M/loop/disk" && put "$M/loop/disk/size" 64M && put "$M/loop/disk/active" 1 &&
	mkdir "$M/dm/lin" && put "$M/dm/lin/table" "0 131072 linear loop/disk 0" && put "$M/dm/lin/active" 1 &&
	mkdir "$M/thin/pool" && put "$M/thin/pool/data_size" 64M && put "$M/thin/pool/active" 1 &&
	mkdir "$M/thin/pool/vol" && put "$M/thin/pool/vol/size" 32M && put "$M/thin/pool/vol/active" 1 &&
	echo made
	echo "pid $$"
	echo "dm $(ls "$M/dm" | grep -vx error | tr '\n' ' ')"
	echo "thin $(ls "$M/thin" | grep -vx error | tr '\n' ' ')"
	echo "tenants $(ls "$M/tenants" 2>&1 >/dev/null | grep -c 'No such file')"
} >"$OUT" 2>&1
exec sleep 1000
EOF
UNSHARE=(unshare --pid --fork --kill-child --mount-proc)
# A chroot may refuse the private /proc; the pid namespace is what counts.
"${UNSHARE[@]}" true 2>/dev/null || UNSHARE=(unshare --pid --fork --kill-child)
container() {
	local name=$1 out=$WORK/c.$1 i init=
	"${UNSHARE[@]}" bash "$WORK/container.sh" "$MNT" "$out" </dev/null 2>>"$out.err" &
	local pid=$!
	CONTAINERS+=("$pid")
	for i in $(seq 300); do
		grep -q '^tenants' "$out" 2>/dev/null && break
		sleep 0.1
	done
	init=$(pgrep -P "$pid" | head -1)
	printf -v "CPID_$name" %s "$pid"
	printf -v "INIT_$name" %s "$init"
	printf -v "TEN_$name" %s "pidns-$(stat -L -c %i "/proc/$init/ns/pid" 2>/dev/null)"
	grep -q '^made$' "$out"
}

# reaped TENANT: nothing of TENANT in the kernel or the image directory.
reaped() {
	! dmnames | tr ' ' '\n' | grep -q "^$1:" && ! ls "$IMG" | grep -q "^$1:" &&
		! losetup -nO BACK-FILE | grep -q "/$1:"
}
# wait_reaped TENANT START_NS: 0 once reaped, 1 if not within 5 s of START_NS.
wait_reaped() {
	while ! reaped "$1"; do
		[ $(($(date +%s%N) - $2)) -lt 5000000000 ] || return 1
		sleep 0.1
	done
}

t "pidns mode: start"
stop_daemon
check "start with --tenancy pidns --reap" start_daemon --tenancy pidns --reap
# The host (this shell, in the daemon's pid namespace) keeps an object of its own.
check "host: loop/keep" mkloop keep 16M
check "host: dm/keep" mkdm keep "0 32768 linear loop/keep 0"

t "pidns mode: two containers, same names"
for c in a b; do
	if container $c; then pass; else fail "container $c made no objects: $(cat "$WORK/c.$c" "$WORK/c.$c.err" 2>&1)"; fi
done
for c in a b; do
	eval "ten=\$TEN_$c"
	eq "$(sed -n 's/^pid //p' "$WORK/c.$c")" "1" "container $c: its script is its namespace's init"
	eq "$(sed -n 's/^dm //p' "$WORK/c.$c")" "lin pool pool-vol " "container $c: dm/ lists its own"
	eq "$(sed -n 's/^thin //p' "$WORK/c.$c")" "pool " "container $c: thin/ lists its own"
	eq "$(sed -n 's/^tenants //p' "$WORK/c.$c")" "1" "container $c: no tenants/"
	check "container $c: tenant $ten" test "$ten" != "pidns-"
	eq "$(lsd "$MNT/tenants/$ten/dm")" "lin pool pool-vol " "host: tenants/$ten/dm"
	for n in lin pool pool-vol; do
		check "kernel has $ten:$n" has_dm "$ten:$n"
	done
	check "image $ten:disk.img" test -f "$IMG/$ten:disk.img"
	eq "$(dmsetup table "$ten:pool-vol" | awk '{print $4}')" "$(dmdev "$ten:pool")" "$c's volume on $c's pool"
done
check "different tenants" test "$TEN_a" != "$TEN_b"
eq "$(lsd "$MNT/tenants")" "$(printf '%s\n' "$TEN_a" "$TEN_b" | sort | tr '\n' ' ')" "tenants/ lists both"
eq "$(lsd "$D")" "keep " "host dm/ lists its own only"

t "pidns mode: --reap removes a gone container's objects"
ta=$TEN_a
kill_ns=$(date +%s%N)
check "kill container a's init" kill -9 "$INIT_a"
wait "$CPID_a" 2>/dev/null
wait_reaped "$ta" "$kill_ns"
gone=$?
eq "$gone" "0" "a's devices, loops and images gone within 5 s of the kill"
echo "   container a's objects gone $((($(date +%s%N) - kill_ns) / 1000000)) ms after the kill" >&2
[ "$gone" = 0 ] || { dmnames >&2; ls "$IMG" >&2; losetup -a >&2; }
eq "$(dmnames | tr ' ' '\n' | grep -c "^$ta:")" "0" "dmsetup ls lists nothing of $ta"
eq "$(ls "$IMG" | grep -c "^$ta:")" "0" "no image of $ta"
check "tenants/$ta gone" test ! -e "$MNT/tenants/$ta/dm/lin"
eq "$(lsd "$MNT/tenants" | tr ' ' '\n' | grep -cx "$ta")" "0" "tenants/ no longer lists $ta"
for what in thin/pool/vol dm/lin thin/pool loop/disk; do
	check "log: removed $what" grep -qE "reap: tenant $ta is gone: removed ${what%%/*}/($ta:)?${what#*/}\$" "$WORK/daemon.log"
done
tb=$TEN_b
for n in lin pool pool-vol; do
	check "b's $n stays" has_dm "$tb:$n"
done
check "b's image stays" test -f "$IMG/$tb:disk.img"
eq "$(cat "$MNT/tenants/$tb/thin/pool/vol/active")" "1" "b's volume active"
eq "$(cat "$D/keep/active")" "1" "the host's dm/keep stays"
check "b's container still runs" kill -0 "$INIT_b"

t "pidns mode: container b gone too"
kill_ns=$(date +%s%N)
check "kill container b's init" kill -9 "$INIT_b"
wait "$CPID_b" 2>/dev/null
wait_reaped "$tb" "$kill_ns"
eq "$?" "0" "b's devices, loops and images gone within 5 s of the kill"
eq "$(lsd "$MNT/tenants")" "" "tenants/ empty"
eq "$(dmnames)" "keep " "only the host's dm/keep left"
check "host: rmdir dm/keep loop/keep" rmdir "$D/keep" "$L/keep"
CONTAINERS=()

t "teardown"
eq "$(dmsetup ls 2>&1)" "No devices found" "dmsetup ls"
eq "$(losetup -a)" "" "no loop device left"
eq "$(ls -A "$IMG")" "" "no image left"
[ "$FAILED" -eq 0 ] || { echo "--- daemon log (tail)" >&2; tail -n 60 "$WORK/daemon.log" >&2; }
finish
