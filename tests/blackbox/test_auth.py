"""Bearer-token authentication and TLS (issue 6, items 3 and 4).

With a token (DISTRIBUERAD_AUTH_TOKEN, -auth-token or -auth-token-file)
every API route answers 401 with WWW-Authenticate and a JSON error unless
the request carries "Authorization: Bearer <token>"; /healthz and /readyz
stay open, /metrics too with -metrics-open. The token never reaches the
log. TLS: a certificate the test makes with openssl, checked with Python's
ssl module and curl; bad certificate or key files stop the server at start.

"""

import base64
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import uuid

import bb
from bb import SCALE, q

TOKEN = "tok-%s-Zz9" % uuid.uuid4().hex  # distinctive, so a grep of the log finds it


def server_env(**extra):
    env = dict(os.environ)
    env.pop("TZ", None)
    for k in list(env):
        if k.startswith("DISTRIBUERAD_"):
            del env[k]
    env.update(extra)
    return env


def run_bin(args, env=None, timeout=5.0, cwd=None):
    """Runs the server binary expecting it to exit; returns (status,
    output), status None if it was still running after timeout."""
    p = subprocess.Popen([bb.BIN] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env or server_env(), cwd=cwd)
    try:
        out, _ = p.communicate(timeout=timeout * SCALE)
        return p.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return None, out.decode("utf-8", "replace")


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


