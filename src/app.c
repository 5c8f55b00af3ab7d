#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "envelope.h"
#include "json.h"
#include "log.h"
#include "publisher.h"
#include "uuid.h"
#include "validate.h"

#define AMQP_CONNECT_TIMEOUT_MS 2000
#define HEALTH_CONNECT_TIMEOUT_MS 900	/* healthz answers within 1 s */
#define RETRY_AFTER_SECONDS "5"
#define MAX_HEADER_VALUE 512

struct bb_app {
	const struct bb_config *cfg;
	struct bb_publisher *pub;
	struct bb_buf body;		/* the request body */
	struct bb_buf payload;
	struct bb_buf errors;		/* validation errors, a JSON array's inside */
	struct bb_buf agent_context;
	struct bb_buf source_meta;
	struct bb_buf webhook_key;	/* idempotency key a webhook implies */
	struct bb_buf name;		/* the UUIDv5 name of an idempotent event */
	struct bb_buf envelope;
};

/* One publish request while it is being turned into an envelope. */
struct publish {
	struct bb_json doc;
	struct bb_envelope env;
	const char *key;	/* idempotency key, from the header or webhook */
	size_t key_len;
	char source_app[65];	/* POST /events may name its source */
	char source_type[65];
};

struct bb_app *
bb_app_new(const struct bb_config *cfg)
{
	struct bb_app *app = calloc(1, sizeof(*app));
	struct bb_publisher_options opt = {
		.urls = cfg->rabbit_url,
		.exchange = cfg->exchange,
		.exchange_type = cfg->exchange_type,
		.confirm_timeout_ms = cfg->confirm_timeout_ms,
		.connect_timeout_ms = AMQP_CONNECT_TIMEOUT_MS,
	};

	if (app == NULL)
		abort();
	app->cfg = cfg;
	app->pub = bb_publisher_new(&opt);
	return app;
}

void
bb_app_free(struct bb_app *app)
{
	if (app == NULL)
		return;
	bb_publisher_free(app->pub);
	bb_buf_free(&app->body);
	bb_buf_free(&app->payload);
	bb_buf_free(&app->errors);
	bb_buf_free(&app->agent_context);
	bb_buf_free(&app->source_meta);
	bb_buf_free(&app->webhook_key);
	bb_buf_free(&app->name);
	bb_buf_free(&app->envelope);
	free(app);
}

/* Compares the whole of both strings whatever they hold, so that the time
 * taken does not tell how much of a guessed token was right. */
static bool
token_matches(const char *given, const char *expected)
{
	size_t glen = strlen(given), elen = strlen(expected);
	unsigned char diff = (unsigned char)(glen != elen);

	for (size_t k = 0; k < elen; k++)
		diff |= (unsigned char)(expected[k] ^ (k < glen ? given[k] : 0));
	return diff == 0;
}

static bool
authorized(const struct bb_app *app, const struct bb_request *req)
{
	const char *h = req->authorization;

	if (app->cfg->api_token[0] == '\0')
		return true;
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	return token_matches(h + 7, app->cfg->api_token);
}

static void
handle_healthz(struct bb_app *app, struct bb_response *resp)
{
	bool rabbit = bb_publisher_healthy(app->pub, HEALTH_CONNECT_TIMEOUT_MS);

	resp->status = rabbit ? 200 : 503;
	bb_buf_printf(&resp->body, "{\"status\":\"%s\",\"version\":\"%s\","
	    "\"rabbitmq\":\"%s\",\"redis\":\"disabled\"}",
	    rabbit ? "healthy" : "unhealthy", PACKAGE_VERSION,
	    rabbit ? "up" : "down");
}

