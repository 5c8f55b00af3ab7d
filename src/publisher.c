#include "publisher.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "xalloc.h"

#define CHANNEL 1
#define FRAME_MAX 131072
#define FRAME_HEADER 7		/* type, channel, size */
#define FRAME_OVERHEAD (FRAME_HEADER + 1)	/* and the end octet */
#define METHOD_ROOM 1024	/* basic.publish: two short strings and bits */
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
/* A connection that has said nothing for this long is asked a question
 * before an event is written on it: a broker that vanished without a
 * FIN would otherwise turn "nothing was published" into "unknown". */
#define IDLE_CHECK_MS 1000
#define CLOSE_TIMEOUT_MS 500

/* A message written and not yet confirmed. Slots are kept in delivery-tag
 * order; a slot whose caller gave up (or that was settled) has p == NULL. */
struct slot {
	uint64_t tag;
	struct bb_publish *p;
};

enum return_state { RETURN_NONE, RETURN_HEADER, RETURN_BODY };

struct bb_publisher {
	char *urls;
	char *exchange;
	char *exchange_type;
	char *unrouted;		/* "<exchange>.unrouted" */
	int confirm_timeout_ms;
	int connect_timeout_ms;
	int heartbeat_s;

	amqp_connection_state_t conn;	/* NULL while disconnected */
	int fd;
	bool blocked;		/* connection.blocked, not yet unblocked */
	uint64_t next_tag;	/* delivery tag of the next publish */
	struct slot *slots;	/* waiting messages: [head, len) */
	size_t head, len, cap;
	enum return_state ret;	/* reading a basic.return */
	uint64_t ret_left;	/* body bytes of it still to come */
	bool declare_ok;	/* the liveness question was answered */
	long long last_recv_ms, last_send_ms;
	int heartbeat_ms;	/* as negotiated; 0 = off */

	long long retry_at;	/* no connect attempt before (ms) */
	int backoff_ms;

	struct bb_buf out;	/* frames being written */
	char in[65536];
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
	pub->heartbeat_s = opt->heartbeat_s;
	pub->fd = -1;
	pub->backoff_ms = BACKOFF_MIN_MS;
	bb_buf_init(&pub->out);
	return pub;
}

/* Every message still waiting gets `result`; none is waiting afterwards,
 * so a confirm that comes later finds no slot and is ignored. */
static void
settle_all(struct bb_publisher *pub, enum bb_publish_result result)
{
	for (size_t k = pub->head; k < pub->len; k++) {
		if (pub->slots[k].p)
			pub->slots[k].p->result = result;
	}
	pub->head = pub->len = 0;
}

/* Drops the connection. What was written and not confirmed may or may not
 * have been routed: its outcome is unknown. */
static void
disconnect(struct bb_publisher *pub)
{
	if (pub->conn == NULL)
		return;
	settle_all(pub, BB_PUBLISH_TIMEOUT);
	amqp_destroy_connection(pub->conn);
	pub->conn = NULL;
	pub->fd = -1;
	pub->blocked = false;
	pub->ret = RETURN_NONE;
}

