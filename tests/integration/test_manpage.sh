#!/usr/bin/env bash
# The man page stsfs(8): built by meson from docs/stsfs.8.scd with scdoc, it
# renders with man(1) without warnings, it names every long option that
# `stsfs --help` prints, and `meson install` puts it into share/man/man8.
# No daemon, no devices; everything lives under $WORK.
source "$(dirname "$0")/lib.sh"

build=$(cd "$(dirname "$STSFS")" && pwd)
page=$build/docs/stsfs.8

t "tools"
if ! command -v scdoc >/dev/null; then
	fail "scdoc is not installed, so meson builds no man page: run scripts/deps.sh (apt-get install scdoc)"
	finish
	exit
fi
check "man is installed (scripts/deps.sh test: man-db)" bash -c "command -v man >/dev/null"
command -v man >/dev/null || { finish; exit; }

t "page built"
if [ ! -s "$page" ]; then
	# A build dir configured before scdoc was installed has no target for it yet.
	meson setup --reconfigure "$build" >"$WORK/reconfigure.log" 2>&1 && ninja -C "$build" >"$WORK/ninja.log" 2>&1
fi
check "$page exists (meson builds it when scdoc is found)" test -s "$page"
[ -s "$page" ] || { finish; exit; }
check "$page is troff from scdoc" grep -q '^\.TH "stsfs" "8"' "$page"

t "man -l renders without warnings"
warnings=$(MANWIDTH=80 man -l --warnings "$page" 2>&1 >/dev/null)
eq "$warnings" "" "man -l --warnings $page"
# LC_ALL=C: plain ASCII hyphens, so options can be searched for as typed.
text=$(LC_ALL=C MANWIDTH=80 man -l "$page" 2>/dev/null)
for section in NAME SYNOPSIS DESCRIPTION OPTIONS CONVENTIONS ERRORS FILES EXAMPLES "SEE ALSO"; do
	check "section $section" grep -qx "$section" <<<"$text"
done

t "every long option of --help is in the page"
opts=$("$STSFS" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u)
check "stsfs --help lists long options" test -n "$opts"
for opt in $opts; do
	check "$opt in the rendered page" grep -qE -- "(^|[^a-z-])$opt([^a-z-]|\$)" <<<"$text"
done
for opt in -f -d -s allow_other image_dir= log_level= fuse.stsfs; do
	check "$opt in the rendered page" grep -qF -- "$opt" <<<"$text"
done

t "meson install"
check "meson install --destdir" bash -c 'meson install -C "$1" --destdir "$2" >"$3" 2>&1 || { tail -20 "$3" >&2; exit 1; }' \
	_ "$build" "$WORK/dest" "$WORK/install.log"
installed=$(find "$WORK/dest" -path '*/share/man/man8/stsfs.8' | head -1)
check "share/man/man8/stsfs.8 installed" test -n "$installed"
[ -n "$installed" ] && check "installed page is the built one" cmp -s "$installed" "$page"
rm -rf "$WORK/dest"

finish
