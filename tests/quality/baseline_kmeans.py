#!/usr/bin/python3
"""Offline reference for score.py: TF-IDF k-means with the true number of labels per product.

  baseline_kmeans.py [--dataset banking77|hint3|dstc11|multidogo|...] [--data DIR] [--random-state 0]

Each product's texts are clustered on their own (sklearn TfidfVectorizer, sublinear tf, English stop
words, unigrams and bigrams; KMeans with k = the product's number of labels, n_init=10, fixed
random_state). AMI/ARI are computed like score.py does: over all events with truth = (product,
label) and prediction = (product, cluster), plus the mean of the per-product figures. It knows
k and sees every text at once, so it is a yardstick, not a ceiling and not a like-for-like rival of
the online clustering.
"""
import argparse
import collections
import os
import sys

from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from score import DEFAULT_DATA, SETS_DIR, load_rows, load_set  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="banking77")
    ap.add_argument("--data", default=None)
    ap.add_argument("--random-state", type=int, default=0)
    args = ap.parse_args()
    if args.dataset == "banking77":
        rows = load_rows(args.data or DEFAULT_DATA)
    else:
        rows = load_set(args.data or os.path.join(SETS_DIR, args.dataset))
    by_product = collections.OrderedDict()
    for text, label, product in rows:
        by_product.setdefault(product, []).append((text, label))
    truth, pred, per = [], [], {}
    for product, items in by_product.items():
        texts = [t for t, _ in items]
        labels = [l for _, l in items]
        k = len(set(labels))
        x = TfidfVectorizer(sublinear_tf=True, stop_words="english", ngram_range=(1, 2)).fit_transform(texts)
        km = KMeans(n_clusters=k, n_init=10, random_state=args.random_state).fit(x)
        per[product] = (adjusted_mutual_info_score(labels, km.labels_),
                        adjusted_rand_score(labels, km.labels_), k, len(texts))
        truth += [f"{product}\x1f{l}" for l in labels]
        pred += [f"{product}\x1f{c}" for c in km.labels_]
    for product, (ami, ari, k, n) in per.items():
        print(f"  {product}: k {k} texts {n} AMI {ami:.4f} ARI {ari:.4f}")
    print(f"{args.dataset}: TF-IDF k-means (true k per product) over {len(truth)} events: "
          f"AMI {adjusted_mutual_info_score(truth, pred):.4f} ARI {adjusted_rand_score(truth, pred):.4f}  "
          f"per-product mean AMI {sum(v[0] for v in per.values()) / len(per):.4f} "
          f"ARI {sum(v[1] for v in per.values()) / len(per):.4f}")


if __name__ == "__main__":
    main()
