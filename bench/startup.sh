#!/usr/bin/env bash
# Start-up of painpoint serve (issue 20): seconds from its launch to its first stored batch.
#
#   bench/startup.sh [--binary PATH]... [--runs N] [--events N] [--in-process]
#
# Per binary (default build/service/painpoint; repeat --binary to compare builds in one run) and
# run (default 3): `painpoint broker --port 0` of that binary, N events (default 1,000,
# bench/gen_events.py) produced to its three topics, then `painpoint serve --brokers ...` on a
# fresh data dir, /metrics polled every 20 ms. Prints per run the seconds from the launch of serve
# to its first /metrics answer and to the first sample with painpoint_store_events > 0.
# --in-process: serve without --brokers (its broker in-process, as in the demo); the events are
# produced once serve logs its broker's address, so the second figure includes producing them.
# Everything listens on 127.0.0.1; every wait has a timeout; an EXIT trap stops every child.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BINARIES=()
RUNS=3
EVENTS=1000
IN_PROCESS=0

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --binary) BINARIES+=("$(realpath "$2")"); shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    --in-process) IN_PROCESS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "startup.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ ${#BINARIES[@]} -gt 0 ]] || BINARIES=("$ROOT/build/service/painpoint")
for b in "${BINARIES[@]}"; do [[ -x $b ]] || { echo "startup.sh: no binary at $b" >&2; exit 2; }; done

TMP=$(mktemp -d /tmp/painpoint-startup.XXXXXX)
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
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TOPICS=(feedback.support feedback.sales feedback.customer)
mkdir -p "$TMP/events"
timeout 120 /usr/bin/python3 "$ROOT/bench/gen_events.py" --events "$EVENTS" --out-dir "$TMP/events" \
  >/dev/null

# stop PID...: SIGTERM, then SIGKILL after 20 s.
stop() {
  local pid
  kill "$@" 2>/dev/null || true
  for pid in "$@"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# produce_all BIN BROKER TAG: the three topics' events, in parallel.
produce_all() {
  local t pids=()
  for t in "${TOPICS[@]}"; do
    timeout 120 "$1" produce --brokers "$2" --topic "$t" --input "$TMP/events/$t.jsonl" \
      >"$TMP/$3.$t.produce" 2>&1 &
    pids+=($!)
  done
  for t in "${pids[@]}"; do wait "$t"; done
}

# start_broker BIN TAG: a `painpoint broker`; sets BROKER and BROKER_PID.
start_broker() {
  BROKER=
  "$1" broker --port 0 >"$TMP/$2.broker.out" 2>"$TMP/$2.broker.log" &
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  for _ in $(seq 300); do
    BROKER=$(head -n1 "$TMP/$2.broker.out" 2>/dev/null | grep -Eo '^127\.0\.0\.1:[0-9]+$' || true)
    [[ -n $BROKER ]] && return
    sleep 0.1
  done
  echo "startup.sh: the broker printed no address" >&2
  exit 1
}

# one_run BIN TAG: prints "TAG: http X s, first stored batch Y s".
one_run() {
  local bin=$1 tag=$2 serve_pid t0 now answered= stored port= embedded= pids=()
  if [[ $IN_PROCESS == 0 ]]; then
    start_broker "$bin" "$tag"
    produce_all "$bin" "$BROKER" "$tag"
    pids+=("$BROKER_PID")
  fi
  t0=$(date +%s.%N)
  if [[ $IN_PROCESS == 0 ]]; then
    "$bin" serve --brokers "$BROKER" --data-dir "$TMP/$tag.data" --config "$TMP/static.conf" \
      --http-port 0 >"$TMP/$tag.serve.log" 2>&1 &
  else
    "$bin" serve --data-dir "$TMP/$tag.data" --config "$TMP/static.conf" --http-port 0 \
      >"$TMP/$tag.serve.log" 2>&1 &
  fi
  serve_pid=$!
  PIDS+=("$serve_pid")
  pids+=("$serve_pid")
  local deadline=$((SECONDS + 60))
  while (( SECONDS < deadline )); do
    if [[ $IN_PROCESS == 1 && -z $embedded ]]; then
      embedded=$(grep -Eo 'embedded Kafka broker listening on 127\.0\.0\.1:[0-9]+' \
                 "$TMP/$tag.serve.log" 2>/dev/null | grep -Eo '127\.0\.0\.1:[0-9]+$' || true)
      if [[ -n $embedded ]]; then
        produce_all "$bin" "$embedded" "$tag" &
        PIDS+=($!)
      fi
    fi
    [[ -n $port ]] || port=$(grep -Eo 'serving: http://127\.0\.0\.1:[0-9]+' "$TMP/$tag.serve.log" 2>/dev/null |
                             grep -Eo '[0-9]+$' || true)
    if [[ -n $port ]]; then
      stored=$({ curl -fsS --max-time 1 "http://127.0.0.1:$port/metrics" 2>/dev/null || true; } |
               awk '$1 == "painpoint_store_events" { printf "%.0f", $2 }')
      now=$(date +%s.%N)
      [[ -n $stored && -z $answered ]] && answered=$now
      if [[ -n $stored && $stored != 0 ]]; then
        awk -v tag="$tag" -v t0="$t0" -v a="$answered" -v s="$now" \
          'BEGIN { printf "%s: http %.2f s, first stored batch %.2f s\n", tag, a - t0, s - t0 }'
        stop "${pids[@]}"
        return
      fi
    fi
    sleep 0.02
  done
  echo "startup.sh: $tag stored nothing within 60 s" >&2
  exit 1
}

echo "load: $(uptime)"
n=1
for bin in "${BINARIES[@]}"; do
  if [[ $IN_PROCESS == 1 ]]; then
    echo "== binary$n: $bin; broker in-process, $EVENTS events produced once it listens"
  else
    echo "== binary$n: $bin; $EVENTS events waiting on the broker"
  fi
  for run in $(seq "$RUNS"); do one_run "$bin" "binary$n.run$run"; done
  n=$((n + 1))
done
echo "load: $(uptime)"
