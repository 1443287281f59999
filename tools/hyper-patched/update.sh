#!/usr/bin/env bash
# Re-vendors hyper with framecast's one-line patch (see docs/performance.md,
# "Memory per viewer"): `tools/hyper-patched/update.sh 1.12.0`, then bump
# the version in Cargo.toml's [patch.crates-io] comment and run the tests.
# The patch starts the HTTP/1.1 head write buffer empty instead of at 8 KiB.
set -euo pipefail
version="${1:?usage: update.sh HYPER_VERSION}"
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "https://static.crates.io/crates/hyper/hyper-$version.crate" -o "$tmp/hyper.crate"
tar -xzf "$tmp/hyper.crate" -C "$tmp"
rm -rf "$here/hyper"
mv "$tmp/hyper-$version" "$here/hyper"
# Cargo ignores a dependency's lock file; the crates.io metadata is not ours to keep.
rm -f "$here/hyper/Cargo.lock" "$here/hyper/.cargo_vcs_info.json" "$here/hyper/.cargo-ok"
(cd "$here/hyper" && patch -p1 --forward --no-backup-if-mismatch < "$here/head-buffer.patch")
echo "hyper $version vendored and patched in $here/hyper"
