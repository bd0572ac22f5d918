"""Shared pieces of the fault suites: input with duplicated event ids, and the end-state check
that proves nothing was lost or double-counted.

The check reads only what a user can read: the HTTP API of `painpoint serve` (products, pain
points, their member events) and painpoint.summaries through kcat. The suites run serve with
`cluster.min_support = 1`, so every stored event belongs to a published pain point at once; with the
default (3), events of emerging candidates are held internally and cannot be accounted for from
outside. Nothing else about the clustering changes.
"""
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import (PAINPOINT, SAMPLE_FEEDBACK, latest_per_key, log, produce,  # noqa: E402,F401
                     protobuf_module, read_summaries)

TOPICS = ("feedback.support", "feedback.sales", "feedback.customer")
SOURCE_TOPIC = {"SOURCE_SUPPORT": "feedback.support", "SOURCE_SALES": "feedback.sales",
                "SOURCE_CUSTOMER": "feedback.customer"}

# The fast static clustering (serve's default is semantic) unless a suite adds its own line.
SERVE_CONFIG = "cluster.encoder = static\ncluster.min_support = 1\n"


def write_serve_config(d, extra=""):
    """serve's config file for the fault suites: SERVE_CONFIG, then `extra` (more lines)."""
    path = os.path.join(d, "serve.conf")
    with open(path, "w") as f:
        f.write("# fault suites: every event joins a published pain point at once\n")
        f.write(SERVE_CONFIG)
        f.write(extra)
    return path


