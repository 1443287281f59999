#!/usr/bin/env bash
# Re-vendors hyper with framecast's one-line patch (see docs/performance.md,
# "Memory per viewer"): `tools/hyper-patched/update.sh 1.12.0`, then bump
# the version in Cargo.toml's [patch.crates-io] comment and run the tests.
# The patch starts the HTTP/1.1 head write buffer empty instead of at 8 KiB.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../vendor-patched.sh" hyper "${1:?usage: update.sh HYPER_VERSION}" "$here" "$here/idle-buffers.patch"
