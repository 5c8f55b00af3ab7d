/* connect: opening the publisher's AMQP connection -- TCP, or TLS for an
 * amqps URL; login asking for connection.blocked; the channel; the
 * topology; confirm.select -- with librabbitmq's RPCs, all within one
 * deadline. What goes wrong is logged, never with credentials. */
#ifndef BB_CONNECT_H
#define BB_CONNECT_H

#include <stdbool.h>

#include <amqp.h>
#include <openssl/ssl.h>

#include "topology.h"

#define BB_AMQP_CHANNEL 1

struct bb_connect_options {
	int heartbeat_s;	/* 0: no heartbeats */
	const struct bb_topology *topology;
	/* amqps:// URLs */
	const char *tls_ca;	/* CA bundle (PEM); "": the system's store */
	const char *tls_cert;	/* client certificate (PEM); "": none */
	const char *tls_key;	/* its unencrypted key (PEM) */
	bool tls_verify;	/* the broker's certificate and host name */
};

/* Opens a connection to url by deadline (monotonic ms), its channel
 * BB_AMQP_CHANNEL in confirm mode; NULL on failure. For amqps, *ssl is
 * the TLS session librabbitmq opened (it stays librabbitmq's), else NULL. */
amqp_connection_state_t bb_connect(const char *url,
    const struct bb_connect_options *opt, long long deadline, SSL **ssl);
/* The same over a comma-separated list of URLs (RABBIT_URL), tried in
 * order until one connects or the deadline passes. */
amqp_connection_state_t bb_connect_any(const char *urls,
    const struct bb_connect_options *opt, long long deadline, SSL **ssl);

#endif
