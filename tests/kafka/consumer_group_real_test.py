"""ingest::Consumer in a group of two on Apache Kafka (PAINPOINT_TEST_KAFKA=<version>, label kafka).

Runs the ConsumerGroupTest cases of ingest_unit_tests (tests/unit/ingest/consumer_group_test.cc)
against a fresh single-node broker: a second member joins and the first is told, incrementally,
which partitions it lost and keeps the others; pause, resume and seek of one partition; a static
member (group.instance.id) that closes and rejoins gets its partitions back while the other member
sees no revoke. On the embedded broker the same binary runs only the pause/resume/seek case.

usage: consumer_group_real_test.py PATH/TO/ingest_unit_tests
"""
import sys

import gtest_on_kafka

if __name__ == "__main__":
    gtest_on_kafka.run(sys.argv[1], "PAINPOINT_INGEST_TEST_BROKERS", "consumer group tests",
                       gtest_args=["--gtest_filter=ConsumerGroupTest.*"])
