"""CloudEvents 1.0 in (CONTRACT §9, issue 17), with the stack's default
ENVELOPE_FORMAT=bloodbank: the structured, binary and batched modes of the
HTTP binding, the 422 answers naming the attribute (§9.1), the 400s, identity
and replay, lineage (causationid, X-Correlation-Ids, Redis, the debug
endpoints), trace context, typed and schema'd types (§4.6, §10), and the
native envelope of a CloudEvent (§9.2). What goes on the bus with
ENVELOPE_FORMAT=cloudevents (§9.3) is the cloudevents step's (tests/cloudevents).

Every refusal is checked on the bus too: nothing may be published for it.
Ids carry a per-run random part, because Redis replays a (source, id) seen
within the idempotency window.

The schema'd type is order.placed of tests/integration/schemas (scripts/test.sh
copies it into the stack's SCHEMA_DIR; without it those tests skip).
"""

import base64
import json
import os
import urllib.parse
import unittest
import uuid

import bbtest
from bbtest import BBTestCase, Consumer, get, post
from test_tracking import correlation_path, record_key, redis

RUN = uuid.uuid4().hex[:12]

EVENTS = "/events"
BATCH = "/events/batch"
CE_JSON = "application/cloudevents+json"
CE_BATCH = "application/cloudevents-batch+json"
SOURCE = "/tests/cloudevents/" + RUN
TYPE = "test.cloudevents"

ENVELOPE_KEYS = {"event_id", "event_type", "timestamp", "version", "source",
                 "correlation_ids", "agent_context", "payload"}
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TS = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
TP2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


