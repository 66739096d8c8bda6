"""Loading the detection data set (issue 16, contract 1) and turning tools into one text (contract 2).

Why one module: train.py, eval.py and the baselines must read exactly the same rows and the same
tool cards, or the side-by-side table would compare different things.

Rows come from `<data>/tools/*.jsonl` and `<data>/texts/*.jsonl` (the data helper's layout), plus
the project's own hand-written MCP corpus (crates/warden-mcp/corpus), read as the source
`warden-corpus` (it was written next to the rules, so it is never a test source).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT / "bench" / "detect" / "data"
CORPUS = ROOT / "crates" / "warden-mcp" / "corpus"

MAX_CARD_DEPTH = 3  # parent.child.grandchild

# Texts: at most this many rows per (source, label), the first by sha256 of the row id (so a
# smaller cap is a subset of a larger one). The numpy reference embeds every 128-token window at
# ~100 ms on a free core and ~0.7 s on the shared build machine, and all texts are ~20,000
# windows; the cap keeps a run within the hour. DETECT_TEXT_CAP=benign,attack sets the caps,
# DETECT_TEXT_CAP=0 lifts them (the Rust runtime can score every row).
TEXT_CAP = {0: 45, 1: 67}


def _compact(value) -> str:
    # Compact JSON as serde_json writes it: no spaces, non-ASCII kept as is, key order kept.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _card_properties(props, prefix: str, depth: int, out: list[str], rest: list[str]) -> None:
    """The lines of `props` at `depth`; what a line does not write of its schema goes to `rest`."""
    for name, schema in props.items():
        full = f"{prefix}.{name}" if prefix else name
        desc = ""
        line_extra = ""
        if isinstance(schema, dict):
            if isinstance(schema.get("description"), str):
                desc = schema["description"]
            if "default" in schema:
                line_extra += f" (default: {_compact(schema['default'])})"
            if isinstance(schema.get("enum"), list):
                vals = [v if isinstance(v, str) else _compact(v) for v in schema["enum"]]
                line_extra += f" (one of: {', '.join(vals)})"
        out.append(f"{full}: {desc}{line_extra}")
        if not isinstance(schema, dict):
            _rest_of(schema, rest)
            continue
        # The keys the line above wrote, and nested properties listed under this one's path.
        for key, value in schema.items():
            if (key == "description" and isinstance(value, str)) or key == "default" or (
                key == "enum" and isinstance(value, list)
            ):
                continue
            if key == "properties" and isinstance(value, dict) and depth < MAX_CARD_DEPTH:
                _card_properties(value, full, depth + 1, out, rest)
                continue
            _rest_entry(key, value, rest)


def tool_card(tool: dict) -> str:
    """Contract 2: the one text a tool becomes for the model.

    Lines joined with "\\n": name; title if a string; description if a string; then one line per
    property of inputSchema.properties in document order, nested `properties` as parent.child up
    to depth 3: "<name>: <description or empty>" + " (default: <compact JSON>)" if a default
    exists + " (one of: <values joined by ', '>)" if an enum (a list) exists, strings unquoted.
    A name, title or description that is not a string is left out (no empty line); a property
    whose schema is not an object still gives its "<name>: " line.

    Then the rest of the tool (a client's model reads the whole tool object): in document order,
    every part the lines above did not write, one line each and without a path — each object
    key that is not a keyword of JSON Schema or of MCP's tool object (_KEYWORDS), and each
    string (even under `type` or `$ref`). A line equal to an earlier one is left out. The Rust
    card (crates/warden-model/src/card.rs) is the same.
    """
    if not isinstance(tool, dict):
        return ""
    lines = [tool[k] for k in ("name", "title", "description") if isinstance(tool.get(k), str)]
    # One walk in document order: the property lines where inputSchema.properties is, and
    # everything they do not write into `rest`.
    rest: list[str] = []
    for key, value in tool.items():
        if key in ("name", "title", "description") and isinstance(value, str):
            continue
        if key == "inputSchema" and isinstance(value, dict):
            for k, v in value.items():
                if k == "properties" and isinstance(v, dict):
                    _card_properties(v, "", 1, lines, rest)
                else:
                    _rest_entry(k, v, rest)
            continue
        _rest_entry(key, value, rest)
    seen = set(lines)
    for line in rest:
        if line and line not in seen:
            seen.add(line)
            lines.append(line)
    return "\n".join(lines)


_KEYWORDS = frozenset("""
    name title description inputSchema outputSchema annotations _meta icons src mimeType sizes
    theme readOnlyHint destructiveHint idempotentHint openWorldHint
    type properties items prefixItems additionalProperties patternProperties additionalItems
    required default enum const examples $ref $defs definitions $schema $id $comment $anchor
    $dynamicRef $dynamicAnchor $vocabulary anyOf oneOf allOf not if then else format pattern
    minimum maximum exclusiveMinimum exclusiveMaximum multipleOf minLength maxLength minItems
    maxItems uniqueItems minProperties maxProperties contains minContains maxContains
    propertyNames dependentRequired dependentSchemas dependencies unevaluatedProperties
    unevaluatedItems contentMediaType contentEncoding contentSchema deprecated readOnly
    writeOnly nullable
""".split())

def _rest_entry(key: str, value, rest: list[str]) -> None:
    """A key the property lines did not write (unless a keyword) and its value, for the rest."""
    if key not in _KEYWORDS:
        rest.append(key)
    _rest_of(value, rest)


def _rest_of(value, rest: list[str]) -> None:
    """Every key and string of a value the property lines did not write, for the rest."""
    if isinstance(value, str):
        rest.append(value)
    elif isinstance(value, list):
        for item in value:
            _rest_of(item, rest)
    elif isinstance(value, dict):
        for k, v in value.items():
            _rest_entry(k, v, rest)


@dataclass
class Row:
    id: str
    source: str
    label: int  # 1 attack, 0 benign
    cls: str
    kind: str  # "tool" or the text kind
    text: str  # what the model reads (tool card or the text)
    server: str = ""
    tool: dict | None = None
    origin: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def group(self) -> str:
        """The unit of holding out: the source, except for rows grafted onto a host row of another
        source (the data card's `host source X` in origin), which go with their host so a
        held-out source is not seen through its grafted copies."""
        m = re.search(r"host source ([A-Za-z0-9_.-]+)", self.origin or "")
        return m.group(1) if m else self.source


def _read_jsonl(path: Path):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: {e}") from e


def data_dir() -> Path:
    return Path(os.environ.get("DETECT_DATA", DEFAULT_DATA))


def load_tools(include_corpus: bool = True) -> list[Row]:
    rows: list[Row] = []
    d = data_dir() / "tools"
    for p in sorted(d.glob("*.jsonl")) if d.is_dir() else []:
        for r in _read_jsonl(p):
            tool = r["tool"]
            rows.append(
                Row(
                    id=r["id"],
                    source=r["source"],
                    label=1 if r["label"] == "attack" else 0,
                    cls=r.get("class", "benign"),
                    kind="tool",
                    text=tool_card(tool),
                    server=r.get("server", ""),
                    tool=tool,
                    origin=r.get("origin", ""),
                )
            )
    if include_corpus and not any(r.source == "warden-corpus" for r in rows):
        rows.extend(load_corpus())
    return rows


def load_corpus() -> list[Row]:
    """crates/warden-mcp/corpus as rows: every tool of a benign file is benign; in a malicious
    file only the tool named by `expect.tool` is the attack (the others are its decoys)."""
    rows: list[Row] = []
    for label_dir, label in (("benign", 0), ("malicious", 1)):
        for p in sorted((CORPUS / label_dir).glob("*.json")):
            doc = json.loads(p.read_text())
            tools = doc.get("tools") or doc.get("result", {}).get("tools") or []
            expect = doc.get("expect") or {}
            target = expect.get("tool")
            for i, t in enumerate(tools):
                is_attack = label == 1 and (target is None or t.get("name") == target)
                rows.append(
                    Row(
                        id=f"warden-corpus/{p.stem}/{i}",
                        source="warden-corpus",
                        label=1 if is_attack else 0,
                        cls=(expect.get("category") or "other") if is_attack else "benign",
                        kind="tool",
                        text=tool_card(t),
                        server=p.stem,
                        tool=t,
                        origin=str(doc.get("source", "")),
                    )
                )
    return rows


def _cap(rows: list[Row]) -> list[Row]:
    env = os.environ.get("DETECT_TEXT_CAP")
    if env is None:
        caps = TEXT_CAP
    elif env.strip() == "0":
        caps = None
    else:
        benign, attack = (int(v) for v in env.split(","))
        caps = {0: benign, 1: attack}
    if not caps:
        return rows
    by = defaultdict(list)
    for r in rows:
        by[(r.source, r.label)].append(r)
    keep = set()
    for (_, label), members in by.items():
        members.sort(key=lambda r: hashlib.sha256(r.id.encode()).hexdigest())
        keep.update(r.id for r in members[: caps[label]])
    return [r for r in rows if r.id in keep]


def load_texts(capped: bool = True) -> list[Row]:
    rows: list[Row] = []
    d = data_dir() / "texts"
    for p in sorted(d.glob("*.jsonl")) if d.is_dir() else []:
        for r in _read_jsonl(p):
            rows.append(
                Row(
                    id=r["id"],
                    source=r["source"],
                    label=1 if r["label"] == "attack" else 0,
                    cls=r.get("class", "benign"),
                    kind=r.get("kind", "other"),
                    text=r["text"],
                    origin=r.get("origin", ""),
                )
            )
    return _cap(rows) if capped else rows


def load(kind: str) -> list[Row]:
    return load_tools() if kind == "tools" else load_texts()
