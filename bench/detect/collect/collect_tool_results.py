#!/usr/bin/env python3
"""Raw benign rows of kind tool_output: what real MCP servers return from real tools/call requests.

Each server is started over stdio like in mcp_capture.py, then sent a fixed list of tools/call
requests against content on this machine (Debian docs, installed packages, this repository's
history, DuckDB's own catalog). The text parts of each result are joined and capped at 4,000
characters. Results that mention attack material (this repository holds attack fixtures and hostile
tests) are skipped by ATTACK_MARKERS, so a benign row never carries an injection.

Writes $RAW/texts/mcp-results.jsonl.
"""
import glob
import hashlib
import json
import os
import re
import selectors
import subprocess
import time
from pathlib import Path

from common import cap, write_jsonl

RAW = Path(os.environ.get("RAW", "/tmp/detect-raw"))
ROOT = Path(os.environ.get("CAPTURE_ROOT", "/tmp/mcp-capture"))
REPO = Path(__file__).resolve().parents[3]
ATTACK_MARKERS = re.compile(
    r"IMPORTANT>|ignore (all )?(previous|prior)|im_start|\[INST\]|poison|malicious|hostile|injection|exfiltrat|"
    r"jailbreak|id_rsa|attacker|corpus/malicious|bench/detect", re.I)


class Session:
    def __init__(self, cmd, env=None, cwd="/tmp"):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)
        self.buf = b""
        self.next_id = 1
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "warden-detect-results", "version": "0"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, m):
        self.p.stdin.write((json.dumps(m) + "\n").encode())
        self.p.stdin.flush()

    def request(self, method, params, timeout=60):
        i = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                try:
                    m = json.loads(line)
                except ValueError:
                    continue
                if isinstance(m, dict) and m.get("id") == i:
                    return m
            if self.sel.select(timeout=1.0):
                chunk = os.read(self.p.stdout.fileno(), 1 << 16)
                if not chunk:
                    return None
                self.buf += chunk
        return None

    def call(self, tool, args):
        m = self.request("tools/call", {"name": tool, "arguments": args})
        if not m or "result" not in m or m["result"].get("isError"):
            return None
        parts = [c.get("text", "") for c in m["result"].get("content", []) if c.get("type") == "text"]
        t = "\n".join(p for p in parts if p)
        if not t and m["result"].get("structuredContent") is not None:
            t = json.dumps(m["result"]["structuredContent"], indent=2, ensure_ascii=False)
        return t or None

    def close(self):
        try:
            os.killpg(self.p.pid, 9)
        except OSError:
            pass


def h(s):
    return hashlib.sha256(s.encode()).hexdigest()


def npm_bin(pkg, name=None):
    d = ROOT / "npm" / pkg.replace("/", "_").replace("@", "_") / "node_modules" / pkg
    pj = json.loads((d / "package.json").read_text())
    b = pj["bin"]
    if isinstance(b, dict):
        b = b[name] if name else next(iter(b.values()))
    return ["node", str(d / b)], f"{pkg}@{pj['version']}"


