"""Shared helpers of the integration tests: real processes, real clients, loopback only.

Every test starts its own `painpoint broker` on an ephemeral port of 127.0.0.1 and its own
`painpoint serve` on a temporary data directory, and stops them however the test ends.
"""
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PAINPOINT = os.environ.get("PAINPOINT_BIN") or (sys.argv[1] if len(sys.argv) > 1 else "painpoint")


def log(*args):
    print("[{:7.2f}]".format(time.monotonic() - _START), *args, flush=True)


_START = time.monotonic()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


class Broker:
    """`painpoint broker` in a child process; its first stdout line is the bootstrap address.

    With fault_control=True it runs with --fault-control and command() drives its fault
    injection through stdin (one reply line per command on stdout)."""

    def __init__(self, partitions=4, fault_control=False):
        args = [PAINPOINT, "broker", "--port", "0", "--partitions", str(partitions)]
        if fault_control:
            args.append("--fault-control")
        # stderr to a file: a pipe nobody drains would block the broker once it fills.
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE if fault_control else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.proc.stdout.readline().strip()
        if not re.fullmatch(r"127\.0\.0\.1:\d+", line):
            self.proc.kill()
            self.proc.wait()
            self.stderr.seek(0)
            raise AssertionError("broker printed %r instead of its address; stderr: %s"
                                 % (line, self.stderr.read()))
        self.bootstrap = line

    def command(self, line):
        """Sends one fault-control command (see `painpoint broker --fault-control`); raises
        unless the broker answers ok."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise AssertionError("broker answered %r to %r" % (answer, line))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("broker did not stop on SIGTERM")
        return self.proc.returncode


class Serve:
    """`painpoint serve` against a broker, with its HTTP port on loopback."""

    def __init__(self, brokers, data_dir, extra=(), log_path=None):
        self.port = free_port()
        self.log_path = log_path or os.path.join(data_dir + ".log")
        self.log_file = open(self.log_path, "a")
        args = [PAINPOINT, "serve", "--data-dir", data_dir, "--http-port", str(self.port)]
        if brokers:
            args += ["--brokers", brokers]
        self.proc = subprocess.Popen(list(args) + list(extra), stdout=self.log_file,
                                     stderr=subprocess.STDOUT)

    def get(self, path, timeout=5):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                        timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            return None, ""

    def metrics(self):
        status, body = self.get("/metrics")
        if status != 200:
            return None
        values = {}
        for line in body.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
        return values

    def metric(self, name, default=None):
        """Sum of all series of `name` (any labels)."""
        m = self.metrics()
        if m is None:
            return default
        total, seen = 0.0, False
        for key, value in m.items():
            if key == name or key.startswith(name + "{"):
                total += value
                seen = True
        return total if seen else default

    def wait_ready(self, timeout=60):
        wait_until(lambda: self.get("/readyz")[0] == 200, timeout, "serve /readyz")

    def wait_stored(self, count, timeout=120):
        def check():
            if self.proc.poll() is not None:
                raise AssertionError("serve exited with %s; log:\n%s" % (self.proc.returncode,
                                                                       self.tail()))
            return self.metric("painpoint_store_events", -1) >= count
        wait_until(check, timeout, "%d stored events" % count)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("serve did not stop within %ss" % timeout)
        self.log_file.close()
        return self.proc.returncode

    def tail(self, lines=40):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-lines:])


def make_events(n, prefix="e", products=("mobile-app", "web-app", "billing"), seed=7,
                start=1_780_000_000):
    rng = random.Random(seed)
    topics = ["SOURCE_SUPPORT", "SOURCE_SALES", "SOURCE_CUSTOMER"]
    phrases = ["the app crashes when I upload a photo", "I was charged twice this month",
               "login with SSO keeps failing", "export to CSV is missing columns",
               "dark mode would be great", "search results are slow to load"]
    events = []
    for i in range(n):
        ts = start + i * 7
        events.append({
            "eventId": "%s-%d" % (prefix, i),
            "source": rng.choice(topics),
            "productId": rng.choice(products),
            "text": "%s (#%d)" % (rng.choice(phrases), rng.randint(1, 9)),
            "occurredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
            "accountId": "acct-%d" % rng.randint(1, 300),
        })
    return events


def write_jsonl(path, events):
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")


def produce(brokers, topic, path):
    out = subprocess.run([PAINPOINT, "produce", "--brokers", brokers, "--topic", topic,
                          "--input", path], capture_output=True, text=True, timeout=180)
    return out


def kcat(*args, input_bytes=None, timeout=60):
    return subprocess.run(["kcat", *args], input=input_bytes, capture_output=True,
                          timeout=timeout)


@contextlib.contextmanager
def workdir():
    with tempfile.TemporaryDirectory(prefix="painpoint-it-") as d:
        yield d


def protobuf_module(workdir_path):
    """Compiles the wire schema for Python (python3-protobuf) so tests can write raw bytes."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")
    out = os.path.join(workdir_path, "pb")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "-I", root, "--python_out", out,
                    "painpoint/v1/feedback.proto", "painpoint/v1/pain_point.proto"], check=True)
    sys.path.insert(0, out)
    from painpoint.v1 import feedback_pb2  # noqa: E402
    return feedback_pb2
