#!/usr/bin/env bash
# Installs what is missing, builds, and mounts the tree at /sts in the
# foreground (Ctrl-C unmounts; active devices stay and are adopted next time).
# Extra arguments go to stsfs, e.g. --allow-backing /srv/images. stsfs makes
# the parent of /sts (/) a shared mount (--propagation shared), so that an
# unmount reaches containers binding it with rslave (docs/containers.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
scripts/build.sh
mkdir -p /sts
exec build/stsfs -f "$@" /sts
