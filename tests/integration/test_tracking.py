"""Correlation tracking (CONTRACT §4.1, §4.7, §4.8, §5, §7): records in Redis,
the debug endpoints, idempotent replay, and what happens when Redis or the
tracking settings change.

White-box checks talk to the stack's Redis directly (RESP over a socket; the
port comes from BB_REDIS_PORT or BB_STATE_DIR/stack.env). The key layout is the
one of src/record.h: "bloodbank:" + 16 raw id bytes for an event's record,
"bloodbank:i:" + 16 raw id bytes for an idempotency claim (src/claim.h).

The Zz classes stop Redis or restart lighttpd with other worker settings
(BB_STATE_DIR/bloodbank.env), and restore both afterwards.
"""

import hashlib
import json
import os
import re
import signal
import socket
import struct
import threading
import time
import unittest
import uuid

import requests

import bbtest
from bbtest import BBTestCase, Consumer, get, post

PROMPT = "/events/llm/prompt"
RESPONSE = "/events/llm/response"
DAY_MS = 86400 * 1000


# ------------------------------------------------------------------ Redis (RESP)

def _stack_setting(name):
    """A setting of the running stack: the environment, else DIR/stack.env."""
    if os.environ.get(name):
        return os.environ[name]
    if bbtest.BB_STATE_DIR:
        try:
            with open(os.path.join(bbtest.BB_STATE_DIR, "stack.env")) as f:
                for line in f:
                    m = re.match(r"^%s=(.*)$" % re.escape(name), line.strip())
                    if m:
                        return m.group(1).strip("'\"")
        except OSError:
            pass
    return None


def _env_file():
    return os.path.join(bbtest.BB_STATE_DIR, "bloodbank.env") if bbtest.BB_STATE_DIR else None


def worker_setting(name, default=None):
    """The value a worker setting has in DIR/bloodbank.env (the last export wins)."""
    path = _env_file()
    value = default
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                m = re.match(r"^\s*export\s+%s=(.*)$" % re.escape(name), line)
                if m:
                    value = m.group(1).strip().strip("'\"")
    return value


class RedisError(Exception):
    pass


class Redis:
    """A minimal RESP2 client: enough for GET/SET/DEL/PTTL/APPEND/EXISTS."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.rf = self.sock.makefile("rb")

    @staticmethod
    def _encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode("utf-8")
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _read(self):
        line = self.rf.readline()
        if not line:
            raise RedisError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.rf.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise RedisError("bad reply %r" % line)

    def call(self, *args):
        self.sock.sendall(self._encode(args))
        return self._read()

    def pipeline(self, commands):
        self.sock.sendall(b"".join(self._encode(c) for c in commands))
        return [self._read() for _ in commands]

    def close(self):
        try:
            self.rf.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def redis():
    port = _stack_setting("BB_REDIS_PORT")
    if not port:
        raise unittest.SkipTest("BB_REDIS_PORT (or BB_STATE_DIR/stack.env) is needed for "
                                "white-box Redis checks")
    return Redis(int(port))


def record_key(event_id):
    return b"bloodbank:" + uuid.UUID(event_id).bytes


def claim_key(event_id):
    return b"bloodbank:i:" + uuid.UUID(event_id).bytes


def count_entry(n, truncated=False):
    """The entry that starts a record with children: 'N' (or 'T' once one was
    not recorded) and the count of its children, 4 bytes big-endian."""
    return (b"T" if truncated else b"N") + struct.pack(">I", n)


def ttl_days():
    v = worker_setting("REDIS_TTL_DAYS") or worker_setting("CORRELATION_TTL_DAYS") or "30"
    return int(v)


# ------------------------------------------------------------------ helpers

def idempotent_id(event_type, key):
    """CONTRACT §5: UUIDv5 (OID namespace) of bloodbank:<event_type>:<key>."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, "bloodbank:%s:%s" % (event_type, key)))


def run_tag():
    return uuid.uuid4().hex[:12]


def publish_headers(parents=None, key=None, token=None):
    h = {}
    if parents:
        h["X-Correlation-Ids"] = ",".join(parents)
    if key is not None:
        h["Idempotency-Key"] = key
    if token is not None:
        h["Authorization"] = "Bearer " + token
    return h


def auth(token):
    return {"Authorization": "Bearer " + token} if token else None


def correlation_path(event_id):
    return "/debug/correlation/" + event_id


def chain_path(event_id, direction, max_depth=None):
    p = "/debug/correlation/%s/chain?direction=%s" % (event_id, direction)
    if max_depth is not None:
        p += "&max_depth=%s" % max_depth
    return p


class TrackingCase(BBTestCase):

    def publish(self, event_type="test.tracking", parents=None, key=None, body=None,
                token=None):
        """POST /events/<event_type>; asserts 200 and returns the envelope."""
        if body is None:
            body = json.dumps({"n": run_tag()})
        resp = post("/events/" + event_type, body,
                    headers=publish_headers(parents, key, token))
        env = self.assertJSONResponse(resp, 200)
        return env

    def publish_id(self, *a, **kw):
        return self.publish(*a, **kw)["event_id"]

    def lookup(self, event_id, token=None):
        return self.assertJSONResponse(get(correlation_path(event_id), headers=auth(token)), 200)

    def chain(self, event_id, direction, max_depth=None):
        doc = self.assertJSONResponse(get(chain_path(event_id, direction, max_depth)), 200)
        self.assertEqual(doc.get("event_id"), event_id, doc)
        self.assertEqual(doc.get("direction"), direction, doc)
        self.assertIsInstance(doc.get("chain"), list, doc)
        self.assertEqual(doc.get("count"), len(doc["chain"]), doc)
        return doc

    def assertEachOnce(self, ids, doc=None):
        self.assertEqual(len(ids), len(set(ids)), "an id appears more than once: %r" % (doc,))

    def assertRecorded(self, event_id, timeout=0.0):
        """The event has a correlation record (GET /debug/correlation is 200)."""
        deadline = time.monotonic() + timeout
        while True:
            r = get(correlation_path(event_id))
            if r.status_code == 200 or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        return self.assertJSONResponse(r, 200)


# ------------------------------------------------------------------ lookups

