"""POST /events/batch (CONTRACT §4.10): per-item validation and results in
order, per-item idempotency keys and replays, parents within the batch,
limits, and what the broker's faults do to a batch."""

import json
import os
import signal
import time
import unittest

import bbtest
from bbtest import BBTestCase, Consumer, post
from test_tracking import (
    WorkerSettingsCase, correlation_path, idempotent_id, redis, record_key, run_tag,
)

BATCH = "/events/batch"


def item(event_type, key=None, **extra):
    it = {"event_type": event_type, "payload": {"n": run_tag()}}
    if key is not None:
        it["idempotency_key"] = key
    it.update(extra)
    return it


def nested(depth):
    """A JSON object nested depth levels deep."""
    value = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


class BatchCase(BBTestCase):

    def batch(self, items, headers=None, status=None):
        resp = post(BATCH, json.dumps(items), headers=headers)
        if status is not None:
            return self.assertJSONResponse(resp, status)
        return resp

    def received_ids(self, consumer, wait=0.5):
        return [props.message_id for _, props, _ in consumer.drain(wait=wait)]


class BatchTest(BatchCase):

    def test_every_item_published_is_200_with_ids_in_order(self):
        tag = run_tag()
        items = [item("batch.ok.%s" % tag) for _ in range(5)]
        with Consumer("batch.ok.%s" % tag) as c:
            doc = self.batch(items, status=200)
            got = self.received_ids(c)
        self.assertEqual(doc["published"], 5)
        self.assertEqual(doc["failed"], 0)
        ids = [r["event_id"] for r in doc["results"]]
        self.assertEqual([r["status"] for r in doc["results"]], [200] * 5)
        self.assertEqual(got, ids, "the queue holds exactly the batch, in order")

    def test_mixed_items_answer_207_in_order_and_only_valid_ones_are_published(self):
        tag = run_tag()
        t = "batch.mixed.%s" % tag
        items = [
            item(t),
            {"event_type": t},                    # no payload: 422
            item(t, key="k-%s" % tag),
            "not an object",                      # 422
            item("Not A Type"),                   # bad event type: 422
            item(t, surprise=1),                  # unknown envelope field: 422
        ]
        with Consumer(t) as c:
            doc = self.batch(items, status=207)
            got = self.received_ids(c)
        statuses = [r["status"] for r in doc["results"]]
        self.assertEqual(statuses, [200, 422, 200, 422, 422, 422], doc)
        self.assertEqual((doc["published"], doc["failed"]), (2, 4))
        for r in doc["results"]:
            if r["status"] == 422:
                self.assertEqual(r["error"], "validation_error", r)
                self.assertTrue(r["detail"])
        self.assertIn("fields", doc["results"][1])
        self.assertEqual(doc["results"][2]["event_id"], idempotent_id(t, "k-%s" % tag))
        self.assertEqual(sorted(got), sorted([doc["results"][0]["event_id"],
                                              doc["results"][2]["event_id"]]))

    def test_every_item_invalid_is_207_and_publishes_nothing(self):
        with Consumer("batch.#") as c:
            doc = self.batch([{"payload": {}}, 5, []], status=207)
            self.assertEqual(self.received_ids(c), [])
        self.assertEqual([r["status"] for r in doc["results"]], [422, 422, 422])
        self.assertEqual((doc["published"], doc["failed"]), (0, 3))

    def test_replay_publishes_nothing_and_answers_replayed(self):
        tag = run_tag()
        t = "batch.replay.%s" % tag
        items = [item(t, key="%s-%d" % (tag, n)) for n in range(3)]
        first = self.batch(items, status=200)
        with Consumer(t) as c:
            again = self.batch(items, status=200)
            self.assertEqual(self.received_ids(c), [])
        self.assertEqual([r["event_id"] for r in again["results"]],
                         [r["event_id"] for r in first["results"]])
        self.assertTrue(all(r.get("replayed") is True for r in again["results"]), again)
        self.assertFalse(any("replayed" in r for r in first["results"]), first)

    def test_same_key_twice_in_one_batch_refuses_the_later_item(self):
        tag = run_tag()
        t = "batch.dup.%s" % tag
        doc = self.batch([item(t, key=tag), item(t), item(t, key=tag)], status=207)
        self.assertEqual([r["status"] for r in doc["results"]], [200, 200, 422], doc)

    def test_malformed_item_key_is_that_items_422(self):
        t = "batch.badkey.%s" % run_tag()
        doc = self.batch([item(t, key=""), item(t, key="tab\there"), item(t, key=7),
                          item(t)], status=207)
        self.assertEqual([r["status"] for r in doc["results"]], [422, 422, 422, 200], doc)
        self.assertEqual(doc["results"][0]["fields"][0]["field"], "idempotency_key")

    def test_idempotency_key_header_is_refused(self):
        resp = post(BATCH, json.dumps([item("batch.header")]),
                    headers={"Idempotency-Key": "abc"})
        self.assertError(resp, 400, "invalid_request")

    def test_body_that_is_not_an_array_is_400(self):
        self.assertError(post(BATCH, json.dumps(item("batch.obj"))), 400, "invalid_request")
        self.assertError(post(BATCH, b'[{"event_type":'), 400, "invalid_json")

    def test_empty_array_is_422(self):
        self.assertError(post(BATCH, b"[]"), 422, "validation_error")

    def test_more_than_batch_max_events_is_413_and_publishes_nothing(self):
        with Consumer("batch.toomany") as c:
            resp = post(BATCH, json.dumps([{"event_type": "batch.toomany", "payload": {}}]
                                          * 501))
            self.assertError(resp, 413, "payload_too_large")
            self.assertEqual(self.received_ids(c), [])

    def test_an_item_as_deep_as_a_single_event_is_published(self):
        # the deepest payload a single POST /events takes: the event object
        # and 63 levels of payload, 64 in all (CONTRACT §4.10: each item
        # gets the single event's limits)
        t = "batch.deep.%s" % run_tag()
        deep = {"event_type": t, "payload": nested(63)}
        self.assertJSONResponse(post("/events", json.dumps(deep)), 200)
        too_deep = {"event_type": t, "payload": nested(64)}
        self.assertError(post("/events", json.dumps(too_deep)), 413, "payload_too_large")
        with Consumer(t) as c:
            doc = self.batch([deep, item(t)], status=200)
            self.assertEqual(len(self.received_ids(c)), 2)
        self.assertEqual([r["status"] for r in doc["results"]], [200, 200], doc)

    def test_items_may_name_earlier_items_as_parents(self):
        tag = run_tag()
        t = "batch.lineage.%s" % tag
        parent = idempotent_id(t, "p-" + tag)
        doc = self.batch([item(t, key="p-" + tag),
                          item(t, correlation_ids=[parent])], status=200)
        child = doc["results"][1]["event_id"]
        self.assertEqual(doc["results"][0]["event_id"], parent)
        deadline = time.monotonic() + 5
        while True:
            rel = json.loads(bbtest.get(correlation_path(parent)).content)
            if child in rel.get("children", []) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertIn(child, rel.get("children", []), rel)

    def test_correlation_header_applies_to_every_item(self):
        parent = "6f1c1e8e-0000-4000-8000-%012d" % int(time.time() * 1000 % 10**12)
        t = "batch.header.%s" % run_tag()
        with Consumer(t) as c:
            self.batch([item(t), item(t)], headers={"X-Correlation-Ids": parent},
                       status=200)
            msgs = c.drain(wait=0.5)
        self.assertEqual(len(msgs), 2)
        for _, props, body in msgs:
            self.assertEqual(json.loads(body)["correlation_ids"], [parent])
            self.assertEqual(props.correlation_id, parent)

    def test_tracking_records_every_confirmed_item(self):
        t = "batch.tracked.%s" % run_tag()
        doc = self.batch([item(t) for _ in range(20)], status=200)
        ids = [r["event_id"] for r in doc["results"]]
        deadline = time.monotonic() + 5
        with redis() as r:
            while True:
                missing = [i for i in ids if not r.call("EXISTS", record_key(i))]
                if not missing or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        self.assertEqual(missing, [])


