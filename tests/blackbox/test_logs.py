"""Logs operators can use: -log-format json gives one JSON object per line
with time, level and msg; -access-log adds a line per answered request; and
neither event data nor the auth token ever reaches the log."""

import json
import os
import re
import signal
import unittest

import bb

SECRET_DATA = "data-that-must-not-be-logged-7d1f"
TOKEN = "token-that-must-not-be-logged-93ac"


class JsonAccessLogTest(bb.ServerTestCase):
    OWN_SERVER = True
    CLASS_SERVER = False

    def test_json_lines_access_log_and_no_secrets(self):
        env = dict(os.environ)
        env.pop("TZ", None)
        env["DISTRIBUERAD_AUTH_TOKEN"] = TOKEN
        srv = bb.Server(["-in-memory", "-log-format", "json", "-access-log"], env=env)
        srv.start()
        try:
            self.c = bb.Client(srv.host, srv.port)
            auth = {"Authorization": "Bearer " + TOKEN}
            ch = "logs"
            r = self.req("POST", "/%s/events" % ch, {"data": SECRET_DATA}, auth)
            self.assertStatus(r, 201)
            eid = r.json["eventID"]
            self.assertStatus(self.req("GET", "/%s/events" % ch, None, auth), 200)
            self.assertStatus(self.req("GET", "/%s/events" % ch), 401)
            self.assertStatus(self.req("POST", "/%s/acquire" % ch, {"wait": "100ms"}, auth), 200)
            self.assertStatus(self.req("POST", "/%s/acquire" % ch, {"wait": "100ms"}, auth), 200)
            self.assertStatus(self.req("DELETE", "/%s/events/%s" % (ch, eid), None, auth), 202)
            self.assertEqual(srv.stop(signal.SIGTERM), 0)
            with open(srv.log_path, encoding="utf-8") as f:
                text = f.read()
        finally:
            srv.cleanup()
        lines = [l for l in text.splitlines() if l.strip()]
        self.assertGreater(len(lines), 5)
        for line in lines:
            obj = json.loads(line)  # every line is one JSON object
            self.assertEqual(set(obj), {"time", "level", "msg"}, line)
            self.assertRegex(obj["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
            self.assertIn(obj["level"], ("info", "warn", "error"))
        msgs = [json.loads(l)["msg"] for l in lines]
        access = [m for m in msgs if m.startswith("access ")]
        self.assertTrue(any(re.search(r'"POST /logs/events" 201 ', m) for m in access), access)
        self.assertTrue(any(re.search(r'"GET /logs/events" 401 ', m) for m in access), access)
        self.assertTrue(any(re.search(r'"DELETE /logs/events/%s" 202 ' % eid, m) for m in access), access)
        # a parked acquire answered later is logged too, with its wait
        parked = [m for m in access if '"POST /logs/acquire" 200' in m]
        self.assertEqual(len(parked), 2, access)
        self.assertTrue(any(re.search(r" (\d{3,})\.\d{3}ms ", m) for m in parked), parked)
        self.assertTrue(any(m.startswith("listening on http://") for m in msgs), msgs)
        self.assertIn("stopped", msgs)
        self.assertNotIn(SECRET_DATA, text)
        self.assertNotIn(TOKEN, text)

    def test_text_log_has_no_access_lines_by_default(self):
        srv = bb.Server(["-in-memory"])
        srv.start()
        try:
            self.c = bb.Client(srv.host, srv.port)
            self.assertStatus(self.req("POST", "/quiet/events", {"data": SECRET_DATA}), 201)
            self.assertEqual(srv.stop(signal.SIGTERM), 0)
            with open(srv.log_path, encoding="utf-8") as f:
                text = f.read()
        finally:
            srv.cleanup()
        self.assertNotIn("access ", text)
        self.assertNotIn(SECRET_DATA, text)
        self.assertRegex(text, r"(?m)^\d{4}-\d\d-\d\dT\S+Z info listening on http://")


if __name__ == "__main__":
    unittest.main()
