"""bb.py -- the black-box test kit: a server fixture, an HTTP client and
assertions shared by the tests/blackbox/test_*.py modules.

Configuration comes from the environment, set by run.py:
  BLACKBOX_BIN        the server binary (default ./distribuerad)
  BLACKBOX_VALGRIND   "1": start servers under valgrind, stretch timeouts
  DISTRIBUERAD_URL    http://host:port of a running server to use instead of
                      starting one per test class (classes that need their own
                      server are then skipped)
  BLACKBOX_STORE      "pg": servers keep their state in PostgreSQL (the
                      cluster at BLACKBOX_PG_URL, started once by run.py):
                      every server started with -in-memory runs with
                      -database-url instead, each class on a fresh schema,
                      and a class server is a pair of replicas on that
                      schema, the test client spreading its requests over
                      both (round robin per request). Tests about the memory
                      store alone are marked @memory_only and skipped.
                      "log": the memory store with its log: every server
                      started with -in-memory gets a data directory of its
                      own and -fsync always instead, so every answer waits
                      for an fsync.

Each test class gets its own server (ServerTestCase); each test uses fresh
channel names (self.chan()), so tests do not depend on each other.
Times on the wire are RFC 3339 strings; here they are converted to integer
nanoseconds since the epoch (ts_ns / fmt_ts) so comparisons are exact.
"""

import calendar
import collections
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

import openapi_check

BIN = os.path.abspath(os.environ.get("BLACKBOX_BIN", "./distribuerad"))
VALGRIND = os.environ.get("BLACKBOX_VALGRIND") == "1"
# A sanitizer build (make asan-test): ASan holds freed memory in quarantine,
# so RSS growth says nothing there; LeakSanitizer checks leaks at exit.
SANITIZED = os.environ.get("DISTRIBUERAD_SANITIZED") == "1"
URL = os.environ.get("DISTRIBUERAD_URL") or None
STORE = os.environ.get("BLACKBOX_STORE") or "mem"
PG = STORE == "pg"
LOG = STORE == "log"
PG_URL = os.environ.get("BLACKBOX_PG_URL") or ""
REPLICAS = 2 if PG else 1  # servers behind a class server

# Every timeout and timing margin is multiplied by SCALE; valgrind makes the
# server 10-50x slower, so waits get longer (the delays tests set stay short).
SCALE = 4.0 if VALGRIND else 1.0

S = 10**9  # nanoseconds per second
MS = 10**6
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
ID_RE = re.compile(r"^[0-9a-v]{20}$")
DEFAULT_TTL_NS = 600 * S

EVENT_KEYS = {"eventID", "publishedAt", "data", "livesUntil", "isLocked", "state"}


# ---------------------------------------------------------------- time ----

def ts_ns(s):
    """Parses an output time (UTC, nine digits) into ns since the epoch."""
    if not isinstance(s, str) or not TIME_RE.match(s):
        raise AssertionError("not a time in the output format: %r" % (s,))
    sec = calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))
    return sec * S + int(s[20:29])


