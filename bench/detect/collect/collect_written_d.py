#!/usr/bin/env python3
"""Raw rows for written-d (written/tools_d.py), a VALIDATION set by an independent writer: 63
standalone poisoned tools (7 per class) and 45 real benign tools of servers-h1 with one of its 45
clauses grafted in (5 per class).

    python3 bench/detect/collect/collect_written_d.py        # RAW=/tmp/detect-raw by default

Writes RAW/tools/written-d.jsonl and RAW/tools/written-grafted-d.jsonl (raw rows, no ids: finalize.py
adds them). Hosts come from the finished data file servers-h1.jsonl only; each grafted row's origin
says `host source servers-h1` and names the host tool. The writer did not open the other written
sets, the other attack sources, docs/detection.md or the detector sources (see tools_d.py).
"""
import json
import os
import sys
from collections import Counter
from pathlib import Path

from common import norm, tool_card, write_jsonl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "written"))
RAW = Path(os.environ.get("RAW", "/tmp/detect-raw"))
DATA = HERE.parent / "data/tools"
HOST_SOURCES = ("servers-h1",)

import tools_d  # noqa: E402

LIC = "Apache-2.0 (written for this repository)"


def standalone():
    return [{"source": "written-d", "label": "attack", "class": t["class"], "server": t["server"], "tool": t["tool"],
             "origin": "written (writer d, independent validation set; varied tone and vehicles) from the public "
                       "write-ups, see tools_d.py", "licence": LIC}
            for t in tools_d.TOOLS]


def grafted_d():
    hosts = []
    for src in HOST_SOURCES:
        hosts += [json.loads(line) for line in (DATA / f"{src}.jsonl").read_text(encoding="utf-8").split("\n") if line.strip()]
    rows = []
    for cls, host, tool, ci, where in tools_d.grafted(hosts):
        rows.append({"source": "written-grafted-d", "label": "attack", "class": cls, "server": host["server"], "tool": tool,
                     "origin": f"written-d clause {ci} grafted at {where} of {host['origin']} (server {host['server']}) "
                               f"tool {host['tool']['name']} (host source {host['source']})",
                     "licence": LIC + "; host tool: " + host["licence"]})
    return rows


def main():
    a, g = standalone(), grafted_d()
    seen = {}
    for r in a + g:
        card = tool_card(r["tool"])
        assert card.strip(), ("empty tool card", r["origin"])
        k = norm(card)
        assert k not in seen, ("duplicate tool card", r["origin"], seen[k])
        seen[k] = r["origin"]
    write_jsonl(RAW / "tools/written-d.jsonl", a)
    write_jsonl(RAW / "tools/written-grafted-d.jsonl", g)
    print(f"written-d {len(a)} {dict(sorted(Counter(r['class'] for r in a).items()))}")
    print(f"written-grafted-d {len(g)} {dict(sorted(Counter(r['class'] for r in g).items()))}")
    print(f"-> {RAW / 'tools'}")


if __name__ == "__main__":
    main()
