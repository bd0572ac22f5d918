"""Storage faults, with the data directory on a small tmpfs (needs root; otherwise exit 77 =
skipped, with the reason):

1. Disk full while events flow (the store refuses commits below 1 MiB free, `--min-free-mib 1`):
   the aggregator stage stops consuming, /readyz is 503 with the
   store's reason, serve exits 3; the aggregator group's committed offsets cover no more events
   than the store holds (offsets are committed only after the store commit); when space returns
   (the tmpfs grows) a restart resumes from the store and ends with every distinct event exactly
   once (faultlib.verify).
2. A read-only data directory (read-only bind mount): serve refuses to start, exit 1, with a
   message that names the directory and the error.
3. Another schema version (stamped with the store_surgery helper): exit 1 with a message
   naming both versions.
4. A directory held by a running serve: a second serve exits 1 and says so.

usage: storage_test.py PATH/TO/painpoint PATH/TO/store_surgery
"""
import os
import subprocess
import sys
import threading
import time

import faultlib
from faultlib import log
from harness import PAINPOINT, STATIC, Broker, Serve, kcat, wait_until, workdir

SKIP = 77


def sh(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def aggregator_group_offsets(brokers, partitions):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": brokers, "group.id": "painpoint-aggregator",
                  "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition("painpoint.feedback-by-product", p)
                           for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def ids_below(brokers, offsets, pb):
    """Distinct event ids on painpoint.feedback-by-product below the given offsets."""
    out = kcat("-b", brokers, "-C", "-t", "painpoint.feedback-by-product", "-o", "beginning",
               "-e", "-q", "-f", "%p %o %S\t%s", timeout=120)
    assert out.returncode == 0, out.stderr
    data, pos, ids = out.stdout, 0, set()
    while pos < len(data):
        tab = data.index(b"\t", pos)
        p, o, size = (int(x) for x in data[pos:tab].split())
        pos = tab + 1
        if o < offsets.get(p, -1):
            event = pb.FeedbackEvent()
            event.ParseFromString(data[pos:pos + size])
            ids.add(event.event_id)
        pos += size
    return ids


def run_to_exit(args, timeout=60):
    out = subprocess.run([PAINPOINT, "serve", *STATIC] + args, capture_output=True, text=True,
                         timeout=timeout)
    return out.returncode, out.stdout + out.stderr


def main():
    surgery = sys.argv[2]
    with workdir() as d:
        mnt = os.path.join(d, "disk")
        os.makedirs(mnt)
        mounted = sh("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt)
        if mounted.returncode != 0:
            print("SKIP: cannot mount a tmpfs for the data directory (%s); storage faults need "
                  "root or CAP_SYS_ADMIN" % mounted.stderr.strip())
            sys.exit(SKIP)
        ro = os.path.join(d, "ro")
        broker = None
        serve = None
        try:
            faultlib.protobuf_module(d)
            from painpoint.v1 import feedback_pb2, pain_point_pb2 as pp  # noqa: E402
            from google.protobuf import json_format  # noqa: E402
            config = faultlib.write_serve_config(d)
            partitions = 4
            broker = Broker(partitions=partitions)
            brokers = broker.bootstrap
            files, ids, _ = faultlib.make_input(d, 20_000, seed=6)
            faultlib.produce_all(brokers, files)
            data_dir = os.path.join(mnt, "data")

            # 1. Disk full.
            # The store keeps 1 MiB free here (64 by default): its refusal, not RocksDB meeting
            # the full disk, stops the stage.
            serve = Serve(brokers, data_dir, extra=["--config", config, "--min-free-mib", "1"],
                          log_path=os.path.join(d, "serve.log"))
            unready = []

            def watch():
                while serve.proc.poll() is None:
                    status, body = serve.get("/readyz", timeout=1)
                    if status == 503 and "no_space" in body:
                        unready.append(body)
                    time.sleep(0.02)
            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                rc = serve.proc.wait(timeout=180)
            finally:
                watcher.join()
            serve.log_file.close()
            with open(serve.log_path) as f:
                text = f.read()
            assert rc == 3, "serve exited %s on a full disk, expected 3:\n%s" % (rc, serve.tail())
            assert "No space left on device" in text and "[error]" in text, serve.tail()
            assert unready, "/readyz never reported the store's failure:\n" + serve.tail()
            log("disk full: exit 3; /readyz said: %s" % unready[-1][:300])

            committed = aggregator_group_offsets(brokers, partitions)
            acknowledged = ids_below(brokers, committed, feedback_pb2)

            # Space returns: the tmpfs grows, the store resumes from its own offsets.
            grown = sh("mount", "-o", "remount,size=512m", mnt)
            assert grown.returncode == 0, grown.stderr
            serve = Serve(brokers, data_dir, extra=["--config", config],
                          log_path=os.path.join(d, "serve2.log"))
            wait_until(lambda: "holds" in open(serve.log_path).read(), 30, "store opened")
            held = int(open(serve.log_path).read().split(" holds ")[1].split()[0])
            log("aggregator group committed %s, covering %d distinct events; the store holds %d"
                % (committed, len(acknowledged), held))
            assert len(acknowledged) <= held, (
                "offsets committed beyond the store: %d events below them, %d stored"
                % (len(acknowledged), held))
            serve.wait_stored(len(ids), timeout=300)
            wait_until(lambda: (serve.metrics() or {}).get("painpoint_outbox_pending", -1) == 0,
                       120, "outbox drained")
            faultlib.verify(serve, brokers, ids, pp, json_format)

            # 4. A second serve on the same (live) directory.
            rc, output = run_to_exit(["--brokers", brokers, "--data-dir", data_dir,
                                      "--http-port", "0"])
            assert rc == 1 and "cannot open the store" in output and "locked" in output, (
                rc, output[-2000:])
            log("second serve on a live directory: exit 1: %s"
                % [line for line in output.splitlines() if "cannot open" in line][0][-200:])
            rc = serve.stop()
            assert rc == 0, serve.tail()

            # 2. Read-only data directory.
            os.makedirs(ro)
            assert sh("mount", "--bind", data_dir, ro).returncode == 0
            remounted = sh("mount", "-o", "remount,ro,bind", ro)
            assert remounted.returncode == 0, remounted.stderr
            rc, output = run_to_exit(["--brokers", brokers, "--data-dir", ro, "--http-port", "0"])
            assert rc == 1 and "cannot open the store in " + ro in output, (rc, output[-2000:])
            log("read-only data directory: exit 1: %s"
                % [line for line in output.splitlines() if "cannot open" in line][0][-200:])
            sh("umount", ro)

            # 3. Another schema version.
            stamped = sh(surgery, "stamp-schema", data_dir, "99")
            assert stamped.returncode == 0, stamped.stderr
            rc, output = run_to_exit(["--brokers", brokers, "--data-dir", data_dir,
                                      "--http-port", "0"])
            assert rc == 1, (rc, output[-2000:])
            assert "schema version 99" in output and "this build reads version 4" in output, (
                output[-2000:])
            log("other schema version: exit 1: %s"
                % [line for line in output.splitlines() if "schema" in line][0][-250:])
        finally:
            # A serve left running by a failed assertion would keep the tmpfs busy.
            if serve is not None and serve.proc.poll() is None:
                serve.proc.kill()
                serve.proc.wait()
            if os.path.ismount(ro):
                sh("umount", ro)
            if broker is not None:
                broker.stop()
            sh("umount", mnt)
    print("storage_test: OK")


if __name__ == "__main__":
    main()
