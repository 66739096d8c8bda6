#!/usr/bin/env bash
# Installs the real MCP peers the warden-mcp end-to-end tests run against:
#   - MCP servers from npm and the official TypeScript SDK client (@modelcontextprotocol/sdk),
#     pinned in tests/peers/package-lock.json, into tests/peers/node_modules
#   - the official Python MCP SDK (pip `mcp`), whose stdio client drives the proxy in one test
# Idempotent: a second run with everything in place changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v node >/dev/null || { echo "error: node not found (Node 20 is needed for the MCP test peers)" >&2; exit 2; }
command -v npm >/dev/null || { echo "error: npm not found" >&2; exit 2; }

peers=tests/peers
if [ -d "$peers/node_modules/@modelcontextprotocol/server-filesystem" ] \
   && [ -d "$peers/node_modules/@modelcontextprotocol/server-everything" ] \
   && [ -f "$peers/node_modules/@modelcontextprotocol/sdk/dist/esm/client/index.js" ] \
   && [ "$peers/node_modules/.package-lock.json" -nt "$peers/package-lock.json" ]; then
  echo "npm test peers already installed"
else
  (cd "$peers" && npm ci --no-audit --no-fund)
fi

MCP_SDK_VERSION=1.26.0
if python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '$MCP_SDK_VERSION')" 2>/dev/null; then
  echo "python mcp $MCP_SDK_VERSION already installed"
else
  python3 -m pip install --quiet "mcp==$MCP_SDK_VERSION"
fi
