#!/usr/bin/env bash
# Longer fuzzing, apart from the test command: every target for
# FUZZ_SECONDS (default 300) each, starting from its corpus. The test command
# replays the corpora as ordinary tests (tests/fuzz_corpus.rs); run this
# before a release or after touching a parser. New inputs that raise coverage
# land in a temp dir; copy the interesting ones into fuzz/corpus/TARGET.
# cargo-fuzz's -Z flags need RUSTC_BOOTSTRAP on a stable toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
targets=("$@")
((${#targets[@]})) || targets=(multipart config template badge_update request)
for target in "${targets[@]}"; do
  corpus=$(mktemp -d)
  log=$(mktemp)
  if RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" "fuzz/corpus/$target" -- -max_total_time="${FUZZ_SECONDS:-300}" >"$log" 2>&1; then
    echo "fuzz $target: $(grep -E '^Done' "$log" | tail -1); new inputs in $corpus"
  else
    tail -40 "$log"
    echo "fuzz $target: FAILED (crash input under fuzz/artifacts/$target)"
    exit 1
  fi
  rm -f "$log"
done
