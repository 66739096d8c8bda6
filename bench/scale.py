#!/usr/bin/env python3
"""Decision latency and `policy validate` time as the YAML policy grows (issue 19's table).

    python3 bench/scale.py                       # uses target/release/warden
    WARDEN=/path/to/warden python3 bench/scale.py --markdown

Each policy has N exact rules (`action_<i>`, every third a deny) and M glob rules in four
shapes, so every strategy of a glob matcher is exercised:

    i % 4 == 0, 1   prefix      ns<i>.*
    i % 4 == 2      suffix      *.op<i>
    i % 4 == 3      other glob  tool<i>.?et

Two actions are timed with `warden bench -n 100000 -t 1`: an exact name in the middle of
the set (`action_<N/2>`-ish, an allow rule), and a name a glob in the middle of the glob
rules matches (`ns<M/2>.read`). `policy validate` is timed once, wall clock.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

SIZES = [(1000, 0), (10000, 0), (1000, 100), (5000, 500), (10000, 1000), (20000, 2000)]


def policy(n_exact, n_glob):
    out = ["name: scale", "default: deny", "rules:"]
    for i in range(n_exact):
        effect = "deny" if i % 3 == 0 else "allow"
        out.append(f'  - effect: {effect}\n    action: "action_{i}"')
    for i in range(n_glob):
        shape = i % 4
        pat = f"ns{i}.*" if shape in (0, 1) else (f"*.op{i}" if shape == 2 else f"tool{i}.?et")
        effect = "deny" if i % 3 == 0 else "allow"
        out.append(f'  - effect: {effect}\n    action: "{pat}"')
    return "\n".join(out) + "\n"


def middle_exact(n):
    i = n // 2
    while i % 3 == 0:
        i += 1
    return f"action_{i}"


def middle_glob(m):
    i = m // 2
    while i % 4 not in (0, 1):
        i += 1
    return f"ns{i}.read"


def bench(warden, path, action, n):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"action": action}, f)
        inp = f.name
    try:
        out = subprocess.run(
            [warden, "bench", "-p", path, "-n", str(n), "-t", "1", "--input", inp, "--json"],
            check=True, capture_output=True, text=True, timeout=600,
        ).stdout
    finally:
        os.unlink(inp)
    return json.loads(out)


def validate(warden, path):
    t0 = time.monotonic()
    subprocess.run([warden, "policy", "validate", path], check=True,
                   capture_output=True, timeout=600)
    return time.monotonic() - t0


def human_ns(ns):
    return f"{ns} ns" if ns < 1000 else f"{ns / 1000:.2f} µs"


def human_s(s):
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", default=os.environ.get("WARDEN", "target/release/warden"))
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--sizes", help="comma-separated EXACT+GLOB pairs, e.g. 1000+100,20000+2000")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--write", metavar="DIR",
                    help="only write the policies (scale-N-M.yaml) and actions "
                         "(scale-N-M.exact.json, scale-N-M.glob.json) into DIR")
    args = ap.parse_args()
    sizes = SIZES
    if args.sizes:
        sizes = [tuple(int(x) for x in s.split("+")) for s in args.sizes.split(",")]
    if args.write:
        for n_exact, n_glob in sizes:
            base = os.path.join(args.write, f"scale-{n_exact}-{n_glob}")
            with open(base + ".yaml", "w") as f:
                f.write(policy(n_exact, n_glob))
            with open(base + ".exact.json", "w") as f:
                json.dump({"action": middle_exact(n_exact)}, f)
            if n_glob:
                with open(base + ".glob.json", "w") as f:
                    json.dump({"action": middle_glob(n_glob)}, f)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_exact, n_glob in sizes:
            path = os.path.join(tmp, f"scale-{n_exact}-{n_glob}.yaml")
            with open(path, "w") as f:
                f.write(policy(n_exact, n_glob))
            exact = bench(args.warden, path, middle_exact(n_exact), args.n)
            glob = bench(args.warden, path, middle_glob(n_glob), args.n) if n_glob else None
            load = validate(args.warden, path)
            rows.append((n_exact, n_glob, exact, glob, load))
            print(f"{n_exact}+{n_glob}: exact p50 {exact['p50_ns']} ns"
                  + (f", glob p50 {glob['p50_ns']} ns" if glob else "")
                  + f", validate {load:.3f} s", file=sys.stderr)
    if args.markdown:
        print("| policy | decision p50, exact name | decision p50, glob match | `policy validate` |")
        print("|---|---|---|---|")
        for n_exact, n_glob, exact, glob, load in rows:
            name = f"{n_exact:,} exact" + (f" + {n_glob:,} glob" if n_glob else "") + " rules"
            g = human_ns(glob["p50_ns"]) if glob else "—"
            print(f"| {name} | {human_ns(exact['p50_ns'])} | {g} | {human_s(load)} |")


if __name__ == "__main__":
    main()
