"""What a publish answers when the broker does not confirm it (CONTRACT §6):
a nack is 503 broker_nack with Retry-After, no confirm in time is 504, a
broker that blocks publishers (a memory alarm) is refused at once, and none
of them leaves a correlation record or an idempotency claim behind."""

import json
import os
import signal
import threading
import time
import unittest
import uuid

import pika

import bbtest
import test_metrics
from bbtest import BBTestCase, Consumer, get, post
from test_tracking import (
    WorkerSettingsCase, claim_key, idempotent_id, publish_headers, record_key, redis,
    run_tag,
)


class NackTest(BBTestCase):
    """A queue that refuses new messages (x-overflow reject-publish, room for
    none) makes the broker nack every event routed to it."""

    def setUp(self):
        self.key = "nack.test.%s" % uuid.uuid4().hex[:12]
        conn = pika.BlockingConnection(bbtest.amqp_params())
        ch = conn.channel()
        ch.queue_declare(self.key, auto_delete=False, arguments={
            "x-max-length": 0, "x-overflow": "reject-publish"})
        ch.queue_bind(self.key, bbtest.BB_EXCHANGE, routing_key=self.key)
        conn.close()

    def tearDown(self):
        conn = pika.BlockingConnection(bbtest.amqp_params())
        conn.channel().queue_delete(self.key)
        conn.close()

    def test_nacked_publish_is_503_with_retry_after(self):
        resp = post("/events/" + self.key, b'{"n":1}')
        self.assertError(resp, 503, "broker_nack")
        self.assertIn("Retry-After", resp.headers)

    def test_nacked_publish_leaves_no_record_and_frees_its_key(self):
        key = "nack-%s" % run_tag()
        eid = idempotent_id(self.key, key)
        body = json.dumps({"n": 2})
        resp = post("/events/" + self.key, body, headers=publish_headers(key=key))
        self.assertError(resp, 503, "broker_nack")
        with redis() as r:
            self.assertEqual(r.call("EXISTS", record_key(eid)), 0, "record left behind")
            self.assertEqual(r.call("EXISTS", claim_key(eid)), 0, "claim left behind")


class ZzConfirmTimeoutTest(WorkerSettingsCase):
    """The broker process stopped (SIGSTOP) while connections stay open: the
    publish is written, no confirm ever comes."""

    SETTINGS = {"RABBIT_CONFIRM_TIMEOUT_MS": "500"}

    def beam_pid(self):
        path = os.path.join(bbtest.BB_STATE_DIR, "rabbitmq", "rabbitmq.pid")
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            self.skipTest("no RabbitMQ pid file at %s" % path)

    def test_no_confirm_in_time_is_504_and_health_still_answers_within_a_second(self):
        pid = self.beam_pid()
        for _ in range(5):  # connected workers, so that the publish is written
            self.assertJSONResponse(post("/events/timeout.test.warm", b"{}"), 200)
        statuses = []
        os.kill(pid, signal.SIGSTOP)
        try:
            for _ in range(4):
                t0 = time.monotonic()
                resp = post("/events/timeout.test.hung", b'{"n":1}', timeout=10)
                elapsed = time.monotonic() - t0
                statuses.append(resp.status_code)
                # a connected worker waits 0.5 s for the confirm, one that
                # must reconnect gives up after its 2 s connect budget
                self.assertLess(elapsed, 3.0, "answered after %.1f s" % elapsed)
                self.assertIn(resp.status_code, (503, 504), resp.content)
                if resp.status_code == 504:
                    self.assertError(resp, 504, "broker_timeout")
            t0 = time.monotonic()
            health = get("/healthz", timeout=5)
            self.assertLess(time.monotonic() - t0, 1.5, "healthz took too long")
            self.assertIn(health.status_code, (200, 503))
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertIn(504, statuses, statuses)
        deadline = time.monotonic() + 15
        while True:
            again = post("/events/timeout.test.back", b"{}")
            if again.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertJSONResponse(again, 200)


class ZzHeartbeatTest(WorkerSettingsCase):
    """Workers negotiate AMQP heartbeats and answer them while idle between
    requests, so the broker keeps their connections (it closes a connection
    that misses two heartbeats)."""

    SETTINGS = {"RABBIT_HEARTBEAT_SECONDS": "1"}

    def connections(self):
        conns = {}
        for line in bbtest.stack("connections").splitlines():
            port, timeout = line.split()
            conns[port] = int(timeout)
        return conns

    def test_idle_workers_keep_their_connections_with_heartbeats(self):
        for _ in range(8):
            self.assertJSONResponse(post("/events/heartbeat.test", b"{}"), 200)
        before = self.connections()
        self.assertTrue(before, "no Bloodbank connection on the broker")
        self.assertEqual(set(before.values()), {1}, before)
        time.sleep(5)  # five heartbeat intervals without a request
        self.assertEqual(self.connections(), before)


