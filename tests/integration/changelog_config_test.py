"""`changelog.enabled` (docs/operations.md, "The aggregator changelog"):

1. `painpoint config` lists it, false by default, and a file setting it to anything but
   true/false is refused with the line named;
2. `painpoint serve` with it set to true and no --brokers (the embedded broker, which keeps at
   most 5 MiB per partition) refuses to start: exit status 2, a message naming the key and
   --brokers, and nothing written to the data directory; with it false (the default) the same
   command starts.

usage: changelog_config_test.py PATH/TO/painpoint
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PAINPOINT, Serve, log, workdir  # noqa: E402


def run(*args, timeout=60):
    return subprocess.run([PAINPOINT, *args], capture_output=True, text=True, timeout=timeout)


def main():
    with workdir() as d:
        shown = run("config")
        assert shown.returncode == 0, shown.stderr
        assert "\nchangelog.enabled = false\n" in shown.stdout, shown.stdout

        bad = os.path.join(d, "bad.conf")
        with open(bad, "w") as f:
            f.write("# a comment\nchangelog.enabled = yes\n")
        out = run("config", "--config", bad)
        assert out.returncode != 0, out.stdout
        assert "line 2" in out.stderr and "changelog.enabled" in out.stderr, out.stderr

        data_dir = os.path.join(d, "data")
        out = run("serve", "--data-dir", data_dir, "--http-port", "0",
                  "--set", "cluster.encoder=static", "--set", "changelog.enabled=true")
        log("serve with changelog.enabled=true on the embedded broker: exit %d" % out.returncode)
        assert out.returncode == 2, (out.returncode, out.stdout[-2000:], out.stderr[-2000:])
        text = out.stdout + out.stderr
        assert "changelog.enabled = true needs --brokers" in text, text[-2000:]
        assert "5 MiB per partition" in text, text[-2000:]
        assert not os.path.exists(data_dir), os.listdir(data_dir)

        serve = Serve(None, data_dir, extra=["--set", "changelog.enabled=false"])
        try:
            serve.wait_ready(timeout=60)
        finally:
            serve.stop_cleanly()
    print("changelog_config_test: OK")


if __name__ == "__main__":
    main()
