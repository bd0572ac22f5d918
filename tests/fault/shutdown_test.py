"""Bounded shutdown: SIGTERM while events flow finishes the batch in flight, publishes the outbox and
exits 0 within 5 s; SIGTERM while the broker is down (consumer group unreachable, deliveries
impossible) also exits 0 within 5 s. After each, a restart stores and publishes the rest, and the
end state holds every distinct event exactly once (faultlib.verify).

usage: shutdown_test.py PATH/TO/painpoint [--bound-s S]

--bound-s: the exit bound in seconds (default 5, the release build's promise); the sanitized build,
whose stop sequence runs the same timeouts with a slower teardown, is given a looser one
(tests/fault/CMakeLists.txt).
"""
import os
import signal
import sys
import threading
import time

import faultlib
from faultlib import log
from harness import Broker, Serve, wait_until, workdir

BOUND_S = float(sys.argv[sys.argv.index("--bound-s") + 1]) if "--bound-s" in sys.argv else 5.0


def sigterm_timed(serve):
    t0 = time.monotonic()
    serve.proc.send_signal(signal.SIGTERM)
    try:
        rc = serve.proc.wait(timeout=60)
    except Exception:
        serve.proc.kill()
        serve.proc.wait()
        raise AssertionError("serve did not exit within 60 s of SIGTERM:\n" + serve.tail())
    elapsed = time.monotonic() - t0
    serve.log_file.close()
    return rc, elapsed


def wait_progress(serve, above):
    def check():
        if serve.proc.poll() is not None:
            raise AssertionError("serve exited %s:\n%s" % (serve.proc.returncode, serve.tail()))
        return serve.metric("painpoint_store_events", 0) > above
    wait_until(check, 120, "more than %d events stored" % above, interval=0.05)


def finish_and_verify(brokers, data_dir, config, ids, pp, json_format):
    serve = Serve(brokers, data_dir, extra=["--config", config])
    try:
        serve.wait_ready(timeout=120)
        serve.wait_stored(len(ids), timeout=300)
        wait_until(lambda: (serve.metrics() or {}).get("painpoint_outbox_pending", -1) == 0, 120,
                   "outbox drained")
        faultlib.verify(serve, brokers, ids, pp, json_format)
        rc, elapsed = sigterm_timed(serve)
        assert rc == 0, "serve exited %s:\n%s" % (rc, serve.tail())
        log("idle serve stopped in %.2f s" % elapsed)
    except BaseException:
        print(serve.tail(60), file=sys.stderr)
        if serve.proc.poll() is None:
            serve.proc.kill()
        raise


def main():
    with workdir() as d:
        faultlib.protobuf_module(d)
        from painpoint.v1 import pain_point_pb2 as pp  # noqa: E402
        from google.protobuf import json_format  # noqa: E402
        config = faultlib.write_serve_config(d)
        broker = Broker(partitions=8, fault_control=True)
        try:
            brokers = broker.bootstrap

            # 1. Under load: input keeps arriving while serve is stopped.
            files, ids, messages = faultlib.make_input(d, 20_000, seed=3)
            data_dir = os.path.join(d, "data")
            serve = Serve(brokers, data_dir, extra=["--config", config])
            producer = threading.Thread(
                target=faultlib.produce_all, args=(brokers, files), kwargs={"chunks": 10,
                                                                            "pause": 0.3})
            producer.start()
            wait_progress(serve, 4_000)
            rc, elapsed = sigterm_timed(serve)
            with open(serve.log_path) as f:
                text = f.read()
            assert rc == 0, "serve exited %s on SIGTERM under load:\n%s" % (rc, serve.tail())
            assert elapsed < BOUND_S, "SIGTERM under load took %.2f s:\n%s" % (elapsed,
                                                                               serve.tail())
            assert "publisher stopped; outbox empty" in text, serve.tail()
            log("under load: exit 0 in %.2f s, outbox empty" % elapsed)
            producer.join()
            finish_and_verify(brokers, data_dir, config, ids, pp, json_format)

            # 2. Broker down: nothing can be committed to the group or delivered.
            os.makedirs(os.path.join(d, "two"))
            files2, ids2, _ = faultlib.make_input(os.path.join(d, "two"), 20_000, seed=4)
            serve = Serve(brokers, data_dir, extra=["--config", config])
            faultlib.produce_all(brokers, files2, chunks=2)
            wait_progress(serve, len(ids) + 2_000)
            broker.command("down -1")
            log("broker down")

            def unready():
                status, body = serve.get("/readyz")
                return status == 503 and "unreachable" in body and body
            body = wait_until(unready, 30, "/readyz to report the broker unreachable")
            log("readyz:", body)
            rc, elapsed = sigterm_timed(serve)
            assert rc == 0, "serve exited %s on SIGTERM with the broker down:\n%s" % (
                rc, serve.tail())
            assert elapsed < BOUND_S, "SIGTERM with the broker down took %.2f s:\n%s" % (
                elapsed, serve.tail())
            log("broker down: exit 0 in %.2f s" % elapsed)
            broker.command("up -1")
            finish_and_verify(brokers, data_dir, config, ids | ids2, pp, json_format)
        finally:
            broker.stop()
    print("shutdown_test: OK")


if __name__ == "__main__":
    main()
