"""Crash suite: `painpoint serve` is SIGKILLed K times at random moments while N events (plus ~5%
redelivered copies) flow through it, and restarted each time. At the end the store holds exactly
the distinct events, each is a member of exactly one pain point, the pain points' counts add up to
them, and the latest record per key on painpoint.summaries equals the store (see faultlib.verify).

A kill lands either at a random time after the start (start-up, group join, replay of the stored
offsets) or shortly after the store passed a random progress mark (mid-stream: between a commit
and its publish, inside ingest's produce/commit, ...). Input keeps arriving during the first
part of the run, so ingest is killed mid-batch too. The seed is printed; PAINPOINT_FAULT_SEED
replays a run's schedule (timing still varies with the machine).

With --encoder semantic, serve runs with `cluster.encoder = semantic` too (needs
scripts/fetch-encoder.sh's file): events are encoded before they are stored, so a kill also
lands mid-encoding, and recovery replays the vectors stored with the events.

With --checkpoint-events N (and --checkpoint-batches B), serve writes its aggregator state out
every N events, a share of the products per batch over B batches, so kills land between the
shares of a round: recovery must replay each product's events since its own share.

usage: crash_test.py PATH/TO/painpoint [--events N] [--kills K] [--partitions P] [--seed S]
                     [--encoder static|semantic] [--checkpoint-events N] [--checkpoint-batches B]
"""
import argparse
import os
import random
import signal
import sys
import time

import faultlib
from faultlib import log
from harness import Broker, Serve, stop_on_exit, wait_until, workdir


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("painpoint")
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--partitions", type=int, default=8,
                    help="per topic; the embedded broker keeps at most 5 MiB per partition")
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("PAINPOINT_FAULT_SEED", "0")) or None)
    ap.add_argument("--encoder", choices=("static", "semantic"), default=None,
                    help="cluster.encoder for serve (default: serve's)")
    ap.add_argument("--checkpoint-events", type=int, default=None,
                    help="aggregator.checkpoint_events for serve (default: serve's)")
    ap.add_argument("--checkpoint-batches", type=int, default=None,
                    help="aggregator.checkpoint_batches for serve (default: serve's)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds to wait for the final run to store everything")
    return ap.parse_args()


def stored_before(kills):
    known = [k for k in kills if k is not None]
    return max(known) if known else 0


def main():
    args = parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(seed)
    log("seed %d (PAINPOINT_FAULT_SEED=%d replays this schedule)" % (seed, seed))
    started = time.monotonic()
    with workdir() as d:
        protobuf_dir = faultlib.protobuf_module(d)  # noqa: F841 (puts d/pb on sys.path)
        from painpoint.v1 import pain_point_pb2 as pp  # noqa: E402
        from google.protobuf import json_format  # noqa: E402

        files, ids, messages = faultlib.make_input(d, args.events, seed)
        log("input: %d distinct events, %d messages (%d redelivered copies)"
            % (len(ids), messages, messages - len(ids)))
        settings = "cluster.encoder = %s\n" % args.encoder if args.encoder else ""
        if args.checkpoint_events:
            settings += "aggregator.checkpoint_events = %d\n" % args.checkpoint_events
        if args.checkpoint_batches:
            settings += "aggregator.checkpoint_batches = %d\n" % args.checkpoint_batches
        config = faultlib.write_serve_config(d, settings)
        if settings:
            log("serve's settings:", settings.strip().replace("\n", ", "))
        data_dir = os.path.join(d, "data")
        broker = Broker(partitions=args.partitions)
        serve = None
        producer = faultlib.BackgroundProducer()
        with stop_on_exit(broker, lambda: serve, sig=signal.SIGKILL), producer:
            brokers = broker.bootstrap
            # A quarter of the input up front, the rest while serve runs and gets killed.
            head = {}
            for topic, (path, count) in files.items():
                with open(path) as f:
                    lines = f.readlines()
                cut = len(lines) // 4
                for name, part in (("head", lines[:cut]), ("tail", lines[cut:])):
                    p = "%s.%s" % (path, name)
                    with open(p, "w") as f:
                        f.writelines(part)
                    head.setdefault(name, {})[topic] = (p, len(part))
            faultlib.produce_all(brokers, head["head"])
            producer.start(brokers, head["tail"], chunks=max(8, 2 * args.kills), pause=0.5)

            kills = []
            for k in range(args.kills):
                serve = Serve(brokers, data_dir, extra=["--config", config])
                t0 = time.monotonic()
                if rng.random() < 0.3:
                    delay = rng.uniform(0.2, 4.0)
                    time.sleep(delay)
                    how = "%.2f s after start" % delay
                else:
                    # Always past what the store held at the start, so the kill hits a run
                    # that is storing new events, not one still replaying.
                    held = stored_before(kills)
                    # On average 1/K of the input per kill, so the kills spread over the run.
                    step = rng.uniform(0.2, 2.0) * 0.9 / args.kills * len(ids)
                    mark = min(held + step, 0.98 * len(ids))

                    def reached():
                        serve.check_running()
                        return serve.metric("painpoint_store_events", 0) >= mark
                    try:
                        wait_until(reached, 120 + len(ids) / 2000, "%d events stored" % mark,
                                   interval=0.05)
                    except AssertionError:
                        print(faultlib.dump_stacks(serve.proc.pid), file=sys.stderr)
                        raise
                    extra = rng.uniform(0.0, 0.3)
                    time.sleep(extra)
                    how = "%.2f s after %d events were stored" % (extra, mark)
                stored = serve.metric("painpoint_store_events")
                assert serve.proc.poll() is None, "serve exited on its own:\n" + serve.tail()
                serve.stop(sig=signal.SIGKILL)
                kills.append(stored)
                log("kill %d/%d: %s (store held %s events; serve ran %.1f s)"
                    % (k + 1, args.kills, how, "?" if stored is None else int(stored),
                       time.monotonic() - t0))
                serve = None

            producer.join()
            serve = Serve(brokers, data_dir, extra=["--config", config])
            serve.wait_ready(timeout=120)
            if args.encoder == "semantic":
                with open(serve.log_path) as f:
                    assert "sentence encoder:" in f.read(), serve.tail(30)
            timeout = args.timeout or 120 + len(ids) / 500
            serve.wait_stored(len(ids), timeout=timeout)
            serve.wait_published(timeout=120)
            numbers = faultlib.verify(serve, brokers, ids, pp, json_format)
            # Any run, not just this one: a loss to retention (the embedded broker's 5 MiB per
            # partition) would be a setup problem, not a crash bug; say so plainly.
            losses = faultlib.retention_losses(serve.log_path)
            assert not losses, ("the broker dropped messages before they were consumed: use "
                                "more partitions (--partitions)\n" + "\n".join(losses[:5]))
            serve.stop_cleanly()
            serve = None
            log("crash_test: seed %d, %d events (%d messages), %d kills, lost %d, "
                "double-counted %d, %.0f s" % (seed, len(ids), messages, len(kills),
                                               numbers["lost"], numbers["double_counted"],
                                               time.monotonic() - started))
    print("crash_test: OK")


if __name__ == "__main__":
    main()
