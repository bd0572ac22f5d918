"""A data directory written by an older build (schema 2) keeps its answers after the upgrade:
OLD `painpoint serve` stores 2,400 events from a broker of 8 partitions and stops; NEW serve opens
the same directory (upgrading it to schema 3 on the read-write open) and must give the same
/v1/products, every product's pain points, and every pain point's record, first page of member
events and merged ids; then it takes 600 more events, and a restart of NEW gives again what it
gave before that restart.

Not in ctest (it needs a second build): run it by hand with the binary of the commit before the
schema 3 store, e.g. a build of main in a temporary directory.

usage: schema_upgrade_check.py NEW_PAINPOINT OLD_PAINPOINT
"""
import json
import os
import sys

import harness
from harness import Broker, Serve, log, make_events, produce, stop_on_exit, workdir, write_jsonl

NEW, OLD = sys.argv[1], sys.argv[2]
FIRST, MORE = 2400, 600


def snapshot(serve):
    """Everything the read API answers about the store, keyed by request path."""
    answers = {}

    def get(path):
        status, body = serve.get(path)
        assert status == 200, (path, status, body)
        answers[path] = json.loads(body)
        return answers[path]

    for product in get("/v1/products")["products"]:
        pain_points = get("/v1/products/%s/pain-points?sort=events&limit=500"
                          % product["productId"])
        assert not pain_points.get("nextCursor"), "more than 500 pain points"
        for p in pain_points["painPoints"]:
            get("/v1/pain-points/%s" % p["id"])
            get("/v1/pain-points/%s/events?limit=50" % p["id"])
            get("/v1/pain-points/%s/merged" % p["id"])
    return answers


def start(binary, broker, data):
    harness.PAINPOINT = binary
    serve = Serve(broker.bootstrap, data)
    serve.wait_ready()
    return serve


def main():
    with workdir() as d:
        harness.PAINPOINT = OLD
        broker = Broker(partitions=8)
        serve = None
        with stop_on_exit(broker, lambda: serve):
            data = os.path.join(d, "data")
            first = os.path.join(d, "first.jsonl")
            write_jsonl(first, make_events(FIRST, prefix="a", products=(
                "mobile-app", "web-app", "billing", "search", "checkout", "reports")))
            out = produce(broker.bootstrap, "feedback.support", first)
            assert out.returncode == 0, out.stderr

            serve = start(OLD, broker, data)
            serve.wait_stored(FIRST)
            serve.wait_published()
            before = snapshot(serve)
            serve.stop_cleanly()
            families = sorted(os.listdir(data))
            log("old build stored", FIRST, "events;", len(before), "answers")

            serve = start(NEW, broker, data)
            serve.wait_published()
            after = snapshot(serve)
            upgraded = [line for line in open(serve.log_path) if "upgraded to schema 3" in line]
            assert upgraded, "no upgrade logged:\n" + serve.tail()
            log("upgrade:", upgraded[-1].strip())
            differing = [path for path in before if before[path] != after.get(path)]
            assert not differing and before.keys() == after.keys(), (
                "answers differ after the upgrade: %s" % differing[:5])
            log("same", len(after), "answers after the upgrade")

            more = os.path.join(d, "more.jsonl")
            write_jsonl(more, make_events(MORE, prefix="b", seed=11, start=1_780_100_000))
            out = produce(broker.bootstrap, "feedback.support", more)
            assert out.returncode == 0, out.stderr
            serve.wait_stored(FIRST + MORE)
            serve.wait_published()
            grown = snapshot(serve)
            serve.stop_cleanly()

            serve = start(NEW, broker, data)
            serve.wait_published()
            again = snapshot(serve)
            assert again == grown, "answers differ after a restart of the new build"
            serve.stop_cleanly()
            serve = None
            log("ok:", FIRST + MORE, "events;", len(again), "answers the same after a restart;",
                "data dir had", len(families), "files before the upgrade")


if __name__ == "__main__":
    main()
