#!/usr/bin/env bash
# Re-vendors rustls with framecast's patch (see docs/https.md, "What a TLS
# viewer costs"): `tools/rustls-patched/update.sh 0.23.46`, then check
# Cargo.lock names no registry for rustls and run the tests (tests/memory.rs
# checks the patch is the one built). The patch gives the received-record
# buffer's 4 KiB, and the handshake deframer's 640 bytes, back whenever they
# are empty, instead of keeping them for the connection's life.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../vendor-patched.sh" rustls "${1:?usage: update.sh RUSTLS_VERSION}" "$here" "$here/idle-buffers.patch"
