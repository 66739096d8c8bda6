// A Streamable HTTP MCP server with the fixtures the MCP conformance suite's server scenarios
// call (`test_simple_text`, `test_sampling`, `test://static-text`, `test_simple_prompt`…),
// written for Warden from the requirements each scenario states, on the official TypeScript
// SDK that tests/peers already installs (a dependency of server-everything). Used by
// scripts/mcp-conformance.sh to run the whole suite directly and through the HTTP proxy.
//
// usage: PORT=3000 node conformance_server.mjs   (listens on 127.0.0.1:$PORT/mcp)

import { createServer as createHttpServer } from "node:http";
import { randomUUID } from "node:crypto";

const sdk = new URL("../../../../tests/peers/node_modules/@modelcontextprotocol/sdk/dist/esm/", import.meta.url);
const { Server } = await import(new URL("server/index.js", sdk));
const { StreamableHTTPServerTransport } = await import(new URL("server/streamableHttp.js", sdk));
const t = await import(new URL("types.js", sdk));

// 1x1 red PNG and a tiny silent WAV.
const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const text = (s) => ({ content: [{ type: "text", text: s }] });
const noArgs = { type: "object", properties: {} };

const tools = [
  { name: "test_simple_text", inputSchema: noArgs },
  { name: "test_image_content", inputSchema: noArgs },
  { name: "test_audio_content", inputSchema: noArgs },
  { name: "test_embedded_resource", inputSchema: noArgs },
  { name: "test_multiple_content_types", inputSchema: noArgs },
  { name: "test_tool_with_logging", inputSchema: noArgs },
  { name: "test_tool_with_progress", inputSchema: noArgs },
  { name: "test_error_handling", inputSchema: noArgs },
  {
    name: "test_sampling",
    inputSchema: { type: "object", properties: { prompt: { type: "string" } }, required: ["prompt"] },
  },
  {
    name: "test_elicitation",
    inputSchema: { type: "object", properties: { message: { type: "string" } }, required: ["message"] },
  },
  { name: "test_elicitation_sep1034_defaults", inputSchema: noArgs },
  { name: "test_elicitation_sep1330_enums", inputSchema: noArgs },
].map((x) => ({ description: `Conformance fixture ${x.name}.`, ...x }));

