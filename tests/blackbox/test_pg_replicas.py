"""Part D: many replicas on one PostgreSQL, and the faults they must
survive.

ReplicasTest runs on the suite's shared cluster (the pg pass, run.py
--store pg), each test with replicas of its own on a fresh schema:
racing consumers on three replicas (every event handed out once), a cron
job on three replicas (each scheduled time fires once), a parked acquire
woken from another replica, an acquire woken by a publish that came while
its first statement was still in the database, a replica killed with its leases held (they
lapse, the events come back), and a replica whose clock runs 30 s ahead
(every time still comes from the database).

DatabaseFaultTest brings its own cluster, since it stops and restarts
it: PostgreSQL restarted (-m immediate) under load loses nothing that was
acknowledged; producers and consumers on three replicas, two of them
killed with SIGKILL and the database restarted meanwhile, leave every
acknowledged event deleted once and stats totals that hold every answered
change; and a database stopped with SIGSTOP makes requests answer 503
within -database-timeout while /healthz answers at once and /readyz says
503, until SIGCONT makes the replica ready again by itself.
"""

import collections
import glob
import json
import os
import random
import signal
import subprocess
import threading
import time
import unittest

import bb
import pgfix
from bb import S, SCALE, q, ts_ns


def handed_out_at(ev, ttl_s):
    """The server's time of an acquire's hand-out: the lock's end minus the
    ttl the acquire asked for (both the database's clock, Part D)."""
    return ts_ns(ev["lockedUntil"]) - ttl_s * S


