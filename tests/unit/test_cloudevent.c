#include <string.h>

#include "cloudevent.h"
#include "event.h"
#include "tests.h"

static const struct timespec now = { 1795728531, 123456000 };

/* A request as the web server hands it over: POST /events with the given
 * content type and "NAME=value" ce- headers (NULL-terminated). */
static void
request(struct bb_request *req, const char *content_type,
    const char *const *ce)
{
	memset(req, 0, sizeof(*req));
	req->method = "POST";
	strcpy(req->path, "/events");
	req->query = "";
	req->remote_addr = "192.0.2.7";
	req->content_type = content_type;
	for (; ce && *ce; ce++) {
		if (strncmp(*ce, "SPECVERSION=", 12) == 0)
			req->ce_specversion = true;
		req->ce[req->nce].name = *ce;
		req->ce[req->nce].value = strchr(*ce, '=') + 1;
		req->nce++;
	}
}

/* Builds body as POST /events; returns the status (200 when built) and
 * leaves the document or the error in out. */
static int
build(const struct bb_request *req, const char *body, bool cloudevents_out,
    struct bb_buf *out)
{
	struct bb_event ev;
	struct bb_response resp;
	int status;

	bb_event_init(&ev);
	bb_response_init(&resp);
	bb_buf_init(out);
	ev.cloudevents_out = cloudevents_out;
	if (bb_event_build(&ev, BB_ROUTE_EVENTS, NULL, 0, req, body,
	    strlen(body), &now, &resp) == 0) {
		status = 200;
		bb_buf_append(out, ev.json.data, ev.json.len);
	} else {
		status = resp.status;
		bb_buf_append(out, resp.body.data, resp.body.len);
	}
	bb_buf_putc(out, '\0');
	bb_response_free(&resp);
	bb_event_free(&ev);
	return status;
}

static int
structured(const char *body, bool cloudevents_out, struct bb_buf *out)
{
	struct bb_request req;

	request(&req, BB_CLOUDEVENTS_TYPE, NULL);
	return build(&req, body, cloudevents_out, out);
}

static void
test_structured_event_becomes_the_native_envelope(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(structured("{\"specversion\":\"1.0\",\"id\":\"a1\","
	    "\"source\":\"/shop\",\"type\":\"order.placed\",\"subject\":\"o7\","
	    "\"correlationid\":\"c9\",\"data\":{\"n\":1}}", false, &out), 200);
	/* UUIDv5 (OID) over "bloodbank/cloudevents\n/shop\na1" */
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "{\"event_id\":"
	    "\"354ad8a6-36ba-51ff-996f-d15a342827ef\","));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"source\":{\"host\":"
	    "\"192.0.2.7\",\"type\":\"cloudevents\",\"app\":\"/shop\",\"meta\":"
	    "{\"id\":\"a1\",\"subject\":\"o7\",\"correlationid\":\"c9\"}}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"payload\":{\"n\":1}"));
	bb_buf_free(&out);
}

static void
test_identity_is_uuid5_of_source_and_id(void)
{
	struct bb_buf a, b, c;

	structured("{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"/s\","
	    "\"type\":\"t.a\"}", false, &a);
	structured("{\"type\":\"t.a\",\"source\":\"/s\",\"id\":\"x\","
	    "\"specversion\":\"1.0\"}", false, &b);
	structured("{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"/t\","
	    "\"type\":\"t.a\"}", false, &c);
	CU_ASSERT_EQUAL(memcmp(a.data, b.data, 52), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(a.data, c.data, 52), 0);
	bb_buf_free(&a);
	bb_buf_free(&b);
	bb_buf_free(&c);
}