def ce_event_id(source, event_id):
    """§9.1: UUIDv5 (OID namespace) of bloodbank/cloudevents LF source LF id."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID,
                          "bloodbank/cloudevents\n%s\n%s" % (source, event_id)))


def new_id():
    return "ce-%s-%s" % (RUN, uuid.uuid4().hex[:12])


def event(**attrs):
    """A valid structured CloudEvent (fresh id, this run's source, JSON data)
    with attrs changed; an attribute given as DROP is left out."""
    doc = {"specversion": "1.0", "id": new_id(), "source": SOURCE, "type": TYPE,
           "data": {"n": uuid.uuid4().hex[:8]}}
    for k, v in attrs.items():
        if v is DROP:
            doc.pop(k, None)
        else:
            doc[k] = v
    return doc


DROP = object()


def structured(doc, headers=None, content_type=CE_JSON):
    body = doc if isinstance(doc, (bytes, str)) else json.dumps(doc)
    return post(EVENTS, body, content_type=content_type, headers=headers)


def binary(attrs, body=b"", content_type="application/json", headers=None):
    """POST /events in binary mode: attrs become ce- headers as given (the
    caller percent-encodes)."""
    h = {"ce-" + k: v for k, v in attrs.items()}
    if headers:
        h.update(headers)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    return post(EVENTS, body, content_type=content_type, headers=h)


def binary_attrs(**attrs):
    a = {"specversion": "1.0", "id": new_id(), "source": SOURCE, "type": TYPE}
    for k, v in attrs.items():
        if v is DROP:
            a.pop(k, None)
        else:
            a[k] = v
    return a


def batch(items, headers=None, content_type=CE_BATCH):
    body = items if isinstance(items, (bytes, str)) else json.dumps(items)
    return post(BATCH, body, content_type=content_type, headers=headers)


def uuids(n):
    return [str(uuid.uuid4()) for _ in range(n)]


class CECase(BBTestCase):

    def published(self, send):
        """Calls send() with a consumer bound; the answer must be 200 and exactly
        one message, byte for byte the answer, must arrive. Returns
        (envelope, method, properties, response)."""
        with Consumer() as c:
            resp = send()
            env = self.assertJSONResponse(resp, 200)
            msgs = c.receive(1)
            msgs += c.drain()
        self.assertEqual(len(msgs), 1, "expected exactly one message, got %d" % len(msgs))
        method, props, body = msgs[0]
        self.assertEqual(body, resp.content, "the message is not the answer")
        self.assertEqual(method.exchange, bbtest.BB_EXCHANGE)
        self.assertEqual(method.routing_key, env["event_type"])
        self.assertEqual(props.message_id, env["event_id"])
        return env, method, props, resp

    def publish_structured(self, doc, headers=None):
        return self.published(lambda: structured(doc, headers=headers))[0]

    def refused(self, send, status, code, field=None):
        """send() is answered status/code (422: with field named in fields) and
        nothing is published."""
        with Consumer() as c:
            resp = send()
            doc = self.assertError(resp, status, code)
            self.assertNothingPublished(c)
        if field is not None:
            self.assertFieldReported(doc, field)
        return doc

    def invalid(self, doc, field, headers=None):
        """A structured event that is 422 validation_error naming field."""
        return self.refused(lambda: structured(doc, headers=headers), 422,
                            "validation_error", field)

    def assertFieldReported(self, doc, field):
        fields = doc.get("fields")
        self.assertIsInstance(fields, list, doc)
        self.assertTrue(all(isinstance(f, dict) and isinstance(f.get("message"), str)
                            for f in fields), doc)
        self.assertIn(field, [f.get("field") for f in fields], doc)


# ====================================================================== structured

class StructuredModeTest(CECase):

    def test_structured_event_is_published_as_a_native_envelope(self):
        doc = event(data={"hello": "world", "n": [1, 2]})
        env = self.publish_structured(doc)
        self.assertEqual(set(env), ENVELOPE_KEYS, env)
        self.assertEqual(env["event_type"], TYPE)
        self.assertEqual(env["payload"], {"hello": "world", "n": [1, 2]})
        self.assertEqual(env["version"], "2.0.0")
        self.assertRegex(env["timestamp"], bbtest.TIMESTAMP_RE)
        self.assertEqual(env["correlation_ids"], [])
        self.assertIsNone(env["agent_context"])

    def test_structured_message_properties_are_those_of_section_6(self):
        _, method, props, _ = self.published(lambda: structured(event()))
        self.assertEqual(props.content_type, "application/json")
        self.assertEqual(props.delivery_mode, 2)
        self.assertEqual(props.type, TYPE)
        self.assertEqual(props.app_id, "bloodbank")
        self.assertEqual(method.routing_key, TYPE)

    def test_structured_content_type_with_charset_is_accepted(self):
        # what the CloudEvents SDKs send
        doc = event()
        env, _, _, _ = self.published(lambda: structured(
            doc, content_type=CE_JSON + "; charset=utf-8"))
        self.assertEqual(env["event_id"], ce_event_id(SOURCE, doc["id"]))

    def test_structured_event_without_data_has_a_null_payload(self):
        env = self.publish_structured(event(data=DROP))
        self.assertIsNone(env["payload"])

    def test_structured_json_suffix_datacontenttype_is_json_data(self):
        env = self.publish_structured(event(datacontenttype="application/vnd.example+json",
                                            data={"k": 1}))
        self.assertEqual(env["payload"], {"k": 1})

    def test_null_attributes_are_treated_as_absent(self):
        # JSON format 1.0.2 §2.2: "When decoding attributes and a null value is
        # encountered, it MUST be treated as the equivalent of unset or omitted"
        # (its own example event C has "subject": null)
        doc = event(subject=None, unsetextension=None)
        env = self.publish_structured(doc)
        self.assertEqual(env["source"]["meta"], {"id": doc["id"]})

    def test_structured_body_that_is_not_an_object_is_refused(self):
        for body in (b"[]", b'"x"', b"42"):
            with self.subTest(body=body):
                self.refused(lambda: structured(body), 422, "validation_error")

    def test_structured_body_that_is_not_json_is_400(self):
        self.refused(lambda: structured(b'{"specversion":"1.0",'), 400, "invalid_json")


# ====================================================================== §9.2

class NativeEnvelopeTest(CECase):

    def test_source_is_type_cloudevents_with_the_event_source_as_app(self):
        src = "https://example.com/producers/" + RUN + "?a=b&c=%22"
        env = self.publish_structured(event(source=src))
        self.assertEqual(env["source"]["host"], "127.0.0.1")
        self.assertEqual(env["source"]["type"], "cloudevents")
        self.assertEqual(env["source"]["app"], src)

    def test_meta_holds_id_subject_time_dataschema_and_every_extension(self):
        doc = event(subject="larger-context", time="2018-04-05T17:31:00Z",
                    dataschema="https://example.com/schemas/v1", datacontenttype="application/json",
                    comexampleextension1="value", comexampleothervalue=5, flag=True,
                    correlationid="conv-" + RUN)
        env = self.publish_structured(doc)
        self.assertEqual(env["source"]["meta"], {
            "id": doc["id"], "subject": "larger-context", "time": "2018-04-05T17:31:00Z",
            "dataschema": "https://example.com/schemas/v1", "comexampleextension1": "value",
            "comexampleothervalue": 5, "flag": True, "correlationid": "conv-" + RUN})

    def test_meta_holds_only_the_attributes_present(self):
        doc = event()
        env = self.publish_structured(doc)
        self.assertEqual(env["source"]["meta"], {"id": doc["id"]})

    def test_payload_is_the_data_as_sent(self):
        data = {"z": 1, "a": {"nested": [True, None, 1.5, "caf\u00e9"]}, "unicode": "\u2713"}
        env = self.publish_structured(event(data=data))
        self.assertEqual(env["payload"], data)

    def test_structured_non_json_data_is_415_in_the_bloodbank_format(self):
        self.refused(lambda: structured(event(datacontenttype="text/plain", data="hello")),
                     415, "unsupported_media_type")

    def test_structured_data_base64_is_415_in_the_bloodbank_format(self):
        doc = event(data=DROP, datacontenttype="application/octet-stream",
                    data_base64=base64.b64encode(b"\x00\x01binary").decode())
        self.refused(lambda: structured(doc), 415, "unsupported_media_type")

    def test_binary_text_body_is_415_in_the_bloodbank_format(self):
        self.refused(lambda: binary(binary_attrs(), b"plain text", content_type="text/plain"),
                     415, "unsupported_media_type")


# ====================================================================== binary

class BinaryModeTest(CECase):

    def test_binary_event_is_published_with_the_body_as_data(self):
        attrs = binary_attrs()
        env, _, _, _ = self.published(lambda: binary(attrs, {"from": "body", "n": 1}))
        self.assertEqual(set(env), ENVELOPE_KEYS, env)
        self.assertEqual(env["event_id"], ce_event_id(SOURCE, attrs["id"]))
        self.assertEqual(env["event_type"], TYPE)
        self.assertEqual(env["payload"], {"from": "body", "n": 1})
        self.assertEqual(env["source"]["type"], "cloudevents")
        self.assertEqual(env["source"]["app"], SOURCE)
        self.assertEqual(env["source"]["meta"], {"id": attrs["id"]})

    def test_binary_json_string_body_is_a_json_string_payload(self):
        # JSON format 1.0.2 §3.2, the last example: content-type application/json
        # and a quoted body
        env, _, _, _ = self.published(lambda: binary(binary_attrs(), b'"I\'m just a string"'))
        self.assertEqual(env["payload"], "I'm just a string")

    def test_binary_header_values_are_percent_decoded(self):
        # HTTP binding 1.0.2 §3.1.3.2
        attrs = binary_attrs(subject="caf%C3%A9%20au%20lait",
                             myext="a%2Cb%25c%22d%20e")
        env, _, _, _ = self.published(lambda: binary(attrs, {"k": "v"}))
        meta = env["source"]["meta"]
        self.assertEqual(meta.get("subject"), "caf\u00e9 au lait", meta)
        self.assertEqual(meta.get("myext"), 'a,b%c"d e', meta)

    def test_binary_percent_encoded_source_and_id_are_decoded_before_identity(self):
        # the source decodes to a URI-reference ("%2F" to "/"); the id may
        # be any string
        raw_id = "id with space \u00e9 " + RUN + uuid.uuid4().hex[:6]
        attrs = binary_attrs(id=urllib.parse.quote(raw_id, safe=""),
                             source=SOURCE + "%2Fsub")
        env, _, _, _ = self.published(lambda: binary(attrs, {}))
        self.assertEqual(env["event_id"], ce_event_id(SOURCE + "/sub", raw_id))
        self.assertEqual(env["source"]["app"], SOURCE + "/sub")
        self.assertEqual(env["source"]["meta"]["id"], raw_id)

    def test_binary_header_names_are_case_insensitive(self):
        attrs = {"SpecVersion": "1.0", "ID": new_id(), "Source": SOURCE, "TYPE": TYPE,
                 "MyExt": "x"}
        env, _, _, _ = self.published(lambda: binary(attrs, {}))
        self.assertEqual(env["event_id"], ce_event_id(SOURCE, attrs["ID"]))
        self.assertEqual(env["source"]["meta"].get("myext"), "x", env)

    def test_binary_event_without_body_has_a_null_payload(self):
        env, _, _, _ = self.published(lambda: binary(binary_attrs(), b"", content_type=None))
        self.assertIsNone(env["payload"])

    def test_binary_body_that_is_not_json_is_400(self):
        self.refused(lambda: binary(binary_attrs(), b"{not json"), 400, "invalid_json")

    def test_bad_percent_encoding_is_400(self):
        for value in ("100%", "%zz", "%4", "a%G1"):
            with self.subTest(value=value):
                self.refused(lambda: binary(binary_attrs(subject=value), {}), 400,
                             "invalid_request")

    def test_percent_encoded_bytes_that_are_not_utf8_are_400(self):
        for value in ("%FF", "%C3", "%C0%AF", "%ED%A0%80"):
            with self.subTest(value=value):
                self.refused(lambda: binary(binary_attrs(subject=value), {}), 400,
                             "invalid_request")

    def test_raw_header_bytes_that_are_not_utf8_are_400(self):
        self.refused(lambda: binary(binary_attrs(subject=b"caf\xe9"), {}), 400,
                     "invalid_request")

    def test_percent_encoded_control_character_is_422(self):
        for attr, value in (("id", "a%0Ab"), ("source", "/s%00x"), ("subject", "x%7Fy")):
            with self.subTest(attr=attr):
                self.refused(lambda: binary(binary_attrs(**{attr: value}), {}), 422,
                             "validation_error", attr)

    def test_ce_datacontenttype_header_is_422(self):
        self.refused(lambda: binary(binary_attrs(datacontenttype="application/json"), {}),
                     422, "validation_error", "datacontenttype")

    def test_binary_missing_id_is_422(self):
        self.refused(lambda: binary(binary_attrs(id=DROP), {}), 422, "validation_error", "id")

    def test_binary_wrong_specversion_is_422(self):
        self.refused(lambda: binary(binary_attrs(specversion="0.3"), {}), 422,
                     "validation_error", "specversion")

    def test_binary_value_over_4096_bytes_is_422(self):
        # raw: percent-encoded, 4097 bytes would exceed lighttpd's 8 KiB header limit
        self.refused(lambda: binary(binary_attrs(subject="x" * 4097), {}), 422,
                     "validation_error", "subject")

    def test_binary_more_than_32_extensions_is_422(self):
        attrs = binary_attrs(**{"ext%d" % k: "v" for k in range(33)})
        doc = self.refused(lambda: binary(attrs, {}), 422, "validation_error")
        self.assertTrue(any(f.get("field", "").startswith("ext") for f in doc["fields"]), doc)

    def test_idempotency_key_on_a_binary_event_is_400(self):
        self.refused(lambda: binary(binary_attrs(), {}, headers={"Idempotency-Key": "k-" + RUN}),
                     400, "invalid_request")

    def test_many_ce_headers_without_ce_specversion_are_no_cloudevent(self):
        # §9.1: binary mode is a request with a ce-specversion header
        headers = {"ce-x%d" % k: "v" for k in range(49)}
        env, _, _, _ = self.published(lambda: post(
            EVENTS, json.dumps({"event_type": TYPE, "payload": {"native": True}}),
            headers=headers))
        self.assertEqual(env["source"]["type"], "manual", env)

    def test_ce_headers_on_a_json_post_to_a_typed_route_are_ignored(self):
        # binary mode is POST /events only; a typed route stays itself
        with Consumer() as c:
            resp = post("/events/llm/prompt", b'{"prompt":"p"}',
                        headers={"ce-specversion": "1.0", "ce-id": new_id()})
            env = self.assertJSONResponse(resp, 200)
            self.assertEqual(len(c.receive(1)), 1)
        self.assertEqual(env["source"]["type"], "manual")


# ====================================================================== §9.1 validation

class ValidationTest(CECase):

    def test_missing_specversion_is_422(self):
        self.invalid(event(specversion=DROP), "specversion")

    def test_wrong_specversion_is_422(self):
        for value in ("0.3", "1", "1.0 ", 1.0):
            with self.subTest(specversion=value):
                self.invalid(event(specversion=value), "specversion")

    def test_missing_id_is_422(self):
        self.invalid(event(id=DROP), "id")

    def test_missing_source_is_422(self):
        self.invalid(event(source=DROP), "source")

    def test_missing_type_is_422(self):
        self.invalid(event(type=DROP), "type")

    def test_empty_id_source_or_type_is_422(self):
        for attr in ("id", "source", "type"):
            with self.subTest(attr=attr):
                self.invalid(event(**{attr: ""}), attr)

    def test_required_attribute_that_is_not_a_string_is_422(self):
        for attr, value in (("id", 5), ("source", True), ("type", {"a": 1})):
            with self.subTest(attr=attr):
                self.invalid(event(**{attr: value}), attr)

    def test_every_missing_required_attribute_is_named(self):
        doc = self.refused(lambda: structured({"data": {}}), 422, "validation_error")
        named = {f.get("field") for f in doc.get("fields", [])}
        self.assertTrue({"specversion", "id", "source", "type"} <= named, doc)

    def test_control_character_in_id_is_422(self):
        for ch in ("\x00", "\n", "\x1f", "\x7f"):
            with self.subTest(char=ch):
                self.invalid(event(id="a%sb" % ch), "id")

    def test_control_character_in_source_is_422(self):
        self.invalid(event(source="/s\tx"), "source")

    def test_control_character_in_any_string_attribute_is_422(self):
        for attr in ("subject", "datacontenttype", "myext", "correlationid"):
            with self.subTest(attr=attr):
                self.invalid(event(**{attr: "a\x01b"}), attr)

    def test_time_that_is_not_rfc3339_is_422(self):
        for value in ("2024-13-01T00:00:00Z", "2024-05-01 12:00:00", "yesterday",
                      "2024-05-01T12:00:00", ""):
            with self.subTest(time=value):
                self.invalid(event(time=value), "time")

    def test_rfc3339_times_are_accepted(self):
        for value in ("2018-04-05T17:31:00Z", "2024-05-01T12:30:00.123456+02:00"):
            with self.subTest(time=value):
                env = self.publish_structured(event(time=value))
                self.assertEqual(env["source"]["meta"]["time"], value)

    def test_dataschema_that_is_not_an_absolute_uri_is_422(self):
        for value in ("/relative/schema", "not a uri", ""):
            with self.subTest(dataschema=value):
                self.invalid(event(dataschema=value), "dataschema")

    def test_type_that_is_not_an_event_type_is_422(self):
        for value in ("com.Example.Event", "a..b", "a b", ".a", "x" * 256):
            with self.subTest(type=value):
                self.invalid(event(type=value), "type")

    def test_data_and_data_base64_together_is_422(self):
        self.invalid(event(data={"a": 1}, data_base64="aGk="), "data")

    def test_data_base64_that_is_not_base64_is_422(self):
        # RFC 4648 §4: "=" pads the end only
        for value in ("!!!!", "aGk", 42, "aG=k", "====", "a===", "aGk=aGk="):
            with self.subTest(data_base64=value):
                self.invalid(event(data=DROP, datacontenttype="application/octet-stream",
                                   data_base64=value), "data_base64")

    def test_extension_name_outside_a_z_0_9_is_422(self):
        for name in ("myExt", "my_ext", "my-ext", "x" * 21, "\u00e9t\u00e9"):
            with self.subTest(name=name):
                self.invalid(event(**{name: "v"}), name)

    def test_extension_name_of_20_characters_is_accepted(self):
        env = self.publish_structured(event(**{"a" * 20: "v"}))
        self.assertEqual(env["source"]["meta"].get("a" * 20), "v")

    def test_extension_value_that_is_not_string_number_or_boolean_is_422(self):
        for value in ({"a": 1}, [1, 2]):
            with self.subTest(value=value):
                self.invalid(event(myext=value), "myext")

    def test_number_and_boolean_extensions_are_kept(self):
        env = self.publish_structured(event(count=42, negative=-7, flag=False))
        meta = env["source"]["meta"]
        self.assertEqual((meta.get("count"), meta.get("negative"), meta.get("flag")),
                         (42, -7, False), meta)

    def test_more_than_32_extensions_is_422(self):
        doc = event(**{"ext%d" % k: "v" for k in range(33)})
        doc_ = self.refused(lambda: structured(doc), 422, "validation_error")
        self.assertTrue(any(f.get("field", "").startswith("ext") for f in doc_["fields"]),
                        doc_)

    def test_32_extensions_are_accepted(self):
        env = self.publish_structured(event(**{"ext%d" % k: "v" for k in range(32)}))
        self.assertEqual(len(env["source"]["meta"]), 33)  # and the id

    def test_value_over_4096_bytes_is_422(self):
        for attr in ("subject", "myext", "id"):
            with self.subTest(attr=attr):
                self.invalid(event(**{attr: "x" * 4097}), attr)

    def test_value_of_4096_bytes_is_accepted(self):
        env = self.publish_structured(event(subject="\u00e9" * 2048))
        self.assertEqual(env["source"]["meta"]["subject"], "\u00e9" * 2048)

    def test_bloodbankid_extension_is_422(self):
        self.invalid(event(bloodbankid=str(uuid.uuid4())), "bloodbankid")

    def test_malformed_causationid_is_422(self):
        for value in ("not-a-uuid", str(uuid.uuid4()) + ",x", ",".join(uuids(33)),
                      str(uuid.uuid4())[:-1], 7):
            with self.subTest(causationid=value):
                self.invalid(event(causationid=value), "causationid")

    def test_causationid_of_32_uuids_is_accepted(self):
        ids = uuids(32)
        env = self.publish_structured(event(causationid=",".join(ids)))
        self.assertEqual(env["correlation_ids"], ids)

    def test_idempotency_key_on_a_structured_event_is_400(self):
        self.refused(lambda: structured(event(), headers={"Idempotency-Key": "k-" + RUN}),
                     400, "invalid_request")

    def test_malformed_x_correlation_ids_is_400(self):
        self.refused(lambda: structured(event(), headers={"X-Correlation-Ids": "nope"}),
                     400, "invalid_request")

    def test_duplicate_member_is_400(self):
        body = ('{"specversion":"1.0","id":"%s","id":"%s","source":"%s","type":"%s"}'
                % (new_id(), new_id(), SOURCE, TYPE))
        self.refused(lambda: structured(body), 400, "invalid_json")


# ====================================================================== identity

class IdentityTest(CECase):

    def test_event_id_is_uuid5_over_source_and_id(self):
        doc = event()
        env = self.publish_structured(doc)
        self.assertEqual(env["event_id"], ce_event_id(SOURCE, doc["id"]))
        # uuid.uuid5 is RFC 4122 §4.3: version 5
        self.assertEqual(uuid.UUID(env["event_id"]).version, 5)

    def test_same_id_from_another_source_is_another_event(self):
        eid = new_id()
        a = self.publish_structured(event(id=eid, source=SOURCE + "/a"))
        b = self.publish_structured(event(id=eid, source=SOURCE + "/b"))
        self.assertNotEqual(a["event_id"], b["event_id"])
        self.assertEqual(b["event_id"], ce_event_id(SOURCE + "/b", eid))

    def test_retry_replays_the_original_answer_and_publishes_nothing(self):
        doc = event()
        first = self.published(lambda: structured(doc))[3]
        self.assertNotIn("Idempotent-Replayed", first.headers)
        with Consumer() as c:
            again = structured(doc)
            self.assertJSONResponse(again, 200)
            self.assertNothingPublished(c)
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true", again.headers)
        self.assertEqual(again.content, first.content)

    def test_binary_retry_replays(self):
        attrs = binary_attrs(subject="s")
        first = self.published(lambda: binary(attrs, {"k": 1}))[3]
        with Consumer() as c:
            again = binary(attrs, {"k": 1})
            self.assertJSONResponse(again, 200)
            self.assertNothingPublished(c)
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
        self.assertEqual(again.content, first.content)

    def test_retry_with_other_data_is_422_and_publishes_nothing(self):
        doc = event(data={"v": 1})
        self.publish_structured(doc)
        self.refused(lambda: structured(dict(doc, data={"v": 2})), 422, "validation_error")

    def test_retry_with_other_attributes_is_422_and_publishes_nothing(self):
        doc = event(subject="one")
        self.publish_structured(doc)
        self.refused(lambda: structured(dict(doc, subject="two")), 422, "validation_error")

    def test_retry_with_another_type_is_422(self):
        doc = event()
        self.publish_structured(doc)
        self.refused(lambda: structured(dict(doc, type=TYPE + ".other")), 422,
                     "validation_error")

    def test_retry_with_members_in_another_order_replays(self):
        # the same CloudEvent: JSON member order carries no meaning (RFC 8259
        # §4), and event.c's fingerprint says "whichever mode or key order"
        doc = event(subject="s", myext="x", datacontenttype="application/json")
        first = self.published(lambda: structured(doc))[3]
        reordered = dict(reversed(list(doc.items())))
        self.assertNotEqual(json.dumps(reordered), json.dumps(doc))
        with Consumer() as c:
            again = structured(reordered)
            self.assertJSONResponse(again, 200)
            self.assertNothingPublished(c)
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
        self.assertEqual(again.content, first.content)

    def test_same_event_in_binary_mode_after_structured_mode_replays(self):
        # a producer (or a broker such as Knative) retrying the same event in
        # the other content mode of the HTTP binding
        doc = event(datacontenttype="application/json", subject="s", data={"k": 1})
        first = self.published(lambda: structured(doc))[3]
        attrs = {k: doc[k] for k in ("specversion", "id", "source", "type", "subject")}
        with Consumer() as c:
            again = binary(attrs, {"k": 1}, content_type="application/json")
            self.assertJSONResponse(again, 200)
            self.assertNothingPublished(c)
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
        self.assertEqual(again.content, first.content)


# ====================================================================== batched

class BatchedModeTest(CECase):

    def send_batch(self, items, status, headers=None):
        with Consumer() as c:
            resp = batch(items, headers=headers)
            doc = self.assertJSONResponse(resp, status)
            msgs = c.drain(wait=0.5)
        return doc, msgs

    def test_batch_of_cloudevents_is_200_with_ids_in_order(self):
        items = [event(data={"i": k}) for k in range(4)]
        doc, msgs = self.send_batch(items, 200)
        self.assertEqual((doc["published"], doc["failed"]), (4, 0), doc)
        want = [ce_event_id(SOURCE, it["id"]) for it in items]
        self.assertEqual([r.get("status") for r in doc["results"]], [200] * 4, doc)
        self.assertEqual([r.get("event_id") for r in doc["results"]], want)
        self.assertEqual([m[1].message_id for m in msgs], want)
        envs = [json.loads(m[2]) for m in msgs]
        self.assertEqual([e["payload"] for e in envs], [{"i": k} for k in range(4)])
        self.assertTrue(all(e["source"]["type"] == "cloudevents" for e in envs))

    def test_mixed_batch_is_207_with_per_item_answers(self):
        good1, good2 = event(), event()
        items = [good1, event(id=DROP), good2, event(time="never"), "not an object"]
        doc, msgs = self.send_batch(items, 207)
        self.assertEqual((doc["published"], doc["failed"]), (2, 3), doc)
        r = doc["results"]
        self.assertEqual([x.get("status") for x in r], [200, 422, 200, 422, 422], doc)
        self.assertEqual(r[0].get("event_id"), ce_event_id(SOURCE, good1["id"]))
        self.assertEqual(r[2].get("event_id"), ce_event_id(SOURCE, good2["id"]))
        self.assertIn("id", [f.get("field") for f in r[1].get("fields", [])], r[1])
        self.assertIn("time", [f.get("field") for f in r[3].get("fields", [])], r[3])
        self.assertEqual(r[1].get("error"), "validation_error")
        self.assertEqual(sorted(m[1].message_id for m in msgs),
                         sorted([r[0]["event_id"], r[2]["event_id"]]))

    def test_every_item_invalid_is_207_and_nothing_is_published(self):
        doc, msgs = self.send_batch([event(type=DROP), event(specversion="2.0")], 207)
        self.assertEqual([x.get("status") for x in doc["results"]], [422, 422], doc)
        self.assertEqual(msgs, [])

    def test_same_source_and_id_twice_in_a_batch_the_later_is_422(self):
        first = event()
        later = dict(first, data={"other": True})
        doc, msgs = self.send_batch([first, later], 207)
        self.assertEqual([x.get("status") for x in doc["results"]], [200, 422], doc)
        self.assertEqual(doc["results"][1].get("error"), "validation_error")
        self.assertEqual([m[1].message_id for m in msgs], [ce_event_id(SOURCE, first["id"])])

    def test_batch_item_already_published_is_replayed(self):
        doc0 = event()
        self.publish_structured(doc0)
        fresh = event()
        doc, msgs = self.send_batch([doc0, fresh], 200)
        self.assertEqual(doc["results"][0].get("replayed"), True, doc)
        self.assertEqual(doc["results"][0].get("event_id"), ce_event_id(SOURCE, doc0["id"]))
        self.assertEqual([m[1].message_id for m in msgs], [ce_event_id(SOURCE, fresh["id"])])

    def test_batch_items_may_name_earlier_items_as_causes(self):
        parent = event()
        child = event(causationid=ce_event_id(SOURCE, parent["id"]))
        doc, msgs = self.send_batch([parent, child], 200)
        envs = [json.loads(m[2]) for m in msgs]
        self.assertEqual(envs[1]["correlation_ids"], [doc["results"][0]["event_id"]])

    def test_batch_item_with_non_json_data_is_415_per_item(self):
        doc, msgs = self.send_batch([event(datacontenttype="text/plain", data="t"), event()],
                                    207)
        self.assertEqual([x.get("status") for x in doc["results"]], [415, 200], doc)
        self.assertEqual(len(msgs), 1)

    def test_cloudevents_batch_that_is_not_an_array_is_400(self):
        self.refused(lambda: batch(event()), 400, "invalid_request")

    def test_empty_cloudevents_batch_is_422(self):
        self.refused(lambda: batch([]), 422, "validation_error")

    def test_idempotency_key_on_a_cloudevents_batch_is_400(self):
        self.refused(lambda: batch([event()], headers={"Idempotency-Key": "k-" + RUN}), 400,
                     "invalid_request")

    def test_cloudevents_batch_media_type_on_post_events_is_415(self):
        self.refused(lambda: structured(event(), content_type=CE_BATCH), 415,
                     "unsupported_media_type")


# ====================================================================== lineage

class LineageTest(CECase):

    def parent(self):
        return self.assertJSONResponse(post("/events/test.cloudevents.parent",
                                            json.dumps({"p": RUN})), 200)["event_id"]

    def test_causationid_is_the_parent_and_the_amqp_correlation_id(self):
        p = self.parent()
        env, _, props, _ = self.published(lambda: structured(event(causationid=p)))
        self.assertEqual(env["correlation_ids"], [p])
        self.assertEqual(props.correlation_id, p)

    def test_several_causationids_are_parents_in_order(self):
        ids = [self.parent(), self.parent(), str(uuid.uuid4()).upper()]
        env = self.publish_structured(event(causationid=" , ".join(ids)))
        self.assertEqual(env["correlation_ids"], [i.lower() for i in ids])

    def test_binary_causationid_header_is_the_parent(self):
        p = self.parent()
        env, _, _, _ = self.published(lambda: binary(binary_attrs(causationid=p), {}))
        self.assertEqual(env["correlation_ids"], [p])

    def test_causationid_is_recorded_in_redis(self):
        p = self.parent()
        env = self.publish_structured(event(causationid=p))
        with redis() as r:
            value = r.call("GET", record_key(env["event_id"]))
            self.assertIsNotNone(value, "no record of the CloudEvent")
            self.assertIn(uuid.UUID(p).bytes, value)
            self.assertIn(b"C" + uuid.UUID(env["event_id"]).bytes,
                          r.call("GET", record_key(p)) or b"")

    def test_debug_endpoint_lists_the_cloudevent_as_child_of_its_cause(self):
        p = self.parent()
        env = self.publish_structured(event(causationid=p))
        up = self.assertJSONResponse(get(correlation_path(p)), 200)
        self.assertIn(env["event_id"], up["children"], up)
        down = self.assertJSONResponse(get(correlation_path(env["event_id"])), 200)
        self.assertEqual(down["parents"], [p], down)
        self.assertEqual(down["metadata"]["event_type"], TYPE, down)

    def test_x_correlation_ids_header_also_applies(self):
        p1, p2 = self.parent(), self.parent()
        env = self.publish_structured(event(causationid=p1),
                                      headers={"X-Correlation-Ids": p2})
        self.assertEqual(sorted(env["correlation_ids"]), sorted([p1, p2]))

    def test_correlationid_is_kept_as_an_extension_not_a_parent(self):
        conv = str(uuid.uuid4())
        env = self.publish_structured(event(correlationid=conv))
        self.assertEqual(env["correlation_ids"], [])
        self.assertEqual(env["source"]["meta"].get("correlationid"), conv)


# ====================================================================== trace context

class TraceContextTest(CECase):

    def test_trace_extensions_are_the_trace_context_in_envelope_and_amqp_headers(self):
        env, _, props, _ = self.published(lambda: structured(event(traceparent=TP,
                                                                   tracestate=TS)))
        self.assertEqual(env.get("traceparent"), TP)
        self.assertEqual(env.get("tracestate"), TS)
        self.assertEqual((props.headers or {}).get("traceparent"), TP, props.headers)
        self.assertEqual((props.headers or {}).get("tracestate"), TS, props.headers)

    def test_binary_trace_extension_headers_are_the_trace_context(self):
        attrs = binary_attrs(traceparent=TP, tracestate=urllib.parse.quote(TS, safe=""))
        env, _, props, _ = self.published(lambda: binary(attrs, {}))
        self.assertEqual((props.headers or {}).get("traceparent"), TP, props.headers)
        self.assertEqual((props.headers or {}).get("tracestate"), TS, props.headers)
        self.assertEqual(env.get("tracestate"), TS)

    def test_trace_headers_apply_without_trace_extensions(self):
        env, _, props, _ = self.published(lambda: structured(
            event(), headers={"traceparent": TP, "tracestate": TS}))
        self.assertEqual((props.headers or {}).get("traceparent"), TP, props.headers)
        self.assertEqual(env.get("tracestate"), TS)

    def test_trace_extension_wins_over_the_header(self):
        env, _, props, _ = self.published(lambda: structured(
            event(traceparent=TP), headers={"traceparent": TP2}))
        self.assertEqual((props.headers or {}).get("traceparent"), TP, props.headers)
        self.assertEqual(env.get("traceparent"), TP)

    def test_no_trace_context_without_extensions_or_headers(self):
        env, _, props, _ = self.published(lambda: structured(event()))
        self.assertNotIn("traceparent", props.headers or {})
        self.assertNotIn("traceparent", env)

    def test_traceparent_extension_that_is_not_printable_ascii_is_422(self):
        self.invalid(event(traceparent="00-\u00e9"), "traceparent")


# ====================================================================== typed and schema'd types

def order_data(**changes):
    doc = {"order_id": "ORD-000123", "customer": {"email": "ada@example.com"},
           "items": [{"sku": "ABC-1234", "qty": 2}], "placed_at": "2024-05-01T12:30:00Z",
           "currency": "EUR"}
    doc.update(changes)
    return doc


def has_schema(event_type):
    d = os.environ.get("SCHEMA_DIR", "")
    if not d and bbtest.BB_STATE_DIR:
        try:
            with open(os.path.join(bbtest.BB_STATE_DIR, "bloodbank.env")) as f:
                for line in f:
                    if line.startswith("export SCHEMA_DIR="):
                        d = line.split("=", 1)[1].strip().strip("'\"")
        except OSError:
            pass
    return bool(d) and os.path.exists(os.path.join(d, event_type + ".json"))


class TypedDataTest(CECase):

    def test_typed_type_data_is_validated_like_its_endpoint(self):
        doc = self.invalid(event(type="llm.prompt", data={"model": "gpt-4"}), "prompt")
        self.assertEqual(doc["error"], "validation_error")

    def test_typed_type_data_is_filled_like_its_endpoint(self):
        env = self.publish_structured(event(type="llm.prompt",
                                            data={"prompt": "hi", "temperature": 0.7}))
        self.assertEqual(env["event_type"], "llm.prompt")
        self.assertEqual(env["payload"]["prompt"], "hi")
        self.assertEqual(env["payload"]["temperature"], 0.7)
        self.assertEqual(env["payload"]["tags"], [])
        self.assertIsNone(env["payload"]["model"])

    def test_typed_type_in_binary_mode_validates_the_body(self):
        self.refused(lambda: binary(binary_attrs(type="llm.prompt"), {"prompt": 5}), 422,
                     "validation_error", "prompt")

    def test_typed_type_without_data_is_422_naming_data(self):
        self.invalid(event(type="llm.prompt", data=DROP), "data")

    def test_typed_type_with_non_json_data_is_415(self):
        self.refused(lambda: binary(binary_attrs(type="llm.prompt"), b"prompt: hi",
                                    content_type="text/plain"),
                     415, "unsupported_media_type")

    def test_llm_response_prompt_id_and_causationid_are_both_parents(self):
        p1, p2 = str(uuid.uuid4()), str(uuid.uuid4())
        env = self.publish_structured(event(type="llm.response", causationid=p2,
                                            data={"response": "r", "prompt_id": p1}))
        self.assertEqual(sorted(env["correlation_ids"]), sorted([p1, p2]))


class SchemaDataTest(CECase):

    def setUp(self):
        if not has_schema("order.placed"):
            raise unittest.SkipTest("the stack's SCHEMA_DIR has no order.placed.json")

    def test_schema_type_valid_data_is_published(self):
        env = self.publish_structured(event(type="order.placed", data=order_data()))
        self.assertEqual(env["payload"], order_data())

    def test_schema_type_data_is_validated(self):
        doc = self.invalid(event(type="order.placed", data=order_data(currency="JPY")),
                           "currency")
        self.assertEqual([f.get("keyword") for f in doc["fields"]
                          if f.get("field") == "currency"], ["enum"], doc)

    def test_schema_type_in_binary_mode_validates_the_body(self):
        self.refused(lambda: binary(binary_attrs(type="order.placed"),
                                    order_data(items=[])),
                     422, "validation_error", "items")

    def test_schema_type_with_non_json_data_is_415(self):
        self.refused(lambda: binary(binary_attrs(type="order.placed"), b"<order/>",
                                    content_type="application/xml"),
                     415, "unsupported_media_type")

    def test_schema_type_structured_data_base64_is_415(self):
        doc = event(type="order.placed", data=DROP,
                    data_base64=base64.b64encode(json.dumps(order_data()).encode()).decode())
        self.refused(lambda: structured(doc), 415, "unsupported_media_type")

    def test_schema_type_without_data_is_422_naming_data(self):
        self.invalid(event(type="order.placed", data=DROP), "data")
