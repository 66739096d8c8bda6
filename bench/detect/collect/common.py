"""Shared helpers for the detection data builders: the tool card (contract 2), text capping,
normalisation for near-duplicate detection, and JSONL writing.

The tool card here must match the Rust side byte for byte; it is used by the builders only to
deduplicate tools, and by check_data.py to make sure every tool has a non-empty card.
"""
import json
import re
import unicodedata

CAP = 4000


def _compact(v) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _prop_lines(props, prefix, depth, out):
    if not isinstance(props, dict) or depth > 3:
        return
    for name, sch in props.items():
        full = f"{prefix}.{name}" if prefix else name
        sch = sch if isinstance(sch, dict) else {}
        desc = sch.get("description")
        line = f"{full}: {desc if isinstance(desc, str) else ''}"
        if "default" in sch:
            line += f" (default: {_compact(sch['default'])})"
        if isinstance(sch.get("enum"), list):
            vals = [v if isinstance(v, str) else _compact(v) for v in sch["enum"]]
            line += f" (one of: {', '.join(vals)})"
        out.append(line)
        _prop_lines(sch.get("properties"), full, depth + 1, out)


def tool_card(tool: dict) -> str:
    lines = [str(tool.get("name", ""))]
    if isinstance(tool.get("title"), str):
        lines.append(tool["title"])
    if isinstance(tool.get("description"), str):
        lines.append(tool["description"])
    schema = tool.get("inputSchema")
    if isinstance(schema, dict):
        _prop_lines(schema.get("properties"), "", 1, lines)
    return "\n".join(lines)


def norm(s: str) -> str:
    """Near-exact key: NFKC, case-folded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", s)).strip().casefold()


def cap(text: str, limit: int = CAP) -> str:
    """Cut at the last line boundary at or before `limit` characters (hard cut if one line is longer)."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit + 1)
    return text[:cut] if cut > limit // 4 else text[:limit]


# Characters that Python's str.splitlines() (and some editors) treat as line breaks but JSON leaves
# raw: escaped so that every reader sees one row per "\n".
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def dumps_line(r) -> str:
    s = json.dumps(r, ensure_ascii=False)
    for k, v in _LINE_BREAKS.items():
        s = s.replace(k, v)
    return s


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(dumps_line(r) + "\n")
