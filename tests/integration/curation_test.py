"""Issue 4, item 2 (curation): merge, rename and split over HTTP on `painpoint broker` + serve.

Sample feedback (scripts/sample_feedback.py) is clustered; then, with a write token configured:
the curation routes refuse requests without it (401) and answer every error code (400, 404, 409,
422); a rename, a merge and a split are applied and GET /v1/pain-points/{id} and the latest
records on painpoint.summaries (kcat) reflect them (the merged id's last record is MERGED and
names its survivor); more feedback keeps the human label and does not merge the split back; a
restart keeps it all.

With --encoder semantic, serve runs with `cluster.encoder = semantic`: a split then moves the
events' stored vectors too (the aggregator refuses a semantic split without them).

usage: curation_test.py PATH/TO/painpoint [--encoder static|semantic]
"""
import argparse
import http.client
import json
import os

from harness import (Broker, Serve, latest_per_key, log, produce_sample, protobuf_module,
                     read_summaries, stop_on_exit, workdir)

TOKEN = "curation-secret"
LABEL = "Photo upload crashes (curated)"


def call(serve, method, path, body=None, token=TOKEN):
    conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=15)
    headers = {"Authorization": "Bearer " + token} if token else {}
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    try:
        conn.request(method, path, body=body.encode() if isinstance(body, str) else body,
                     headers=headers)
        r = conn.getresponse()
        raw = r.read().decode()
        return r.status, (json.loads(raw) if raw else None)
    finally:
        conn.close()


def expect(result, status, what):
    got, doc = result
    assert got == status, "%s: expected %d, got %d: %r" % (what, status, got, doc)
    return doc


def get(serve, path):
    return expect(call(serve, "GET", path), 200, "GET " + path)


