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
        objs = []
        for line in lines:
            obj = json.loads(line)  # every line is one JSON object
            objs.append(obj)
            keys = {"time", "level", "msg"}
            if obj.get("msg") == "access":  # access lines carry fields, not one formatted string
                keys |= {"peer", "method", "path", "status", "duration", "bytes"}
            self.assertEqual(set(obj), keys, line)
            self.assertRegex(obj["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
            self.assertIn(obj["level"], ("info", "warn", "error"))
        msgs = [o["msg"] for o in objs]
        access = [o for o in objs if o["msg"] == "access"]
        for o in access:
            self.assertIsInstance(o["status"], int)
            self.assertIsInstance(o["bytes"], int)
            self.assertIsInstance(o["duration"], float)
            self.assertEqual(o["peer"], "127.0.0.1")
        seen = {(o["method"], o["path"], o["status"]) for o in access}
        self.assertIn(("POST", "/logs/events", 201), seen)
        self.assertIn(("GET", "/logs/events", 401), seen)
        self.assertIn(("DELETE", "/logs/events/%s" % eid, 202), seen)
        # a parked acquire answered later is logged too, with its wait
        parked = [o for o in access if (o["method"], o["path"], o["status"]) == ("POST", "/logs/acquire", 200)]
        self.assertEqual(len(parked), 2, access)
        self.assertTrue(any(o["duration"] >= 0.1 for o in parked), parked)
        self.assertTrue(any(o["bytes"] > 0 for o in parked), parked)
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
