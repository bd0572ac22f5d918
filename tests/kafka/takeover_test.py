"""Partitions move between two serve instances with `changelog.enabled = true`, on Apache Kafka
(PAINPOINT_TEST_KAFKA=<version>): each assigned partition is restored from the changelog before
its events are processed (docs/adr-005-scale-out.md, item 3).

Two instances, distinct data directories and HTTP ports, the same topics and consumer group.
Events (plus ~5% redelivered copies, for products that cover every partition) flow for ~20 s
while: A starts alone; B joins (A's partitions move to B, restored cold there); A is stopped with
SIGTERM (B takes every partition); A starts again (partitions come back to it, restored warm from
its own data directory plus the changelog's tail); B is SIGKILLed (A takes B's partitions over
once the group expels B) and started again. End state, from the API of the instance that holds
each partition (/readyz lists them): every distinct event is stored exactly once across the
instances (counted in the pain points of the holder of its product's partition, each a member of
exactly one pain point), no pain point is active on two instances, the latest record per key
on painpoint.summaries equals what the holder's API says, and a request about a product whose
partition the other instance holds is answered 503 partition_not_held (no forwarding here). Prints each takeover's time
(assignment -> first batch committed) from the instances' logs.

Without restores on assignment, B would restore every partition at start and fence A's writers
(A stops), or start the moved partitions empty.

usage: takeover_test.py PATH/TO/painpoint [--events N] [--seed S]
"""
import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault"))
import faultlib  # noqa: E402
from faultlib import get_json, log  # noqa: E402
from harness import (KAFKA_VERSION, KafkaBroker, Serve, read_summaries,  # noqa: E402
                     wait_until, workdir)
from forwarding_real_test import murmur2  # noqa: E402

PARTITIONS = 4
RESUMED = re.compile(r"partition (\d+) restored \((warm|cold)\) in ([\d.]+) s: .*input resumes "
                     r"at \d+, ([\d.]+) s after the assignment")
TAKEOVER = re.compile(r"partition (\d+) taken over \((warm|cold)\): first batch committed "
                      r"([\d.]+) s after the assignment \(restore ([\d.]+) s\)")


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("painpoint")
    ap.add_argument("--events", type=int, default=8_000)
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("PAINPOINT_FAULT_SEED", "0")) or None)
    return ap.parse_args()


def partition_of(product):
    return (murmur2(product.encode()) & 0x7FFFFFFF) % PARTITIONS


def spread_products(files):
    """Rewrites the input so that its products cover every partition: each event's product gets
    a suffix from its event id (a redelivered copy keeps its original's)."""
    products = set()
    for path, _count in files.values():
        with open(path) as f:
            products.update(json.loads(line)["productId"] for line in f if line.strip())
    for k in range(2, 40):
        if len({partition_of("%s-%d" % (p, i)) for p in products for i in range(k)}) == PARTITIONS:
            break
    for path, _count in files.values():
        with open(path) as f:
            events = [json.loads(line) for line in f if line.strip()]
        with open(path, "w") as f:
            for e in events:
                e["productId"] = "%s-%d" % (e["productId"], zlib.crc32(e["eventId"].encode()) % k)
                f.write(json.dumps(e) + "\n")
    return sorted("%s-%d" % (p, i) for p in products for i in range(k))


def held(serve):
    """(held, restoring) partitions from /readyz, or None when serve does not answer."""
    status, body = serve.get("/readyz")
    if status is None:
        return None
    parts = json.loads(body).get("details", {}).get("partitions", {})
    return set(parts.get("held", [])), set(parts.get("restoring", []))


def settled(instances):
    """Every instance ready, the partitions held by exactly one each, nothing restoring."""
    seen = []
    for s in instances:
        s.check_running()
        h = held(s)
        if h is None or h[1] or s.get("/readyz")[0] != 200:
            return False
        seen.append(h[0])
    union = set().union(*seen)
    return len(union) == PARTITIONS and sum(len(h) for h in seen) == PARTITIONS and seen


def pages(serve, path, field):
    items, cursor = [], ""
    while True:
        sep = "&" if "?" in path else "?"
        page = get_json(serve, path + (sep + "cursor=" + urllib.parse.quote(cursor)
                                       if cursor else ""))
        items += page.get(field, [])
        cursor = page.get("nextCursor", "")
        if not cursor:
            return items


def owned_state(serve):
    """The active pain points of the products whose partition `serve` holds, and their members."""
    partitions = held(serve)[0]
    active, members = {}, collections.Counter()
    for product in get_json(serve, "/v1/products")["products"]:
        if partition_of(product["productId"]) not in partitions:
            continue  # a partition given up earlier: its state stays on disk, not served from here
        path = "/v1/products/%s/pain-points?sort=events&limit=500" % urllib.parse.quote(
            product["productId"])
        for p in pages(serve, path, "painPoints"):
            active[p["id"]] = p
            events = pages(serve, "/v1/pain-points/%s/events?limit=500" % p["id"], "events")
            assert len(events) == int(p.get("eventCount", 0)), (p["id"], len(events), p)
            members.update(e["eventId"] for e in events)
    return active, members


