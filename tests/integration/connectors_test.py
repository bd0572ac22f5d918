"""Issue 19, item 1: POST /v1/connectors/{system} end to end on `painpoint broker`.

serve runs with all four connectors enabled (Zendesk and Jira secrets from files, Intercom and
generic from PAINPOINT_<SYSTEM>_SECRET). The vendors' fixtures (tests/fixtures/connectors) are
signed here with Python's hmac, independently of the service's code. Checked: each valid delivery
answers 202; a redelivery answers 202 again and is stored once (painpoint_store_events and the
duplicate counter); a bad or missing signature and an old timestamp answer 401, a malformed
payload 400, an unknown system 404, and none of them is stored; the stored events carry the
mapped product, account, ARR and link back to the ticket (read through the API).

usage: connectors_test.py PATH/TO/painpoint
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import time

from harness import (PAINPOINT, ROOT, Broker, Serve, kcat, log, protobuf_module, stop_on_exit,
                     wait_until, workdir)

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "connectors")
SECRETS = {"zendesk": "zd-secret-1", "intercom": "ic-secret-2", "jira": "jr-secret-3",
           "generic": "gn-secret-4"}


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def signed_headers(system, body, when=None):
    secret = SECRETS[system].encode()
    when = time.time() if when is None else when
    if system == "zendesk":
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
        digest = hmac.new(secret, stamp.encode() + body, hashlib.sha256).digest()
        return {"X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
                "X-Zendesk-Webhook-Signature-Timestamp": stamp}
    if system == "intercom":
        return {"X-Hub-Signature": "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()}
    if system == "jira":
        return {"X-Hub-Signature": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()}
    stamp = str(int(when))
    digest = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Painpoint-Timestamp": stamp, "X-Painpoint-Signature": "sha256=" + digest}


def post(serve, system, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=15)
    try:
        conn.request("POST", "/v1/connectors/" + system, body=body,
                     headers=dict(headers, **{"Content-Type": "application/json"}))
        r = conn.getresponse()
        raw = r.read().decode()
        return r.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def expect(result, status, what):
    got, doc = result
    assert got == status, "%s: expected %d, got %d: %r" % (what, status, got, doc)
    return doc


def write_config(d):
    for system in ("zendesk", "jira"):
        with open(os.path.join(d, system + ".secret"), "w") as f:
            f.write(SECRETS[system] + "\n")
    with open(os.path.join(d, "accounts.csv"), "w") as f:
        f.write("8447346622462,4200000\n")
    path = os.path.join(d, "painpoint.conf")
    with open(path, "w") as f:
        f.write("\n".join([
            "connectors.accounts_file = " + os.path.join(d, "accounts.csv"),
            "connectors.zendesk.secret_file = " + os.path.join(d, "zendesk.secret"),
            "connectors.zendesk.url_base = https://acme.zendesk.com",
            "connectors.zendesk.product.brand.8447346621310 = mobile-app",
            "connectors.zendesk.default_product = support-misc",
            "connectors.intercom.product.team.5017691 = reporting",
            "connectors.intercom.default_product = support-misc",
            "connectors.jira.secret_file = " + os.path.join(d, "jira.secret"),
            "connectors.jira.product.project.SD = billing",
            "connectors.jira.default_product = support-misc",
            "connectors.generic.field.id = /response/id",
            "connectors.generic.field.text = /response/answer",
            "connectors.generic.field.product = /app",
            "connectors.generic.field.account = /customer/account",
            "connectors.generic.field.arr = /customer/arr_cents",
            "connectors.generic.field.time = /response/submitted_at",
            "connectors.generic.field.url = /response/link",
            ""]))
    return path


def stored_events(d, data, brokers):
    """Every event in serve's store, by id: `painpoint replay emit` copies the store to a topic,
    kcat reads it back."""
    r = subprocess.run([PAINPOINT, "replay", "emit", "--data-dir", data, "--brokers", brokers,
                        "--topic", "connectors.check"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    pb = protobuf_module(d)
    got = kcat("-b", brokers, "-C", "-t", "connectors.check", "-o", "beginning", "-e",
               "-f", "%S\n%s")
    assert got.returncode == 0, got.stderr
    raw, events = got.stdout, {}
    while raw:
        nl = raw.index(b"\n")
        size = int(raw[:nl])
        event = pb.FeedbackEvent.FromString(raw[nl + 1:nl + 1 + size])
        assert event.event_id not in events, "event %s stored twice" % event.event_id
        events[event.event_id] = event
        raw = raw[nl + 1 + size:]
    return events


def main():
    with workdir() as d:
        config = write_config(d)
        os.environ["PAINPOINT_INTERCOM_SECRET"] = SECRETS["intercom"]
        os.environ["PAINPOINT_GENERIC_SECRET"] = SECRETS["generic"]
        broker = Broker(partitions=2)
        serve = Serve(broker.bootstrap, os.path.join(d, "data"), extra=["--config", config])
        current = [serve]
        with stop_on_exit(broker, lambda: current[0]):
            serve.wait_ready()
            deliveries = [("zendesk", "zendesk_ticket_created.json"),
                          ("zendesk", "zendesk_comment_added.json"),
                          ("intercom", "intercom_conversation_created.json"),
                          ("intercom", "intercom_user_replied.json"),
                          ("jira", "jira_issue_created.json"),
                          ("jira", "jira_comment_created.json"),
                          ("generic", "generic_survey.json")]
            for system, name in deliveries:
                body = fixture(name)
                doc = expect(post(serve, system, body, signed_headers(system, body)), 202, name)
                log(name, "->", doc["accepted"])
            # Redeliveries (Zendesk signs each attempt anew): accepted again, stored once.
            for system, name in [("zendesk", "zendesk_ticket_created.json"),
                                 ("jira", "jira_comment_created.json")]:
                body = fixture(name)
                expect(post(serve, system, body, signed_headers(system, body)), 202,
                       "redelivery of " + name)

            ticket = fixture("zendesk_ticket_created.json")
            forged = dict(signed_headers("zendesk", ticket))
            forged["X-Zendesk-Webhook-Signature"] = base64.b64encode(b"x" * 32).decode()
            refused = ticket.replace(b"5158", b"6158")  # a ticket that must never be stored
            for what, system, body, headers in [
                    ("forged zendesk", "zendesk", refused, forged),
                    ("unsigned intercom", "intercom",
                     fixture("intercom_conversation_created.json").replace(b'"147"', b'"148"'), {}),
                    ("old zendesk", "zendesk", refused,
                     signed_headers("zendesk", refused, time.time() - 360)),
                    ("old generic", "generic", fixture("generic_survey.json").replace(
                        b"r-9931", b"r-9932"),
                     signed_headers("generic", fixture("generic_survey.json").replace(
                         b"r-9931", b"r-9932"), time.time() - 360)),
                    ("jira signed with another secret", "jira",
                     fixture("jira_issue_created.json").replace(b'"10001"', b'"10002"'),
                     {"X-Hub-Signature": "sha256=" + hmac.new(
                         b"wrong", fixture("jira_issue_created.json").replace(
                             b'"10001"', b'"10002"'), hashlib.sha256).hexdigest()})]:
                doc = expect(post(serve, system, body, headers), 401, what)
                log(what, "->", doc["error"]["code"])
            malformed = b'{"webhookEvent":"jira:issue_created","issue":{"key":"SD-99"}}'
            doc = expect(post(serve, "jira", malformed, signed_headers("jira", malformed)), 400,
                         "malformed jira")
            assert "issue.id" in doc["error"]["message"], doc
            expect(post(serve, "salesforce", b"{}", {}), 404, "unknown system")

            serve.wait_stored(len(deliveries))
            wait_until(lambda: serve.metric("painpoint_events_duplicate_total", 0) >= 2, 60,
                       "the two redeliveries seen as duplicates")
            serve.wait_published()
            duplicates = serve.metric("painpoint_events_duplicate_total")
            stored = serve.metric("painpoint_store_events")
            assert stored == len(deliveries), "stored %s events, expected %d" % (
                stored, len(deliveries))

            _, body = serve.get("/v1/products")
            counts = {p["productId"]: int(p["eventCount"]) for p in json.loads(body)["products"]}
            assert counts == {"mobile-app": 2, "reporting": 2, "billing": 2, "web-app": 1}, counts
            serve.stop_cleanly()
            current[0] = None

            events = stored_events(d, os.path.join(d, "data"), broker.bootstrap)
            assert sorted(events) == sorted([
                "zendesk:ticket:5158", "zendesk:comment:9012345678901",
                "intercom:conversation:147", "intercom:part:7002", "jira:issue:10001",
                "jira:comment:10050", "generic:r-9931"]), sorted(events)
            t = events["zendesk:ticket:5158"]
            assert t.product_id == "mobile-app", t
            assert t.external_url == "https://acme.zendesk.com/agent/tickets/5158", t
            assert t.account_id == "8447346622462" and t.account_arr_cents == 4200000, t
            assert t.source == 3, t  # SOURCE_SUPPORT
            assert t.attributes["connector"] == "zendesk", t
            assert events["intercom:part:7002"].product_id == "reporting"
            assert events["intercom:part:7002"].account_id == "acct-42"
            assert events["jira:issue:10001"].external_url == \
                "https://acme.atlassian.net/browse/SD-17"
            assert events["jira:comment:10050"].product_id == "billing"
            g = events["generic:r-9931"]
            assert g.product_id == "web-app" and g.account_arr_cents == 1250000, g
            assert g.external_url == "https://surveys.example.com/responses/r-9931", g
            log("stored once each:", len(events), "events;", duplicates, "redeliveries dropped")


if __name__ == "__main__":
    sys.exit(main())
