#!/usr/bin/env python3
"""soak.py -- three replicas on one throwaway PostgreSQL under steady load
while they are killed and the database restarts; then the guarantees of
docs/scale-out.md ("What holds across replicas") are checked on what is
left.

    tests/soak/soak.py [--bin ./distribuerad] [--seconds 60] [--seed N]

Load, each request on a new connection to a random replica (so nothing is
sent twice behind the client's back):
  - producers publish to two channels; consumers acquire (ttl 1s), then
    delete with the lease token through another random replica;
  - keyed producers publish with an idempotency key to a channel nobody
    consumes, sending again after no answer or a 503 until answered;
  - a channel with maxDeliveries 2 and a dead-letter channel, whose
    consumers acquire (ttl 300ms) and never delete;
  - delayed events (publishIn 0.1 to 1.5 s), acquired (ttl 2s) and deleted;
  - a job @every 1s, and another paused through a random replica a third
    of the way in.
Faults: every --seconds/8 (4 to 10 s) one replica is killed with SIGKILL
and started again; halfway, PostgreSQL restarts with -m immediate.

Then everything is drained and checked: every acknowledged event was
deleted with success exactly once and nothing was handed out that was not
published; the stats totals lie between what was answered and what may
have happened, and published = deleted; each key's event exists once;
every event of the dead-letter channel's source moved once, with 2
deliveries, and the totals of both channels agree; no delayed event was
handed out before its publishedAt or without having been published, each
was deleted, and the delayed channel's totals lie between what was
answered and what may have happened; the job fired at
most once a second, each run one event, and the paused one fired nothing
after the pause was answered. A replica that exits by itself, one
that does not stop cleanly on SIGTERM (under a sanitizer: with a leak),
or a sanitizer's report in a log is a problem too. Exits 1 on any
problem, listing it.
"""

