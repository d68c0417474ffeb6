#!/usr/bin/env bash
# stsfs.service (systemd/stsfs.service.in, docs/systemd.md): meson installs
# it where systemd looks, systemd-analyze verify accepts it, its ExecStart
# mounts the tree, and its hardening keeps the mount on the host (no option
# that gives the service a mount namespace or a /dev of its own).
. "$(dirname "$0")/lib.sh"

BUILD=$(dirname "$STSFS")
UNIT=$BUILD/systemd/stsfs.service
if ! command -v systemd-analyze >/dev/null; then
	echo "test_unit.sh: systemd-analyze is missing (the systemd package)"
	exit 1
fi

t "the unit is built and installed"
check "built: $UNIT" test -f "$UNIT"
check "meson install" bash -c "meson install -C '$BUILD' --destdir '$WORK/dest' >'$WORK/install.log' 2>&1"
installed=$(find "$WORK/dest" -name stsfs.service)
check "installed into a systemd unit directory ($installed)" bash -c "echo '$installed' | grep -q '/lib/systemd/system/stsfs.service$'"
cmp -s "$UNIT" "$installed"
eq "$?" 0 "the installed unit is the built one"

t "systemd-analyze verify"
# As installed, but with this build's binary (verify wants it to exist).
sed "s#^ExecStart=[^ ]*/stsfs #ExecStart=$STSFS #" "$UNIT" >"$WORK/stsfs.service"
# --man=no: the man page of Documentation= is in the build, not installed.
out=$(systemd-analyze verify --man=no "$WORK/stsfs.service" 2>&1)
eq "$?" 0 "exit status ($out)"
eq "$(echo "$out" | grep -i 'stsfs.service' | grep -v '^$')" "" "no complaint about the unit"

t "no option that hides the mount or /dev from the host"
for opt in ProtectSystem PrivateTmp PrivateDevices PrivateMounts ProtectHome ProtectClock \
	ProtectKernelModules ProtectKernelTunables TemporaryFileSystem BindPaths MountFlags RootDirectory; do
	check "no $opt=" bash -c "! grep -q '^$opt=' '$UNIT'"
done
check "Type=notify" grep -qx "Type=notify" "$UNIT"
check "the fd store keeps the mount across restarts" grep -qx "FileDescriptorStoreMax=2" "$UNIT"
for opt in NoNewPrivileges LockPersonality RestrictRealtime RestrictSUIDSGID MemoryDenyWriteExecute RestrictNamespaces; do
	check "$opt=yes" grep -qx "$opt=yes" "$UNIT"
done
for mod in loop dm_mod fuse; do
	check "modprobe@$mod before the start" bash -c "grep -q '^Wants=.*modprobe@$mod.service' '$UNIT' && grep -q '^After=.*modprobe@$mod.service' '$UNIT'"
done

t "docs/systemd.md shows the unit as installed"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
while IFS= read -r line; do
	[ -n "$line" ] || continue
	check "docs/systemd.md: $line" grep -qxF -- "$line" "$SRC/docs/systemd.md"
done <"$SRC/systemd/stsfs.service.in"

t "its ExecStart mounts the tree"
cmdline=$(sed -n 's/^ExecStart=[^ ]* //p' "$UNIT")
eq "$cmdline" "-f --state-dir /var/lib/stsfs --image-dir /var/lib/stsfs/images /sts" "the command line"
# The same options, on this run's directories.
"$STSFS" -f --state-dir "$STATE" --image-dir "$IMG" "$MNT" 2>>"$WORK/daemon.log" &
DAEMON_PID=$!
check "mounted" wait_mounted
check "a loop object" mkdir "$MNT/loop/u"
check "rmdir" rmdir "$MNT/loop/u"
finish
