#include "app.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>


#include "clock.h"
#include "debug.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "publisher.h"
#include "signature.h"
#include "spool.h"
#include "tracker.h"
#include "xalloc.h"

/* /healthz answers within 1 s: the broker's check has up to 900 ms, and
 * Redis (Sentinels included) what is left of 900 ms, at least 50. */
#define HEALTH_CONNECT_TIMEOUT_MS 900
#define HEALTH_ANSWER_MS 900
#define HEALTH_REDIS_MIN_MS 50
#define RETRY_AFTER_SECONDS "5"

struct bb_app {
	const struct bb_config *cfg;
	const struct bb_catalog *catalog;	/* SCHEMA_DIR's schemas */
	bool cloudevents_out;		/* ENVELOPE_FORMAT=cloudevents */
	struct bb_publisher *pub;
	struct bb_tracker *tracker;
	struct bb_proxies proxies;	/* TRUSTED_PROXIES */
	struct bb_spool *spool;		/* NULL: SPOOL_DIR is empty */
	/* spooled events being forwarded, each awaiting its confirm; a
	 * publish stays where it is until then (the publisher holds its
	 * address) */
	struct forward {
		struct bb_spool_entry *entry;	/* NULL: a free place */
		struct bb_publish publish;
	} forwards[BB_SPOOL_WINDOW];
	int nforwards;
	long long forward_after;	/* monotonic ms: after a failure */
	long long adopted_at;		/* monotonic ms: the last look */
};

/* One item of a batch: its event, and its answer once known. */
struct bb_item {
	struct bb_event event;
	struct bb_publish publish;
	struct bb_claim_token claim;
	int status;			/* 0 while it may still be published */
	bool replayed;
	bool sent;			/* written; awaiting its confirm */
	uint64_t ticket;		/* spooled, awaiting its fsync */
	struct bb_buf error;		/* its error body, when status is not 200 */
};

/* One request from its start to its answer; several may wait for their
 * confirms at once. */
struct bb_call {
	struct bb_response resp;
	struct bb_buf body;		/* the request body */
	struct bb_event event;
	struct bb_buf original;		/* a replayed event's envelope */
	enum bb_route route;
	long long started_us;		/* monotonic, for the publish latency */
	bool waiting;			/* written; its confirm not yet handled */
	struct bb_publish publish;
	struct bb_claim_token claim;	/* the idempotency claim, if ours */
	uint64_t ticket;		/* spooled, awaiting its fsync */
	/* POST /events/batch */
	struct bb_json batch;
	struct bb_item *items;
	int nitems, cap;
	struct bb_response scratch;	/* an item's answer, while made */
	char client[BB_ADDRESS_MAX];	/* from X-Forwarded-For, if trusted */
};

struct bb_call *
bb_call_new(void)
{
	struct bb_call *call = bb_xcalloc(1, sizeof(*call));

	bb_response_init(&call->resp);
	bb_response_init(&call->scratch);
	bb_buf_init(&call->body);
	bb_buf_init(&call->original);
	bb_event_init(&call->event);
	return call;
}

void
bb_call_free(struct bb_call *call)
{
	if (call == NULL)
		return;
	bb_response_free(&call->resp);
	bb_response_free(&call->scratch);
	for (int k = 0; k < call->cap; k++) {
		bb_event_free(&call->items[k].event);
		bb_buf_free(&call->items[k].error);
	}
	free(call->items);
	bb_json_free(&call->batch);
	bb_buf_free(&call->body);
	bb_buf_free(&call->original);
	bb_event_free(&call->event);
	free(call);
}

const struct bb_response *
bb_call_response(const struct bb_call *call)
{
	return &call->resp;
}

enum bb_route
bb_call_route(const struct bb_call *call)
{
	return call->route;
}

void
bb_call_error(struct bb_call *call, int status, const char *code,
    const char *detail)
{
	bb_response_reset(&call->resp);
	call->route = BB_ROUTE_NONE;
	call->waiting = false;
	bb_response_error(&call->resp, status, code, detail);
}


struct bb_app *
bb_app_new(const struct bb_config *cfg, const struct bb_catalog *catalog)
{
	struct bb_app *app = bb_xcalloc(1, sizeof(*app));
	struct bb_publisher_options opt = {
		.urls = cfg->rabbit_url,
		.exchange = cfg->exchange,
		.exchange_type = cfg->exchange_type,
		.confirm_timeout_ms = cfg->confirm_timeout_ms,
		.connect_timeout_ms = cfg->connect_timeout_ms,
		.heartbeat_s = cfg->heartbeat_s,
		.unrouted_queue_type = cfg->unrouted_queue_type,
		.unrouted_max_bytes = cfg->unrouted_max_bytes,
		.archive_stream = cfg->archive_stream,
		.archive_max_age = cfg->archive_max_age,
		.archive_max_bytes = cfg->archive_max_bytes,
		.tls_ca = cfg->rabbit_tls_ca,
		.tls_cert = cfg->rabbit_tls_cert,
		.tls_key = cfg->rabbit_tls_key,
		.tls_verify = cfg->rabbit_tls_verify,
	};
	char err[128];

	app->cfg = cfg;
	app->catalog = catalog;
	app->cloudevents_out = strcmp(cfg->envelope_format, "cloudevents") == 0;
	/* bb_config_load has checked the list. */
	bb_proxies_parse(&app->proxies, cfg->trusted_proxies, err, sizeof(err));
	app->pub = bb_publisher_new(&opt);
	/* A publish takes at most the connect budget, the confirm budget,
	 * and the tracking of the event before it. */
	app->tracker = bb_tracker_new(cfg, (long long)cfg->connect_timeout_ms +
	    cfg->confirm_timeout_ms + cfg->redis_timeout_ms + 1000);
	app->spool = bb_spool_new(cfg->spool_dir, cfg->spool_max_bytes);
	return app;
}

