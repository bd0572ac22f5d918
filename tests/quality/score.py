#!/usr/bin/python3
"""Clustering quality on labelled intent sets (run with /usr/bin/python3: needs scikit-learn).

Default (--dataset banking77): builds the event file from ../shared/data/banking77/{train,test}.csv
(13,083 labelled queries, one product, shuffled with a fixed seed), runs `painpoint cluster` on it,
and scores the final assignments against the intents with scikit-learn's AMI and ARI. Exits 1 when
a figure is below its floor, so the suite catches quality regressions.

--dataset NAME (other than banking77) reads tests/quality/data/NAME/events.jsonl[.gz] (objects
{productId, text, label}; several products, see the README there), shuffles all events of all
products together by the seed, and scores with truth = (product, label) over all events; it also
prints the mean over products of the per-product AMI/ARI. Floors apply to the overall figures.

  score.py --painpoint build/service/painpoint [--dataset hint3] [--seeds 1-5 | 1,2,3]
           [--min-ami 0.55] [--min-ari 0.25] [--min-clusters 40] [--max-clusters 200]
           [-- extra args for the binary]

A binary named cluster_driver (bench/) is called without the "cluster" subcommand.
Banking77 is read from its shared location; it is never copied into the repository.
"""
import argparse
import collections
import csv
import datetime
import gzip
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
SETS_DIR = os.path.join(HERE, "data")


