#include "connect.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "clock.h"
#include "log.h"
#include "rpc.h"
#include "xalloc.h"

#define FRAME_MAX 131072

/* What OpenSSL tells of one connect's handshake. */
struct handshake {
	SSL *ssl;
	long verify_result;	/* X509_V_* */
};

/* Logs in asking for connection.blocked: without the capability RabbitMQ
 * blocks the connection silently, and every publish would wait for its
 * deadline. (librabbitmq 0.11 merges these into its own capabilities.) */
static bool
login(amqp_connection_state_t conn, const struct amqp_connection_info *ci,
    int heartbeat_s)
{
	amqp_table_entry_t cap = bb_amqp_entry("connection.blocked",
	    AMQP_FIELD_KIND_BOOLEAN);
	amqp_table_entry_t prop[2] = {
		bb_amqp_entry("capabilities", AMQP_FIELD_KIND_TABLE),
		bb_amqp_entry("connection_name", AMQP_FIELD_KIND_UTF8),
	};
	amqp_table_t props = { 2, prop };

	cap.value.value.boolean = 1;
	prop[0].value.value.table = (amqp_table_t){ 1, &cap };
	prop[1].value.value.bytes = amqp_cstring_bytes("bloodbank");
	/* "amqp://host:port/" parses to an empty vhost; like other clients,
	 * take it as the default vhost "/". */
	return bb_rpc_ok(amqp_login_with_properties(conn, ci->vhost[0] ? ci->vhost :
	    "/", 0, FRAME_MAX, heartbeat_s, &props, AMQP_SASL_METHOD_PLAIN,
	    ci->user, ci->password), "login");
}

/* librabbitmq keeps its TLS session to itself; OpenSSL hands it to this
 * callback when the handshake starts and when it ends. */
static void
tls_info(const SSL *ssl, int where, int ret)
{
	struct handshake *h = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	(void)ret;
	if (h == NULL)
		return;
	if (where & SSL_CB_HANDSHAKE_START)
		h->ssl = (SSL *)ssl;
	if (where & SSL_CB_HANDSHAKE_DONE)
		h->verify_result = SSL_get_verify_result(ssl);
}

/* A key that asks for a password is refused instead of prompting (OpenSSL's
 * default) or aborting (librabbitmq's). */
static int
no_password(char *buf, int size, int rwflag, void *data)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)data;
	return -1;
}

/* The TLS socket for an amqps URL: the CA bundle (or the system's store,
 * which librabbitmq 0.11 does not load by itself), the client certificate,
 * and verification of the broker's certificate and host name. */
static amqp_socket_t *
tls_socket(amqp_connection_state_t conn, const struct bb_connect_options *opt,
    struct handshake *h)
{
	amqp_socket_t *sock = amqp_ssl_socket_new(conn);
	SSL_CTX *ctx;

	if (sock == NULL)
		return NULL;
	ctx = amqp_ssl_socket_get_context(sock);
	SSL_CTX_set_app_data(ctx, h);
	SSL_CTX_set_info_callback(ctx, tls_info);
	SSL_CTX_set_default_passwd_cb(ctx, no_password);
	amqp_ssl_socket_set_verify_peer(sock, opt->tls_verify);
	amqp_ssl_socket_set_verify_hostname(sock, opt->tls_verify);
	if (opt->tls_ca[0] ? amqp_ssl_socket_set_cacert(sock, opt->tls_ca) !=
	    AMQP_STATUS_OK : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		bb_log_error("AMQP TLS: cannot load the CA certificates from %s",
		    opt->tls_ca[0] ? opt->tls_ca : "the system's store");
		return NULL;
	}
	if (opt->tls_cert[0] && amqp_ssl_socket_set_key(sock, opt->tls_cert,
	    opt->tls_key) != AMQP_STATUS_OK) {
		bb_log_error("AMQP TLS: cannot load the client certificate %s with "
		    "the key %s (PEM, unencrypted)", opt->tls_cert, opt->tls_key);
		return NULL;
	}
	return sock;
}

