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
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "clock.h"
#include "connect.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#define CHANNEL BB_AMQP_CHANNEL
#define HEARTBEAT_FRAME_LEN 8
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
/* A connection that has said nothing for this long is asked a question
 * before an event is written on it: a broker that vanished without a
 * FIN would otherwise turn "nothing was published" into "unknown". */
#define IDLE_CHECK_MS 1000
/* After nacks, the connection is renewed at most this often. */
#define NACK_RENEW_MS 1000
#define CLOSE_TIMEOUT_MS 500

enum return_state { RETURN_NONE, RETURN_HEADER, RETURN_BODY };

struct bb_publisher {
	char *urls;
	char *exchange;
	char *exchange_type;
	char *unrouted;		/* "<exchange>.unrouted" */
	char *unrouted_queue_type;
	long unrouted_max_bytes;
	char *archive_stream, *archive_max_age;
	long archive_max_bytes;
	int confirm_timeout_ms;
	int connect_timeout_ms;
	int heartbeat_s;
	char *tls_ca, *tls_cert, *tls_key;
	bool tls_verify;

	amqp_connection_state_t conn;	/* NULL while disconnected */
	int fd;
	/* The TLS session librabbitmq opened on fd (amqps), NULL for amqp. It
	 * belongs to librabbitmq's socket; this module only reads and writes
	 * through it. */
	SSL *ssl;
	bool blocked;		/* connection.blocked, not yet unblocked */
	bool nacked;		/* nacks since the last ack: renew (ready()) */
	long long renewed_ms;	/* when a nack last renewed the connection */
	struct bb_confirms confirms;	/* written, awaiting their confirms */
	enum return_state ret;	/* reading a basic.return */
	uint64_t ret_left;	/* body bytes of it still to come */
	bool declare_ok;	/* the liveness question was answered */
	long long last_recv_ms, last_send_ms;
	int heartbeat_ms;	/* as negotiated; 0 = off */
	/* A heartbeat SSL_write stalled: TLS holds its record, and the next
	 * write must retry it with the same bytes before anything else. */
	bool heartbeat_stalled;

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
	pub->unrouted_queue_type = bb_xstrdup(opt->unrouted_queue_type);
	pub->unrouted_max_bytes = opt->unrouted_max_bytes;
	pub->archive_stream = bb_xstrdup(opt->archive_stream ?
	    opt->archive_stream : "");
	pub->archive_max_age = bb_xstrdup(opt->archive_max_age ?
	    opt->archive_max_age : "");
	pub->archive_max_bytes = opt->archive_max_bytes;
	pub->confirm_timeout_ms = opt->confirm_timeout_ms;
	pub->connect_timeout_ms = opt->connect_timeout_ms;
	pub->heartbeat_s = opt->heartbeat_s;
	pub->tls_ca = bb_xstrdup(opt->tls_ca ? opt->tls_ca : "");
	pub->tls_cert = bb_xstrdup(opt->tls_cert ? opt->tls_cert : "");
	pub->tls_key = bb_xstrdup(opt->tls_key ? opt->tls_key : "");
	pub->tls_verify = opt->tls_verify;
	if (!pub->tls_verify && strstr(pub->urls, "amqps://"))
		bb_log_warning("RABBIT_TLS_VERIFY is false: the broker's "
		    "certificate and host name are not checked (for tests only)");
	pub->fd = -1;
	pub->backoff_ms = BACKOFF_MIN_MS;
	bb_buf_init(&pub->out);
	return pub;
}

/* Drops the connection. What was written and not confirmed may or may not
 * have been routed: its outcome is unknown. */
static void
disconnect(struct bb_publisher *pub)
{
	if (pub->conn == NULL)
		return;
	bb_confirms_settle_all(&pub->confirms, BB_PUBLISH_TIMEOUT);
	amqp_destroy_connection(pub->conn);
	pub->conn = NULL;
	pub->fd = -1;
	pub->ssl = NULL;
	pub->heartbeat_stalled = false;
	pub->blocked = false;
	pub->nacked = false;
	pub->ret = RETURN_NONE;
	bb_metrics_set(BB_GAUGE_BROKER_CONNECTED, false);
	bb_metrics_set(BB_GAUGE_BROKER_BLOCKED, false);
}

