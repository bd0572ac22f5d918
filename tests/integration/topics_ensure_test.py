"""`painpoint topics ensure` on Apache Kafka (PAINPOINT_TEST_KAFKA=<version>, label kafka).

1. On a broker without Painpoint's topics: all eight are created; Kafka's own admin API (through
   python3-confluent-kafka) sees painpoint.summaries compacted, painpoint.deadletter kept 30 days,
   painpoint.aggregator-changelog compacted with a one-hour min.compaction.lag.ms, and the
   requested partition counts.
2. Run again: every topic is reported ok (exit 0), nothing changes.
3. painpoint.summaries switched to cleanup.policy=delete and a different --partitions: the
   summaries' policy and the partition counts of the repartition topic and the changelog are
   reported (exit 1); the input topics' partition counts are not.
4. serve refuses to start on that cluster (exit 2), saying what to change.
5. With the summaries compacted again, serve starts and records the repartition topic's 3
   partitions in its store; after Kafka's TopicCommand raised them to 4, serve refuses that
   store (exit 2), saying what to do.

usage: topics_ensure_test.py PATH/TO/painpoint
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PAINPOINT, STATIC, KafkaBroker, Serve, log  # noqa: E402

TOPICS = ("feedback.support", "feedback.sales", "feedback.customer",
          "painpoint.feedback-by-product", "painpoint.deadletter", "painpoint.summaries",
          "painpoint.aggregator-changelog", "painpoint.alerts")


def ensure(bootstrap, *args):
    out = subprocess.run([PAINPOINT, "topics", "ensure", "--brokers", bootstrap, *args],
                         capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout.splitlines(), out.stderr


def describe(admin, topic):
    from confluent_kafka.admin import ConfigResource
    resource = ConfigResource("topic", topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: entry.value for name, entry in configs.items()}


def main():
    version = os.environ.get("PAINPOINT_TEST_KAFKA", "4.4.0")
    broker = KafkaBroker(0, version)
    try:
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})

        rc, lines, err = ensure(broker.bootstrap, "--partitions", "3", "--replication-factor", "1")
        assert rc == 0, (rc, lines, err)
        assert sorted(lines) == sorted("created " + t for t in TOPICS), lines
        metadata = admin.list_topics(timeout=30).topics
        for topic in TOPICS:
            assert len(metadata[topic].partitions) == 3, (topic, metadata[topic].partitions)
        assert describe(admin, "painpoint.summaries")["cleanup.policy"] == "compact"
        assert describe(admin, "painpoint.deadletter")["retention.ms"] == str(30 * 24 * 3600 * 1000)
        changelog = describe(admin, "painpoint.aggregator-changelog")
        assert changelog["cleanup.policy"] == "compact", changelog
        assert changelog["min.compaction.lag.ms"] == "3600000", changelog
        log("created:", lines)

        rc, lines, err = ensure(broker.bootstrap, "--partitions", "3")
        assert rc == 0, (rc, lines, err)
        assert sorted(lines) == sorted("ok " + t for t in TOPICS), lines
        log("second run:", lines)

        # Kafka's own tool: librdkafka 2.0.2's AlterConfigs request makes Kafka 4.4.0 drop the
        # connection (KIP-896 removed its old versions).
        # (ConfigCommand moved from the core jar's kafka.admin to tools in 4.0.)
        config_command = ("kafka.admin.ConfigCommand" if version.startswith("3.")
                          else "org.apache.kafka.tools.ConfigCommand")
        out = broker.run_class(config_command, "--bootstrap-server",
                               broker.bootstrap, "--alter", "--entity-type", "topics",
                               "--entity-name", "painpoint.summaries",
                               "--add-config", "cleanup.policy=delete")
        assert out.returncode == 0, out.stderr[-2000:]
        assert describe(admin, "painpoint.summaries")["cleanup.policy"] == "delete"
        rc, lines, err = ensure(broker.bootstrap, "--partitions", "4")
        assert rc == 1, (rc, lines, err)
        mismatches = [line for line in lines if line.startswith("mismatch ")]
        assert len(mismatches) == 3, lines
        assert "mismatch painpoint.summaries: cleanup.policy is delete, expected compact" in lines
        assert any(line.startswith("mismatch painpoint.feedback-by-product: 3 partitions, "
                                   "expected 4") for line in lines), lines
        assert any(line.startswith("mismatch painpoint.aggregator-changelog: 3 partitions, "
                                   "expected 4") for line in lines), lines
        assert "kafka-configs" in err, err
        log("mismatches reported:", mismatches)

        with tempfile.TemporaryDirectory(prefix="painpoint-it-") as d:
            started = time.monotonic()
            out = subprocess.run([PAINPOINT, "serve", *STATIC, "--brokers", broker.bootstrap, "--data-dir",
                                  d, "--http-port", "0"], capture_output=True, text=True,
                                 timeout=120)
            assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
            assert "painpoint.summaries: cleanup.policy is delete, expected compact" in out.stderr
            assert "painpoint topics ensure" in out.stderr, out.stderr[-3000:]
            log("serve refused in %.1f s" % (time.monotonic() - started))

        out = broker.run_class(config_command, "--bootstrap-server", broker.bootstrap, "--alter",
                               "--entity-type", "topics", "--entity-name", "painpoint.summaries",
                               "--add-config", "cleanup.policy=compact")
        assert out.returncode == 0, out.stderr[-2000:]
        with tempfile.TemporaryDirectory(prefix="painpoint-it-") as d:
            data_dir = os.path.join(d, "data")
            serve = Serve(broker.bootstrap, data_dir)
            try:
                serve.wait_ready(timeout=60)
            finally:
                serve.stop_cleanly()
            out = broker.run_class("org.apache.kafka.tools.TopicCommand", "--bootstrap-server",
                                   broker.bootstrap, "--alter", "--topic",
                                   "painpoint.feedback-by-product", "--partitions", "4")
            assert out.returncode == 0, out.stderr[-2000:]
            out = subprocess.run([PAINPOINT, "serve", *STATIC, "--brokers", broker.bootstrap, "--data-dir",
                                  data_dir, "--http-port", "0"], capture_output=True, text=True,
                                 timeout=120)
            assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
            expected = ("painpoint.feedback-by-product has 4 partitions, but the store in %s was "
                        "built with 3" % data_dir)
            assert expected in out.stderr, out.stderr[-3000:]
            log("serve refused a store built with 3 partitions on a topic with 4")
    finally:
        broker.stop()
    print("topics_ensure_test: OK")


if __name__ == "__main__":
    main()
