#!/usr/bin/env bash
# Builds the Debian package (debian/) out of tree and puts the .deb files in
# OUTDIR (default: ./dist).
#   scripts/package.sh [OUTDIR]
# Needs dpkg-dev, debhelper and the build dependencies of debian/control
# (scripts/deps.sh test installs them). Install the result with
#   apt install ./dist/stsfs_*.deb
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# dpkg-buildpackage writes its results into the parent of the source tree:
# build in a copy, so neither the tree nor its parent gets anything.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stsfs-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/stsfs"
# Tracked and untracked files that are not ignored (no build*/ directories),
# without earlier packages (dist/, obj-*/, debian's build leftovers); files
# deleted in the work tree are skipped.
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do
		case $f in
		dist/* | obj-*/* | debian/.debhelper/* | debian/stsfs/* | debian/tmp/* | debian/files | \
			debian/*.substvars | debian/*debhelper.log | debian/debhelper-build-stamp) continue ;;
		esac
		[ -e "$f" ] && printf '%s\0' "$f"
	done |
	tar --null -T - -cf -) | tar -xf - -C "$tmp/stsfs"

(cd "$tmp/stsfs" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1 || {
	tail -n 60 "$tmp/build.log" >&2
	echo "package: dpkg-buildpackage failed (log above)" >&2
	exit 1
}
shopt -s nullglob
debs=("$tmp"/*.deb)
[ ${#debs[@]} -gt 0 ] || { echo "package: no .deb was built" >&2; exit 1; }
mv "${debs[@]}" "$out"/
for d in "${debs[@]}"; do echo "$out/$(basename "$d")"; done
