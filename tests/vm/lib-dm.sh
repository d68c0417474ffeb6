# Shared by the guest suites for dm/ (source after ../integration/lib.sh):
# refuses to run without device-mapper, starts the daemon, and gives the
# helpers every suite builds devices with.

if ! dmsetup version >/dev/null 2>&1; then
	echo "$(basename "$0"): no device-mapper in this kernel; run it in the VM"
	exit 1
fi

t() { CURRENT=$*; echo "== [${SECONDS}s] $*" >&2; }
start_daemon || exit 1
L=$MNT/loop
D=$MNT/dm

# Through cat, which reports an errno returned by close(2): a table is
# checked per write but loaded at close. bash's builtins ignore close errors.
put() { printf '%s\n' "$2" >"$WORK/value"; cat "$WORK/value" >"$1"; }

mkloop() { # mkloop NAME SIZE
	mkdir "$L/$1" && put "$L/$1/size" "$2" && put "$L/$1/active" 1
}

mkdm() { # mkdm NAME TABLE
	mkdir "$D/$1" && put "$D/$1/table" "$2" && put "$D/$1/active" 1
}
