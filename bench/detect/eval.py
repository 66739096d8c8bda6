"""The per-source evaluation table: rules, model, rules+model and the baselines on the same rows.

Why: issue 16 asks for recall and false-positive rate per source and per attack class, for
Warden's rules alone, the model alone and both, beside jailguard's head and the reference
toolkit's scanner, with the command that produced it. This reads train.py's held-out scores
(bench/detect/results/<kind>.json), runs the comparators on the same rows, and writes Markdown
to stdout and, with --write, between the markers in docs/detection.md.

"Model (held-out)" on a test source is the shipped head (trained on the train sources, threshold
from validation). "Model (LOSO)" on any source is a head that never saw that source, its
threshold chosen out-of-fold on the others.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

import baselines as B
import data as D
import train as T
from embed import CachedEmbedder, Embedder

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DOC = ROOT / "docs" / "detection.md"
BEGIN = "<!-- bench/detect/run.sh: begin -->"
END = "<!-- bench/detect/run.sh: end -->"


def cell(flags: list[int], labels: list[int]) -> str:
    """'recall a/n' for attack rows and 'FPR b/m' for benign rows of one group."""
    f = np.array(flags, dtype=bool)
    y = np.array(labels)
    parts = []
    if (y == 1).any():
        k, n = int(f[y == 1].sum()), int((y == 1).sum())
        parts.append(f"{k / n:.2f} ({k}/{n})")
    else:
        parts.append("–")
    if (y == 0).any():
        k, n = int(f[y == 0].sum()), int((y == 0).sum())
        parts.append(f"{k / n:.3f} ({k}/{n})")
    else:
        parts.append("–")
    return " · ".join(parts)


def evaluate(kind: str, warden: str | None, jg_dir: Path | None, use_agt: bool) -> tuple[str, dict]:
    res_path = HERE / "results" / f"{kind}.json"
    if not res_path.exists():
        return f"_No {kind} results: run train.py first._\n", {}
    res = json.loads(res_path.read_text())
    rows = D.load(kind)
    by_id = {r.id: r for r in rows}
    scored = [x for x in res["rows"] if x["id"] in by_id]
    if len(scored) != len(rows):
        raise SystemExit(f"{kind}: results/{kind}.json is stale ({len(scored)} of {len(rows)} rows); rerun train.py")
    rows = [by_id[x["id"]] for x in scored]
    labels = [r.label for r in rows]

    methods: dict[str, list[int]] = {}
    notes = []
    if warden:
        fn = B.rules_tools if kind == "tools" else B.rules_texts
        m = fn(rows, warden)
        methods["rules"] = [m[r.id] for r in rows]
    else:
        notes.append("rules: no warden binary given (WARDEN=...), column left out")
    thr = res["threshold"]
    methods["model (held-out)"] = [int(x["score"] >= thr) for x in scored]
    loso_thr = res.get("loso_thresholds") or {}
    if loso_thr:
        methods["model (LOSO)"] = [int(x["loso_score"] is not None and x["loso_score"] >= loso_thr.get(x["group"], 2.0)) for x in scored]
    if "rules" in methods:
        methods["rules+model"] = [max(a, b) for a, b in zip(methods["rules"], methods["model (held-out)"])]
        if "model (LOSO)" in methods:
            methods["rules+model (LOSO)"] = [max(a, b) for a, b in zip(methods["rules"], methods["model (LOSO)"])]
    if jg_dir:
        layers = B.load_jailguard(jg_dir)
        cache = CachedEmbedder(Embedder(), HERE / ".cache")
        embs = cache.embed_many([r.text for r in rows], progress=True)
        first = np.stack([e[0] for e in embs])
        methods["jailguard"] = [int(s > 0.5) for s in B.head_scores(layers, first)]
        win = [float(B.head_scores(layers, e[: T.MAX_WINDOWS]).max()) for e in embs]
        methods["jailguard (windows)"] = [int(s > 0.5) for s in win]
    if use_agt:
        fn = B.agt_tools if kind == "tools" else B.agt_texts
        m = fn(rows)
        methods["agt"] = [m[r.id] for r in rows]

    out = []
    split = {x["id"]: x["split"] for x in scored}
    seen = {x["id"]: x.get("seen", x["split"] == "train") for x in scored}
    names = list(methods)
    # 1. headline on the test sources.
    test = [i for i, r in enumerate(rows) if split[r.id] == "test"]
    floor_rec, floor_fpr = T.FLOOR[kind]
    out.append(f"### {kind}: test sources ({', '.join(res['splits']['test']) or 'none'})\n")
    out.append(f"Each cell: recall (caught/attacks) · false-positive rate (flagged/benign). "
               f"Floor: recall ≥ {floor_rec} at FPR ≤ {floor_fpr}. Model threshold {thr:.4f} "
               f"({res['arch']}), chosen on validation ({', '.join(res['splits']['val']) or 'none'}).\n")
    out.append("| method | test |")
    out.append("|---|---|")
    for n in names:
        if "LOSO" in n:
            continue
        out.append(f"| {n} | {cell([methods[n][i] for i in test], [labels[i] for i in test])} |")
    out.append("")
    # 2. every source.
    out.append(f"### {kind}: per source\n")
    out.append("| source | split | " + " | ".join(names) + " |")
    out.append("|---|---|" + "---|" * len(names))
    by_src = defaultdict(list)
    for i, r in enumerate(rows):
        by_src[(split[r.id], r.source)].append(i)
    order = {"test": 0, "val": 1, "train": 2}
    for sp, s in sorted(by_src, key=lambda k: (order[k[0]], k[1])):
        ii = by_src[(sp, s)]
        # The held-out model's cells count only rows its head was not fitted on.
        fresh = [i for i in ii if not seen[rows[i].id]]
        cells = [
            ("(trained on)" if not fresh else cell([methods[n][i] for i in fresh], [labels[i] for i in fresh]))
            if n in ("model (held-out)", "rules+model")
            else cell([methods[n][i] for i in ii], [labels[i] for i in ii])
            for n in names
        ]
        out.append(f"| {s} | {sp} | " + " | ".join(cells) + " |")
    out.append("")
    # 3. per attack class: every source with the leave-one-group-out model, and the test sources.
    held = {"model (held-out)", "rules+model"}
    loso_names = [n for n in names if n not in held]
    by_cls = defaultdict(list)
    for i, r in enumerate(rows):
        if r.label == 1:
            by_cls[r.cls].append(i)
    for title, pick, cols in (
        ("all sources, model held out per group (LOSO)", lambda i: True, loso_names),
        ("test sources", lambda i: split[rows[i].id] == "test", [n for n in names if "LOSO" not in n]),
    ):
        out.append(f"### {kind}: recall per attack class, {title}\n")
        out.append("| class | attacks | " + " | ".join(cols) + " |")
        out.append("|---|---|" + "---|" * len(cols))
        for c in sorted(by_cls):
            ii = [i for i in by_cls[c] if pick(i)]
            if not ii:
                continue
            cells = [f"{np.mean([methods[n][i] for i in ii]):.2f}" for n in cols]
            out.append(f"| {c} | {len(ii)} | " + " | ".join(cells) + " |")
        out.append("")
    if notes:
        out.extend(f"_{n}_" for n in notes)
        out.append("")
    summary = {}
    for n in names:
        if test:
            t = [i for i in test]
            f = np.array([methods[n][i] for i in t], bool)
            y = np.array([labels[i] for i in t])
            summary[n] = {
                "recall": float(f[y == 1].mean()) if (y == 1).any() else None,
                "fpr": float(f[y == 0].mean()) if (y == 0).any() else None,
            }
    return "\n".join(out) + "\n", summary


def main(argv):
    ap = argparse.ArgumentParser(description="per-source evaluation table")
    ap.add_argument("--warden", default=os.environ.get("WARDEN"))
    ap.add_argument("--jailguard", default=os.environ.get("JAILGUARD_DIR"), help="unpacked jailguard 0.1.2 wheel")
    ap.add_argument("--no-agt", action="store_true")
    ap.add_argument("--write", action="store_true", help="write into docs/detection.md between the markers")
    ap.add_argument("--command", default="bash bench/detect/run.sh")
    args = ap.parse_args(argv)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [
        f"Produced by `{args.command}` on {when}. The held-out model columns score each row with "
        "the head `train.py` wrote or, for a kind in its `KEEP_HEAD`, the committed head it kept; "
        "the LOSO columns with heads fitted per group during the run.\n"
    ]
    summaries = {}
    for kind in ("tools", "texts"):
        text, summary = evaluate(kind, args.warden, Path(args.jailguard) if args.jailguard else None, not args.no_agt)
        md.append(text)
        summaries[kind] = summary
    body = "\n".join(md)
    print(body)
    (HERE / "results" / "summary.json").write_text(json.dumps(summaries, indent=1) + "\n")
    if args.write:
        doc = DOC.read_text() if DOC.exists() else f"# Detection\n\n{BEGIN}\n{END}\n"
        if BEGIN not in doc:
            doc += f"\n{BEGIN}\n{END}\n"
        a, rest = doc.split(BEGIN, 1)
        _, b = rest.split(END, 1)
        DOC.write_text(a + BEGIN + "\n" + body + "\n" + END + b)
        print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