class CorrelationLookupTest(TrackingCase):

    def test_fresh_event_lookup_has_metadata_and_no_relations(self):
        env = self.publish("test.fresh")
        doc = self.lookup(env["event_id"])
        self.assertEqual(doc.get("event_id"), env["event_id"], doc)
        self.assertEqual(doc.get("metadata"), {"event_type": "test.fresh",
                                               "routing_key": "test.fresh",
                                               "timestamp": env["timestamp"]}, doc)
        for field in ("parents", "children", "ancestors", "descendants"):
            self.assertEqual(doc.get(field), [], "%s: %r" % (field, doc))

    def test_fresh_prompt_metadata_timestamp_equals_envelope_timestamp(self):
        env = self.assertJSONResponse(post(PROMPT, bbtest.SAMPLE_PROMPT), 200)
        doc = self.lookup(env["event_id"])
        self.assertEqual(doc["metadata"].get("event_type"), "llm.prompt", doc)
        self.assertEqual(doc["metadata"].get("routing_key"), "llm.prompt", doc)
        self.assertEqual(doc["metadata"].get("timestamp"), env["timestamp"], doc)

    def test_fresh_event_chain_is_empty_in_both_directions(self):
        env = self.publish("test.fresh")
        for direction in ("ancestors", "descendants"):
            with self.subTest(direction=direction):
                doc = self.chain(env["event_id"], direction)
                self.assertEqual(doc["chain"], [], doc)
                self.assertEqual(doc["count"], 0, doc)
                self.assertIs(doc.get("truncated"), False, doc)
                self.assertEqual(doc.get("metadata"), {"event_type": "test.fresh",
                                                       "routing_key": "test.fresh",
                                                       "timestamp": env["timestamp"]}, doc)

    def test_lookup_of_uppercase_id_finds_the_event(self):
        env = self.publish("test.fresh")
        doc = self.lookup(env["event_id"].upper())
        self.assertEqual(doc.get("event_id"), env["event_id"], doc)

    def test_prompt_descendants_are_the_response_with_its_prompt_id(self):
        prompt = self.assertJSONResponse(post(PROMPT, bbtest.SAMPLE_PROMPT), 200)
        body = json.dumps({"response": "an answer", "prompt_id": prompt["event_id"]})
        response = self.assertJSONResponse(post(RESPONSE, body), 200)
        self.assertEqual(response["correlation_ids"], [prompt["event_id"]])
        doc = self.lookup(prompt["event_id"])
        self.assertEqual(doc["children"], [response["event_id"]], doc)
        self.assertEqual(doc["descendants"], [response["event_id"]], doc)
        self.assertEqual(doc["parents"], [], doc)
        self.assertEqual(doc["ancestors"], [], doc)
        ch = self.chain(prompt["event_id"], "descendants")
        self.assertEqual(ch["chain"], [response["event_id"]], ch)
        self.assertEqual(self.chain(prompt["event_id"], "ancestors")["chain"], [])

    def test_response_ancestors_are_its_prompt(self):
        prompt = self.assertJSONResponse(post(PROMPT, bbtest.SAMPLE_PROMPT), 200)
        body = json.dumps({"response": "an answer", "prompt_id": prompt["event_id"]})
        response = self.assertJSONResponse(post(RESPONSE, body), 200)
        doc = self.lookup(response["event_id"])
        self.assertEqual(doc["metadata"].get("event_type"), "llm.response", doc)
        self.assertEqual(doc["parents"], [prompt["event_id"]], doc)
        self.assertEqual(doc["ancestors"], [prompt["event_id"]], doc)
        self.assertEqual(doc["children"], [], doc)
        self.assertEqual(doc["descendants"], [], doc)
        ch = self.chain(response["event_id"], "ancestors")
        self.assertEqual(ch["chain"], [prompt["event_id"]], ch)
        self.assertEqual(self.chain(response["event_id"], "descendants")["chain"], [])

    def test_header_parents_are_recorded_in_order(self):
        p1, p2, p3 = (self.publish_id("test.parent") for _ in range(3))
        child = self.publish_id("test.child", parents=[p3, p1, p2])
        doc = self.lookup(child)
        self.assertEqual(doc["parents"], [p3, p1, p2], doc)
        for p in (p1, p2, p3):
            with self.subTest(parent=p):
                self.assertEqual(self.lookup(p)["children"], [child])


# ------------------------------------------------------------------ chain order

class LinearChainTest(TrackingCase):
    """e0 <- e1 <- e2 <- e3 <- e4 (each the parent of the next)."""

    @classmethod
    def setUpClass(cls):
        ids = []
        for i in range(5):
            h = publish_headers(parents=ids[-1:])
            r = post("/events/test.linear", json.dumps({"step": i}), headers=h)
            if r.status_code != 200:
                raise AssertionError("publishing step %d: %d %r" % (i, r.status_code, r.content))
            ids.append(r.json()["event_id"])
        cls.ids = ids

    def test_ancestors_are_oldest_first(self):
        e = self.ids
        doc = self.chain(e[4], "ancestors")
        self.assertEqual(doc["chain"], [e[0], e[1], e[2], e[3]], doc)
        self.assertEqual(doc["count"], 4)
        self.assertIs(doc.get("truncated"), False, doc)

    def test_descendants_are_nearest_first(self):
        e = self.ids
        doc = self.chain(e[0], "descendants")
        self.assertEqual(doc["chain"], [e[1], e[2], e[3], e[4]], doc)
        self.assertEqual(doc["count"], 4)
        self.assertIs(doc.get("truncated"), False, doc)

    def test_middle_event_lookup_lists_both_directions(self):
        e = self.ids
        doc = self.lookup(e[2])
        self.assertEqual(doc["parents"], [e[1]], doc)
        self.assertEqual(doc["children"], [e[3]], doc)
        self.assertEqual(doc["ancestors"], [e[0], e[1]], doc)
        self.assertEqual(doc["descendants"], [e[3], e[4]], doc)

    def test_max_depth_2_limits_ancestors_to_two_levels(self):
        e = self.ids
        doc = self.chain(e[4], "ancestors", max_depth=2)
        self.assertEqual(doc["chain"], [e[2], e[3]], doc)
        self.assertEqual(doc["count"], 2)

    def test_max_depth_2_limits_descendants_to_two_levels(self):
        e = self.ids
        doc = self.chain(e[0], "descendants", max_depth=2)
        self.assertEqual(doc["chain"], [e[1], e[2]], doc)
        self.assertEqual(doc["count"], 2)

    def test_max_depth_1_is_the_immediate_relatives(self):
        e = self.ids
        self.assertEqual(self.chain(e[2], "ancestors", max_depth=1)["chain"], [e[1]])
        self.assertEqual(self.chain(e[2], "descendants", max_depth=1)["chain"], [e[3]])

    def test_max_depth_1000_walks_the_whole_chain(self):
        e = self.ids
        self.assertEqual(self.chain(e[4], "ancestors", max_depth=1000)["chain"], e[:4])