PSQL = os.path.join(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"), "psql")
PSQL_ARGS = [PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]


def psql(sql):
    r = subprocess.run(PSQL_ARGS + [bb.PG_URL, "-c", sql], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("psql failed: %s\n%s" % (sql, r.stderr))
    return r.stdout.strip()


class TableLock:
    """Holds an ACCESS EXCLUSIVE lock on schema.table for `secs` from a
    psql session of its own; start() returns once the lock is held."""

    def __init__(self, schema, table, secs):
        self.schema, self.table, self.secs = schema, table, secs
        self.proc = None

    def start(self):
        sql = 'BEGIN; LOCK TABLE "%s".%s IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(%.2f); COMMIT;' % (
            self.schema, self.table, self.secs)
        self.proc = subprocess.Popen([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", bb.PG_URL, "-c", sql],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10 * SCALE
        held = ("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '%s' AND c.relname = '%s'"
                " AND l.mode = 'AccessExclusiveLock' AND l.granted" % (self.schema, self.table))
        while psql(held) != "1":
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("the lock was not taken: %s" % self.proc.stderr.read())
            time.sleep(0.02)
        return self

    def wait(self):
        self.proc.wait(30 * SCALE)


class PsqlSession:
    """A psql session of its own, fed one statement at a time."""

    def __init__(self):
        self.proc = subprocess.Popen(PSQL_ARGS + [bb.PG_URL], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def send(self, sql):
        """Runs sql, whose answer is not read (a statement without rows)."""
        self.proc.stdin.write(sql + ";\n")
        self.proc.stdin.flush()

    def ask(self, sql):
        """Runs sql and returns the first line of its answer."""
        self.send(sql)
        return self.proc.stdout.readline().strip()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


class AdvisoryLock(PsqlSession):
    """An advisory lock (key below 2^31) held by a psql session of its own
    from the constructor until release()."""

    def __init__(self, key):
        super().__init__()
        self.key = key
        self.ask("SELECT 1 FROM pg_advisory_lock(%d)" % key)

    def waited_for(self):
        return psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid = 0 AND objid = %d" % self.key) != "0"

    def release(self):
        """Releases it; returns the database's time just after."""
        t = self.ask("SELECT pg_advisory_unlock(%d), (extract(epoch FROM clock_timestamp()) * 1e9)::int8"
                     % self.key).split("|")[1]
        self.close()
        return int(t)


def libfaketime():
    for pat in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1"):
        found = glob.glob(pat)
        if found:
            return found[0]
    return None


def faketime_env(**extra):
    """The environment of a replica under libfaketime, with extra (FAKETIME
    and the like) set; ASan is told not to mind the preloaded library."""
    env = dict(os.environ)
    env.update({"LD_PRELOAD": libfaketime()}, **extra)
    env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"), "verify_asan_link_order=0") if x)
    return env


class Replicas:
    """n servers on one schema of the cluster at url, started and ready."""

    def __init__(self, url, n, extra=(), env=None, schema=None):
        self.schema = schema or bb.fresh_schema()
        self.url = url
        self.servers = []
        for _ in range(n):
            self.add(extra, env)

    def add(self, extra=(), env=None):
        srv = bb.Server(["-database-url", self.url, "-database-schema", self.schema] + list(extra), env=env)
        self.servers.append(srv)
        srv.start()
        wait_ready(srv, 10.0)
        return srv

    def client(self, i, timeout=10.0):
        srv = self.servers[i]
        return bb.Client(srv.host, srv.port, timeout=timeout)

    def stop(self):
        for srv in self.servers:
            srv.stop()
            srv.cleanup()

    def logs(self):
        return "\n".join(s.log(20) for s in self.servers)


def status_of(srv, path, timeout=2.0):
    """The status of GET path on srv, or None if it does not answer."""
    c = bb.Client(srv.host, srv.port, timeout=timeout)
    try:
        return c.req("GET", path).status
    except AssertionError:
        return None
    finally:
        c.close()


def wait_ready(srv, timeout):
    deadline = time.monotonic() + timeout * SCALE
    while status_of(srv, "/readyz") != 200:
        if time.monotonic() > deadline:
            raise AssertionError("replica not ready within %.0f s\n%s" % (timeout * SCALE, srv.log()))
        time.sleep(0.05)


def all_events(c, ch):
    r = c.req("GET", "/%s/events" % q(ch))
    assert r.status == 200, r.raw
    return r.json["events"]


class ReplicaSetCase(bb.ServerTestCase):
    """A test that starts sets of replicas on the suite's shared cluster
    (self.replicas); every set is stopped after the test."""
    CLASS_SERVER = False
    OWN_SERVER = True

    def setUp(self):
        super().setUp()
        self.sets = []

    def tearDown(self):
        for rs in self.sets:
            rs.stop()
        super().tearDown()

    def replicas(self, n, extra=(), env=None, schema=None):
        rs = Replicas(bb.PG_URL, n, extra, env, schema)
        self.sets.append(rs)
        return rs


@bb.pg_only("replicas on the suite's shared PostgreSQL cluster")
class ReplicasTest(ReplicaSetCase):
    WEIGHT = 3

    def test_racing_consumers_on_three_replicas(self):
        rs = self.replicas(3)
        ch = self.chan()
        c0 = rs.client(0)
        published = []
        for b in range(4):
            r = c0.req("POST", "/%s/events" % q(ch), [{"data": "%d-%d" % (b, i)} for i in range(100)])
            self.assertEqual(r.status, 201, r.raw)
            published += [e["eventID"] for e in r.json["events"]]
        got, errors = [], []
        lock = threading.Lock()

        def consume(i):
            c = rs.client(i % 3)
            try:
                while True:
                    r = c.req("POST", "/%s/acquire" % q(ch), {"max": 7, "ttl": "60s"})
                    if r.status != 200:
                        errors.append(r.raw)
                        return
                    evs = r.json["events"]
                    if not evs:
                        return
                    with lock:
                        got.extend(e["eventID"] for e in evs)
                    for e in evs:
                        d = c.req("DELETE", "/%s/events/%s" % (q(ch), e["eventID"]),
                                  headers={"Lock-Token": e["lockToken"]})
                        if d.status != 202:
                            errors.append(d.raw)
            finally:
                c.close()

        ts = [threading.Thread(target=consume, args=(i,)) for i in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60 * SCALE)
        self.assertEqual(errors, [])
        dup = sorted({i for i in got if got.count(i) > 1})
        self.assertEqual(dup, [], "events handed out twice")
        self.assertEqual(sorted(got), sorted(published), "not every event was handed out")
        self.assertEqual(all_events(c0, ch), [])
        c0.close()

    def test_cron_fires_once_per_time_on_three_replicas(self):
        rs = self.replicas(3)
        ch = self.chan()
        c = rs.client(1)
        r = c.req("POST", "/%s/jobs" % q(ch), {"name": "tick", "cronDef": "@every 1s", "data": "t"})
        self.assertEqual(r.status, 201, r.raw)
        time.sleep(4.5)
        evs = all_events(c, ch)
        job = c.req("GET", "/%s/jobs/tick" % q(ch)).json
        self.assertGreaterEqual(len(evs), 3, "the job fired %d times in 4.5 s" % len(evs))
        self.assertLessEqual(len(evs), 5, "the job fired %d times in 4.5 s" % len(evs))
        st = c.req("GET", "/" + q(ch)).json
        self.assertEqual(st["published"], len(evs), "the job published %r, the queue holds %d" % (st, len(evs)))
        seconds = [ts_ns(e["publishedAt"]) // S for e in evs]
        self.assertEqual(len(set(seconds)), len(seconds), "two fires within one second: %r" % evs)
        created = ts_ns(job["createdAt"])
        for e in evs:
            self.assertGreaterEqual(ts_ns(e["publishedAt"]), created // S * S + S, "fired early: %r" % e)
        # deleted through another replica: nothing more anywhere
        self.assertEqual(rs.client(2).req("DELETE", "/%s/jobs/tick" % q(ch)).status, 202)
        n = len(all_events(c, ch))
        time.sleep(2.2)
        self.assertEqual(len(all_events(c, ch)), n, "a deleted job fired")
        c.close()

    def woken_within(self, waiter, ch, act, limit):
        """Parks an acquire on waiter, runs act() once it had a second to
        park; returns the seconds from act() (from the server's time of
        the change if act returns it, else from just before act was sent)
        to the server's time of the hand-out. Server times only, so how
        late this test reads the answer on a busy machine changes nothing."""
        res = {}

        def go():
            res["r"] = waiter.req("POST", "/%s/acquire" % q(ch), {"wait": "10s", "ttl": "1m"})

        th = threading.Thread(target=go)
        th.start()
        # Nothing tells from outside that the acquire is parked; a second
        # (not 0.3 s) lets it get there on a busy machine.
        time.sleep(1.0 * SCALE)
        self.assertNotIn("r", res, "answered before anything happened")
        t0 = bb.now_ns()
        at = act() or t0
        th.join(15 * SCALE)
        self.assertEqual(res["r"].status, 200, res["r"].raw)
        self.assertEqual(res["r"].json["count"], 1, res["r"].json)
        took = (handed_out_at(res["r"].json["events"][0], 60) - at) / 1e9
        self.assertLess(took, limit * SCALE, "woken %.3f s after" % took)
        return took

    def test_wakeup_across_replicas(self):
        rs = self.replicas(2)
        a, b = rs.client(0), rs.client(1)
        ch = self.chan()
        # a publish through the other replica (from its publishedAt)
        self.woken_within(a, ch, lambda: ts_ns(b.req("POST", "/%s/events" % q(ch), {"data": "x"}).json["publishedAt"]),
                          1.0)
        # an unlock through the other replica
        ev = b.req("POST", "/%s/events" % q(ch), {"data": "y"}).json
        self.assertEqual(b.req("PUT", "/%s/events/%s" % (q(ch), ev["eventID"]), {}).status, 202)
        # (the first event is locked by the woken acquire)
        self.woken_within(a, ch, lambda: self.assertEqual(b.req("PUT", "/%s/events/%s" % (q(ch), ev["eventID"]),
                                                                {"action": "UNLOCK"}).status, 202), 1.0)
        # a lock taken through the other replica that lapses
        ch2 = self.chan()
        ev = b.req("POST", "/%s/events" % q(ch2), {"data": "z"}).json
        lk = b.req("PUT", "/%s/events/%s" % (q(ch2), ev["eventID"]), {"ttl": "1500ms"})
        self.assertEqual(lk.status, 202)
        until = ts_ns(lk.json["lockedUntil"])
        r = a.req("POST", "/%s/acquire" % q(ch2), {"wait": "10s", "ttl": "1m"})
        self.assertEqual(r.json["count"], 1, r.json)
        late = (handed_out_at(r.json["events"][0], 60) - until) / 1e9
        self.assertGreaterEqual(late, 0, "handed out %.6f s before the lock lapsed" % -late)
        self.assertLess(late, 1.0 * SCALE, "woken %.3f s after the lock lapsed" % late)
        a.close()
        b.close()

    @unittest.skipIf(libfaketime() is None, "needs libfaketime (Debian package faketime)")
    def test_lease_end_wakes_a_replica_whose_clock_runs_fast(self):
        """A replica's clock that runs 5% fast puts its estimate of the
        database's clock up to ~50 ms ahead between readings, so the timer
        for a lease end fires before the lease lapsed in the database. The
        waiter that finds nothing then must not wait for the once-a-second
        poll."""
        rs = self.replicas(1)
        rs.add(env=faketime_env(FAKETIME="+0 x1.05"))
        fast, right = rs.client(1), rs.client(0)
        ch = self.chan()
        lates = []
        for i in range(6):
            ev = right.req("POST", "/%s/events" % q(ch), {"data": "e%d" % i}).json
            lk = right.req("PUT", "/%s/events/%s" % (q(ch), ev["eventID"]), {"ttl": "%dms" % (500 + 70 * i)})
            self.assertEqual(lk.status, 202, lk.raw)
            until = ts_ns(lk.json["lockedUntil"])
            r = fast.req("POST", "/%s/acquire" % q(ch), {"wait": "5s", "ttl": "1m"})
            self.assertEqual(r.json["count"], 1, r.json)
            late = (handed_out_at(r.json["events"][0], 60) - until) / 1e9
            self.assertGreaterEqual(late, 0, "handed out %.6f s before the lock lapsed" % -late)
            lates.append(late)
        self.assertLess(max(lates), 0.3 * SCALE, "woken late after the leases lapsed: %s"
                        % ", ".join("%.3f s" % x for x in lates))
        fast.close()
        right.close()

    def test_no_spin_while_the_waiters_poll_is_out(self):
        """A notification for a waited-on channel asks for a waiters poll
        soon; while an earlier poll is still in the database the replica
        waits for its answer, idle, instead of spinning its loop."""
        from test_hardening import cpu_seconds
        rs = self.replicas(1)
        srv = rs.servers[0]
        ch = self.chan()
        res = {}

        def park():
            c = rs.client(0, timeout=30 * SCALE)
            res["r"] = c.req("POST", "/%s/acquire" % q(ch), {"wait": "8s"})
            c.close()

        th = threading.Thread(target=park)
        th.start()
        time.sleep(0.5 * SCALE)  # parked: the channel is waited on
        # every read of events waits behind the lock, the waiters poll too
        lock = TableLock(rs.schema, "events", 4.0 * SCALE).start()
        time.sleep(1.5 * SCALE)  # the once-a-second poll went out and waits
        psql("SELECT pg_notify('%s', '%s')" % (rs.schema, ch))
        time.sleep(0.3 * SCALE)  # the notification was taken
        t0, c0 = time.monotonic(), cpu_seconds(srv.proc.pid)
        time.sleep(1.0 * SCALE)
        used = (cpu_seconds(srv.proc.pid) - c0) / (time.monotonic() - t0)
        lock.wait()
        th.join(30 * SCALE)
        self.assertLess(used, 0.25, "the replica used %.0f%% of a CPU while its waiters poll waited" % (used * 100))
        self.assertEqual(res["r"].status, 200, res["r"].raw)

    def test_wakeup_while_first_acquire_in_flight(self):
        """A publish through the other replica while a newcomer's acquire
        is still in the database (after it read the channel empty, before
        its answer) wakes it when that answer comes, not at the next poll
        of waiters (about once a second): its notification came when no
        one was parked yet. The acquires of max 3 wait for an advisory
        lock held here, in a wrapper put around ev_acquire; the channel
        was found empty by an acquire just before, so it is waited on."""
        rs = self.replicas(2)
        a, b = rs.client(0), rs.client(1)
        key = 0x5a1e + os.getpid() % 10000
        psql('ALTER FUNCTION "{s}".ev_acquire(text, integer, bigint) RENAME TO ev_acquire_unslowed;'
             ' CREATE FUNCTION "{s}".ev_acquire(ch text, mx integer, ttl bigint) RETURNS SETOF "{s}".ev_row'
             ' LANGUAGE plpgsql AS $$ BEGIN IF mx = 3 THEN PERFORM pg_advisory_xact_lock_shared({k}); END IF;'
             ' RETURN QUERY SELECT * FROM "{s}".ev_acquire_unslowed(ch, mx, ttl); END $$'.format(s=rs.schema, k=key))
        # on a late wake-up, each round passes only if the poll happens to
        # come within the limit: three rounds make that unlikely
        for _ in range(3):
            ch = self.chan()
            lock = AdvisoryLock(key)
            self.assertEqual(a.req("POST", "/%s/acquire" % q(ch), {}).json["count"], 0)
            res = {}

            def go():
                c = rs.client(0, timeout=15 * SCALE)
                res["r"] = c.req("POST", "/%s/acquire" % q(ch), {"max": 3, "wait": "10s", "ttl": "1m"})
                c.close()

            th = threading.Thread(target=go)
            th.start()
            deadline = time.monotonic() + 5 * SCALE
            while not lock.waited_for():
                self.assertLess(time.monotonic(), deadline, "the acquire did not reach the lock")
                time.sleep(0.01)
            self.assertEqual(b.req("POST", "/%s/events" % q(ch), {"data": "x"}).status, 201)
            time.sleep(0.2 * SCALE)  # its notification reaches the waiter's replica
            released = lock.release()
            th.join(15 * SCALE)
            self.assertEqual(res["r"].status, 200, res["r"].raw)
            self.assertEqual(res["r"].json["count"], 1, res["r"].json)
            took = (handed_out_at(res["r"].json["events"][0], 60) - released) / 1e9
            self.assertLess(took, 0.3 * SCALE, "handed out %.3f s after the acquire's statement could go on" % took)
        a.close()
        b.close()

    def test_killed_replica_leases_lapse(self):
        rs = self.replicas(2)
        ch = self.chan()
        a, b = rs.client(0), rs.client(1)
        ids = [e["eventID"] for e in b.req("POST", "/%s/events" % q(ch), [{"data": str(i)} for i in range(5)]).json["events"]]
        r = a.req("POST", "/%s/acquire" % q(ch), {"max": 5, "ttl": "1s"})
        self.assertEqual(sorted(e["eventID"] for e in r.json["events"]), sorted(ids))
        a.close()
        rs.servers[0].proc.kill()  # SIGKILL
        rs.servers[0].proc.wait()
        self.assertEqual(b.req("POST", "/%s/acquire" % q(ch), {"max": 5}).json["count"], 0,
                         "the dead replica's leases did not hold")
        t0 = time.monotonic()
        got = []
        while len(got) < 5 and time.monotonic() - t0 < 5 * SCALE:
            r = b.req("POST", "/%s/acquire" % q(ch), {"max": 5, "wait": "3s"})
            self.assertEqual(r.status, 200, r.raw)
            got += r.json["events"]
        self.assertEqual(sorted(e["eventID"] for e in got), sorted(ids), "the events did not come back")
        b.close()

    @unittest.skipIf(libfaketime() is None, "needs libfaketime (Debian package faketime)")
    def test_replica_clock_ahead(self):
        rs = self.replicas(1)
        ahead = rs.add(env=faketime_env(TZ="UTC", FAKETIME="+30s", DONT_FAKE_MONOTONIC="1"))
        fast, right = rs.client(1), rs.client(0)
        r = fast.req("GET", "/healthz")
        self.assertEqual(r.status, 200)
        ch = self.chan()
        before = time.time_ns()
        e1 = fast.req("POST", "/%s/events" % q(ch), {"data": "from the fast one"}).json
        e2 = right.req("POST", "/%s/events" % q(ch), {"data": "from the right one"}).json
        after = time.time_ns()
        for e in (e1, e2):
            t = ts_ns(e["publishedAt"])
            self.assertTrue(before - S < t < after + S, "publishedAt %s is not the database's time" % e["publishedAt"])
        self.assertEqual([e["eventID"] for e in all_events(right, ch)], [e1["eventID"], e2["eventID"]])
        # a lock of 1 s through the fast replica lasts 1 s, not 1 s - 30 s
        lk = fast.req("PUT", "/%s/events/%s" % (q(ch), e1["eventID"]), {"ttl": "1s"})
        self.assertEqual(lk.status, 202)
        self.assertLess(abs(ts_ns(lk.json["lockedUntil"]) - (time.time_ns() + S)), S // 2, lk.json)
        self.assertEqual(right.req("GET", "/%s/events/%s" % (q(ch), e1["eventID"])).json["state"], "locked")
        # a job made through it is due by the database's clock
        j = fast.req("POST", "/%s/jobs" % q(ch), {"name": "j", "cronDef": "@every 2s"}).json
        self.assertLess(abs(ts_ns(j["createdAt"]) - time.time_ns()), S, j)
        self.assertRegex(ahead.log(200), r"database clock: -(29|30)\.\d+ s", "the replica did not see its clock 30 s ahead")
        fast.close()
        right.close()


@bb.pg_only("stops and restarts a PostgreSQL cluster of its own")
class DatabaseFaultTest(bb.ServerTestCase):
    CLASS_SERVER = False
    OWN_SERVER = True
    WEIGHT = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = pgfix.PgCluster.start()

    @classmethod
    def tearDownClass(cls):
        cls.db.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.rs = None

    def tearDown(self):
        self.cont()
        if self.rs:
            self.rs.stop()
        super().tearDown()

    def server_log(self):
        return self.rs.logs() if self.rs else ""

    def postgres_pids(self):
        """The postmaster and every process it started."""
        with open(os.path.join(self.db.path, "data", "postmaster.pid")) as f:
            pm = int(f.readline())
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pm)], capture_output=True, text=True).stdout
        return [pm] + [int(x) for x in out.split()]

    def stop_db(self):
        self.stopped = self.postgres_pids()
        for pid in self.stopped:
            os.kill(pid, signal.SIGSTOP)

    def cont(self):
        for pid in getattr(self, "stopped", []):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.stopped = []

    def test_restart_under_load_loses_nothing_acknowledged(self):
        self.rs = Replicas(self.db.url(), 2, ["-database-timeout", "2s"])
        ch = self.chan()
        acked, stop, other = [], threading.Event(), []
        lock = threading.Lock()

        def publish(i):
            c = self.rs.client(i % 2, timeout=5.0)
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    r = c.req("POST", "/%s/events" % q(ch), {"data": "%d-%d" % (i, n)})
                except AssertionError:
                    c.close()
                    time.sleep(0.05)
                    continue
                if r.status == 201:
                    with lock:
                        acked.append(r.json["eventID"])
                elif r.status != 503:
                    other.append((r.status, r.raw[:200]))
                    time.sleep(0.05)
            c.close()

        ts = [threading.Thread(target=publish, args=(i,)) for i in range(4)]
        for t in ts:
            t.start()
        time.sleep(1.0)
        n_before = len(acked)
        self.db.restart("immediate")
        time.sleep(1.0)
        for srv in self.rs.servers:
            wait_ready(srv, 15.0)
        time.sleep(1.0)
        stop.set()
        for t in ts:
            t.join(20 * SCALE)
        self.assertEqual(other, [], "answers other than 201 and 503")
        self.assertGreater(n_before, 10, "nothing was published before the restart")
        self.assertGreater(len(acked), n_before, "nothing was published after the restart")
        c = self.rs.client(1)
        listed = {e["eventID"] for e in all_events(c, ch)}
        missing = [i for i in acked if i not in listed]
        self.assertEqual(missing, [], "%d of %d acknowledged events lost" % (len(missing), len(acked)))
        st = c.req("GET", "/" + q(ch)).json
        self.assertGreaterEqual(st["published"], len(acked), st)
        c.close()

    def test_kills_and_a_restart_keep_deliveries_and_counts(self):
        """Producers and consumers through three replicas, two of them
        killed with SIGKILL (and replaced) and the database restarted
        (-m immediate) meanwhile; then the queue drained. Every
        acknowledged event was deleted once, nothing came out that was not
        published, the stats totals hold every change that was answered and
        only those that may have happened, and the job fired at most once a
        second, each fire one event."""
        self.rs = Replicas(self.db.url(), 3, ["-database-timeout", "2s"])
        chans = [self.chan(), self.chan()]
        jobs = self.chan()
        t_job = time.monotonic()
        c = self.rs.client(0)
        r = c.req("POST", "/%s/jobs" % q(jobs), {"name": "tick", "cronDef": "@every 1s"})
        c.close()
        self.assertEqual(r.status, 201, r.raw)
        live = list(self.rs.servers)
        lock = threading.Lock()
        stop = threading.Event()
        log = {"pub": set(), "pub?": set(), "del": [], "del?": set(), "got": set(), "odd": []}

        def call(method, path, body=None, headers=None):
            """One request on a new connection to a live replica (so nothing
            is sent twice); None when no answer came."""
            with lock:
                srv = live[random.randrange(len(live))]
            c = bb.Client(srv.host, srv.port, timeout=5.0)
            try:
                return c.req(method, path, body, headers)
            except AssertionError:
                return None
            finally:
                c.close()

        def note(key, value, r, ok):
            """Files value under key (answered with ok), key? (no answer or
            503: the change may or may not have happened) or odd."""
            with lock:
                if r is not None and r.status == ok:
                    if key == "del":
                        log["del"].append(value)
                    else:
                        log[key].add(value)
                elif r is None or r.status == 503:
                    log[key + "?"].add(value)
                elif not (key == "del" and r.status in (404, 409)):
                    log["odd"].append((key, r.status, r.raw[:200]))

        def get(path):
            c = bb.Client(live[2].host, live[2].port)
            try:
                return c.req("GET", path).json
            finally:
                c.close()

        def consume(ch, ttl):
            r = call("POST", "/%s/acquire" % q(ch), {"max": 5, "ttl": ttl, "wait": "200ms"})
            if r is None or r.status == 503:
                return 0
            if r.status != 200:
                with lock:
                    log["odd"].append(("acquire", r.status, r.raw[:200]))
                return 0
            for e in r.json["events"]:
                with lock:
                    log["got"].add(e["data"])
                d = call("DELETE", "/%s/events/%s" % (q(ch), e["eventID"]), headers={"Lock-Token": e["lockToken"]})
                note("del", e["data"], d, 202)
            return r.json["count"]

        def producer(i):
            n = 0
            while not stop.is_set():
                n += 1
                data = "%d-%d" % (i, n)
                note("pub", data, call("POST", "/%s/events" % q(chans[n % 2]), {"data": data}), 201)

        def consumer(i):
            while not stop.is_set():
                consume(chans[i % 2], "1s")

        def replace(i):
            with lock:
                dead = live[i]
            dead.proc.kill()  # SIGKILL
            dead.proc.wait()
            new = self.rs.add(["-database-timeout", "2s"])
            with lock:
                live[i] = new

        ts = [threading.Thread(target=producer, args=(i,)) for i in range(2)]
        ts += [threading.Thread(target=consumer, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        try:
            time.sleep(1.5)
            replace(0)
            time.sleep(1.0)
            self.db.restart("immediate")
            for srv in list(live):
                wait_ready(srv, 15.0)
            time.sleep(1.0)
            replace(1)
            time.sleep(1.5)
        finally:
            stop.set()
            for t in ts:
                t.join(30 * SCALE)
        # drained through the replica never killed (live[2])
        deadline, stats = time.monotonic() + 20 * SCALE, None
        while time.monotonic() < deadline:
            if sum(consume(ch, "30s") for ch in chans) == 0:
                stats = [get("/" + q(ch)) for ch in chans]
                if all(st["ready"] + st["scheduled"] + st["locked"] == 0 for st in stats):
                    break
        else:
            self.fail("the queue did not drain: %r" % stats)
        job = get("/%s/jobs/tick" % q(jobs))
        fired = get("/" + q(jobs))["published"]
        elapsed = time.monotonic() - t_job
        self.assertEqual(log["odd"], [], "answers other than success, 503, or a lapsed lease's 404/409")
        pub, maybe, dels = log["pub"], log["pub?"], log["del"]
        self.assertGreater(len(pub), 50, "too little was published to show anything")
        twice = sorted(d for d, n in collections.Counter(dels).items() if n > 1)
        self.assertEqual(twice, [], "deleted with success twice")
        lost = sorted(pub - set(dels) - log["del?"])
        self.assertEqual(lost, [], "acknowledged, never deleted")
        self.assertEqual(sorted(log["got"] - pub - maybe), [], "handed out, never published")
        published = sum(st["published"] for st in stats)
        deleted = sum(st["deleted"] for st in stats)
        self.assertEqual(published, deleted, stats)
        self.assertTrue(len(pub) <= published <= len(pub) + len(maybe),
                        "published %d, answered %d, unknown %d" % (published, len(pub), len(maybe)))
        self.assertTrue(len(dels) <= deleted <= len(dels) + len(log["del?"]),
                        "deleted %d, answered %d, unknown %d" % (deleted, len(dels), len(log["del?"])))
        self.assertEqual(fired, job["runs"], job)
        self.assertTrue(1 <= job["runs"] <= elapsed + 1, "%d runs in %.1f s" % (job["runs"], elapsed))

    def test_sigstop_of_the_database(self):
        self.rs = Replicas(self.db.url(), 1, ["-database-timeout", "1s"])
        srv = self.rs.servers[0]
        c = self.rs.client(0, timeout=10.0)
        ch = self.chan()
        self.assertEqual(c.req("POST", "/%s/events" % q(ch), {"data": "before"}).status, 201)
        self.stop_db()
        t0 = time.monotonic()
        r = c.req("POST", "/%s/events" % q(ch), {"data": "while stopped"})
        took = time.monotonic() - t0
        self.assertEqual(r.status, 503, r.raw)
        self.assertIsInstance(r.json, dict)
        self.assertIn("error", r.json)
        self.assertLess(took, 1.0 + 0.5 * SCALE, "503 after %.2f s with -database-timeout 1s" % took)
        for path in ("/healthz", "/readyz"):
            t0 = time.monotonic()
            st = status_of(srv, path, timeout=2.0)
            took = time.monotonic() - t0
            self.assertEqual(st, 200 if path == "/healthz" else 503, path)
            self.assertLess(took, 0.5 * SCALE, "%s took %.2f s with the database stopped" % (path, took))
        # a parked acquire answers without a lock it cannot keep
        r = c.req("POST", "/%s/acquire" % q(ch), {"wait": "500ms"})
        self.assertIn(r.status, (200, 503), r.raw)
        if r.status == 200:
            self.assertEqual(r.json["count"], 0, r.json)
        self.cont()
        wait_ready(srv, 10.0)
        r = c.req("POST", "/%s/events" % q(ch), {"data": "after"})
        self.assertEqual(r.status, 201, r.raw)
        self.assertEqual([e["data"] for e in all_events(c, ch)][0], "before")
        c.close()


if __name__ == "__main__":
    unittest.main()
