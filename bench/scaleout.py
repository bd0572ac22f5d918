#!/usr/bin/python3
"""Benchmarks of several serve instances with the aggregator changelog on Apache Kafka
(scripts/kafka.sh; issue 17's targets, docs/benchmarks.md "Several instances"). Prints figures;
asserts only that every run saw every event.

  scaleout.py PATH/TO/painpoint restore   [--events N] [--partitions P] [--tail F] [--runs K]
                                          [--compare OTHER/painpoint ...]
  scaleout.py PATH/TO/painpoint takeover  [--events N] [--partitions P] [--rate R]
  scaleout.py PATH/TO/painpoint instances [--events N] [--partitions P] [--instances 1,3]
                                          [--settle-first]

restore: the first (1 - F) of N events (bench/gen_events.py) go through `serve --exit-when-idle`
  (changelog on), its data directory is copied (the warm copy), the rest (the tail) goes through
  the same serve; then, K times in turn, `serve --exit-when-idle` on an empty directory (cold:
  everything from the changelog) and on a copy of the warm copy (its checkpoint plus the
  changelog's tail). With --compare, each of the K runs restores cold and warm with both binaries
  in turn (PATH's first; the changelog was written by PATH's serve), on the same broker and
  changelog. Figures from serve's "restored P partitions ... in X s: R records applied;
  store holds E events" line: events/s = events restored / X (cold: E; warm: E minus the warm
  copy's events), records/s = R / X.
takeover: N events stored by instance A, then events keep arriving at R events/s while B joins
  (partitions move to B, cold), B stops (they come back to A, warm) and B starts again (warm from
  its own directory where it gets what it held). Prints assignment -> first batch committed
  (serve's "taken over" line, as tests/kafka/takeover_test.py reads it) and assignment -> input
  resumed, p50 / p99 / max, warm and cold.
instances: for each count I in the list: a fresh broker, N events produced, then I instances
  (static membership, empty directories) started at once drain them (--settle-first: the events
  are produced once every instance holds partitions, so no partition moves while they drain); events/s from the first
  event stored to the last (painpoint_events_stored_total summed over the instances, sampled
  every 0.1 s), and CPU per event (user + sys of every serve from /proc, at the end).

The broker's version: PAINPOINT_TEST_KAFKA (default 4.4.0).
"""
import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

if len(sys.argv) > 1:
    os.environ.setdefault("PAINPOINT_BIN", os.path.abspath(sys.argv[1]))
os.environ.setdefault("PAINPOINT_TEST_KAFKA", "4.4.0")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from harness import KAFKA_VERSION, KafkaBroker, Serve, log, produce, wait_until  # noqa: E402

TOPICS = ("feedback.support", "feedback.sales", "feedback.customer")
RESTORED = re.compile(r"restored (\d+) partitions from the changelog in ([\d.]+) s: (\d+) records "
                      r"applied; store holds (\d+) events")
RESUMED = re.compile(r"partition (\d+) restored \((warm|cold)\) in ([\d.]+) s: .*input resumes "
                     r"at \d+, ([\d.]+) s after the assignment")
TAKEOVER = re.compile(r"partition (\d+) taken over \((warm|cold)\): first batch committed "
                      r"([\d.]+) s after the assignment \(restore ([\d.]+) s\)")
HZ = os.sysconf("SC_CLK_TCK")


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("painpoint")
    ap.add_argument("mode", choices=("restore", "takeover", "instances"))
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--tail", type=float, default=0.1)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--rate", type=int, default=2_000)
    ap.add_argument("--instances", default="1,3")
    ap.add_argument("--settle-first", action="store_true",
                    help="instances: produce only once every instance holds partitions")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--compare", metavar="BIN", action="append", default=[],
                    help="restore: also restore with this painpoint binary, alternating "
                         "(repeatable)")
    ap.add_argument("--set", action="append", default=[], help="serve --set KEY=VALUE")
    return ap.parse_args()


