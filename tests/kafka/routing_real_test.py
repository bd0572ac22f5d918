"""Routing between instances on Apache Kafka (PAINPOINT_TEST_KAFKA=<version>, label kafka).

Runs the routing_unit_tests binary (tests/unit/service/routing_test.cc) against a fresh
single-node broker: two consumers join one group with their API addresses in their client ids,
and DescribeGroups must name each partition's owner; after one leaves, the other owns all.
On the embedded broker the same test can only check that describing groups is refused, so here
it must run, not skip.

usage: routing_real_test.py PATH/TO/routing_unit_tests
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import KafkaBroker, log  # noqa: E402


def main():
    binary = sys.argv[1]
    version = os.environ.get("PAINPOINT_TEST_KAFKA", "4.4.0")
    broker = KafkaBroker(0, version)
    try:
        started = time.monotonic()
        env = dict(os.environ, PAINPOINT_ROUTING_TEST_BROKERS=broker.bootstrap)
        out = subprocess.run([binary, "--gtest_filter=GroupRoutingTest.*"], env=env,
                             capture_output=True, text=True, timeout=300)
        sys.stdout.write(out.stdout[-4000:])
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
        assert "[  PASSED  ] 1 test" in out.stdout, out.stdout[-2000:]
        assert "[  SKIPPED ]" not in out.stdout, out.stdout[-2000:]
        log("routing tests on Kafka %s: %.1f s" % (version, time.monotonic() - started))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
