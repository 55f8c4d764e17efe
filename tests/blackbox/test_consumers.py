"""API Part C for consumers: data of any JSON type, priorities, idempotent
publish, deliveries, channel settings, retries and dead letters, redrive,
reading the queue in pages, purge and channel delete.

Every class but the last runs against any store (no data directory is
assumed). ConsumersRestartTest restarts a server on a data directory: it is
about the memory store and its log.
"""

import threading
import time

import bb
from bb import MS, S, SCALE, now_ns, q, ts_ns
from test_durability import DurabilityCase


class ConsumerCase(bb.ServerTestCase):
    def settings(self, ch, body=None):
        if body is None:
            return self.req("GET", "/%s/settings" % q(ch))
        return self.req("PUT", "/%s/settings" % q(ch), body)

    def set_ok(self, ch, body):
        r = self.settings(ch, body)
        self.assertStatus(r, 200, "settings PUT %r" % (body,))
        return r.json

    def acquire(self, ch, body=None):
        r = self.req("POST", "/%s/acquire" % q(ch), body or {})
        self.assertStatus(r, 200, "acquire")
        return r.json["events"]

    def stats(self, ch):
        r = self.req("GET", "/%s" % q(ch))
        self.assertStatus(r, 200)
        return r.json

    def page(self, ch, query):
        return self.req("GET", self.ev_path(ch) + "?" + query)

    def unlock(self, ch, eid, extra=None, headers=None):
        body = {"action": "UNLOCK"}
        body.update(extra or {})
        return self.lock(ch, eid, body, headers)


# ============================================================== data ====

class JsonDataTest(ConsumerCase):
    def test_any_json_value_is_echoed_as_sent(self):
        ch = self.chan()
        text = '{"b":1,"a":[1.50,true,null,"x\\u0000y",{"z":-0.0e5}],"c":"\\u00e9"}'
        body = '{"data":%s}' % text
        r = self.req("POST", self.ev_path(ch), body, {"Content-Type": "application/json"})
        self.assertStatus(r, 201)
        self.assertIn(b'"data":' + text.encode(), r.raw, "the data's text is not kept")
        for got in (self.get_event(ch, r.json["eventID"]).raw, self.req("GET", self.ev_path(ch)).raw):
            self.assertIn(b'"data":' + text.encode(), got)
        ev = self.acquire(ch)[0]
        self.assertEqual(list(ev["data"].keys()), ["b", "a", "c"], "member order")

    def test_strings_stay_strings_and_null_is_absent(self):
        ch = self.chan()
        for data, want in (('"{\\"a\\":1}"', '{"a":1}'), ("null", ""), ('"7"', "7")):
            r = self.req("POST", self.ev_path(ch), '{"data":%s}' % data)
            self.assertStatus(r, 201)
            self.assertEqual(r.json["data"], want)
        for data in (0, -12, 3.25, True, False, [], {}, [1, [2, {"x": None}]]):
            r = self.req("POST", self.ev_path(ch), {"data": data})
            self.assertStatus(r, 201)
            self.assertEqual(r.json["data"], data)
            self.assertIs(type(r.json["data"]), type(data))

    def test_batch_elements_of_any_type(self):
        ch = self.chan()
        r = self.req("POST", self.ev_path(ch), [{"data": {"n": 1}}, {"data": [2]}, {"data": "3"}])
        self.assertStatus(r, 201)
        self.assertEqual([e["data"] for e in r.json["events"]], [{"n": 1}, [2], "3"])


# ========================================================== priority ====

class PriorityTest(ConsumerCase):
    def test_acquire_takes_the_most_urgent_then_the_oldest(self):
        ch = self.chan()
        order = [5, 0, 9, 0, 5, 3]
        ids = [self.publish(ch, {"data": str(i), "priority": p})["eventID"] for i, p in enumerate(order)]
        want = sorted(range(len(order)), key=lambda i: (order[i], i))
        got = [e["eventID"] for e in self.acquire(ch, {"max": 2})] + \
              [e["eventID"] for e in self.acquire(ch, {"max": 10})]
        self.assertEqual(got, [ids[i] for i in want])

    def test_listing_stays_in_visibility_order_and_shows_priority(self):
        ch = self.chan()
        evs = [self.publish(ch, {"data": "x", "priority": p}) for p in (4, 1, 7)]
        self.assertEqual([e["priority"] for e in evs], [4, 1, 7])
        listed = self.listing(ch)["events"]
        self.assertEqual([e["eventID"] for e in listed], [e["eventID"] for e in evs])
        self.assertEqual([e["priority"] for e in listed], [4, 1, 7])
        self.assertEqual(self.publish(ch)["priority"], 0, "the default priority")

    def test_priority_out_of_range_is_refused(self):
        ch = self.chan()
        for p in (10, -1, 1.5, "1", True, [1]):
            self.assertError(self.req("POST", self.ev_path(ch), {"data": "x", "priority": p}), 400,
                             mention="priority", what="priority %r" % (p,))
        self.assertEqual(self.stats(ch)["published"], 0)


