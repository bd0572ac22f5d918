#!/usr/bin/python3
"""Clustering quality on Banking77 (run with /usr/bin/python3: needs scikit-learn).

Builds the event file from ../shared/data/banking77/{train,test}.csv (13,083 labelled queries,
one product, shuffled with a fixed seed), runs `painpoint cluster` on it, and scores the final
assignments against the intents with scikit-learn's AMI and ARI. Exits 1 when a figure is below
its floor, so the suite catches quality regressions.

  score.py --painpoint build/service/painpoint [--seeds 1,2,3] [--min-ami 0.55] [--min-ari 0.25]
           [--min-clusters 40] [--max-clusters 200] [-- extra args for the binary]

A binary named cluster_driver (bench/) is called without the "cluster" subcommand.
The data set is read from its shared location; it is never copied into the repository.
"""
import argparse
import collections
import csv
import datetime
import json
import os
import random
import subprocess
import sys
import tempfile
import time

from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "banking77"))


def load_rows(data_dir):
    rows = []
    for name in ("train.csv", "test.csv"):
        with open(os.path.join(data_dir, name), newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                rows.append((r["text"], r["category"]))
    return rows


def write_events(rows, seed, path):
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    start = datetime.datetime(2026, 9, 1, tzinfo=datetime.timezone.utc)
    labels = {}
    with open(path, "w", encoding="utf-8") as f:
        for k, i in enumerate(order):
            text, label = rows[i]
            eid = f"b77-{i}"
            labels[eid] = label
            ts = start + datetime.timedelta(seconds=180 * k)
            f.write(json.dumps({
                "eventId": eid, "source": "SOURCE_SUPPORT", "productId": "banking",
                "text": text, "occurredAt": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "accountId": f"acct-{i % 997}", "accountArrCents": 100000 * (1 + i % 7),
            }) + "\n")
    return labels


def score_seed(binary, extra, rows, seed, tmp):
    events = os.path.join(tmp, f"events-{seed}.jsonl")
    out = os.path.join(tmp, f"assign-{seed}.jsonl")
    labels = write_events(rows, seed, events)
    cmd = [binary] if os.path.basename(binary).startswith("cluster_driver") else [binary, "cluster"]
    cmd += ["--input", events, "--output", out] + extra
    t = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t
    if proc.returncode != 0:
        sys.exit(f"{cmd} failed ({proc.returncode}): {proc.stderr}")
    truth, pred = [], []
    with open(out, encoding="utf-8") as f:
        for line in f:
            a = json.loads(line)
            if "painPointId" not in a:
                sys.exit(f"event rejected: {line.strip()}")
            truth.append(labels[a["eventId"]])
            pred.append(a["painPointId"])
    if len(pred) != len(rows):
        sys.exit(f"expected {len(rows)} assignments, got {len(pred)}")
    sizes = collections.Counter(pred)
    return {
        "seed": seed,
        "ami": adjusted_mutual_info_score(truth, pred),
        "ari": adjusted_rand_score(truth, pred),
        "clusters": len(sizes),
        "clusters_ge5": sum(1 for n in sizes.values() if n >= 5),
        "wall_s": wall,
        "stderr": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--painpoint", required=True, help="painpoint binary (or bench cluster_driver)")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--min-ami", type=float, default=0.0)
    ap.add_argument("--min-ari", type=float, default=0.0)
    ap.add_argument("--min-clusters", type=int, default=0, help="floor on pain points with >= 5 events")
    ap.add_argument("--max-clusters", type=int, default=10**9)
    ap.add_argument("extra", nargs="*", help="extra arguments for the binary (after --)")
    args = ap.parse_args()
    rows = load_rows(args.data)
    results = []
    with tempfile.TemporaryDirectory(prefix="painpoint-quality-") as tmp:
        for seed in [int(s) for s in args.seeds.split(",") if s]:
            r = score_seed(args.painpoint, args.extra, rows, seed, tmp)
            results.append(r)
            print(f"seed {r['seed']}: AMI {r['ami']:.4f} ARI {r['ari']:.4f} "
                  f"pain_points>=5 {r['clusters_ge5']} clusters {r['clusters']} "
                  f"wall {r['wall_s']:.2f}s | {r['stderr']}", flush=True)
    n = len(results)
    mean = lambda k: sum(r[k] for r in results) / n
    low = lambda k: min(r[k] for r in results)
    print(f"mean AMI {mean('ami'):.4f} (min {low('ami'):.4f})  mean ARI {mean('ari'):.4f} "
          f"(min {low('ari'):.4f})  pain_points>=5 {min(r['clusters_ge5'] for r in results)}"
          f"..{max(r['clusters_ge5'] for r in results)}")
    failures = []
    for r in results:
        if r["ami"] < args.min_ami:
            failures.append(f"seed {r['seed']}: AMI {r['ami']:.4f} < {args.min_ami}")
        if r["ari"] < args.min_ari:
            failures.append(f"seed {r['seed']}: ARI {r['ari']:.4f} < {args.min_ari}")
        if not args.min_clusters <= r["clusters_ge5"] <= args.max_clusters:
            failures.append(f"seed {r['seed']}: {r['clusters_ge5']} pain points >= 5 events "
                            f"outside [{args.min_clusters}, {args.max_clusters}]")
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
