#include "app.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "debug.h"
#include "event.h"
#include "log.h"
#include "publisher.h"
#include "tracker.h"
#include "xalloc.h"

#define AMQP_CONNECT_TIMEOUT_MS 2000
#define HEALTH_CONNECT_TIMEOUT_MS 900	/* healthz answers within 1 s */
#define RETRY_AFTER_SECONDS "5"

struct bb_app {
	const struct bb_config *cfg;
	struct bb_publisher *pub;
	struct bb_tracker *tracker;
	struct bb_buf body;		/* the request body */
	struct bb_event event;
	struct bb_buf original;		/* a replayed event's envelope */
};

struct bb_app *
bb_app_new(const struct bb_config *cfg)
{
	struct bb_app *app = bb_xcalloc(1, sizeof(*app));
	struct bb_publisher_options opt = {
		.urls = cfg->rabbit_url,
		.exchange = cfg->exchange,
		.exchange_type = cfg->exchange_type,
		.confirm_timeout_ms = cfg->confirm_timeout_ms,
		.connect_timeout_ms = AMQP_CONNECT_TIMEOUT_MS,
	};

	app->cfg = cfg;
	app->pub = bb_publisher_new(&opt);
	/* A publish takes at most two connects (a retry after a failed
	 * write), the confirm, and the tracking of the event before it. */
	app->tracker = bb_tracker_new(cfg, 2LL * AMQP_CONNECT_TIMEOUT_MS +
	    cfg->confirm_timeout_ms + cfg->redis_timeout_ms + 1000);
	bb_buf_init(&app->body);
	bb_buf_init(&app->original);
	bb_event_init(&app->event);
	return app;
}

