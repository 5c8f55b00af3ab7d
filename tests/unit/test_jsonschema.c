#include <stdio.h>
#include <string.h>

#include "jsonschema.h"
#include "tests.h"
#include "validate.h"

/* Compiles schema (which must compile), validates text against it, and
 * returns the number of failing locations with the errors in out. */
static int
run(const char *schema, const char *text, struct bb_buf *out)
{
	struct bb_jsonschema_work w;
	struct bb_jsonschema *s;
	struct bb_json doc;
	char err[256];
	int n;

	bb_buf_init(out);
	s = bb_jsonschema_compile(schema, strlen(schema), err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(bb_json_parse(&doc, text, strlen(text), err,
	    sizeof(err)), BB_JSON_OK);
	bb_jsonschema_work_init(&w);
	n = bb_jsonschema_validate(s, &doc, 0, &w, out);
	bb_buf_putc(out, '\0');
	bb_jsonschema_work_free(&w);
	bb_json_free(&doc);
	bb_jsonschema_free(s);
	return n;
}

/* The reason compiling schema fails, or "" when it compiles. */
static const char *
refusal(const char *schema)
{
	static char err[512];
	struct bb_jsonschema *s = bb_jsonschema_compile(schema, strlen(schema),
	    err, sizeof(err));

	if (s == NULL)
		return err;
	bb_jsonschema_free(s);
	return "";
}

static void
test_valid_value_has_no_errors(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run("{\"type\":\"object\",\"required\":[\"id\"],"
	    "\"properties\":{\"id\":{\"type\":\"integer\",\"minimum\":1}}}",
	    "{\"id\":7,\"other\":true}", &out), 0);
	CU_ASSERT_STRING_EQUAL(out.data, "");
	bb_buf_free(&out);
}

static void
test_error_names_instance_path_and_keyword(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run("{\"properties\":{\"items\":{\"items\":"
	    "{\"properties\":{\"qty\":{\"type\":\"integer\"}}}}}}",
	    "{\"items\":[{\"qty\":1},{\"qty\":\"2\"}]}", &out), 1);
	CU_ASSERT_STRING_EQUAL(out.data, "{\"field\":\"items.1.qty\","
	    "\"message\":\"must be an integer\",\"keyword\":\"type\"}");
	bb_buf_free(&out);
}

static void
test_missing_required_member_is_named_by_its_path(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run("{\"properties\":{\"customer\":{\"required\":"
	    "[\"email\"]}}}", "{\"customer\":{}}", &out), 1);
	CU_ASSERT_STRING_EQUAL(out.data, "{\"field\":\"customer.email\","
	    "\"message\":\"required\",\"keyword\":\"required\"}");
	bb_buf_free(&out);
}

static void
test_root_failure_has_empty_field(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run("{\"type\":\"object\"}", "[]", &out), 1);
	CU_ASSERT_STRING_EQUAL(out.data, "{\"field\":\"\",\"message\":"
	    "\"must be an object\",\"keyword\":\"type\"}");
	bb_buf_free(&out);
}

static void
test_every_failing_location_is_reported(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run("{\"required\":[\"a\",\"b\"],\"properties\":"
	    "{\"c\":{\"maxLength\":2}},\"additionalProperties\":false}",
	    "{\"c\":\"long\",\"d\":1}", &out), 4);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"field\":\"a\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"field\":\"b\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"keyword\":\"maxLength\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "{\"field\":\"d\",\"message\":"
	    "\"is not allowed here\",\"keyword\":\"additionalProperties\"}"));
	bb_buf_free(&out);
}

static void
test_errors_stop_at_the_bound(void)
{
	struct bb_buf out, text;
	int entries = 0;

	bb_buf_init(&text);
	bb_buf_putc(&text, '[');
	for (int k = 0; k < 100; k++)
		bb_buf_puts(&text, k ? ",\"x\"" : "\"x\"");
	bb_buf_puts(&text, "]");
	bb_buf_putc(&text, '\0');
	CU_ASSERT(run("{\"items\":{\"type\":\"integer\"}}", text.data, &out) >=
	    BB_JSONSCHEMA_MAX_ERRORS);
	for (const char *p = out.data; (p = strstr(p, "\"keyword\"")); p++)
		entries++;
	CU_ASSERT_EQUAL(entries, BB_JSONSCHEMA_MAX_ERRORS);
	bb_buf_free(&out);
	bb_buf_free(&text);
}

