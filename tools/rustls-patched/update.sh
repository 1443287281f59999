#!/usr/bin/env bash
# Re-vendors rustls with framecast's patch (docs/https.md, "What a TLS viewer
# costs"): the received-record buffer (4 KiB), the handshake deframer's spans
# (640 bytes) and the send and receive queues are given back whenever they
# are empty, instead of kept for the connection's life; and the 64 KiB that
# a large handshake message may fill is allowed only during the handshake,
# so a client cannot pin it on a held connection. For a new version V:
#   tools/rustls-patched/update.sh V && cargo update -p rustls --precise V
# then run tests/memory.rs (it checks Cargo.lock names no registry for rustls
# and every line of the patch is in) and commit Cargo.lock. A patch that no
# longer applies stops the script with the tree unpatched (and `.rej` files):
# port idle-buffers.patch by hand before building.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../vendor-patched.sh" rustls "${1:?usage: update.sh RUSTLS_VERSION}" "$here" "$here/idle-buffers.patch"
