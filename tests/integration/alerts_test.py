"""Alerts end to end on the embedded broker: events that meet each kind of rule (a new pain point
reaching N accounts within 24 h, a spike of the last 7 days over the 7 before with ARR at risk,
severity over a threshold) give one AlertEvent each on painpoint.alerts (read with kcat, keyed
by alert id) and in GET /v1/alerts. Two webhooks (Slack format and generic) point at an HTTPS
receiver on 127.0.0.1 (Python's http.server with a throwaway certificate made by openssl for
this run) that is down until serve has failed to deliver, then up: every alert arrives, the
Slack one as {"text": ...}, the generic one as the AlertEvent's JSON with a valid HMAC-SHA256
signature; a third webhook that names the receiver "localhost" (the certificate says 127.0.0.1)
is refused at the TLS handshake and gets nothing. Then the same events again into a fresh broker
and data directory, with serve killed (SIGKILL) between two halves of the stream: the same
alerts, each exactly once per key on the topic; there a second receiver is up all along, and the
log prints the time from the produce that caused each alert to its record on painpoint.alerts
and to its POST at that receiver (figures, not assertions: an upper bound of the time from the
batch's commit, which follows the produce).

PAINPOINT_TEST_RECEIVER_DOWN_S=30 keeps the first receiver down at least 30 s after the events
went in (default: only until serve has failed to deliver to it), to check by hand that alerts
arrive after a longer outage.

usage: alerts_test.py PATH/TO/painpoint
"""
import hashlib
import hmac
import http.server
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time

from harness import (ROOT, Broker, Serve, free_port, kcat, log, produce, stop_on_exit, wait_until,
                     workdir, write_jsonl)

DAY = 86400
START = 1790553600  # 2026-09-28T00:00:00Z
RULES = """
alerts.rules.fresh = new_pain_point accounts=6 within_hours=24
alerts.rules.spike = spike factor=3 min_events=10 min_arr_cents=1000000
alerts.rules.severe = severity at_least=11
"""
CAMERA = ["the app crashes when I open the camera", "the app crashes when I open the camera again",
          "the app crashes when I open the camera today"]
BILLING = ["billing charged me twice this month", "billing charged me twice this month again",
           "billing charged me twice this month, please refund"]


def iso(seconds):
    import datetime
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def event(n, seconds, account, text):
    return {"eventId": "al-e-%d" % n, "source": "SOURCE_SUPPORT", "productId": "mobile-app",
            "text": text, "occurredAt": iso(seconds), "accountId": account,
            "accountArrCents": "1000000"}


def stream():
    """A camera crash once a day for 14 days from one account, then 40 of them from 16 accounts
    within two days (a spike, and severity rises); then a billing problem from 8 accounts within
    two hours (a new pain point). Steady days before the burst raise nothing."""
    events, n = [], 0
    for day in range(14):
        events.append(event(n, START + day * DAY, "acct-base", CAMERA[day % 3]))
        n += 1
    for i in range(40):
        events.append(event(n, START + 14 * DAY + i * 3600, "acct-%d" % (i % 16), CAMERA[i % 3]))
        n += 1
    for i in range(8):
        events.append(event(n, START + 16 * DAY + i * 900, "acct-b%d" % i, BILLING[i % 3]))
        n += 1
    return events


class Receiver:
    """An HTTPS server on 127.0.0.1 that records every POST (path, headers, body); started
    later than it is configured, so that deliveries fail first."""

    def __init__(self, d, name="receiver"):
        self.port = free_port()
        self.cert = os.path.join(d, name + "-cert.pem")
        self.key = os.path.join(d, name + "-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", self.key, "-out", self.cert], check=True,
                       capture_output=True)
        self.requests = []
        self.arrivals = {}  # (path, X-Painpoint-Alert-Id or body) -> time.monotonic() of the first
        self.server = None

    def start(self):
        received, arrivals = self.requests, self.arrivals

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, dict(self.headers), body))
                arrivals.setdefault((self.path, self.headers.get("X-Painpoint-Alert-Id", body)),
                                    time.monotonic())
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()


