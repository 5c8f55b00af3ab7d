#include "event.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "uuid.h"
#include "validate.h"
#include "xalloc.h"

#define MAX_HEADER_VALUE 512

void
bb_event_init(struct bb_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	bb_buf_init(&ev->json);
	bb_buf_init(&ev->payload);
	bb_buf_init(&ev->errors);
	bb_buf_init(&ev->agent_context);
	bb_buf_init(&ev->source_meta);
	bb_buf_init(&ev->webhook_key);
	bb_buf_init(&ev->name);
	bb_buf_init(&ev->item_key);
	bb_buf_init(&ev->fingerprint);
	bb_buf_init(&ev->data_base64);
	bb_cloudevent_init(&ev->ce);
	bb_jsonschema_work_init(&ev->schema_work);
}

void
bb_event_free(struct bb_event *ev)
{
	bb_json_free(&ev->doc);
	bb_buf_free(&ev->json);
	bb_buf_free(&ev->payload);
	bb_buf_free(&ev->errors);
	bb_buf_free(&ev->agent_context);
	bb_buf_free(&ev->source_meta);
	bb_buf_free(&ev->webhook_key);
	bb_buf_free(&ev->name);
	bb_buf_free(&ev->item_key);
	bb_buf_free(&ev->fingerprint);
	bb_buf_free(&ev->data_base64);
	bb_cloudevent_free(&ev->ce);
	bb_jsonschema_work_free(&ev->schema_work);
}

/* Forgets the previous request, keeping the buffers' memory. */
static void
reset(struct bb_event *ev)
{
	bb_json_free(&ev->doc);
	memset(&ev->env, 0, sizeof(ev->env));
	bb_buf_reset(&ev->json);
	bb_buf_reset(&ev->payload);
	bb_buf_reset(&ev->errors);
	bb_buf_reset(&ev->agent_context);
	bb_buf_reset(&ev->source_meta);
	bb_buf_reset(&ev->webhook_key);
	bb_buf_reset(&ev->name);
	bb_buf_reset(&ev->item_key);
	bb_buf_reset(&ev->fingerprint);
	bb_buf_reset(&ev->data_base64);
	ev->key = NULL;
	ev->key_len = 0;
	ev->cloudevent = false;
	ev->source_app[0] = '\0';
	ev->source_type[0] = '\0';
}

static void
validation_failed(struct bb_event *ev, struct bb_response *resp,
    const char *detail)
{
	bb_response_error_fields(resp, 422, "validation_error", detail,
	    ev->errors.data ? ev->errors.data : "", ev->errors.len);
}

static bool
printable_ascii(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	for (; *s; s++) {
		if (*s < 0x20 || *s > 0x7e)
			return false;
	}
	return true;
}

/* Adds the parents of a comma-separated list of UUIDs (X-Correlation-Ids,
 * §5; causationid, §9.1). Returns -1 for an entry that is no UUID or a
 * parent past BB_MAX_PARENTS. */
static int
add_parents(struct bb_event *ev, const char *ids)
{
	while (ids && *ids) {
		size_t n = strcspn(ids, ",");
		const char *id = ids;
		size_t len = n;
		while (len && *id == ' ')
			id++, len--;
		while (len && id[len - 1] == ' ')
			len--;
		if (!bb_uuid_valid(id, len) ||
		    bb_envelope_add_parent(&ev->env, id) != 0)
			return -1;
		ids += n + (ids[n] == ',');
	}
	return 0;
}

/* CONTRACT §5: Idempotency-Key, X-Correlation-Ids, trace context. */
static int
read_headers(const struct bb_request *req, struct bb_event *ev,
    struct bb_response *resp)
{
	const char *ids = req->correlation_ids;

	if (req->idempotency_key) {
		if (!printable_ascii(req->idempotency_key, 1, 255)) {
			bb_response_error(resp, 400, "invalid_request", "Idempotency-Key "
			    "must be 1-255 printable ASCII characters");
			return -1;
		}
		ev->key = req->idempotency_key;
		ev->key_len = strlen(ev->key);
	}
	if ((req->traceparent && !printable_ascii(req->traceparent, 1,
	    MAX_HEADER_VALUE)) || (req->tracestate &&
	    !printable_ascii(req->tracestate, 0, MAX_HEADER_VALUE))) {
		bb_response_error(resp, 400, "invalid_request", "traceparent and "
		    "tracestate must be printable ASCII of at most 512 bytes");
		return -1;
	}
	ev->env.traceparent = req->traceparent;
	ev->env.tracestate = req->tracestate;
	if (add_parents(ev, ids) != 0) {
		bb_response_error(resp, 400, "invalid_request",
		    "X-Correlation-Ids must be at most 32 comma-separated UUIDs");
		return -1;
	}
	return 0;
}

