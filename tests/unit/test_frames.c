#include <stdbool.h>
#include <string.h>

#include <amqp.h>
#include <amqp_framing.h>

#include "frames.h"
#include "tests.h"

/* Frames read back with librabbitmq's own decoder, as the broker would. */
struct decoded {
	amqp_connection_state_t conn;
	amqp_frame_t frames[64];
	int n;
	struct bb_buf body;	/* the body frames, joined */
};

static void
decode(struct decoded *d, const struct bb_buf *in)
{
	const char *p = in->data;
	size_t left = in->len;

	memset(d, 0, sizeof(*d));
	d->conn = amqp_new_connection();
	bb_buf_init(&d->body);
	while (left > 0) {
		amqp_frame_t f;
		int used = amqp_handle_input(d->conn, (amqp_bytes_t){ left,
		    (void *)p }, &f);
		CU_ASSERT_FATAL(used > 0);
		p += used;
		left -= (size_t)used;
		if (f.frame_type == 0)
			continue;
		CU_ASSERT_FATAL(d->n < 64);
		if (f.frame_type == AMQP_FRAME_BODY)
			bb_buf_append(&d->body, f.payload.body_fragment.bytes,
			    f.payload.body_fragment.len);
		d->frames[d->n++] = f;
	}
}

static void
decoded_free(struct decoded *d)
{
	amqp_destroy_connection(d->conn);
	bb_buf_free(&d->body);
}

static bool
bytes_are(amqp_bytes_t b, const char *s)
{
	return b.len == strlen(s) && memcmp(b.bytes, s, b.len) == 0;
}

static const struct bb_message sample = {
	.routing_key = "llm.prompt",
	.body = "{\"event_id\":\"x\"}",
	.body_len = 16,
	.message_id = "8b43ec22-ff98-53f4-aeb6-af9614832d4f",
	.correlation_id = "6ba7b812-9dad-11d1-80b4-00c04fd430c8",
	.type = "llm.prompt",
	.timestamp = 1764000000,
	.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	.tracestate = NULL,
};

static void
test_publish_is_method_header_and_body(void)
{
	struct bb_buf out;
	struct decoded d;

	bb_buf_init(&out);
	CU_ASSERT_EQUAL_FATAL(bb_frames_publish(&out, 1, 131072, "events",
	    &sample), 0);
	decode(&d, &out);
	CU_ASSERT_EQUAL_FATAL(d.n, 3);
	CU_ASSERT_EQUAL(d.frames[0].frame_type, AMQP_FRAME_METHOD);
	CU_ASSERT_EQUAL(d.frames[0].channel, 1);
	CU_ASSERT_EQUAL_FATAL(d.frames[0].payload.method.id,
	    AMQP_BASIC_PUBLISH_METHOD);
	amqp_basic_publish_t *m = d.frames[0].payload.method.decoded;
	CU_ASSERT(bytes_are(m->exchange, "events"));
	CU_ASSERT(bytes_are(m->routing_key, "llm.prompt"));
	CU_ASSERT(m->mandatory);
	CU_ASSERT(!m->immediate);

	CU_ASSERT_EQUAL_FATAL(d.frames[1].frame_type, AMQP_FRAME_HEADER);
	CU_ASSERT_EQUAL(d.frames[1].payload.properties.class_id, AMQP_BASIC_CLASS);
	CU_ASSERT_EQUAL(d.frames[1].payload.properties.body_size, 16);
	amqp_basic_properties_t *p = d.frames[1].payload.properties.decoded;
	CU_ASSERT_EQUAL(p->delivery_mode, AMQP_DELIVERY_PERSISTENT);
	CU_ASSERT(bytes_are(p->content_type, "application/json"));
	CU_ASSERT(bytes_are(p->content_encoding, "utf-8"));
	CU_ASSERT(bytes_are(p->message_id, sample.message_id));
	CU_ASSERT(bytes_are(p->correlation_id, sample.correlation_id));
	CU_ASSERT(bytes_are(p->type, "llm.prompt"));
	CU_ASSERT(bytes_are(p->app_id, "bloodbank"));
	CU_ASSERT_EQUAL(p->timestamp, 1764000000);
	CU_ASSERT_FATAL(p->_flags & AMQP_BASIC_HEADERS_FLAG);
	CU_ASSERT_EQUAL_FATAL(p->headers.num_entries, 1);
	CU_ASSERT(bytes_are(p->headers.entries[0].key, "traceparent"));
	CU_ASSERT(bytes_are(p->headers.entries[0].value.value.bytes,
	    sample.traceparent));

	CU_ASSERT_EQUAL(d.frames[2].frame_type, AMQP_FRAME_BODY);
	CU_ASSERT_EQUAL(d.body.len, 16);
	CU_ASSERT(memcmp(d.body.data, sample.body, 16) == 0);
	decoded_free(&d);
	bb_buf_free(&out);
}

