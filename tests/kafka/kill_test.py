"""Issue 17's kill test, on Apache Kafka (PAINPOINT_TEST_KAFKA=<version>): three `painpoint serve`
instances with `changelog.enabled`, static membership (`kafka.group_instance_id`) and forwarding
(`--advertise`, `--forward-requests`) share the partitions of painpoint.feedback-by-product while
N distinct events plus ~5% redelivered copies are produced throughout the run (products spread
so that every partition gets several). Meanwhile, at seeded random moments: one instance (the
victim) is SIGKILLed K times and restarted each time (same data directory, port and instance
id, like a pod); a fourth instance is added; one instance other than the victim is removed
(SIGTERM, must exit 0, not restarted); with --pauses P, the victim is also SIGSTOPped P times for
longer than its session timeout and then SIGCONTed (a "zombie": the group gives its partitions
to the others, whose restores fence its changelog writers while it still holds batches).

End state, once the input is drained, read from each partition's holder (/readyz lists what
each instance holds; requests carry X-Painpoint-Forwarded so that each answers from its own
store): every distinct event is stored exactly once across the instances and is a member of
exactly one active pain point, the counts add up (none lost, none double-counted), no pain
point is active on two instances; on painpoint.summaries versions never go down per key (but
for records created within STOPPED_SENDS before a SIGSTOP, which are reported), the
latest record per key equals the holder's API, and every other key is MERGED; every remaining
instance's (merged) /v1/products gives the same answer, with every event. While an instance
starts, a product request about a partition it is restoring is answered 503 with Retry-After.
Prints the takeover times (assignment -> input resumed -> first batch committed) p50/p99, warm
and cold, from the instances' logs.

The seed is printed; --seed S or PAINPOINT_FAULT_SEED=S replays the input and the schedule
(timing still varies with the machine). scripts/soak.sh --instances 3 runs the long form.

With --instances N, N instances start instead of three (one more is added, one removed).

usage: kill_test.py PATH/TO/painpoint [--events N] [--kills K] [--pauses P] [--instances N]
                    [--partitions P] [--window S] [--seed S]
"""
import argparse
import collections
import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault"))
import faultlib  # noqa: E402
from faultlib import log  # noqa: E402
from harness import (KAFKA_VERSION, KafkaBroker, Serve, free_port, read_summaries,  # noqa: E402
                     wait_until, workdir)
from forwarding_real_test import murmur2  # noqa: E402
from takeover_test import RESUMED, TAKEOVER, held as takeover_held  # noqa: E402

FORWARDED = "X-Painpoint-Forwarded"
# Past serve's session.timeout.ms (10 s), with time for the group to move the partitions.
PAUSE_SECONDS = 16.0
AFTER_PAUSE_SECONDS = 4.0
# Records created this long before a SIGSTOP may still sit in the producer's queue (linger 5 ms,
# plus requests waiting behind those in flight): they go out when the process runs again.
STOPPED_SENDS = 0.5
FENCED = ("was taken over by another owner (fenced)", "another owner fenced it")


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("painpoint")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--pauses", type=int, default=0,
                    help="times the victim is SIGSTOPped past its session timeout")
    ap.add_argument("--partitions", type=int, default=12, help="per topic")
    ap.add_argument("--instances", type=int, default=3,
                    help="instances at the start (one more is added, one removed)")
    ap.add_argument("--window", type=float, default=None,
                    help="seconds over which the input is produced and the faults happen "
                         "(default max(40, events / 5000))")
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("PAINPOINT_FAULT_SEED", "0")) or None)
    return ap.parse_args()