def generate(d, events, seed):
    """bench/gen_events.py's events, {topic: [line, ...]}."""
    out = os.path.join(d, "events")
    os.makedirs(out)
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_events.py"), "--events",
                    str(events), "--seed", str(seed), "--out-dir", out], check=True,
                   stdout=subprocess.DEVNULL)
    lines = {}
    for t in TOPICS:
        with open(os.path.join(out, t + ".jsonl")) as f:
            lines[t] = [line for line in f if line.strip()]
    return lines


def produce_lines(d, brokers, lines, name):
    """Produces {topic: [line]} with `painpoint produce`, the topics side by side."""
    procs = []
    for t, part in lines.items():
        if not part:
            continue
        path = os.path.join(d, "%s.%s.jsonl" % (name, t))
        with open(path, "w") as f:
            f.writelines(part)
        procs.append(threading.Thread(target=lambda p=path, t=t: results.append(
            produce(brokers, t, p))))
    results = []
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    for out in results:
        assert out.returncode == 0, out.stderr + out.stdout


def split(lines, fraction):
    head, tail = {}, {}
    for t, part in lines.items():
        n = len(part) - int(len(part) * fraction)
        head[t], tail[t] = part[:n], part[n:]
    return head, tail


def serve_args(args, d, extra=()):
    config = os.path.join(d, "serve.conf")
    with open(config, "w") as f:
        f.write("changelog.enabled = true\n")
    out = ["--config", config]
    for s in args.set:
        out += ["--set", s]
    return out + list(extra)


def run_idle(brokers, data_dir, extra, log_path, timeout=900):
    """serve --exit-when-idle; returns (its log's text, wall seconds)."""
    t0 = time.monotonic()
    s = Serve(brokers, data_dir, extra=list(extra) + ["--exit-when-idle"], log_path=log_path)
    try:
        rc = s.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        s.stop(sig=signal.SIGKILL)
        raise AssertionError("serve did not become idle in %d s: %s" % (timeout, s.tail()))
    wall = time.monotonic() - t0
    s.log_file.close()
    assert rc == 0, "serve exited %s:\n%s" % (rc, s.tail())
    with open(log_path) as f:
        return f.read(), wall


def restore_figures(text):
    found = RESTORED.findall(text)
    assert found, "no 'restored ... partitions' line"
    parts, seconds, records, events = found[-1]
    return int(parts), float(seconds), int(records), int(events)


