"""The reference toolkit's policy engine (agent-governance-toolkit-core, agent_os.policies)
on the brief's policy and the same two actions as the Warden runs, timed two ways:

- its own way (agent_os.policies.async_evaluator / agent_os.base_agent): time.perf_counter()
  around each PolicyEvaluator.evaluate(context); mean = total / count; p99 = the sorted
  sample at index min(int(count * 0.99), count - 1);
- our way (warden bench): every call timed on its own, p50/p99 at index (n - 1) * p of the
  sorted samples, throughput = calls / wall-clock time of the whole loop.

Both come from one run. The engine gets the URL's host pre-parsed in its context (it has no
URL parsing); Warden parses the URL inside every decision.

Usage: python bench/reference.py [ITERATIONS]  -> one JSON object on stdout.
"""

import json
import sys
import time
from pathlib import Path

from agent_os.policies.evaluator import PolicyEvaluator
from agent_os.policies.schema import PolicyDocument

HERE = Path(__file__).resolve().parent
N = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000

evaluator = PolicyEvaluator(policies=[PolicyDocument.from_yaml(HERE / "reference-policy.yaml")])
contexts = [
    {"agent": "bench", "action": "http_request", "host": "api.github.com", "method": "GET",
     "url": "https://api.github.com/repos/rust-lang/rust"},
    {"agent": "bench", "action": "execute_code", "code": "print(1)"},
]
expected = [True, False]
for ctx, want in zip(contexts, expected):
    got = evaluator.evaluate(ctx).allowed
    assert got == want, f"reference engine disagrees with the brief on {ctx}: {got}"

for i in range(2_000):  # warm up
    evaluator.evaluate(contexts[i % 2])

samples = []
wall_start = time.perf_counter()
for i in range(N):
    start = time.perf_counter()
    evaluator.evaluate(contexts[i % 2])
    samples.append(time.perf_counter() - start)
wall = time.perf_counter() - wall_start

s = sorted(samples)
count = len(s)
ns = lambda secs: int(secs * 1e9)
print(json.dumps({
    "engine": "agent-governance-toolkit-core",
    "decisions": count,
    # its own way
    "own_mean_ns": ns(sum(s) / count),
    "own_p99_ns": ns(s[min(int(count * 0.99), count - 1)]),
    # our way
    "p50_ns": ns(s[int((count - 1) * 0.50)]),
    "p99_ns": ns(s[int((count - 1) * 0.99)]),
    "decisions_per_sec": count / wall,
}))
