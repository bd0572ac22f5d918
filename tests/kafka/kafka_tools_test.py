"""Kafka's own tools as outside checkers, on Apache Kafka (PAINPOINT_TEST_KAFKA=<version>):
- org.apache.kafka.tools.VerifiableProducer writes 10,000 messages that are not FeedbackEvents
  (values "7.<n>": 0x37 is protobuf wire type 7, which does not exist) to feedback.sales beside
  2,000 real events; painpoint.deadletter then holds exactly one dead letter with reason
  `undecodable` for each of them, at the partition and offset the tool reported, and nothing else;
- org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --describe shows Painpoint's groups
  (painpoint-ingest, painpoint-aggregator) on all their partitions at lag 0 once serve has
  drained (an empty partition, with no committed offset, counts as lag 0), the aggregator's with
  the client id `painpoint@<API address>` that other instances find it by.

usage: kafka_tools_test.py PATH/TO/painpoint
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import (KAFKA_VERSION, KafkaBroker, Serve, kcat, log, make_events,  # noqa: E402
                     produce, stop_on_exit, wait_until, workdir, write_jsonl)

FOREIGN = 10_000
EVENTS = 2_000
GROUPS = ("painpoint-ingest", "painpoint-aggregator")


def verifiable_produce(broker):
    """Runs VerifiableProducer; returns the {(partition, offset)} it reports as acknowledged."""
    out = broker.run_class("org.apache.kafka.tools.VerifiableProducer",
                           "--bootstrap-server", broker.bootstrap, "--topic", "feedback.sales",
                           "--max-messages", str(FOREIGN), "--value-prefix", "7", "--acks", "-1")
    assert out.returncode == 0, out.stderr[-2000:]
    acked = set()
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("name") == "producer_send_success":
                acked.add((record["partition"], record["offset"]))
    assert len(acked) == FOREIGN, "VerifiableProducer acknowledged %d" % len(acked)
    return acked


def dead_letters(brokers):
    """{(source partition, source offset): reason} of every dead letter from feedback.sales, and
    how many dead letters there were in all (a redone ingest batch may repeat one)."""
    out = kcat("-b", brokers, "-C", "-t", "painpoint.deadletter", "-o", "beginning", "-e", "-q",
               "-f", "%h\\n", timeout=120)
    assert out.returncode == 0, out.stderr
    by_source, total = {}, 0
    for line in out.stdout.decode(errors="replace").splitlines():
        if not line:
            continue
        total += 1
        fields = dict(kv.split("=", 1) for kv in line.split(",") if "=" in kv)
        assert fields["painpoint.source.topic"] == "feedback.sales", line
        key = (int(fields["painpoint.source.partition"]), int(fields["painpoint.source.offset"]))
        by_source[key] = fields["painpoint.reason"]
    return by_source, total


def group_lags(broker):
    """{group: [(topic, partition, lag)]} from ConsumerGroupCommand --describe."""
    out = broker.run_class("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                           "--bootstrap-server", broker.bootstrap, "--describe",
                           *[arg for g in GROUPS for arg in ("--group", g)])
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {}
    for line in out.stdout.splitlines():
        cols = line.split()
        # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
        if len(cols) >= 6 and cols[0] in GROUPS and cols[2].isdigit():
            # A partition nothing was written to has no committed offset: "-" and LAG "-".
            lag = 0 if cols[4] == "0" and cols[5] == "-" else int(cols[5])
            client_id = cols[8] if len(cols) >= 9 else ""
            rows.setdefault(cols[0], []).append((cols[1], int(cols[2]), lag, client_id))
    return rows, out.stdout


def main():
    version = KAFKA_VERSION or "4.4.0"
    with workdir() as d:
        broker = KafkaBroker(4, version)
        serve = None
        with stop_on_exit(broker, lambda: serve):
            brokers = broker.bootstrap
            serve = Serve(brokers, os.path.join(d, "data"))
            serve.wait_ready(timeout=60)
            events = make_events(EVENTS)
            for source, topic in (("SOURCE_SUPPORT", "feedback.support"),
                                  ("SOURCE_SALES", "feedback.sales"),
                                  ("SOURCE_CUSTOMER", "feedback.customer")):
                path = os.path.join(d, topic + ".jsonl")
                write_jsonl(path, [e for e in events if e["source"] == source])
                out = produce(brokers, topic, path)
                assert out.returncode == 0, out.stderr + out.stdout
            acked = verifiable_produce(broker)
            log("VerifiableProducer: %d messages acknowledged on feedback.sales" % len(acked))

            serve.wait_stored(EVENTS)
            wait_until(lambda: serve.metric("painpoint_events_invalid_total", 0) >= FOREIGN, 120,
                       "%d invalid counted" % FOREIGN)
            serve.wait_published(timeout=120)

            by_source, total = wait_until(
                lambda: (lambda r: r if len(r[0]) >= FOREIGN else None)(dead_letters(brokers)),
                60, "%d dead letters" % FOREIGN)
            assert set(by_source) == acked, (
                "dead letters for %d source offsets, %d of them not VerifiableProducer's; %d of "
                "its offsets without one" % (len(by_source), len(set(by_source) - acked),
                                             len(acked - set(by_source))))
            reasons = sorted(set(by_source.values()))
            assert reasons == ["undecodable"], reasons
            assert serve.metric("painpoint_store_events") == EVENTS
            log("painpoint.deadletter: one `undecodable` dead letter for each of the %d offsets "
                "(%d records, repeats from redone batches: %d)" % (len(by_source), total,
                                                                   total - len(by_source)))

            def all_at_lag_zero():
                rows, text = group_lags(broker)
                partitions = {g: len(rows.get(g, [])) for g in GROUPS}
                # ingest reads 3 topics x 4 partitions, the aggregator the repartition topic's 4.
                complete = partitions == {"painpoint-ingest": 12, "painpoint-aggregator": 4}
                zero = all(lag == 0 for g in GROUPS for _, _, lag, _ in rows.get(g, []))
                return (rows, text) if complete and zero else None
            try:
                rows, text = wait_until(all_at_lag_zero, 90, "Painpoint's groups at lag 0",
                                        interval=2)
            except AssertionError:
                raise AssertionError("ConsumerGroupCommand:\n%s" % group_lags(broker)[1])
            log("ConsumerGroupCommand: %s at lag 0" % ", ".join(
                "%s (%d partitions)" % (g, len(rows[g])) for g in GROUPS))
            # The aggregator's members carry the API's address, where other instances find it.
            advertised = "painpoint@127.0.0.1:%d" % serve.port
            client_ids = sorted({client_id for _, _, _, client_id in rows["painpoint-aggregator"]})
            assert client_ids == [advertised], (client_ids, advertised, text)
            log("aggregator group members' client id: %s" % advertised)
            serve.stop_cleanly()
            serve = None
    print("kafka_tools_test: OK")


if __name__ == "__main__":
    main()
