"""Alert rules on steady data: bench/gen_events.py's 20,000 events (10 products, ~300 pain points,
random time order over 30 days, volume rising towards the end) through the aggregator in batches
of 512 with serve's rule evaluation (bench/cluster_driver --alerts: episodes, each id once), plus
one synthetic spike in a product of its own: a camera crash once a day for three weeks, then 40
in two days. The spike raises exactly one alert; the steady products raise none, for a spike
rule with the defaults and for a new_pain_point rule.

usage: alerts_steady_test.py PATH/TO/cluster_driver
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DRIVER = sys.argv[1]
NOW = 1_793_491_200  # 2026-11-01T00:00:00Z: the steady events lie in the 30 days before
DAY = 86_400
RULES = """alerts.rules.spike = spike factor=3
alerts.rules.fresh = new_pain_point accounts=5
"""
CAMERA = ["the app crashes when I open the camera", "the app crashes when I open the camera again",
          "the app crashes when I open the camera today"]


def iso(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def spike_events():
    """One a day from one account for 21 days, then 40 from 16 accounts within two days."""
    def event(n, seconds, account):
        return {"eventId": "spike-%d" % n, "source": "SOURCE_SUPPORT", "productId": "spike-app",
                "text": CAMERA[n % 3], "occurredAt": iso(seconds), "accountId": account,
                "accountArrCents": "1000000"}
    start = NOW - 24 * DAY
    events = [event(day, start + day * DAY, "acct-base") for day in range(21)]
    events += [event(21 + i, start + 21 * DAY + i * 3600, "acct-%d" % (i % 16)) for i in range(40)]
    return events


def steady_events(d):
    """The generator's three files, interleaved line by line (serve reads the three topics)."""
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_events.py"), "--events",
                    "20000", "--products", "10", "--now", iso(NOW), "--out-dir", d], check=True)
    files = [open(os.path.join(d, "feedback.%s.jsonl" % t)) for t in ("support", "sales", "customer")]
    lines = []
    while files:
        for f in list(files):
            line = f.readline()
            if line:
                lines.append(line)
            else:
                f.close()
                files.remove(f)
    return lines


def main():
    with tempfile.TemporaryDirectory(prefix="painpoint-alerts-steady-") as d:
        lines = steady_events(d)
        # The spike's events arrive in order, spread over the steady stream's second half.
        spike = [json.dumps(e) + "\n" for e in spike_events()]
        step = len(lines) // (2 * len(spike))
        for i, line in enumerate(spike):
            lines.insert(len(lines) // 2 + i * (step + 1), line)
        events = os.path.join(d, "events.jsonl")
        with open(events, "w") as f:
            f.writelines(lines)
        rules = os.path.join(d, "rules.conf")
        with open(rules, "w") as f:
            f.write(RULES)
        started = time.monotonic()
        run = subprocess.run([DRIVER, "--input", events, "--output", os.path.join(d, "out.jsonl"),
                              "--alerts", rules], capture_output=True, text=True, check=True)
        print(run.stdout, run.stderr, "driver seconds %.1f" % (time.monotonic() - started),
              flush=True)
    alerts = [line.split() for line in run.stdout.splitlines() if line.startswith("alert ")]
    steady = [a for a in alerts if a[2] != "spike-app"]
    spiked = [a for a in alerts if a[2] == "spike-app"]
    assert not steady, "steady data raised %d alerts" % len(steady)
    assert len(spiked) == 1 and spiked[0][1] == "spike", spiked
    print("OK: steady data raised no alert; the synthetic spike raised one:", " ".join(spiked[0]))


if __name__ == "__main__":
    main()
