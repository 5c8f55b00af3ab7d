"""Integration tests of what issue 13 asked: nobody can forge, flood or poison
the bus. Fireflies ids no client can claim and signed webhooks (CONTRACT
§4.5), typed schemas on every path (§4.6), authentication before routing
(§8), a bounded <exchange>.unrouted queue and bounded replay storage (§2),
TRUSTED_PROXIES, the dev stack's secret file, and the stack's lighttpd under
a connection flood.

The Zz* classes restart lighttpd with other settings (WorkerSettingsCase) and
restore it; they run last."""

import hashlib
import hmac
import json
import os
import resource
import socket
import stat
import time
import urllib.parse
import uuid

import pika

import bbtest
import test_metrics
from bbtest import BBTestCase, Consumer, SAMPLE_PROMPT, amqp_params, get, http, post
from test_endpoints import EndpointCase, UNROUTED_ARGUMENTS, ikey, jdump, webhook_id
from test_tracking import WorkerSettingsCase, claim_key, idempotent_id, redis, run_tag

FIREFLIES = "/webhooks/fireflies"
EVENTS = "/events"
BATCH = "/events/batch"

ARTIFACT_BODY = {"action": "created", "kind": "transcript", "uri": "https://evil/t",
                 "title": "forged"}


def sign(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def amqp_channel():
    conn = pika.BlockingConnection(amqp_params())
    return conn, conn.channel()


def worker_log():
    """What the workers logged: lighttpd hands their stderr to its own."""
    text = ""
    for name in ("lighttpd.out", "lighttpd-error.log"):
        try:
            with open(os.path.join(bbtest.BB_STATE_DIR, name), errors="replace") as f:
                text += f.read()
        except OSError:
            pass
    return text


def delete_topology(exchange):
    """Removes an exchange a test made Bloodbank declare, and its unrouted pair."""
    conn, ch = amqp_channel()
    try:
        ch.exchange_delete(exchange=exchange)
        ch.exchange_delete(exchange=exchange + ".unrouted")
        ch.queue_delete(queue=exchange + ".unrouted")
    finally:
        if conn.is_open:
            conn.close()


def get_message(ch, queue, message_id, timeout=5.0):
    """The message of queue with that message_id, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, props, body = ch.basic_get(queue=queue, auto_ack=True)
        if method is None:
            time.sleep(0.05)
        elif props.message_id == message_id:
            return method, props, body
    return None


# ====================================================================== Fireflies ids

class ForgedFirefliesKeyTest(EndpointCase):
    """A client's Idempotency-Key cannot take a meeting's event id before its
    webhook comes (CONTRACT §4.5)."""

    def test_forged_key_then_real_webhook_publishes_the_webhook(self):
        forgeries = (
            ("/events/artifact.created", jdump(ARTIFACT_BODY)),
            (EVENTS, jdump({"event_type": "artifact.created", "payload": ARTIFACT_BODY})),
        )
        for path, forged_body in forgeries:
            with self.subTest(path=path):
                mid = "m-" + ikey("forge")
                _, forged, _, _, _ = self.publish(
                    path, forged_body, headers={"Idempotency-Key": "fireflies:" + mid})
                real = jdump({"data": {"id": mid, "url": "https://ff/real", "title": "Real"}})
                _, doc, _, props, msg = self.publish(FIREFLIES, real)
                self.assertEqual(doc, {"status": "ok", "event_id": webhook_id(mid)})
                self.assertNotEqual(doc["event_id"], forged["event_id"])
                self.assertEqual(props.message_id, webhook_id(mid))
                self.assertEqual(json.loads(msg)["payload"]["uri"], "https://ff/real")


# ====================================================================== typed schemas

class TypedGenericPathsTest(EndpointCase):
    """An event type with a typed endpoint gets its schema on every path (§4.6)."""

    def test_events_type_llm_prompt_without_prompt_is_422(self):
        _, doc = self.refused("/events/llm.prompt", b'{"not_a_prompt":1}', 422,
                              "validation_error")
        self.assertFieldReported(doc, "prompt")

    def test_events_type_llm_response_with_bad_prompt_id_is_422(self):
        _, doc = self.refused("/events/llm.response", b'{"response":"r","prompt_id":"x"}', 422,
                              "validation_error")
        self.assertFieldReported(doc, "prompt_id")

    def test_events_type_artifact_is_validated_as_artifact(self):
        for event_type in ("artifact.created", "artifact.updated", "artifact.deleted"):
            with self.subTest(event_type=event_type):
                _, doc = self.refused("/events/" + event_type, b'{"anything":1}', 422,
                                      "validation_error")
                for field in ("action", "kind", "uri"):
                    self.assertFieldReported(doc, field)

    def test_artifact_action_must_match_the_event_type(self):
        body = dict(ARTIFACT_BODY, action="deleted")
        _, doc = self.refused("/events/artifact.created", jdump(body), 422, "validation_error")
        self.assertFieldReported(doc, "action")
        _, doc = self.refused(EVENTS, jdump({"event_type": "artifact.updated", "payload": body}),
                              422, "validation_error")
        self.assertFieldReported(doc, "action")

    def test_post_events_typed_payload_is_validated(self):
        for event_type, payload, field in (("llm.prompt", {"x": 1}, "prompt"),
                                           ("llm.response", {"response": 5}, "response"),
                                           ("artifact.deleted", {"action": "deleted"}, "kind")):
            with self.subTest(event_type=event_type):
                _, doc = self.refused(EVENTS, jdump({"event_type": event_type,
                                                     "payload": payload}),
                                      422, "validation_error")
                self.assertFieldReported(doc, field)

    def test_generic_typed_publish_gets_the_typed_payload(self):
        env, _, _ = self.publish_envelope("/events/llm.prompt", b'{"prompt":"p","x":1}',
                                          routing_key="llm.prompt")
        self.assertEqual(env["payload"], {"prompt": "p", "provider": None, "model": None,
                                          "project": None, "working_dir": None, "domain": None,
                                          "tags": [], "x": 1})

    def test_generic_llm_response_prompt_id_is_the_first_parent(self):
        parent = str(uuid.uuid4())
        body = jdump({"event_type": "llm.response",
                      "payload": {"response": "r", "prompt_id": parent.upper()}})
        env, _, props = self.publish_envelope(EVENTS, body, routing_key="llm.response")
        self.assertEqual(env["correlation_ids"], [parent])
        self.assertEqual(props.correlation_id, parent)

    def test_batch_items_are_validated_per_type(self):
        items = [
            {"event_type": "llm.prompt", "payload": {"prompt": "ok"}},
            {"event_type": "llm.prompt", "payload": {"not_a_prompt": 1}},
            {"event_type": "artifact.created", "payload": dict(ARTIFACT_BODY, action="updated")},
            {"event_type": "untyped.thing", "payload": {"not_a_prompt": 1}},
        ]
        with Consumer() as c:
            doc = self.assertJSONResponse(post(BATCH, jdump(items)), 207)
            msgs = c.receive(2)
            msgs += c.drain()
        self.assertEqual([r["status"] for r in doc["results"]], [200, 422, 422, 200], doc)
        self.assertEqual(doc["results"][1]["error"], "validation_error")
        self.assertIn("prompt", [f["field"] for f in doc["results"][1]["fields"]])
        self.assertIn("action", [f["field"] for f in doc["results"][2]["fields"]])
        self.assertEqual(sorted(m[0].routing_key for m in msgs), ["llm.prompt", "untyped.thing"])

    def test_client_source_type_hook_is_422(self):
        for value in ("hook", "Hook", "HOOK"):
            with self.subTest(type=value):
                body = jdump({"event_type": "ci.build", "payload": {},
                              "source": {"app": "fireflies", "type": value}})
                _, doc = self.refused(EVENTS, body, 422, "validation_error")
                self.assertFieldReported(doc, "source.type")
        items = [{"event_type": "ci.build", "payload": {},
                  "source": {"app": "fireflies", "type": "hook"}}]
        with Consumer() as c:
            doc = self.assertJSONResponse(post(BATCH, jdump(items)), 207)
            self.assertNothingPublished(c)
        self.assertEqual(doc["results"][0]["status"], 422, doc)


# ====================================================================== the dev stack

class StackSecretFileTest(BBTestCase):

    def test_env_file_holding_the_secrets_is_mode_0600(self):
        if not bbtest.BB_STATE_DIR:
            self.skipTest("BB_STATE_DIR is needed")
        mode = stat.S_IMODE(os.stat(os.path.join(bbtest.BB_STATE_DIR, "bloodbank.env")).st_mode)
        self.assertEqual(mode, 0o600, oct(mode))


class ConnectionFloodTest(BBTestCase):
    """One client holding many half-sent requests open leaves room for others."""

    IDLE = 1500      # more than lighttpd's default limit, a third of 4096 fds

    def test_idle_connections_of_one_client_leave_room_for_another(self):
        url = urllib.parse.urlsplit(bbtest.BB_URL)
        target = (url.hostname, url.port)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < self.IDLE + 100:
            if hard < self.IDLE + 100:
                self.skipTest("this process may open only %d files" % hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.IDLE + 100, hard))
        idle = []
        try:
            for _ in range(self.IDLE):
                s = socket.socket()
                idle.append(s)
                s.settimeout(2)
                s.connect(target)
                # headers never finished: the server waits for the rest
                s.sendall(b"POST /events/flood HTTP/1.1\r\nHost: x\r\nContent-Type: app")
            t0 = time.monotonic()
            with socket.create_connection(target, timeout=1.0,
                                          source_address=("127.0.0.2", 0)) as probe:
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                try:
                    head = probe.recv(64)
                except socket.timeout:
                    head = b""
            elapsed = time.monotonic() - t0
        finally:
            for s in idle:
                s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 200"),
                        "no answer to 127.0.0.2 within 1 s while one client holds %d "
                        "connections: %r" % (self.IDLE, head))
        self.assertLess(elapsed, 1.0)


# ====================================================================== Zz: settings

class ZzSecuredStackTest(WorkerSettingsCase):
    """API_TOKEN and FIREFLIES_WEBHOOK_SECRET set, replays capped at 1 KiB,
    the stack's own address a trusted proxy."""

    TOKEN = "sec-token-" + uuid.uuid4().hex
    SECRET = "ff-secret-" + uuid.uuid4().hex
    SETTINGS = {"API_TOKEN": TOKEN, "FIREFLIES_WEBHOOK_SECRET": SECRET,
                "IDEMPOTENCY_MAX_STORED_BYTES": "1024", "TRUSTED_PROXIES": "127.0.0.1"}

    def bearer(self, extra=None):
        h = {"Authorization": "Bearer " + self.TOKEN}
        h.update(extra or {})
        return h

    def webhook(self, headers, body=None):
        """POST a webhook with a consumer bound: (resp, messages)."""
        if body is None:
            body = jdump({"data": {"id": "m-" + ikey("sig"), "url": "https://ff/s",
                                   "title": "Signed"}})
        with Consumer() as c:
            resp = post(FIREFLIES, body, headers=headers)
            msgs = c.receive(1) if resp.status_code == 200 else []
            msgs += c.drain()
        return resp, msgs

    def test_unknown_path_is_401_without_the_token(self):
        for method, path, routed in (("GET", "/no/such/path", 404),
                                     ("POST", "/no/such/path", 404),
                                     ("GET", "/events/llm/prompt", 405),
                                     ("PUT", "/debug/nothing", 404),
                                     ("GET", FIREFLIES + "/x", 404)):
            with self.subTest(method=method, path=path):
                body = b"{}" if method != "GET" else None
                resp = http(method, path, body)
                self.assertError(resp, 401, "unauthorized")
                self.assertTrue(resp.headers.get("WWW-Authenticate", "").startswith("Bearer"))
                self.assertNotIn("Allow", resp.headers)
                # with the token, the same request is routed
                resp = http(method, path, body, headers=self.bearer())
                self.assertEqual(resp.status_code, routed, resp.content)
        self.assertJSONResponse(get("/healthz"), 200)   # open without it

    def test_signed_webhook_needs_no_bearer_token(self):
        for prefix in ("sha256=", ""):
            with self.subTest(prefix=prefix):
                mid = "m-" + ikey("signed")
                body = jdump({"data": {"id": mid, "url": "https://ff/s", "title": "Signed"}})
                resp, msgs = self.webhook({"X-Hub-Signature": prefix + sign(self.SECRET, body)},
                                          body)
                doc = self.assertJSONResponse(resp, 200)
                self.assertEqual(doc, {"status": "ok", "event_id": webhook_id(mid)})
                self.assertEqual([m[1].message_id for m in msgs], [webhook_id(mid)])

    def test_unsigned_webhook_is_401_even_with_the_bearer_token(self):
        for headers in ({}, self.bearer()):
            with self.subTest(bearer=bool(headers)):
                resp, msgs = self.webhook(headers)
                self.assertError(resp, 401, "unauthorized")
                self.assertEqual(msgs, [])

    def test_wrong_signature_is_401_even_with_the_bearer_token(self):
        body = jdump({"data": {"id": "m-" + ikey("wrong"), "url": "https://ff/w",
                               "title": "Wrong"}})
        good = sign(self.SECRET, body)
        for value in (sign(self.SECRET, body + b" "), sign("other", body),
                      "sha1=" + good, good[:-2], good + "00", "sha256=" + good[:-1] + "x"):
            with self.subTest(signature=value):
                resp, msgs = self.webhook(self.bearer({"X-Hub-Signature": value}), body)
                self.assertError(resp, 401, "unauthorized")
                self.assertNotIn(self.SECRET.encode(), resp.content)
                self.assertEqual(msgs, [])

    def test_a_header_under_two_spellings_is_refused(self):
        # lighttpd passes X-Forwarded-For and X_Forwarded_For as one FastCGI
        # parameter: believing the first would let a client behind the
        # trusted proxy choose its source.host (one spelling:
        # test_forwarded_for_from_a_trusted_proxy_is_source_host)
        for headers, param in (({"X-Forwarded-For": "203.0.113.7",
                                 "X_Forwarded_For": "6.6.6.6"}, "HTTP_X_FORWARDED_FOR"),
                               ({"Idempotency-Key": "a-" + run_tag(),
                                 "Idempotency_Key": "b-" + run_tag()}, "HTTP_IDEMPOTENCY_KEY")):
            with self.subTest(param=param):
                with Consumer() as c:
                    resp = post("/events/llm/prompt", SAMPLE_PROMPT,
                                headers=self.bearer(headers))
                    self.assertNothingPublished(c)
                doc = self.assertError(resp, 400, "invalid_request")
                self.assertIn(param, doc["detail"])
                self.assertNotIn("6.6.6.6", doc["detail"])

    def scrape(self):
        resp = get("/metrics", headers=self.bearer())
        self.assertEqual(resp.status_code, 200, resp.content[:300])
        return test_metrics.parse(resp.content.decode("utf-8"))

    def test_a_401_is_counted_under_no_route_and_is_no_rejected_event(self):
        # the request before it had a route: its label must not carry over
        self.assertJSONResponse(post("/events/llm/prompt", SAMPLE_PROMPT,
                                     headers=self.bearer()), 200)
        m0 = self.scrape()
        self.assertError(post("/events/llm/prompt", SAMPLE_PROMPT), 401, "unauthorized")
        resp, _ = self.webhook({"X-Hub-Signature": "0" * 64})
        self.assertError(resp, 401, "unauthorized")
        m1 = self.scrape()

        def d(name, **labels):
            return test_metrics.value(m1, name, **labels) - test_metrics.value(m0, name, **labels)
        self.assertEqual(d("bloodbank_http_requests_total", route="none", code="401"), 1)
        self.assertEqual(d("bloodbank_http_requests_total", route="prompt", code="401"), 0)
        self.assertEqual(d("bloodbank_http_requests_total", route="fireflies", code="401"), 1)
        self.assertEqual(d("bloodbank_events_total", outcome="rejected"), 0)

    def test_a_signed_webhook_refuses_the_headers_its_signature_does_not_cover(self):
        body = jdump({"data": {"id": "m-" + ikey("hdr"), "url": "https://ff/h",
                               "title": "Headers"}})
        sig = sign(self.SECRET, body)
        for name, value in (("Idempotency-Key", "k-" + run_tag()),
                            ("X-Correlation-Ids", str(uuid.uuid4())),
                            ("traceparent",
                             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")):
            with self.subTest(header=name):
                resp, msgs = self.webhook({"X-Hub-Signature": sig, name: value}, body)
                self.assertError(resp, 400, "invalid_request")
                self.assertEqual(msgs, [])

    def test_a_signed_delivery_without_a_meeting_id_sent_again_is_a_replay(self):
        body = jdump({"data": {"id": None, "url": "https://ff/nomid/" + run_tag(),
                               "title": "No meeting id"}})
        headers = {"X-Hub-Signature": sign(self.SECRET, body)}
        eid = webhook_id("sha256:" + hashlib.sha256(body).hexdigest())
        first, msgs = self.webhook(headers, body)
        self.assertEqual(self.assertJSONResponse(first, 200), {"status": "ok", "event_id": eid})
        self.assertEqual([m[1].message_id for m in msgs], [eid])
        again, msgs = self.webhook(headers, body)
        self.assertEqual(self.assertJSONResponse(again, 200)["event_id"], eid)
        self.assertEqual(msgs, [])

    def test_replay_over_the_cap_answers_the_id_only(self):
        key = "cap-" + run_tag()
        body = jdump({"prompt": "x" * 2048})
        headers = self.bearer({"Idempotency-Key": key})
        first = self.assertJSONResponse(post("/events/llm/prompt", body, headers=headers), 200)
        eid = idempotent_id("llm.prompt", key)
        self.assertEqual(first["event_id"], eid)
        with redis() as r:
            self.assertEqual(len(r.call("GET", claim_key(eid))), 1 + 32)
        with Consumer() as c:
            again = post("/events/llm/prompt", body, headers=headers)
            self.assertNothingPublished(c)
        self.assertEqual(self.assertJSONResponse(again, 200),
                         {"event_id": eid, "replayed": True})
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
        # under the cap, the replay is still the whole envelope
        headers = self.bearer({"Idempotency-Key": "small-" + run_tag()})
        first = post("/events/llm/prompt", SAMPLE_PROMPT, headers=headers)
        self.assertJSONResponse(first, 200)
        again = post("/events/llm/prompt", SAMPLE_PROMPT, headers=headers)
        self.assertJSONResponse(again, 200)
        self.assertEqual(again.content, first.content)
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")

    def test_forwarded_for_from_a_trusted_proxy_is_source_host(self):
        resp = post("/events/proxy.test", b"{}",
                    headers=self.bearer({"X-Forwarded-For": "6.6.6.6, 198.51.100.23"}))
        env = self.assertJSONResponse(resp, 200)
        self.assertEqual(env["source"]["host"], "198.51.100.23")


class ZzUnroutedLimitTest(WorkerSettingsCase):
    """A fresh exchange whose unrouted queue holds one byte: the broker nacks
    what does not fit, and the client is told (503 broker_nack)."""

    EXCHANGE = "full-" + uuid.uuid4().hex[:10]
    SETTINGS = {"RABBIT_EXCHANGE": EXCHANGE, "UNROUTED_MAX_BYTES": "1"}

    @classmethod
    def setUpClass(cls):
        cls.addClassCleanup(delete_topology, cls.EXCHANGE)   # after the restore
        super().setUpClass()

    def test_unrouted_queue_is_bounded_with_reject_publish(self):
        self.assertJSONResponse(get("/healthz"), 200)   # the worker has declared it
        conn, ch = amqp_channel()
        try:
            args = dict(UNROUTED_ARGUMENTS, **{"x-max-length-bytes": 1})
            ch.queue_declare(queue=self.EXCHANGE + ".unrouted", durable=True, arguments=args)
        finally:
            if conn.is_open:
                conn.close()

    def test_full_unrouted_queue_answers_503_broker_nack(self):
        answers = []
        for k in range(20):
            resp = post("/events/nobody.listens", jdump({"k": k}))
            answers.append(resp.status_code)
            if resp.status_code != 200:
                break
        self.assertEqual(answers[0], 200, answers)
        self.assertError(resp, 503, "broker_nack")
        self.assertIn("Retry-After", resp.headers)

    def test_nacks_do_not_cost_a_reconnect_each(self):
        # the queue is full (the test above): every event is nacked, and
        # the workers renew their connections at most once a second each
        self.assertEqual(post("/events/nobody.listens", b"{}").status_code, 503)
        m0 = test_metrics.scrape()
        t0 = time.monotonic()
        for k in range(40):
            self.assertError(post("/events/nobody.listens", jdump({"k": k})), 503,
                             "broker_nack")
        elapsed = time.monotonic() - t0
        m1 = test_metrics.scrape()
        connects = (test_metrics.value(m1, "bloodbank_broker_connections_total", result="ok")
                    - test_metrics.value(m0, "bloodbank_broker_connections_total", result="ok"))
        workers = int(os.environ.get("BB_WORKERS", "4"))
        self.assertLessEqual(connects, workers * (1 + int(elapsed)),
                             "%d reconnects for 40 nacks in %.1f s" % (connects, elapsed))


class ZzUnroutedExistingQueueTest(WorkerSettingsCase):
    """<exchange>.unrouted declared earlier without a bound: used as it is,
    with a warning that says how to bound it."""

    EXCHANGE = "old-" + uuid.uuid4().hex[:10]
    SETTINGS = {"RABBIT_EXCHANGE": EXCHANGE}

    @classmethod
    def setUpClass(cls):
        conn, ch = amqp_channel()
        try:
            ch.queue_declare(queue=cls.EXCHANGE + ".unrouted", durable=True,
                             arguments={"x-queue-type": "classic"})
        finally:
            conn.close()
        cls.addClassCleanup(delete_topology, cls.EXCHANGE)   # after the restore
        super().setUpClass()

    def test_existing_unbounded_queue_is_used_with_a_warning(self):
        resp = post("/events/nobody.old", b'{"k":1}')
        env = self.assertJSONResponse(resp, 200)
        conn, ch = amqp_channel()
        try:
            got = get_message(ch, self.EXCHANGE + ".unrouted", env["event_id"])
        finally:
            if conn.is_open:
                conn.close()
        self.assertIsNotNone(got, "event not in the existing unrouted queue")
        log = worker_log()
        self.assertIn("rabbitmqctl set_policy", log)
        self.assertIn("'^%s\\.unrouted$'" % self.EXCHANGE.replace("-", "\\-"), log)
