#!/usr/bin/python3
"""The fault suite's checker on made-up outcomes: it must fail on each broken
invariant, not only pass on good runs. No stack needed."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from faultcheck import Request, evaluate, event_id  # noqa: E402

BOUND = 4000
HTML_502 = b'<?xml version="1.0"?>\n<html><body>502 Bad Gateway</body></html>'


class Run:
    """Builds requests: each at time t (s), answering after ms."""

    def __init__(self):
        self.requests = []
        self.n = 0

    def req(self, t, ms, status, body=None, final=False, delivery=None):
        """delivery: the Bloodbank-Delivery header; a 202 gets "spooled"
        unless told (False: none)."""
        self.n += 1
        key = "k%d" % self.n
        r = Request(0, key, event_id("llm.prompt", key), t, final=final)
        if status is None:
            r.failed(t + ms / 1000.0, "timeout")
        else:
            if status == 202 and delivery is None:
                delivery = "spooled"
            if body is None:
                if status in (200, 202):
                    body = json.dumps({"event_id": r.eid}).encode()
                else:
                    body = json.dumps({"error": {503: "broker_unavailable",
                                                 504: "broker_timeout"}.get(status, "x"),
                                       "detail": "d"}).encode()
            r.answered(t + ms / 1000.0, status, body, delivery or None)
        self.requests.append(r)
        return r

    def final(self, t=20.0):
        return self.req(t, 5, 200, final=True)


class CheckerTest(unittest.TestCase):

    def test_event_id_is_the_service_s(self):
        # the service answered this id for Idempotency-Key abc1 (CONTRACT §5)
        self.assertEqual(event_id("llm.prompt", "abc1"), "73194c3e-8dae-5212-a758-596daa393d93")

    def good_run(self):
        run = Run()
        ok = [run.req(t, 20, 200) for t in (0.0, 1.0, 2.0)]
        unavailable = run.req(3.0, 5, 503)
        timeout_in = run.req(4.0, 2000, 504)
        timeout_out = run.req(4.5, 2000, 504)
        back = run.req(11.0, 20, 200)
        fin = run.final()
        queue = [r.eid for r in ok + [timeout_in, back, fin]]
        del unavailable, timeout_out
        return run, queue

    def test_a_good_run_passes(self):
        run, queue = self.good_run()
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0)
        self.assertTrue(v.ok, v.failures)
        self.assertEqual(v.counts, {200: 5, 202: 0, 503: 1, 504: 2, "other": 0})
        self.assertEqual(v.in_queue_504, 1)
        self.assertEqual(v.recovered_s, 0.0)
        self.assertAlmostEqual(v.slowest_ms, 2000, places=3)

    def test_a_200_missing_from_the_queue_is_lost(self):
        run, queue = self.good_run()
        queue.remove(run.requests[1].eid)
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0)
        self.assertFalse(v.ok)
        self.assertEqual([r.eid for r in v.lost], [run.requests[1].eid])

    def test_a_503_broker_unavailable_in_the_queue_is_false(self):
        run, queue = self.good_run()
        queue.append(run.requests[3].eid)
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0)
        self.assertFalse(v.ok)
        self.assertEqual(len(v.false_np), 1)

    def test_other_503_errors_promise_nothing(self):
        run, queue = self.good_run()
        nack = run.req(5.0, 5, 503, json.dumps({"error": "broker_nack"}).encode())
        queue.append(nack.eid)
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0)
        self.assertTrue(v.ok, v.failures)

    def test_answers_not_from_the_service_fail(self):
        for status, body in ((500, json.dumps({"error": "internal_error"}).encode()),
                             (502, HTML_502), (503, HTML_502), (504, b"gateway timeout"),
                             (409, json.dumps({"error": "idempotency_conflict"}).encode()),
                             (None, None)):
            with self.subTest(status=status):
                run, queue = self.good_run()
                run.req(5.0, 5, status, body)
                v = evaluate(run.requests, queue, BOUND, removed_at=10.0)
                self.assertFalse(v.ok)
                self.assertEqual(v.counts["other"], 1)

    def test_a_200_with_another_event_id_fails(self):
        run, queue = self.good_run()
        run.req(5.0, 5, 200, json.dumps({"event_id": "not-it"}).encode())
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0)
        self.assertFalse(v.ok)

    def test_a_killed_worker_leaves_what_it_held_unknown(self):
        run, queue = self.good_run()
        run.req(5.0, 5, 502, HTML_502)
        run.req(5.001, 5, 502, HTML_502)     # the same worker held both
        run.req(6.0, 5, 500, HTML_502)
        kills = [(5.002, 5.003), (6.002, 6.003)]
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, kills=kills)
        self.assertTrue(v.ok, v.failures)
        self.assertEqual(len(v.unknown), 3)
        # a strange answer to a request not in flight at a kill is not excused
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, kills=kills[:1])
        self.assertFalse(v.ok)
        self.assertEqual((len(v.unknown), len(v.other)), (2, 1))

    def test_a_slow_answer_fails(self):
        run, queue = self.good_run()
        r = run.req(5.0, BOUND + 1, 503)
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0)
        self.assertFalse(v.ok)
        self.assertEqual(v.slow, [r])

    def test_no_answer_counts_as_slow_too(self):
        run, queue = self.good_run()
        run.req(5.0, 15000, None)
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0)
        self.assertEqual(len(v.slow), 1)
        self.assertEqual(v.counts["other"], 1)

    def test_recovered_is_when_the_last_error_answer_ended(self):
        run, queue = self.good_run()
        run.req(12.0, 500, 503)
        run.req(12.1, 5, 200)
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0)
        self.assertAlmostEqual(v.recovered_s, 2.5, places=3)

    def test_no_recovery_fails(self):
        run = Run()
        ok = run.req(0.0, 5, 200)
        run.req(11.0, 5, 503, final=True)
        v = evaluate(run.requests, [ok.eid], BOUND, removed_at=10.0)
        self.assertFalse(v.ok)
        self.assertIsNone(v.recovered_s)
        self.assertIn("publishing did not work again after the fault", v.failures)

    def test_foreign_and_duplicate_messages_are_counted(self):
        run, queue = self.good_run()
        v = evaluate(run.requests, queue + [queue[0], "someone-else"], BOUND, removed_at=10.0)
        self.assertTrue(v.ok, v.failures)
        self.assertEqual((v.duplicates, v.foreign), (1, 1))


class SpoolCheckerTest(unittest.TestCase):
    """With the spool on (CONTRACT §12): 202s must reach the queue, and no
    answer may be 503 broker_unavailable."""

    def good_run(self):
        run = Run()
        ok = [run.req(t, 20, 200) for t in (0.0, 1.0)]
        timeout_in = run.req(2.0, 2000, 504)
        timeout_out = run.req(2.5, 2000, 504)
        spooled = [run.req(t, 3, 202) for t in (3.0, 4.0, 5.0, 11.0)]
        nack = run.req(6.0, 5, 503, json.dumps({"error": "broker_nack"}).encode())
        back = run.req(12.0, 20, 200)
        fin = run.final()
        queue = [r.eid for r in ok + [timeout_in] + spooled + [back, fin]]
        del timeout_out, nack
        return run, queue, spooled

    def test_a_good_run_passes(self):
        run, queue, _ = self.good_run()
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, spool=True)
        self.assertTrue(v.ok, v.failures)
        self.assertEqual(v.counts, {200: 4, 202: 4, 503: 1, 504: 2, "other": 0})
        self.assertAlmostEqual(v.recovered_s, 1.003, places=6)   # the 202 at 11 s

    def test_a_202_missing_from_the_queue_is_lost(self):
        run, queue, spooled = self.good_run()
        queue.remove(spooled[2].eid)
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, spool=True)
        self.assertFalse(v.ok)
        self.assertEqual(v.lost, [spooled[2]])
        self.assertIn("1 answered 200 or 202 but not in the queue", v.failures)

    def test_a_503_broker_unavailable_fails_with_the_spool_on(self):
        run, queue, _ = self.good_run()
        r = run.req(7.0, 5, 503)    # broker_unavailable, not in the queue
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, spool=True)
        self.assertFalse(v.ok)
        self.assertEqual(v.unavailable, [r])
        self.assertEqual(v.false_np, [])
        self.assertIn("1 answered 503 broker_unavailable with the spool on", v.failures)
        # the same run without the spool is fine
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, kills=())
        self.assertEqual(v.unavailable, [])

    def test_a_202_without_a_spool_fails(self):
        run, queue, _ = self.good_run()
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, spool=False)
        self.assertFalse(v.ok)
        self.assertEqual(len(v.spooled_without), 4)

    def test_a_202_without_the_header_or_the_id_is_other(self):
        for what, body, delivery in (
                ("no header", None, False),
                ("another header", None, "published"),
                ("another id", json.dumps({"event_id": "not-it"}).encode(), None),
                ("no JSON", b"accepted", None)):
            with self.subTest(what):
                run, queue, _ = self.good_run()
                r = run.req(7.0, 5, 202, body, delivery=delivery)
                queue.append(r.eid)
                v = evaluate(run.requests, queue, BOUND, removed_at=10.0, spool=True)
                self.assertFalse(v.ok)
                self.assertEqual(v.other, [r])
                self.assertTrue(r.error, r.describe())

    def test_duplicates_by_message_id_are_counted_not_failed(self):
        run, queue, spooled = self.good_run()
        queue += [spooled[0].eid, spooled[0].eid, spooled[1].eid]
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, spool=True)
        self.assertTrue(v.ok, v.failures)
        self.assertEqual(v.duplicates, 3)

    def test_a_message_without_its_message_id_fails(self):
        run, queue, spooled = self.good_run()
        queue.remove(spooled[0].eid)
        queue.append("!no message_id: " + spooled[0].eid)
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, spool=True)
        self.assertFalse(v.ok)
        self.assertEqual(v.malformed, 1)
        self.assertEqual(v.lost, [spooled[0]])

    def test_a_slow_202_fails(self):
        run, queue, _ = self.good_run()
        r = run.req(7.0, BOUND + 1, 202)
        queue.append(r.eid)
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, spool=True)
        self.assertFalse(v.ok)
        self.assertEqual(v.slow, [r])

    def test_a_pool_restart_leaves_what_it_held_unknown(self):
        run, queue, _ = self.good_run()
        refused = run.req(7.0, 1, None)          # connection refused while lighttpd restarted
        spooled = run.req(7.5, 3, 202)           # answered by the new pool
        queue.append(spooled.eid)
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, kills=[(6.9, 7.4)],
                     spool=True)
        self.assertTrue(v.ok, v.failures)
        self.assertEqual(v.unknown, [refused])
        # a 202 of the window promises as any other
        queue.remove(spooled.eid)
        v = evaluate(run.requests, queue, BOUND, removed_at=10.0, kills=[(6.9, 7.6)],
                     spool=True)
        self.assertEqual(v.lost, [spooled])


if __name__ == "__main__":
    unittest.main(verbosity=1)
