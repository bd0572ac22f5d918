"""Routing between instances on Apache Kafka (PAINPOINT_TEST_KAFKA=<version>, label kafka).

Runs the group test of routing_unit_tests (tests/unit/service/routing_test.cc) against a fresh
single-node broker: two consumers join one group with their API addresses in their client ids,
and DescribeGroups must name each partition's owner; after one leaves, the other owns all. On the
embedded broker the same test can only check that describing groups is refused.

usage: routing_real_test.py PATH/TO/routing_unit_tests
"""
import sys

import gtest_on_kafka

if __name__ == "__main__":
    gtest_on_kafka.run(sys.argv[1], "PAINPOINT_ROUTING_TEST_BROKERS", "routing tests",
                       gtest_args=["--gtest_filter=GroupRoutingTest.*"])
