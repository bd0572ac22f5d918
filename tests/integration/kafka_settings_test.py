"""The config file's `kafka.*` keys reach every Kafka client, per role, on `painpoint broker`.

1. A config with client settings for every role and a secret read from a file: produce and
   serve work with it; the secret is in no log, no command line and not in `painpoint config`.
2. Producer-only settings that cannot work (TLS against the plaintext broker, short delivery
   timeout): `painpoint produce` and `replay emit` fail within seconds and name the TLS failure,
   while `replay rewind` (consumer and admin clients) works with the same file.
3. The same TLS setting for every client: within 10 s serve logs a line naming the cause and
   /readyz answers 503 with it, instead of waiting silently.
4. A property the service owns is refused at start with the key's name (exit status 2).

usage: kafka_settings_test.py PATH/TO/painpoint
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PAINPOINT, Broker, Serve, log, make_events, stop_on_exit,  # noqa: E402
                     wait_until, workdir, write_jsonl)

SECRET = "pp-secret-7f3a"
# librdkafka's words for a TLS client that met a plaintext listener, either way, depending on
# whether a handshake read failed (an error) or the close was seen first (an info line).
TLS_CAUSE = re.compile(r"SSL handshake failed"
                       r"|Disconnected\b.*\(after \d+ms in state SSL_HANDSHAKE")


def run(*args, timeout=60):
    started = time.monotonic()
    out = subprocess.run([PAINPOINT, *args], capture_output=True, text=True, timeout=timeout)
    return out, time.monotonic() - started


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def check_settings_apply(d, broker):
    secret_file = write(os.path.join(d, "sasl-password"), SECRET + "\n")
    config = write(os.path.join(d, "good.conf"),
                   "kafka.socket.keepalive.enable = true\n"
                   "kafka.client.rack = rack-a\n"
                   "kafka.consumer.fetch.wait.max.ms = 50\n"
                   "kafka.producer.linger.ms = 10\n"
                   "kafka.admin.socket.timeout.ms = 20000\n"
                   "kafka.sasl.username = painpoint\n"
                   "kafka.sasl.password_file = %s\n" % secret_file)
    shown, _ = run("config", "--config", config)
    assert shown.returncode == 0, shown.stderr
    assert SECRET not in shown.stdout + shown.stderr
    assert "kafka.sasl.password_file = %s\n" % secret_file in shown.stdout, shown.stdout

    events = os.path.join(d, "events.jsonl")
    write_jsonl(events, make_events(300))
    out, _ = run("produce", "--brokers", broker.bootstrap, "--topic", "feedback.support",
                 "--input", events, "--config", config)
    assert out.returncode == 0, out.stderr
    serve = Serve(broker.bootstrap, os.path.join(d, "data"), extra=["--config", config])
    with open("/proc/%d/cmdline" % serve.proc.pid, "rb") as f:
        assert SECRET.encode() not in f.read()
    try:
        serve.wait_stored(300, timeout=60)
        serve.wait_ready(timeout=30)
        log("serve stored 300 events with the kafka.* settings")
    finally:
        serve.stop_cleanly()
    with open(serve.log_path) as f:
        assert SECRET not in f.read()
    return os.path.join(d, "data")


def check_producer_role_only(d, broker, data_dir):
    config = write(os.path.join(d, "producer-tls.conf"),
                   "kafka.producer.security.protocol = SSL\n"
                   "kafka.producer.message.timeout.ms = 3000\n")
    out, took = run("produce", "--brokers", broker.bootstrap, "--topic", "feedback.support",
                    "--input", os.path.join(d, "events.jsonl"), "--config", config)
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert TLS_CAUSE.search(out.stderr), out.stderr
    assert took < 15, took
    log("produce over TLS to a plaintext listener failed in %.1f s, naming the cause" % took)

    out, took = run("replay", "emit", "--data-dir", data_dir, "--brokers", broker.bootstrap,
                    "--topic", "replayed", "--config", config)
    assert out.returncode != 0, (out.stdout, out.stderr)
    assert TLS_CAUSE.search(out.stderr + out.stdout), out.stderr
    assert took < 15, took
    log("replay emit failed in %.1f s, naming the cause" % took)

    out, _ = run("replay", "rewind", "--data-dir", data_dir, "--brokers", broker.bootstrap,
                 "--to", "2026-01-01T00:00:00Z", "--dry-run", "--config", config)
    assert out.returncode == 0, (out.stdout, out.stderr)
    log("replay rewind (consumer, admin) unaffected by producer-only settings")


def check_serve_names_the_cause(d, broker):
    config = write(os.path.join(d, "tls.conf"), "kafka.security.protocol = SSL\n")
    serve = Serve(broker.bootstrap, os.path.join(d, "data-tls"), extra=["--config", config])
    try:
        started = time.monotonic()

        def cause_logged():
            with open(serve.log_path) as f:
                return [line for line in f if TLS_CAUSE.search(line)]
        lines = wait_until(cause_logged, 10, "a log line naming the TLS failure")
        log("serve logged the cause after %.1f s: %s" % (time.monotonic() - started,
                                                          lines[0].strip()))

        def unready_with_cause():
            status, body = serve.get("/readyz")
            return (status, body) if status == 503 and TLS_CAUSE.search(body) else None
        status, body = wait_until(unready_with_cause, 10 - (time.monotonic() - started),
                                  "/readyz 503 naming the TLS failure")
        log("/readyz %d after %.1f s: %s" % (status, time.monotonic() - started, body))
    finally:
        serve.proc.kill()
        serve.proc.wait()
        serve.log_file.close()


def check_reserved_key_refused(d):
    config = write(os.path.join(d, "reserved.conf"), "kafka.consumer.enable.auto.commit = true\n")
    out, _ = run("serve", "--config", config, "--data-dir", os.path.join(d, "data-reserved"),
                 "--http-port", "0")
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "kafka.consumer.enable.auto.commit is set by Painpoint itself" in out.stderr, out.stderr


def main():
    with workdir() as d:
        broker = Broker(partitions=2)
        with stop_on_exit(broker, lambda: None):
            data_dir = check_settings_apply(d, broker)
            check_producer_role_only(d, broker, data_dir)
            check_serve_names_the_cause(d, broker)
            check_reserved_key_refused(d)
    print("kafka_settings_test: OK")


if __name__ == "__main__":
    main()
