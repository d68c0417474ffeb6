#!/usr/bin/env bash
# The Debian package: scripts/package.sh builds it out of tree; it holds the
# daemon, the docs and whatever `meson install` installs (man page, unit),
# its runtime dependencies are right, it unpacks into a scratch root and the
# daemon there runs, and lintian (if installed) finds no errors.
# No daemon, no devices; everything lives under $WORK.
source "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)

t "package builds"
start=$(date +%s)
check "scripts/package.sh" bash -c '"$1"/scripts/package.sh "$2" >"$3" 2>&1 || { cat "$3" >&2; exit 1; }' \
	_ "$root" "$WORK/dist" "$WORK/package.log"
echo "package: built in $(($(date +%s) - start)) s"
version=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$WORK/dist/stsfs_${version}_${arch}.deb
check "$deb exists" test -s "$deb"
[ -s "$deb" ] || { finish; exit; }

t "contents"
contents=$(dpkg-deb --contents "$deb" | awk '{ print $6 }' | sed 's|^\./||')
has() { grep -qxE "$1" <<<"$contents"; }
check "the daemon at usr/bin/stsfs" has 'usr/bin/stsfs'
check "README.md in usr/share/doc/stsfs" has 'usr/share/doc/stsfs/README\.md(\.gz)?'
for f in "$root"/docs/*.md; do
	n=$(basename "$f" .md)
	check "docs/$n.md in usr/share/doc/stsfs" has "usr/share/doc/stsfs/$n\.md(\.gz)?"
done
check "copyright" has 'usr/share/doc/stsfs/copyright'
# The man page and the unit are required as soon as the tree's meson installs them.
meson_files=$(cd "$root" && git ls-files --cached --others --exclude-standard '*meson.build')
installs() { (cd "$root" && grep -qs -- "$1" $meson_files); }
if installs 'stsfs\.8'; then
	check "man page usr/share/man/man8/stsfs.8.gz" has 'usr/share/man/man8/stsfs\.8\.gz'
else
	echo "package: meson installs no man page yet; not required"
fi
if installs 'stsfs\.service'; then
	check "unit stsfs.service" has '(usr/)?lib/systemd/system/stsfs\.service'
else
	echo "package: meson installs no systemd unit yet; not required"
fi
check "nothing under build or source paths" bash -c '! grep -qE "^(build|src|tests|obj-)" <<<"$1"' _ "$contents"

t "control fields"
depends=$(dpkg-deb -f "$deb" Depends)
contains "$depends" "fuse3" "Depends"
contains "$depends" "thin-provisioning-tools" "Depends"
contains "$depends" "libdevmapper" "Depends"
contains "$depends" "libfuse3" "Depends"
eq "$(dpkg-deb -f "$deb" Package)" "stsfs" "Package"
eq "$(dpkg-deb -f "$deb" Version)" "$version" "Version"

t "the unit is neither enabled nor started on install"
dpkg-deb -e "$deb" "$WORK/control"
postinst=$(cat "$WORK/control/postinst" 2>/dev/null)
# dh_installsystemd --no-start: no deb-systemd-invoke; --no-enable: enable
# only re-creates an admin's links on upgrade, guarded by debian-installed.
check "postinst starts no service" bash -c '! grep -q "deb-systemd-invoke" <<<"$1"' _ "$postinst"
check "postinst enables no service on a fresh install" bash -c \
	'! grep -q "deb-systemd-helper enable" <<<"$1" || grep -q "deb-systemd-helper debian-installed" <<<"$1"' _ "$postinst"

t "unpacks into a scratch root"
# dpkg-deb -x, not dpkg --root: the maintainer scripts (dh_installsystemd's
# preinst) would run chrooted into a root that has no shell.
sroot=$WORK/root
check "dpkg-deb -x" dpkg-deb -x "$deb" "$sroot"
check "stsfs is executable in the scratch root" test -x "$sroot/usr/bin/stsfs"
contains "$("$sroot/usr/bin/stsfs" --version 2>&1)" "stsfs ${version%%-*}" "stsfs --version"
check "every file owned by root" bash -c '! dpkg-deb --contents "$1" | awk "\$2 != \"root/root\"" | grep -q .' _ "$deb"

t "lintian"
if command -v lintian >/dev/null; then
	out=$(lintian --fail-on error "$deb" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -E '^[EW]:' | sed 's/^/package: lintian: /'
	eq "$rc" 0 "lintian --fail-on error exit status"
	eq "$(grep -c '^E:' <<<"$out")" 0 "lintian errors"
else
	echo "package: lintian not installed; skipped"
fi

finish
