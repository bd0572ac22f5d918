#!/usr/bin/env bash
# Load benchmark of the read API (issue 20): requests/s, p50 and p99 per endpoint, with wrk, on a
# store holding Banking77-shaped data, idle and while serve ingests at full speed.
#
#   bench/api_load.sh [--binary PATH]... [--events N] [--duration S] [--connections C]
#                     [--product ID] [--keep]
#   bench/api_load.sh --pain-points 1000,10000,100000 [--binary PATH]... [--duration S] ...
#
# Per binary (default build/service/painpoint; repeat --binary to compare builds in one run, on
# the same events, one after the other):
#   1. `painpoint broker --port 0 --partitions 32`, a fresh data dir; N events (default 200,000)
#      of `gen_events.py --workload banking77` (100 products, ~200 pain points each) produced, then
#      `painpoint serve` until /metrics shows all N stored and the outbox empty.
#   2. idle: `wrk -t2 -cC -dS --latency` (C = 64, S = 10) on each endpoint in turn;
#   3. during ingestion: for each endpoint, N more events (a new seed per endpoint) are produced
#      and wrk starts once serve's stored count starts moving; printed with the events serve
#      stored while wrk ran, so a window that outlasted the ingestion is visible as such.
# Endpoints: /v1/products, /v1/products/ID/pain-points?limit=50 (severity, the default order),
# the same with sort=recent (ID default product-007).
# Prints one line per endpoint and phase: requests/s, p50, p99 (ms), timeouts, non-2xx/3xx.
# --pain-points SIZES: instead, for each size a fresh broker and store holding about that many
# active pain points over 100 products (`gen_events.py --workload distinct`, 3 events each), and
# `/v1/products` alone, idle: whether its cost grows with the pain points.
# Everything listens on 127.0.0.1; every wait has a timeout; an EXIT trap stops every child.
# Needs: wrk (scripts/install-deps.sh --bench), curl, python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3
BINARIES=()
EVENTS=200000
DURATION=10
CONNECTIONS=64
PRODUCT=product-007
KEEP=0
SIZES=

usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --binary) BINARIES+=("$(realpath "$2")"); shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --product) PRODUCT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --pain-points) SIZES=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "api_load.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ ${#BINARIES[@]} -gt 0 ]] || BINARIES=("$ROOT/build/service/painpoint")
for b in "${BINARIES[@]}"; do [[ -x $b ]] || { echo "api_load.sh: no binary at $b" >&2; exit 2; }; done
for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "api_load.sh: $tool is missing (scripts/install-deps.sh --bench)" >&2; exit 2; }
done

TMP=$(mktemp -d /tmp/painpoint-api-load.XXXXXX)
# The static clustering, the mode these figures are for (serve's default is semantic).
printf 'cluster.encoder = static\n' >"$TMP/static.conf"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ $KEEP == 1 ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
TOPICS=(feedback.support feedback.sales feedback.customer)
ENDPOINTS=("/v1/products" "/v1/products/$PRODUCT/pain-points?limit=50"
           "/v1/products/$PRODUCT/pain-points?limit=50&sort=recent")

