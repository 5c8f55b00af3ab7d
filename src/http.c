#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"

/* The value of parameter name. One given twice is noted in req->repeated:
 * two headers whose names differ only by '-' and '_' (X-Forwarded-For and
 * X_Forwarded_For) reach us as one parameter, and which to believe is
 * the sender's choice, not ours. */
static const char *
param(struct bb_request *req, char *const *params, const char *name)
{
	size_t n = strlen(name);
	const char *value = NULL;

	for (; *params; params++) {
		if (strncmp(*params, name, n) != 0 || (*params)[n] != '=')
			continue;
		if (value != NULL) {
			if (req->repeated == NULL)
				req->repeated = *params;
			break;
		}
		value = *params + n + 1;
	}
	return value;
}

/* RFC 9110 §8.6: Content-Length is a run of digits; anything else is
 * malformed and must not be guessed at. */
static long long
parse_length(const char *s, bool *malformed)
{
	long long v = 0;

	*malformed = false;
	if (s == NULL || *s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (1LL << 50)) {
			*malformed = true;
			return -1;
		}
		v = v * 10 + (*s - '0');
	}
	return v;
}

int
bb_request_from_params(struct bb_request *req, char *const *params)
{
	const char *uri, *v;
	size_t n;

	memset(req, 0, sizeof(*req));
	uri = param(req, params, "REQUEST_URI");
	req->method = (v = param(req, params, "REQUEST_METHOD")) ? v : "GET";
	if (uri == NULL)
		uri = (v = param(req, params, "SCRIPT_NAME")) ? v : "/";
	n = strcspn(uri, "?");
	if (n >= sizeof(req->path))
		return -1;
	memcpy(req->path, uri, n);
	req->path[n] = '\0';
	req->query = (v = param(req, params, "QUERY_STRING")) ? v : "";
	req->content_type = param(req, params, "CONTENT_TYPE");
	req->content_length = parse_length(param(req, params, "CONTENT_LENGTH"),
	    &req->content_length_malformed);
	req->remote_addr = (v = param(req, params, "REMOTE_ADDR")) ? v : "";
	req->authorization = param(req, params, "HTTP_AUTHORIZATION");
	req->idempotency_key = param(req, params, "HTTP_IDEMPOTENCY_KEY");
	req->correlation_ids = param(req, params, "HTTP_X_CORRELATION_IDS");
	req->traceparent = param(req, params, "HTTP_TRACEPARENT");
	req->tracestate = param(req, params, "HTTP_TRACESTATE");
	req->forwarded_for = param(req, params, "HTTP_X_FORWARDED_FOR");
	req->hub_signature = param(req, params, "HTTP_X_HUB_SIGNATURE");
	for (char *const *p = params; *p; p++) {
		const char *eq = strchr(*p, '=');
		if (eq == NULL || strncmp(*p, "HTTP_CE_", 8) != 0 || eq == *p + 8)
			continue;
		if (strncmp(*p, "HTTP_CE_SPECVERSION=", 20) == 0)
			req->ce_specversion = true;
		if (req->nce < 0 || req->nce == BB_CE_MAX_HEADERS) {
			req->nce = -1;
			continue;
		}
		for (int k = 0; k < req->nce; k++) {
			if (strncmp(req->ce[k].name, *p + 8, (size_t)(eq - *p - 7))
			    == 0 && req->repeated == NULL)
				req->repeated = *p;
		}
		req->ce[req->nce].name = *p + 8;
		req->ce[req->nce].value = eq + 1;
		req->nce++;
	}
	return 0;
}

bool
bb_content_type_is_json(const char *ct)
{
	return bb_content_type_is(ct, "application/json");
}

