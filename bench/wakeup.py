#!/usr/bin/env python3
"""wakeup.py -- cross-replica wake-up latency of parked acquires.

    bench/wakeup.py -a PORT_A -b PORT_B [-n ROUNDS] [-q CHANNEL] [-g GAP_MS]

Each round: an acquire with wait is sent to replica A (loopback port
PORT_A) and left to park for 30 ms; then one event is published through
replica B; the time from sending the publish to A's complete answer is the
wake-up latency. The event is deleted and the next round starts GAP_MS
later (default 0: the publishes then fall inside the store's ~100 ms
coalescing window of notifications, its slow path). A round whose acquire
answered before the publish was sent (it was not parked) is not counted.

Prints one line: rounds=N p50_ms= p99_ms= max_ms= mean_ms= unparked= empty=
(empty: acquires that answered count 0, i.e. the wake-up missed its wait).
"""

import argparse
import http.client
import json
import socket
import sys
import time


def connect(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def call(c, method, path, body=None, headers=None):
    c.request(method, path, body=None if body is None else json.dumps(body),
              headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    r = c.getresponse()
    return r.status, r.read()


def quantile(xs, q):
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("-a", type=int, required=True, help="port of replica A (acquires)")
    ap.add_argument("-b", type=int, required=True, help="port of replica B (publishes)")
    ap.add_argument("-n", type=int, default=200, help="rounds")
    ap.add_argument("-q", default="wakeup", help="channel")
    ap.add_argument("-g", type=float, default=0, help="ms between rounds")
    ap.add_argument("-w", default="5s", help="acquire wait")
    o = ap.parse_args()
    a, b = connect(o.a), connect(o.b)
    path = "/%s" % o.q
    lat, unparked, empty = [], 0, 0
    for _ in range(o.n):
        t_acq = time.monotonic()
        a.request("POST", path + "/acquire", body=json.dumps({"max": 1, "ttl": "1m", "wait": o.w}),
                  headers={"Content-Type": "application/json"})
        time.sleep(0.03)
        t0 = time.monotonic()
        st, body = call(b, "POST", path + "/events", {"data": "wake"})
        if st != 201:
            sys.exit("wakeup: publish through B answered %d: %s" % (st, body[:200]))
        r = a.getresponse()
        got = json.loads(r.read())
        t1 = time.monotonic()
        if r.status != 200:
            sys.exit("wakeup: acquire on A answered %d: %s" % (r.status, got))
        evs = got.get("events", [])
        if not evs:
            empty += 1
        elif t1 - t_acq < 0.03:
            unparked += 1
        else:
            lat.append((t1 - t0) * 1e3)
        for e in evs:
            call(a, "DELETE", "%s/events/%s" % (path, e["eventID"]), headers={"Lock-Token": e["lockToken"]})
        if o.g:
            time.sleep(o.g / 1e3)
    lat.sort()
    print("rounds=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f mean_ms=%.2f unparked=%d empty=%d" %
          (len(lat), quantile(lat, 0.5), quantile(lat, 0.99), lat[-1] if lat else 0,
           sum(lat) / len(lat) if lat else 0, unparked, empty))


if __name__ == "__main__":
    main()
