"""Event schemas (CONTRACT §10, issue 18): the <event_type>.json files of
SCHEMA_DIR checked on every publish path (/events/{type}, POST /events,
batch items) with 422 fields {"field","message","keyword"}; the typed types'
answers unchanged; the catalog (GET and HEAD /schemas, /schemas/{type});
patterns that cannot hang a worker; auth; and reloads.

The stack's SCHEMA_DIR holds tests/integration/schemas/ (scripts/test.sh
copies it there): order.placed (required, additionalProperties false, an
array of line items, patterns, formats, enum, $ref to definitions),
user.signup (a uuid, maxProperties), schema.redos (patterns with
catastrophic backtracking), schema.utf8 (non-ASCII text that messages
quote) and schema.tree (a recursive oneOf), plus a README and a
*.json.example that must be ignored. No event type that another test uses
may get a file there.

The Zz* classes restart lighttpd with another SCHEMA_DIR content or
API_TOKEN, or run a pre-fork master of their own, and restore the stack;
they run last."""

import json
import os
import re
import signal
import subprocess
import time
import unittest
import uuid

import requests

import bbtest
from bbtest import BBTestCase, Consumer, get, http, post
from test_endpoints import EndpointCase, StackConfigCase, ikey, jdump, restart_lighttpd, v5
from test_metrics import PoolCase, PORT_BASE, REPO, fcgi_request, scrape, value, wait_for

EVENTS = "/events"
BATCH = "/events/batch"
ORDER = "/events/order.placed"
SIGNUP = "/events/user.signup"
REDOS = "/events/schema.redos"
TYPED = ["artifact.created", "artifact.deleted", "artifact.updated", "llm.prompt",
         "llm.response"]
SCHEMA_FIELDS = {"field", "message", "keyword"}
# generous: a catastrophic pattern must be cut off by PCRE2's match limit in
# milliseconds, but CPU is shared with other work
QUICK = 2.0


def order(**changes):
    """A payload that order.placed.json accepts, with changes."""
    doc = {
        "order_id": "ORD-000123",
        "customer": {"email": "ada@example.com", "name": "Ada"},
        "items": [{"sku": "ABC-1234", "qty": 2, "price": 9.5},
                  {"sku": "XYZ-0001", "qty": 1}],
        "placed_at": "2024-05-01T12:30:00Z",
        "currency": "EUR",
    }
    doc.update(changes)
    return doc


def schema_dir():
    """The stack's SCHEMA_DIR: from the environment scripts/test.sh gave,
    else from the workers' DIR/bloodbank.env."""
    d = os.environ.get("SCHEMA_DIR", "")
    if not d and bbtest.BB_STATE_DIR:
        try:
            with open(os.path.join(bbtest.BB_STATE_DIR, "bloodbank.env")) as f:
                m = re.search(r"^export SCHEMA_DIR=(.*)$", f.read(), re.M)
            if m:
                d = subprocess.run(["bash", "-c", "printf %s " + m.group(1)],
                                   stdout=subprocess.PIPE).stdout.decode()
        except OSError:
            pass
    if not d or not os.path.isdir(d):
        raise unittest.SkipTest("the stack has no SCHEMA_DIR (scripts/test.sh sets one)")
    return d


def file_types(d):
    return sorted(n[:-len(".json")] for n in os.listdir(d)
                  if n.endswith(".json") and not n.startswith("."))


