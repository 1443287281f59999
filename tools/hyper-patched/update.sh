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
# Fetched through cargo itself (a throwaway crate and `cargo vendor`), so it
# follows the user's cargo sources, mirrors and proxies.
mkdir -p "$tmp/fetch/src"
printf '[package]\nname = "fetch-hyper"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nhyper = "=%s"\n\n[workspace]\n' "$version" >"$tmp/fetch/Cargo.toml"
: >"$tmp/fetch/src/lib.rs"
(cd "$tmp/fetch" && cargo vendor --quiet --versioned-dirs "$tmp/vendor" >/dev/null)
mv "$tmp/vendor/hyper-$version" "$tmp/hyper-$version"
rm -rf "$here/hyper"
mv "$tmp/hyper-$version" "$here/hyper"
# Cargo ignores a dependency's lock file; the crates.io metadata is not ours to keep.
rm -f "$here/hyper/Cargo.lock" "$here/hyper/.cargo_vcs_info.json" "$here/hyper/.cargo-ok" "$here/hyper/.cargo-checksum.json"
(cd "$here/hyper" && patch -p1 --forward --no-backup-if-mismatch < "$here/head-buffer.patch")
echo "hyper $version vendored and patched in $here/hyper"
