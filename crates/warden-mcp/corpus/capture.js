#!/usr/bin/env node
// Re-capture a benign corpus entry from a real stdio MCP server: prints its tools/list
// result (following pagination) as the corpus file format.
//   node crates/warden-mcp/corpus/capture.js SOURCE_URL -- node tests/peers/node_modules/.bin/mcp-server-memory
'use strict';
const { spawn } = require('child_process');
const args = process.argv.slice(2);
const source = args[0];
const [cmd, ...rest] = args.slice(args.indexOf('--') + 1);
const p = spawn(cmd, rest, { stdio: ['pipe', 'pipe', 'ignore'] });
const send = (m) => p.stdin.write(JSON.stringify(m) + '\n');
let buf = '';
const tools = [];
p.stdout.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const m = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    if (m.id === 1) {
      send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      send({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
    } else if (m.id >= 2) {
      tools.push(...m.result.tools);
      if (m.result.nextCursor) send({ jsonrpc: '2.0', id: m.id + 1, method: 'tools/list', params: { cursor: m.result.nextCursor } });
      else {
        console.log(JSON.stringify({ source, captured: `tools/list of \`${[cmd, ...rest].join(' ')}\` over stdio`, tools }, null, 2));
        p.kill();
      }
    }
  }
});
send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'corpus-capture', version: '0' } } });
