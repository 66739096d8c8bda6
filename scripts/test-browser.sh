#!/usr/bin/env bash
# The dashboard end to end in a real headless browser (called by scripts/test.sh; runs alone
# too): Debian's `chromium` package driven by Playwright for Python against a real
# `warden serve` on loopback (tests/browser/). Playwright never downloads a browser here:
# the tests point `executable_path` at /usr/bin/chromium.
#   1. apt-get install chromium when it is missing (measured: 144 MB of packages, 48 s);
#   2. a venv at target/py/dashboard with tests/browser/requirements.txt (7 s with no pip
#      cache, 207 MB; rebuilt only when that file changes);
#   3. pytest, bounded by a timeout (10 s); screenshots land in target/dashboard-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export PIP_DISABLE_PIP_VERSION_CHECK=1
start=$SECONDS
say() { printf '== dashboard browser test: %s (%ss)\n' "$*" $((SECONDS - start)); }

if ! [ -x "$CHROMIUM" ]; then
  say "installing chromium (Debian package)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && timeout 900 apt-get install -y -qq chromium
  else
    sudo apt-get update -qq && timeout 900 sudo apt-get install -y -qq chromium
  fi
fi

VENV=$ROOT/target/py/dashboard
REQ=$ROOT/tests/browser/requirements.txt
stamp=$(sha256sum "$REQ" | cut -c1-16)
if ! [ -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.lock-stamp" 2>/dev/null)" != "$stamp" ]; then
  say "creating the venv target/py/dashboard"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  timeout 600 "$VENV/bin/pip" install -q -r "$REQ"
  echo "$stamp" >"$VENV/.lock-stamp"
fi

# The binary under test (already built by the workspace tests; a no-op then).
cargo build -q -p warden-cli --bin warden
export WARDEN_BIN=$ROOT/target/debug/warden
say "running tests/browser"
timeout 300 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/browser
say "done; screenshots in target/dashboard-screenshots/"