class DiamondTest(TrackingCase):
    """A; B and C children of A; D child of B and C."""

    @classmethod
    def setUpClass(cls):
        def pub(parents):
            r = post("/events/test.diamond", json.dumps({"n": run_tag()}),
                     headers=publish_headers(parents=parents))
            if r.status_code != 200:
                raise AssertionError("publishing: %d %r" % (r.status_code, r.content))
            return r.json()["event_id"]
        cls.a = pub(None)
        cls.b = pub([cls.a])
        cls.c = pub([cls.a])
        cls.d = pub([cls.b, cls.c])

    def test_descendants_of_root_list_each_once_nearest_first(self):
        doc = self.chain(self.a, "descendants")
        ch = doc["chain"]
        self.assertEachOnce(ch, doc)
        self.assertEqual(len(ch), 3, doc)
        self.assertEqual(set(ch[:2]), {self.b, self.c}, doc)
        self.assertEqual(ch[2], self.d, doc)

    def test_ancestors_of_sink_list_each_once_root_first(self):
        doc = self.chain(self.d, "ancestors")
        ch = doc["chain"]
        self.assertEachOnce(ch, doc)
        self.assertEqual(len(ch), 3, doc)
        self.assertEqual(ch[0], self.a, doc)
        self.assertEqual(set(ch[1:]), {self.b, self.c}, doc)

    def test_lookup_of_root_and_sink_fields(self):
        root = self.lookup(self.a)
        self.assertEqual(sorted(root["children"]), sorted([self.b, self.c]), root)
        self.assertEqual(len(root["descendants"]), 3, root)
        self.assertEqual(root["descendants"][2], self.d, root)
        sink = self.lookup(self.d)
        self.assertEqual(sink["parents"], [self.b, self.c], sink)
        self.assertEqual(sink["children"], [], sink)
        self.assertEqual(sink["ancestors"][0], self.a, sink)
        self.assertEqual(len(sink["ancestors"]), 3, sink)

    def test_side_branch_sees_root_above_and_sink_below(self):
        doc = self.lookup(self.b)
        self.assertEqual(doc["ancestors"], [self.a], doc)
        self.assertEqual(doc["descendants"], [self.d], doc)


class CycleTest(TrackingCase):
    """A -> B -> C -> A, made with Idempotency-Keys so that A can name C as its
    parent before C is published."""

    @classmethod
    def setUpClass(cls):
        tag = run_tag()
        et = "test.cycle"
        keys = ["cycle-%s-%s" % (tag, n) for n in "abc"]
        cls.a, cls.b, cls.c = (idempotent_id(et, k) for k in keys)
        for key, parent, want in ((keys[0], cls.c, cls.a), (keys[1], cls.a, cls.b),
                                  (keys[2], cls.b, cls.c)):
            r = post("/events/" + et, json.dumps({"k": key}),
                     headers=publish_headers(parents=[parent], key=key))
            if r.status_code != 200 or r.json()["event_id"] != want:
                raise AssertionError("publishing %s: %d %r (expected id %s)"
                                     % (key, r.status_code, r.content, want))

    def test_descendants_walk_terminates_each_once_without_self(self):
        t0 = time.monotonic()
        doc = self.chain(self.a, "descendants")
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertEqual(doc["chain"], [self.b, self.c], doc)
        self.assertIs(doc.get("truncated"), False, doc)

    def test_ancestors_walk_terminates_each_once_without_self(self):
        doc = self.chain(self.a, "ancestors")
        # immediate parent C last, B (two steps up) before it
        self.assertEqual(doc["chain"], [self.b, self.c], doc)
        self.assertIs(doc.get("truncated"), False, doc)

    def test_lookup_in_cycle_excludes_the_event_itself(self):
        doc = self.lookup(self.b)
        self.assertEqual(doc["parents"], [self.a], doc)
        self.assertEqual(doc["children"], [self.c], doc)
        self.assertNotIn(self.b, doc["ancestors"], doc)
        self.assertNotIn(self.b, doc["descendants"], doc)
        self.assertEqual(sorted(doc["ancestors"]), sorted([self.a, self.c]), doc)
        self.assertEqual(doc["descendants"], [self.c, self.a], doc)

    def test_self_parent_is_not_in_its_own_chain(self):
        et, key = "test.cycle", "self-%s" % run_tag()
        me = idempotent_id(et, key)
        env = self.publish(et, parents=[me], key=key)
        self.assertEqual(env["event_id"], me)
        for direction in ("ancestors", "descendants"):
            with self.subTest(direction=direction):
                doc = self.chain(me, direction)
                self.assertEqual(doc["chain"], [], doc)


# ------------------------------------------------------------------ bad requests

class DebugRequestErrorTest(TrackingCase):

    @classmethod
    def setUpClass(cls):
        r = post("/events/test.errors", b'{"x":1}')
        if r.status_code != 200:
            raise AssertionError("publishing: %d %r" % (r.status_code, r.content))
        cls.known = r.json()["event_id"]

    def test_malformed_id_is_400(self):
        good = self.known
        for bad in ("nope", "1234", good[:-1], good + "0", "g" + good[1:],
                    good.replace("-", "_"), good[:8] + good[9:] + "0"):
            for path in (correlation_path(bad), chain_path(bad, "ancestors")):
                with self.subTest(path=path):
                    self.assertError(get(path), 400, "invalid_request")

    def test_bad_direction_is_400(self):
        for direction in ("sideways", "ancestor", "up", "descendants,ancestors"):
            with self.subTest(direction=direction):
                self.assertError(get(chain_path(self.known, direction)), 400,
                                 "invalid_request")

    def test_bad_max_depth_is_400(self):
        for depth in ("0", "1001", "abc", "-1", "1.5", "99999999999999999999"):
            for direction in ("ancestors", "descendants"):
                with self.subTest(max_depth=depth, direction=direction):
                    self.assertError(get(chain_path(self.known, direction, depth)), 400,
                                     "invalid_request")

    def test_max_depth_bounds_1_and_1000_are_accepted(self):
        for depth in ("1", "1000"):
            with self.subTest(max_depth=depth):
                self.chain(self.known, "ancestors", depth)

    def test_unknown_valid_id_is_404(self):
        unknown = str(uuid.uuid4())
        for path in (correlation_path(unknown), chain_path(unknown, "ancestors"),
                     chain_path(unknown, "descendants")):
            with self.subTest(path=path):
                self.assertError(get(path), 404, "not_found")

    def test_post_to_debug_endpoint_is_405(self):
        resp = post(correlation_path(self.known), b"{}")
        self.assertError(resp, 405, "method_not_allowed")
        self.assertIn("GET", resp.headers.get("Allow", ""))


