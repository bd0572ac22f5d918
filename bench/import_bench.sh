#!/usr/bin/env bash
# `painpoint import` throughput (issue 19: >= 50,000 rows/s): N CSV rows into the embedded broker.
#
#   bench/import_bench.sh [--rows N] [--partitions P] [--keep]      (default 1,000,000 rows, 64)
#
# Writes an N-row CSV export (ticket id, a ~100-byte quoted description with commas and UTF-8,
# product, account, ARR, RFC 3339 time, link), starts `painpoint broker --partitions P` on
# 127.0.0.1 and runs `painpoint import` once under /usr/bin/time -v. Prints the import's own
# summary line (rows read, acknowledged, its rows/s from start to the last acknowledgement) and
# the process's wall time, CPU and peak RSS. The broker keeps at most 5 MiB per partition, so
# most rows are dropped by its retention after they were acknowledged: that does not change what
# is measured (parse, map, validate, produce, acknowledgement). Nothing is asserted.
# Binary: $PAINPOINT_BIN, default build/service/painpoint.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PAINPOINT=${PAINPOINT_BIN:-$ROOT/build/service/painpoint}
ROWS=1000000
PARTITIONS=64
KEEP=0
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --rows) ROWS=$2; shift 2 ;;
    --partitions) PARTITIONS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "import_bench.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $ROWS =~ ^[0-9]+$ && $ROWS -gt 0 ]] || { echo "import_bench.sh: --rows must be > 0" >&2; exit 2; }
[[ -x $PAINPOINT ]] || { echo "import_bench.sh: no binary at $PAINPOINT" >&2; exit 2; }

TMP=$(mktemp -d /tmp/painpoint-import-bench.XXXXXX)
BROKER_PID=
cleanup() {
  [[ -n $BROKER_PID ]] && kill "$BROKER_PID" 2>/dev/null || true
  if [[ $KEEP == 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

/usr/bin/python3 - "$TMP/export.csv" "$ROWS" <<'PY'
import csv, sys
path, rows = sys.argv[1], int(sys.argv[2])
problems = ["the export to PDF hangs at 99%", "login loops, back to the start page",
            "search ignores the \"date\" filter", "invoices show the wrong currency — €/$",
            "sync drops attachments over 10 MB", "notifications arrive twice, ünd late"]
with open(path, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["id", "description", "product", "org", "arr_cents", "created", "link"])
    for i in range(rows):
        w.writerow(["t-%d" % i, "Customer %d reports: %s, since the last update on device %d"
                    % (i % 997, problems[i % len(problems)], i % 31),
                    "product-%d" % (i % 20), "acct-%d" % (i % 500), str(100 * (i % 500)),
                    "2026-%02d-%02dT%02d:%02d:00Z" % (1 + i % 11, 1 + i % 28, i % 24, i % 60),
                    "https://support.example.com/tickets/%d" % i])
PY
cat > "$TMP/map" <<'MAP'
id = id
text = description
product = product
account = org
arr = arr_cents
time = created
url = link
MAP
"$PAINPOINT" broker --port 0 --partitions "$PARTITIONS" >"$TMP/broker.out" 2>"$TMP/broker.log" &
BROKER_PID=$!
for _ in $(seq 100); do [[ -s $TMP/broker.out ]] && break; sleep 0.1; done
BROKERS=$(head -1 "$TMP/broker.out")
[[ -n $BROKERS ]] || { echo "import_bench.sh: the broker did not start" >&2; exit 1; }
echo "import of $ROWS CSV rows ($(du -h "$TMP/export.csv" | cut -f1)) into painpoint broker ($PARTITIONS partitions, $BROKERS)"
/usr/bin/time -v "$PAINPOINT" import --format csv --input "$TMP/export.csv" --map "$TMP/map" \
  --brokers "$BROKERS" 2>"$TMP/time.txt" | tee "$TMP/import.out"
grep -E 'Elapsed \(wall clock\)|User time|System time|Maximum resident' "$TMP/time.txt" | sed 's/^\s*/  /'