static void
test_any_of_reports_itself_not_its_branches(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run("{\"anyOf\":[{\"type\":\"string\"},"
	    "{\"type\":\"integer\"}]}", "true", &out), 1);
	CU_ASSERT_STRING_EQUAL(out.data, "{\"field\":\"\",\"message\":"
	    "\"must match at least one schema of anyOf\",\"keyword\":"
	    "\"anyOf\"}");
	bb_buf_free(&out);
}

static void
test_min_length_counts_code_points(void)
{
	struct bb_buf out;

	/* two code points, five bytes */
	CU_ASSERT_EQUAL(run("{\"maxLength\":2}", "\"\\u00e9\\ud83d\\ude00\"",
	    &out), 0);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run("{\"minLength\":3}", "\"\\u00e9\\ud83d\\ude00\"",
	    &out), 1);
	bb_buf_free(&out);
}

static void
test_unknown_keyword_is_refused_with_its_pointer(void)
{
	CU_ASSERT_STRING_EQUAL(refusal("{\"properties\":{\"name\":"
	    "{\"minLenght\":3}}}"), "/properties/name/minLenght: unknown keyword");
}

static void
test_remote_ref_is_refused(void)
{
	CU_ASSERT_PTR_NOT_NULL(strstr(refusal("{\"$ref\":"
	    "\"http://json-schema.org/draft-07/schema#\"}"),
	    "/$ref: \"http://json-schema.org/draft-07/schema#\" is not in this "
	    "document"));
}

static void
test_pattern_that_does_not_compile_is_refused(void)
{
	CU_ASSERT_PTR_NOT_NULL(strstr(refusal("{\"properties\":{\"a\":"
	    "{\"pattern\":\"(\"}}}"), "/properties/a/pattern: the pattern does "
	    "not compile"));
}

static void
test_invalid_json_is_refused(void)
{
	CU_ASSERT_PTR_NOT_NULL(strstr(refusal("{\"type\":"), "not a JSON"));
}

static void
test_ref_cycle_is_refused_at_load(void)
{
	CU_ASSERT_PTR_NOT_NULL(strstr(refusal("{\"definitions\":{\"a\":"
	    "{\"$ref\":\"#/definitions/b\"},\"b\":{\"allOf\":[{\"$ref\":"
	    "\"#/definitions/a\"}]}},\"$ref\":\"#/definitions/a\"}"),
	    "cycle"));
}

static void
test_recursion_through_a_deeper_value_is_allowed(void)
{
	struct bb_buf out;
	const char *tree = "{\"type\":\"object\",\"properties\":{\"children\":"
	    "{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}},"
	    "\"required\":[\"name\"]}";

	CU_ASSERT_STRING_EQUAL(refusal(tree), "");
	CU_ASSERT_EQUAL(run(tree, "{\"name\":1,\"children\":[{\"name\":2,"
	    "\"children\":[{}]}]}", &out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "children.0.children.0.name"));
	bb_buf_free(&out);
}

static void
test_ref_by_id_within_the_file(void)
{
	struct bb_buf out;
	const char *s = "{\"$id\":\"http://example.com/order\","
	    "\"properties\":{\"line\":{\"$ref\":\"line\"}},"
	    "\"definitions\":{\"l\":{\"$id\":\"http://example.com/line\","
	    "\"type\":\"object\"}}}";

	CU_ASSERT_EQUAL(run(s, "{\"line\":{}}", &out), 0);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run(s, "{\"line\":[]}", &out), 1);
	bb_buf_free(&out);
}

static void
test_catastrophic_pattern_stops_at_its_limit(void)
{
	struct bb_buf out, text;
	double t0 = cpu_ms();

	bb_buf_init(&text);
	bb_buf_putc(&text, '"');
	for (int k = 0; k < 4000; k++)
		bb_buf_putc(&text, 'a');
	bb_buf_puts(&text, "b\"");
	bb_buf_putc(&text, '\0');
	CU_ASSERT_EQUAL(run("{\"pattern\":\"^(a+)+$\"}", text.data, &out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"keyword\":\"pattern\""));
	CU_ASSERT(cpu_ms() - t0 < 10 * LINEAR_MS);
	bb_buf_free(&out);
	bb_buf_free(&text);
}