static void
test_missing_required_attributes_are_named(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(structured("{\"data\":{}}", false, &out), 422);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "{\"field\":\"specversion\","
	    "\"message\":\"required: \\\"1.0\\\"\"}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "{\"field\":\"id\",\"message\":"
	    "\"required\"}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "{\"field\":\"source\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "{\"field\":\"type\""));
	bb_buf_free(&out);
}

#define VALID "\"specversion\":\"1.0\",\"id\":\"i\",\"source\":\"/s\""

static void
test_bad_attributes_are_422_naming_each(void)
{
	static const char *const cases[][2] = {
		{ "{\"specversion\":\"0.3\",\"id\":\"i\",\"source\":\"/s\","
		    "\"type\":\"t.a\"}", "specversion" },
		{ "{\"specversion\":\"1.0\",\"id\":\"a\\u0001b\",\"source\":"
		    "\"/s\",\"type\":\"t.a\"}", "id" },
		{ "{\"specversion\":\"1.0\",\"id\":\"i\",\"source\":\"/s\x7f\","
		    "\"type\":\"t.a\"}", "source" },
		{ "{" VALID ",\"type\":\"Not.A.Type\"}", "type" },
		{ "{" VALID ",\"type\":\"t.a\",\"time\":\"yesterday\"}", "time" },
		{ "{" VALID ",\"type\":\"t.a\",\"dataschema\":\"no uri\"}",
		    "dataschema" },
		{ "{" VALID ",\"type\":\"t.a\",\"my_ext\":\"x\"}", "my_ext" },
		{ "{" VALID ",\"type\":\"t.a\",\"ext\":{\"no\":1}}", "ext" },
		{ "{" VALID ",\"type\":\"t.a\",\"bloodbankid\":\"x\"}",
		    "bloodbankid" },
		{ "{" VALID ",\"type\":\"t.a\",\"causationid\":\"nope\"}",
		    "causationid" },
		{ "{" VALID ",\"type\":\"t.a\",\"data_base64\":\"***\"}",
		    "data_base64" },
		{ "{" VALID ",\"type\":\"t.a\",\"data\":1,\"data_base64\":"
		    "\"AAAA\"}", "data" },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct bb_buf out, field;
		bb_buf_init(&field);
		bb_buf_printf(&field, "\"field\":\"%s\"", cases[k][1]);
		CU_ASSERT_EQUAL(structured(cases[k][0], false, &out), 422);
		CU_ASSERT_PTR_NOT_NULL(strstr(out.data, field.data));
		bb_buf_free(&out);
		bb_buf_free(&field);
	}
}

static void
test_causationid_names_the_parents(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(structured("{\"specversion\":\"1.0\",\"id\":\"i\","
	    "\"source\":\"/s\",\"type\":\"t.a\",\"causationid\":"
	    "\"8B43EC22-FF98-53F4-AEB6-AF9614832D4F, "
	    "6ba7b812-9dad-11d1-80b4-00c04fd430c8\"}", false, &out), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"correlation_ids\":"
	    "[\"8b43ec22-ff98-53f4-aeb6-af9614832d4f\","
	    "\"6ba7b812-9dad-11d1-80b4-00c04fd430c8\"]"));
	bb_buf_free(&out);
}

static void
test_binary_mode_percent_decodes_headers(void)
{
	static const char *const ce[] = { "SPECVERSION=1.0", "ID=b%201",
		"SOURCE=/s", "TYPE=t.a", "MYEXT=v%C3%A9", NULL };
	struct bb_request req;
	struct bb_buf out;

	request(&req, "application/json", ce);
	CU_ASSERT_EQUAL(build(&req, "{\"k\":true}", false, &out), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"meta\":{\"id\":\"b 1\","
	    "\"myext\":\"v\xc3\xa9\"}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"payload\":{\"k\":true}"));
	bb_buf_free(&out);
}

static void
test_binary_mode_bad_percent_encoding_is_400(void)
{
	static const char *const bad[][6] = {
		{ "SPECVERSION=1.0", "ID=%zz", "SOURCE=/s", "TYPE=t.a", NULL },
		{ "SPECVERSION=1.0", "ID=%C3", "SOURCE=/s", "TYPE=t.a", NULL },
		{ "SPECVERSION=1.0", "ID=x%", "SOURCE=/s", "TYPE=t.a", NULL },
	};

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct bb_request req;
		struct bb_buf out;
		request(&req, "application/json", bad[k]);
		CU_ASSERT_EQUAL(build(&req, "{}", false, &out), 400);
		bb_buf_free(&out);
	}
}

static void
test_non_json_data_is_415_in_the_native_format(void)
{
	static const char *const ce[] = { "SPECVERSION=1.0", "ID=1",
		"SOURCE=/s", "TYPE=t.a", NULL };
	struct bb_request req;
	struct bb_buf out;

	request(&req, "text/plain", ce);
	CU_ASSERT_EQUAL(build(&req, "hello", false, &out), 415);
	bb_buf_free(&out);
}

static void
test_non_json_data_is_base64_in_a_published_cloudevent(void)
{
	static const char *const ce[] = { "SPECVERSION=1.0", "ID=1",
		"SOURCE=/s", "TYPE=t.a", NULL };
	struct bb_request req;
	struct bb_buf out;

	request(&req, "text/plain", ce);
	CU_ASSERT_EQUAL(build(&req, "hello", true, &out), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"datacontenttype\":"
	    "\"text/plain\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"data_base64\":\"aGVsbG8=\""));
	CU_ASSERT_PTR_NULL(strstr(out.data, "\"data\":"));
	bb_buf_free(&out);
}

