#!/usr/bin/env bash
# What the box around `warden exec` costs at start-up, side by side in one hyperfine run:
#
#   bash bench/sandbox.sh         # from the repository root; needs hyperfine and a release build
#
#   plain     /bin/true, forked and exec'd directly (hyperfine -N: no shell)
#   helper    `warden-sandbox SPEC` running /bin/true: the helper alone — start it, rlimits,
#             Landlock, seccomp, exec the program (no decision, no cgroup)
#   decision  `warden check` of the same `execute_code` action: the decision `warden exec`
#             makes before any box (policy load, the decision path)
#   exec      `warden exec ... --ring untrusted -- /bin/true`: decision + cgroups + helper +
#             program + cleanup, everything
#
# box overhead = exec - decision - plain; helper - plain is the part spent in the helper.
# Environment: WARDEN=/path/to/warden (default target/release/warden), RUNS (default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
WARDEN=${WARDEN:-target/release/warden}
RUNS=${RUNS:-300}
[ -x "$WARDEN" ] || cargo build --release -p warden-cli
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
P=examples/sandbox.yaml
touch "$WORK/status"
SPEC=$(printf '{"ring":"untrusted","landlock":true,"read":["/usr","/bin","/lib","/lib64","/etc/ld.so.cache"],"write":["/dev/null"],"network":false,"limits":{"cpu_secs":300,"memory_bytes":4294967296,"file_bytes":1073741824,"open_files":1024,"max_procs":256},"cgroups":[],"weaker":false,"status":"%s","argv":["/bin/true"]}' "$WORK/status")
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$WORK/runs.json" \
  -n plain /bin/true \
  -n helper "$(dirname "$WARDEN")/warden-sandbox '$SPEC'" \
  -n decision "$WARDEN check -p $P --agent builder -a execute_code" \
  -n exec "$WARDEN exec -p $P --agent builder --ring untrusted -- /bin/true"
# Medians (the machine is shared: means carry other builders' noise), and the box's share.
python3 - "$WORK/runs.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda name, key="median": r[name][key] * 1000
print("| run | median | min | mean ± σ |")
print("|---|---:|---:|---:|")
for name in ["plain", "helper", "decision", "exec"]:
    print(f"| `{name}` | {ms(name):.2f} ms | {ms(name, 'min'):.2f} ms | {ms(name, 'mean'):.2f} ± {ms(name, 'stddev'):.2f} ms |")
box = ms("exec") - ms("decision") - ms("plain")
print(f"\nbox overhead (exec - decision - plain, medians): {box:.2f} ms; helper - plain: {ms('helper') - ms('plain'):.2f} ms")
PY