class WalkCapTest(TrackingCase):
    """White-box: 10,001 children appended to a real record; the walk stops at
    10,000 ids and says truncated."""

    def test_walk_stops_at_10000_ids_and_says_truncated(self):
        root = self.publish_id("test.cap")
        children = [uuid.uuid4().bytes for _ in range(10001)]
        with redis() as r:
            r.call("APPEND", record_key(root), b"".join(b"C" + c for c in children))
            try:
                doc = self.chain(root, "descendants")
            finally:
                r.call("DEL", record_key(root))
        self.assertIs(doc.get("truncated"), True, {k: doc[k] for k in doc if k != "chain"})
        self.assertEqual(doc["count"], 10000)
        expected = [str(uuid.UUID(bytes=c)) for c in children[:10000]]
        self.assertEqual(doc["chain"], expected)


# ------------------------------------------------------------------ TTLs

class RecordTTLTest(TrackingCase):

    def assertRecordTTL(self, r, event_id):
        key = record_key(event_id)
        pttl = r.call("PTTL", key)
        full = ttl_days() * DAY_MS
        self.assertGreater(pttl, 0, "record of %s has PTTL %r" % (event_id, pttl))
        self.assertLessEqual(pttl, full, "record of %s: PTTL %d" % (event_id, pttl))
        self.assertGreater(pttl, full - 120 * 1000,
                           "record of %s: PTTL %d, expected about %d (REDIS_TTL_DAYS=%d)"
                           % (event_id, pttl, full, ttl_days()))

    def test_event_record_has_ttl_of_redis_ttl_days(self):
        eid = self.publish_id("test.ttl")
        with redis() as r:
            self.assertRecordTTL(r, eid)

    def test_parent_record_has_ttl_after_child_is_recorded(self):
        parent = self.publish_id("test.ttl")
        child = self.publish_id("test.ttl", parents=[parent])
        with redis() as r:
            self.assertRecordTTL(r, parent)
            self.assertRecordTTL(r, child)

    def test_unpublished_parent_record_has_ttl(self):
        # a parent this service never published: its record holds only the child link
        parent = str(uuid.uuid4())
        self.publish_id("test.ttl", parents=[parent])
        with redis() as r:
            self.assertRecordTTL(r, parent)

    def test_idempotency_key_has_ttl(self):
        key = "ttl-%s" % run_tag()
        eid = self.publish_id("test.ttl", key=key)
        with redis() as r:
            val = r.call("GET", claim_key(eid))
            self.assertIsNotNone(val, "no idempotency key for %s" % eid)
            pttl = r.call("PTTL", claim_key(eid))
            self.assertGreater(pttl, 0, "idempotency key of %s has PTTL %r" % (eid, pttl))
            self.assertLessEqual(pttl, ttl_days() * DAY_MS)
            self.assertRecordTTL(r, eid)

    def test_records_are_keyed_by_raw_id_bytes(self):
        parent = self.publish_id("test.layout")
        child = self.publish_id("test.layout", parents=[parent])
        with redis() as r:
            value = r.call("GET", record_key(child))
            self.assertIsNotNone(value)
            self.assertEqual(value[:1], b"M", value)
            self.assertIn(uuid.UUID(parent).bytes, value)
            self.assertIn(b"C" + uuid.UUID(child).bytes, r.call("GET", record_key(parent)))
            self.assertIsNone(r.call("GET", ("bloodbank:" + child).encode()))


# ------------------------------------------------------------------ idempotency

