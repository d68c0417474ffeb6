#!/usr/bin/env bash
# Installs the Debian 12 packages stsfs needs that are not installed yet.
#   scripts/deps.sh build   to build and run the daemon
#   scripts/deps.sh test    also everything the test suites use
set -euo pipefail

build_pkgs=(gcc pkg-config meson ninja-build libfuse3-dev fuse3 libdevmapper-dev libblkid-dev
	libjson-c-dev thin-provisioning-tools scdoc)
test_pkgs=(libcriterion-dev jq e2fsprogs fdisk util-linux dosfstools dmsetup
	qemu-system-x86 busybox-static cpio kmod zstd xz-utils strace clang libclang-rt-14-dev python3 man-db)
test_pkgs+=(dpkg-dev debhelper lintian scdoc) # scripts/package.sh, tests/integration/test_package.sh
test_pkgs+=(systemd) # systemd-analyze: tests/integration/test_unit.sh

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
