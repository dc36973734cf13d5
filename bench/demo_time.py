#!/usr/bin/env python3
"""Times scripts/demo.sh: when its build step ends and when the first anomaly is on screen.

    python3 bench/demo_time.py [demo args]      (from the repository's root)

Prints the exit code, the marks in seconds from the command ("built": the `2/7` step begins,
"first_anomaly": the first line with `anomaly id=`), the end, and the CPU time of everything
the demo ran. For a cold figure, run it in a fresh clone with no target/.
"""
import resource
import subprocess
import sys
import threading
import time

t0 = time.time()
marks = {}
demo = subprocess.Popen(["scripts/demo.sh", *sys.argv[1:]], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True, bufsize=1)


def watch_stderr():
    for line in demo.stderr:
        if "2/7" in line and "built" not in marks:
            marks["built"] = round(time.time() - t0, 1)


threading.Thread(target=watch_stderr, daemon=True).start()
for line in demo.stdout:
    if "anomaly id=" in line and "first_anomaly" not in marks:
        marks["first_anomaly"] = round(time.time() - t0, 1)
code = demo.wait()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"exit {code} {marks} end {time.time() - t0:.1f} s "
      f"cpu user {usage.ru_utime:.0f} s sys {usage.ru_stime:.0f} s", flush=True)