/* Shared subschemas that branch at every level would take 2^40 steps
 * without the cost bound. */
static void
test_shared_subschemas_cannot_take_exponential_time(void)
{
	struct bb_buf schema, out;
	double t0 = cpu_ms();

	bb_buf_init(&schema);
	bb_buf_puts(&schema, "{\"$ref\":\"#/definitions/d0\",\"definitions\":{");
	for (int k = 0; k < 40; k++)
		bb_buf_printf(&schema, "\"d%d\":{\"anyOf\":[{\"allOf\":"
		    "[{\"$ref\":\"#/definitions/d%d\"},{\"type\":\"string\"}]},"
		    "{\"$ref\":\"#/definitions/d%d\"}]},", k, k + 1, k + 1);
	bb_buf_puts(&schema, "\"d40\":{\"type\":\"integer\"}}}");
	bb_buf_putc(&schema, '\0');
	CU_ASSERT(run(schema.data, "true", &out) > 0);
	CU_ASSERT(cpu_ms() - t0 < 10 * LINEAR_MS);
	bb_buf_free(&out);
	bb_buf_free(&schema);
}

static void
test_unique_items_of_a_large_array_is_not_quadratic(void)
{
	struct bb_buf text, out;
	double t0 = cpu_ms();

	bb_buf_init(&text);
	bb_buf_putc(&text, '[');
	for (int k = 0; k < 60000; k++)
		bb_buf_printf(&text, "%s%d", k ? "," : "", k);
	bb_buf_puts(&text, ",0]");
	bb_buf_putc(&text, '\0');
	CU_ASSERT_EQUAL(run("{\"uniqueItems\":true}", text.data, &out), 1);
	CU_ASSERT(cpu_ms() - t0 < 3 * LINEAR_MS);
	bb_buf_free(&out);
	bb_buf_free(&text);
}

static void
test_equal_values_are_equal_whatever_member_order_and_number_form(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run("{\"const\":{\"a\":1,\"b\":[true,null]}}",
	    "{\"b\":[true,null],\"a\":1.0}", &out), 0);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run("{\"uniqueItems\":true}",
	    "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]", &out), 1);
	bb_buf_free(&out);
}

/* The typed types' documents in the catalog say what their endpoints
 * check: the same payloads pass and fail under both. */
static void
test_typed_schema_documents_agree_with_typed_validation(void)
{
	static const char *const payloads[] = {
		"{\"prompt\":\"p\"}", "{\"prompt\":\"\"}", "{}",
		"{\"prompt\":\"p\",\"tags\":[\"a\"],\"model\":null}",
		"{\"prompt\":\"p\",\"tags\":[1]}", "{\"prompt\":7}",
		"{\"response\":\"r\",\"prompt_id\":"
		    "\"8b43ec22-ff98-53f4-aeb6-af9614832d4f\"}",
		"{\"response\":\"r\",\"prompt_id\":\"nope\"}",
		"{\"response\":\"r\",\"tokens_used\":-1}",
		"{\"response\":\"r\",\"tokens_used\":12,\"duration_ms\":null}",
		"{\"action\":\"created\",\"kind\":\"k\",\"uri\":\"u\"}",
		"{\"action\":\"deleted\",\"kind\":\"k\",\"uri\":\"u\"}",
		"{\"action\":\"created\",\"kind\":\"k\",\"uri\":\"u\","
		    "\"metadata\":[]}",
		NULL
	};
	const struct bb_typed *t;

	for (size_t k = 0; (t = bb_typed_at(k)) != NULL; k++) {
		struct bb_buf doc, out, payload, errors;
		bb_buf_init(&doc);
		bb_typed_write_schema(t, &doc);
		bb_buf_putc(&doc, '\0');
		CU_ASSERT_STRING_EQUAL(refusal(doc.data), "");
		for (const char *const *p = payloads; *p; p++) {
			struct bb_json j;
			char err[64];
			bb_buf_init(&payload);
			bb_buf_init(&errors);
			CU_ASSERT_EQUAL_FATAL(bb_json_parse(&j, *p, strlen(*p),
			    err, sizeof(err)), BB_JSON_OK);
			int typed_errors = bb_validate(&j, 0, t->schema, &payload,
			    &errors);
			/* the artifact types' action is checked beside the
			 * field table, by the event builder */
			int action = bb_json_get(&j, 0, "action");
			if (typed_errors == 0 && t->action && action >= 0 &&
			    !bb_json_string_equals(&j, action, t->action))
				typed_errors = 1;
			int schema_errors = run(doc.data, *p, &out);
			if ((typed_errors == 0) != (schema_errors == 0))
				printf("\n%s disagrees on %s\n", t->event_type, *p);
			CU_ASSERT_EQUAL(typed_errors == 0, schema_errors == 0);
			bb_buf_free(&out);
			bb_buf_free(&payload);
			bb_buf_free(&errors);
			bb_json_free(&j);
		}
		bb_buf_free(&doc);
	}
}