class ZzBatchBrokerDownTest(BatchCase):
    """Stops the broker: run late."""

    def test_broker_down_is_503_for_the_whole_request_and_replays_still_answer(self):
        tag = run_tag()
        t = "batch.down.%s" % tag
        done = item(t, key="done-" + tag)
        self.batch([done], status=200)
        bbtest.stack("stop-rabbit")
        try:
            resp = post(BATCH, json.dumps([item(t), item(t, key="new-" + tag)]))
            self.assertError(resp, 503, "broker_unavailable")
            self.assertIn("Retry-After", resp.headers)
            mixed = self.batch([done, item(t)], status=207)
            self.assertEqual(mixed["results"][0],
                             {"status": 200, "event_id": idempotent_id(t, "done-" + tag),
                              "replayed": True})
            self.assertEqual(mixed["results"][1]["status"], 503)
            self.assertEqual(mixed["results"][1]["error"], "broker_unavailable")
        finally:
            bbtest.stack("start-rabbit")
        # the refused keyed item was not claimed: it publishes once the broker is back
        deadline = time.monotonic() + 20
        while True:
            again = post(BATCH, json.dumps([item(t, key="new-" + tag)]))
            if again.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        doc = self.assertJSONResponse(again, 200)
        self.assertNotIn("replayed", doc["results"][0])