class IdempotentReplayTest(TrackingCase):

    def test_replay_returns_original_envelope_with_replayed_header(self):
        key = "replay-%s" % run_tag()
        body = json.dumps({"prompt": "replay me", "k": key})
        first = post(PROMPT, body, headers={"Idempotency-Key": key})
        env = self.assertJSONResponse(first, 200)
        self.assertEqual(env["event_id"], idempotent_id("llm.prompt", key))
        self.assertNotIn("Idempotent-Replayed", first.headers)
        time.sleep(0.01)  # a new envelope would get another timestamp
        second = post(PROMPT, body, headers={"Idempotency-Key": key})
        self.assertJSONResponse(second, 200)
        self.assertEqual(second.headers.get("Idempotent-Replayed"), "true", second.headers)
        self.assertEqual(second.content, first.content)

    def test_successive_replays_each_return_their_own_envelope(self):
        # several keys, each replayed twice: with 2+ workers, some worker
        # replays more than once, and every replay must be its own envelope only
        originals = {}
        for n in range(4):
            key = "successive-%s-%d" % (run_tag(), n)
            body = json.dumps({"prompt": "successive %d" % n})
            first = post(PROMPT, body, headers={"Idempotency-Key": key})
            self.assertJSONResponse(first, 200)
            originals[key] = (body, first.content)
        for round_ in range(2):
            for key, (body, content) in originals.items():
                with self.subTest(key=key, round=round_):
                    again = post(PROMPT, body, headers={"Idempotency-Key": key})
                    self.assertEqual(again.status_code, 200)
                    self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
                    self.assertEqual(again.content, content)

    def test_replay_publishes_exactly_one_message(self):
        key = "once-%s" % run_tag()
        body = json.dumps({"prompt": "once", "k": key})
        with Consumer() as c:
            first = post(PROMPT, body, headers={"Idempotency-Key": key})
            self.assertJSONResponse(first, 200)
            second = post(PROMPT, body, headers={"Idempotency-Key": key})
            self.assertJSONResponse(second, 200)
            msgs = c.receive(1)
            msgs += c.drain()
        self.assertEqual([m[2] for m in msgs], [first.content])

    def test_same_key_different_body_is_422_and_publishes_nothing(self):
        key = "mismatch-%s" % run_tag()
        self.assertJSONResponse(post(PROMPT, json.dumps({"prompt": "one"}),
                                     headers={"Idempotency-Key": key}), 200)
        with Consumer() as c:
            resp = post(PROMPT, json.dumps({"prompt": "two"}), headers={"Idempotency-Key": key})
            self.assertError(resp, 422, "validation_error")
            self.assertNothingPublished(c)

    def test_key_in_flight_is_409_and_publishes_nothing(self):
        key = "inflight-%s" % run_tag()
        body = json.dumps({"prompt": "in flight", "k": key}).encode()
        eid = idempotent_id("llm.prompt", key)
        with redis() as r:
            r.call("SET", claim_key(eid), b"P" + hashlib.sha256(body).digest(), "PX", 30000)
            try:
                with Consumer() as c:
                    resp = post(PROMPT, body, headers={"Idempotency-Key": key})
                    self.assertError(resp, 409, "idempotency_conflict")
                    self.assertNothingPublished(c)
                self.assertEqual(get(correlation_path(eid)).status_code, 404,
                                 "a refused request left a correlation record")
            finally:
                r.call("DEL", claim_key(eid))

    def test_released_claim_lets_the_key_publish(self):
        # the claim expires or is deleted: the same request then publishes
        key = "released-%s" % run_tag()
        body = json.dumps({"prompt": "released", "k": key}).encode()
        eid = idempotent_id("llm.prompt", key)
        with redis() as r:
            r.call("SET", claim_key(eid), b"P" + hashlib.sha256(body).digest(), "PX", 30000)
            self.assertEqual(post(PROMPT, body, headers={"Idempotency-Key": key}).status_code,
                             409)
            r.call("DEL", claim_key(eid))
        with Consumer() as c:
            env = self.assertJSONResponse(post(PROMPT, body, headers={"Idempotency-Key": key}),
                                          200)
            self.assertEqual(env["event_id"], eid)
            self.assertEqual(len(c.receive(1)), 1)

    def test_same_key_on_another_event_type_is_another_event(self):
        key = "types-%s" % run_tag()
        a = self.publish("test.idem.a", key=key, body=b'{"x":1}')
        b = self.publish("test.idem.b", key=key, body=b'{"x":1}')
        self.assertEqual(a["event_id"], idempotent_id("test.idem.a", key))
        self.assertEqual(b["event_id"], idempotent_id("test.idem.b", key))
        self.assertNotEqual(a["event_id"], b["event_id"])


# ------------------------------------------------------------------ concurrency

class ConcurrentChildrenTest(TrackingCase):

    def test_concurrent_children_of_shared_parents_are_all_recorded(self):
        parents = [self.publish_id("test.shared") for _ in range(3)]
        clients, per_client = 4, 15
        results = [[] for _ in range(clients)]
        errors = []
        start = threading.Barrier(clients)

        def client(n):
            s = requests.Session()
            try:
                start.wait(10)
                for i in range(per_client):
                    r = s.post(bbtest.BB_URL + "/events/test.shared.child",
                               data=json.dumps({"client": n, "i": i}),
                               headers={"Content-Type": "application/json",
                                        "X-Correlation-Ids": ",".join(parents)},
                               timeout=15)
                    if r.status_code != 200:
                        errors.append((n, i, r.status_code, r.content[:200]))
                        continue
                    results[n].append(r.json()["event_id"])
            except Exception as e:  # reported below
                errors.append((n, repr(e)))
            finally:
                s.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        children = [c for r in results for c in r]
        self.assertEqual(len(children), clients * per_client)
        for p in parents:
            with self.subTest(parent=p):
                doc = self.lookup(p)
                self.assertEachOnce(doc["children"], doc)
                self.assertEqual(sorted(doc["children"]), sorted(children))
                ch = self.chain(p, "descendants")
                self.assertEqual(sorted(ch["chain"]), sorted(children))
        for c in children[::7]:
            with self.subTest(child=c):
                self.assertEqual(self.lookup(c)["parents"], parents)
        # the precondition of this test: the requests really went to several workers
        workers = int(_stack_setting("BB_WORKERS") or "2")
        with redis() as r:
            me = r.call("CLIENT", "ID")
            others = [ln for ln in r.call("CLIENT", "LIST").decode().splitlines()
                      if not ln.startswith("id=%d " % me)]
        self.assertGreaterEqual(len(others), min(workers, 2),
                                "the workers hold %d Redis connections" % len(others))


# ------------------------------------------------------------------ health

class TrackingHealthTest(BBTestCase):

    def test_healthz_reports_redis_up_and_healthy(self):
        doc = self.assertJSONResponse(get("/healthz"), 200)
        self.assertEqual(doc.get("redis"), "up", doc)
        self.assertEqual(doc.get("status"), "healthy", doc)
        self.assertEqual(doc.get("rabbitmq"), "up", doc)


# ------------------------------------------------------------------ Redis outage (last)