def fmt_ts(ns, offset_min=0):
    """Formats ns as RFC 3339 with nine digits; with offset_min != 0 it is
    written in that UTC offset (to test offset input)."""
    sec, frac = divmod(ns, S)
    sec += offset_min * 60
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%09d" % frac
    if offset_min == 0:
        return base + "Z"
    sign = "+" if offset_min > 0 else "-"
    off = abs(offset_min)
    return base + "%s%02d:%02d" % (sign, off // 60, off % 60)


def now_ns():
    return time.time_ns()


def q(name):
    """Percent-encodes one path segment (every reserved byte, '/' too)."""
    return urllib.parse.quote(name, safe="")


def memory_only(reason):
    """Marks a test class or method that is about the memory store alone
    (its log, data directory, fsync, replay, -in-memory, its clock moved
    by libfaketime): skipped when the suite runs against PostgreSQL."""
    return unittest.skipIf(PG, "memory store only: " + reason)


def pg_only(reason):
    """Marks a test class or method that needs the PostgreSQL store (the
    suite's pg pass, BLACKBOX_STORE=pg): skipped in the memory pass."""
    return unittest.skipUnless(PG, "PostgreSQL pass only: " + reason)


def memory_pass_only(reason):
    """Marks a test class that does not depend on the store and brings
    its own database or servers (PostgreSQL start-up, failover): run once,
    in the memory pass."""
    return unittest.skipIf(STORE != "mem", "runs in the memory pass only: " + reason)


_schema_no = [0]


def fresh_schema():
    """A schema name no other server of this run has used."""
    _schema_no[0] += 1
    return "bb_%d_%d_%s" % (os.getpid(), _schema_no[0], uuid.uuid4().hex[:6])


# -------------------------------------------------------------- server ----

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ServerError(AssertionError):
    pass


class Server:
    """One distribuerad process on a loopback port, its output in a temp file.

    start() polls GET /healthz until 200; stop() sends SIGTERM and returns
    the exit status (None if it had to be killed)."""

    # The schema the next servers share (a class's replicas); None: each
    # server made gets a fresh one.
    shared_schema = None

    def __init__(self, args=None, port_args=None, env=None):
        self.args = list(args) if args is not None else ["-in-memory"]
        self.port_args = port_args  # f(port) -> argv for address and port
        self.env = env
        self.schema = Server.shared_schema or fresh_schema()
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self.dir = tempfile.mkdtemp(prefix="distribuerad-bb-")
        self.log_path = os.path.join(self.dir, "server.log")

    def argv(self, port):
        if self.port_args:
            addr = self.port_args(port)
        else:
            addr = ["-address", "127.0.0.1", "-port", str(port)]
        cmd = [BIN] + addr + self.store_args()
        if VALGRIND:
            vg = ["valgrind", "-q", "--leak-check=full", "--error-exitcode=99"]
            supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "valgrind.supp")
            if os.path.exists(supp):  # optional: third-party (h2o) reports only
                vg.append("--suppressions=" + supp)
            cmd = vg + cmd
        return cmd

    def store_args(self):
        """The arguments, with -in-memory turned into the database's flags
        in the pg pass and into a log with -fsync always in the log pass
        (a server given a -data-dir keeps its own)."""
        if "-in-memory" not in self.args or "-data-dir" in self.args or STORE == "mem":
            return self.args
        rest = [a for a in self.args if a != "-in-memory"]
        if LOG:
            return ["-data-dir", os.path.join(self.dir, "data"), "-fsync", "always"] + rest
        if not PG_URL:
            raise ServerError("BLACKBOX_STORE=pg needs BLACKBOX_PG_URL (run.py --store pg sets it)")
        return ["-database-url", PG_URL, "-database-schema", self.schema] + rest

    def start(self, timeout=10.0):
        timeout *= SCALE
        if not os.access(BIN, os.X_OK):
            raise ServerError("server binary %s does not exist or is not executable" % BIN)
        for attempt in range(3):
            self.port = free_port()
            if self.env is None:
                env = dict(os.environ)
                env["TZ"] = "UTC"  # else the server's zone is /etc/localtime's
            else:
                env = self.env
            with open(self.log_path, "ab") as logf:
                self.proc = subprocess.Popen(
                    self.argv(self.port), stdin=subprocess.DEVNULL, stdout=logf,
                    stderr=subprocess.STDOUT, cwd=self.dir, env=env)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._healthy():
                    return self
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.kill()
                raise ServerError("server did not answer GET /healthz with 200 within %.0f s\n%s"
                                  % (timeout, self.log()))
            # exited early: maybe the port was taken in between; try another
        raise ServerError("server exited at start (status %s)\n%s" % (self.proc.returncode, self.log()))

    def _healthy(self):
        # On PostgreSQL the server answers /healthz before its connections
        # are up; requests before /readyz says so would get 503.
        path = "/readyz" if self.store_args() is not self.args else "/healthz"
        try:
            c = http.client.HTTPConnection(self.host, self.port, timeout=2 * SCALE)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            return r.status == 200
        except (OSError, http.client.HTTPException):
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Signals the server and waits; returns its exit status, or None if
        it did not exit in time (it is then killed)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * SCALE * (3 if VALGRIND else 1))
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self, max_lines=60):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no server log)"
        if not lines:
            return "(server log is empty)"
        if len(lines) > max_lines:
            lines = ["... (%d lines cut)" % (len(lines) - max_lines)] + lines[-max_lines:]
        return "--- server log ---\n" + "\n".join(lines) + "\n--- end of server log ---"

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