# ======================================================= idempotency ====

class IdempotencyTest(ConsumerCase):
    def test_a_live_key_answers_the_existing_event(self):
        ch = self.chan()
        r1 = self.req("POST", self.ev_path(ch), {"data": "a", "key": "order-1"})
        self.assertStatus(r1, 201)
        self.assertIsNone(r1.headers.get("Idempotent-Replayed"))
        r2 = self.req("POST", self.ev_path(ch), {"data": "other", "key": "order-1", "priority": 3})
        self.assertStatus(r2, 200, "a repeated key")
        self.assertEqual(r2.headers.get("Idempotent-Replayed"), "true")
        self.assertEqual(r2.json, r1.json)
        self.assertEqual(r2.headers.get("Location"), r1.headers.get("Location"))
        r3 = self.req("POST", self.ev_path(ch), {"data": "b"}, {"Idempotency-Key": "order-1"})
        self.assertStatus(r3, 200, "the key as a header")
        self.assertEqual(r3.json["eventID"], r1.json["eventID"])
        self.assertEqual(self.stats(ch)["published"], 1)
        self.assertCount(ch, 1)

    def test_keys_are_per_channel_and_free_once_the_event_is_gone(self):
        ch, other = self.chan(), self.chan()
        e1 = self.publish(ch, {"key": "k"})
        self.assertStatus(self.req("POST", self.ev_path(other), {"key": "k"}), 201, "another channel")
        locked = self.publish(ch, {"key": "busy"})
        self.assertStatus(self.lock(ch, locked["eventID"]), 202)
        self.assertStatus(self.req("POST", self.ev_path(ch), {"key": "busy"}), 200, "a locked event's key")
        sched = self.publish(ch, {"key": "later", "publishIn": "1h"})
        self.assertStatus(self.req("POST", self.ev_path(ch), {"key": "later"}), 200, "a scheduled event's key")
        self.assertStatus(self.delete(ch, e1["eventID"]), 202)
        r = self.req("POST", self.ev_path(ch), {"key": "k"})
        self.assertStatus(r, 201, "the key after its event was deleted")
        self.assertNotEqual(r.json["eventID"], e1["eventID"])
        self.assertEqual(sched["state"], "scheduled")

    def test_key_frees_when_the_event_expires(self):
        ch = self.chan()
        e1 = self.publish(ch, {"key": "k", "ttl": "%dms" % int(200 * SCALE)})
        self.wait_until(lambda: self.get_event(ch, e1["eventID"]).status == 404, 5, msg="expiry")
        self.assertStatus(self.req("POST", self.ev_path(ch), {"key": "k"}), 201)

    def test_batch_keys(self):
        ch = self.chan()
        old = self.publish(ch, {"data": "old", "key": "a"})
        r = self.req("POST", self.ev_path(ch), [{"data": "1", "key": "a"}, {"data": "2", "key": "b"},
                                                {"data": "3", "key": "b"}, {"data": "4"}])
        self.assertStatus(r, 201, "a batch with something new")
        self.assertEqual(r.json["count"], 2, "count counts only new events")
        evs = r.json["events"]
        self.assertEqual(len(evs), 4)
        self.assertEqual(evs[0]["eventID"], old["eventID"])
        self.assertEqual(evs[1]["eventID"], evs[2]["eventID"], "a key repeated in the batch")
        self.assertEqual([evs[1]["data"], evs[3]["data"]], ["2", "4"])
        r = self.req("POST", self.ev_path(ch), [{"key": "a"}, {"key": "b"}])
        self.assertStatus(r, 200, "a batch of live keys only")
        self.assertEqual(r.headers.get("Idempotent-Replayed"), "true")
        self.assertEqual(r.json["count"], 0)
        self.assertCount(ch, 3)

    def test_bad_keys_are_refused_and_change_nothing(self):
        ch = self.chan()
        live = self.publish(ch, {"key": "live"})
        self.assertStatus(self.req("POST", self.ev_path(ch), {"key": "k" * 200}), 201, "a 200-byte key")
        cases = [
            ({"key": ""}, None, "key"),
            ({"key": "k" * 201}, None, "key"),
            ({"key": 5}, None, "key"),
            ({"key": "a"}, {"Idempotency-Key": "b"}, "Idempotency-Key"),
            ({}, {"Idempotency-Key": "k" * 201}, "Idempotency-Key"),
            ([{"data": "x"}], {"Idempotency-Key": "a"}, "batch"),
            ({"key": "live", "ttl": "0s"}, None, "ttl"),
            ({"key": "live", "priority": 10}, None, "priority"),
        ]
        for body, headers, mention in cases:
            r = self.req("POST", self.ev_path(ch), body, headers)
            self.assertError(r, 400, mention=mention, what="%r %r" % (body, headers))
        self.assertEqual(self.ids(ch)[0], live["eventID"])
        self.assertCount(ch, 2)
        r = self.req("POST", self.ev_path(ch), {"key": "same"}, {"Idempotency-Key": "same"})
        self.assertStatus(r, 201, "the same key in header and body")


