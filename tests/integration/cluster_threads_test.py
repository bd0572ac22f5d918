"""`painpoint cluster --threads N` gives byte-identical output for every N: products spread over
several Aggregators, each product on one, must reproduce one Aggregator's ids and assignments.

Input: bench/gen_events.py's 30,000 events (30 products with their own recurring problems), the
three topics' files one after the other, plus redelivered copies (some of them under another
product: they report where the first copy went) and invalid lines in between. Compared: one
thread against 2 and 3 (3 does not divide 30 products evenly).

usage: cluster_threads_test.py PATH/TO/painpoint
"""
import collections
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PAINPOINT = sys.argv[1]
TOPICS = ("feedback.support", "feedback.sales", "feedback.customer")


def write_input(tmp):
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "gen_events.py"),
                    "--events", "30000", "--products", "30", "--seed", "7", "--out-dir", tmp],
                   check=True, stdout=subprocess.DEVNULL)
    lines = []
    for topic in TOPICS:
        with open(os.path.join(tmp, topic + ".jsonl"), encoding="utf-8") as f:
            lines += f.read().splitlines()
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if i % 997 == 0:
            out.append(lines[i // 2])  # an earlier event again
        if i % 1499 == 0:
            copy = json.loads(lines[i // 3])
            copy["productId"] = "product-moved"
            out.append(json.dumps(copy))  # same id under another product
        if i % 2003 == 0:
            out.append('{"eventId": "bad-%d", "productId": "product-000"}' % i)  # no text
    path = os.path.join(tmp, "events.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    return path, len(out)


def cluster(events, out, threads):
    proc = subprocess.run([PAINPOINT, "cluster", "--set", "encoder=static", "--input", events,
                           "--output", out, "--threads", str(threads)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        sys.exit(f"cluster --threads {threads} failed ({proc.returncode}): {proc.stderr}")
    summary = proc.stderr.strip().splitlines()[-1]
    if f"{threads} threads)" not in summary:
        sys.exit(f"--threads {threads}: unexpected summary line: {summary}")
    print(summary)
    with open(out, "rb") as f:
        return f.read()


def main():
    with tempfile.TemporaryDirectory(prefix="pp-cluster-threads-") as tmp:
        events, lines = write_input(tmp)
        one = cluster(events, os.path.join(tmp, "one.jsonl"), 1)
        rows = [json.loads(line) for line in one.decode().splitlines()]
        if len(rows) != lines:
            sys.exit(f"expected {lines} output lines, got {len(rows)}")
        per_product = collections.defaultdict(set)
        for r in rows:
            if "painPointId" in r:
                per_product[r["productId"]].add(r["painPointId"])
        errors = sum(1 for r in rows if "error" in r)
        # The comparison means something only if many products have many pain points each.
        if len(per_product) < 30 or min(len(v) for v in per_product.values()) < 5 or errors == 0:
            sys.exit(f"input too easy: {len(per_product)} products, {errors} errors")
        for threads in (2, 3):
            other = cluster(events, os.path.join(tmp, f"t{threads}.jsonl"), threads)
            if other != one:
                diff = next(i for i, (a, b) in enumerate(zip(one.splitlines(), other.splitlines()))
                            if a != b)
                sys.exit(f"--threads {threads} differs from --threads 1 at line {diff + 1}")
        print(f"ok: {len(rows)} lines, {len(per_product)} products, "
              f"{sum(len(v) for v in per_product.values())} pain points and candidates, "
              f"identical for 1, 2 and 3 threads")


if __name__ == "__main__":
    main()
