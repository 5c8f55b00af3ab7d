#include "rpc.h"

#include <string.h>

#include <openssl/err.h>

#include "clock.h"
#include "log.h"

/* Describes a failed RPC for the log; never includes credentials. */
bool
bb_rpc_ok(amqp_rpc_reply_t r, const char *what)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return true;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION: {
		/* A TLS failure after the handshake (a broker that wants a
		 * client certificate says so here): OpenSSL knows why. */
		char tls[256] = "";
		if (r.library_error == AMQP_STATUS_SSL_ERROR && ERR_peek_error())
			ERR_error_string_n(ERR_peek_error(), tls, sizeof(tls));
		ERR_clear_error();
		bb_log_warning("AMQP %s failed: %s%s%s", what,
		    amqp_error_string2(r.library_error), tls[0] ? ": " : "", tls);
		return false;
	}
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
void
bb_rpc_budget(amqp_connection_state_t conn, long long deadline)
{
	long long left = deadline - bb_monotonic_ms();
	struct timeval tv = bb_ms_to_tv(left > 1 ? left : 1);

	amqp_set_rpc_timeout(conn, &tv);
}

amqp_table_entry_t
bb_amqp_entry(const char *key, uint8_t kind)
{
	amqp_table_entry_t e;

	memset(&e, 0, sizeof(e));
	e.key = amqp_cstring_bytes(key);
	e.value.kind = kind;
	return e;
}
