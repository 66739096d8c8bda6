// The official TypeScript SDK client (@modelcontextprotocol/sdk, pinned in
// tests/peers/package.json) talking to a server through `warden mcp proxy`: the client the
// red team fooled with answers whose id was spelled `1.0` or `"1"` (it matches answers with
// `Number(id)`).
//
// usage: node ts_sdk_client.mjs stdio WARDEN POLICY SERVER_CMD...
//        node ts_sdk_client.mjs direct SERVER_CMD...   (no proxy: what the client takes alone)
//        node ts_sdk_client.mjs http URL
// Lists the tools and calls `add` with a = 666 (the hostile server's injected result) and
// `structured`; prints one JSON line with what the client saw. Every request has a bounded
// timeout, so a dropped answer is an error, not a hang.
const sdk = new URL("../../../../tests/peers/node_modules/@modelcontextprotocol/sdk/dist/esm/", import.meta.url);
const { Client } = await import(new URL("client/index.js", sdk));

const [kind, ...rest] = process.argv.slice(2);
let transport;
if (kind === "stdio") {
  const { StdioClientTransport } = await import(new URL("client/stdio.js", sdk));
  const [warden, policy, ...server] = rest;
  transport = new StdioClientTransport({
    command: warden,
    args: ["mcp", "proxy", "--policy", policy, "--", ...server],
    env: { ...process.env },
    stderr: "inherit",
  });
} else if (kind === "direct") {
  const { StdioClientTransport } = await import(new URL("client/stdio.js", sdk));
  transport = new StdioClientTransport({ command: rest[0], args: rest.slice(1), env: { ...process.env }, stderr: "inherit" });
} else {
  const { StreamableHTTPClientTransport } = await import(new URL("client/streamableHttp.js", sdk));
  transport = new StreamableHTTPClientTransport(new URL(rest[0]));
}

const client = new Client({ name: "warden-ts-sdk-test", version: "0" });
const opts = { timeout: 10000 };
const out = {};
const attempt = async (key, f) => {
  try {
    out[key] = await f();
  } catch (e) {
    out[key] = { error: String(e && e.message ? e.message : e) };
  }
};
await client.connect(transport, opts);
await attempt("tools", async () => (await client.listTools(undefined, opts)).tools.map((t) => t.name));
await attempt("add", async () => await client.callTool({ name: "add", arguments: { a: 666, b: 1 } }, undefined, opts));
await attempt("structured", async () => await client.callTool({ name: "structured", arguments: {} }, undefined, opts));
await client.close();
console.log(JSON.stringify(out));