class AlertWatch:
    """kcat consuming painpoint.alerts in the background: when each key first arrived."""

    def __init__(self, brokers):
        self.arrivals = {}
        self.proc = subprocess.Popen(["kcat", "-b", brokers, "-C", "-t", "painpoint.alerts", "-o",
                                      "beginning", "-u", "-q", "-f", "%k\\n"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.arrivals.setdefault(line.decode().strip(), time.monotonic())

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def latencies(produced_at, arrivals):
    """Seconds from the last produce before each arrival to the arrival."""
    out = []
    for arrived in arrivals:
        before = [t for t in produced_at if t <= arrived]
        if before:
            out.append(arrived - max(before))
    return sorted(out)


def webhook_config(d, receiver):
    secret = os.path.join(d, "webhook-secret")
    with open(secret, "w") as f:
        f.write("s3cret-for-this-test\n")
    return """
alerts.webhooks.team.url = https://127.0.0.1:{port}/slack
alerts.webhooks.team.format = slack
alerts.webhooks.ops.url = https://127.0.0.1:{port}/hook?from=painpoint
alerts.webhooks.ops.format = generic
alerts.webhooks.ops.secret_file = {secret}
alerts.webhooks.wrong-host.url = https://localhost:{port}/wrong-host
alerts.webhooks.wrong-host.format = slack
alerts.webhook_ca_file = {cert}
alerts.webhook_backoff_max_ms = 2000
""".format(port=receiver.port, secret=secret, cert=receiver.cert)


def live_webhook_config(receiver):
    """A Slack webhook at a receiver that is up all along, its URL from the environment."""
    os.environ["PAINPOINT_WEBHOOK_LIVE_URL"] = "https://127.0.0.1:%d/live" % receiver.port
    return """
alerts.webhooks.live.format = slack
alerts.webhook_ca_file = {cert}
""".format(cert=receiver.cert)


def check_webhooks(receiver, alerts):
    ids = sorted(a["alertId"] for a in alerts)
    slack = [json.loads(body) for path, _, body in receiver.requests if path == "/slack"]
    generic = [(headers, body) for path, headers, body in receiver.requests
               if path == "/hook?from=painpoint"]
    assert len(slack) == len(ids) and len(generic) == len(ids), receiver.requests
    for doc in slack:
        assert list(doc) == ["text"] and "mobile-app" in doc["text"], doc
    assert sorted(doc["text"].split("]")[0][1:] for doc in slack) == sorted(
        a["rule"] for a in alerts), slack
    got = []
    for headers, body in generic:
        stamp = headers["X-Painpoint-Timestamp"]
        want = "sha256=" + hmac.new(b"s3cret-for-this-test", stamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Painpoint-Signature"], want), headers
        doc = json.loads(body)
        assert doc["alertId"] == headers["X-Painpoint-Alert-Id"], (doc, headers)
        got.append(doc["alertId"])
    assert sorted(got) == ids, (got, ids)


def alert_module(d):
    out = os.path.join(d, "pb")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", out,
                    "painpoint/v1/alert.proto"], check=True)
    sys.path.insert(0, out)
    from painpoint.v1 import alert_pb2  # noqa: E402
    return alert_pb2


def read_alerts(brokers, pb):
    """Every record on painpoint.alerts as (key, AlertEvent)."""
    out = kcat("-b", brokers, "-C", "-t", "painpoint.alerts", "-o", "beginning", "-e", "-q",
               "-f", "%K %S\t%k%s")
    assert out.returncode == 0, out.stderr
    data, pos, records = out.stdout, 0, []
    while pos < len(data):
        tab = data.index(b"\t", pos)
        klen, vlen = (int(x) for x in data[pos:tab].split())
        pos = tab + 1
        key = data[pos:pos + klen].decode()
        pos += klen
        alert = pb.AlertEvent()
        alert.ParseFromString(data[pos:pos + vlen])
        pos += vlen
        assert alert.alert_id == key, (key, alert.alert_id)
        records.append((key, alert))
    return records


def listed(serve):
    status, body = serve.get("/v1/alerts?limit=500")
    assert status == 200, body
    return json.loads(body)["alerts"]


def summary_of(serve, pain_point_id):
    status, body = serve.get("/v1/pain-points/" + pain_point_id)
    assert status == 200, body
    return json.loads(body)


def run(d, pb, name, halves_with_kill, receiver=None, live=None):
    """Feeds the stream (in two halves with a SIGKILL between them, or whole) and returns the
    alerts on the topic by key and GET /v1/alerts; with a receiver, starts it once serve failed
    to deliver to it (and PAINPOINT_TEST_RECEIVER_DOWN_S passed) and waits for every alert there;
    with a live receiver (up all along), logs how long each alert took to reach it."""
    events = stream()
    config = os.path.join(d, name + ".conf")
    with open(config, "w") as f:
        f.write(RULES + (webhook_config(d, receiver) if receiver else "")
                + (live_webhook_config(live) if live else ""))
    broker = Broker(partitions=4)
    serve = None
    watch = None
    produced_at = []
    with stop_on_exit(broker, lambda: serve):
        data_dir = os.path.join(d, name)
        serve = Serve(broker.bootstrap, data_dir, extra=["--config", config])
        serve.wait_ready()
        watch = AlertWatch(broker.bootstrap)
        parts = [events[:34], events[34:]] if halves_with_kill else [events]
        stored = 0
        for i, part in enumerate(parts):
            path = os.path.join(d, "%s-%d.jsonl" % (name, i))
            write_jsonl(path, part)
            out = produce(broker.bootstrap, "feedback.support", path)
            assert out.returncode == 0, out.stdout + out.stderr
            produced_at.append(time.monotonic())  # kcat -P returns once the broker acknowledged
            stored += len(part)
            serve.wait_stored(stored)
            if halves_with_kill and i == 0:
                serve.stop(signal.SIGKILL)
                serve = Serve(broker.bootstrap, data_dir, extra=["--config", config])
                serve.wait_ready()
        alerts = wait_until(lambda: (lambda a: a if len({x["rule"] for x in a}) == 3 else None)(
            listed(serve)), 30, "an alert of each rule")
        # Every listed alert reaches the topic.
        wanted = {a["alertId"] for a in alerts}
        records = wait_until(
            lambda: (lambda r: r if {k for k, _ in r} >= wanted else None)(
                read_alerts(broker.bootstrap, pb)), 30, "the alerts on painpoint.alerts")
        summaries = {a["painPointId"]: summary_of(serve, a["painPointId"]) for a in alerts}
        status, body = serve.get("/readyz")
        assert status == 200 and json.loads(body)["details"]["alert_publisher"] == "ok", body
        assert serve.metric("painpoint_alert_publisher_ok") == 1
        if receiver:
            def both_failed():
                with open(serve.log_path) as f:
                    log_text = f.read()
                return all("webhook %s: alert" % hook in log_text for hook in ("team", "ops"))
            wait_until(both_failed, 30, "failed deliveries while the receiver is down")
            down_s = float(os.environ.get("PAINPOINT_TEST_RECEIVER_DOWN_S", "0"))
            time.sleep(max(0.0, produced_at[0] + down_s - time.monotonic()))
            receiver.start()
            log("receiver down for %.1f s after the events went in" %
                (time.monotonic() - produced_at[0]))
            log("receiver up after", int(serve.metric("painpoint_alert_webhook_failures_total")),
                "failed deliveries")
            wait_until(lambda: serve.metric("painpoint_alert_webhook_deliveries_total", 0)
                       >= 2 * len(alerts), 30, "every alert at both webhooks")
            check_webhooks(receiver, alerts)
            log("both webhooks received all", len(alerts), "alerts")
            # The certificate names 127.0.0.1 only: the client must refuse it for localhost.
            assert not [r for r in receiver.requests if r[0] == "/wrong-host"], receiver.requests
            with open(serve.log_path) as f:
                refused = [line for line in f if "webhook wrong-host" in line and "TLS" in line]
            assert refused, serve.tail(30)
            log("a certificate for another host refused:", refused[-1].strip()[-120:])
        if live:
            wait_until(lambda: len([r for r in live.requests if r[0] == "/live"]) >= len(alerts),
                       30, "every alert at the live receiver")
            log("produce -> painpoint.alerts, s:", " ".join(
                "%.2f" % t for t in latencies(produced_at, watch.arrivals.values())))
            log("produce -> webhook POST, s:", " ".join(
                "%.2f" % t for t in latencies(produced_at, live.arrivals.values())))
        watch.stop()
        serve.stop_cleanly()
        serve = None
    return records, alerts, summaries


def check(records, alerts, summaries, pb):
    by_rule = {}
    for a in alerts:
        by_rule.setdefault(a["rule"], []).append(a)
    log("alerts:", ", ".join("%s %s %s (severity %.2f, %s accounts)" % (
        a["rule"], a["painPointId"], a["windowStart"], a["severity"], a["accountCount"])
        for a in alerts))
    assert sorted(by_rule) == ["fresh", "severe", "spike"], by_rule
    for rule, fired in by_rule.items():
        assert len(fired) == 1, (rule, fired)
    fresh, spike, severe = by_rule["fresh"][0], by_rule["spike"][0], by_rule["severe"][0]
    assert fresh["kind"] == "ALERT_KIND_NEW_PAIN_POINT"
    assert "charged" in summaries[fresh["painPointId"]]["label"], summaries[fresh["painPointId"]]
    assert spike["kind"] == "ALERT_KIND_SPIKE"
    assert spike["painPointId"] != fresh["painPointId"]
    assert int(spike["last7DaysCount"]) >= 3 * int(spike["previous7DaysCount"]) > 0, spike
    assert severe["kind"] == "ALERT_KIND_SEVERITY" and severe["severity"] >= 11, severe
    keys = [k for k, _ in records]
    assert sorted(set(keys)) == sorted(a["alertId"] for a in alerts), (keys, alerts)
    first = {}
    for key, alert in records:
        assert alert.product_id == "mobile-app" and alert.rule, alert
        # A resend after a crash repeats the record byte for byte under its key.
        assert first.setdefault(key, alert.SerializeToString()) == alert.SerializeToString(), key


def main():
    with workdir() as d:
        pb = alert_module(d)
        receiver = Receiver(d)
        try:
            records, alerts, summaries = run(d, pb, "whole", halves_with_kill=False,
                                             receiver=receiver)
        finally:
            receiver.stop()
        check(records, alerts, summaries, pb)
        assert len(records) == len(alerts), "a record repeated without a crash: %r" % records
        log("one alert per rule on painpoint.alerts and in GET /v1/alerts")

        live = Receiver(d, "live")
        live.start()
        try:
            killed, killed_alerts, killed_summaries = run(d, pb, "killed", halves_with_kill=True,
                                                          live=live)
        finally:
            live.stop()
        check(killed, killed_alerts, killed_summaries, pb)
        same = sorted(a["alertId"] for a in killed_alerts) == sorted(a["alertId"] for a in alerts)
        assert same, (killed_alerts, alerts)
        log("SIGKILL mid-stream: the same %d alerts, %d records for %d keys"
            % (len(killed_alerts), len(killed), len({k for k, _ in killed})))
    print("alerts_test: OK")


if __name__ == "__main__":
    main()
