#include <string.h>

#include "envelope.h"
#include "json.h"
#include "tests.h"

static void
fill(struct bb_envelope *env, const char *payload)
{
	struct timespec t = { 1795728531, 123456789 };	/* 2026-11-26T21:28:51Z */

	memset(env, 0, sizeof(*env));
	strcpy(env->event_id, "8b43ec22-ff98-53f4-aeb6-af9614832d4f");
	strcpy(env->event_type, "llm.prompt");
	bb_envelope_stamp(env, &t);
	env->source_host = "127.0.0.1";
	env->source_type = "manual";
	env->source_app = "http";
	env->payload = payload;
	env->payload_len = strlen(payload);
}

static void
test_timestamp_has_six_digits_and_utc_offset(void)
{
	struct bb_envelope env;

	fill(&env, "{}");
	CU_ASSERT_STRING_EQUAL(env.timestamp, "2026-11-26T21:28:51.123456+00:00");
	CU_ASSERT_EQUAL(env.unix_us, 1795728531123456LL);
}

static void
test_writes_the_contract_shape(void)
{
	struct bb_envelope env;
	struct bb_buf out;

	fill(&env, "{\"prompt\":\"hi\"}");
	bb_buf_init(&out);
	bb_envelope_write(&env, &out);
	CU_ASSERT_STRING_EQUAL(out.data,
	    "{\"event_id\":\"8b43ec22-ff98-53f4-aeb6-af9614832d4f\","
	    "\"event_type\":\"llm.prompt\","
	    "\"timestamp\":\"2026-11-26T21:28:51.123456+00:00\","
	    "\"version\":\"2.0.0\","
	    "\"source\":{\"host\":\"127.0.0.1\",\"type\":\"manual\",\"app\":\"http\","
	    "\"meta\":{}},\"correlation_ids\":[],\"agent_context\":null,"
	    "\"payload\":{\"prompt\":\"hi\"}}");
	bb_buf_free(&out);
}

static void
test_parents_trace_context_and_agent_context(void)
{
	struct bb_envelope env;
	struct bb_buf out;
	struct bb_json doc;
	char err[64];

	fill(&env, "{}");
	CU_ASSERT_EQUAL(bb_envelope_add_parent(&env,
	    "AAAAAAAA-0000-4000-8000-000000000001"), 0);
	CU_ASSERT_EQUAL(bb_envelope_add_parent(&env,
	    "aaaaaaaa-0000-4000-8000-000000000001"), 0);	/* duplicate */
	CU_ASSERT_EQUAL(bb_envelope_add_parent(&env,
	    "bbbbbbbb-0000-4000-8000-000000000002"), 0);
	env.agent_context = "{\"agent\":\"x\"}";
	env.source_meta = "{\"k\":1}";
	env.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	env.tracestate = "congo=t61rcWkgMzE";
	bb_buf_init(&out);
	bb_envelope_write(&env, &out);
	CU_ASSERT(strstr(out.data, "\"correlation_ids\":["
	    "\"aaaaaaaa-0000-4000-8000-000000000001\","
	    "\"bbbbbbbb-0000-4000-8000-000000000002\"]") != NULL);
	CU_ASSERT(strstr(out.data, "\"agent_context\":{\"agent\":\"x\"}") != NULL);
	CU_ASSERT(strstr(out.data, "\"meta\":{\"k\":1}") != NULL);
	CU_ASSERT(strstr(out.data, ",\"traceparent\":\"00-4bf92f3577b34da6a3ce929d"
	    "0e0e4736-00f067aa0ba902b7-01\",\"tracestate\":\"congo=t61rcWkgMzE\"}")
	    != NULL);
	CU_ASSERT_EQUAL(bb_json_parse(&doc, out.data, out.len, err, sizeof(err)),
	    BB_JSON_OK);
	bb_json_free(&doc);
	bb_buf_free(&out);
}

static void
test_parent_limit(void)
{
	struct bb_envelope env;
	char id[BB_UUID_STRLEN + 1];

	fill(&env, "{}");
	for (int k = 0; k < BB_MAX_PARENTS; k++) {
		snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", k);
		CU_ASSERT_EQUAL(bb_envelope_add_parent(&env, id), 0);
	}
	CU_ASSERT_EQUAL(bb_envelope_add_parent(&env,
	    "ffffffff-0000-4000-8000-000000000000"), -1);
	CU_ASSERT_EQUAL(env.nparents, BB_MAX_PARENTS);
}

static void
test_escapes_the_client_address(void)
{
	struct bb_envelope env;
	struct bb_buf out;

	fill(&env, "{}");
	env.source_host = "a\"b";
	bb_buf_init(&out);
	bb_envelope_write(&env, &out);
	CU_ASSERT(strstr(out.data, "\"host\":\"a\\\"b\"") != NULL);
	bb_buf_free(&out);
}

void
add_envelope_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "timestamp has six digits and +00:00",
		    test_timestamp_has_six_digits_and_utc_offset },
		{ "writes the contract's shape", test_writes_the_contract_shape },
		{ "parents, trace context and agent context",
		    test_parents_trace_context_and_agent_context },
		{ "at most 32 parents", test_parent_limit },
		{ "escapes the client address", test_escapes_the_client_address },
		CU_TEST_INFO_NULL,
	};
	add_suite("envelope", tests);
}
