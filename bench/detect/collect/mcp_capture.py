#!/usr/bin/env python3
"""Capture a real MCP server's own `tools/list` over stdio.

Why: the benign tool set must be what real servers publish, not what we think they publish.
Each server is started as a child process with dummy credentials in its environment (most servers
list their tools without contacting their backend), sent `initialize`, `notifications/initialized`
and `tools/list` (following `nextCursor`), and its answer is written verbatim.

    python3 mcp_capture.py OUT.json ORIGIN -- CMD ARGS...

Also kept: the server's `instructions` (initialize result) and the first page of `prompts/list`
when the server offers prompts (both are text the model reads).

Bounded: 90 s per server (15 s more for prompts), 50 pages, 20 MB of stdout.
"""
import json
import os
import selectors
import subprocess
import sys
import time

PROMPTS_ID = 10_000
DUMMY = "dummy-key-for-tools-list-0000000000"
DUMMY_ENV = {
    k: DUMMY
    for k in """OPENAI_API_KEY ANTHROPIC_API_KEY TAVILY_API_KEY EXA_API_KEY FIRECRAWL_API_KEY
    BRAVE_API_KEY PERPLEXITY_API_KEY FIGMA_API_KEY SENTRY_ACCESS_TOKEN CIRCLECI_TOKEN
    HEROKU_API_KEY SHORTCUT_API_TOKEN APIFY_TOKEN DATADOG_API_KEY DATADOG_APP_KEY DD_API_KEY DD_APP_KEY
    PRIVATE_APP_ACCESS_TOKEN HUBSPOT_ACCESS_TOKEN NOTION_TOKEN GITLAB_PERSONAL_ACCESS_TOKEN
    GITHUB_PERSONAL_ACCESS_TOKEN GITHUB_TOKEN SLACK_BOT_TOKEN SLACK_MCP_XOXP_TOKEN SLACK_MCP_XOXC_TOKEN
    SLACK_MCP_XOXD_TOKEN STRIPE_SECRET_KEY SUPABASE_ACCESS_TOKEN LAUNCHDARKLY_API_KEY
    BROWSERBASE_API_KEY BROWSERBASE_PROJECT_ID GEMINI_API_KEY CONTEXT7_API_KEY
    ATLASSIAN_API_TOKEN JIRA_API_TOKEN CONFLUENCE_API_TOKEN PAGERDUTY_USER_API_KEY ROOTLY_API_TOKEN
    GRAFANA_API_KEY GRAFANA_SERVICE_ACCOUNT_TOKEN QDRANT_API_KEY MOTHERDUCK_TOKEN DBT_TOKEN
    AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY CURRENTS_API_KEY APIFY_API_TOKEN N8N_API_KEY
    GOOGLE_API_KEY GOOGLE_CLIENT_SECRET GOOGLE_OAUTH_CLIENT_SECRET LARK_APP_SECRET""".split()
}


def main() -> int:
    args = sys.argv[1:]
    out, origin = args[0], args[1]
    cmd = args[args.index("--") + 1 :]
    env = dict(os.environ)
    for k, v in DUMMY_ENV.items():
        env.setdefault(k, v)
    extra = os.environ.get("CAPTURE_ENV_JSON")
    if extra:
        env.update(json.loads(extra))
    errlog = open(out + ".stderr", "wb")
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog, env=env,
                         cwd=os.environ.get("CAPTURE_CWD") or None, start_new_session=True)

    def send(m):
        p.stdin.write((json.dumps(m) + "\n").encode())
        p.stdin.flush()

    send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
          "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                     "clientInfo": {"name": "warden-detect-capture", "version": "0"}}})
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    buf = b""
    tools, prompts, info, pages, total = [], [], None, 0, 0
    tools_done = False
    deadline = time.monotonic() + float(os.environ.get("CAPTURE_TIMEOUT", "90"))
    done = False
    try:
        while not done and time.monotonic() < deadline:
            if not sel.select(timeout=1.0):
                if p.poll() is not None:
                    break
                continue
            chunk = os.read(p.stdout.fileno(), 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > 20 << 20:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    m = json.loads(line)
                except ValueError:
                    continue  # some servers log to stdout; skip non-JSON lines
                if not isinstance(m, dict) or "id" not in m:
                    continue
                if m["id"] == 1:
                    info = m.get("result", {})
                    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
                    send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
                elif m["id"] == PROMPTS_ID:
                    prompts.extend((m.get("result") or {}).get("prompts", []))
                    done = True
                elif isinstance(m["id"], int) and m["id"] >= 2:
                    if "error" in m:
                        raise SystemExit(f"tools/list error: {m['error']}")
                    r = m["result"]
                    tools.extend(r.get("tools", []))
                    pages += 1
                    if r.get("nextCursor") and pages < 50:
                        send({"jsonrpc": "2.0", "id": m["id"] + 1, "method": "tools/list",
                              "params": {"cursor": r["nextCursor"]}})
                    else:
                        tools_done = True
                        if ((info or {}).get("capabilities") or {}).get("prompts") is not None:
                            # the first page of prompts/list too: more text the model reads
                            send({"jsonrpc": "2.0", "id": PROMPTS_ID, "method": "prompts/list", "params": {}})
                            deadline = min(deadline, time.monotonic() + 15)
                        else:
                            done = True
    finally:
        try:
            os.killpg(p.pid, 9)
        except OSError:
            pass
    if not done and not tools_done:
        print(f"FAIL {origin}: no complete tools/list (initialized={info is not None})", file=sys.stderr)
        return 1
    srv = (info or {}).get("serverInfo", {})
    with open(out, "w") as f:
        json.dump({"origin": origin, "serverInfo": srv, "command": cmd[-3:], "tools": tools,
                   "instructions": (info or {}).get("instructions"), "prompts": prompts}, f, indent=1,
                  ensure_ascii=False)
    print(f"OK {origin}: {len(tools)} tools")
    return 0


if __name__ == "__main__":
    sys.exit(main())
