/* topology: what Bloodbank declares on every new AMQP connection, before
 * its first publish -- the bounded <exchange>.unrouted queue, its fanout
 * exchange and binding, the exchange with that alternate exchange, and the
 * archive stream bound to it with # when ARCHIVE_STREAM is set --
 * as RPCs within the connect budget. A declaration the broker refuses
 * (something declared elsewhere with other arguments) is logged and the
 * object used as it is: only a failed connection is an error. */
#ifndef BB_TOPOLOGY_H
#define BB_TOPOLOGY_H

#include <stdbool.h>

#include <amqp.h>

struct bb_topology {
	const char *exchange;
	const char *exchange_type;
	const char *unrouted;		/* "<exchange>.unrouted" */
	const char *unrouted_queue_type;
	long unrouted_max_bytes;	/* UNROUTED_MAX_BYTES */
	const char *archive_stream;	/* "" or NULL: no archive (§11.2) */
	const char *archive_max_age;	/* x-max-age, e.g. 7D */
	long archive_max_bytes;		/* x-max-length-bytes */
};

/* Declares it all on channel, by deadline (monotonic ms); false when the
 * connection failed. */
bool bb_topology_declare(amqp_connection_state_t conn, amqp_channel_t channel,
    const struct bb_topology *t, long long deadline);

#endif