/* The body as JSON, any value. */
static int
parse_json(struct bb_event *ev, const char *body, size_t len,
    struct bb_response *resp)
{
	char err[128];
	enum bb_json_status st = bb_json_parse(&ev->doc, body ? body : "", len,
	    err, sizeof(err));

	if (st == BB_JSON_INVALID) {
		bb_response_error(resp, 400, "invalid_json", err);
		return -1;
	}
	if (st == BB_JSON_TOO_LARGE) {
		bb_response_error(resp, 413, "payload_too_large", err);
		return -1;
	}
	return 0;
}

/* The body as a JSON object. */
static int
parse_body(struct bb_event *ev, const char *body, size_t len,
    struct bb_response *resp)
{
	if (parse_json(ev, body, len, resp) != 0)
		return -1;
	if (bb_json_type(&ev->doc, 0) != BB_JSON_OBJECT) {
		bb_buf_reset(&ev->errors);
		validation_failed(ev, resp, "the request body must be a JSON object");
		return -1;
	}
	return 0;
}

static void
set_type(struct bb_event *ev, const char *type, size_t len)
{
	snprintf(ev->env.event_type, sizeof(ev->env.event_type), "%.*s", (int)len,
	    type);
}

/* §4.2-§4.4: a typed endpoint, its schema and routing key. */
static int
build_typed(struct bb_event *ev, const struct bb_schema *s,
    const char *type, struct bb_response *resp)
{
	if (bb_validate(&ev->doc, 0, s, &ev->payload, &ev->errors) != 0) {
		validation_failed(ev, resp, "the request body does not match the "
		    "endpoint's schema");
		return -1;
	}
	if (type) {
		set_type(ev, type, strlen(type));
		return 0;
	}
	/* artifact.<action>; the schema has checked the action. */
	struct bb_buf action;
	bb_buf_init(&action);
	bb_json_unescape(&ev->doc, bb_json_get(&ev->doc, 0, "action"), &action);
	snprintf(ev->env.event_type, sizeof(ev->env.event_type), "artifact.%s",
	    action.data);
	bb_buf_free(&action);
	return 0;
}

/* §4.3: the UUID in field `name` of object obj (prompt_id) is the first
 * parent, and so the AMQP correlation_id. */
static int
add_field_parent(struct bb_event *ev, int obj, const char *name,
    struct bb_response *resp)
{
	int v = bb_json_get(&ev->doc, obj, name);
	struct bb_envelope *env = &ev->env;
	size_t len;

	if (v < 0 || bb_json_type(&ev->doc, v) != BB_JSON_STRING)
		return 0;
	const char *id = bb_json_raw(&ev->doc, v, &len);
	char lower[BB_UUID_STRLEN + 1];
	bb_uuid_lower(id, lower);
	for (int k = 0; k < env->nparents; k++) {
		if (strcmp(env->parents[k], lower) == 0) {
			memmove(env->parents[1], env->parents[0],
			    (size_t)k * sizeof(env->parents[0]));
			memcpy(env->parents[0], lower, sizeof(lower));
			return 0;
		}
	}
	if (env->nparents == BB_MAX_PARENTS) {
		bb_response_error(resp, 400, "invalid_request",
		    "more than 32 parent event ids");
		return -1;
	}
	memmove(env->parents[1], env->parents[0],
	    (size_t)env->nparents * sizeof(env->parents[0]));
	memcpy(env->parents[0], lower, sizeof(lower));
	env->nparents++;
	return 0;
}

/* §10: a payload whose event type has a schema in SCHEMA_DIR must match
 * it; it is then kept as sent. */
static int
check_schema(struct bb_event *ev, int obj, struct bb_response *resp)
{
	const char *type = ev->env.event_type;
	const struct bb_jsonschema *s = bb_catalog_find(ev->catalog, type,
	    strlen(type));
	char text[320];

	if (s != NULL && bb_jsonschema_validate(s, &ev->doc, obj,
	    &ev->schema_work, &ev->errors) != 0) {
		snprintf(text, sizeof(text), "the payload does not match the "
		    "schema of event type %s", type);
		validation_failed(ev, resp, text);
		return -1;
	}
	bb_json_write_value(&ev->payload, &ev->doc, obj);
	return 0;
}

/* §4.6: a payload published under an event type that has a typed endpoint
 * gets that endpoint's validation whichever path it takes, so that the
 * consumers of a typed routing key can trust its schema; any other payload
 * meets its schema file, if it has one, and is kept as sent. */