static void settle_forwards(struct bb_app *app, bool wait);

void
bb_app_free(struct bb_app *app)
{
	if (app == NULL)
		return;
	if (app->spool) {
		settle_forwards(app, true);
		bb_tracker_settle(app->tracker);
		bb_spool_free(app->spool);
	}
	bb_publisher_free(app->pub);
	bb_tracker_free(app->tracker);
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

int
bb_app_broker_fd(const struct bb_app *app)
{
	return bb_publisher_fd(app->pub);
}

void
bb_app_service_broker(struct bb_app *app)
{
	bb_publisher_service(app->pub);
}

void
bb_app_idle(struct bb_app *app)
{
	if (bb_tracker_enabled(app->tracker))
		bb_tracker_idle(app->tracker);
}

/* CONTRACT §4.1: the broker decides healthy or not; Redis only degrades. */
static void
handle_healthz(struct bb_app *app, struct bb_response *resp)
{
	long long start = bb_monotonic_ms();
	enum bb_broker_state broker = bb_publisher_check(app->pub,
	    HEALTH_CONNECT_TIMEOUT_MS);
	bool rabbit = broker == BB_BROKER_UP;
	const char *redis = "disabled";
	const char *status = rabbit ? "healthy" : "unhealthy";
	const char *rabbitmq = broker == BB_BROKER_UP ? "up" :
	    broker == BB_BROKER_BLOCKED ? "blocked" : "down";

	if (bb_tracker_enabled(app->tracker)) {
		long long left = start + HEALTH_ANSWER_MS - bb_monotonic_ms();
		bool up = bb_tracker_healthy(app->tracker,
		    left < HEALTH_REDIS_MIN_MS ? HEALTH_REDIS_MIN_MS : (int)left);
		redis = up ? "up" : "down";
		if (rabbit && !up)
			status = "degraded";
	}
	resp->status = rabbit ? 200 : 503;
	bb_buf_printf(&resp->body, "{\"status\":\"%s\",\"version\":\"%s\","
	    "\"rabbitmq\":\"%s\",\"redis\":\"%s\"}", status, PACKAGE_VERSION,
	    rabbitmq, redis);
}

/* Reads exactly Content-Length bytes into call->body. */
static int
read_request_body(struct bb_call *call, const struct bb_request *req,
    bb_body_reader read_body, void *ctx)
{
	size_t want = req->content_length > 0 ? (size_t)req->content_length : 0;
	char chunk[16384];

	bb_buf_reset(&call->body);
	while (call->body.len < want) {
		size_t n = want - call->body.len;
		ssize_t got = read_body(ctx, chunk, n < sizeof(chunk) ? n : sizeof(chunk));
		if (got <= 0) {
			bb_response_error(&call->resp, 400, "invalid_request",
			    "request body is shorter than its Content-Length");
			return -1;
		}
		bb_buf_append(&call->body, chunk, (size_t)got);
	}
	return 0;
}

/* The 200 answer: the envelope, or the webhook's acknowledgement. A
 * replay of an envelope too large to keep (IDEMPOTENCY_MAX_STORED_BYTES)
 * has only its id. */
static void
answer_ok(enum bb_route route, const char *event_id, const char *envelope,
    size_t len, struct bb_response *resp)
{
	if (route == BB_ROUTE_FIREFLIES)
		bb_buf_printf(&resp->body, "{\"status\":\"ok\",\"event_id\":"
		    "\"%s\"}", event_id);
	else if (len == 0)
		bb_buf_printf(&resp->body, "{\"event_id\":\"%s\",\"replayed\":"
		    "true}", event_id);
	else
		bb_buf_append(&resp->body, envelope, len);
}

/* The 202 of a spooled event: the 200's body. */
static void
answer_spooled(enum bb_route route, const char *event_id,
    const char *envelope, size_t len, struct bb_response *resp)
{
	answer_ok(route, event_id, envelope, len, resp);
	resp->status = 202;
	bb_response_header(resp, "Bloodbank-Delivery", "spooled");
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
	case BB_PUBLISH_BLOCKED:
		bb_response_error(resp, 503, "broker_unavailable",
		    "the message broker blocks publishers (a memory or disk "
		    "alarm); nothing was published");
		bb_response_header(resp, "Retry-After", RETRY_AFTER_SECONDS);
		return;
	case BB_PUBLISH_NACKED:
		bb_response_error(resp, 503, "broker_nack",
		    "the message broker refused the event (nack); it was not "
		    "confirmed");
		bb_response_header(resp, "Retry-After", RETRY_AFTER_SECONDS);
		return;
	case BB_PUBLISH_PENDING:	/* not a final result; never answered */
	case BB_PUBLISH_TIMEOUT:
		bb_response_error(resp, 504, "broker_timeout",
		    "the message broker did not confirm the event in time; it may "
		    "or may not have been published");
		return;
	case BB_PUBLISH_UNROUTABLE:
		bb_response_error(resp, 503, "broker_unroutable",
		    "the exchange has no route for this event and no alternate "
		    "exchange; it was not delivered to any queue");
		return;
	}
}

/* Content-Length checked, then the body read. */
static int
read_body_limited(struct bb_app *app, struct bb_call *call,
    const struct bb_request *req, bb_body_reader read_body, void *ctx)
{
	struct bb_response *resp = &call->resp;

	if (req->content_length_malformed) {
		bb_response_error(resp, 400, "invalid_request",
		    "malformed Content-Length");
		return -1;
	}
	if (req->content_length > app->cfg->max_body_bytes) {
		char detail[96];
		snprintf(detail, sizeof(detail), "the body is larger than %ld bytes",
		    app->cfg->max_body_bytes);
		bb_response_error(resp, 413, "payload_too_large", detail);
		return -1;
	}
	return read_request_body(call, req, read_body, ctx);
}

