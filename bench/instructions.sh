#!/usr/bin/env bash
# Instructions per decision, counted by valgrind's callgrind: a number that does not move with
# the machine's load, so a regression shows even on a busy 2-core box.
#
#   bash bench/instructions.sh                    # uses target/release/warden
#   WARDEN=/path/to/warden N=20000 bash bench/instructions.sh
#   ONLY=governed bash bench/instructions.sh     # just the rows whose name contains "governed"
#
# Each row runs `warden bench -t 1` twice under callgrind, with -n 1 and -n N (both after the
# same 10,000 warm-up decisions), counting only inside `warden::Warden::decide`
# (--toggle-collect: policy loading, clock reads and the bench loop are not counted), and
# prints the difference divided by N − 1: the steady-state instructions of one decision, with
# one-time costs (lazy statics, first-use caches, warm-up) cancelled out. The count is exact
# for a given binary and input; it changes only when the code on the path does.
#
# The rows marked "writer" count instead what the audit log's writer thread (and, with a
# credential, the trust store's) does per record with `--db --audit-mode buffered`: the whole
# thread, from its start (`Writer::run`, `write_loop`), divided the same way. Those are stable
# to about ±2%, not exactly: how records fall into batches (one transaction and one signed
# checkpoint each) depends on the threads' timing.
set -euo pipefail
cd "$(dirname "$0")/.."
WARDEN=${WARDEN:-target/release/warden}
N=${N:-20000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }

python3 bench/scale.py --write "$WORK" --sizes 1000+0,1000+100,20000+2000
printf '{"action":"execute_code"}\n' >"$WORK/deny.json"

# The governed path: the brief's rules plus a ring (its own rate) and a per-agent bucket, both
# too large to refuse; the agent's GET carries a credential (Ed25519 + ML-DSA-65, one link)
# from a fresh root, verified by the first decision and found in the cache by the rest.
cat >"$WORK/governed.yaml" <<'YAML'
rules:
  - action: "execute_code"
    allow: false
  - action: "http_request"
    allow: true
    domains: ["api.github.com"]
    methods: ["GET"]
rings:
  default: user
  profiles:
    user: {rate: 1000000000/second}
rate_limits:
  - {action: http_request, per: agent, limit: 1000000000/second, burst: 1000000000}
YAML
printf '{"action":"http_request","agent":"bot-7","args":{"url":"https://api.github.com/repos/x/y","method":"GET"}}\n' >"$WORK/get.json"
IDENTITY=""
if "$WARDEN" bench --help | grep -q -- '--credential'; then
  "$WARDEN" identity new --out "$WORK/root.key" >/dev/null
  AGENT=$("$WARDEN" identity new --out "$WORK/agent.key")
  ROOT=$("$WARDEN" identity show "$WORK/root.key" | awk '/^did:/ {print $2}')
  "$WARDEN" delegate --from "$WORK/root.key" --to "$AGENT" --capability http_request \
    --ttl 24h --out "$WORK/cred.json" >/dev/null 2>&1
  IDENTITY="--credential $WORK/cred.json --trust-root $ROOT"
fi

# name | policy | input (empty: warden bench's default, an allowed GET to api.github.com) |
# more `warden bench` arguments (a row whose arguments this binary lacks is printed as n/a) |
# the function whose calls are counted (default: Warden::decide)
AUDIT="--db $WORK/w.db --audit-mode buffered"
AUDIT_WRITER='warden_audit::log::writer::Writer::run'
TRUST_WRITER='warden_trust::store::write_loop'

ROWS=(
  "brief, GET allow (URL parsed)|examples/brief.yaml||"
  "brief, execute_code deny|examples/brief.yaml|$WORK/deny.json|"
  "1,000 exact rules, exact name|$WORK/scale-1000-0.yaml|$WORK/scale-1000-0.exact.json|"
  "1,000 exact + 100 glob, exact name|$WORK/scale-1000-100.yaml|$WORK/scale-1000-100.exact.json|"
  "1,000 exact + 100 glob, glob name|$WORK/scale-1000-100.yaml|$WORK/scale-1000-100.glob.json|"
  "20,000 exact + 2,000 glob, exact name|$WORK/scale-20000-2000.yaml|$WORK/scale-20000-2000.exact.json|"
  "20,000 exact + 2,000 glob, glob name|$WORK/scale-20000-2000.yaml|$WORK/scale-20000-2000.glob.json|"
  "governed: kill switch, ring, rate limits, brief's policy|$WORK/governed.yaml|$WORK/get.json|"
  "governed, with a cached verified credential|$WORK/governed.yaml|$WORK/get.json|${IDENTITY:-missing}"
  "governed, buffered audit log: decide|$WORK/governed.yaml|$WORK/get.json|$AUDIT"
  "governed, buffered audit log: audit writer per record|$WORK/governed.yaml|$WORK/get.json|$AUDIT|$AUDIT_WRITER"
  "governed + credential, buffered audit log: decide|$WORK/governed.yaml|$WORK/get.json|${IDENTITY:+$IDENTITY $AUDIT}|"
  "governed + credential, buffered audit log: audit writer per record|$WORK/governed.yaml|$WORK/get.json|${IDENTITY:+$IDENTITY $AUDIT}|$AUDIT_WRITER"
  "governed + credential, buffered audit log: trust writer per record|$WORK/governed.yaml|$WORK/get.json|${IDENTITY:+$IDENTITY $AUDIT}|$TRUST_WRITER"
)

echo "| workload (\`warden bench -t 1\` under callgrind, -n $N minus -n 1) | instructions per decision |"
echo "|---|---|"
# Instructions counted inside decide in one `warden bench -n $1` run of the current row.
count() {
  local out="$WORK/callgrind.out" args=(bench -p "$policy" -n "$1" -t 1)
  [ -n "$input" ] && args+=(--input "$input")
  # shellcheck disable=SC2206 # word splitting intended: the row's extra arguments
  [ -n "$extra" ] && args+=($extra)
  rm -f "$out" "$WORK"/w.db*
  timeout 1200 valgrind --tool=callgrind --callgrind-out-file="$out" \
    --collect-atstart=no --toggle-collect="${toggle:-warden::Warden::decide}" \
    "$WARDEN" "${args[@]}" >/dev/null 2>"$WORK/valgrind.log" \
    || { cat "$WORK/valgrind.log" >&2; exit 1; }
  local total
  total=$(grep -m1 '^summary:' "$out" | awk '{print $2}')
  [ -n "$total" ] && [ "$total" -gt 0 ] || { echo "no instructions counted in ${toggle:-decide}: is the symbol there?" >&2; exit 1; }
  echo "$total"
}
for row in "${ROWS[@]}"; do
  IFS='|' read -r name policy input extra toggle <<<"$row"
  # ONLY=word: just the rows whose name contains it.
  [[ "$name" == *"${ONLY:-}"* ]] || continue
  if [ "$extra" = missing ] || { [[ "$name" == *credential* ]] && [ -z "$IDENTITY" ]; }; then
    echo "| $name | n/a (this binary's bench has no --credential) |"
    continue
  fi
  one=$(count 1)
  many=$(count "$N")
  echo "| $name | $(( (many - one) / (N - 1) )) |"
done