class ZzBlockedBrokerTest(BBTestCase):
    """A memory alarm: RabbitMQ blocks publishing connections. A worker hears
    connection.blocked (asked for at login) when it next publishes; that
    publish is unknown (504, answered at once), and every later one on the
    blocked connection is refused without writing (503). Publishing resumes
    by itself when the alarm clears."""

    def test_blocked_broker_refuses_at_once_says_blocked_and_recovers(self):
        for _ in range(8):  # every worker connected before the alarm
            self.assertJSONResponse(post("/events/blocked.test.warm", b"{}"), 200)
        tag = run_tag()
        refused, unknown = [], []
        with Consumer("blocked.test.#") as c:
            bbtest.stack("memory-alarm-on")
            try:
                for n in range(12):
                    key = "%s-%d" % (tag, n)
                    t0 = time.monotonic()
                    resp = post("/events/blocked.test.ev", b'{"n":%d}' % n,
                                headers=publish_headers(key=key), timeout=15)
                    elapsed = time.monotonic() - t0
                    # not the 5 s confirm timeout: the block is heard at once
                    self.assertLess(elapsed, 1.5, "answered after %.1f s" % elapsed)
                    self.assertIn(resp.status_code, (503, 504), resp.content)
                    eid = idempotent_id("blocked.test.ev", key)
                    if resp.status_code == 503:
                        self.assertError(resp, 503, "broker_unavailable")
                        self.assertIn("Retry-After", resp.headers)
                        refused.append(eid)
                    else:
                        self.assertError(resp, 504, "broker_timeout")
                        unknown.append(eid)
                self.assertTrue(refused, "no publish was refused on a blocked connection")
                states = set()
                for _ in range(12):
                    h = get("/healthz")
                    doc = json.loads(h.content)
                    states.add(doc.get("rabbitmq"))
                    if doc.get("rabbitmq") == "blocked":
                        self.assertEqual(h.status_code, 503, doc)
                        self.assertEqual(doc.get("status"), "unhealthy", doc)
                self.assertIn("blocked", states, "no worker's healthz said blocked")
            finally:
                bbtest.stack("memory-alarm-off")
            deadline = time.monotonic() + 15
            while True:
                resp = post("/events/blocked.test.after", b"{}")
                if resp.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.assertJSONResponse(resp, 200)
            ids = set()
            for _, props, _body in c.drain(wait=1.0):
                ids.add(props.message_id)
            # "nothing was published" is true of every 503
            self.assertFalse(ids & set(refused), "a refused event was published")


if __name__ == "__main__":
    unittest.main()


class ZzWorkerKilledMidRequestTest(BBTestCase):
    """Every worker SIGKILLed while a request waits for its confirm (the
    broker stopped): the web server answers that request itself, 500 or
    502, in the contract's JSON shape (lighttpd/errors), and starts new
    workers."""

    def test_a_lost_request_is_answered_in_json(self):
        with open(os.path.join(bbtest.BB_STATE_DIR, "rabbitmq", "rabbitmq.pid")) as f:
            beam = int(f.read().strip())
        for _ in range(8):  # connected workers, so that the publish is written
            self.assertJSONResponse(post("/events/killed.warm", b"{}"), 200)
        answer = {}

        def request():
            answer["resp"] = post("/events/killed.midway", b'{"n":1}', timeout=20)
        client = threading.Thread(target=request)
        victims = test_metrics.stack_workers()
        os.kill(beam, signal.SIGSTOP)
        try:
            client.start()
            time.sleep(1.0)    # less than the connect budget and the confirm timeout
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            client.join(25)
        finally:
            os.kill(beam, signal.SIGCONT)
        resp = answer["resp"]
        self.assertIn(resp.status_code, (500, 502), resp.content)
        doc = self.assertJSONResponse(resp, resp.status_code)
        self.assertEqual(doc.get("error"),
                         {500: "internal_error", 502: "bad_gateway"}[resp.status_code], doc)
        self.assertIn("unknown", doc.get("detail", ""))
        test_metrics.wait_for(lambda: get("/healthz").status_code == 200 and
                              not set(test_metrics.stack_workers()) & set(victims),
                              30, "new workers")
