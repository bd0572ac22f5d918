#!/usr/bin/env python3
"""Where one order's clustering loses: mixing labels, or splitting them (run with /usr/bin/python3).

For one seed of one set, scored as score.py does, prints:
- ARI/AMI as they are, if every pain point were split into its true labels ("split"), and if
  pain points of the same majority label were merged ("merge"): the larger gain names the loss;
- the biggest pain points with their top labels;
- with --encode-texts (bench/encode_texts), for each pair of pain points of >= --min-size events
  that are each >= 60% one label, their members' mean cosine above the product's background b in
  units of 1 - b (the unit of cluster.semantic_merge), split by whether the two share their
  label, and how many pairs of each kind a merge bar would join.

  oracle.py --painpoint build/service/painpoint --dataset multidogo --seed 1 \
      [--encode-texts build/bench/encode_texts] [-- extra args for painpoint cluster]
"""
import argparse
import collections
import json
import os
import sys
import tempfile

import numpy as np
from sklearn.metrics import adjusted_mutual_info_score as ami
from sklearn.metrics import adjusted_rand_score as ari

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score  # noqa: E402


def read_run(tmp, seed, labels):
    events = [json.loads(line) for line in open(os.path.join(tmp, f"events-{seed}.jsonl"))]
    assigned = {}
    for line in open(os.path.join(tmp, f"assign-{seed}.jsonl")):
        a = json.loads(line)
        assigned[a["eventId"]] = a["painPointId"]
    truth = [labels[e["eventId"]] for e in events]
    pred = [assigned[e["eventId"]] for e in events]
    return events, truth, pred


def print_oracles(truth, pred):
    t = ["%s|%s" % x for x in truth]
    members = collections.defaultdict(collections.Counter)
    for label, p in zip(t, pred):
        members[p][label] += 1
    majority = {p: c.most_common(1)[0][0] for p, c in members.items()}
    split = [p + "/" + label for label, p in zip(t, pred)]
    merged = [majority[p] for p in pred]
    print("as is ARI %.4f AMI %.4f | split ARI %.4f AMI %.4f | merge ARI %.4f AMI %.4f" % (
        ari(t, pred), ami(t, pred), ari(t, split), ami(t, split), ari(t, merged), ami(t, merged)))
    for p, c in sorted(members.items(), key=lambda kv: -sum(kv[1].values()))[:12]:
        top = "  ".join("%s:%d" % (label.split("|", 1)[1][:28], k) for label, k in c.most_common(3))
        print("%6d  %s" % (sum(c.values()), top))


def unit_of(vectors, members):
    s = vectors[members].sum(0)
    n = len(members)
    return s, (s @ s - n) / (n * (n - 1))


def product_pairs(vectors, labels, pred, min_size):
    """(same label?, cross similarity in units above b) for the pairs of one product."""
    clusters = collections.defaultdict(list)
    for j, p in enumerate(pred):
        clusters[p].append(j)
    total = vectors.sum(0)
    n = len(vectors)
    within = sum(vectors[m].sum(0) @ vectors[m].sum(0) for m in clusters.values())
    b = (total @ total - within) / (n * n - sum(len(m) ** 2 for m in clusters.values()))
    kept = []
    for m in clusters.values():
        if len(m) < min_size:
            continue
        label, k = collections.Counter(labels[j] for j in m).most_common(1)[0]
        if k >= 0.6 * len(m):
            kept.append((label, vectors[m].sum(0), len(m)))
    out = []
    for i in range(len(kept)):
        for j in range(i + 1, len(kept)):
            (la, sa, na), (lb, sb, nb) = kept[i], kept[j]
            out.append((la == lb, (sa @ sb / (na * nb) - b) / (1 - b)))
    return out


def print_pairs(encode_texts, events, truth, pred, tmp, min_size):
    texts = os.path.join(tmp, "texts.txt")
    with open(texts, "w", encoding="utf-8") as f:
        for e in events:
            f.write(e["text"].replace("\n", " ") + "\n")
    vec_path = os.path.join(tmp, "vectors.f32")
    with open(texts, "rb") as f:
        import subprocess
        subprocess.run([encode_texts, vec_path], stdin=f, check=True)
    vectors = np.fromfile(vec_path, dtype=np.float32).reshape(len(events), -1).astype(np.float64)
    by_product = collections.defaultdict(list)
    for i, e in enumerate(events):
        by_product[e["productId"]].append(i)
    pairs = []
    for idx in by_product.values():
        pairs += product_pairs(vectors[idx], [truth[i][1] for i in idx], [pred[i] for i in idx],
                               min_size)
    same = np.array([c for s, c in pairs if s])
    diff = np.array([c for s, c in pairs if not s])
    q = lambda a, x: np.quantile(a, x) if len(a) else float("nan")  # noqa: E731
    print("pairs of pain points >= %d events: same label %d, different %d" % (
        min_size, len(same), len(diff)))
    print("  same label: median %.2f (10th %.2f, 90th %.2f); different: 90th %.2f, 99th %.2f" % (
        q(same, .5), q(same, .1), q(same, .9), q(diff, .9), q(diff, .99)))
    for bar in (0.25, 0.3, 0.35, 0.4, 0.45):
        print("  merged at %.2f: same %d, different %d" % (
            bar, (same >= bar).sum(), (diff >= bar).sum()))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--painpoint", required=True)
    ap.add_argument("--dataset", default="banking77")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--encode-texts", help="bench/encode_texts, for the pair table")
    ap.add_argument("--min-size", type=int, default=10)
    ap.add_argument("--data", help="the set's directory, if not the usual one (as score.py)")
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()
    rows, _ = score.load_dataset(args.dataset, args.data)
    with tempfile.TemporaryDirectory() as tmp:
        r = score.score_seed(args.painpoint, args.extra, rows, args.seed, tmp, prefix="x")
        print("%s seed %d: AMI %.4f ARI %.4f, %d pain points of >= 5" % (
            args.dataset, args.seed, r["ami"], r["ari"], r["clusters_ge5"]))
        labels = score.write_events(rows, args.seed, os.path.join(tmp, "again.jsonl"), "x")
        events, truth, pred = read_run(tmp, args.seed, labels)
        print_oracles(truth, pred)
        if args.encode_texts:
            print_pairs(args.encode_texts, events, truth, pred, tmp, args.min_size)


if __name__ == "__main__":
    main()
