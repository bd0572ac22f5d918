"""Runs a GoogleTest binary against a fresh single-node Apache Kafka (PAINPOINT_TEST_KAFKA=<version>)
whose address the binary reads from the environment variable the caller names. The binary must
run its tests, not skip them: on Kafka nothing is missing that would excuse a skip."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import KafkaBroker, log  # noqa: E402


def run(binary, brokers_variable, what, gtest_args=(), after=None):
    """Starts the broker, runs `binary` with brokers_variable set to it, asserts it passed
    without skips, then calls after(broker) (further checks with Kafka's own clients)."""
    version = os.environ.get("PAINPOINT_TEST_KAFKA", "4.4.0")
    broker = KafkaBroker(0, version)
    try:
        started = time.monotonic()
        env = dict(os.environ, **{brokers_variable: broker.bootstrap})
        out = subprocess.run([binary, *gtest_args], env=env, capture_output=True, text=True,
                             timeout=300)
        sys.stdout.write(out.stdout[-4000:])
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
        assert "[  PASSED  ]" in out.stdout, out.stdout[-2000:]
        assert "[  SKIPPED ]" not in out.stdout, out.stdout[-2000:]
        log("%s on Kafka %s: %.1f s" % (what, version, time.monotonic() - started))
        if after is not None:
            after(broker)
    finally:
        broker.stop()
