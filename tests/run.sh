#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages, only when
# missing), then checks formatting and lints and runs every test. CI runs this
# same script through .ci/run on a clean checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package that provides it
declare -A needs=(
  [chromium]=chromium          # tests/browser.rs: a real browser
  [chromedriver]=chromium-driver
  [nft]=nftables               # tests/vanish.rs: drop a viewer's packets
  [ip]=iproute2                #   inside a private network namespace
  [unshare]=util-linux
  [nginx]=nginx                # tests/nginx.rs: the documented deploy/nginx.conf, for real
  [ffmpeg]=ffmpeg              # tests/readers.rs: ffmpeg reads camera streams
  [sqlite3]=sqlite3            # tests/database.rs: the database file, read with the sqlite3 tool
  [redis-server]=redis-server  # tests/cluster.rs: a real Redis for cluster mode
  [redis-cli]=redis-tools
  [curl]=curl                  # tests/https.rs: ALPN and h2c as curl negotiates them
  [pebble]=pebble              # tests/acme.rs: a real ACME CA on loopback
  [prometheus]=prometheus      # tests/polled.rs: a badge polling a real Prometheus
  [systemd-analyze]=systemd    # tests/systemd.rs: deploy/framecast.service verifies
  [firefox-esr]=firefox-esr    # tests/engines.rs: Firefox and WebKit, not only Chromium
  [WebKitWebDriver]=webkit2gtk-driver
  [xvfb-run]=xvfb              #   (WebKit's MiniBrowser needs a display)
  [xauth]=xauth                #   (xvfb-run needs it; only recommended by xvfb)
)
missing=()
for cmd in "${!needs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needs[$cmd]}")
done
# Libraries and modules, by package: nokhwa's V4L2 bindings (the `device`
# feature) need libclang to build; OpenCV goes into a venv.
for pkg in libclang1-14 python3-venv; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "tests/run.sh: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tests/engines.rs: Firefox's WebDriver is not in Debian; crates.io has it.
command -v geckodriver >/dev/null 2>&1 || cargo install geckodriver --locked --quiet

# tests/readers.rs: OpenCV's cv2.VideoCapture, from PyPI (headless build).
if ! target/pyenv/bin/python3 -c "import cv2" 2>/dev/null; then
  echo "tests/run.sh: installing opencv-python-headless into target/pyenv"
  python3 -m venv target/pyenv
  target/pyenv/bin/pip install --quiet --disable-pip-version-check opencv-python-headless
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings

# Fuzzing: a short bounded run of every target (longer runs and their figures:
# README). cargo-fuzz's -Z flags need RUSTC_BOOTSTRAP on a stable toolchain.
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
for target in multipart config template badge_update request; do
  corpus=$(mktemp -d)
  log=$(mktemp)
  if RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" "fuzz/corpus/$target" -- -max_total_time="${FUZZ_SECONDS:-15}" >"$log" 2>&1; then
    echo "fuzz $target: $(grep -E '^Done' "$log" | tail -1)"
  else
    tail -40 "$log"
    echo "fuzz $target: FAILED (crash input under fuzz/artifacts/$target)"
    exit 1
  fi
  rm -rf "$corpus" "$log"
done

cargo test --workspace --all-features --lib --bins --tests

# The checkout must be as clean as it was: no test or build step may rewrite
# a tracked file (a lock file, a golden image) or leave an untracked one.
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
  git status --porcelain
  echo "tests/run.sh: the test run changed the checkout (above)"
  exit 1
fi
