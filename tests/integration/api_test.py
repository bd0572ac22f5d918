"""Issue 4, items 2 and 3: the HTTP API of `painpoint serve`, end to end on `painpoint broker`.

serve runs with a write token (T), a read token (R) and a 64 KiB body limit. Checked: probes stay
open; every /v1 endpoint answers with and refuses without the right token (401 +
WWW-Authenticate); oversize body 413, bad JSON 400, invalid event 422 (with its reason code),
unknown path/id 404, wrong method 405; events POSTed to /v1/feedback are stored and clustered
(GET /v1/products counts them, pain points list them, the events endpoint pages through every
member newest first).

usage: api_test.py PATH/TO/painpoint
"""
import http.client
import json
import os
import sys

from harness import Broker, Serve, log, make_events, wait_until, workdir

WRITE, READ = "T-write-secret", "R-read-secret"
BODY_LIMIT = 64 * 1024


def call(serve, method, path, body=None, token=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=15)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        raw = r.read().decode()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw
        return r.status, dict(r.getheaders()), doc
    finally:
        conn.close()


def expect(result, status, code=None, what=""):
    got, _, doc = result
    assert got == status, "%s: expected %d, got %d: %r" % (what, status, got, doc)
    if code is not None:
        assert isinstance(doc, dict) and doc["error"]["code"] == code, \
            "%s: expected code %s: %r" % (what, code, doc)
    return doc


def main():
    with workdir() as d:
        broker = Broker(partitions=2)
        serve = Serve(broker.bootstrap, os.path.join(d, "data"),
                      extra=["--api-token", WRITE, "--api-read-token", READ,
                             "--http-body-limit", str(BODY_LIMIT)])
        try:
            serve.wait_ready()
            log("serve ready on port", serve.port)

            # Probes and metrics never need a token.
            for path in ("/healthz", "/readyz", "/metrics"):
                expect(call(serve, "GET", path), 200, what=path)

            # Tokens.
            status, headers, doc = call(serve, "GET", "/v1/products")
            assert status == 401 and doc["error"]["code"] == "unauthorized", doc
            assert headers.get("WWW-Authenticate", "").startswith("Bearer"), headers
            expect(call(serve, "GET", "/v1/products", token="wrong"), 401, "invalid_token")
            expect(call(serve, "GET", "/v1/products", token=READ), 200, what="read token")
            expect(call(serve, "GET", "/v1/products", token=WRITE), 200, what="write token reads")
            one = {"eventId": "x-1", "productId": "mobile-app", "text": "login fails",
                   "source": "SOURCE_SUPPORT"}
            expect(call(serve, "POST", "/v1/feedback", one), 401, "unauthorized")
            expect(call(serve, "POST", "/v1/feedback", one, token=READ), 401, "invalid_token")
            log("tokens: ok")

            # Malformed input: each error code, nothing produced.
            expect(call(serve, "POST", "/v1/feedback", "{not json", token=WRITE), 400, "bad_json")
            expect(call(serve, "POST", "/v1/feedback", '[{"eventId":"a"},', token=WRITE), 400,
                   "bad_json")
            expect(call(serve, "POST", "/v1/feedback", dict(one, text="   "), token=WRITE), 422,
                   "missing_text")
            expect(call(serve, "POST", "/v1/feedback", dict(one, productId="bad id!"),
                        token=WRITE), 422, "bad_product_id")
            no_source = {k: v for k, v in one.items() if k != "source"}
            expect(call(serve, "POST", "/v1/feedback", no_source, token=WRITE), 422,
                   "missing_source")
            big = [dict(one, eventId="big-%d" % i, text="x" * 1000) for i in range(80)]
            expect(call(serve, "POST", "/v1/feedback", big, token=WRITE), 413, what="oversize")
            expect(call(serve, "DELETE", "/v1/feedback", token=WRITE), 405, what="DELETE")
            expect(call(serve, "GET", "/v1/feedback", token=WRITE), 405, what="GET feedback")
            expect(call(serve, "GET", "/v1/nothing-here", token=READ), 404, what="unknown path")
            expect(call(serve, "GET", "/v1/pain-points/pp-unknown", token=READ), 404, "not_found")
            expect(call(serve, "GET", "/v1/pain-points/pp-unknown/events", token=READ), 404,
                   "not_found")
            expect(call(serve, "GET", "/v1/products/mobile-app/pain-points?sort=nope",
                        token=READ), 400, "bad_sort")
            log("error codes: ok")

            # Feedback through the webhook: arrays, ?source= for events that do not say.
            events = make_events(90, prefix="api")
            for e in events[:30]:
                e.pop("source")
            accepted = []
            for i in range(0, len(events), 30):
                path = "/v1/feedback?source=support" if i == 0 else "/v1/feedback"
                doc = expect(call(serve, "POST", path, events[i:i + 30], token=WRITE), 202,
                             what="POST batch %d" % i)
                accepted += doc["accepted"]
            single = dict(one, eventId="single-1", productId="billing", text="I was charged twice")
            doc = expect(call(serve, "POST", "/v1/feedback", single, token=WRITE), 202)
            accepted += doc["accepted"]
            assert accepted == [e["eventId"] for e in events] + ["single-1"], accepted
            serve.wait_stored(len(accepted), timeout=60)
            log("stored", len(accepted), "events posted to /v1/feedback")

            products = expect(call(serve, "GET", "/v1/products", token=READ), 200)["products"]
            counts = {p["productId"]: int(p["eventCount"]) for p in products}
            want = {}
            for e in events + [single]:
                want[e["productId"]] = want.get(e["productId"], 0) + 1
            assert counts == want, (counts, want)

            # Wait until the aggregator published pain points, then page through one's events.
            def listed():
                doc = expect(call(serve, "GET", "/v1/products/mobile-app/pain-points?limit=5",
                                  token=READ), 200)
                return doc["painPoints"]
            pain_points = wait_until(listed, 30, "pain points of mobile-app")
            top = pain_points[0]
            same = expect(call(serve, "GET", "/v1/pain-points/" + top["id"], token=READ), 200)
            assert same["id"] == top["id"], same
            members, cursor, pages = [], "", 0
            while True:
                doc = expect(call(serve, "GET", "/v1/pain-points/%s/events?limit=4&cursor=%s"
                                  % (top["id"], cursor), token=READ), 200)
                assert len(doc["events"]) <= 4, doc
                members += doc["events"]
                pages += 1
                cursor = doc["nextCursor"]
                if not cursor:
                    break
            ids = [m["eventId"] for m in members]
            assert len(ids) == len(set(ids)), "duplicate events across pages"
            assert len(ids) == int(same["eventCount"]), (len(ids), same["eventCount"])
            assert all(m["productId"] == "mobile-app" for m in members)
            keys = [(m["occurredAt"], m["eventId"]) for m in members]
            assert keys == sorted(keys, key=lambda k: (_neg(k[0]), k[1])), keys
            log("events of %s: %d in %d pages, newest first" % (top["id"], len(ids), pages))
            expect(call(serve, "GET", "/v1/pain-points/%s/events?cursor=zz" % top["id"],
                        token=READ), 400, "bad_cursor")
            expect(call(serve, "GET", "/v1/pain-points/%s/events" % top["id"]), 401,
                   "unauthorized")
        finally:
            rc = serve.stop()
            broker.stop()
        assert rc == 0, "serve exited with %s" % rc
        log("api_test: PASS")


def _neg(timestamp):
    """Sort key that orders RFC 3339 UTC timestamps (same format, same length) descending."""
    return [-ord(c) for c in timestamp]


if __name__ == "__main__":
    main()
