"""A crash leaves a report: `painpoint serve` killed by SIGSEGV (as a fault in any of its
threads would) writes the signal, the thread's name and the stack to its log, and still dies of
that signal (exit status -11), so supervisors and core dumps see the crash as before.

usage: crash_report_test.py PATH/TO/painpoint
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Serve, log, workdir  # noqa: E402


def main():
    with workdir() as d:
        serve = Serve(None, os.path.join(d, "data"))
        try:
            serve.wait_ready(timeout=60)
        except BaseException:
            serve.stop(signal.SIGKILL)
            raise
        rc = serve.stop(signal.SIGSEGV)
        with open(serve.log_path) as f:
            text = f.read()
        log("serve after SIGSEGV: exit %s" % rc)
        assert rc == -signal.SIGSEGV, (rc, text[-3000:])
        report = text[text.find("painpoint: fatal signal"):]
        assert report.startswith("painpoint: fatal signal 11 (SEGV) in thread "), text[-3000:]
        frames = [line for line in report.splitlines()[1:] if "painpoint(+0x" in line]
        assert frames, report[:3000]
    print("crash_report_test: OK")


if __name__ == "__main__":
    main()
