/* publisher: one persistent AMQP connection per worker, publishing with
 * publisher confirms (RabbitMQ's extension to AMQP 0-9-1).
 *
 * librabbitmq opens the connection (TCP, login, channel, declarations,
 * confirm.select); after that this module does its own I/O on the socket,
 * with librabbitmq only encoding and decoding frames, because librabbitmq
 * 0.11 sends without a deadline and reads a returned message without one.
 * Every wait here has a deadline. Several messages may be in flight at once;
 * each confirm is matched to its delivery tag. */
#ifndef BB_PUBLISHER_H
#define BB_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "confirms.h"
#include "frames.h"

struct bb_publisher;

struct bb_publisher_options {
	const char *urls;	/* comma-separated AMQP URLs, tried in order */
	const char *exchange;
	const char *exchange_type;
	int confirm_timeout_ms;	/* from the first byte written to the confirm */
	int connect_timeout_ms;	/* one whole connect over the URL list */
	int heartbeat_s;	/* 0: no heartbeats */
	const char *unrouted_queue_type;	/* quorum or classic */
	long unrouted_max_bytes;	/* its x-max-length-bytes */
	const char *archive_stream;	/* "": no archive stream */
	const char *archive_max_age;
	long archive_max_bytes;
	/* amqps:// URLs */
	const char *tls_ca;	/* CA bundle (PEM); "": the system's store */
	const char *tls_cert;	/* client certificate (PEM); "": none */
	const char *tls_key;	/* its unencrypted key (PEM) */
	bool tls_verify;	/* the broker's certificate and host name */
};

enum bb_broker_state {
	BB_BROKER_UP,
	BB_BROKER_DOWN,
	BB_BROKER_BLOCKED,	/* connected; the broker refuses to read */
};

/* Creates the publisher; it connects lazily, so a broker that is down at
 * start does not stop the worker. */
struct bb_publisher *bb_publisher_new(const struct bb_publisher_options *opt);
void bb_publisher_free(struct bb_publisher *pub);

/* Writes msg, connecting first if need be. Returns PENDING once the whole
 * message is written (then bb_publisher_wait or _result must follow), else
 * UNAVAILABLE or BLOCKED: nothing was published. The message has until
 * deadline (monotonic ms; 0 for RABBIT_CONFIRM_TIMEOUT_MS from its first
 * byte) to be written and confirmed. msg's message_id must outlive the
 * wait. */
enum bb_publish_result bb_publisher_send(struct bb_publisher *pub,
    const struct bb_message *msg, struct bb_publish *p, long long deadline);
/* Waits until p's confirm comes or its deadline passes; returns (and
 * leaves in p->result) the final result. */
enum bb_publish_result bb_publisher_wait(struct bb_publisher *pub,
    struct bb_publish *p);
/* The same without waiting: PENDING while the confirm may still come. */
enum bb_publish_result bb_publisher_result(struct bb_publisher *pub,
    struct bb_publish *p);

/* The broker's state for /healthz, connecting within timeout_ms if need be
 * (and if the reconnect backoff allows). */
enum bb_broker_state bb_publisher_check(struct bb_publisher *pub,
    int timeout_ms);

/* The socket an idle worker watches (-1 while disconnected), and what it
 * calls when that socket is readable or once a second: reads what the
 * broker sent (connection.blocked, unblocked, close, heartbeats) and sends
 * heartbeats that are due. Never blocks. */
int bb_publisher_fd(const struct bb_publisher *pub);
void bb_publisher_service(struct bb_publisher *pub);

const char *bb_publish_result_name(enum bb_publish_result r);

#endif