class ZzRedisOutageTest(TrackingCase):
    """Redis stopped for the whole class, started again afterwards."""

    PUBLISH_BUDGET = 1.0  # REDIS_TIMEOUT_MS (100 by default) plus a margin

    @classmethod
    def setUpClass(cls):
        cls.addClassCleanup(bbtest.stack, "start-redis")
        bbtest.stack("stop-redis")

    def test_publishes_succeed_quickly_with_redis_down(self):
        for i in range(6):  # several, so that every worker meets the outage
            with self.subTest(publish=i):
                with Consumer() as c:
                    t0 = time.monotonic()
                    resp = post(PROMPT, json.dumps({"prompt": "redis down %d" % i}), timeout=10)
                    elapsed = time.monotonic() - t0
                    self.assertJSONResponse(resp, 200)
                    msgs = c.receive(1)
                self.assertLess(elapsed, self.PUBLISH_BUDGET,
                                "publish with Redis down took %.3f s" % elapsed)
                self.assertEqual([m[2] for m in msgs], [resp.content])

    def test_doctor_names_redis_stopped(self):
        from test_cli import cli, stack_env
        env = stack_env()
        env["HTTP_PORT"] = os.environ.get("BB_HTTP_PORT", "18682")
        rc, out, err = cli("doctor", env=env)
        self.assertEqual(rc, 1, out)
        redis = [l for l in out.splitlines() if l.startswith("[FAIL] redis: ")]
        self.assertEqual(len(redis), 1, out)
        self.assertIn("check REDIS_HOST", redis[0])
        self.assertIn("[ok]   broker: ", out)
        self.assertIn("1 check failed", err)

    def test_idempotent_publish_keeps_deterministic_id_with_redis_down(self):
        key = "down-%s" % run_tag()
        t0 = time.monotonic()
        env = self.publish("test.down", key=key)
        self.assertLess(time.monotonic() - t0, self.PUBLISH_BUDGET)
        self.assertEqual(env["event_id"], idempotent_id("test.down", key))

    def test_healthz_is_degraded_with_redis_down(self):
        for i in range(4):
            with self.subTest(request=i):
                t0 = time.monotonic()
                doc = self.assertJSONResponse(get("/healthz", timeout=5), 200)
                self.assertLess(time.monotonic() - t0, 1.0, "healthz slow with Redis down")
                self.assertEqual(doc.get("status"), "degraded", doc)
                self.assertEqual(doc.get("redis"), "down", doc)
                self.assertEqual(doc.get("rabbitmq"), "up", doc)

    def test_debug_endpoints_are_503_tracking_unavailable_with_redis_down(self):
        some = str(uuid.uuid4())
        for i in range(2):  # both workers, whatever their backoff state
            for path in (correlation_path(some), chain_path(some, "ancestors")):
                with self.subTest(path=path, round=i):
                    self.assertError(get(path), 503, "tracking_unavailable")


class ZzRedisHangTest(TrackingCase):
    """Redis stopped with SIGSTOP for the whole class: connections are accepted
    but nothing is answered, so only REDIS_TIMEOUT_MS bounds the tracking work."""

    BUDGET = 1.0

    @classmethod
    def setUpClass(cls):
        pidfile = os.path.join(bbtest.BB_STATE_DIR or "/nonexistent", "redis", "redis.pid")
        try:
            with open(pidfile) as f:
                cls.pid = int(f.read().strip())
        except (OSError, ValueError):
            raise unittest.SkipTest("no Redis pid file at %s" % pidfile)
        cls.addClassCleanup(os.kill, cls.pid, signal.SIGCONT)
        os.kill(cls.pid, signal.SIGSTOP)

    def test_publishes_succeed_within_budget_with_redis_hung(self):
        for i in range(6):
            with self.subTest(publish=i):
                t0 = time.monotonic()
                resp = post(PROMPT, json.dumps({"prompt": "redis hung %d" % i}), timeout=10)
                elapsed = time.monotonic() - t0
                self.assertJSONResponse(resp, 200)
                self.assertLess(elapsed, self.BUDGET,
                                "publish with Redis hung took %.3f s" % elapsed)

    def test_idempotent_publish_succeeds_within_budget_with_redis_hung(self):
        key = "hung-%s" % run_tag()
        t0 = time.monotonic()
        env = self.publish("test.hung", key=key)
        self.assertLess(time.monotonic() - t0, self.BUDGET)
        self.assertEqual(env["event_id"], idempotent_id("test.hung", key))

    def test_healthz_answers_within_1s_degraded_with_redis_hung(self):
        for i in range(4):
            with self.subTest(request=i):
                t0 = time.monotonic()
                doc = self.assertJSONResponse(get("/healthz", timeout=5), 200)
                self.assertLess(time.monotonic() - t0, 1.0, "healthz slow with Redis hung")
                self.assertEqual(doc.get("status"), "degraded", doc)
                self.assertEqual(doc.get("redis"), "down", doc)

    def test_debug_endpoints_are_503_quickly_with_redis_hung(self):
        some = str(uuid.uuid4())
        for i in range(2):
            for path in (correlation_path(some), chain_path(some, "descendants")):
                with self.subTest(path=path, round=i):
                    t0 = time.monotonic()
                    self.assertError(get(path, timeout=5), 503, "tracking_unavailable")
                    self.assertLess(time.monotonic() - t0, self.BUDGET)


class ZzRedisRecoveryTest(TrackingCase):

    def test_tracking_resumes_after_redis_restarts_without_service_restart(self):
        bbtest.stack("stop-redis")
        try:
            self.publish("test.recovery")   # the workers notice the outage
            self.publish("test.recovery")
        finally:
            bbtest.stack("start-redis")
        deadline = time.monotonic() + 15
        recorded = []
        while time.monotonic() < deadline:
            eid = self.publish_id("test.recovery")
            if get(correlation_path(eid)).status_code == 200:
                recorded.append(eid)
                if len(recorded) >= 4:  # several in a row: both workers are back
                    break
            else:
                recorded = []
            time.sleep(0.3)
        self.assertGreaterEqual(len(recorded), 4, "tracking did not resume within 15 s")
        with redis() as r:
            self.assertGreater(r.call("PTTL", record_key(recorded[-1])), 0)
        doc = self.assertJSONResponse(get("/healthz"), 200)
        self.assertEqual(doc.get("redis"), "up", doc)
        self.assertEqual(doc.get("status"), "healthy", doc)


class ZzUnconfirmedPublishTest(TrackingCase):
    """Stops the stack's RabbitMQ node: a publish the broker did not confirm
    leaves no record, no child link and no idempotency claim."""

    def test_unconfirmed_publish_leaves_no_record_and_releases_its_key(self):
        key = "unconfirmed-%s" % run_tag()
        eid = idempotent_id("test.unconfirmed", key)
        parent = str(uuid.uuid4())
        body = json.dumps({"k": key})
        headers = publish_headers(parents=[parent], key=key)
        bbtest.stack("stop-rabbit")
        try:
            resp = post("/events/test.unconfirmed", body, headers=headers, timeout=15)
            self.assertIn(resp.status_code, (503, 504), resp.content)
            with redis() as r:
                self.assertEqual(r.call("EXISTS", record_key(eid)), 0, "record left behind")
                self.assertEqual(r.call("EXISTS", record_key(parent)), 0,
                                 "child link left behind")
                if resp.status_code == 503:  # surely not published: the key is free again
                    self.assertEqual(r.call("EXISTS", claim_key(eid)), 0,
                                     "idempotency claim left behind")
        finally:
            bbtest.stack("start-rabbit")
        if resp.status_code != 503:
            return
        deadline = time.monotonic() + 20
        while True:
            again = post("/events/test.unconfirmed", body, headers=headers, timeout=15)
            if again.status_code == 200 or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        env = self.assertJSONResponse(again, 200)
        self.assertEqual(env["event_id"], eid)
        self.assertNotIn("Idempotent-Replayed", again.headers)
        with redis() as r:
            self.assertEqual(r.call("GET", record_key(parent)),
                             count_entry(1) + b"C" + uuid.UUID(eid).bytes)