def plans():
    docs = sorted({str(Path(p).parent) for p in glob.glob("/usr/share/doc/*/copyright")}, key=h)
    texts = sorted([p for p in glob.glob("/usr/share/doc/*/*") if re.search(r"(README|NEWS|TODO|\.txt)$", p)
                    and os.path.isfile(p)], key=h)
    rust = sorted([p for p in glob.glob(str(REPO / "crates/*/src/**/*.rs"), recursive=True)
                   if not ATTACK_MARKERS.search(p)], key=h)
    commits = subprocess.run(["git", "-C", str(REPO), "log", "--format=%H", "-n", "400", "main"],
                             capture_output=True, text=True).stdout.split()
    commits = sorted(commits, key=h)

    fs_cmd, fs_origin = npm_bin("@modelcontextprotocol/server-filesystem")
    fs_calls = [("list_directory", {"path": d}) for d in docs[:12]]
    fs_calls += [("read_text_file", {"path": p, "head": 80}) for p in texts[:14]]
    fs_calls += [("get_file_info", {"path": p}) for p in texts[14:18]]
    fs_calls += [("search_files", {"path": "/usr/share/doc", "pattern": pat}) for pat in ("*.gz", "changelog*", "*.html")]
    fs_calls += [("read_text_file", {"path": p, "head": 60}) for p in rust[:10]]
    fs_calls += [("directory_tree", {"path": str(REPO / "crates" / c / "src")}) for c in ("warden-mcp", "warden-policy")]
    yield ("filesystem", fs_cmd + ["/usr/share/doc", str(REPO)], fs_origin, {}, fs_calls)

    git_calls = [("git_log", {"repo_path": str(REPO), "max_count": n}) for n in (5, 12)]
    git_calls += [("git_show", {"repo_path": str(REPO), "revision": c}) for c in commits[:40]]
    git_calls += [("git_branch", {"repo_path": str(REPO), "branch_type": "local"})]
    yield ("git", [str(ROOT / "py/mcp-server-git/bin/mcp-server-git")], "pypi:mcp-server-git", {}, git_calls)

    dc_cmd, dc_origin = npm_bin("@wonderwhy-er/desktop-commander")
    dc_calls = [("list_directory", {"path": d}) for d in docs[12:20]]
    dc_calls += [("get_file_info", {"path": p}) for p in texts[18:22]]
    dc_calls += [("start_process", {"command": c, "timeout_ms": 8000}) for c in (
        "df -h /", "uname -a", "python3 --version && node --version", "ls -la /usr/share/doc | head -40",
        "apt-cache policy git", "dpkg -s coreutils", "git -C /work/wt-detect-data log --stat -3 main",
        "cat /etc/os-release", "ls -la /usr/lib/python3/dist-packages | head -30", "free -h")]
    dc_calls += [("read_file", {"path": p, "length": 80}) for p in texts[22:28]]
    yield ("desktop-commander", dc_cmd, dc_origin, {}, dc_calls)

    md = str(ROOT / "py/mcp-server-motherduck/bin/mcp-server-motherduck")
    sqls = ["SELECT function_name, function_type, return_type FROM duckdb_functions() ORDER BY function_name LIMIT 25",
            "SELECT name, value, description FROM duckdb_settings() ORDER BY name LIMIT 20",
            "SELECT * FROM range(1, 11) t(n), LATERAL (SELECT n*n AS square, n*n*n AS cube)",
            "SELECT extension_name, installed, description FROM duckdb_extensions() ORDER BY 1",
            "SELECT keyword_name, keyword_category FROM duckdb_keywords() ORDER BY 1 LIMIT 40",
            "SELECT type_name, type_size, logical_type FROM duckdb_types() ORDER BY 1 LIMIT 30",
            "SELECT current_date AS today, version() AS version",
            "SELECT * FROM duckdb_views() LIMIT 10"]
    csvs = sorted(glob.glob(str(ROOT / "py/*/lib/python3.11/site-packages/**/*.csv"), recursive=True), key=h)[:6]
    sqls += [f"SELECT * FROM read_csv_auto('{c}') LIMIT 15" for c in csvs]
    yield ("motherduck", [md, "--read-write"], "pypi:mcp-server-motherduck", {},
           [("execute_query", {"sql": s}) for s in sqls])

    es_cmd, es_origin = npm_bin("@eslint/mcp")
    jsf = sorted(glob.glob(str(ROOT / "npm/_eslint_mcp/node_modules/*/lib/*.js")), key=h)[:10]
    yield ("eslint", es_cmd, es_origin, {}, [("lint-files", {"filePaths": [f]}) for f in jsf])


def main():
    rows, seen = [], set()
    for name, cmd, origin, env, calls in plans():
        try:
            s = Session(cmd, env)
        except OSError as e:
            print(f"{name}: {e}")
            continue
        n = 0
        try:
            for tool, args in calls:
                t = s.call(tool, args)
                if not t or len(t) < 80 or ATTACK_MARKERS.search(t) or t in seen:
                    continue
                seen.add(t)
                n += 1
                rows.append({"source": "mcp-results", "label": "benign", "class": "benign", "kind": "tool_output",
                             "text": cap(t), "origin": f"{origin} tools/call {tool} {json.dumps(args)[:160]}",
                             "licence": "output of the tool over content on this machine (see DATA.md)"})
        finally:
            s.close()
        print(name, n)
    write_jsonl(RAW / "texts/mcp-results.jsonl", rows)
    print("mcp-results", len(rows))


if __name__ == "__main__":
    main()
