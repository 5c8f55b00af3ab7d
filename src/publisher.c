#include "publisher.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

#define CHANNEL 1
#define FRAME_MAX 131072

struct bb_publisher {
	char *urls;
	char *exchange;
	char *exchange_type;
	char *unrouted;		/* "<exchange>.unrouted" */
	int confirm_timeout_ms;
	int connect_timeout_ms;
	amqp_connection_state_t conn;	/* NULL while disconnected */
	uint64_t next_tag;	/* delivery tag of the next publish */
	uint64_t sent_tag;	/* delivery tag of the one awaiting its confirm */
};

struct bb_publisher *
bb_publisher_new(const struct bb_publisher_options *opt)
{
	struct bb_publisher *pub = bb_xcalloc(1, sizeof(*pub));
	size_t n = strlen(opt->exchange) + sizeof(".unrouted");

	pub->urls = bb_xstrdup(opt->urls);
	pub->exchange = bb_xstrdup(opt->exchange);
	pub->exchange_type = bb_xstrdup(opt->exchange_type);
	pub->unrouted = bb_xcalloc(1, n);
	snprintf(pub->unrouted, n, "%s.unrouted", opt->exchange);
	pub->confirm_timeout_ms = opt->confirm_timeout_ms;
	pub->connect_timeout_ms = opt->connect_timeout_ms;
	return pub;
}

static void
disconnect(struct bb_publisher *pub)
{
	if (pub->conn == NULL)
		return;
	amqp_destroy_connection(pub->conn);
	pub->conn = NULL;
}

void
bb_publisher_free(struct bb_publisher *pub)
{
	if (pub == NULL)
		return;
	if (pub->conn) {
		amqp_channel_close(pub->conn, CHANNEL, AMQP_REPLY_SUCCESS);
		amqp_connection_close(pub->conn, AMQP_REPLY_SUCCESS);
	}
	disconnect(pub);
	free(pub->urls);
	free(pub->exchange);
	free(pub->exchange_type);
	free(pub->unrouted);
	free(pub);
}

static struct timeval
ms_to_tv(long long ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	return tv;
}

/* Describes a failed RPC for the log; never includes credentials. */
static bool
rpc_ok(amqp_rpc_reply_t r, const char *what)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return true;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		bb_log_warning("AMQP %s failed: %s", what,
		    amqp_error_string2(r.library_error));
		return false;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *c = r.reply.decoded;
			bb_log_warning("AMQP %s refused: connection closed: %d %.*s",
			    what, c->reply_code, (int)c->reply_text.len,
			    (const char *)c->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *c = r.reply.decoded;
			bb_log_warning("AMQP %s refused: channel closed: %d %.*s",
			    what, c->reply_code, (int)c->reply_text.len,
			    (const char *)c->reply_text.bytes);
		} else {
			bb_log_warning("AMQP %s refused by the broker", what);
		}
		return false;
	default:
		bb_log_warning("AMQP %s failed", what);
		return false;
	}
}

/* Gives the next RPC what is left of the connect budget, so that the whole
 * connect (login, channel, declares, confirm.select) stays within it. */
static void
budget(amqp_connection_state_t conn, long long deadline)
{
	long long left = deadline - bb_monotonic_ms();
	struct timeval tv = ms_to_tv(left > 1 ? left : 1);

	amqp_set_rpc_timeout(conn, &tv);
}

/* The exchange carries an alternate exchange so that an event no queue is
 * bound for lands in the durable <exchange>.unrouted queue instead of being
 * acknowledged into nowhere. If the exchange already exists with other
 * arguments (declared elsewhere), the broker closes the channel with 406;
 * then it is used as it is, and mandatory publishing refuses what it cannot
 * route. */