/* Says goodbye to the broker (connection.close) before disconnecting. */
static void
close_connection(struct bb_publisher *pub)
{
	if (pub->conn && !pub->blocked) {
		struct timeval tv = { 0, CLOSE_TIMEOUT_MS * 1000 };
		amqp_set_rpc_timeout(pub->conn, &tv);
		amqp_connection_close(pub->conn, AMQP_REPLY_SUCCESS);
	}
	disconnect(pub);
}

void
bb_publisher_free(struct bb_publisher *pub)
{
	if (pub == NULL)
		return;
	close_connection(pub);
	bb_confirms_free(&pub->confirms);
	bb_buf_free(&pub->out);
	free(pub->urls);
	free(pub->exchange);
	free(pub->exchange_type);
	free(pub->unrouted);
	free(pub->unrouted_queue_type);
	free(pub->archive_stream);
	free(pub->archive_max_age);
	free(pub->tls_ca);
	free(pub->tls_cert);
	free(pub->tls_key);
	free(pub);
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
	bb_confirms_init(&pub->confirms);
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
	const struct bb_topology topology = { pub->exchange, pub->exchange_type,
		pub->unrouted, pub->unrouted_queue_type, pub->unrouted_max_bytes,
		pub->archive_stream, pub->archive_max_age, pub->archive_max_bytes };
	const struct bb_connect_options opt = { pub->heartbeat_s, &topology,
		pub->tls_ca, pub->tls_cert, pub->tls_key, pub->tls_verify };
	pub->conn = bb_connect_any(pub->urls, &opt, deadline, &pub->ssl);
	if (pub->conn == NULL) {
		bb_metrics_add(BB_BROKER_CONNECT_FAILED, 1);
		pub->retry_at = bb_monotonic_ms() + pub->backoff_ms;
		pub->backoff_ms = pub->backoff_ms * 2 < BACKOFF_MAX_MS ?
		    pub->backoff_ms * 2 : BACKOFF_MAX_MS;
		return false;
	}
	pub->backoff_ms = BACKOFF_MIN_MS;
	bb_metrics_add(BB_BROKER_CONNECT_OK, 1);
	bb_metrics_set(BB_GAUGE_BROKER_CONNECTED, true);
	take_over(pub);
	return pub->conn != NULL;
}

/* ---------------------------------------------------------- confirms */

/* A tag never sent means the two sides disagree about what was published:
 * nothing on this connection can be trusted any more. */
static void
confirm(struct bb_publisher *pub, uint64_t tag, bool multiple, bool ack)
{
	if (bb_confirms_settle(&pub->confirms, tag, multiple, ack) == 0)
		return;
	bb_log_error("broker confirmed delivery tag %llu, which was never sent; "
	    "closing the connection", (unsigned long long)tag);
	disconnect(pub);
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
		pub->nacked = false;	/* the channel works */
		break;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *n = m->decoded;
		confirm(pub, n->delivery_tag, n->multiple, false);
		pub->nacked = pub->conn != NULL;
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
		bb_metrics_set(BB_GAUGE_BROKER_BLOCKED, true);
		/* The broker holds what it has read and may route it when the
		 * alarm clears: unknown, and answered now (CONTRACT §6). */
		bb_confirms_settle_all(&pub->confirms, BB_PUBLISH_TIMEOUT);
		break;
	}
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		bb_log_info("broker unblocked publishing");
		pub->blocked = false;
		bb_metrics_set(BB_GAUGE_BROKER_BLOCKED, false);
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

/* A basic.return names no delivery tag; its message is known by the
 * message_id of the content header that follows it, before its ack. */