# Seed 1 fills the store; seeds 2.. are the ingestion phase's, one per endpoint.
if [[ -z $SIZES ]]; then
  for seed in $(seq 1 $(( 1 + ${#ENDPOINTS[@]} ))); do
    mkdir -p "$TMP/events.$seed"
    timeout 600 "$PY" "$ROOT/bench/gen_events.py" --workload banking77 --events "$EVENTS" \
      --seed "$seed" --out-dir "$TMP/events.$seed" >/dev/null
  done
else
  for size in ${SIZES//,/ }; do
    mkdir -p "$TMP/distinct.$size"
    timeout 600 "$PY" "$ROOT/bench/gen_events.py" --workload distinct --events $((3 * size)) \
      --out-dir "$TMP/distinct.$size" >/dev/null
  done
fi

# produce BIN BROKER DIR: the three topics of DIR in parallel; fails if any event was not sent.
produce() {
  local bin=$1 broker=$2 dir=$3 t pids=()
  for t in "${TOPICS[@]}"; do
    timeout 600 "$bin" produce --brokers "$broker" --topic "$t" --input "$dir/$t.jsonl" \
      >"$dir/$t.produce" 2>&1 &
    pids+=($!)
  done
  for t in "${pids[@]}"; do wait "$t"; done
  for t in "${TOPICS[@]}"; do grep -q 'rejected 0, failed 0' "$dir/$t.produce"; done
}

# metric PORT NAME: a gauge or counter of serve's /metrics, as an integer (empty if absent or
# if serve did not answer within 5 s).
metric() {
  { curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" 2>/dev/null || true; } |
    awk -v n="$2" '$1 == n { printf "%.0f", $2 }'
}

# Waits until serve answers within a second again: requests wrk left queued (timed out on its
# side) would otherwise be served during the next endpoint's run.
settle() {
  local deadline=$((SECONDS + 300))
  until curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$1/readyz" 2>/dev/null; do
    (( SECONDS < deadline )) || { echo "api_load.sh: serve stays unresponsive" >&2; exit 1; }
    sleep 0.5
  done
}

wait_stored() {
  local port=$1 want=$2 deadline=$((SECONDS + 900))
  until [[ $(metric "$port" painpoint_store_events) == "$want" &&
           $(metric "$port" painpoint_outbox_pending) == 0 ]]; do
    (( SECONDS < deadline )) || { echo "api_load.sh: serve did not store $want events" >&2; exit 1; }
    sleep 0.5
  done
}

# load PORT LABEL PATH: one wrk run, one line of figures.
load() {
  local port=$1 label=$2 path=$3 out
  settle "$port"
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:$port$path")
  echo "$out" >"$TMP/wrk.last"
  awk -v label="$label" -v path="$path" '
    function ms(v) {
      if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000
      return v
    }
    /Requests\/sec:/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Socket errors:/ { timeouts = $NF }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    END { printf "%-10s %-58s %9.0f req/s  p50 %8.2f ms  p99 %8.2f ms  timeouts %s  non-2xx %s\n",
                 label, path, rps, p50, p99, timeouts + 0, bad + 0 }' <<<"$out"
}

# start_stack BIN TAG EVENTS_DIR: a fresh broker with EVENTS_DIR's events on it and serve on a
# fresh data dir; sets BROKER, BROKER_PID, SERVE_PID and PORT.
start_stack() {
  local bin=$1 tag=$2 dir=$3
  "$bin" broker --port 0 --partitions 32 >"$TMP/$tag.broker.out" 2>"$TMP/$tag.broker.log" &
  BROKER_PID=$!
  PIDS+=($BROKER_PID)
  BROKER=
  for _ in $(seq 300); do
    BROKER=$(head -n1 "$TMP/$tag.broker.out" 2>/dev/null | grep -Eo '^127\.0\.0\.1:[0-9]+$' || true)
    [[ -n $BROKER ]] && break
    sleep 0.1
  done
  [[ -n $BROKER ]] || { echo "api_load.sh: the broker printed no address" >&2; exit 1; }
  produce "$bin" "$BROKER" "$dir"
  "$bin" serve --brokers "$BROKER" --data-dir "$TMP/$tag.data" --config "$TMP/static.conf" \
    --http-port 0 >"$TMP/$tag.serve.log" 2>&1 &
  SERVE_PID=$!
  PIDS+=($SERVE_PID)
  PORT=
  for _ in $(seq 1200); do
    PORT=$(grep -Eo 'serving: http://127\.0\.0\.1:[0-9]+' "$TMP/$tag.serve.log" | grep -Eo '[0-9]+$' || true)
    [[ -n $PORT ]] && break
    kill -0 "$SERVE_PID" 2>/dev/null || { echo "api_load.sh: serve exited" >&2; tail "$TMP/$tag.serve.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n $PORT ]] || { echo "api_load.sh: serve did not start" >&2; exit 1; }
}

stop_stack() {
  kill "$SERVE_PID" "$BROKER_PID"
  local pid
  for pid in "$SERVE_PID" "$BROKER_PID"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  done
}

run_binary() {
  local bin=$1 tag=$2 broker port i stored0 stored1
  start_stack "$bin" "$tag" "$TMP/events.1"
  broker=$BROKER
  port=$PORT
  wait_stored "$port" "$EVENTS"
  local active
  active=$(metric "$port" painpoint_pain_points_active)
  echo "== $tag: $bin; $EVENTS events stored, $active active pain points; wrk -t2 -c$CONNECTIONS -d${DURATION}s =="
  for path in "${ENDPOINTS[@]}"; do load "$port" idle "$path"; done
  i=2
  for path in "${ENDPOINTS[@]}"; do
    stored0=$(metric "$port" painpoint_store_events)
    produce "$bin" "$broker" "$TMP/events.$i" &
    local producer=$!
    local deadline=$((SECONDS + 120))
    until [[ $(metric "$port" painpoint_store_events) != "$stored0" ]]; do
      (( SECONDS < deadline )) || { echo "api_load.sh: serve is not ingesting" >&2; exit 1; }
      sleep 0.1
    done
    stored0=$(metric "$port" painpoint_store_events)
    load "$port" ingesting "$path" | tr -d '\n'
    stored1=$(metric "$port" painpoint_store_events)
    if [[ -n $stored0 && -n $stored1 ]]; then
      echo "  (serve stored $((stored1 - stored0)) events meanwhile)"
    else
      echo "  (/metrics did not answer in time: events stored meanwhile unknown)"
    fi
    wait "$producer"
    wait_stored "$port" $(( EVENTS * i ))
    i=$((i + 1))
  done
  stop_stack
}

# run_sizes BIN TAG: /v1/products idle on a store of each size of --pain-points.
run_sizes() {
  local bin=$1 tag=$2 size events active
  for size in ${SIZES//,/ }; do
    events=$((3 * size))
    start_stack "$bin" "$tag.$size" "$TMP/distinct.$size"
    wait_stored "$PORT" "$events"
    active=$(metric "$PORT" painpoint_pain_points_active)
    echo "== $tag: $bin; $events events stored, $active active pain points, 100 products; wrk -t2 -c$CONNECTIONS -d${DURATION}s =="
    load "$PORT" idle /v1/products
    stop_stack
  done
}

log "load before: $(uptime)"
n=1
for bin in "${BINARIES[@]}"; do
  if [[ -n $SIZES ]]; then run_sizes "$bin" "binary$n"; else run_binary "$bin" "binary$n"; fi
  n=$((n + 1))
done
log "load after: $(uptime)"
