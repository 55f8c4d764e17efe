"""Unknown paths (404), wrong methods (405 with Allow), and the error body
format of every 4xx."""

import unittest

import bb

EID = "00000000000000000000"


class RoutingErrorTest(bb.ServerTestCase):

    def test_unknown_paths_404(self):
        ch = self.chan()
        for method in ("GET", "POST", "DELETE"):
            for path in ("/", "/%s/b" % ch, "/%s/events/x/y" % ch, "/%s/unknown" % ch, "/%s/jobs/x/y" % ch,
                         "/%s/events/%s/lock" % (ch, EID), "/%s/Events" % ch, "/%s/JOBS" % ch,
                         "/%s/b/c/d/e" % ch, "/healthz/x", "/metrics/x", "/channels/x/y/z"):
                body = {"data": "x"} if method == "POST" else None
                r = self.req(method, path, body)
                self.assertError(r, 404, what="%s %s" % (method, path))
        self.assertEqual(self.listing(ch)["count"], 0)

    def test_unknown_path_hints_at_the_routes(self):
        r = self.req("GET", "/%s/eventz" % self.chan())
        self.assertError(r, 404, "/{channel}/events")
        for route in ("/{channel}/acquire", "/{channel}/jobs", "/channels", "/healthz", "/metrics"):
            self.assertIn(route, r.json["error"])

    def allow(self, r):
        return {m.strip().upper() for m in (r.headers.get("Allow") or "").split(",") if m.strip()}

    def test_wrong_method_405_with_allow(self):
        ch = self.chan()
        eid = self.publish(ch)["eventID"]
        self.assertStatus(self.req("POST", "/%s/jobs" % ch, {"name": "j", "cronDef": "@hourly"}), 201)
        cases = [
            ("DELETE", "/%s/events" % ch, {"GET", "POST"}),
            ("PUT", "/%s/events" % ch, {"GET", "POST"}),
            ("PATCH", "/%s/events/" % ch, {"GET", "POST"}),
            ("POST", "/%s/events/%s" % (ch, eid), {"GET", "PUT", "PATCH", "DELETE"}),
            ("PUT", "/%s/jobs" % ch, {"GET", "POST"}),
            ("DELETE", "/%s/jobs" % ch, {"GET", "POST"}),
            ("POST", "/%s/jobs/j" % ch, {"GET", "PUT", "DELETE"}),
            ("PATCH", "/%s/jobs/j" % ch, {"GET", "PUT", "DELETE"}),
            ("GET", "/%s/jobs/j/pause" % ch, {"POST"}),
            ("DELETE", "/%s/jobs/j/trigger" % ch, {"POST"}),
            ("POST", "/healthz", {"GET"}),
            ("PUT", "/readyz", {"GET"}),
            ("POST", "/metrics", {"GET"}),
            ("PATCH", "/channels", {"GET"}),
            ("POST", "/channels/", {"GET"}),
            ("PUT", "/%s" % ch, {"GET"}),
            ("POST", "/%s" % ch, {"GET"}),
            ("PATCH", "/%s/" % ch, {"GET", "DELETE"}),
        ]
        for method, path, want in cases:
            body = {} if method in ("POST", "PUT", "PATCH") else None
            r = self.req(method, path, body)
            self.assertError(r, 405, what="%s %s" % (method, path))
            got = self.allow(r)
            self.assertTrue(want <= got, "%s %s: Allow %r lacks %s" % (method, path, r.headers.get("Allow"),
                                                                       sorted(want - got)))
            self.assertNotIn(method, got, "%s %s: Allow lists the refused method" % (method, path))
        # nothing changed
        self.assertEqual(self.ids(ch), [eid])
        self.assertStatus(self.req("GET", "/%s/jobs/j" % ch), 200)

    def test_error_bodies_everywhere(self):
        """Spot checks that 400, 404, 409, 410 and 413 all carry the JSON error."""
        ch = self.chan()
        eid = self.publish(ch)["eventID"]
        self.assertError(self.req("POST", "/%s/events" % ch, b"{"), 400)
        self.assertError(self.req("GET", "/%s/events/%s" % (ch, EID)), 404)
        self.assertError(self.req("PUT", "/%s/events/%s" % (ch, EID), {}), 410)
        r = self.req("PUT", "/%s/events/%s" % (ch, eid), {})
        self.assertStatus(r, 202)
        self.assertError(self.req("PUT", "/%s/events/%s" % (ch, eid), {"action": "UNLOCK", "lockToken": "nope"}), 409)
        self.assertError(self.req("POST", "/%s/events" % ch, {"data": "x" * (300 * 1024)}), 413)
        self.assertStatus(self.req("POST", "/%s/jobs" % ch, {"name": "j", "cronDef": "@hourly"}), 201)
        self.assertError(self.req("POST", "/%s/jobs" % ch, {"name": "j", "cronDef": "@hourly"}), 409)
        self.assertError(self.req("POST", "/%s/jobs" % ch, {"name": "k", "cronDef": "bad"}), 400)
        self.assertError(self.req("DELETE", "/%s/events" % ch), 405)


if __name__ == "__main__":
    unittest.main()
