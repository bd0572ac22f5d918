"""Any instance answers any API request, on Apache Kafka (PAINPOINT_TEST_KAFKA=<version>):
two `painpoint serve --forward-requests` instances in one consumer group (both joined, as Kafka's
ConsumerGroupCommand shows, before any event is produced), feedback for eight products that
cover every partition of painpoint.feedback-by-product, so each instance owns some. Then:
- for every product, its pain-point list and its first pain point's detail and events are the
  same whichever instance is asked;
- /v1/products is the same on both and lists every product with all the events;
- a rename sent to the instance that does not own the pain point's product lands on the owner;
- a request with X-Painpoint-Forwarded is answered from the local store only (404 or an empty
  list for what the other instance owns);
- with the broker stopped (SIGSTOP), so that the owners cannot be read again, every product's
  list is still the same from both instances: the last owners read stay in use.
Both instances run with API tokens, so the forwarded requests must carry the client's.

usage: forwarding_real_test.py PATH/TO/painpoint
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import (KAFKA_VERSION, KafkaBroker, Serve, log, make_events, produce,  # noqa: E402
                     wait_until, workdir, write_jsonl)

PARTITIONS = 4
EVENTS = 1_200
WRITE_TOKEN, READ_TOKEN = "w-token", "r-token"
FORWARDED = "X-Painpoint-Forwarded"


def murmur2(data):
    """Kafka's Utils.murmur2 (the Java clients' default partitioner), as an unsigned 32-bit int."""
    m, length = 0x5BD1E995, len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length - length % 4
    if length % 4 >= 3:
        h ^= data[tail + 2] << 16
    if length % 4 >= 2:
        h ^= data[tail + 1] << 8
    if length % 4 >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_of(product):
    return (murmur2(product.encode()) & 0x7FFFFFFF) % PARTITIONS


def products_covering_partitions():
    """Two product ids per partition."""
    chosen = {p: [] for p in range(PARTITIONS)}
    n = 0
    while any(len(v) < 2 for v in chosen.values()):
        name = "product-%d" % n
        if len(chosen[partition_of(name)]) < 2:
            chosen[partition_of(name)].append(name)
        n += 1
    return sorted(p for names in chosen.values() for p in names)


def call(serve, path, method="GET", body=None, forwarded=False):
    headers = {"Authorization": "Bearer " + (WRITE_TOKEN if method == "POST" else READ_TOKEN)}
    if forwarded:
        headers[FORWARDED] = "test"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (serve.port, path), data=data,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "null")


def aggregator_members(broker):
    """{client id: number of partitions} of painpoint-aggregator, from ConsumerGroupCommand."""
    out = broker.run_class("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                           "--bootstrap-server", broker.bootstrap, "--describe", "--members",
                           "--group", "painpoint-aggregator")
    members = {}
    for line in out.stdout.splitlines():
        cols = line.split()
        # GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS
        if len(cols) >= 5 and cols[0] == "painpoint-aggregator" and cols[4].isdigit():
            members[cols[3]] = int(cols[4])
    return members


def check_reads(a, b, products):
    """Every product's pages and first pain point agree on both instances; returns
    {product: first pain point id}."""
    first = {}
    for product in products:
        path = "/v1/products/%s/pain-points?sort=events&limit=20" % product
        sa, la = call(a, path)
        sb, lb = call(b, path)
        assert sa == sb == 200, (product, sa, sb, la, lb)
        assert la == lb, (product, la, lb)
        assert la["painPoints"], "%s has no pain points: %r" % (product, la)
        pid = la["painPoints"][0]["id"]
        first[product] = pid
        for sub in ("", "/events?limit=5"):
            quoted = "/v1/pain-points/%s%s" % (urllib.parse.quote(pid), sub)
            da, db = call(a, quoted), call(b, quoted)
            assert da[0] == db[0] == 200 and da == db, (product, pid, sub, da, db)
    return first


def main():
    version = KAFKA_VERSION or "4.4.0"
    products = products_covering_partitions()
    with workdir() as d:
        broker = KafkaBroker(PARTITIONS, version)
        instances = []
        try:
            extra = ["--forward-requests", "--api-token", WRITE_TOKEN, "--api-read-token",
                     READ_TOKEN]
            for name in ("a", "b"):
                instances.append(Serve(broker.bootstrap, os.path.join(d, name), extra=extra))
                instances[-1].wait_ready(timeout=90)
            a, b = instances
            members = wait_until(
                lambda: (lambda m: m if len(m) == 2 and all(m.values()) else None)(
                    aggregator_members(broker)), 60, "two aggregator members with partitions",
                interval=1)
            assert sorted(members) == sorted("painpoint@127.0.0.1:%d" % s.port
                                             for s in instances), members
            log("painpoint-aggregator: %s" % members)

            events = make_events(EVENTS, products=products)
            path = os.path.join(d, "feedback.jsonl")
            write_jsonl(path, events)
            out = produce(broker.bootstrap, "feedback.support", path)
            assert out.returncode == 0, out.stderr + out.stdout
            wait_until(lambda: sum(s.metric("painpoint_store_events", 0) for s in instances)
                       >= EVENTS, 120, "%d events stored by the two instances" % EVENTS)
            for s in instances:
                s.wait_published(timeout=120)

            own = {}
            for name, s in (("a", a), ("b", b)):
                status, body = call(s, "/v1/products", forwarded=True)
                assert status == 200, body
                own[name] = {p["productId"] for p in body["products"]}
            assert own["a"] and own["b"] and not own["a"] & own["b"], own
            assert own["a"] | own["b"] == set(products), own
            log("products stored by a: %s; by b: %s" % (sorted(own["a"]), sorted(own["b"])))

            sa, la = call(a, "/v1/products")
            sb, lb = call(b, "/v1/products")
            assert sa == sb == 200 and la == lb, (sa, sb, la, lb)
            assert [p["productId"] for p in la["products"]] == products, la
            assert sum(int(p["eventCount"]) for p in la["products"]) == EVENTS, la
            log("/v1/products: the same %d products and %d events on both" % (len(products),
                                                                            EVENTS))

            first = check_reads(a, b, products)
            log("pain-point lists, details and events of %d products equal on both" % len(first))

            # The loop guard: a forwarded request is answered from the local store only.
            theirs = sorted(own["b"])[0]
            status, body = call(a, "/v1/products/%s/pain-points" % theirs, forwarded=True)
            assert status == 404 or (status == 200 and not body["painPoints"]), (status, body)
            status, body = call(a, "/v1/pain-points/%s" % first[theirs], forwarded=True)
            assert status == 404, (status, body)

            # A rename sent to the instance that does not own the product lands on the owner.
            target = first[theirs]
            status, body = call(a, "/v1/pain-points/%s/rename" % target, method="POST",
                                body={"label": "renamed through a"})
            assert status == 200 and body["label"] == "renamed through a", (status, body)
            status, body = call(b, "/v1/pain-points/%s" % target, forwarded=True)
            assert status == 200 and body["label"] == "renamed through a", (status, body)
            assert call(a, "/v1/pain-points/%s" % target, forwarded=True)[0] == 404
            assert call(a, "/v1/pain-points/%s" % target)[1]["label"] == "renamed through a"
            log("rename of %s (%s, owned by b) sent to a: applied by b" % (target, theirs))

            broker.pause()
            try:
                time.sleep(3)  # beyond a refresh of the owners, which now fails
                for product in products:
                    path = "/v1/products/%s/pain-points?limit=5" % product
                    sa, la = call(a, path)
                    sb, lb = call(b, path)
                    assert sa == sb == 200 and la == lb, (product, sa, sb, la, lb)
            finally:
                broker.resume()
            log("broker stopped: the lists of %d products still equal on both" % len(products))

            for s in instances:
                s.stop_cleanly()
            instances = []
        except BaseException:
            for s in instances:
                print(s.tail(60), file=sys.stderr)
            raise
        finally:
            for s in instances:
                s.stop()
            broker.stop()
    print("forwarding_real_test: OK")


if __name__ == "__main__":
    main()
