"""Helpers for the Bloodbank integration tests: HTTP calls and an AMQP consumer.

Configuration (environment):
  BB_URL          base URL of the service        (http://127.0.0.1:18682)
  BB_AMQP_URL     broker the service publishes to (amqp://guest:guest@127.0.0.1:15680/)
  BB_EXCHANGE     exchange the service publishes to (events)
  BB_STACK        path of scripts/stack.sh        (for the broker outage test)
  BB_STATE_DIR    state dir of the running stack  (for the broker outage test)
  MAX_BODY_BYTES  the limit the stack was started with (65536 in scripts/test.sh)
"""

import json
import os
import re
import subprocess
import time
import unittest

import pika
import requests

BB_URL = os.environ.get("BB_URL", "http://127.0.0.1:18682").rstrip("/")
BB_AMQP_URL = os.environ.get("BB_AMQP_URL", "amqp://guest:guest@127.0.0.1:15680/")
BB_EXCHANGE = os.environ.get("BB_EXCHANGE", "events")
BB_STACK = os.environ.get("BB_STACK", "")
BB_STATE_DIR = os.environ.get("BB_STATE_DIR", "")
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", "65536"))

SAMPLE_PROMPT = b'{"prompt":"Test prompt","model":"gpt-4","temperature":0.7}'
JSON_CT = "application/json"

UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")

# how long a consumer waits for a message that should arrive
RECEIVE_TIMEOUT = 5.0
# how long it waits before deciding that nothing was published
QUIET_PERIOD = 0.3


# ------------------------------------------------------------------ HTTP

_session = requests.Session()


def http(method, path, body=None, content_type=JSON_CT, headers=None, timeout=10):
    """One request to the service. body: bytes, str or None; content_type None = no header."""
    # A fresh connection per request: a kept-alive one can be closed by the
    # web server while a test waits for a service to restart.
    h = {"Connection": "close"}
    if content_type is not None:
        h["Content-Type"] = content_type
    if headers:
        h.update(headers)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return _session.request(method, BB_URL + path, data=body, headers=h, timeout=timeout)


def post(path, body, **kw):
    return http("POST", path, body, **kw)


def get(path, **kw):
    return http("GET", path, None, content_type=None, **kw)


# ------------------------------------------------------------------ AMQP

def amqp_params():
    params = pika.URLParameters(BB_AMQP_URL)
    params.heartbeat = 0
    params.blocked_connection_timeout = 10
    params.socket_timeout = 5
    params.connection_attempts = 1
    return params


class Consumer:
    """An exclusive, auto-delete, server-named queue bound to the exchange with '#'.

    Create it BEFORE the request that should publish; then receive(n) or
    assert_nothing().
    """

    def __init__(self, routing_key="#"):
        self.conn = pika.BlockingConnection(amqp_params())
        self.ch = self.conn.channel()
        ok = self.ch.queue_declare(queue="", exclusive=True, auto_delete=True)
        self.queue = ok.method.queue
        self.ch.queue_bind(queue=self.queue, exchange=BB_EXCHANGE, routing_key=routing_key)

    def get(self):
        """One message as (method, properties, body), or None."""
        method, props, body = self.ch.basic_get(queue=self.queue, auto_ack=True)
        if method is None:
            return None
        return method, props, body

    def receive(self, count, timeout=RECEIVE_TIMEOUT):
        """Up to count messages, waiting at most timeout seconds for all of them."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            m = self.get()
            if m is not None:
                got.append(m)
                continue
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        return got

    def drain(self, wait=QUIET_PERIOD):
        """Everything published within wait seconds."""
        time.sleep(wait)
        got = []
        while True:
            m = self.get()
            if m is None:
                return got
            got.append(m)

    def close(self):
        try:
            if self.conn.is_open:
                self.conn.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def exchange_exists():
    conn = pika.BlockingConnection(amqp_params())
    try:
        ch = conn.channel()
        try:
            ch.exchange_declare(exchange=BB_EXCHANGE, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker:
            return False
    finally:
        if conn.is_open:
            conn.close()


def ensure_exchange(timeout=10.0):
    """The service declares the exchange; make sure it did before tests bind to it.

    A worker may declare it only when it connects or first publishes, so after a
    health check a throw-away event is published if the exchange is still missing.
    """
    deadline = time.monotonic() + timeout
    poked = False
    health = None
    while True:
        try:
            h = get("/healthz", timeout=2)
            health = "%d %s" % (h.status_code, h.content[:200].decode("utf-8", "replace"))
        except requests.RequestException as e:
            health = repr(e)
        if exchange_exists():
            return
        if not poked:
            try:
                post("/events/llm/prompt", SAMPLE_PROMPT, timeout=5)
            except requests.RequestException:
                pass
            poked = True
        if time.monotonic() >= deadline:
            raise RuntimeError("exchange %r was not declared by the service on %s"
                               " (GET /healthz: %s)" % (BB_EXCHANGE, BB_AMQP_URL, health))
        time.sleep(0.2)


# ------------------------------------------------------------------ stack control

def read_to_eof(sock):
    """Everything a socket delivers until the peer closes it."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def stack(command):
    """Runs a stack.sh command on the stack under test; returns its output."""
    if not (BB_STACK and BB_STATE_DIR):
        raise unittest.SkipTest("BB_STACK and BB_STATE_DIR are needed to control the stack")
    r = subprocess.run(["bash", BB_STACK, command, BB_STATE_DIR],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("stack.sh %s failed (%d):\n%s"
                           % (command, r.returncode, r.stdout.decode("utf-8", "replace")))
    return r.stdout.decode("utf-8", "replace")


# ------------------------------------------------------------------ assertions

class BBTestCase(unittest.TestCase):
    maxDiff = 4000

    def assertContentLength(self, resp):
        cl = resp.headers.get("Content-Length")
        self.assertIsNotNone(cl, "no Content-Length on %s %s" % (resp.request.method, resp.url))
        self.assertEqual(int(cl), len(resp.content),
                         "Content-Length %s but body has %d bytes" % (cl, len(resp.content)))

    def assertJSONResponse(self, resp, status):
        self.assertEqual(resp.status_code, status,
                         "expected %d, got %d: %r" % (status, resp.status_code, resp.content[:500]))
        self.assertContentLength(resp)
        ct = resp.headers.get("Content-Type", "")
        self.assertTrue(ct.startswith("application/json"), "Content-Type %r" % ct)
        self.assertFalse(resp.content.endswith(b"\0"), "body ends with NUL")
        return json.loads(resp.content.decode("utf-8"))

    def assertError(self, resp, status, code):
        doc = self.assertJSONResponse(resp, status)
        self.assertIsInstance(doc, dict)
        self.assertEqual(doc.get("error"), code, doc)
        self.assertIsInstance(doc.get("detail"), str, doc)
        self.assertTrue(doc["detail"], "empty detail")
        return doc

    def assertNothingPublished(self, consumer):
        got = consumer.drain()
        self.assertEqual([], [m[2] for m in got], "messages were published")