/* A "not" over subschemas shared 2^30 ways: each is checked once per
 * value, so the answer (the value matches, so "not" fails it) comes at
 * once rather than at the cost bound. */
static void
test_shared_subschemas_under_not_are_checked_once(void)
{
	struct bb_buf schema, out;

	bb_buf_init(&schema);
	bb_buf_puts(&schema, "{\"not\":{\"$ref\":\"#/definitions/d30\"},"
	    "\"definitions\":{\"d0\":{}");
	for (int k = 1; k <= 30; k++)
		bb_buf_printf(&schema, ",\"d%d\":{\"allOf\":[{\"$ref\":"
		    "\"#/definitions/d%d\"},{\"$ref\":\"#/definitions/d%d\"}]}",
		    k, k - 1, k - 1);
	bb_buf_puts(&schema, "}}");
	bb_buf_putc(&schema, '\0');
	double t0 = cpu_ms();
	CU_ASSERT_EQUAL(run(schema.data, "1", &out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"keyword\":\"not\""));
	CU_ASSERT(cpu_ms() - t0 < LINEAR_MS);
	bb_buf_free(&out);
	bb_buf_free(&schema);
}

/* The stack a validation takes grows with the run of subschemas on one
 * value times the depth of the value: past a bound the value fails, as
 * past the cost bound, instead of the worker overflowing its stack. */
static void
test_deep_value_under_long_runs_of_subschemas_fails_at_a_bound(void)
{
	struct bb_buf schema, text, out;

	bb_buf_init(&schema);
	bb_buf_init(&text);
	bb_buf_puts(&schema, "{\"$ref\":\"#/definitions/d200\","
	    "\"definitions\":{\"d0\":{\"properties\":{\"a\":{\"$ref\":"
	    "\"#/definitions/d200\"}}}");
	for (int k = 1; k <= 200; k++)
		bb_buf_printf(&schema, ",\"d%d\":{\"allOf\":[{\"$ref\":"
		    "\"#/definitions/d%d\"}]}", k, k - 1);
	bb_buf_puts(&schema, "}}");
	bb_buf_putc(&schema, '\0');
	for (int k = 0; k < 60; k++)
		bb_buf_puts(&text, "{\"a\":");
	bb_buf_puts(&text, "1");
	for (int k = 0; k < 60; k++)
		bb_buf_putc(&text, '}');
	bb_buf_putc(&text, '\0');
	CU_ASSERT_EQUAL(run(schema.data, text.data, &out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"keyword\":\"$ref\""));
	bb_buf_free(&out);
	/* the same schema on a shallow value is fine */
	CU_ASSERT_EQUAL(run(schema.data, "{\"a\":{\"a\":1}}", &out), 0);
	bb_buf_free(&out);
	bb_buf_free(&schema);
	bb_buf_free(&text);
}

static void
test_ref_to_a_plain_name_id(void)
{
	struct bb_buf out;
	const char *s = "{\"properties\":{\"n\":{\"$ref\":\"#count\"}},"
	    "\"definitions\":{\"c\":{\"$id\":\"#count\",\"type\":\"integer\"}}}";

	CU_ASSERT_EQUAL(run(s, "{\"n\":3}", &out), 0);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run(s, "{\"n\":\"3\"}", &out), 1);
	bb_buf_free(&out);
	CU_ASSERT_PTR_NOT_NULL(strstr(refusal("{\"$ref\":\"#nope\"}"),
	    "/$ref: \"#nope\" names no $id"));
}

