"""Jobs people operate (API.md Part C, "Jobs people can operate"): next
runs, pause, resume, trigger, PUT to create or replace, the overlap and
missed policies, the job object's new fields, per-job /metrics, and what a
restart keeps.

Store-agnostic: nothing here reads the log or the database. The restart
tests start servers on durable state; by default that is a fresh
-data-dir, and with BLACKBOX_DATABASE_URL set it is that database with a
fresh -database-schema per test, so the same tests run on the PostgreSQL
store.
"""

import os
import re
import signal
import shutil
import tempfile
import time
import uuid

import bb
from bb import MS, S, SCALE, now_ns, q, ts_ns

GO_DURATION_RE = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?(s|ms|µs|ns))$|^0s$")
OPS_KEYS = {"paused", "overlap", "missed", "missedWindow", "priority", "runs", "skipped", "ttlDuration"}


class JobsOpsCase(bb.ServerTestCase):
    """Shortcuts for the job routes."""

    def jp(self, ch, name=None, op=None):
        p = "/%s/jobs" % q(ch)
        if name is not None:
            p += "/" + q(name)
        if op is not None:
            p += "/" + op
        return p

    def put_job(self, ch, name, body, status=None):
        r = self.req("PUT", self.jp(ch, name), body)
        if status is not None:
            self.assertStatus(r, status, "PUT job %r %r" % (name, body))
        return r

    def get_job(self, ch, name, query=""):
        r = self.req("GET", self.jp(ch, name) + query)
        self.assertStatus(r, 200, "GET job %r%s" % (name, query))
        return r.json

    def op(self, ch, name, op, status):
        r = self.req("POST", self.jp(ch, name, op))
        self.assertStatus(r, status, "POST %s of job %r" % (op, name))
        return r

    def assertOpsJob(self, job):
        """The fields every job object has (Part C)."""
        self.assertFalse(OPS_KEYS - set(job), "job lacks %s: %r" % (sorted(OPS_KEYS - set(job)), job))
        self.assertIs(type(job["paused"]), bool)
        self.assertIn(job["overlap"], ("allow", "skip"))
        self.assertIn(job["missed"], ("skip", "once"))
        self.assertRegex(job["missedWindow"], GO_DURATION_RE)
        self.assertRegex(job["ttlDuration"], GO_DURATION_RE)
        self.assertIs(type(job["priority"]), int)
        self.assertIs(type(job["runs"]), int)
        self.assertIs(type(job["skipped"]), int)
        if job["paused"]:
            self.assertNotIn("nextRunAt", job, "a paused job shows nextRunAt: %r" % job)
        if job["runs"] == 0:
            self.assertIsNone(job.get("lastRunAt"), "lastRunAt without a run: %r" % job)
        else:
            bb.ts_ns(job["lastRunAt"])

    def events(self, ch):
        return self.listing(ch)["events"]


