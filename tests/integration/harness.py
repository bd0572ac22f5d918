"""Shared helpers of the integration tests: real processes, real clients, loopback only.

Every test starts its own `painpoint broker` on an ephemeral port of 127.0.0.1 and its own
`painpoint serve` on a temporary data directory, and stops them however the test ends. With
PAINPOINT_TEST_KAFKA=<version> (the ctest label `kafka`), Broker() is Apache Kafka of that version
instead, started by scripts/kafka.sh with Painpoint's topics created the way `painpoint broker`
creates them.
"""
import collections
import contextlib
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PAINPOINT = os.environ.get("PAINPOINT_BIN") or (sys.argv[1] if len(sys.argv) > 1 else "painpoint")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SAMPLE_FEEDBACK = os.path.join(ROOT, "scripts", "sample_feedback.py")
KAFKA_SH = os.path.join(ROOT, "scripts", "kafka.sh")
KAFKA_VERSION = os.environ.get("PAINPOINT_TEST_KAFKA")
# For the tests that run `painpoint serve`, `cluster` or `replay rebuild` themselves: the fast
# static clustering (serve's default is semantic), like Serve() by default.
STATIC = ("--set", "cluster.encoder=static")


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


def Broker(partitions=4, fault_control=False, kafka_topic_configs=None):
    """The broker of a test: `painpoint broker`, or Apache Kafka under PAINPOINT_TEST_KAFKA (with
    kafka_topic_configs, {topic: {key: value}}, where a test needs what the embedded broker does
    by itself, e.g. retention)."""
    if KAFKA_VERSION:
        if fault_control:
            raise AssertionError("fault control is the embedded broker's; on Apache Kafka use "
                                 "KafkaBroker.kill()/pause()")
        return KafkaBroker(partitions, KAFKA_VERSION, kafka_topic_configs)
    return EmbeddedBroker(partitions, fault_control)


class EmbeddedBroker:
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


class KafkaBroker:
    """Apache Kafka from scripts/kafka.sh in a temporary directory, with Painpoint's eight topics
    (`partitions` each, painpoint.summaries compacted; none for 0) created through the admin
    API."""

    def __init__(self, partitions, version, topic_configs=None):
        self.dir = tempfile.mkdtemp(prefix="painpoint-kafka-")
        self.version = version
        try:
            self.start()
            log("Apache Kafka %s at %s" % (version, self.bootstrap))
            if partitions:
                self.create_topics(partitions, topic_configs or {})
        except BaseException:
            self.stop()  # the test's cleanup never sees a broker whose set-up failed
            raise

    def start(self):
        """Starts the broker, or restarts it with its data after stop() or kill()."""
        out = subprocess.run([KAFKA_SH, "start", self.dir, "--version", self.version,
                              "--owner-pid", str(os.getpid())],
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise AssertionError("scripts/kafka.sh start failed: %s" % out.stderr[-2000:])
        self.bootstrap = out.stdout.strip().splitlines()[-1]

    def create_topics(self, partitions, topic_configs):
        create_painpoint_topics(self.bootstrap, partitions, topic_configs)

    def pid(self):
        with open(os.path.join(self.dir, "kafka.pid")) as f:
            return int(f.read())

    def kill(self):
        """SIGKILL, and waits until the process is gone."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), 30, "broker %d gone after SIGKILL" % pid)

    def pause(self):
        os.kill(self.pid(), signal.SIGSTOP)

    def resume(self):
        os.kill(self.pid(), signal.SIGCONT)

    def run_class(self, *args, timeout=180):
        """Runs a Kafka tool class (e.g. org.apache.kafka.tools.VerifiableProducer) of this
        broker's version."""
        return subprocess.run([KAFKA_SH, "run-class", self.dir, *args], capture_output=True,
                              text=True, timeout=timeout)

    def stop(self):
        out = subprocess.run([KAFKA_SH, "stop", self.dir], capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise AssertionError("scripts/kafka.sh stop failed: %s" % out.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)
        return 0


PAINPOINT_TOPICS = ("feedback.support", "feedback.sales", "feedback.customer",
                    "painpoint.feedback-by-product", "painpoint.deadletter", "painpoint.summaries",
                    "painpoint.aggregator-changelog", "painpoint.alerts")


def create_painpoint_topics(bootstrap, partitions, topic_configs=None):
    """Painpoint's eight topics with `partitions` each, painpoint.summaries and
    painpoint.aggregator-changelog compacted, plus
    topic_configs ({topic: {key: value}}), through the admin API."""
    from confluent_kafka.admin import AdminClient, NewTopic  # python3-confluent-kafka
    admin = AdminClient({"bootstrap.servers": bootstrap})
    configs = {"painpoint.summaries": {"cleanup.policy": "compact"},
               "painpoint.aggregator-changelog": {"cleanup.policy": "compact",
                                                  "min.compaction.lag.ms": "3600000"}}
    for name, extra in (topic_configs or {}).items():
        configs.setdefault(name, {}).update(extra)
    futures = admin.create_topics([NewTopic(t, partitions, 1, config=configs.get(t, {}))
                                   for t in PAINPOINT_TOPICS], operation_timeout=30)
    for future in futures.values():
        future.result(timeout=60)


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


class Serve:
    """`painpoint serve` against a broker, with its HTTP port on loopback."""

    def __init__(self, brokers, data_dir, extra=(), log_path=None, encoder="static", port=None):
        """`encoder` is cluster.encoder (--set, over any --config in `extra`): the tests of the
        pipeline's mechanics run the fast static mode; None leaves it to serve's configuration.
        `port`: the HTTP port (default a free one), e.g. the same one again for a restart."""
        self.port = port or free_port()
        self.log_path = log_path or os.path.join(data_dir + ".log")
        self.log_file = open(self.log_path, "a")
        args = [PAINPOINT, "serve", "--data-dir", data_dir, "--http-port", str(self.port)]
        if brokers:
            args += ["--brokers", brokers]
        if encoder:
            args += ["--set", "cluster.encoder=" + encoder]
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

    def check_running(self):
        """Raises, with the end of serve's log, if serve has exited."""
        if self.proc.poll() is not None:
            raise AssertionError("serve exited with %s; log:\n%s" % (self.proc.returncode,
                                                                   self.tail()))

    def wait_stored(self, count, timeout=120):
        def check():
            self.check_running()
            return self.metric("painpoint_store_events", -1) >= count
        wait_until(check, timeout, "%d stored events" % count)

    def wait_published(self, timeout=60):
        """Waits until all that serve consumed is on painpoint.summaries: the aggregator stage
        has no lag and the outbox is empty."""
        def drained():
            self.check_running()
            m = self.metrics() or {}
            return (m.get("painpoint_outbox_pending", -1) == 0
                    and m.get('painpoint_consumer_lag{stage="aggregator"}', -1) == 0)
        wait_until(drained, timeout, "outbox drained")

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

    def stop_cleanly(self, timeout=30):
        """SIGTERM, and asserts that serve exited 0 (the message has the end of its log)."""
        rc = self.stop(timeout=timeout)
        assert rc == 0, "serve exited %s on SIGTERM:\n%s" % (rc, self.tail())

    def tail(self, lines=40):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-lines:])