static void
test_bad_pattern_property_is_refused_with_its_pointer(void)
{
	CU_ASSERT_PTR_NOT_NULL(strstr(refusal("{\"patternProperties\":"
	    "{\"^a(\":{}}}"), "/patternProperties/^a(: the pattern does not "
	    "compile"));
}

static void
test_false_subschema_fails_with_the_keyword_that_holds_it(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run("{\"allOf\":[true,false]}", "1", &out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"keyword\":\"allOf\""));
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run("{\"dependencies\":{\"a\":false}}", "{\"a\":1}",
	    &out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"keyword\":\"dependencies\""));
	bb_buf_free(&out);
}

/* JSON numbers are decimal: multipleOf is decided on the literals. */
static void
test_multiple_of_is_exact_on_decimal_literals(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run("{\"multipleOf\":0.1}", "0.3", &out), 0);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run("{\"multipleOf\":0.01}", "19.99", &out), 0);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run("{\"multipleOf\":0.01}", "19.999", &out), 1);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run("{\"multipleOf\":1e-8}", "12391239123", &out), 0);
	bb_buf_free(&out);
	/* the quotient overflows a double; the answer is still no */
	CU_ASSERT_EQUAL(run("{\"multipleOf\":0.123456789}", "1e308", &out), 1);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run("{\"multipleOf\":25}", "-7.5e1", &out), 0);
	bb_buf_free(&out);
}

/* ECMA-262 meanings that PCRE2 spells otherwise (CONTRACT §10). */
static void
test_patterns_follow_ecma_262(void)
{
	static const struct {
		const char *pattern, *value;
		int errors;
	} cases[] = {
		{ "^\\\\s$", "\"\\u00a0\"", 0 },	/* \s is Unicode */
		{ "^\\\\S$", "\"\\u2029\"", 1 },
		{ "^\\\\d$", "\"\\u0664\"", 1 },	/* \d is ASCII */
		{ "^.$", "\"\\r\"", 1 },		/* . stops at \r */
		{ "^.$", "\"\\ud83d\\ude00\"", 0 },	/* one code point */
		{ "^[]]$", "\"]\"", 1 },		/* [] matches nothing */
		{ "^[^]$", "\"\\n\"", 0 },		/* [^] anything */
		{ "^[[:alpha:]]$", "\"a\"", 1 },	/* no POSIX class */
		{ "^\\\\u{1F600}$", "\"\\ud83d\\ude00\"", 0 },
		{ "^abc$", "\"abc\\n\"", 1 },		/* $ is the very end */
	};
	char schema[128];
	struct bb_buf out;

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		snprintf(schema, sizeof(schema), "{\"pattern\":\"%s\"}",
		    cases[k].pattern);
		int errors = run(schema, cases[k].value, &out);
		if (errors != cases[k].errors)
			printf("\npattern %s on %s\n", cases[k].pattern,
			    cases[k].value);
		CU_ASSERT_EQUAL(errors, cases[k].errors);
		bb_buf_free(&out);
	}
}

/* draft-07 §8.3: every sibling of $ref is ignored, $id too. */
static void
test_id_beside_ref_does_not_change_the_base(void)
{
	struct bb_buf out;
	const char *s = "{\"$id\":\"http://example.com/base/\","
	    "\"definitions\":{\"foo\":{\"$id\":\"http://example.com/foo.json\","
	    "\"type\":\"string\"},\"base_foo\":{\"$id\":\"foo.json\","
	    "\"type\":\"number\"}},\"allOf\":[{\"$id\":\"http://example.com/\","
	    "\"$ref\":\"foo.json\"}]}";

	CU_ASSERT_EQUAL(run(s, "5", &out), 0);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run(s, "\"a\"", &out), 1);
	bb_buf_free(&out);
}

