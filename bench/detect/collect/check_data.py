#!/usr/bin/env python3
"""Fail (exit 1) if any file under bench/detect/data breaks the shared layout (contract 1).

    python3 bench/detect/collect/check_data.py [DATA_DIR]

Checks: every line is a JSON object with exactly the contract's keys and types; ids are unique
within tools and within texts and start with "<source>/"; the source matches the file name; label/class/kind are from the
contract's vocabularies (benign rows have class "benign"); a tool has a string name, a
description that is a string if present, an object inputSchema, and a non-empty tool card; texts
are non-empty and at most 4,000 characters; no two rows share a normalised text or tool card.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CAP, norm, tool_card  # noqa: E402

TOOL_CLASSES = {"preference_manipulation", "collision", "instruction", "shadowing", "chat_template",
                "parameter_exfiltration", "hidden_text", "credential_request", "other"}
TEXT_CLASSES = {"instruction", "override", "exfiltration", "chat_template", "hidden_text", "other"}
KINDS = {"file", "web", "email", "api_json", "tool_output", "prompt", "other"}
TOOL_KEYS = {"id", "source", "label", "class", "server", "tool", "origin", "licence"}
TEXT_KEYS = {"id", "source", "label", "class", "kind", "text", "origin", "licence"}


def check(data: Path) -> list:
    errs = []
    for kind, keys, classes in (("tools", TOOL_KEYS, TOOL_CLASSES), ("texts", TEXT_KEYS, TEXT_CLASSES)):
        files = sorted((data / kind).glob("*.jsonl"))
        if not files:
            errs.append(f"{data / kind}: no .jsonl files")
        seen, ids = {}, set()  # ids and dedup keys are unique within tools and within texts
        for f in files:
            src = f.stem
            for n, line in enumerate(f.read_text(encoding="utf-8").split("\n"), 1):
                if not line.strip():
                    if line or n != len(f.read_text(encoding="utf-8").split("\n")):
                        errs.append(f"{f}:{n}: empty line")
                    continue
                where = f"{f}:{n}"
                if any(c in line for c in "\u2028\u2029\x85"):
                    errs.append(f"{where}: raw U+2028/U+2029/U+0085 (write them escaped, see common.dumps_line)")
                try:
                    r = json.loads(line)
                except ValueError as e:
                    errs.append(f"{where}: not JSON: {e}")
                    continue
                if not isinstance(r, dict):
                    errs.append(f"{where}: not an object")
                    continue
                if set(r) != keys:
                    errs.append(f"{where}: keys {sorted(r)} != {sorted(keys)}")
                    continue
                for k in keys - {"tool"}:
                    if not isinstance(r[k], str) or not r[k]:
                        errs.append(f"{where}: {k} must be a non-empty string")
                if r["source"] != src:
                    errs.append(f"{where}: source {r['source']!r} != file name {src!r}")
                if not str(r["id"]).startswith(src + "/"):
                    errs.append(f"{where}: id {r['id']!r} must start with {src}/")
                if r["id"] in ids:
                    errs.append(f"{where}: duplicate id {r['id']!r}")
                ids.add(r["id"])
                if r["label"] == "benign":
                    if r["class"] != "benign":
                        errs.append(f"{where}: benign row with class {r['class']!r}")
                elif r["label"] == "attack":
                    if r["class"] not in classes:
                        errs.append(f"{where}: class {r['class']!r} not in {sorted(classes)}")
                else:
                    errs.append(f"{where}: label {r['label']!r}")
                if kind == "tools":
                    t = r["tool"]
                    if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                        errs.append(f"{where}: tool must be an object with a string name")
                        continue
                    if "description" in t and not isinstance(t["description"], str):
                        errs.append(f"{where}: tool description must be a string")
                    if not isinstance(t.get("inputSchema"), dict):
                        errs.append(f"{where}: tool inputSchema must be an object")
                    key = norm(tool_card(t))
                else:
                    if r["kind"] not in KINDS:
                        errs.append(f"{where}: kind {r['kind']!r} not in {sorted(KINDS)}")
                    if len(r["text"]) > CAP:
                        errs.append(f"{where}: text longer than {CAP} characters ({len(r['text'])})")
                    key = norm(r["text"])
                if not key:
                    errs.append(f"{where}: empty text/tool card")
                elif key in seen:
                    errs.append(f"{where}: duplicate of {seen[key]}")
                else:
                    seen[key] = r["id"]
    return errs


def main():
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "data"
    errs = check(data)
    for e in errs[:200]:
        print(e)
    n = sum(1 for p in data.glob("*/*.jsonl") for line in p.open(encoding="utf-8") if line.strip())
    print(f"check_data: {n} rows in {len(list(data.glob('*/*.jsonl')))} files, {len(errs)} problems")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