function makeServer() {
  const server = new Server(
    { name: "warden-conformance-fixture", version: "1.0.0" },
    {
      capabilities: {
        tools: {},
        prompts: {},
        resources: { subscribe: true },
        logging: {},
        completions: {},
      },
    },
  );
  const elicit = (message, properties, required) =>
    server.elicitInput({ message, requestedSchema: { type: "object", properties, ...(required ? { required } : {}) } });

  server.setRequestHandler(t.ListToolsRequestSchema, async () => ({ tools }));
  server.setRequestHandler(t.CallToolRequestSchema, async (req, extra) => {
    const args = req.params.arguments ?? {};
    switch (req.params.name) {
      case "test_simple_text":
        return text("This is a simple text response for testing.");
      case "test_image_content":
        return { content: [{ type: "image", data: PNG, mimeType: "image/png" }] };
      case "test_audio_content":
        return { content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }] };
      case "test_embedded_resource":
        return {
          content: [
            {
              type: "resource",
              resource: { uri: "test://embedded-resource", mimeType: "text/plain", text: "This is an embedded resource content." },
            },
          ],
        };
      case "test_multiple_content_types":
        return {
          content: [
            { type: "text", text: "Multiple content types test:" },
            { type: "image", data: PNG, mimeType: "image/png" },
            {
              type: "resource",
              resource: { uri: "test://mixed-content-resource", mimeType: "application/json", text: '{"test":"data","value":123}' },
            },
          ],
        };
      case "test_tool_with_logging":
        for (const [i, msg] of ["Tool execution started", "Tool processing data", "Tool execution completed"].entries()) {
          if (i) await sleep(50);
          await extra.sendNotification({ method: "notifications/message", params: { level: "info", data: msg } });
        }
        return text("Logging tool finished.");
      case "test_tool_with_progress": {
        const token = req.params._meta?.progressToken;
        for (const [i, progress] of [0, 50, 100].entries()) {
          if (i) await sleep(50);
          if (token !== undefined)
            await extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress, total: 100 } });
        }
        return text("Progress tool finished.");
      }
      case "test_error_handling":
        return { isError: true, content: [{ type: "text", text: "This tool intentionally returns an error for testing" }] };
      case "test_sampling": {
        const r = await server.createMessage({
          messages: [{ role: "user", content: { type: "text", text: String(args.prompt ?? "") } }],
          maxTokens: 100,
        });
        return text(`LLM response: ${r.content?.text ?? ""}`);
      }
      case "test_elicitation": {
        const r = await elicit(
          String(args.message ?? "Please provide your information"),
          { username: { type: "string", description: "Your username" }, email: { type: "string", description: "Your email" } },
          ["username", "email"],
        );
        return text(`User response: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
      }
      case "test_elicitation_sep1034_defaults": {
        const r = await elicit("Please review the defaults", {
          name: { type: "string", default: "John Doe" },
          age: { type: "integer", default: 30 },
          score: { type: "number", default: 95.5 },
          status: { type: "string", enum: ["active", "inactive", "pending"], default: "active" },
          verified: { type: "boolean", default: true },
        });
        return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
      }
      case "test_elicitation_sep1330_enums": {
        const r = await elicit("Please choose", {
          untitledSingle: { type: "string", enum: ["option1", "option2", "option3"] },
          titledSingle: {
            type: "string",
            oneOf: [
              { const: "value1", title: "First Option" },
              { const: "value2", title: "Second Option" },
              { const: "value3", title: "Third Option" },
            ],
          },
          legacyEnum: { type: "string", enum: ["opt1", "opt2", "opt3"], enumNames: ["Option One", "Option Two", "Option Three"] },
          untitledMulti: { type: "array", items: { type: "string", enum: ["option1", "option2", "option3"] } },
          titledMulti: {
            type: "array",
            items: {
              anyOf: [
                { const: "value1", title: "First Choice" },
                { const: "value2", title: "Second Choice" },
                { const: "value3", title: "Third Choice" },
              ],
            },
          },
        });
        return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
      }
      default:
        throw new t.McpError(t.ErrorCode.InvalidParams, `Unknown tool ${req.params.name}`);
    }
  });

  const prompts = [
    { name: "test_simple_prompt", description: "A simple prompt." },
    {
      name: "test_prompt_with_arguments",
      description: "A prompt with arguments.",
      arguments: [
        { name: "arg1", description: "First test argument", required: true },
        { name: "arg2", description: "Second test argument", required: true },
      ],
    },
    {
      name: "test_prompt_with_embedded_resource",
      description: "A prompt with an embedded resource.",
      arguments: [{ name: "resourceUri", description: "URI of the resource to embed", required: true }],
    },
    { name: "test_prompt_with_image", description: "A prompt with an image." },
  ];
  server.setRequestHandler(t.ListPromptsRequestSchema, async () => ({ prompts }));
  server.setRequestHandler(t.GetPromptRequestSchema, async (req) => {
    const a = req.params.arguments ?? {};
    const user = (content) => ({ role: "user", content });
    switch (req.params.name) {
      case "test_simple_prompt":
        return { messages: [user({ type: "text", text: "This is a simple prompt for testing." })] };
      case "test_prompt_with_arguments":
        return { messages: [user({ type: "text", text: `Prompt with arguments: arg1='${a.arg1}', arg2='${a.arg2}'` })] };
      case "test_prompt_with_embedded_resource":
        return {
          messages: [
            user({ type: "resource", resource: { uri: a.resourceUri, mimeType: "text/plain", text: "Embedded resource content for testing." } }),
            user({ type: "text", text: "Please process the embedded resource above." }),
          ],
        };
      case "test_prompt_with_image":
        return {
          messages: [
            user({ type: "image", data: PNG, mimeType: "image/png" }),
            user({ type: "text", text: "Please analyze the image above." }),
          ],
        };
      default:
        throw new t.McpError(t.ErrorCode.InvalidParams, `Prompt ${req.params.name} not found`);
    }
  });

  const resources = {
    "test://static-text": { mimeType: "text/plain", text: "This is the content of the static text resource." },
    "test://static-binary": { mimeType: "image/png", blob: PNG },
    "test://watched-resource": { mimeType: "text/plain", text: "Watched resource content." },
  };
  server.setRequestHandler(t.ListResourcesRequestSchema, async () => ({
    resources: Object.entries(resources).map(([uri, r]) => ({ uri, name: uri.slice(7), mimeType: r.mimeType })),
  }));
  server.setRequestHandler(t.ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: [{ uriTemplate: "test://template/{id}/data", name: "template", mimeType: "application/json" }],
  }));
  server.setRequestHandler(t.ReadResourceRequestSchema, async (req) => {
    const uri = req.params.uri;
    const m = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
    if (m)
      return {
        contents: [{ uri, mimeType: "application/json", text: JSON.stringify({ id: m[1], templateTest: true, data: `Data for ID: ${m[1]}` }) }],
      };
    const r = resources[uri];
    if (!r) throw new t.McpError(t.ErrorCode.InvalidParams, `Resource ${uri} not found`);
    return { contents: [{ uri, ...r }] };
  });
  server.setRequestHandler(t.SubscribeRequestSchema, async () => ({}));
  server.setRequestHandler(t.UnsubscribeRequestSchema, async () => ({}));
  server.setRequestHandler(t.SetLevelRequestSchema, async () => ({}));
  server.setRequestHandler(t.CompleteRequestSchema, async (req) => {
    const v = String(req.params.argument?.value ?? "");
    const values = ["paris", "park", "party"].filter((x) => x.startsWith(v));
    return { completion: { values, total: values.length, hasMore: false } };
  });
  return server;
}

const transports = new Map();
const http = createHttpServer(async (req, res) => {
  try {
    const sid = req.headers["mcp-session-id"];
    let transport = sid ? transports.get(sid) : undefined;
    if (!transport) {
      if (sid || req.method !== "POST") {
        res.writeHead(sid ? 404 : 400, { "content-type": "application/json" });
        res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32000, message: "no such session" } }));
        return;
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
      await makeServer().connect(transport);
    }
    await transport.handleRequest(req, res);
  } catch (e) {
    if (!res.headersSent) {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32603, message: String(e) } }));
    }
  }
});
const port = Number(process.env.PORT ?? 3000);
http.listen(port, "127.0.0.1", () => console.error(`conformance fixture on http://127.0.0.1:${port}/mcp`));
