/* event: turns a publish request into its envelope -- headers, body
 * parsing, the endpoint's validation, parents, the event id -- with no I/O,
 * so that all of it can be unit-tested and fuzzed. */
#ifndef BB_EVENT_H
#define BB_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "catalog.h"
#include "claim.h"
#include "cloudevent.h"
#include "envelope.h"
#include "http.h"
#include "json.h"

/* The UUIDv5 name of a Fireflies webhook's event, before the meeting id
 * (CONTRACT §4.5). */
#define BB_FIREFLIES_NAME_PREFIX "bloodbank/webhook/fireflies:"
/* ... and of a CloudEvent's, before its source, LF, its id (§9.1). */
#define BB_CLOUDEVENTS_NAME_PREFIX "bloodbank/cloudevents\n"

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
	const char *key;		/* idempotency key, from header or webhook,
					 * or a CloudEvent's identity */
	size_t key_len;
	/* A CloudEvent (§9): its attributes, what makes a retry "the same
	 * event", and its data when that is not JSON. */
	bool cloudevent;
	struct bb_cloudevent ce;
	struct bb_buf fingerprint;
	struct bb_buf data_base64;
	char source_app[65];		/* POST /events may name its source */
	char source_type[65];
	/* The schemas of SCHEMA_DIR (NULL: none), set by the caller and
	 * kept from one request to the next, and their working memory. */
	const struct bb_catalog *catalog;
	struct bb_jsonschema_work schema_work;
	/* ENVELOPE_FORMAT=cloudevents: the document is a CloudEvent (§9.3);
	 * set by the caller, like the catalog. */
	bool cloudevents_out;
	/* The body came with a signature that was checked (a signed
	 * webhook): set by the caller for each request. */
	bool signed_body;
};

void bb_event_init(struct bb_event *ev);
void bb_event_free(struct bb_event *ev);

/* Builds the event of a publish route (arg is the {event_type} of
 * BB_ROUTE_EVENT_TYPE) from req and its body, stamped with now: a partial
 * envelope on POST /events, or a CloudEvent in structured mode (Content-
 * Type application/cloudevents+json) or binary mode (a ce-specversion
 * header). Returns 0 with the published document in ev->json, or -1 with
 * the client error in resp. */
int bb_event_build(struct bb_event *ev, enum bb_route route, const char *arg,
    size_t arg_len, const struct bb_request *req, const char *body,
    size_t body_len, const struct timespec *now, struct bb_response *resp);

/* Builds one item of POST /events/batch (§4.10) from its JSON text: a
 * partial envelope as for POST /events plus an optional idempotency_key,
 * or, when the batch is application/cloudevents-batch+json, a structured
 * CloudEvent; req's X-Correlation-Ids and trace headers apply to it (its
 * Idempotency-Key header must have been refused). Returns 0, or -1 with
 * the item's error in resp. */
int bb_event_build_item(struct bb_event *ev, const struct bb_request *req,
    const char *item, size_t len, const struct timespec *now,
    struct bb_response *resp);

/* Whether a publish request's Content-Type is one that route takes:
 * JSON, or on POST /events and /events/batch a CloudEvents mode. */
bool bb_event_content_type_ok(enum bb_route route,
    const struct bb_request *req);

/* What makes two requests with one idempotency key (or CloudEvent
 * identity) "the same", hashed: the body or item text as sent; a
 * webhook's meeting id; a CloudEvent's attributes and data, however they
 * came. */
void bb_event_fingerprint(const struct bb_event *ev,
    uint8_t hash[BB_BODY_HASH_LEN]);

#endif
