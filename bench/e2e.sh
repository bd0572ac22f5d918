#!/usr/bin/env bash
# End-to-end benchmark of painpoint serve against the raw consumption ceiling (issue 7).
#
#   bench/e2e.sh [--events N] [--partitions P] [--rate R] [--duration S] [--skip-latency]
#                [--serve-timeout S] [--perf] [--keep] [--config FILE] [--word-vectors FILE]
#                [--kafka embedded|real] [--kafka-version V] [--workload W[,W...]]
#
# Throughput (one run, one broker):
#   1. `painpoint broker --port 0 --partitions P`; N synthetic FeedbackEvents (bench/gen_events.py:
#      ~200 bytes of text, 100 products, 3 sources, recurring themes + one-off noise) produced with
#      `painpoint produce` to feedback.{support,sales,customer} (by source, three in parallel).
#      P defaults to 128: the embedded broker keeps at most 5 MiB per partition, so 1,000,000
#      events need that many partitions to stay whole.
#   2. (a) kcat consumes the three topics to the end (the raw ceiling of this broker and machine);
#      (b) `painpoint serve --exit-when-idle` from an empty data dir until every event is stored,
#      clustered and its summaries published, under /usr/bin/time -v (CPU seconds, peak RSS).
#      Serve's time runs from its start to the first /metrics sample (every 0.2 s) showing all N
#      events stored and an empty outbox (the exit comes later: --exit-when-idle waits 3 s of
#      quiet, then shuts down). Both times include client start-up and consumer-group joins.
#      If serve is not done within --serve-timeout S (default 600 + N/200 seconds),
#      (b) is reported INCOMPLETE with how far it got, and the script exits 1 at the end.
#   Prints events/s of (a) and (b), (b)/(a), CPU seconds per 1,000 events and peak RSS.
#
# Latency (second phase, fresh broker, fresh data dir; --skip-latency to skip): serve runs, then
#   bench/latency.py offers R events/s for S s (default 10,000/s for 30 s) with occurred_at = the
#   send time and reads painpoint.summaries. Per event: the CreateTime of the first summary record
#   that reflects it (its pain point's, found by listing members through the HTTP API) minus its
#   occurred_at, coalescing interval included; events that waited as candidates for support and
#   the first 5 s (warm-up from an empty store) are printed separately. See bench/latency.py.
#
# --config FILE is passed to both serves (e.g. `cluster.encoder = semantic`); without it they
# run `cluster.encoder = static`, the mode the throughput figures are for.
# --word-vectors FILE is passed to both serves (static mode; default: serve's own, GloVe's
#   ~/.cache/painpoint/glove-100d.bin). For the token vectors of scripts/fetch-token-vectors.sh,
#   give a --config setting cluster.sparse_weight = 0.6 and cluster.static_merge_ratio = 0.8,
#   their settings (docs/clustering.md, "Static token vectors").
# --kafka real runs both phases on Apache Kafka (scripts/kafka.sh, --kafka-version V, default its
#   newest 4.x) instead of `painpoint broker`, with the same topics (tests/kafka/create_topics.py);
#   kcat and serve then read the same real broker, and "broker CPU" is the broker's JVM.
#
# Everything listens on 127.0.0.1. Every wait has a timeout; an EXIT trap kills every child.
# Binary: $PAINPOINT_BIN, default build/service/painpoint of this repository.
# Needs: kcat, protoc, /usr/bin/time, python3-confluent-kafka, python3-protobuf (and perf for --perf).
# --perf records frame-pointer call chains; PERF_CALL_GRAPH=dwarf,16384 records DWARF ones instead
# (inlined frames and library callers, e.g. which code calls memcmp; ~250 MB for 1,000,000 events).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PAINPOINT=${PAINPOINT_BIN:-$ROOT/build/service/painpoint}
PY=/usr/bin/python3

EVENTS=1000000
PARTITIONS=128
RATE=10000
DURATION=30
SKIP_LATENCY=0
SERVE_TIMEOUT=
PERF=0
KEEP=0
SERVE_CONFIG=()
SERVE_VECTORS=()
KAFKA=embedded
KAFKA_VERSION=
REAL_BROKER_DIRS=()

