#!/usr/bin/python3
"""Unit tests of bench/latency.py's per-event attribution (no Kafka, no serve).

Hand-built summary timelines check that each event is timed by the first record that reflects it,
that support waits and merges are classified as documented, and that republished records without
a new event do not count as newest-event samples."""
import os
import sys
import unittest
from types import SimpleNamespace

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "bench"))
import latency  # noqa: E402

ACTIVE, MERGED = 1, 2


def stamp(seconds):
    micros = round(seconds * 1e6)
    return SimpleNamespace(seconds=micros // 1_000_000, nanos=(micros % 1_000_000) * 1000)


def record(at, count, first, last, status=ACTIVE, into=""):
    return (at, SimpleNamespace(status=status, merged_into=into, event_count=count,
                                first_seen=stamp(first), last_seen=stamp(last)))


def micros(seconds):
    return round(seconds * 1e6)


class EventLatencies(unittest.TestCase):
    def run_case(self, records, sent, members):
        sent_at = {e: micros(t) for e, t in sent.items()}
        got, bounded, unpublished, unreflected = latency.event_latencies(
            records, sent_at, lambda pid: members[pid], MERGED)
        by_time = {t: (round(lat, 6), waited) for lat, waited, t in got}
        return {e: by_time[micros(t)] for e, t in sent.items() if micros(t) in by_time}, \
            bounded, unpublished, unreflected

    def test_first_record_promotes_and_later_records_deliver(self):
        records = {"pp-a": [record(10.0, 3, 9.0, 9.5), record(11.0, 5, 9.0, 10.6)]}
        sent = {"a": 9.0, "b": 9.2, "c": 9.5, "d": 10.2, "e": 10.6, "lone": 9.9}
        members = {"pp-a": ["a", "b", "c", "d", "e"]}
        got, bounded, unpublished, unreflected = self.run_case(records, sent, members)
        # a and b were there before the pain point was published: they waited for support.
        self.assertEqual(got["a"], (1.0, True))
        self.assertEqual(got["b"], (0.8, True))
        # c promoted it: its record is pipeline latency.
        self.assertEqual(got["c"], (0.5, False))
        # d came after the first record: delivered by the next one, coalescing wait included.
        self.assertEqual(got["d"], (0.8, False))
        self.assertEqual(got["e"], (0.4, False))
        self.assertEqual((bounded, unpublished, unreflected), (0, 1, 0))

    def test_merged_member_is_attributed_by_its_own_records(self):
        records = {
            "pp-p": [record(6.0, 3, 5.0, 5.2), record(8.0, 4, 5.0, 7.0),
                     record(12.0, 4, 5.0, 7.0, MERGED, "pp-s")],
            "pp-s": [record(6.0, 3, 5.01, 5.3), record(8.0, 4, 5.01, 7.5),
                     record(12.0, 8, 5.0, 7.5)],
        }
        sent = {"p1": 5.0, "p2": 5.1, "p3": 5.2, "p4": 7.0,
                "s1": 5.01, "s2": 5.05, "s3": 5.3, "s4": 7.5}
        members = {"pp-s": list(sent)}
        got, bounded, _, unreflected = self.run_case(records, sent, members)
        # One new event per record pins p4 to pp-p and s4 to pp-s: exact, not bounds.
        self.assertEqual(got["p4"], (1.0, False))
        self.assertEqual(got["s4"], (0.5, False))
        self.assertEqual(got["p3"], (0.8, False))
        self.assertEqual(got["p1"], (1.0, True))
        self.assertEqual(unreflected, 0)
        # The first records added three events each: their times are open between p and s.
        self.assertGreater(bounded, 0)

    def test_survivor_event_in_a_merged_members_quiet_gap_is_exact(self):
        records = {
            "pp-p": [record(6.0, 3, 5.0, 5.2), record(30.0, 4, 5.0, 29.0),
                     record(31.0, 4, 5.0, 29.0, MERGED, "pp-s")],
            "pp-s": [record(6.0, 3, 5.01, 5.3), record(11.0, 4, 5.01, 10.5),
                     record(31.0, 8, 5.0, 29.0)],
        }
        sent = {"p1": 5.0, "p2": 5.1, "p3": 5.2, "p4": 29.0,
                "s1": 5.01, "s2": 5.05, "s3": 5.3, "s4": 10.5}
        got, _, _, _ = self.run_case(records, sent, {"pp-s": list(sent)})
        # pp-p's span covers 10.5, but its record that reaches 10.5 added only the event at 29.0.
        self.assertEqual(got["s4"], (0.5, False))
        # The merge record of pp-s added four events, 29.0 among the possible ones: an upper bound.
        self.assertEqual(got["p4"], (2.0, False))

    def test_event_reflected_only_by_the_survivor_after_the_merge(self):
        records = {
            "pp-p": [record(6.0, 3, 5.0, 5.2), record(10.0, 4, 5.0, 9.0, MERGED, "pp-s")],
            "pp-s": [record(6.0, 3, 5.01, 5.3), record(9.8, 4, 5.01, 9.5),
                     record(10.0, 8, 5.0, 9.5)],
        }
        sent = {"p1": 5.0, "p2": 5.1, "p3": 5.2, "q": 9.0,
                "s1": 5.01, "s2": 5.05, "s3": 5.3, "s4": 9.5}
        got, _, _, unreflected = self.run_case(records, sent, {"pp-s": list(sent)})
        # q joined pp-p, which merged before publishing it: the survivor's record after the merge
        # delivered it, not the survivor's earlier record that reached 9.5 with its own event.
        self.assertEqual(got["q"], (1.0, False))
        self.assertEqual(got["s4"], (0.3, False))
        self.assertEqual(unreflected, 0)

    def test_listed_event_that_no_record_reflects_is_reported(self):
        records = {"pp-a": [record(10.0, 3, 9.0, 9.5)]}
        sent = {"a": 9.0, "b": 9.2, "c": 9.5, "late": 11.0}
        got, _, _, unreflected = self.run_case(records, sent, {"pp-a": list(sent)})
        self.assertNotIn("late", got)
        self.assertEqual(unreflected, 1)


class NewestEventAges(unittest.TestCase):
    def test_records_without_a_new_event_are_not_samples(self):
        records = {"pp-a": [record(10.0, 3, 9.0, 9.5), record(14.0, 3, 9.0, 9.5),
                            record(15.0, 4, 9.0, 14.8)],
                   "pp-b": [record(12.0, 3, 9.0, 11.0, MERGED, "pp-a")]}
        ages = latency.newest_event_ages(records, MERGED)
        self.assertEqual([round(a, 6) for a in ages], [0.2, 0.5])


if __name__ == "__main__":
    unittest.main()
