#include <string.h>

#include "http.h"
#include "tests.h"

static void
expect_route(const char *method, const char *path,
    enum bb_route_result result, enum bb_route route)
{
	struct bb_match m;

	CU_ASSERT_EQUAL(bb_route(method, path, &m), result);
	if (result != BB_ROUTE_NOT_FOUND)
		CU_ASSERT_EQUAL(m.route, route);
}

static void
test_routes_typed_endpoints_first(void)
{
	expect_route("GET", "/healthz", BB_ROUTE_FOUND, BB_ROUTE_HEALTHZ);
	expect_route("HEAD", "/healthz", BB_ROUTE_FOUND, BB_ROUTE_HEALTHZ);
	expect_route("POST", "/events/batch", BB_ROUTE_FOUND, BB_ROUTE_BATCH);
	expect_route("POST", "/events/llm/prompt", BB_ROUTE_FOUND,
	    BB_ROUTE_LLM_PROMPT);
	expect_route("POST", "/events/llm/response", BB_ROUTE_FOUND,
	    BB_ROUTE_LLM_RESPONSE);
	expect_route("POST", "/events/artifact", BB_ROUTE_FOUND, BB_ROUTE_ARTIFACT);
	expect_route("POST", "/webhooks/fireflies", BB_ROUTE_FOUND,
	    BB_ROUTE_FIREFLIES);
	expect_route("POST", "/events", BB_ROUTE_FOUND, BB_ROUTE_EVENTS);
}

static void
test_routes_generic_event_type(void)
{
	struct bb_match m;

	CU_ASSERT_EQUAL(bb_route("POST", "/events/build.finished", &m),
	    BB_ROUTE_FOUND);
	CU_ASSERT_EQUAL(m.route, BB_ROUTE_EVENT_TYPE);
	CU_ASSERT_EQUAL(m.arg_len, strlen("build.finished"));
	CU_ASSERT(strncmp(m.arg, "build.finished", m.arg_len) == 0);
}

static void
test_routes_debug_endpoints(void)
{
	struct bb_match m;

	CU_ASSERT_EQUAL(bb_route("GET", "/debug/correlation/abc", &m),
	    BB_ROUTE_FOUND);
	CU_ASSERT_EQUAL(m.route, BB_ROUTE_CORRELATION);
	CU_ASSERT_EQUAL(m.arg_len, 3);
	CU_ASSERT_EQUAL(bb_route("GET", "/debug/correlation/abc/chain", &m),
	    BB_ROUTE_FOUND);
	CU_ASSERT_EQUAL(m.route, BB_ROUTE_CHAIN);
	CU_ASSERT_EQUAL(m.arg_len, 3);
	CU_ASSERT(strncmp(m.arg, "abc", 3) == 0);
	expect_route("GET", "/debug/correlation/abc/other", BB_ROUTE_NOT_FOUND,
	    BB_ROUTE_NONE);
	expect_route("GET", "/debug/correlation//chain", BB_ROUTE_NOT_FOUND,
	    BB_ROUTE_NONE);
	expect_route("POST", "/debug/correlation/abc", BB_ROUTE_BAD_METHOD,
	    BB_ROUTE_CORRELATION);
}

static void
test_wrong_method_names_allow(void)
{
	struct bb_match m;

	CU_ASSERT_EQUAL(bb_route("GET", "/events/llm/prompt", &m),
	    BB_ROUTE_BAD_METHOD);
	CU_ASSERT_STRING_EQUAL(m.allow, "POST");
	CU_ASSERT_EQUAL(bb_route("POST", "/healthz", &m), BB_ROUTE_BAD_METHOD);
	CU_ASSERT_STRING_EQUAL(m.allow, "GET, HEAD");
	CU_ASSERT_EQUAL(bb_route("HEAD", "/events/llm/prompt", &m),
	    BB_ROUTE_BAD_METHOD);
}

static void
test_unknown_paths(void)
{
	expect_route("GET", "/", BB_ROUTE_NOT_FOUND, BB_ROUTE_NONE);
	expect_route("POST", "/events/", BB_ROUTE_NOT_FOUND, BB_ROUTE_NONE);
	expect_route("GET", "/healthz/", BB_ROUTE_NOT_FOUND, BB_ROUTE_NONE);
	expect_route("POST", "/eventsx", BB_ROUTE_NOT_FOUND, BB_ROUTE_NONE);
}