static void
test_published_cloudevent_keeps_attributes_and_adds_bloodbank_ones(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(structured("{\"specversion\":\"1.0\",\"id\":\"a1\","
	    "\"source\":\"/shop\",\"type\":\"order.placed\",\"subject\":\"o7\","
	    "\"dataschema\":\"https://example.com/s.json\",\"n\":3,\"b\":true,"
	    "\"causationid\":\"8b43ec22-ff98-53f4-aeb6-af9614832d4f\","
	    "\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-"
	    "b7ad6b7169203331-01\",\"data\":[1]}", true, &out), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "{\"specversion\":\"1.0\","
	    "\"id\":\"a1\",\"source\":\"/shop\",\"subject\":\"o7\",\"dataschema\":"
	    "\"https://example.com/s.json\",\"n\":3,\"b\":true,\"type\":"
	    "\"order.placed\",\"time\":\"2026-11-26T"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"causationid\":"
	    "\"8b43ec22-ff98-53f4-aeb6-af9614832d4f\",\"traceparent\":"
	    "\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\","
	    "\"data\":[1]}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"bloodbankid\":\""));
	bb_buf_free(&out);
}

static void
test_native_event_published_as_cloudevent(void)
{
	struct bb_request req;
	struct bb_buf out;

	request(&req, "application/json", NULL);
	CU_ASSERT_EQUAL(build(&req, "{\"event_type\":\"a.b\",\"payload\":{},"
	    "\"source\":{\"app\":\"billing\"}}", true, &out), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"source\":"
	    "\"/bloodbank/apps/billing\",\"datacontenttype\":"
	    "\"application/json\",\"type\":\"a.b\""));
	/* id and bloodbankid: the same Bloodbank event id */
	const char *id = strstr(out.data, "\"id\":\"");
	const char *bid = strstr(out.data, "\"bloodbankid\":\"");
	CU_ASSERT_FATAL(id != NULL && bid != NULL);
	CU_ASSERT_EQUAL(memcmp(id + 6, bid + 15, 36), 0);
	bb_buf_free(&out);
}

static void
test_idempotency_key_on_a_cloudevent_is_400(void)
{
	struct bb_request req;
	struct bb_buf out;

	request(&req, BB_CLOUDEVENTS_TYPE, NULL);
	req.idempotency_key = "k";
	CU_ASSERT_EQUAL(build(&req, "{\"specversion\":\"1.0\",\"id\":\"i\","
	    "\"source\":\"/s\",\"type\":\"t.a\"}", false, &out), 400);
	bb_buf_free(&out);
}

static void
test_data_is_json_by_media_type(void)
{
	struct bb_cloudevent ce;
	struct bb_json doc;
	struct bb_buf errors;
	char err[64];
	static const char *const types[][2] = {
		{ "application/json", "1" }, { "application/json; charset=utf-8",
		"1" }, { "application/vnd.x+json", "1" }, { "text/plain", "0" },
		{ "application/xml", "0" },
	};

	bb_cloudevent_init(&ce);
	bb_buf_init(&errors);
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		struct bb_buf text;
		bb_buf_init(&text);
		bb_buf_printf(&text, "{\"datacontenttype\":\"%s\"}", types[k][0]);
		CU_ASSERT_EQUAL_FATAL(bb_json_parse(&doc, text.data, text.len,
		    err, sizeof(err)), BB_JSON_OK);
		bb_cloudevent_from_json(&ce, &doc, 0, &errors);
		CU_ASSERT_EQUAL(bb_cloudevent_data_is_json(&ce),
		    types[k][1][0] == '1');
		bb_json_free(&doc);
		bb_buf_free(&text);
	}
	bb_buf_free(&errors);
	bb_cloudevent_free(&ce);
}

void
add_cloudevent_tests(void)
{
	static CU_TestInfo tests[] = {
		{ "structured event becomes the native envelope",
		    test_structured_event_becomes_the_native_envelope },
		{ "identity is UUIDv5 of source and id",
		    test_identity_is_uuid5_of_source_and_id },
		{ "missing required attributes are named",
		    test_missing_required_attributes_are_named },
		{ "bad attributes are 422 naming each",
		    test_bad_attributes_are_422_naming_each },
		{ "causationid names the parents",
		    test_causationid_names_the_parents },
		{ "binary mode percent-decodes headers",
		    test_binary_mode_percent_decodes_headers },
		{ "binary mode: bad percent-encoding is 400",
		    test_binary_mode_bad_percent_encoding_is_400 },
		{ "non-JSON data is 415 in the native format",
		    test_non_json_data_is_415_in_the_native_format },
		{ "non-JSON data is base64 in a published CloudEvent",
		    test_non_json_data_is_base64_in_a_published_cloudevent },
		{ "published CloudEvent keeps attributes, adds Bloodbank's",
		    test_published_cloudevent_keeps_attributes_and_adds_bloodbank_ones },
		{ "native event published as a CloudEvent",
		    test_native_event_published_as_cloudevent },
		{ "Idempotency-Key on a CloudEvent is 400",
		    test_idempotency_key_on_a_cloudevent_is_400 },
		{ "data is JSON by media type", test_data_is_json_by_media_type },
		CU_TEST_INFO_NULL,
	};

	add_suite("cloudevent", tests);
}