usage() { sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; }
ALL_ARGS=("$@")
WORKLOAD=generated
while [[ $# -gt 0 ]]; do
  case $1 in
    --events) EVENTS=$2; shift 2 ;;
    --partitions) PARTITIONS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --skip-latency) SKIP_LATENCY=1; shift ;;
    --serve-timeout) SERVE_TIMEOUT=$2; shift 2 ;;
    --perf) PERF=1; shift ;;
    --keep) KEEP=1; shift ;;
    --config) SERVE_CONFIG=(--config "$(realpath "$2")"); shift 2 ;;
    --word-vectors) SERVE_VECTORS=(--word-vectors "$(realpath "$2")"); shift 2 ;;
    --kafka) KAFKA=$2; shift 2 ;;
    --kafka-version) KAFKA_VERSION=$2; shift 2 ;;
    --workload) WORKLOAD=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "e2e.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $EVENTS =~ ^[0-9]+$ && $EVENTS -gt 0 ]] || { echo "e2e.sh: --events must be > 0" >&2; exit 2; }
if [[ $WORKLOAD == *,* ]]; then
  # One run per workload, in order; the later --workload wins over the list.
  rc=0
  for w in ${WORKLOAD//,/ }; do "$0" "${ALL_ARGS[@]}" --workload "$w" || rc=1; done
  exit $rc
fi
[[ $WORKLOAD == generated || $WORKLOAD == banking77 ]] || { echo "e2e.sh: --workload generated|banking77" >&2; exit 2; }
[[ $KAFKA == embedded || $KAFKA == real ]] || { echo "e2e.sh: --kafka embedded|real" >&2; exit 2; }
[[ -x $PAINPOINT ]] || { echo "e2e.sh: no binary at $PAINPOINT (build it or set PAINPOINT_BIN)" >&2; exit 2; }
for tool in kcat protoc /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "e2e.sh: $tool is missing" >&2; exit 2; }
done

# Generous upper bounds: the point is that nothing hangs forever, not to judge speed.
STEP_TIMEOUT=$(( 600 + EVENTS / 200 ))
SERVE_TIMEOUT=${SERVE_TIMEOUT:-$STEP_TIMEOUT}

