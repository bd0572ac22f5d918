"""The changelog module's tests on Apache Kafka (PAINPOINT_TEST_KAFKA=<version>, label kafka).

Runs the changelog_unit_tests binary (tests/unit/changelog/) against a fresh single-node broker:
each test creates its topics with changelog::ensure_changelog_topic (CreateTopics, then
DescribeConfigs must find them as made), and writes, fences and restores on them as on the
embedded broker. Then Kafka's own admin API (python3-confluent-kafka) reads the topics' configs
back: compacted, min.compaction.lag.ms one hour, the partition counts asked for. One test gives
its topic small segments and an eager cleaner and restores again until the log cleaner has
removed records: the state must not change.

usage: changelog_real_test.py PATH/TO/changelog_unit_tests
"""
import sys

import gtest_on_kafka


def check_topic_configs(broker):
    from confluent_kafka.admin import AdminClient, ConfigResource
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    # changelog-test.compacted is the log cleaner's test topic, with configs of its own.
    topics = {name: meta for name, meta in admin.list_topics(timeout=30).topics.items()
              if name.startswith("changelog-test.") and name != "changelog-test.compacted"}
    assert len(topics) >= 6, sorted(topics)
    for name, meta in sorted(topics.items()):
        resource = ConfigResource("topic", name)
        configs = admin.describe_configs([resource])[resource].result(timeout=30)
        assert configs["cleanup.policy"].value == "compact", (name, configs["cleanup.policy"])
        assert configs["min.compaction.lag.ms"].value == "3600000", name
        expected = 1 if name == "changelog-test.tail" else 2
        assert len(meta.partitions) == expected, (name, len(meta.partitions))
    gtest_on_kafka.log("%d changelog topics compacted with min.compaction.lag.ms 3600000"
                       % len(topics))


def main():
    gtest_on_kafka.run(sys.argv[1], "PAINPOINT_CHANGELOG_TEST_BROKERS", "changelog tests",
                       after=check_topic_configs)


if __name__ == "__main__":
    main()
