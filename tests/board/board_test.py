"""Issue 18: the pain-point board in a real browser (board.spec.mjs, playwright-core driving
Debian's chromium) against `painpoint broker` + serve with sample feedback and both tokens.

The browser part checks the views against the API and curates through the UI; this script then
checks that the rename, merge and split it reports reached painpoint.summaries (kcat).

usage: board_test.py PATH/TO/painpoint BOARD_DIR ARTIFACTS_DIR
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import (Broker, Serve, latest_per_key, log, produce_sample, protobuf_module,  # noqa: E402
                     read_summaries, stop_on_exit, workdir)

WRITE_TOKEN = "board-write-secret"
READ_TOKEN = "board-read-secret"


def check_summaries(brokers, pb, curated):
    latest = latest_per_key(read_summaries(brokers, pb))
    a, b, n = curated["renamed"], curated["merged"], curated["split"]
    assert latest[a].label == curated["label"], latest[a]
    assert latest[b].status == pb.STATUS_MERGED and latest[b].merged_into == a, latest[b]
    assert latest[n].status == pb.STATUS_ACTIVE, latest[n]
    assert latest[n].event_count == len(curated["split_events"]), latest[n]
    log("painpoint.summaries: %s renamed, %s merged into it, %s split off with %d events"
        % (a, b, n, latest[n].event_count))


def main():
    board_dir, artifacts = sys.argv[2], sys.argv[3]
    os.makedirs(artifacts, exist_ok=True)
    with workdir() as d:
        pb = protobuf_module(d) and __import__("painpoint.v1.pain_point_pb2",
                                               fromlist=["PainPointSummary"])
        broker = Broker(partitions=2)
        serve = None
        with stop_on_exit(broker, lambda: serve):
            brokers = broker.bootstrap
            produce_sample(d, brokers, 600, seed=1)
            serve = Serve(brokers, os.path.join(d, "data"),
                          extra=["--api-token", WRITE_TOKEN, "--api-read-token", READ_TOKEN])
            serve.wait_ready()
            serve.wait_stored(600)
            serve.wait_published()
            env = dict(os.environ, BOARD_URL="http://127.0.0.1:%d" % serve.port,
                       BOARD_DIR=board_dir, ARTIFACTS=artifacts, READ_TOKEN=READ_TOKEN,
                       WRITE_TOKEN=WRITE_TOKEN)
            spec = os.path.join(os.path.dirname(os.path.abspath(__file__)), "board.spec.mjs")
            subprocess.run(["node", spec], env=env, check=True, timeout=300)
            serve.wait_published()
            with open(os.path.join(artifacts, "curated.json")) as f:
                check_summaries(brokers, pb, json.load(f))
            serve.stop_cleanly()
            serve = None
    log("board test passed; screenshots in", artifacts)


if __name__ == "__main__":
    main()
