"""Durability: the log in -data-dir, restart after SIGTERM and kill -9,
crash under concurrent load, log rewrite, damaged logs, failing writes and
the -fsync modes (API.md Part B "Durability", issue 3).

Every test has its own data directory and starts its own servers on it
(bb.Server with "-data-dir DIR"). A crash is SIGKILL to the server process.

Some tests need root powers: mount (tmpfs, read-only bind mounts). They
skip themselves where mount is not permitted.
"""

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import bb
from bb import FRAME, HEADER, MS, S, SCALE, log_end, log_format, now_ns, q, records, ts_ns

LOG = "distribuerad.log"
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
# A job that exists in the log but fires during no test (midnight of 29
# February): tests that compare a channel's events after a restart must
# not see a fire when an hour turns meanwhile, as "@hourly" did.
NO_FIRE = "0 0 29 2 *"


# ------------------------------------------------------------- helpers ----

class DServer(bb.Server):
    """A server on a data directory, optionally run under a command prefix
    (prlimit, a shell that ignores SIGXFSZ)."""

    def __init__(self, data_dir, args=(), prefix=None):
        super().__init__(["-data-dir", data_dir] + list(args))
        self.data_dir = data_dir
        self.prefix = list(prefix or [])

    def argv(self, port):
        return self.prefix + super().argv(port)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class Api:
    """A small keep-alive client without retries: a request that gets no
    answer raises, and is never sent twice (the crash tests must know which
    requests the server may have seen)."""

    def __init__(self, port, timeout=10.0):
        self.port = port
        self.timeout = timeout * SCALE
        self.conn = None

    def req(self, method, path, body=None, headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        data = None
        h = {}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        try:
            self.conn.request(method, path, body=data, headers=h)
            r = self.conn.getresponse()
            raw = r.read()
        except Exception:
            self.close()
            raise
        if r.will_close:
            self.close()
        return r.status, bb.parse_json(raw), r.headers

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def half_last_record(path):
    """The first half of a copy of the log's last record."""
    off, n = records(path)[-1]
    with open(path, "rb") as f:
        f.seek(off)
        rec = f.read(FRAME + n)
    return rec[:len(rec) // 2]


def crc32c(b, crc=0):
    crc ^= 0xffffffff
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff


def frame_record(payload, version, salt):
    """A whole record of a log of that version and salt."""
    head = struct.pack("<II", len(payload), crc32c(payload, salt))
    if version != 1:
        head += struct.pack("<I", crc32c(head, salt))
    return head + payload


def can_mount():
    d = tempfile.mkdtemp(prefix="distribuerad-mnt-")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            return False
        subprocess.run(["umount", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return True
    except OSError:
        return False
    finally:
        shutil.rmtree(d, ignore_errors=True)


_MOUNT_OK = None


def mount_ok():
    global _MOUNT_OK
    if _MOUNT_OK is None:
        _MOUNT_OK = can_mount()
    return _MOUNT_OK


def proc_state(pid):
    """The state letter of /proc/PID/stat (T: stopped by a signal)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def stop_process(pid, timeout):
    """SIGSTOP to pid, returning once /proc shows it stopped: kill() only
    queues the stop, and a process that is running goes on until it
    returns to user space. False if it did not stop within timeout (it is
    then sent SIGCONT) or is gone."""
    try:
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while proc_state(pid) != "T":
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGCONT)
                return False
            time.sleep(0.001)
    except OSError:
        return False
    return True


def fill_fs(path):
    """Fills the file system of path with a file; returns its name."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for chunk in (1 << 16, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


# ----------------------------------------------------------- the base ----

@bb.memory_only("the log, its data directory, fsync and replay")
class DurabilityCase(bb.ServerTestCase):
    OWN_SERVER = True
    CLASS_SERVER = False

    def setUp(self):
        super().setUp()
        self.servers = []

    def server_log(self):
        return self.servers[-1].log(40) if self.servers else ""

    def data_dir(self):
        """A fresh directory path under a temp dir; the server creates it."""
        d = tempfile.mkdtemp(prefix="distribuerad-dur-")
        self.addCleanup(shutil.rmtree, d, True)
        return os.path.join(d, "data")

    def start(self, data_dir, *args, prefix=None):
        srv = DServer(data_dir, args, prefix)
        self.servers.append(srv)
        self.addCleanup(srv.cleanup)
        srv.start()
        self.srv = srv
        if self.c is not None:
            self.c.close()
        self.c = bb.Client(srv.host, srv.port)
        self.host, self.port = srv.host, srv.port
        return srv

    def crash(self, srv):
        """kill -9."""
        self.assertTrue(srv.alive(), "server died before the crash\n%s" % srv.log())
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        if self.c is not None:
            self.c.close()

    def stop(self, srv):
        rc = srv.stop()
        self.assertEqual(rc, 0, "server did not exit 0 at SIGTERM (status %s)\n%s" % (rc, srv.log()))
        if self.c is not None:
            self.c.close()

    def run_fail(self, data_dir, *args, timeout=5.0):
        """Runs a server that must refuse to start: returns (status, output)."""
        cmd = [bb.BIN, "-address", "127.0.0.1", "-port", str(bb.free_port()), "-data-dir", data_dir] + list(args)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = p.communicate(timeout=timeout * SCALE)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            self.fail("%s kept running; it should have refused to start\n%s"
                      % (" ".join(cmd), out.decode("utf-8", "replace")))
        return p.returncode, out.decode("utf-8", "replace")

    # ---- reading state
    def jobs_path(self, ch, name=None):
        p = "/%s/jobs" % q(ch)
        return p if name is None else p + "/" + q(name)

    def snapshot(self, channels, ids):
        """Everything a client can see of the channels and ids: listings,
        each event by id (status and body), jobs, each job by name, and the
        current counts of /channels."""
        snap = {"listing": {}, "jobs": {}, "job": {}, "event": {}, "counts": {}}
        for ch in channels:
            snap["listing"][ch] = self.listing(ch)["events"]
            r = self.req("GET", self.jobs_path(ch))
            self.assertStatus(r, 200)
            snap["jobs"][ch] = r.json["jobs"]
            for j in r.json["jobs"]:
                rj = self.req("GET", self.jobs_path(ch, j["jobID"]))
                snap["job"][(ch, j["jobID"])] = (rj.status, rj.json)
        for ch, eid in ids:
            r = self.get_event(ch, eid)
            snap["event"][eid] = (r.status, r.json)
        r = self.req("GET", "/channels")
        self.assertStatus(r, 200)
        for c in r.json["channels"]:
            if c["channelName"] in channels:
                snap["counts"][c["channelName"]] = {k: c[k] for k in ("ready", "scheduled", "locked", "jobs")}
        return snap

    def log_file(self, data_dir):
        return os.path.join(data_dir, LOG)


# ============================================================ restart ====

class RestartTest(DurabilityCase):
    """SIGTERM and kill -9 restore every event, lock and job exactly; ids
    stay unique; what fell due while down happens at once; jobs do not
    fire for times missed while down."""

    WEIGHT = 3

    def build_state(self):
        """A state with every kind of thing in it. Returns (channels, ids,
        tokens {id: token}, every id ever handed out)."""
        ch = self.chan("dur")
        ch2 = "sp ace \u00fcn\u00efc\u00f8de \U0001F600 %" + uuid.uuid4().hex[:6]
        ids, every, tokens = [], [], {}

        def pub(c, body):
            e = self.publish(c, body)
            ids.append((c, e["eventID"]))
            every.append(e["eventID"])
            return e

        now = now_ns()
        for data in ["", "plain", "line\nbreak\t\"q\" \\ back", "\u00fcn\u00efc\u00f8de \U0001F600",
                     "nul\u0000ctl\u0001\u001f", "x" * 100000]:
            pub(ch, {"data": data})
        pub(ch, {"data": "past", "publishAt": bb.fmt_ts(now - 3600 * S), "ttl": "2h"})
        pub(ch, {"data": "offset", "publishAt": bb.fmt_ts(now - 60 * S, 120), "ttl": "1h30m"})
        pub(ch, {"data": "delayed-in", "publishIn": "1h"})
        pub(ch, {"data": "delayed-at", "publishAt": bb.fmt_ts(now + 7200 * S + 123456789), "ttl": "90s"})
        locked = pub(ch, {"data": "locked"})["eventID"]
        extended = pub(ch, {"data": "extended"})["eventID"]
        unlocked = pub(ch, {"data": "unlocked"})["eventID"]
        gone_ready = pub(ch, {"data": "deleted-ready"})["eventID"]
        gone_locked = pub(ch, {"data": "deleted-locked"})["eventID"]
        gone_sched = pub(ch, {"data": "deleted-scheduled", "publishIn": "1h"})["eventID"]
        pub(ch, {"data": "after"})

        r = self.lock(ch, locked, {"ttl": "10m"})
        self.assertStatus(r, 202)
        tokens[locked] = r.json["lockToken"]
        r = self.lock(ch, extended, {"ttl": "1m"})
        self.assertStatus(r, 202)
        tokens[extended] = r.json["lockToken"]
        self.assertStatus(self.lock(ch, extended, {"action": "EXTEND", "ttl": "20m"}), 202)
        self.assertStatus(self.lock(ch, unlocked, {"ttl": "10m"}), 202)
        self.assertStatus(self.lock(ch, unlocked, {"action": "UNLOCK"}), 202)
        self.assertStatus(self.lock(ch, gone_locked, {"ttl": "10m"}), 202)
        for eid in (gone_ready, gone_locked, gone_sched):
            self.assertStatus(self.delete(ch, eid), 202)

        # a second channel: a batch, then acquire takes the two oldest
        r = self.req("POST", self.ev_path(ch2), [{"data": "b%d" % i} for i in range(4)])
        self.assertStatus(r, 201)
        for e in r.json["events"]:
            ids.append((ch2, e["eventID"]))
            every.append(e["eventID"])
        r = self.req("POST", "/%s/acquire" % q(ch2), {"max": 2, "ttl": "5m"})
        self.assertStatus(r, 200)
        self.assertEqual(r.json["count"], 2)
        for e in r.json["events"]:
            tokens[e["eventID"]] = e["lockToken"]

        for body in ({"name": "every", "cronDef": "@every 1h30m", "data": "j1", "ttl": "5m"},
                     {"name": "five", "cronDef": "*/5 * * * *", "data": "j2"},
                     {"name": "zone \u00e5", "cronDef": "CRON_TZ=Europe/Stockholm 0 3 * * *", "data": ""},
                     {"name": "deleted", "cronDef": "@every 1h", "data": "gone"}):
            r = self.req("POST", self.jobs_path(ch), body)
            self.assertStatus(r, 201, "add job %r" % body)
        self.assertStatus(self.req("DELETE", self.jobs_path(ch, "deleted")), 202)
        r = self.req("POST", self.jobs_path(ch2), {"name": "j", "cronDef": "@every 17s", "data": "x"})
        self.assertStatus(r, 201)
        return [ch, ch2], ids, tokens, every

    def restart_roundtrip(self, hard):
        # The state has a */5 job (and one at 03:00 in Stockholm, also a
        # five-minute mark): snapshots on either side of its fire differ.
        # Start 10 s or more before the next mark (the test takes ~2 s,
        # under valgrind too).
        left = 300 - time.time() % 300
        if left < 10:
            time.sleep(left + 1)
        d = self.data_dir()
        srv = self.start(d)
        channels, ids, tokens, every = self.build_state()
        before = self.snapshot(channels, ids)
        if hard:
            self.crash(srv)
        else:
            self.stop(srv)
        self.start(d)
        after = self.snapshot(channels, ids)
        for part in ("listing", "event", "jobs", "job", "counts"):
            self.assertEqual(after[part], before[part], "%s differs after restart (%s)"
                             % (part, "kill -9" if hard else "SIGTERM"))
        # the @every job keeps its phase: nextRunAt = createdAt's whole second + k * d
        job = after["job"][(channels[0], "every")][1]
        k, rest = divmod(ts_ns(job["nextRunAt"]) - ts_ns(job["createdAt"]) // S * S, 5400 * S)
        self.assertEqual(rest, 0, "@every 1h30m lost its phase: %r" % job)
        self.assertGreaterEqual(k, 1)
        # deleted things stay deleted
        self.assertStatus(self.req("GET", self.jobs_path(channels[0], "deleted")), 404)
        # lease tokens still fence: a wrong one is refused, the right one works
        ch = channels[0]
        eid = next(i for c, i in ids if c == ch and i in tokens)
        r = self.lock(ch, eid, {"action": "EXTEND", "ttl": "1m"}, headers={"Lock-Token": "0123456789abcdef"})
        self.assertStatus(r, 409, "EXTEND with a wrong token after restart")
        r = self.lock(ch, eid, {"action": "UNLOCK", "lockToken": tokens[eid]})
        self.assertStatus(r, 202, "UNLOCK with the token from before the restart")
        # ids stay unique and grow
        new = self.publish(ch, {"data": "new"})["eventID"]
        self.assertGreater(new, max(every), "an id after restart is not larger than every earlier id")
        r = self.req("POST", self.ev_path(channels[1]), [{"data": "n1"}, {"data": "n2"}])
        self.assertStatus(r, 201)
        self.assertGreater(min(e["eventID"] for e in r.json["events"]), new)

    def test_restart_after_sigterm(self):
        self.restart_roundtrip(hard=False)

    def test_restart_after_kill9(self):
        self.restart_roundtrip(hard=True)

    def test_due_while_down(self):
        """A delayed event and a lock that fall due while the server is down
        take effect at once; an event whose ttl ran out is gone; a lock
        that has not run out keeps its deadline."""
        d = self.data_dir()
        srv = self.start(d)
        ch = self.chan("due")
        first = self.publish(ch, {"data": "first"})["eventID"]
        delayed = self.publish(ch, {"data": "delayed", "publishIn": "1s"})
        short_lock = self.publish(ch, {"data": "short-lock"})["eventID"]
        long_lock = self.publish(ch, {"data": "long-lock"})["eventID"]
        dies = self.publish(ch, {"data": "dies", "ttl": "1s"})["eventID"]
        self.assertStatus(self.lock(ch, short_lock, {"ttl": "1s"}), 202)
        r = self.lock(ch, long_lock, {"ttl": "10m"})
        self.assertStatus(r, 202)
        long_until = r.json["lockedUntil"]
        due = max(ts_ns(delayed["publishedAt"]), now_ns() + S)
        self.crash(srv)
        time.sleep(max(0.0, (due - now_ns()) / S) + 0.3)
        self.start(d)
        ev = self.listing(ch)["events"]
        got = [(e["eventID"], e["state"]) for e in ev]
        self.assertEqual(got, [(first, "ready"), (short_lock, "ready"), (long_lock, "locked"),
                               (delayed["eventID"], "ready")],
                         "right after restart: %r" % ev)
        self.assertEqual(ev[3]["publishedAt"], delayed["publishedAt"])
        self.assertEqual(ev[2]["lockedUntil"], long_until)
        self.assertNotIn("lockedUntil", ev[1])
        self.assertStatus(self.get_event(ch, dies), 404, "event whose ttl ran out while down")
        self.assertStatus(self.lock(ch, short_lock, {"ttl": "1m"}), 202, "LOCK of an event whose lock ran out while down")
        self.assertStatus(self.lock(ch, long_lock, {"ttl": "1m"}), 410, "LOCK of an event still locked")

    def test_job_does_not_fire_for_missed_times(self):
        d = self.data_dir()
        srv = self.start(d)
        ch = self.chan("job")
        r = self.req("POST", self.jobs_path(ch), {"name": "tick", "cronDef": "@every 1s", "data": "t"})
        self.assertStatus(r, 201)
        created = ts_ns(r.json["createdAt"])

        def points(a, b):  # schedule times: whole seconds in (a, b]
            return max(0, b // S - max(0, a // S))

        self.wait_until(lambda: self.listing(ch)["count"] >= 1, 3, msg="the first fire")
        before = self.listing(ch)["events"]
        self.crash(srv)
        down_at = now_ns()
        time.sleep(2.5)
        t_spawn = now_ns()
        self.start(d)
        t_up = now_ns()  # times before this were missed while (re)starting, and are skipped
        after = self.listing(ch)["events"]
        t_list = now_ns()
        self.assertEqual([e["eventID"] for e in after[:len(before)]], [e["eventID"] for e in before],
                         "events the job published before the crash")
        new = len(after) - len(before)
        self.assertLessEqual(new, points(t_spawn, t_list),
                             "%d events right after restart: the job fired for the %.1f s it was down"
                             % (new, (t_spawn - down_at) / S))
        r = self.req("GET", self.jobs_path(ch, "tick"))
        self.assertStatus(r, 200)
        nxt = ts_ns(r.json["nextRunAt"])
        self.assertEqual(nxt % S, 0, "@every 1s off whole seconds: %r" % r.json)
        self.assertGreater(nxt, t_spawn, "nextRunAt is in the past: %r" % r.json)
        # then it fires once a second again
        time.sleep(1.3)
        t_list = now_ns()
        evs = self.listing(ch)["events"]
        new = [e for e in evs if ts_ns(e["publishedAt"]) > down_at]
        self.assertLessEqual(len(new), points(t_spawn, t_list))
        self.assertGreaterEqual(len(new), points(t_up + 100 * MS, t_list - 100 * MS),
                                "the job stopped firing after the restart")


    def test_job_and_delayed_event_same_instant_keep_order(self):
        d = self.data_dir()
        srv = self.start(d)
        ch = self.chan("order")
        r = self.req("POST", self.jobs_path(ch), {"name": "tick", "cronDef": "@every 1s", "data": "job"})
        self.assertStatus(r, 201)
        created = ts_ns(r.json["createdAt"])
        self.wait_until(lambda: self.listing(ch)["count"] >= 1, 3, msg="the first fire")
        # due at the very instant of the second fire (a round time, as users pick them)
        self.publish(ch, {"data": "delayed", "publishAt": bb.fmt_ts(created + 2 * S)})
        time.sleep(max(0.0, (created + 2 * S - now_ns()) / S) + 0.3)
        before = [(e["eventID"], e["data"]) for e in self.listing(ch)["events"]]
        self.assertEqual([x[1] for x in before[:3]], ["job", "job", "delayed"], "live order")
        self.stop(srv)
        self.start(d)
        after = [(e["eventID"], e["data"]) for e in self.listing(ch)["events"]]
        self.assertEqual(after[:len(before)], before, "queue order after restart")


# ========================================================= crash load ====

class Model:
    """What the clients were told. Each worker thread mutates only events
    and jobs it made, so for each thing the last acknowledged operation is
    known; an operation without an answer makes its thing "unsure" (either
    outcome is fine once, and the observed one is then adopted)."""

    def __init__(self):
        self.mu = threading.Lock()
        self.events = {}      # id -> dict
        self.jobs = {}        # (ch, name) -> dict
        self.pending = {}     # data -> ch: publishes without an answer
        self.every_id = set()
        self.errors = []

    def add_event(self, ch, e, immediate):
        rec = {"id": e["eventID"], "ch": ch, "data": e["data"], "pub": e["publishedAt"],
               "lives": e["livesUntil"], "lock": e.get("lockedUntil"), "token": e.get("lockToken"),
               "deleted": False, "unsure": False, "immediate": immediate}
        with self.mu:
            self.events[rec["id"]] = rec
            self.every_id.add(rec["id"])
        return rec


class Worker(threading.Thread):
    def __init__(self, model, port, n, channels, acq_channel, stop, mix, data_size):
        super().__init__(daemon=True)
        self.m, self.api, self.n = model, Api(port, timeout=5), n
        self.channels, self.acq, self.stop_ev = channels, acq_channel, stop
        self.mix, self.data_size = mix, data_size
        self.rng = random.Random(n * 7919 + int(time.time()))
        self.mine = []   # my live event records
        self.myjobs = []
        self.seq = 0
        self.ops = 0
        self.tag = uuid.uuid4().hex[:6]

    def fail(self, what, st, body):
        with self.m.mu:
            self.m.errors.append("worker %d: %s -> %s %r" % (self.n, what, st, body))

    def run(self):
        ops = [op for op, w in self.mix for _ in range(w)]
        while not self.stop_ev.is_set():
            op = self.rng.choice(ops)
            try:
                getattr(self, "op_" + op)()
                self.ops += 1
            except (OSError, http.client.HTTPException):
                return  # the server is gone: this op got no answer
            except Exception as e:  # noqa: BLE001
                self.fail("exception", type(e).__name__, str(e))
                return

    def pick(self):
        live = [e for e in self.mine if not e["deleted"]]
        return self.rng.choice(live) if live else None

    def op_publish(self):
        self.seq += 1
        acq = self.acq is not None and self.rng.random() < 0.3
        ch = self.acq if acq else self.rng.choice(self.channels)
        data = "w%d-%d-%s-" % (self.n, self.seq, uuid.uuid4().hex[:8])
        data += "d" * max(0, self.data_size - len(data))
        body = {"data": data}
        x = self.rng.random()
        immediate = True
        if x < 0.15:
            body["publishIn"] = "300ms"
            immediate = False
        elif x < 0.3:
            body["ttl"] = "700ms"
        with self.m.mu:
            self.m.pending[data] = ch
        st, b, _ = self.api.req("POST", "/%s/events" % q(ch), body)
        if st != 201:
            return self.fail("publish", st, b)
        with self.m.mu:
            del self.m.pending[data]
        self.mine.append(self.m.add_event(ch, b, immediate))

    def op_batch(self):
        ch = self.rng.choice(self.channels)
        datas = []
        for _ in range(3):
            self.seq += 1
            datas.append("w%d-%d-%s-b" % (self.n, self.seq, uuid.uuid4().hex[:8]))
        with self.m.mu:
            for d in datas:
                self.m.pending[d] = ch
        st, b, _ = self.api.req("POST", "/%s/events" % q(ch), [{"data": d} for d in datas])
        if st != 201:
            return self.fail("batch", st, b)
        with self.m.mu:
            for d in datas:
                del self.m.pending[d]
        for e in b["events"]:
            self.mine.append(self.m.add_event(ch, e, True))

    def event_op(self, e, method, body, headers=None):
        e["unsure"] = method
        st, b, _ = self.api.req(method, "/%s/events/%s" % (q(e["ch"]), e["id"]), body, headers)
        e["unsure"] = False
        return st, b

    def op_lock(self):
        e = self.pick()
        if not e:
            return
        st, b = self.event_op(e, "PUT", {"action": "LOCK", "ttl": self.rng.choice(["30s", "400ms"])})
        if st == 202:
            e["lock"], e["token"] = b["lockedUntil"], b["lockToken"]
        elif st != 410:
            self.fail("lock", st, b)

    def op_unlock(self):
        e = self.pick()
        if not e:
            return
        st, b = self.event_op(e, "PUT", {"action": "UNLOCK"})
        if st == 202:
            e["lock"] = e["token"] = None
        elif st != 410:
            self.fail("unlock", st, b)

    def op_extend(self):
        e = self.pick()
        if not e or not e["lock"]:
            return
        st, b = self.event_op(e, "PATCH", {"action": "EXTEND", "ttl": "45s"})
        if st == 202:
            e["lock"] = b["lockedUntil"]
        elif st != 410:
            self.fail("extend", st, b)

    def op_delete(self):
        e = self.pick()
        if not e:
            return
        st, b = self.event_op(e, "DELETE", None)
        if st == 202:
            e["deleted"] = True
        elif st != 404:
            self.fail("delete", st, b)

    def op_acquire(self):
        if self.acq is None:
            return
        # without an answer, any of my events there may have been locked
        mine = [e for e in self.mine if e["ch"] == self.acq and not e["deleted"]]
        for e in mine:
            e["unsure"] = "ACQUIRE"
        st, b, _ = self.api.req("POST", "/%s/acquire" % q(self.acq), {"max": 3, "ttl": "20s"})
        for e in mine:
            e["unsure"] = False
        if st != 200:
            return self.fail("acquire", st, b)
        for ev in b["events"]:
            with self.m.mu:
                e = self.m.events.get(ev["eventID"])
            if e is None:
                self.fail("acquire handed out an unknown event", st, ev)
                continue
            e["lock"], e["token"] = ev["lockedUntil"], ev["lockToken"]

    def op_job_add(self):
        self.seq += 1
        ch = self.rng.choice(self.channels)
        name = "job-w%d-%s-%d" % (self.n, self.tag, self.seq)
        j = {"ch": ch, "name": name, "cron": "@every 1h", "data": "jd" + name, "ttl": 60 * S,
             "created": None, "deleted": False, "unsure": True}
        with self.m.mu:
            self.m.jobs[(ch, name)] = j
        st, b, _ = self.api.req("POST", "/%s/jobs" % q(ch), {"name": name, "cronDef": "@every 1h",
                                                           "data": j["data"], "ttl": "1m"})
        if st != 201:
            return self.fail("job add", st, b)
        j["created"], j["unsure"] = b["createdAt"], False
        self.myjobs.append(j)

    def op_job_delete(self):
        live = [j for j in self.myjobs if not j["deleted"]]
        if not live:
            return
        j = self.rng.choice(live)
        j["unsure"] = True
        st, b, _ = self.api.req("DELETE", "/%s/jobs/%s" % (q(j["ch"]), q(j["name"])))
        if st != 202:
            return self.fail("job delete", st, b)
        j["deleted"], j["unsure"] = True, False


DEFAULT_MIX = [("publish", 6), ("batch", 1), ("lock", 4), ("unlock", 1), ("extend", 1), ("delete", 3),
               ("acquire", 2), ("job_add", 1), ("job_delete", 1)]


class LoadMixin:
    """Concurrent load against a server, and the check of a restarted
    server against the model."""

    def run_load(self, model, srv, channels, acq, threads, seconds, mix=DEFAULT_MIX, data_size=40,
                 until=None, crash=True):
        stop = threading.Event()
        ws = [Worker(model, srv.port, i, channels, acq if i == 0 else None, stop, mix, data_size)
              for i in range(threads)]
        for w in ws:
            w.start()
        t0 = time.monotonic()
        deadline = t0 + seconds * SCALE
        while time.monotonic() < deadline and not (until and until(time.monotonic() - t0)):
            time.sleep(0.02)
        if crash:
            self.crash(srv)  # kill -9 while the workers are busy
        stop.set()
        for w in ws:
            w.join(15)
            self.assertFalse(w.is_alive(), "a load thread hangs")
            w.api.close()
        self.assertEqual(model.errors, [], "unexpected answers during the load")
        return sum(w.ops for w in ws)

    def check(self, model, channels):
        """Compares a (restarted) server with the model; then adopts the
        observed outcome of operations that got no answer."""
        api = Api(self.srv.port)
        t0 = now_ns()
        seen = {}
        for ch in channels:
            st, b, _ = api.req("GET", "/%s/events" % q(ch))
            self.assertEqual(st, 200)
            ids = [e["eventID"] for e in b["events"]]
            self.assertEqual(len(ids), len(set(ids)), "an event listed twice in %r" % ch)
            imm = [i for i in ids if i in model.events and model.events[i]["immediate"]]
            self.assertEqual(imm, sorted(imm), "events published at once are not in publish order in %r" % ch)
            for e in b["events"]:
                self.assertNotIn(e["eventID"], seen, "event in two channels")
                seen[e["eventID"]] = (ch, e)
        t1 = now_ns()
        problems = []
        # every listed event is known, or a publish that got no answer
        for eid, (ch, e) in seen.items():
            if eid in model.events:
                continue
            if model.pending.get(e["data"]) == ch:
                del model.pending[e["data"]]
                model.add_event(ch, e, False)["unsure"] = True  # checked from the next round on
                continue
            problems.append("unknown event %s in %r: %r" % (eid, ch, e))
        for eid, m in model.events.items():
            lives, pub = ts_ns(m["lives"]), ts_ns(m["pub"])
            got = seen.get(eid)
            if m["deleted"]:
                if got:
                    problems.append("deleted event came back: %r" % (got[1],))
                continue
            if got is None:
                if lives <= t1 + 50 * MS:
                    continue  # expired (or about to)
                st, b, _ = api.req("GET", "/%s/events/%s" % (q(m["ch"]), eid))
                if st == 404 and m["unsure"] == "DELETE":
                    m["deleted"] = True  # an unanswered DELETE that was applied
                    continue
                if st != 200:
                    problems.append("acknowledged event %s (%r) is missing: GET -> %s" % (eid, m["data"][:40], st))
                    continue
                e = b
                if e["state"] == "scheduled" and pub <= t0:
                    problems.append("event %s due at %s is still scheduled" % (eid, m["pub"]))
            else:
                e = got[1]
                if lives <= t0:
                    problems.append("expired event %s still listed: %r" % (eid, e))
            for k, mk in (("data", "data"), ("publishedAt", "pub"), ("livesUntil", "lives")):
                if e[k] != m[mk]:
                    problems.append("event %s: %s is %r, was acknowledged as %r" % (eid, k, e[k], m[mk]))
            lk = e.get("lockedUntil")
            if m["unsure"]:
                m["lock"], m["unsure"] = lk, False
                continue
            if m["lock"] is None or ts_ns(m["lock"]) <= t0:
                if e["isLocked"] and m["lock"] is None:
                    problems.append("event %s is locked (%s) but its last acknowledged state is unlocked" % (eid, lk))
                elif e["isLocked"]:
                    problems.append("event %s: lock until %s is still on after that" % (eid, m["lock"]))
            elif ts_ns(m["lock"]) > t1 + 50 * MS:
                if lk != m["lock"]:
                    problems.append("event %s: lockedUntil %r, acknowledged %r" % (eid, lk, m["lock"]))
            m["lock"] = lk
        # jobs
        for ch in channels:
            st, b, _ = api.req("GET", "/%s/jobs" % q(ch))
            self.assertEqual(st, 200)
            have = {j["jobID"]: j for j in b["jobs"]}
            for (jch, name), j in model.jobs.items():
                if jch != ch:
                    continue
                got = have.pop(name, None)
                if j["unsure"]:
                    j["deleted"], j["unsure"] = got is None, False
                    if got:
                        j["created"] = got["createdAt"]
                    continue
                if j["deleted"]:
                    if got:
                        problems.append("deleted job %r came back" % name)
                    continue
                if got is None:
                    problems.append("acknowledged job %r in %r is missing" % (name, ch))
                    continue
                want = {"jobID": name, "cron": j["cron"], "data": j["data"], "ttl": j["ttl"],
                        "createdAt": j["created"]}
                if {k: got.get(k) for k in want} != want:
                    problems.append("job %r: %r, acknowledged %r" % (name, got, want))
            for name in have:
                problems.append("unknown job %r in %r" % (name, ch))
        # ids stay unique and grow
        st, b, _ = api.req("POST", "/%s/events" % q(channels[0]), {"data": "probe", "ttl": "1s"})
        self.assertEqual(st, 201)
        model.add_event(channels[0], b, True)
        self.assertGreater(b["eventID"], max(model.every_id - {b["eventID"]}),
                           "a new id is not larger than every id handed out before")
        api.close()
        if problems:
            self.fail("%d problems after restart:\n  %s" % (len(problems), "\n  ".join(problems[:30])))
        return len(seen)


class CrashLoadTest(DurabilityCase, LoadMixin):
    """kill -9 in the middle of a concurrent load, three rounds on one
    data directory, one per -fsync mode."""

    WEIGHT = 6

    def test_kill9_under_load(self):
        d = self.data_dir()
        model = Model()
        channels = [self.chan("load-a"), self.chan("load-b")]
        acq = self.chan("load-acq")
        allch = channels + [acq]
        summary = []
        for rnd, mode in enumerate(["interval", "always", "never"]):
            srv = self.start(d, "-fsync", mode)
            if rnd:
                self.check(model, allch)  # (also checked right after the last crash)
            n = self.run_load(model, srv, channels, acq, threads=5, seconds=random.uniform(0.9, 1.4))
            self.start(d, "-fsync", mode)
            live = self.check(model, allch)
            summary.append("round %d (-fsync %s): %d ops, %d events listed" % (rnd + 1, mode, n, live))
            self.stop(self.srv)
        self.assertGreater(len(model.events), 100, "the load did too little: " + "; ".join(summary))


class RewriteTest(DurabilityCase, LoadMixin):
    """Log rewrite under load with -log-rewrite-min-size 65536, kill -9,
    restart: nothing lost, and the log stays small."""

    WEIGHT = 5
    MIN = 65536

    def rewrites(self, srv):
        return re.findall(r"rewrote the log \S+: (\d+) -> (\d+) bytes", srv.log_text())

    def test_rewrite_under_load_then_kill9(self):
        d = self.data_dir()
        model = Model()
        channels = [self.chan("rw-a"), self.chan("rw-b")]
        acq = self.chan("rw-acq")
        allch = channels + [acq]
        srv = self.start(d, "-log-rewrite-min-size", str(self.MIN))
        # churn: mostly publish and delete, with locks and jobs, 400-byte data
        mix = [("publish", 6), ("delete", 8), ("lock", 2), ("extend", 1), ("acquire", 1), ("job_add", 1),
               ("job_delete", 1), ("batch", 1)]
        n = self.run_load(model, srv, channels, acq, threads=4, seconds=10, mix=mix, data_size=400,
                          until=lambda t: t > 1.0 and len(self.rewrites(srv)) >= 5)
        rw = self.rewrites(srv)
        self.assertGreaterEqual(len(rw), 3, "only %d rewrites after %d operations\n%s" % (len(rw), n, srv.log()))
        for a, b in rw:
            self.assertLess(int(b), int(a), "a rewrite did not shrink the log")
        written = sum(int(a) for a, _ in rw)
        size = log_end(self.log_file(d))
        # without rewrites the file would hold every byte that went through
        # it; a rewrite may be under way at the crash, so allow one growth
        self.assertLess(size, written, "log is %d bytes after %d bytes went through it; rewrites %r"
                        % (size, written, rw))
        srv2 = self.start(d)
        # The rewrites left no damage: replay cuts nothing but a torn tail,
        # which the kill -9 leaves when it lands in the write() of a turn
        # (the kernel copies a write page by page and stops between pages
        # for a fatal signal: seen once under valgrind, a record cut at
        # offset 167553 with 383 bytes dropped, a page boundary). Damage
        # anywhere else refuses the start; and nothing acknowledged is lost
        # (the model's check).
        for line in srv2.log_text().splitlines():
            if "cutting" in line:
                self.assertRegex(line, r"(record|change) cut short \(the server stopped while writing it\)",
                                 "replay cut the log for another reason:\n%s" % srv2.log())
        self.check(model, allch)
        # tokens survive a rewrite: EXTEND with each live lock's token
        n_tok = 0
        for e in list(model.events.values()):
            soon = now_ns() + 2 * S
            if e["deleted"] or not e["lock"] or not e["token"] or min(ts_ns(e["lock"]), ts_ns(e["lives"])) < soon:
                continue
            g = self.get_event(e["ch"], e["id"])
            r = self.lock(e["ch"], e["id"], {"action": "EXTEND", "ttl": "1m", "lockToken": e["token"]})
            self.assertStatus(r, 202, "EXTEND with the token acknowledged before the rewrite and crash "
                              "(event %r, model %r)" % (g.json, e))
            e["lock"] = r.json["lockedUntil"]
            n_tok += 1
            if n_tok == 5:
                break
        # a second start replays the rewritten log plus the new records
        self.stop(srv2)
        self.start(d)
        self.check(model, allch)


    def test_kill9_during_rewrite_restarts_at_once(self):
        if bb.VALGRIND:
            self.skipTest("under valgrind the parent-death signal does not reach the stopped child")
        """The child of a rewrite is caught and stopped (SIGSTOP) so the
        window is as long as a rewrite of a big state on a slow disk."""
        d = self.data_dir()
        srv = self.start(d, "-log-rewrite-min-size", "4000000")
        children = "/proc/%d/task/%d/children" % (srv.proc.pid, srv.proc.pid)
        if not os.path.exists(children):
            self.skipTest("no %s here" % children)
        caught, stop = [], threading.Event()

        def watch():
            while not stop.is_set() and not caught:
                try:
                    with open(children) as f:
                        kids = f.read().split()
                except OSError:
                    return
                for k in kids:
                    try:
                        os.kill(int(k), signal.SIGSTOP)
                        caught.append(int(k))
                    except OSError:
                        pass

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        ch = self.chan("big")
        batch = [{"data": "x" * 150} for _ in range(2000)]
        n = 0
        while not caught and n < 200000:
            r = self.req("POST", self.ev_path(ch), batch)
            self.assertStatus(r, 201)
            n += 2000
        stop.set()
        t.join()
        if not caught:
            self.skipTest("no rewrite child was seen")
        child = caught[0]
        # The child was stopped at once, maybe before it set itself up (its
        # parent-death signal, closing what it inherited): let it run in
        # short steps until it holds no more than stdio, its file and its
        # pipe, as a child busy writing a big state on a slow disk would.
        fd_dir = "/proc/%d/fd" % child
        deadline = time.monotonic() + 5 * SCALE
        while time.monotonic() < deadline:
            try:
                if len(os.listdir(fd_dir)) <= 5:
                    break
            except OSError:
                break
            os.kill(child, signal.SIGCONT)
            time.sleep(0.002)
            stop_process(child, 5 * SCALE)

        def reap():
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        self.addCleanup(reap)
        self.crash(srv)
        time.sleep(0.1)
        problems = []
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=0.5).close()
            problems.append("port %d still accepts connections after the server was killed" % srv.port)
        except OSError:
            pass
        cmd = [bb.BIN, "-address", "127.0.0.1", "-port", str(srv.port), "-data-dir", d]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        try:
            out, _ = p.communicate(timeout=1.5 * SCALE)
            problems.append("a restart right after kill -9 exited with %s: %s"
                            % (p.returncode, out.decode("utf-8", "replace").strip().splitlines()[-1]))
        except subprocess.TimeoutExpired:
            c = bb.Client("127.0.0.1", srv.port)
            self.addCleanup(c.close)
            self.assertEqual(self.wait_until(lambda: c.req("GET", "/%s" % q(ch)).json, 10)["ready"], n)
        self.assertEqual(problems, [])


# ============================================================== faults ====

class FaultTest(DurabilityCase):
    """Damaged logs and bad data directories."""

    WEIGHT = 2

    def make_log(self, n=6):
        """A data dir whose log holds n PUBLISH records (one per event)."""
        d = self.data_dir()
        srv = self.start(d)
        ch = self.chan("fault")
        evs = [self.publish(ch, {"data": "event-%d-%s" % (i, "p" * 40)})["eventID"] for i in range(n)]
        self.stop(srv)
        return d, ch, evs

    def torn(self, tail):
        d, ch, evs = self.make_log()
        path = self.log_file(d)
        size = os.path.getsize(path)
        with open(path, "ab") as f:
            f.write(tail(path))
        srv = self.start(d)
        self.assertEqual(self.ids(ch), evs, "events before the torn tail")
        text = srv.log_text()
        self.assertRegex(text, r"(?i)cut.*offset %d|offset %d.*cut" % (size, size),
                         "no log line says the tail was cut at offset %d\n%s" % (size, srv.log()))
        self.assertEqual(os.path.getsize(path), size, "the torn tail was not cut off the file")
        # and the log goes on working: a new event survives another crash
        eid = self.publish(ch, {"data": "after"})["eventID"]
        self.crash(srv)
        self.start(d)
        self.assertEqual(self.ids(ch), evs + [eid])

    def test_torn_tail_half_record(self):
        self.torn(half_last_record)

    def test_torn_tail_few_bytes(self):
        self.torn(lambda path: b"\x17\x00\x00")

    def test_torn_tail_frame_longer_than_rest(self):
        self.torn(lambda path: struct.pack("<II", 1000, 0xdeadbeef) + b"garbage!!!")

    def test_torn_tail_half_record_then_zeros(self):
        self.torn(lambda path: half_last_record(path) + b"\0" * 4096)

    def test_zeros_after_the_last_change_are_room(self):
        """A running server writes zeros ahead of its records (an fdatasync
        of records written into them need not write a new file length); a
        crash leaves them. They are no damage: no cut, every event, and the
        next record goes where they begin."""
        d, ch, evs = self.make_log()
        path = self.log_file(d)
        size = os.path.getsize(path)
        with open(path, "ab") as f:
            f.write(b"\0" * 65536)
        srv = self.start(d)
        self.assertEqual(self.ids(ch), evs)
        self.assertNotRegex(srv.log_text(), r"(?i)\bcut", "zeros after a whole change were taken for damage")
        self.assertIn("(%d bytes)" % size, srv.log_text(), "the recovery line counts the zeros as log")
        eid = self.publish(ch, {"data": "after"})["eventID"]
        self.crash(srv)
        self.assertGreater(os.path.getsize(path), log_end(path), "no zeros written ahead")
        srv = self.start(d)
        self.assertEqual(self.ids(ch), evs + [eid])
        self.stop(srv)
        self.assertEqual(os.path.getsize(path), log_end(path), "a clean stop left zeros in the file")

    def corrupt(self, n=6, which=1):
        d, ch, evs = self.make_log(n)
        path = self.log_file(d)
        off, ln = records(path)[which]
        with open(path, "rb") as f:
            orig = f.read()
        return d, ch, evs, path, off, ln, orig

    def test_corrupt_middle_record_stops_start(self):
        d, ch, evs, path, off, ln, orig = self.corrupt()
        b = bytearray(orig)
        b[off + FRAME + ln - 5] ^= 0x01  # a byte of the data string
        with open(path, "wb") as f:
            f.write(b)
        rc, out = self.run_fail(d)
        self.assertNotEqual(rc, 0, "server started on a corrupt log:\n" + out)
        self.assertIn(path, out, "the message does not name the file")
        self.assertRegex(out, r"offset %d\b" % off, "the message does not name offset %d" % off)
        self.assertIn("-truncate-corrupt-log", out, "the message does not name the way out")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), bytes(b), "a refused start changed the log")
        # -truncate-corrupt-log keeps the records before
        srv = self.start(d, "-truncate-corrupt-log")
        self.assertEqual(self.ids(ch), evs[:1])
        self.assertRegex(srv.log_text(), r"offset %d" % off)
        self.assertEqual(os.path.getsize(path), off)
        eid = self.publish(ch, {"data": "after"})["eventID"]
        self.assertGreater(eid, evs[-1], "an id of a dropped event could come again")
        self.stop(srv)
        self.start(d)  # no flag needed any more
        self.assertEqual(self.ids(ch), [evs[0], eid])

    def test_corrupt_crc_field(self):
        d, ch, evs, path, off, ln, orig = self.corrupt(which=2)
        b = bytearray(orig)
        b[off + 5] ^= 0x40
        with open(path, "wb") as f:
            f.write(b)
        rc, out = self.run_fail(d)
        self.assertNotEqual(rc, 0, "server started on a corrupt log:\n" + out)
        self.assertRegex(out, r"offset %d\b" % off)

    def test_corrupt_length_field_in_middle(self):
        d, ch, evs, path, off, ln, orig = self.corrupt(which=1)
        b = bytearray(orig)
        b[off + 2] = 0x10  # length 51 -> 1048627: more than is left of the file
        with open(path, "wb") as f:
            f.write(b)
        cmd = [bb.BIN, "-address", "127.0.0.1", "-port", str(bb.free_port()), "-data-dir", d]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = p.communicate(timeout=1.5 * SCALE)
            started = False
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            started = True
        out = out.decode("utf-8", "replace")
        size = os.path.getsize(path)
        self.assertFalse(started, "server started and cut the log at offset %d (%d of %d bytes left; "
                                  "%d acknowledged events after it are lost):\n%s"
                         % (off, size, len(orig), len(evs) - 1, out))
        self.assertRegex(out, r"offset %d\b" % off)

    def test_bad_magic_and_version(self):
        d = self.data_dir()
        os.makedirs(d)
        path = self.log_file(d)
        with open(path, "wb") as f:
            f.write(b"this is not a distribuerad log at all\n")
        rc, out = self.run_fail(d)
        self.assertNotEqual(rc, 0)
        self.assertIn(path, out)
        with open(path, "wb") as f:
            f.write(b"DISTRLOG" + struct.pack("<II", 99, 0))
        rc, out = self.run_fail(d)
        self.assertNotEqual(rc, 0)
        self.assertIn("99", out, "the message does not name the version")

    def test_empty_missing_and_short_logs(self):
        # missing directory: created, with a log that has a header
        d = self.data_dir()
        srv = self.start(d)
        ch = self.chan("e")
        eid = self.publish(ch)["eventID"]
        self.assertTrue(os.path.isdir(d))
        self.crash(srv)
        self.start(d)
        self.assertEqual(self.ids(ch), [eid])
        self.stop(self.srv)
        # empty directory, and an empty or header-only or cut-header log in it
        for content in (None, b"", b"DISTR", b"DISTRLOG" + struct.pack("<II", 1, 0)):
            d = self.data_dir()
            os.makedirs(d)
            if content is not None:
                with open(self.log_file(d), "wb") as f:
                    f.write(content)
            srv = self.start(d)
            self.assertCount(ch, 0, "fresh start with log content %r" % (content,))
            eid = self.publish(ch)["eventID"]
            self.crash(srv)
            self.start(d)
            self.assertEqual(self.ids(ch), [eid], "log content %r" % (content,))
            self.stop(self.srv)
        # a leftover half-written rewrite file is ignored
        d, ch, evs = self.make_log(3)
        with open(os.path.join(d, "distribuerad.log.rewrite"), "wb") as f:
            f.write(b"DISTRLOG\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff")
        self.start(d)
        self.assertEqual(self.ids(ch), evs)

    def test_missing_parent_directory(self):
        """-data-dir a/b/c where a does not exist: created like mkdir -p, or
        a clear error that names the path."""
        base = self.data_dir()
        d = os.path.join(base, "x", "y")
        cmd = [bb.BIN, "-address", "127.0.0.1", "-port", str(bb.free_port()), "-data-dir", d]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = p.communicate(timeout=1.5 * SCALE)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.assertTrue(os.path.isdir(d))
            return
        out = out.decode("utf-8", "replace")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(d, out, "the message does not name the directory")

    def test_data_dir_is_a_file(self):
        """Works as root too (root ignores permission bits, so chmod 555
        proves nothing here)."""
        d = self.data_dir()
        with open(d, "w") as f:
            f.write("not a directory\n")
        rc, out = self.run_fail(d)
        self.assertNotEqual(rc, 0)
        self.assertIn(d, out)
        self.assertIn("Not a directory", out)

    def ro_bind(self, src):
        if not mount_ok():
            self.skipTest("mount is not permitted here")
        dst = tempfile.mkdtemp(prefix="distribuerad-ro-")
        self.addCleanup(shutil.rmtree, dst, True)
        r = subprocess.run(["mount", "--bind", src, dst], stderr=subprocess.PIPE)
        if r.returncode != 0:
            self.skipTest("mount --bind failed: %s" % r.stderr.decode())
        self.addCleanup(subprocess.run, ["umount", dst], stderr=subprocess.DEVNULL)
        r = subprocess.run(["mount", "-o", "remount,ro,bind", dst], stderr=subprocess.PIPE)
        if r.returncode != 0:
            self.skipTest("read-only remount failed: %s" % r.stderr.decode())
        return dst

    def test_read_only_data_dir(self):
        """A read-only bind mount (chmod 555 does not stop root): with a
        log in it and empty."""
        d, ch, evs = self.make_log(2)
        ro = self.ro_bind(d)
        rc, out = self.run_fail(ro)
        self.assertNotEqual(rc, 0, "started on a read-only data directory:\n" + out)
        self.assertIn(ro, out, "the message does not name the directory")
        self.assertIn("Read-only file system", out)
        empty = self.data_dir()
        os.makedirs(empty)
        ro2 = self.ro_bind(empty)
        rc, out = self.run_fail(ro2)
        self.assertNotEqual(rc, 0)
        self.assertIn(ro2, out)
        # the data itself was not touched
        self.start(d)
        self.assertEqual(self.ids(ch), evs)

    def test_two_servers_one_data_dir(self):
        d = self.data_dir()
        self.start(d)
        ch = self.chan("two")
        eid = self.publish(ch)["eventID"]
        rc, out = self.run_fail(d)
        self.assertNotEqual(rc, 0, "a second server started on the same data directory:\n" + out)
        self.assertRegex(out, r"(?i)in use|locked")
        self.assertIn(d, out)
        self.assertEqual(self.ids(ch), [eid], "the first server after the second tried")
        self.publish(ch)


# ====================================================== log defects ====

class LogDefectTest(DurabilityCase):
    """Defects of the log found by review: a change of several records is
    whole or absent after a crash, replay keeps the queue's order, a torn
    tail is cut whatever its data, every accepted event fits a record, and
    a version-1 log is read and rewritten."""

    WEIGHT = 2

    def cut_file(self, path, size):
        with open(path, "r+b") as f:
            f.truncate(size)

    def test_issue_torn_batch_is_all_or_nothing(self):
        """kill -9 during the write() of a 5000-event batch leaves part of
        it; replay must drop the whole batch, not keep the records before
        the tear. Torn inside a record, and exactly between two."""
        for where in ("inside a record", "between records"):
            with self.subTest(torn=where):
                d = self.data_dir()
                srv = self.start(d)
                ch = self.chan("batch")
                before = [self.publish(ch, {"data": "before-%d" % i})["eventID"] for i in range(3)]
                r = self.req("POST", self.ev_path(ch), [{"data": "b%d" % i} for i in range(5000)])
                self.assertStatus(r, 201)
                self.stop(srv)
                path = self.log_file(d)
                recs = records(path)
                self.assertEqual(len(recs), 5003)
                start = recs[3][0]
                off, n = recs[2500]
                self.cut_file(path, off + 10 if where == "inside a record" else off)
                srv = self.start(d)
                self.assertEqual(self.ids(ch), before, "a batch torn at record 2500 of 5000 (%s)" % where)
                self.assertEqual(os.path.getsize(path), start, "the log is not cut where the batch began")
                self.assertRegex(srv.log_text(), r"cut.*offset %d|offset %d.*cut" % (start, start))
                eid = self.publish(ch, {"data": "after"})["eventID"]
                self.crash(srv)
                self.start(d)
                self.assertEqual(self.ids(ch), before + [eid])
                self.stop(self.srv)

    def test_issue_torn_acquire_is_all_or_nothing(self):
        """An acquire of several events is one change: torn, none of its
        locks survive."""
        d = self.data_dir()
        srv = self.start(d)
        ch = self.chan("acq")
        ids = [self.publish(ch, {"data": "e%d" % i})["eventID"] for i in range(4)]
        r = self.req("POST", "/%s/acquire" % q(ch), {"max": 3, "ttl": "10m"})
        self.assertStatus(r, 200)
        self.assertEqual(r.json["count"], 3)
        self.stop(srv)
        path = self.log_file(d)
        recs = records(path)
        self.assertEqual(len(recs), 7)
        off, n = recs[5]  # the second of the three LOCK records
        self.cut_file(path, off + n // 2)
        self.start(d)
        ev = self.listing(ch)["events"]
        self.assertEqual([(e["eventID"], e["state"]) for e in ev], [(i, "ready") for i in ids],
                         "locks of a torn acquire survived")
        self.assertEqual(os.path.getsize(path), recs[4][0])

    def test_issue_job_fires_and_delayed_event_keep_order(self):
        """Two @every 2s jobs created pipelined fire in one tick (on the
        same whole second, or a second apart if their creations straddle
        one), and an event due just after the second fire's time becomes
        visible in that tick too: J1, J2, S live, and the same after a
        restart."""
        d = self.data_dir()
        srv = self.start(d)
        ch = self.chan("order")
        raw = b""
        for name in ("J1", "J2"):
            body = json.dumps({"name": name, "cronDef": "@every 2s", "data": name}).encode()
            raw += bb.http_request_bytes("POST", self.jobs_path(ch), body)
        with socket.create_connection((srv.host, srv.port), timeout=5) as sk:
            sk.sendall(raw)
            got = b""
            while got.count(b"HTTP/1.1 201") < 2:
                chunk = sk.recv(65536)
                self.assertTrue(chunk, "connection closed: %r" % got)
                got += chunk
        jobs = sorted(self.req("GET", self.jobs_path(ch)).json["jobs"], key=lambda j: j["jobID"])
        j1, j2 = (ts_ns(j["nextRunAt"]) for j in jobs)
        self.assertLessEqual(j1, j2, "J2 fires before J1: %r" % jobs)
        self.assertLessEqual(j2 - j1, S, "the jobs were not created one right after the other")
        self.publish(ch, {"data": "S", "publishAt": bb.fmt_ts(j2 + 20000)})  # 20 us after J2's time
        time.sleep(max(0.0, (j2 - now_ns()) / S) + 0.3)
        before = [(e["eventID"], e["data"]) for e in self.listing(ch)["events"]]
        self.assertEqual([x[1] for x in before], ["J1", "J2", "S"], "live order")
        self.crash(srv)
        self.start(d)
        after = [(e["eventID"], e["data"]) for e in self.listing(ch)["events"]]
        self.assertEqual(after[:3], before, "queue order after restart")

    def test_issue_torn_tail_with_a_record_in_its_data(self):
        """An event whose data holds a whole, valid record (for this very
        file) is torn after that record: the tail must still be cut."""
        d = self.data_dir()
        srv = self.start(d)
        ch = self.chan("frame")
        evs = [self.publish(ch, {"data": "e%d" % i})["eventID"] for i in range(3)]
        version, salt, frame = log_format(self.log_file(d))
        # an IDGEN record padded with ASCII until every byte of its frame is
        # ASCII too, so it can travel inside a JSON string
        for k in range(100000):
            pad = b"pad%d" % k
            payload = bytes([10, 0, 0x08]) + struct.pack("<I", len(pad)) + pad
            rec = frame_record(payload, version, salt)
            if all(x < 0x80 for x in rec):
                break
        else:
            self.fail("no ASCII-only record found")
        data = "x" * 40 + rec.decode("ascii") + "y" * 200
        self.publish(ch, {"data": data})
        self.stop(srv)
        path = self.log_file(d)
        off, n = records(path)[-1]
        self.cut_file(path, off + frame + n - 100)  # after the record inside the data
        srv = self.start(d)
        self.assertEqual(self.ids(ch), evs)
        self.assertEqual(os.path.getsize(path), off)
        self.assertRegex(srv.log_text(), r"cut.*offset %d" % off)

    def test_issue_max_data_size_fits_a_record(self):
        """A record is at most 1 GiB: data near that size would be damage
        at replay, so the flags cannot allow it."""
        for flag in ("-max-data-size", "-max-body-size"):
            rc, out = self.run_fail(self.data_dir(), flag, str(1 << 30))
            self.assertEqual(rc, 2, "%s 1 GiB was accepted:\n%s" % (flag, out))
            self.assertIn(flag, out)
        top = int(re.search(r"from \d+ to (\d+)", out).group(1))
        self.assertLessEqual(top, (1 << 30) - 4096)
        self.start(self.data_dir(), "-max-data-size", str(top), "-max-body-size", str(top))
        self.publish(self.chan("top"), {"data": "fits"})

    def test_version_1_log_is_read_and_rewritten(self):
        """A log written by a version-1 server (events, a batch, a lock, a
        delete, an acquire of two, a job) comes back whole and is rewritten
        in the current format."""
        d = self.data_dir()
        os.makedirs(d)
        src = os.path.join(FIXTURES, "log-v1")
        shutil.copy(os.path.join(src, LOG), self.log_file(d))
        with open(os.path.join(src, "expected.json")) as f:
            want = json.load(f)
        for rnd in ("upgrade", "again"):
            srv = self.start(d)
            self.assertEqual(log_format(self.log_file(d))[0], 3, "the log is still version 1")
            for ch in ("orders", "batch"):
                # A version-1 log predates priorities and delivery counts:
                # its events come back at priority 0, each lock it holds
                # counted as one delivery.
                for e in want[ch]:
                    e.setdefault("deliveries", 1 if e["state"] == "locked" else 0)
                    e.setdefault("priority", 0)
                self.assertEqual(self.listing(ch)["events"], want[ch], "%s after %s" % (ch, rnd))
            jobs = self.req("GET", self.jobs_path("orders")).json["jobs"]
            strip = lambda js: [{k: v for k, v in j.items() if k != "nextRunAt"} for j in js]
            self.assertEqual(strip(jobs), strip(want["jobs"]))
            if rnd == "upgrade":
                self.assertIn("version 1", srv.log_text())
                eid = self.publish("orders", {"data": "new", "ttl": "1h"})["eventID"]
                self.assertGreater(eid, max(e["eventID"] for e in want["orders"]))
                want["orders"].append(self.get_event("orders", eid).json)
                self.crash(srv)
        self.assertNotEqual(log_format(self.log_file(d))[1], 0, "the rewritten log has no salt")


# ======================================================== write fails ====

class WriteFailTest(DurabilityCase):
    """A write that fails: 503 with a JSON error, nothing changed, reads
    work, /readyz 503; writes work again once there is room."""

    WEIGHT = 2

    def readyz(self):
        return self.req("GET", "/readyz").status

    def grow(self, srv, ch, n=5):
        return [self.publish(ch, {"data": "seed-%d" % i})["eventID"] for i in range(n)]

    def fsize_prefix(self, limit, ignore_sigxfsz):
        p = ["prlimit", "--fsize=%d" % limit, "--"]
        if ignore_sigxfsz:
            # an ignored signal stays ignored across exec
            return ["sh", "-c", "trap '' XFSZ; exec \"$@\"", "sh"] + p
        return p

    def setup_fsize(self, ignore_sigxfsz):
        if not shutil.which("prlimit"):
            self.skipTest("prlimit is not installed")
        d = self.data_dir()
        ch = "c" * 150 + uuid.uuid4().hex[:8]  # long: every record on it is > 200 bytes
        srv = self.start(d)
        seed = self.grow(srv, ch)
        r = self.lock(ch, seed[2], {"ttl": "10m"})
        self.assertStatus(r, 202)
        self.locked_until = r.json["lockedUntil"]
        self.assertStatus(self.req("POST", self.jobs_path(ch), {"name": "j0", "cronDef": NO_FIRE}), 201)
        self.stop(srv)
        limit = os.path.getsize(self.log_file(d)) + 2000
        srv = self.start(d, prefix=self.fsize_prefix(limit, ignore_sigxfsz))
        return d, ch, seed, srv, limit

    def test_file_size_limit_does_not_kill(self):
        """SIGXFSZ (sent with EFBIG) must not end the process; the shell
        prefix of test_file_size_limit ignores it, this one does not."""
        d, ch, seed, srv, limit = self.setup_fsize(ignore_sigxfsz=False)
        st = None
        for i in range(10):
            try:
                st = self.c.req("POST", self.ev_path(ch), {"data": "z" * 600}).status
            except AssertionError as e:
                self.fail("publish %d near the file-size limit: %s; server %s\n%s"
                          % (i, e, "exited with status %s" % srv.proc.poll() if not srv.alive() else "alive",
                             srv.log()))
            if st != 201:
                break
        self.assertEqual(st, 503)

    def test_file_size_limit(self):
        d, ch, seed, srv, limit = self.setup_fsize(ignore_sigxfsz=True)
        acked = list(seed)
        # fill up to the limit: big events, then small ones
        for size in (600, 1):
            for _ in range(50):
                r = self.req("POST", self.ev_path(ch), {"data": "z" * size})
                if r.status != 201:
                    break
                acked.append(r.json["eventID"])
            self.assertError(r, 503, what="publish past the file-size limit")
        self.assertLessEqual(os.path.getsize(self.log_file(d)), limit)
        self.assertGreater(len(acked), len(seed) + 1, "nothing could be published under the limit")
        before = self.listing(ch)
        self.assertEqual([e["eventID"] for e in before["events"]], acked)
        # every kind of change is refused and leaves nothing behind
        r = self.req("POST", self.ev_path(ch), [{"data": "b1"}, {"data": "b2"}])
        self.assertError(r, 503, what="batch publish")
        self.assertError(self.lock(ch, seed[0], {"ttl": "1m"}), 503, what="LOCK")
        r = self.req("POST", "/%s/acquire" % q(ch), {"max": 2})
        self.assertError(r, 503, what="acquire")
        self.assertError(self.delete(ch, seed[1]), 503, what="DELETE")
        r = self.req("POST", self.jobs_path(ch), {"name": "j", "cronDef": "@every 1h"})
        self.assertError(r, 503, what="job add")
        self.assertError(self.lock(ch, seed[2], {"action": "UNLOCK"}), 503, what="UNLOCK")
        self.assertError(self.lock(ch, seed[2], {"action": "EXTEND", "ttl": "1h"}), 503, what="EXTEND")
        self.assertError(self.req("DELETE", self.jobs_path(ch, "j0")), 503, what="job delete")
        self.assertStatus(self.req("GET", self.jobs_path(ch, "j0")), 200, "GET of a job whose delete was refused")
        self.assertEqual(self.listing(ch), before, "a refused change changed the listing")
        self.assertEqual(before["events"][2]["lockedUntil"], self.locked_until)
        self.assertStatus(self.req("GET", self.jobs_path(ch, "j")), 404, "GET of a job whose add was refused")
        r = self.get_event(ch, seed[0])
        self.assertStatus(r, 200)
        self.assertEqual(r.json["state"], "ready", "a refused LOCK locked the event")
        # reads work, readiness tells
        self.assertStatus(self.req("GET", "/healthz"), 200)
        self.assertEqual(self.readyz(), 503, "/readyz while writes fail")
        self.assertStatus(self.req("GET", "/channels"), 200)
        self.assertTrue(srv.alive())
        self.assertIn("writing the log", srv.log_text())
        # the file holds whole records only: a restart without the limit
        # finds exactly what was acknowledged, and cuts nothing
        self.stop(srv)
        srv = self.start(d)
        self.assertNotIn("cutting", srv.log_text())
        self.assertEqual(self.ids(ch), acked)
        self.assertEqual(self.readyz(), 200)

    # ---- many requests in one loop turn share one write
    def one_turn(self, srv, reqs):
        """Sends each (method, path, body) on its own connection while the
        server is stopped (SIGSTOP), so all arrive in one turn of its loop;
        returns the answers as (status, body)."""
        socks = []
        for _ in reqs:  # connected and served once first: accepted before the stop
            s = socket.create_connection((srv.host, srv.port), timeout=10 * SCALE)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            r = http.client.HTTPResponse(s)
            r.begin()
            r.read()
            socks.append(s)
        # A server still running (a timer fired) could return from epoll
        # with the first requests and serve them in a turn of their own:
        # send once it is stopped.
        if not stop_process(srv.proc.pid, 5 * SCALE):
            self.fail("the server did not stop on SIGSTOP")
        try:
            for s, (method, path, body) in zip(socks, reqs):
                b = json.dumps(body).encode() if body is not None else b""
                s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Content-Length: %d\r\n\r\n" % (method, path, len(b))).encode() + b)
            time.sleep(0.2)
        finally:
            srv.proc.send_signal(signal.SIGCONT)
        out = []
        for s in socks:
            r = http.client.HTTPResponse(s)
            r.begin()
            body = r.read()
            out.append((r.status, json.loads(body) if body else None))
            s.close()
        return out

    def turn_fails_whole(self, srv, ch, seed):
        """A turn of changes too big for the room left: none of them is
        acknowledged or visible, the state is as before the turn, and the
        next change, written alone, works if it fits."""
        before = self.listing(ch)
        reqs = [("POST", self.ev_path(ch), {"data": "t%02d" % i + "z" * 600}) for i in range(16)]
        reqs += [("PUT", self.ev_path(ch, seed[0]), {"action": "LOCK", "ttl": "1m"}),
                 ("DELETE", self.ev_path(ch, seed[1]), None),
                 ("POST", "/%s/acquire" % q(ch), {"max": 1}),
                 ("GET", self.ev_path(ch), None)]
        got = self.one_turn(srv, reqs)
        # the read may have come first in the turn, before any change
        if got[-1] == (200, before):
            got[-1] = (503, None)
        self.assertEqual([st for st, _ in got], [503] * len(reqs),
                         "a turn whose write failed acknowledged or showed some of its changes: %s"
                         % [(st, b) for st, b in got if st != 503])
        self.assertTrue(srv.alive(), srv.log())
        self.assertIn("were undone", srv.log_text())
        self.assertEqual(self.listing(ch), before, "a failed turn left changes behind")
        r = self.get_event(ch, seed[0])
        self.assertStatus(r, 200)
        self.assertEqual(r.json["state"], "ready", "a LOCK of the failed turn stayed")

    def test_turn_of_many_past_file_size_limit(self):
        d, ch, seed, srv, limit = self.setup_fsize(ignore_sigxfsz=True)
        acked = list(seed)
        self.turn_fails_whole(srv, ch, seed)
        r = self.req("POST", self.ev_path(ch), {"data": "small"})
        self.assertStatus(r, 201, "a change that fits, after the failed turn")
        acked.append(r.json["eventID"])
        self.assertEqual(self.ids(ch), acked)
        self.stop(srv)
        self.start(d)
        self.assertEqual(self.ids(ch), acked)

    # ---- a full file system: a tiny tmpfs
    def tmpfs(self, size="512k"):
        if not mount_ok():
            self.skipTest("mount is not permitted here")
        m = tempfile.mkdtemp(prefix="distribuerad-tmpfs-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", m], stderr=subprocess.PIPE)
        if r.returncode != 0:
            os.rmdir(m)
            self.skipTest("mount -t tmpfs failed: %s" % r.stderr.decode())
        self.addCleanup(os.rmdir, m)
        self.addCleanup(subprocess.run, ["umount", "-l", m], stderr=subprocess.DEVNULL)
        return m

    def fill_and_fail(self, args=()):
        m = self.tmpfs()
        d = os.path.join(m, "data")
        srv = self.start(d, *args)
        ch = self.chan("full")
        acked = self.grow(srv, ch, 3)
        filler = fill_fs(m)
        before = self.listing(ch)
        # tmpfs hands out whole pages: a 9000-byte record cannot fit
        r = self.req("POST", self.ev_path(ch), {"data": "F" * 9000})
        self.assertError(r, 503, what="publish on a full disk")
        self.assertEqual(self.listing(ch), before)
        self.assertEqual(self.readyz(), 503)
        return m, d, srv, ch, acked, filler

    def test_disk_full_then_room_again(self):
        m, d, srv, ch, acked, filler = self.fill_and_fail()
        os.unlink(filler)
        r = self.req("POST", self.ev_path(ch), {"data": "F" * 9000})
        self.assertStatus(r, 201, "publish once the disk has room again (no restart)")
        acked.append(r.json["eventID"])
        self.assertEqual(self.readyz(), 200)
        self.assertIn("works again", srv.log_text())
        self.crash(srv)
        self.start(d)
        self.assertEqual(self.ids(ch), acked)

    def test_turn_of_many_on_a_full_disk(self):
        m = self.tmpfs()
        d = os.path.join(m, "data")
        srv = self.start(d)
        ch = self.chan("fullturn")
        acked = self.grow(srv, ch, 3)
        filler = fill_fs(m)
        self.turn_fails_whole(srv, ch, acked)
        os.unlink(filler)
        got = self.one_turn(srv, [("POST", self.ev_path(ch), {"data": "ok%d" % i}) for i in range(8)])
        self.assertEqual([st for st, _ in got], [201] * 8, "a turn once the disk has room again")
        acked += [b["eventID"] for _, b in got]
        self.assertEqual(sorted(self.ids(ch)), sorted(acked))
        self.crash(srv)
        self.start(d)
        self.assertEqual(sorted(self.ids(ch)), sorted(acked))

    def test_readyz_recovers_without_a_write(self):
        m, d, srv, ch, acked, filler = self.fill_and_fail()
        os.unlink(filler)
        deadline = time.monotonic() + 3 * SCALE
        while self.readyz() != 200:
            if time.monotonic() > deadline:
                self.fail("/readyz still 503 3 s after the disk has room again (no write was tried)")
            time.sleep(0.1)

    def test_failed_rewrite_backs_off(self):
        m = self.tmpfs("1m")
        d = os.path.join(m, "data")
        srv = self.start(d, "-log-rewrite-min-size", "60000")
        ch = self.chan("rwfull")
        for i in range(50):
            self.publish(ch, {"data": "a" * 1000})
        # leave 16 KiB: enough for the log to pass 60000 bytes, not for a rewrite
        st = os.statvfs(m)
        with open(os.path.join(m, "filler"), "wb") as f:
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 16384))
        for i in range(12):
            self.req("POST", self.ev_path(ch), {"data": "a" * 1000})
        self.assertGreater(os.path.getsize(self.log_file(d)), 60000)
        deadline, k = time.monotonic() + 1.5, 0
        while time.monotonic() < deadline:
            self.req("GET", "/%s" % q(ch))
            k += 1
        n = len(re.findall(r"rewriting the log .* failed", srv.log_text()))
        self.assertGreater(n, 0, "no rewrite was tried:\n%s" % srv.log())
        self.assertLessEqual(n, 5, "%d failed rewrites (and error lines) in 1.5 s (%d requests)" % (n, k))


class WriteFailAlwaysTest(WriteFailTest):
    """WriteFailTest's cases with -fsync always, where every answer also
    waits for an fsync: a write that fails must leave no answer waiting
    for positions that were never written."""

    def start(self, data_dir, *args, prefix=None):
        if "-fsync" not in args:
            args = args + ("-fsync", "always")
        return super().start(data_dir, *args, prefix=prefix)

    def test_reads_after_failed_writes(self):
        """With -fsync always an answer waits for the fsync of what it
        shows. After a turn whose write failed (the first refusal) and a
        change refused alone (the next ones), reads are answered at once,
        not held for positions that were never written."""
        m, d, srv, ch, acked, filler = self.fill_and_fail()
        for i in range(3):
            r = self.req("POST", self.ev_path(ch), {"data": "G" * 9000})
            self.assertError(r, 503, what="publish %d on a full disk" % i)
            t = time.monotonic()
            self.assertEqual(self.ids(ch), acked)
            self.assertStatus(self.get_event(ch, acked[0]), 200)
            self.assertStatus(self.req("GET", "/channels"), 200)
            self.assertLess(time.monotonic() - t, 1.0 * SCALE, "reads waited after a refused write")


# ============================================================= fsync ====

class FsyncModesTest(DurabilityCase):
    WEIGHT = 2

    def test_modes_survive_kill9(self):
        for mode in ("always", "interval", "never"):
            with self.subTest(fsync=mode):
                d = self.data_dir()
                srv = self.start(d, "-fsync", mode)
                ch = self.chan(mode)
                ids = [self.publish(ch, {"data": "%s-%d" % (mode, i)})["eventID"] for i in range(20)]
                r = self.req("POST", self.ev_path(ch), [{"data": "b%d" % i} for i in range(5)])
                self.assertStatus(r, 201)
                ids += [e["eventID"] for e in r.json["events"]]
                r = self.lock(ch, ids[3], {"ttl": "10m"})
                self.assertStatus(r, 202)
                until = r.json["lockedUntil"]
                self.assertStatus(self.delete(ch, ids[4]), 202)
                del ids[4]
                self.assertStatus(self.req("POST", self.jobs_path(ch), {"name": "j", "cronDef": NO_FIRE}), 201)
                if mode != "always":
                    time.sleep(0.15)  # interval: the next sync is at most 50 ms away
                self.crash(srv)
                self.start(d, "-fsync", mode)
                ev = self.listing(ch)["events"]
                self.assertEqual([e["eventID"] for e in ev], ids)
                self.assertEqual(ev[3].get("lockedUntil"), until)
                self.assertStatus(self.req("GET", self.jobs_path(ch, "j")), 200)
                self.stop(self.srv)

    def test_fsync_metrics(self):
        d = self.data_dir()
        self.start(d, "-fsync", "always")
        ch = self.chan("m")
        for i in range(5):
            self.publish(ch)
        r = self.req("GET", "/metrics")
        self.assertStatus(r, 200)
        text = r.raw.decode()
        m = re.search(r"^distribuerad_log_bytes_written_total (\d+)", text, re.M)
        self.assertTrue(m and int(m.group(1)) > 0, "no log bytes in /metrics")
        self.assertRegex(text, r"(?m)^distribuerad_\w*fsync\w* ")

    def test_always_with_rewrite(self):
        d = self.data_dir()
        srv = self.start(d, "-fsync", "always", "-log-rewrite-min-size", "16384")
        ch = self.chan("alw")
        hung, stop = [], threading.Event()

        def client(k):
            api = Api(srv.port, timeout=2)
            try:
                while not stop.is_set() and not hung:
                    st, b, _ = api.req("POST", self.ev_path(ch), {"data": "x" * 100})
                    if st == 201:
                        api.req("DELETE", self.ev_path(ch, b["eventID"]))
            except (OSError, http.client.HTTPException) as e:
                hung.append("client %d: no answer within 2 s (%r)" % (k, e))
            finally:
                api.close()

        ts = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(4)]
        for t in ts:
            t.start()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not hung and srv.log_text().count("rewrote the log") < 8:
            time.sleep(0.05)
        stop.set()
        for t in ts:
            t.join(5)
        n = srv.log_text().count("rewrote the log")
        self.assertEqual(hung, [], "after %d rewrites" % n)
        self.assertGreater(n, 0, "no rewrite happened")


