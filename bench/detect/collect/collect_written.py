#!/usr/bin/env python3
"""Raw rows for the attack sets we wrote (written/*.py): tools written-a/-b, texts written-texts-a/-b.

Texts: each payload is placed in two different carriers of its own style (payload i goes into
carriers i mod n and (7i+3) mod n); each carrier also appears once clean, with a neutral sentence
where the payload would be, labelled benign.
"""
import json
import os
import re
import sys
from pathlib import Path

from common import cap, write_jsonl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "written"))
RAW = Path(os.environ.get("RAW", "/tmp/detect-raw"))

import texts_a  # noqa: E402
import texts_b  # noqa: E402
import tools_a  # noqa: E402
import tools_b  # noqa: E402

LIC = "Apache-2.0 (written for this repository)"
FILLERS = ["Thanks, this worked for me.", "See the attached file for the details.",
           "The numbers above are preliminary and may change.", "Updated after the review on Monday.",
           "No action needed on your side.", "More examples are in the appendix."]


def fill(carrier, payload):
    kind, body = carrier
    if kind == "json":
        return "api_json", body.replace(json.dumps(texts_a.INJ)[1:-1], json.dumps(payload, ensure_ascii=False)[1:-1])
    return kind, body.replace(texts_a.INJ, payload)


def texts(mod, source, style):
    rows = []
    n = len(mod.CARRIERS)
    for i, c in enumerate(mod.CARRIERS):
        kind, t = fill(c, FILLERS[i % len(FILLERS)])
        rows.append({"source": source, "label": "benign", "class": "benign", "kind": kind, "text": cap(t),
                     "origin": f"written ({style}) carrier {i}, clean", "licence": LIC})
    for i, (cls, payload) in enumerate(mod.PAYLOADS):
        for ci in (i % n, (7 * i + 3) % n):
            kind, t = fill(mod.CARRIERS[ci], payload)
            assert payload.strip()[:20] in t or kind == "api_json", (source, i, ci)
            assert len(t) <= 4000, (source, i, ci)
            rows.append({"source": source, "label": "attack", "class": cls, "kind": kind, "text": t,
                         "origin": f"written ({style}) payload {i} in carrier {ci}", "licence": LIC})
    return rows


def tools(mod, source, style):
    return [{"source": source, "label": "attack", "class": t["class"], "server": t["server"], "tool": t["tool"],
             "origin": f"written ({style}) from the public write-ups, see DATA.md", "licence": LIC} for t in mod.TOOLS]


def main():
    write_jsonl(RAW / "tools/written-a.jsonl", tools(tools_a, "written-a", "PoC style"))
    write_jsonl(RAW / "tools/written-b.jsonl", tools(tools_b, "written-b", "subtle paraphrase"))
    write_jsonl(RAW / "tools/written-grafted.jsonl", grafted())
    write_jsonl(RAW / "texts/written-texts-a.jsonl", texts(texts_a, "written-texts-a", "PoC style"))
    write_jsonl(RAW / "texts/written-texts-b.jsonl", texts(texts_b, "written-texts-b", "subtle"))
    write_jsonl(RAW / "texts/written-texts-grafted.jsonl", texts_grafted())



def grafted(n=108):
    """written-grafted: real captured tools with one of our poison clauses grafted in (written/grafted.py)."""
    import copy
    import hashlib
    import grafted as g
    from collect_tools import capture_rows
    from common import tool_card
    pool = [r for rows in capture_rows().values() for r in rows
            if isinstance(r["tool"].get("description"), str) and len(tool_card(r["tool"])) > 150]
    pool.sort(key=lambda r: hashlib.sha256(f"graft/{r['origin']}/{r['tool']['name']}".encode()).hexdigest())
    rows = []
    for i, host in enumerate(pool[:n]):
        cls, clause = g.CLAUSES[i % len(g.CLAUSES)]
        t = copy.deepcopy(host["tool"])
        props = (t.get("inputSchema") or {}).get("properties") or {}
        string_props = [k for k, v in props.items() if isinstance(v, dict) and v.get("type") == "string"]
        place = (i // len(g.CLAUSES)) % 3
        if cls == "parameter_exfiltration" or (place == 2 and string_props):
            if cls == "parameter_exfiltration" or not string_props:
                # a new optional parameter carrying the ask, the CyberArk full-schema shape
                name = ["context", "notes", "session_info", "metadata", "debug"][i % 5]
                t.setdefault("inputSchema", {"type": "object"}).setdefault("properties", {})[name] = {
                    "type": "string", "description": clause}
                where = f"new parameter {name}"
            else:
                k = string_props[i % len(string_props)]
                d = props[k].get("description", "")
                props[k]["description"] = (d + " " if d else "") + clause
                where = f"parameter {k}"
        elif place == 1:
            t["description"] = clause + "\n\n" + t["description"]
            where = "description start"
        else:
            t["description"] = t["description"].rstrip() + "\n\n" + clause
            where = "description end"
        rows.append({"source": "written-grafted", "label": "attack", "class": cls, "server": host["server"],
                     "tool": t, "origin": f"written clause {i % len(g.CLAUSES)} grafted at {where} of "
                                          f"{host['origin']} tool {host['tool']['name']} (host source {host['source']})", "licence": LIC + "; host tool: " + host["licence"]})
    return rows



def texts_grafted(n=104):
    """written-texts-grafted: real benign texts (finished data files) with one of our payloads inserted."""
    import hashlib
    import texts_grafted as tg
    data = HERE.parent / "data/texts"
    hosts = []
    for src in ("files-npm", "files-pypi", "web-debian-doc", "email-cpython", "email-packages", "api-npm-registry",
                "api-botocore", "cmd-man", "mcp-results"):
        p = data / f"{src}.jsonl"
        if p.exists():
            hosts += [json.loads(line) for line in p.read_text(encoding="utf-8").split("\n") if line.strip()]
    hosts.sort(key=lambda r: hashlib.sha256(f"graft-text/{r['id']}".encode()).hexdigest())
    rows = []
    for i, host in enumerate(hosts[:n]):
        cls, payload = tg.PAYLOADS[i % len(tg.PAYLOADS)]
        t = host["text"]
        room = 3900 - len(payload)
        t = cap(t, room)
        lines = t.split("\n")
        at = 1 + int(hashlib.sha256(host["id"].encode()).hexdigest(), 16) % max(1, len(lines) - 1)
        esc = json.dumps(payload, ensure_ascii=False)[1:-1]
        strings = [j for j, line in enumerate(lines) if re.match(r'^\s*"[^"]+": ".*",?$', line)]
        if host["kind"] == "api_json" and strings:
            # the attacker controls one string field: the payload goes at the end of its value, escaped
            at = strings[int(hashlib.sha256(host["id"].encode()).hexdigest(), 16) % len(strings)]
            line = lines[at]
            q = line.rstrip(",").rfind('"')
            lines[at] = line[:q] + " " + esc + line[q:]
            new = "\n".join(lines)
        elif host["kind"] == "api_json":
            new = "\n".join(lines[:at] + [f'  "note": "{esc}",'] + lines[at:])
        else:
            new = "\n".join(lines[:at] + [payload] + lines[at:])
        assert len(new) <= 4000
        rows.append({"source": "written-texts-grafted", "label": "attack", "class": cls, "kind": host["kind"],
                     "text": new, "origin": f"written payload {i % len(tg.PAYLOADS)} inserted at line {at} of "
                                            f"{host['id']} (host source {host['source']})",
                     "licence": LIC + "; host text: " + host["licence"]})
    return rows


if __name__ == "__main__":
    main()