static int
check_json_content_type(struct bb_call *call, const struct bb_request *req)
{
	if (bb_event_content_type_ok(call->route, req))
		return 0;
	bb_response_error(&call->resp, 415, "unsupported_media_type",
	    "send the event as Content-Type: application/json");
	return -1;
}

/* A publish request's checks up to its body, read. */
static int
read_body_checked(struct bb_app *app, struct bb_call *call,
    const struct bb_request *req, bb_body_reader read_body, void *ctx)
{
	if (check_json_content_type(call, req) != 0)
		return -1;
	return read_body_limited(app, call, req, read_body, ctx);
}

static bool
webhook_signed(const struct bb_app *app, enum bb_route route)
{
	return route == BB_ROUTE_FIREFLIES && app->cfg->fireflies_secret[0];
}

/* CONTRACT §4.5: with FIREFLIES_WEBHOOK_SECRET set, the webhook's body must
 * come with its HMAC in X-Hub-Signature; checked before the content type or
 * the body's contents are looked at, so that an unsigned sender learns
 * nothing of them (only a body too large to read is refused first). */
static int
read_signed_body(struct bb_app *app, struct bb_call *call,
    const struct bb_request *req, bb_body_reader read_body, void *ctx)
{
	uint8_t digest[BB_SIGNATURE_LEN];
	bool signature = bb_signature_parse(req->hub_signature, digest) == 0;

	if (signature && read_body_limited(app, call, req, read_body, ctx) != 0)
		return -1;
	if (!signature || !bb_signature_verify(digest, app->cfg->fireflies_secret,
	    call->body.data, call->body.len)) {
		bb_log_info("webhook from %s refused: X-Hub-Signature %s",
		    req->remote_addr, signature ? "does not match the body" :
		    "missing or malformed");
		bb_response_error(&call->resp, 401, "unauthorized", "a valid "
		    "X-Hub-Signature (HMAC-SHA256 of the body) is required");
		bb_response_header(&call->resp, "WWW-Authenticate",
		    "X-Hub-Signature");
		return -1;
	}
	/* The signature covers the body only: headers that would give a
	 * captured delivery another id or lineage are not the sender's. */
	if (req->idempotency_key || req->correlation_ids || req->traceparent) {
		bb_response_error(&call->resp, 400, "invalid_request", "a signed "
		    "webhook takes no Idempotency-Key, X-Correlation-Ids or "
		    "traceparent header: the signature does not cover them");
		return -1;
	}
	return check_json_content_type(call, req);
}

