#!/usr/bin/python3
"""Builds tests/quality/data/hint3/events.jsonl.gz from a clone of github.com/hellohaptik/HINT3.

  make_hint3.py /path/to/HINT3-clone      (bare or not; the pinned commit must be in it)

Takes dataset/v2/{train,test}/<product>_{train,test}.csv of the three bots (sofmattress, curekart,
powerplay11), one product each; drops NO_NODES_DETECTED (out-of-scope queries, no intent) and,
within a product, exact repeats of a text (the first occurrence is kept: train rows before test rows).
Texts are whitespace-stripped, otherwise unchanged.
"""
import csv
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import check_commit, git_show, summary, write_events  # noqa: E402

COMMIT = "99965c892ea9a6801a87083d3861b0b04c91a4e7"
PRODUCTS = ("sofmattress", "curekart", "powerplay11")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hint3", "events.jsonl.gz")


def main():
    repo = sys.argv[1]
    check_commit(repo, COMMIT)
    rows = []
    for product in PRODUCTS:
        seen = set()
        for split in ("train", "test"):
            text = git_show(repo, COMMIT, f"dataset/v2/{split}/{product}_{split}.csv").decode("utf-8")
            for rec in csv.DictReader(io.StringIO(text)):
                t, label = rec["sentence"].strip(), rec["label"].strip()
                if not t or label == "NO_NODES_DETECTED" or t in seen:
                    continue
                seen.add(t)
                rows.append({"productId": product, "text": t, "label": label})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write_events(rows, OUT)
    print(summary(rows))


if __name__ == "__main__":
    main()
