#!/usr/bin/env python3
"""bench/seed.py -- the seed's own resource scenario against one server.

Set-up: 30 jobs '@every 1s' on channel seed-cron and 20 000 stored events
(16 bytes, ttl 1h) on channel seed. Then, for -d seconds, paced evenly over
each second: 30 publishes into seed and 60 pick-ups, each a LOCK and a
DELETE of the oldest stored event (so the store holds ~20 000 events
throughout). That is 150 requests and 30 job fires a second, on three
keep-alive connections, Part A of the API only, so any server that speaks
it (the original included) can be measured the same way. The requests use
the original's own routes: POST /seed/events/ with its slash (the original
redirects the bare path with a 307) and PATCH for the LOCK (it has no
PUT); ours takes both spellings. bench/original.sh builds the original.

Measured over the run, for the server's process -P: its CPU (utime+stime
of all threads, from /proc) as a percentage of one CPU, its RSS at the end,
the requests sent and the answers that were not 2xx. One output line of
key=value pairs for bench/run.sh.

Usage: seed.py -p PORT -P PID [-d SECS] [-r RATE_FACTOR]
"""
import argparse
import http.client
import json
import os
import sys
import time

STORED = 20000
JOBS = 30
PUBLISHES = 30   # a second
PICKUPS = 60     # a second, LOCK + DELETE each


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ns(pid):
    """ns on CPU summed over threads (finer than clock ticks)."""
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Conn:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.non2xx = 0
        self.n = 0

    def req(self, method, path, body=None):
        data = json.dumps(body) if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        self.c.request(method, path, data, hdrs)
        r = self.c.getresponse()
        payload = r.read()
        self.n += 1
        if not 200 <= r.status < 300:
            self.non2xx += 1
        return r.status, payload


def setup(c):
    for i in range(JOBS):
        st, _ = c.req("POST", "/seed-cron/jobs", {"name": "job%02d" % i, "cronDef": "@every 1s", "data": "j%02d" % i})
        if st != 201:
            sys.exit("seed.py: adding a job answered %d" % st)
    ids = []
    for i in range(STORED):
        st, body = c.req("POST", "/seed/events/", {"data": "s%015d" % i, "ttl": "1h"})
        if st != 201:
            sys.exit("seed.py: publishing answered %d" % st)
        ids.append(json.loads(body)["eventID"])
    return ids


def run(port, pid, secs, factor, ids):
    pub, lock, dele = Conn(port), Conn(port), Conn(port)
    per_s = (PUBLISHES + PICKUPS) * factor
    step = 1.0 / per_s
    n_pub = 0
    k = 0
    t0 = time.monotonic()
    c0, r0 = cpu_ns(pid), cpu_s(pid)
    while True:
        due = t0 + k * step
        now = time.monotonic()
        if due - t0 >= secs:
            break
        if due > now:
            time.sleep(due - now)
        # one publish to every two pick-ups
        if k % 3 == 0:
            st, body = pub.req("POST", "/seed/events/", {"data": "p%015d" % n_pub, "ttl": "1h"})
            if st == 201:
                ids.append(json.loads(body)["eventID"])
            n_pub += 1
        elif ids:
            eid = ids.pop(0)
            lock.req("PATCH", "/seed/events/" + eid, {"action": "LOCK", "ttl": "1m"})
            dele.req("DELETE", "/seed/events/" + eid)
        k += 1
    elapsed = time.monotonic() - t0
    cpu = (cpu_ns(pid) - c0) / 1e9
    ticks = cpu_s(pid) - r0
    n = pub.n + lock.n + dele.n
    print("secs=%.1f requests=%d req_rate=%.1f cpu_pct=%.3f cpu_ticks_pct=%.2f rss_kb=%d non2xx=%d"
          % (elapsed, n, n / elapsed, cpu / elapsed * 100, ticks / elapsed * 100, rss_kb(pid),
             pub.non2xx + lock.non2xx + dele.non2xx))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-p", type=int, required=True, help="port")
    ap.add_argument("-P", type=int, required=True, help="server pid")
    ap.add_argument("-d", type=float, default=20, help="measured seconds")
    ap.add_argument("-r", type=float, default=1, help="rate factor (1: 150 requests a second)")
    a = ap.parse_args()
    ids = setup(Conn(a.p))
    time.sleep(1)  # the set-up's memory settles; jobs fire from here on
    run(a.p, a.P, a.d, a.r, ids)


if __name__ == "__main__":
    main()
