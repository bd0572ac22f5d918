"""A damaged aggregator state record, on `painpoint broker`.

1. serve stores and clusters 600 events of two products and stops (its state is saved).
2. One of billing's cluster records is overwritten with bytes that do not decode (the
   store_surgery helper, behind the store's back).
3. serve restarts and more billing events arrive: loading billing's state meets the record, and
   serve stops (exit 3) with a message naming the record's key, before committing any of
   billing's events; batches holding only mobile-app's events may be committed before that.
4. `painpoint replay rebuild --product billing` recomputes billing's state from its stored events;
   serve then stores the new events and every stored event of billing is in one pain point.

usage: state_damage_test.py PATH/TO/painpoint PATH/TO/store_surgery
"""
import json
import os
import re
import subprocess
import sys

import faultlib  # noqa: F401  (puts the integration harness on the path)
from faultlib import log
from harness import (PAINPOINT, Broker, Serve, make_events, produce, stop_on_exit,  # noqa: E402
                     workdir, write_jsonl)

FIRST = 600
MORE = 60


def produce_events(d, brokers, name, events):
    path = os.path.join(d, name)
    write_jsonl(path, events)
    out = produce(brokers, "feedback.support", path)
    assert out.returncode == 0, out.stderr + out.stdout


def billing_members(serve):
    """Events of billing's pain points, through the API."""
    status, body = serve.get("/v1/products/billing/pain-points?limit=500")
    assert status == 200, (status, body)
    total = 0
    for p in json.loads(body)["painPoints"]:
        total += int(p["eventCount"])
    return total


def main():
    surgery = sys.argv[2]
    with workdir() as d:
        broker = Broker(partitions=2)
        serve = None
        with stop_on_exit(broker, lambda: serve):
            data = os.path.join(d, "data")
            conf = faultlib.write_serve_config(d)
            first = make_events(FIRST, prefix="a", products=("mobile-app", "billing"))
            produce_events(d, broker.bootstrap, "first.jsonl", first)
            serve = Serve(broker.bootstrap, data, ["--config", conf])
            serve.wait_ready()
            serve.wait_stored(FIRST)
            serve.wait_published()
            serve.stop_cleanly()
            serve = None

            out = subprocess.run([surgery, "damage", data, "aggregator_state", "agg/billing/c/"],
                                 capture_output=True, text=True)
            assert out.returncode == 0, out.stderr
            key = out.stdout.strip()
            log("damaged", key)

            more = make_events(MORE, prefix="b", products=("billing", "mobile-app"), seed=11)
            produce_events(d, broker.bootstrap, "more.jsonl", more)
            out = subprocess.run([PAINPOINT, "serve", "--data-dir", data, "--brokers",
                                  broker.bootstrap, "--http-port", "0", "--config", conf,
                                  "--exit-when-idle"],
                                 capture_output=True, text=True, timeout=120)
            text = out.stdout + out.stderr
            assert out.returncode == 3, (out.returncode, text[-3000:])
            assert "aggregator state record '%s' (a cluster) cannot be decoded" % key in text, \
                text[-3000:]
            # Batches without billing's events may commit before the stage reaches its state;
            # none of billing's new events may be stored.
            held = re.findall(r"store holds (\d+) events", text)
            other = sum(1 for e in more if e["productId"] != "billing")
            assert held and FIRST <= int(held[-1]) <= FIRST + other, (held, other, text[-3000:])
            log("serve stopped on the damaged record (exit 3) holding %s events: none of "
                "billing's new ones" % held[-1])

            out = subprocess.run([PAINPOINT, "replay", "rebuild", "--data-dir", data, "--config",
                                  conf, "--product", "billing"],
                                 capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
            log(out.stdout.strip())

            serve = Serve(broker.bootstrap, data, ["--config", conf])
            serve.wait_ready()
            serve.wait_stored(FIRST + MORE)
            serve.wait_published()
            stored_billing = sum(1 for e in first + more if e["productId"] == "billing")
            members = billing_members(serve)
            assert members == stored_billing, (members, stored_billing)
            serve.stop_cleanly()
            serve = None
            log("after the rebuild: %d events stored, billing's %d all in its pain points"
                % (FIRST + MORE, members))
    log("OK")


if __name__ == "__main__":
    main()
