"""Changing the clustering of a data directory, on `painpoint broker`.

1. serve (cluster.encoder = static) stores and clusters 600 events, then stops. With its record
   erased (store_surgery, as a directory of an older build), semantic serve is refused anyway:
   the stored events carry no sentence vectors.
2. serve with cluster.encoder = semantic refuses that directory (exit 2), naming the change and
   `painpoint replay rebuild`; the directory is unchanged (same pain points afterwards).
3. `replay rebuild --product billing` with the semantic configuration is refused (exit 2): the
   products left out would keep a static state.
4. `replay rebuild` of everything with it succeeds; serve in semantic mode then starts on the
   directory and answers the rebuilt pain points, while static serve is now refused.
5. A changed threshold is accepted with a warning naming it.

usage: clustering_change_test.py PATH/TO/painpoint PATH/TO/store_surgery
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PAINPOINT, Broker, Serve, log, make_events, produce,  # noqa: E402
                     stop_on_exit, workdir, write_jsonl)

EVENTS = 600


def config(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def pain_points(serve):
    """{product: sorted pain-point ids} through the API."""
    status, body = serve.get("/v1/products")
    assert status == 200, (status, body)
    out = {}
    for product in json.loads(body)["products"]:
        pid = product["productId"]
        status, page = serve.get("/v1/products/%s/pain-points?limit=500" % pid)
        assert status == 200, (status, page)
        out[pid] = sorted(p["id"] for p in json.loads(page)["painPoints"])
    return out


def refused_serve(brokers, data, conf):
    """Runs serve expecting it to refuse the directory; returns its log."""
    out = subprocess.run([PAINPOINT, "serve", "--data-dir", data, "--brokers", brokers,
                          "--http-port", "0", "--config", conf],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, (out.returncode, out.stdout[-2000:], out.stderr[-2000:])
    return out.stdout + out.stderr


def rebuild(data, conf, *extra):
    return subprocess.run([PAINPOINT, "replay", "rebuild", "--data-dir", data, "--config", conf,
                           *extra], capture_output=True, text=True, timeout=600)


def serve_and_list(brokers, data, conf):
    serve = Serve(brokers, data, ["--config", conf], encoder=None)
    try:
        serve.wait_ready()
        return pain_points(serve), serve
    finally:
        serve.stop_cleanly()


def main():
    with workdir() as d:
        broker = Broker(partitions=2)
        serve = None
        with stop_on_exit(broker, lambda: serve):
            static = config(d, "static.conf", "cluster.encoder = static\n")
            semantic = config(d, "semantic.conf", "cluster.encoder = semantic\n")
            data = os.path.join(d, "data")
            path = os.path.join(d, "events.jsonl")
            write_jsonl(path, make_events(EVENTS, products=("mobile-app", "billing")))
            out = produce(broker.bootstrap, "feedback.support", path)
            assert out.returncode == 0, out.stderr + out.stdout

            serve = Serve(broker.bootstrap, data, ["--config", static], encoder=None)
            serve.wait_ready()
            serve.wait_stored(EVENTS)
            serve.wait_published()
            before = pain_points(serve)
            serve.stop_cleanly()
            serve = None
            assert before and all(before.values()), before
            log("static pain points:", {p: len(ids) for p, ids in before.items()})

            out = subprocess.run([sys.argv[2], "erase", data, "clustering"],
                                 capture_output=True, text=True)
            assert out.returncode == 0, out.stderr
            text = refused_serve(broker.bootstrap, data, semantic)
            assert "were built without the sentence encoder (before the store recorded" in text, \
                text
            log("a directory without the record: its events carry no vectors, semantic refused")

            again, _ = serve_and_list(broker.bootstrap, data, static)  # records it again
            assert again == before, (again, before)
            text = refused_serve(broker.bootstrap, data, semantic)
            assert "built with another clustering (encoder: static -> semantic" in text, text
            assert "painpoint replay rebuild" in text, text
            log("semantic serve refused; the static state is intact")

            out = rebuild(data, semantic, "--product", "billing")
            assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
            assert "must cover every product and the whole history" in out.stderr, out.stderr
            out = rebuild(data, semantic)
            assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
            log(out.stdout.strip())

            after, _ = serve_and_list(broker.bootstrap, data, semantic)
            assert after and all(after.values()), after
            text = refused_serve(broker.bootstrap, data, static)
            assert "encoder: semantic -> static" in text, text
            log("semantic serve after the rebuild:", {p: len(ids) for p, ids in after.items()})

            tuned = config(d, "tuned.conf",
                           "cluster.encoder = semantic\ncluster.semantic_merge = 0.5\n")
            serve = Serve(broker.bootstrap, data, ["--config", tuned], encoder=None)
            serve.wait_ready()
            serve.stop_cleanly()
            with open(serve.log_path) as f:
                log_text = f.read()
            serve = None
            assert "clustering settings changed since the last start (semantic_merge: 0.45 -> 0.5)" \
                in log_text, log_text[-3000:]
            log("changed threshold accepted with a warning")
    log("OK")


if __name__ == "__main__":
    main()
