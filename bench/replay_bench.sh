#!/usr/bin/env bash
# `painpoint replay rebuild` against `painpoint cluster` on the same events, in one run (issue 6).
#
#   bench/replay_bench.sh [--events N] [--partitions P] [--keep]
#
# 1. Fills a store the way production does: `painpoint broker --partitions P` (default 128: the
#    embedded broker keeps at most 5 MiB per partition), N synthetic events from
#    bench/gen_events.py produced to the three input topics, and `painpoint serve
#    --exit-when-idle` until it has stored, clustered and published them all.
# 2. (a) `painpoint cluster` on the same events, sorted by (occurred_at, event id), timed by its
#    own summary line (clustering only, no file output).
#    (b) `painpoint replay rebuild` on the stopped store with the same configuration, in its
#    default order (arrival: the order serve clustered them in), timed by its summary line
#    (reading every event and its old membership from RocksDB, clustering, id inheritance, and
#    committing state, memberships and summaries). Its report shows what a rebuild with an
#    unchanged configuration keeps and moves.
#    Both under /usr/bin/time -v (wall, CPU, peak RSS). Prints both rates and (b)/(a).
#    (c) `painpoint replay rebuild --dry-run --order occurred-at` on the rebuilt store: the same
#    replay in (a)'s order, for what that order would have changed and what it costs.
#
# Everything listens on 127.0.0.1; an EXIT trap stops every child. Binary: $PAINPOINT_BIN, default
# build/service/painpoint. Needs: /usr/bin/time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PAINPOINT=${PAINPOINT_BIN:-$ROOT/build/service/painpoint}
PY=/usr/bin/python3
EVENTS=1000000
PARTITIONS=128
KEEP=0
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --events) EVENTS=$2; shift 2 ;;
    --partitions) PARTITIONS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "replay_bench.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $EVENTS =~ ^[0-9]+$ && $EVENTS -gt 0 ]] || { echo "replay_bench.sh: --events must be > 0" >&2; exit 2; }
[[ -x $PAINPOINT ]] || { echo "replay_bench.sh: no binary at $PAINPOINT" >&2; exit 2; }
STEP_TIMEOUT=$(( 600 + EVENTS / 200 ))

