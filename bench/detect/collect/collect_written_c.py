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


def written_rows(letter: str, module, host_sources, about: str):
    """A written set's raw rows: its standalone tools (`module.TOOLS`) as source written-<letter>
    and its clauses grafted into real tools of `host_sources` (`module.grafted`) as
    written-grafted-<letter>, each origin naming the clause, where it went and its host."""
    a = [{"source": f"written-{letter}", "label": "attack", "class": t["class"], "server": t["server"], "tool": t["tool"],
          "origin": f"written ({about}) from the public write-ups, see {module.__name__}.py", "licence": LIC}
         for t in module.TOOLS]
    hosts = []
    for src in host_sources:
        hosts += [json.loads(line) for line in (DATA / f"{src}.jsonl").read_text(encoding="utf-8").split("\n") if line.strip()]
    g = []
    for cls, host, tool, ci, where in module.grafted(hosts):
        g.append({"source": f"written-grafted-{letter}", "label": "attack", "class": cls, "server": host["server"], "tool": tool,
                  "origin": f"written-{letter} clause {ci} grafted at {where} of {host['origin']} (server {host['server']}) "
                            f"tool {host['tool']['name']} (host source {host['source']})",
                  "licence": LIC + "; host tool: " + host["licence"]})
    return a, g


def check_and_write(letter: str, a, g) -> None:
    """Every card non-empty and none twice, then RAW/tools/written-<letter>.jsonl and -grafted-."""
    seen = {}
    for r in a + g:
        card = tool_card(r["tool"])
        assert card.strip(), ("empty tool card", r["origin"])
        k = norm(card)
        assert k not in seen, ("duplicate tool card", r["origin"], seen[k])
        seen[k] = r["origin"]
    write_jsonl(RAW / f"tools/written-{letter}.jsonl", a)
    write_jsonl(RAW / f"tools/written-grafted-{letter}.jsonl", g)


def main():
    a, g = written_rows("c", tools_c, HOST_SOURCES, "product voice, varied vehicles")
    check_and_write("c", a, g)
    print(f"written-c {len(a)}, written-grafted-c {len(g)} -> {RAW / 'tools'}")


if __name__ == "__main__":
    main()
