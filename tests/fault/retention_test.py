"""Retention gap: while `painpoint serve` is stopped, more is produced to an input partition than
the broker keeps (the embedded broker drops the oldest messages beyond 5 MiB per partition; Apache
Kafka, under PAINPOINT_TEST_KAFKA, gets retention.bytes = 5 MiB on that topic), so the offset
serve resumes from is gone. Checked on restart: the loss is logged as an error, counted exactly
(low watermark - resume offset) in painpoint_events_lost_to_retention_total, shown in /readyz
details, and consumption continues: the store holds the earlier events plus every event still on
the broker, nothing else.

usage: retention_test.py PATH/TO/painpoint
"""
import json
import os
import random

import faultlib
from faultlib import log
from harness import Broker, Serve, produce, stop_on_exit, wait_until, workdir, write_jsonl

TOPIC = "feedback.support"


def events(prefix, n, pad_bytes, seed):
    """Valid events; pad_bytes of random hex in an attribute make them incompressible."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        e = {"eventId": "%s-%06d" % (prefix, i), "source": "SOURCE_SUPPORT",
             "productId": rng.choice(["mobile-app", "billing"]),
             "text": rng.choice(["the app crashes on upload", "charged twice this month",
                                 "login code never arrives"]),
             "occurredAt": "2026-11-01T00:00:00Z"}
        if pad_bytes:
            e["attributes"] = {"pad": "%0*x" % (pad_bytes, rng.getrandbits(pad_bytes * 4))}
        out.append(e)
    return out


def watermarks(brokers, topic, partition):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": brokers, "group.id": "retention-test-probe"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        c.close()


def main():
    with workdir() as d:
        config = faultlib.write_serve_config(d)
        # One partition per topic, so that all input shares the 5 MiB of feedback.support[0].
        # Apache Kafka gets the same limit as retention.bytes (it deletes whole 1 MiB segments).
        broker = Broker(partitions=1, kafka_topic_configs={
            TOPIC: {"retention.bytes": str(5 << 20), "segment.bytes": str(1 << 20)}})
        serve = None
        with stop_on_exit(broker, lambda: serve):
            brokers = broker.bootstrap
            first = events("before", 500, 0, seed=1)
            path = os.path.join(d, "first.jsonl")
            write_jsonl(path, first)
            assert produce(brokers, TOPIC, path).returncode == 0
            data_dir = os.path.join(d, "data")
            serve = Serve(brokers, data_dir, extra=["--config", config])
            serve.wait_stored(len(first), timeout=120)
            serve.stop_cleanly()
            serve = None
            committed = len(first)  # ingest consumed and committed everything

            # ~12 MB of incompressible events while serve is down: the oldest are dropped.
            second = events("during", 10_000, 1000, seed=2)
            path = os.path.join(d, "second.jsonl")
            write_jsonl(path, second)
            out = produce(brokers, TOPIC, path)
            assert out.returncode == 0, out.stdout + out.stderr
            # The embedded broker drops at once; Apache Kafka at its next retention check.
            low, high = wait_until(
                lambda: (lambda w: w if w[0] > committed else None)(watermarks(brokers, TOPIC, 0)),
                60, "the broker to drop the oldest messages (else: produce more)")
            log("feedback.support[0]: low watermark %d, high %d (serve resumes at %d)"
                % (low, high, committed))
            assert high == committed + len(second), (high, committed, len(second))
            expected_lost = low - committed
            surviving = high - low

            serve = Serve(brokers, data_dir, extra=["--config", config])
            wait_until(lambda: serve.metric(
                'painpoint_events_lost_to_retention_total{stage="ingest"}', 0) > 0, 120,
                "the loss to be counted")
            ingest_lost = serve.metric('painpoint_events_lost_to_retention_total{stage="ingest"}')
            assert ingest_lost == expected_lost, (ingest_lost, expected_lost)

            def settled():
                serve.check_running()
                m = serve.metrics() or {}
                agg = m.get('painpoint_events_lost_to_retention_total{stage="aggregator"}', 0)
                return (m.get("painpoint_store_events") == committed + surviving - agg and
                        m.get('painpoint_consumer_lag{stage="aggregator"}', -1) == 0)
            wait_until(settled, 300, "the surviving events")
            agg_lost = serve.metric(
                'painpoint_events_lost_to_retention_total{stage="aggregator"}', 0)
            stored = serve.metric("painpoint_store_events")
            assert stored == committed + surviving - agg_lost, (stored, committed, surviving,
                                                                agg_lost)

            status, body = serve.get("/readyz")
            details = json.loads(body)["details"]
            assert details["lost_to_retention"]["ingest"] == expected_lost, body
            assert "lost to retention" in details.get("warning", ""), body
            with open(serve.log_path) as f:
                logged = [line for line in f if "lost to retention" in line and "[error]" in line]
            assert logged, "the loss was not logged as an error"
            log("restart: %d messages lost to retention counted (metric and /readyz %s), logged "
                "as: %s" % (expected_lost, json.dumps(details), logged[0].strip()[:200]))
            log("store: %d before + %d still on the broker - %d lost in the repartition topic = "
                "%d events" % (committed, surviving, agg_lost, stored))
            serve.stop_cleanly()
            serve = None
    print("retention_test: OK")


if __name__ == "__main__":
    main()