class ZzBatchConfirmTimeoutTest(WorkerSettingsCase):
    """The broker stopped with SIGSTOP after the batch's connection is up:
    every item is written and none confirmed -- each is 504."""

    SETTINGS = {"RABBIT_CONFIRM_TIMEOUT_MS": "500"}

    def test_no_confirm_in_time_is_504_per_item(self):
        path = os.path.join(bbtest.BB_STATE_DIR, "rabbitmq", "rabbitmq.pid")
        with open(path) as f:
            pid = int(f.read().strip())
        t = "batch.timeout.%s" % run_tag()
        for _ in range(8):  # every worker connected
            self.assertJSONResponse(post(BATCH, json.dumps([item(t)])), 200)
        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            resp = post(BATCH, json.dumps([item(t) for _ in range(4)]), timeout=10)
            elapsed = time.monotonic() - t0
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertLess(elapsed, 3.5)
        doc = self.assertJSONResponse(resp, 207)
        self.assertEqual([r["status"] for r in doc["results"]], [504] * 4, doc)
        self.assertTrue(all(r["error"] == "broker_timeout" for r in doc["results"]))


class ZzBatchDeadlineTest(WorkerSettingsCase, BatchCase):
    """Redis hung (SIGSTOP) longer than the confirm timeout: the batch's
    first keyed item waits REDIS_TIMEOUT_MS for its claim, past the batch's
    deadline. The items not yet written are answered 503 unwritten and
    reach no queue; they are not written late."""

    SETTINGS = {"RABBIT_CONFIRM_TIMEOUT_MS": "500", "REDIS_TIMEOUT_MS": "1500"}

    def test_items_past_the_deadline_are_503_unwritten(self):
        path = os.path.join(bbtest.BB_STATE_DIR, "redis", "redis.pid")
        with open(path) as f:
            pid = int(f.read().strip())
        t = "batch.late.%s" % run_tag()
        for n in range(8):  # every worker connected to both
            self.assertJSONResponse(post(BATCH, json.dumps([item(t, key="w%d-%s" % (n, t))])), 200)
        items = [item(t), item(t, key="slow-" + t), item(t), item(t)]
        with Consumer(t) as c:
            os.kill(pid, signal.SIGSTOP)
            try:
                doc = self.batch(items, status=207)
            finally:
                os.kill(pid, signal.SIGCONT)
            got = self.received_ids(c, wait=1.0)
        statuses = [r["status"] for r in doc["results"]]
        self.assertIn(statuses[0], (200, 504), doc)
        self.assertEqual(statuses[1:], [503] * 3, doc)
        self.assertTrue(all(r["error"] == "broker_unavailable" for r in doc["results"][1:]), doc)
        # only the first item was written (a 504 may or may not have arrived)
        self.assertLessEqual(len(got), 1, got)
        if statuses[0] == 200:
            self.assertEqual(got, [doc["results"][0]["event_id"]])


if __name__ == "__main__":
    unittest.main()
