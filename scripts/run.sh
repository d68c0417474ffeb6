#!/usr/bin/env bash
# Installs what is missing, builds, and mounts the tree at /sts in the
# foreground (Ctrl-C unmounts; active devices stay and are adopted next time).
# Extra arguments go to stsfs, e.g. --allow-backing /srv/images.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
scripts/build.sh
mkdir -p /sts
exec build/stsfs -f "$@" /sts