# ===================================================== dead letters ====

class DeliveriesTest(ConsumerCase):
    def test_deliveries_count_locks(self):
        ch = self.chan()
        ev = self.publish(ch)
        self.assertEqual(ev["deliveries"], 0)
        r = self.lock(ch, ev["eventID"])
        self.assertEqual(r.json["deliveries"], 1)
        self.assertStatus(self.unlock(ch, ev["eventID"]), 202)
        self.assertEqual(self.acquire(ch)[0]["deliveries"], 2)
        self.assertEqual(self.get_event(ch, ev["eventID"]).json["deliveries"], 2)

    def test_settings_defaults_changes_and_bad_input(self):
        ch = self.chan()
        self.assertEqual(self.settings(ch).json, {"maxDeliveries": 0, "deadLetterChannel": "", "retryDelay": "0s"})
        self.assertStatus(self.req("GET", "/%s" % q(ch)), 200)
        self.assertNotIn(ch, [c["channelName"] for c in self.req("GET", "/channels").json["channels"]],
                         "a settings GET created the channel")
        self.assertEqual(self.set_ok(ch, {"maxDeliveries": 3}),
                         {"maxDeliveries": 3, "deadLetterChannel": "", "retryDelay": "0s"})
        self.assertEqual(self.set_ok(ch, {"retryDelay": "90s", "deadLetterChannel": "dead"}),
                         {"maxDeliveries": 3, "deadLetterChannel": "dead", "retryDelay": "1m30s"})
        self.assertEqual(self.set_ok(ch, {"RetryDelay": "1500ms"})["retryDelay"], "1.5s")
        self.assertIn(ch, [c["channelName"] for c in self.req("GET", "/channels").json["channels"]])
        for body, mention in (({"maxDeliveries": -1}, "maxDeliveries"), ({"maxDeliveries": "2"}, "maxDeliveries"),
                              ({"deadLetterChannel": ch}, "deadLetterChannel"),
                              ({"deadLetterChannel": "a/b"}, "deadLetterChannel"),
                              ({"deadLetterChannel": "x" * 201}, "deadLetterChannel"),
                              ({"retryDelay": "-1s"}, "retryDelay"), ({"retryDelay": 5}, "retryDelay"),
                              ({"maxDelivery": 1}, "maxDelivery"), ([], None)):
            self.assertError(self.settings(ch, body), 400, mention=mention, what="settings %r" % (body,))
        self.assertEqual(self.settings(ch).json["maxDeliveries"], 3, "a refused PUT changed the settings")
        self.assertEqual(self.set_ok(ch, {"deadLetterChannel": ""})["deadLetterChannel"], "")

    def test_unlock_at_the_limit_moves_to_the_dead_letter_channel(self):
        ch, dead = self.chan(), self.chan("dead")
        self.set_ok(ch, {"maxDeliveries": 2, "deadLetterChannel": dead})
        ev = self.publish(ch, {"data": {"n": 1}, "priority": 4, "key": "k1"})
        eid = ev["eventID"]
        self.assertStatus(self.lock(ch, eid), 202)
        self.assertStatus(self.unlock(ch, eid), 202)
        self.assertEqual(self.get_event(ch, eid).json["state"], "ready", "moved before the limit")
        tok = self.lock(ch, eid).json["lockToken"]
        before = now_ns()
        r = self.unlock(ch, eid)
        self.assertStatus(r, 202)
        self.assertEqual(r.raw, b"", "an UNLOCK that moved the event has no body")
        self.assertEqual(self.get_event(ch, eid).status, 404, "still in the source")
        moved = self.get_event(dead, eid)
        self.assertStatus(moved, 200)
        m = moved.json
        self.assertEqual((m["data"], m["priority"], m["deliveries"], m["livesUntil"], m["state"]),
                         ({"n": 1}, 4, 2, ev["livesUntil"], "ready"))
        self.assertEqual(m["deadLetteredFrom"], ch)
        self.assertGreaterEqual(ts_ns(m["publishedAt"]), before - 5 * MS)
        self.assertEqual(self.stats(ch)["deadLettered"], 1)
        self.assertEqual(self.stats(dead)["published"], 1)
        self.assertEqual(self.stats(ch)["deleted"], 0)
        # the old token is void; the key went with the event
        self.assertError(self.delete(ch, eid, {"Lock-Token": tok}), 404)
        self.assertError(self.delete(dead, eid, {"Lock-Token": tok}), 409)
        self.assertStatus(self.req("POST", self.ev_path(ch), {"key": "k1"}), 201, "the key in the source")
        self.assertStatus(self.req("POST", self.ev_path(dead), {"key": "k1"}), 200, "the key in the target")

    def test_without_a_dead_letter_channel_the_event_is_dropped(self):
        ch = self.chan()
        self.set_ok(ch, {"maxDeliveries": 1})
        eid = self.publish(ch)["eventID"]
        self.acquire(ch)
        r = self.unlock(ch, eid)
        self.assertStatus(r, 202)
        self.assertEqual(r.raw, b"", "an UNLOCK that dropped the event has no body")
        self.assertEqual(self.get_event(ch, eid).status, 404)
        st = self.stats(ch)
        self.assertEqual((st["deadLettered"], st["deleted"], st["ready"]), (1, 0, 0))

    def test_a_lapsed_lock_at_the_limit_moves(self):
        ch, dead = self.chan(), self.chan("dead")
        self.set_ok(ch, {"maxDeliveries": 1, "deadLetterChannel": dead})
        eid = self.publish(ch)["eventID"]
        self.acquire(ch, {"ttl": "%dms" % int(200 * SCALE)})
        self.wait_until(lambda: self.get_event(dead, eid).status == 200, 5, msg="the dead-letter move")
        self.assertEqual(self.get_event(ch, eid).status, 404)
        self.assertEqual(self.get_event(dead, eid).json["deadLetteredFrom"], ch)

    def test_moves_chain(self):
        a, b = self.chan("a"), self.chan("b")
        self.set_ok(a, {"maxDeliveries": 1, "deadLetterChannel": b})
        self.set_ok(b, {"maxDeliveries": 2, "deadLetterChannel": a})
        eid = self.publish(a)["eventID"]
        self.acquire(a)
        self.unlock(a, eid)
        self.acquire(b)  # deliveries 2: the limit of b
        self.unlock(b, eid)
        ev = self.get_event(a, eid).json
        self.assertEqual((ev["deadLetteredFrom"], ev["deliveries"]), (b, 2))

    def test_retry_delay_holds_a_lapsed_event_back(self):
        ch = self.chan()
        delay = int(600 * SCALE)
        self.set_ok(ch, {"retryDelay": "%dms" % delay})
        eid = self.publish(ch)["eventID"]
        ev = self.acquire(ch, {"ttl": "%dms" % int(150 * SCALE)})[0]
        until = ts_ns(ev["lockedUntil"])
        self.wait_until(lambda: self.get_event(ch, eid).json["state"] != "locked", 5, msg="the lapse")
        got = self.get_event(ch, eid).json
        self.assertEqual(got["state"], "scheduled", "a lapsed lock under a retry delay")
        self.assertEqual(ts_ns(got["publishedAt"]), until + delay * MS)
        self.assertEqual(got["livesUntil"], ev["livesUntil"])
        self.assertEqual(self.acquire(ch), [])
        self.wait_until(lambda: self.get_event(ch, eid).json["state"] == "ready", 5, msg="the return")
        self.assertEqual(self.stats(ch)["published"], 1, "returning counted as published again")
        # UNLOCK is not delayed by retryDelay
        self.acquire(ch)
        self.unlock(ch, eid)
        self.assertEqual(self.get_event(ch, eid).json["state"], "ready")

    def test_unlock_with_a_delay(self):
        ch = self.chan()
        ev = self.publish(ch)
        eid = ev["eventID"]
        tok = self.lock(ch, eid).json["lockToken"]
        before = now_ns()
        r = self.unlock(ch, eid, {"delay": "%dms" % int(500 * SCALE), "lockToken": tok})
        self.assertStatus(r, 202)
        self.assertEqual(r.json["state"], "scheduled")
        self.assertGreaterEqual(ts_ns(r.json["publishedAt"]), before + int(500 * SCALE) * MS)
        self.assertEqual(r.json["livesUntil"], ev["livesUntil"], "livesUntil moved")
        self.assertEqual(self.acquire(ch), [])
        self.wait_until(lambda: self.get_event(ch, eid).json["state"] == "ready", 5, msg="the return")
        # a ready event is simply held back
        r = self.unlock(ch, eid, {"delay": "1h"})
        self.assertEqual(r.json["state"], "scheduled")
        for body in ({"action": "LOCK", "delay": "1s"}, {"action": "EXTEND", "delay": "1s"},
                     {"action": "UNLOCK", "delay": "-1s"}, {"action": "UNLOCK", "delay": 5}):
            self.assertError(self.lock(ch, eid, body), 400, mention="delay", what="%r" % (body,))

    def test_lock_token_header_and_field_must_agree(self):
        ch = self.chan()
        eid = self.publish(ch)["eventID"]
        tok = self.lock(ch, eid).json["lockToken"]
        r = self.unlock(ch, eid, {"lockToken": tok}, {"Lock-Token": "0" * 16})
        self.assertError(r, 400, mention="Lock-Token")
        self.assertEqual(self.get_event(ch, eid).json["state"], "locked")
        self.assertStatus(self.unlock(ch, eid, {"lockToken": tok}, {"Lock-Token": tok}), 202)

    def test_redrive(self):
        src, dead, other = self.chan("src"), self.chan("dead"), self.chan("other")
        self.set_ok(src, {"maxDeliveries": 1, "deadLetterChannel": dead})
        ids = [self.publish(src, {"data": str(i)})["eventID"] for i in range(3)]
        for _ in ids:
            eid = self.acquire(src)[0]["eventID"]
            self.unlock(src, eid)
        self.publish(dead, {"data": "native"})  # no deadLetteredFrom: stays
        self.assertEqual(self.stats(dead)["ready"], 4)
        r = self.req("POST", "/%s/redrive" % q(dead), {"max": 1})
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"moved": 1})
        back = self.get_event(src, ids[0]).json
        self.assertEqual(back["deliveries"], 0)
        self.assertNotIn("deadLetteredFrom", back)
        self.assertEqual(self.ids(src), [ids[0]])
        r = self.req("POST", "/%s/redrive" % q(dead), {"to": other})
        self.assertEqual(r.json, {"moved": 2})
        self.assertEqual(self.ids(other), ids[1:])
        self.assertEqual(self.req("POST", "/%s/redrive/" % q(dead)).json, {"moved": 0})
        self.assertEqual(self.req("POST", "/%s/redrive" % q(self.chan("none")), {}).json, {"moved": 0})
        for body, mention in (({"max": 0}, "max"), ({"to": "a/b"}, "to"), ({"to": ""}, "to"),
                              ({"too": "x"}, "too"), ("[]", None)):
            self.assertError(self.req("POST", "/%s/redrive" % q(dead), body), 400, mention=mention,
                             what="redrive %r" % (body,))

    def test_stats_and_metrics(self):
        ch = self.chan()
        self.assertEqual(self.stats(ch)["oldestReadyAge"], 0)
        self.publish(ch)
        time.sleep(0.3)
        age = self.stats(ch)["oldestReadyAge"]
        self.assertGreaterEqual(age, 0.25)
        self.assertLess(age, 30)
        self.acquire(ch)
        self.assertEqual(self.stats(ch)["oldestReadyAge"], 0, "a locked event is not ready")
        text = self.req("GET", "/metrics").raw.decode()
        self.assertIn("\ndistribuerad_events_dead_lettered_total ", text)


