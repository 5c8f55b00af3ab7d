#include "frames.h"

#include <string.h>

#include <amqp_framing.h>

#define FRAME_HEADER 7		/* type, channel, size */
#define FRAME_OVERHEAD (FRAME_HEADER + 1)	/* and the end octet */
#define METHOD_ROOM 1024	/* a method of two short strings and bits */

static void
put_be(struct bb_buf *out, uint64_t v, int bytes)
{
	char b[8];

	for (int k = 0; k < bytes; k++)
		b[k] = (char)(v >> (8 * (bytes - 1 - k)));
	bb_buf_append(out, b, (size_t)bytes);
}

static size_t
begin_frame(struct bb_buf *out, uint8_t type, amqp_channel_t channel)
{
	size_t start = out->len;

	put_be(out, type, 1);
	put_be(out, channel, 2);
	put_be(out, 0, 4);	/* the size, once known */
	return start;
}

static void
end_frame(struct bb_buf *out, size_t start)
{
	uint32_t size = (uint32_t)(out->len - start - FRAME_HEADER);

	for (int k = 0; k < 4; k++)
		out->data[start + 3 + k] = (char)(size >> (8 * (3 - k)));
	bb_buf_putc(out, (char)AMQP_FRAME_END);
}

static size_t
slen(const char *s)
{
	return s ? strlen(s) : 0;
}

static void
fill_properties(amqp_basic_properties_t *props, amqp_table_entry_t *trace,
    const struct bb_message *msg)
{
	int ntrace = 0;

	memset(props, 0, sizeof(*props));
	props->_flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
	    AMQP_BASIC_CONTENT_ENCODING_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
	    AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
	    AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG;
	props->content_type = amqp_cstring_bytes(msg->content_type ?
	    msg->content_type : "application/json");
	props->content_encoding = amqp_cstring_bytes("utf-8");
	props->delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props->message_id = amqp_cstring_bytes(msg->message_id);
	props->timestamp = (uint64_t)msg->timestamp;
	props->type = amqp_cstring_bytes(msg->type);
	props->app_id = amqp_cstring_bytes("bloodbank");
	if (msg->correlation_id) {
		props->_flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
		props->correlation_id = amqp_cstring_bytes(msg->correlation_id);
	}
	const char *names[2] = { "traceparent", "tracestate" };
	const char *values[2] = { msg->traceparent, msg->tracestate };
	for (int k = 0; k < 2; k++) {
		if (values[k] == NULL)
			continue;
		trace[ntrace].key = amqp_cstring_bytes(names[k]);
		trace[ntrace].value.kind = AMQP_FIELD_KIND_UTF8;
		trace[ntrace].value.value.bytes = amqp_cstring_bytes(values[k]);
		ntrace++;
	}
	if (ntrace) {
		props->_flags |= AMQP_BASIC_HEADERS_FLAG;
		props->headers.num_entries = ntrace;
		props->headers.entries = trace;
	}
}

int
bb_frames_method(struct bb_buf *out, amqp_channel_t channel,
    amqp_method_number_t id, void *decoded)
{
	bb_buf_reset(out);
	size_t start = begin_frame(out, AMQP_FRAME_METHOD, channel);
	put_be(out, id, 4);
	int n = amqp_encode_method(id, decoded, (amqp_bytes_t){ METHOD_ROOM,
	    bb_buf_space(out, METHOD_ROOM) });
	if (n < 0)
		return n;
	out->len += (size_t)n;
	end_frame(out, start);
	return 0;
}

int
bb_frames_publish(struct bb_buf *out, amqp_channel_t channel,
    uint32_t frame_max, const char *exchange, const struct bb_message *msg)
{
	amqp_basic_publish_t m;
	amqp_basic_properties_t props;
	amqp_table_entry_t trace[2];
	size_t chunk = frame_max - FRAME_OVERHEAD;
	size_t room = METHOD_ROOM + slen(msg->message_id) + slen(msg->type) +
	    slen(msg->correlation_id) + slen(msg->traceparent) +
	    slen(msg->tracestate);

	memset(&m, 0, sizeof(m));
	m.exchange = amqp_cstring_bytes(exchange);
	m.routing_key = amqp_cstring_bytes(msg->routing_key);
	m.mandatory = 1;
	int n = bb_frames_method(out, channel, AMQP_BASIC_PUBLISH_METHOD, &m);
	if (n < 0)
		return n;

	/* the content header: class, weight, body size, properties */
	fill_properties(&props, trace, msg);
	size_t start = begin_frame(out, AMQP_FRAME_HEADER, channel);
	put_be(out, AMQP_BASIC_CLASS, 2);
	put_be(out, 0, 2);
	put_be(out, msg->body_len, 8);
	n = amqp_encode_properties(AMQP_BASIC_CLASS, &props, (amqp_bytes_t){
	    room, bb_buf_space(out, room) });
	if (n < 0)
		return n;
	out->len += (size_t)n;
	end_frame(out, start);

	for (size_t off = 0; off < msg->body_len; off += chunk) {
		size_t k = msg->body_len - off < chunk ? msg->body_len - off : chunk;
		start = begin_frame(out, AMQP_FRAME_BODY, channel);
		bb_buf_append(out, msg->body + off, k);
		end_frame(out, start);
	}
	return 0;
}