def restore_mode(args, d):
    lines = generate(d, args.events, args.seed)
    head, tail = split(lines, args.tail)
    broker = KafkaBroker(args.partitions, KAFKA_VERSION)
    try:
        b = broker.bootstrap
        extra = serve_args(args, d)
        owner = os.path.join(d, "owner")
        produce_lines(d, b, head, "head")
        run_idle(b, owner, extra, owner + ".log")
        warm = os.path.join(d, "warm")
        shutil.copytree(owner, warm)
        # The warm copy's events: a restore of a copy with nothing to read says.
        nothing = os.path.join(d, "nothing")
        shutil.copytree(warm, nothing)
        text, wall = run_idle(b, nothing, extra, nothing + ".log")
        _, secs0, _, warm_events = restore_figures(text)
        shutil.rmtree(nothing)
        log("warm copy: %d events; its restore with nothing to read: %.2f s (serve %.1f s)"
            % (warm_events, secs0, wall))
        produce_lines(d, b, tail, "tail")
        run_idle(b, owner, extra, owner + ".log")
        total = args.events  # gen_events.py's events are distinct
        rows = []
        binaries = [harness.PAINPOINT] + [os.path.abspath(c) for c in args.compare]
        for run in range(args.runs):
            for binary in binaries:
                harness.PAINPOINT = binary
                for kind in ("cold", "warm"):
                    rows.append(restore_once(b, d, extra, warm, warm_events, total, run, kind,
                                             binary))
            harness.PAINPOINT = binaries[0]
    finally:
        broker.stop()
    print("| binary | restore | partitions | seconds | events | records | events/s | records/s | "
          "serve run s | load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, kind, parts, secs, ev, rec, wall, load in rows:
        print("| %s | %s | %d | %.2f | %d | %d | %.0f | %.0f | %.1f | %.1f |"
              % (name, kind, parts, secs, ev, rec, ev / secs, rec / secs, wall, load))


def restore_once(b, d, extra, warm, warm_events, total, run, kind, name):
    """One restore (cold: empty directory; warm: a copy of the warm copy) by harness.PAINPOINT."""
    target = os.path.join(d, "%s-%d" % (kind, run))
    if kind == "warm":
        shutil.copytree(warm, target)
    load = os.getloadavg()[0]
    text, wall = run_idle(b, target, extra, target + ".log")
    parts, secs, records, events = restore_figures(text)
    assert events == total, (kind, events, total)
    restored = events - (warm_events if kind == "warm" else 0)
    log("%s %s: %d partitions in %.2f s: %d events, %d records: %.0f events/s, %.0f records/s "
        "(serve's run %.1f s, load %.1f)"
        % (name, kind, parts, secs, restored, records, restored / secs, records / secs, wall,
           load))
    shutil.rmtree(target)
    return (name, kind, parts, secs, restored, records, wall, load)


class Trickle:
    """Produces the lines of `lines` at about `rate` events/s in one-second pieces, on a thread,
    until they run out or stop() is called."""

    def __init__(self, d, brokers, lines, rate):
        self.d, self.brokers, self.rate = d, brokers, rate
        self.lines = {t: list(part) for t, part in lines.items()}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.sent = 0

    def run(self):
        total = sum(len(p) for p in self.lines.values())
        i = 0
        while self.sent < total and not self.stop_event.is_set():
            t0 = time.monotonic()
            piece = {}
            for t, part in self.lines.items():
                share = max(1, self.rate * len(part) // max(total, 1))
                piece[t] = part[:share]
                del part[:share]
            produce_lines(self.d, self.brokers, piece, "trickle-%d" % i)
            self.sent += sum(len(p) for p in piece.values())
            i += 1
            self.stop_event.wait(max(0.0, 1.0 - (time.monotonic() - t0)))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join()
        return False


def held(serve):
    import json
    status, body = serve.get("/readyz")
    if status is None:
        return None
    parts = json.loads(body).get("details", {}).get("partitions", {})
    return set(parts.get("held", [])), set(parts.get("restoring", [])), status


def settled(instances, partitions):
    seen = []
    for s in instances:
        s.check_running()
        h = held(s)
        if h is None or h[1] or h[2] != 200:
            return False
        seen.append(h[0])
    return sum(len(h) for h in seen) == partitions and len(set().union(*seen)) == partitions


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100.0 * (len(values) - 1))))]