void
bb_publisher_free(struct bb_publisher *pub)
{
	if (pub == NULL)
		return;
	if (pub->conn && !pub->blocked) {
		struct timeval tv = { 0, CLOSE_TIMEOUT_MS * 1000 };
		amqp_set_rpc_timeout(pub->conn, &tv);
		amqp_connection_close(pub->conn, AMQP_REPLY_SUCCESS);
	}
	disconnect(pub);
	free(pub->slots);
	bb_buf_free(&pub->out);
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

static amqp_table_entry_t
entry(const char *key, uint8_t kind)
{
	amqp_table_entry_t e;

	memset(&e, 0, sizeof(e));
	e.key = amqp_cstring_bytes(key);
	e.value.kind = kind;
	return e;
}

/* Logs in asking for connection.blocked: without the capability RabbitMQ
 * blocks the connection silently, and every publish would wait for its
 * deadline. (librabbitmq 0.11 merges these into its own capabilities.) */
static bool
login(amqp_connection_state_t conn, const struct amqp_connection_info *ci,
    int heartbeat_s)
{
	amqp_table_entry_t cap = entry("connection.blocked",
	    AMQP_FIELD_KIND_BOOLEAN);
	amqp_table_entry_t prop[2] = {
		entry("capabilities", AMQP_FIELD_KIND_TABLE),
		entry("connection_name", AMQP_FIELD_KIND_UTF8),
	};
	amqp_table_t props = { 2, prop };

	cap.value.value.boolean = 1;
	prop[0].value.value.table = (amqp_table_t){ 1, &cap };
	prop[1].value.value.bytes = amqp_cstring_bytes("bloodbank");
	/* "amqp://host:port/" parses to an empty vhost; like other clients,
	 * take it as the default vhost "/". */
	return rpc_ok(amqp_login_with_properties(conn, ci->vhost[0] ? ci->vhost :
	    "/", 0, FRAME_MAX, heartbeat_s, &props, AMQP_SASL_METHOD_PLAIN,
	    ci->user, ci->password), "login");
}

/* Opens, logs in, opens the channel, declares, and enables confirms. */
static amqp_connection_state_t
open_connection(struct bb_publisher *pub, const char *url, long long deadline)
{
	struct amqp_connection_info ci;
	amqp_connection_state_t conn = NULL;
	amqp_socket_t *sock;
	struct timeval tv = ms_to_tv(deadline - bb_monotonic_ms());
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
	if (!login(conn, &ci, pub->heartbeat_s))
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
	bb_log_info("AMQP connected to %s:%d, exchange %s, heartbeat %d s",
	    ci.host, ci.port, pub->exchange, amqp_get_heartbeat(conn));
	ok = true;
end:
	free(copy);
	if (!ok && conn) {
		amqp_destroy_connection(conn);
		conn = NULL;
	}
	return conn;
}

static void handle_frame(struct bb_publisher *pub, amqp_frame_t *f);

/* From here on this module reads and writes the socket itself; frames that
 * librabbitmq already read during the connect are handled first. */
static void
take_over(struct bb_publisher *pub)
{
	long long now = bb_monotonic_ms();
	struct timeval zero = { 0, 0 };
	amqp_frame_t f;

	pub->fd = amqp_get_sockfd(pub->conn);
	int flags = fcntl(pub->fd, F_GETFL);
	if (flags >= 0 && !(flags & O_NONBLOCK))
		fcntl(pub->fd, F_SETFL, flags | O_NONBLOCK);
	pub->next_tag = 1;	/* confirm.select starts counting at 1 */
	pub->head = pub->len = 0;
	pub->blocked = false;
	pub->ret = RETURN_NONE;
	pub->heartbeat_ms = amqp_get_heartbeat(pub->conn) * 1000;
	pub->last_recv_ms = pub->last_send_ms = now;
	while (pub->conn && (amqp_frames_enqueued(pub->conn) ||
	    amqp_data_in_buffer(pub->conn))) {
		if (amqp_simple_wait_frame_noblock(pub->conn, &f, &zero) !=
		    AMQP_STATUS_OK)
			break;
		handle_frame(pub, &f);
	}
}

/* Tries every URL in order within the deadline; after a failure, the next
 * attempt waits for a backoff (0.25 s doubling to 5 s) and callers answer
 * at once meanwhile. */
static bool
connect_any(struct bb_publisher *pub, long long deadline)
{
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
	if (pub->conn == NULL) {
		pub->retry_at = bb_monotonic_ms() + pub->backoff_ms;
		pub->backoff_ms = pub->backoff_ms * 2 < BACKOFF_MAX_MS ?
		    pub->backoff_ms * 2 : BACKOFF_MAX_MS;
		return false;
	}
	pub->backoff_ms = BACKOFF_MIN_MS;
	take_over(pub);
	return pub->conn != NULL;
}

/* ---------------------------------------------------------- confirms */

/* The waiting slot of `tag`, by binary search (slots are in tag order). */
static struct slot *
find_slot(struct bb_publisher *pub, uint64_t tag)
{
	size_t lo = pub->head, hi = pub->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pub->slots[mid].tag == tag)
			return &pub->slots[mid];
		if (pub->slots[mid].tag < tag)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void
drop_settled(struct bb_publisher *pub)
{
	while (pub->head < pub->len && pub->slots[pub->head].p == NULL)
		pub->head++;
	if (pub->head == pub->len)
		pub->head = pub->len = 0;
}

static void
settle(struct slot *s, bool ack)
{
	struct bb_publish *p = s->p;

	if (p == NULL)
		return;	/* answered already (504); a late confirm changes nothing */
	if (!ack)
		p->result = BB_PUBLISH_NACKED;
	else
		p->result = p->returned ? BB_PUBLISH_UNROUTABLE : BB_PUBLISH_OK;
	s->p = NULL;
}

/* basic.ack / basic.nack (RabbitMQ publisher confirms): `multiple` covers
 * every tag up to and including this one. A tag never sent means the two
 * sides disagree about what was published: nothing on this connection can
 * be trusted any more. */
static void
confirm(struct bb_publisher *pub, uint64_t tag, bool multiple, bool ack)
{
	if (tag >= pub->next_tag) {
		bb_log_error("broker confirmed delivery tag %llu, which was never "
		    "sent; closing the connection", (unsigned long long)tag);
		disconnect(pub);
		return;
	}
	if (multiple) {
		if (tag == 0)	/* AMQP 0-9-1: all outstanding */
			tag = pub->next_tag - 1;
		for (size_t k = pub->head; k < pub->len &&
		    pub->slots[k].tag <= tag; k++)
			settle(&pub->slots[k], ack);
	} else {
		struct slot *s = find_slot(pub, tag);
		if (s)
			settle(s, ack);
	}
	drop_settled(pub);
}

/* A basic.return carries no delivery tag; its message is known by the
 * message_id in the content header that follows it. The return comes
 * before the message's ack, which then means "unroutable". */
static void
note_return(struct bb_publisher *pub, const amqp_basic_properties_t *props)
{
	if (!(props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG))
		return;
	for (size_t k = pub->head; k < pub->len; k++) {
		struct bb_publish *p = pub->slots[k].p;
		if (p && strlen(p->message_id) == props->message_id.len &&
		    memcmp(p->message_id, props->message_id.bytes,
		    props->message_id.len) == 0) {
			p->returned = true;
			return;
		}
	}
}

static void
log_close(const char *what, uint16_t code, amqp_bytes_t text)
{
	bb_log_warning("broker closed the %s: %d %.*s", what, code,
	    (int)text.len, (const char *)text.bytes);
}

static void
handle_method(struct bb_publisher *pub, amqp_method_t *m)
{
	switch (m->id) {
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *a = m->decoded;
		confirm(pub, a->delivery_tag, a->multiple, true);
		break;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *n = m->decoded;
		confirm(pub, n->delivery_tag, n->multiple, false);
		break;
	}
	case AMQP_BASIC_RETURN_METHOD:
		pub->ret = RETURN_HEADER;
		break;
	case AMQP_EXCHANGE_DECLARE_OK_METHOD:
		pub->declare_ok = true;
		break;
	case AMQP_CONNECTION_BLOCKED_METHOD: {
		amqp_connection_blocked_t *b = m->decoded;
		bb_log_warning("broker blocks publishing: %.*s",
		    (int)b->reason.len, (const char *)b->reason.bytes);
		pub->blocked = true;
		/* The broker holds what it has read and may route it when the
		 * alarm clears: unknown, and answered now (CONTRACT §6). */
		settle_all(pub, BB_PUBLISH_TIMEOUT);
		break;
	}
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		bb_log_info("broker unblocked publishing");
		pub->blocked = false;
		break;
	case AMQP_CHANNEL_CLOSE_METHOD: {
		amqp_channel_close_t *c = m->decoded;
		log_close("channel", c->reply_code, c->reply_text);
		disconnect(pub);
		break;
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_connection_close_t *c = m->decoded;
		log_close("connection", c->reply_code, c->reply_text);
		disconnect(pub);
		break;
	}
	default:
		break;
	}
}

