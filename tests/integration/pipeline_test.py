"""Issue 2 end to end: events produced with `painpoint produce` and raw with kcat are stored
exactly once; garbage lands in the dead-letter topic with its reason and the pipeline goes on;
a restart of `serve` stores nothing twice and misses nothing.

usage: pipeline_test.py PATH/TO/painpoint
"""
import os
import time

from harness import (Broker, Serve, kcat, log, make_events, produce, protobuf_module,
                     stop_on_exit, wait_until, workdir, write_jsonl)

TOPICS = {"SOURCE_SUPPORT": "feedback.support", "SOURCE_SALES": "feedback.sales",
          "SOURCE_CUSTOMER": "feedback.customer"}


def produce_by_topic(d, brokers, events, tag):
    sent = 0
    for source, topic in TOPICS.items():
        chunk = [e for e in events if e["source"] == source]
        path = os.path.join(d, "%s-%s.jsonl" % (tag, topic))
        write_jsonl(path, chunk)
        out = produce(brokers, topic, path)
        assert out.returncode == 0, out.stderr + out.stdout
        assert ("sent %d," % len(chunk)) in out.stdout, out.stdout
        sent += len(chunk)
    return sent


def main():
    with workdir() as d:
        broker = Broker(partitions=4)
        serve = None
        with stop_on_exit(broker, lambda: serve):
            brokers = broker.bootstrap
            log("broker at", brokers)
            events = make_events(10_000)
            produce_by_topic(d, brokers, events[:9_000], "first")

            # 1,000 raw protobuf messages with kcat, source left unspecified: ingest takes it
            # from the topic. kcat sends each file as one message.
            pb = protobuf_module(d)
            raw_dir = os.path.join(d, "raw")
            os.makedirs(raw_dir)
            files = []
            for i, e in enumerate(events[9_000:]):
                msg = pb.FeedbackEvent(event_id=e["eventId"], product_id=e["productId"],
                                       text=e["text"], account_id=e["accountId"])
                msg.occurred_at.FromJsonString(e["occurredAt"])
                path = os.path.join(raw_dir, "%04d.bin" % i)
                with open(path, "wb") as f:
                    f.write(msg.SerializeToString())
                files.append(path)
            out = kcat("-b", brokers, "-P", "-t", "feedback.support", *files)
            assert out.returncode == 0, out.stderr

            # Garbage that is not a FeedbackEvent, and a valid protobuf missing its text.
            garbage = [b"\xff\xfe not protobuf at all \x00\x01",
                       b"{\"json\": \"is not the wire format\"}"]
            for g in garbage:
                out = kcat("-b", brokers, "-P", "-t", "feedback.sales", input_bytes=g)
                assert out.returncode == 0, out.stderr
            empty_text = pb.FeedbackEvent(event_id="no-text", product_id="web-app")
            path = os.path.join(d, "no-text.bin")
            with open(path, "wb") as f:
                f.write(empty_text.SerializeToString())
            assert kcat("-b", brokers, "-P", "-t", "feedback.customer", path).returncode == 0

            # 300 redeliveries of events already sent.
            produce_by_topic(d, brokers, events[:300], "dup")
            log("produced 9,000 + 1,000 raw + 300 duplicates + 3 invalid")

            data_dir = os.path.join(d, "data")
            serve = Serve(brokers, data_dir)
            serve.wait_ready()
            serve.wait_stored(10_000)
            wait_until(lambda: serve.metric("painpoint_events_duplicate_total", 0) >= 300, 60,
                       "300 duplicates counted")
            wait_until(lambda: serve.metric("painpoint_events_invalid_total", 0) >= 3, 60,
                       "3 invalid counted")
            stored = serve.metric("painpoint_store_events")
            assert stored == 10_000, "stored %s events, expected exactly 10,000" % stored
            assert serve.metric("painpoint_events_stored_total") == 10_000
            # Ingest is at-least-once: a batch redone after a slow acknowledgement repeats its
            # messages downstream, so these counters may exceed the injected numbers; the store
            # count above is what must be exact.
            assert serve.metric("painpoint_events_duplicate_total") >= 300
            assert serve.metric("painpoint_events_invalid_total") >= 3
            log("first run: 10,000 stored exactly once, 300 duplicates, 3 invalid")

            # The invalid counter moves when a message is routed; its dead letter is acknowledged
            # with the rest of its ingest batch, a moment later.
            def dead_letters():
                out = kcat("-b", brokers, "-C", "-t", "painpoint.deadletter", "-o", "beginning",
                           "-e", "-f", "%h\\n")
                lines = [line for line in out.stdout.decode(errors="replace").splitlines() if line]
                # One dead letter per bad input message (a redone ingest batch may repeat one).
                by_source = {}
                for h in lines:
                    fields = dict(kv.split("=", 1) for kv in h.split(",") if "=" in kv)
                    key = (fields.get("painpoint.source.topic"),
                           fields.get("painpoint.source.partition"),
                           fields.get("painpoint.source.offset"))
                    by_source[key] = h
                return lines, list(by_source.values())
            lines, headers = dead_letters()
            deadline = time.time() + 15
            while len(headers) < 3 and time.time() < deadline:
                time.sleep(0.5)
                lines, headers = dead_letters()
            assert len(headers) == 3, lines
            reasons = sorted(h.split("painpoint.reason=")[1].split(",")[0] for h in headers)
            assert reasons == ["missing_text", "undecodable", "undecodable"], reasons
            for h in headers:
                assert "painpoint.source.topic=feedback." in h, h
                assert "painpoint.source.offset=" in h, h
            log("dead letters carry reasons", reasons)

            serve.stop_cleanly()

            # While it is down: 1,000 new events and 500 redeliveries.
            more = make_events(1_000, prefix="later", seed=11)
            produce_by_topic(d, brokers, more, "second")
            produce_by_topic(d, brokers, events[2_000:2_500], "dup2")

            serve = Serve(brokers, data_dir)
            serve.wait_ready()
            serve.wait_stored(11_000)
            wait_until(lambda: serve.metric("painpoint_events_duplicate_total", 0) >= 500, 60,
                       "500 duplicates after restart")
            assert serve.metric("painpoint_store_events") == 11_000
            # Only the new input was read again: nothing from before the restart was re-stored.
            assert serve.metric("painpoint_events_stored_total") == 1_000
            assert serve.metric("painpoint_events_duplicate_total") >= 500
            serve.stop_cleanly()
            serve = None
            log("restart: 11,000 stored, nothing twice, nothing missed")
    print("pipeline_test: OK")


if __name__ == "__main__":
    main()
