"""An experiment beside the heads (issue 16): a linear model over hashed word and character
n-grams, fitted on the same train sources, its threshold chosen on the same validation sources,
scored per split. Not shipped; docs/detection.md ("A hashed n-gram model") has its numbers and
why it is here.

    bench/detect/.venv/bin/pip install scikit-learn==1.9.1    # once; not in requirements.txt
    cd bench/detect && .venv/bin/python ngram.py tools|texts [--test] [--warden PATH] [--bits N]

Without `--test` it prints validation only. `--test` adds the test sources, and with `--warden`
the rules and their union with this model and with the committed MiniLM head
(`results/<kind>.json`, as train.py scored it), so the three can be compared on one set of rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import data as D  # noqa: E402
import train as T  # noqa: E402
from eval import cell  # noqa: E402

# Chosen before any score was seen: words (and single punctuation marks) 1–3 at a time, and
# characters 3–5 inside word boundaries, each hashed into 2^bits slots (20 unless --bits) and
# L2-normalised.
def vectorizers(bits: int) -> tuple[HashingVectorizer, HashingVectorizer]:
    words = HashingVectorizer(n_features=2**bits, ngram_range=(1, 3), alternate_sign=False,
                              norm="l2", token_pattern=r"(?u)\b\w+\b|[^\w\s]")
    chars = HashingVectorizer(n_features=2**bits, analyzer="char_wb", ngram_range=(3, 5),
                              alternate_sign=False, norm="l2")
    return words, chars


# The regularisation, chosen on validation recall (0.3, 1, 3 and 10 were tried; 1 was best or
# tied on both kinds).
C = 1.0


def features(texts: list[str], bits: int):
    words, chars = vectorizers(bits)
    return hstack([words.transform(texts), chars.transform(texts)]).tocsr()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["tools", "texts"])
    ap.add_argument("--test", action="store_true", help="also score the test sources")
    ap.add_argument("--warden", help="the warden binary, for the rules' columns (with --test)")
    ap.add_argument("--bits", type=int, default=20, choices=range(10, 21), metavar="10..20",
                    help="hash slots per vectorizer, as a power of two (default 20)")
    args = ap.parse_args(argv)
    kind = args.kind

    rows = D.load(kind)
    part = np.array([T.split_of(kind, r.group) for r in rows])
    y = np.array([r.label for r in rows])
    x = features([r.text for r in rows], args.bits)
    # Each (group, label)'s rows share one weight, so a source with many rows does not decide;
    # `class_weight="balanced"` then evens out the two labels.
    count = Counter((r.group, r.label) for r in rows)
    w = np.array([1.0 / count[(r.group, r.label)] for r in rows])
    tr, va, te = part == "train", part == "val", part == "test"
    model = LogisticRegression(C=C, max_iter=3000, class_weight="balanced")
    model.fit(x[tr], y[tr], sample_weight=w[tr] / w[tr].mean())
    score = model.decision_function(x)
    thr = T.choose_threshold(score[va], y[va], T.TARGET_FPR[kind])
    flags = {"n-gram": (score >= thr).astype(int)}

    if args.test and args.warden:
        import baselines as B

        rules = (B.rules_tools if kind == "tools" else B.rules_texts)(rows, args.warden)
        flags["rules"] = np.array([rules[r.id] for r in rows])
        head = json.loads((HERE / "results" / f"{kind}.json").read_text())
        by_id = {h["id"]: int(h["score"] >= head["threshold"]) for h in head["rows"]}
        flags["MiniLM head"] = np.array([by_id[r.id] for r in rows])
        flags["rules + n-gram"] = np.maximum(flags["rules"], flags["n-gram"])
        flags["rules + MiniLM head"] = np.maximum(flags["rules"], flags["MiniLM head"])

    splits = [("validation", va)] + ([("test", te)] if args.test else [])
    print(f"{kind}: {len(rows)} rows; threshold {thr:.4f} for FPR ≤ {T.TARGET_FPR[kind]} on validation")
    print("  each cell: recall (caught/attacks) · false-positive rate (flagged/benign)")
    for name, f in flags.items():
        print(f"  {name:20} " + " | ".join(f"{split} {cell(f[mask], y[mask])}" for split, mask in splits))
    if args.test:
        print("  per test source, n-gram:")
        for source in sorted({r.source for r, t in zip(rows, te) if t}):
            mask = te & np.array([r.source == source for r in rows])
            print(f"    {source:24} {cell(flags['n-gram'][mask], y[mask])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
