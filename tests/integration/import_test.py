"""Issue 19, item 2: `painpoint import` killed mid-way with SIGKILL and restarted.

A CSV export of 10,000 rows (RFC 4180 quoting, line breaks inside quotes, UTF-8) plus 3 rows
without text goes to `painpoint broker` at 2,000 rows/s; the import is SIGKILLed once its state
file records some rows, then rerun without a rate limit. Checked: the rerun skips at least the
recorded rows, reports the 3 rejected rows (exit 1, errors file); a JSONL import of 3 lines (one
not JSON) sends 2 to feedback.sales; `painpoint serve` then holds every valid row exactly once (painpoint_store_events); kcat finds every row's event on
feedback.support and prints how many were sent twice (acknowledged after the last state write),
which the store dropped as duplicates.

usage: import_test.py PATH/TO/painpoint
"""
import csv
import os
import re
import signal
import subprocess
import sys
import time

from harness import PAINPOINT, Broker, Serve, kcat, log, protobuf_module, stop_on_exit, \
    wait_until, workdir

ROWS = 10_000
BAD_ROWS = 3


def write_export(path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Ticket ID", "Description", "Brand", "Organization", "ARR", "Created", "Link"])
        for i in range(ROWS):
            text = ('Export #%d fails with "error 5"\nwhen the report has, say, ümlauts — 日本' % i
                    if i % 3 == 0 else "Login loops back to the start page on device %d" % i)
            w.writerow([str(100000 + i), text, ("mobile-app", "web-app", "")[i % 3],
                        "acct-%d" % (i % 50), str(1000 * (i % 50)),
                        "2026-11-%02dT%02d:00:00Z" % (1 + i % 28, i % 24),
                        "https://acme.zendesk.com/agent/tickets/%d" % (100000 + i)])
        for i in range(BAD_ROWS):
            w.writerow([str(900000 + i), "", "web-app", "", "", "", ""])


def run_import(path, map_path, brokers, *extra):
    return [PAINPOINT, "import", "--format", "csv", "--input", path, "--map", map_path,
            "--brokers", brokers, *extra]


def state_rows(path):
    try:
        with open(path) as f:
            m = re.search(r"^rows (\d+)$", f.read(), re.M)
            return int(m.group(1)) if m else 0
    except FileNotFoundError:
        return 0


def main():
    with workdir() as d:
        export = os.path.join(d, "tickets.csv")
        write_export(export)
        map_path = os.path.join(d, "tickets.map")
        with open(map_path, "w") as f:
            f.write("id = Ticket ID\ntext = Description\nproduct = Brand\naccount = Organization\n"
                    "arr = ARR\ntime = Created\nurl = Link\ndefault_product = billing\n"
                    "id_prefix = zd-\n")
        state = export + ".import-state"
        broker = Broker(partitions=4)
        serve = None
        with stop_on_exit(broker, lambda: serve):
            first = subprocess.Popen(run_import(export, map_path, broker.bootstrap, "--rate", "2000"),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            wait_until(lambda: state_rows(state) >= 2000, 30, "the state file to record rows")
            first.send_signal(signal.SIGKILL)
            first.wait()
            recorded = state_rows(state)
            log("SIGKILLed the import with", recorded, "rows recorded as done")
            assert 0 < recorded < ROWS, recorded

            second = subprocess.run(run_import(export, map_path, broker.bootstrap),
                                    capture_output=True, text=True, timeout=120)
            log(second.stdout.strip())
            assert second.returncode == 1, (second.returncode, second.stderr)
            skipped = int(re.search(r"(\d+) skipped", second.stdout).group(1))
            assert skipped >= recorded, (skipped, recorded)
            assert "%d rejected, 0 failed" % BAD_ROWS in second.stdout, second.stdout
            assert state_rows(state) == ROWS + BAD_ROWS
            with open(export + ".import-errors") as f:
                errors = f.read().splitlines()
            assert len(errors) == BAD_ROWS and all("missing_text" in e for e in errors), errors

            pb = protobuf_module(d)
            got = kcat("-b", broker.bootstrap, "-C", "-t", "feedback.support", "-o", "beginning",
                       "-e", "-f", "%S\n%s")
            assert got.returncode == 0, got.stderr
            raw, ids = got.stdout, []
            while raw:
                nl = raw.index(b"\n")
                size = int(raw[:nl])
                ids.append(pb.FeedbackEvent.FromString(raw[nl + 1:nl + 1 + size]).event_id)
                raw = raw[nl + 1 + size:]
            expected = {"zd-%d" % (100000 + i) for i in range(ROWS)}
            assert set(ids) == expected, "missing on the topic: %d" % len(expected - set(ids))
            resent = len(ids) - len(expected)
            log("on feedback.support:", len(ids), "records,", resent,
                "rows sent twice (acknowledged after the last state write)")

            # JSONL: pointers into each line, a line that is not JSON reported on one line.
            jsonl = os.path.join(d, "conversations.jsonl")
            with open(jsonl, "w") as f:
                f.write('{"id":1,"part":{"body":"Search is slow since Monday"},"team":"web-app"}\n'
                        '{bad json\n'
                        '{"id":2,"part":{"body":"Ünicode söarch fails"},"at":1795167000}\n')
            jsonl_map = os.path.join(d, "conversations.map")
            with open(jsonl_map, "w") as f:
                f.write("id = /id\ntext = /part/body\nproduct = /team\ntime = /at\n"
                        "default_product = billing\nid_prefix = ic-\nsource = sales\n")
            r = subprocess.run([PAINPOINT, "import", "--format", "jsonl", "--input", jsonl,
                                "--map", jsonl_map, "--brokers", broker.bootstrap],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 1 and "2 sent, 2 acknowledged, 1 rejected" in r.stdout, \
                (r.returncode, r.stdout, r.stderr)
            with open(jsonl + ".import-errors") as f:
                errors = f.read().splitlines()
            assert len(errors) == 1 and errors[0].startswith("row 2: not JSON"), errors

            serve = Serve(broker.bootstrap, os.path.join(d, "data"))
            serve.wait_stored(ROWS + 2, timeout=300)
            wait_until(lambda: serve.metric("painpoint_events_duplicate_total", 0) >= resent, 60,
                       "the re-sent rows counted as duplicates")
            serve.wait_published()
            stored = serve.metric("painpoint_store_events")
            assert stored == ROWS + 2, "stored %s events, expected %d" % (stored, ROWS + 2)
            log("stored", int(stored), "events once each; duplicates dropped:",
                int(serve.metric("painpoint_events_duplicate_total")))
            serve.stop_cleanly()
            serve = None


if __name__ == "__main__":
    sys.exit(main())
