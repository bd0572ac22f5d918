#!/usr/bin/python3
"""Builds tests/quality/data/multidogo/events.jsonl.gz from a clone of
github.com/awslabs/multi-domain-goal-oriented-dialogues-dataset (MultiDoGO, EMNLP 2019).

  make_multidogo.py /path/to/multi-domain-goal-oriented-dialogues-dataset-clone   (bare or not)

Takes data/paper_splits/splits_annotated_at_turn_level/<domain>/{train,dev,test}.tsv (customer turns
of human-to-human customer-service chats with a turn-level intent), one product per domain
(airline, fastfood, finance, insurance, media, software), and keeps a turn only when
  - its line is well formed (6 tab-separated fields; a few turns with quoted line breaks are not)
    and its label is a single intent (turns with several, joined by <div>, are dropped);
  - the label is a domain intent, not one of the dialogue acts contentonly, confirmation, rejection,
    thankyou, openinggreeting, closinggreeting, outofdomain;
  - its text is not an exact repeat of an earlier kept text of the product (train, dev, test order);
  - its label still has at least 5 texts in the product after the above.
Texts are whitespace-stripped, otherwise unchanged (the source is lower-cased and unpunctuated).
"""
import collections
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import check_commit, git_show, summary, write_events  # noqa: E402

COMMIT = "baa30639c4b271f394b81443c842193407cdf26d"
DOMAINS = ("airline", "fastfood", "finance", "insurance", "media", "software")
ACTS = {"contentonly", "confirmation", "rejection", "thankyou", "openinggreeting", "closinggreeting",
        "outofdomain"}
MIN_PER_LABEL = 5
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multidogo", "events.jsonl.gz")


def main():
    repo = sys.argv[1]
    check_commit(repo, COMMIT)
    rows = []
    for domain in DOMAINS:
        seen, kept = set(), []
        for split in ("train", "dev", "test"):
            path = f"data/paper_splits/splits_annotated_at_turn_level/{domain}/{split}.tsv"
            for i, line in enumerate(git_show(repo, COMMIT, path).decode("utf-8").split("\n")):
                f = line.rstrip("\r").split("\t")
                if i == 0 or len(f) != 6:
                    continue
                text, label = f[3].strip(), f[5].strip()
                if not re.fullmatch(r"[a-z]+", label) or label in ACTS or not text or text in seen:
                    continue
                seen.add(text)
                kept.append({"productId": domain, "text": text, "label": label})
        counts = collections.Counter(r["label"] for r in kept)
        rows += [r for r in kept if counts[r["label"]] >= MIN_PER_LABEL]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write_events(rows, OUT)
    print(summary(rows))


if __name__ == "__main__":
    main()
