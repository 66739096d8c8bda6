#!/usr/bin/env bash
# Builds every fuzz target in fuzz/ and runs each for a short smoke time from its seed corpus
# (FUZZ_SECONDS each, default 15). The long runs recorded in docs/security.md are the same
# command with a larger -max_total_time. No nightly toolchain: libFuzzer without sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-15}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz not found; installing it from crates.io"
  cargo install --locked cargo-fuzz
fi
cd fuzz
cargo fuzz build --sanitizer none
for target in $(cargo fuzz list); do
  echo "== fuzz $target (${seconds}s)"
  # A fresh corpus directory per run, seeded from the committed seeds only.
  work=$(mktemp -d)
  cp corpus/"$target"/seed-* "$work"/ 2>/dev/null || true
  log="$work/log"
  if ! cargo fuzz run "$target" --sanitizer none "$work" -- -max_total_time="$seconds" >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $target failed (the input that crashed it is under fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  grep -E "^Done" "$log" || true
  rm -rf "$work"
done