/* The request's checks, up to a built event. */
static int
build_event(struct bb_app *app, struct bb_call *call,
    const struct bb_request *req, const struct bb_match *m,
    bb_body_reader read_body, void *ctx)
{
	struct timespec now;

	if (webhook_signed(app, m->route)) {
		if (read_signed_body(app, call, req, read_body, ctx) != 0)
			return -1;
	} else if (read_body_checked(app, call, req, read_body, ctx) != 0) {
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	call->event.catalog = app->catalog;
	call->event.cloudevents_out = app->cloudevents_out;
	call->event.signed_body = webhook_signed(app, m->route);
	return bb_event_build(&call->event, m->route, m->arg, m->arg_len, req,
	    call->body.data, call->body.len, &now, &call->resp);
}

/* The answer to an event whose claim refuses it: 409 while the same event
 * is being published, 422 when it was published with other content. key
 * names the key as the client gave it, content what it covers. */
static void
refuse_claim(const struct bb_event *ev, enum bb_claim c, const char *key,
    const char *content, struct bb_response *resp)
{
	char detail[160];

	if (c == BB_CLAIM_IN_FLIGHT) {
		snprintf(detail, sizeof(detail), ev->cloudevent ? "a CloudEvent "
		    "with this source and id is being published now" : "an event "
		    "with this %s is being published now", key);
		bb_response_error(resp, 409, "idempotency_conflict", detail);
	} else {
		snprintf(detail, sizeof(detail), ev->cloudevent ? "a CloudEvent "
		    "with this source and id was published with other attributes "
		    "or data" : "this %s was used with a different %s", key,
		    content);
		bb_response_error(resp, 422, "validation_error", detail);
	}
}

/* The idempotency claim of an event with a key, over what makes it "the
 * same event"; a replay's original envelope in call->original. */
static enum bb_claim
claim_event(struct bb_app *app, struct bb_call *call,
    const struct bb_event *ev, struct bb_claim_token *claim)
{
	uint8_t hash[BB_BODY_HASH_LEN];

	bb_event_fingerprint(ev, hash);
	bb_buf_reset(&call->original);
	return bb_tracker_claim(app->tracker, ev->env.event_id, hash,
	    &call->original, claim);
}

/* Takes the idempotency claim of an event with a key. Returns false when
 * the answer is already known (a replay, a conflict, a mismatch). */
static bool
claim_key(struct bb_app *app, struct bb_call *call)
{
	const struct bb_envelope *env = &call->event.env;
	struct bb_response *resp = &call->resp;
	enum bb_claim c = claim_event(app, call, &call->event, &call->claim);

	switch (c) {
	case BB_CLAIM_NEW:
		return true;
	case BB_CLAIM_UNAVAILABLE:
		return true;	/* publish; the id alone lets consumers dedupe */
	case BB_CLAIM_REPLAY:
	case BB_CLAIM_SPOOLED:
		bb_metrics_add(BB_EVENTS_REPLAYED, 1);
		if (c == BB_CLAIM_SPOOLED)
			answer_spooled(call->route, env->event_id,
			    call->original.data, call->original.len, resp);
		else
			answer_ok(call->route, env->event_id,
			    call->original.data, call->original.len, resp);
		bb_response_header(resp, "Idempotent-Replayed", "true");
		return false;
	case BB_CLAIM_IN_FLIGHT:
	case BB_CLAIM_MISMATCH:
		refuse_claim(&call->event, c, "Idempotency-Key", "body", resp);
		return false;
	}
	return false;
}

/* The AMQP message of an event (CONTRACT §6), from its envelope and the
 * document published. */
static struct bb_message
message_of_envelope(const struct bb_envelope *env, const char *json,
    size_t json_len, bool cloudevents)
{
	struct bb_message msg = {
		.routing_key = env->event_type,
		.body = json,
		.body_len = json_len,
		.message_id = env->event_id,
		.content_type = cloudevents ? BB_CLOUDEVENTS_TYPE : NULL,
		.correlation_id = env->nparents ? env->parents[0] : NULL,
		.type = env->event_type,
		.timestamp = (time_t)(env->unix_us / 1000000),
		.traceparent = env->traceparent,
		.tracestate = env->tracestate,
	};
	return msg;
}

static struct bb_message
message_of(const struct bb_event *ev)
{
	return message_of_envelope(&ev->env, ev->json.data, ev->json.len,
	    ev->cloudevents_out);
}

/* n events of the call whose publish ended with r, for /metrics. */
static void
count_result(const struct bb_call *call, enum bb_publish_result r,
    uint64_t n)
{
	if (r == BB_PUBLISH_OK)
		bb_metrics_published(n, bb_monotonic_us() - call->started_us);
	else
		bb_metrics_add(bb_metrics_outcome(r), n);
}

/* What one event's outcome leaves in Redis, for a single publish and a
 * batch item alike: a confirmed event is recorded (queued: the caller
 * flushes), and only a confirmed one (CONTRACT §7); any other gives its
 * claim up -- after an unknown outcome too: a retry publishes the same id
 * again, and consumers deduplicate on it. */
static void
record_or_release(struct bb_app *app, const struct bb_event *ev,
    struct bb_claim_token *claim, enum bb_publish_result r)
{
	const struct bb_envelope *env = &ev->env;

	if (r == BB_PUBLISH_OK) {
		bb_log_debug("published event %s (%s)", env->event_id,
		    env->event_type);
		bb_tracker_record(app->tracker, env, ev->json.data, ev->json.len,
		    claim);
	} else {
		bb_log_warning("event %s (%s) not published: %s", env->event_id,
		    env->event_type, bb_publish_result_name(r));
		bb_tracker_release(app->tracker, env->event_id, claim);
	}
}

/* ---------------------------------------------------------- the spool */

/* Whether an event the broker could not take goes to the spool: only
 * when nothing was written (CONTRACT §12). */
static bool
spoolable(const struct bb_app *app, enum bb_publish_result r)
{
	return app->spool && (r == BB_PUBLISH_UNAVAILABLE ||
	    r == BB_PUBLISH_BLOCKED);
}

/* Appends an event to the spool: its ticket, or 0 when it cannot be. */
static uint64_t
spool_event(struct bb_app *app, const struct bb_event *ev,
    const struct bb_claim_token *claim)
{
	return bb_spool_append(app->spool, &ev->env, ev->json.data,
	    ev->json.len, ev->cloudevents_out, claim->held ? claim->value + 1 :
	    NULL);
}

/* A forward's end: a confirmed event leaves the spool and is recorded,
 * marking its claim done; an unroutable one leaves it too (the broker
 * took it, and would every time); any other waits for another try,
 * counted against it when the broker refused it (a nack, no confirm). */
static void
forwarded(struct bb_app *app, struct forward *f, enum bb_publish_result r)
{
	struct bb_spooled *ev = &f->entry->event;
	struct bb_claim_token claim = { .held = ev->keyed, .spooled = true };

	if (r == BB_PUBLISH_OK) {
		claim.value[0] = BB_CLAIM_SPOOLED_TAG;
		memcpy(claim.value + 1, ev->hash, BB_BODY_HASH_LEN);
		bb_tracker_record(app->tracker, &ev->env, ev->json, ev->json_len,
		    &claim);
		bb_metrics_add(BB_EVENTS_FORWARDED, 1);
	} else if (r == BB_PUBLISH_UNROUTABLE) {
		bb_log_warning("spooled event %s (%s) forwarded, but unroutable",
		    ev->env.event_id, ev->env.event_type);
		bb_metrics_add(BB_EVENTS_UNROUTABLE, 1);
	} else {
		bb_log_info("spooled event %s not forwarded: %s; it waits",
		    ev->env.event_id, bb_publish_result_name(r));
		app->forward_after = bb_monotonic_ms() + 1000;
	}
	bb_spool_done(app->spool, f->entry,
	    r == BB_PUBLISH_OK || r == BB_PUBLISH_UNROUTABLE ?
	    BB_SPOOL_FORWARDED : r == BB_PUBLISH_NACKED ||
	    r == BB_PUBLISH_TIMEOUT ? BB_SPOOL_REFUSED : BB_SPOOL_WAITS);
}

/* Ends the forwards whose confirms came (all of them when wait). */
static void
settle_forwards(struct bb_app *app, bool wait)
{
	int ended = 0;

	for (int k = 0; k < BB_SPOOL_WINDOW && app->nforwards; k++) {
		struct forward *f = &app->forwards[k];
		if (f->entry == NULL)
			continue;
		enum bb_publish_result r = wait ?
		    bb_publisher_wait(app->pub, &f->publish) :
		    bb_publisher_result(app->pub, &f->publish);
		if (r == BB_PUBLISH_PENDING)
			continue;
		forwarded(app, f, r);
		f->entry = NULL;
		app->nforwards--;
		ended++;
	}
	if (ended)
		bb_tracker_flush(app->tracker);
}

/* Forwarding: each worker keeps up to BB_SPOOL_WINDOW spooled events in
 * flight, topped up on every turn of its loop, on the connection that its
 * requests use; a request is taken on every turn too, so neither waits
 * for the other to finish. */
void
bb_app_forward(struct bb_app *app)
{
	struct bb_spool_entry *e;
	int k = 0;

	if (app->spool == NULL)
		return;
	long long now = bb_monotonic_ms();
	if (now - app->adopted_at >= 1000) {
		bb_spool_adopt(app->spool);
		app->adopted_at = now;
	}
	settle_forwards(app, false);
	if (now < app->forward_after)
		return;
	while (app->nforwards < BB_SPOOL_WINDOW &&
	    (e = bb_spool_next(app->spool)) != NULL) {
		while (app->forwards[k].entry != NULL)
			k++;
		struct forward *f = &app->forwards[k];
		struct bb_message msg = message_of_envelope(&e->event.env,
		    e->event.json, e->event.json_len, e->event.cloudevents);
		enum bb_publish_result r = bb_publisher_send(app->pub, &msg,
		    &f->publish, 0);
		if (r != BB_PUBLISH_PENDING) {
			bb_spool_done(app->spool, e, BB_SPOOL_WAITS);
			app->forward_after = bb_monotonic_ms() + 1000;
			return;
		}
		f->entry = e;
		app->nforwards++;
	}
}

bool
bb_app_spool_unsynced(const struct bb_app *app)
{
	return app->spool && bb_spool_unsynced(app->spool);
}

/* Answers a publish whose outcome is known, recording it if confirmed. */
static void
conclude(struct bb_app *app, struct bb_call *call, enum bb_publish_result r)
{
	count_result(call, r, 1);
	record_or_release(app, &call->event, &call->claim, r);
	bb_tracker_flush(app->tracker);
	call->waiting = false;
	answer_publish(&call->event, call->route, r, &call->resp);
}

/* Up to writing the event to the broker; true when it is written and its
 * confirm is awaited. */
static bool
begin_publish(struct bb_app *app, struct bb_call *call,
    const struct bb_request *req, const struct bb_match *m,
    bb_body_reader read_body, void *ctx)
{
	call->route = m->route;
	call->claim.held = false;
	if (build_event(app, call, req, m, read_body, ctx) != 0)
		return false;
	if (call->event.key && !claim_key(app, call))
		return false;
	struct bb_message msg = message_of(&call->event);
	enum bb_publish_result r = bb_publisher_send(app->pub, &msg,
	    &call->publish, 0);
	if (spoolable(app, r) &&
	    (call->ticket = spool_event(app, &call->event, &call->claim))) {
		/* answered once the fsync is done: bb_app_finish */
		call->publish.result = r;
		call->publish.deadline = bb_monotonic_ms();
		call->waiting = true;
		return true;
	}
	if (r != BB_PUBLISH_PENDING) {
		conclude(app, call, r);
		return false;
	}
	call->waiting = true;
	return true;
}

/* Answers a spooled event once its fsync is done: 202, its claim now
 * spooled; or, when the fsync failed, as the broker's failure was. */
static void
conclude_spooled(struct bb_app *app, struct bb_call *call)
{
	const struct bb_event *ev = &call->event;

	call->waiting = false;
	if (bb_spool_sync(app->spool, call->ticket) != 0) {
		call->ticket = 0;
		conclude(app, call, call->publish.result);
		return;
	}
	call->ticket = 0;
	bb_tracker_spool(app->tracker, ev->env.event_id, &call->claim,
	    ev->json.data, ev->json.len);
	bb_metrics_add(BB_EVENTS_SPOOLED, 1);
	bb_log_debug("spooled event %s (%s)", ev->env.event_id,
	    ev->env.event_type);
	answer_spooled(call->route, ev->env.event_id, ev->json.data,
	    ev->json.len, &call->resp);
}

/* ---------------------------------------------------------- batches */

/* Each item's JSON values count against this, as 65,536 do for one event
 * (CONTRACT §4.10). */
#define VALUES_PER_BATCH_ITEM 256

static void
item_error(struct bb_item *it, const struct bb_response *resp)
{
	it->status = resp->status;
	bb_buf_reset(&it->error);
	bb_buf_append(&it->error, resp->body.data, resp->body.len);
}

static void
item_fail(struct bb_call *call, struct bb_item *it, int status,
    const char *code, const char *detail)
{
	bb_response_reset(&call->scratch);
	bb_response_error(&call->scratch, status, code, detail);
	item_error(it, &call->scratch);
}

static struct bb_item *
items_for(struct bb_call *call, int n)
{
	if (n > call->cap) {
		call->items = bb_xreallocarray(call->items, (size_t)n,
		    sizeof(*call->items));
		for (int k = call->cap; k < n; k++) {
			memset(&call->items[k], 0, sizeof(call->items[k]));
			bb_event_init(&call->items[k].event);
			bb_buf_init(&call->items[k].error);
		}
		call->cap = n;
	}
	call->nitems = n;
	for (int k = 0; k < n; k++) {
		struct bb_item *it = &call->items[k];
		it->status = 0;
		it->replayed = it->sent = false;
		it->ticket = 0;
		it->claim.held = false;
	}
	return call->items;
}

/* The body as a JSON array of 1..BATCH_MAX_EVENTS values, in call->batch.
 * The array is one level more than its items, which meet the single
 * event's depth limit when each is parsed on its own (CONTRACT §4.10). */
static bool
parse_batch(struct bb_app *app, struct bb_call *call)
{
	struct bb_response *resp = &call->resp;
	int max = app->cfg->batch_max_events;
	char err[128];

	bb_json_free(&call->batch);
	switch (bb_json_parse_limit(&call->batch, call->body.data ?
	    call->body.data : "", call->body.len, BB_JSON_MAX_DEPTH + 1,
	    max * VALUES_PER_BATCH_ITEM, err, sizeof(err))) {
	case BB_JSON_INVALID:
		bb_response_error(resp, 400, "invalid_json", err);
		return false;
	case BB_JSON_TOO_LARGE:
		bb_response_error(resp, 413, "payload_too_large", err);
		return false;
	case BB_JSON_OK:
		break;
	}
	if (bb_json_type(&call->batch, 0) != BB_JSON_ARRAY) {
		bb_response_error(resp, 400, "invalid_request",
		    "the body of a batch is a JSON array of events");
		return false;
	}
	int n = bb_json_size(&call->batch, 0);
	if (n == 0) {
		bb_response_error_fields(resp, 422, "validation_error",
		    "a batch holds at least one event", "", 0);
		return false;
	}
	if (n > max) {
		snprintf(err, sizeof(err), "a batch holds at most %d events", max);
		bb_response_error(resp, 413, "payload_too_large", err);
		return false;
	}
	return true;
}

/* Every item built or refused on its own (CONTRACT §4.10). */
static void
build_items(const struct bb_app *app, struct bb_call *call,
    const struct bb_request *req)
{
	struct bb_item *it = items_for(call, bb_json_size(&call->batch, 0));
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	for (int v = 1, k = 0; k < call->nitems;
	    v = bb_json_next(&call->batch, v), k++) {
		size_t len;
		const char *raw = bb_json_raw(&call->batch, v, &len);
		bb_response_reset(&call->scratch);
		it[k].event.catalog = app->catalog;
		it[k].event.cloudevents_out = app->cloudevents_out;
		if (bb_json_type(&call->batch, v) != BB_JSON_OBJECT)
			item_fail(call, &it[k], 422, "validation_error",
			    "each item of a batch is a JSON object");
		else if (bb_event_build_item(&it[k].event, req, raw, len, &now,
		    &call->scratch) != 0)
			item_error(&it[k], &call->scratch);
	}
}

/* An item that carries an idempotency_key, for sorting by key. */
struct keyed {
	const char *key;
	size_t len;
	int index;
};

static int
compare_key_text(const struct keyed *x, const struct keyed *y)
{
	int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);

	if (c || x->len == y->len)
		return c;
	return x->len < y->len ? -1 : 1;
}

