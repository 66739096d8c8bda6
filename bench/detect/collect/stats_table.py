#!/usr/bin/env python3
"""Print the counts tables of DATA.md from data/STATS.json (and splice them in with --write)."""
import json
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
CARD = DATA.parent / "DATA.md"


def table() -> str:
    st = json.loads((DATA / "STATS.json").read_text())
    out = []
    for kind in ("tools", "texts"):
        out.append(f"\n**{kind}**\n")
        out.append("| source | before dedup | after | benign | attack (by class) | duplicates dropped (first seen in) |")
        out.append("| --- | ---: | ---: | ---: | --- | --- |")
        tot = [0, 0, 0, 0]
        for src, s in st[kind].items():
            ben = sum(s["labels"].get("benign", {}).values())
            att = s["labels"].get("attack", {})
            natt = sum(att.values())
            cls = ", ".join(f"{k} {v}" for k, v in sorted(att.items())) or "–"
            dups = ", ".join(f"{k} {v}" for k, v in s["duplicates_of"].items()) or "–"
            out.append(f"| {src} | {s['before']} | {s['after']} | {ben} | {natt}: {cls} | {dups} |")
            tot = [tot[0] + s["before"], tot[1] + s["after"], tot[2] + ben, tot[3] + natt]
        out.append(f"| **total** | {tot[0]} | {tot[1]} | {tot[2]} | {tot[3]} | |")
    out.append("\n**captured servers** (tools as captured, before dedup)\n")
    out.append("| package@version | registry | source | tools | licence |")
    out.append("| --- | --- | --- | ---: | --- |")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from collect_tools import source_of
    for f in sorted((Path(__file__).resolve().parent / "captures").glob("*.json")):
        d = json.loads(f.read_text())
        out.append(f"| {d['origin']} | {d['registry']} | {source_of(d['package'])} | {len(d['tools'])} | "
                   f"{d.get('licence') or 'not stated in the package metadata'} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    t = table()
    if "--write" in sys.argv:
        card = CARD.read_text()
        a, b = "<!-- counts:begin -->", "<!-- counts:end -->"
        pre, rest = card.split(a, 1)
        _, post = rest.split(b, 1)
        CARD.write_text(pre + a + "\n" + t + b + post)
    else:
        print(t)