class FullTargetTest(ConsumerCase):
    SERVER_ARGS = ["-in-memory", "-max-channel-events", "2"]

    def scrape_failed(self):
        for line in self.req("GET", "/metrics").raw.decode().splitlines():
            if line.startswith("distribuerad_dead_letter_moves_failed_total "):
                return float(line.split()[1])
        self.fail("no failed-move counter in /metrics")

    def failed_moves(self, want=None):
        """The failed-move counter. The memory store's is exact at once. On
        PostgreSQL it is shared and read about once a second (API.md, Part
        D): without want, the value once every replica has read it again;
        with want, the first value equal to it within 3 s (the caller
        asserts on what it gets)."""
        if not bb.PG:
            return self.scrape_failed()
        if want is None:
            for _ in range(2 * bb.REPLICAS):  # every replica reads anew
                self.scrape_failed()
            time.sleep(1.2 * SCALE)
            return self.scrape_failed()
        deadline = time.monotonic() + 3 * SCALE
        got = self.scrape_failed()
        while got != want and time.monotonic() < deadline:
            time.sleep(0.1)
            got = self.scrape_failed()
        return got

    def full_move(self):
        """A dead-letter move into a full channel: the event stays."""
        ch, dead = self.chan(), self.chan("dead")
        self.set_ok(ch, {"maxDeliveries": 1, "deadLetterChannel": dead})
        self.publish(dead)
        self.publish(dead)
        eid = self.publish(ch)["eventID"]
        self.acquire(ch)
        self.assertStatus(self.unlock(ch, eid), 202)
        ev = self.get_event(ch, eid).json
        self.assertEqual(ev["state"], "ready", "the event did not stay")
        self.assertNotIn("deadLetteredFrom", ev)
        self.assertEqual(self.stats(dead)["ready"], 2)

    def test_a_move_into_a_full_channel_leaves_the_event_ready(self):
        self.full_move()

    def test_a_refused_move_is_counted(self):
        before = self.failed_moves()
        self.full_move()
        self.assertEqual(self.failed_moves(before + 1), before + 1)
        self.assertEqual(self.failed_moves(), before + 1, "counted more than once")

    def test_a_refused_redrive_is_counted(self):
        """A redrive into a full channel leaves each event, counted as a
        refused move."""
        ch, dead, full, roomy = self.chan(), self.chan("dead"), self.chan("full"), self.chan("roomy")
        self.set_ok(ch, {"maxDeliveries": 1, "deadLetterChannel": dead})
        for _ in range(2):
            eid = self.publish(ch)["eventID"]
            self.acquire(ch)
            self.assertStatus(self.unlock(ch, eid), 202)
        self.assertEqual(self.stats(dead)["ready"], 2)
        self.publish(full)
        self.publish(full)
        before = self.failed_moves()
        r = self.req("POST", "/%s/redrive" % q(dead), {"to": full})
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"moved": 0})
        self.assertEqual(self.failed_moves(before + 2), before + 2)
        self.assertEqual(self.stats(dead)["ready"], 2)
        self.publish(roomy)
        r = self.req("POST", "/%s/redrive" % q(roomy), {"to": full})
        self.assertEqual(r.json, {"moved": 0}, "a plain event is no dead letter")
        r = self.req("POST", "/%s/redrive" % q(dead), {"to": roomy, "max": 1})
        self.assertEqual(r.json, {"moved": 1})
        self.assertEqual(self.stats(roomy)["ready"], 2)