@contextlib.contextmanager
def stop_on_exit(broker, current_serve, sig=signal.SIGTERM):
    """Stops a test's processes however its `with` block ends: the Serve that current_serve()
    returns at that moment (a test sets its variable to None once it has stopped serve and checked
    how it exited), with `sig`, then the broker. If the block raises, the end of serve's log goes
    to stderr first."""
    try:
        yield
    except BaseException:
        serve = current_serve()
        if serve is not None:
            print(serve.tail(80), file=sys.stderr)
        raise
    finally:
        try:
            serve = current_serve()
            if serve is not None:
                serve.stop(sig=sig)
        finally:
            broker.stop()


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


def produce_sample(d, brokers, events, seed):
    """Writes `events` of scripts/sample_feedback.py (--seed `seed`) below d, one file per input
    topic, and produces each to its topic with `painpoint produce`."""
    out_dir = os.path.join(d, "sample-%d" % seed)
    os.makedirs(out_dir)
    subprocess.run([sys.executable, SAMPLE_FEEDBACK, "--events", str(events), "--seed", str(seed),
                    "--now", "2026-11-01T00:00:00Z", "--by-source", out_dir], check=True)
    for path in sorted(glob.glob(os.path.join(out_dir, "*.jsonl"))):
        topic = os.path.basename(path)[:-len(".jsonl")]
        out = produce(brokers, topic, path)
        assert out.returncode == 0, out.stderr + out.stdout


def kcat(*args, input_bytes=None, timeout=60):
    return subprocess.run(["kcat", *args], input=input_bytes, capture_output=True,
                          timeout=timeout)


SummaryRecord = collections.namedtuple("SummaryRecord",
                                       "partition offset timestamp_ms key summary")


def read_summaries(brokers, pb, timeout=60):
    """All records on painpoint.summaries, in kcat's order, as SummaryRecords (summary: a parsed
    pb.PainPointSummary, whose id must be the record's key)."""
    # Length-framed so binary payloads survive: "partition offset ts keylen len\t" key payload.
    out = kcat("-b", brokers, "-C", "-t", "painpoint.summaries", "-o", "beginning", "-e", "-q",
               "-f", "%p %o %T %K %S\t%k%s", timeout=timeout)
    assert out.returncode == 0, out.stderr
    data, pos, records = out.stdout, 0, []
    while pos < len(data):
        tab = data.index(b"\t", pos)
        p, o, ts, klen, vlen = (int(x) for x in data[pos:tab].split())
        pos = tab + 1
        key = data[pos:pos + klen].decode()
        pos += klen
        summary = pb.PainPointSummary()
        summary.ParseFromString(data[pos:pos + vlen])
        pos += vlen
        assert summary.id == key, (key, summary.id)
        records.append(SummaryRecord(p, o, ts, key, summary))
    return records


def latest_per_key(records):
    """The highest-version summary per key of read_summaries() records (the later one of equal
    versions)."""
    latest = {}
    for r in records:
        if r.key not in latest or r.summary.version >= latest[r.key].version:
            latest[r.key] = r.summary
    return latest


@contextlib.contextmanager
def workdir():
    with tempfile.TemporaryDirectory(prefix="painpoint-it-") as d:
        yield d


def protobuf_module(workdir_path):
    """Compiles the wire schema for Python (python3-protobuf) so tests can write raw bytes."""
    root = os.path.join(ROOT, "proto")
    out = os.path.join(workdir_path, "pb")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "-I", root, "--python_out", out,
                    "painpoint/v1/feedback.proto", "painpoint/v1/pain_point.proto"], check=True)
    sys.path.insert(0, out)
    from painpoint.v1 import feedback_pb2  # noqa: E402
    return feedback_pb2
