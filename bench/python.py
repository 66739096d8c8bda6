"""Warden from Python: ``warden.Warden.decide`` (the pip-installed package, bindings/python) on
the brief's policy and the same two actions as every other row, timed like bench/reference.py
(each call with ``time.perf_counter_ns``; p50/p99 at index (n - 1) * p of the sorted samples;
throughput = calls / wall-clock time of the whole loop), in the same interpreter kind, so the two
Python rows compare like with like.

Each call passes the action the way an adapter does: the name, the agent and a fresh-looking
args dict (the same dict objects, converted on every call). No audit log, as in the other
in-process rows.

Usage: python bench/python.py [ITERATIONS]  -> one JSON object on stdout.
"""

import json
import sys
import time
from pathlib import Path

import warden

ROOT = Path(__file__).resolve().parent.parent
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000

w = warden.Warden(policy=[str(ROOT / "examples" / "brief.yaml")])
actions = [json.loads(line) for line in (ROOT / "bench" / "actions.jsonl").read_text().splitlines()]
calls = [(a["action"], a.get("agent"), a.get("args")) for a in actions]
for (name, agent, args), want in zip(calls, ["allow", "deny"], strict=True):
    got = w.decide(name, agent=agent, args=args).verdict
    assert got == want, f"{name} -> {got}, expected {want}"

decide = w.decide
clock = time.perf_counter_ns
for i in range(20_000):  # warm up
    name, agent, args = calls[i % 2]
    decide(name, agent=agent, args=args)

samples = [0] * N
wall_start = time.perf_counter()
for i in range(N):
    name, agent, args = calls[i % 2]
    start = clock()
    decide(name, agent=agent, args=args)
    samples[i] = clock() - start
wall = time.perf_counter() - wall_start

s = sorted(samples)
print(json.dumps({
    "engine": "warden (Python)",
    "version": warden.__version__,
    "decisions": N,
    "p50_ns": s[int((N - 1) * 0.50)],
    "p99_ns": s[int((N - 1) * 0.99)],
    "decisions_per_sec": N / wall,
}))