class RedriveChannelLimitTest(ConsumerCase):
    """-max-channels: a redrive that would create a channel past it is
    refused as a publish would be, and moves nothing."""

    OWN_SERVER = True
    SERVER_ARGS = ["-in-memory", "-max-channels", "3"]

    def names(self):
        return sorted(c["channelName"] for c in self.req("GET", "/channels").json["channels"])

    def dead_letters(self, ch, dead, n):
        self.set_ok(ch, {"maxDeliveries": 1, "deadLetterChannel": dead})
        for _ in range(n):
            eid = self.publish(ch)["eventID"]
            self.acquire(ch)
            self.assertStatus(self.unlock(ch, eid), 202)
        self.assertEqual(self.stats(dead)["ready"], n)

    def assertRefused(self, r, what):
        self.assertError(r, 429, mention="3 channels", what=what)
        self.assertIsNotNone(r.headers.get("Retry-After"), what)

    def test_redrive_past_the_channel_limit(self):
        src, dead, other = self.chan("src"), self.chan("dead"), self.chan("other")
        self.dead_letters(src, dead, 2)
        self.publish(other)
        self.assertEqual(self.names(), sorted([src, dead, other]))
        # the limit as a publish meets it
        fresh = self.chan("fresh")
        self.assertRefused(self.req("POST", self.ev_path(fresh), {"data": "x"}), "publish into a 4th channel")
        # a redrive into a new channel: refused, nothing moved or made
        self.assertRefused(self.req("POST", "/%s/redrive" % q(dead), {"to": fresh}), "redrive into a 4th channel")
        self.assertRefused(self.req("POST", "/%s/redrive" % q(dead), {"to": fresh, "max": 1}), "redrive of one")
        self.assertEqual(self.names(), sorted([src, dead, other]))
        self.assertEqual(self.stats(dead)["ready"], 2)
        self.assertTrue(all(e.get("deadLetteredFrom") == src for e in self.listing(dead)["events"]))
        # back where they came from, once that channel is gone
        self.assertStatus(self.req("DELETE", "/" + q(src)), 202)
        self.publish(self.chan("fill"))
        self.assertRefused(self.req("POST", "/%s/redrive" % q(dead), {}), "redrive back into a deleted channel")
        self.assertEqual(self.stats(dead)["ready"], 2)
        self.assertNotIn(src, self.names())
        # nothing to move creates nothing, so nothing is refused
        self.assertEqual(self.req("POST", "/%s/redrive" % q(other), {"to": fresh}).json, {"moved": 0})
        # into channels that exist: as always; to itself: to its back
        r = self.req("POST", "/%s/redrive" % q(dead), {"to": dead, "max": 1})
        self.assertEqual(r.json, {"moved": 1})
        r = self.req("POST", "/%s/redrive" % q(dead), {"to": other})
        self.assertEqual(r.json, {"moved": 1})
        evs = self.listing(dead)["events"]
        self.assertEqual((len(evs), evs[0]["deliveries"], "deadLetteredFrom" in evs[0]), (1, 0, False))
        self.assertEqual(self.stats(other)["ready"], 2)
        self.assertNotIn(fresh, self.names())


