#!/usr/bin/env bash
# dm/ on a kernel without device-mapper: the directory lists cleanly, inactive
# objects can be configured, activation fails with ENODEV and a reason.
. "$(dirname "$0")/lib.sh"

if dmsetup version >/dev/null 2>&1; then
	echo "$(basename "$0"): this kernel has device-mapper; skipped (see tests/vm/test_dm.sh)"
	exit 0
fi

start_daemon || exit 1
D=$MNT/dm
objs() { ls "$D" | grep -vx error; }

t "dm/ without device-mapper"
check "dm/ exists" test -d "$D"
eq "$(objs)" "" "dm/ lists nothing"
check "mkdir dm/a" mkdir "$D/a"
eq "$(objs)" "a" "dm/ lists the object"
eq "$(cat "$D/a/active")" "0" "inactive"
eq "$(cat "$D/a/table")" "" "no staged table"
check "stage a table" put "$D/a/table" "0 2048 zero"
eq "$(cat "$D/a/table")" "0 2048 zero" "staged table reads back"
put_fails EINVAL "$D/a/table" "0 x zero" "table line 1"
put_fails EINVAL "$D/a/table" "5 2048 zero" "table line 1: starts at sector 5, not 0"
put_fails EINVAL "$D/a/table" "0 2048 zero
4096 2048 zero" "table line 2: starts at sector 4096, not 2048 where line 1 ends"
# Which target types the kernel has cannot be told without device-mapper:
# any type stages, activation fails anyway.
check "any target type stages" bash -c "echo '0 2048 lineer' >'$D/a/table'"
eq "$(cat "$D/a/table")" "0 2048 lineer" "staged as written"
check "restage zero" put "$D/a/table" "0 2048 zero"
put_fails ENODEV "$D/a/active" 1 "device-mapper is not available"
eq "$(cat "$D/a/active")" "0" "still inactive"
eq "$(cat "$D/a/status")" "" "inactive status is empty"
eq "$(cat "$D/a/info")" "" "inactive info is empty"
eq "$(cat "$D/a/deps")" "" "inactive deps is empty"
put_fails ENODEV "$D/a/suspended" 1 "not active"
put_fails ENODEV "$D/a/message" "hello" "not active"
check "no data while inactive" test ! -e "$D/a/data"
check "uuid while inactive" put "$D/a/uuid" "STSFS-test-a"
eq "$(cat "$D/a/uuid")" "STSFS-test-a" "uuid reads back"
check "read_only while inactive" put "$D/a/read_only" yes
eq "$(cat "$D/a/read_only")" "1" "read_only reads back"
expect_err EINVAL mkdir "$D/-bad"
check "127-byte name" mkdir "$D/$(printf 'n%.0s' $(seq 127))"
expect_err EINVAL mkdir "$D/$(printf 'n%.0s' $(seq 128))"
check "mv renames" mv "$D/a" "$D/b"
eq "$(cat "$D/b/table")" "0 2048 zero" "renamed object keeps its table"
check "a is gone" test ! -e "$D/a"

t "restart keeps dm objects"
stop_daemon
start_daemon || exit 1
eq "$(cat "$D/b/table")" "0 2048 zero" "table survives restart"
eq "$(cat "$D/b/uuid")" "STSFS-test-a" "uuid survives restart"
eq "$(cat "$D/b/read_only")" "1" "read_only survives restart"
check "rmdir b" rmdir "$D/b"
check "rmdir long" rmdir "$D/$(printf 'n%.0s' $(seq 127))"
eq "$(objs)" "" "dm/ empty again"

t "thin/ without device-mapper: configuration works, activation says why not"
T=$MNT/thin
check "thin/ exists" test -d "$T"
check "mkdir thin/p" mkdir "$T/p"
eq "$(ls "$D")" "error
p" "the pool's dm object is listed in dm/"
put_fails EBUSY "$D/p/table" "0 2048 zero" "belongs to thin/p"
expect_err EBUSY rmdir "$D/p"
eq "$(cat "$T/p/block_size")" "65536" "default block size"
put_fails EINVAL "$T/p/block_size" 100K "multiple of 64K"
put_fails EINVAL "$T/p/features" "skip_block_zeroing bogus" "unknown feature 'bogus'"
check "features" put "$T/p/features" "error_if_no_space skip_block_zeroing error_if_no_space"
eq "$(cat "$T/p/features")" "error_if_no_space skip_block_zeroing" "features are kept once each"
check "data_size" put "$T/p/data_size" 16M
eq "$(cat "$T/p/metadata_size")" "$(thin_metadata_size -b 64k -s 16m -m 1000 -u b -n | awk '{ m = $1; if (m < 2097152) m = 2097152; print int((m + 4095) / 4096) * 4096 }')" \
	"metadata_size is thin_metadata_size's answer"
put_fails ENODEV "$T/p/active" 1 "device-mapper is not available"
check "mkdir a volume" mkdir "$T/p/v"
eq "$(cat "$T/p/v/thin_id")" "0" "lowest free thin id"
check "second volume" mkdir "$T/p/w"
eq "$(cat "$T/p/w/thin_id")" "1" "next free thin id"
put_fails EEXIST "$T/p/w/thin_id" 0 "thin/p/v's"
expect_err EEXIST mkdir "$T/p/status"
check "origin" put "$T/p/w/origin" v
put_fails EINVAL "$T/p/v/origin" w "its own origin"
put_fails ENODEV "$T/p/v/active" 1 "thin/p is not active"
check "mv renames a volume" mv "$T/p/v" "$T/p/x"
eq "$(cat "$T/p/w/origin")" "x" "its snapshot follows the rename"
check "dm/p-x follows" test -d "$D/p-x"
stop_daemon
start_daemon || exit 1
eq "$(ls "$T/p" | grep -E '^(w|x)$' | tr '\n' ' ')" "w x " "volumes survive a restart"
eq "$(cat "$T/p/data_size")" "16777216" "data_size survives a restart"
expect_err EBUSY rmdir "$T/p"
check "rmdir volumes" rmdir "$T/p/w" "$T/p/x"
check "rmdir pool" rmdir "$T/p"
eq "$(ls "$D")" "error" "its dm objects are gone"
finish
