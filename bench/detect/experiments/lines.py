"""Experiment (2026-12-02, not shipped): can a tools head scored per card *line* find the
ordinary-sentence poisonings the whole-card head misses? Validation only (servers-h1, written-d
and the grafted rows on h1 hosts); the test sources are never scored here.

Variants, each fitted on the train sources with train.py's `fit` and two-stage top-unit
selection, and judged by recall on validation attacks at a threshold chosen on validation's
real tools for 1 %, 2 % and 5 % false positives:
- units `win` (the card's windows, the shipped contract), `line` (each distinct card line
  embedded alone), `winline` (both); architectures logreg and mlp-64;
- `graft`: for grafted attack rows, the lines no real tool has are the poison, so they are
  the positives (sentence labels for free) instead of the row's top-scoring unit;
- a nearest-neighbour score per line: the mean cosine to its 5 closest attack lines of train
  minus that to its 5 closest real-tool lines, max over the card's lines; and that score
  joined with the rules (`--warden` binary, flagged at medium or above) at several thresholds.

Run from bench/detect with its venv and WARDEN_MODEL_DIR set:
    .venv/bin/python experiments/lines.py --warden ../../target/release/warden
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import baselines as BL  # noqa: E402
import data as D  # noqa: E402
import train as T  # noqa: E402
from embed import CachedEmbedder, Embedder  # noqa: E402


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", help="a warden binary: also join the nearest-neighbour score with the rules")
    args = ap.parse_args(argv)
    rows = D.load("tools")
    cache = CachedEmbedder(Embedder(), T.HERE / ".cache")
    card = [e[: T.MAX_WINDOWS] for e in cache.embed_many([r.text for r in rows], progress=False)]
    per_row = [T.card_lines(r.text) for r in rows]
    flat = cache.embed_many([line for ls in per_row for line in ls])
    cache.save()
    lines, i = [], 0
    for ls in per_row:
        lines.append([flat[i + k] for k in range(len(ls))])
        i += len(ls)
    part = [T.split_of("tools", r.group) for r in rows]
    labels = np.array([r.label for r in rows])
    train = [k for k in range(len(rows)) if part[k] == "train"]
    val = [k for k in range(len(rows)) if part[k] == "val"]
    real_lines = {line for r, ls in zip(rows, per_row) if r.label == 0 for line in ls}

    def units(k, mode):
        parts = ([card[k]] if "win" in mode else []) + (lines[k] if "line" in mode else [])
        return np.concatenate(parts)

    def fit(mode, arch, graft):
        w_row = T.weights_for([rows[k] for k in train])
        fixed_x, fixed_y, fixed_w, mil = [], [], [], []
        for k, wr in zip(train, w_row):
            r = rows[k]
            if r.label == 0:
                u = units(k, mode)
                if len(u) > T.TRAIN_WINDOWS:
                    u = u[np.random.default_rng(k).choice(len(u), T.TRAIN_WINDOWS, replace=False)]
                fixed_x.append(u)
                fixed_y += [0] * len(u)
                fixed_w += [wr / len(u)] * len(u)
                continue
            new = [j for j, line in enumerate(per_row[k]) if line not in real_lines]
            if graft and "grafted" in r.source and new and "line" in mode:
                u = np.concatenate([lines[k][j] for j in new])
                fixed_x.append(u)
                fixed_y += [1] * len(u)
                fixed_w += [wr / len(u)] * len(u)
            else:
                mil.append((k, wr))
        layers = None
        for _ in range(2):
            xs, ys, ws = list(fixed_x), list(fixed_y), list(fixed_w)
            for k, wr in mil:
                u = units(k, mode)
                if layers is not None and len(u) > 1:
                    u = u[[int(np.argmax(T.forward(layers, u.astype(np.float64))[0]))]]
                xs.append(u)
                ys += [1] * len(u)
                ws += [wr / len(u)] * len(u)
            layers = T.fit(np.concatenate(xs).astype(np.float64), np.array(ys, float), np.array(ws), arch)
        return T.row_scores(layers, [units(k, mode) for k in val])

    lab = labels[val]

    def report(name, s):
        cells = []
        for fpr in (0.01, 0.02, 0.05):
            rec, got = T.rates(s, lab, T.choose_threshold(s, lab, fpr))
            cells.append(f"{rec:.3f} at {got:.3f}")
        thr = T.choose_threshold(s, lab, 0.01)
        hit, tot = Counter(), Counter()
        for k, v in zip(val, s):
            if rows[k].label:
                tot[rows[k].source] += 1
                hit[rows[k].source] += bool(v >= thr)
        per = " ".join(f"{x} {hit[x]}/{tot[x]}" for x in sorted(tot))
        print(f"{name:32} | {' | '.join(cells)} | {per}", flush=True)

    print(f"{'variant':32} | 1 % | 2 % | 5 % | per source at 1 %")
    for mode in ("win", "line", "winline"):
        for arch in ("logreg", "mlp-64"):
            for graft in (False, True):
                if graft and mode == "win":
                    continue
                report(f"{mode} {arch}{' graft' if graft else ''}", fit(mode, arch, graft))

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    real = unit(np.concatenate([np.concatenate(lines[k]) for k in train if rows[k].label == 0]))
    attack = unit(np.concatenate([
        lines[k][j] for k in train if rows[k].label == 1
        for j, line in enumerate(per_row[k]) if line not in real_lines and len(line.split()) >= 4
    ]))

    def knn(k, top=5):
        best = -9.0
        for e in lines[k]:
            e = unit(e)
            near_attack = np.sort(e @ attack.T, axis=1)[:, -top:].mean(1)
            near_real = np.sort(e @ real.T, axis=1)[:, -top:].mean(1)
            best = max(best, float((near_attack - near_real).max()))
        return best

    s = np.array([knn(k) for k in val])
    report("nearest lines (5)", s)
    if args.warden:
        flagged = BL.rules_tools([rows[k] for k in val], args.warden)
        r = np.array([flagged[rows[k].id] for k in val]) == 1
        print(f"rules alone: {r[lab == 1].mean():.3f} at {r[lab == 0].mean():.3f}")
        for fpr in (0.005, 0.01, 0.02):
            u = (s >= T.choose_threshold(s, lab, fpr)) | r
            print(f"rules or nearest lines (at {fpr:.3f} alone): {u[lab == 1].mean():.3f} at {u[lab == 0].mean():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
