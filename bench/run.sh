#!/usr/bin/env bash
# The side-by-side benchmark suite: one command, one run, one table.
#
#   bash bench/run.sh            # from the repository root of a fresh clone
#
# Measures, on the brief's policy and the same two actions (bench/actions.jsonl: a GET to
# api.github.com, allowed; execute_code, denied):
#   1. Warden in process            `warden bench` (release build), 1 and 2 threads
#   2. Warden over HTTP             `warden serve` + wrk (keep-alive, Lua POSTs) over loopback,
#                                   without and with the --db audit log
#   3. the reference toolkit        agent-governance-toolkit-core's PolicyEvaluator (Python)
#      and Warden from Python       `warden.Warden.decide` (pip install ./bindings/python), same venv
#   4. cedar-policy and regorus raw bench/raw, on tests/conformance/brief.{cedar,rego}
# and writes the table into BENCHMARKS.md (between the bench/run.sh markers). Only 127.0.0.1 is ever targeted; every step is
# bounded by `timeout`. The measuring takes about 1 minute; a cold release build adds 6-7 minutes
# on 2 cores, the Python installs about 1 minute (the Python package reuses the release build).
#
# Environment: WARDEN=/path/to/warden skips building Warden; RAW=/path/to/warden-bench-raw
# skips building bench/raw; DURATION=seconds per wrk run (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# The command as run, overrides included, for the report.
COMMAND="$( (env | grep -E '^(WARDEN|RAW|DURATION|REF_VERSION)=' || true) | sort | tr '\n' ' ')bash bench/run.sh"
OUT=$ROOT/BENCHMARKS.md
WORK=$(mktemp -d)
DURATION=${DURATION:-10}
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*" >&2; }

# --- install what is missing ---------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  say "installing wrk"
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq wrk >/dev/null
  else
    echo "wrk is missing and cannot be installed here (need root and apt-get)" >&2
  fi
fi
REF_PKG=agent-governance-toolkit-core
REF_VERSION=${REF_VERSION:-5.0.0}   # pinned so reruns compare like with like
REF_STATUS=missing
VENV=$ROOT/bench/.venv
say "installing $REF_PKG into bench/.venv"
if [ -x "$VENV/bin/python" ] || timeout 120 python3 -m venv "$VENV"; then
  if timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check "$REF_PKG==$REF_VERSION" >"$WORK/pip.log" 2>&1; then
    REF_STATUS=ok
  else
    echo "could not install $REF_PKG (see below); its row will say so" >&2
    tail -5 "$WORK/pip.log" >&2
  fi
fi

# Warden's Python package into the same venv (a release build sharing target/ with the CLI's).
PY_STATUS=missing
if [ -x "$VENV/bin/python" ]; then
  say "installing the warden Python package into bench/.venv (pip install ./bindings/python)"
  if CARGO_TARGET_DIR=$ROOT/target timeout 1800 "$VENV/bin/pip" install -q --disable-pip-version-check \
      --force-reinstall --no-deps ./bindings/python >"$WORK/pip-warden.log" 2>&1; then
    PY_STATUS=ok
  else
    echo "could not install the warden Python package (see below); its row will say so" >&2
    tail -5 "$WORK/pip-warden.log" >&2
  fi
fi

# --- build ----------------------------------------------------------------------------------
if [ -z "${WARDEN:-}" ]; then
  say "building warden (release)"
  timeout 1200 cargo build -q --release -p warden-cli
  WARDEN=$ROOT/target/release/warden
fi
if [ -z "${RAW:-}" ]; then
  say "building bench/raw (release)"
  # The workspace target directory, so that a second run reuses this build.
  CARGO_TARGET_DIR=$ROOT/target timeout 1200 cargo build -q --release --manifest-path bench/raw/Cargo.toml
  RAW=$ROOT/target/release/warden-bench-raw
fi

POLICY=examples/brief.yaml
ACTIONS=bench/actions.jsonl

