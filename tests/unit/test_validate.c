#include <string.h>

#include "tests.h"
#include "validate.h"

/* Validates text against schema; returns the error count and leaves the
 * payload or the errors in out. */
static int
run(const struct bb_schema *schema, const char *text, struct bb_buf *out)
{
	struct bb_json doc;
	struct bb_buf payload, errors;
	char err[64];
	int n;

	bb_buf_init(&payload);
	bb_buf_init(&errors);
	bb_buf_init(out);
	CU_ASSERT_EQUAL_FATAL(bb_json_parse(&doc, text, strlen(text), err,
	    sizeof(err)), BB_JSON_OK);
	n = bb_validate(&doc, 0, schema, &payload, &errors);
	bb_buf_puts(out, n ? (errors.data ? errors.data : "") :
	    (payload.data ? payload.data : ""));
	bb_json_free(&doc);
	bb_buf_free(&payload);
	bb_buf_free(&errors);
	return n;
}

static void
test_prompt_sample_fills_defaults_and_keeps_unknown_fields(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run(&bb_schema_llm_prompt, "{\"prompt\":\"Test prompt\","
	    "\"model\":\"gpt-4\",\"temperature\":0.7}", &out), 0);
	CU_ASSERT_STRING_EQUAL(out.data, "{\"prompt\":\"Test prompt\","
	    "\"provider\":null,\"model\":\"gpt-4\",\"project\":null,"
	    "\"working_dir\":null,\"domain\":null,\"tags\":[],\"temperature\":0.7}");
	bb_buf_free(&out);
}

static void
test_prompt_lists_every_offending_field(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run(&bb_schema_llm_prompt, "{\"model\":5,"
	    "\"tags\":[\"a\",1]}", &out), 3);
	CU_ASSERT(strstr(out.data, "{\"field\":\"prompt\",\"message\":\"required\"}")
	    != NULL);
	CU_ASSERT(strstr(out.data, "\"field\":\"model\"") != NULL);
	CU_ASSERT(strstr(out.data, "\"field\":\"tags\"") != NULL);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run(&bb_schema_llm_prompt, "{\"prompt\":null}", &out), 1);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run(&bb_schema_llm_prompt, "{\"prompt\":\"\"}", &out), 1);
	bb_buf_free(&out);
}

static void
test_response_checks_uuid_and_counts(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run(&bb_schema_llm_response, "{\"response\":\"r\","
	    "\"prompt_id\":\"8b43ec22-ff98-53f4-aeb6-af9614832d4f\","
	    "\"tokens_used\":0,\"duration_ms\":null}", &out), 0);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run(&bb_schema_llm_response, "{\"response\":\"r\","
	    "\"prompt_id\":\"not-a-uuid\",\"tokens_used\":-1,"
	    "\"duration_ms\":1.5}", &out), 3);
	bb_buf_free(&out);
}

static void
test_artifact_action_and_metadata_default(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run(&bb_schema_artifact, "{\"action\":\"updated\","
	    "\"kind\":\"doc\",\"uri\":\"file:///x\"}", &out), 0);
	CU_ASSERT_STRING_EQUAL(out.data, "{\"action\":\"updated\",\"kind\":\"doc\","
	    "\"uri\":\"file:///x\",\"title\":null,\"content\":null,"
	    "\"metadata\":{}}");
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run(&bb_schema_artifact, "{\"action\":\"moved\","
	    "\"kind\":\"doc\",\"uri\":\"u\",\"metadata\":[]}", &out), 2);
	CU_ASSERT(strstr(out.data, "must be one of created, updated, deleted")
	    != NULL);
	bb_buf_free(&out);
}

static void
test_event_type_rule(void)
{
	static const char *const good[] = { "a", "llm.prompt", "a-b_c.0.d",
		"x.y.z", NULL };
	static const char *const bad[] = { "", ".a", "a.", "a..b", "A", "a b",
		"a/b", "é", "a.*", NULL };
	char long_ok[256], too_long[257];

	for (const char *const *p = good; *p; p++)
		CU_ASSERT(bb_event_type_valid(*p, strlen(*p)));
	for (const char *const *p = bad; *p; p++) {
		if (bb_event_type_valid(*p, strlen(*p)))
			CU_FAIL(*p);
	}
	memset(long_ok, 'a', 255);
	memset(too_long, 'a', 256);
	CU_ASSERT(bb_event_type_valid(long_ok, 255));
	CU_ASSERT_FALSE(bb_event_type_valid(too_long, 256));
}