class JobsOpsTest(JobsOpsCase):

    # ---- the job object

    def test_defaults_of_new_fields(self):
        ch = self.chan()
        r = self.req("POST", self.jp(ch), {"name": "j", "cronDef": "@hourly"})
        self.assertStatus(r, 201)
        j = r.json
        self.assertOpsJob(j)
        self.assertEqual((j["paused"], j["overlap"], j["missed"], j["missedWindow"], j["priority"],
                          j["runs"], j["skipped"], j["ttlDuration"], j["ttl"]),
                         (False, "allow", "skip", "1h0m0s", 0, 0, 0, "10m0s", 600 * S), "defaults: %r" % j)
        self.assertIn("nextRunAt", j)
        self.assertEqual(self.get_job(ch, "j"), j, "GET shows what POST answered")

    def test_fields_as_given(self):
        ch = self.chan()
        body = {"name": "j", "cronDef": "@hourly", "data": "d", "ttl": "90s", "priority": 7,
                "overlap": "skip", "missed": "once", "missedWindow": "1.5h"}
        r = self.req("POST", self.jp(ch), body)
        self.assertStatus(r, 201)
        j = r.json
        self.assertOpsJob(j)
        self.assertEqual((j["priority"], j["overlap"], j["missed"], j["missedWindow"], j["ttlDuration"], j["ttl"]),
                         (7, "skip", "once", "1h30m0s", "1m30s", 90 * S), "fields: %r" % j)
        self.assertEqual(j["data"], "d")
        # names match without regard to case, as the original's decoder does
        r = self.req("PUT", self.jp(ch, "k"), {"CronDef": "@daily", "OVERLAP": "skip", "MissedWindow": "10m"})
        self.assertStatus(r, 201)
        self.assertEqual((r.json["overlap"], r.json["missedWindow"]), ("skip", "10m0s"))
        listed = self.req("GET", self.jp(ch)).json["jobs"]
        self.assertEqual([x["jobID"] for x in listed], ["j", "k"])
        for x in listed:
            self.assertOpsJob(x)

    def test_bad_fields_change_nothing(self):
        ch = self.chan()
        bad = [
            ({"overlap": "never"}, "overlap"), ({"overlap": "SKIP"}, "overlap"), ({"overlap": 1}, "overlap"),
            ({"missed": "always"}, "missed"), ({"missed": ""}, "missed"),
            ({"missedWindow": "0s"}, "missedWindow"), ({"missedWindow": "-1m"}, "missedWindow"),
            ({"missedWindow": "soon"}, "missedWindow"), ({"missedWindow": "876001h"}, "missedWindow"),
            ({"priority": 10}, "priority"), ({"priority": -1}, "priority"), ({"priority": "1"}, "priority"),
            ({"priority": 1.5}, "priority"), ({"paused": True}, "paused"),
        ]
        for extra, field in bad:
            body = dict({"name": "j", "cronDef": "@hourly"}, **extra)
            self.assertError(self.req("POST", self.jp(ch), body), 400, field, "POST %r" % body)
            self.assertError(self.req("PUT", self.jp(ch, "j"), body), 400, field, "PUT %r" % body)
        self.assertStatus(self.req("GET", self.jp(ch, "j")), 404)
        names = [c["channelName"] for c in self.req("GET", "/channels").json["channels"]]
        self.assertNotIn(ch, names, "a refused job created its channel")

    # ---- next runs

    def test_next_runs(self):
        ch = self.chan()
        self.put_job(ch, "five", {"cronDef": "*/5 * * * *"}, 201)
        j = self.get_job(ch, "five", "?next=5")
        self.assertOpsJob(j)
        runs = [ts_ns(t) for t in j["nextRuns"]]
        self.assertEqual(len(runs), 5)
        self.assertEqual(runs[0], ts_ns(j["nextRunAt"]), "the first next run is nextRunAt: %r" % j)
        for a, b in zip(runs, runs[1:]):
            self.assertEqual(b - a, 300 * S, "*/5 runs: %r" % j["nextRuns"])
        self.assertEqual(runs[0] % (300 * S), 0)
        self.assertNotIn("nextRuns", self.get_job(ch, "five"), "nextRuns without ?next")
        self.assertEqual(len(self.get_job(ch, "five", "?next=1")["nextRuns"]), 1)
        hundred = self.get_job(ch, "five", "?next=100")["nextRuns"]
        self.assertEqual(len(hundred), 100)
        self.assertEqual([ts_ns(t) for t in hundred[:5]], runs)
        # @every counts from creation, on whole seconds
        r = self.put_job(ch, "every", {"cronDef": "@every 90s"}, 201)
        created = ts_ns(r.json["createdAt"])
        runs = [ts_ns(t) for t in self.get_job(ch, "every", "?next=4")["nextRuns"]]
        base = created - created % S
        self.assertEqual(runs, [base + k * 90 * S for k in range(1, 5)])
        # a definition that never fires has none
        self.put_job(ch, "never", {"cronDef": "0 0 30 2 *"}, 201)
        self.assertEqual(self.get_job(ch, "never", "?next=3")["nextRuns"], [])

    def test_next_runs_bad(self):
        ch = self.chan()
        self.put_job(ch, "j", {"cronDef": "@hourly"}, 201)
        for v in ("0", "101", "-1", "abc", "", "1.5", "1e2", "%201", "99999999999999999999"):
            self.assertError(self.req("GET", self.jp(ch, "j") + "?next=" + v), 400, "next", "next=%r" % v)
        self.assertStatus(self.req("GET", self.jp(ch, "nope") + "?next=3"), 404)

    # ---- pause, resume

    def test_pause_resume(self):
        ch = self.chan()
        self.put_job(ch, "tick", {"cronDef": "@every 1s", "data": "t"}, 201)
        self.wait_until(lambda: self.listing(ch)["count"] >= 1, 3, msg="the first fire")
        j = self.op(ch, "tick", "pause", 200).json
        self.assertOpsJob(j)
        self.assertTrue(j["paused"])
        self.assertNotIn("nextRunAt", j)
        self.assertEqual(self.get_job(ch, "tick"), j)
        self.assertEqual(self.op(ch, "tick", "pause", 200).json, j, "pausing a paused job changes nothing")
        # a preview still shows when it would fire
        runs = self.get_job(ch, "tick", "?next=3")["nextRuns"]
        self.assertEqual(len(runs), 3)
        self.assertGreater(ts_ns(runs[0]), now_ns() - 100 * MS)
        n = self.listing(ch)["count"]
        time.sleep(2.3)
        self.assertEqual(self.listing(ch)["count"], n, "a paused job fired")
        t_resume = now_ns()
        j = self.op(ch, "tick", "resume", 200).json
        self.assertOpsJob(j)
        self.assertFalse(j["paused"])
        nxt = ts_ns(j["nextRunAt"])
        self.assertGreater(nxt, t_resume - 10 * MS, "resume makes up missed times: %r" % j)
        self.assertLessEqual(nxt, now_ns() + S)
        self.assertEqual(self.listing(ch)["count"], n, "resume fired at once")
        self.wait_until(lambda: self.listing(ch)["count"] > n, 3, msg="a fire after resume")
        self.assertEqual(self.op(ch, "tick", "resume", 200).json["paused"], False)

    def test_ops_on_unknown(self):
        ch = self.chan()
        for op in ("pause", "resume", "trigger"):
            self.assertError(self.req("POST", self.jp(ch, "nope", op)), 404, None, op + " of an unknown job")
        names = [c["channelName"] for c in self.req("GET", "/channels").json["channels"]]
        self.assertNotIn(ch, names, "an operation on an unknown job created its channel")
        self.put_job(ch, "j", {"cronDef": "@hourly"}, 201)
        for op in ("pause", "resume", "trigger"):
            self.assertError(self.req("POST", self.jp(ch, "other", op)), 404, None, op + " of an unknown job")
        self.assertStatus(self.req("GET", self.jp(ch, "j", "pause")), 405)

    # ---- trigger

    def test_trigger(self):
        ch = self.chan()
        r = self.put_job(ch, "j", {"cronDef": "@hourly", "data": "x1", "ttl": "30s"}, 201)
        before = r.json
        t0 = now_ns()
        r = self.op(ch, "j", "trigger", 201)
        ev = r.json
        self.assertEvent(ev, "ready")
        self.assertEqual(r.headers.get("Location"), "/%s/events/%s" % (q(ch), ev["eventID"]))
        self.assertEqual(ev["data"], "x1")
        pub = ts_ns(ev["publishedAt"])
        self.assertGreaterEqual(pub, t0 - 10 * MS)
        self.assertEqual(ts_ns(ev["livesUntil"]) - pub, 30 * S)
        self.assertEqual(self.ids(ch), [ev["eventID"]])
        j = self.get_job(ch, "j")
        self.assertEqual((j["runs"], ts_ns(j["lastRunAt"])), (1, pub), "a trigger counts as a run: %r" % j)
        self.assertEqual(j["nextRunAt"], before["nextRunAt"], "a trigger moved the schedule")
        # also when paused, and it stays paused
        self.op(ch, "j", "pause", 200)
        ev2 = self.op(ch, "j", "trigger", 201).json
        j = self.get_job(ch, "j")
        self.assertEqual((j["runs"], j["paused"], ts_ns(j["lastRunAt"])), (2, True, ts_ns(ev2["publishedAt"])))
        self.assertNotIn("nextRunAt", j)

    # ---- PUT

    def test_put_create_replace_equal(self):
        ch = self.chan()
        r = self.put_job(ch, "j", {"cronDef": "@every 1h", "data": "v1"}, 201)
        first = r.json
        self.assertEqual(first["jobID"], "j")
        self.op(ch, "j", "trigger", 201)
        j1 = self.get_job(ch, "j")
        time.sleep(0.05)
        # the same definition: nothing changes, not even nextRunAt
        r = self.put_job(ch, "j", {"name": "j", "cronDef": "@every 1h", "data": "v1"}, 200)
        self.assertEqual(r.json, j1)
        self.assertEqual(self.get_job(ch, "j"), j1)
        # a default given explicitly is the same definition
        r = self.put_job(ch, "j", {"cronDef": "@every 1h", "data": "v1", "ttl": "10m", "overlap": "allow",
                                   "missed": "skip", "missedWindow": "60m", "priority": 0}, 200)
        self.assertEqual(r.json, j1)
        # changed: replaced, createdAt, runs and lastRunAt kept, @every counts from now
        t_put = now_ns()
        r = self.put_job(ch, "j", {"cronDef": "@every 2h", "data": "v2", "priority": 2}, 200)
        j2 = r.json
        self.assertOpsJob(j2)
        self.assertEqual((j2["cron"], j2["data"], j2["priority"]), ("@every 2h", "v2", 2))
        self.assertEqual((j2["createdAt"], j2["runs"], j2["lastRunAt"]),
                         (first["createdAt"], j1["runs"], j1["lastRunAt"]), "state lost by a replace: %r" % j2)
        nxt = ts_ns(j2["nextRunAt"])
        self.assertTrue(t_put - S < nxt - 7200 * S <= now_ns(), "nextRunAt does not follow the new definition "
                        "from now: %r" % j2)
        # absent fields go back to their defaults
        j3 = self.put_job(ch, "j", {"cronDef": "@every 2h", "data": "v2"}, 200).json
        self.assertEqual(j3["priority"], 0)
        self.assertEqual(self.get_job(ch, "j"), j3)

    def test_put_keeps_paused(self):
        ch = self.chan()
        self.put_job(ch, "j", {"cronDef": "@hourly"}, 201)
        self.op(ch, "j", "pause", 200)
        j = self.put_job(ch, "j", {"cronDef": "@daily"}, 200).json
        self.assertTrue(j["paused"])
        self.assertNotIn("nextRunAt", j)
        self.assertEqual(j["cron"], "@daily")

    def test_put_bad(self):
        ch = self.chan()
        self.put_job(ch, "j", {"cronDef": "@hourly", "data": "keep"}, 201)
        before = self.get_job(ch, "j")
        self.assertError(self.put_job(ch, "j", {"name": "k", "cronDef": "@daily"}), 400, "name")
        self.assertError(self.put_job(ch, "j", {"name": "J", "cronDef": "@daily"}), 400, "name")
        self.assertError(self.put_job(ch, "j", {"cronDef": "61 * * * *"}), 400, "cronDef")
        self.assertError(self.put_job(ch, "j", {"data": "no cron"}), 400, "cronDef")
        self.assertError(self.put_job(ch, "j", {"cronDef": "@daily", "delay": "1s"}), 400, "delay")
        self.assertError(self.put_job(ch, "j", b"{"), 400)
        self.assertEqual(self.get_job(ch, "j"), before, "a refused PUT changed the job")
        self.assertError(self.put_job(ch, "k", {"name": "j", "cronDef": "@daily"}), 400, "name")
        self.assertStatus(self.req("GET", self.jp(ch, "k")), 404)
        # a job name that needs escaping, given in the body and the path
        odd = "nightly report ü"
        self.put_job(ch, odd, {"name": odd, "cronDef": "@daily"}, 201)
        self.assertEqual(self.get_job(ch, odd)["jobID"], odd)

    def test_post_still_conflicts(self):
        ch = self.chan()
        self.put_job(ch, "j", {"cronDef": "@hourly", "data": "a"}, 201)
        r = self.req("POST", self.jp(ch), {"name": "j", "cronDef": "@daily", "data": "b"})
        self.assertStatus(r, 409)
        self.assertEqual(self.get_job(ch, "j")["data"], "a")

    # ---- overlap

    def test_overlap_skip(self):
        ch = self.chan()
        self.put_job(ch, "j", {"cronDef": "@every 1s", "overlap": "skip", "data": "o"}, 201)
        self.wait_until(lambda: self.listing(ch)["count"] >= 1, 3, msg="the first fire")
        first = self.events(ch)[0]["eventID"]
        self.wait_until(lambda: self.get_job(ch, "j")["skipped"] >= 2, 4, msg="two skipped fires")
        self.assertEqual(self.ids(ch), [first], "fired while the previous event was live")
        j = self.get_job(ch, "j")
        self.assertEqual(j["runs"], 1)
        self.assertStatus(self.delete(ch, first), 202)
        self.wait_until(lambda: self.listing(ch)["count"] >= 1, 3, msg="a fire after the delete")
        self.assertEqual(self.get_job(ch, "j")["runs"], 2)
        # a trigger is the previous fire too
        second = self.events(ch)[0]["eventID"]
        self.assertStatus(self.delete(ch, second), 202)
        trig = self.op(ch, "j", "trigger", 201).json
        skipped = self.get_job(ch, "j")["skipped"]
        self.wait_until(lambda: self.get_job(ch, "j")["skipped"] > skipped, 3, msg="a skip behind the trigger")
        self.assertEqual(self.ids(ch), [trig["eventID"]])

    def test_overlap_skip_until_expiry(self):
        ch = self.chan()
        self.put_job(ch, "j", {"cronDef": "@every 1s", "overlap": "skip", "ttl": "1500ms"}, 201)
        self.wait_until(lambda: self.get_job(ch, "j")["runs"] >= 2, 5, msg="a fire after the first expired")
        j = self.get_job(ch, "j")
        self.assertGreaterEqual(j["skipped"], 1)

    def test_overlap_allow_fires_anyway(self):
        ch = self.chan()
        self.put_job(ch, "j", {"cronDef": "@every 1s"}, 201)
        self.wait_until(lambda: self.listing(ch)["count"] >= 2, 4, msg="two fires")
        self.assertEqual(self.get_job(ch, "j")["skipped"], 0)

    # ---- what a job's events carry

    def test_job_events_carry_priority(self):
        ch = self.chan()
        self.put_job(ch, "j", {"cronDef": "@every 1s", "priority": 3}, 201)
        ev = self.op(ch, "j", "trigger", 201).json
        self.assertEqual(ev.get("priority"), 3, "the job's priority on its event: %r" % ev)
        self.wait_until(lambda: self.listing(ch)["count"] >= 2, 3, msg="a fire")
        self.assertEqual([e["priority"] for e in self.events(ch)], [3, 3])

    def test_job_json_data(self):
        ch = self.chan()
        data = {"a": [1, 2.50, "x"], "b": {"c": None}}
        j = self.put_job(ch, "j", {"cronDef": "@hourly", "data": data}, 201).json
        self.assertEqual(j["data"], data)
        self.assertEqual(self.op(ch, "j", "trigger", 201).json["data"], data)
        # the same JSON is the same definition; a string of that text is not
        self.assertEqual(self.put_job(ch, "j", {"cronDef": "@hourly", "data": data}, 200).json, self.get_job(ch, "j"))
        import json as _json
        j2 = self.put_job(ch, "j", {"cronDef": "@hourly", "data": _json.dumps(data)}, 200).json
        self.assertIsInstance(j2["data"], str)

    # ---- /metrics

    def test_metrics_per_job(self):
        import test_metrics
        ch = self.chan()
        self.put_job(ch, "fast", {"cronDef": "@every 1s", "overlap": "skip"}, 201)
        self.wait_until(lambda: self.get_job(ch, "fast")["skipped"] >= 1, 4, msg="a skip")
        job = lambda m, what: m.get("distribuerad_channel_job_%s_total" % what, channel=ch, job="fast")
        m = test_metrics.scrape_settled(self, lambda m: job(m, "skips") >= 1)
        self.assertGreaterEqual(m.get("distribuerad_channel_job_fires_total", channel=ch, job="fast"), 1,
                                m.text[-3000:])
        self.assertGreaterEqual(m.get("distribuerad_channel_job_skips_total", channel=ch, job="fast"), 1)
        self.assertIn(("distribuerad_channel_job_lateness_seconds", (("channel", ch), ("job", "fast"))), m.samples)
        self.assertEqual(m.types.get("distribuerad_channel_job_lateness_seconds"), "gauge")
        # a trigger counts as a job event too
        before = m.get("distribuerad_channel_job_fires_total", channel=ch, job="fast")
        self.op(ch, "fast", "pause", 200)
        self.op(ch, "fast", "trigger", 201)
        m = test_metrics.scrape_settled(self, lambda m: job(m, "fires") >= before + 1)
        self.assertEqual(m.get("distribuerad_channel_job_fires_total", channel=ch, job="fast"), before + 1)