# ============================================================ pages ====

class PagingTest(ConsumerCase):
    def walk(self, ch, query, limit):
        got, after, pages = [], None, 0
        while True:
            r = self.page(ch, query + "&limit=%d" % limit + ("&after=" + after if after else ""))
            self.assertStatus(r, 200)
            self.assertEqual(r.json["count"], len(r.json["events"]))
            self.assertLessEqual(r.json["count"], limit)
            got += [e["eventID"] for e in r.json["events"]]
            pages += 1
            after = r.json.get("next")
            if not after:
                return got, pages

    def test_pages_by_state(self):
        ch = self.chan()
        ids = [self.publish(ch, {"data": str(i)})["eventID"] for i in range(7)]
        locked = {ids[1], ids[4]}
        for eid in locked:
            self.lock(ch, eid)
        later = [self.publish(ch, {"publishIn": "%dh" % h})["eventID"] for h in (3, 1, 2)]
        got, pages = self.walk(ch, "state=visible", 3)
        self.assertEqual(got, ids)
        self.assertEqual(pages, 3)
        self.assertEqual(self.walk(ch, "state=ready", 2)[0], [i for i in ids if i not in locked])
        self.assertEqual(self.walk(ch, "state=locked", 1)[0], [i for i in ids if i in locked])
        self.assertEqual(self.walk(ch, "state=scheduled", 2)[0], [later[1], later[2], later[0]])
        r = self.page(ch, "state=scheduled")
        self.assertEqual([e["eventID"] for e in r.json["events"]], [later[1], later[2], later[0]])
        self.assertNotIn("next", r.json, "next without a limit")
        r = self.page(ch, "limit=10000")
        self.assertEqual(r.json["count"], 7)
        self.assertNotIn("next", r.json)

    def test_a_cursor_survives_changes(self):
        ch = self.chan()
        ids = [self.publish(ch)["eventID"] for _ in range(5)]
        r = self.page(ch, "limit=2")
        cursor = r.json["next"]
        self.assertStatus(self.delete(ch, ids[1]), 202)
        self.lock(ch, ids[2])
        r = self.page(ch, "limit=2&after=" + cursor)
        self.assertEqual([e["eventID"] for e in r.json["events"]], ids[2:4])
        r = self.page(ch, "state=ready&limit=10&after=" + self.page(ch, "state=ready&limit=1").json["next"])
        self.assertEqual([e["eventID"] for e in r.json["events"]], [ids[3], ids[4]])

    def test_bad_parameters(self):
        ch = self.chan()
        self.publish(ch)
        cursor = self.page(ch, "limit=1&state=ready").json.get("next")
        for query, mention in (("limit=0", "limit"), ("limit=10001", "limit"), ("limit=x", "limit"),
                               ("limit=", "limit"), ("limit=-1", "limit"), ("state=gone", "state"),
                               ("after=nonsense", "after"), ("after=", "after"), ("page=2", "page"),
                               ("limit=1&Limit=2", "Limit"), ("after=%zz", None)):
            self.assertError(self.page(ch, query), 400, mention=mention, what=query)
        if cursor:
            self.assertError(self.page(ch, "state=locked&after=" + cursor), 400, mention="after",
                             what="a cursor of another state")
        self.assertStatus(self.page(ch, "limit=1"), 200)
        self.assertStatus(self.page(self.chan("none"), "limit=5&state=scheduled"), 200)


