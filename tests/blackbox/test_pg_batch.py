"""Part D: concurrent requests of one channel merged into one statement
(group commit, docs/SCHEMA.md "Batches"), and each request still getting
its own answer.

Each test makes the merge certain rather than likely: a psql session
holds a table lock, so that the replica's first requests of a channel
wait in the database and fill its slots; the requests sent meanwhile
queue in the replica and go as one statement once the lock ends. The
replica's /metrics (distribuerad_database_batches_total and
..._batched_requests_total) prove that they did. The answers are then
checked request by request: a wrong split gives a request someone else's
event, status or token.
"""

import re
import threading
import time

import bb
from bb import SCALE, q
import test_pg_replicas

def metric(client, name, op):
    """This replica's counter name{op=...}."""
    r = client.req("GET", "/metrics")
    m = re.search(r'^%s\{op="%s"\} (\S+)$' % (name, op), r.raw.decode(), re.M)
    assert m, "no %s{op=%s} in /metrics" % (name, op)
    return float(m.group(1))


def batch_counts(client, op):
    return (metric(client, "distribuerad_database_batches_total", op),
            metric(client, "distribuerad_database_batched_requests_total", op))


@bb.pg_only("group commit is the PostgreSQL store's")
class BatchTest(test_pg_replicas.ReplicaSetCase):
    WEIGHT = 2

    def replica(self, extra=()):
        return self.replicas(1, extra)

    def concurrently(self, rs, calls):
        """Runs each call(client) on a connection of its own, all at once;
        returns their results in order."""
        out = [None] * len(calls)
        clients = [rs.client(0, timeout=30 * SCALE) for _ in calls]

        def run(i):
            out[i] = calls[i](clients[i])

        ts = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in ts:
            t.start()
        return ts, out, clients

    def join(self, ts, clients):
        for t in ts:
            t.join(60 * SCALE)
        for c in clients:
            c.close()

    def merged_run(self, rs, table, blockers, calls):
        """Holds the lock on table, sends the blockers (they fill the
        channel's slots and wait in the database), then the calls (they
        queue behind them and go as one statement); returns the results of
        the blockers and of the calls."""
        lock = test_pg_replicas.TableLock(rs.schema, table, 1.5 * SCALE).start()
        bts, bout, bcl = self.concurrently(rs, blockers)
        time.sleep(0.3 * SCALE)
        ts, out, cl = self.concurrently(rs, calls)
        time.sleep(0.4 * SCALE)  # all of them read by the replica
        lock.wait()
        self.join(bts, bcl)
        self.join(ts, cl)
        return bout, out

    def assertMerged(self, c, op, before, at_least):
        b0, r0 = before
        b1, r1 = batch_counts(c, op)
        self.assertGreaterEqual(r1 - r0 - (b1 - b0), at_least - 1,
                                "%d %s requests went in %d statements: not merged" % (r1 - r0, op, b1 - b0))

    def test_idempotent_publishers_in_one_statement(self):
        rs = self.replica()
        ch = self.chan()
        c = rs.client(0)
        path = "/%s/events" % q(ch)
        r = c.req("POST", path, {"data": "first", "key": "old"})
        self.assertEqual(r.status, 201, r.raw)
        old = r.json["eventID"]
        before = batch_counts(c, "publish")

        def pub(body):
            return lambda cl: cl.req("POST", path, body)

        # 50 publishers: keys k0..k9, five each, the data names the sender
        bodies = [{"data": "p%02d" % i, "key": "k%d" % (i % 10)} for i in range(50)]
        blockers = [pub({"data": "again", "key": "old"}) for _ in range(2)]
        bout, out = self.merged_run(rs, "channels", blockers, [pub(b) for b in bodies])
        for r in bout:
            self.assertEqual(r.status, 200, r.raw)
            self.assertEqual(r.json["eventID"], old)
        self.assertMerged(c, "publish", before, 40)
        by_key = {}
        for body, r in zip(bodies, out):
            self.assertIn(r.status, (200, 201), r.raw)
            by_key.setdefault(body["key"], []).append((body, r))
        for key, got in sorted(by_key.items()):
            created = [(b, r) for b, r in got if r.status == 201]
            self.assertEqual(len(created), 1, "key %s: %d created: %r" % (key, len(created), [r.raw for _, r in got]))
            made_body, made = created[0]
            self.assertEqual(made.json["data"], made_body["data"], "key %s: the creator got another event" % key)
            for b, r in got:
                self.assertEqual(r.json["eventID"], made.json["eventID"], "key %s: a replay with another id" % key)
                self.assertEqual(r.json["data"], made_body["data"], "key %s: a replay shows other data" % key)
        evs = c.req("GET", path).json["events"]
        self.assertEqual(len(evs), 11, [e["data"] for e in evs])
        self.assertEqual(sorted(e["eventID"] for e in evs),
                         sorted([old] + [g[0][1].json["eventID"] for g in by_key.values()]))
        c.close()

    def test_publishers_without_keys_each_get_their_event(self):
        rs = self.replica()
        ch = self.chan()
        c = rs.client(0)
        path = "/%s/events" % q(ch)
        self.assertEqual(c.req("POST", path, {"data": "first", "key": "old"}).status, 201)
        before = batch_counts(c, "publish")
        bodies = [{"data": "p%02d" % i} if i % 3 else [{"data": "p%02d-a" % i}, {"data": "p%02d-b" % i}]
                  for i in range(30)]
        blockers = [lambda cl: cl.req("POST", path, {"data": "again", "key": "old"})] * 2
        _, out = self.merged_run(rs, "channels", blockers, [lambda cl, b=b: cl.req("POST", path, b) for b in bodies])
        self.assertMerged(c, "publish", before, 20)
        ids = []
        for b, r in zip(bodies, out):
            self.assertEqual(r.status, 201, r.raw)
            if isinstance(b, list):
                self.assertEqual([e["data"] for e in r.json["events"]], [x["data"] for x in b])
                ids += [e["eventID"] for e in r.json["events"]]
            else:
                self.assertEqual(r.json["data"], b["data"], "a publisher got another's event")
                ids.append(r.json["eventID"])
        self.assertEqual(len(set(ids)), 40)
        listed = [e["eventID"] for e in c.req("GET", path).json["events"]]
        self.assertEqual(sorted(listed[1:]), sorted(ids))
        c.close()

    def test_channel_limit_refuses_one_of_a_merged_batch(self):
        rs = self.replica(["-max-channel-events", "10"])
        ch = self.chan()
        c = rs.client(0)
        path = "/%s/events" % q(ch)
        self.assertEqual(c.req("POST", path, [{"data": "a", "key": "old"}] +
                                 [{"data": "x%d" % i} for i in range(6)]).status, 201)
        before = batch_counts(c, "publish")
        split0 = metric(c, "distribuerad_database_batches_split_total", "publish")
        # room for 3: a batch of two, then singles; the batch of 8 fails as
        # a whole and is decided request by request in arrival order
        bodies = [[{"data": "b0"}, {"data": "b1"}]] + [{"data": "s%d" % i} for i in range(7)]
        blockers = [lambda cl: cl.req("POST", path, {"data": "again", "key": "old"})] * 2
        _, out = self.merged_run(rs, "channels", blockers, [lambda cl, b=b: cl.req("POST", path, b) for b in bodies])
        self.assertMerged(c, "publish", before, 8)
        self.assertGreater(metric(c, "distribuerad_database_batches_split_total", "publish"), split0)
        statuses = [r.status for r in out]
        made = []
        for b, r in zip(bodies, out):
            if r.status == 201:
                got = [e["data"] for e in r.json["events"]] if isinstance(b, list) else [r.json["data"]]
                self.assertEqual(got, [x["data"] for x in b] if isinstance(b, list) else [b["data"]])
                made += got
            else:
                self.assertEqual(r.status, 429, r.raw)
        self.assertEqual(len(made), 3, "the limit of 10 took %d of 3: %r" % (len(made), statuses))
        evs = [e["data"] for e in c.req("GET", path).json["events"]]
        self.assertEqual(len(evs), 10)
        self.assertEqual(sorted(evs[7:]), sorted(made), "a refused request changed the channel")
        c.close()

    def test_deletes_with_wrong_tokens_in_one_statement(self):
        rs = self.replica()
        ch = self.chan()
        c = rs.client(0)
        path = "/%s/events" % q(ch)
        self.assertEqual(c.req("POST", path, [{"data": "e%02d" % i} for i in range(24)]).status, 201)
        r = c.req("POST", "/%s/acquire" % q(ch), {"max": 24, "ttl": "5m"})
        self.assertEqual(r.json["count"], 24)
        evs = r.json["events"]
        before = batch_counts(c, "delete")
        unknown = c.req("POST", "/%s/events" % q(self.chan()), {"data": "elsewhere"}).json["eventID"]
        plan = []  # (event id, token header, expected status)
        for i, e in enumerate(evs[:20]):
            if i % 4 == 1:
                plan.append((e["eventID"], {"Lock-Token": "%016x" % (int(e["lockToken"], 16) ^ 1)}, 409))
            elif i % 4 == 2:
                plan.append((e["eventID"], {}, 202))  # no token: any lock
            else:
                plan.append((e["eventID"], {"Lock-Token": e["lockToken"]}, 202))
        plan.append((unknown, {}, 404))  # another channel's event
        plan.append((evs[21]["eventID"], {"Lock-Token": evs[21]["lockToken"]}, "once"))
        plan.append((evs[21]["eventID"], {"Lock-Token": evs[21]["lockToken"]}, "once"))
        blockers = [lambda cl: cl.req("DELETE", "%s/%s" % (path, unknown))] * 2
        calls = [lambda cl, p=p: cl.req("DELETE", "%s/%s" % (path, p[0]), headers=p[1]) for p in plan]
        bout, out = self.merged_run(rs, "events", blockers, calls)
        for r in bout:
            self.assertEqual(r.status, 404, r.raw)
        self.assertMerged(c, "delete", before, 15)
        once = []
        for p, r in zip(plan, out):
            if p[2] == "once":
                once.append(r.status)
            else:
                self.assertEqual(r.status, p[2], "DELETE %s %r: %s" % (p[0], p[1], r.raw))
        self.assertEqual(sorted(once), [202, 404], "the same event deleted twice in one statement")
        left = sorted(e["eventID"] for e in c.req("GET", path).json["events"])
        want = sorted([p[0] for p in plan[:20] if p[2] == 409] + [evs[20]["eventID"]] +
                      [e["eventID"] for e in evs[22:]])
        self.assertEqual(left, want)
        st = c.req("GET", "/" + q(ch)).json
        self.assertEqual(st["deleted"], 16, st)
        c.close()

    def test_acquires_in_one_statement_share_out_in_order(self):
        rs = self.replica()
        ch = self.chan()
        c = rs.client(0)
        path = "/%s/events" % q(ch)
        self.assertEqual(c.req("POST", path, [{"data": "e%02d" % i} for i in range(40)]).status, 201)
        order = [e["eventID"] for e in c.req("GET", path).json["events"]]
        before = batch_counts(c, "acquire")
        maxes = [1, 3, 2, 5, 1, 4, 2, 3, 1, 2, 10]  # 34 of the 38 left
        blockers = [lambda cl: cl.req("POST", "/%s/acquire" % q(ch), {"max": 1, "ttl": "5m"})] * 2
        calls = [lambda cl, m=m: cl.req("POST", "/%s/acquire" % q(ch), {"max": m, "ttl": "5m"}) for m in maxes]
        bout, out = self.merged_run(rs, "events", blockers, calls)
        self.assertMerged(c, "acquire", before, 10)
        got = [r.json["events"][0]["eventID"] for r in bout]
        counts = []
        for m, r in zip(maxes, out):
            self.assertEqual(r.status, 200, r.raw)
            evs = r.json["events"]
            self.assertLessEqual(len(evs), m, "an acquire of max %d got %d" % (m, len(evs)))
            for e in evs:
                self.assertEqual(e["state"], "locked")
                self.assertEqual(c.req("DELETE", "%s/%s" % (path, e["eventID"]),
                                       headers={"Lock-Token": e["lockToken"]}).status, 202,
                                 "a token handed out is not the event's")
            at = [order.index(e["eventID"]) for e in evs]
            self.assertEqual(at, sorted(at), "an acquire's events are not oldest first")
            got += [e["eventID"] for e in evs]
            counts.append(len(evs))
        self.assertEqual(len(got), len(set(got)), "an event handed out twice")
        self.assertEqual(counts, maxes, "an acquire got another number of events than its max")
        self.assertEqual(sorted(got), sorted(order[:36]), "not the oldest events were handed out")
        c.close()