def healthy():
    try:
        return get("/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def pairs(doc):
    """The (field, keyword) pairs of a 422 answer, sorted."""
    return sorted((f["field"], f["keyword"]) for f in doc["fields"])


class SchemaCase(EndpointCase):

    def assertSchemaFields(self, doc, event_type):
        """A schema's 422: the detail names the type, every entry is a
        {"field","message","keyword"} object with a non-empty message."""
        self.assertEqual(doc.get("error"), "validation_error", doc)
        self.assertEqual(doc.get("detail"),
                         "the payload does not match the schema of event type %s" % event_type)
        self.assertIsInstance(doc.get("fields"), list, doc)
        self.assertTrue(doc["fields"], doc)
        for f in doc["fields"]:
            self.assertEqual(set(f), SCHEMA_FIELDS, f)
            self.assertIsInstance(f["field"], str, f)
            self.assertIsInstance(f["keyword"], str, f)
            self.assertTrue(isinstance(f["message"], str) and f["message"], f)

    def refused_by_schema(self, path, payload, event_type):
        body = payload if isinstance(payload, bytes) else jdump(payload)
        _, doc = self.refused(path, body, 422, "validation_error")
        self.assertSchemaFields(doc, event_type)
        return doc


# ====================================================================== /events/{type}

class SchemaValidationTest(SchemaCase):

    def test_valid_payload_is_published_as_sent(self):
        payload = order()
        env, method, _ = self.publish_envelope(ORDER, jdump(payload),
                                               routing_key="order.placed")
        self.assertEqual(env["event_type"], "order.placed")
        self.assertEqual(env["payload"], payload, "a schema'd payload is kept as sent")

    def test_one_failure_is_422_with_field_message_and_keyword(self):
        payload = order()
        payload["items"][0]["qty"] = 0
        doc = self.refused_by_schema(ORDER, payload, "order.placed")
        self.assertEqual(len(doc["fields"]), 1, doc)
        f = doc["fields"][0]
        self.assertEqual((f["field"], f["keyword"]), ("items.0.qty", "minimum"), doc)
        self.assertIn("1", f["message"], "the message says the bound: %r" % f)

    def test_several_failing_locations_are_reported_in_one_answer(self):
        payload = {
            "order_id": "ORD-12",                                  # pattern
            "customer": {"email": "not-an-email", "nick": "x"},   # format, additionalProperties
            "items": [{"sku": "ABC-1234", "qty": "2"},             # type
                      {"sku": "abc", "qty": 1, "price": 0}],       # pattern, exclusiveMinimum
            "placed_at": "yesterday",                              # format
            "currency": "JPY",                                     # enum
            "coupon": "X",                                         # additionalProperties
        }
        doc = self.refused_by_schema(ORDER, payload, "order.placed")
        self.assertEqual(pairs(doc), sorted([
            ("order_id", "pattern"), ("customer.email", "format"),
            ("customer.nick", "additionalProperties"), ("items.0.qty", "type"),
            ("items.1.sku", "pattern"), ("items.1.price", "exclusiveMinimum"),
            ("placed_at", "format"), ("currency", "enum"), ("coupon", "additionalProperties"),
        ]), doc)

    def test_missing_required_members_are_reported_under_their_names(self):
        payload = order()
        del payload["customer"], payload["currency"]
        payload["items"][1] = {"qty": 1}
        doc = self.refused_by_schema(ORDER, payload, "order.placed")
        self.assertEqual(pairs(doc), [("currency", "required"), ("customer", "required"),
                                      ("items.1.sku", "required")], doc)

    def test_failure_of_the_payload_itself_has_an_empty_field(self):
        payload = {"user_id": str(uuid.uuid4()), "a": 1, "b": 2, "c": 3, "d": 4}
        doc = self.refused_by_schema(SIGNUP, payload, "user.signup")
        self.assertEqual(pairs(doc), [("", "maxProperties")], doc)

    def test_array_bounds_are_reported_on_the_array(self):
        doc = self.refused_by_schema(ORDER, order(items=[]), "order.placed")
        self.assertEqual(pairs(doc), [("items", "minItems")], doc)

    def test_at_most_twenty_failures_are_reported(self):
        payload = order(items=[{"sku": "ABC-1234", "qty": 0} for _ in range(30)])
        doc = self.refused_by_schema(ORDER, payload, "order.placed")
        self.assertEqual(len(doc["fields"]), 20, doc)
        self.assertEqual(pairs(doc), sorted(("items.%d.qty" % k, "minimum") for k in range(20)))

    def test_escaped_member_names_are_unescaped_in_the_field(self):
        body = jdump(order())[:-1] + b',"caf\\u00e9":1,"a\\"b":2}'
        doc = self.refused_by_schema(ORDER, body, "order.placed")
        self.assertEqual(pairs(doc), [('a"b', "additionalProperties"),
                                      ("caf\u00e9", "additionalProperties")], doc)

    def test_formats_are_asserted(self):
        for path, payload, field in (
                (ORDER, order(placed_at="2024-13-01T00:00:00Z"), "placed_at"),
                (ORDER, order(placed_at="2024-05-01 12:30:00"), "placed_at"),
                (ORDER, order(customer={"email": "ada.example.com"}), "customer.email"),
                (SIGNUP, {"user_id": "not-a-uuid"}, "user_id"),
                (SIGNUP, {"user_id": "0f8fad5bd9cb469fa16570867728950e"}, "user_id")):
            with self.subTest(payload=payload):
                doc = self.refused_by_schema(path, payload, path.rsplit("/", 1)[1])
                self.assertEqual(pairs(doc), [(field, "format")], doc)

    def test_valid_formats_pass(self):
        for payload in ({"user_id": "0F8FAD5B-D9CB-469F-A165-70867728950E"},
                        {"user_id": str(uuid.uuid4()), "plan": "pro"}):
            with self.subTest(payload=payload):
                self.publish_envelope(SIGNUP, jdump(payload), routing_key="user.signup")
        self.publish_envelope(ORDER, jdump(order(placed_at="2024-05-01T12:30:00.123+02:00")),
                              routing_key="order.placed")

    def test_messages_quoting_the_schema_stay_utf8(self):
        # schema.utf8.json: a pattern of 100 "é" (quoted in the message, and
        # longer than a message holds) and a dependencies member "xñññ…"
        for payload, expected in (({"word": "b"}, [("word", "pattern")]),
                                  ({"x" + "\u00f1" * 40: 1}, [("needed", "dependencies")])):
            with self.subTest(payload=list(payload)[0][:3]):
                with Consumer() as c:
                    resp = post("/events/schema.utf8", jdump(payload))
                    self.assertNothingPublished(c)
                self.assertEqual(resp.status_code, 422, resp.content[:300])
                try:
                    resp.content.decode("utf-8")
                except UnicodeDecodeError as e:
                    self.fail("the 422 answer is not UTF-8 (%s): %r" % (e, resp.content[-120:]))
                doc = self.assertError(resp, 422, "validation_error")
                self.assertSchemaFields(doc, "schema.utf8")
                self.assertEqual(pairs(doc), expected, doc)

    def test_recursive_schema_accepts_a_deep_valid_tree(self):
        # schema.tree.json: oneOf of two branches that both descend into
        # "children" before "op" tells them apart; a binary tree of depth 8
        # (about 15 KB) is valid (python-jsonschema agrees), and checking it
        # is linear work if each (subschema, value) pair is checked once
        def tree(depth):
            return {"children": [tree(depth - 1), tree(depth - 1)] if depth else [],
                    "op": "or" if depth % 2 else "and"}
        payload = tree(8)
        t0 = time.monotonic()
        with Consumer("schema.tree") as c:
            resp = post("/events/schema.tree", jdump(payload), timeout=30)
            elapsed = time.monotonic() - t0
            self.assertEqual(resp.status_code, 200,
                             "a valid %d-byte tree: %r" % (len(jdump(payload)), resp.content[:400]))
            self.assertEqual(len(c.receive(1)), 1)
        self.assertLess(elapsed, QUICK)

    def test_recursive_schema_refuses_a_bad_node(self):
        payload = {"children": [{"children": [], "op": "and"},
                                {"children": [{"children": [], "op": "xor"}], "op": "or"}],
                   "op": "and"}
        doc = self.refused_by_schema("/events/schema.tree", payload, "schema.tree")
        self.assertEqual(pairs(doc), [("", "oneOf")], doc)

    def test_type_without_a_schema_takes_any_object(self):
        payload = {"anything": [1, {"x": None}], "order_id": 5}
        env, _, _ = self.publish_envelope("/events/order.cancelled", jdump(payload),
                                          routing_key="order.cancelled")
        self.assertEqual(env["payload"], payload)

    def test_refused_payload_leaves_its_idempotency_key_unused(self):
        key = ikey("schema")
        bad = order(currency="JPY")
        self.refused(ORDER, jdump(bad), 422, "validation_error",
                     headers={"Idempotency-Key": key})
        env, _, _ = self.publish_envelope(ORDER, jdump(order()), headers={"Idempotency-Key": key},
                                          routing_key="order.placed")
        self.assertEqual(env["event_id"], v5("order.placed", key))
        self.assertNotIn("replayed", env)

    def test_refusal_is_counted_as_a_rejected_event(self):
        m0 = scrape()
        self.refused_by_schema(ORDER, order(currency="JPY"), "order.placed")
        m1 = scrape()

        def delta(name, **labels):
            return value(m1, name, **labels) - value(m0, name, **labels)
        self.assertEqual(delta("bloodbank_events_total", outcome="rejected"), 1)
        self.assertEqual(delta("bloodbank_events_total", outcome="published"), 0)


# ====================================================================== other paths

class SchemaPathsTest(SchemaCase):

    def test_post_events_with_a_valid_payload_is_published(self):
        payload = order()
        env, _, _ = self.publish_envelope(EVENTS, jdump({"event_type": "order.placed",
                                                         "payload": payload}),
                                          routing_key="order.placed")
        self.assertEqual(env["payload"], payload)

    def test_post_events_fields_are_paths_from_the_payload_root(self):
        payload = order(currency="JPY")
        payload["items"][1]["qty"] = -3
        doc = self.refused_by_schema(EVENTS, {"event_type": "order.placed", "payload": payload},
                                     "order.placed")
        self.assertEqual(pairs(doc), [("currency", "enum"), ("items.1.qty", "minimum")], doc)

    def test_post_events_invalid_envelope_is_answered_before_the_schema(self):
        # an envelope that is itself invalid is answered first, as before
        _, doc = self.refused(EVENTS, jdump({"event_type": "order.placed",
                                             "payload": order(currency="JPY"),
                                             "correlation_ids": "nope"}),
                              422, "validation_error")
        self.assertEqual(doc["detail"], "the partial envelope is not valid", doc)
        self.assertIn("correlation_ids", [f["field"] for f in doc["fields"]], doc)

    def test_batch_item_that_breaks_its_schema_is_422_and_the_others_are_published(self):
        bad = order(order_id="nope")
        bad["items"][0]["sku"] = "abc"
        items = [
            {"event_type": "order.placed", "payload": order()},
            {"event_type": "order.placed", "payload": bad},
            {"event_type": "user.signup", "payload": {"user_id": str(uuid.uuid4())}},
            {"event_type": "user.signup", "payload": {"plan": "free"}},
            {"event_type": "order.cancelled", "payload": {"whatever": True}},
        ]
        with Consumer() as c:
            doc = self.assertJSONResponse(post(BATCH, jdump(items)), 207)
            msgs = c.receive(3)
            msgs += c.drain()
        self.assertEqual([r["status"] for r in doc["results"]], [200, 422, 200, 422, 200], doc)
        self.assertEqual((doc["published"], doc["failed"]), (3, 2), doc)
        for k, event_type, expected in ((1, "order.placed", [("items.0.sku", "pattern"),
                                                            ("order_id", "pattern")]),
                                        (3, "user.signup", [("user_id", "required")])):
            r = doc["results"][k]
            self.assertSchemaFields(r, event_type)
            self.assertEqual(pairs(r), expected, r)
        self.assertEqual(sorted(m[1].message_id for m in msgs),
                         sorted(doc["results"][k]["event_id"] for k in (0, 2, 4)))
        self.assertEqual(sorted(m[0].routing_key for m in msgs),
                         ["order.cancelled", "order.placed", "user.signup"])

    def test_batch_of_valid_schema_items_is_200(self):
        items = [{"event_type": "order.placed", "payload": order(order_id="ORD-%06d" % k)}
                 for k in range(5)]
        with Consumer("order.placed") as c:
            doc = self.assertJSONResponse(post(BATCH, jdump(items)), 200)
            msgs = c.receive(5)
            msgs += c.drain()
        self.assertEqual([r["status"] for r in doc["results"]], [200] * 5, doc)
        self.assertEqual([json.loads(m[2])["payload"]["order_id"] for m in msgs],
                         ["ORD-%06d" % k for k in range(5)])

    def test_typed_types_keep_their_422_answers(self):
        """Exactly the answers of the typed validation before schemas existed:
        {"field","message"} entries, no keyword."""
        typed = "the payload does not match the schema of event type "
        cases = [
            ("/events/llm/prompt", {"model": "gpt-4"},
             {"error": "validation_error",
              "detail": "the request body does not match the endpoint's schema",
              "fields": [{"field": "prompt", "message": "required"}]}),
            ("/events/llm.prompt", {"model": "gpt-4"},
             {"error": "validation_error", "detail": typed + "llm.prompt",
              "fields": [{"field": "prompt", "message": "required"}]}),
            (EVENTS, {"event_type": "llm.response",
                      "payload": {"response": 5, "tokens_used": -1}},
             {"error": "validation_error", "detail": typed + "llm.response",
              "fields": [{"field": "response", "message": "must be a non-empty string"},
                         {"field": "tokens_used",
                          "message": "must be an integer >= 0 or null"}]}),
            ("/events/artifact.created", {"action": "updated", "kind": "k", "uri": "u"},
             {"error": "validation_error", "detail": typed + "artifact.created",
              "fields": [{"field": "action",
                          "message": "must be \"created\" for event type artifact.created"}]}),
        ]
        for path, payload, expected in cases:
            with self.subTest(path=path, payload=payload):
                _, doc = self.refused(path, jdump(payload), 422, "validation_error")
                self.assertEqual(doc, expected)
        with Consumer() as c:
            doc = self.assertJSONResponse(post(BATCH, jdump([
                {"event_type": "llm.prompt", "payload": {"prompt": ""}}])), 207)
            self.assertNothingPublished(c)
        self.assertEqual(doc["results"][0], {
            "status": 422, "error": "validation_error", "detail": typed + "llm.prompt",
            "fields": [{"field": "prompt", "message": "must be a non-empty string"}]})


# ====================================================================== patterns

class SchemaPatternLimitTest(SchemaCase):
    """schema.redos.json: "name" has ^(a+)+$, member names ^(b+)+$ (both
    exponential on a near miss), "plain" has ^[a-z]+$."""

    def timed_refusal(self, payload, expected):
        body = jdump(payload)
        t0 = time.monotonic()
        with Consumer() as c:
            resp = post(REDOS, body, timeout=30)
            elapsed = time.monotonic() - t0
            doc = self.assertError(resp, 422, "validation_error")
            self.assertNothingPublished(c)
        self.assertLess(elapsed, QUICK, "a catastrophic pattern took %.2f s" % elapsed)
        self.assertSchemaFields(doc, "schema.redos")
        self.assertEqual(pairs(doc), expected, doc)
        return doc

    def test_catastrophic_pattern_is_422_quickly(self):
        for n in (30, 5000, 60000):
            with self.subTest(length=n):
                self.timed_refusal({"name": "a" * n + "!"}, [("name", "pattern")])
        # the worker goes on serving
        self.publish_envelope(REDOS, jdump({"name": "aaaa"}), routing_key="schema.redos")

    def test_catastrophic_pattern_on_a_member_name_is_422_quickly(self):
        name = "b" * 40 + "!"
        self.timed_refusal({name: 1}, [(name, "patternProperties")])

    def test_many_catastrophic_member_names_stay_bounded(self):
        # as many near misses as fit in MAX_BODY_BYTES: at most 20 reported
        payload = {}
        while len(jdump(payload)) < bbtest.MAX_BODY_BYTES - 200:
            payload["b" * 24 + "!%d" % len(payload)] = 1
        doc = self.timed_refusal(payload, sorted((k, "patternProperties")
                                                 for k in list(payload)[:20]))
        self.assertEqual(len(doc["fields"]), 20)

    def test_ordinary_pattern_matches_a_long_value(self):
        n = bbtest.MAX_BODY_BYTES - 100
        t0 = time.monotonic()
        env, _, _ = self.publish_envelope(REDOS, jdump({"plain": "a" * n}),
                                          routing_key="schema.redos")
        self.assertLess(time.monotonic() - t0, QUICK)
        self.assertEqual(len(env["payload"]["plain"]), n)


# ====================================================================== the catalog

class SchemaCatalogTest(BBTestCase):

    def index(self):
        return self.assertJSONResponse(get("/schemas"), 200)

    def test_index_lists_the_typed_and_the_file_types_sorted(self):
        doc = self.index()
        self.assertEqual(set(doc), {"schemas"}, doc)
        types = [e["event_type"] for e in doc["schemas"]]
        self.assertEqual(types, sorted(TYPED + file_types(schema_dir())), doc)
        for t in ("order.placed", "user.signup", "schema.redos"):
            self.assertIn(t, types)

    def test_index_entries_have_title_description_and_href(self):
        entries = {e["event_type"]: e for e in self.index()["schemas"]}
        for e in entries.values():
            self.assertEqual(set(e), {"event_type", "title", "description", "href"}, e)
            self.assertEqual(e["href"], "/schemas/" + e["event_type"])
            self.assertIsInstance(e["title"], str)
            self.assertIsInstance(e["description"], str)
        self.assertEqual(entries["order.placed"]["title"], "Order placed")
        self.assertEqual(entries["order.placed"]["description"],
                         "A customer placed an order: who, what and when.")
        # no title or description in the file: empty strings
        self.assertEqual((entries["schema.redos"]["title"],
                          entries["schema.redos"]["description"]), ("", ""))
        for t in TYPED:
            self.assertTrue(entries[t]["description"], entries[t])

    def test_index_leaves_out_readme_and_examples(self):
        d = schema_dir()
        self.assertTrue(any(n.endswith(".json.example") for n in os.listdir(d)),
                        "the stack's SCHEMA_DIR should hold an example file")
        types = [e["event_type"] for e in self.index()["schemas"]]
        self.assertNotIn("ignored.type", types)
        self.assertFalse([t for t in types if "example" in t or "README" in t], types)

    def test_file_schema_is_answered_as_schema_json(self):
        for t in file_types(schema_dir()):
            with self.subTest(event_type=t):
                resp = get("/schemas/" + t)
                self.assertEqual(resp.status_code, 200, resp.content[:300])
                self.assertContentLength(resp)
                self.assertEqual(resp.headers.get("Content-Type", "").split(";")[0].strip(),
                                 "application/schema+json")
                with open(os.path.join(schema_dir(), t + ".json")) as f:
                    self.assertEqual(json.loads(resp.content), json.load(f))

    def test_typed_schemas_are_draft07_documents(self):
        import jsonschema
        for t in TYPED:
            with self.subTest(event_type=t):
                resp = get("/schemas/" + t)
                self.assertEqual(resp.status_code, 200, resp.content[:300])
                self.assertEqual(resp.headers.get("Content-Type", "").split(";")[0].strip(),
                                 "application/schema+json")
                doc = json.loads(resp.content)
                jsonschema.Draft7Validator.check_schema(doc)
                self.assertEqual(doc.get("type"), "object", doc)
        required = {t: json.loads(get("/schemas/" + t).content).get("required") for t in TYPED}
        self.assertEqual(required["llm.prompt"], ["prompt"])
        self.assertEqual(required["llm.response"], ["response"])
        self.assertEqual(sorted(required["artifact.created"]), ["action", "kind", "uri"])

    def test_typed_schema_documents_agree_with_the_typed_validation(self):
        """A producer checking a payload against GET /schemas/{type} gets the
        answer Bloodbank gives (formats aside: python-jsonschema's uuid check
        is looser than RFC 4122's text). A count written as 3.0 or 1e3 is an
        integer to draft-07 and not to the endpoint; the document says so in
        the field's description, which no validator reads, so those forms
        are left out here."""
        import jsonschema
        cases = {
            "llm.prompt": [b'{"prompt":"p"}', b'{"prompt":""}', b'{"prompt":null}',
                           b'{"prompt":"p","tags":null}', b'{"prompt":"p","tags":["a",1]}',
                           b'{"prompt":"p","model":null,"x":{}}', b'{"prompt":"p","domain":5}'],
            "llm.response": [b'{"response":"r","tokens_used":3}',
                             b'{"response":"r","tokens_used":-1}',
                             b'{"response":"r","tokens_used":null}',
                             b'{"response":"r","duration_ms":10000000000000000000000}'],
            "artifact.updated": [b'{"action":"updated","kind":"k","uri":"u"}',
                                 b'{"action":"created","kind":"k","uri":"u"}',
                                 b'{"action":"updated","kind":"k","uri":"u","metadata":null}',
                                 b'{"action":"updated","kind":"k","uri":"u","metadata":[]}',
                                 b'{"action":"updated","kind":"","uri":"u"}'],
        }
        disagree = []
        for t, bodies in cases.items():
            v = jsonschema.Draft7Validator(json.loads(get("/schemas/" + t).content))
            for body in bodies:
                status = post("/events/" + t, body).status_code
                self.assertIn(status, (200, 422), body)
                if (status == 200) != v.is_valid(json.loads(body)):
                    disagree.append("%s %s: Bloodbank %d, its schema document says %s"
                                    % (t, body.decode(), status,
                                       "valid" if v.is_valid(json.loads(body)) else "invalid"))
        self.assertEqual(disagree, [])

    def test_type_without_a_schema_is_404_json(self):
        for t in ("order.cancelled", "no.such.type", "Not%20A%20Type", "llm"):
            with self.subTest(event_type=t):
                resp = get("/schemas/" + t)
                self.assertError(resp, 404, "not_found")

    def test_head_answers_the_headers_without_a_body(self):
        for path in ("/schemas", "/schemas/order.placed", "/schemas/llm.prompt",
                     "/schemas/no.such.type"):
            with self.subTest(path=path):
                g = get(path)
                h = http("HEAD", path, None, content_type=None)
                self.assertEqual(h.status_code, g.status_code)
                self.assertEqual(h.content, b"")
                self.assertEqual(h.headers.get("Content-Type"), g.headers.get("Content-Type"))
                self.assertEqual(h.headers.get("Content-Length"), str(len(g.content)))

    def test_other_methods_are_405_with_allow_get_and_head(self):
        for method, path in (("POST", "/schemas"), ("PUT", "/schemas/order.placed"),
                             ("DELETE", "/schemas/order.placed")):
            with self.subTest(method=method, path=path):
                resp = http(method, path, b"{}")
                self.assertError(resp, 405, "method_not_allowed")
                allow = sorted(m.strip() for m in resp.headers.get("Allow", "").split(","))
                self.assertEqual(allow, ["GET", "HEAD"], resp.headers)

    def test_catalog_requests_are_counted_under_route_schemas(self):
        m0 = scrape()
        get("/schemas")
        get("/schemas/order.placed")
        get("/schemas/no.such.type")
        m1 = scrape()

        def delta(code):
            return (value(m1, "bloodbank_http_requests_total", route="schemas", code=code)
                    - value(m0, "bloodbank_http_requests_total", route="schemas", code=code))
        self.assertEqual((delta("200"), delta("404")), (2, 1))


# ====================================================================== Zz: settings

class ZzSchemaAuthTest(StackConfigCase):

    TOKEN = "schema-token-" + uuid.uuid4().hex

    @classmethod
    def setUpClass(cls):
        cls.reconfigure(API_TOKEN=cls.TOKEN)

    @classmethod
    def tearDownClass(cls):
        cls.restore()

    def bearer(self):
        return {"Authorization": "Bearer " + self.TOKEN}

    def test_catalog_needs_the_bearer_token(self):
        for method, path, status in (("GET", "/schemas", 200),
                                     ("HEAD", "/schemas", 200),
                                     ("GET", "/schemas/order.placed", 200),
                                     ("GET", "/schemas/llm.prompt", 200),
                                     ("GET", "/schemas/no.such.type", 404)):
            with self.subTest(method=method, path=path):
                resp = http(method, path, None, content_type=None)
                self.assertEqual(resp.status_code, 401, resp.content[:200])
                self.assertTrue(resp.headers.get("WWW-Authenticate", "").startswith("Bearer"))
                self.assertNotIn(b"order_id", resp.content)
                resp = http(method, path, None, content_type=None, headers=self.bearer())
                self.assertEqual(resp.status_code, status, resp.content[:200])

    def test_authentication_comes_before_the_schema(self):
        self.refused(ORDER, jdump(order(currency="JPY")), 401, "unauthorized")
        _, doc = self.refused(ORDER, jdump(order(currency="JPY")), 422, "validation_error",
                              headers=self.bearer())
        self.assertEqual(pairs(doc), [("currency", "enum")])


class ZzSchemaReloadTest(SchemaCase):
    """Changes the stack's SCHEMA_DIR and restarts lighttpd (whose workers
    read it when they start); every test puts it back."""

    NAME = "reload.added"

    def setUp(self):
        self.dir = schema_dir()
        if not bbtest.BB_STACK:
            self.skipTest("BB_STACK is needed to restart lighttpd")
        self.path = os.path.join(self.dir, self.NAME + ".json")
        self.addCleanup(self.restore)

    def restore(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
            restart_lighttpd()
        wait_for(healthy, 20, "a healthy stack")

    def write(self, schema):
        with open(self.path, "w") as f:
            f.write(schema if isinstance(schema, str) else json.dumps(schema))
        os.chmod(self.path, 0o644)

    def restart(self):
        restart_lighttpd()

    def listed(self):
        doc = self.assertJSONResponse(get("/schemas"), 200)
        return self.NAME in [e["event_type"] for e in doc["schemas"]]

    SCHEMA = {"title": "Added at run time", "type": "object", "required": ["x"],
              "properties": {"x": {"type": "integer"}}}

    def test_added_schema_is_enforced_and_listed_after_a_restart(self):
        self.write(self.SCHEMA)
        # the running workers read SCHEMA_DIR when they started
        self.publish_envelope("/events/" + self.NAME, b'{}', routing_key=self.NAME)
        self.assertFalse(self.listed())
        self.restart()
        self.assertTrue(self.listed())
        doc = self.refused_by_schema("/events/" + self.NAME, {"x": "1"}, self.NAME)
        self.assertEqual(pairs(doc), [("x", "type")])
        doc = self.refused_by_schema("/events/" + self.NAME, {}, self.NAME)
        self.assertEqual(pairs(doc), [("x", "required")])
        self.publish_envelope("/events/" + self.NAME, b'{"x":1}', routing_key=self.NAME)
        self.assertEqual(json.loads(get("/schemas/" + self.NAME).content), self.SCHEMA)

    def test_removed_schema_is_no_longer_enforced_after_a_restart(self):
        self.write(self.SCHEMA)
        self.restart()
        self.refused_by_schema("/events/" + self.NAME, {}, self.NAME)
        os.unlink(self.path)
        self.restart()
        self.assertFalse(self.listed())
        self.assertError(get("/schemas/" + self.NAME), 404, "not_found")
        self.publish_envelope("/events/" + self.NAME, b'{}', routing_key=self.NAME)

    def test_bad_schema_file_keeps_every_worker_from_starting(self):
        self.write('{"type":"object","properties":{"x":{"type":"string","minLenght":1}}}')
        log = os.path.join(bbtest.BB_STATE_DIR, "lighttpd.out")
        size = os.path.getsize(log) if os.path.exists(log) else 0
        try:
            self.restart()
            serving = True
        except RuntimeError as e:
            # lighttpd 1.4 gives up itself when its first workers exit
            # while it starts ("spawning gw failed"); whether they exit
            # before it looks is a race
            self.assertIn("lighttpd exited during startup", str(e))
            serving = False
        # no worker serves with half of SCHEMA_DIR: nothing answers 200
        with Consumer() as c:
            for path, body in (("/healthz", None), ("/schemas", None),
                               (ORDER, jdump(order()))):
                if not serving:
                    break
                resp = http("POST" if body else "GET", path, body,
                            content_type="application/json" if body else None)
                self.assertGreaterEqual(resp.status_code, 500, (path, resp.content[:200]))
            self.assertNothingPublished(c)
        with open(log, errors="replace") as f:
            f.seek(size)
            text = f.read()
        self.assertIn("event schemas: %s: /properties/x/minLenght: unknown keyword" % self.path,
                      text)


class ZzSchemaMasterReloadTest(PoolCase):
    """The pre-fork master (bloodbank --workers) on a SCHEMA_DIR of its own:
    SIGHUP reloads the schemas; a bad file is refused and the running
    workers stay."""

    WORKERS = 2

    def setUp(self):
        super().setUp()
        self.schemas = os.path.join(self.dir, "schemas")
        os.mkdir(self.schemas)
        with open(os.path.join(self.schemas, "order.placed.json"), "w") as f:
            f.write('{"type":"object","required":["order_id"]}')
        self.env["SCHEMA_DIR"] = self.schemas
        self.port = PORT_BASE + 11
        self.log_path = os.path.join(self.dir, "master.log")
        log = open(self.log_path, "wb")
        self.addCleanup(log.close)
        self.master = subprocess.Popen(
            [os.path.join(REPO, "src", "bloodbank"), "--workers", str(self.WORKERS),
             "--listen", "127.0.0.1:%d" % self.port],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)

        def stop():
            self.master.terminate()
            self.master.wait(20)
        self.addCleanup(stop)
        self.wait_pool(self.port)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def reload(self, expect):
        before = len(self.log())
        self.master.send_signal(signal.SIGHUP)
        wait_for(lambda: expect in self.log()[before:], 30, repr(expect))
        return self.log()[before:]

    def types(self):
        status, body = fcgi_request(self.port, "GET", "/schemas")
        self.assertEqual(status, 200, body[:300])
        return [e["event_type"] for e in json.loads(body)["schemas"]]

    def test_sighup_picks_up_a_new_schema(self):
        self.assertEqual(fcgi_request(self.port, "POST", "/events/user.signup", b'{}')[0], 200)
        with open(os.path.join(self.schemas, "user.signup.json"), "w") as f:
            f.write('{"type":"object","required":["user_id"]}')
        self.reload("reload done")
        self.wait_pool(self.port)
        self.assertIn("user.signup", self.types())
        status, body = fcgi_request(self.port, "POST", "/events/user.signup", b'{}')
        self.assertEqual(status, 422, body)
        self.assertEqual(json.loads(body)["fields"],
                         [{"field": "user_id", "message": "required", "keyword": "required"}])

    def test_sighup_with_a_bad_schema_keeps_the_running_workers(self):
        bad = os.path.join(self.schemas, "user.signup.json")
        with open(bad, "w") as f:
            f.write('{"type":"object","properties":{"x":{"minLenght":1}}}')
        text = self.reload("reload refused")
        self.assertIn("reload refused, keeping the running workers: event schemas: "
                      "%s: /properties/x/minLenght: unknown keyword" % bad, text)
        self.assertNotIn("reload done", text)
        self.wait_pool(self.port)
        # the old workers, with the old schemas
        self.assertEqual(self.types(), TYPED + ["order.placed"])
        self.assertEqual(fcgi_request(self.port, "POST", "/events/user.signup", b'{}')[0], 200)
        self.assertEqual(fcgi_request(self.port, "POST", "/events/order.placed", b'{}')[0], 422)