static void
note_return(struct bb_publisher *pub, const amqp_basic_properties_t *props)
{
	if (props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		bb_confirms_returned(&pub->confirms, props->message_id.bytes,
		    props->message_id.len);
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

/* The outcome of a TLS read or write that moved nothing: 0 when it is to
 * be tried again once the socket is ready, else -1 with why set. */
static ssize_t
tls_stalled(struct bb_publisher *pub, int n, const char **why)
{
	static char text[256];

	switch (SSL_get_error(pub->ssl, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		*why = "closed by the broker";
		return -1;
	case SSL_ERROR_SYSCALL:
		*why = errno ? strerror(errno) : "closed by the broker";
		return -1;
	default:
		ERR_error_string_n(ERR_get_error(), text, sizeof(text));
		*why = text;
		return -1;
	}
}

/* One non-blocking read, through TLS for amqps: the bytes read, 0 when
 * there is nothing yet, -1 (why set) when the connection is gone. */
static ssize_t
sock_read(struct bb_publisher *pub, void *buf, size_t len, const char **why)
{
	if (pub->ssl) {
		ERR_clear_error();
		errno = 0;
		int n = SSL_read(pub->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
		return n > 0 ? n : tls_stalled(pub, n, why);
	}
	ssize_t n = recv(pub->fd, buf, len, MSG_DONTWAIT);
	if (n > 0)
		return n;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	*why = n == 0 ? "closed by the broker" : strerror(errno);
	return -1;
}

static const char heartbeat_frame[HEARTBEAT_FRAME_LEN] = {
	AMQP_FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, (char)AMQP_FRAME_END
};

/* One non-blocking write, through TLS for amqps: the bytes written, 0 when
 * the socket is full, -1 (why set) when the connection is broken. A TLS
 * write that stalled must be retried with the same bytes: a stalled
 * heartbeat goes out first, before buf. */
static ssize_t
sock_write(struct bb_publisher *pub, const void *buf, size_t len,
    const char **why)
{
	if (pub->heartbeat_stalled && buf != heartbeat_frame) {
		ssize_t n = sock_write(pub, heartbeat_frame,
		    sizeof(heartbeat_frame), why);
		if (n <= 0)
			return n;
		pub->heartbeat_stalled = false;
	}
	if (pub->ssl) {
		ERR_clear_error();
		errno = 0;
		int n = SSL_write(pub->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
		return n > 0 ? n : tls_stalled(pub, n, why);
	}
	ssize_t n = send(pub->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	*why = strerror(errno);
	return -1;
}

/* Reads what the socket holds (and, for TLS, what the session has already
 * decrypted, which poll cannot see). Returns -1 when the connection is
 * gone, else 0. */
static int
receive(struct bb_publisher *pub)
{
	const char *why = NULL;
	ssize_t n;

	do {
		n = sock_read(pub, pub->in, sizeof(pub->in), &why);
		if (n < 0) {
			bb_log_warning("AMQP connection lost: %s", why);
			disconnect(pub);
			return -1;
		}
		if (n > 0) {
			pub->last_recv_ms = bb_monotonic_ms();
			feed(pub, pub->in, (size_t)n);
		}
	} while (n > 0 && pub->conn && pub->ssl && SSL_pending(pub->ssl) > 0);
	return pub->conn ? 0 : -1;
}

/* AMQP 0-9-1 §4.2.7: a peer that hears nothing for two heartbeat intervals
 * is gone; we send one at half the interval when we have sent nothing. */
static void
heartbeats(struct bb_publisher *pub, long long now)
{
	if (pub->conn == NULL || pub->heartbeat_ms == 0)
		return;
	/* judged on what has arrived, not on what a busy worker has read */
	if (now - pub->last_recv_ms > 2LL * pub->heartbeat_ms && receive(pub) != 0)
		return;
	if (now - pub->last_recv_ms > 2LL * pub->heartbeat_ms) {
		bb_log_warning("AMQP: no heartbeat from the broker for %d s; "
		    "closing the connection", 2 * pub->heartbeat_ms / 1000);
		disconnect(pub);
		return;
	}
	if (now - pub->last_send_ms < pub->heartbeat_ms / 2)
		return;
	const char *why = NULL;
	ssize_t n = sock_write(pub, heartbeat_frame, sizeof(heartbeat_frame),
	    &why);
	if (n == (ssize_t)sizeof(heartbeat_frame)) {
		pub->heartbeat_stalled = false;
		pub->last_send_ms = now;
	} else if (n == 0 && pub->ssl) {
		pub->heartbeat_stalled = true;	/* retried by the next write */
	} else if (n != 0) {	/* broken, or half a frame on the wire */
		disconnect(pub);
	}
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
		const char *why = NULL;
		ssize_t n = sock_write(pub, data + done, len - done, &why);
		if (n > 0) {
			done += (size_t)n;
			pub->last_send_ms = bb_monotonic_ms();
			continue;
		}
		if (n < 0) {
			bb_log_warning("AMQP write failed: %s", why);
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
	if (bb_frames_method(&pub->out, CHANNEL, AMQP_EXCHANGE_DECLARE_METHOD,
	    &d) != 0)
		return false;
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
	/* A nack may be the first of many on this channel: RabbitMQ 3.10
	 * keeps nacking every publish to a quorum queue on a channel that
	 * first published to it while its leader's node was down (seen with
	 * tests/cluster). So after nacks with no ack since, once nothing
	 * awaits a confirm, the next publish goes out on a fresh connection
	 * and channel -- at most once a second, so that a queue that rightly
	 * refuses every event (a full <exchange>.unrouted) does not turn
	 * each into a reconnect. An ack proves the channel works. */
	long long now = bb_monotonic_ms();
	if (pub->conn && pub->nacked && !bb_confirms_waiting(&pub->confirms) &&
	    now - pub->renewed_ms >= NACK_RENEW_MS) {
		bb_log_info("AMQP: renewing the connection after a nack");
		pub->renewed_ms = now;
		close_connection(pub);
	}
	/* Idle: nothing heard for a while and nothing awaited (a message in
	 * flight has its own deadline). */
	if (pub->conn && !pub->blocked && !bb_confirms_waiting(&pub->confirms) &&
	    bb_monotonic_ms() - pub->last_recv_ms > IDLE_CHECK_MS)
		still_alive(pub, deadline);
	if (pub->conn)
		return true;
	if (bb_monotonic_ms() < pub->retry_at)
		return false;
	return connect_any(pub, deadline);
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
		if (bb_frames_publish(&pub->out, CHANNEL, (uint32_t)
		    amqp_get_frame_max(pub->conn), pub->exchange, msg) != 0) {
			bb_log_error("event %s cannot be encoded as an AMQP "
			    "message", msg->message_id);
			return p->result = BB_PUBLISH_UNAVAILABLE;
		}
		p->deadline = deadline ? deadline :
		    bb_monotonic_ms() + pub->confirm_timeout_ms;
		size_t n = write_all(pub, pub->out.data, pub->out.len, p->deadline);
		if (n == pub->out.len) {
			bb_confirms_add(&pub->confirms, p);
			return p->result;
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

enum bb_publish_result
bb_publisher_result(struct bb_publisher *pub, struct bb_publish *p)
{
	if (p->result != BB_PUBLISH_PENDING ||
	    bb_monotonic_ms() < p->deadline)
		return p->result;
	/* Its confirm may be waiting on the socket, unread while the worker
	 * was busy: read that before calling it late (a connection lost
	 * meanwhile settles it too). */
	if (pub->conn)
		receive(pub);
	if (p->result != BB_PUBLISH_PENDING)
		return p->result;
	/* A broker that has said something since the message went out (a
	 * confirm of another, a heartbeat) is alive, only slow for this one:
	 * the connection and the other messages in flight on it are kept,
	 * and a confirm that comes later for this one is ignored. So is a
	 * blocked connection's: the broker will confirm when the alarm
	 * clears, and until then the next publish is refused without
	 * writing. A broker silent since then is given up on. */
	bool alive = pub->blocked ||
	    pub->last_recv_ms > p->deadline - pub->confirm_timeout_ms;
	bb_log_warning("no confirm for event %s within %d ms%s", p->message_id,
	    pub->confirm_timeout_ms, pub->blocked ?
	    " (the broker blocks publishing)" : alive ? "" :
	    "; the broker is silent: closing the connection");
	if (alive)
		bb_confirms_forget(&pub->confirms, p);
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
