"""Broker faults: while events flow through `painpoint serve`, the broker (`painpoint broker
--fault-control`, librdkafka's mock cluster) fails Produce and Fetch requests with retriable
errors, answers with a high round-trip time, then goes down for several seconds. Checked: /readyz
reports not-ready with the reason while the broker is unreachable and ready again afterwards
without any intervention; at the end nothing is lost or duplicated (faultlib.verify).

usage: broker_faults_test.py PATH/TO/painpoint
"""
import json
import os
import time

import faultlib
from faultlib import log
from harness import Broker, Serve, stop_on_exit, wait_until, workdir

# Kafka API keys and protocol error codes (kafka.apache.org/protocol#protocol_error_codes).
PRODUCE, FETCH = 0, 1
NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT = 6, 7
DOWN_S = 6.0


def stored(serve):
    serve.check_running()
    return serve.metric("painpoint_store_events", 0)


def main():
    with workdir() as d:
        faultlib.protobuf_module(d)
        from painpoint.v1 import pain_point_pb2 as pp  # noqa: E402
        from google.protobuf import json_format  # noqa: E402
        config = faultlib.write_serve_config(d)
        files, ids, messages = faultlib.make_input(d, 40_000, seed=5)
        broker = Broker(partitions=8, fault_control=True)
        serve = None
        producer = faultlib.BackgroundProducer()
        with stop_on_exit(broker, lambda: serve), producer:
            brokers = broker.bootstrap
            serve = Serve(brokers, os.path.join(d, "data"), extra=["--config", config])
            serve.wait_ready(timeout=60)
            producer.start(brokers, files, chunks=20, pause=0.5)
            wait_until(lambda: stored(serve) > 1_000, 60, "first events stored")

            # Request errors: the clients back off and retry (the idempotent producer without
            # duplicates); consumption stalls while they last and then resumes by itself.
            before = stored(serve)
            t0 = time.monotonic()
            for api, code, count in ((PRODUCE, REQUEST_TIMED_OUT, 10),
                                     (PRODUCE, NOT_LEADER_OR_FOLLOWER, 10),
                                     (FETCH, NOT_LEADER_OR_FOLLOWER, 10),
                                     (FETCH, REQUEST_TIMED_OUT, 10)):
                broker.command("errors %d %d %d" % (api, count, code))
            wait_until(lambda: stored(serve) > before + 1_000, 90,
                       "progress after request errors")
            log("request errors on Produce and Fetch at %d stored: 1,000 more after %.1f s"
                % (before, time.monotonic() - t0))

            # A slow broker: every response 800 ms late.
            broker.command("rtt -1 800")
            time.sleep(2)  # let the backlog of the stall drain at the new pace
            before = stored(serve)
            t0 = time.monotonic()
            wait_until(lambda: stored(serve) > before + 1_000, 90, "progress at 800 ms RTT")
            log("800 ms RTT: %d stored, 1,000 more after %.1f s" % (before,
                                                                  time.monotonic() - t0))
            broker.command("rtt -1 0")

            # Broker down: every stage must say so on /readyz.
            broker.command("down -1")
            down_at = time.monotonic()

            last = []

            def unready():
                status, body = serve.get("/readyz")
                last[:] = [status, body]
                if status != 503:
                    return False
                checks = json.loads(body)["checks"]
                # Ingest says "unreachable", or that its output waits for acknowledgements.
                return (checks["ingest"] != "ok" and "unreachable" in checks["aggregator"] and
                        "unreachable" in checks["publisher"] and body)
            try:
                body = wait_until(unready, DOWN_S, "/readyz to report the broker unreachable")
            except AssertionError:
                raise AssertionError("/readyz did not report the broker unreachable within %.0f s: "
                                     "%s" % (DOWN_S, last))
            log("broker down: /readyz after %.1f s: %s" % (time.monotonic() - down_at, body))
            time.sleep(max(0.0, DOWN_S - (time.monotonic() - down_at)))
            status, body = serve.get("/readyz")
            assert status == 503, body
            broker.command("up -1")
            up_at = time.monotonic()
            serve.wait_ready(timeout=60)
            log("broker up: ready again after %.1f s" % (time.monotonic() - up_at))

            producer.join()
            serve.wait_stored(len(ids), timeout=300)
            wait_until(lambda: (serve.metrics() or {}).get("painpoint_outbox_pending", -1) == 0,
                       120, "outbox drained")
            numbers = faultlib.verify(serve, brokers, ids, pp, json_format)
            m = serve.metrics() or {}
            log("retries seen: ingest delivery failures %s, publish failures %s" % (
                m.get("painpoint_ingest_delivery_failures_total"),
                m.get("painpoint_publish_failures_total")))
            serve.stop_cleanly()
            serve = None
            log("broker_faults_test: %d events, lost %d, double-counted %d" % (
                len(ids), numbers["lost"], numbers["double_counted"]))
    print("broker_faults_test: OK")


if __name__ == "__main__":
    main()