static int
compare_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = compare_key_text(x, y);

	return c ? c : x->index - y->index;	/* earlier first */
}

/* The same idempotency_key twice in one batch: the later item is 422. */
static void
refuse_repeated_keys(struct bb_call *call)
{
	struct keyed *order = bb_xcalloc((size_t)call->nitems + 1,
	    sizeof(*order));
	int n = 0;

	for (int k = 0; k < call->nitems; k++) {
		const struct bb_event *ev = &call->items[k].event;
		if (call->items[k].status == 0 && ev->key)
			order[n++] = (struct keyed){ ev->key, ev->key_len, k };
	}
	qsort(order, (size_t)n, sizeof(*order), compare_keyed);
	for (int j = 1; j < n; j++) {
		if (compare_key_text(&order[j - 1], &order[j]) == 0)
			item_fail(call, &call->items[order[j].index], 422,
			    "validation_error", call->items[order[j].index].event.
			    cloudevent ? "an earlier item of the batch has this "
			    "CloudEvent's source and id" : "this idempotency_key "
			    "is used by an earlier item of the batch");
	}
	free(order);
}

/* An item's idempotency claim: false when its answer is already known. */
static bool
claim_item(struct bb_app *app, struct bb_call *call, struct bb_item *it)
{
	const struct bb_event *ev = &it->event;
	enum bb_claim c = claim_event(app, call, ev, &it->claim);

	switch (c) {
	case BB_CLAIM_NEW:
	case BB_CLAIM_UNAVAILABLE:
		return true;
	case BB_CLAIM_REPLAY:
	case BB_CLAIM_SPOOLED:
		it->status = c == BB_CLAIM_SPOOLED ? 202 : 200;
		it->replayed = true;
		return false;
	case BB_CLAIM_IN_FLIGHT:
	case BB_CLAIM_MISMATCH:
		bb_response_reset(&call->scratch);
		refuse_claim(ev, c, "idempotency_key", "item", &call->scratch);
		item_error(it, &call->scratch);
		return false;
	}
	return false;
}

