"""Which Kafka features the installed librdkafka (through python3-confluent-kafka, the same
library painpoint links) gets from a real broker: the requests Painpoint makes, one row each.

usage: compat_probe.py [BOOTSTRAP] [--client-properties FILE] [--report]
  Without BOOTSTRAP, starts Apache Kafka PAINPOINT_TEST_KAFKA with scripts/kafka.sh and
  stops it afterwards. --client-properties adds librdkafka properties (e.g. the SASL_SSL file
  scripts/kafka.sh --sasl-ssl writes). Exits 1 if any row fails, unless --report.
"""
import argparse
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import KAFKA_VERSION, KafkaBroker  # noqa: E402

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka import libversion  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

MESSAGES = 1000
BASE_TS_MS = 1_780_000_000_000


def read_properties(path):
    props = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key, value = line.split("=", 1)
                props[key.strip()] = value.strip()
    return props


class Probe:
    def __init__(self, common):
        self.common = common
        self.topic = "compat-" + uuid.uuid4().hex[:8]
        self.rows = []

    def row(self, feature, fn):
        started = time.monotonic()
        try:
            detail = fn() or ""
            ok = True
        except Exception as e:  # a failed feature is a row of the report, not a crash
            detail, ok = "%s: %s" % (type(e).__name__, e), False
        self.rows.append((feature, ok, detail, time.monotonic() - started))

    def metadata(self):
        md = AdminClient(self.common).list_topics(timeout=10)
        return "%d broker(s), cluster %s" % (len(md.brokers), md.cluster_id)

    def create_topics(self):
        admin = AdminClient(self.common)
        futures = admin.create_topics([
            NewTopic(self.topic, 3, 1),
            NewTopic(self.topic + "-compacted", 1, 1, config={"cleanup.policy": "compact"})],
            operation_timeout=30)
        for f in futures.values():
            f.result(timeout=30)
        res = ConfigResource(ConfigResource.Type.TOPIC, self.topic + "-compacted")
        configs = admin.describe_configs([res])[res].result(timeout=30)
        policy = configs["cleanup.policy"].value
        assert policy == "compact", policy
        return "3 partitions; describe_configs: cleanup.policy=%s" % policy

    def idempotent_produce(self):
        errors = []
        producer = Producer(dict(self.common, **{"enable.idempotence": True, "acks": "all",
                                                 "linger.ms": 5}))
        for i in range(MESSAGES):
            producer.produce(self.topic, key=b"k%d" % (i % 17), value=b"v%d" % i,
                             timestamp=BASE_TS_MS + i * 1000,
                             on_delivery=lambda err, msg: err and errors.append(err))
            producer.poll(0)
        left = producer.flush(30)
        assert left == 0 and not errors, (left, errors[:3])
        return "%d acknowledged, acks=all, enable.idempotence=true" % MESSAGES

    def consumer_group(self):
        group = "compat-group-" + uuid.uuid4().hex[:6]
        consumer = Consumer(dict(self.common, **{"group.id": group, "auto.offset.reset": "earliest",
                                                 "enable.auto.commit": False,
                                                 "session.timeout.ms": 10000}))
        consumer.subscribe([self.topic])
        seen, deadline = 0, time.monotonic() + 60
        while seen < MESSAGES and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise RuntimeError(msg.error())
            seen += 1
        assert seen == MESSAGES, seen
        consumer.commit(asynchronous=False)
        committed = consumer.committed(consumer.assignment(), timeout=10)
        total = sum(tp.offset for tp in committed)
        assert total == MESSAGES, committed
        consumer.close()
        groups = [g.id for g in AdminClient(self.common).list_groups(timeout=10)]
        assert group in groups, groups
        return "subscribe, %d consumed, commit/committed sum %d, list_groups sees it" % (seen,
                                                                                     total)

    def offsets_for_times(self):
        consumer = Consumer(dict(self.common, **{"group.id": "compat-oft"}))
        target = BASE_TS_MS + 500 * 1000  # message 500's timestamp
        answer = consumer.offsets_for_times(
            [TopicPartition(self.topic, p, target) for p in range(3)], timeout=10)
        watermarks = [consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
                      for p in range(3)]
        # Every message at or after the target: the answer's offsets leave exactly those.
        after = sum(high - tp.offset for tp, (low, high) in zip(answer, watermarks)
                    if tp.offset >= 0)
        consumer.close()
        assert after == MESSAGES - 500, (answer, watermarks)
        return "%d messages at or after the timestamp, as produced" % after

    def report(self):
        width = max(len(r[0]) for r in self.rows)
        for feature, ok, detail, seconds in self.rows:
            print("%-*s  %-4s  %5.1fs  %s" % (width, feature, "ok" if ok else "FAIL", seconds,
                                              detail))
        return all(r[1] for r in self.rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap", nargs="?")
    ap.add_argument("--client-properties")
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args()
    broker = None
    if not args.bootstrap:
        broker = KafkaBroker(0, KAFKA_VERSION or "4.4.0")
        args.bootstrap = broker.bootstrap
    try:
        common = {"bootstrap.servers": args.bootstrap}
        if args.client_properties:
            common.update(read_properties(args.client_properties))
        print("librdkafka %s, broker %s (%s)" % (libversion()[0], common["bootstrap.servers"],
                                                   broker.version if broker else "external"))
        probe = Probe(common)
        probe.row("metadata", probe.metadata)
        probe.row("create_topics + describe_configs", probe.create_topics)
        probe.row("idempotent producer", probe.idempotent_produce)
        probe.row("consumer group (classic protocol)", probe.consumer_group)
        probe.row("offsets_for_times + watermarks", probe.offsets_for_times)
        ok = probe.report()
    finally:
        if broker:
            broker.stop()
    sys.exit(0 if ok or args.report else 1)


if __name__ == "__main__":
    main()