# ======================================================= sync order ====

class SyncOrderTest(DurabilityCase):
    """-fsync always answers a change only after an fdatasync that began
    after the change was written has ended. fixtures/slowsync.c, preloaded,
    makes every fdatasync take SYNC_MS: an answer that came sooner was sent
    before the sync that covers it (for instance on the end of a sync that
    was already running when its change was written)."""
    SYNC_MS = 200

    def setUp(self):
        super().setUp()
        tmp = tempfile.mkdtemp(prefix="distribuerad-slowsync-")
        self.addCleanup(shutil.rmtree, tmp, True)
        self.shim = os.path.join(tmp, "slowsync.so")
        cc = subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", self.shim,
                             os.path.join(FIXTURES, "slowsync.c"), "-ldl"], capture_output=True, text=True)
        if cc.returncode != 0:
            self.skipTest("cannot build the fdatasync shim: %s" % cc.stderr[-300:])

    def start_slow(self):
        srv = DServer(self.data_dir(), ["-fsync", "always"])
        srv.env = dict(os.environ, TZ="UTC", LD_PRELOAD=self.shim, SLOWSYNC_MS=str(self.SYNC_MS))
        self.servers.append(srv)
        self.addCleanup(srv.cleanup)
        srv.start()
        return srv

    def raw_publish(self, ch, data):
        body = json.dumps({"data": data}).encode()
        return (b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (self.ev_path(ch).encode(), len(body))) + body

    def busy(self, srv, ch):
        """Publishes on a connection of its own until stopped, so a sync is
        running whenever another request arrives."""
        stop = threading.Event()

        def loop():
            api = Api(srv.port, timeout=5)
            try:
                while not stop.is_set():
                    api.req("POST", self.ev_path(ch), {"data": "bg"})
            finally:
                api.close()

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        self.addCleanup(t.join, 5)
        self.addCleanup(stop.set)
        time.sleep(0.1)

    def test_answer_waits_for_a_sync_begun_after_its_write(self):
        srv = self.start_slow()
        ch = self.chan("order")
        self.busy(srv, ch)
        api = Api(srv.port, timeout=5)
        self.addCleanup(api.close)
        for i in range(6):
            t0 = time.monotonic()
            st, b, _ = api.req("POST", self.ev_path(ch), {"data": "p%d" % i})
            took = time.monotonic() - t0
            self.assertEqual(st, 201, b)
            self.assertGreaterEqual(took * 1000, self.SYNC_MS,
                                    "publish %d answered %.0f ms after it was sent: before the sync "
                                    "that covers it could end" % (i, took * 1000))
            time.sleep(random.uniform(0, self.SYNC_MS / 1000))

    def test_pipelined_and_closed_while_waiting(self):
        srv = self.start_slow()
        ch = self.chan("held")
        raw = bb.RawConn(srv.host, srv.port, timeout=5 * SCALE)
        self.addCleanup(raw.close)
        raw.send(self.raw_publish(ch, "a"))
        time.sleep(0.05)  # "a" waits for its sync; "b" arrives meanwhile
        t0 = time.monotonic()
        raw.send(self.raw_publish(ch, "b"))
        ra, rb = raw.read_response(), raw.read_response()
        took = time.monotonic() - t0
        self.assertEqual((ra.status, rb.status), (201, 201), (ra.json, rb.json))
        self.assertGreaterEqual(took * 1000, self.SYNC_MS)
        # A client that leaves while its answer waits: its change stays,
        # and the server goes on.
        gone = bb.RawConn(srv.host, srv.port, timeout=5 * SCALE)
        gone.send(self.raw_publish(ch, "c"))
        time.sleep(0.05)
        gone.close()
        raw.send(self.raw_publish(ch, "d"))
        self.assertEqual(raw.read_response().status, 201)
        api = Api(srv.port, timeout=5)
        self.addCleanup(api.close)
        st, b, _ = api.req("GET", self.ev_path(ch))
        self.assertEqual(st, 200, b)
        self.assertEqual(sorted(e["data"] for e in b["events"]), ["a", "b", "c", "d"])


if __name__ == "__main__":
    unittest.main()