/* Why a connect failed, in words: for TLS, what was wrong with the broker's
 * certificate when that was it. */
static void
log_connect_failure(const struct amqp_connection_info *ci,
    const struct handshake *h, int rc)
{
	const char *why = amqp_error_string2(rc);
	char tls[256] = "";

	if (rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED &&
	    h->verify_result != X509_V_OK)
		why = X509_verify_cert_error_string(h->verify_result);
	else if (rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED)
		why = "the broker's certificate does not name this host";
	else if (rc == AMQP_STATUS_SSL_CONNECTION_FAILED && ERR_peek_error())
		ERR_error_string_n(ERR_peek_error(), tls, sizeof(tls));
	bb_log_warning("AMQP connect to %s:%d%s failed: %s%s%s", ci->host,
	    ci->port, ci->ssl ? " (TLS)" : "", why, tls[0] ? ": " : "", tls);
	ERR_clear_error();
}

amqp_connection_state_t
bb_connect(const char *url, const struct bb_connect_options *opt,
    long long deadline, SSL **ssl)
{
	struct amqp_connection_info ci;
	struct handshake h = { NULL, X509_V_OK };
	amqp_connection_state_t conn = NULL;
	amqp_socket_t *sock;
	struct timeval tv = bb_ms_to_tv(deadline - bb_monotonic_ms());
	char *copy = bb_xstrdup(url);
	bool ok = false;

	*ssl = NULL;
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		bb_log_error("RABBIT_URL entry is not a valid AMQP URL");
		goto end;
	}
	conn = amqp_new_connection();
	sock = ci.ssl ? tls_socket(conn, opt, &h) : amqp_tcp_socket_new(conn);
	if (sock == NULL)
		goto end;
	amqp_set_handshake_timeout(conn, &tv);
	amqp_set_rpc_timeout(conn, &tv);
	int rc = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
	/* h is this call's: OpenSSL must not reach it after the handshake */
	if (ci.ssl)
		SSL_CTX_set_app_data(amqp_ssl_socket_get_context(sock), NULL);
	if (rc != AMQP_STATUS_OK) {
		log_connect_failure(&ci, &h, rc);
		goto end;
	}
	if (!login(conn, &ci, opt->heartbeat_s))
		goto end;
	bb_rpc_budget(conn, deadline);
	amqp_channel_open(conn, BB_AMQP_CHANNEL);
	if (!bb_rpc_ok(amqp_get_rpc_reply(conn), "channel open") ||
	    !bb_topology_declare(conn, BB_AMQP_CHANNEL, opt->topology, deadline))
		goto end;
	bb_rpc_budget(conn, deadline);
	amqp_confirm_select(conn, BB_AMQP_CHANNEL);
	if (!bb_rpc_ok(amqp_get_rpc_reply(conn), "confirm.select"))
		goto end;
	bb_log_info("AMQP connected to %s:%d%s, exchange %s, heartbeat %d s",
	    ci.host, ci.port, h.ssl ? " over TLS" : "", opt->topology->exchange,
	    amqp_get_heartbeat(conn));
	*ssl = h.ssl;
	ok = true;
end:
	free(copy);
	if (!ok && conn) {
		amqp_destroy_connection(conn);
		conn = NULL;
	}
	return conn;
}

amqp_connection_state_t
bb_connect_any(const char *urls, const struct bb_connect_options *opt,
    long long deadline, SSL **ssl)
{
	amqp_connection_state_t conn = NULL;
	char *list = bb_xstrdup(urls);
	char *save = NULL;

	*ssl = NULL;
	for (char *url = strtok_r(list, ",", &save); url && !conn;
	    url = strtok_r(NULL, ",", &save)) {
		if (deadline - bb_monotonic_ms() <= 0)
			break;
		while (*url == ' ')
			url++;
		conn = bb_connect(url, opt, deadline, ssl);
	}
	free(list);
	return conn;
}