static int
build_payload(struct bb_event *ev, int obj, struct bb_response *resp)
{
	const char *type = ev->env.event_type;
	const struct bb_typed *t = bb_typed_lookup(type, strlen(type));
	char text[128];

	if (t == NULL)
		return check_schema(ev, obj, resp);
	if (bb_validate(&ev->doc, obj, t->schema, &ev->payload, &ev->errors) == 0 &&
	    t->action && !bb_json_string_equals(&ev->doc,
	    bb_json_get(&ev->doc, obj, "action"), t->action)) {
		snprintf(text, sizeof(text), "must be \"%s\" for event type %s",
		    t->action, t->event_type);
		bb_validate_error(&ev->errors, "action", text);
	}
	if (ev->errors.len) {
		snprintf(text, sizeof(text), "the payload does not match the "
		    "schema of event type %s", t->event_type);
		validation_failed(ev, resp, text);
		return -1;
	}
	if (t->parent_field)
		return add_field_parent(ev, obj, t->parent_field, resp);
	return 0;
}

/* "sha256:<hex>" of the request body, the name of a signed delivery
 * without a meeting id. */
static void
body_digest_name(const struct bb_event *ev, struct bb_buf *out)
{
	uint8_t hash[32];

	EVP_Digest(ev->doc.text, ev->doc.len, hash, NULL, EVP_sha256(), NULL);
	bb_buf_puts(out, "sha256:");
	for (size_t k = 0; k < sizeof(hash); k++)
		bb_buf_printf(out, "%02x", hash[k]);
}

/* §4.5: the Fireflies webhook becomes an artifact.created event. */
static int
build_fireflies(struct bb_event *ev, struct bb_response *resp)
{
	const struct bb_json *d = &ev->doc;
	int data = bb_json_get(d, 0, "data");
	int url = -1, title = -1, id = -1;

	if (data < 0 || bb_json_type(d, data) != BB_JSON_OBJECT) {
		bb_validate_error(&ev->errors, "data", "must be an object");
	} else {
		url = bb_json_get(d, data, "url");
		if (url < 0 || bb_json_type(d, url) != BB_JSON_STRING)
			url = bb_json_get(d, data, "transcript_url");
		if (url < 0 || bb_json_type(d, url) != BB_JSON_STRING)
			bb_validate_error(&ev->errors, "data.url",
			    "required: a string in data.url or data.transcript_url");
		title = bb_json_get(d, data, "title");
		if (title < 0 || bb_json_type(d, title) != BB_JSON_STRING)
			bb_validate_error(&ev->errors, "data.title",
			    "required: a string");
		id = bb_json_get(d, data, "id");
		if (id >= 0 && bb_json_type(d, id) == BB_JSON_NULL)
			id = -1;	/* a delivery without a meeting id */
		if (id >= 0 && bb_json_type(d, id) != BB_JSON_STRING &&
		    bb_json_type(d, id) != BB_JSON_NUMBER)
			bb_validate_error(&ev->errors, "data.id",
			    "must be a string or a number");
	}
	if (ev->errors.len) {
		validation_failed(ev, resp, "the webhook lacks what an artifact "
		    "needs");
		return -1;
	}
	bb_buf_puts(&ev->payload, "{\"action\":\"created\",\"kind\":\"transcript\","
	    "\"uri\":");
	bb_json_write_value(&ev->payload, d, url);
	bb_buf_puts(&ev->payload, ",\"title\":");
	bb_json_write_value(&ev->payload, d, title);
	bb_buf_puts(&ev->payload, ",\"content\":null,\"metadata\":{\"source\":"
	    "\"fireflies\",\"meeting_id\":");
	if (id >= 0)
		bb_json_write_value(&ev->payload, d, id);
	else
		bb_buf_puts(&ev->payload, "null");
	bb_buf_puts(&ev->payload, "}}");
	set_type(ev, "artifact.created", strlen("artifact.created"));
	ev->env.source_type = "hook";
	ev->env.source_app = "fireflies";
	/* A redelivered webhook is the same event, whatever Idempotency-Key
	 * came with it: its id is over the meeting id alone (assign_event_id)
	 * -- or, signed and without one, over the signed body's SHA-256, so
	 * that a captured delivery sent again is a replay, not a new event. */
	struct bb_buf *key = &ev->webhook_key;
	if (id >= 0 && bb_json_type(d, id) == BB_JSON_STRING)
		bb_json_unescape(d, id, key);
	else if (id >= 0)
		bb_json_write_value(key, d, id);
	else if (ev->signed_body)
		body_digest_name(ev, key);
	if (key->len) {
		ev->key = key->data;
		ev->key_len = key->len;
	}
	return 0;
}

