#!/usr/bin/env python3
"""Raw tool rows: the project's own corpus, and the captured real servers.

Writes $RAW/tools/<source>.jsonl (default RAW=/tmp/detect-raw); finalize.py deduplicates and
numbers them into bench/detect/data/tools/.

Benign captured servers are split into four sources by hash, not by hand:
    bucket = int(sha256(package name).hexdigest(), 16) % 4  ->  source "servers-h<bucket>"
so that a by-source hold-out holds out whole servers. The servers of servers-extra.json (captured
later, for training) are not hashed: their tools form one source, "servers-extra", with at most
EXTRA_PER_SERVER tools of each server (the first by sha256 of the tool's name), so one API wrapper
with 401 endpoints does not make up half of the source.
"""
import hashlib
import json
import os
from pathlib import Path

from common import write_jsonl

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
RAW = Path(os.environ.get("RAW", "/tmp/detect-raw"))
CORPUS = REPO / "crates/warden-mcp/corpus"
EXTRA = {s["package"] for s in json.loads((HERE / "servers-extra.json").read_text())}
EXTRA_PER_SERVER = 40

# Attack class of each file of our own malicious corpus (its `expect.category` is coarser).
CORPUS_CLASS = {
    "aws-credentials-request": "credential_request",
    "base64-payload": "hidden_text",
    "bidi-override": "hidden_text",
    "cyberark-fsp-default-value": "parameter_exfiltration",
    "cyberark-fsp-enum": "instruction",
    "cyberark-fsp-parameter-description": "parameter_exfiltration",
    "cyberark-fsp-parameter-name": "parameter_exfiltration",
    "cyberark-fsp-required-field": "parameter_exfiltration",
    "cyberark-fsp-title": "parameter_exfiltration",
    "env-file-exfil": "credential_request",
    "exfil-to-url": "instruction",
    "fullwidth-tool-name": "collision",
    "homoglyph-server-name": "collision",
    "homoglyph-tool-name": "collision",
    "html-comment": "hidden_text",
    "ignore-previous-instructions": "instruction",
    "invariant-direct-poisoning": "credential_request",
    "invariant-shadowing": "shadowing",
    "invariant-whatsapp-sleeper": "shadowing",
    "markdown-comment": "hidden_text",
    "newline-padding": "hidden_text",
    "policylayer-add-ssh": "credential_request",
    "secra-bracket-important": "credential_request",
    "secrecy-keep-hidden": "parameter_exfiltration",
    "shadow-every-tool-call": "shadowing",
    "system-tag-override": "chat_template",
    "tob-ansi-conceal": "hidden_text",
    "tob-ansi-cursor": "hidden_text",
    "tob-conversation-history": "parameter_exfiltration",
    "tob-line-jumping-prepend": "instruction",
    "tool-name-collision": "collision",
    "typo-server-name": "collision",
    "typo-tool-name-across-servers": "collision",
    "unicode-tag-smuggling": "hidden_text",
    "unicode-tags-only": "hidden_text",
    "variation-selector-smuggling": "hidden_text",
    "whitespace-padding": "hidden_text",
    "zero-width-in-param": "hidden_text",
    "zero-width-split": "hidden_text",
}


def bucket(package: str) -> str:
    return f"servers-h{int(hashlib.sha256(package.encode()).hexdigest(), 16) % 4}"


def source_of(package: str) -> str:
    return "servers-extra" if package in EXTRA else bucket(package)


def corpus_rows():
    rows = []
    for f in sorted((CORPUS / "benign").glob("*.json")):
        d = json.loads(f.read_text())
        for t in d["tools"]:
            rows.append({"source": "warden-corpus", "label": "benign", "class": "benign", "server": f.stem,
                         "tool": t, "origin": d["source"],
                         "licence": "as published by the server (MIT for modelcontextprotocol/servers)"})
    for f in sorted((CORPUS / "malicious").glob("*.json")):
        d = json.loads(f.read_text())
        want = d["expect"].get("tool")
        cls = CORPUS_CLASS[f.stem]
        picked = []
        if "tools" in d and d["tools"]:
            picked = [("malicious", t) for t in d["tools"] if want is None or t["name"] == want]
        else:
            servers = list(d["side_by_side"].items())
            # the poisoned or look-alike tool lives in a later server than the one it imitates
            for name, srv in reversed(servers[1:]):
                ts = [t for t in srv["tools"] if want is None or t["name"] == want]
                if ts:
                    picked = [(name, t) for t in ts]
                    break
        for server, t in picked:
            # MCP requires inputSchema; a few side-by-side fixtures omit it
            t = t if "inputSchema" in t else {**t, "inputSchema": {"type": "object", "properties": {}}}
            rows.append({"source": "warden-corpus", "label": "attack", "class": cls, "server": server,
                         "tool": t, "origin": d["source"], "licence": "Apache-2.0 (this repository)"})
    return rows


def capture_rows():
    by_source = {}
    for f in sorted((HERE / "captures").glob("*.json")):
        d = json.loads(f.read_text())
        src = source_of(d["package"])
        server = (d.get("serverInfo") or {}).get("name") or d["package"]
        tools = d["tools"]
        if src == "servers-extra" and len(tools) > EXTRA_PER_SERVER:
            keep = sorted(range(len(tools)), key=lambda i: hashlib.sha256(str(tools[i].get("name")).encode()).hexdigest())
            keep = set(keep[:EXTRA_PER_SERVER])
            tools = [t for i, t in enumerate(tools) if i in keep]
        for t in tools:
            by_source.setdefault(src, []).append(
                {"source": src, "label": "benign", "class": "benign", "server": server, "tool": t,
                 "origin": f"{d['registry']}:{d['origin']}", "licence": d.get("licence") or "see package"})
    return by_source


def main():
    write_jsonl(RAW / "tools/warden-corpus.jsonl", corpus_rows())
    for src, rows in capture_rows().items():
        write_jsonl(RAW / f"tools/{src}.jsonl", rows)


if __name__ == "__main__":
    main()
