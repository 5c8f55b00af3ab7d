#include "topology.h"

#include <string.h>

#include "log.h"
#include "rpc.h"

/* After the broker refused a declaration by closing the channel: the
 * refusal is logged, the close acknowledged and the channel opened again,
 * so that the connection goes on. True too when r is no refusal; false
 * when the connection failed, or the channel could not be reopened. */
static bool
reopen_channel(amqp_connection_state_t conn, amqp_channel_t channel,
    amqp_rpc_reply_t r, const char *what, long long deadline)
{
	amqp_channel_close_ok_t close_ok;

	if (bb_rpc_ok(r, what) || r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION ||
	    r.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
		return r.reply_type == AMQP_RESPONSE_NORMAL;
	if (amqp_send_method(conn, channel, AMQP_CHANNEL_CLOSE_OK_METHOD,
	    &close_ok) != AMQP_STATUS_OK)
		return false;
	bb_rpc_budget(conn, deadline);
	amqp_channel_open(conn, channel);
	return bb_rpc_ok(amqp_get_rpc_reply(conn), "channel reopen");
}

/* The broker refused a declaration because the object exists with other
 * arguments (406 PRECONDITION_FAILED, closing the channel). */
static bool
declared_otherwise(amqp_rpc_reply_t r)
{
	return r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
	    ((amqp_channel_close_t *)r.reply.decoded)->reply_code ==
	    AMQP_PRECONDITION_FAILED;
}

/* The RabbitMQ pattern that names the unrouted queue alone: its name with
 * every character but letters and digits escaped. */
static void
queue_pattern(const char *name, char *out, size_t outlen)
{
	size_t used = 0;

	out[used++] = '^';
	for (; *name && used + 4 < outlen; name++) {
		if (!(*name >= 'a' && *name <= 'z') && !(*name >= 'A' &&
		    *name <= 'Z') && !(*name >= '0' && *name <= '9'))
			out[used++] = '\\';
		out[used++] = *name;
	}
	out[used++] = '$';
	out[used] = '\0';
}

/* The unrouted queue is bounded (UNROUTED_MAX_BYTES) and refuses what does
 * not fit, so that the broker nacks an unroutable event instead of growing
 * until its memory or disk alarm stops every publisher. A queue declared
 * earlier with other arguments (unbounded, or of another type) cannot be
 * redeclared: the broker closes the channel with 406, and then the queue is
 * used as it is and the operator told how to bound it. Any refusal leaves
 * publishing going: only a failed connection is an error. */
static bool
declare_unrouted_queue(amqp_connection_state_t conn, amqp_channel_t channel,
    const struct bb_topology *t, long long deadline)
{
	amqp_table_entry_t a[3] = {
		bb_amqp_entry("x-queue-type", AMQP_FIELD_KIND_UTF8),
		bb_amqp_entry("x-max-length-bytes", AMQP_FIELD_KIND_I64),
		bb_amqp_entry("x-overflow", AMQP_FIELD_KIND_UTF8),
	};
	amqp_table_t args = { 3, a };
	char pattern[2 * 256 + 3];

	a[0].value.value.bytes = amqp_cstring_bytes(t->unrouted_queue_type);
	a[1].value.value.i64 = t->unrouted_max_bytes;
	a[2].value.value.bytes = amqp_cstring_bytes("reject-publish");
	bb_rpc_budget(conn, deadline);
	amqp_queue_declare(conn, channel, amqp_cstring_bytes(t->unrouted), 0, 1,
	    0, 0, args);
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return true;
	if (declared_otherwise(r)) {
		queue_pattern(t->unrouted, pattern, sizeof(pattern));
		bb_log_warning("queue %s exists with other arguments (not a %s "
		    "queue bounded to %ld bytes with reject-publish); using it as "
		    "it is. Bound it with: rabbitmqctl set_policy --apply-to queues "
		    "bloodbank-unrouted '%s' '{\"max-length-bytes\":%ld,"
		    "\"overflow\":\"reject-publish\"}'", t->unrouted,
		    t->unrouted_queue_type, t->unrouted_max_bytes, pattern,
		    t->unrouted_max_bytes);
	}
	return reopen_channel(conn, channel, r, "declare of the unrouted queue",
	    deadline);
}

/* The archive (CONTRACT §11.2): a durable stream queue bound with # to the
 * exchange, so that the broker keeps every event published, replicated
 * across a cluster like any stream. A stream declared earlier with other
 * arguments is used as it is, and the operator told. */
static bool
declare_archive(amqp_connection_state_t conn, amqp_channel_t channel,
    const struct bb_topology *t, long long deadline)
{
	amqp_table_entry_t a[3] = {
		bb_amqp_entry("x-queue-type", AMQP_FIELD_KIND_UTF8),
		bb_amqp_entry("x-max-age", AMQP_FIELD_KIND_UTF8),
		bb_amqp_entry("x-max-length-bytes", AMQP_FIELD_KIND_I64),
	};
	amqp_table_t args = { 3, a };

	a[0].value.value.bytes = amqp_cstring_bytes("stream");
	a[1].value.value.bytes = amqp_cstring_bytes(t->archive_max_age);
	a[2].value.value.i64 = t->archive_max_bytes;
	bb_rpc_budget(conn, deadline);
	amqp_queue_declare(conn, channel, amqp_cstring_bytes(t->archive_stream),
	    0, 1, 0, 0, args);
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
	if (declared_otherwise(r))
		bb_log_warning("queue %s exists with other arguments (not a "
		    "stream with x-max-age %s and x-max-length-bytes %ld); "
		    "using it as it is", t->archive_stream, t->archive_max_age,
		    t->archive_max_bytes);
	if (!reopen_channel(conn, channel, r, "declare of the archive stream",
	    deadline))
		return false;
	bb_rpc_budget(conn, deadline);
	amqp_queue_bind(conn, channel, amqp_cstring_bytes(t->archive_stream),
	    amqp_cstring_bytes(t->exchange), amqp_cstring_bytes("#"),
	    amqp_empty_table);
	return reopen_channel(conn, channel, amqp_get_rpc_reply(conn),
	    "bind of the archive stream", deadline);
}

/* The exchange carries an alternate exchange so that an event no queue is
 * bound for lands in the durable <exchange>.unrouted queue instead of being
 * acknowledged into nowhere. If the exchange already exists with other
 * arguments (declared elsewhere), the broker closes the channel with 406;
 * then it is used as it is, and mandatory publishing refuses what it cannot
 * route. A refused declaration or binding of the unrouted exchange or queue
 * is logged and publishing goes on: an event that then finds no queue is
 * returned and refused (503 broker_unroutable), never lost. */
bool
bb_topology_declare(amqp_connection_state_t conn, amqp_channel_t channel,
    const struct bb_topology *t, long long deadline)
{
	amqp_table_entry_t ae;
	amqp_table_t args = { 1, &ae };

	bb_rpc_budget(conn, deadline);
	amqp_exchange_declare(conn, channel, amqp_cstring_bytes(t->unrouted),
	    amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
	if (!reopen_channel(conn, channel, amqp_get_rpc_reply(conn),
	    "declare of the unrouted exchange", deadline) ||
	    !declare_unrouted_queue(conn, channel, t, deadline))
		return false;
	bb_rpc_budget(conn, deadline);
	amqp_queue_bind(conn, channel, amqp_cstring_bytes(t->unrouted),
	    amqp_cstring_bytes(t->unrouted), amqp_empty_bytes, amqp_empty_table);
	if (!reopen_channel(conn, channel, amqp_get_rpc_reply(conn),
	    "bind of the unrouted queue", deadline))
		return false;

	ae.key = amqp_cstring_bytes("alternate-exchange");
	ae.value.kind = AMQP_FIELD_KIND_UTF8;
	ae.value.value.bytes = amqp_cstring_bytes(t->unrouted);
	bb_rpc_budget(conn, deadline);
	amqp_exchange_declare(conn, channel, amqp_cstring_bytes(t->exchange),
	    amqp_cstring_bytes(t->exchange_type), 0, 1, 0, 0, args);
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION ||
		    r.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
			return bb_rpc_ok(r, "declare of the exchange");
		bb_log_warning("exchange %s exists with other arguments (no "
		    "alternate exchange); using it as it is: unroutable events "
		    "will be refused", t->exchange);
		if (!reopen_channel(conn, channel, r, "declare of the exchange",
		    deadline))
			return false;
		bb_rpc_budget(conn, deadline);
		amqp_exchange_declare(conn, channel, amqp_cstring_bytes(t->exchange),
		    amqp_cstring_bytes(t->exchange_type), 1, 0, 0, 0,
		    amqp_empty_table);
		if (!bb_rpc_ok(amqp_get_rpc_reply(conn),
		    "passive declare of the exchange"))
			return false;
	}
	return t->archive_stream == NULL || t->archive_stream[0] == '\0' ||
	    declare_archive(conn, channel, t, deadline);
}
