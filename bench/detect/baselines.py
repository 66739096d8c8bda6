"""The comparators, run on exactly the rows the heads are judged on.

Why here: a number for Warden's model means little without the rules it sits beside and the
published detectors it must beat, measured on the same rows. Each comparator gives one value per
row: a flag (rules, reference toolkit) or a score (jailguard).

  rules       Warden's own rules through the binary (`warden mcp scan --json` per server group,
              `warden scan text --json` per text); flagged when a finding is at or above
              `medium` (the CLI's default --fail-on).
  agt         agent-governance-toolkit-core (Microsoft's reference toolkit), as shipped with its
              built-in rules: for tools `agent_os.mcp_security.MCPSecurityScanner.scan_tool`
              (a fresh scanner per server group, flagged on any threat: what its scan_server
              counts), for texts `agent_os.mcp_response_scanner.MCPResponseScanner` (its
              tool-output scanner; flagged when not safe).
  jailguard   jailguard 0.1.2's MLP head (384-256-128-1), its weights read from the PyPI wheel's
              native library (the same JSON as models/neural_binary_200k.json in the crate). As
              shipped it embeds all-MiniLM-L6-v2 with the same tokenizer, truncated and padded to
              128 tokens (its tokenizer.json), mean pooled over the mask and L2-normalised: that is
              exactly our first window, so `jailguard` is its head on window 0 at its threshold 0.5,
              and `jailguard-win` the same head as max over all our windows.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from data import Row

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
SEVERITIES = ["info", "low", "medium", "high", "critical"]
FLAG_AT = SEVERITIES.index("medium")


def _row_key(r: Row) -> str:
    payload = json.dumps(r.tool, sort_keys=True) if r.tool is not None else r.text
    return hashlib.sha256(f"{r.kind}\0{r.server}\0{payload}".encode()).hexdigest()[:32]


class _Cache:
    def __init__(self, name: str):
        CACHE.mkdir(parents=True, exist_ok=True)
        self.path = CACHE / f"{name}.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}

    def save(self):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)


def _file_sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _groups(rows: list[Row]):
    """Server groups with unique tool names (a repeated name starts a new chunk), so each finding
    maps back to one row and tools are compared only with their own server's."""
    by_server = defaultdict(list)
    for r in rows:
        by_server[(r.source, r.server or r.id)].append(r)
    for (source, server), members in by_server.items():
        chunks: list[list[Row]] = []
        for r in members:
            name = r.tool.get("name") if isinstance(r.tool, dict) else None
            for c in chunks:
                if all((m.tool or {}).get("name") != name for m in c):
                    c.append(r)
                    break
            else:
                chunks.append([r])
        for c in chunks:
            yield server, c


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)[:80] or "server"


def rules_tools(rows: list[Row], warden: str) -> dict[str, int]:
    cache = _Cache(f"rules-tools-{_file_sha(warden)}")
    out: dict[str, int] = {}
    todo = [r for r in rows if _row_key(r) not in cache.data]
    with tempfile.TemporaryDirectory() as tmp:
        for server, group in _groups(todo):
            path = Path(tmp) / f"{_safe_name(server)}.json"
            path.write_text(json.dumps({"tools": [r.tool for r in group]}, ensure_ascii=False))
            proc = subprocess.run(
                [warden, "mcp", "scan", "--json", "--fail-on", "critical", str(path)],
                capture_output=True, text=True, timeout=120,
            )
            try:
                report = json.loads(proc.stdout)
            except json.JSONDecodeError:
                raise RuntimeError(f"warden mcp scan gave no JSON for {server}: {proc.stderr[-500:]}")
            flagged_names = set()
            for f in report.get("findings", []):
                if SEVERITIES.index(f.get("severity", "info")) >= FLAG_AT and f.get("tool") is not None:
                    flagged_names.add(f["tool"])
            errored = bool(report.get("errors"))
            for r in group:
                name = (r.tool or {}).get("name")
                # A scan error on the file counts as flagged (Warden fails closed) and is noted.
                cache.data[_row_key(r)] = 1 if (errored or name in flagged_names) else 0
        cache.save()
    for r in rows:
        out[r.id] = cache.data[_row_key(r)]
    return out


def rules_texts(rows: list[Row], warden: str) -> dict[str, int]:
    cache = _Cache(f"rules-texts-{_file_sha(warden)}")
    todo = [r for r in rows if _row_key(r) not in cache.data]
    for i, r in enumerate(todo):
        proc = subprocess.run(
            [warden, "scan", "text", "--json", "--fail-on", "critical", "-"],
            input=r.text, capture_output=True, text=True, timeout=120,
        )
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise RuntimeError(f"warden scan text gave no JSON for {r.id}: {proc.stderr[-500:]}")
        flagged = any(SEVERITIES.index(f.get("severity", "info")) >= FLAG_AT for f in report.get("findings", []))
        cache.data[_row_key(r)] = 1 if (flagged or report.get("errors")) else 0
        if i % 200 == 199:
            cache.save()
    cache.save()
    return {r.id: cache.data[_row_key(r)] for r in rows}


def agt_tools(rows: list[Row]) -> dict[str, int]:
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.CRITICAL)
    from agent_os.mcp_security import MCPSecurityScanner

    out = {}
    for server, group in _groups(rows):
        scanner = MCPSecurityScanner()
        for r in group:
            t = r.tool or {}
            desc = t.get("description") if isinstance(t.get("description"), str) else ""
            schema = t.get("inputSchema") if isinstance(t.get("inputSchema"), dict) else None
            threats = scanner.scan_tool(str(t.get("name", "")), desc, schema, server)
            out[r.id] = 1 if threats else 0
    return out


def agt_texts(rows: list[Row]) -> dict[str, int]:
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.CRITICAL)
    from agent_os.mcp_response_scanner import MCPResponseScanner

    s = MCPResponseScanner()
    return {r.id: 0 if s.scan_response(r.text).is_safe else 1 for r in rows}


def load_jailguard(wheel_dir: Path) -> list[dict]:
    """jailguard's head as layers in our head format, read from the wheel's native library."""
    libs = list(wheel_dir.rglob("_jailguard*.so"))
    if not libs:
        raise FileNotFoundError(f"jailguard's native library not found under {wheel_dir}")
    blob = libs[0].read_bytes()
    start = blob.find(b'{"w_h1":')
    if start < 0:
        raise ValueError("jailguard weights not found in its native library")
    obj, _ = json.JSONDecoder().raw_decode(blob[start : start + 4_000_000].decode("utf-8", "replace"))
    return [
        {"weight": obj["w_h1"], "bias": obj["b_h1"], "activation": "relu"},
        {"weight": obj["w_h2"], "bias": obj["b_h2"], "activation": "relu"},
        {"weight": obj["w_out"], "bias": obj["b_out"], "activation": "none"},
    ]


def head_scores(layers: list[dict], x: np.ndarray) -> np.ndarray:
    """Scores (sigmoid of the last layer) of the rows of x under a head in contract-4 layers."""
    h = x.astype(np.float64)
    for layer in layers:
        h = h @ np.asarray(layer["weight"], dtype=np.float64).T + np.asarray(layer["bias"], dtype=np.float64)
        if layer["activation"] == "relu":
            h = np.maximum(h, 0.0)
    return 1.0 / (1.0 + np.exp(-h[:, 0]))


if __name__ == "__main__":
    sys.exit("run eval.py")