def stored_count(instances):
    """Distinct events in the pain points of the partitions each instance holds, summed."""
    total = 0
    for s in instances:
        partitions = held(s)
        if partitions is None:
            return -1
        for product in get_json(s, "/v1/products")["products"]:
            if partition_of(product["productId"]) in partitions[0]:
                total += int(product.get("eventCount", 0))
    return total


def check_not_held(a, b, products):
    """Without --forward-requests, a product whose partition the other instance holds is
    answered 503 partition_not_held with Retry-After, not from the state left on this disk."""
    checked = 0
    for here, other in ((a, b), (b, a)):
        elsewhere = held(other)[0] - held(here)[0]
        for product in [x for x in products if partition_of(x) in elsewhere][:3]:
            url = "http://127.0.0.1:%d/v1/products/%s/pain-points" % (here.port, product)
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    status, retry, body = r.status, r.headers.get("Retry-After"), r.read()
            except urllib.error.HTTPError as e:
                status, retry, body = e.code, e.headers.get("Retry-After"), e.read()
            code = json.loads(body).get("error", {}).get("code") if status == 503 else None
            assert (status, code, retry) == (503, "partition_not_held", "1"), (
                here.port, product, status, retry, body[:300])
            checked += 1
    assert checked, "no product of a partition held by the other instance"
    log("%d requests about the other instance's products: 503 partition_not_held" % checked)


def flowing(producer):
    # pylint: disable=protected-access
    return "events still flowing" if producer._thread.is_alive() else "producer done"


def wait_both_hold(a, b, what, producer, timeout=60):
    wait_until(lambda: settled([a, b]) and all(held(s)[0] for s in (a, b)), timeout, what,
               interval=0.5)
    log("%s: A holds %s, B holds %s (%s)" % (what, sorted(held(a)[0]), sorted(held(b)[0]),
                                             flowing(producer)))


class RestoringProbe:
    """Polls a starting instance: whenever /readyz lists a partition as restoring both before and
    after a request about one of its products, that request must have been answered 503 with
    Retry-After (and /readyz itself 503)."""

    def __init__(self, serve, products, seconds=15):
        self.serve, self.products, self.seconds = serve, products, seconds
        self.checked, self.errors = 0, []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            before = held(self.serve)
            if not before or not before[1]:
                time.sleep(0.01)
                continue
            p = min(before[1])
            product = next(x for x in self.products if partition_of(x) == p)
            url = "http://127.0.0.1:%d/v1/products/%s/pain-points" % (self.serve.port, product)
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    status, retry = r.status, r.headers.get("Retry-After")
            except urllib.error.HTTPError as e:
                status, retry = e.code, e.headers.get("Retry-After")
            ready = self.serve.get("/readyz")[0]
            after = held(self.serve)
            if after and p in after[1]:
                self.checked += 1
                if status != 503 or retry != "1" or ready != 503:
                    self.errors.append((p, product, status, retry, ready))

    def join(self):
        self.thread.join()
        assert not self.errors, self.errors
        return self.checked


def takeovers(*log_paths, pattern=TAKEOVER):
    out = []
    for path in log_paths:
        with open(path) as f:
            out += [(int(m[0]), m[1], float(m[2]), float(m[3])) for m in pattern.findall(f.read())]
    return out


