"""Batch publish (Part B): POST /{c}/events with a JSON array, all or
nothing."""

import re
import unittest

import bb
from bb import S, q, ts_ns

class BatchTest(bb.ServerTestCase):

    def batch(self, ch, arr):
        return self.req("POST", self.ev_path(ch), arr)

    def test_batch_in_order(self):
        ch = self.chan()
        r = self.batch(ch, [{"data": "a"}, {"data": "b", "ttl": "1m"}, {"data": "c", "publishIn": "1h"}, {}])
        self.assertStatus(r, 201)
        body = r.json
        self.assertEqual(body.get("channelName"), ch)
        self.assertEqual(body.get("count"), 4)
        evs = body["events"]
        self.assertEqual([e["data"] for e in evs], ["a", "b", "c", ""])
        for e in evs:
            self.assertEvent(e)
        self.assertEqual([e["state"] for e in evs], ["ready", "ready", "scheduled", "ready"])
        self.assertEqual(ts_ns(evs[1]["livesUntil"]) - ts_ns(evs[1]["publishedAt"]), 60 * S)
        self.assertEqual(len({e["eventID"] for e in evs}), 4)
        self.assertEqual(self.ids(ch), [evs[0]["eventID"], evs[1]["eventID"], evs[3]["eventID"]])

    def test_invalid_element_names_index(self):
        ch = self.chan()
        self.publish(ch, {"data": "before"})
        for arr, idx in (([{"data": "ok"}, {"data": "ok"}, {"priority": 10}], 2),
                         ([{"data": "ok"}, {"ttl": "0s"}], 1),
                         ([{"publishAt": "nope"}], 0),
                         ([{}, {}, {}, {"publishIn": "-1s"}], 3),
                         ([{}, {}, "x"], 2),
                         ([{}, 5], 1),
                         ([{}, None], 1),
                         ([{}, []], 1)):
            r = self.batch(ch, arr)
            self.assertError(r, 400, what="batch %r" % (arr,))
            self.assertRegex(r.json["error"], r"\[%d\]|index %d|element %d" % (idx, idx, idx),
                             "the error does not name index %d" % idx)
        self.assertEqual([e["data"] for e in self.listing(ch)["events"]], ["before"], "a failed batch published")

    def test_empty_array_400(self):
        ch = self.chan()
        self.assertError(self.batch(ch, []), 400)
        self.assertError(self.req("POST", self.ev_path(ch), b" [ ] ", {"Content-Type": "application/json"}), 400)
        self.assertEqual(self.listing(ch)["count"], 0)

    def test_malformed_array_400(self):
        ch = self.chan()
        for raw in (b"[{}", b"[{},]", b"[{}] x", b"[{}][{}]"):
            r = self.req("POST", self.ev_path(ch), raw, {"Content-Type": "application/json"})
            self.assertError(r, 400, what="batch body %r" % raw)
        self.assertEqual(self.listing(ch)["count"], 0)

    def test_large_batch(self):
        ch = self.chan()
        r = self.batch(ch, [{"data": "%05d" % i} for i in range(5000)])
        self.assertStatus(r, 201)
        self.assertEqual(r.json["count"], 5000)
        ids = [e["eventID"] for e in r.json["events"]]
        self.assertEqual(self.ids(ch), ids)
        self.assertEqual([e["data"] for e in self.listing(ch)["events"]], ["%05d" % i for i in range(5000)])

    def test_batch_over_limit(self):
        ch = self.chan()
        r = self.batch(ch, [{} for _ in range(10001)])
        self.assertIn(r.status, (400, 413), "a batch of 10 001")
        self.assertError(r, r.status)
        self.assertEqual(self.listing(ch)["count"], 0)

    def test_batch_element_data_too_big(self):
        ch = self.chan()
        r = self.batch(ch, [{"data": "a"}, {"data": "x" * (300 * 1024)}])
        self.assertIn(r.status, (400, 413))
        self.assertError(r, r.status)
        self.assertEqual(self.listing(ch)["count"], 0)

    def test_batch_stats(self):
        ch = self.chan()
        self.assertStatus(self.batch(ch, [{}, {}, {"publishIn": "1h"}]), 201)
        r = self.req("GET", "/" + q(ch))
        self.assertStatus(r, 200)
        self.assertEqual((r.json["ready"], r.json["scheduled"], r.json["published"]), (2, 1, 2))


if __name__ == "__main__":
    unittest.main()
