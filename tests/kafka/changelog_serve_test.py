"""serve with `changelog.enabled = true` on Apache Kafka (PAINPOINT_TEST_KAFKA=<version>): the
state is restored from painpoint.aggregator-changelog (docs/operations.md, "The aggregator
changelog").

1. Warm restores: N events (plus ~5% redelivered copies) flow while serve is SIGKILLed K times at
   random moments and restarted on the same data directory each time (so the local store may be
   behind the changelog by the batch in flight). End state as in the crash suite: every distinct
   event stored once, a member of exactly one active pain point, the counts add up, the latest
   summary per key equals the API.
2. Cold restore: serve stopped, its data directory deleted, serve started again: it restores every
   partition from the changelog alone; every API answer (products, every product's pain points,
   every pain point and its member events) equals the answers before, and nothing was consumed
   again (painpoint_events_stored_total 0, the store's gauge N).
3. M more events are then processed as usual, and the end state holds N + M.

usage: changelog_serve_test.py PATH/TO/painpoint [--events N] [--more M] [--kills K] [--seed S]
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault"))
import faultlib  # noqa: E402
from faultlib import get_json, log  # noqa: E402
from harness import (KAFKA_VERSION, KafkaBroker, Serve, stop_on_exit, wait_until,  # noqa: E402
                     workdir)

PARTITIONS = 4
RESTORED = re.compile(r"restored (\d+) partitions from the changelog in ([\d.]+) s: "
                      r"(\d+) records applied; store holds (\d+) events")


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("painpoint")
    ap.add_argument("--events", type=int, default=12_000)
    ap.add_argument("--more", type=int, default=1_500)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("PAINPOINT_FAULT_SEED", "0")) or None)
    return ap.parse_args()


def pages(serve, path, field):
    """Every item of a paged list, in order."""
    items, cursor = [], ""
    while True:
        sep = "&" if "?" in path else "?"
        page = get_json(serve, path + (sep + "cursor=" + cursor if cursor else ""))
        items += page.get(field, [])
        cursor = page.get("nextCursor", "")
        if not cursor:
            return items


def api_answers(serve):
    """What the API answers about everything it holds, by request path."""
    out = {"/v1/products": get_json(serve, "/v1/products")}
    for product in out["/v1/products"]["products"]:
        path = "/v1/products/%s/pain-points?sort=events&limit=500" % urllib.parse.quote(
            product["productId"])
        out[path] = pages(serve, path, "painPoints")
        for p in out[path]:
            one = "/v1/pain-points/" + p["id"]
            out[one] = get_json(serve, one)
            events = one + "/events?limit=500"
            out[events] = pages(serve, events, "events")
    return out


def restores(serve):
    with open(serve.log_path) as f:
        return [tuple(float(x) for x in m.groups()) for m in RESTORED.finditer(f.read())]


def main():
    args = parse_args()
    assert KAFKA_VERSION, "needs PAINPOINT_TEST_KAFKA (Apache Kafka; see tests/kafka/README.md)"
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(seed)
    log("seed %d (PAINPOINT_FAULT_SEED=%d replays this schedule)" % (seed, seed))
    started = time.monotonic()
    with workdir() as d:
        faultlib.protobuf_module(d)
        from painpoint.v1 import pain_point_pb2 as pp  # noqa: E402
        from google.protobuf import json_format  # noqa: E402

        files, ids, messages = faultlib.make_input(d, args.events + args.more, seed)
        # The last `more` distinct events of each topic file come after the cold restore.
        first, later, first_ids = {}, {}, set()
        for topic, (path, _count) in files.items():
            with open(path) as f:
                lines = f.readlines()
            cut = int(len(lines) * args.events / (args.events + args.more))
            for name, part, target in (("first", lines[:cut], first),
                                       ("later", lines[cut:], later)):
                p = "%s.%s" % (path, name)
                with open(p, "w") as f:
                    f.writelines(part)
                target[topic] = (p, len(part))
            for line in lines[:cut]:
                first_ids.add(json.loads(line)["eventId"])
        log("input: %d distinct events first, %d in all (%d messages)"
            % (len(first_ids), len(ids), messages))
        # Checkpoints every 2,000 events: the arrival log's range deletions go through the
        # changelog too.
        config = faultlib.write_serve_config(
            d, "changelog.enabled = true\naggregator.checkpoint_events = 2000\n")
        data_dir = os.path.join(d, "data")
        broker = KafkaBroker(PARTITIONS, KAFKA_VERSION)
        serve = None
        producer = faultlib.BackgroundProducer()
        with stop_on_exit(broker, lambda: serve, sig=signal.SIGKILL), producer:
            brokers = broker.bootstrap
            # Spread over ~20 s, so that every kill lands while events still arrive.
            producer.start(brokers, first, chunks=30, pause=0.7)
            deleted_before = 0  # outbox entries published and deleted, over every run
            for k in range(args.kills):
                serve = Serve(brokers, data_dir, extra=["--config", config])
                serve.wait_ready(timeout=120)
                mark = (k + rng.uniform(0.3, 0.9)) / (args.kills + 1) * len(first_ids)
                wait_until(lambda: serve.check_running() or
                           serve.metric("painpoint_store_events", 0) >= mark,
                           120 + len(first_ids) / 500, "%d events stored" % mark, interval=0.05)
                time.sleep(rng.uniform(0.0, 0.3))
                held = serve.metric("painpoint_store_events")
                deleted_before += serve.metric("painpoint_outbox_deleted_total", 0)
                serve.stop(sig=signal.SIGKILL)
                log("kill %d/%d: store held %s events" % (k + 1, args.kills, held))
                serve = None
            producer.join()
            serve = Serve(brokers, data_dir, extra=["--config", config])
            serve.wait_ready(timeout=120)
            serve.wait_stored(len(first_ids), timeout=120 + len(first_ids) / 500)
            serve.wait_published(timeout=120)
            faultlib.verify(serve, brokers, first_ids, pp, json_format)
            warm = restores(serve)
            assert len(warm) == args.kills + 1, warm  # every start restored, from the checkpoint
            with open(serve.log_path) as f:
                rewrites = re.findall(r"writing (\d+) keys again", f.read())
            log("warm restores: %s; uncommitted keys written again after %d of them: %s"
                % (["%.2f s" % r[1] for r in warm], len(rewrites), rewrites))
            before = api_answers(serve)
            deleted_before += serve.metric("painpoint_outbox_deleted_total", 0)
            serve.stop_cleanly()
            serve = None

            shutil.rmtree(data_dir)
            log("data directory deleted; restoring from the changelog alone")
            serve = Serve(brokers, data_dir, extra=["--config", config])
            serve.wait_ready(timeout=300)
            cold = restores(serve)[-1]
            log("cold restore: %d partitions, %.2f s, %d records applied, %d events"
                % (cold[0], cold[1], cold[2], cold[3]))
            assert cold[0] == PARTITIONS and cold[3] == len(first_ids), cold
            assert serve.metric("painpoint_store_events") == len(first_ids)
            after = api_answers(serve)
            differ = [path for path in before if before[path] != after.get(path)]
            assert not differ and len(after) == len(before), (
                "%d of %d answers differ after the restore, e.g. %s"
                % (len(differ), len(before), differ[:5]))
            # Nothing consumed again: the restored offsets were the ones sought to.
            assert serve.metric("painpoint_events_stored_total", 0) == 0, serve.tail()
            log("%d API answers equal after the restore" % len(before))
            # The publisher's deletions went to the changelog with later batches (or on their
            # own when idle): the restore brings back only those a kill or the stop cut off, not
            # every entry ever written (which it would publish again).
            serve.wait_published(timeout=120)
            republished = serve.metric("painpoint_outbox_deleted_total", 0)
            log("outbox entries restored and published again: %d (%d deleted before)"
                % (republished, deleted_before))
            # Without the deletions on the changelog it is every entry ever written (at least
            # deleted_before); each kill and the stop cut some off (2-27% in five runs).
            assert republished < deleted_before / 2, (republished, deleted_before)

            faultlib.produce_all(brokers, later)
            serve.wait_stored(len(ids), timeout=120 + len(ids) / 500)
            serve.wait_published(timeout=120)
            faultlib.verify(serve, brokers, ids, pp, json_format)
            serve.stop_cleanly()
            serve = None
    log("changelog_serve_test: seed %d, %d + %d events, %d kills, cold restore %.2f s, %.0f s"
        % (seed, len(first_ids), len(ids) - len(first_ids), args.kills, cold[1],
           time.monotonic() - started))
    print("changelog_serve_test: OK")


if __name__ == "__main__":
    main()
