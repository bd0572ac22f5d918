"""`painpoint serve` clusters a stream into pain points that match what `painpoint cluster`
computes offline from the same events, through a graceful restart (state written out at stop) and a
SIGKILL (the state deferred since the last checkpoint is rebuilt by replaying the events stored
since), and the pain points survive a further restart unchanged. Each life of serve spreads the
products over another number of aggregators (`aggregator.threads` 1, 3, 2, 1): the results may
not depend on it.

With --encoder semantic, serve runs with `cluster.encoder = semantic` (a config file) and
`painpoint cluster` with `--set encoder=semantic`: the vectors serve stored with the events are
what the SIGKILL's recovery replays, so the exactness checks hold there too. Needs the sentence
encoder (scripts/fetch-encoder.sh).

usage: restart_test.py PATH/TO/painpoint [--encoder static|semantic] [--events N]
  --events: a multiple of 3 (one third per life of serve; default 3000)
"""
import argparse
import json
import os
import signal
import subprocess

from harness import (PAINPOINT, SAMPLE_FEEDBACK, Broker, Serve, log, produce, stop_on_exit,
                     wait_until, workdir)


def snapshot(serve):
    status, body = serve.get("/v1/products")
    assert status == 200, body
    result = {}
    for product in json.loads(body)["products"]:
        status, body = serve.get("/v1/products/%s/pain-points?sort=events&limit=500"
                                 % product["productId"])
        assert status == 200, body
        doc = json.loads(body)
        assert not doc.get("nextCursor"), "more than 500 pain points"
        for p in doc["painPoints"]:
            result[p["id"]] = (p["productId"], int(p["eventCount"]), p["label"], int(p["version"]))
    return result


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("painpoint")
    ap.add_argument("--encoder", choices=("static", "semantic"), default="static",
                    help="cluster.encoder for serve and painpoint cluster")
    ap.add_argument("--events", type=int, default=3000)
    args = ap.parse_args()
    if args.events < 3 or args.events % 3:
        ap.error("--events must be a positive multiple of 3")
    return args


def main():
    args = parse_args()
    total = args.events
    chunk = total // 3
    with workdir() as d:
        events_path = os.path.join(d, "events.jsonl")
        with open(events_path, "w") as f:
            subprocess.run(["/usr/bin/python3", SAMPLE_FEEDBACK, "--events", str(total),
                            "--seed", "5", "--now", "2026-11-01T00:00:00Z"], stdout=f, check=True)
        cluster_extra = ["--set", "encoder=%s" % args.encoder]
        log("cluster.encoder =", args.encoder)
        assignments = os.path.join(d, "assignments.jsonl")
        out = subprocess.run([PAINPOINT, "cluster", "--input", events_path, "--output",
                              assignments] + cluster_extra, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        offline = {}
        with open(assignments) as f:
            for line in f:
                a = json.loads(line)
                offline.setdefault(a["painPointId"], set()).add(a["eventId"])

        # Three chunks, in file order: one per life of serve.
        with open(events_path) as f:
            lines = f.readlines()
        chunks = []
        for i in range(3):
            path = os.path.join(d, "chunk%d.jsonl" % i)
            with open(path, "w") as f:
                f.writelines(lines[i * chunk:(i + 1) * chunk])
            chunks.append(path)

        broker = Broker(partitions=4)
        serve = None
        with stop_on_exit(broker, lambda: serve):
            data_dir = os.path.join(d, "data")
            # One topic keeps the file order per product (the key decides the partition).
            def feed(chunk, stored):
                out = produce(broker.bootstrap, "feedback.support", chunk)
                assert out.returncode == 0, out.stdout + out.stderr
                serve.wait_stored(stored)

            def start(threads):
                s = Serve(broker.bootstrap, data_dir, encoder=args.encoder,
                          extra=["--set", "aggregator.threads=%d" % threads])
                s.wait_ready()
                return s

            serve = start(1)
            if args.encoder == "semantic":
                with open(serve.log_path) as f:
                    assert "sentence encoder:" in f.read(), serve.tail(30)
            feed(chunks[0], chunk)
            serve.stop_cleanly()  # graceful: the aggregator state is written out
            serve = start(3)
            feed(chunks[1], 2 * chunk)
            # No checkpoint yet (default: every 250,000 events or 60 s): 2nd chunk unsaved.
            wait_until(lambda: serve.metric("painpoint_aggregator_unsaved_events") == chunk, 10,
                       "the 2nd chunk counted as unsaved")
            serve.stop(signal.SIGKILL)  # the state since the graceful stop exists nowhere
            serve = start(2)
            with open(serve.log_path) as f:
                assert "rebuilt from %d events" % chunk in f.read(), serve.tail(30)
            feed(chunks[2], total)
            before = wait_until(lambda: snapshot(serve) or None, 30, "pain points")
            log("serve formed", len(before), "pain points from", total, "events")

            # Same events, same order per product, same config: the same pain points and sizes.
            for pid, (_, count, _, _) in before.items():
                assert pid in offline, "serve's %s is unknown to painpoint cluster" % pid
                assert len(offline[pid]) == count, (pid, count, len(offline[pid]))
            log("identical to painpoint cluster's result")

            serve.stop_cleanly()
            serve = start(1)
            after = snapshot(serve)
            assert after == before, "pain points changed across a restart"
            assert serve.metric("painpoint_pain_points_active") is not None
            serve.stop_cleanly()
            serve = None
            log("pain points unchanged after restart")
    print("restart_test: OK")


if __name__ == "__main__":
    main()
