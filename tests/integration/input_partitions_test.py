"""`painpoint serve` records the input topic's partition count at its first start and refuses a
later start whose topic has another count (products would hash to partitions that do not hold
their state), with the embedded broker (serve without --brokers) as with `painpoint broker`,
which answers metadata but not the configuration requests of a full cluster.

usage: input_partitions_test.py PATH/TO/painpoint
"""
import os
import subprocess
import tempfile

from harness import PAINPOINT, STATIC, Broker, Serve, free_port, log


def start_and_stop(brokers, data_dir, extra=()):
    serve = Serve(brokers, data_dir, extra=list(extra))
    try:
        serve.wait_ready(timeout=60)
    finally:
        serve.stop_cleanly()


def refused(args, data_dir):
    """Runs serve, which must exit 2; returns its log."""
    out = subprocess.run([PAINPOINT, "serve", *STATIC, "--data-dir", data_dir, "--http-port",
                          str(free_port())] + args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    return out.stderr


def embedded_broker(d):
    data_dir = os.path.join(d, "embedded")
    start_and_stop(None, data_dir, ["--partitions", "3", "--broker-port", str(free_port())])
    err = refused(["--partitions", "5", "--broker-port", str(free_port())], data_dir)
    expected = ("painpoint.feedback-by-product has 5 partitions, but the store in %s was built "
                "with 3" % data_dir)
    assert expected in err, err[-3000:]
    assert "Start with --partitions 3" in err, err[-3000:]
    start_and_stop(None, data_dir, ["--partitions", "3", "--broker-port", str(free_port())])
    log("embedded broker: 3 partitions recorded, a start with 5 refused, with 3 accepted")


def painpoint_broker(d):
    data_dir = os.path.join(d, "external")
    broker = Broker(partitions=3)
    try:
        start_and_stop(broker.bootstrap, data_dir)
    finally:
        broker.stop()
    broker = Broker(partitions=4)
    try:
        err = refused(["--brokers", broker.bootstrap], data_dir)
    finally:
        broker.stop()
    expected = ("painpoint.feedback-by-product has 4 partitions, but the store in %s was built "
                "with 3" % data_dir)
    assert expected in err, err[-3000:]
    log("painpoint broker: 3 partitions recorded, a topic with 4 refused")


def main():
    with tempfile.TemporaryDirectory(prefix="painpoint-it-") as d:
        embedded_broker(d)
        painpoint_broker(d)
    print("input_partitions_test: OK")


if __name__ == "__main__":
    main()