/* Writes every item still to publish, back to back, under one deadline.
 * Returns how many were written. Once the broker fails one, the rest are
 * not tried: they answer as it did; once the deadline has passed, they
 * answer 503 unwritten. */
static int
send_items(struct bb_app *app, struct bb_call *call,
    enum bb_publish_result *failure)
{
	long long deadline = bb_monotonic_ms() + app->cfg->confirm_timeout_ms;
	enum bb_publish_result failed = BB_PUBLISH_PENDING;
	int sent = 0;

	for (int k = 0; k < call->nitems; k++) {
		struct bb_item *it = &call->items[k];
		if (it->status != 0)
			continue;
		if (it->event.key && !claim_item(app, call, it))
			continue;
		/* The batch's time ran out (slow claims): the rest are not
		 * written, rather than written already late, which would
		 * fail the connection that other requests share. */
		if (failed == BB_PUBLISH_PENDING && bb_monotonic_ms() >= deadline) {
			bb_log_warning("a batch ran out of time after %d of its %d "
			    "events; the rest are answered 503 unwritten", sent,
			    call->nitems);
			failed = BB_PUBLISH_UNAVAILABLE;
		}
		enum bb_publish_result r = failed;
		if (r == BB_PUBLISH_PENDING) {
			struct bb_message msg = message_of(&it->event);
			r = bb_publisher_send(app->pub, &msg, &it->publish,
			    deadline);
		}
		if (r == BB_PUBLISH_PENDING) {
			it->sent = true;
			sent++;
			continue;
		}
		failed = r;
		it->publish.result = r;
		if (spoolable(app, r) &&
		    (it->ticket = spool_event(app, &it->event, &it->claim)))
			continue;	/* answered in conclude_batch */
		bb_tracker_release(app->tracker, it->event.env.event_id,
		    &it->claim);
		bb_response_reset(&call->scratch);
		answer_publish(&it->event, BB_ROUTE_EVENTS, r, &call->scratch);
		item_error(it, &call->scratch);
	}
	*failure = failed;
	return sent;
}

