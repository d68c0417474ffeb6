#!/usr/bin/env bash
# Configures (once) and builds into build/. Under CI (CI=true) warnings are
# errors, so the build stays free of them.
set -euo pipefail
cd "$(dirname "$0")/.."
werror=()
[ "${CI:-}" = true ] && werror=(-Dwerror=true)
[ -f build/build.ninja ] || meson setup build "${werror[@]}" >/dev/null
ninja -C build >/dev/null