static void
test_optional_properties_are_absent_when_not_given(void)
{
	struct bb_message msg = sample;
	struct bb_buf out;
	struct decoded d;

	msg.correlation_id = NULL;
	msg.traceparent = NULL;
	bb_buf_init(&out);
	CU_ASSERT_EQUAL_FATAL(bb_frames_publish(&out, 1, 131072, "events", &msg), 0);
	decode(&d, &out);
	CU_ASSERT_EQUAL_FATAL(d.n, 3);
	amqp_basic_properties_t *p = d.frames[1].payload.properties.decoded;
	CU_ASSERT(!(p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG));
	CU_ASSERT(!(p->_flags & AMQP_BASIC_HEADERS_FLAG));
	decoded_free(&d);
	bb_buf_free(&out);
}

/* A body larger than a frame is split into frames of at most frame_max
 * bytes (header and end octet included), in order. */
static void
test_large_body_is_split_into_frames_of_frame_max(void)
{
	static char body[10000];
	struct bb_message msg = sample;
	struct bb_buf out;
	struct decoded d;

	for (size_t k = 0; k < sizeof(body); k++)
		body[k] = (char)('a' + k % 26);
	msg.body = body;
	msg.body_len = sizeof(body);
	bb_buf_init(&out);
	CU_ASSERT_EQUAL_FATAL(bb_frames_publish(&out, 1, 4096, "events", &msg), 0);
	decode(&d, &out);
	CU_ASSERT_EQUAL_FATAL(d.n, 2 + 3);	/* 4088 + 4088 + 1824 */
	for (int k = 2; k < d.n; k++) {
		CU_ASSERT_EQUAL(d.frames[k].frame_type, AMQP_FRAME_BODY);
		CU_ASSERT(d.frames[k].payload.body_fragment.len <= 4096 - 8);
	}
	CU_ASSERT_EQUAL(d.frames[1].payload.properties.body_size, sizeof(body));
	CU_ASSERT_EQUAL_FATAL(d.body.len, sizeof(body));
	CU_ASSERT(memcmp(d.body.data, body, sizeof(body)) == 0);
	decoded_free(&d);
	bb_buf_free(&out);
}

static void
test_empty_body_has_no_body_frame(void)
{
	struct bb_message msg = sample;
	struct bb_buf out;
	struct decoded d;

	msg.body = "";
	msg.body_len = 0;
	bb_buf_init(&out);
	CU_ASSERT_EQUAL_FATAL(bb_frames_publish(&out, 1, 131072, "events", &msg), 0);
	decode(&d, &out);
	CU_ASSERT_EQUAL(d.n, 2);
	decoded_free(&d);
	bb_buf_free(&out);
}

static void
test_method_alone(void)
{
	amqp_exchange_declare_t m;
	struct bb_buf out;
	struct decoded d;

	memset(&m, 0, sizeof(m));
	m.exchange = amqp_cstring_bytes("events");
	m.type = amqp_cstring_bytes("topic");
	m.passive = 1;
	m.arguments = amqp_empty_table;
	bb_buf_init(&out);
	CU_ASSERT_EQUAL_FATAL(bb_frames_method(&out, 1,
	    AMQP_EXCHANGE_DECLARE_METHOD, &m), 0);
	decode(&d, &out);
	CU_ASSERT_EQUAL_FATAL(d.n, 1);
	CU_ASSERT_EQUAL(d.frames[0].payload.method.id, AMQP_EXCHANGE_DECLARE_METHOD);
	amqp_exchange_declare_t *got = d.frames[0].payload.method.decoded;
	CU_ASSERT(got->passive);
	CU_ASSERT(bytes_are(got->exchange, "events"));
	decoded_free(&d);
	bb_buf_free(&out);
}

void
add_frames_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "publish is method, header and body",
		    test_publish_is_method_header_and_body },
		{ "optional properties are absent when not given",
		    test_optional_properties_are_absent_when_not_given },
		{ "a large body is split into frames of frame_max",
		    test_large_body_is_split_into_frames_of_frame_max },
		{ "an empty body has no body frame", test_empty_body_has_no_body_frame },
		{ "a method alone", test_method_alone },
		CU_TEST_INFO_NULL,
	};
	add_suite("frames", tests);
}
