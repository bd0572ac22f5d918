#!/usr/bin/python3
"""Produce-to-summary latency of a running `painpoint serve` at a fixed offered rate.

A rate-limited producer sends protobuf FeedbackEvents (texts from bench/gen_events.py) to the three
input topics with occurred_at = the send time; a consumer reads painpoint.summaries from the
beginning. Only meaningful on a fresh broker/topics: every summary must come from this run.

Per event (the figure that counts): once serve has stored everything and published its outbox, the
member events of every published pain point are listed through the HTTP API
(GET /v1/pain-points/{id}/events, which lists a survivor's own members and those merged into it).
An event's latency is

    the CreateTime of the first summary record that reflects it - its occurred_at (send time)

where a record of pain point P reflects event e when P is the pain point e joined (or one it was
merged into, from the merge on) and the record's last_seen >= e's occurred_at. Coalescing is
included: an event that arrives just after a pain point was published waits for the next record.
When a survivor lists events of pain points merged into it, the one an event joined is known only
up to the family members that could hold it (the first record reaching its time added it: one new
event at exactly that time, or several); the largest of the candidates' delivery times is taken
(an upper bound) and the number of such events printed.
Events of candidates never promoted to pain points are not published at all; they are counted,
not timed.

The first --warmup seconds (default 5) of sending are offered at the same rate but left out of
the percentiles: they measure serve's start from an empty store (first RocksDB files, first
batches, every pain point new), not its steady state. The whole run is printed as well.

Per record (printed for comparison): the age of the newest event of each record that brought a
new event (its last_seen advanced), i.e. the latency of the newest event only.

last_seen keeps occurred_at to the microsecond; CreateTime has milliseconds. Both clocks are this
machine's (everything runs on 127.0.0.1).

  latency.py --brokers 127.0.0.1:PORT --metrics-url http://127.0.0.1:PORT/metrics --rate 10000 --duration 30
"""
import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_events import TOPIC_OF, Banking77Maker, EventMaker, default_banking77_dir  # noqa: E402


def compile_protos(out_dir):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run(["protoc", "-I", root, "--python_out", out_dir,
                    "painpoint/v1/feedback.proto", "painpoint/v1/pain_point.proto"], check=True)
    sys.path.insert(0, out_dir)
    from painpoint.v1 import feedback_pb2, pain_point_pb2
    return feedback_pb2, pain_point_pb2