static void
handle_frame(struct bb_publisher *pub, amqp_frame_t *f)
{
	switch (f->frame_type) {
	case AMQP_FRAME_METHOD:
		handle_method(pub, &f->payload.method);
		break;
	case AMQP_FRAME_HEADER:
		if (pub->ret != RETURN_HEADER)
			break;
		note_return(pub, f->payload.properties.decoded);
		pub->ret_left = f->payload.properties.body_size;
		pub->ret = pub->ret_left ? RETURN_BODY : RETURN_NONE;
		break;
	case AMQP_FRAME_BODY:
		if (pub->ret != RETURN_BODY)
			break;
		if (f->payload.body_fragment.len >= pub->ret_left)
			pub->ret = RETURN_NONE;
		else
			pub->ret_left -= f->payload.body_fragment.len;
		break;
	default:	/* a heartbeat: having read it is all it asks */
		break;
	}
}

/* ---------------------------------------------------------- socket I/O */

/* Decodes every whole frame in data; librabbitmq keeps a partial one. */
static void
feed(struct bb_publisher *pub, char *data, size_t len)
{
	while (len > 0 && pub->conn) {
		amqp_bytes_t in = { len, data };
		amqp_frame_t f;
		int n = amqp_handle_input(pub->conn, in, &f);
		if (n <= 0) {
			bb_log_warning("AMQP: malformed data from the broker: %s",
			    amqp_error_string2(n));
			disconnect(pub);
			return;
		}
		data += n;
		len -= (size_t)n;
		if (f.frame_type == 0)
			continue;
		amqp_channel_t ch = f.channel;
		handle_frame(pub, &f);
		if (pub->conn)	/* the frame's memory is not needed any more */
			amqp_maybe_release_buffers_on_channel(pub->conn, ch);
	}
}

