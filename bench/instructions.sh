#!/usr/bin/env bash
# Instructions per decision, counted by valgrind's callgrind: a number that does not move with
# the machine's load, so a regression shows even on a busy 2-core box.
#
#   bash bench/instructions.sh                    # uses target/release/warden
#   WARDEN=/path/to/warden N=20000 bash bench/instructions.sh
#
# Each row runs `warden bench -t 1` twice under callgrind, with -n 1 and -n N (both after the
# same 10,000 warm-up decisions), counting only inside `warden::Warden::decide`
# (--toggle-collect: policy loading, clock reads and the bench loop are not counted), and
# prints the difference divided by N − 1: the steady-state instructions of one decision, with
# one-time costs (lazy statics, first-use caches, warm-up) cancelled out. The count is exact
# for a given binary and input; it changes only when the code on the path does.
set -euo pipefail
cd "$(dirname "$0")/.."
WARDEN=${WARDEN:-target/release/warden}
N=${N:-20000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }

python3 bench/scale.py --write "$WORK" --sizes 1000+0,1000+100,20000+2000
printf '{"action":"execute_code"}\n' >"$WORK/deny.json"

# name | policy | input (empty: warden bench's default, an allowed GET to api.github.com)
ROWS=(
  "brief, GET allow (URL parsed)|examples/brief.yaml|"
  "brief, execute_code deny|examples/brief.yaml|$WORK/deny.json"
  "1,000 exact rules, exact name|$WORK/scale-1000-0.yaml|$WORK/scale-1000-0.exact.json"
  "1,000 exact + 100 glob, exact name|$WORK/scale-1000-100.yaml|$WORK/scale-1000-100.exact.json"
  "1,000 exact + 100 glob, glob name|$WORK/scale-1000-100.yaml|$WORK/scale-1000-100.glob.json"
  "20,000 exact + 2,000 glob, exact name|$WORK/scale-20000-2000.yaml|$WORK/scale-20000-2000.exact.json"
  "20,000 exact + 2,000 glob, glob name|$WORK/scale-20000-2000.yaml|$WORK/scale-20000-2000.glob.json"
)
if [ -n "${EXTRA_ROWS:-}" ]; then
  # More rows, `;`-separated, in the same `name|policy|input` form.
  IFS=';' read -r -a MORE <<<"$EXTRA_ROWS"
  ROWS+=("${MORE[@]}")
fi

echo "| workload (\`warden bench -t 1\` under callgrind, -n $N minus -n 1) | instructions per decision |"
echo "|---|---|"
# Instructions counted inside decide in one `warden bench -n $1` run of the current row.
count() {
  local out="$WORK/callgrind.out" args=(bench -p "$policy" -n "$1" -t 1)
  [ -n "$input" ] && args+=(--input "$input")
  rm -f "$out"
  timeout 1200 valgrind --tool=callgrind --callgrind-out-file="$out" \
    --collect-atstart=no --toggle-collect='warden::Warden::decide' \
    "$WARDEN" "${args[@]}" >/dev/null 2>"$WORK/valgrind.log" \
    || { cat "$WORK/valgrind.log" >&2; exit 1; }
  local total
  total=$(grep -m1 '^summary:' "$out" | awk '{print $2}')
  [ -n "$total" ] && [ "$total" -gt 0 ] || { echo "no instructions counted in decide: is the symbol there?" >&2; exit 1; }
  echo "$total"
}
for row in "${ROWS[@]}"; do
  IFS='|' read -r name policy input <<<"$row"
  one=$(count 1)
  many=$(count "$N")
  echo "| $name | $(( (many - one) / (N - 1) )) |"
done
