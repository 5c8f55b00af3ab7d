/* publisher: one persistent AMQP connection per worker, publishing with
 * publisher confirms (RabbitMQ's extension to AMQP 0-9-1). */
#ifndef BB_PUBLISHER_H
#define BB_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct bb_publisher;

struct bb_publisher_options {
	const char *urls;	/* comma-separated AMQP URLs, tried in order */
	const char *exchange;
	const char *exchange_type;
	int confirm_timeout_ms;
	int connect_timeout_ms;
};

struct bb_message {
	const char *routing_key;
	const char *body;
	size_t body_len;
	const char *message_id;
	const char *correlation_id;	/* NULL for none */
	const char *type;
	time_t timestamp;
	const char *traceparent;	/* NULL for none */
	const char *tracestate;
};

enum bb_publish_result {
	BB_PUBLISH_OK,
	BB_PUBLISH_UNAVAILABLE,	/* no connection to any broker */
	BB_PUBLISH_NACKED,	/* the broker refused the message */
	BB_PUBLISH_TIMEOUT,	/* no confirm within confirm_timeout_ms */
	BB_PUBLISH_UNROUTABLE,	/* returned: no queue and no alternate */
};

/* Creates the publisher; it connects lazily, so a broker that is down at
 * start does not stop the worker. */
struct bb_publisher *bb_publisher_new(const struct bb_publisher_options *opt);
void bb_publisher_free(struct bb_publisher *pub);

/* Publishes persistently (mandatory), reconnecting first if the connection
 * was lost: OK once sent, or UNAVAILABLE. */
enum bb_publish_result bb_publisher_send(struct bb_publisher *pub,
    const struct bb_message *msg);
/* Waits for the broker's confirm of the message just sent. Between the two
 * calls the caller may do other work, which then costs no extra time. */
enum bb_publish_result bb_publisher_confirm(struct bb_publisher *pub,
    const char *event_id);

/* True when a connection is up, connecting within timeout_ms if not. */
bool bb_publisher_healthy(struct bb_publisher *pub, int timeout_ms);

const char *bb_publish_result_name(enum bb_publish_result r);

#endif
