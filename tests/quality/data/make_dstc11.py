#!/usr/bin/python3
"""Builds tests/quality/data/dstc11/events.jsonl.gz from a clone of
github.com/amazon-science/dstc11-track2-intent-induction.

  make_dstc11.py /path/to/dstc11-track2-intent-induction-clone   (bare or not)

Takes dstc11/{development,test-banking,test-finance}/test-utterances.jsonl: the customer turns of
the track's intent clustering task with their gold intents; one product per domain (insurance,
banking, finance). Every labelled utterance is kept (no repeats within a product); text unchanged
apart from whitespace stripping.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import check_commit, git_show, summary, write_events  # noqa: E402

COMMIT = "969b95a0d7365fbc6cd0e05989f1be6b44e6680c"
SPLITS = (("insurance", "development"), ("banking", "test-banking"), ("finance", "test-finance"))
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dstc11", "events.jsonl.gz")


def main():
    repo = sys.argv[1]
    check_commit(repo, COMMIT)
    rows = []
    for product, split in SPLITS:
        seen = set()
        for line in git_show(repo, COMMIT, f"dstc11/{split}/test-utterances.jsonl").decode("utf-8").splitlines():
            if not line.strip():
                continue
            u = json.loads(line)
            t = u["utterance"].strip()
            if not t or not u.get("intent") or t in seen:
                continue
            seen.add(t)
            rows.append({"productId": product, "text": t, "label": u["intent"]})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write_events(rows, OUT)
    print(summary(rows))


if __name__ == "__main__":
    main()
