"""dq_worker.py -- the command that test_dq.py's `dq work` runs per event.

Usage: python3 dq_worker.py LOG SLEEP MODE
Appends a JSON line {"at": "start"|"end", "t": time, "env": {DQ_*}, "stdin": ...}
to LOG at start and at end, sleeps SLEEP seconds in between, then exits:
MODE "ok" -> 0; "fail" -> 3; "failfirst" -> 3 the first time it sees an
event id (remembered in LOG.seen-<id>), 0 after.
"""
import json
import os
import sys
import time

log, sleep, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
env = {k: os.environ.get(k) for k in ("DQ_CHANNEL", "DQ_EVENT_ID", "DQ_DELIVERIES")}
data = sys.stdin.buffer.read().decode("utf-8", "replace")


def note(at):
    line = json.dumps({"at": at, "t": time.time(), "env": env, "stdin": data, "pid": os.getpid()})
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (line + "\n").encode())
    os.close(fd)


note("start")
time.sleep(sleep)
note("end")
seen = "%s.seen-%s" % (log, env["DQ_EVENT_ID"])
first = not os.path.exists(seen)
open(seen, "w").close()
sys.exit(0 if mode == "ok" or (mode == "failfirst" and not first) else 3)
