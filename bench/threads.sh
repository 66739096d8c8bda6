#!/usr/bin/env bash
# CPU time per decision of each thread of a `warden bench` run, from `perf record`'s
# cpu-clock samples: a thread's samples count only while it runs, so unlike decisions/s the
# split moves little with the machine's load (a busy box still adds cache misses and
# switches). Shows where a governed decision's CPU goes: the deciding threads, the audit
# writer, its WAL checkpoint thread, the trust writer.
#
#   bash bench/threads.sh target/release/warden -p governed.yaml --input get.json -t 2 \
#     -n 300000 --db w.db --audit-mode buffered --credential cred.json --trust-root DID
#
# (The files are the ones bench/instructions.sh writes.) Deletes `w.db` first if given.
set -euo pipefail
WARDEN=$1
shift
command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 2; }
args=("$@")
n=1000000
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    -n) n=${args[$((i + 1))]} ;;
    --db) rm -f "${args[$((i + 1))]}" "${args[$((i + 1))]}"-wal "${args[$((i + 1))]}"-shm ;;
  esac
done
data=$(mktemp)
trap 'rm -f "$data"' EXIT
perf record -q -F 2000 -o "$data" "$WARDEN" bench "${args[@]}" 2>/dev/null | grep decisions
# The bench makes 10,000 warm-up decisions before the measured ones.
perf report -i "$data" -n --sort comm --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' |
  awk -v n=$((n + 10000)) '{printf "%-20s %6.2f µs/decision\n", $3, $2 / 2000 / n * 1e6; t += $2}
    END {printf "%-20s %6.2f µs/decision\n", "all threads", t / 2000 / n * 1e6}'