def metrics(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read().decode()
    except OSError:
        return {}
    values = {}
    for line in body.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        name = name.split("{", 1)[0]
        values[name] = values.get(name, 0.0) + float(value)
    return values


def micros(timestamp):
    # Serve keeps occurred_at to the microsecond: compare in whole microseconds.
    return timestamp.seconds * 1_000_000 + timestamp.nanos // 1000


def seconds(timestamp):
    return micros(timestamp) / 1e6


def newest_event_ages(records, merged_status):
    """Record time - last_seen for every record whose last_seen moved past its predecessor's."""
    ages = []
    for recs in records.values():
        previous = None
        for ts, s in recs:
            last_seen = seconds(s.last_seen)
            if s.status != merged_status and (previous is None or last_seen > previous):
                ages.append(ts - last_seen)
            previous = max(previous or last_seen, last_seen)
    ages.sort()
    return ages


def list_members(api, pain_point_id):
    ids, cursor = [], ""
    while True:
        url = "%s/v1/pain-points/%s/events?limit=500" % (api, pain_point_id)
        if cursor:
            url += "&cursor=" + cursor
        with urllib.request.urlopen(url, timeout=30) as r:
            page = json.load(r)
        ids.extend(e["eventId"] for e in page.get("events", []))
        cursor = page.get("nextCursor", "")
        if not cursor:
            return ids


def event_latencies(records, sent_at, members_of, merged_status):
    """Per-event latency as the module docstring defines it.

    records: pain point id -> [(record time s, PainPointSummary)] in publishing order; sent_at:
    event id -> occurred_at in microseconds; members_of(id): the event ids GET .../events lists.
    Returns ([(latency s, waited as a candidate, occurred_at µs)], how many of them are upper
    bounds because of merges, events listed by no published pain point, listed events that no
    record reflects: a publishing bug, must be 0)."""
    merged_at, merged_into = {}, {}
    for pid, recs in records.items():
        for ts, s in recs:
            if s.status == merged_status and pid not in merged_at:
                merged_at[pid], merged_into[pid] = ts, s.merged_into

    def survivor_of(pid):
        for _ in range(64):
            if pid not in merged_into:
                return pid
            pid = merged_into[pid]
        return pid

    family = {}
    for pid in records:
        family.setdefault(survivor_of(pid), []).append(pid)

    # Per pain point: its non-MERGED records as (last_seen, record time).
    timeline = {pid: [(micros(s.last_seen), ts) for ts, s in recs if s.status != merged_status]
                for pid, recs in records.items()}

    def could_hold(pid, t):
        """Whether an event at t can be one of pid's own: the first record of pid (MERGED or not)
        whose last_seen reaches t must have added that event. One new event is the one at
        last_seen; two or more (or a merge into pid) leave the time open."""
        previous_count = 0
        for _, s in records[pid]:
            if micros(s.last_seen) >= t:
                added = s.event_count - previous_count
                return micros(s.first_seen) <= t and (added >= 2 or micros(s.last_seen) == t)
            previous_count = s.event_count
        return False

    def first_reflecting(pid, t, not_before):
        """(time, index) of pid's first record at or after not_before with last_seen >= t."""
        for index, (last_seen, ts) in enumerate(timeline[pid]):
            if last_seen >= t and ts >= not_before:
                return ts, index
        return None

    def delivery_if_joined(pid, t):
        """(record time, whether the event waited as a candidate) if the event joined pid.

        An event that its pain point's FIRST record delivers, and that is not that record's
        newest event, was there before the pain point was promoted: it waited for support."""
        joined, not_before = pid, 0.0
        for _ in range(64):
            found = first_reflecting(pid, t, not_before)
            if found is not None:
                ts, index = found
                waited = pid == joined and index == 0 and timeline[pid][0][0] != t
                return ts, waited
            if pid not in merged_into:
                return None
            not_before = merged_at[pid]
            pid = merged_into[pid]
        return None

    latencies, bounded, listed, unreflected = [], 0, set(), 0
    for survivor, members in family.items():
        if not timeline[survivor]:
            continue
        for event_id in members_of(survivor):
            t = sent_at.get(event_id)
            if t is None:
                continue
            listed.add(event_id)
            # A survivor's counts also grow by merges, which could_hold() takes as "open".
            candidates = [m for m in members if could_hold(m, t)] or [survivor]
            found = [d for d in (delivery_if_joined(m, t) for m in candidates) if d is not None]
            if not found:
                unreflected += 1
                continue
            if len(candidates) > 1:
                bounded += 1
            # The latest candidate; on a tie, "not waited", so the headline keeps the sample.
            ts, waited = max(found, key=lambda d: (d[0], not d[1]))
            latencies.append((ts - t / 1e6, waited, t))
    unpublished = len(sent_at) - len(listed)
    return latencies, bounded, unpublished, unreflected


def repartition_times(consumer_class, brokers, feedback_pb2, expected, timeout_s=120):
    """occurred_at (µs) -> CreateTime (s) of the event's record on painpoint.feedback-by-product:
    when ingest handed it to its producer, so the time before it is ingest's share."""
    c = consumer_class({"bootstrap.servers": brokers, "group.id": "bench-hops-%d" % os.getpid(),
                        "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["painpoint.feedback-by-product"])
    times, ev = {}, feedback_pb2.FeedbackEvent()
    deadline = time.monotonic() + timeout_s
    try:
        while len(times) < expected and time.monotonic() < deadline:
            for msg in c.consume(10000, 0.5):
                if msg.error():
                    continue
                ev.ParseFromString(msg.value())
                times[micros(ev.occurred_at)] = msg.timestamp()[1] / 1000.0
    finally:
        c.close()
    return times


def percentile(sorted_values, p):
    # Nearest rank: an observed value, no interpolation.
    return sorted_values[max(0, math.ceil(p / 100.0 * len(sorted_values)) - 1)]


def main():
    # Here, not at the top: tests import the measurement functions without a Kafka client.
    from confluent_kafka import Consumer, Producer
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--metrics-url", required=True)
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--products", type=int, default=100)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--workload", choices=["generated", "banking77"], default="generated")
    ap.add_argument("--banking77-dir", default=default_banking77_dir())
    ap.add_argument("--pb-dir", required=True)
    ap.add_argument("--warmup", type=float, default=5.0,
                    help="seconds of sending at the start left out of the percentiles")
    ap.add_argument("--api-url", default="",
                    help="serve's HTTP base URL (default: --metrics-url without /metrics)")
    ap.add_argument("--drain-timeout", type=float, default=300,
                    help="seconds to wait for serve to store and publish everything after sending")
    a = ap.parse_args()
    feedback_pb2, pain_point_pb2 = compile_protos(a.pb_dir)
    source_enum = {name: feedback_pb2.Source.Value(name) for name in TOPIC_OF}

    records = {}  # pain point id -> [(CreateTime s, summary)], in the order published
    last_record = [time.monotonic()]
    stop = threading.Event()
    consumer_error = []

    def consume():
        c = Consumer({"bootstrap.servers": a.brokers, "group.id": "bench-latency-%d" % os.getpid(),
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe(["painpoint.summaries"])
        try:
            while not stop.is_set():
                for msg in c.consume(1000, 0.2):
                    if msg.error():
                        continue
                    s = pain_point_pb2.PainPointSummary.FromString(msg.value())
                    last_record[0] = time.monotonic()
                    _, ts_ms = msg.timestamp()
                    records.setdefault(s.id, []).append((ts_ms / 1000.0, s))
        except Exception as e:  # surfaces in the main thread's report
            consumer_error.append(repr(e))
        finally:
            c.close()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()

    maker = (Banking77Maker(a.banking77_dir, a.products, seed=a.seed) if a.workload == "banking77"
             else EventMaker(a.products, seed=a.seed))
    delivery_errors = [0]

    def on_delivery(err, _msg):
        if err is not None:
            delivery_errors[0] += 1

    producer = Producer({"bootstrap.servers": a.brokers, "linger.ms": 5, "acks": "all",
                         "enable.idempotence": True})
    ev = feedback_pb2.FeedbackEvent()
    sent = 0
    sent_at = {}  # event id -> occurred_at (microseconds)
    start = time.monotonic()
    end = start + a.duration
    total = int(a.duration * a.rate)
    while sent < total:
        now = time.monotonic()
        due = total if now >= end else min(int((now - start) * a.rate) + 1, total)
        while sent < due:
            pid, source, text, acct, channel = maker.make()
            ev.Clear()
            ev.event_id = "lat-%d-%d" % (a.seed, sent)
            ev.source = source_enum[source]
            ev.product_id = pid
            ev.text = text
            ev.account_id = "acct-%d" % acct
            ev.account_arr_cents = maker.arr[acct]
            ev.channel = channel
            # The send time, so last_seen tells when the newest event of a summary was sent. Never
            # ahead of serve's clock (same machine), so validation's future-skew check passes.
            ns = time.time_ns()
            ev.occurred_at.FromNanoseconds(ns)
            sent_at[ev.event_id] = ns // 1000
            while True:
                try:
                    producer.produce(TOPIC_OF[source], ev.SerializeToString(), pid.encode(),
                                     on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.01)
            sent += 1
        producer.poll(0)
        time.sleep(0.001)
    send_seconds = time.monotonic() - start
    remaining = producer.flush(60)
    print("latency: offered %.0f events/s for %.0f s: sent %d in %.1f s (%.0f events/s), "
          "delivery errors %d, unflushed %d"
          % (a.rate, a.duration, sent, send_seconds, sent / send_seconds, delivery_errors[0],
             remaining), flush=True)

    # Done when serve stored every event and its outbox is empty, then a quiet spell longer than
    # the publisher's coalescing interval (250 ms by default) so the last coalesced records are in.
    deadline = time.monotonic() + a.drain_timeout
    stored = -1
    while time.monotonic() < deadline:
        m = metrics(a.metrics_url)
        stored = int(m.get("painpoint_store_events", -1))
        if stored >= sent and m.get("painpoint_outbox_pending", 1) == 0:
            break
        time.sleep(0.5)
    else:
        print("latency: WARNING: serve stored %d of %d or did not drain its outbox within %.0f s"
              % (stored, sent, a.drain_timeout), flush=True)
    quiet_deadline = time.monotonic() + 60
    while time.monotonic() - last_record[0] < 3 and time.monotonic() < quiet_deadline:
        time.sleep(0.2)
    stop.set()
    consumer.join(15)
    if consumer_error:
        print("latency: consumer failed:", consumer_error[0])
        return 1
    if not records:
        print("latency: no summary records received")
        return 1

    newest = newest_event_ages(records, pain_point_pb2.STATUS_MERGED)
    merged = sum(s.status == pain_point_pb2.STATUS_MERGED
                 for recs in records.values() for _, s in recs)
    api = a.api_url or a.metrics_url.rsplit("/metrics", 1)[0]
    try:
        per_event, bounded, unpublished, unreflected = event_latencies(
            records, sent_at, lambda pid: list_members(api, pid), pain_point_pb2.STATUS_MERGED)
    except OSError as e:
        print("latency: listing member events through %s failed: %s" % (api, e))
        return 1
    measured_from = min(sent_at.values()) + int(a.warmup * 1e6)
    joined_published = sorted(lat for lat, waited, t in per_event if not waited and t >= measured_from)
    whole_run = sorted(lat for lat, waited, _ in per_event if not waited)
    every = sorted(lat for lat, _, t in per_event if t >= measured_from)
    if not joined_published:
        print("latency: no event after the warm-up was found in a published summary")
        return 1
    print("latency produce->summary per event (first record reflecting it - occurred_at), events "
          "that joined a published pain point, after %.0f s of warm-up: %d events, p50 %.3f s, "
          "p99 %.3f s, max %.3f s"
          % (a.warmup, len(joined_published), percentile(joined_published, 50),
             percentile(joined_published, 99), joined_published[-1]))
    print("latency per event, the same over the whole run (warm-up included): %d events, p50 %.3f "
          "s, p99 %.3f s, max %.3f s"
          % (len(whole_run), percentile(whole_run, 50), percentile(whole_run, 99), whole_run[-1]))
    repartitioned = repartition_times(Consumer, a.brokers, feedback_pb2, len(sent_at))
    hops = [(repartitioned[t] - t / 1e6, lat - (repartitioned[t] - t / 1e6))
            for lat, waited, t in per_event
            if not waited and t >= measured_from and t in repartitioned]
    if hops:
        before = sorted(h[0] for h in hops)
        after = sorted(h[1] for h in hops)
        print("latency split of the same events (%d found on painpoint.feedback-by-product): send "
              "-> ingest's produce p50 %.3f s, p99 %.3f s; from there -> summary p50 %.3f s, p99 "
              "%.3f s" % (len(hops), percentile(before, 50), percentile(before, 99),
                          percentile(after, 50), percentile(after, 99)))
    print("latency per event after the warm-up, with the %d events that waited as candidates for "
          "support: p50 %.3f s, p99 %.3f s, max %.3f s; %d upper bounds (merged pain points); %d "
          "events in no published pain point (still emerging); %d listed but in no record (must "
          "be 0)"
          % (len(every) - len(joined_published), percentile(every, 50), percentile(every, 99),
             every[-1], bounded, unpublished, unreflected))
    print("latency per record, newest event only (%d records that brought a new event; %d merged "
          "records): p50 %.3f s, p99 %.3f s, max %.3f s"
          % (len(newest), merged, percentile(newest, 50), percentile(newest, 99), newest[-1]))
    print("stored %d of %d" % (stored, sent))
    return 0 if stored >= sent and delivery_errors[0] == 0 and not unreflected else 1


if __name__ == "__main__":
    sys.exit(main())