static void
test_request_from_params(void)
{
	char *params[] = {
		"REQUEST_METHOD=POST", "REQUEST_URI=/events/llm/prompt?x=1&y=2",
		"QUERY_STRING=x=1&y=2", "CONTENT_TYPE=application/json",
		"CONTENT_LENGTH=42", "REMOTE_ADDR=10.0.0.7",
		"HTTP_IDEMPOTENCY_KEY=abc", "HTTP_X_CORRELATION_IDS=a,b",
		"HTTP_TRACEPARENT=tp", NULL,
	};
	struct bb_request req;
	char v[16];

	CU_ASSERT_EQUAL_FATAL(bb_request_from_params(&req, params), 0);
	CU_ASSERT_STRING_EQUAL(req.method, "POST");
	CU_ASSERT_STRING_EQUAL(req.path, "/events/llm/prompt");
	CU_ASSERT_EQUAL(req.content_length, 42);
	CU_ASSERT_FALSE(req.content_length_malformed);
	CU_ASSERT_STRING_EQUAL(req.remote_addr, "10.0.0.7");
	CU_ASSERT_STRING_EQUAL(req.idempotency_key, "abc");
	CU_ASSERT_STRING_EQUAL(req.correlation_ids, "a,b");
	CU_ASSERT_STRING_EQUAL(req.traceparent, "tp");
	CU_ASSERT_PTR_NULL(req.tracestate);
	CU_ASSERT(bb_query_param(req.query, "y", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "2");
	CU_ASSERT_FALSE(bb_query_param(req.query, "z", v, sizeof(v)));
	CU_ASSERT(bb_query_param("max_depth=000000000000000000001", "max_depth",
	    v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "");
}

/* X-Forwarded-For and X_Forwarded_For both arrive as HTTP_X_FORWARDED_FOR:
 * the request notes it rather than believe the first. */
static void
test_parameter_given_twice_is_noted(void)
{
	char *xff[] = { "REQUEST_URI=/events", "HTTP_X_FORWARDED_FOR=1.2.3.4",
	    "HTTP_ACCEPT=*/*", "HTTP_X_FORWARDED_FOR=6.6.6.6", NULL };
	char *ce[] = { "REQUEST_URI=/events", "HTTP_CE_ID=a", "HTTP_CE_IDX=b",
	    "HTTP_CE_ID=c", NULL };
	char *unread[] = { "REQUEST_URI=/", "HTTP_ACCEPT=a", "HTTP_ACCEPT=b",
	    NULL };
	struct bb_request req;

	CU_ASSERT_EQUAL(bb_request_from_params(&req, xff), 0);
	CU_ASSERT_PTR_EQUAL(req.repeated, xff[3]);
	CU_ASSERT_EQUAL(bb_request_from_params(&req, ce), 0);
	CU_ASSERT_PTR_EQUAL(req.repeated, ce[3]);
	/* a parameter nobody reads may come twice */
	CU_ASSERT_EQUAL(bb_request_from_params(&req, unread), 0);
	CU_ASSERT_PTR_NULL(req.repeated);
}

static void
test_malformed_content_length(void)
{
	char *params[] = { "REQUEST_URI=/", "CONTENT_LENGTH=12x", NULL };
	char *huge[] = { "REQUEST_URI=/",
	    "CONTENT_LENGTH=99999999999999999999999", NULL };
	struct bb_request req;

	bb_request_from_params(&req, params);
	CU_ASSERT(req.content_length_malformed);
	bb_request_from_params(&req, huge);
	CU_ASSERT(req.content_length_malformed);
}

static void
test_content_type(void)
{
	CU_ASSERT(bb_content_type_is_json("application/json"));
	CU_ASSERT(bb_content_type_is_json("Application/JSON; charset=utf-8"));
	CU_ASSERT_FALSE(bb_content_type_is_json(NULL));
	CU_ASSERT_FALSE(bb_content_type_is_json("text/plain"));
	CU_ASSERT_FALSE(bb_content_type_is_json("application/jsonx"));
}

static void
test_response_serialization(void)
{
	struct bb_response resp;
	struct bb_buf out;

	bb_response_init(&resp);
	bb_buf_init(&out);
	bb_response_error(&resp, 405, "method_not_allowed", "say \"POST\"");
	bb_response_header(&resp, "Allow", "POST");
	bb_response_serialize(&resp, true, &out);
	CU_ASSERT_STRING_EQUAL(out.data,
	    "Status: 405 Method Not Allowed\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: 54\r\n"
	    "Allow: POST\r\n\r\n"
	    "{\"error\":\"method_not_allowed\",\"detail\":\"say \\\"POST\\\"\"}");
	bb_buf_free(&out);
	bb_response_free(&resp);
}

static void
test_head_answer_has_length_and_no_body(void)
{
	struct bb_response resp;
	struct bb_buf out;

	bb_response_init(&resp);
	bb_buf_init(&out);
	resp.status = 200;
	bb_buf_puts(&resp.body, "{\"status\":\"healthy\"}");
	bb_response_serialize(&resp, false, &out);
	CU_ASSERT_STRING_EQUAL(out.data,
	    "Status: 200 OK\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: 20\r\n\r\n");
	bb_buf_free(&out);
	bb_response_free(&resp);
}

void
add_http_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "routes typed endpoints first", test_routes_typed_endpoints_first },
		{ "routes the generic event type", test_routes_generic_event_type },
		{ "routes debug endpoints", test_routes_debug_endpoints },
		{ "wrong method names Allow", test_wrong_method_names_allow },
		{ "HEAD answer has a length and no body",
		    test_head_answer_has_length_and_no_body },
		{ "unknown paths", test_unknown_paths },
		{ "request from FastCGI params", test_request_from_params },
		{ "a parameter given twice is noted",
		    test_parameter_given_twice_is_noted },
		{ "malformed Content-Length", test_malformed_content_length },
		{ "content type", test_content_type },
		{ "response serialization", test_response_serialization },
		CU_TEST_INFO_NULL,
	};
	add_suite("http", tests);
}