static bool
declare_topology(amqp_connection_state_t conn, struct bb_publisher *pub,
    long long deadline)
{
	amqp_table_entry_t ae;
	amqp_table_t args = { 1, &ae };
	amqp_channel_close_ok_t close_ok;

	budget(conn, deadline);
	amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(pub->unrouted),
	    amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
	if (!rpc_ok(amqp_get_rpc_reply(conn), "declare of the unrouted exchange"))
		return false;
	budget(conn, deadline);
	amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(pub->unrouted), 0, 1,
	    0, 0, amqp_empty_table);
	if (!rpc_ok(amqp_get_rpc_reply(conn), "declare of the unrouted queue"))
		return false;
	budget(conn, deadline);
	amqp_queue_bind(conn, CHANNEL, amqp_cstring_bytes(pub->unrouted),
	    amqp_cstring_bytes(pub->unrouted), amqp_empty_bytes, amqp_empty_table);
	if (!rpc_ok(amqp_get_rpc_reply(conn), "bind of the unrouted queue"))
		return false;

	ae.key = amqp_cstring_bytes("alternate-exchange");
	ae.value.kind = AMQP_FIELD_KIND_UTF8;
	ae.value.value.bytes = amqp_cstring_bytes(pub->unrouted);
	budget(conn, deadline);
	amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(pub->exchange),
	    amqp_cstring_bytes(pub->exchange_type), 0, 1, 0, 0, args);
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return true;
	if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION ||
	    r.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
		return rpc_ok(r, "declare of the exchange");
	bb_log_warning("exchange %s exists with other arguments (no alternate "
	    "exchange); using it as it is: unroutable events will be refused",
	    pub->exchange);
	if (amqp_send_method(conn, CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD,
	    &close_ok) != AMQP_STATUS_OK)
		return false;
	budget(conn, deadline);
	amqp_channel_open(conn, CHANNEL);
	if (!rpc_ok(amqp_get_rpc_reply(conn), "channel reopen"))
		return false;
	budget(conn, deadline);
	amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(pub->exchange),
	    amqp_cstring_bytes(pub->exchange_type), 1, 0, 0, 0, amqp_empty_table);
	return rpc_ok(amqp_get_rpc_reply(conn), "passive declare of the exchange");
}

/* Opens, logs in, opens the channel, declares, and enables confirms. */
static amqp_connection_state_t
open_connection(struct bb_publisher *pub, const char *url, long long deadline)
{
	struct amqp_connection_info ci;
	amqp_connection_state_t conn = NULL;
	amqp_socket_t *sock;
	struct timeval tv = ms_to_tv(deadline - bb_monotonic_ms());
	struct timeval send_timeout = ms_to_tv(pub->confirm_timeout_ms);
	char *copy = bb_xstrdup(url);
	bool ok = false;

	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK || ci.ssl) {
		bb_log_error("RABBIT_URL entry is not a valid amqp:// URL");
		goto end;
	}
	conn = amqp_new_connection();
	sock = amqp_tcp_socket_new(conn);
	if (sock == NULL)
		goto end;
	amqp_set_handshake_timeout(conn, &tv);
	amqp_set_rpc_timeout(conn, &tv);
	int rc = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
	if (rc != AMQP_STATUS_OK) {
		bb_log_warning("AMQP connect to %s:%d failed: %s", ci.host, ci.port,
		    amqp_error_string2(rc));
		goto end;
	}
	/* A broker that stops reading (a memory or disk alarm) must not hold
	 * a worker in send() for ever; librabbitmq writes without a timeout. */
	setsockopt(amqp_get_sockfd(conn), SOL_SOCKET, SO_SNDTIMEO, &send_timeout,
	    sizeof(send_timeout));
	/* "amqp://host:port/" parses to an empty vhost; like other clients,
	 * take it as the default vhost "/". */
	budget(conn, deadline);
	if (!rpc_ok(amqp_login(conn, ci.vhost[0] ? ci.vhost : "/", 0, FRAME_MAX, 0,
	    AMQP_SASL_METHOD_PLAIN, ci.user, ci.password), "login"))
		goto end;
	budget(conn, deadline);
	amqp_channel_open(conn, CHANNEL);
	if (!rpc_ok(amqp_get_rpc_reply(conn), "channel open") ||
	    !declare_topology(conn, pub, deadline))
		goto end;
	budget(conn, deadline);
	amqp_confirm_select(conn, CHANNEL);
	if (!rpc_ok(amqp_get_rpc_reply(conn), "confirm.select"))
		goto end;
	bb_log_info("AMQP connected to %s:%d, exchange %s", ci.host, ci.port,
	    pub->exchange);
	ok = true;
