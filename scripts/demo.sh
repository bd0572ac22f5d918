#!/usr/bin/env bash
# One-command demo: installs what is missing, builds, starts `painpoint serve` on the embedded
# broker, streams sample feedback through it and shows the resulting pain points.
#   DEMO_EVENTS=N     number of sample events (default 3000)
#   DEMO_KEEP=1       leave the service running at the end (stop it with Ctrl-C)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
events=${DEMO_EVENTS:-3000}
py=/usr/bin/python3

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "dependencies"
./scripts/install-deps.sh
./scripts/fetch-embeddings.sh || echo "(word vectors unavailable: clustering falls back to sparse features)"
# The demo shows the best pain points: cluster.encoder = semantic (scripts/fetch-encoder.sh).
mode=semantic
./scripts/fetch-encoder.sh || { mode=static; echo "(sentence encoder unavailable: clustering in static mode)"; }

step "build"
./scripts/build-librdkafka.sh
cmake --preset default >/dev/null
cmake --build --preset default --target painpoint -j "$(nproc)"
bin=$root/build/service/painpoint

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port=$(free_port)
broker_port=$(free_port)
work=$(mktemp -d /tmp/painpoint-demo.XXXXXX)
api="http://127.0.0.1:$http_port"

step "painpoint serve (embedded broker on 127.0.0.1:$broker_port, HTTP on $api, data in $work/data, cluster.encoder = $mode)"
printf 'cluster.encoder = %s\n' "$mode" >"$work/painpoint.conf"
"$bin" serve --config "$work/painpoint.conf" --data-dir "$work/data" --http-port "$http_port" \
  --broker-port "$broker_port" >"$work/serve.log" 2>&1 &
serve_pid=$!
cleanup() {
  if kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid"
    wait "$serve_pid" || true
  fi
}
trap cleanup EXIT
for _ in $(seq 1 150); do
  curl -sf "$api/readyz" >/dev/null && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.2
done
curl -s "$api/readyz"; echo

step "stream $events sample feedback events with painpoint produce"
"$py" scripts/sample_feedback.py --events "$events" --by-source "$work"
for topic in feedback.support feedback.sales feedback.customer; do
  "$bin" produce --brokers "127.0.0.1:$broker_port" --topic "$topic" --input "$work/$topic.jsonl"
done

metric() { curl -s "$api/metrics" | awk -v m="$1" '$1==m {print $2}'; }
for _ in $(seq 1 300); do
  stored=$(metric painpoint_store_events)
  [[ "${stored%.*}" -ge "$events" ]] && break
  sleep 0.2
done
echo "stored $(metric painpoint_store_events) events; active pain points: $(metric painpoint_pain_points_active)"

step "products (GET /v1/products)"
curl -s "$api/v1/products" | "$py" -c '
import json, sys
doc = json.load(sys.stdin)
print("%-15s %8s %8s %8s %8s %12s" % ("product", "events", "support", "sales", "customer", "pain points"))
for p in doc["products"]:
    print("%-15s %8s %8s %8s %8s %12s" % (p["productId"], p["eventCount"], p["supportCount"],
          p["salesCount"], p["customerCount"], p["painPointCount"]))'

for product in $(curl -s "$api/v1/products" | "$py" -c 'import json,sys; print(" ".join(p["productId"] for p in json.load(sys.stdin)["products"]))'); do
  step "top pain points of $product (GET /v1/products/$product/pain-points?sort=severity&limit=5)"
  curl -s "$api/v1/products/$product/pain-points?sort=severity&limit=5" | "$py" -c '
import json, sys
for p in json.load(sys.stdin)["painPoints"]:
    ex = p["exemplars"][0]["text"] if p.get("exemplars") else ""
    print("  %-22s sev %5.2f  events %4s  accounts %3s  ARR at risk $%-10s trend %+.2f" % (
        p["id"], p["severity"], p["eventCount"], p["accountCount"],
        "{:,.0f}".format(int(p["arrAtRiskCents"]) / 100), p["trend"]))
    print("      label: %s" % p["label"])
    print("      e.g.   \"%s\"" % ex)'
done

echo
echo "Metrics: $api/metrics    Readiness: $api/readyz    Log: $work/serve.log"
if [[ "${DEMO_KEEP:-0}" == 1 ]]; then
  echo "Painpoint keeps running (DEMO_KEEP=1); Ctrl-C stops it."
  echo "Board: $api/"
  wait "$serve_pid"
else
  echo "Board: $api/  (serve stops now; DEMO_KEEP=1 ./scripts/demo.sh keeps it up)"
fi