/* One read of what the socket holds. Returns -1 when the connection is
 * gone, else 0. */
static int
receive(struct bb_publisher *pub)
{
	ssize_t n = recv(pub->fd, pub->in, sizeof(pub->in), MSG_DONTWAIT);

	if (n > 0) {
		pub->last_recv_ms = bb_monotonic_ms();
		feed(pub, pub->in, (size_t)n);
		return pub->conn ? 0 : -1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	bb_log_warning("AMQP connection lost: %s",
	    n == 0 ? "closed by the broker" : strerror(errno));
	disconnect(pub);
	return -1;
}

/* AMQP 0-9-1 §4.2.7: a peer that hears nothing for two heartbeat intervals
 * is gone; we send one at half the interval when we have sent nothing. */
static void
heartbeats(struct bb_publisher *pub, long long now)
{
	static const char frame[FRAME_OVERHEAD] = { AMQP_FRAME_HEARTBEAT, 0, 0,
		0, 0, 0, 0, (char)AMQP_FRAME_END };

	if (pub->conn == NULL || pub->heartbeat_ms == 0)
		return;
	if (now - pub->last_recv_ms > 2LL * pub->heartbeat_ms) {
		bb_log_warning("AMQP: no heartbeat from the broker for %d s; "
		    "closing the connection", 2 * pub->heartbeat_ms / 1000);
		disconnect(pub);
		return;
	}
	if (now - pub->last_send_ms < pub->heartbeat_ms / 2)
		return;
	ssize_t n = send(pub->fd, frame, sizeof(frame), MSG_NOSIGNAL |
	    MSG_DONTWAIT);
	if (n == (ssize_t)sizeof(frame))
		pub->last_send_ms = now;
	else if (n > 0)		/* half a frame on the wire: unusable */
		disconnect(pub);
}

/* Waits for input until the deadline (sending heartbeats meanwhile), then
 * reads it. Returns -1 when the connection is gone, else 0. */
static int
pump(struct bb_publisher *pub, long long deadline)
{
	long long now = bb_monotonic_ms();
	long long until = deadline;

	heartbeats(pub, now);
	if (pub->conn == NULL)
		return -1;
	if (pub->heartbeat_ms && pub->last_send_ms + pub->heartbeat_ms / 2 < until)
		until = pub->last_send_ms + pub->heartbeat_ms / 2;
	struct pollfd p = { pub->fd, POLLIN, 0 };
	long long wait = until - now;
	int r = poll(&p, 1, wait <= 0 ? 0 : wait > INT_MAX ? INT_MAX : (int)wait);
	if (r > 0)
		return receive(pub);
	return 0;
}

/* Writes len bytes by the deadline, reading meanwhile so that confirms, a
 * block or a close are seen. Returns how many bytes went out; stops early
 * when the connection is lost or blocked. */
static size_t
write_all(struct bb_publisher *pub, const char *data, size_t len,
    long long deadline)
{
	size_t done = 0;

	while (done < len && pub->conn && !pub->blocked) {
		ssize_t n = send(pub->fd, data + done, len - done, MSG_NOSIGNAL |
		    MSG_DONTWAIT);
		if (n > 0) {
			done += (size_t)n;
			pub->last_send_ms = bb_monotonic_ms();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			bb_log_warning("AMQP write failed: %s", strerror(errno));
			disconnect(pub);
			break;
		}
		long long left = deadline - bb_monotonic_ms();
		if (left <= 0)
			break;
		struct pollfd p = { pub->fd, POLLOUT | POLLIN, 0 };
		if (poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left) > 0 &&
		    (p.revents & (POLLIN | POLLHUP | POLLERR)))
			receive(pub);
	}
	return done;
}