class JobsMetricsCapTest(JobsOpsCase):
    """-metrics-max-channels: channels past it are summed without labels."""
    OWN_SERVER = True
    SERVER_ARGS = ["-in-memory", "-metrics-max-channels", "1"]

    def test_cap(self):
        import test_metrics
        a, b = "a-" + self.chan(), "b-" + self.chan()
        self.put_job(a, "j", {"cronDef": "@hourly"}, 201)
        self.op(a, "j", "trigger", 201)
        fires = lambda m: m.get("distribuerad_channel_job_fires_total", channel=a, job="j")
        m = test_metrics.scrape_settled(self, lambda m: fires(m) == 1)
        self.assertEqual(m.get("distribuerad_channel_job_fires_total", channel=a, job="j"), 1)
        # b comes later and sorts after a: past the cap, summed
        self.put_job(b, "j", {"cronDef": "@hourly"}, 201)
        self.op(b, "j", "trigger", 201)
        self.op(b, "j", "trigger", 201)
        m = test_metrics.scrape_settled(self, lambda m: m.get("distribuerad_channel_job_fires_overflow_total") == 2)
        self.assertEqual(m.get("distribuerad_channel_job_fires_total", channel=a, job="j"), 1)
        self.assertNotIn(("distribuerad_channel_job_fires_total", (("channel", b), ("job", "j"))), m.samples)
        self.assertEqual(m.get("distribuerad_channel_job_fires_overflow_total"), 2)