class ZzClaimOwnerTest(TrackingCase):
    """Only the request that set a pending claim releases it or marks it done
    (CONTRACT §7). The broker process is stopped (SIGSTOP) so that a publish
    stays in flight while the test replaces its claim in Redis with the value
    of another request (same body, another nonce)."""

    def beam_pid(self):
        path = os.path.join(bbtest.BB_STATE_DIR or "/nonexistent", "rabbitmq", "rabbitmq.pid")
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            self.skipTest("no RabbitMQ pid file at %s" % path)

    def setUp(self):
        self.pid = self.beam_pid()
        for _ in range(6):  # connected workers: a publish then waits for its confirm
            self.publish("test.owner.warm")

    def tearDown(self):
        os.kill(self.pid, signal.SIGCONT)
        deadline = time.monotonic() + 20
        while post("/events/test.owner.back", b"{}").status_code != 200:
            if time.monotonic() > deadline:
                self.fail("the broker did not come back")
            time.sleep(0.5)

    def replace_claim_in_flight(self, r, key, body, resume):
        """Publishes with key while the broker is stopped; once the claim is
        in Redis, replaces it with another request's value, then continues the
        broker when resume is true. Returns (response, own value, other value)."""
        eid = idempotent_id("test.owner", key)
        digest = hashlib.sha256(body).digest()
        answer = []
        os.kill(self.pid, signal.SIGSTOP)
        try:
            t = threading.Thread(target=lambda: answer.append(post(
                "/events/test.owner", body, headers=publish_headers(key=key), timeout=15)))
            t.start()
            own = None
            while own is None and t.is_alive():
                own = r.call("GET", claim_key(eid))
            if own is None:  # answered before the claim was seen (a worker in backoff)
                t.join()
                return answer[0], None, None
            other = b"P" + digest + os.urandom(16)
            r.call("SET", claim_key(eid), other, "PX", 30000)
            if resume:
                os.kill(self.pid, signal.SIGCONT)
            t.join(20)
        finally:
            os.kill(self.pid, signal.SIGCONT)
        self.assertEqual(len(own), 49, own)
        self.assertEqual(own[:33], b"P" + digest, "pending claim is 'P' + SHA-256(body) + nonce")
        return answer[0], own, other

    def in_flight_attempt(self, r, tag, resume):
        for attempt in range(3):
            key = "owner-%s-%s-%d" % (tag, run_tag(), attempt)
            body = json.dumps({"k": key}).encode()
            resp, own, other = self.replace_claim_in_flight(r, key, body, resume)
            if own is not None:
                return key, body, resp, own, other
        self.fail("no publish stayed in flight long enough to see its claim")

    def test_failed_publish_does_not_release_another_requests_claim(self):
        with redis() as r:
            key, body, resp, own, other = self.in_flight_attempt(r, "release", resume=False)
            eid = idempotent_id("test.owner", key)
            try:
                self.assertIn(resp.status_code, (503, 504), resp.content)
                self.assertEqual(r.call("GET", claim_key(eid)), other,
                                 "the failed request deleted a claim it did not own")
                again = post("/events/test.owner", body, headers=publish_headers(key=key))
                self.assertError(again, 409, "idempotency_conflict")
            finally:
                r.call("DEL", claim_key(eid))

    def test_confirmed_publish_does_not_mark_another_requests_claim_done(self):
        with redis() as r:
            key, body, resp, own, other = self.in_flight_attempt(r, "done", resume=True)
            eid = idempotent_id("test.owner", key)
            try:
                env = self.assertJSONResponse(resp, 200)
                self.assertEqual(env["event_id"], eid)
                self.assertRecorded(eid, timeout=2.0)  # the record script has run
                self.assertEqual(r.call("GET", claim_key(eid)), other,
                                 "the request marked done a claim it did not own")
            finally:
                r.call("DEL", claim_key(eid))


# ------------------------------------------------------------------ worker settings (last)

class WorkerSettingsCase(TrackingCase):
    """Restarts lighttpd with extra settings in DIR/bloodbank.env; restores it after."""

    SETTINGS = {}

    @classmethod
    def setUpClass(cls):
        path = _env_file()
        if not path or not os.path.exists(path) or not bbtest.BB_STACK:
            raise unittest.SkipTest("BB_STACK and BB_STATE_DIR/bloodbank.env are needed")
        with open(path) as f:
            original = f.read()

        def restore():
            with open(path, "w") as f:
                f.write(original)
            bbtest.stack("restart-lighttpd")
        cls.addClassCleanup(restore)
        with open(path, "a") as f:
            f.write("# test_tracking.py %s\n" % cls.__name__)
            for k, v in cls.SETTINGS.items():
                f.write("export %s=%s\n" % (k, v))
        bbtest.stack("restart-lighttpd")


class ZzDebugDisabledTest(WorkerSettingsCase):
    SETTINGS = {"DEBUG_ENDPOINTS": "false"}

    def test_debug_endpoints_are_404_when_disabled(self):
        eid = self.publish_id("test.nodebug")
        for path in (correlation_path(eid), chain_path(eid, "ancestors"),
                     chain_path(eid, "descendants")):
            with self.subTest(path=path):
                self.assertError(get(path), 404, "not_found")

    def test_tracking_still_records_when_debug_endpoints_disabled(self):
        eid = self.publish_id("test.nodebug")
        with redis() as r:
            self.assertIsNotNone(r.call("GET", record_key(eid)))