/* ---------------------------------------------------------- encoding */

static void
put_be(struct bb_buf *out, uint64_t v, int bytes)
{
	char b[8];

	for (int k = 0; k < bytes; k++)
		b[k] = (char)(v >> (8 * (bytes - 1 - k)));
	bb_buf_append(out, b, (size_t)bytes);
}

static size_t
begin_frame(struct bb_buf *out, uint8_t type)
{
	size_t start = out->len;

	put_be(out, type, 1);
	put_be(out, CHANNEL, 2);
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
	props->content_type = amqp_cstring_bytes("application/json");
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

/* basic.publish (mandatory), its content header and its body frames, as
 * one run of bytes for one write (AMQP 0-9-1 §4.2.6). */
static int
encode_publish(struct bb_publisher *pub, const struct bb_message *msg)
{
	amqp_basic_publish_t m;
	amqp_basic_properties_t props;
	amqp_table_entry_t trace[2];
	struct bb_buf *out = &pub->out;
	size_t chunk = (size_t)amqp_get_frame_max(pub->conn) - FRAME_OVERHEAD;
	size_t room = METHOD_ROOM + slen(msg->message_id) + slen(msg->type) +
	    slen(msg->correlation_id) + slen(msg->traceparent) +
	    slen(msg->tracestate);
	int n;

	memset(&m, 0, sizeof(m));
	m.exchange = amqp_cstring_bytes(pub->exchange);
	m.routing_key = amqp_cstring_bytes(msg->routing_key);
	m.mandatory = 1;
	fill_properties(&props, trace, msg);

	bb_buf_reset(out);
	size_t start = begin_frame(out, AMQP_FRAME_METHOD);
	put_be(out, AMQP_BASIC_PUBLISH_METHOD, 4);
	n = amqp_encode_method(AMQP_BASIC_PUBLISH_METHOD, &m, (amqp_bytes_t){
	    METHOD_ROOM, bb_buf_space(out, METHOD_ROOM) });
	if (n < 0)
		return n;
	out->len += (size_t)n;
	end_frame(out, start);

	start = begin_frame(out, AMQP_FRAME_HEADER);
	put_be(out, AMQP_BASIC_CLASS, 2);
	put_be(out, 0, 2);	/* weight */
	put_be(out, msg->body_len, 8);
	n = amqp_encode_properties(AMQP_BASIC_CLASS, &props, (amqp_bytes_t){
	    room, bb_buf_space(out, room) });
	if (n < 0)
		return n;
	out->len += (size_t)n;
	end_frame(out, start);

	for (size_t off = 0; off < msg->body_len; off += chunk) {
		size_t k = msg->body_len - off < chunk ? msg->body_len - off : chunk;
		start = begin_frame(out, AMQP_FRAME_BODY);
		bb_buf_append(out, msg->body + off, k);
		end_frame(out, start);
	}
	return 0;
}

/* ---------------------------------------------------------- publishing */

/* A passive exchange.declare: the cheapest question with an answer. */
static bool
still_alive(struct bb_publisher *pub, long long deadline)
{
	amqp_exchange_declare_t d;

	memset(&d, 0, sizeof(d));
	d.exchange = amqp_cstring_bytes(pub->exchange);
	d.type = amqp_cstring_bytes(pub->exchange_type);
	d.passive = 1;
	d.arguments = amqp_empty_table;
	bb_buf_reset(&pub->out);
	size_t start = begin_frame(&pub->out, AMQP_FRAME_METHOD);
	put_be(&pub->out, AMQP_EXCHANGE_DECLARE_METHOD, 4);
	int n = amqp_encode_method(AMQP_EXCHANGE_DECLARE_METHOD, &d,
	    (amqp_bytes_t){ METHOD_ROOM, bb_buf_space(&pub->out, METHOD_ROOM) });
	if (n < 0)
		return false;
	pub->out.len += (size_t)n;
	end_frame(&pub->out, start);

	pub->declare_ok = false;
	if (write_all(pub, pub->out.data, pub->out.len, deadline) != pub->out.len) {
		disconnect(pub);
		return false;
	}
	while (pub->conn && !pub->declare_ok && bb_monotonic_ms() < deadline)
		pump(pub, deadline);
	if (pub->conn && !pub->declare_ok && !pub->blocked) {
		bb_log_warning("AMQP: the broker did not answer on an idle "
		    "connection; reconnecting");
		disconnect(pub);
	}
	return pub->conn != NULL;
}

/* A connection that is up and, if it was idle, known to answer. */
static bool
ready(struct bb_publisher *pub, long long deadline)
{
	/* Idle: nothing heard for a while and nothing awaited (a message in
	 * flight has its own deadline). */
	if (pub->conn && !pub->blocked && pub->head == pub->len &&
	    bb_monotonic_ms() - pub->last_recv_ms > IDLE_CHECK_MS)
		still_alive(pub, deadline);
	if (pub->conn)
		return true;
	if (bb_monotonic_ms() < pub->retry_at)
		return false;
	return connect_any(pub, deadline);
}

static void
add_waiting(struct bb_publisher *pub, struct bb_publish *p)
{
	if (pub->len == pub->cap) {
		if (pub->head > 0) {
			memmove(pub->slots, pub->slots + pub->head,
			    (pub->len - pub->head) * sizeof(*pub->slots));
			pub->len -= pub->head;
			pub->head = 0;
		} else {
			pub->cap = pub->cap ? pub->cap * 2 : 16;
			pub->slots = bb_xreallocarray(pub->slots, pub->cap,
			    sizeof(*pub->slots));
		}
	}
	p->tag = pub->next_tag++;
	pub->slots[pub->len].tag = p->tag;
	pub->slots[pub->len].p = p;
	pub->len++;
}

enum bb_publish_result
bb_publisher_send(struct bb_publisher *pub, const struct bb_message *msg,
    struct bb_publish *p, long long deadline)
{
	long long connect_deadline = bb_monotonic_ms() + pub->connect_timeout_ms;

	memset(p, 0, sizeof(*p));
	p->message_id = msg->message_id;
	/* A write that fails before its first byte (the broker went away
	 * since the last read) is tried once more on a fresh connection:
	 * nothing of it reached the broker. */
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!ready(pub, connect_deadline))
			return p->result = BB_PUBLISH_UNAVAILABLE;
		if (pub->blocked)
			return p->result = BB_PUBLISH_BLOCKED;
		if (encode_publish(pub, msg) != 0) {
			bb_log_error("event %s cannot be encoded as an AMQP "
			    "message", msg->message_id);
			return p->result = BB_PUBLISH_UNAVAILABLE;
		}
		p->deadline = deadline ? deadline :
		    bb_monotonic_ms() + pub->confirm_timeout_ms;
		size_t n = write_all(pub, pub->out.data, pub->out.len, p->deadline);
		if (n == pub->out.len) {
			add_waiting(pub, p);
			return p->result = BB_PUBLISH_PENDING;
		}
		if (n == 0 && pub->blocked)
			return p->result = BB_PUBLISH_BLOCKED;
		if (n > 0) {
			/* The broker drops a message whose frames stop
			 * short when the connection closes. */
			bb_log_warning("event %s only partly written to the broker "
			    "(%zu of %zu bytes); closing the connection",
			    msg->message_id, n, pub->out.len);
			disconnect(pub);
			return p->result = BB_PUBLISH_UNAVAILABLE;
		}
		disconnect(pub);
	}
	return p->result = BB_PUBLISH_UNAVAILABLE;
}

