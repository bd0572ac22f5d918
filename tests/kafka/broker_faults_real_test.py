"""Broker faults the real way, on Apache Kafka (scripts/kafka.sh, PAINPOINT_TEST_KAFKA=<version>):
while 20,000 events flow through `painpoint serve`, the broker process is SIGSTOPped for a stall
and continued, then SIGKILLed and restarted on its data. Checked: /readyz reports the broker
unreachable while it is dead and is ready again after the restart without intervention; progress
resumes after the stall; at the end nothing is lost or double-counted (faultlib.verify), and the
log cleaner has really compacted painpoint.summaries (records are missing between its low and high
watermarks) while the latest record per key still equals the API.

usage: broker_faults_real_test.py PATH/TO/painpoint
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault"))
import faultlib  # noqa: E402
from faultlib import log  # noqa: E402
from harness import (KAFKA_VERSION, KafkaBroker, Serve, kcat, stop_on_exit,  # noqa: E402
                     wait_until, workdir)

EVENTS = 20_000
STALL_S = 8.0
# Small segments that roll every second and a cleaner that cleans them as soon as anything is
# dirty, so that compaction happens within the test's minute rather than after a week.
SUMMARIES_CONFIG = {"segment.ms": "1000", "min.cleanable.dirty.ratio": "0.01",
                    "min.compaction.lag.ms": "0", "delete.retention.ms": "1000"}


def stored(serve):
    serve.check_running()
    return serve.metric("painpoint_store_events", 0)


def readyz(serve):
    status, body = serve.get("/readyz")
    return status, body


def kill_and_restart(broker, serve):
    broker.kill()
    killed_at = time.monotonic()
    last = []

    def unready():
        status, body = readyz(serve)
        last[:] = [status, body]
        return status == 503 and "unreachable" in body and body
    try:
        body = wait_until(unready, 20, "/readyz to report the killed broker unreachable")
    except AssertionError:
        raise AssertionError("/readyz did not report the broker unreachable within 20 s: %s"
                             % last)
    log("broker SIGKILLed: /readyz 503 after %.1f s: %s" % (time.monotonic() - killed_at,
                                                            json.loads(body)["checks"]))
    before = stored(serve)
    broker.start()
    restarted_at = time.monotonic()
    serve.wait_ready(timeout=120)
    log("broker restarted on its data: ready again after %.1f s" % (time.monotonic()
                                                                   - restarted_at))
    wait_until(lambda: stored(serve) > before + 500, 120, "progress after the restart")
    log("progress after the restart: %d -> %d stored" % (before, stored(serve)))


def stall(broker, serve):
    """SIGSTOP: connections stay open and nothing answers. Serve goes on with what its consumers
    had fetched before, must survive the stall, and must progress again after SIGCONT."""
    before = stored(serve)
    broker.pause()
    try:
        time.sleep(STALL_S)
        status, _ = readyz(serve)
        during = stored(serve)
        log("broker SIGSTOPped %.0f s: /readyz %s, %d stored from what was fetched before (%d "
            "at the stop)" % (STALL_S, status, during, before))
    finally:
        broker.resume()
    resumed_at = time.monotonic()
    wait_until(lambda: stored(serve) > during + 500, 120, "progress after the stall")
    log("SIGCONT: 500 more stored after %.1f s" % (time.monotonic() - resumed_at))


def summaries_compacted(brokers):
    """(records on painpoint.summaries, offsets between its watermarks), once they differ."""
    def gap():
        records = kcat("-b", brokers, "-C", "-t", "painpoint.summaries", "-o", "beginning",
                       "-e", "-q", "-f", "%p %o\\n").stdout.decode().split("\n")
        by_partition = {}
        for line in records:
            if line:
                p, o = (int(x) for x in line.split())
                by_partition.setdefault(p, []).append(o)
        count = sum(len(v) for v in by_partition.values())
        # Offsets past the first record of a partition that no record carries any more.
        span = sum(max(v) - min(v) + 1 for v in by_partition.values())
        return (count, span) if span > count else None
    return wait_until(gap, 120, "the log cleaner to compact painpoint.summaries", interval=2)


def main():
    version = KAFKA_VERSION or "4.4.0"
    with workdir() as d:
        faultlib.protobuf_module(d)
        from painpoint.v1 import pain_point_pb2 as pp  # noqa: E402
        from google.protobuf import json_format  # noqa: E402
        config = faultlib.write_serve_config(d)
        files, ids, messages = faultlib.make_input(d, EVENTS, seed=9)
        broker = KafkaBroker(8, version, topic_configs={"painpoint.summaries": SUMMARIES_CONFIG})
        serve = None
        producer = faultlib.BackgroundProducer()
        with stop_on_exit(broker, lambda: serve), producer:
            brokers = broker.bootstrap
            serve = Serve(brokers, os.path.join(d, "data"), extra=["--config", config])
            serve.wait_ready(timeout=60)
            # Input keeps arriving, paced over about a minute, through both faults.
            producer.start(brokers, files, chunks=50, pause=1.0)
            wait_until(lambda: stored(serve) > 1_000, 120, "first events stored")

            stall(broker, serve)
            kill_and_restart(broker, serve)

            producer.hurry()
            producer.join()
            serve.wait_stored(len(ids), timeout=300)
            serve.wait_published(timeout=120)
            count, span = summaries_compacted(brokers)
            log("painpoint.summaries compacted: %d records left of %d offsets" % (count, span))
            numbers = faultlib.verify(serve, brokers, ids, pp, json_format)
            serve.stop_cleanly()
            serve = None
            log("broker_faults_real_test (Kafka %s): %d events, lost %d, double-counted %d" % (
                version, len(ids), numbers["lost"], numbers["double_counted"]))
    print("broker_faults_real_test: OK")


if __name__ == "__main__":
    main()