/* {"published":N,"failed":M,"results":[...]}, and "spooled":S after
 * "failed" when items were spooled: 200 when every item was published or
 * replayed, else 207. */
static void
answer_batch(struct bb_call *call)
{
	struct bb_buf *b = &call->resp.body;
	int ok = 0, spooled = 0;

	for (int k = 0; k < call->nitems; k++) {
		ok += call->items[k].status == 200;
		spooled += call->items[k].status == 202;
	}
	call->resp.status = ok == call->nitems ? 200 : 207;
	bb_buf_printf(b, "{\"published\":%d,\"failed\":%d,", ok,
	    call->nitems - ok - spooled);
	if (spooled)
		bb_buf_printf(b, "\"spooled\":%d,", spooled);
	bb_buf_puts(b, "\"results\":[");
	for (int k = 0; k < call->nitems; k++) {
		const struct bb_item *it = &call->items[k];
		if (k)
			bb_buf_putc(b, ',');
		if (it->status == 200 || it->status == 202) {
			bb_buf_printf(b, "{\"status\":%d,\"event_id\":\"%s\"%s}",
			    it->status, it->event.env.event_id,
			    it->replayed ? ",\"replayed\":true" : "");
		} else {
			/* the error body, {"error":...}, with the status first */
			bb_buf_printf(b, "{\"status\":%d,", it->status);
			bb_buf_append(b, it->error.data + 1, it->error.len - 1);
		}
	}
	bb_buf_puts(b, "]}");
}

/* Every item of an answered batch, for /metrics: one count per event. */
static void
count_items(const struct bb_call *call)
{
	uint64_t published = 0;

	for (int k = 0; k < call->nitems; k++) {
		const struct bb_item *it = &call->items[k];
		if (it->status == 200 && !it->replayed)
			published++;
		else if (it->status == 202 && !it->replayed)
			bb_metrics_add(BB_EVENTS_SPOOLED, 1);
		else if (it->replayed)
			bb_metrics_add(BB_EVENTS_REPLAYED, 1);
		else if (it->status < 500)
			bb_metrics_add(BB_EVENTS_REJECTED, 1);
		else
			count_result(call, it->publish.result, 1);
	}
	if (published)
		count_result(call, BB_PUBLISH_OK, published);
}

/* The spooled items, once one fsync has made them all durable: 202 each,
 * or each answered as the broker's failure was when the fsync failed. */
static void
conclude_spooled_items(struct bb_app *app, struct bb_call *call)
{
	uint64_t last = 0;

	for (int k = 0; k < call->nitems; k++)
		if (call->items[k].ticket > last)
			last = call->items[k].ticket;
	if (last == 0)
		return;
	bool durable = bb_spool_sync(app->spool, last) == 0;
	for (int k = 0; k < call->nitems; k++) {
		struct bb_item *it = &call->items[k];
		const struct bb_event *ev = &it->event;
		if (it->ticket == 0)
			continue;
		it->ticket = 0;
		if (durable) {
			it->status = 202;
			bb_tracker_spool(app->tracker, ev->env.event_id,
			    &it->claim, ev->json.data, ev->json.len);
			continue;
		}
		bb_tracker_release(app->tracker, ev->env.event_id, &it->claim);
		bb_response_reset(&call->scratch);
		answer_publish(ev, BB_ROUTE_EVENTS, it->publish.result,
		    &call->scratch);
		item_error(it, &call->scratch);
	}
}

/* Every confirm in: the confirmed items recorded in one pipeline, the
 * others' claims given up, the answer written. */
static void
conclude_batch(struct bb_app *app, struct bb_call *call)
{
	for (int k = 0; k < call->nitems; k++) {
		struct bb_item *it = &call->items[k];
		if (!it->sent)
			continue;
		it->sent = false;
		enum bb_publish_result r = it->publish.result;
		record_or_release(app, &it->event, &it->claim, r);
		if (r == BB_PUBLISH_OK) {
			it->status = 200;
			continue;
		}
		bb_response_reset(&call->scratch);
		answer_publish(&it->event, BB_ROUTE_EVENTS, r, &call->scratch);
		item_error(it, &call->scratch);
	}
	bb_tracker_flush(app->tracker);
	call->waiting = false;
	count_items(call);
	answer_batch(call);
}