TMP=$(mktemp -d /tmp/painpoint-e2e.XXXXXX)
if ((${#SERVE_CONFIG[@]} == 0)); then
  printf 'cluster.encoder = static\n' >"$TMP/static.conf"
  SERVE_CONFIG=(--config "$TMP/static.conf")
fi
PIDS=()
cleanup() {
  local pid alive dir
  for dir in "${REAL_BROKER_DIRS[@]}"; do "$ROOT/scripts/kafka.sh" stop "$dir" || true; done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  # A graceful stop finishes the batch in flight; bounded, then forced.
  for _ in $(seq 50); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.2
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [[ $KEEP == 1 ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# Sets BROKER and BROKER_PID; the embedded broker's first stdout line is its bootstrap address.
start_broker() {
  local name=$1
  if [[ $KAFKA == real ]]; then
    REAL_BROKER_DIRS+=("$TMP/$name")
    BROKER=$("$ROOT/scripts/kafka.sh" start "$TMP/$name" --owner-pid $$ \
               ${KAFKA_VERSION:+--version "$KAFKA_VERSION"}) ||
      { echo "e2e.sh: scripts/kafka.sh start failed" >&2; exit 1; }
    BROKER_PID=$(cat "$TMP/$name/kafka.pid")
    "$PY" "$ROOT/tests/kafka/create_topics.py" "$BROKER" "$PARTITIONS" ||
      { echo "e2e.sh: creating the topics failed" >&2; exit 1; }
    return
  fi
  "$PAINPOINT" broker --port 0 --partitions "$PARTITIONS" >"$TMP/$name.out" 2>"$TMP/$name.log" &
  PIDS+=($!)
  BROKER_PID=$!
  local deadline=$((SECONDS + 30))
  BROKER=
  while [[ -z $BROKER ]]; do
    BROKER=$(head -n1 "$TMP/$name.out" 2>/dev/null | grep -Eo '^127\.0\.0\.1:[0-9]+$' || true)
    if [[ -z $BROKER ]]; then
      (( SECONDS < deadline )) || { echo "e2e.sh: $name printed no address" >&2; cat "$TMP/$name.log" >&2; exit 1; }
      sleep 0.1
    fi
  done
}

# CPU seconds (user + system) a process has used so far, from /proc (clock ticks).
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# CPU seconds per thread name of a process so far ("name seconds" lines, threads of one name
# summed), from /proc/PID/task/*/stat: exact, where perf's per-thread attribution is not.
thread_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{
      name = $0; sub(/^[^(]*\(/, "", name); sub(/\) .*$/, "", name)
      rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
      cpu[name] += (f[12] + f[13]) / hz
    } END { for (n in cpu) printf "%s %.2f\n", n, cpu[n] }' /proc/"$1"/task/*/stat 2>/dev/null | sort -k2 -nr
}

# Sets HTTP_PORT from serve's "painpoint serving: http://127.0.0.1:PORT" log line.
wait_serving() {
  local logf=$1 pid=$2 deadline=$((SECONDS + 120))
  HTTP_PORT=
  while [[ -z $HTTP_PORT ]]; do
    HTTP_PORT=$(grep -Eo 'serving: http://127\.0\.0\.1:[0-9]+' "$logf" | grep -Eo '[0-9]+$' || true)
    if [[ -z $HTTP_PORT ]]; then
      kill -0 "$pid" 2>/dev/null || { echo "e2e.sh: serve exited early" >&2; tail -20 "$logf" >&2; exit 1; }
      (( SECONDS < deadline )) || { echo "e2e.sh: serve did not start" >&2; exit 1; }
      sleep 0.1
    fi
  done
}

LOAD_BEFORE=$(uptime)
log "binary $PAINPOINT, workload $WORKLOAD, $EVENTS events, $PARTITIONS partitions, broker: $KAFKA${KAFKA_VERSION:+ $KAFKA_VERSION}, tmp $TMP"
log "load before: $LOAD_BEFORE"

# ---- throughput -------------------------------------------------------------------------------
start_broker broker1
log "broker at $BROKER; generating $EVENTS events"
mkdir -p "$TMP/events"
timeout "$STEP_TIMEOUT" "$PY" "$ROOT/bench/gen_events.py" --workload "$WORKLOAD" --events "$EVENTS" \
  --out-dir "$TMP/events" >&2

log "producing (three topics in parallel)"
TOPICS=(feedback.support feedback.sales feedback.customer)
produce_pids=()
for t in "${TOPICS[@]}"; do
  timeout "$STEP_TIMEOUT" "$PAINPOINT" produce --brokers "$BROKER" --topic "$t" \
    --input "$TMP/events/$t.jsonl" >"$TMP/produce.$t.out" 2>"$TMP/produce.$t.err" &
  produce_pids+=($!)
  PIDS+=($!)
done
t0=$(now)
for pid in "${produce_pids[@]}"; do
  wait "$pid" || { echo "e2e.sh: a produce failed" >&2; cat "$TMP"/produce.*.{out,err} >&2; exit 1; }
done
t1=$(now)
sent=0
for t in "${TOPICS[@]}"; do
  lines=$(wc -l <"$TMP/events/$t.jsonl")
  n=$(grep -Eo '^sent [0-9]+, rejected 0, failed 0' "$TMP/produce.$t.out" | grep -Eo '[0-9]+' | head -n1 || true)
  [[ $n == "$lines" ]] || { echo "e2e.sh: $t: produce reported '$(cat "$TMP/produce.$t.out")', file has $lines" >&2; exit 1; }
  sent=$((sent + n))
done
[[ $sent == "$EVENTS" ]] || { echo "e2e.sh: produced $sent of $EVENTS" >&2; exit 1; }
log "produced $sent events in $(calc %.1f "$t1 - $t0") s"

log "(a) kcat consuming the three topics to the end"
broker_cpu0=$(cpu_seconds "$BROKER_PID")
t0=$(now)
kcat_count=$(timeout "$STEP_TIMEOUT" kcat -b "$BROKER" -G "kcat-bench-$$" -o beginning -e -q \
  -f '%o\n' "${TOPICS[@]}" | wc -l)
t1=$(now)
KCAT_S=$(calc %.3f "$t1 - $t0")
[[ $kcat_count == "$EVENTS" ]] || { echo "e2e.sh: kcat read $kcat_count of $EVENTS (retention? more --partitions)" >&2; exit 1; }
log "kcat read $kcat_count in $KCAT_S s"
broker_cpu1=$(cpu_seconds "$BROKER_PID")

log "(b) painpoint serve --exit-when-idle from an empty store"
SERVE_LOG=$TMP/serve.log
broker_cpu2=
t0=$(now)
/usr/bin/time -v -o "$TMP/serve.time" timeout -k 20 "$((SERVE_TIMEOUT + 120))" "$PAINPOINT" serve \
  --brokers "$BROKER" --data-dir "$TMP/data" --http-port 0 --exit-when-idle "${SERVE_CONFIG[@]}" \
  "${SERVE_VECTORS[@]}" \
  >"$SERVE_LOG" 2>&1 &
TIME_PID=$!
PIDS+=($TIME_PID)
# serve is a grandchild (time -> timeout -> serve): its pid is needed for perf and for the cleanup,
# because /usr/bin/time does not pass signals on.
SERVE_PID=
for _ in $(seq 200); do
  tpid=$(pgrep -P "$TIME_PID" || true)
  [[ -n $tpid ]] && SERVE_PID=$(pgrep -P "$tpid" || true)
  [[ -n $SERVE_PID ]] && break
  sleep 0.05
done
[[ -n $SERVE_PID ]] || { echo "e2e.sh: serve did not start" >&2; exit 1; }
PIDS+=($SERVE_PID)
# Done = the first /metrics sample with every event stored and an empty outbox; that is what is
# timed, not the exit, which comes after --exit-when-idle's quiet wait and the shutdown.
wait_serving "$SERVE_LOG" "$TIME_PID"
if [[ $PERF == 1 ]]; then
  # Only once serving: perf -p samples the threads that exist when it attaches (attached at
  # exec, it saw 2 threads and 100 samples in 600 s). cpu-clock: VMs often lack hardware counters.
  perf record -e cpu-clock -F 499 --call-graph "${PERF_CALL_GRAPH:-fp}" -o "$TMP/perf.data" -p "$SERVE_PID" >"$TMP/perf.log" 2>&1 &
  PERF_PID=$!
  PIDS+=($PERF_PID)
fi
DONE_AT=
INCOMPLETE=0
serve_deadline=$(calc %.0f "$t0 + $SERVE_TIMEOUT")
st=0
# Bash builtins only, besides curl: this loop shares the machine with serve (with awk and date per
# value it took ~19 ms of CPU per poll, a tenth of a core at 5 polls a second).
t0_us=$(calc %.0f "$t0 * 1000000")
while kill -0 "$TIME_PID" 2>/dev/null; do
  m=$(curl -fsS --max-time 2 "http://127.0.0.1:$HTTP_PORT/metrics" 2>/dev/null || true)
  s= pend= cons= pub= active=
  while read -r name value; do
    # printf reads the %g-style values ("2e+05") as numbers.
    case $name in
      painpoint_store_events) printf -v s '%.0f' "$value" ;;
      painpoint_outbox_pending) printf -v pend '%.0f' "$value" ;;
      painpoint_events_consumed_total) printf -v cons '%.0f' "$value" ;;
      painpoint_summaries_published_total) printf -v pub '%.0f' "$value" ;;
      painpoint_pain_points_active) printf -v active '%.0f' "$value" ;;
    esac
  done <<<"$m"
  now_us=${EPOCHREALTIME/./}
  if [[ -n $s ]]; then
    st=$s
    printf -v elapsed '%d.%d' $(( (now_us - t0_us) / 1000000 )) $(( (now_us - t0_us) % 1000000 / 100000 ))
    echo "$elapsed consumed=$cons stored=$st outbox=$pend published=$pub" >>"$TMP/serve.metrics"
  fi
  if [[ -z $DONE_AT && $st == "$EVENTS" && $pend == 0 ]]; then
    DONE_AT=$EPOCHREALTIME
    ACTIVE_AT_DONE=$active
    broker_cpu2=$(cpu_seconds "$BROKER_PID")
    thread_cpu "$SERVE_PID" >"$TMP/serve.threads"
  fi
  if [[ -z $DONE_AT ]] && (( now_us / 1000000 > serve_deadline )); then
    INCOMPLETE=1
    log "serve not done after --serve-timeout $SERVE_TIMEOUT s (stored $st of $EVENTS): stopping it"
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVE_PID" 2>/dev/null || true
    break
  fi
  sleep 0.2
done
serve_rc=0
wait "$TIME_PID" || serve_rc=$?
t1=$(now)
SERVE_WALL=$(calc %.3f "$t1 - $t0")
user=$(awk -F': ' '/User time/ {print $2}' "$TMP/serve.time")
sys=$(awk -F': ' '/System time/ {print $2}' "$TMP/serve.time")
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/serve.time")
if grep -qiE 'retention|lost' "$SERVE_LOG"; then
  log "WARNING: serve logged losses:"; grep -iE 'retention|lost' "$SERVE_LOG" | head -5 >&2
fi

echo "== throughput: workload $WORKLOAD, $EVENTS events, $PARTITIONS partitions, broker: $KAFKA${KAFKA_VERSION:+ $KAFKA_VERSION} =="
echo "(a) kcat:  $(calc %.0f "$EVENTS / $KCAT_S") events/s ($KCAT_S s)"
if [[ $INCOMPLETE == 1 ]]; then
  # Not a throughput figure: the average up to the timeout, to show how far serve got.
  echo "(b) serve: INCOMPLETE: stored $st of $EVENTS in $SERVE_TIMEOUT s (average $(calc %.0f "$st / $SERVE_TIMEOUT") events/s); see $TMP/serve.metrics"
  SERVE_S=
else
  if [[ $serve_rc != 0 ]]; then echo "e2e.sh: serve exited $serve_rc" >&2; tail -30 "$SERVE_LOG" >&2; exit 1; fi
  grep -q 'exiting (--exit-when-idle)' "$SERVE_LOG" || { echo "e2e.sh: serve did not report idle" >&2; tail -30 "$SERVE_LOG" >&2; exit 1; }
  stored=$(grep -Eo 'stopped.*store holds [0-9]+ events' "$SERVE_LOG" | grep -Eo '[0-9]+' | tail -n1)
  [[ $stored == "$EVENTS" ]] || { echo "e2e.sh: serve stored $stored of $EVENTS" >&2; tail -30 "$SERVE_LOG" >&2; exit 1; }
  [[ -n $DONE_AT ]] || { echo "e2e.sh: /metrics never showed $EVENTS stored with an empty outbox" >&2; exit 1; }
  SERVE_S=$(calc %.3f "$DONE_AT - $t0")
  echo "(b) serve: $(calc %.0f "$EVENTS / $SERVE_S") events/s ($SERVE_S s from start to all stored + outbox empty; process exited after $SERVE_WALL s), stored $stored"
  echo "(b)/(a):   $(calc %.3f "$KCAT_S / $SERVE_S")"
  echo "active pain points when done: ${ACTIVE_AT_DONE:-?}"
fi
echo "serve CPU: $(calc %.1f "$user + $sys") s (user $user, sys $sys) = $(calc %.4f "($user + $sys) * 1000 / ($st > 0 ? $st : 1)") CPU s per 1,000 events stored"
echo "serve peak RSS: $(calc %.0f "$rss_kb / 1024") MiB"
# The broker shares the machine's cores with serve: its CPU is part of the budget.
echo "broker CPU: (a) $(calc %.1f "$broker_cpu1 - $broker_cpu0") s = $(calc %.4f "($broker_cpu1 - $broker_cpu0) * 1000 / $EVENTS") s per 1,000 events; (b) ${broker_cpu2:+$(calc %.1f "$broker_cpu2 - $broker_cpu1") s = $(calc %.4f "($broker_cpu2 - $broker_cpu1) * 1000 / $EVENTS") s per 1,000 events (until done)}"

if [[ -s $TMP/serve.threads ]]; then
  echo "serve CPU by thread until done (µs per event): $(awk -v n="$EVENTS" '{ printf "%s%s %.1f", sep, $1, $2 * 1e6 / n; sep = ", " }' "$TMP/serve.threads")"
fi

if [[ $PERF == 1 && -f $TMP/perf.data ]]; then
  for _ in $(seq 100); do kill -0 "$PERF_PID" 2>/dev/null || break; sleep 0.1; done
  echo "== perf (serve during (b)), top entries by self time =="
  timeout 300 perf report -i "$TMP/perf.data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null |
    grep -E '^ +[0-9.]+%' | sed -E 's/ +$//' | cut -c1-150 | head -25 || true
fi
# broker1: its memory and CPU are not part of what follows
if [[ $KAFKA == real ]]; then "$ROOT/scripts/kafka.sh" stop "$TMP/broker1"; else kill "$BROKER_PID" 2>/dev/null || true; fi

# ---- latency ----------------------------------------------------------------------------------
if [[ $SKIP_LATENCY == 0 ]]; then
  start_broker broker2
  log "latency phase: broker at $BROKER, fresh data dir"
  "$PAINPOINT" serve --brokers "$BROKER" --data-dir "$TMP/data2" --http-port 0 "${SERVE_CONFIG[@]}" "${SERVE_VECTORS[@]}" \
    >"$TMP/serve2.log" 2>&1 &
  SERVE2=$!
  PIDS+=($SERVE2)
  wait_serving "$TMP/serve2.log" "$SERVE2"
  deadline=$((SECONDS + 120))
  until curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || { echo "e2e.sh: serve not ready" >&2; tail -20 "$TMP/serve2.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "== latency: offered $RATE events/s for $DURATION s =="
  lat_rc=0
  timeout $(( ${DURATION%.*} + 900 )) "$PY" "$ROOT/bench/latency.py" --brokers "$BROKER" \
    --metrics-url "http://127.0.0.1:$HTTP_PORT/metrics" --rate "$RATE" --duration "$DURATION" \
    --workload "$WORKLOAD" --pb-dir "$TMP/pb" || lat_rc=$?
  # Where the time went: the stage's batches, their commits, the publisher's outbox ages (means
  # over the phase), and serve's CPU by thread over the whole phase (µs per event offered).
  curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics" 2>/dev/null | awk '
    /^painpoint_(batch_events|batch_commit_seconds|outbox_age_seconds)_(sum|count) / {
      split($1, p, "_"); name = $1; sub(/_(sum|count)$/, "", name); v[$1] = $2; names[name] = 1 }
    END { for (n in names) if (v[n "_count"] > 0)
            printf "%s: %d observations, mean %.4f\n", n, v[n "_count"], v[n "_sum"] / v[n "_count"] }' || true
  echo "serve CPU by thread, latency phase (µs per event offered): $(thread_cpu "$SERVE2" |
    awk -v n="$(calc %.0f "$RATE * $DURATION")" '{ printf "%s%s %.1f", sep, $1, $2 * 1e6 / n; sep = ", " }')"
  kill "$SERVE2" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$SERVE2" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$SERVE2" 2>/dev/null || true
  wait "$SERVE2" 2>/dev/null || true
  [[ $lat_rc == 0 ]] || { echo "e2e.sh: latency phase incomplete or failed ($lat_rc)" >&2; tail -5 "$TMP/serve2.log" >&2; }
fi

echo "load before: $LOAD_BEFORE"
echo "load after:  $(uptime)"
[[ $INCOMPLETE == 0 && ${lat_rc:-0} == 0 ]]
