"""Validation numbers of the shipped tools detectors: the rules (a `warden` binary) and the
committed MiniLM tools head, at its committed threshold, on the tools validation sources only
(servers-h1, written-d, and the rows grafted on servers-h1 hosts). No test source is read.

    cd bench/detect && .venv/bin/python validate.py --warden ../../target/debug/warden

Why: the tools head's threshold and the rules were chosen with a validation set of 15 grafted
attacks; writer d's 108 attacks (DATA.md) say how the shipped detectors do on attacks written
apart from the train sources, per source and per attack class, before anything is tuned on
them. The model is read from $WARDEN_MODEL_DIR or bench/detect/.model (run.sh fetches it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import baselines as B  # noqa: E402
import data as D  # noqa: E402
import train as T  # noqa: E402
from embed import CachedEmbedder, Embedder  # noqa: E402
from eval import cell  # noqa: E402


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warden", required=True, help="the warden binary whose rules are measured")
    args = ap.parse_args(argv)

    rows = [r for r in D.load("tools") if T.split_of("tools", r.group) == "val"]
    y = np.array([r.label for r in rows])
    rules = B.rules_tools(rows, args.warden)
    head = json.loads((T.HEADS / "tools.json").read_text())
    emb = Embedder()
    _, _, layers, thr = T.from_contract(head, "tools", emb.model_sha256)
    embs = T.embed_rows(rows, CachedEmbedder(emb, HERE / ".cache"), head.get("units", "windows"))
    # compared as the binary compares them: float32 score against the float32 threshold
    model = (T.row_scores(layers, embs).astype(np.float32) >= np.float32(thr)).astype(int)
    flags = {"rules": np.array([rules[r.id] for r in rows]), "MiniLM head": model}
    flags["rules + MiniLM head"] = np.maximum(flags["rules"], flags["MiniLM head"])

    print(f"tools validation: {len(rows)} rows ({int(y.sum())} attacks); MiniLM threshold {thr:.4f} (committed)")
    print("  each cell: recall (caught/attacks) · false-positive rate (flagged/benign)")
    by_source = defaultdict(list)
    for i, r in enumerate(rows):
        by_source[r.source].append(i)
    print("| source | " + " | ".join(flags) + " |")
    print("|---|" + "---|" * len(flags))
    for name, idx in [("all", list(range(len(rows))))] + sorted(by_source.items()):
        print(f"| {name} | " + " | ".join(cell(f[idx], y[idx]) for f in flags.values()) + " |")
    by_class = defaultdict(list)
    for i, r in enumerate(rows):
        if r.label == 1:
            by_class[r.cls].append(i)
    print("\n| attack class | attacks | " + " | ".join(flags) + " |")
    print("|---|---|" + "---|" * len(flags))
    for cls, idx in sorted(by_class.items()):
        print(f"| {cls} | {len(idx)} | " + " | ".join(f"{f[idx].mean():.2f}" for f in flags.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
