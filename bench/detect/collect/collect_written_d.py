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
import sys
from collections import Counter
from pathlib import Path

# The same rows, checks and files as written-c's, from another module and other hosts.
from collect_written_c import RAW, check_and_write, written_rows

sys.path.insert(0, str(Path(__file__).resolve().parent / "written"))
HOST_SOURCES = ("servers-h1",)

import tools_d  # noqa: E402


def main():
    a, g = written_rows("d", tools_d, HOST_SOURCES, "writer d, independent validation set; varied tone and vehicles")
    check_and_write("d", a, g)
    print(f"written-d {len(a)} {dict(sorted(Counter(r['class'] for r in a).items()))}")
    print(f"written-grafted-d {len(g)} {dict(sorted(Counter(r['class'] for r in g).items()))}")
    print(f"-> {RAW / 'tools'}")


if __name__ == "__main__":
    main()
