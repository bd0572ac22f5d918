"""`painpoint broker` is a Kafka broker for real clients: kcat lists its metadata, produces to it
and consumes from it in a consumer group; SIGTERM stops it with exit status 0.

usage: broker_test.py PATH/TO/painpoint
"""
from harness import Broker, kcat, log

EXPECTED_TOPICS = ["feedback.customer", "feedback.sales", "feedback.support",
                   "painpoint.deadletter", "painpoint.feedback-by-product", "painpoint.summaries"]


def main():
    broker = Broker(partitions=3)
    try:
        b = broker.bootstrap
        meta = kcat("-b", b, "-L", "-J")
        assert meta.returncode == 0, meta.stderr
        import json
        doc = json.loads(meta.stdout)
        topics = {t["topic"]: len(t["partitions"]) for t in doc["topics"]}
        for name in EXPECTED_TOPICS:
            assert topics.get(name) == 3, (name, topics)
        log("metadata lists", sorted(topics))

        lines = b"".join(b"key-%d:value-%d\n" % (i, i) for i in range(100))
        out = kcat("-b", b, "-P", "-t", "feedback.support", "-K", ":", input_bytes=lines)
        assert out.returncode == 0, out.stderr

        out = kcat("-b", b, "-G", "kcat-group", "-o", "beginning", "-c", "100", "-e", "-f", "%k=%s\n",
                   "feedback.support", timeout=60)
        got = sorted(line for line in out.stdout.decode().splitlines() if line)
        assert got == sorted("key-%d=value-%d" % (i, i) for i in range(100)), got[:5]
        log("consumer group read all 100 messages")
    finally:
        rc = broker.stop()
    assert rc == 0, "broker exited %s" % rc
    print("broker_test: OK")


if __name__ == "__main__":
    main()
