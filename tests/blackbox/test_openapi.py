"""GET /openapi.json, /ui and its assets: what they serve, without the
token, and that the document is valid OpenAPI 3.1 and names every route of
the server's table (src/http/router.c). Every other answer of the suite is
checked against the document by bb.Client (openapi_check.py)."""

import json
import os
import re

import bb
import openapi_check

ROOT = openapi_check.ROOT
META = os.path.join(ROOT, "tests", "ui", "node_modules", "@apidevtools", "openapi-schemas",
                    "schemas", "v3.1", "schema.json")


def load_meta(test):
    if not os.path.exists(META):
        test.fail("%s is missing: run scripts/deps.sh test (npm ci in tests/ui)" % META)
    with open(META, encoding="utf-8") as f:
        return json.load(f)


class OpenApiDocumentTest(bb.ServerTestCase):

    def test_served_document_is_the_file(self):
        r = self.req("GET", "/openapi.json")
        self.assertStatus(r, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("application/json"))
        with open(openapi_check.DOC_PATH, "rb") as f:
            self.assertEqual(r.raw, f.read(), "the binary serves another document than the file")
        self.assertEqual(self.req("GET", "/openapi.json/").raw, r.raw, "trailing slash")

    def test_document_validates_against_the_openapi_3_1_schema(self):
        import jsonschema
        meta = load_meta(self)
        doc = json.loads(self.req("GET", "/openapi.json").raw)
        self.assertEqual(doc["openapi"][:4], "3.1.")
        errors = ["%s: %s" % ("/".join(map(str, e.absolute_path)), e.message[:200])
                  for e in jsonschema.Draft202012Validator(meta).iter_errors(doc)]
        self.assertEqual(errors, [], "the document is not valid OpenAPI 3.1")
        for name, schema in doc["components"]["schemas"].items():
            jsonschema.Draft202012Validator.check_schema(schema)
        # the meta-schema can fail: a response without its description
        bad = json.loads(json.dumps(doc))
        bad["paths"]["/channels"]["get"]["responses"]["200"] = {"summary": "x"}
        self.assertTrue(list(jsonschema.Draft202012Validator(meta).iter_errors(bad)))

    def test_every_route_of_the_server_is_documented(self):
        with open(os.path.join(ROOT, "src", "http", "router.c"), encoding="utf-8") as f:
            rows = re.findall(r'\{"(/[^"]*)", "([A-Z]+)", handle_', f.read())
        self.assertGreater(len(rows), 10, "could not read the route table")
        for path, method in rows:
            target = path.replace("{c}", "some-channel").replace("{p}", "some-name")
            tmpl, op, _ = openapi_check.find(method, target)
            self.assertIsNotNone(op, "%s %s is in the route table but not in the document" % (method, path))

    def test_every_documented_operation_has_an_error_answer_and_an_id(self):
        doc = openapi_check.load()["doc"]
        ids = []
        for tmpl, item in doc["paths"].items():
            for m, op in item.items():
                if m not in openapi_check.METHODS:
                    continue
                ids.append(op["operationId"])
                self.assertTrue(any(s.startswith("4") for s in op["responses"]), "%s %s" % (m, tmpl))
        self.assertEqual(len(ids), len(set(ids)), "operationIds repeat")


class DashboardTest(bb.ServerTestCase):

    def test_page_and_assets(self):
        for path in ("/ui", "/ui/"):
            r = self.req("GET", path)
            self.assertStatus(r, 200, path)
            self.assertTrue(r.headers["Content-Type"].startswith("text/html"))
            csp = r.headers.get("Content-Security-Policy") or ""
            self.assertIn("script-src 'self'", csp)
            self.assertNotIn("unsafe-inline", csp)
            self.assertIn(b'src="/ui/assets/app.js"', r.raw)
            self.assertNotRegex(r.raw.decode(), r"<script(?![^>]*\bsrc=)", "inline script")
        for name, ctype in (("app.js", "text/javascript"), ("app.css", "text/css"),
                            ("favicon.svg", "image/svg+xml")):
            r = self.req("GET", "/ui/assets/" + name)
            self.assertStatus(r, 200, name)
            self.assertTrue(r.headers["Content-Type"].startswith(ctype), name)
            self.assertGreater(len(r.raw), 0)
        self.assertError(self.req("GET", "/ui/assets/nope.js"), 404)

    def test_ui_is_still_a_channel_below_and_for_other_methods(self):
        ev = self.publish("ui", {"data": "x"})
        self.assertEqual(self.listing("ui")["events"][0]["eventID"], ev["eventID"])
        r = self.req("POST", "/ui")
        self.assertError(r, 405)
        self.assertIn("GET", r.headers["Allow"])


class OpenWithTokenTest(bb.ServerTestCase):
    SERVER_ARGS = ["-in-memory", "-auth-token", "s3cret"]

    def test_document_and_dashboard_need_no_token(self):
        for path in ("/openapi.json", "/ui", "/ui/", "/ui/assets/app.js", "/ui/assets/app.css"):
            self.assertStatus(self.req("GET", path), 200, path)

    def test_everything_else_still_needs_it(self):
        for method, path in (("GET", "/ui/events"), ("GET", "/ui/jobs"), ("POST", "/ui/events"),
                             ("POST", "/ui"), ("GET", "/openapi.json/events"), ("GET", "/channels")):
            r = self.req(method, path, {"data": "x"} if method == "POST" else None)
            self.assertError(r, 401, what="%s %s" % (method, path))
        auth = {"Authorization": "Bearer s3cret"}
        self.assertStatus(self.req("POST", "/ui/events", {"data": "x"}, auth), 201)
