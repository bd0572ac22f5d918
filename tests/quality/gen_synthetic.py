#!/usr/bin/python3
"""Synthetic feedback for load and memory tests: N events over P products, each product with
its own topics (a few content words drawn from an English-like vocabulary plus filler), Zipfian
topic popularity, a share of one-off noise, accounts with ARR, and timestamps over 60 days.

  gen_synthetic.py --events 1000000 --products 100 --seed 1 > events.jsonl
"""
import argparse
import datetime
import json
import random
import sys

WORDS = ("account app billing button calendar camera card cart chart checkout connection "
         "contract crash dashboard data date delay delivery device download email error export "
         "feature file filter font format import integration invoice language layout license "
         "link load login map menu message mobile notification order page password payment "
         "permission photo plan price print privacy profile quota refund report reset search "
         "security session setting share signup speed storage subscription support sync tax "
         "team theme ticket timeout token upload user video voice wallet webhook widget zoom").split()
VERBS = "broken slow missing failing wrong stuck confusing crashing expensive duplicated".split()
FILLER = ["please fix", "since the last update", "for our whole team", "again today",
          "this is blocking us", "on android", "on the web app", "every morning", ""]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--products", type=int, default=100)
    ap.add_argument("--topics", type=int, default=60, help="topics per product")
    ap.add_argument("--noise", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    products = []
    for p in range(a.products):
        topics = []
        for _ in range(a.topics):
            nouns = rng.sample(WORDS, 2)
            topics.append((nouns, rng.choice(VERBS), rng.sample(WORDS, 3)))
        weights = [1.0 / (k + 1) for k in range(a.topics)]
        products.append((f"product-{p:03d}", topics, weights))
    start = datetime.datetime(2026, 8, 1, tzinfo=datetime.timezone.utc)
    out = sys.stdout
    for i in range(a.events):
        pid, topics, weights = products[rng.randrange(a.products)]
        if rng.random() < a.noise:
            text = " ".join(rng.sample(WORDS, 5))
        else:
            nouns, verb, extra = rng.choices(topics, weights)[0]
            words = [nouns[0], nouns[1], verb, rng.choice(extra)]
            rng.shuffle(words)
            text = f"the {' '.join(words)} {rng.choice(FILLER)}".strip()
        acct = rng.randrange(5000)
        ts = start + datetime.timedelta(seconds=int(i * 60 * 24 * 60 * 60 / a.events))
        out.write(json.dumps({
            "eventId": f"s-{a.seed}-{i}", "source": rng.choice(["SOURCE_SUPPORT", "SOURCE_SALES", "SOURCE_CUSTOMER"]),
            "productId": pid, "text": text, "occurredAt": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "accountId": f"acct-{acct}", "accountArrCents": 10000 * (1 + acct % 50),
        }) + "\n")


if __name__ == "__main__":
    main()