# --- 1. in process ---------------------------------------------------------------------------
say "Warden in process"
timeout 120 "$WARDEN" bench -p $POLICY --input $ACTIONS --iterations 2000000 --threads 1 --json >"$WORK/inproc1.json"
timeout 120 "$WARDEN" bench -p $POLICY --input $ACTIONS --iterations 2000000 --threads 2 --json >"$WORK/inproc2.json"
cat "$WORK/inproc1.json" "$WORK/inproc2.json" >&2

# --- 2. over HTTP ----------------------------------------------------------------------------
# One server thread and one wrk thread: each gets a core of the two, instead of three
# threads fighting over two cores (which only adds scheduling delay to the tail).
http_run() { # name, extra serve args...
  local name=$1; shift
  "$WARDEN" serve -p $POLICY --listen 127.0.0.1:0 --threads 1 "$@" >"$WORK/serve.out" 2>"$WORK/serve.err" &
  SERVER_PID=$!
  local addr=
  for _ in $(seq 1 200); do
    addr=$(sed -n 's/^listening on //p' "$WORK/serve.out")
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || { cat "$WORK/serve.err" >&2; echo "warden serve did not start" >&2; exit 1; }
  case "$addr" in http://127.0.0.1:*) ;; *) echo "refusing to benchmark $addr" >&2; exit 1 ;; esac
  # Sanity: the server gives the brief's answers before it is timed.
  python3 - "$addr" <<'PY'
import json, sys, urllib.request
addr = sys.argv[1]
for line, want in zip(open("bench/actions.jsonl"), ["allow", "deny"]):
    req = urllib.request.Request(addr + "/v1/decide", data=line.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    got = json.load(urllib.request.urlopen(req, timeout=10))["verdict"]
    assert got == want, f"{line.strip()} -> {got}, expected {want}"
PY
  timeout $((DURATION + 30)) wrk -t1 -c8 -d2s -s bench/decide.lua "$addr/v1/decide" >/dev/null   # warm-up
  # The load average says how busy the (shared) machine was: other processes lengthen the tail.
  cut -d' ' -f1-3 /proc/loadavg >"$WORK/$name.load"
  timeout $((DURATION + 30)) wrk -t1 -c8 -d"${DURATION}s" --latency -s bench/decide.lua "$addr/v1/decide" >"$WORK/$name.wrk"
  cat "$WORK/$name.wrk" >&2
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
}
if command -v wrk >/dev/null; then
  say "Warden over HTTP"
  http_run http
  say "Warden over HTTP with the audit log (--db)"
  http_run http-db --db "$WORK/warden.db"
fi

# --- 3. the reference toolkit ---------------------------------------------------------------
if [ "$REF_STATUS" = ok ]; then
  say "reference toolkit ($REF_PKG)"
  timeout 300 "$VENV/bin/python" -W ignore bench/reference.py 50000 >"$WORK/reference.json"
  cat "$WORK/reference.json" >&2
  "$VENV/bin/pip" show "$REF_PKG" 2>/dev/null | sed -n 's/^Version: //p' >"$WORK/reference.version"
fi
if [ "$PY_STATUS" = ok ]; then
  say "Warden from Python"
  timeout 300 "$VENV/bin/python" bench/python.py 500000 >"$WORK/python.json"
  cat "$WORK/python.json" >&2
fi

# --- 4. raw engines --------------------------------------------------------------------------
say "cedar-policy and regorus, raw"
timeout 300 "$RAW" tests/conformance 1000000 >"$WORK/raw.json"
cat "$WORK/raw.json" >&2

# --- the table -------------------------------------------------------------------------------
say "writing $OUT"
python3 bench/report.py "$WORK" "$WARDEN" "$REF_STATUS" "$DURATION" "$COMMAND" >"$WORK/suite.md"
# Replace the section between the suite markers in BENCHMARKS.md, keeping the rest.
python3 - "$OUT" "$WORK/suite.md" <<'PY'
import sys
path, section = sys.argv[1], open(sys.argv[2]).read()
begin, end = "<!-- bench/run.sh begin -->", "<!-- bench/run.sh end -->"
text = open(path).read()
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    text = head + begin + "\n" + section + end + tail
else:
    text = text.rstrip("\n") + "\n\n" + begin + "\n" + section + end + "\n"
open(path, "w").write(text)
PY
cat "$WORK/suite.md"