def load_rows(data_dir):
    """Banking77: (text, label, productId) rows."""
    rows = []
    for name in ("train.csv", "test.csv"):
        with open(os.path.join(data_dir, name), newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                rows.append((r["text"], r["category"], "banking"))
    return rows


def as_products(rows, count=5):
    """Banking77's intents dealt into `count` products (a fixed shuffle): the same texts with
    about 15 intents per product instead of 77 in one, to see how the per-product calibration
    copes with a product's size."""
    intents = sorted({label for _, label, _ in rows})
    random.Random(5).shuffle(intents)
    product = {label: f"bank-{i % count}" for i, label in enumerate(intents)}
    return [(text, label, product[label]) for text, label, _ in rows]


def load_dataset(name, data_dir=None):
    """(rows, event id prefix) of a set by its --dataset name."""
    if name == "banking77":
        return load_rows(data_dir or DEFAULT_DATA), "b77"
    if name == "banking77-products":
        return as_products(load_rows(data_dir or DEFAULT_DATA)), "b77p"
    return load_set(data_dir or os.path.join(SETS_DIR, name)), name


def load_set(data_dir):
    """A multi-product set: (text, label, productId) rows from events.jsonl[.gz]."""
    for name, opener in (("events.jsonl.gz", gzip.open), ("events.jsonl", open)):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            with opener(path, "rt", encoding="utf-8") as f:
                return [(o["text"], o["label"], o["productId"]) for o in map(json.loads, f) if o]
    sys.exit(f"no events.jsonl[.gz] in {data_dir}")


def parse_seeds(spec):
    """"1,2,3", "1-14" or a mix ("1-5,9")."""
    seeds = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            seeds += range(int(lo), int(hi) + 1)
        else:
            seeds.append(int(part))
    return seeds


def write_events(rows, seed, path, prefix="b77"):
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    start = datetime.datetime(2026, 9, 1, tzinfo=datetime.timezone.utc)
    labels = {}
    with open(path, "w", encoding="utf-8") as f:
        for k, i in enumerate(order):
            text, label, product = rows[i]
            eid = f"{prefix}-{i}"
            labels[eid] = (product, label)
            ts = start + datetime.timedelta(seconds=180 * k)
            f.write(json.dumps({
                "eventId": eid, "source": "SOURCE_SUPPORT", "productId": product,
                "text": text, "occurredAt": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "accountId": f"acct-{i % 997}", "accountArrCents": 100000 * (1 + i % 7),
            }) + "\n")
    return labels


def score_seed(binary, extra, rows, seed, tmp, prefix="b77"):
    events = os.path.join(tmp, f"events-{seed}.jsonl")
    out = os.path.join(tmp, f"assign-{seed}.jsonl")
    labels = write_events(rows, seed, events, prefix)
    cmd = [binary] if os.path.basename(binary).startswith("cluster_driver") else [binary, "cluster"]
    cmd += ["--input", events, "--output", out] + extra
    t = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t
    if proc.returncode != 0:
        sys.exit(f"{cmd} failed ({proc.returncode}): {proc.stderr}")
    truth, pred = [], []
    per_product = collections.defaultdict(lambda: ([], []))
    with open(out, encoding="utf-8") as f:
        for line in f:
            a = json.loads(line)
            if "painPointId" not in a:
                sys.exit(f"event rejected: {line.strip()}")
            product, label = labels[a["eventId"]]
            truth.append(f"{product}\x1f{label}")
            pred.append(a["painPointId"])
            per_product[product][0].append(label)
            per_product[product][1].append(a["painPointId"])
    if len(pred) != len(rows):
        sys.exit(f"expected {len(rows)} assignments, got {len(pred)}")
    sizes = collections.Counter(pred)
    products = {p: (adjusted_mutual_info_score(t, q), adjusted_rand_score(t, q))
                for p, (t, q) in sorted(per_product.items())}
    return {
        "seed": seed,
        "ami": adjusted_mutual_info_score(truth, pred),
        "ari": adjusted_rand_score(truth, pred),
        "products": products,
        "product_ami": sum(v[0] for v in products.values()) / len(products),
        "product_ari": sum(v[1] for v in products.values()) / len(products),
        "clusters": len(sizes),
        "clusters_ge5": sum(1 for n in sizes.values() if n >= 5),
        "wall_s": wall,
        "stderr": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--painpoint", required=True, help="painpoint binary (or bench cluster_driver)")
    ap.add_argument("--dataset", default="banking77",
                    help="banking77 (default), banking77-products (its intents dealt into 5 "
                         "products), or a set under tests/quality/data/")
    ap.add_argument("--data", default=None,
                    help="data directory (default: the shared Banking77 copy, or tests/quality/data/NAME)")
    ap.add_argument("--seeds", default="1,2,3,4,5", help='"1,2,3", "1-14" or a mix')
    ap.add_argument("--per-product", action="store_true", help="print each product's AMI/ARI per seed")
    ap.add_argument("--min-ami", type=float, default=0.0)
    ap.add_argument("--min-ari", type=float, default=0.0)
    ap.add_argument("--min-clusters", type=int, default=0, help="floor on pain points with >= 5 events")
    ap.add_argument("--max-clusters", type=int, default=10**9)
    ap.add_argument("extra", nargs="*", help="extra arguments for the binary (after --)")
    args = ap.parse_args()
    multi = args.dataset != "banking77"
    rows, prefix = load_dataset(args.dataset, args.data)
    seeds = parse_seeds(args.seeds)
    if not seeds:
        sys.exit("no seeds")
    if multi:
        per = collections.Counter(p for _, _, p in rows)
        labels = {(p, l) for _, l, p in rows}
        print(f"{args.dataset}: {len(rows)} events, {len(per)} products, {len(labels)} labels "
              f"({', '.join(f'{p} {n}' for p, n in sorted(per.items()))})", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="painpoint-quality-") as tmp:
        for seed in seeds:
            r = score_seed(args.painpoint, args.extra, rows, seed, tmp, prefix)
            results.append(r)
            tail = (f" product-mean AMI {r['product_ami']:.4f} ARI {r['product_ari']:.4f}"
                    if multi else "")
            print(f"seed {r['seed']}: AMI {r['ami']:.4f} ARI {r['ari']:.4f} "
                  f"pain_points>=5 {r['clusters_ge5']} clusters {r['clusters']}{tail} "
                  f"wall {r['wall_s']:.2f}s | {r['stderr']}", flush=True)
            if multi and args.per_product:
                for p, (a, b) in r["products"].items():
                    print(f"    {p}: AMI {a:.4f} ARI {b:.4f}")
    n = len(results)
    mean = lambda k: sum(r[k] for r in results) / n
    low = lambda k: min(r[k] for r in results)
    high = lambda k: max(r[k] for r in results)
    print(f"mean AMI {mean('ami'):.4f} (min {low('ami'):.4f})  mean ARI {mean('ari'):.4f} "
          f"(min {low('ari'):.4f})  pain_points>=5 {min(r['clusters_ge5'] for r in results)}"
          f"..{max(r['clusters_ge5'] for r in results)}")
    print(f"over {n} seeds: AMI mean/min/max {mean('ami'):.4f}/{low('ami'):.4f}/{high('ami'):.4f}  "
          f"ARI mean/min/max {mean('ari'):.4f}/{low('ari'):.4f}/{high('ari'):.4f}  "
          f"pain points {min(r['clusters'] for r in results)}..{max(r['clusters'] for r in results)}")
    if multi:
        print(f"per-product mean: AMI mean/min/max {mean('product_ami'):.4f}/{low('product_ami'):.4f}/"
              f"{high('product_ami'):.4f}  ARI mean/min/max {mean('product_ari'):.4f}/"
              f"{low('product_ari'):.4f}/{high('product_ari'):.4f}")
        for p in results[0]["products"]:
            a = [r["products"][p][0] for r in results]
            b = [r["products"][p][1] for r in results]
            print(f"    {p}: AMI mean {sum(a) / n:.4f} (min {min(a):.4f})  ARI mean {sum(b) / n:.4f} "
                  f"(min {min(b):.4f})")
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
