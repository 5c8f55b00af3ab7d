/* http: the request as FastCGI hands it over (CGI/1.1 parameters, RFC
 * 3875 §4.1), the response, and the router. */
#ifndef BB_HTTP_H
#define BB_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define BB_PATH_MAX 2048
/* ce- headers taken from one request (CloudEvents binary mode, §9.1). */
#define BB_CE_MAX_HEADERS 48

/* A ce- header as the web server passes it: HTTP_CE_<NAME>. */
struct bb_ce_header {
	const char *name;	/* <NAME>, ending at its "=": upper case,
				 * "-" made "_" */
	const char *value;
};

struct bb_request {
	const char *method;
	char path[BB_PATH_MAX];	/* REQUEST_URI up to '?' */
	const char *query;	/* QUERY_STRING, "" when absent */
	const char *content_type;	/* NULL when absent */
	long long content_length;	/* -1 when absent or malformed */
	bool content_length_malformed;
	const char *remote_addr;
	const char *authorization;
	const char *idempotency_key;
	const char *correlation_ids;
	const char *traceparent;
	const char *tracestate;
	const char *forwarded_for;	/* X-Forwarded-For */
	const char *hub_signature;	/* X-Hub-Signature, of webhooks */
	struct bb_ce_header ce[BB_CE_MAX_HEADERS];
	int nce;		/* -1: more than BB_CE_MAX_HEADERS */
	bool ce_specversion;	/* a ce-specversion header: binary mode */
	/* "NAME=value" of a parameter we read that came twice, else NULL */
	const char *repeated;
	const char *body;	/* not owned */
	size_t body_len;
};

/* Fills req from a NULL-terminated array of "NAME=value" parameters; the
 * strings must outlive req. Returns -1 when the path is too long. */
int bb_request_from_params(struct bb_request *req, char *const *params);

/* True when the content type is application/json (parameters such as
 * charset allowed, case-insensitive). */
bool bb_content_type_is_json(const char *content_type);
/* True when the content type's media type is mime (case-insensitive,
 * parameters allowed). */
bool bb_content_type_is(const char *content_type, const char *mime);

/* Value of name=... in a query string, copied into out; false if absent.
 * A value too long for out is given as "", which no parameter accepts, so
 * that it is refused rather than cut to something valid. */
bool bb_query_param(const char *query, const char *name, char *out,
    size_t outlen);

struct bb_response {
	int status;
	const char *content_type;	/* NULL: JSON */
	struct bb_buf headers;	/* extra header lines, each ending in CRLF */
	struct bb_buf body;
};

void bb_response_init(struct bb_response *resp);
void bb_response_free(struct bb_response *resp);
void bb_response_reset(struct bb_response *resp);
void bb_response_header(struct bb_response *resp, const char *name,
    const char *value);
/* Sets an error answer: {"error":code,"detail":detail}. */
void bb_response_error(struct bb_response *resp, int status, const char *code,
    const char *detail);
/* The same with "fields":[...], fields being the inside of the array. */
void bb_response_error_fields(struct bb_response *resp, int status,
    const char *code, const char *detail, const char *fields, size_t len);
/* The CGI-style answer; a HEAD answer has the headers (Content-Length
 * included) and no body. */
void bb_response_serialize(const struct bb_response *resp, bool with_body,
    struct bb_buf *out);
const char *bb_http_reason(int status);

enum bb_route {
	BB_ROUTE_NONE,
	BB_ROUTE_HEALTHZ,
	BB_ROUTE_LLM_PROMPT,
	BB_ROUTE_LLM_RESPONSE,
	BB_ROUTE_ARTIFACT,
	BB_ROUTE_FIREFLIES,
	BB_ROUTE_EVENTS,	/* POST /events, a partial envelope */
	BB_ROUTE_BATCH,		/* POST /events/batch, many of them */
	BB_ROUTE_EVENT_TYPE,	/* POST /events/{event_type} */
	BB_ROUTE_CORRELATION,	/* GET /debug/correlation/{event_id} */
	BB_ROUTE_CHAIN,		/* GET /debug/correlation/{event_id}/chain */
	BB_ROUTE_METRICS,	/* GET /metrics */
	BB_ROUTE_SCHEMAS,	/* GET /schemas, /schemas/{event_type} */
};

struct bb_match {
	enum bb_route route;
	const char *allow;	/* the methods the path accepts */
	const char *arg;	/* {event_type} or {event_id}, inside path;
				 * NULL for GET /schemas */
	size_t arg_len;
};

enum bb_route_result {
	BB_ROUTE_FOUND,
	BB_ROUTE_NOT_FOUND,
	BB_ROUTE_BAD_METHOD,
};

/* Matches method and path; on BAD_METHOD, m->allow says what would do. */
enum bb_route_result bb_route(const char *method, const char *path,
    struct bb_match *m);

#endif