static void
validation_failed(struct bb_app *app, struct bb_response *resp,
    const char *detail)
{
	resp->status = 422;
	bb_buf_reset(&resp->body);
	bb_buf_puts(&resp->body, "{\"error\":\"validation_error\",\"detail\":");
	bb_json_write_string(&resp->body, detail, strlen(detail));
	bb_buf_printf(&resp->body, ",\"fields\":[%.*s]}", (int)app->errors.len,
	    app->errors.data ? app->errors.data : "");
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

/* CONTRACT §5: Idempotency-Key, X-Correlation-Ids, trace context. */
static int
read_headers(const struct bb_request *req, struct publish *p,
    struct bb_response *resp)
{
	const char *ids = req->correlation_ids;

	if (req->idempotency_key) {
		if (!printable_ascii(req->idempotency_key, 1, 255)) {
			bb_response_error(resp, 400, "invalid_request", "Idempotency-Key "
			    "must be 1-255 printable ASCII characters");
			return -1;
		}
		p->key = req->idempotency_key;
		p->key_len = strlen(p->key);
	}
	if ((req->traceparent && !printable_ascii(req->traceparent, 1,
	    MAX_HEADER_VALUE)) || (req->tracestate &&
	    !printable_ascii(req->tracestate, 0, MAX_HEADER_VALUE))) {
		bb_response_error(resp, 400, "invalid_request", "traceparent and "
		    "tracestate must be printable ASCII of at most 512 bytes");
		return -1;
	}
	p->env.traceparent = req->traceparent;
	p->env.tracestate = req->tracestate;
	while (ids && *ids) {
		size_t n = strcspn(ids, ",");
		const char *id = ids;
		size_t len = n;
		while (len && *id == ' ')
			id++, len--;
		while (len && id[len - 1] == ' ')
			len--;
		if (!bb_uuid_valid(id, len) ||
		    bb_envelope_add_parent(&p->env, id) != 0) {
			bb_response_error(resp, 400, "invalid_request",
			    "X-Correlation-Ids must be at most 32 comma-separated UUIDs");
			return -1;
		}
		ids += n + (ids[n] == ',');
	}
	return 0;
}

/* Reads exactly Content-Length bytes into app->body. */
static int
read_request_body(struct bb_app *app, const struct bb_request *req,
    bb_body_reader read_body, void *ctx, struct bb_response *resp)
{
	size_t want = req->content_length > 0 ? (size_t)req->content_length : 0;
	char chunk[16384];

	bb_buf_reset(&app->body);
	while (app->body.len < want) {
		size_t n = want - app->body.len;
		ssize_t got = read_body(ctx, chunk, n < sizeof(chunk) ? n : sizeof(chunk));
		if (got <= 0) {
			bb_response_error(resp, 400, "invalid_request",
			    "request body is shorter than its Content-Length");
			return -1;
		}
		bb_buf_append(&app->body, chunk, (size_t)got);
	}
	return 0;
}

static int
parse_body(struct bb_app *app, struct publish *p, struct bb_response *resp)
{
	char err[128];
	enum bb_json_status st = bb_json_parse(&p->doc,
	    app->body.data ? app->body.data : "", app->body.len, err, sizeof(err));

	if (st == BB_JSON_INVALID) {
		bb_response_error(resp, 400, "invalid_json", err);
		return -1;
	}
	if (st == BB_JSON_TOO_LARGE) {
		bb_response_error(resp, 413, "payload_too_large", err);
		return -1;
	}
	if (bb_json_type(&p->doc, 0) != BB_JSON_OBJECT) {
		bb_buf_reset(&app->errors);
		validation_failed(app, resp, "the request body must be a JSON object");
		return -1;
	}
	return 0;
}

static void
set_type(struct publish *p, const char *type, size_t len)
{
	snprintf(p->env.event_type, sizeof(p->env.event_type), "%.*s", (int)len,
	    type);
}

/* §4.2-§4.4: a typed endpoint, its schema and routing key. */
static int
build_typed(struct bb_app *app, struct publish *p, const struct bb_schema *s,
    const char *type, struct bb_response *resp)
{
	if (bb_validate(&p->doc, 0, s, &app->payload, &app->errors) != 0) {
		validation_failed(app, resp, "the request body does not match the "
		    "endpoint's schema");
		return -1;
	}
	if (type) {
		set_type(p, type, strlen(type));
		return 0;
	}
	/* artifact.<action>; the schema has checked the action. */
	struct bb_buf action;
	bb_buf_init(&action);
	bb_json_unescape(&p->doc, bb_json_get(&p->doc, 0, "action"), &action);
	snprintf(p->env.event_type, sizeof(p->env.event_type), "artifact.%s",
	    action.data);
	bb_buf_free(&action);
	return 0;
}

/* §4.3: prompt_id is the first parent, and so the AMQP correlation_id. */
static int
add_prompt_parent(struct publish *p, struct bb_response *resp)
{
	int v = bb_json_get(&p->doc, 0, "prompt_id");
	struct bb_envelope *env = &p->env;
	size_t len;

	if (v < 0 || bb_json_type(&p->doc, v) != BB_JSON_STRING)
		return 0;
	const char *id = bb_json_raw(&p->doc, v, &len);
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

/* §4.5: the Fireflies webhook becomes an artifact.created event. */
static int
build_fireflies(struct bb_app *app, struct publish *p, struct bb_response *resp)
{
	const struct bb_json *d = &p->doc;
	int data = bb_json_get(d, 0, "data");
	int url = -1, title = -1, id = -1;

	if (data < 0 || bb_json_type(d, data) != BB_JSON_OBJECT) {
		bb_validate_error(&app->errors, "data", "must be an object");
	} else {
		url = bb_json_get(d, data, "url");
		if (url < 0 || bb_json_type(d, url) != BB_JSON_STRING)
			url = bb_json_get(d, data, "transcript_url");
		if (url < 0 || bb_json_type(d, url) != BB_JSON_STRING)
			bb_validate_error(&app->errors, "data.url",
			    "required: a string in data.url or data.transcript_url");
		title = bb_json_get(d, data, "title");
		if (title < 0 || bb_json_type(d, title) != BB_JSON_STRING)
			bb_validate_error(&app->errors, "data.title",
			    "required: a string");
		id = bb_json_get(d, data, "id");
		if (id >= 0 && bb_json_type(d, id) != BB_JSON_STRING &&
		    bb_json_type(d, id) != BB_JSON_NUMBER)
			bb_validate_error(&app->errors, "data.id",
			    "must be a string or a number");
	}
	if (app->errors.len) {
		validation_failed(app, resp, "the webhook lacks what an artifact "
		    "needs");
		return -1;
	}
	bb_buf_puts(&app->payload, "{\"action\":\"created\",\"kind\":\"transcript\","
	    "\"uri\":");
	bb_json_write_value(&app->payload, d, url);
	bb_buf_puts(&app->payload, ",\"title\":");
	bb_json_write_value(&app->payload, d, title);
	bb_buf_puts(&app->payload, ",\"content\":null,\"metadata\":{\"source\":"
	    "\"fireflies\",\"meeting_id\":");
	if (id >= 0)
		bb_json_write_value(&app->payload, d, id);
	else
		bb_buf_puts(&app->payload, "null");
	bb_buf_puts(&app->payload, "}}");
	set_type(p, "artifact.created", strlen("artifact.created"));
	p->env.source_type = "hook";
	p->env.source_app = "fireflies";
	if (id >= 0 && p->key == NULL) {
		/* A redelivered webhook is the same event: key fireflies:<id>. */
		struct bb_buf *key = &app->webhook_key;
		bb_buf_puts(key, "fireflies:");
		if (bb_json_type(d, id) == BB_JSON_STRING)
			bb_json_unescape(d, id, key);
		else
			bb_json_write_value(key, d, id);
		p->key = key->data;
		p->key_len = key->len;
	}
	return 0;
}

/* §4.6: POST /events/{event_type}; the whole body is the payload. */
static int
build_event_type(struct bb_app *app, struct publish *p, const char *type,
    size_t len, struct bb_response *resp)
{
	if (!bb_event_type_valid(type, len)) {
		bb_response_error(resp, 400, "invalid_request", "event_type must be "
		    "1-255 bytes of [a-z0-9_-] segments joined by single dots");
		return -1;
	}
	set_type(p, type, len);
	bb_json_write_value(&app->payload, &p->doc, 0);
	return 0;
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
read_source(struct bb_app *app, struct publish *p, int source)
{
	const struct bb_json *d = &p->doc;
	int meta;

	if (source < 0 || bb_json_type(d, source) == BB_JSON_NULL)
		return;
	if (bb_json_type(d, source) != BB_JSON_OBJECT) {
		bb_validate_error(&app->errors, "source", "must be an object");
		return;
	}
	if (!copy_source_name(d, bb_json_get(d, source, "app"), p->source_app,
	    sizeof(p->source_app)))
		bb_validate_error(&app->errors, "source.app",
		    "must be 1-64 characters of [A-Za-z0-9_.:-]");
	if (!copy_source_name(d, bb_json_get(d, source, "type"), p->source_type,
	    sizeof(p->source_type)))
		bb_validate_error(&app->errors, "source.type",
		    "must be 1-64 characters of [A-Za-z0-9_.:-]");
	meta = bb_json_get(d, source, "meta");
	if (meta >= 0 && bb_json_type(d, meta) != BB_JSON_NULL) {
		if (bb_json_type(d, meta) != BB_JSON_OBJECT)
			bb_validate_error(&app->errors, "source.meta",
			    "must be an object");
		else
			bb_json_write_value(&app->source_meta, d, meta);
	}
	if (p->source_app[0])
		p->env.source_app = p->source_app;
	if (p->source_type[0])
		p->env.source_type = p->source_type;
	if (app->source_meta.len)
		p->env.source_meta = app->source_meta.data;
}

static void
read_parents(struct bb_app *app, struct publish *p, int ids)
{
	const struct bb_json *d = &p->doc;
	int j = ids + 1;
	char body_ids[BB_MAX_PARENTS][BB_UUID_STRLEN + 1];
	int n = 0;

	if (ids < 0 || bb_json_type(d, ids) == BB_JSON_NULL)
		return;
	if (bb_json_type(d, ids) != BB_JSON_ARRAY ||
	    bb_json_size(d, ids) > BB_MAX_PARENTS) {
		bb_validate_error(&app->errors, "correlation_ids",
		    "must be an array of at most 32 UUIDs");
		return;
	}
	for (int k = 0; k < bb_json_size(d, ids); k++, j++) {
		size_t len;
		const char *raw = bb_json_raw(d, j, &len);
		if (bb_json_type(d, j) != BB_JSON_STRING || !bb_uuid_valid(raw, len)) {
			bb_validate_error(&app->errors, "correlation_ids",
			    "must be an array of at most 32 UUIDs");
			return;
		}
		bb_uuid_lower(raw, body_ids[n++]);
	}
	/* The body's parents come first, then the header's. */
	struct bb_envelope merged = p->env;
	merged.nparents = 0;
	for (int k = 0; k < n; k++)
		bb_envelope_add_parent(&merged, body_ids[k]);
	for (int k = 0; k < p->env.nparents; k++) {
		if (bb_envelope_add_parent(&merged, p->env.parents[k]) != 0) {
			bb_validate_error(&app->errors, "correlation_ids",
			    "more than 32 parents with X-Correlation-Ids");
			return;
		}
	}
	p->env = merged;
}

/* §4.6: POST /events, a partial envelope. */
static int
build_events(struct bb_app *app, struct publish *p, struct bb_response *resp)
{
	static const char *const known[] = { "event_type", "payload",
		"correlation_ids", "agent_context", "source", NULL };
	const struct bb_json *d = &p->doc;
	int type = bb_json_get(d, 0, "event_type");
	int payload = bb_json_get(d, 0, "payload");
	int agent = bb_json_get(d, 0, "agent_context");
	int j = 1;
	size_t len = 0;
	const char *raw = type >= 0 ? bb_json_raw(d, type, &len) : NULL;

	if (type < 0 || bb_json_type(d, type) != BB_JSON_STRING ||
	    !bb_event_type_valid(raw, len))
		bb_validate_error(&app->errors, "event_type", "required: 1-255 "
		    "bytes of [a-z0-9_-] segments joined by single dots");
	else
		set_type(p, raw, len);
	if (payload < 0 || bb_json_type(d, payload) != BB_JSON_OBJECT)
		bb_validate_error(&app->errors, "payload", "required: an object");
	if (agent >= 0 && bb_json_type(d, agent) != BB_JSON_NULL) {
		if (bb_json_type(d, agent) != BB_JSON_OBJECT)
			bb_validate_error(&app->errors, "agent_context",
			    "must be an object or null");
		else
			bb_json_write_value(&app->agent_context, d, agent);
	}
	read_parents(app, p, bb_json_get(d, 0, "correlation_ids"));
	read_source(app, p, bb_json_get(d, 0, "source"));
	for (int n = 0; n < bb_json_size(d, 0); n++) {
		bool ok = false;
		for (int k = 0; known[k] && !ok; k++)
			ok = bb_json_string_equals(d, j, known[k]);
		if (!ok) {
			struct bb_buf key;
			bb_buf_init(&key);
			bb_json_unescape(d, j, &key);
			bb_validate_error(&app->errors, key.data ? key.data : "",
			    "unknown envelope field");
			bb_buf_free(&key);
		}
		j = bb_json_next(d, j + 1);
	}
	if (app->errors.len) {
		validation_failed(app, resp, "the partial envelope is not valid");
		return -1;
	}
	if (app->agent_context.len)
		p->env.agent_context = app->agent_context.data;
	bb_json_write_value(&app->payload, d, payload);
	return 0;
}

static int
build(struct bb_app *app, const struct bb_match *m, struct publish *p,
    struct bb_response *resp)
{
	switch (m->route) {
	case BB_ROUTE_LLM_PROMPT:
		return build_typed(app, p, &bb_schema_llm_prompt, "llm.prompt", resp);
	case BB_ROUTE_LLM_RESPONSE:
		if (build_typed(app, p, &bb_schema_llm_response, "llm.response",
		    resp) != 0)
			return -1;
		return add_prompt_parent(p, resp);
	case BB_ROUTE_ARTIFACT:
		return build_typed(app, p, &bb_schema_artifact, NULL, resp);
	case BB_ROUTE_FIREFLIES:
		return build_fireflies(app, p, resp);
	case BB_ROUTE_EVENTS:
		return build_events(app, p, resp);
	case BB_ROUTE_EVENT_TYPE:
		return build_event_type(app, p, m->arg, m->arg_len, resp);
	default:
		bb_response_error(resp, 500, "internal_error", "no such endpoint");
		return -1;
	}
}

/* §5: an idempotent event's id is UUIDv5 over bloodbank:<type>:<key>. */
static void
assign_event_id(struct bb_app *app, struct publish *p)
{
	if (p->key == NULL) {
		bb_uuid_random(p->env.event_id);
		return;
	}
	bb_buf_reset(&app->name);
	bb_buf_printf(&app->name, "bloodbank:%s:", p->env.event_type);
	bb_buf_append(&app->name, p->key, p->key_len);
	bb_uuid_oid_v5(app->name.data, app->name.len, p->env.event_id);
}

static void
answer_publish(struct bb_app *app, const struct bb_match *m,
    const struct publish *p, enum bb_publish_result r,
    struct bb_response *resp)
{
	switch (r) {
	case BB_PUBLISH_OK:
		if (m->route == BB_ROUTE_FIREFLIES) {
			bb_buf_printf(&resp->body, "{\"status\":\"ok\",\"event_id\":"
			    "\"%s\"}", p->env.event_id);
		} else {
			bb_buf_append(&resp->body, app->envelope.data,
			    app->envelope.len);
		}
		return;
	case BB_PUBLISH_UNAVAILABLE:
		bb_response_error(resp, 503, "broker_unavailable",
		    "the message broker is unreachable; nothing was published");
		bb_response_header(resp, "Retry-After", RETRY_AFTER_SECONDS);
		return;
	case BB_PUBLISH_NACKED:
		bb_response_error(resp, 503, "broker_unavailable",
		    "the message broker refused the event (nack)");
		bb_response_header(resp, "Retry-After", RETRY_AFTER_SECONDS);
		return;
	case BB_PUBLISH_TIMEOUT:
		bb_response_error(resp, 504, "broker_timeout",
		    "the message broker did not confirm the event in time; it may "
		    "or may not have been published");
		return;
	case BB_PUBLISH_UNROUTABLE:
		bb_response_error(resp, 503, "broker_unavailable",
		    "the exchange has no route for this event and no alternate "
		    "exchange; nothing was published");
		return;
	}
}

static void
handle_publish(struct bb_app *app, const struct bb_request *req,
    const struct bb_match *m, bb_body_reader read_body, void *ctx,
    struct bb_response *resp)
{
	struct publish p;
	struct timespec now;

	if (!bb_content_type_is_json(req->content_type)) {
		bb_response_error(resp, 415, "unsupported_media_type",
		    "send the event as Content-Type: application/json");
		return;
	}
	if (req->content_length_malformed) {
		bb_response_error(resp, 400, "invalid_request",
		    "malformed Content-Length");
		return;
	}
	if (req->content_length > app->cfg->max_body_bytes) {
		char detail[96];
		snprintf(detail, sizeof(detail), "the body is larger than %ld bytes",
		    app->cfg->max_body_bytes);
		bb_response_error(resp, 413, "payload_too_large", detail);
		return;
	}
	memset(&p, 0, sizeof(p));
	p.env.source_host = req->remote_addr;
	p.env.source_type = "manual";
	p.env.source_app = "http";
	bb_buf_reset(&app->payload);
	bb_buf_reset(&app->errors);
	bb_buf_reset(&app->agent_context);
	bb_buf_reset(&app->source_meta);
	bb_buf_reset(&app->webhook_key);
	bb_buf_reset(&app->envelope);
	if (read_headers(req, &p, resp) != 0 ||
	    read_request_body(app, req, read_body, ctx, resp) != 0)
		return;
	if (parse_body(app, &p, resp) != 0 || build(app, m, &p, resp) != 0)
		goto end;

	assign_event_id(app, &p);
	clock_gettime(CLOCK_REALTIME, &now);
	bb_envelope_stamp(&p.env, &now);
	p.env.payload = app->payload.data;
	p.env.payload_len = app->payload.len;
	bb_envelope_write(&p.env, &app->envelope);

	struct bb_message msg = {
		.routing_key = p.env.event_type,
		.body = app->envelope.data,
		.body_len = app->envelope.len,
		.message_id = p.env.event_id,
		.correlation_id = p.env.nparents ? p.env.parents[0] : NULL,
		.type = p.env.event_type,
		.timestamp = p.env.unix_time,
		.traceparent = p.env.traceparent,
		.tracestate = p.env.tracestate,
	};
	enum bb_publish_result r = bb_publisher_publish(app->pub, &msg);
	if (r == BB_PUBLISH_OK)
		bb_log_debug("published event %s (%s)", p.env.event_id,
		    p.env.event_type);
	else
		bb_log_warning("event %s (%s) not published: %s", p.env.event_id,
		    p.env.event_type, bb_publish_result_name(r));
	answer_publish(app, m, &p, r, resp);
end:
	bb_json_free(&p.doc);
}

void
bb_app_handle(struct bb_app *app, struct bb_request *req,
    bb_body_reader read_body, void *ctx, struct bb_response *resp)
{
	struct bb_match m;

	bb_response_reset(resp);
	switch (bb_route(req->method, req->path, &m)) {
	case BB_ROUTE_NOT_FOUND:
		bb_response_error(resp, 404, "not_found", "no such endpoint");
		return;
	case BB_ROUTE_BAD_METHOD:
		bb_response_error(resp, 405, "method_not_allowed",
		    "this endpoint does not accept that method");
		bb_response_header(resp, "Allow", m.allow);
		return;
	case BB_ROUTE_FOUND:
		break;
	}
	if (m.route == BB_ROUTE_HEALTHZ) {
		handle_healthz(app, resp);
		return;
	}
	if (!authorized(app, req)) {
		bb_response_error(resp, 401, "unauthorized",
		    "a valid bearer token is required");
		bb_response_header(resp, "WWW-Authenticate", "Bearer");
		return;
	}
	handle_publish(app, req, &m, read_body, ctx, resp);
}