def main():
    args = parse_args()
    assert KAFKA_VERSION, "needs PAINPOINT_TEST_KAFKA (Apache Kafka; see tests/kafka/README.md)"
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    log("seed %d (PAINPOINT_FAULT_SEED=%d replays this input)" % (seed, seed))
    started = time.monotonic()
    with workdir() as d:
        faultlib.protobuf_module(d)
        from painpoint.v1 import pain_point_pb2 as pp  # noqa: E402
        from google.protobuf import json_format  # noqa: E402

        files, ids, messages = faultlib.make_input(d, args.events, seed)
        products = spread_products(files)
        log("input: %d distinct events, %d messages, %d products" % (len(ids), messages,
                                                                     len(products)))
        config = faultlib.write_serve_config(
            d, "changelog.enabled = true\naggregator.checkpoint_events = 2000\n")
        extra = ["--config", config]
        broker = KafkaBroker(PARTITIONS, KAFKA_VERSION)
        live = {}
        producer = faultlib.BackgroundProducer()
        try:
            with producer:
                brokers = broker.bootstrap
                dirs = {n: os.path.join(d, n) for n in ("a", "b")}
                logs = {n: dirs[n] + ".log" for n in dirs}
                live["a"] = Serve(brokers, dirs["a"], extra=extra)
                live["a"].wait_ready(timeout=90)
                producer.start(brokers, files, chunks=40, pause=0.8)
                wait_until(lambda: live["a"].metric("painpoint_events_stored_total", 0)
                           >= len(ids) * 0.15, 60, "A stores events", interval=0.2)

                live["b"] = Serve(brokers, dirs["b"], extra=extra)
                probes = [RestoringProbe(live["b"], products)]
                wait_both_hold(live["a"], live["b"], "B joined", producer)

                rc = live["a"].stop(sig=signal.SIGTERM)
                assert rc == 0, "A exited %s on SIGTERM:\n%s" % (rc, live["a"].tail())
                del live["a"]
                wait_until(lambda: settled([live["b"]]), 60, "B holds every partition",
                           interval=0.5)
                log("A stopped (SIGTERM): B holds %s (%s)" % (sorted(held(live["b"])[0]),
                                                              flowing(producer)))

                live["a"] = Serve(brokers, dirs["a"], extra=extra)
                probes.append(RestoringProbe(live["a"], products))
                wait_both_hold(live["a"], live["b"], "A restarted", producer)

                live["b"].stop(sig=signal.SIGKILL)
                del live["b"]
                wait_until(lambda: settled([live["a"]]), 60,
                           "A holds every partition after B's SIGKILL", interval=0.5)
                log("B killed (SIGKILL): A holds %s (%s)" % (sorted(held(live["a"])[0]),
                                                             flowing(producer)))
                live["b"] = Serve(brokers, dirs["b"], extra=extra)
                probes.append(RestoringProbe(live["b"], products))
                wait_both_hold(live["a"], live["b"], "B restarted", producer)
                producer.join()
                checked = [probe.join() for probe in probes]
                log("product requests answered while their partition restored (all 503 with "
                    "Retry-After): %s" % checked)
            a, b = live["a"], live["b"]
            wait_until(lambda: settled([a, b]) and stored_count([a, b]) >= len(ids), 120,
                       "%d events stored across the instances" % len(ids), interval=0.5)
            for s in (a, b):
                s.wait_published(timeout=120)

            check_not_held(a, b, products)
            state = {n: owned_state(s) for n, s in (("A", a), ("B", b))}
            members = collections.Counter()
            for _active, m in state.values():
                members.update(m)
            both = set(state["A"][0]) & set(state["B"][0])
            counted = sum(int(p.get("eventCount", 0))
                          for active, _m in state.values() for p in active.values())
            numbers = {"distinct": len(ids), "sum_of_counts": counted,
                       "lost": len(ids - set(members)), "unknown": len(set(members) - ids),
                       "in_several_pain_points": sum(1 for c in members.values() if c > 1),
                       "pain_points_on_both": len(both),
                       "pain_points": {n: len(s[0]) for n, s in state.items()}}
            log("end state:", json.dumps(numbers))
            assert counted == len(ids), numbers
            assert numbers["lost"] == 0 and numbers["unknown"] == 0, numbers
            assert numbers["in_several_pain_points"] == 0 and not both, numbers

            latest = {}
            for _p, _o, _ts, key, s in sorted(read_summaries(brokers, pp, timeout=300),
                                              key=lambda r: (r[0], r[1])):
                if key not in latest or s.version >= latest[key].version:
                    latest[key] = s
            differ = []
            for name, (active, _m) in state.items():
                for pid, p in active.items():
                    api = json_format.ParseDict(p, pp.PainPointSummary())
                    if latest.get(pid) != api:
                        differ.append("%s on %s: topic v%s, API v%s" % (
                            pid, name, latest[pid].version if pid in latest else "-",
                            p.get("version")))
            assert not differ, ("%d active pain points whose latest record differs from the "
                                "holder's API, e.g. %s" % (len(differ), differ[:5]))
            log("painpoint.summaries: latest per key equals the holder's API for %d pain points"
                % sum(len(s[0]) for s in state.values()))
            for s in (a, b):
                s.stop_cleanly()
            live.clear()
        finally:
            for s in live.values():
                s.stop(sig=signal.SIGKILL)
            broker.stop()
        times = takeovers(*logs.values())
        if os.environ.get("PAINPOINT_KEEP_LOGS"):
            for path in logs.values():
                shutil.copy(path, os.environ["PAINPOINT_KEEP_LOGS"])
        log("takeovers (partition, warm/cold, assignment -> first batch s, restore s): %s"
            % times)
        resumed = takeovers(*logs.values(), pattern=RESUMED)
        for kind in ("warm", "cold"):
            t = sorted(x[2] for x in times if x[1] == kind)
            u = sorted(x[3] for x in resumed if x[1] == kind)
            r = sorted(x[2] for x in resumed if x[1] == kind)
            if t:
                # The first batch also waits for events of the partition to arrive: after a
                # SIGKILL the ingest group holds the dead member's input partitions until its
                # session times out.
                log("takeover (%s): %d partitions; assignment -> input resumed median %.3f s, "
                    "max %.3f s (restore median %.3f s, max %.3f s); assignment -> first batch "
                    "committed median %.3f s, max %.3f s"
                    % (kind, len(u), u[len(u) // 2], u[-1], r[len(r) // 2], r[-1],
                       t[len(t) // 2], t[-1]))
        assert any(x[1] == "cold" for x in times) and any(x[1] == "warm" for x in times), times
    log("takeover_test: seed %d, %d events, %.0f s" % (seed, len(ids), time.monotonic() - started))
    print("takeover_test: OK")


if __name__ == "__main__":
    main()