/* POST /events/batch (CONTRACT §4.10), up to writing its events. */
static bool
begin_batch(struct bb_app *app, struct bb_call *call,
    const struct bb_request *req, bb_body_reader read_body, void *ctx)
{
	call->route = BB_ROUTE_BATCH;
	call->nitems = 0;
	if (req->idempotency_key) {
		bb_response_error(&call->resp, 400, "invalid_request", "a batch "
		    "takes no Idempotency-Key header: give each item its own "
		    "idempotency_key");
		return false;
	}
	if (read_body_checked(app, call, req, read_body, ctx) != 0 ||
	    !parse_batch(app, call))
		return false;
	build_items(app, call, req);
	refuse_repeated_keys(call);
	enum bb_publish_result failure;
	int sent = send_items(app, call, &failure);
	bool replayed = false, spooled = false;
	for (int k = 0; k < call->nitems; k++) {
		replayed |= call->items[k].replayed;
		spooled |= call->items[k].ticket != 0;
	}
	if (spooled) {
		/* made durable at once, while nothing else can come between
		 * the appends and their fsync (another request's fsync
		 * failing, or the forwarding of what that fsync covered) */
		conclude_spooled_items(app, call);
		call->waiting = sent > 0;
		if (!call->waiting)
			conclude_batch(app, call);
		return call->waiting;
	}
	if (sent == 0 && !replayed && (failure == BB_PUBLISH_UNAVAILABLE ||
	    failure == BB_PUBLISH_BLOCKED)) {
		/* The broker refused before anything was sent: one answer
		 * for the whole request, nothing published. */
		count_items(call);
		answer_publish(&call->event, BB_ROUTE_BATCH, failure, &call->resp);
		return false;
	}
	call->waiting = sent > 0;
	if (!call->waiting)
		conclude_batch(app, call);
	return call->waiting;
}

/* True when every item written has its final result. */
static bool
batch_settled(struct bb_app *app, struct bb_call *call, bool wait)
{
	for (int k = 0; k < call->nitems; k++) {
		struct bb_item *it = &call->items[k];
		if (!it->sent)
			continue;
		enum bb_publish_result r = wait ?
		    bb_publisher_wait(app->pub, &it->publish) :
		    bb_publisher_result(app->pub, &it->publish);
		if (r == BB_PUBLISH_PENDING)
			return false;
	}
	return true;
}

long long
bb_call_deadline(const struct bb_call *call)
{
	if (call->route == BB_ROUTE_BATCH && call->nitems)
		for (int k = 0; k < call->nitems; k++)
			if (call->items[k].sent)
				return call->items[k].publish.deadline;
	return call->publish.deadline;
}

bool
bb_app_finish(struct bb_app *app, struct bb_call *call, bool wait)
{
	if (!call->waiting)
		return true;
	if (call->ticket) {
		conclude_spooled(app, call);
		return true;
	}
	if (call->route == BB_ROUTE_BATCH) {
		if (!batch_settled(app, call, wait))
			return false;
		conclude_batch(app, call);
		return true;
	}
	enum bb_publish_result r = wait ?
	    bb_publisher_wait(app->pub, &call->publish) :
	    bb_publisher_result(app->pub, &call->publish);
	if (r == BB_PUBLISH_PENDING)
		return false;
	conclude(app, call, r);
	return true;
}

bool
bb_app_begin(struct bb_app *app, struct bb_call *call, struct bb_request *req,
    bb_body_reader read_body, void *ctx)
{
	struct bb_response *resp = &call->resp;
	struct bb_match m;

	bb_response_reset(resp);
	call->route = BB_ROUTE_NONE;	/* a 401 is counted under no route */
	call->waiting = false;
	call->started_us = bb_monotonic_us();
	call->ticket = 0;
	enum bb_route_result found = bb_route(req->method, req->path, &m);
	/* CONTRACT §8: authenticated before routed, so that the API cannot be
	 * mapped without the token. /healthz is open; a signed webhook is
	 * authenticated by its signature instead. */
	if (m.route != BB_ROUTE_HEALTHZ && !webhook_signed(app, m.route) &&
	    !authorized(app, req)) {
		bb_response_error(resp, 401, "unauthorized",
		    "a valid bearer token is required");
		bb_response_header(resp, "WWW-Authenticate", "Bearer");
		return false;
	}
	/* DEBUG_ENDPOINTS=false removes the paths, whatever the method. */
	if ((m.route == BB_ROUTE_CORRELATION || m.route == BB_ROUTE_CHAIN) &&
	    !app->cfg->debug_endpoints)
		found = BB_ROUTE_NOT_FOUND;
	call->route = found == BB_ROUTE_NOT_FOUND ? BB_ROUTE_NONE : m.route;
	switch (found) {
	case BB_ROUTE_NOT_FOUND:
		bb_response_error(resp, 404, "not_found", "no such endpoint");
		return false;
	case BB_ROUTE_BAD_METHOD:
		bb_response_error(resp, 405, "method_not_allowed",
		    "this endpoint does not accept that method");
		bb_response_header(resp, "Allow", m.allow);
		return false;
	case BB_ROUTE_FOUND:
		break;
	}
	if (m.route == BB_ROUTE_HEALTHZ) {
		handle_healthz(app, resp);
		return false;
	}
	/* source.host is the client behind a trusted load balancer. */
	req->remote_addr = bb_proxies_client(&app->proxies, req->remote_addr,
	    req->forwarded_for, call->client);
	if (m.route == BB_ROUTE_CORRELATION || m.route == BB_ROUTE_CHAIN) {
		bb_debug_handle(app->tracker, &m, req->query, resp);
		return false;
	}
	if (m.route == BB_ROUTE_METRICS) {
		bb_metrics_answer(resp);
		return false;
	}
	if (m.route == BB_ROUTE_SCHEMAS) {
		bb_catalog_answer(app->catalog, m.arg, m.arg_len, resp);
		return false;
	}
	bool waiting = m.route == BB_ROUTE_BATCH ?
	    begin_batch(app, call, req, read_body, ctx) :
	    begin_publish(app, call, req, &m, read_body, ctx);
	/* A request refused as a whole is one rejected event; a webhook
	 * delivery refused for its signature is no event at all. */
	if (!waiting && resp->status >= 400 && resp->status < 500 &&
	    resp->status != 401)
		bb_metrics_add(BB_EVENTS_REJECTED, 1);
	return waiting;
}