TMP=$(mktemp -d /tmp/painpoint-replay-bench.XXXXXX)
# The static clustering, the mode these figures are for (serve's default is semantic).
printf 'cluster.encoder = static\n' >"$TMP/static.conf"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [[ $KEEP == 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
wall() { grep -E 'Elapsed \(wall clock\)' "$1" | awk '{print $NF}'; }
rss() { grep -E 'Maximum resident set size' "$1" | awk '{print $NF}'; }

log "binary $PAINPOINT, $EVENTS events, $PARTITIONS partitions, tmp $TMP; load: $(uptime)"
"$PAINPOINT" broker --port 0 --partitions "$PARTITIONS" >"$TMP/broker.out" 2>"$TMP/broker.log" &
PIDS+=($!)
BROKER=
for _ in $(seq 300); do
  BROKER=$(head -n1 "$TMP/broker.out" 2>/dev/null | grep -Eo '^127\.0\.0\.1:[0-9]+$' || true)
  [[ -n $BROKER ]] && break
  sleep 0.1
done
[[ -n $BROKER ]] || { echo "replay_bench.sh: broker printed no address" >&2; exit 1; }

log "generating and producing $EVENTS events to $BROKER"
mkdir -p "$TMP/events"
timeout "$STEP_TIMEOUT" "$PY" "$ROOT/bench/gen_events.py" --events "$EVENTS" --out-dir "$TMP/events" >&2
TOPICS=(feedback.support feedback.sales feedback.customer)
produce_pids=()
for t in "${TOPICS[@]}"; do
  timeout "$STEP_TIMEOUT" "$PAINPOINT" produce --brokers "$BROKER" --topic "$t" \
    --input "$TMP/events/$t.jsonl" >"$TMP/produce.$t.out" 2>"$TMP/produce.$t.err" &
  produce_pids+=($!)
  PIDS+=($!)
done
for pid in "${produce_pids[@]}"; do
  wait "$pid" || { echo "replay_bench.sh: a produce failed" >&2; cat "$TMP"/produce.*.out >&2; exit 1; }
done

log "filling the store: painpoint serve --exit-when-idle"
t0=$(date +%s.%N)
timeout "$STEP_TIMEOUT" "$PAINPOINT" serve --brokers "$BROKER" --data-dir "$TMP/data" \
  --config "$TMP/static.conf" --http-port 0 --exit-when-idle >"$TMP/serve.log" 2>&1 ||
  { echo "replay_bench.sh: serve failed" >&2; tail -20 "$TMP/serve.log" >&2; exit 1; }
log "serve stored the events in $(calc %.1f "$(date +%s.%N) - $t0") s"

log "sorting the events by (occurred_at, event id) for painpoint cluster"
"$PY" - "$TMP/events" "$TMP/sorted.jsonl" <<'EOF'
import json, os, sys
rows = []
for name in sorted(os.listdir(sys.argv[1])):
    with open(os.path.join(sys.argv[1], name)) as f:
        for line in f:
            e = json.loads(line)
            rows.append((e["occurredAt"], e["eventId"], line))
rows.sort()
with open(sys.argv[2], "w") as out:
    out.writelines(r[2] for r in rows)
EOF

log "(a) painpoint cluster"
/usr/bin/time -v -o "$TMP/cluster.time" "$PAINPOINT" cluster --set encoder=static --input "$TMP/sorted.jsonl" \
  --output "$TMP/assignments.jsonl" 2>"$TMP/cluster.err"
CLUSTER_LINE=$(grep '^painpoint cluster:' "$TMP/cluster.err" | tail -n1)
log "$CLUSTER_LINE"
log "(b) painpoint replay rebuild"
/usr/bin/time -v -o "$TMP/rebuild.time" "$PAINPOINT" replay rebuild --data-dir "$TMP/data" \
  --config "$TMP/static.conf" >"$TMP/rebuild.out" 2>"$TMP/rebuild.err" || { cat "$TMP/rebuild.err" >&2; exit 1; }
REBUILD_LINE=$(grep '^rebuild:' "$TMP/rebuild.out" | tail -n1)
log "$REBUILD_LINE"

log "(c) painpoint replay rebuild --dry-run --order occurred-at"
/usr/bin/time -v -o "$TMP/rebuild-time-order.time" "$PAINPOINT" replay rebuild --data-dir "$TMP/data" \
  --config "$TMP/static.conf" --dry-run --order occurred-at >"$TMP/rebuild-time-order.out" 2>"$TMP/rebuild-time-order.err" ||
  { cat "$TMP/rebuild-time-order.err" >&2; exit 1; }
TIME_ORDER_LINE=$(grep '^rebuild:' "$TMP/rebuild-time-order.out" | tail -n1)
log "$TIME_ORDER_LINE"

CLUSTER_EVENTS=$(echo "$CLUSTER_LINE" | grep -Eo '[0-9]+ events,' | grep -Eo '[0-9]+')
CLUSTER_S=$(echo "$CLUSTER_LINE" | grep -Eo '[0-9.]+ s,' | grep -Eo '[0-9.]+')
REBUILD_EVENTS=$(echo "$REBUILD_LINE" | grep -Eo '[0-9]+ events,' | head -n1 | grep -Eo '[0-9]+')
REBUILD_S=$(echo "$REBUILD_LINE" | sed -E 's/.*(published|to publish) [0-9]+, ([0-9.]+) s.*/\2/')
CLUSTER_RATE=$(calc %.0f "$CLUSTER_EVENTS / $CLUSTER_S")
REBUILD_RATE=$(calc %.0f "$REBUILD_EVENTS / $REBUILD_S")
echo "events: cluster $CLUSTER_EVENTS, rebuild $REBUILD_EVENTS"
echo "(a) painpoint cluster:         $CLUSTER_S s, $CLUSTER_RATE events/s (process wall $(wall "$TMP/cluster.time"), peak RSS $(rss "$TMP/cluster.time") KB)"
echo "(b) painpoint replay rebuild:  $REBUILD_S s, $REBUILD_RATE events/s (process wall $(wall "$TMP/rebuild.time"), peak RSS $(rss "$TMP/rebuild.time") KB)"
echo "(b)/(a): $(calc %.2f "$REBUILD_RATE / $CLUSTER_RATE")"
echo "(b) $REBUILD_LINE"
echo "(c) $TIME_ORDER_LINE (process wall $(wall "$TMP/rebuild-time-order.time"), peak RSS $(rss "$TMP/rebuild-time-order.time") KB)"
echo "load after: $(uptime)"
