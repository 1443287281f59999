#!/usr/bin/env bash
# Vendors one crate from the registry into DIR/CRATE and applies PATCH:
# `tools/vendor-patched.sh CRATE VERSION DIR PATCH`. Used by each
# tools/*-patched/update.sh; see those for why each patch exists.
set -euo pipefail
crate="${1:?usage: vendor-patched.sh CRATE VERSION DIR PATCH}"
version="${2:?version}"
dir="${3:?dir}"
patch_file="${4:?patch}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Fetched through cargo itself (a throwaway crate and `cargo vendor`), so it
# follows the user's cargo sources, mirrors and proxies.
mkdir -p "$tmp/fetch/src"
printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n%s = "=%s"\n\n[workspace]\n' \
  "$crate" "$crate" "$version" >"$tmp/fetch/Cargo.toml"
: >"$tmp/fetch/src/lib.rs"
(cd "$tmp/fetch" && cargo vendor --quiet --versioned-dirs "$tmp/vendor" >/dev/null)
rm -rf "${dir:?}/$crate"
mv "$tmp/vendor/$crate-$version" "$dir/$crate"
# Cargo ignores a dependency's lock file; the crates.io metadata is not ours to keep.
rm -f "$dir/$crate/Cargo.lock" "$dir/$crate/.cargo_vcs_info.json" "$dir/$crate/.cargo-ok" "$dir/$crate/.cargo-checksum.json"
(cd "$dir/$crate" && patch -p1 --forward --no-backup-if-mismatch <"$patch_file")
echo "$crate $version vendored and patched in $dir/$crate"