void
bb_app_free(struct bb_app *app)
{
	if (app == NULL)
		return;
	bb_publisher_free(app->pub);
	bb_tracker_free(app->tracker);
	bb_buf_free(&app->body);
	bb_buf_free(&app->original);
	bb_event_free(&app->event);
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

/* CONTRACT §4.1: the broker decides healthy or not; Redis only degrades. */
static void
handle_healthz(struct bb_app *app, struct bb_response *resp)
{
	bool rabbit = bb_publisher_healthy(app->pub, HEALTH_CONNECT_TIMEOUT_MS);
	const char *redis = "disabled";
	const char *status = rabbit ? "healthy" : "unhealthy";

	if (bb_tracker_enabled(app->tracker)) {
		bool up = bb_tracker_healthy(app->tracker);
		redis = up ? "up" : "down";
		if (rabbit && !up)
			status = "degraded";
	}
	resp->status = rabbit ? 200 : 503;
	bb_buf_printf(&resp->body, "{\"status\":\"%s\",\"version\":\"%s\","
	    "\"rabbitmq\":\"%s\",\"redis\":\"%s\"}", status, PACKAGE_VERSION,
	    rabbit ? "up" : "down", redis);
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

/* The 200 answer: the envelope, or the webhook's acknowledgement. */
static void
answer_ok(enum bb_route route, const char *event_id, const char *envelope,
    size_t len, struct bb_response *resp)
{
	if (route == BB_ROUTE_FIREFLIES)
		bb_buf_printf(&resp->body, "{\"status\":\"ok\",\"event_id\":"
		    "\"%s\"}", event_id);
	else
		bb_buf_append(&resp->body, envelope, len);
}

static void
answer_publish(const struct bb_event *ev, enum bb_route route,
    enum bb_publish_result r, struct bb_response *resp)
{
	switch (r) {
	case BB_PUBLISH_OK:
		answer_ok(route, ev->env.event_id, ev->json.data, ev->json.len, resp);
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

/* What makes two idempotent requests "the same": the body, byte for byte
 * -- except for the webhook, whose key comes from the meeting id, so that a
 * redelivery is the same event whatever else it carries. */
static void
body_fingerprint(const struct bb_app *app, enum bb_route route,
    const struct bb_event *ev, uint8_t *hash)
{
	const char *data = app->body.data ? app->body.data : "";
	size_t len = app->body.len;

	if (route == BB_ROUTE_FIREFLIES && ev->webhook_key.len) {
		data = ev->webhook_key.data;
		len = ev->webhook_key.len;
	}
	EVP_Digest(data, len, hash, NULL, EVP_sha256(), NULL);
}

static void
handle_publish(struct bb_app *app, const struct bb_request *req,
    const struct bb_match *m, bb_body_reader read_body, void *ctx,
    struct bb_response *resp)
{
	struct bb_event *ev = &app->event;
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
	if (read_request_body(app, req, read_body, ctx, resp) != 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	if (bb_event_build(ev, m->route, m->arg, m->arg_len, req, app->body.data,
	    app->body.len, &now, resp) != 0)
		return;

	const struct bb_envelope *env = &ev->env;
	struct bb_message msg = {
		.routing_key = env->event_type,
		.body = ev->json.data,
		.body_len = ev->json.len,
		.message_id = env->event_id,
		.correlation_id = env->nparents ? env->parents[0] : NULL,
		.type = env->event_type,
		.timestamp = (time_t)(env->unix_us / 1000000),
		.traceparent = env->traceparent,
		.tracestate = env->tracestate,
	};
	uint8_t hash[BB_BODY_HASH_LEN];
	struct bb_claim_token claim = { .held = false };
	if (ev->key) {
		body_fingerprint(app, m->route, ev, hash);
		bb_buf_reset(&app->original);
		switch (bb_tracker_claim(app->tracker, env->event_id, hash,
		    &app->original, &claim)) {
		case BB_CLAIM_NEW:
			break;
		case BB_CLAIM_UNAVAILABLE:
			break;	/* publish; the id alone lets consumers dedupe */
		case BB_CLAIM_REPLAY:
			answer_ok(m->route, env->event_id, app->original.data,
			    app->original.len, resp);
			bb_response_header(resp, "Idempotent-Replayed", "true");
			return;
		case BB_CLAIM_IN_FLIGHT:
			bb_response_error(resp, 409, "idempotency_conflict", "an event "
			    "with this Idempotency-Key is being published now");
			return;
		case BB_CLAIM_MISMATCH:
			bb_response_error(resp, 422, "validation_error", "this "
			    "Idempotency-Key was used with a different body");
			return;
		}
	}
	enum bb_publish_result r = bb_publisher_send(app->pub, &msg);
	if (r == BB_PUBLISH_OK) {
		/* The previous event's tracking round trip ends while the
		 * broker writes this one to disk. */
		bb_tracker_settle(app->tracker);
		r = bb_publisher_confirm(app->pub, env->event_id);
	}
	if (r == BB_PUBLISH_OK) {
		bb_log_debug("published event %s (%s)", env->event_id,
		    env->event_type);
		/* Only a confirmed event is recorded (CONTRACT §7). */
		bb_tracker_record(app->tracker, env, ev->json.data, ev->json.len,
		    &claim);
	} else {
		bb_log_warning("event %s (%s) not published: %s", env->event_id,
		    env->event_type, bb_publish_result_name(r));
		bb_tracker_release(app->tracker, env->event_id, &claim);
	}
	answer_publish(ev, m->route, r, resp);
}
void
bb_app_handle(struct bb_app *app, struct bb_request *req,
    bb_body_reader read_body, void *ctx, struct bb_response *resp)
{
	struct bb_match m;

	bb_response_reset(resp);
	enum bb_route_result found = bb_route(req->method, req->path, &m);
	/* DEBUG_ENDPOINTS=false removes the paths, whatever the method. */
	if ((m.route == BB_ROUTE_CORRELATION || m.route == BB_ROUTE_CHAIN) &&
	    !app->cfg->debug_endpoints)
		found = BB_ROUTE_NOT_FOUND;
	switch (found) {
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
	if (m.route == BB_ROUTE_CORRELATION || m.route == BB_ROUTE_CHAIN)
		bb_debug_handle(app->tracker, &m, req->query, resp);
	else
		handle_publish(app, req, &m, read_body, ctx, resp);
}
