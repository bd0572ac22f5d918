"""Issue 4, item 1 end to end: summary events on painpoint.summaries.

Feedback from scripts/sample_feedback.py goes through `painpoint serve` while kcat reads
painpoint.summaries. Checked: per key, versions only grow in offset order; the latest record per key
equals what the HTTP API serves (a MERGED id's last record says MERGED and names its survivor);
every active pain point has a record; coalescing keeps records per key far below the number of
batches and at least one interval apart. Then serve is SIGKILLed after committing but before
publishing (the test-only PAINPOINT_TEST_PUBLISH_DELAY_MS holds the publisher back), with more
outbox entries than the publisher reads in one chunk, and restarted: every summary still arrives,
and no key's version goes back.

usage: summaries_test.py PATH/TO/painpoint
"""
import collections
import os
import signal
import subprocess
import sys
import time

from harness import (PAINPOINT, ROOT, SAMPLE_FEEDBACK, Broker, Serve, latest_per_key, log,
                     produce_sample, protobuf_module, read_summaries, stop_on_exit, wait_until,
                     workdir)

INTERVAL_MS = 250  # PublisherConfig::interval default


def stream_sample(brokers, events, seed, seconds):
    lines = subprocess.run([sys.executable, SAMPLE_FEEDBACK, "--events", str(events),
                            "--seed", str(seed), "--now", "2026-11-01T00:00:00Z"], check=True,
                           capture_output=True, text=True).stdout.splitlines(keepends=True)
    proc = subprocess.Popen([PAINPOINT, "produce", "--brokers", brokers, "--topic",
                             "feedback.support"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    step = 0.05
    per_step = max(1, int(len(lines) * step / seconds))
    for i in range(0, len(lines), per_step):
        proc.stdin.write("".join(lines[i:i + per_step]))
        proc.stdin.flush()
        time.sleep(step)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err + out


def check_order(records, strict):
    """Per key, in offset order: versions grow (strict=False allows a repeat after a crash)."""
    last = {}
    for p, o, _ts, key, s in sorted(records, key=lambda r: (r[0], r[1])):
        if key in last:
            prev_p, prev_v = last[key]
            assert prev_p == p, "key %s moved from partition %d to %d" % (key, prev_p, p)
            ok = s.version > prev_v or (not strict and s.version == prev_v)
            assert ok, "key %s: version %d after %d at %d@%d" % (key, s.version, prev_v, p, o)
        last[key] = (p, s.version)


def check_against_api(serve, records, pb, api_pb, json_format):
    latest = latest_per_key(records)
    merged = 0
    for key, s in latest.items():
        status, body = serve.get("/v1/pain-points/" + key)
        assert status == 200, (key, status, body)
        api = json_format.Parse(body, pb.PainPointSummary())
        if s.status == pb.STATUS_MERGED:
            # The API answers a merged id with its survivor; the record must point there.
            merged += 1
            assert s.merged_into, key
            assert api.id != key and api.id in latest, (key, api.id)
        else:
            assert api == s, "key %s: topic has v%d, API v%d" % (key, s.version, api.version)
    active = 0
    for product in ("billing", "mobile-app", "web-app"):
        status, body = serve.get("/v1/products/%s/pain-points?limit=500" % product)
        assert status == 200, body
        page = json_format.Parse(body, api_pb.PainPointList())
        for p in page.pain_points:
            active += 1
            assert p.id in latest, "active pain point %s has no record" % p.id
            assert latest[p.id] == p, "pain point %s: record differs from the API" % p.id
    return latest, active, merged


def main():
    with workdir() as d:
        protobuf_module(d)  # compiles feedback + pain_point into d/pb and puts it on sys.path
        subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out",
                        os.path.join(d, "pb"), "painpoint/v1/api.proto"], check=True)
        from painpoint.v1 import api_pb2, pain_point_pb2 as pp  # noqa: E402
        from google.protobuf import json_format  # noqa: E402
        broker = Broker(partitions=4)
        serve = None
        with stop_on_exit(broker, lambda: serve):
            brokers = broker.bootstrap
            data_dir = os.path.join(d, "data")
            produce_sample(d, brokers, 2_000, seed=1)
            serve = Serve(brokers, data_dir)
            serve.wait_ready()
            # More input while it runs, as a steady trickle, so that there are many small batches
            # (each touching many pain points) within a few coalescing intervals.
            stream_sample(brokers, 3_000, seed=2, seconds=6)
            serve.wait_stored(5_000)
            serve.wait_published()
            batches = serve.metric("painpoint_batches_committed_total")
            published = serve.metric("painpoint_summaries_published_total")
            deleted = serve.metric("painpoint_outbox_deleted_total")
            status, body = serve.get("/readyz")
            assert status == 200 and '"publisher":"ok"' in body, body

            records = read_summaries(brokers, pp)
            assert records, "no summaries published"
            check_order(records, strict=True)
            latest, active, merged = check_against_api(serve, records, pp, api_pb2, json_format)
            per_key = collections.Counter(r[3] for r in records)
            # Coalescing: consecutive records of a key are at least one interval apart (producer
            # timestamps; a little slack for clock granularity).
            by_key = collections.defaultdict(list)
            for _p, _o, ts, key, _s in sorted(records, key=lambda r: (r[0], r[1])):
                by_key[key].append(ts)
            closest = min((b - a for ts in by_key.values() for a, b in zip(ts, ts[1:])),
                          default=None)
            assert closest is None or closest >= INTERVAL_MS - 20, closest
            assert max(per_key.values()) < batches, (max(per_key.values()), batches)
            assert published == len(records), (published, len(records))
            # Every outbox entry went out or was folded into a later record of its key.
            assert deleted > published, (deleted, published)
            log("run 1: %d records for %d keys (%d active, %d merged) from %d batches and %d "
                "outbox entries; records per key max %d, mean %.1f; closest two records of a key "
                "%s ms apart" % (len(records), len(latest), active, merged, batches, deleted,
                                 max(per_key.values()), len(records) / len(latest), closest))
            assert active > 5, active

            serve.stop_cleanly()

            # Crash between commit and publish: the publisher is held back, serve commits the
            # new events (and their summaries to the outbox), then dies without a clean stop.
            os.environ["PAINPOINT_TEST_PUBLISH_DELAY_MS"] = "120000"
            try:
                serve = Serve(brokers, data_dir)
            finally:
                del os.environ["PAINPOINT_TEST_PUBLISH_DELAY_MS"]
            serve.wait_ready()
            # As a trickle, so that many small batches leave more entries than the publisher
            # reads in one chunk (PublisherConfig::read_chunk, 1,000), with a key's versions in
            # several chunks: after the restart, entries read early are older than the stored
            # summary and must be dropped, not sent after a newer version.
            stream_sample(brokers, 3_000, seed=3, seconds=6)
            serve.wait_stored(8_000)
            wait_until(lambda: serve.metric("painpoint_outbox_pending", 0) > 1_000, 30,
                       "more than 1,000 outbox entries pending")
            pending = serve.metric("painpoint_outbox_pending")
            assert serve.metric("painpoint_summaries_published_total") == 0
            serve.stop(sig=signal.SIGKILL)
            before = len(read_summaries(brokers, pp))
            assert before == len(records), "published before the kill: %d" % (before - len(records))
            log("killed serve with %d outbox entries pending" % pending)

            serve = Serve(brokers, data_dir)
            serve.wait_ready()
            serve.wait_published()
            records = read_summaries(brokers, pp)
            check_order(records, strict=False)
            latest2, active2, merged2 = check_against_api(serve, records, pp, api_pb2, json_format)
            changed = sum(1 for k, s in latest2.items()
                          if k not in latest or latest[k].version != s.version)
            assert changed > 0, "the restart published nothing new"
            log("after SIGKILL + restart: %d records, %d keys changed, all %d keys (%d active, "
                "%d merged) match the API" % (len(records) - before, changed, len(latest2),
                                             active2, merged2))
            serve.stop_cleanly()
            serve = None
    print("summaries_test: OK")


if __name__ == "__main__":
    main()