def check_state(serve, brokers, pb, a, b, c, n):
    """API and topic agree on the curated state: a renamed, c merged into b, n split from a."""
    pa = get(serve, "/v1/pain-points/" + a)
    assert pa["id"] == a and pa["label"] == LABEL, pa
    assert get(serve, "/v1/pain-points/" + c)["id"] == b, "a merged id answers with its survivor"
    pn = get(serve, "/v1/pain-points/" + n)
    assert pn["id"] == n and pn["status"] == "STATUS_ACTIVE", ("split re-merged", pn)
    serve.wait_published()
    latest = latest_per_key(read_summaries(brokers, pb))
    assert latest[a].label == LABEL, latest[a]
    assert latest[c].status == pb.STATUS_MERGED and latest[c].merged_into == b, latest[c]
    for key in (a, b, n):
        api = get(serve, "/v1/pain-points/" + key)
        assert latest[key].version == int(api["version"]), (key, latest[key].version, api)
        assert latest[key].event_count == int(api["eventCount"]), (key, api)
        assert latest[key].label == api["label"], (key, api)
    return pa, pn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("painpoint")
    ap.add_argument("--encoder", choices=("static", "semantic"), default="static",
                    help="cluster.encoder for serve")
    args = ap.parse_args()
    with workdir() as d:
        extra = ["--api-token", TOKEN]
        log("cluster.encoder =", args.encoder)
        pb = protobuf_module(d) and __import__("painpoint.v1.pain_point_pb2",
                                               fromlist=["PainPointSummary"])
        broker = Broker(partitions=2)
        data_dir = os.path.join(d, "data")
        serve = None
        with stop_on_exit(broker, lambda: serve):
            brokers = broker.bootstrap
            produce_sample(d, brokers, 600, seed=1)
            serve = Serve(brokers, data_dir, extra=extra, encoder=args.encoder)
            serve.wait_ready()
            serve.wait_stored(600)
            serve.wait_published()

            # The three biggest pain points of the product that has the most.
            products = get(serve, "/v1/products")["products"]
            product = max(products, key=lambda p: int(p.get("painPointCount", 0)))["productId"]
            top = get(serve, "/v1/products/%s/pain-points?sort=events&limit=3" % product)
            a, b, c = (p["id"] for p in top["painPoints"])
            count_a = int(top["painPoints"][0]["eventCount"])
            assert count_a >= 4, top
            log("product %s: a=%s (%d events) b=%s c=%s" % (product, a, count_a, b, c))

            # Errors first: nothing below may change anything.
            expect(call(serve, "POST", "/v1/pain-points/%s/rename" % a, {"label": "x"},
                        token=None), 401, "no token")
            expect(call(serve, "POST", "/v1/pain-points/%s/rename" % a, {"label": "x"},
                        token="wrong"), 401, "wrong token")
            expect(call(serve, "POST", "/v1/pain-points/%s/merge" % a, "{not json"), 400,
                   "bad JSON")
            expect(call(serve, "POST", "/v1/pain-points/%s/merge" % a, {"into": 7}), 400,
                   "into not a string")
            expect(call(serve, "POST", "/v1/pain-points/%s/split" % a, {"eventIds": "e"}), 400,
                   "eventIds not an array")
            expect(call(serve, "POST", "/v1/pain-points/pp-nope/rename", {"label": "x"}), 404,
                   "unknown id")
            expect(call(serve, "POST", "/v1/pain-points/%s/merge" % a, {"into": "pp-nope"}), 404,
                   "unknown into")
            expect(call(serve, "POST", "/v1/pain-points/%s/merge" % a, {"into": a}), 409,
                   "into itself")
            expect(call(serve, "POST", "/v1/pain-points/%s/rename" % a, {"label": "a\u0007b"}),
                   422, "control character in label")
            expect(call(serve, "POST", "/v1/pain-points/%s/split" % a, {"eventIds": ["nope"]}),
                   422, "not a member")
            other = [p for p in products if p["productId"] != product][0]["productId"]
            foreign = get(serve, "/v1/products/%s/pain-points?limit=1" % other)["painPoints"][0]
            expect(call(serve, "POST", "/v1/pain-points/%s/merge" % a, {"into": foreign["id"]}),
                   409, "into another product")
            assert get(serve, "/v1/pain-points/" + a)["label"] != LABEL

            # rename
            renamed = expect(call(serve, "POST", "/v1/pain-points/%s/rename" % a,
                                  {"label": LABEL}), 200, "rename")
            assert renamed["id"] == a and renamed["label"] == LABEL, renamed
            # merge c into b
            survivor = expect(call(serve, "POST", "/v1/pain-points/%s/merge" % c, {"into": b}),
                              200, "merge")
            assert survivor["id"] == b, survivor
            expect(call(serve, "POST", "/v1/pain-points/%s/merge" % c, {"into": b}), 409,
                   "merge of a merged id")
            expect(call(serve, "POST", "/v1/pain-points/%s/merge" % a, {"into": c}), 409,
                   "merge into a merged id")
            # split two of a's events off
            members = get(serve, "/v1/pain-points/%s/events?limit=2" % a)["events"]
            moved = [e["eventId"] for e in members]
            created = expect(call(serve, "POST", "/v1/pain-points/%s/split" % a,
                                  {"eventIds": moved}), 201, "split")
            n = created["id"]
            assert n not in (a, b, c) and int(created["eventCount"]) == 2, created
            assert int(get(serve, "/v1/pain-points/" + a)["eventCount"]) == count_a - 2
            listed = get(serve, "/v1/pain-points/%s/events?limit=10" % n)["events"]
            assert sorted(e["eventId"] for e in listed) == sorted(moved), listed
            expect(call(serve, "POST", "/v1/pain-points/%s/split" % a, {"eventIds": moved}), 422,
                   "split of events that moved")
            pa, pn = check_state(serve, brokers, pb, a, b, c, n)
            log("curated: renamed %s, merged %s into %s, split %s off (v%s)"
                % (a, c, b, n, pa["version"]))

            # More of the same feedback: the label stays, the split stays split.
            produce_sample(d, brokers, 600, seed=2)
            serve.wait_stored(1200)
            pa2, _ = check_state(serve, brokers, pb, a, b, c, n)
            assert int(pa2["eventCount"]) > int(pa["eventCount"]), "a got no new events"
            log("after 600 more events: %s has %s events, label kept" % (a, pa2["eventCount"]))

            serve.stop_cleanly()
            serve = Serve(brokers, data_dir, extra=extra, encoder=args.encoder)
            serve.wait_ready()
            produce_sample(d, brokers, 400, seed=3)
            serve.wait_stored(1600)
            check_state(serve, brokers, pb, a, b, c, n)
            log("after a restart and 400 more events: curation kept")
            serve.stop_cleanly()
            serve = None
    print("curation_test: OK")


if __name__ == "__main__":
    main()