def takeover_mode(args, d):
    lines = generate(d, args.events + args.rate * 120, args.seed)
    head, tail = split(lines, args.rate * 120 / (args.events + args.rate * 120))
    broker = KafkaBroker(args.partitions, KAFKA_VERSION)
    live = {}
    try:
        b = broker.bootstrap
        extra = serve_args(args, d)
        dirs = {n: os.path.join(d, n) for n in ("a", "b")}
        produce_lines(d, b, head, "head")
        live["a"] = Serve(b, dirs["a"], extra=extra)
        wait_until(lambda: live["a"].metric("painpoint_events_stored_total", 0)
                   >= sum(len(p) for p in head.values()), 900, "A stores the events", 1)
        log("A stored %d events on %d partitions" % (live["a"].metric("painpoint_store_events"),
                                                     args.partitions))
        with Trickle(d, b, tail, args.rate):
            time.sleep(3)
            # A's own start (empty partitions, restored cold) is no takeover: read after it.
            a_from = os.path.getsize(dirs["a"] + ".log")
            live["b"] = Serve(b, dirs["b"], extra=extra)
            wait_until(lambda: settled(live.values(), args.partitions) and held(live["b"])[0],
                       300, "B joined", 0.5)
            log("B joined: holds %s" % sorted(held(live["b"])[0]))
            time.sleep(5)
            assert live["b"].stop() == 0
            del live["b"]
            wait_until(lambda: settled(live.values(), args.partitions), 300, "B left", 0.5)
            log("B stopped: A holds every partition")
            time.sleep(5)
            live["b"] = Serve(b, dirs["b"], extra=extra)
            wait_until(lambda: settled(live.values(), args.partitions) and held(live["b"])[0],
                       300, "B joined again", 0.5)
            log("B joined again: holds %s" % sorted(held(live["b"])[0]))
            time.sleep(5)
        for s in live.values():
            s.stop()
        live.clear()
    finally:
        for s in live.values():
            s.stop(sig=signal.SIGKILL)
        broker.stop()
    with open(dirs["a"] + ".log") as f:
        f.seek(a_from)
        text = f.read()
    with open(dirs["b"] + ".log") as f:
        text += f.read()
    taken = TAKEOVER.findall(text)
    resumed = RESUMED.findall(text)
    print("| takeover | partitions | first batch p50 s | p99 s | max s | input resumed p50 s | "
          "p99 s | restore p50 s | p99 s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in ("cold", "warm"):
        t = [float(x[2]) for x in taken if x[1] == kind]
        u = [float(x[3]) for x in resumed if x[1] == kind]
        r = [float(x[3]) for x in taken if x[1] == kind]
        if not t:
            print("| %s | 0 | | | | | | | |" % kind)
            continue
        print("| %s | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |"
              % (kind, len(t), percentile(t, 50), percentile(t, 99), max(t), percentile(u, 50),
                 percentile(u, 99), percentile(r, 50), percentile(r, 99)))


def serve_pid_cpu(pid):
    """user + sys seconds of a live process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def instances_mode(args, d):
    lines = generate(d, args.events, args.seed)
    rows = []
    for count in [int(x) for x in args.instances.split(",")]:
        broker = KafkaBroker(args.partitions, KAFKA_VERSION)
        live = []
        try:
            b = broker.bootstrap
            if not args.settle_first:
                produce_lines(d, b, lines, "all-%d" % count)
            load = os.getloadavg()[0]
            for i in range(count):
                extra = serve_args(args, d, ["--set", "kafka.group_instance_id=bench-%d" % i])
                live.append(Serve(b, os.path.join(d, "n%d-%d" % (count, i)), extra=extra))
            if args.settle_first:
                wait_until(lambda: settled(live, args.partitions)
                           and all(held(s)[0] for s in live), 300, "instances settled", 0.5)
                produce_lines(d, b, lines, "all-%d" % count)
            first = last = None
            cpu = {}
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                stored = 0
                for s in live:
                    s.check_running()
                    stored += s.metric("painpoint_events_stored_total", 0) or 0
                now = time.monotonic()
                if first is None and stored > 0:
                    first = now
                if stored >= args.events:
                    last = now
                    break
                time.sleep(0.1)
            assert last is not None, "stored %d of %d" % (stored, args.events)
            for s in live:
                cpu[s.proc.pid] = serve_pid_cpu(s.proc.pid)
            per_instance = [s.metric("painpoint_events_stored_total", 0) for s in live]
            rate = args.events / (last - first)
            total_cpu = sum(cpu.values())
            rows.append((count, rate, last - first, total_cpu, per_instance, load))
            log("%d instances: %.0f events/s (%.1f s first to last stored), CPU %.1f s = %.1f "
                "us/event; per instance %s" % (count, rate, last - first, total_cpu,
                                               total_cpu * 1e6 / args.events, per_instance))
        finally:
            for s in live:
                s.stop()
            broker.stop()
    print("| instances | events/s | first -> last stored s | serve CPU s (all) | CPU us/event | "
          "events per instance | load at start |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for count, rate, secs, cpu, per, load in rows:
        print("| %d | %.0f | %.1f | %.1f | %.1f | %s | %.1f |"
              % (count, rate, secs, cpu, cpu * 1e6 / args.events,
                 " / ".join("%d" % x for x in per), load))


def main():
    args = parse_args()
    log("binary %s, %s, %d events, %d partitions, Apache Kafka %s, load %.1f"
        % (os.environ["PAINPOINT_BIN"], args.mode, args.events, args.partitions, KAFKA_VERSION,
           os.getloadavg()[0]))
    d = tempfile.mkdtemp(prefix="painpoint-scaleout-")
    try:
        {"restore": restore_mode, "takeover": takeover_mode,
         "instances": instances_mode}[args.mode](args, d)
    finally:
        if os.environ.get("PAINPOINT_KEEP"):
            log("kept %s" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