# ==================================================== purge, delete ====

class ClearingTest(ConsumerCase):
    def test_purge(self):
        ch = self.chan()
        self.set_ok(ch, {"maxDeliveries": 4})
        self.assertStatus(self.req("POST", "/%s/jobs" % q(ch), {"name": "j", "cronDef": "@yearly"}), 201)
        eid = self.publish(ch)["eventID"]
        self.lock(ch, self.publish(ch)["eventID"])
        self.publish(ch, {"publishIn": "1h"})
        r = self.req("POST", "/%s/purge" % q(ch))
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"deleted": 3})
        st = self.stats(ch)
        self.assertEqual((st["ready"], st["locked"], st["scheduled"], st["deleted"], st["jobs"]), (0, 0, 0, 3, 1))
        self.assertEqual(self.get_event(ch, eid).status, 404)
        self.assertEqual(self.settings(ch).json["maxDeliveries"], 4)
        self.assertEqual(self.req("POST", "/%s/purge/" % q(ch)).json, {"deleted": 0})
        self.assertError(self.req("POST", "/%s/purge" % q(self.chan("none"))), 404)

    def test_delete_channel(self):
        ch = self.chan()
        self.set_ok(ch, {"maxDeliveries": 4})
        self.assertStatus(self.req("POST", "/%s/jobs" % q(ch), {"name": "j", "cronDef": "@yearly"}), 201)
        eid = self.publish(ch, {"key": "k"})["eventID"]
        r = self.req("DELETE", "/%s" % q(ch))
        self.assertStatus(r, 202)
        self.assertNotIn(ch, [c["channelName"] for c in self.req("GET", "/channels").json["channels"]])
        self.assertEqual(self.get_event(ch, eid).status, 404)
        self.assertEqual(self.req("GET", "/%s/jobs" % q(ch)).json["jobs"], [])
        self.assertEqual(self.settings(ch).json["maxDeliveries"], 0)
        self.assertError(self.req("DELETE", "/%s/" % q(ch)), 404)
        # the name is free, its counters start again
        self.assertStatus(self.req("POST", self.ev_path(ch), {"key": "k"}), 201)
        self.assertEqual(self.stats(ch)["published"], 1)

    def test_delete_answers_parked_acquires(self):
        ch = self.chan()
        self.publish(ch)
        self.acquire(ch)
        box = {}
        c = self.client()

        def park():
            box["r"] = c.req("POST", "/%s/acquire" % q(ch), {"wait": "30s"})
        t = threading.Thread(target=park)
        t.start()
        time.sleep(0.3 * SCALE)
        start = time.monotonic()
        self.assertStatus(self.req("DELETE", "/%s" % q(ch)), 202)
        t.join(10 * SCALE)
        self.assertFalse(t.is_alive(), "the parked acquire was not answered")
        self.assertLess(time.monotonic() - start, 5 * SCALE)
        self.assertEqual(box["r"].json, {"channelName": ch, "count": 0, "events": []})

    def test_fixed_routes_win_only_for_get(self):
        for name in ("metrics", "channels"):
            self.publish(name)
            self.assertStatus(self.req("DELETE", "/" + name), 202, "DELETE /" + name)
            self.assertEqual(self.req("GET", "/%s/events" % name).json["count"], 0)
        self.assertStatus(self.req("GET", "/metrics"), 200)


