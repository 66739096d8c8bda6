#!/usr/bin/env bash
# The Python package's tests (called by scripts/test.sh; runs alone too):
#   1. `pip install ./bindings/python` — the one documented install command — into two venvs:
#      `main` (eight frameworks) and `crewai` (CrewAI pins older openai/pydantic than the rest);
#   2. the pinned frameworks from bindings/python/tests/requirements/*.txt (installed with uv,
#      which downloads in parallel; pip would take minutes on a cold cache);
#   3. pytest: the core and attacker tests, and each adapter with its real framework.
# The venvs live under target/py (ignored by git, kept between runs) and the Rust build shares
# target/ with the workspace (CARGO_TARGET_DIR), so a second run rebuilds nothing. A venv is
# rebuilt when its lock file changes. WARDEN_REQUIRE_FRAMEWORKS=1 makes a missing framework a
# failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
VENVS=$ROOT/target/py
REQ=$ROOT/bindings/python/tests/requirements
export CARGO_TARGET_DIR=$ROOT/target
# The extension is built in the dev profile here, so it reuses the workspace's debug build of
# every shared crate (seconds instead of minutes); the benchmark (bench/run.sh) builds release.
# WARDEN_PY_PROFILE=release tests the release build instead.
export MATURIN_PEP517_ARGS="--profile ${WARDEN_PY_PROFILE:-dev}"
export UV_PYTHON_DOWNLOADS=never PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$VENVS"
start=$SECONDS
# The binding crate is its own workspace, so the root `cargo fmt --all` does not see it.
cargo fmt --manifest-path bindings/python/Cargo.toml -- --check
say() { printf '== %s (%ss)\n' "$*" $((SECONDS - start)); }

if ! [ -x "$VENVS/tools/bin/uv" ]; then
  say "installing uv into target/py/tools"
  "$PYTHON" -m venv "$VENVS/tools"
  "$VENVS/tools/bin/pip" install -q uv==0.13.8
fi
UV=$VENVS/tools/bin/uv

venv() { # name lockfile
  local dir=$VENVS/$1 lock=$2 stamp
  stamp=$(sha256sum "$lock" | cut -c1-16)
  if ! [ -x "$dir/bin/python" ] || [ "$(cat "$dir/.lock-stamp" 2>/dev/null)" != "$stamp" ]; then
    say "creating venv $1 from $(basename "$lock")"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    timeout 900 "$UV" pip install -q --python "$dir/bin/python" -r "$lock"
    echo "$stamp" >"$dir/.lock-stamp"
  fi
  say "pip install ./bindings/python into $1"
  timeout 1800 "$dir/bin/pip" install -q --force-reinstall --no-deps ./bindings/python
}
venv main "$REQ/main.txt"
venv crewai "$REQ/crewai.txt"

export WARDEN_REQUIRE_FRAMEWORKS=${WARDEN_REQUIRE_FRAMEWORKS:-1}
# The CLI, when built (scripts/test.sh builds it first), lets the tests compare its messages.
[ -x "$ROOT/target/debug/warden" ] && export WARDEN_BIN=${WARDEN_BIN:-$ROOT/target/debug/warden}
cd bindings/python
say "pytest (main venv: core, attacker tests, eight frameworks)"
timeout 900 "$VENVS/main/bin/python" -m pytest -q -p no:cacheprovider --ignore=tests/test_crewai.py "$@"
say "pytest (crewai venv)"
timeout 600 "$VENVS/crewai/bin/python" -m pytest -q -p no:cacheprovider tests/test_crewai.py "$@"
say "python tests done"
