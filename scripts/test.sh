#!/usr/bin/env bash
# Installs what the tests need, then runs every test in the workspace.
# This is the test command the README gives and CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest not found; installing it from crates.io"
  cargo install --locked cargo-nextest
fi
# Real MCP peers for the gateway's end-to-end tests: npm servers and the Python MCP SDK.
bash scripts/test-peers.sh
# Doc tests first (nextest does not run them), then everything else with nextest.
cargo test --workspace --doc
cargo nextest run --workspace --no-fail-fast
