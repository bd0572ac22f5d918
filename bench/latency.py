#!/usr/bin/python3
"""Produce-to-summary latency of a running `painpoint serve` at a fixed offered rate.

A rate-limited producer sends protobuf FeedbackEvents (texts from bench/gen_events.py) to the three
input topics with occurred_at = the send time; a consumer reads painpoint.summaries from the
beginning. For every summary record (MERGED records excluded):

    latency = record timestamp (CreateTime, set by serve's publisher when it produces the record)
              - the summary's last_seen (occurred_at of the newest event it reflects)

i.e. how old the newest event in each published summary is when the summary leaves, coalescing
interval included. last_seen keeps occurred_at to the microsecond, so the figure is exact to
the clocks' resolution (CreateTime has milliseconds). Only meaningful on a fresh broker/topics:
every summary must come from this run.
Both clocks are this machine's (everything runs on 127.0.0.1).

  latency.py --brokers 127.0.0.1:PORT --metrics-url http://127.0.0.1:PORT/metrics --rate 10000 --duration 30
"""
import argparse
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_events import TOPIC_OF, EventMaker  # noqa: E402

from confluent_kafka import Consumer, Producer  # noqa: E402


def compile_protos(out_dir):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run(["protoc", "-I", root, "--python_out", out_dir,
                    "painpoint/v1/feedback.proto", "painpoint/v1/pain_point.proto"], check=True)
    sys.path.insert(0, out_dir)
    from painpoint.v1 import feedback_pb2, pain_point_pb2
    return feedback_pb2, pain_point_pb2


def metrics(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read().decode()
    except OSError:
        return {}
    values = {}
    for line in body.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        name = name.split("{", 1)[0]
        values[name] = values.get(name, 0.0) + float(value)
    return values


def percentile(sorted_values, p):
    # Nearest rank: an observed value, no interpolation.
    return sorted_values[max(0, math.ceil(p / 100.0 * len(sorted_values)) - 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--metrics-url", required=True)
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--products", type=int, default=100)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--pb-dir", required=True)
    ap.add_argument("--drain-timeout", type=float, default=300,
                    help="seconds to wait for serve to store and publish everything after sending")
    a = ap.parse_args()
    feedback_pb2, pain_point_pb2 = compile_protos(a.pb_dir)
    source_enum = {name: feedback_pb2.Source.Value(name) for name in TOPIC_OF}

    samples, merged = [], [0]
    last_record = [time.monotonic()]
    stop = threading.Event()
    consumer_error = []

    def consume():
        c = Consumer({"bootstrap.servers": a.brokers, "group.id": "bench-latency-%d" % os.getpid(),
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe(["painpoint.summaries"])
        try:
            while not stop.is_set():
                for msg in c.consume(1000, 0.2):
                    if msg.error():
                        continue
                    s = pain_point_pb2.PainPointSummary.FromString(msg.value())
                    last_record[0] = time.monotonic()
                    if s.status == pain_point_pb2.STATUS_MERGED:
                        merged[0] += 1
                        continue
                    _, ts_ms = msg.timestamp()
                    last_seen = s.last_seen.seconds + s.last_seen.nanos / 1e9
                    samples.append(ts_ms / 1000.0 - last_seen)
        except Exception as e:  # surfaces in the main thread's report
            consumer_error.append(repr(e))
        finally:
            c.close()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()

    maker = EventMaker(a.products, seed=a.seed)
    delivery_errors = [0]

    def on_delivery(err, _msg):
        if err is not None:
            delivery_errors[0] += 1

    producer = Producer({"bootstrap.servers": a.brokers, "linger.ms": 5, "acks": "all",
                         "enable.idempotence": True})
    ev = feedback_pb2.FeedbackEvent()
    sent = 0
    start = time.monotonic()
    end = start + a.duration
    total = int(a.duration * a.rate)
    while sent < total:
        now = time.monotonic()
        due = total if now >= end else min(int((now - start) * a.rate) + 1, total)
        while sent < due:
            pid, source, text, acct, channel = maker.make()
            ev.Clear()
            ev.event_id = "lat-%d-%d" % (a.seed, sent)
            ev.source = source_enum[source]
            ev.product_id = pid
            ev.text = text
            ev.account_id = "acct-%d" % acct
            ev.account_arr_cents = maker.arr[acct]
            ev.channel = channel
            # The send time, so last_seen tells when the newest event of a summary was sent. Never
            # ahead of serve's clock (same machine), so validation's future-skew check passes.
            ev.occurred_at.FromNanoseconds(time.time_ns())
            while True:
                try:
                    producer.produce(TOPIC_OF[source], ev.SerializeToString(), pid.encode(),
                                     on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.01)
            sent += 1
        producer.poll(0)
        time.sleep(0.001)
    send_seconds = time.monotonic() - start
    remaining = producer.flush(60)
    print("latency: offered %.0f events/s for %.0f s: sent %d in %.1f s (%.0f events/s), "
          "delivery errors %d, unflushed %d"
          % (a.rate, a.duration, sent, send_seconds, sent / send_seconds, delivery_errors[0],
             remaining), flush=True)

    # Done when serve stored every event and its outbox is empty, then a quiet spell longer than
    # the publisher's coalescing interval (1 s) so the last coalesced records are in.
    deadline = time.monotonic() + a.drain_timeout
    stored = -1
    while time.monotonic() < deadline:
        m = metrics(a.metrics_url)
        stored = int(m.get("painpoint_store_events", -1))
        if stored >= sent and m.get("painpoint_outbox_pending", 1) == 0:
            break
        time.sleep(0.5)
    else:
        print("latency: WARNING: serve stored %d of %d or did not drain its outbox within %.0f s"
              % (stored, sent, a.drain_timeout), flush=True)
    quiet_deadline = time.monotonic() + 60
    while time.monotonic() - last_record[0] < 3 and time.monotonic() < quiet_deadline:
        time.sleep(0.2)
    stop.set()
    consumer.join(15)
    if consumer_error:
        print("latency: consumer failed:", consumer_error[0])
        return 1
    if not samples:
        print("latency: no summary records received")
        return 1
    samples.sort()
    print("latency produce->summary (record timestamp - last_seen), %d samples (%d merged records "
          "excluded), stored %d of %d: p50 %.3f s, p99 %.3f s, max %.3f s"
          % (len(samples), merged[0], stored, sent, percentile(samples, 50),
             percentile(samples, 99), samples[-1]))
    return 0 if stored >= sent and delivery_errors[0] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
