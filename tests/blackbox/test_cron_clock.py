"""Cron against the server's clock set with libfaketime near daylight-saving
changes: the nextRunAt a job shows, and the fire it makes, are robfig/cron
v3's (each expected value below is what tests/crondiff/robfig.go prints
for the same definition and instant), and a job fires once where a wall
time repeats. Also the server's zone from a TZ path, and "@every" on whole
seconds."""
import calendar
import glob
import os
import time
import unittest

import bb
from bb import S, SCALE, q, ts_ns


def libfaketime():
    for pat in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1"):
        found = glob.glob(pat)
        if found:
            return found[0]
    return None


def utc(s):
    """ns of a UTC "YYYY-MM-DDTHH:MM:SSZ"."""
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")) * S


def clock_server(zone, at):
    """A server in `zone` whose clock reads `at` (UTC) when it starts and
    runs on from there. The offset is relative, so libfaketime's reading
    of the time does not depend on any zone."""
    env = dict(os.environ)
    env["TZ"] = zone
    env["LD_PRELOAD"] = libfaketime()
    env["FAKETIME"] = "%+ds" % ((utc(at) - time.time_ns()) // S)
    env["DONT_FAKE_MONOTONIC"] = "1"
    env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"), "verify_asan_link_order=0") if x)
    return bb.Server(["-in-memory"], env=env)


class CronMixin:
    def job(self, ch, name, cron_def, **extra):
        body = dict({"name": name, "cronDef": cron_def}, **extra)
        r = self.req("POST", "/%s/jobs" % q(ch), body)
        self.assertStatus(r, 201, cron_def)
        return r.json

    def next_run(self, ch, name):
        r = self.req("GET", "/%s/jobs/%s" % (q(ch), q(name)))
        self.assertStatus(r, 200)
        return r.json["nextRunAt"]


@bb.memory_only("the clock is moved by libfaketime; on PostgreSQL it is the database's")
@unittest.skipIf(libfaketime() is None, "needs libfaketime (Debian package faketime)")
class LordHoweFallBackTest(CronMixin, bb.ServerTestCase):
    """Australia/Lord_Howe goes back half an hour at 02:00 on 2024-04-07
    (15:00Z): 01:30-01:59 happen twice. The server starts at 01:59 LHDT,
    a minute before."""

    OWN_SERVER = True

    @classmethod
    def new_server(cls):
        return clock_server("Australia/Lord_Howe", "2024-04-06T14:59:00Z")

    def test_next_run_as_robfig(self):
        ch = self.chan()
        j = self.job(ch, "fifteen", "15 2 * * *")
        self.assertTrue(j["createdAt"].startswith("2024-04-06T14:5"), "fake clock not in effect: %r" % j)
        # robfig's hour step lands on 02:30 after the half hour repeats, so
        # the one 02:15 of that day (15:45Z) does not fire
        self.assertEqual(j["nextRunAt"], "2024-04-07T15:45:00.000000000Z")
        # the half hour carries over to the days after: 09 Apr 00:00 is
        # passed over, the next odd day is the 11th (13:30Z on the 10th)
        j = self.job(ch, "odd-or-sunday", "0 0 */2 * SUN")
        self.assertEqual(j["nextRunAt"], "2024-04-10T13:30:00.000000000Z")
        # the server's zone is TZ: the same definition with a prefix agrees
        j = self.job(ch, "prefixed", "CRON_TZ=Australia/Lord_Howe 0 0 */2 * SUN")
        self.assertEqual(j["nextRunAt"], "2024-04-10T13:30:00.000000000Z")

    def test_repeated_half_hour_fires_once(self):
        """*/30 fired at 01:30 LHDT (14:30Z); 01:30 LHST (15:00Z) repeats it
        and is passed over; the next fire is 02:00 LHST (15:30Z)."""
        ch = self.chan()
        j = self.job(ch, "half", "*/30 * * * *")
        self.assertEqual(j["nextRunAt"], "2024-04-06T15:30:00.000000000Z")


@bb.memory_only("the clock is moved by libfaketime; on PostgreSQL it is the database's")
@unittest.skipIf(libfaketime() is None, "needs libfaketime (Debian package faketime)")
class ChathamFireTest(CronMixin, bb.ServerTestCase):
    """Pacific/Chatham goes from 03:45 CHADT back to 02:45 CHAST on
    2028-04-02 (14:00Z). The server starts 4 s before 15:00Z, the first
    03:45 of that day, and the job must fire there, once."""

    OWN_SERVER = True

    @classmethod
    def new_server(cls):
        return clock_server("UTC", "2028-04-01T14:59:56Z")

    def test_fires_at_robfigs_time(self):
        ch = self.chan()
        j = self.job(ch, "quarter", "CRON_TZ=Pacific/Chatham 45 3 * * *", data="tick")
        self.assertEqual(j["nextRunAt"], "2028-04-01T15:00:00.000000000Z")
        deadline = time.monotonic() + 10 * SCALE
        while time.monotonic() < deadline and self.next_run(ch, "quarter") == j["nextRunAt"]:
            time.sleep(0.1)
        self.assertEqual(self.next_run(ch, "quarter"), "2028-04-02T15:00:00.000000000Z")
        evs = self.listing(ch)["events"]
        self.assertEqual([e["data"] for e in evs], ["tick"])
        self.assertGreaterEqual(ts_ns(evs[0]["publishedAt"]), utc("2028-04-01T15:00:00Z"))


@bb.memory_only("the clock is moved by libfaketime; on PostgreSQL it is the database's")
@unittest.skipIf(libfaketime() is None, "needs libfaketime (Debian package faketime)")
class SantiagoMidnightTest(CronMixin, bb.ServerTestCase):
    """America/Santiago skips from 00:00 to 01:00 on 2024-09-08: a daily
    midnight job does not fire that day."""

    OWN_SERVER = True

    @classmethod
    def new_server(cls):
        return clock_server("America/Santiago", "2024-09-07T03:59:00Z")

    def test_day_without_midnight(self):
        ch = self.chan()
        j = self.job(ch, "midnight", "0 0 * * *")
        self.assertEqual(j["nextRunAt"], "2024-09-07T04:00:00.000000000Z")
        j = self.job(ch, "tomorrow", "0 0 8-30 9 *")
        self.assertEqual(j["nextRunAt"], "2024-09-09T03:00:00.000000000Z")


@bb.memory_only("the clock is moved by libfaketime; on PostgreSQL it is the database's")
class ZoneFileTest(CronMixin, bb.ServerTestCase):
    """TZ naming a zone file, as Go's time.Local reads it."""

    OWN_SERVER = True

    @classmethod
    def new_server(cls):
        env = dict(os.environ, TZ="/usr/share/zoneinfo/Asia/Kathmandu")
        return bb.Server(["-in-memory"], env=env)

    def test_zone_from_path(self):
        ch = self.chan()
        j = self.job(ch, "midnight", "0 0 * * *")
        self.assertTrue(j["nextRunAt"].endswith("T18:15:00.000000000Z"), j)


class EveryWholeSecondsTest(CronMixin, bb.ServerTestCase):
    def test_every_on_whole_seconds(self):
        ch = self.chan()
        for d, step in (("@every 1.5s", 1), ("@every 500ms", 1), ("@every -1s", 1), ("@every 2.9s", 2)):
            j = self.job(ch, "e%d" % len(d) + d[-3:].replace(".", "_"), d)
            created = ts_ns(j["createdAt"])
            self.assertEqual(ts_ns(j["nextRunAt"]), created // S * S + step * S, "%s: %r" % (d, j))
        r = self.req("POST", "/%s/jobs" % q(ch), {"name": "long", "cronDef": "@every 876001h"})
        self.assertError(r, 400, mention="100 years")

    def test_messages(self):
        ch = self.chan()
        for cron_def, words in (("cron_tz=UTC 0 0 * * *", 'upper case: \\"CRON_TZ=\\"'),
                                ("@daily ", "no space after it"),
                                ("0 0 * * * *", "no seconds field")):
            r = self.req("POST", "/%s/jobs" % q(ch), {"name": "x", "cronDef": cron_def})
            self.assertError(r, 400, mention="cronDef", what=cron_def)
            self.assertIn(words.replace('\\"', '"'), r.json["error"], cron_def)


if __name__ == "__main__":
    unittest.main()
