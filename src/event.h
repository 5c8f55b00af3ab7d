/* event: turns a publish request into its envelope -- headers, body
 * parsing, the endpoint's validation, parents, the event id -- with no I/O,
 * so that all of it can be unit-tested and fuzzed. */
#ifndef BB_EVENT_H
#define BB_EVENT_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "catalog.h"
#include "envelope.h"
#include "http.h"
#include "json.h"

/* The UUIDv5 name of a Fireflies webhook's event, before the meeting id
 * (CONTRACT §4.5). */
#define BB_FIREFLIES_NAME_PREFIX "bloodbank/webhook/fireflies:"

struct bb_event {
	struct bb_envelope env;
	struct bb_buf json;		/* the envelope, as published */
	/* working storage, reused from one request to the next */
	struct bb_json doc;
	struct bb_buf payload;
	struct bb_buf errors;		/* validation errors, a JSON array's inside */
	struct bb_buf agent_context;
	struct bb_buf source_meta;
	struct bb_buf webhook_key;	/* the webhook's meeting id, its key */
	struct bb_buf name;		/* the UUIDv5 name of an idempotent event */
	struct bb_buf item_key;		/* a batch item's idempotency_key */
	const char *key;		/* idempotency key, from header or webhook */
	size_t key_len;
	char source_app[65];		/* POST /events may name its source */
	char source_type[65];
	/* The schemas of SCHEMA_DIR (NULL: none), set by the caller and
	 * kept from one request to the next, and their working memory. */
	const struct bb_catalog *catalog;
	struct bb_jsonschema_work schema_work;
};

void bb_event_init(struct bb_event *ev);
void bb_event_free(struct bb_event *ev);

/* Builds the event of a publish route (arg is the {event_type} of
 * BB_ROUTE_EVENT_TYPE) from req and its body, stamped with now. Returns 0
 * with the envelope in ev->json, or -1 with the client error in resp. */
int bb_event_build(struct bb_event *ev, enum bb_route route, const char *arg,
    size_t arg_len, const struct bb_request *req, const char *body,
    size_t body_len, const struct timespec *now, struct bb_response *resp);

/* Builds one item of POST /events/batch (§4.10) from its JSON text: a
 * partial envelope as for POST /events plus an optional idempotency_key;
 * req's X-Correlation-Ids and trace headers apply to it (its
 * Idempotency-Key header must have been refused). Returns 0, or -1 with
 * the item's error in resp. */
int bb_event_build_item(struct bb_event *ev, const struct bb_request *req,
    const char *item, size_t len, const struct timespec *now,
    struct bb_response *resp);

#endif