import argparse
import calendar
import collections
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PGCTL = os.path.join(HERE, "..", "pg", "pgctl.sh")
CHANS = ("s1", "s2")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def req(port, method, path, body=None, headers=None, timeout=10):
    """(status, parsed JSON or None); raises OSError when no answer came."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        c.request(method, path, body=None if body is None else json.dumps(body), headers=h)
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, None
    except http.client.HTTPException as e:
        raise OSError(str(e))
    finally:
        c.close()


def ns(ts):
    """Nanoseconds since the epoch of an RFC 3339 UTC time with up to nine
    fractional digits, as the server writes them."""
    base, _, frac = ts.rstrip("Z").partition(".")
    t = time.strptime(base, "%Y-%m-%dT%H:%M:%S")
    secs = calendar.timegm(t)
    return secs * 10**9 + int((frac + "000000000")[:9])


class Soak:
    def __init__(self, args):
        self.args = args
        self.db = None
        self.ports = []
        self.procs = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.pub, self.pub_maybe = set(), set()
        self.dels = collections.Counter()
        self.del_maybe = set()
        self.got = set()
        self.keyed, self.dl_pub = set(), set()
        self.delayed, self.delayed_maybe, self.delayed_done, self.delayed_del_maybe = set(), set(), set(), set()
        self.delayed_got = set()
        self.early = []
        self.paused_at = None
        self.odd = collections.Counter()
        self.problems = []

    # ---- processes ----

    def start_db(self):
        out = subprocess.run([PGCTL, "start"], check=True, capture_output=True, text=True, timeout=120)
        self.db = out.stdout.strip().splitlines()[-1]
        self.url = subprocess.run([PGCTL, "url", self.db], check=True, capture_output=True,
                                  text=True).stdout.strip()

    def start_replica(self, port):
        with open(os.path.join(self.db, "replica-%d.log" % port), "ab") as log:
            self.procs[port] = subprocess.Popen(
                [self.args.bin, "-database-url", self.url, "-database-schema", "soak", "-database-timeout", "2s",
                 "-address", "127.0.0.1", "-port", str(port)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if req(port, "GET", "/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if self.procs[port].poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("soak: the replica on port %d did not become ready:\n%s" % (port, self.log_tail(port)))

    def log_tail(self, port, n=15):
        with open(os.path.join(self.db, "replica-%d.log" % port), errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def port(self):
        return random.choice(self.ports)

    # ---- load ----

    def note(self, what, key):
        with self.lock:
            self.odd["%s %s" % (what, key)] += 1

    def send(self, method, path, body=None, headers=None):
        """One request to a random replica: (status, body), or (None, None)
        when no answer came."""
        try:
            return req(self.port(), method, path, body, headers)
        except OSError:
            return None, None

    def file(self, what, st, ok, data, done, maybe, fine=()):
        """Files data by the answer: done(data) on ok, maybe(data) when no
        answer or a 503 came (it may or may not have happened); any other
        status not in fine is noted as odd."""
        with self.lock:
            if st == ok:
                done(data)
            elif st in (None, 503):
                maybe(data)
        if st not in (None, ok, 503) + fine:
            self.note(what, st)

    def publisher(self, name, chans, done, maybe, extra=None, pause=0):
        """Publishes name-1, name-2, ... to chans in turn; extra() adds
        fields to each body."""
        n = 0
        while not self.stop.is_set():
            n += 1
            data = "%s-%d" % (name, n)
            body = dict(extra() if extra else {}, data=data)
            st, _ = self.send("POST", "/%s/events" % chans[n % len(chans)], body)
            self.file("publish to " + name, st, 201, data, done, maybe)
            if pause:
                time.sleep(pause)

    def consume(self, ch, ttl_s, done, maybe, most=5, wait="200ms", seen=None):
        """One acquire (a lease of ttl_s seconds) and the deletes of what it
        got, each with its token; seen(event) first.
        Returns the count got."""
        st, body = self.send("POST", "/%s/acquire" % ch, {"max": most, "ttl": "%ds" % ttl_s, "wait": wait})
        if st != 200:
            if st not in (None, 503):
                self.note("acquire from " + ch, st)
            return 0
        for e in body["events"]:
            if seen:
                seen(e)
            st, _ = self.send("DELETE", "/%s/events/%s" % (ch, e["eventID"]), headers={"Lock-Token": e["lockToken"]})
            # 404, 409: the lease lapsed first
            self.file("delete from " + ch, st, 202, e["data"], done, maybe, fine=(404, 409))
        return body["count"]

    def take(self, ch, ttl_s):
        """consume() on one of the two channels of the producers."""
        def seen(e):
            with self.lock:
                self.got.add(e["data"])
        return self.consume(ch, ttl_s, lambda d: self.dels.update((d,)), self.del_maybe.add, seen=seen)

    def take_delayed(self, wait="200ms"):
        """consume() on channel w: an event handed out before its
        publishedAt (both the database's clock) is early."""
        ttl_s = 2

        def seen(e):
            handed_out = ns(e["lockedUntil"]) - ttl_s * 10**9
            with self.lock:
                self.delayed_got.add(e["data"])
                if handed_out < ns(e["publishedAt"]):
                    self.early.append((e["data"], e["publishedAt"], e["lockedUntil"]))
        return self.consume("w", ttl_s, self.delayed_done.add, self.delayed_del_maybe.add, most=10, wait=wait,
                            seen=seen)

    def consumer(self, k):
        while not self.stop.is_set():
            self.take(CHANS[k % 2], 1)

    def delayed_consumer(self):
        while not self.stop.is_set():
            self.take_delayed()

    def until_answered(self, what, method, path, body, ok):
        """Sends the request again after no answer or a 503 until answered;
        True if the status is in ok, else (noted as odd) False."""
        for _ in range(100):
            st, _ = self.send(method, path, body)
            if st in ok:
                return True
            if st not in (None, 503):
                self.note(what, st)
                return False
            time.sleep(0.1)
        self.note(what, "never answered")
        return False

    def publish_until_answered(self, ch, data, into):
        """Publishes with data as the idempotency key until answered."""
        if self.until_answered("keyed publish", "POST", "/%s/events" % ch, {"data": data, "key": data}, (200, 201)):
            with self.lock:
                into.add(data)

    def keyed_publisher(self, name, ch, into, pause=0):
        """Publishes name-1, name-2, ... to ch, each with its data as its
        key, each until answered."""
        n = 0
        while not self.stop.is_set():
            n += 1
            self.publish_until_answered(ch, "%s-%d" % (name, n), into)
            if pause:
                time.sleep(pause)

    def dl_consumer(self):
        while not self.stop.is_set():
            self.send("POST", "/d/acquire", {"max": 10, "ttl": "300ms", "wait": "200ms"})

    def chaos(self):
        t0 = time.monotonic()
        every = min(10.0, max(4.0, self.args.seconds / 8))
        restarted = False
        while not self.stop.wait(every):
            self.check_alive()
            port = self.port()
            self.procs[port].kill()
            self.procs[port].wait()
            print("soak: %5.1f s: replica on port %d killed" % (time.monotonic() - t0, port), flush=True)
            time.sleep(0.3)
            self.start_replica(port)
            if not restarted and time.monotonic() - t0 >= self.args.seconds / 2:
                restarted = True
                print("soak: %5.1f s: PostgreSQL restarted (-m immediate)" % (time.monotonic() - t0), flush=True)
                subprocess.run([PGCTL, "restart", self.db, "immediate"], check=True, stdout=subprocess.DEVNULL)

    # ---- checks ----

    def check_alive(self):
        """A replica that exited by itself (a crash, a sanitizer's abort)
        is a problem; it is started again so that the run goes on."""
        for port, p in list(self.procs.items()):
            if p.poll() is not None:
                self.problems.append("the replica on port %d exited by itself (status %s):\n%s"
                                     % (port, p.returncode, self.log_tail(port)))
                self.start_replica(port)

    def check_stops(self):
        """SIGTERM: each replica stops cleanly (status 0: under a sanitizer
        also no leak), and no log holds a sanitizer's report."""
        for port, p in self.procs.items():
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            self.check(p.returncode == 0, "the replica on port %d stopped with status %s:\n%s"
                       % (port, p.returncode, self.log_tail(port)))
        for name in os.listdir(self.db):
            if name.startswith("replica-"):
                with open(os.path.join(self.db, name), errors="replace") as f:
                    text = f.read()
                for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                    self.check(mark not in text, "%s in %s" % (mark, name))

    def get(self, path):
        st, body = req(self.ports[0], "GET", path)
        if st != 200:
            raise RuntimeError("soak: GET %s: %s %r" % (path, st, body))
        return body

    def check(self, ok, what):
        if not ok:
            self.problems.append(what)

    def drain(self):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if sum(self.take(ch, 30) for ch in CHANS) == 0:
                stats = [self.get("/" + ch) for ch in CHANS]
                if all(s["ready"] + s["scheduled"] + s["locked"] == 0 for s in stats):
                    return stats
        self.problems.append("the queue did not drain in 90 s")
        return [self.get("/" + ch) for ch in CHANS]

    def check_queue(self, stats):
        published = sum(s["published"] for s in stats)
        deleted = sum(s["deleted"] for s in stats)
        done = set(self.dels)
        print("soak: published %d (answered %d, unknown %d); deleted %d (answered %d, unknown %d)"
              % (published, len(self.pub), len(self.pub_maybe), deleted, len(done), len(self.del_maybe)))
        self.check(not [d for d, n in self.dels.items() if n > 1], "deleted with success twice")
        self.check(published == deleted, "published %d != deleted %d" % (published, deleted))
        self.check_accounted("", self.pub, self.pub_maybe, self.got, done, self.del_maybe, published, deleted)

    def check_accounted(self, what, pub, pub_maybe, got, done, del_maybe, published, deleted):
        """The checks of one stream of events, each problem prefixed with
        what: every acknowledged publish (pub) was deleted (done, or a
        delete without an answer, del_maybe); nothing handed out (got) that
        was not published (pub, or a publish without an answer, pub_maybe);
        the totals published and deleted lie between what was answered and
        what may have happened."""
        lost = sorted(pub - done - del_maybe)
        self.check(not lost, "%sacknowledged, never deleted: %d, e.g. %s" % (what, len(lost), lost[:5]))
        ghosts = sorted(got - pub - pub_maybe)
        self.check(not ghosts, "%shanded out, never published: %s" % (what, ghosts[:5]))
        self.check(len(pub) <= published <= len(pub) + len(pub_maybe),
                   "%spublished %d outside what was answered and what may have happened" % (what, published))
        self.check(len(done) <= deleted <= len(done) + len(del_maybe),
                   "%sdeleted %d outside what was answered and what may have happened" % (what, deleted))

    def check_keyed(self):
        k = self.get("/k")
        listed = collections.Counter(e["data"] for e in self.get("/k/events")["events"])
        print("soak: keyed: %d answered, %d published, %d listed" % (len(self.keyed), k["published"],
                                                                  sum(listed.values())))
        self.check(k["published"] == sum(listed.values()), "keyed: published %d, listed %d"
                   % (k["published"], sum(listed.values())))
        self.check(not [d for d, n in listed.items() if n > 1], "keyed: an event twice")
        self.check(self.keyed <= set(listed), "keyed: answered, not listed: %s" % sorted(self.keyed - set(listed))[:5])

    def check_dead_letters(self):
        # every event acquired until its second lease lapses; the move
        # itself may come up to 1 s after that (docs/scale-out.md)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            d = self.get("/d")
            if d["ready"] + d["scheduled"] + d["locked"] == 0 and d["deadLettered"] == d["published"]:
                break
            self.send("POST", "/d/acquire", {"max": 100, "ttl": "100ms"})
            time.sleep(0.2)
        d, dl = self.get("/d"), self.get("/dl")
        evs = self.get("/dl/events")["events"]
        moved = collections.Counter(e["data"] for e in evs)
        print("soak: dead letters: %d answered; source published %d, dead-lettered %d; target published %d, listed %d"
              % (len(self.dl_pub), d["published"], d["deadLettered"], dl["published"], len(evs)))
        self.check(d["ready"] + d["scheduled"] + d["locked"] == 0, "dead letters: the source still holds %r" % d)
        self.check(d["deadLettered"] == d["published"] == dl["published"] == len(evs),
                   "dead letters: source %r, target %r, listed %d" % (d, dl, len(evs)))
        self.check(not [x for x, n in moved.items() if n > 1], "dead letters: an event moved twice")
        self.check(self.dl_pub <= set(moved), "dead letters: answered, not moved: %s"
                   % sorted(self.dl_pub - set(moved))[:5])
        self.check(all(e["deliveries"] == 2 and e.get("deadLetteredFrom") == "d" for e in evs),
                   "dead letters: an event without 2 deliveries or its source")

    def pause_job(self):
        """Pauses the job of channel cron2 through a random replica, sending
        again until answered; notes when the answer came."""
        if self.until_answered("pause", "POST", "/cron2/jobs/tick/pause", None, (200,)):
            self.paused_at = time.time_ns()
            print("soak: the job of cron2 paused", flush=True)

    def check_delayed(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.take_delayed(wait="500ms") == 0:
                w = self.get("/w")
                if w["ready"] + w["scheduled"] + w["locked"] == 0:
                    break
        w = self.get("/w")
        print("soak: delayed: %d answered (unknown %d), %d published, %d deleted (answered %d, unknown %d),"
              " %d handed out early" % (len(self.delayed), len(self.delayed_maybe), w["published"], w["deleted"],
                                        len(self.delayed_done), len(self.delayed_del_maybe), len(self.early)))
        self.check(not self.early, "delayed: handed out before publishedAt: %s" % self.early[:3])
        self.check_accounted("delayed: ", self.delayed, self.delayed_maybe, self.delayed_got, self.delayed_done,
                             self.delayed_del_maybe, w["published"], w["deleted"])
        self.check(w["published"] == w["deleted"] and w["ready"] + w["scheduled"] + w["locked"] == 0,
                   "delayed: %r" % w)

    def check_paused_job(self):
        evs = self.get("/cron2/events")["events"]
        job = self.get("/cron2/jobs/tick")
        late = [e["publishedAt"] for e in evs if self.paused_at is None or ns(e["publishedAt"]) > self.paused_at]
        print("soak: paused job: %d runs, %d events, %d after the pause's answer" % (job["runs"], len(evs), len(late)))
        self.check(self.paused_at is not None and job["paused"], "the job of cron2 is not paused: %r" % job)
        self.check(not late, "the job of cron2 fired after the pause was answered: %s" % late[:3])
        self.check(job["runs"] == len(evs), "paused job: %d runs, %d events" % (job["runs"], len(evs)))

    def check_job(self, since):
        job = self.get("/cron/jobs/tick")
        elapsed = time.monotonic() - since
        fired = self.get("/cron")["published"]
        print("soak: job: %d runs in %.1f s, %d events" % (job["runs"], elapsed, fired))
        self.check(1 <= job["runs"] <= elapsed + 1, "job: %d runs in %.1f s" % (job["runs"], elapsed))
        self.check(fired == job["runs"], "job: %d runs, %d events" % (job["runs"], fired))

    # ---- the run ----

    def guarded(self, fn, *args):
        """Runs a worker; an exception in it (a malformed answer, say) is
        a problem, not a thread that quietly stops."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 -- every failure is reported
            with self.lock:
                self.problems.append("%s failed: %r" % (fn.__name__, e))
            self.stop.set()

    def run(self):
        self.start_db()
        try:
            self.ports = [free_port() for _ in range(3)]
            for p in self.ports:
                self.start_replica(p)
            st, body = req(self.ports[0], "PUT", "/d/settings", {"maxDeliveries": 2, "deadLetterChannel": "dl"})
            assert st == 200, (st, body)
            t_job = time.monotonic()  # before the job exists: its runs <= the seconds since + 1
            for ch in ("cron", "cron2"):
                st, body = req(self.ports[1], "POST", "/%s/jobs" % ch, {"name": "tick", "cronDef": "@every 1s"})
                assert st == 201, (st, body)
            work = [(self.publisher, "p%d" % i, CHANS, self.pub.add, self.pub_maybe.add) for i in range(4)]
            work += [(self.consumer, i) for i in range(4)]
            work += [(self.keyed_publisher, "k%d" % i, "k", self.keyed) for i in range(2)]
            work += [(self.keyed_publisher, "d", "d", self.dl_pub, 0.01), (self.dl_consumer,), (self.dl_consumer,)]
            work += [(self.chaos,)]
            delay = lambda: {"publishIn": "%dms" % random.randint(100, 1500)}  # noqa: E731
            work += [(self.publisher, "w", ("w",), self.delayed.add, self.delayed_maybe.add, delay, 0.005)]
            work += [(self.delayed_consumer,)]
            ts = [threading.Thread(target=self.guarded, args=w) for w in work]
            for t in ts:
                t.start()
            # a failing worker ends it early
            if not self.stop.wait(self.args.seconds / 3):
                self.pause_job()
                self.stop.wait(self.args.seconds * 2 / 3)
            self.stop.set()
            for t in ts:
                t.join()
            print("soak: load stopped; draining", flush=True)
            self.check_queue(self.drain())
            self.check_keyed()
            self.check_dead_letters()
            self.check_job(t_job)
            self.check_delayed()
            self.check_paused_job()
            self.check_alive()
            self.check_stops()
            if self.odd:
                self.problems.append("unexpected answers: %s" % dict(self.odd))
            if self.problems:
                for port in self.ports:
                    print("soak: the end of the log of the replica on port %d:\n%s" % (port, self.log_tail(port)))
        finally:
            for p in self.procs.values():
                if p.poll() is None:
                    p.terminate()
                    p.wait()
            subprocess.run([PGCTL, "stop", self.db], stdout=subprocess.DEVNULL)
        for p in self.problems:
            print("soak: PROBLEM: " + p)
        print("soak: %s" % ("problems found: %d" % len(self.problems) if self.problems else "no problem found"))
        return 1 if self.problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "..", "distribuerad"), help="the server binary")
    ap.add_argument("--seconds", type=float, default=60, help="how long the load and the faults last (60)")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the random choices (default: the time; the threads still interleave as they will)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    random.seed(seed)
    print("soak: %.0f s, seed %d" % (args.seconds, seed), flush=True)
    sys.exit(Soak(args).run())


if __name__ == "__main__":
    main()