class Cluster:
    """The partition arithmetic and the local (not forwarded) reads of the end-state check."""

    def __init__(self, partitions):
        self.partitions = partitions

    def partition_of(self, product):
        return (murmur2(product.encode()) & 0x7FFFFFFF) % self.partitions

    @staticmethod
    def local(serve, path, timeout=60):
        """(status, headers, body) of GET `path`, answered by `serve` itself (loop-guard
        header); status None when serve does not answer."""
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (serve.port, path),
                                     headers={FORWARDED: "kill-test"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()
        except (urllib.error.URLError, ConnectionError, OSError):
            return None, {}, ""

    def local_json(self, serve, path):
        status, _h, body = self.local(serve, path)
        assert status == 200, (serve.port, path, status, body[:500])
        return json.loads(body)

    held = staticmethod(takeover_held)

    def settled(self, instances):
        """Every instance ready, each partition held by exactly one, nothing restoring."""
        seen = []
        for s in instances:
            s.check_running()
            h = self.held(s)
            if h is None or h[1] or s.get("/readyz")[0] != 200:
                return False
            seen.append(h[0])
        return (len(set().union(*seen)) == self.partitions
                and sum(len(h) for h in seen) == self.partitions)

    def pages(self, serve, path, field):
        items, cursor = [], ""
        while True:
            sep = "&" if "?" in path else "?"
            page = self.local_json(serve, path + (sep + "cursor=" + urllib.parse.quote(cursor)
                                                  if cursor else ""))
            items += page.get(field, [])
            cursor = page.get("nextCursor", "")
            if not cursor:
                return items

    def own_products(self, serve):
        partitions = self.held(serve)[0]
        return [p for p in self.local_json(serve, "/v1/products")["products"]
                if self.partition_of(p["productId"]) in partitions]

    def stored_count(self, instances):
        """Events in the products of the partitions each instance holds, summed."""
        return sum(int(p.get("eventCount", 0)) for s in instances for p in self.own_products(s))

    def owned_state(self, serve):
        """The active pain points of the products whose partition `serve` holds (a partition
        given up earlier stays on disk, not counted), and how often each event is a member."""
        active, members = {}, collections.Counter()
        for product in self.own_products(serve):
            path = "/v1/products/%s/pain-points?sort=events&limit=500" % urllib.parse.quote(
                product["productId"])
            for p in self.pages(serve, path, "painPoints"):
                active[p["id"]] = p
                events = self.pages(serve, "/v1/pain-points/%s/events?limit=500" % p["id"],
                                    "events")
                assert len(events) == int(p.get("eventCount", 0)), (p["id"], len(events), p)
                members.update(e["eventId"] for e in events)
        return active, members


class Instance:
    """One `serve` "pod": its name is its group.instance.id; data directory, HTTP port and
    advertised address stay the same across restarts."""

    def __init__(self, name, brokers, d, config):
        self.name, self.brokers, self.config = name, brokers, config
        self.dir = os.path.join(d, name)
        self.port = free_port()
        self.serve = None

    def start(self):
        self.serve = Serve(self.brokers, self.dir, port=self.port, extra=[
            "--config", self.config, "--set", "kafka.group_instance_id=painpoint-" + self.name,
            "--advertise", "127.0.0.1:%d" % self.port, "--forward-requests"])
        return self.serve

    def stop(self, sig):
        return self.serve.stop(sig=sig)


class RestoringProbe:
    """While `seconds` pass after a start: whenever /readyz lists a partition as restoring both
    before and after a (local) request about one of its products, that request must have been
    answered 503 with Retry-After, and /readyz 503."""

    def __init__(self, cluster, serve, products, seconds=15):
        self.cluster, self.serve, self.seconds = cluster, serve, seconds
        self.product_of = {}
        for p in products:
            self.product_of.setdefault(cluster.partition_of(p), p)
        self.checked, self.errors = 0, []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        end = time.monotonic() + self.seconds
        while time.monotonic() < end and self.serve.proc.poll() is None:
            before = self.cluster.held(self.serve)
            if not before or not before[1]:
                time.sleep(0.01)
                continue
            p = min(before[1])
            path = "/v1/products/%s/pain-points" % urllib.parse.quote(self.product_of[p])
            status, headers, _body = self.cluster.local(self.serve, path, timeout=5)
            retry = headers.get("Retry-After") if headers else None
            ready = self.serve.get("/readyz")[0]
            after = self.cluster.held(self.serve)
            if status is not None and after and p in after[1]:
                self.checked += 1
                if status != 503 or retry != "1" or ready != 503:
                    self.errors.append((p, self.product_of[p], status, retry, ready))

    def join(self):
        self.thread.join()
        assert not self.errors, self.errors
        return self.checked


def plan(rng, kills, window, pauses=0):
    """The seeded schedule: [(seconds after the input starts, action, extra)], action "kill",
    "pause", "add" or "remove". About 30% of the kills have time None instead: they land `extra`
    seconds after the victim's previous start (during its group join and restore) and restart it
    at once; for the others `extra` is the restart's delay (for a pause, unused)."""
    actions = ["kill"] * kills + ["pause"] * pauses + ["add", "remove"]
    rng.shuffle(actions)
    times = sorted(rng.uniform(0.05, 0.85) * window for _ in actions)
    out = []
    for t, action in zip(times, actions):
        if action == "kill" and out and rng.random() < 0.3:
            out.append((None, action, rng.uniform(0.3, 3.0)))
        else:
            out.append((t, action, rng.uniform(0.0, 1.0)))
    return out


def spread_check(cluster, products):
    counts = collections.Counter(cluster.partition_of(p) for p in products)
    assert len(counts) == cluster.partitions, (
        "products %d cover only partitions %s" % (len(products), sorted(counts)))
    return counts


def percentile(values, q):
    """Nearest rank."""
    values = sorted(values)
    return values[max(0, math.ceil(q / 100 * len(values)) - 1)]


def logged(log_paths, pattern, after, since):
    """pattern's matches (partition, warm/cold, seconds...) of the assignments made at or after
    `since` (epoch seconds), the line's time less its group `after` (seconds after the
    assignment); spdlog's timestamps are in local time, as time.mktime reads them."""
    out = []
    for path in log_paths:
        with open(path, errors="replace") as f:
            for line in f:
                m = pattern.search(line)
                if not m or not line.startswith("[20"):
                    continue
                stamp = time.mktime(time.strptime(line[1:20], "%Y-%m-%d %H:%M:%S"))
                if stamp + float(line[20:24]) - float(m[after]) >= since:
                    out.append((int(m[1]), m[2], float(m[3]), float(m[4])))
    return out


def report_takeovers(log_paths, since):
    """The takeovers assigned from `since` on (the input's start: the first assignments wait
    for events that are not produced yet)."""
    times = logged(log_paths, TAKEOVER, 3, since)
    resumed = logged(log_paths, RESUMED, 4, since)
    for kind in ("warm", "cold"):
        t = [x[2] for x in times if x[1] == kind]
        u = [x[3] for x in resumed if x[1] == kind]
        r = [x[2] for x in resumed if x[1] == kind]
        if not u:
            log("takeover (%s): none" % kind)
            continue
        log("takeover (%s): %d restores, %d first batches; assignment -> input resumed p50 %.3f s "
            "p99 %.3f s (restore p50 %.3f s p99 %.3f s); assignment -> first batch committed "
            "p50 %.3f s p99 %.3f s" % (
                kind, len(u), len(t), percentile(u, 50), percentile(u, 99), percentile(r, 50),
                percentile(r, 99), percentile(t, 50) if t else -1, percentile(t, 99) if t else -1))
    return times


class Run:
    """The instances and the faults of one run."""

    def __init__(self, cluster, brokers, d, config, products, rng, count):
        self.cluster, self.products, self.rng = cluster, products, rng
        names = [chr(ord("a") + k) for k in range(count + 1)]
        self.instances = {n: Instance(n, brokers, d, config) for n in names}
        self.initial, self.added = names[:-1], names[-1]
        self.live, self.probes = {}, []
        self.victim = rng.choice(self.initial)
        self.kills = 0
        self.pauses = 0
        self.stopped_at = []  # epoch seconds of each SIGSTOP

    def start(self, name):
        serve = self.instances[name].start()
        self.live[name] = self.instances[name]
        self.probes.append(RestoringProbe(self.cluster, serve, self.products))
        return serve

    def check_running(self):
        for inst in self.live.values():
            inst.serve.check_running()

    def kill(self, restart_delay):
        inst = self.instances[self.victim]
        inst.stop(signal.SIGKILL)
        self.kills += 1
        time.sleep(restart_delay)
        self.start(self.victim)
        return "SIGKILL %s, restarted %.2f s later" % (self.victim, restart_delay)

    def pause(self):
        """Once the victim processes partitions: SIGSTOP past the session timeout (static members
        are expelled only then), SIGCONT, and a few seconds for it to meet the fence before the
        next fault."""
        inst = self.instances[self.victim]

        def processing():
            h = self.cluster.held(inst.serve)
            return h is not None and h[0] and not h[1]
        wait_until(processing, 60, "%s processes partitions" % self.victim, interval=0.2)
        self.stopped_at.append(time.time())
        inst.serve.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(PAUSE_SECONDS)
        finally:
            inst.serve.proc.send_signal(signal.SIGCONT)
        time.sleep(AFTER_PAUSE_SECONDS)
        self.pauses += 1
        return "SIGSTOP %s for %.0f s, then SIGCONT" % (self.victim, PAUSE_SECONDS)

    def add(self):
        self.start(self.added)
        return "%s added" % self.added

    def remove(self):
        name = self.rng.choice(sorted(n for n in self.live if n != self.victim))
        inst = self.live.pop(name)
        # As an operator would: a running instance. One SIGTERMed before its handlers are
        # installed (milliseconds after the add, when pauses delay the schedule) just dies.
        wait_until(lambda: inst.serve.get("/healthz")[0] == 200, 60, "%s answers" % name,
                   interval=0.1)
        rc = inst.stop(signal.SIGTERM)
        assert rc == 0, "%s exited %s on SIGTERM:\n%s" % (name, rc, inst.serve.tail())
        return "%s removed (SIGTERM, exit 0)" % name

    def execute(self, schedule, producer, t0):
        """Runs `schedule` (plan()) against the live instances, checking that none exits on its
        own meanwhile."""
        last_start = t0
        for k, (at, action, extra) in enumerate(schedule):
            if at is None:
                due = last_start + extra
                when = "%.2f s after the victim's last start" % extra
            else:
                due = t0 + at
                when = "at %.1f s" % at
            while time.monotonic() < due:
                self.check_running()
                time.sleep(min(0.1, max(0.0, due - time.monotonic())))
            self.check_running()
            if action == "kill":
                what = self.kill(0.0 if at is None else extra)
                last_start = time.monotonic()
            elif action == "pause":
                what = self.pause()
            else:
                what = self.add() if action == "add" else self.remove()
            log("fault %d/%d %s: %s; live %s (%s)" % (
                k + 1, len(schedule), when, what, "".join(sorted(self.live)),
                "events still flowing" if producer._thread.is_alive()  # noqa: SLF001
                else "producer done"))


def wait_stored(cluster, live, count, stall=30):
    """Waits until the holders store `count` events, or until their count has not moved for
    `stall` seconds with nothing left to consume (then check_events() says what is missing)."""
    last = [None, time.monotonic()]

    def done():
        if not cluster.settled(live.values()):
            return False
        stored = cluster.stored_count(live.values())
        if stored != last[0]:
            last[:] = [stored, time.monotonic()]
        if stored >= count:
            return True
        idle = all(s.metric('painpoint_consumer_lag{stage="aggregator"}', -1) == 0
                   for s in live.values())
        return idle and time.monotonic() - last[1] > stall
    wait_until(done, 120 + count / 2000, "%d events stored across the instances" % count,
               interval=1)


def check_events(cluster, live, ids):
    """Each distinct event stored once across the holders and in exactly one active pain point;
    returns {instance: active pain points}."""
    state = {n: cluster.owned_state(s) for n, s in live.items()}
    members = collections.Counter()
    for _active, m in state.values():
        members.update(m)
    seen = collections.Counter(pid for active, _m in state.values() for pid in active)
    counted = sum(int(p.get("eventCount", 0)) for active, _m in state.values()
                  for p in active.values())
    numbers = {"distinct": len(ids), "sum_of_counts": counted,
               "stored": cluster.stored_count(live.values()),
               "lost": len(ids - set(members)), "unknown": len(set(members) - ids),
               "in_several_pain_points": sum(1 for c in members.values() if c > 1),
               "pain_points_on_several_instances": sum(1 for c in seen.values() if c > 1),
               "pain_points": {n: len(s[0]) for n, s in state.items()}}
    log("end state:", json.dumps(numbers))
    assert numbers["stored"] == len(ids) and counted == len(ids), numbers
    assert numbers["lost"] == 0 and numbers["unknown"] == 0, numbers
    assert numbers["in_several_pain_points"] == 0, numbers
    assert numbers["pain_points_on_several_instances"] == 0, numbers
    return {n: s[0] for n, s in state.items()}


def check_summaries(brokers, pp, json_format, active_by_instance, stopped_at=()):
    """Versions only grow per key, except for records created within STOPPED_SENDS before a
    SIGSTOP (handed to the stopped instance's producer and sent when it ran again, after the
    new owner's: docs/api.md); the latest record per key equals the holder's API; every other
    key's latest record is MERGED."""
    records = read_summaries(brokers, pp, timeout=300)
    excused = []
    latest, regressions = faultlib.summary_versions(
        records, excused=excused,
        excuse=lambda ts: ts is not None and any(
            t - STOPPED_SENDS <= ts / 1000 <= t for t in stopped_at))
    if excused:
        log("painpoint.summaries: %d records created just before a SIGSTOP went out after newer "
            "ones, e.g. %s" % (len(excused), excused[:3]))
    differ, active_ids = [], set()
    for name, active in active_by_instance.items():
        for pid, p in active.items():
            active_ids.add(pid)
            api = json_format.ParseDict(p, pp.PainPointSummary())
            if latest.get(pid) != api:
                differ.append("%s on %s: topic v%s, API v%s" % (
                    pid, name, latest[pid].version if pid in latest else "-", p.get("version")))
    stray = ["%s v%d %s" % (k, s.version, pp.Status.Name(s.status)) for k, s in latest.items()
             if k not in active_ids and s.status != pp.STATUS_MERGED]
    problems = {"versions going down": regressions, "latest differs from the holder's API": differ,
                "neither active nor MERGED": stray}
    report = ["%d %s, e.g. %s" % (len(v), k, v[:5]) for k, v in problems.items() if v]
    assert not report, "painpoint.summaries:\n" + "\n".join(report)
    log("painpoint.summaries: %d records, %d keys (%d active): versions grow per key, latest per "
        "key equals the holder's API, the others MERGED" % (len(records), len(latest),
                                                           len(active_ids)))


def check_product_lists(live, ids, products):
    """Every instance's /v1/products (merged across the instances) is the same and has every
    product and event. The owners each instance forwards to are read once a second, so a
    difference right after the last move is retried for a while."""
    def lists():
        out = {}
        for n, s in live.items():
            status, body = s.get("/v1/products", timeout=60)
            out[n] = (status, json.loads(body) if status == 200 else body)
        return out
    deadline = time.monotonic() + 20
    while True:
        got = lists()
        answers = list(got.values())
        same = all(a == answers[0] for a in answers) and answers[0][0] == 200
        if same or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert same, "the instances' /v1/products differ: %s" % {
        n: (st, [(p["productId"], p.get("eventCount")) for p in b["products"]][:20]
            if st == 200 else b) for n, (st, b) in got.items()}
    listed = answers[0][1]["products"]
    total = sum(int(p.get("eventCount", 0)) for p in listed)
    assert total == len(ids) and {p["productId"] for p in listed} == set(products), (
        total, len(listed))
    log("/v1/products: the same on %s: %d products, %d events" % (
        ", ".join(sorted(live)), len(listed), total))


def main():
    args = parse_args()
    assert args.instances >= 2, "--instances: at least 2 (one of them is removed)"
    assert KAFKA_VERSION, "needs PAINPOINT_TEST_KAFKA (Apache Kafka; see tests/kafka/README.md)"
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(seed)
    window = args.window or max(40.0, args.events / 5000)
    log("seed %d (--seed %d or PAINPOINT_FAULT_SEED=%d replays the input and the schedule)"
        % (seed, seed, seed))
    started = time.monotonic()
    cluster = Cluster(args.partitions)
    with workdir() as d:
        faultlib.protobuf_module(d)
        from painpoint.v1 import pain_point_pb2 as pp  # noqa: E402
        from google.protobuf import json_format  # noqa: E402

        files, ids, messages = faultlib.make_input(d, args.events, seed)
        products = set()
        for path, _count in files.values():
            with open(path) as f:
                products.update(json.loads(line)["productId"] for line in f if line.strip())
        counts = spread_check(cluster, products)
        log("input: %d distinct events, %d messages, %d products over %d partitions (%d-%d "
            "each), produced over %.0f s" % (len(ids), messages, len(products), args.partitions,
                                             min(counts.values()), max(counts.values()), window))
        config = faultlib.write_serve_config(
            d, "changelog.enabled = true\naggregator.checkpoint_events = 2000\n")
        broker = KafkaBroker(args.partitions, KAFKA_VERSION)
        run = None
        producer = faultlib.BackgroundProducer()
        try:
            with producer:
                brokers = broker.bootstrap
                run = Run(cluster, brokers, d, config, sorted(products), rng, args.instances)
                schedule = plan(rng, args.kills, window, args.pauses)
                log("victim %s; schedule %s" % (run.victim, schedule))
                for name in run.initial:
                    run.start(name)
                wait_until(lambda: cluster.settled([i.serve for i in run.live.values()]), 90,
                           "%s hold the partitions" % ", ".join(run.initial), interval=0.5)
                chunks = max(20, int(window))
                t0, input_started = time.monotonic(), time.time()
                log("input starts (epoch %.3f)" % input_started)
                producer.start(brokers, files, chunks=chunks, pause=window / chunks * 0.5)
                run.execute(schedule, producer, t0)
                producer.join()
                log("input produced in %.1f s" % (time.monotonic() - t0))
                checked = [probe.join() for probe in run.probes]
                log("product requests answered while their partition restored (all 503 with "
                    "Retry-After): %s" % checked)
            live = {n: i.serve for n, i in run.live.items()}
            wait_stored(cluster, live, len(ids))
            for s in live.values():
                s.wait_published(timeout=120)
            log("drained %.1f s after the input started" % (time.monotonic() - t0))
            active = check_events(cluster, live, ids)
            check_summaries(brokers, pp, json_format, active, run.stopped_at)
            check_product_lists(live, ids, products)
            for s in live.values():
                s.stop_cleanly()
            run.live.clear()
        finally:
            for inst in (run.live.values() if run else ()):
                inst.stop(signal.SIGKILL)
            broker.stop()
            # Kept on failure too: that is when they are needed.
            if os.environ.get("PAINPOINT_KEEP_LOGS") and run:
                for inst in run.instances.values():
                    if inst.serve:
                        shutil.copy(inst.serve.log_path, os.environ["PAINPOINT_KEEP_LOGS"])
        logs = [i.serve.log_path for i in run.instances.values() if i.serve]
        # A loss to retention would be a set-up problem (the input must outlive the run), not
        # a takeover bug: say so plainly.
        losses = [line for path in logs for line in faultlib.retention_losses(path)]
        assert not losses, "input lost to retention:\n" + "\n".join(losses[:5])
        times = report_takeovers(logs, input_started)
        fenced = [line.strip() for path in logs for line in open(path, errors="replace")
                  if any(f in line for f in FENCED)]
        log("fenced commits or restores: %d%s" % (len(fenced), "".join(
            "\n    " + line for line in fenced[:8])))
        # A zombie that resumes with a batch in hand must have met the fence: otherwise the
        # pauses did not test what they are for.
        assert fenced or not args.pauses, "no fenced commit or restore after %d pauses" % (
            args.pauses)
        assert any(x[1] == "cold" for x in times) and any(x[1] == "warm" for x in times), times
    log("kill_test: seed %d, %d events (%d messages), %d kills, %d pauses, %d instances at the "
        "end, lost 0, double-counted 0, %.0f s" % (seed, len(ids), messages, run.kills,
                                                    run.pauses, len(live),
                                                    time.monotonic() - started))
    print("kill_test: OK")


if __name__ == "__main__":
    main()