# -------------------------------------------------------------- client ----

Resp = collections.namedtuple("Resp", "status headers json raw")


def encode_body(body):
    if body is None:
        return None
    if isinstance(body, (dict, list)):
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes):
        return body
    raise TypeError("body must be None, dict, list, str or bytes")


def parse_json(raw):
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


class Client:
    """A keep-alive HTTP/1.1 client (http.client). A request that fails
    because the server had closed an idle reused connection is retried once
    on a new one, as browsers and urllib3 do. Given more ports (the
    replicas of the pg pass), it sends each request to the next of them in
    turn, one keep-alive connection each."""

    def __init__(self, host, port, timeout=10.0, ports=None):
        self.host, self.port = host, port
        self.ports = list(ports) if ports else [port]
        self.timeout = timeout * SCALE
        self.conns = [None] * len(self.ports)
        self.useds = [False] * len(self.ports)
        self.turn = 0
        self.conn = None
        self.used = False

    def _connect(self):
        self.conn = http.client.HTTPConnection(self.host, self.ports[self.turn], timeout=self.timeout)
        self.conn.connect()
        self.used = False

    def _select(self):
        """Makes the next replica's connection the current one."""
        if len(self.ports) == 1:
            return
        self.conns[self.turn], self.useds[self.turn] = self.conn, self.used
        self.turn = (self.turn + 1) % len(self.ports)
        self.conn, self.used = self.conns[self.turn], self.useds[self.turn]

    def req(self, method, path, body=None, headers=None):
        data = encode_body(body)
        hdrs = {}
        if data is not None and not isinstance(body, bytes):
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        self._select()
        for attempt in (0, 1):
            if self.conn is None or self.conn.sock is None:
                self._connect()
            reused = self.used
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                raw = r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.BadStatusLine) as e:
                self._drop()
                if attempt == 0 and reused:
                    continue
                raise AssertionError("%s %s: connection failed: %r" % (method, path, e))
            except socket.timeout:
                self._drop()
                raise AssertionError("%s %s: no answer within %.0f s" % (method, path, self.timeout))
            self.used = True
            if r.will_close:
                self._drop()
            openapi_check.check(method, path, r.status, r.headers, raw)
            return Resp(r.status, r.headers, parse_json(raw), raw)

    def _drop(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def close(self):
        self._drop()
        for i, c in enumerate(self.conns):
            if c is not None:
                c.close()
            self.conns[i] = None


class RawConn:
    """A raw socket for hand-made requests: pipelining, malformed input,
    oversized bodies. read_response() parses one HTTP/1.1 response."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout * SCALE)
        self.buf = b""

    def send(self, data, tolerant=False):
        """Sends data; with tolerant=True a reset/broken pipe (the server
        answered early and closed) is ignored. Returns False if it failed."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            if not tolerant:
                raise
            return False

    def send_body_late(self, method, path, body, headers=None):
        """Sends the head, gives the server 0.3 s to answer early (as it may
        for an over-size Content-Length), else sends the body too; returns
        the response. Avoids losing an early answer to a TCP reset."""
        req = http_request_bytes(method, path, body, headers)
        head_len = len(req) - len(body)
        self.send(req[:head_len])
        r, _, _ = select.select([self.sock], [], [], 0.3 * SCALE)
        if not r:
            self.send(req[head_len:], tolerant=True)
        return self.read_response()

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        except socket.timeout:
            raise AssertionError("no (complete) answer within %.0f s; got so far %r"
                                 % (self.sock.gettimeout(), self.buf[:200]))
        if not chunk:
            return False
        self.buf += chunk
        return True

    def closed_or_response(self):
        """For garbage input: returns None if the server closed the
        connection without a response, else the parsed response."""
        try:
            while b"\r\n\r\n" not in self.buf:
                if not self._fill():
                    return None
        except AssertionError:
            raise AssertionError("server neither answered nor closed the connection within %.0f s"
                                 % self.sock.gettimeout())
        return self.read_response()

    def read_response(self, head=False):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise AssertionError("connection closed before a full response head; got %r" % self.buf[:200])
        head_bytes, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head_bytes.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        hdrs = http.client.HTTPMessage()
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip()] = v.strip()
        body = b""
        if head or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in (hdrs.get("Transfer-Encoding") or "").lower():
            while True:
                while b"\r\n" not in self.buf:
                    if not self._fill():
                        raise AssertionError("closed inside a chunked body")
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    if not self._fill():
                        raise AssertionError("closed inside a chunk")
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        elif hdrs.get("Content-Length") is not None:
            n = int(hdrs["Content-Length"])
            while len(self.buf) < n:
                if not self._fill():
                    raise AssertionError("closed inside a body")
            body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        return Resp(status, hdrs, parse_json(body), body)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def http_request_bytes(method, path, body=b"", headers=None, host="x"):
    """Builds one request as bytes (HTTP/1.1, Content-Length set)."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host]
    h = {"Content-Length": str(len(body))} if (body or method in ("POST", "PUT", "PATCH")) else {}
    if headers:
        h.update(headers)
    for k, v in h.items():
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# ----------------------------------------------------------- test base ----

def server_address():
    """(host, port) of DISTRIBUERAD_URL."""
    u = urllib.parse.urlsplit(URL)
    return u.hostname or "127.0.0.1", u.port or 80


class ServerTestCase(unittest.TestCase):
    """Starts one server for the class (or uses DISTRIBUERAD_URL), gives each
    test a keep-alive client in self.c, and checks after each test that the
    server is still running."""

    OWN_SERVER = False  # True: the tests need a fresh server of their own
    CLASS_SERVER = True  # False: the tests start (or need) no shared server
    SERVER_ARGS = None  # extra argv instead of ["-in-memory"]
    server = None
    peers = []  # the pg pass: the class server's replicas
    ports = None  # the ports of the server and its replicas
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.peers = []
        cls.ports = None
        if URL:
            if cls.OWN_SERVER:
                raise unittest.SkipTest("needs its own server, and DISTRIBUERAD_URL is set")
            cls.server = None
            cls.host, cls.port = server_address()
            return
        if not cls.CLASS_SERVER:
            cls.server = None
            cls.host, cls.port = None, None
            return
        Server.shared_schema = fresh_schema()  # the replicas share it
        try:
            cls.server = cls.new_server()
            cls.peers = [cls.new_server() for _ in range(REPLICAS - 1)]
            if cls.server.store_args() is cls.server.args:
                for p in cls.peers:  # not on PostgreSQL: no replicas
                    p.cleanup()
                cls.peers = []
        finally:
            Server.shared_schema = None
        try:
            for srv in [cls.server] + cls.peers:
                srv.start()
        except Exception:
            for srv in [cls.server] + cls.peers:
                srv.cleanup()
            cls.server, cls.peers = None, []
            raise
        cls.host, cls.port = cls.server.host, cls.server.port
        cls.ports = [cls.server.port] + [p.port for p in cls.peers]

    @classmethod
    def new_server(cls):
        """The class server, not yet started; override for other kinds."""
        return Server(cls.SERVER_ARGS)

    @classmethod
    def servers(cls):
        """The class server and its replicas (the pg pass)."""
        return [s for s in [cls.server] + list(cls.peers or []) if s is not None]

    @classmethod
    def tearDownClass(cls):
        srvs = cls.servers()
        cls.server, cls.peers = None, []
        problems = []
        for srv in srvs:
            try:
                if not srv.alive():
                    problems.append("server died during the tests (status %s)\n%s"
                                    % (srv.proc.returncode, cls._death_log(srv)))
                    continue
                rc = srv.stop()
                if rc is None:
                    problems.append("server did not exit within 5 s of SIGTERM\n%s" % srv.log())
                elif rc != 0:
                    what = "valgrind found errors" if (VALGRIND and rc == 99) else "exit status %d" % rc
                    problems.append("server stopped with %s after SIGTERM\n%s" % (what, srv.log()))
            finally:
                srv.cleanup()
        if problems:
            raise ServerError("\n".join(problems))

    @classmethod
    def _death_log(cls, srv):
        """The server log the first time its death is reported, then a
        pointer to it, so one crash does not print the log for every test."""
        if getattr(srv, "death_reported", False):
            return "(server log: see the first failure of this class)"
        srv.death_reported = True
        return srv.log()

    def setUp(self):
        self.c = Client(self.host, self.port, ports=self.ports) if self.port else None
        self._extra = []
        for srv in type(self).servers():
            if not srv.alive():
                self.fail("server had died before this test (status %s)\n%s"
                          % (srv.proc.returncode, self._death_log(srv)))

    def tearDown(self):
        if self.c is not None:
            self.c.close()
        for x in self._extra:
            x.close()
        for srv in type(self).servers():
            if not srv.alive():
                self.fail("server died during this test (status %s)\n%s"
                          % (srv.proc.returncode, self._death_log(srv)))

    def server_log(self):
        """Log tail for a failure report (run.py calls this)."""
        out = []
        for srv in type(self).servers():
            if not srv.alive():
                out.append(self._death_log(srv) if not getattr(srv, "death_reported", False) else "")
            else:
                out.append(srv.log(30))
        return "\n".join(x for x in out if x)

    # ---- plumbing
    def client(self):
        c = Client(self.host, self.port, ports=self.ports)
        self._extra.append(c)
        return c

    def pin_client(self):
        """Sends self.c's requests to the class server alone, on one
        keep-alive connection (for what is per replica in the pg pass:
        request series, parked-acquire limits, a connection's life)."""
        if self.c is not None:
            self.c.close()
        self.c = Client(self.host, self.port)

    def raw(self):
        r = RawConn(self.host, self.port)
        self._extra.append(r)
        return r

    def req(self, method, path, body=None, headers=None):
        return self.c.req(method, path, body, headers)

    def post_chunked(self, path, pieces):
        """POSTs the JSON body in pieces, chunked by http.client on a
        connection of its own: (status, parsed body)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10 * SCALE)
        try:
            conn.request("POST", path, body=iter(pieces),
                         headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                         encode_chunked=True)
            r = conn.getresponse()
            raw = r.read()
            openapi_check.check("POST", path, r.status, r.headers, raw)
            return r.status, parse_json(raw)
        finally:
            conn.close()

    def chan(self, prefix="c"):
        return "%s-%s" % (prefix, uuid.uuid4().hex[:12])

    # ---- assertions
    def assertTrue(self, expr, msg=None):
        if not expr:  # the message alone, without "False is not true :"
            self.fail(msg or "%r is not true" % (expr,))

    def assertFalse(self, expr, msg=None):
        if expr:
            self.fail(msg or "%r is not false" % (expr,))

    def assertStatus(self, r, status, what=""):
        if r.status != status:
            self.fail("%sexpected status %d, got %d: %r" % (what + ": " if what else "", status, r.status, r.raw[:500]))

    def assertError(self, r, status, mention=None, what=""):
        """A 4xx: the status, Content-Type application/json, body
        {"error": "<non-empty string>"}, and (if given) the error text
        mentions `mention` (case-insensitive)."""
        self.assertStatus(r, status, what)
        ct = r.headers.get("Content-Type") or ""
        self.assertTrue(ct.lower().startswith("application/json"),
                        "%s: error Content-Type is %r, want application/json" % (what, ct))
        self.assertIsInstance(r.json, dict, "%s: error body is not a JSON object: %r" % (what, r.raw[:300]))
        err = r.json.get("error")
        self.assertIsInstance(err, str, "%s: no string \"error\" member: %r" % (what, r.json))
        self.assertTrue(err.strip(), "%s: empty error text" % what)
        if mention is not None:
            self.assertIn(mention.lower(), err.lower(),
                          "%s: error %r does not mention %r" % (what, err, mention))

    def assertEvent(self, ev, state=None, listing=False):
        """Checks an event object's fields and types. lockToken must not be
        there (callers that expect it pop it first)."""
        self.assertIsInstance(ev, dict, "event is not an object: %r" % (ev,))
        missing = EVENT_KEYS - set(ev)
        self.assertFalse(missing, "event lacks %s: %r" % (sorted(missing), ev))
        self.assertRegex(ev["eventID"], ID_RE)
        self.assertIsInstance(ev["data"], str)
        self.assertIs(type(ev["isLocked"]), bool)
        self.assertRegex(ev["publishedAt"], TIME_RE)
        self.assertRegex(ev["livesUntil"], TIME_RE)
        self.assertIn(ev["state"], ("scheduled", "ready", "locked"))
        self.assertEqual(ev["isLocked"], ev["state"] == "locked", "isLocked disagrees with state: %r" % ev)
        if ev["state"] == "locked":
            self.assertRegex(ev.get("lockedUntil", ""), TIME_RE, "locked event without lockedUntil: %r" % ev)
        else:
            self.assertNotIn("lockedUntil", ev, "lockedUntil on an unlocked event: %r" % ev)
        self.assertNotIn("lockToken", ev, "lockToken shown outside a LOCK/acquire answer: %r" % ev)
        if state is not None:
            self.assertEqual(ev["state"], state, "event state: %r" % ev)
        self.assertGreater(ts_ns(ev["livesUntil"]), ts_ns(ev["publishedAt"]))

    # ---- API shortcuts
    def ev_path(self, ch, eid=None):
        p = "/%s/events" % q(ch)
        return p if eid is None else p + "/" + eid

    def publish(self, ch, body=None, client=None):
        """Publishes one event, asserts 201 and returns the event object."""
        if body is None:
            body = {"data": "x"}
        r = (client or self.c).req("POST", self.ev_path(ch), body)
        self.assertStatus(r, 201, "publish to %r" % ch)
        self.assertIsInstance(r.json, dict)
        return r.json

    def listing(self, ch):
        r = self.req("GET", self.ev_path(ch))
        self.assertStatus(r, 200, "listing %r" % ch)
        body = r.json
        self.assertIsInstance(body, dict)
        self.assertEqual(body.get("channelName"), ch)
        self.assertIsInstance(body.get("events"), list)
        self.assertEqual(body.get("count"), len(body["events"]), "count != len(events): %r" % body)
        return body

    def ids(self, ch):
        return [e["eventID"] for e in self.listing(ch)["events"]]

    def assertCount(self, ch, n, what=""):
        got = self.listing(ch)["count"]
        self.assertEqual(got, n, "%s: channel %r has %d events, want %d" % (what, ch, got, n))

    def get_event(self, ch, eid):
        return self.req("GET", self.ev_path(ch, eid))

    def lock(self, ch, eid, body=None, headers=None, method="PUT"):
        return self.req(method, self.ev_path(ch, eid), {} if body is None else body, headers)

    def delete(self, ch, eid, headers=None):
        return self.req("DELETE", self.ev_path(ch, eid), None, headers)

    def wait_until(self, cond, timeout, interval=0.02, msg="condition"):
        """Polls cond() until it returns a true value (returned), failing
        after timeout*SCALE seconds."""
        deadline = time.monotonic() + timeout * SCALE
        while True:
            v = cond()
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail("timed out after %.1f s waiting for %s" % (timeout * SCALE, msg))
            time.sleep(interval)


# ---- the log file (docs/WAL.md)

HEADER = 16   # "DISTRLOG", u32 version, u32 salt
FRAME = 12    # u32 length, u32 CRC-32C of the payload, u32 CRC-32C of the 8 bytes before


def log_format(path):
    """(version, salt, frame size) from the log's header. Version 1 had
    8-byte frames and no salt; the tests of defects found in version 1
    follow the file, so that they fail against a version-1 server too."""
    with open(path, "rb") as f:
        h = f.read(HEADER)
    version, salt = struct.unpack_from("<II", h, 8)
    return version, salt, (8 if version == 1 else FRAME)


def records(path):
    """[(offset, payload length)] of the log's records, up to the zeros a
    running (or crashed) server keeps written ahead of them."""
    frame = log_format(path)[2]
    with open(path, "rb") as f:
        b = f.read()
    out, off = [], HEADER
    while off + frame <= len(b):
        n, _ = struct.unpack_from("<II", b, off)
        if n == 0 or off + frame + n > len(b):
            break
        out.append((off, n))
        off += frame + n
    return out


def log_end(path):
    """Where the log's records end: the file's size once the server has
    stopped, less than it while one runs (the zeros written ahead)."""
    recs = records(path)
    return recs[-1][0] + log_format(path)[2] + recs[-1][1] if recs else HEADER