/* §4.6: POST /events/{event_type}; the whole body is the payload. */
static int
build_event_type(struct bb_event *ev, const char *type,
    size_t len, struct bb_response *resp)
{
	if (!bb_event_type_valid(type, len)) {
		bb_response_error(resp, 400, "invalid_request", "event_type must be "
		    "1-255 bytes of [a-z0-9_-] segments joined by single dots");
		return -1;
	}
	set_type(ev, type, len);
	return build_payload(ev, 0, resp);
}

/* A source name in POST /events: 1-64 of [A-Za-z0-9_.:-], so that the raw
 * token is its value (no escapes possible). Returns false when invalid. */
static bool
copy_source_name(const struct bb_json *d, int v, char *out, size_t outlen)
{
	size_t len;
	const char *raw;

	if (v < 0)
		return true;
	if (bb_json_type(d, v) != BB_JSON_STRING)
		return false;
	raw = bb_json_raw(d, v, &len);
	if (len < 1 || len >= outlen || strspn(raw, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") < len)
		return false;
	memcpy(out, raw, len);
	out[len] = '\0';
	return true;
}

static void
read_source(struct bb_event *ev, int source)
{
	const struct bb_json *d = &ev->doc;
	int meta;

	if (source < 0 || bb_json_type(d, source) == BB_JSON_NULL)
		return;
	if (bb_json_type(d, source) != BB_JSON_OBJECT) {
		bb_validate_error(&ev->errors, "source", "must be an object");
		return;
	}
	if (!copy_source_name(d, bb_json_get(d, source, "app"), ev->source_app,
	    sizeof(ev->source_app)))
		bb_validate_error(&ev->errors, "source.app",
		    "must be 1-64 characters of [A-Za-z0-9_.:-]");
	if (!copy_source_name(d, bb_json_get(d, source, "type"), ev->source_type,
	    sizeof(ev->source_type)))
		bb_validate_error(&ev->errors, "source.type",
		    "must be 1-64 characters of [A-Za-z0-9_.:-]");
	/* Consumers tell a webhook from a client by this: only webhooks
	 * may say it (§4.6). */
	if (strcasecmp(ev->source_type, "hook") == 0)
		bb_validate_error(&ev->errors, "source.type",
		    "hook is reserved for webhooks");
	meta = bb_json_get(d, source, "meta");
	if (meta >= 0 && bb_json_type(d, meta) != BB_JSON_NULL) {
		if (bb_json_type(d, meta) != BB_JSON_OBJECT)
			bb_validate_error(&ev->errors, "source.meta",
			    "must be an object");
		else
			bb_json_write_value(&ev->source_meta, d, meta);
	}
	if (ev->source_app[0])
		ev->env.source_app = ev->source_app;
	if (ev->source_type[0])
		ev->env.source_type = ev->source_type;
	if (ev->source_meta.len)
		ev->env.source_meta = ev->source_meta.data;
}

static void
read_parents(struct bb_event *ev, int ids)
{
	const struct bb_json *d = &ev->doc;
	int j = ids + 1;
	char body_ids[BB_MAX_PARENTS][BB_UUID_STRLEN + 1];
	int n = 0;

	if (ids < 0 || bb_json_type(d, ids) == BB_JSON_NULL)
		return;
	if (bb_json_type(d, ids) != BB_JSON_ARRAY ||
	    bb_json_size(d, ids) > BB_MAX_PARENTS) {
		bb_validate_error(&ev->errors, "correlation_ids",
		    "must be an array of at most 32 UUIDs");
		return;
	}
	for (int k = 0; k < bb_json_size(d, ids); k++, j++) {
		size_t len;
		const char *raw = bb_json_raw(d, j, &len);
		if (bb_json_type(d, j) != BB_JSON_STRING || !bb_uuid_valid(raw, len)) {
			bb_validate_error(&ev->errors, "correlation_ids",
			    "must be an array of at most 32 UUIDs");
			return;
		}
		bb_uuid_lower(raw, body_ids[n++]);
	}
	/* The body's parents come first, then the header's. */
	struct bb_envelope merged = ev->env;
	merged.nparents = 0;
	for (int k = 0; k < n; k++)
		bb_envelope_add_parent(&merged, body_ids[k]);
	for (int k = 0; k < ev->env.nparents; k++) {
		if (bb_envelope_add_parent(&merged, ev->env.parents[k]) != 0) {
			bb_validate_error(&ev->errors, "correlation_ids",
			    "more than 32 parents with X-Correlation-Ids");
			return;
		}
	}
	ev->env = merged;
}

/* §4.6: POST /events, a partial envelope -- and, with item, one item of a
 * batch (§4.10), which may also carry its idempotency_key. */
static int
build_events(struct bb_event *ev, bool item, struct bb_response *resp)
{
	static const char *const known[] = { "event_type", "payload",
		"correlation_ids", "agent_context", "source", NULL };
	const struct bb_json *d = &ev->doc;
	int type = bb_json_get(d, 0, "event_type");
	int payload = bb_json_get(d, 0, "payload");
	int agent = bb_json_get(d, 0, "agent_context");
	size_t len = 0;
	const char *raw = type >= 0 ? bb_json_raw(d, type, &len) : NULL;

	if (type < 0 || bb_json_type(d, type) != BB_JSON_STRING ||
	    !bb_event_type_valid(raw, len))
		bb_validate_error(&ev->errors, "event_type", "required: 1-255 "
		    "bytes of [a-z0-9_-] segments joined by single dots");
	else
		set_type(ev, raw, len);
	if (payload < 0 || bb_json_type(d, payload) != BB_JSON_OBJECT)
		bb_validate_error(&ev->errors, "payload", "required: an object");
	if (agent >= 0 && bb_json_type(d, agent) != BB_JSON_NULL) {
		if (bb_json_type(d, agent) != BB_JSON_OBJECT)
			bb_validate_error(&ev->errors, "agent_context",
			    "must be an object or null");
		else
			bb_json_write_value(&ev->agent_context, d, agent);
	}
	read_parents(ev, bb_json_get(d, 0, "correlation_ids"));
	read_source(ev, bb_json_get(d, 0, "source"));
	for (int m = bb_json_member(d, 0, -1); m >= 0;
	    m = bb_json_member(d, 0, m)) {
		bool ok = item && bb_json_string_equals(d, m, "idempotency_key");
		for (int k = 0; known[k] && !ok; k++)
			ok = bb_json_string_equals(d, m, known[k]);
		if (!ok) {
			struct bb_buf key;
			bb_buf_init(&key);
			bb_json_unescape(d, m, &key);
			bb_validate_error(&ev->errors, key.data ? key.data : "",
			    "unknown envelope field");
			bb_buf_free(&key);
		}
	}
	if (ev->errors.len) {
		validation_failed(ev, resp, "the partial envelope is not valid");
		return -1;
	}
	if (ev->agent_context.len)
		ev->env.agent_context = ev->agent_context.data;
	return build_payload(ev, payload, resp);
}

static int
build(struct bb_event *ev, enum bb_route route, const char *arg, size_t arg_len,
    struct bb_response *resp)
{
	switch (route) {
	case BB_ROUTE_LLM_PROMPT:
		return build_typed(ev, &bb_schema_llm_prompt, "llm.prompt", resp);
	case BB_ROUTE_LLM_RESPONSE:
		if (build_typed(ev, &bb_schema_llm_response, "llm.response",
		    resp) != 0)
			return -1;
		return add_field_parent(ev, 0, "prompt_id", resp);
	case BB_ROUTE_ARTIFACT:
		return build_typed(ev, &bb_schema_artifact, NULL, resp);
	case BB_ROUTE_FIREFLIES:
		return build_fireflies(ev, resp);
	case BB_ROUTE_EVENTS:
		return build_events(ev, false, resp);
	case BB_ROUTE_EVENT_TYPE:
		return build_event_type(ev, arg, arg_len, resp);
	default:
		bb_response_error(resp, 500, "internal_error", "no such endpoint");
		return -1;
	}
}

/* §5: an idempotent event's id is UUIDv5 over bloodbank:<type>:<key>; a
 * webhook's over bloodbank/webhook/fireflies:<meeting id> (§4.5), a name
 * that no client key produces, so that no client can take a meeting's id
 * before its webhook comes. */
static void
assign_event_id(struct bb_event *ev)
{
	if (ev->key == NULL) {
		bb_uuid_random(ev->env.event_id);
		return;
	}
	if (ev->cloudevent) {	/* the key is the whole name */
		bb_uuid_oid_v5(ev->key, ev->key_len, ev->env.event_id);
		return;
	}
	bb_buf_reset(&ev->name);
	if (ev->webhook_key.len)
		bb_buf_puts(&ev->name, BB_FIREFLIES_NAME_PREFIX);
	else
		bb_buf_printf(&ev->name, "bloodbank:%s:", ev->env.event_type);
	bb_buf_append(&ev->name, ev->key, ev->key_len);
	bb_uuid_oid_v5(ev->name.data, ev->name.len, ev->env.event_id);
}

/* Forgets the previous request and takes what every event gets from this
 * one before its body is read. */
static void
begin(struct bb_event *ev, const struct bb_request *req)
{
	reset(ev);
	ev->env.source_host = req->remote_addr;
	ev->env.source_type = "manual";
	ev->env.source_app = "http";
}

/* ---------------------------------------------------------- CloudEvents */

/* §9.1 binary mode: the request carries ce-specversion. */
static bool
binary_mode(const struct bb_request *req)
{
	return req->ce_specversion;
}

/* causationid: one parent id or several joined by commas (§9.1). */
static void
read_causation(struct bb_event *ev, const char *ids)
{
	if (add_parents(ev, ids) != 0)
		bb_validate_error(&ev->errors, "causationid", "at most 32 "
		    "event ids (UUIDs) joined by commas");
}

/* The trace context from the extensions, else from the headers (§5). */
static void
read_trace(struct bb_event *ev)
{
	static const enum bb_ce_attribute a[] = { BB_CE_TRACEPARENT,
		BB_CE_TRACESTATE };

	for (int k = 0; k < 2; k++) {
		const char *v = bb_cloudevent_get(&ev->ce, a[k]);
		if (v == NULL)
			continue;
		if (!printable_ascii(v, k == 0, MAX_HEADER_VALUE)) {
			bb_validate_error(&ev->errors, k ? "tracestate" :
			    "traceparent", "must be printable ASCII of at most "
			    "512 bytes");
			continue;
		}
		if (k == 0)
			ev->env.traceparent = v;
		else
			ev->env.tracestate = v;
	}
}

/* The payload of a CloudEvent: its JSON data (token data of ev->doc, or
 * -1 for none) through the validation of its type, or -- published as a
 * CloudEvent only -- data of another media type as sent. */
static int
ce_data(struct bb_event *ev, int data, bool json, struct bb_response *resp)
{
	const char *type = ev->env.event_type;
	bool checked = bb_typed_lookup(type, strlen(type)) != NULL ||
	    bb_catalog_find(ev->catalog, type, strlen(type)) != NULL;

	if ((checked || !ev->cloudevents_out) && !json) {
		bb_response_error(resp, 415, "unsupported_media_type", checked ?
		    "this event type's data is checked against its schema: "
		    "send it as JSON" : "with ENVELOPE_FORMAT=bloodbank, a "
		    "CloudEvent's data must be JSON");
		return -1;
	}
	if (json && data >= 0)
		return build_payload(ev, data, resp);
	if (checked && data < 0) {
		bb_validate_error(&ev->errors, "data", "required: this event "
		    "type's data is checked against its schema");
		validation_failed(ev, resp, "the CloudEvent is not valid");
		return -1;
	}
	if (data >= 0)	/* another media type, as a JSON value */
		bb_json_write_value(&ev->payload, &ev->doc, data);
	return 0;
}

/* §9.1: a CloudEvent's identity is its source and id. */
static int
refuse_key(const struct bb_request *req, struct bb_response *resp)
{
	if (req->idempotency_key == NULL)
		return 0;
	bb_response_error(resp, 400, "invalid_request", "a CloudEvent's "
	    "identity is its source and id: send no Idempotency-Key");
	return -1;
}

/* What the native endpoints' events get from their requests, from a
 * CloudEvent's attributes: the type, parents, trace context, identity,
 * and the source of §9.2. */
static int
ce_attributes(struct bb_event *ev, struct bb_response *resp)
{
	struct bb_cloudevent *ce = &ev->ce;
	const char *type = bb_cloudevent_get(ce, BB_CE_TYPE);

	if (type && !bb_event_type_valid(type, strlen(type)))
		bb_validate_error(&ev->errors, "type", "must be 1-255 bytes of "
		    "[a-z0-9_-] segments joined by single dots");
	else if (type)
		set_type(ev, type, strlen(type));
	read_causation(ev, bb_cloudevent_get(ce, BB_CE_CAUSATIONID));
	read_trace(ev);
	if (ev->errors.len) {
		validation_failed(ev, resp, "the CloudEvent is not valid");
		return -1;
	}
	ev->cloudevent = true;
	bb_buf_puts(&ev->name, BB_CLOUDEVENTS_NAME_PREFIX);
	bb_buf_puts(&ev->name, bb_cloudevent_get(ce, BB_CE_SOURCE));
	bb_buf_putc(&ev->name, '\n');
	bb_buf_puts(&ev->name, bb_cloudevent_get(ce, BB_CE_ID));
	ev->key = ev->name.data;
	ev->key_len = ev->name.len;
	ev->env.source_type = "cloudevents";
	ev->env.source_app = bb_cloudevent_get(ce, BB_CE_SOURCE);
	bb_buf_putc(&ev->source_meta, '{');
	bb_buf_append(&ev->source_meta, ce->meta.data, ce->meta.len);
	bb_buf_putc(&ev->source_meta, '}');
	ev->env.source_meta = ev->source_meta.data;
	return 0;
}

static int
by_name(const void *a, const void *b, void *doc)
{
	size_t la, lb;
	const char *x = bb_json_raw(doc, *(const int *)a, &la);
	const char *y = bb_json_raw(doc, *(const int *)b, &lb);
	int c = memcmp(x, y, la < lb ? la : lb);

	return c ? c : (la > lb) - (la < lb);
}

/* Appends members (JSON object members that this module wrote, so escaped
 * one way only) sorted by name. */
static void
sorted_members(const struct bb_buf *members, struct bb_buf *out)
{
	struct bb_buf obj;
	struct bb_json doc;
	char err[64];
	int *names, n = 0;

	bb_buf_init(&obj);
	bb_buf_putc(&obj, '{');
	bb_buf_append(&obj, members->data, members->len);
	bb_buf_putc(&obj, '}');
	if (bb_json_parse(&doc, obj.data, obj.len, err, sizeof(err)) ==
	    BB_JSON_OK) {
		names = bb_xcalloc((size_t)bb_json_size(&doc, 0) + 1,
		    sizeof(*names));
		for (int m = bb_json_member(&doc, 0, -1); m >= 0;
		    m = bb_json_member(&doc, 0, m))
			names[n++] = m;
		qsort_r(names, (size_t)n, sizeof(*names), by_name, &doc);
		for (int k = 0; k < n; k++) {
			bb_json_write_value(out, &doc, names[k]);
			bb_buf_putc(out, ':');
			bb_json_write_value(out, &doc, names[k] + 1);
			bb_buf_putc(out, ',');
		}
		free(names);
	}
	bb_json_free(&doc);
	bb_buf_free(&obj);
}

/* A CloudEvent whose attributes are read (data: its JSON data's token, or
 * -1), made the event that the native endpoints build. */
static int
ce_finish(struct bb_event *ev, int data, bool json, struct bb_response *resp)
{
	struct bb_buf *f = &ev->fingerprint;

	if (ce_attributes(ev, resp) != 0 ||
	    ce_data(ev, data, json, resp) != 0)
		return -1;
	ev->env.ce_kept = ev->ce.kept.data;	/* bb_buf ends in NUL */
	if (ev->data_base64.len)
		ev->env.data_base64 = ev->data_base64.data;
	/* "The same event" is the same attributes and data, whichever
	 * mode or member order they came in. */
	sorted_members(&ev->ce.kept, f);
	bb_buf_putc(f, '\n');
	sorted_members(&ev->ce.meta, f);
	bb_buf_printf(f, "\n%s\n", ev->env.event_type);
	bb_buf_append(f, ev->payload.data, ev->payload.len);
	bb_buf_putc(f, '\n');
	bb_buf_append(f, ev->data_base64.data, ev->data_base64.len);
	return 0;
}

/* §9.1 structured mode (and each item of the batched mode): the body is
 * one CloudEvent. */
static int
build_structured(struct bb_event *ev, const struct bb_request *req,
    struct bb_response *resp)
{
	struct bb_cloudevent *ce = &ev->ce;
	size_t len;

	if (refuse_key(req, resp) != 0)
		return -1;
	bb_cloudevent_from_json(ce, &ev->doc, 0, &ev->errors);
	if (ce->data_base64 >= 0) {	/* checked: base64, so no escapes */
		const char *raw = bb_json_raw(&ev->doc, ce->data_base64, &len);
		bb_buf_append(&ev->data_base64, raw, len);
	}
	return ce_finish(ev, ce->data, ce->data_base64 < 0 &&
	    bb_cloudevent_data_is_json(ce), resp);
}

/* §9.1 binary mode: the attributes in ce- headers, the body is the data,
 * its Content-Type the datacontenttype. */
static int
build_binary(struct bb_event *ev, const struct bb_request *req,
    const char *body, size_t len, struct bb_response *resp)
{
	char why[160];
	bool json;

	if (refuse_key(req, resp) != 0)
		return -1;
	if (bb_cloudevent_from_headers(&ev->ce, req, &ev->errors, why,
	    sizeof(why)) < 0) {
		bb_response_error(resp, 400, "invalid_request", why);
		return -1;
	}
	json = bb_cloudevent_data_is_json(&ev->ce);
	if (len > 0 && json && !ev->errors.len)
		return parse_json(ev, body, len, resp) == 0 ?
		    ce_finish(ev, 0, true, resp) : -1;
	if (len > 0 && !json) {
		unsigned char *out = (unsigned char *)bb_buf_space(
		    &ev->data_base64, (len + 2) / 3 * 4 + 1);
		ev->data_base64.len = (size_t)EVP_EncodeBlock(out,
		    (const unsigned char *)body, (int)len);
	}
	return ce_finish(ev, -1, json, resp);
}

/* Whether a publish request's Content-Type is one that route takes: JSON,
 * or a CloudEvents mode (§9.1). */
bool
bb_event_content_type_ok(enum bb_route route, const struct bb_request *req)
{
	const char *ct = req->content_type;

	if (route == BB_ROUTE_EVENTS)
		return bb_content_type_is_json(ct) || binary_mode(req) ||
		    bb_content_type_is(ct, BB_CLOUDEVENTS_TYPE);
	if (route == BB_ROUTE_BATCH)
		return bb_content_type_is_json(ct) ||
		    bb_content_type_is(ct, BB_CLOUDEVENTS_BATCH_TYPE);
	return bb_content_type_is_json(ct);
}

static void
seal(struct bb_event *ev, const struct timespec *now)
{
	assign_event_id(ev);
	bb_envelope_stamp(&ev->env, now);
	if (!ev->cloudevent || ev->payload.len) {
		ev->env.payload = ev->payload.data;
		ev->env.payload_len = ev->payload.len;
	}
	if (ev->cloudevents_out)
		bb_envelope_write_cloudevent(&ev->env, &ev->json);
	else
		bb_envelope_write(&ev->env, &ev->json);
}

void
bb_event_fingerprint(const struct bb_event *ev, uint8_t hash[BB_BODY_HASH_LEN])
{
	const struct bb_buf *b = ev->cloudevent ? &ev->fingerprint :
	    ev->webhook_key.len ? &ev->webhook_key : NULL;
	const char *data = b ? b->data : ev->doc.text;
	size_t len = b ? b->len : ev->doc.len;

	EVP_Digest(data ? data : "", len, hash, NULL, EVP_sha256(), NULL);
}

int
bb_event_build(struct bb_event *ev, enum bb_route route, const char *arg,
    size_t arg_len, const struct bb_request *req, const char *body,
    size_t body_len, const struct timespec *now, struct bb_response *resp)
{
	int rc;

	begin(ev, req);
	if (read_headers(req, ev, resp) != 0)
		return -1;
	if (route == BB_ROUTE_EVENTS && binary_mode(req))
		rc = build_binary(ev, req, body, body_len, resp);
	else if (route == BB_ROUTE_EVENTS && bb_content_type_is(
	    req->content_type, BB_CLOUDEVENTS_TYPE))
		rc = parse_body(ev, body, body_len, resp) == 0 ?
		    build_structured(ev, req, resp) : -1;
	else
		rc = parse_body(ev, body, body_len, resp) == 0 ?
		    build(ev, route, arg, arg_len, resp) : -1;
	if (rc != 0)
		return -1;
	seal(ev, now);
	return 0;
}

/* A batch item's idempotency_key: the same rules as the header (§5), but
 * breaking them is the item's 422, not the request's 400. */
static int
read_item_key(struct bb_event *ev, struct bb_response *resp)
{
	int v = bb_json_get(&ev->doc, 0, "idempotency_key");

	if (v < 0)
		return 0;
	if (bb_json_type(&ev->doc, v) == BB_JSON_STRING)
		bb_json_unescape(&ev->doc, v, &ev->item_key);
	if (bb_json_type(&ev->doc, v) != BB_JSON_STRING ||
	    strlen(ev->item_key.data ? ev->item_key.data : "") !=
	    ev->item_key.len || !printable_ascii(ev->item_key.data ?
	    ev->item_key.data : "", 1, 255)) {
		bb_buf_reset(&ev->errors);
		bb_validate_error(&ev->errors, "idempotency_key",
		    "must be 1-255 printable ASCII characters");
		validation_failed(ev, resp, "the item's idempotency_key is not "
		    "valid");
		return -1;
	}
	ev->key = ev->item_key.data;
	ev->key_len = ev->item_key.len;
	return 0;
}

int
bb_event_build_item(struct bb_event *ev, const struct bb_request *req,
    const char *item, size_t len, const struct timespec *now,
    struct bb_response *resp)
{
	begin(ev, req);
	if (read_headers(req, ev, resp) != 0 ||
	    parse_body(ev, item, len, resp) != 0)
		return -1;
	if (bb_content_type_is(req->content_type, BB_CLOUDEVENTS_BATCH_TYPE)) {
		if (build_structured(ev, req, resp) != 0)
			return -1;
	} else if (read_item_key(ev, resp) != 0 ||
	    build_events(ev, true, resp) != 0) {
		return -1;
	}
	seal(ev, now);
	return 0;
}