/* A fresh working memory has no room for elements yet. */
static void
test_unique_items_of_short_arrays_with_fresh_memory(void)
{
	struct bb_buf out;

	CU_ASSERT_EQUAL(run("{\"uniqueItems\":true}", "[]", &out), 0);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run("{\"uniqueItems\":true}", "[1]", &out), 0);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run("{\"uniqueItems\":true}", "[1,1.0]", &out), 1);
	bb_buf_free(&out);
}

/* The cost bound grows with the schema's size, not its number of
 * subschemas: a long enum is one subschema. */
static void
test_long_enum_is_within_the_cost_bound(void)
{
	struct bb_buf schema, out;

	bb_buf_init(&schema);
	bb_buf_puts(&schema, "{\"enum\":[");
	for (int k = 0; k < 1000; k++)
		bb_buf_printf(&schema, "%s\"v%d\"", k ? "," : "", k);
	bb_buf_puts(&schema, "]}");
	bb_buf_putc(&schema, '\0');
	CU_ASSERT_EQUAL(run(schema.data, "\"v999\"", &out), 0);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(run(schema.data, "\"v1000\"", &out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"keyword\":\"enum\""));
	bb_buf_free(&out);
	bb_buf_free(&schema);
}

void
add_jsonschema_tests(void)
{
	static CU_TestInfo tests[] = {
		{ "valid value has no errors", test_valid_value_has_no_errors },
		{ "error names instance path and keyword",
		    test_error_names_instance_path_and_keyword },
		{ "missing required member is named by its path",
		    test_missing_required_member_is_named_by_its_path },
		{ "root failure has empty field",
		    test_root_failure_has_empty_field },
		{ "every failing location is reported",
		    test_every_failing_location_is_reported },
		{ "errors stop at the bound", test_errors_stop_at_the_bound },
		{ "anyOf reports itself, not its branches",
		    test_any_of_reports_itself_not_its_branches },
		{ "minLength counts code points",
		    test_min_length_counts_code_points },
		{ "unknown keyword is refused with its pointer",
		    test_unknown_keyword_is_refused_with_its_pointer },
		{ "remote $ref is refused", test_remote_ref_is_refused },
		{ "pattern that does not compile is refused",
		    test_pattern_that_does_not_compile_is_refused },
		{ "invalid JSON is refused", test_invalid_json_is_refused },
		{ "$ref cycle is refused at load",
		    test_ref_cycle_is_refused_at_load },
		{ "recursion through a deeper value is allowed",
		    test_recursion_through_a_deeper_value_is_allowed },
		{ "$ref by $id within the file", test_ref_by_id_within_the_file },
		{ "catastrophic pattern stops at its limit",
		    test_catastrophic_pattern_stops_at_its_limit },
		{ "shared subschemas cannot take exponential time",
		    test_shared_subschemas_cannot_take_exponential_time },
		{ "uniqueItems of a large array is not quadratic",
		    test_unique_items_of_a_large_array_is_not_quadratic },
		{ "equal values are equal whatever member order and number form",
		    test_equal_values_are_equal_whatever_member_order_and_number_form },
		{ "typed schema documents agree with typed validation",
		    test_typed_schema_documents_agree_with_typed_validation },
		{ "shared subschemas under not are checked once",
		    test_shared_subschemas_under_not_are_checked_once },
		{ "deep value under long runs of subschemas fails at a bound",
		    test_deep_value_under_long_runs_of_subschemas_fails_at_a_bound },
		{ "$ref to a plain-name $id", test_ref_to_a_plain_name_id },
		{ "bad patternProperties name is refused with its pointer",
		    test_bad_pattern_property_is_refused_with_its_pointer },
		{ "false subschema fails with the keyword that holds it",
		    test_false_subschema_fails_with_the_keyword_that_holds_it },
		{ "multipleOf is exact on decimal literals",
		    test_multiple_of_is_exact_on_decimal_literals },
		{ "patterns follow ECMA-262", test_patterns_follow_ecma_262 },
		{ "$id beside $ref does not change the base",
		    test_id_beside_ref_does_not_change_the_base },
		{ "uniqueItems of short arrays with fresh memory",
		    test_unique_items_of_short_arrays_with_fresh_memory },
		{ "long enum is within the cost bound",
		    test_long_enum_is_within_the_cost_bound },
		CU_TEST_INFO_NULL,
	};

	add_suite("jsonschema", tests);
}
