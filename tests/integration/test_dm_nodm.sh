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
finish