end:
	free(copy);
	if (!ok && conn) {
		amqp_destroy_connection(conn);
		conn = NULL;
	}
	return conn;
}

static bool
connect_any(struct bb_publisher *pub, int timeout_ms)
{
	long long deadline = bb_monotonic_ms() + timeout_ms;
	char *list = bb_xstrdup(pub->urls);
	char *save = NULL;

	for (char *url = strtok_r(list, ",", &save); url && !pub->conn;
	    url = strtok_r(NULL, ",", &save)) {
		if (deadline - bb_monotonic_ms() <= 0)
			break;
		while (*url == ' ')
			url++;
		pub->conn = open_connection(pub, url, deadline);
	}
	free(list);
	pub->next_tag = 1;	/* confirm.select starts counting at 1 */
	return pub->conn != NULL;
}

/* librabbitmq keeps every frame received on a channel in that channel's
 * pool until told to let go; without this, each confirm would stay. */
static void
release(struct bb_publisher *pub)
{
	amqp_maybe_release_buffers_on_channel(pub->conn, CHANNEL);
}

/* Reads whatever the broker sent while we were idle. A close, or a socket
 * at EOF, means the connection is gone. */
static bool
drain(struct bb_publisher *pub)
{
	amqp_frame_t frame;

	for (;;) {
		struct timeval zero = { 0, 0 };
		int rc = amqp_simple_wait_frame_noblock(pub->conn, &frame, &zero);
		if (rc == AMQP_STATUS_TIMEOUT)
			return true;
		if (rc != AMQP_STATUS_OK)
			return false;
		if (frame.frame_type == AMQP_FRAME_METHOD &&
		    (frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ||
		    frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD))
			return false;
		release(pub);
	}
}

static bool
ensure_connected(struct bb_publisher *pub, int timeout_ms)
{
	if (pub->conn && drain(pub))
		return true;
	if (pub->conn) {
		bb_log_warning("AMQP connection lost; reconnecting");
		disconnect(pub);
	}
	return connect_any(pub, timeout_ms);
}

bool
bb_publisher_healthy(struct bb_publisher *pub, int timeout_ms)
{
	return ensure_connected(pub, timeout_ms);
}

static int
send_message(struct bb_publisher *pub, const struct bb_message *msg)
{
	amqp_basic_properties_t props;
	amqp_table_entry_t trace[2];
	int ntrace = 0;

	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
	    AMQP_BASIC_CONTENT_ENCODING_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
	    AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
	    AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.content_encoding = amqp_cstring_bytes("utf-8");
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props.message_id = amqp_cstring_bytes(msg->message_id);
	props.timestamp = (uint64_t)msg->timestamp;
	props.type = amqp_cstring_bytes(msg->type);
	props.app_id = amqp_cstring_bytes("bloodbank");
	if (msg->correlation_id) {
		props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
		props.correlation_id = amqp_cstring_bytes(msg->correlation_id);
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
		props._flags |= AMQP_BASIC_HEADERS_FLAG;
		props.headers.num_entries = ntrace;
		props.headers.entries = trace;
	}
	amqp_bytes_t body = { msg->body_len, (void *)msg->body };
	return amqp_basic_publish(pub->conn, CHANNEL,
	    amqp_cstring_bytes(pub->exchange), amqp_cstring_bytes(msg->routing_key),
	    1, 0, &props, body);
}

/* Waits for the confirm of delivery tag `tag`. With one publish in flight
 * per connection, the next ack or nack is ours; a basic.return for a
 * mandatory message comes before its ack. */