class ZzApiTokenTest(WorkerSettingsCase):
    TOKEN = "tracking-test-token-%s" % uuid.uuid4().hex
    SETTINGS = {"API_TOKEN": TOKEN}

    def test_debug_endpoints_need_the_bearer_token(self):
        eid = self.publish_id("test.token", token=self.TOKEN)
        for path in (correlation_path(eid), chain_path(eid, "ancestors")):
            for headers in (None, {"Authorization": "Bearer wrong"},
                            {"Authorization": "Bearer " + self.TOKEN + "x"},
                            {"Authorization": self.TOKEN}):
                with self.subTest(path=path, headers=headers):
                    resp = get(path, headers=headers)
                    self.assertError(resp, 401, "unauthorized")
                    self.assertIn("Bearer", resp.headers.get("WWW-Authenticate", ""))
                    self.assertNotIn(self.TOKEN.encode(), resp.content)

    def test_debug_endpoints_answer_with_the_bearer_token(self):
        eid = self.publish_id("test.token", token=self.TOKEN)
        doc = self.lookup(eid, token=self.TOKEN)
        self.assertEqual(doc.get("event_id"), eid)
        resp = get(chain_path(eid, "ancestors"), headers=auth(self.TOKEN))
        self.assertEqual(self.assertJSONResponse(resp, 200).get("chain"), [])

    def test_unknown_id_without_token_is_401_not_404(self):
        self.assertError(get(correlation_path(str(uuid.uuid4()))), 401, "unauthorized")

    def test_healthz_needs_no_token(self):
        doc = self.assertJSONResponse(get("/healthz"), 200)
        self.assertEqual(doc.get("redis"), "up", doc)


class ZzChildrenCapTest(WorkerSettingsCase):
    """CORRELATION_MAX_CHILDREN=5: a parent records at most 5 children; the
    others are still published and recorded themselves, and every debug answer
    that lists the parent's children says truncated."""

    MAX = 5
    SETTINGS = {"CORRELATION_MAX_CHILDREN": str(MAX)}

    def children_of(self, parent, n):
        return [self.publish_id("test.cap.child", parents=[parent]) for _ in range(n)]

    def test_parent_lists_max_children_and_says_truncated(self):
        root = self.publish_id("test.cap.root")
        parent = self.publish_id("test.cap.parent", parents=[root])
        children = self.children_of(parent, self.MAX + 2)  # each answered 200
        doc = self.lookup(parent)
        self.assertEqual(doc["children"], children[:self.MAX], doc)
        self.assertEqual(doc["descendants"], children[:self.MAX], doc)
        self.assertIs(doc.get("truncated"), True, doc)
        ch = self.chain(parent, "descendants")
        self.assertEqual(ch["chain"], children[:self.MAX], ch)
        self.assertIs(ch.get("truncated"), True, ch)
        # the root lists the capped parent's children among its descendants
        up = self.lookup(root)
        self.assertEqual(up["descendants"], [parent] + children[:self.MAX], up)
        self.assertIs(up.get("truncated"), True, up)
        self.assertIs(self.chain(root, "descendants").get("truncated"), True)
        with redis() as r:
            value = r.call("GET", record_key(parent))
        self.assertEqual(value[:5], count_entry(self.MAX, truncated=True), value[:5])

    def test_child_beyond_the_cap_keeps_its_own_record(self):
        parent = self.publish_id("test.cap.parent")
        late = self.children_of(parent, self.MAX + 1)[-1]
        doc = self.lookup(late)
        self.assertEqual(doc["parents"], [parent], doc)
        self.assertEqual(doc["ancestors"], [parent], doc)
        self.assertIs(doc.get("truncated"), False, doc)
        ch = self.chain(late, "ancestors")
        self.assertEqual(ch["chain"], [parent], ch)
        self.assertIs(ch.get("truncated"), False, ch)

    def test_parent_with_exactly_max_children_is_not_truncated(self):
        parent = self.publish_id("test.cap.parent")
        children = self.children_of(parent, self.MAX)
        doc = self.lookup(parent)
        self.assertEqual(doc["children"], children, doc)
        self.assertIs(doc.get("truncated"), False, doc)
        with redis() as r:
            self.assertEqual(r.call("GET", record_key(parent))[:5], count_entry(self.MAX))

    def test_record_of_the_older_layout_is_counted_then_capped(self):
        # written before the count entry: metadata, then 'C' entries
        parent = self.publish_id("test.cap.parent")
        old = [str(uuid.uuid4()) for _ in range(3)]
        with redis() as r:
            value = r.call("GET", record_key(parent))
            self.assertEqual(value[:1], b"M", value)
            r.call("APPEND", record_key(parent), b"".join(b"C" + uuid.UUID(c).bytes
                                                          for c in old))
            self.assertIs(self.lookup(parent).get("truncated"), False)
            new = self.children_of(parent, 3)
            after = r.call("GET", record_key(parent))
        doc = self.lookup(parent)
        self.assertEqual(doc["children"], old + new[:2], doc)
        self.assertIs(doc.get("truncated"), True, doc)
        self.assertEqual(after, count_entry(5, truncated=True) + value + b"".join(
            b"C" + uuid.UUID(c).bytes for c in old + new[:2]))


class ZzTrackingDisabledTest(WorkerSettingsCase):
    SETTINGS = {"CORRELATION_TRACKING": "false"}

    def test_debug_endpoints_are_503_when_tracking_off(self):
        eid = self.publish_id("test.notrack")
        for path in (correlation_path(eid), chain_path(eid, "descendants")):
            with self.subTest(path=path):
                self.assertError(get(path), 503, "tracking_unavailable")

    def test_healthz_reports_redis_disabled_and_healthy(self):
        doc = self.assertJSONResponse(get("/healthz"), 200)
        self.assertEqual(doc.get("redis"), "disabled", doc)
        self.assertEqual(doc.get("status"), "healthy", doc)

    def test_publish_writes_no_record_when_tracking_off(self):
        parent = str(uuid.uuid4())
        eid = self.publish_id("test.notrack", parents=[parent])
        with redis() as r:
            self.assertEqual(r.call("EXISTS", record_key(eid)), 0)
            self.assertEqual(r.call("EXISTS", record_key(parent)), 0)

    def test_idempotency_key_still_gives_deterministic_id_when_tracking_off(self):
        key = "notrack-%s" % run_tag()
        env = self.publish("test.notrack", key=key)
        self.assertEqual(env["event_id"], idempotent_id("test.notrack", key))
