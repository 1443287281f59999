#!/usr/bin/env bash
# Re-vendors hyper with framecast's patch (docs/performance.md, "The hyper
# patch"): the HTTP/1.1 head write buffer starts empty instead of at 8 KiB,
# the read buffer is given back while a read finds nothing, and no header map
# is kept for a next request. For a new version V:
#   tools/hyper-patched/update.sh V && cargo update -p hyper --precise V
# then fix Cargo.toml's comment, run tests/memory.rs and commit Cargo.lock.
# A patch that no longer applies stops the script with the tree unpatched
# (and `.rej` files): port idle-buffers.patch by hand before building.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../vendor-patched.sh" hyper "${1:?usage: update.sh HYPER_VERSION}" "$here" "$here/idle-buffers.patch"