/* CONTRACT §8: a MiB body of 32,000 unknown members, each name escaped so
 * that comparing it with a field name means unescaping it, is parsed,
 * checked and copied within the bound that tells linear time from
 * quadratic in the JSON tests (about 20 ms of CPU here). */
static void
test_many_unknown_members_take_linear_time(void)
{
	struct bb_json doc;
	struct bb_buf text, payload, errors;
	char err[128];
	double start;

	bb_buf_init(&text);
	bb_buf_init(&payload);
	bb_buf_init(&errors);
	bb_buf_puts(&text, "{\"prompt\":\"p\"");
	for (int k = 0; k < 32000; k++)
		bb_buf_printf(&text, ",\"\\u0078%021d\":0", k);
	bb_buf_putc(&text, '}');
	start = cpu_ms();
	CU_ASSERT_EQUAL_FATAL(bb_json_parse(&doc, text.data, text.len, err,
	    sizeof(err)), BB_JSON_OK);
	CU_ASSERT_EQUAL(bb_validate(&doc, 0, &bb_schema_llm_prompt, &payload,
	    &errors), 0);
	CU_ASSERT(cpu_ms() - start < LINEAR_MS);
	CU_ASSERT(text.len > 1000000 && text.len <= 1048576);
	bb_json_free(&doc);
	bb_buf_free(&text);
	bb_buf_free(&payload);
	bb_buf_free(&errors);
}

static void
test_typed_event_types_have_their_endpoint_schema(void)
{
	const struct bb_typed *t;

	t = bb_typed_lookup("llm.prompt", 10);
	CU_ASSERT_PTR_EQUAL_FATAL(t ? t->schema : NULL, &bb_schema_llm_prompt);
	t = bb_typed_lookup("llm.response", 12);
	CU_ASSERT_PTR_EQUAL_FATAL(t ? t->schema : NULL, &bb_schema_llm_response);
	CU_ASSERT_STRING_EQUAL(t->parent_field, "prompt_id");
	t = bb_typed_lookup("artifact.deleted", 16);
	CU_ASSERT_PTR_EQUAL_FATAL(t ? t->schema : NULL, &bb_schema_artifact);
	CU_ASSERT_STRING_EQUAL(t->action, "deleted");
	CU_ASSERT_PTR_NULL(t->parent_field);
}

static void
test_other_event_types_are_untyped(void)
{
	static const char *const untyped[] = { "llm", "llm.prompts",
		"llm.prompt.x", "artifact", "artifact.moved", "artifact.created.",
		"LLM.PROMPT", "build.finished", "", NULL };

	for (const char *const *u = untyped; *u; u++)
		CU_ASSERT_PTR_NULL(bb_typed_lookup(*u, strlen(*u)));
	/* the length decides, not a NUL */
	CU_ASSERT_PTR_NULL(bb_typed_lookup("llm.prompt", 9));
}

void
add_validate_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "prompt sample fills defaults and keeps unknown fields",
		    test_prompt_sample_fills_defaults_and_keeps_unknown_fields },
		{ "prompt lists every offending field",
		    test_prompt_lists_every_offending_field },
		{ "response checks UUID and counts",
		    test_response_checks_uuid_and_counts },
		{ "artifact action and metadata default",
		    test_artifact_action_and_metadata_default },
		{ "event type rule", test_event_type_rule },
		{ "many unknown members take linear time",
		    test_many_unknown_members_take_linear_time },
		{ "typed event types have their endpoint's schema",
		    test_typed_event_types_have_their_endpoint_schema },
		{ "other event types are untyped",
		    test_other_event_types_are_untyped },
		CU_TEST_INFO_NULL,
	};
	add_suite("validate", tests);
}