static enum bb_publish_result
wait_confirm(struct bb_publisher *pub, uint64_t tag, const char *event_id)
{
	long long deadline = bb_monotonic_ms() + pub->confirm_timeout_ms;
	bool returned = false;
	amqp_frame_t frame;

	for (;;) {
		long long left = deadline - bb_monotonic_ms();
		struct timeval tv = ms_to_tv(left > 0 ? left : 0);
		int rc = amqp_simple_wait_frame_noblock(pub->conn, &frame, &tv);

		if (rc == AMQP_STATUS_TIMEOUT) {
			/* A late confirm would be taken for the next
			 * message's; start afresh instead. */
			bb_log_warning("no confirm for event %s within %d ms",
			    event_id, pub->confirm_timeout_ms);
			disconnect(pub);
			return BB_PUBLISH_TIMEOUT;
		}
		if (rc != AMQP_STATUS_OK) {
			bb_log_warning("AMQP connection lost waiting for the confirm "
			    "of event %s: %s", event_id, amqp_error_string2(rc));
			disconnect(pub);
			return BB_PUBLISH_UNAVAILABLE;
		}
		if (frame.frame_type != AMQP_FRAME_METHOD)
			continue;
		switch (frame.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD: {
			amqp_basic_ack_t *ack = frame.payload.method.decoded;
			if (ack->delivery_tag < tag)
				continue;	/* an earlier message's */
			release(pub);
			return returned ? BB_PUBLISH_UNROUTABLE : BB_PUBLISH_OK;
		}
		case AMQP_BASIC_NACK_METHOD: {
			amqp_basic_nack_t *nack = frame.payload.method.decoded;
			if (nack->delivery_tag < tag)
				continue;
			release(pub);
			return BB_PUBLISH_NACKED;
		}
		case AMQP_BASIC_RETURN_METHOD: {
			amqp_message_t returned_msg;
			if (amqp_read_message(pub->conn, frame.channel, &returned_msg,
			    0).reply_type != AMQP_RESPONSE_NORMAL) {
				disconnect(pub);
				return BB_PUBLISH_UNAVAILABLE;
			}
			amqp_destroy_message(&returned_msg);
			release(pub);
			returned = true;
			continue;
		}
		case AMQP_CHANNEL_CLOSE_METHOD:
		case AMQP_CONNECTION_CLOSE_METHOD:
			bb_log_warning("broker closed the connection while event %s "
			    "was in flight", event_id);
			disconnect(pub);
			return BB_PUBLISH_UNAVAILABLE;
		default:
			continue;
		}
	}
}

enum bb_publish_result
bb_publisher_send(struct bb_publisher *pub, const struct bb_message *msg)
{
	/* A connection that looked alive can still fail on write (the broker
	 * went away since the last drain); one retry on a fresh connection is
	 * safe because nothing was confirmed and the event id is unchanged. */
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!ensure_connected(pub, pub->connect_timeout_ms))
			return BB_PUBLISH_UNAVAILABLE;
		int rc = send_message(pub, msg);
		if (rc == AMQP_STATUS_OK) {
			pub->sent_tag = pub->next_tag++;
			return BB_PUBLISH_OK;
		}
		bb_log_warning("AMQP publish of event %s failed: %s",
		    msg->message_id, amqp_error_string2(rc));
		disconnect(pub);
	}
	return BB_PUBLISH_UNAVAILABLE;
}

enum bb_publish_result
bb_publisher_confirm(struct bb_publisher *pub, const char *event_id)
{
	if (pub->conn == NULL)
		return BB_PUBLISH_UNAVAILABLE;
	return wait_confirm(pub, pub->sent_tag, event_id);
}

const char *
bb_publish_result_name(enum bb_publish_result r)
{
	switch (r) {
	case BB_PUBLISH_OK: return "ok";
	case BB_PUBLISH_UNAVAILABLE: return "unavailable";
	case BB_PUBLISH_NACKED: return "nacked";
	case BB_PUBLISH_TIMEOUT: return "timeout";
	case BB_PUBLISH_UNROUTABLE: return "unroutable";
	}
	return "unknown";
}
