"""Painpoint over SASL_SSL (SCRAM-SHA-512, TLS with the test's own CA) on Apache Kafka.

One broker from `scripts/kafka.sh start --sasl-ssl` (version PAINPOINT_TEST_KAFKA):
1. with the config file's kafka.* keys (the password read from a file): produce, serve,
   `replay emit` and `replay rewind` all work over the SASL_SSL listener;
2. a wrong password, a plaintext client on the TLS port, and a CA that did not sign the broker's
   certificate: each time serve logs a line naming the cause and /readyz answers 503 with it,
   both within 10 s.

usage: kafka_sasl_ssl_test.py PATH/TO/painpoint
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (KAFKA_SH, PAINPOINT, Serve, log, make_events, wait_until,  # noqa: E402
                     workdir, write_jsonl)

TOPICS = ("feedback.support", "feedback.sales", "feedback.customer",
          "painpoint.feedback-by-product", "painpoint.deadletter", "painpoint.summaries")
EVENTS = 300
CAUSE_WITHIN_S = 10


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def run(*args, timeout=120):
    return subprocess.run([PAINPOINT, *args], capture_output=True, text=True, timeout=timeout)


def start_broker(d, version):
    out = subprocess.run([KAFKA_SH, "start", d, "--version", version, "--sasl-ssl"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    with open(os.path.join(d, "bootstrap-plaintext")) as f:
        plaintext = f.read().strip()
    from confluent_kafka.admin import AdminClient, NewTopic  # python3-confluent-kafka
    admin = AdminClient({"bootstrap.servers": plaintext})
    futures = admin.create_topics(
        [NewTopic(t, 2, 1, config={"cleanup.policy": "compact"} if t == "painpoint.summaries"
                  else {}) for t in TOPICS], operation_timeout=30)
    for future in futures.values():
        future.result(timeout=60)
    return out.stdout.strip().splitlines()[-1]


def sasl_config(d, broker_dir, name, password_file, ca):
    with open(os.path.join(broker_dir, "scram-user")) as f:
        user = f.read().strip()
    return write(os.path.join(d, name),
                 "kafka.security.protocol = SASL_SSL\n"
                 "kafka.sasl.mechanism = SCRAM-SHA-512\n"
                 "kafka.sasl.username = %s\n"
                 "kafka.sasl.password_file = %s\n"
                 "kafka.ssl.ca.location = %s\n" % (user, password_file, ca))


def check_works(d, bootstrap, config):
    events = os.path.join(d, "events.jsonl")
    write_jsonl(events, make_events(EVENTS))
    out = run("produce", "--brokers", bootstrap, "--topic", "feedback.support", "--input", events,
              "--config", config)
    assert out.returncode == 0, out.stderr[-3000:]
    data = os.path.join(d, "data")
    serve = Serve(bootstrap, data, extra=["--config", config])
    try:
        serve.wait_stored(EVENTS, timeout=120)
        serve.wait_ready(timeout=60)
        log("produce and serve over SASL_SSL: %d events stored, /readyz 200" % EVENTS)
    finally:
        serve.stop_cleanly()
    out = run("replay", "emit", "--data-dir", data, "--brokers", bootstrap, "--topic",
              "feedback.replayed", "--config", config)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "%d delivered, 0 failed" % EVENTS in out.stdout, out.stdout
    out = run("replay", "rewind", "--data-dir", data, "--brokers", bootstrap, "--to",
              "2020-01-01T00:00:00Z", "--config", config)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    log("replay emit and replay rewind over SASL_SSL: ok")


def check_cause_reported(d, bootstrap, name, config, cause):
    serve = Serve(bootstrap, os.path.join(d, "data-" + name), extra=["--config", config])
    try:
        started = time.monotonic()

        def logged():
            with open(serve.log_path) as f:
                return [line for line in f if cause.search(line)]
        line = wait_until(logged, CAUSE_WITHIN_S, "%s: a log line naming the cause" % name)[0]
        logged_after = time.monotonic() - started

        def unready():
            status, body = serve.get("/readyz")
            return body if status == 503 and cause.search(body) else None
        body = wait_until(unready, CAUSE_WITHIN_S - logged_after,
                          "%s: /readyz 503 naming the cause" % name)
        log("%s: logged after %.1f s (%s), /readyz 503 after %.1f s: %s"
            % (name, logged_after, line.strip()[-160:], time.monotonic() - started, body))
    finally:
        serve.proc.kill()
        serve.proc.wait()
        serve.log_file.close()


def other_ca(d):
    key, crt = os.path.join(d, "other-ca.key"), os.path.join(d, "other-ca.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=not-the-broker-ca", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    return crt


def main():
    version = os.environ.get("PAINPOINT_TEST_KAFKA", "3.9.2")
    with workdir() as d:
        broker_dir = os.path.join(d, "kafka")
        os.makedirs(broker_dir)
        bootstrap = start_broker(broker_dir, version)
        log("Apache Kafka %s, SASL_SSL listener %s" % (version, bootstrap))
        try:
            ca = os.path.join(broker_dir, "ca.crt")
            good = sasl_config(d, broker_dir, "sasl.conf",
                               os.path.join(broker_dir, "scram-password"), ca)
            check_works(d, bootstrap, good)

            wrong = sasl_config(d, broker_dir, "wrong-password.conf",
                                write(os.path.join(d, "wrong-password"), "not-the-password\n"), ca)
            check_cause_reported(d, bootstrap, "wrong password", wrong,
                                 re.compile(r"Authentication failed"))
            plaintext = write(os.path.join(d, "plaintext.conf"), "kafka.client.rack = r1\n")
            check_cause_reported(d, bootstrap, "plaintext client", plaintext,
                                 re.compile(r"security\.protocol|SSL listener"))
            unknown_ca = sasl_config(d, broker_dir, "unknown-ca.conf",
                                     os.path.join(broker_dir, "scram-password"), other_ca(d))
            check_cause_reported(d, bootstrap, "unknown CA", unknown_ca,
                                 re.compile(r"certificate verify failed"))
        finally:
            subprocess.run([KAFKA_SH, "stop", broker_dir], capture_output=True, timeout=120)
    print("kafka_sasl_ssl_test: OK")


if __name__ == "__main__":
    main()
