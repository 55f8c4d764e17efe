"""The dq command-line client, run as a program against the real server.

Each command: what it sends (checked through the HTTP API), its JSON on
stdout, the server's error on stderr, exit status 0 (done), 1 (the server
refused) and 2 (usage, or no server). dq work: the command gets the data on
stdin and DQ_* in its environment; exit 0 deletes the event, anything else
unlocks it; the lease is extended while the command runs; SIGTERM stops
taking events, lets running commands finish and exits 0.

dq is found beside the server binary (./dq, or build-san/dq for the
sanitizer build) or at $BLACKBOX_DQ; under --valgrind it runs in valgrind
too.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import bb
from bb import SCALE, q

HERE = os.path.dirname(os.path.abspath(__file__))
DQ = os.environ.get("BLACKBOX_DQ") or os.path.join(os.path.dirname(bb.BIN), "dq")
WORKER = os.path.join(HERE, "dq_worker.py")
COMMANDS = ["publish", "list", "get", "acquire", "lock", "unlock", "extend", "delete", "purge",
            "stats", "channels", "settings", "redrive", "ready", "jobs", "job get", "job add", "job put",
            "job rm", "job pause", "job resume", "job trigger", "job next", "work"]


def dq_argv(args):
    cmd = [DQ] + list(args)
    if bb.VALGRIND:
        cmd = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
               "--error-exitcode=99"] + cmd
    return cmd


def own_stderr(raw):
    """dq's stderr without valgrind's notes ("--pid-- WARNING: unhandled
    syscall" for pidfd_open, which dq then does without)."""
    text = raw.decode("utf-8", "replace")
    if bb.VALGRIND:
        text = "".join(ln for ln in text.splitlines(True) if not re.match(r"--\d+-- ", ln))
    return text


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTRIBUERAD_", "DQ_"))}
    env.update(extra)
    return env


class DqCase(bb.ServerTestCase):
    TOKEN = None

    @classmethod
    def setUpClass(cls):
        if not os.access(DQ, os.X_OK):
            raise AssertionError("%s is not built (make builds dq beside the server)" % DQ)
        super().setUpClass()

    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def env(self, **extra):
        e = clean_env(DISTRIBUERAD_URL=self.url())
        if self.TOKEN:
            e["DISTRIBUERAD_AUTH_TOKEN"] = self.TOKEN
        e.update(extra)
        return e

    def run_dq(self, *args, stdin=b"", env=None, timeout=20.0):
        p = subprocess.run(dq_argv(args), input=stdin, env=env or self.env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout * SCALE)
        return p.returncode, p.stdout.decode("utf-8", "replace"), own_stderr(p.stderr)

    def dq(self, *args, expect=0, **kw):
        """Runs dq, asserts its exit status; returns (stdout, stderr)."""
        rc, out, err = self.run_dq(*args, **kw)
        self.assertEqual(rc, expect, "dq %s: exit %d, want %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), rc, expect, out[:800], err[:800]))
        if expect == 0:
            self.assertEqual(err, "", "dq %s wrote to stderr: %s" % (" ".join(args), err))
        return out, err

    def dq_json(self, *args, **kw):
        out, _ = self.dq(*args, **kw)
        self.assertTrue(out.endswith("\n"), "stdout does not end with a newline: %r" % out[-50:])
        return json.loads(out)

    def refused(self, status, *args, mention=None, **kw):
        """dq ... exits 1, prints nothing on stdout and the server's error
        (its sentence and status) on stderr."""
        out, err = self.dq(*args, expect=1, **kw)
        self.assertEqual(out, "", "stdout of a refused command: %r" % out)
        self.assertIn("HTTP %d" % status, err)
        self.assertTrue(err.startswith("dq: ") and err.endswith("\n") and err.count("\n") == 1,
                        "stderr is not one 'dq: ...' line: %r" % err)
        if mention:
            self.assertIn(mention.lower(), err.lower())
        return err


class DqCommandsTest(DqCase):
    def test_help(self):
        out, _ = self.dq("--help")
        for name in COMMANDS:
            self.assertIn("  " + name + " ", out, "dq --help does not list %r" % name)
        for word in ("DISTRIBUERAD_URL", "DISTRIBUERAD_AUTH_TOKEN", "Exit status"):
            self.assertIn(word, out)
        for name in COMMANDS:
            out, _ = self.dq(*(name.split() + ["--help"]))
            self.assertTrue(out.startswith("usage: dq [-s URL] %s" % name), out[:200])
        out, _ = self.dq("job", "--help")
        self.assertIn("trigger", out)

    def test_usage_errors(self):
        cases = [[], ["frobnicate"], ["publish"], ["get", "c"], ["get", "c", "id", "extra"],
                 ["publish", "c", "--nope"], ["publish", "c", "--ttl"], ["acquire", "c", "--max", "x"],
                 ["publish", "c", "{", "--json"], ["job", "frob", "c", "n"], ["job"], ["work", "c"],
                 ["work", "c", "--parallel", "0", "--", "true"], ["work", "c", "--ttl", "soon", "--", "true"],
                 ["-s"], ["--bogus", "channels"]]
        for args in cases:
            with self.subTest(args=args):
                out, err = self.dq(*args, expect=2, env=self.env(DISTRIBUERAD_URL="http://127.0.0.1:9"))
                self.assertEqual(out, "")
                self.assertTrue(err.startswith("dq"), err)

    def test_unreachable_server(self):
        port = bb.free_port()
        for how in (["-s", "http://127.0.0.1:%d" % port], ["--server=http://127.0.0.1:%d" % port]):
            out, err = self.dq(*(how + ["channels"]), expect=2)
            self.assertEqual(out, "")
            self.assertIn("cannot reach", err)
        out, err = self.dq("stats", "c", expect=2, env=self.env(DISTRIBUERAD_URL="http://127.0.0.1:%d" % port))
        self.assertIn("127.0.0.1:%d" % port, err)

    def test_server_flag_wins_over_environment(self):
        ch = self.chan()
        self.dq("-s", self.url(), "publish", ch, "x", env=self.env(DISTRIBUERAD_URL="http://127.0.0.1:9"))
        self.dq("publish", ch, "y", "-s", self.url() + "/", env=self.env(DISTRIBUERAD_URL="http://127.0.0.1:9"))
        self.assertCount(ch, 2)

    def test_publish_list_get_delete(self):
        ch = self.chan()
        ev = self.dq_json("publish", ch, 'order "1001"\tpaid', "--ttl", "1h")
        self.assertEqual(ev["data"], 'order "1001"\tpaid')
        self.assertEqual(bb.ts_ns(ev["livesUntil"]) - bb.ts_ns(ev["publishedAt"]), 3600 * bb.S)
        self.assertEqual(self.ids(ch), [ev["eventID"]])
        listing = self.dq_json("list", ch)
        self.assertEqual(listing, self.listing(ch))
        got = self.dq_json("get", ch, ev["eventID"])
        self.assertEqual(got["eventID"], ev["eventID"])
        out, _ = self.dq("delete", ch, ev["eventID"])
        self.assertCount(ch, 0)
        self.refused(404, "get", ch, ev["eventID"], mention="no such event")
        self.refused(404, "delete", ch, ev["eventID"])

    def test_publish_data_from_stdin_and_names_escaped(self):
        ch = "dq %%%s ü?#&+" % self.chan()
        data = "line 1\nline 2 \u00e5\u00e4\u00f6 \"q\" \\ end"
        ev = self.dq_json("publish", ch, "-", stdin=data.encode())
        self.assertEqual(ev["data"], data)
        r = self.get_event(ch, ev["eventID"])
        self.assertStatus(r, 200)
        self.assertEqual(r.json["data"], data)
        stats = self.dq_json("stats", ch)
        self.assertEqual(stats["channelName"], ch)
        self.assertEqual(self.dq_json("publish", ch)["data"], "")
        self.assertEqual(self.dq_json("publish", ch, "--ttl", "1m", "--", "-5")["data"], "-5")

    def test_publish_delayed(self):
        ch = self.chan()
        ev = self.dq_json("publish", ch, "later", "--in", "1h")
        self.assertEqual(ev["state"], "scheduled")
        at = bb.fmt_ts(bb.now_ns() + 7200 * bb.S)
        ev2 = self.dq_json("publish", ch, "at", "--at", at)
        self.assertEqual(ev2["publishedAt"], at)
        self.assertCount(ch, 0)

    def test_publish_batch(self):
        ch = self.chan()
        body = json.dumps([{"data": "a"}, {"data": "b", "ttl": "1m"}]).encode()
        out = self.dq_json("publish", ch, "--batch", stdin=body)
        self.assertEqual(out["count"], 2)
        self.assertEqual([e["data"] for e in self.listing(ch)["events"]], ["a", "b"])
        self.dq("publish", ch, "--batch", stdin=b'{"data":"a"}', expect=2)
        self.refused(400, "publish", ch, "--batch", stdin=b"[]")

    def test_refusals_on_stderr(self):
        ch = self.chan()
        self.refused(400, "publish", ch, "x", "--ttl", "soon", mention="ttl")
        self.refused(400, "acquire", ch, "--max", "0", mention="max")
        self.assertCount(ch, 0)

    def test_acquire_and_leases(self):
        ch = self.chan()
        ids = [self.dq_json("publish", ch, "e%d" % i)["eventID"] for i in range(3)]
        got = self.dq_json("acquire", ch, "--max", "2", "--ttl", "30s")
        self.assertEqual([e["eventID"] for e in got["events"]], ids[:2])
        tok = got["events"][0]["lockToken"]
        e0 = ids[0]
        self.refused(410, "lock", ch, e0)
        self.refused(409, "extend", ch, e0, "--token", "0000000000000000", "--ttl", "1h")
        self.dq("extend", ch, e0, "--token", tok, "--ttl", "1h")
        until = bb.ts_ns(self.get_event(ch, e0).json["lockedUntil"])
        self.assertGreater(until, bb.now_ns() + 3000 * bb.S)
        self.refused(409, "delete", ch, e0, "--token", "0000000000000000")
        self.dq("unlock", ch, e0, "--token", tok)
        self.assertEqual(self.get_event(ch, e0).json["state"], "ready")
        lk = self.dq_json("lock", ch, e0, "--ttl", "1m")
        self.assertTrue(lk["isLocked"])
        self.dq("delete", ch, e0, "--token", lk["lockToken"])
        self.assertEqual(self.ids(ch), ids[1:])

    def test_acquire_waits(self):
        ch = self.chan()
        t0 = time.monotonic()
        got = self.dq_json("acquire", ch, "--wait", "400ms")
        self.assertEqual(got["count"], 0)
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)

    def test_ready(self):
        self.assertEqual(self.dq_json("ready"), {"status": "ok"})

    def test_stats_and_channels(self):
        ch = self.chan()
        self.dq("publish", ch, "x")
        st = self.dq_json("stats", ch)
        self.assertEqual((st["channelName"], st["ready"], st["published"]), (ch, 1, 1))
        names = [c["channelName"] for c in self.dq_json("channels")["channels"]]
        self.assertIn(ch, names)

    def test_jobs(self):
        ch = self.chan()
        job = self.dq_json("job", "add", ch, "nightly", "CRON_TZ=Europe/Berlin 0 2 * * *", "build it", "--ttl", "1h")
        self.assertEqual((job["jobID"], job["data"], job["ttl"]), ("nightly", "build it", 3600 * bb.S))
        self.refused(409, "job", "add", ch, "nightly", "@hourly")
        self.refused(400, "job", "add", ch, "bad", "61 * * * *")
        self.assertEqual(self.dq_json("jobs", ch)["jobs"], self.req("GET", "/%s/jobs" % q(ch)).json["jobs"])
        self.assertEqual(self.dq_json("job", "get", ch, "nightly")["cron"], "CRON_TZ=Europe/Berlin 0 2 * * *")
        nxt = self.dq_json("job", "next", ch, "nightly", "3")
        self.assertEqual(nxt["jobID"], "nightly")
        if "nextRuns" in nxt:
            self.assertEqual(len(nxt["nextRuns"]), 3)
        self.dq("job", "rm", ch, "nightly")
        self.refused(404, "job", "rm", ch, "nightly")
        self.refused(404, "job", "get", ch, "nightly")

    # ---- Part C routes
    def test_purge(self):
        ch = self.chan()
        self.dq("publish", ch, "x")
        self.dq("publish", ch, "y")
        self.assertEqual(self.dq_json("purge", ch)["deleted"], 2)
        self.assertCount(ch, 0)
        self.refused(404, "purge", self.chan("none"))

    def test_settings(self):
        ch = self.chan()
        self.assertEqual(self.dq_json("settings", ch)["maxDeliveries"], 0)
        s = self.dq_json("settings", ch, "--max-deliveries", "3", "--dead-letter", ch + "-dl",
                         "--retry-delay", "1500ms")
        self.assertEqual((s["maxDeliveries"], s["deadLetterChannel"], s["retryDelay"]), (3, ch + "-dl", "1.5s"))
        self.assertEqual(self.dq_json("settings", ch), s)
        self.refused(400, "settings", ch, "--dead-letter", ch)

    def test_redrive(self):
        ch = self.chan()
        self.assertEqual(self.dq_json("redrive", ch, "--max", "5")["moved"], 0)

    def test_job_put_pause_resume_trigger(self):
        ch = self.chan()
        self.assertEqual(self.dq_json("job", "put", ch, "j", "@hourly", "d1")["data"], "d1")
        self.assertEqual(self.dq_json("job", "put", ch, "j", "@daily", "d2")["cron"], "@daily")
        self.assertTrue(self.dq_json("job", "pause", ch, "j")["paused"])
        ev = self.dq_json("job", "trigger", ch, "j")
        self.assertEqual(ev["data"], "d2")
        self.assertFalse(self.dq_json("job", "resume", ch, "j")["paused"])
        self.assertEqual(len(self.dq_json("job", "next", ch, "j")["nextRuns"]), 5)
        self.refused(404, "job", "pause", ch, "nope")

    def test_publish_json_data_and_priority(self):
        ch = self.chan()
        ev = self.dq_json("publish", ch, '{"b": [1, 2.50], "a": null}', "--json", "--priority", "3")
        self.assertEqual(ev["data"], {"b": [1, 2.5], "a": None})
        self.assertEqual(ev["priority"], 3)


class DqAuthTest(DqCase):
    TOKEN = "dq-token-%d" % os.getpid()

    @classmethod
    def new_server(cls):
        return bb.Server(["-in-memory"], env=clean_env(DISTRIBUERAD_AUTH_TOKEN=cls.TOKEN))

    def test_token_from_environment(self):
        ch = self.chan()
        self.dq("publish", ch, "x")
        env = self.env()
        del env["DISTRIBUERAD_AUTH_TOKEN"]
        self.refused(401, "list", ch, env=env)
        self.refused(401, "list", ch, env=self.env(DISTRIBUERAD_AUTH_TOKEN="wrong"))

    def test_work_refused_exits_1(self):
        env = self.env(DISTRIBUERAD_AUTH_TOKEN="wrong")
        rc, out, err = self.run_dq("work", self.chan(), "--", "true", env=env)
        self.assertEqual(rc, 1, err)
        self.assertIn("HTTP 401", err)


class DqWorkTest(DqCase):
    WEIGHT = 3

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="dq-work-")
        self.log = os.path.join(self.tmp, "log")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for fn in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, fn))
        os.rmdir(self.tmp)
        super().tearDown()

    def start_work(self, ch, *opts, sleep=0.0, mode="ok"):
        argv = dq_argv(["work", ch] + list(opts) + ["--", sys.executable, WORKER, self.log, str(sleep), mode])
        p = subprocess.Popen(argv, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        return p

    def stop_work(self, p, within=5.0):
        """SIGTERM; asserts exit 0 within `within` s; returns stderr."""
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            _, err = p.communicate(timeout=within * SCALE)
        except subprocess.TimeoutExpired:
            p.kill()
            self.fail("dq work did not exit within %.1f s of SIGTERM" % (within * SCALE))
        err = own_stderr(err)
        self.assertEqual(p.returncode, 0, "dq work exit status after SIGTERM: %s\n%s" % (p.returncode, err))
        return err, time.monotonic() - t0

    def records(self, at=None):
        try:
            with open(self.log) as f:
                recs = [json.loads(line) for line in f]
        except FileNotFoundError:
            return []
        return [r for r in recs if at is None or r["at"] == at]

    def wait_for(self, what, cond, timeout=10.0):
        deadline = time.monotonic() + timeout * SCALE
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.02)
        self.fail("timed out waiting for %s; worker log: %r" % (what, self.records()))

    def test_runs_each_event_and_deletes_it(self):
        ch = self.chan()
        datas = ["first", "zwei \u00fc\n\"quoted\"", ""]
        ids = [self.publish(ch, {"data": d})["eventID"] for d in datas]
        p = self.start_work(ch, "--ttl", "10s")
        self.wait_for("three successful runs", lambda: len(self.records("end")) == 3)
        self.wait_for("an empty channel", lambda: self.listing(ch)["count"] == 0)
        err, took = self.stop_work(p)
        self.assertLess(took, 3.0 * SCALE, "an idle dq work took %.1f s to stop" % took)
        self.assertEqual(err, "")
        starts = self.records("start")
        self.assertEqual([r["env"]["DQ_EVENT_ID"] for r in starts], ids, "events run in FIFO order")
        self.assertEqual([r["stdin"] for r in starts], datas)
        self.assertEqual({r["env"]["DQ_CHANNEL"] for r in starts}, {ch})
        self.assertEqual({r["env"]["DQ_DELIVERIES"] for r in starts}, {"1"})
        st = self.req("GET", "/" + q(ch)).json
        self.assertEqual((st["published"], st["deleted"]), (3, 3))

    def test_json_data_goes_to_stdin_as_json(self):
        ch = self.chan()
        text = '{"z":1,"a":[1.50,true,"x"]}'
        r = self.req("POST", self.ev_path(ch), ('{"data":%s}' % text).encode())
        self.assertStatus(r, 201)
        p = self.start_work(ch)
        self.wait_for("the run", lambda: len(self.records("end")) == 1)
        self.stop_work(p)
        self.assertEqual(self.records("start")[0]["stdin"], text)

    def test_failure_unlocks_and_retries(self):
        ch = self.chan()
        eid = self.publish(ch, {"data": "retry me"})["eventID"]
        p = self.start_work(ch, "--ttl", "10s", "--retry-delay", "700ms", mode="failfirst")
        self.wait_for("a failed run and a successful one", lambda: len(self.records("end")) == 2)
        self.wait_for("an empty channel", lambda: self.listing(ch)["count"] == 0)
        err, _ = self.stop_work(p)
        self.assertIn("event %s: the command exited with status 3; unlocked" % eid, err)
        runs = self.records("start")
        self.assertEqual([r["env"]["DQ_EVENT_ID"] for r in runs], [eid, eid])
        self.assertEqual([r["env"]["DQ_DELIVERIES"] for r in runs], ["1", "2"])
        gap = runs[1]["t"] - self.records("end")[0]["t"]
        self.assertGreaterEqual(gap, 0.6, "retried %.2f s after the failure, --retry-delay 700ms" % gap)

    def test_lease_is_extended_while_the_command_runs(self):
        ch = self.chan()
        eid = self.publish(ch, {"data": "slow"})["eventID"]
        p = self.start_work(ch, "--ttl", "600ms", "--parallel", "2", sleep=2.0)
        self.wait_for("the start", lambda: len(self.records("start")) == 1)
        ends = []
        while not self.records("end"):
            r = self.get_event(ch, eid)
            if r.status == 200 and r.json["state"] == "locked":
                ends.append(bb.ts_ns(r.json["lockedUntil"]))
            time.sleep(0.1)
        self.wait_for("an empty channel", lambda: self.listing(ch)["count"] == 0)
        self.stop_work(p)
        self.assertEqual(len(self.records("start")), 1, "the event was handed out twice: its lease lapsed")
        self.assertGreater(max(ends) - min(ends), 1000 * bb.MS, "the lease was not extended: %r" % ends)

    def test_sigterm_lets_running_commands_finish(self):
        ch = self.chan()
        ids = [self.publish(ch, {"data": "e%d" % i})["eventID"] for i in range(3)]
        p = self.start_work(ch, "--ttl", "5s", sleep=1.0)
        self.wait_for("the first start", lambda: len(self.records("start")) == 1)
        err, took = self.stop_work(p)
        self.assertGreaterEqual(len(self.records("end")), 1, "dq exited before its command finished")
        self.assertEqual(len(self.records("start")), 1, "dq took another event after SIGTERM")
        self.assertEqual(self.ids(ch), ids[1:])
        self.assertEqual(self.listing(ch)["events"][0]["state"], "ready")

    def test_parallel_runs_at_once(self):
        ch = self.chan()
        for i in range(4):
            self.publish(ch, {"data": "p%d" % i})
        p = self.start_work(ch, "--parallel", "4", sleep=1.0)
        self.wait_for("four runs", lambda: len(self.records("end")) == 4, timeout=15)
        self.stop_work(p)
        starts = sorted(r["t"] for r in self.records("start"))
        ends = sorted(r["t"] for r in self.records("end"))
        self.assertLess(starts[-1], ends[0], "the four commands did not run at the same time")
        self.assertCount(ch, 0)

    def test_command_that_cannot_start(self):
        ch = self.chan()
        eid = self.publish(ch)["eventID"]
        rc, out, err = self.run_dq("work", ch, "--", os.path.join(self.tmp, "no-such-program"))
        self.assertEqual(rc, 2, err)
        self.assertIn("cannot run", err)
        r = self.get_event(ch, eid)
        self.assertEqual(r.json["state"], "ready", "the event was touched")
        self.assertEqual(self.listing(ch)["events"][0]["eventID"], eid)
        rc, out, err = self.run_dq("work", ch, "--", "no-such-program-in-path-%d" % os.getpid())
        self.assertEqual(rc, 2, err)
        self.assertIn("cannot run", err)