def make_input(d, n, seed, dup_fraction=0.05):
    """Writes N distinct events (scripts/sample_feedback.py; products sharded for large N, see
    below) plus round(N * dup_fraction) exact copies of random earlier events, each placed after
    its original in the same topic, as one JSONL file per input topic. Returns (files by topic,
    distinct ids, messages written)."""
    rng = random.Random(seed)
    lines = subprocess.run(["/usr/bin/python3", SAMPLE_FEEDBACK, "--events", str(n),
                            "--seed", str(seed), "--now", "2026-11-01T00:00:00Z"], check=True,
                           capture_output=True, text=True).stdout.splitlines()
    assert len(lines) == n, len(lines)
    by_topic = collections.defaultdict(list)
    ids = set()
    # Producers key by product, so one product fills one partition of every topic it reaches, and
    # the embedded broker keeps at most 5 MiB per partition. Large runs spread the three sample
    # products over more ids ("billing-s7"), one per 5,000 events, so that no partition overflows
    # while serve is down or behind.
    shards = max(1, n // 5_000)
    for line in lines:
        event = json.loads(line)
        ids.add(event["eventId"])
        shard = rng.randrange(shards)
        if shard:
            event["productId"] = "%s-s%d" % (event["productId"], shard)
            line = json.dumps(event)
        by_topic[SOURCE_TOPIC[event["source"]]].append(line)
    assert len(ids) == n, "sample_feedback.py repeated an id"
    dups = int(round(n * dup_fraction))
    inserts = collections.defaultdict(list)  # topic -> [(position, line)]
    topics = sorted(by_topic)
    for _ in range(dups):
        topic = rng.choice(topics)
        original = rng.randrange(len(by_topic[topic]))
        position = rng.randint(original + 1, len(by_topic[topic]))
        inserts[topic].append((position, by_topic[topic][original]))
    files = {}
    messages = 0
    for topic in topics:
        out = []
        pending = sorted(inserts[topic], key=lambda x: x[0])
        j = 0
        for i, line in enumerate(by_topic[topic] + [None]):
            while j < len(pending) and pending[j][0] == i:
                out.append(pending[j][1])
                j += 1
            if line is not None:
                out.append(line)
        path = os.path.join(d, "%s.jsonl" % topic)
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
        files[topic] = (path, len(out))
        messages += len(out)
    return files, ids, messages


def produce_all(brokers, files, chunks=1, pause=0.0, stop=None, hurry=None):
    """Produces every file with `painpoint produce`, the topics in parallel, each in `chunks`
    pieces `pause` seconds apart (so that input keeps arriving while serve runs). Once the event
    `hurry` is set, the remaining pieces follow without pauses. Raises if any line was not sent."""
    errors = []
    hurry = hurry or threading.Event()

    def one(topic, path, count):
        with open(path) as f:
            lines = f.readlines()
        step = max(1, (len(lines) + chunks - 1) // chunks)
        for k, start in enumerate(range(0, len(lines), step)):
            if stop is not None and stop.is_set():
                return
            part = "%s.part%d" % (path, k)
            with open(part, "w") as f:
                f.writelines(lines[start:start + step])
            out = produce(brokers, topic, part)
            want = len(lines[start:start + step])
            if out.returncode != 0 or ("sent %d," % want) not in out.stdout:
                errors.append("%s: %s %s" % (topic, out.stdout, out.stderr))
                return
            os.unlink(part)
            if pause:
                hurry.wait(pause)

    threads = [threading.Thread(target=one, args=(t, p, c)) for t, (p, c) in files.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


class BackgroundProducer:
    """produce_all() on a thread, so that input keeps arriving while serve runs, is killed or
    meets broker faults. Used as a context manager around a test, it asks the thread to stop after
    the piece in flight and waits for it however the test ends. Not thread-safe: one thread calls
    start(), join() and the context manager."""

    def __init__(self):
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self._errors = []
        self._thread = None

    def start(self, brokers, files, chunks, pause):
        """Starts produce_all(brokers, files, chunks, pause) on a new thread; returns at once."""
        def run():
            try:
                produce_all(brokers, files, chunks=chunks, pause=pause, stop=self._stop,
                            hurry=self._hurry)
            except BaseException as e:  # raised again by join(), in the test's thread
                self._errors.append(e)
        self._thread = threading.Thread(target=run)
        self._thread.start()

    def hurry(self):
        """The rest without pauses: for a test whose faults are over before the input is."""
        self._hurry.set()

    def join(self):
        """Waits until all is produced; raises what producing raised."""
        self._thread.join()
        if self._errors:
            raise self._errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return False


def retention_losses(log_path):
    """Lines in a serve log (every run appends to it) that report messages lost to retention."""
    with open(log_path, errors="replace") as f:
        return [line.strip() for line in f if "lost to retention" in line and "[error]" in line]


def dump_stacks(pid):
    """Every thread's stack of a (hung) process via gdb, if installed: for the failure report."""
    if shutil.which("gdb") is None:
        return "(gdb not installed: no stacks)"
    out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 15"],
                         capture_output=True, text=True, timeout=120)
    return "\n".join(line for line in out.stdout.splitlines()
                     if line.startswith(("Thread ", "#")))


def get_json(serve, path):
    status, body = serve.get(path, timeout=60)
    assert status == 200, (path, status, body[:500])
    return json.loads(body)


def summaries_diagnosis(serve, brokers, pb, active, records_read):
    """For a failure report: whether a second read of painpoint.summaries, a few seconds later,
    still disagrees (the records are missing, not just read too early), and what the publisher
    counted."""
    time.sleep(5)
    records = read_summaries(brokers, pb, timeout=300)
    latest = latest_per_key(records)
    still = sum(1 for pid, p in active.items()
                if pid not in latest or latest[pid].version != int(p.get("version", 0)))
    m = serve.metrics() or {}
    counters = {k: m.get(k) for k in ("painpoint_summaries_published_total",
                                      "painpoint_outbox_deleted_total",
                                      "painpoint_publish_failures_total",
                                      "painpoint_outbox_pending")}
    status, body = serve.get("/readyz")
    return ("diagnosis: first read %d records, second read 5 s later %d records with %d active "
            "pain points still behind; publisher %s; /readyz %s %s" % (
                records_read, len(records), still, counters, status, body[:300]))


def _timestamp(ts):
    """A record's timestamp (ms since the epoch, or None) as local time with milliseconds."""
    if not ts:
        return "no timestamp"
    return time.strftime("%H:%M:%S", time.localtime(ts / 1000)) + ".%03d" % (ts % 1000)


def summary_versions(records, excuse=None, excused=None):
    """The latest record per key of painpoint.summaries (the highest version), and every place
    where a key's version went down in its partition's order. records: read_summaries()'s
    (partition, offset, timestamp, key, summary) tuples. A going-down whose record's timestamp
    `excuse(ts)` accepts is appended to the list `excused` instead."""
    latest, last, regressions = {}, {}, []
    for p, o, ts, key, s in sorted(records, key=lambda r: (r[0], r[1])):
        if key in last and s.version < last[key]:
            what = "%s: v%d after v%d at %d@%d (%s)" % (key, s.version, last[key], p, o,
                                                        _timestamp(ts))
            (excused if excuse and excuse(ts) else regressions).append(what)
        last[key] = max(s.version, last.get(key, 0))
        if key not in latest or s.version >= latest[key].version:
            latest[key] = s
    return latest, regressions


def verify(serve, brokers, distinct_ids, pb, json_format):
    """The end state: the store holds exactly `distinct_ids`; every one is a member of exactly one
    active pain point; the pain points' counts add up to them; the latest record per key on
    painpoint.summaries equals what the API serves. Returns a dict of the measured numbers."""
    products = get_json(serve, "/v1/products")["products"]
    stored = sum(int(p.get("eventCount", 0)) for p in products)
    gauge = serve.metric("painpoint_store_events")
    active = {}
    for product in products:
        cursor = ""
        while True:
            page = get_json(serve, "/v1/products/%s/pain-points?sort=events&limit=500%s" % (
                urllib.parse.quote(product["productId"]),
                "&cursor=" + cursor if cursor else ""))
            for p in page.get("painPoints", []):
                active[p["id"]] = p
            cursor = page.get("nextCursor", "")
            if not cursor:
                break
    counted = sum(int(p.get("eventCount", 0)) for p in active.values())

    members = collections.Counter()
    for pid in active:
        cursor = ""
        listed = 0
        while True:
            page = get_json(serve, "/v1/pain-points/%s/events?limit=500%s" % (
                pid, "&cursor=" + cursor if cursor else ""))
            for e in page.get("events", []):
                members[e["eventId"]] += 1
                listed += 1
            cursor = page.get("nextCursor", "")
            if not cursor:
                break
        assert listed == int(active[pid].get("eventCount", 0)), (
            "pain point %s lists %d member events but counts %s" % (
                pid, listed, active[pid].get("eventCount")))

    lost = len(distinct_ids - set(members))
    unknown = len(set(members) - distinct_ids)
    in_several = sum(1 for c in members.values() if c > 1)
    double_counted = counted - len(distinct_ids) if counted > len(distinct_ids) else 0
    numbers = {"distinct": len(distinct_ids), "stored": stored, "store_gauge": gauge,
               "pain_points": len(active), "sum_of_counts": counted,
               "lost": lost, "unknown": unknown, "in_several_pain_points": in_several,
               "double_counted": double_counted}
    log("end state:", json.dumps(numbers))
    assert stored == len(distinct_ids), numbers
    assert gauge == len(distinct_ids), numbers
    assert lost == 0 and unknown == 0 and in_several == 0, numbers
    assert counted == len(distinct_ids), numbers

    # Every discrepancy is collected before failing, so that one run shows the whole picture.
    records = read_summaries(brokers, pb, timeout=300)
    latest, regressions = summary_versions(records)
    missing, differ = [], []
    for pid, p in active.items():
        if pid not in latest:
            missing.append(pid)
            continue
        api = json_format.ParseDict(p, pb.PainPointSummary())
        if latest[pid] != api:
            differ.append("%s: topic v%d, API v%s" % (pid, latest[pid].version, p.get("version")))
    merged, stray = 0, []
    for key, s in latest.items():
        if key in active:
            continue
        if s.status != pb.STATUS_MERGED:
            stray.append("%s: latest record v%d is %s but the API does not list it as active" % (
                key, s.version, pb.Status.Name(s.status)))
            continue
        merged += 1
        survivor = get_json(serve, "/v1/pain-points/" + key)
        if survivor["id"] not in active:
            stray.append("%s: merged, resolves to %s which is not active" % (key, survivor["id"]))
    problems = {"versions going down in offset order": regressions,
                "active pain points without a record": missing,
                "active pain points whose latest record differs from the API": differ,
                "keys neither active nor merged into an active one": stray}
    report = ["%d %s, e.g. %s" % (len(v), k, v[:3]) for k, v in problems.items() if v]
    if report:
        try:
            report.append(summaries_diagnosis(serve, brokers, pb, active, len(records)))
        except Exception as e:  # the discrepancy above is the failure; this only explains it
            report.append("diagnosis failed: %r" % e)
    assert not report, "painpoint.summaries disagrees with the store:\n" + "\n".join(report)
    numbers.update({"summary_records": len(records), "summary_keys": len(latest),
                    "merged": merged})
    log("painpoint.summaries: %d records, %d keys (%d active, %d merged): latest per key equals "
        "the API" % (len(records), len(latest), len(active), merged))
    return numbers
