#!/usr/bin/env python3
"""Raw rows for written-c (written/tools_c.py): 70 standalone poisoned tools and ~80 real benign
tools of servers-h0 / servers-h2 with one of its 40 clauses grafted in.

    python3 bench/detect/collect/collect_written_c.py        # RAW=/tmp/detect-raw by default

Writes RAW/tools/written-c.jsonl and RAW/tools/written-grafted-c.jsonl (raw rows, no ids: finalize.py
adds them). Hosts come from the finished data files servers-h0.jsonl and servers-h2.jsonl only, so
servers-h1/-h3 stay clean for evaluation; each grafted row's origin says `host source servers-hN`.
"""
import json
import os
import sys
from pathlib import Path

from common import norm, tool_card, write_jsonl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "written"))
RAW = Path(os.environ.get("RAW", "/tmp/detect-raw"))
DATA = HERE.parent / "data/tools"
HOST_SOURCES = ("servers-h0", "servers-h2")

import tools_c  # noqa: E402

LIC = "Apache-2.0 (written for this repository)"


def standalone():
    return [{"source": "written-c", "label": "attack", "class": t["class"], "server": t["server"], "tool": t["tool"],
             "origin": "written (product voice, varied vehicles) from the public write-ups, see tools_c.py", "licence": LIC}
            for t in tools_c.TOOLS]


def grafted_c():
    hosts = []
    for src in HOST_SOURCES:
        hosts += [json.loads(line) for line in (DATA / f"{src}.jsonl").read_text(encoding="utf-8").split("\n") if line.strip()]
    rows = []
    for cls, host, tool, ci, where in tools_c.grafted(hosts):
        rows.append({"source": "written-grafted-c", "label": "attack", "class": cls, "server": host["server"], "tool": tool,
                     "origin": f"written-c clause {ci} grafted at {where} of {host['origin']} (server {host['server']}) "
                               f"tool {host['tool']['name']} (host source {host['source']})",
                     "licence": LIC + "; host tool: " + host["licence"]})
    return rows


def main():
    a, g = standalone(), grafted_c()
    seen = {}
    for r in a + g:
        k = norm(tool_card(r["tool"]))
        assert k not in seen, ("duplicate tool card", r["origin"], seen[k])
        seen[k] = r["origin"]
    write_jsonl(RAW / "tools/written-c.jsonl", a)
    write_jsonl(RAW / "tools/written-grafted-c.jsonl", g)
    print(f"written-c {len(a)}, written-grafted-c {len(g)} -> {RAW / 'tools'}")


if __name__ == "__main__":
    main()
