#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages, only when
# missing), then checks formatting and lints and runs every test. CI runs this
# same script through .ci/run on a clean checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
# What the checkout holds now, edits in progress included: names and contents.
checkout_state() {
  git status --porcelain
  git diff --binary HEAD | sha256sum
  git ls-files --others --exclude-standard -z | xargs -0 -r sha256sum
}
before=$(checkout_state)

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
  [php]=php-cli                # tests/forums.rs: docs/forums.md's signing recipes, run for real
  [ruby]=ruby
  [go]=golang-go
  [node]=nodejs
  [python3]=python3
  [hb-shape]=libharfbuzz-bin   # tests/scripts.rs: HarfBuzz itself, the oracle for shaping
  [lintian]=lintian            # tests/package.rs: the .deb checked as Debian checks packages
  [dpkg-deb]=dpkg
  [promtool]=prometheus        # tests/package.rs: the alerts and their unit tests
)
missing=()
for cmd in "${!needs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needs[$cmd]}")
done
# Libraries and modules, by package: nokhwa's V4L2 bindings (the `device`
# feature) need libclang to build; OpenCV goes into a venv.
# tests/wordpress.rs: Debian's WordPress on PHP's own server, with a real MariaDB.
# tests/scripts.rs: the fonts Debian ships for CJK, Devanagari and colour emoji.
for pkg in libclang1-14 python3-venv wordpress mariadb-server php-mysql \
  fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji; do
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
# tests/package.rs: the Debian package is built with cargo-deb (a pinned
# release: later ones may refuse the dev profile the test packages from).
cargo deb --version 2>/dev/null | grep -q "^cargo-deb 3.8.0" || cargo install cargo-deb --version 3.8.0 --locked --quiet

# tests/readers.rs: OpenCV's cv2.VideoCapture, from PyPI (headless build).
if ! target/pyenv/bin/python3 -c "import cv2" 2>/dev/null; then
  echo "tests/run.sh: installing opencv-python-headless into target/pyenv"
  python3 -m venv target/pyenv
  target/pyenv/bin/pip install --quiet --disable-pip-version-check opencv-python-headless
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings

# The fuzz corpora are replayed as ordinary tests (tests/fuzz_corpus.rs);
# longer fuzzing has its own script: fuzz/run.sh.

# The default build (what `cargo run --release` makes) first: its own test
# file, compiled out under --all-features.
cargo test --test default_build
cargo test --workspace --all-features --lib --bins --tests

# No test or build step may rewrite a tracked file (a lock file, a golden
# image) or leave an untracked one: the checkout's status must be what it was
# before the run (edits the developer had in progress stay theirs).
after=$(checkout_state)
if [ "$after" != "$before" ]; then
  diff <(echo "$before") <(echo "$after") || true
  echo "tests/run.sh: the test run changed the checkout (above: < before, > after)"
  exit 1
fi