bool
bb_content_type_is(const char *ct, const char *mime)
{
	size_t n = strlen(mime);

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, mime, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

bool
bb_query_param(const char *query, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);
	const char *p = query;

	while (p && *p) {
		size_t len = strcspn(p, "&");
		if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
			size_t vlen = len - n - 1;
			if (vlen >= outlen)
				vlen = 0;	/* too long: no parameter accepts "" */
			memcpy(out, p + n + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = p[len] ? p + len + 1 : NULL;
	}
	return false;
}

void
bb_response_init(struct bb_response *resp)
{
	resp->status = 200;
	resp->content_type = NULL;
	bb_buf_init(&resp->headers);
	bb_buf_init(&resp->body);
}

void
bb_response_free(struct bb_response *resp)
{
	bb_buf_free(&resp->headers);
	bb_buf_free(&resp->body);
}

void
bb_response_reset(struct bb_response *resp)
{
	resp->status = 200;
	resp->content_type = NULL;
	bb_buf_reset(&resp->headers);
	bb_buf_reset(&resp->body);
}

void
bb_response_header(struct bb_response *resp, const char *name,
    const char *value)
{
	bb_buf_printf(&resp->headers, "%s: %s\r\n", name, value);
}

void
bb_response_error(struct bb_response *resp, int status, const char *code,
    const char *detail)
{
	bb_response_error_fields(resp, status, code, detail, NULL, 0);
}

void
bb_response_error_fields(struct bb_response *resp, int status,
    const char *code, const char *detail, const char *fields, size_t len)
{
	resp->status = status;
	resp->content_type = NULL;
	bb_buf_reset(&resp->body);
	bb_buf_puts(&resp->body, "{\"error\":");
	bb_json_write_string(&resp->body, code, strlen(code));
	bb_buf_puts(&resp->body, ",\"detail\":");
	bb_json_write_string(&resp->body, detail, strlen(detail));
	if (fields) {
		bb_buf_puts(&resp->body, ",\"fields\":[");
		bb_buf_append(&resp->body, fields, len);
		bb_buf_putc(&resp->body, ']');
	}
	bb_buf_putc(&resp->body, '}');
}

const char *
bb_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 207: return "Multi-Status";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

void
bb_response_serialize(const struct bb_response *resp, bool with_body,
    struct bb_buf *out)
{
	bb_buf_printf(out, "Status: %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n", resp->status,
	    bb_http_reason(resp->status), resp->content_type ?
	    resp->content_type : "application/json; charset=utf-8",
	    resp->body.len);
	bb_buf_append(out, resp->headers.data, resp->headers.len);
	bb_buf_puts(out, "\r\n");
	if (with_body)
		bb_buf_append(out, resp->body.data, resp->body.len);
}

static bool
starts_with(const char *s, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);

	if (strncmp(s, prefix, n) != 0)
		return false;
	*rest = s + n;
	return true;
}

/* A resource that answers GET answers HEAD too (RFC 9110 §9.3.2): load
 * balancers probe with HEAD. */
static enum bb_route_result
finish(const char *method, const char *allow, enum bb_route route,
    struct bb_match *m)
{
	bool get = strcmp(allow, "GET") == 0;

	m->route = route;
	m->allow = get ? "GET, HEAD" : allow;
	if (strcmp(method, allow) == 0 || (get && strcmp(method, "HEAD") == 0))
		return BB_ROUTE_FOUND;
	return BB_ROUTE_BAD_METHOD;
}

enum bb_route_result
bb_route(const char *method, const char *path, struct bb_match *m)
{
	static const struct {
		const char *path;
		const char *method;
		enum bb_route route;
	} exact[] = {
		{ "/healthz", "GET", BB_ROUTE_HEALTHZ },
		{ "/events/llm/prompt", "POST", BB_ROUTE_LLM_PROMPT },
		{ "/events/llm/response", "POST", BB_ROUTE_LLM_RESPONSE },
		{ "/events/artifact", "POST", BB_ROUTE_ARTIFACT },
		{ "/webhooks/fireflies", "POST", BB_ROUTE_FIREFLIES },
		{ "/events", "POST", BB_ROUTE_EVENTS },
		{ "/events/batch", "POST", BB_ROUTE_BATCH },
		{ "/metrics", "GET", BB_ROUTE_METRICS },
		{ "/schemas", "GET", BB_ROUTE_SCHEMAS },
	};
	const char *rest;

	memset(m, 0, sizeof(*m));
	for (size_t k = 0; k < sizeof(exact) / sizeof(exact[0]); k++) {
		if (strcmp(path, exact[k].path) == 0)
			return finish(method, exact[k].method, exact[k].route, m);
	}
	if (starts_with(path, "/events/", &rest) && *rest) {
		m->arg = rest;
		m->arg_len = strlen(rest);
		return finish(method, "POST", BB_ROUTE_EVENT_TYPE, m);
	}
	if (starts_with(path, "/schemas/", &rest) && *rest) {
		m->arg = rest;
		m->arg_len = strlen(rest);
		return finish(method, "GET", BB_ROUTE_SCHEMAS, m);
	}
	if (starts_with(path, "/debug/correlation/", &rest) && *rest) {
		const char *slash = strchr(rest, '/');
		m->arg = rest;
		m->arg_len = slash ? (size_t)(slash - rest) : strlen(rest);
		if (slash == NULL)
			return finish(method, "GET", BB_ROUTE_CORRELATION, m);
		if (strcmp(slash, "/chain") == 0 && m->arg_len)
			return finish(method, "GET", BB_ROUTE_CHAIN, m);
	}
	memset(m, 0, sizeof(*m));
	m->route = BB_ROUTE_NONE;
	return BB_ROUTE_NOT_FOUND;
}
