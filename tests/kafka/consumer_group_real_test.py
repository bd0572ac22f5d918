"""ingest::Consumer in a group of two on Apache Kafka (PAINPOINT_TEST_KAFKA=<version>, label kafka).

Runs the ConsumerGroupTest cases of ingest_unit_tests (tests/unit/ingest/consumer_group_test.cc)
against a fresh single-node broker: a second member joins and the first is told, incrementally,
which partitions it lost and keeps the others; pause, resume and seek of one partition; a static
member (group.instance.id) that closes and rejoins gets its partitions back while the other member
sees no revoke. On the embedded broker the same binary skips the static-membership case.

usage: consumer_group_real_test.py PATH/TO/ingest_unit_tests
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import run_gtest_on_kafka  # noqa: E402


def all_three_ran(_broker, stdout):
    assert "[  PASSED  ] 3 tests" in stdout, stdout[-2000:]


def main():
    run_gtest_on_kafka(sys.argv[1], "PAINPOINT_INGEST_TEST_BROKERS",
                       ["--gtest_filter=ConsumerGroupTest.*"], timeout=120, then=all_three_ran)


if __name__ == "__main__":
    main()