# ==================================================================== restarts ====

class JobsRestartTest(JobsOpsCase):
    OWN_SERVER = True
    CLASS_SERVER = False

    def setUp(self):
        super().setUp()
        self.srv = None
        self.state_args = self.durable_args()

    def durable_args(self):
        url = os.environ.get("BLACKBOX_DATABASE_URL")
        if url:
            return ["-database-url", url, "-database-schema", "t_" + uuid.uuid4().hex[:16]]
        d = tempfile.mkdtemp(prefix="distribuerad-jobs-")
        self.addCleanup(shutil.rmtree, d, True)
        return ["-data-dir", os.path.join(d, "data")]

    def start(self):
        srv = bb.Server(self.state_args)
        self.addCleanup(srv.cleanup)
        srv.start()
        self.srv = srv
        if self.c is not None:
            self.c.close()
        self.c = bb.Client(srv.host, srv.port)
        self.host, self.port = srv.host, srv.port
        return srv

    def down(self, hard):
        if hard:
            self.srv.proc.send_signal(signal.SIGKILL)
            self.srv.proc.wait()
        else:
            self.assertEqual(self.srv.stop(), 0, "not a clean stop\n%s" % self.srv.log())
        self.c.close()

    def server_log(self):
        return self.srv.log(40) if self.srv else ""

    def check_state_survives(self, hard):
        self.start()
        ch = self.chan()
        self.put_job(ch, "p", {"cronDef": "@every 1s", "data": "p", "overlap": "skip", "missed": "once",
                               "missedWindow": "5m", "priority": 4, "ttl": "1h"}, 201)
        self.wait_until(lambda: self.get_job(ch, "p")["skipped"] >= 1, 4, msg="a fire and a skip")
        self.op(ch, "p", "trigger", 201)
        self.op(ch, "p", "pause", 200)
        self.put_job(ch, "r", {"cronDef": "@every 1h", "data": "old"}, 201)
        created_r = self.get_job(ch, "r")["createdAt"]
        self.put_job(ch, "r", {"cronDef": "@every 2h", "data": "new"}, 200)
        before = {n: self.get_job(ch, n) for n in ("p", "r")}
        n_events = self.listing(ch)["count"]
        self.down(hard)
        self.start()
        after = {n: self.get_job(ch, n) for n in ("p", "r")}
        self.assertEqual(after, before, "jobs differ after the restart")
        self.assertTrue(after["p"]["paused"])
        self.assertEqual(after["r"]["createdAt"], created_r)
        time.sleep(1.5)
        self.assertEqual(self.listing(ch)["count"], n_events, "a paused job fired after the restart")
        # the same definition after the restart is still a no-op
        self.assertEqual(self.put_job(ch, "r", {"cronDef": "@every 2h", "data": "new"}, 200).json, before["r"])

    def test_state_survives_sigterm(self):
        self.check_state_survives(hard=False)

    def test_state_survives_kill9(self):
        self.check_state_survives(hard=True)

    def test_resume_after_restart(self):
        self.start()
        ch = self.chan()
        self.put_job(ch, "j", {"cronDef": "@every 1s"}, 201)
        self.op(ch, "j", "pause", 200)
        self.down(hard=True)
        self.start()
        self.assertTrue(self.get_job(ch, "j")["paused"])
        j = self.op(ch, "j", "resume", 200).json
        self.assertFalse(j["paused"])
        self.wait_until(lambda: self.listing(ch)["count"] >= 1, 3, msg="a fire after resume")

    def missed_setup(self, body):
        """A job of period 4 s that has fired once; then the server goes
        down. Returns (channel, its fire times' base: the first fire)."""
        self.start()
        ch = self.chan()
        r = self.put_job(ch, "j", dict({"cronDef": "@every 4s", "data": "m"}, **body), 201)
        created = ts_ns(r.json["createdAt"])
        base = created - created % S
        self.wait_until(lambda: self.listing(ch)["count"] >= 1, 6, msg="the first fire")
        self.down(hard=True)
        return ch, base + 4 * S

    def fired_before(self, ch, t_ns):
        """Events of ch published before t_ns: the fires a check made
        late (a slow start) must not count the schedule's next one."""
        return sum(1 for e in self.events(ch) if ts_ns(e["publishedAt"]) < t_ns)

    def sleep_until(self, t_ns):
        time.sleep(max(0.0, (t_ns - now_ns()) / S))

    def test_missed_once_fires_once(self):
        ch, first = self.missed_setup({"missed": "once"})
        # down across two fire times (first + 4 s, first + 8 s); back up
        # 1.5 s after the second, 2.5 s before the next
        self.sleep_until(first + 9500 * MS)
        t_spawn = now_ns()
        self.start()
        self.wait_until(lambda: self.listing(ch)["count"] >= 2, 2, msg="the catch-up fire")
        evs = self.events(ch)
        self.assertEqual(len(evs), 2, "more than one catch-up fire: %r" % evs)
        self.assertGreaterEqual(ts_ns(evs[1]["publishedAt"]), t_spawn, "publishedAt of the catch-up is not now")
        j = self.get_job(ch, "j")
        self.assertEqual(j["runs"], 2)
        self.assertEqual(ts_ns(j["nextRunAt"]), first + 12 * S, "the schedule after the catch-up: %r" % j)
        self.sleep_until(first + 11900 * MS)
        self.assertEqual(self.listing(ch)["count"], 2, "fired again before its next time")
        self.wait_until(lambda: self.listing(ch)["count"] >= 3, 2, msg="the next scheduled fire")
        # a second restart does not make it up again
        self.down(hard=False)
        self.start()
        time.sleep(0.3)
        self.assertLessEqual(self.listing(ch)["count"], 4)
        self.assertEqual(self.get_job(ch, "j")["runs"], self.listing(ch)["count"])

    def test_missed_once_older_than_window(self):
        ch, first = self.missed_setup({"missed": "once", "missedWindow": "1s"})
        # back up 2.5 s after a missed time: older than the 1 s window
        self.sleep_until(first + 6500 * MS)
        self.start()
        time.sleep(0.5)
        self.assertEqual(self.fired_before(ch, first + 8 * S), 1, "fired for a time older than its window")
        # a slow start (valgrind) may reach the next time, first + 8 s
        j = self.get_job(ch, "j")
        n = self.listing(ch)["count"]
        self.assertEqual((j["runs"], ts_ns(j["nextRunAt"])), (n, first + 4 * (n + 1) * S))

    def test_missed_skip_does_not_fire(self):
        ch, first = self.missed_setup({})
        self.sleep_until(first + 5500 * MS)
        self.start()
        time.sleep(0.5)
        self.assertEqual(self.fired_before(ch, first + 8 * S), 1, "missed skip fired for a missed time")

    def test_missed_once_paused_does_not_fire(self):
        self.start()
        ch = self.chan()
        r = self.put_job(ch, "j", {"cronDef": "@every 1s", "missed": "once"}, 201)
        self.assertStatus(r, 201)
        self.op(ch, "j", "pause", 200)
        self.down(hard=True)
        time.sleep(2.2)
        self.start()
        time.sleep(0.5)
        self.assertEqual(self.listing(ch)["count"], 0, "a paused job made up a missed time")
