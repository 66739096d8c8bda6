"""Self-checks of the evaluation code: `bench/detect/.venv/bin/python -m unittest bench/detect/test_detect.py`.

Why: the numbers in docs/detection.md are only as good as the card, the windows, the threshold
rule and the head maths behind them; these fail if any of those drift from the contract.
The embedding tests skip when the model has not been fetched (run.sh fetches it).
"""

from __future__ import annotations

import json
import sys
import unittest
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import baselines as B  # noqa: E402
import data as D  # noqa: E402
import train as T  # noqa: E402


class ToolCard(unittest.TestCase):
    def test_fixture_cards(self):
        doc = json.loads((HERE / "fixtures" / "tool_cards.json").read_text())
        for case in doc["cases"]:
            self.assertEqual(D.tool_card(case["tool"]), case["card"])

    def test_depth_is_bounded_and_order_kept(self):
        tool = {"name": "t", "inputSchema": {"properties": {
            "z": {"description": "last?"},
            "a": {"properties": {"b": {"properties": {"c": {"properties": {"d": {"description": "deep"}}}}}}},
        }}}
        card = D.tool_card(tool).split("\n")
        # Paths stop at depth 3; what is deeper is read in the rest of the tool, without a path.
        self.assertEqual(card, ["t", "z: last?", "a: ", "a.b: ", "a.b.c: ", "d", "deep"])


class Lines(unittest.TestCase):
    def test_card_lines_are_distinct_non_empty_in_order(self):
        self.assertEqual(T.card_lines("a\n\nb\na\n  \nc"), ["a", "b", "c"])


class Threshold(unittest.TestCase):
    def test_fpr_at_most_target(self):
        rng = np.random.default_rng(1)
        labels = (rng.random(1000) < 0.3).astype(int)
        # probabilities (the MiniLM heads) and decision values either side of 1 (the n-gram
        # model's; a step "just above" a score past 1 once went towards 1.0, below the score)
        for scores in (rng.random(1000), rng.normal(0.0, 3.0, 1000)):
            for target in (0.0, 0.01, 0.05, 0.2):
                thr = T.choose_threshold(scores, labels, target)
                _, fpr = T.rates(scores, labels, thr)
                self.assertLessEqual(fpr, target)
                # the threshold is a float32, and the binary compares float32 values: the same
                self.assertEqual(thr, float(np.float32(thr)))
                f32 = (scores.astype(np.float32) >= np.float32(thr))[labels == 0].mean()
                self.assertLessEqual(f32, target)
                # and it is the lowest such threshold: one benign row more would pass the target
                neg = np.sort(scores[labels == 0])[::-1]
                allowed = int(np.floor(target * len(neg)))
                self.assertGreater((neg >= np.nextafter(neg[allowed], -np.inf)).mean(), target)


class Head(unittest.TestCase):
    def test_fit_separates_and_contract_roundtrips(self):
        rng = np.random.default_rng(2)
        x = rng.normal(size=(400, 384))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        y = (x[:, 0] > 0).astype(float)
        layers = T.fit(x, y, np.ones(len(y)), "mlp-64", epochs=300)
        z, _ = T.forward(layers, x)
        self.assertGreater(((z > 0) == (y == 1)).mean(), 0.95)
        head = T.to_contract(layers, "tools", 0.5, "0" * 64, ["a"], ["b"], "mlp-64")
        s_contract = B.head_scores(
            [{"weight": l["weight"], "bias": l["bias"], "activation": l["activation"]} for l in head["layers"]], x
        )
        np.testing.assert_allclose(s_contract, T.sigmoid(z), atol=1e-5)

    def test_a_kept_head_reads_back_as_written(self):
        rng = np.random.default_rng(3)
        x = rng.normal(size=(50, 384))
        layers = T.init_layers("mlp-64", rng)
        head = T.to_contract(layers, "texts", 0.95, "a" * 64, ["a"], ["b"], "mlp-64")
        head["units"] = "windows"  # as run() writes it
        _, arch, back, thr = T.from_contract(head, "texts", "a" * 64)
        self.assertEqual((arch, thr), ("mlp-64", float(np.float32(0.95))))
        np.testing.assert_allclose(T.forward(back, x)[0], T.forward(layers, x)[0], atol=1e-5)
        # A head of the other kind, or for another model, is refused rather than scored.
        with self.assertRaises(SystemExit):
            T.from_contract(head, "tools", "a" * 64)
        with self.assertRaises(SystemExit):
            T.from_contract(head, "texts", "b" * 64)

    def test_the_committed_heads_are_kept(self):
        self.assertIn("texts", T.KEEP_HEAD)
        self.assertIn("tools", T.KEEP_HEAD)
        for kind in sorted(T.KEEP_HEAD):
            head = json.loads((T.HEADS / f"{kind}.json").read_text())
            self.assertEqual(T.from_contract(head, kind, head["model_sha256"])[1], head["arch"])
            # The sources named as never seen by the kept head: those that are their own group
            # are not among the groups it was fitted on.
            rows = D.load(kind)
            own_group = {r.source for r in rows if r.group == r.source}
            for source in T.KEEP_HEAD[kind] & own_group:
                self.assertNotIn(source, head["trained_on"])
            # Every train group of today's data the head was not fitted on is named there, so
            # no new source is shown as "(trained on)" by mistake.
            train_groups = {r.group for r in rows if T.split_of(kind, r.group) == "train"}
            self.assertLessEqual(train_groups - set(head["trained_on"]), T.KEEP_HEAD[kind], kind)

    def test_a_kept_head_with_other_windows_is_refused(self):
        layers = T.init_layers("logreg", np.random.default_rng(4))
        head = T.to_contract(layers, "texts", 0.5, "a" * 64, ["a"], ["b"], "logreg")
        head["units"] = "windows"
        T.from_contract(head, "texts", "a" * 64)
        for key, value in (("window", T.WINDOW * 2), ("stride", 1), ("max_windows", 1), ("units", "lines")):
            with self.subTest(key=key), self.assertRaises(SystemExit):
                T.from_contract({**head, key: value}, "texts", "a" * 64)


class Windows(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            from embed import Embedder

            cls.e = Embedder()
        except FileNotFoundError:
            raise unittest.SkipTest("model not fetched")

    def test_reference_values(self):
        from embed import verify

        self.assertLess(verify(self.e), 1e-5)

    def test_windows_cover_and_stride(self):
        text = " ".join(f"word{i}" for i in range(400))
        ids = self.e.content_ids(text)
        wins = self.e.windows(text)
        self.assertTrue(all(len(w) <= 128 and w[0] == self.e.cls_id and w[-1] == self.e.sep_id for w in wins))
        self.assertEqual(wins[0][1:-1], ids[:126])
        self.assertEqual(wins[1][1:-1], ids[64:190])
        self.assertEqual(wins[-1][-2], ids[-1])
        self.assertLess((len(wins) - 2) * 64 + 126, len(ids))  # the one before last did not reach the end

    def test_fixture_embeddings(self):
        doc = json.loads((HERE / "fixtures" / "embeddings.json").read_text())
        self.assertEqual(doc["model_sha256"], self.e.model_sha256)
        for case in doc["cases"]:
            wins = self.e.windows(case["text"])
            self.assertEqual(wins, case["window_ids"])
            got = self.e.embed_windows(wins)
            self.assertLess(float(np.abs(got - np.array(case["embeddings"])).max()), 1e-5)


if __name__ == "__main__":
    unittest.main()