class TokenServerCase(bb.ServerTestCase):
    """A class server started with the environment ENV (and SERVER_ARGS)."""

    OWN_SERVER = True
    ENV = {}

    @classmethod
    def new_server(cls):
        return bb.Server(cls.SERVER_ARGS, env=server_env(**cls.ENV))

    def full_log(self):
        with open(type(self).server.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def assertUnauthorized(self, r, what):
        self.assertError(r, 401, what=what)
        wa = r.headers.get("WWW-Authenticate") or ""
        self.assertTrue(wa.lower().startswith("bearer"), "%s: WWW-Authenticate is %r" % (what, wa))

    def assertTokenNotLogged(self, *tokens):
        log = self.full_log()
        for t in tokens:
            self.assertNotIn(t, log, "a token appears in the server log")


# ---------------------------------------------------------------- token ----

class AuthTest(TokenServerCase):
    ENV = {"DISTRIBUERAD_AUTH_TOKEN": TOKEN}

    def good(self, method, path, body=None, want=None, scheme="Bearer"):
        r = self.req(method, path, body, {"Authorization": "%s %s" % (scheme, TOKEN)})
        if want is not None:
            self.assertStatus(r, want, "%s %s with the token" % (method, path))
        return r

    def setup_data(self):
        ch = self.chan()
        e1 = self.good("POST", self.ev_path(ch), {"data": "one"}, 201).json
        e2 = self.good("POST", self.ev_path(ch), {"data": "two"}, 201).json
        self.good("POST", "/%s/jobs" % q(ch), {"name": "j1", "cronDef": "@yearly"}, 201)
        self.good("POST", "/%s/jobs" % q(ch), {"name": "j2", "cronDef": "@yearly"}, 201)
        return ch, e1["eventID"], e2["eventID"]

    def routes(self, ch, e1, e2):
        """Every API route: (method, path, body, status with the token)."""
        c = q(ch)
        return [
            ("GET", "/channels", None, 200),
            ("GET", "/%s" % c, None, 200),
            ("GET", "/%s/events" % c, None, 200),
            ("POST", "/%s/events" % c, {"data": "new"}, 201),
            ("POST", "/%s/events" % c, [{"data": "b1"}, {"data": "b2"}], 201),
            ("GET", "/%s/events/%s" % (c, e1), None, 200),
            ("PUT", "/%s/events/%s" % (c, e1), {"action": "LOCK"}, 202),
            ("PATCH", "/%s/events/%s" % (c, e1), {"action": "UNLOCK"}, 202),
            ("DELETE", "/%s/events/%s" % (c, e2), None, 202),
            ("GET", "/%s/jobs" % c, None, 200),
            ("POST", "/%s/jobs" % c, {"name": "j3", "cronDef": "@yearly"}, 201),
            ("GET", "/%s/jobs/j1" % c, None, 200),
            ("DELETE", "/%s/jobs/j2" % c, None, 202),
            ("POST", "/%s/acquire" % c, {"max": 1, "ttl": "1s"}, 200),
            ("GET", "/metrics", None, 200),
            ("GET", "/%s/events/" % c, None, 200),  # trailing slash
            ("GET", "/%s/nope/x/y" % c, None, 404),  # unknown path
            ("DELETE", "/%s/events" % c, None, 405),  # wrong method
            ("POST", "/healthz/events", {"data": "x"}, 201),  # a channel named like a probe
            ("GET", "/metrics/events", None, 200),
        ]

    def state(self, ch):
        """What the routes above would change, read with the token."""
        ev = self.good("GET", self.ev_path(ch), want=200).json["events"]
        jobs = self.good("GET", "/%s/jobs" % q(ch), want=200).json["jobs"]
        probe = self.good("GET", "/healthz/events", want=200).json["count"]
        return ([(e["eventID"], e["state"]) for e in ev], sorted(j["jobID"] for j in jobs), probe)

    def test_without_or_with_a_wrong_token_401(self):
        ch, e1, e2 = self.setup_data()
        before = self.state(ch)
        wrong = [
            None,
            "Bearer wrong",
            "Bearer " + TOKEN[:-1],  # a prefix
            "Bearer " + TOKEN + "x",  # longer
            "Bearer " + TOKEN[:-1] + ("a" if TOKEN[-1] != "a" else "b"),  # same length
            "Bearer " + TOKEN.upper(),  # tokens are case-sensitive
            "Bearer " + "x" * 5000,
            "Bearer ",  # empty
            "Bearer",
            TOKEN,  # no scheme
            "Token " + TOKEN,
            "Basic " + base64.b64encode(("user:" + TOKEN).encode()).decode(),
            "Bearer" + TOKEN,  # no space
        ]
        for method, path, body, _ in self.routes(ch, e1, e2):
            for auth in wrong:
                hdrs = {} if auth is None else {"Authorization": auth}
                r = self.req(method, path, body, hdrs)
                self.assertUnauthorized(r, "%s %s with Authorization %r" % (method, path, auth))
        self.assertEqual(self.state(ch), before, "a refused request changed something")

    def test_messages_tell_missing_wrong_and_not_bearer_apart(self):
        cases = [
            (None, "needs a bearer token"),
            ("Bearer wrong", "token is wrong"),
            ("Bearer " + TOKEN + "x", "token is wrong"),
            ("Basic " + base64.b64encode(b"user:pw").decode(), "not a bearer token"),
            (TOKEN, "not a bearer token"),
        ]
        for auth, says in cases:
            hdrs = {} if auth is None else {"Authorization": auth}
            r = self.req("GET", "/channels", None, hdrs)
            self.assertError(r, 401, says, "Authorization %r" % auth)
            self.assertNotIn(TOKEN, r.json["error"], "the token is echoed")

    def test_right_token_2xx(self):
        ch, e1, e2 = self.setup_data()
        for scheme in ("Bearer", "bearer", "BEARER"):
            for method, path, body, want in self.routes(ch, e1, e2):
                if scheme != "Bearer" and method != "GET":
                    continue  # the changes once are enough
                self.good(method, path, body, want, scheme=scheme)
        evs = dict(self.state(ch)[0])
        self.assertNotIn(e2, evs, "the DELETE with the token did not delete")
        self.assertEqual(sorted(self.state(ch)[1]), ["j1", "j3"])

    def test_probes_open(self):
        for path in ("/healthz", "/readyz", "/healthz/", "/readyz/", "/healthz?x=1"):
            for hdrs in ({}, {"Authorization": "Bearer wrong"}, bearer(TOKEN)):
                r = self.req("GET", path, None, hdrs)
                self.assertStatus(r, 200, "GET %s with %r" % (path, hdrs))
                self.assertEqual(r.json, {"status": "ok"})
        self.assertUnauthorized(self.req("GET", "/metrics"), "GET /metrics without the token")
        self.assertUnauthorized(self.req("GET", "/metrics/"), "GET /metrics/ without the token")
        r = self.req("GET", "/metrics", None, bearer(TOKEN))
        self.assertStatus(r, 200)
        self.assertIn(b"distribuerad_", r.raw)

    def test_token_never_logged(self):
        ch = self.chan()
        self.good("POST", self.ev_path(ch), {"data": TOKEN}, 201)  # even as data
        for auth in ("Bearer " + TOKEN, "Bearer " + TOKEN + "x", "Basic " + TOKEN, TOKEN):
            self.req("GET", self.ev_path(ch), None, {"Authorization": auth})
        # a malformed request carrying the token
        c = self.raw()
        c.send(b"GET /x HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\nBad Header\r\n\r\n",
               tolerant=True)
        c.closed_or_response()
        self.assertTrue(self.full_log().strip(), "the server log is empty")
        self.assertTokenNotLogged(TOKEN, TOKEN[4:-3])


class MetricsOpenTest(TokenServerCase):
    ENV = {"DISTRIBUERAD_AUTH_TOKEN": TOKEN}
    SERVER_ARGS = ["-in-memory", "-metrics-open"]

    def test_metrics_open_rest_closed(self):
        r = self.req("GET", "/metrics")
        self.assertStatus(r, 200, "GET /metrics without the token, -metrics-open")
        self.assertIn(b"distribuerad_", r.raw)
        self.assertStatus(self.req("GET", "/metrics/"), 200)
        for method, path, body in (("GET", "/channels", None), ("GET", "/metrics/events", None),
                                   ("POST", "/metrics/events", {"data": "x"}), ("GET", "/c", None)):
            self.assertUnauthorized(self.req(method, path, body), "%s %s without the token" % (method, path))
        self.assertStatus(self.req("GET", "/channels", None, bearer(TOKEN)), 200)


class TokenSourcesTest(bb.ServerTestCase):
    """-auth-token-file (with a trailing newline), its environment
    variable, the -auth-token flag, and token files that cannot be used."""

    OWN_SERVER = True
    CLASS_SERVER = False

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="distribuerad-auth-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def start(self, args, env=None):
        srv = bb.Server(["-in-memory"] + args, env=server_env(**(env or {})))
        self.addCleanup(srv.cleanup)
        srv.start()
        return srv

    def check_token(self, srv, tok, what):
        c = bb.Client(srv.host, srv.port)
        try:
            ch = self.chan()
            r = c.req("POST", "/%s/events" % ch, {"data": "x"}, bearer(tok))
            self.assertStatus(r, 201, "%s: publish with the token" % what)
            r = c.req("GET", "/%s/events" % ch, None, bearer(tok))
            self.assertStatus(r, 200, "%s: listing with the token" % what)
            self.assertEqual(r.json["count"], 1)
            for bad in (None, tok[:-1], "x" + tok, tok + "x"):
                hdrs = {} if bad is None else bearer(bad)
                r = c.req("GET", "/%s/events" % ch, None, hdrs)
                self.assertEqual(r.status, 401, "%s: Authorization %r answered %d" % (what, hdrs, r.status))
            self.assertStatus(c.req("GET", "/healthz"), 200)
        finally:
            c.close()
        rc = srv.stop()
        self.assertEqual(rc, 0, "%s: exit status %s\n%s" % (what, rc, srv.log()))
        with open(srv.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        self.assertTrue(log.strip(), "%s: empty log" % what)
        self.assertNotIn(tok, log, "%s: the token appears in the server log" % what)

    def test_token_file_with_trailing_newline(self):
        d = self.tmpdir()
        for ending in ("\n", "\r\n", ""):
            tok = "file-%s" % uuid.uuid4().hex
            path = os.path.join(d, "token%d" % len(ending))
            with open(path, "w", newline="") as f:
                f.write(tok + ending)
            self.check_token(self.start(["-auth-token-file", path]), tok, "token file ending %r" % ending)

    def test_token_file_from_environment(self):
        d = self.tmpdir()
        tok = "envfile-%s" % uuid.uuid4().hex
        path = os.path.join(d, "secret")
        with open(path, "w") as f:
            f.write(tok + "\n")
        self.check_token(self.start([], env={"DISTRIBUERAD_AUTH_TOKEN_FILE": path}), tok, "DISTRIBUERAD_AUTH_TOKEN_FILE")

    def test_token_flag_and_json_log(self):
        tok = "flag-%s" % uuid.uuid4().hex
        self.check_token(self.start(["-auth-token", tok, "-log-format", "json"]), tok, "-auth-token, json log")

    def test_unusable_token_files(self):
        d = self.tmpdir()
        empty = os.path.join(d, "empty")
        with open(empty, "w") as f:
            f.write("\n")
        missing = os.path.join(d, "missing-token-file")
        tok = "both-%s" % uuid.uuid4().hex
        cases = [
            (["-auth-token-file", empty], "empty", "an empty token file"),
            (["-auth-token-file", missing], "missing-token-file", "a missing token file"),
            (["-auth-token-file", d], None, "a directory as token file"),
            (["-auth-token", tok, "-auth-token-file", empty], None, "both -auth-token and -auth-token-file"),
        ]
        for args, name, what in cases:
            rc, out = run_bin(["-in-memory", "-address", "127.0.0.1", "-port", "0"] + args)
            self.assertIsNotNone(rc, "%s: the server started anyway" % what)
            self.assertNotEqual(rc, 0, "%s: exit status 0" % what)
            self.assertTrue(out.strip(), "%s: no message" % what)
            if name:
                self.assertIn(name, out, "%s: the message does not name the file: %r" % (what, out))
            self.assertNotIn(tok, out, "%s: the message shows the token" % what)


# ------------------------------------------------------------------ TLS ----

def openssl_pair(d, name, cn="localhost", kind="ec"):
    cert, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if kind == "ec" else ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509"] + newkey + ["-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    return cert, key


class TlsServer(bb.Server):
    """A server on HTTPS: the start-up probe speaks TLS, trusting cafile."""

    def __init__(self, args, cafile, env=None):
        super().__init__(args, env=env)
        self.ctx = ssl.create_default_context(cafile=cafile)

    def _healthy(self):
        try:
            c = http.client.HTTPSConnection(self.host, self.port, timeout=2 * SCALE, context=self.ctx)
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            c.close()
            return r.status == 200
        except (OSError, http.client.HTTPException):
            return False


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl command")
class TlsTest(TokenServerCase):

    REQUEST_TIMEOUT = 1.0

    @classmethod
    def setUpClass(cls):
        if bb.URL:
            raise unittest.SkipTest("needs its own server, and DISTRIBUERAD_URL is set")
        cls.dir = tempfile.mkdtemp(prefix="distribuerad-tls-")
        try:
            cls.cert, cls.key = openssl_pair(cls.dir, "server")
            cls.cert2, cls.key2 = openssl_pair(cls.dir, "other", cn="other")
            super().setUpClass()
        except Exception:
            shutil.rmtree(cls.dir, ignore_errors=True)
            raise

    @classmethod
    def new_server(cls):
        return TlsServer(["-in-memory", "-tls-cert", cls.cert, "-tls-key", cls.key,
                          "-request-timeout", "%gs" % cls.REQUEST_TIMEOUT],
                         cafile=cls.cert, env=server_env(DISTRIBUERAD_AUTH_TOKEN=TOKEN))

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.c = None  # no plain-HTTP client here

    def https(self, ctx=None):
        ctx = ctx or ssl.create_default_context(cafile=self.cert)
        c = http.client.HTTPSConnection(self.host, self.port, timeout=5 * SCALE, context=ctx)
        self.addCleanup(c.close)
        return c

    def call(self, c, method, path, body=None, tok=TOKEN):
        data = bb.encode_body(body)
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        if tok:
            hdrs.update(bearer(tok))
        c.request(method, path, body=data, headers=hdrs)
        r = c.getresponse()
        raw = r.read()
        return bb.Resp(r.status, r.headers, bb.parse_json(raw), raw)

    def test_publish_and_list_over_https(self):
        c = self.https()
        ch = self.chan()
        p = "/%s/events" % ch
        ids = []
        for i in range(3):  # keep-alive: one TLS connection
            r = self.call(c, "POST", p, {"data": "tls %d" % i})
            self.assertStatus(r, 201)
            ids.append(r.json["eventID"])
        r = self.call(c, "GET", p)
        self.assertStatus(r, 200)
        self.assertEqual([e["eventID"] for e in r.json["events"]], ids)
        self.assertEqual(c.sock.version() in ("TLSv1.2", "TLSv1.3"), True, c.sock.version())
        self.assertStatus(self.call(c, "PUT", "/%s/events/%s" % (ch, ids[0]), {}), 202)
        self.assertStatus(self.call(c, "DELETE", "/%s/events/%s" % (ch, ids[1])), 202)
        self.assertUnauthorized(self.call(c, "GET", p, tok=None), "HTTPS without the token")
        self.assertStatus(self.call(c, "GET", "/healthz", tok=None), 200)
        # the server presents the generated certificate: trusting another CA fails
        bad = ssl.create_default_context(cafile=self.cert2)
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.call(self.https(bad), "GET", "/healthz", tok=None)
        self.assertTokenNotLogged(TOKEN)

    @unittest.skipUnless(shutil.which("curl"), "needs curl")
    def test_curl(self):
        ch = self.chan()
        base = "https://127.0.0.1:%d" % self.port

        def curl(*args):
            p = subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=20 * SCALE)
            return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

        auth = ["-H", "Authorization: Bearer " + TOKEN]
        rc, out, err = curl("--cacert", self.cert, *auth, "-H", "Content-Type: application/json",
                            "-d", '{"data":"via curl"}', "%s/%s/events" % (base, ch))
        self.assertEqual(rc, 0, "curl publish failed: %s" % err)
        ev = bb.parse_json(out.encode())
        self.assertIsInstance(ev, dict, out)
        self.assertEqual(ev.get("data"), "via curl")
        rc, out, err = curl("--cacert", self.cert, *auth, "%s/%s/events" % (base, ch))
        self.assertEqual(rc, 0, err)
        self.assertEqual([e["eventID"] for e in bb.parse_json(out.encode())["events"]], [ev["eventID"]])
        rc, out, err = curl("--cacert", self.cert, "-w", "%{http_code}", "-o", "/dev/null",
                            "https://localhost:%d/%s/events" % (self.port, ch))
        self.assertEqual((rc, out), (0, "401"), "curl without the token, by name: %s" % err)
        # without --cacert curl does not trust it: the check is real
        rc, out, err = curl(*auth, "%s/healthz" % base)
        self.assertEqual(rc, 60, "curl without --cacert: status %d, %s %s" % (rc, out, err))

    def test_plain_http_to_tls_port(self):
        for req in (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"POST /c/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"data\":\"x\"}"):
            s = socket.create_connection((self.host, self.port), timeout=5 * SCALE)
            try:
                s.sendall(req)
                got = b""
                try:
                    while True:
                        d = s.recv(4096)
                        if not d:
                            break
                        got += d
                except (ConnectionResetError, socket.timeout):
                    pass
            finally:
                s.close()
            self.assertFalse(got.startswith(b"HTTP/1.1 2") or got.startswith(b"HTTP/1.0 2"),
                             "plain HTTP to the TLS port got a normal answer: %r" % got[:200])
        c = self.https()
        self.assertStatus(self.call(c, "GET", "/healthz", tok=None), 200, "HTTPS after plain-HTTP attempts")
        r = self.call(c, "GET", "/c/events")
        self.assertEqual(r.json["count"], 0, "the plain-HTTP publish was stored")

    def test_malformed_request_over_tls_gets_json(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        raw = bb.RawConn.__new__(bb.RawConn)
        raw.sock = ctx.wrap_socket(socket.create_connection((self.host, self.port), timeout=5 * SCALE),
                                   server_hostname=self.host)
        raw.buf = b""
        self.addCleanup(raw.close)
        raw.send(b"GET /healthz HTTQ/1.1\r\nHost: x\r\n\r\n")
        self.assertError(raw.read_response(), 400, "malformed", "a bad request line over TLS")

    def test_old_tls_versions_refused(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.cert)
        try:
            ctx.set_ciphers("ALL:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ssl.SSLError, ValueError) as e:
            self.skipTest("this Python/OpenSSL cannot offer TLS 1.1: %s" % e)
        try:
            r = self.call(self.https(ctx), "GET", "/healthz", tok=None)
            self.fail("a TLS 1.1 client was served: %d" % r.status)
        except ssl.SSLError as e:
            if "NO_PROTOCOLS_AVAILABLE" in str(e).upper() or "no protocols available" in str(e):
                self.skipTest("this OpenSSL does not offer TLS 1.1 at all: %s" % e)
        except ConnectionResetError:
            pass
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the same client with 1.2 works
        self.assertStatus(self.call(self.https(ctx), "GET", "/healthz", tok=None), 200)

    def test_stalled_handshake_cut_off(self):
        """A client that connects and never finishes the TLS handshake is
        cut off after -request-timeout, like a slow plain-HTTP one; others
        are served meanwhile."""
        idle = socket.create_connection((self.host, self.port), timeout=15)
        half = socket.create_connection((self.host, self.port), timeout=15)
        half.sendall(b"\x16\x03\x01\x00")  # the start of a ClientHello
        t0 = time.monotonic()
        try:
            c = self.https()
            self.assertStatus(self.call(c, "GET", "/healthz", tok=None), 200, "served meanwhile")
            limit = self.REQUEST_TIMEOUT * SCALE + 2.0
            for s, what in ((idle, "a client that sends nothing"), (half, "a half-sent ClientHello")):
                s.settimeout(max(0.1, t0 + limit - time.monotonic()))
                try:
                    d = s.recv(100)
                except ConnectionResetError:
                    d = b""
                except socket.timeout:
                    self.fail("%s on the TLS port is still connected after %.1f s with -request-timeout %gs"
                              % (what, time.monotonic() - t0, self.REQUEST_TIMEOUT))
                self.assertEqual(d, b"", what)
        finally:
            idle.close()
            half.close()


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl command")
class TlsStartTest(bb.ServerTestCase):
    """Certificate and key problems stop the server at start, non-zero,
    with a message naming the file."""

    OWN_SERVER = True
    CLASS_SERVER = False

    def test_bad_files_refused_at_start(self):
        d = tempfile.mkdtemp(prefix="distribuerad-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = openssl_pair(d, "good")
        cert2, key2 = openssl_pair(d, "other", cn="other", kind="rsa")
        cert3, key3 = openssl_pair(d, "third", cn="third")
        junk = os.path.join(d, "junk.pem")
        with open(junk, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
        nocert, nokey = os.path.join(d, "no-such-cert.pem"), os.path.join(d, "no-such-key.pem")
        cases = [
            ([cert, key2], ["other.key"], "match", "an RSA key for an EC certificate"),
            ([cert2, key], ["good.key"], "match", "an EC key for an RSA certificate"),
            ([nocert, key], ["no-such-cert.pem"], None, "a missing certificate file"),
            ([cert, nokey], ["no-such-key.pem"], None, "a missing key file"),
            ([junk, key], ["junk.pem"], None, "a certificate file that is not PEM"),
            ([cert, junk], ["junk.pem"], None, "a key file that is not a key"),
            ([cert, cert], ["good.crt"], None, "the certificate as key"),
        ]
        for (c, k), names, word, what in cases:
            rc, out = run_bin(["-in-memory", "-address", "127.0.0.1", "-port", "0", "-tls-cert", c, "-tls-key", k],
                              cwd=d)
            self.assertIsNotNone(rc, "%s: the server started anyway\n%s" % (what, out))
            self.assertNotEqual(rc, 0, "%s: exit status 0" % what)
            for n in names:
                self.assertIn(n, out, "%s: the message does not name %s: %r" % (what, n, out))
            if word:
                self.assertIn(word, out.lower(), "%s: the message does not say the key does not match: %r"
                              % (what, out))
        for args, name in ((["-tls-cert", cert], "-tls-key"), (["-tls-key", key], "-tls-cert")):
            rc, out = run_bin(["-in-memory", "-address", "127.0.0.1", "-port", "0"] + args)
            self.assertIsNotNone(rc, "%s alone: the server started anyway" % args[0])
            self.assertNotEqual(rc, 0)
            self.assertIn(name, out, "%s alone: the message does not mention %s" % (args[0], name))

    def test_mismatched_key_of_same_type(self):
        d = tempfile.mkdtemp(prefix="distribuerad-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = openssl_pair(d, "good")
        cert3, key3 = openssl_pair(d, "third", cn="third")
        for c, k, name in ((cert, key3, "third.key"), (cert3, key, "good.key")):
            rc, out = run_bin(["-in-memory", "-address", "127.0.0.1", "-port", "0", "-tls-cert", c, "-tls-key", k],
                              cwd=d)
            self.assertIsNotNone(rc, "the server started anyway\n%s" % out)
            self.assertNotEqual(rc, 0)
            self.assertIn(name, out, "the message does not name %s: %r" % (name, out))
            self.assertIn("match", out.lower(), "an EC key that does not match the EC certificate: the message "
                          "does not say so: %r" % out.strip().splitlines()[-1:])


if __name__ == "__main__":
    unittest.main()
