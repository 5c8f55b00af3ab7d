/* libFuzzer harness over everything a publish request goes through before
 * the network: header checks, JSON parsing and validation, the endpoint's
 * schema, envelope building.
 *
 * Input: byte 0 picks the route (or a CloudEvents mode: structured,
 * binary, a batched item), byte 1 picks which headers are present and
 * (bit 7) ENVELOPE_FORMAT=cloudevents; each present header takes the bytes
 * up to the next newline -- in binary mode they are ce- headers,
 * "NAME=value", beside ce-specversion; the rest is the body. Beyond the sanitizers, it checks the contract's promises: a built
 * envelope is valid JSON with a valid event id, and a refusal is a 4xx with
 * a JSON body. The same headers also go through the other parsers of
 * request text: X-Hub-Signature (verified against the body), and
 * TRUSTED_PROXIES with an X-Forwarded-For, whose client must be the peer or
 * an address. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "proxy.h"
#include "signature.h"
#include "uuid.h"

static const enum bb_route routes[] = {
	BB_ROUTE_LLM_PROMPT, BB_ROUTE_LLM_RESPONSE, BB_ROUTE_ARTIFACT,
	BB_ROUTE_FIREFLIES, BB_ROUTE_EVENTS, BB_ROUTE_EVENT_TYPE,
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))
/* byte 0 past the routes: the CloudEvents modes of §9.1 */
enum { STRUCTURED = NROUTES, BINARY, BATCHED, NMODES };

/* Takes the bytes up to the next newline as a NUL-terminated string. */
static char *
take_line(const uint8_t **data, size_t *size)
{
	const uint8_t *nl = memchr(*data, '\n', *size);
	size_t n = nl ? (size_t)(nl - *data) : *size;
	char *s = malloc(n + 1);

	memcpy(s, *data, n);
	s[n] = '\0';
	*data += n + (nl != NULL);
	*size -= n + (nl != NULL);
	return s;
}

static enum bb_json_status
parse_json(const char *text, size_t len)
{
	struct bb_json doc;
	char err[128];
	enum bb_json_status st = bb_json_parse(&doc, text, len, err, sizeof(err));

	bb_json_free(&doc);
	return st;
}

static void
check_json(const char *text, size_t len)
{
	if (parse_json(text, len) != BB_JSON_OK)
		abort();
}

/* The envelope holds the payload one level down, so a body at the depth
 * limit makes an envelope past it, which the parser (a bound on what we
 * accept, not on what JSON is) refuses as too deep; the payload it holds
 * must still parse. */
static void
check_envelope(const struct bb_event *ev)
{
	enum bb_json_status st = parse_json(ev->json.data, ev->json.len);

	if (st == BB_JSON_TOO_LARGE)
		check_json(ev->payload.data, ev->payload.len);
	else if (st != BB_JSON_OK)
		abort();
}

static void
check_other_parsers(char *const *headers, const uint8_t *body, size_t len)
{
	static struct bb_proxies proxies;
	uint8_t digest[BB_SIGNATURE_LEN];
	char err[128], out[BB_ADDRESS_MAX], addr[16];

	if (bb_signature_parse(headers[0], digest) == 0)
		bb_signature_verify(digest, "fuzz", body, len);
	if (headers[1] && bb_proxies_parse(&proxies, headers[1], err,
	    sizeof(err)) == 0) {
		const char *client = bb_proxies_client(&proxies, "127.0.0.1",
		    headers[2], out);
		if (strcmp(client, "127.0.0.1") != 0 &&
		    inet_pton(AF_INET, client, addr) != 1 &&
		    inet_pton(AF_INET6, client, addr) != 1)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bb_event ev;
	static int initialised;
	struct bb_request req;
	struct bb_response resp;
	struct timespec now = { 1795728531, 123456000 };
	char *headers[4] = { NULL, NULL, NULL, NULL };
	const char *type = "fuzz.event";

	if (size < 2)
		return 0;
	if (!initialised) {
		bb_event_init(&ev);
		initialised = 1;
	}
	unsigned mode = data[0] % NMODES;
	enum bb_route route = mode < NROUTES ? routes[mode] : BB_ROUTE_EVENTS;
	uint8_t present = data[1];
	int rc;
	data += 2;
	size -= 2;
	for (int k = 0; k < 4; k++) {
		if (present & (1u << k))
			headers[k] = take_line(&data, &size);
	}
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.remote_addr = "127.0.0.1";
	ev.cloudevents_out = present & 0x80;
	if (mode == BINARY) {
		req.ce[req.nce++] = (struct bb_ce_header){ "SPECVERSION=1.0",
		    "1.0" };
		req.ce_specversion = true;
		for (int k = 0; k < 4; k++) {
			char *eq = headers[k] ? strchr(headers[k], '=') : NULL;
			if (eq)
				req.ce[req.nce++] = (struct bb_ce_header){
				    headers[k], eq + 1 };
		}
		req.content_type = present & 0x40 ? "text/plain" :
		    "application/json";
	} else {
		req.idempotency_key = headers[0];
		req.correlation_ids = headers[1];
		req.traceparent = headers[2];
		if (route == BB_ROUTE_EVENT_TYPE && headers[3])
			type = headers[3];
		else
			req.tracestate = headers[3];
		req.content_type = mode == STRUCTURED ? BB_CLOUDEVENTS_TYPE :
		    mode == BATCHED ? BB_CLOUDEVENTS_BATCH_TYPE :
		    "application/json";
	}

	bb_response_init(&resp);
	if (mode == BATCHED)
		rc = bb_event_build_item(&ev, &req, (const char *)data, size,
		    &now, &resp);
	else
		rc = bb_event_build(&ev, route, type, strlen(type), &req,
		    (const char *)data, size, &now, &resp);
	if (rc == 0) {
		check_envelope(&ev);
		if (!bb_uuid_valid(ev.env.event_id, strlen(ev.env.event_id)))
			abort();
	} else {
		if (resp.status < 400 || resp.status > 499)
			abort();
		check_json(resp.body.data, resp.body.len);
	}
	bb_response_free(&resp);
	check_other_parsers(headers, data, size);
	for (int k = 0; k < 4; k++)
		free(headers[k]);
	return 0;
}