# ========================================================== restart ====

@bb.memory_only("restarts on a data directory: the log")
class ConsumersRestartTest(DurabilityCase):
    """The memory store: everything of Part C comes back from the log."""

    def restart(self, d, crash=False):
        if crash:
            self.crash(self.srv)
        else:
            self.stop(self.srv)
        self.start(d)

    def test_part_c_state_survives_a_restart(self):
        d = self.data_dir()
        self.start(d)
        ch, dead, gone = self.chan("src"), self.chan("dead"), self.chan("gone")
        self.assertStatus(self.req("PUT", "/%s/settings" % q(ch),
                                   {"maxDeliveries": 1, "deadLetterChannel": dead, "retryDelay": "2s"}), 200)
        r = self.req("POST", self.ev_path(ch), '{"data":{"m":[1.50]},"priority":2,"key":"km"}')
        self.assertStatus(r, 201)
        moved = r.json["eventID"]
        self.req("POST", "/%s/acquire" % q(ch), {})
        self.assertStatus(self.req("PUT", self.ev_path(ch, moved), {"action": "UNLOCK"}), 202)
        keyed = self.publish(ch, {"data": [1], "priority": 7, "key": "k1"})["eventID"]
        held = self.publish(ch, {"data": "h"})["eventID"]
        self.lock(ch, held)
        self.assertStatus(self.req("PUT", self.ev_path(ch, held), {"action": "UNLOCK", "delay": "1h"}), 202)
        self.publish(gone)
        self.assertStatus(self.req("DELETE", "/" + q(gone)), 202)
        purged = self.chan("purged")
        self.publish(purged)
        self.assertStatus(self.req("POST", "/%s/purge" % q(purged)), 200)
        before = {eid: self.get_event(c, eid).json for c, eid in ((dead, moved), (ch, keyed), (ch, held))}
        for crash in (False, True):
            self.restart(d, crash)
            for c, eid in ((dead, moved), (ch, keyed), (ch, held)):
                self.assertEqual(self.get_event(c, eid).json, before[eid], "%s after a restart" % eid)
            self.assertIn(b'"data":{"m":[1.50]}', self.get_event(dead, moved).raw)
            self.assertEqual(self.req("GET", "/%s/settings" % q(ch)).json,
                             {"maxDeliveries": 1, "deadLetterChannel": dead, "retryDelay": "2s"})
            r = self.req("POST", self.ev_path(ch), {"key": "k1"})
            self.assertStatus(r, 200, "the key after a restart")
            self.assertEqual(r.json["eventID"], keyed)
            self.assertStatus(self.req("POST", self.ev_path(dead), {"key": "km"}), 200)
            names = [c["channelName"] for c in self.req("GET", "/channels").json["channels"]]
            self.assertNotIn(gone, names, "a deleted channel came back")
            self.assertEqual(self.listing(purged)["count"], 0, "purged events came back")

    def test_a_crash_around_a_dead_letter_move_neither_loses_nor_duplicates(self):
        """kill -9 at moments around lapses that move events: once every
        lock has ended after the restart, each event is in the dead-letter
        channel exactly once. (The two listings are not read at one
        instant, so the check waits for the lapses to end.)"""
        d = self.data_dir()
        self.start(d)
        ch, dead = self.chan("src"), self.chan("dead")
        self.req("PUT", "/%s/settings" % q(ch), {"maxDeliveries": 1, "deadLetterChannel": dead})
        ids = []
        for rnd in range(4):
            batch = [self.publish(ch, {"data": str(i)})["eventID"] for i in range(20)]
            ids += batch
            self.req("POST", "/%s/acquire" % q(ch), {"max": 20, "ttl": "%dms" % (100 + 40 * rnd)})
            time.sleep((0.08 + 0.03 * rnd) * SCALE)
            self.restart(d, crash=True)
            self.wait_until(lambda: self.listing(ch)["count"] == 0, 5, msg="every lock in the source ended")
            in_dead = self.ids(dead)
            self.assertEqual(sorted(in_dead), sorted(ids), "events lost or duplicated in the crash")
            for eid in ids[-20:]:
                self.assertEqual(self.get_event(ch, eid).status, 404, "%s is still in the source" % eid)