/* Forgets p: a confirm that comes for it later is ignored. */
static void
abandon(struct bb_publisher *pub, struct bb_publish *p)
{
	struct slot *s = find_slot(pub, p->tag);

	if (s && s->p == p)
		s->p = NULL;
	drop_settled(pub);
}

enum bb_publish_result
bb_publisher_result(struct bb_publisher *pub, struct bb_publish *p)
{
	if (p->result != BB_PUBLISH_PENDING ||
	    bb_monotonic_ms() < p->deadline)
		return p->result;
	bb_log_warning("no confirm for event %s within %d ms%s", p->message_id,
	    pub->confirm_timeout_ms,
	    pub->blocked ? " (the broker blocks publishing)" : "");
	/* A blocked connection is kept: the broker will confirm when the
	 * alarm clears, and until then the next publish is refused without
	 * writing. Otherwise a broker this slow is given up on. */
	if (pub->blocked)
		abandon(pub, p);
	else
		disconnect(pub);
	return p->result = BB_PUBLISH_TIMEOUT;
}

enum bb_publish_result
bb_publisher_wait(struct bb_publisher *pub, struct bb_publish *p)
{
	while (bb_publisher_result(pub, p) == BB_PUBLISH_PENDING)
		pump(pub, p->deadline);
	return p->result;
}

enum bb_broker_state
bb_publisher_check(struct bb_publisher *pub, int timeout_ms)
{
	if (pub->conn)
		receive(pub);
	if (!ready(pub, bb_monotonic_ms() + timeout_ms))
		return BB_BROKER_DOWN;
	return pub->blocked ? BB_BROKER_BLOCKED : BB_BROKER_UP;
}

int
bb_publisher_fd(const struct bb_publisher *pub)
{
	return pub->conn ? pub->fd : -1;
}

void
bb_publisher_service(struct bb_publisher *pub)
{
	if (pub->conn && receive(pub) == 0)
		heartbeats(pub, bb_monotonic_ms());
}

const char *
bb_publish_result_name(enum bb_publish_result r)
{
	switch (r) {
	case BB_PUBLISH_PENDING: return "pending";
	case BB_PUBLISH_OK: return "ok";
	case BB_PUBLISH_UNAVAILABLE: return "unavailable";
	case BB_PUBLISH_BLOCKED: return "blocked";
	case BB_PUBLISH_NACKED: return "nacked";
	case BB_PUBLISH_TIMEOUT: return "timeout";
	case BB_PUBLISH_UNROUTABLE: return "unroutable";
	}
	return "unknown";
}
