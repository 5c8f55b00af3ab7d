#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tests.h"

static enum bb_json_status
parse_len(const char *text, size_t len)
{
	struct bb_json doc;
	char err[128];
	enum bb_json_status st = bb_json_parse(&doc, text, len, err, sizeof(err));

	bb_json_free(&doc);
	return st;
}

static enum bb_json_status
parse(const char *text)
{
	return parse_len(text, strlen(text));
}

static void
test_accepts_well_formed_documents(void)
{
	CU_ASSERT_EQUAL(parse("{}"), BB_JSON_OK);
	CU_ASSERT_EQUAL(parse(" \t\r\n[] \n"), BB_JSON_OK);
	CU_ASSERT_EQUAL(parse("{\"a\":[1,-2.5e10,0.7,1E+2,true,false,null,\"x\"]}"),
	    BB_JSON_OK);
	CU_ASSERT_EQUAL(parse("{ \"a\" : { \"b\" : [ ] } , \"c\" : \"\" }"),
	    BB_JSON_OK);
	CU_ASSERT_EQUAL(parse("42"), BB_JSON_OK);
	CU_ASSERT_EQUAL(parse(" null\n"), BB_JSON_OK);
	CU_ASSERT_EQUAL(parse("\"s\""), BB_JSON_OK);
	CU_ASSERT_EQUAL(parse("{\"\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\":"
	    "\"\xe2\x9c\x93\"}"), BB_JSON_OK);
}

static void
test_rejects_bad_structure(void)
{
	static const char *const bad[] = {
		"", " ", "{", "}", "{\"a\" 1}", "[1 2]", "{\"a\":1,}", "[1,]",
		"{,}", "[,1]", "{\"a\":1}}", "{\"a\":[}", "{1:2}", "{\"a\"}",
		"{\"a\":1 \"b\":2}", "{} {}", "{}x", "{'a':1}", "{\"a\"::1}",
		"[\"a\":1]", "{\"a\",1}", "nul", "1 2", "- 1", NULL,
	};

	for (const char *const *p = bad; *p; p++) {
		if (parse(*p) != BB_JSON_INVALID)
			CU_FAIL(*p);
	}
}

static void
test_rejects_bad_literals_and_numbers(void)
{
	static const char *const bad[] = {
		"[01]", "[1.]", "[.5]", "[-]", "[1e]", "[+1]", "[tru]", "[nul]",
		"[True]", "[0x10]", "[1.2.3]", "[NaN]", NULL,
	};

	for (const char *const *p = bad; *p; p++) {
		if (parse(*p) != BB_JSON_INVALID)
			CU_FAIL(*p);
	}
}

static void
test_rejects_bad_strings(void)
{
	static const char *const bad[] = {
		"[\"\\x\"]",			/* unknown escape */
		"[\"\\u12\"]",			/* short \u */
		"[\"\\ud800\"]",		/* lone high surrogate */
		"[\"\\udc00\"]",		/* lone low surrogate */
		"[\"\\ud800\\u0041\"]",		/* high then not low */
		"[\"a\x01" "b\"]",		/* raw control character */
		"[\"tab\there\"]",		/* raw tab */
		"[\"\xff\"]",			/* not UTF-8 */
		"[\"\xc0\xaf\"]",		/* overlong */
		"[\"\xed\xa0\x80\"]",		/* UTF-8 encoded surrogate */
		"[\"\xf4\x90\x80\x80\"]",	/* above U+10FFFF */
		"[\"\xe2\x9c\"]",		/* truncated sequence */
		NULL,
	};

	for (const char *const *p = bad; *p; p++) {
		if (parse(*p) != BB_JSON_INVALID)
			CU_FAIL(*p);
	}
	CU_ASSERT_EQUAL(parse_len("{}\0", 3), BB_JSON_INVALID);
	CU_ASSERT_EQUAL(parse_len("[\"a\0b\"]", 7), BB_JSON_INVALID);
}

static char *
nested(int depth)
{
	char *s = malloc((size_t)depth * 2 + 1);

	memset(s, '[', (size_t)depth);
	memset(s + depth, ']', (size_t)depth);
	s[depth * 2] = '\0';
	return s;
}

static void
test_limits_depth(void)
{
	char *ok = nested(BB_JSON_MAX_DEPTH);
	char *deep = nested(BB_JSON_MAX_DEPTH + 1);
	char *very = nested(200000);

	CU_ASSERT_EQUAL(parse(ok), BB_JSON_OK);
	CU_ASSERT_EQUAL(parse(deep), BB_JSON_TOO_LARGE);
	CU_ASSERT_EQUAL(parse(very), BB_JSON_TOO_LARGE);
	free(ok);
	free(deep);
	free(very);
}

/* A batch's array is one level above its items: its own depth limit. */
static void
test_limits_depth_of_its_own(void)
{
	char *batch = nested(BB_JSON_MAX_DEPTH + 1);
	char *deeper = nested(BB_JSON_MAX_DEPTH + 2);
	struct bb_json doc;
	char err[128];

	CU_ASSERT_EQUAL(bb_json_parse_limit(&doc, batch, strlen(batch),
	    BB_JSON_MAX_DEPTH + 1, BB_JSON_MAX_TOKENS, err, sizeof(err)),
	    BB_JSON_OK);
	bb_json_free(&doc);
	CU_ASSERT_EQUAL(bb_json_parse_limit(&doc, deeper, strlen(deeper),
	    BB_JSON_MAX_DEPTH + 1, BB_JSON_MAX_TOKENS, err, sizeof(err)),
	    BB_JSON_TOO_LARGE);
	CU_ASSERT_STRING_EQUAL(err, "nested deeper than 65 levels");
	bb_json_free(&doc);
	free(batch);
	free(deeper);
}

static void
test_limits_token_count(void)
{
	size_t n = BB_JSON_MAX_TOKENS + 10;
	char *s = malloc(n * 2 + 2);

	s[0] = '[';
	for (size_t k = 0; k < n; k++) {
		s[1 + 2 * k] = '0';
		s[2 + 2 * k] = ',';
	}
	s[n * 2] = ']';
	s[n * 2 + 1] = '\0';
	CU_ASSERT_EQUAL(parse(s), BB_JSON_TOO_LARGE);
	free(s);
}

/* Parses text, expecting BB_JSON_INVALID with reason among the words of
 * err. */
static void
assert_refused(const char *text, const char *reason)
{
	struct bb_json doc;
	char err[128] = "";

	CU_ASSERT_EQUAL(bb_json_parse(&doc, text, strlen(text), err,
	    sizeof(err)), BB_JSON_INVALID);
	if (strstr(err, reason) == NULL) {
		fprintf(stderr, "\n    %s: \"%s\" ", text, err);
		CU_FAIL("reason");
	}
	bb_json_free(&doc);
}

/* A number literal of len characters: "-1" then digits. */
static char *
long_number(size_t len)
{
	char *s = malloc(len + 3);

	s[0] = '[';
	s[1] = '-';
	memset(s + 2, '1', len - 1);
	s[len + 1] = ']';
	s[len + 2] = '\0';
	return s;
}

static void
test_ijson_numbers_fit_a_double(void)
{
	static const char *const good[] = {
		"[1e308]", "[-1e308]", "[1.7976931348623157e308]", "[1e-400]",
		"[-0]", "[0.5E+2]", "1e308", NULL,
	};
	char *max = long_number(BB_JSON_MAX_NUMBER);
	char *over = long_number(BB_JSON_MAX_NUMBER + 1);

	for (const char *const *p = good; *p; p++) {
		if (parse(*p) != BB_JSON_OK)
			CU_FAIL(*p);
	}
	assert_refused("[1e999]", "number 1e999 does not fit an IEEE 754 double");
	assert_refused("{\"x\":-1e400}", "number -1e400 does not fit");
	assert_refused("{\"x\":[0,1.8e308]}", "number 1.8e308 does not fit");
	assert_refused("1e999", "does not fit");
	CU_ASSERT_EQUAL(parse(max), BB_JSON_OK);
	assert_refused(over, "number literal longer than 64 characters");
	over[strlen(over) - 1] = '\0';	/* the number alone, unbracketed */
	assert_refused(over + 1, "number literal longer than 64 characters");
	free(max);
	free(over);
}

static void
test_ijson_member_names_are_unique(void)
{
	static const char *const good[] = {
		"{\"a\":{\"a\":1},\"b\":{\"a\":2}}", "[{\"a\":1},{\"a\":2}]",
		"{\"a\":1,\"A\":2,\"a \":3,\"ab\":4,\"\":5}",
		"{\"x\\u0000\":1,\"x\":2}", "{\"a\":{\"b\":1},\"b\":2}",
		"{\"a\":{\"b\":{\"c\":1},\"c\":2},\"c\":3,\"b\":4}", NULL,
	};

	for (const char *const *p = good; *p; p++) {
		if (parse(*p) != BB_JSON_OK)
			CU_FAIL(*p);
	}
	assert_refused("{\"z\":1,\"z\":2}", "duplicate member name \"z\"");
	assert_refused("{\"a\":1,\"\\u0061\":2}", "duplicate member name \"a\"");
	assert_refused("{\"x\":[{\"b\":1,\"c\":2,\"b\":3}]}",
	    "duplicate member name \"b\"");
	assert_refused("{\"a\":{\"b\":1},\"a\":2}", "duplicate member name \"a\"");
	assert_refused("{\"\":1,\"\":2}", "duplicate member name \"\"");
	assert_refused("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}",
	    "duplicate member name");
	assert_refused("{\"\\n\\/\":1,\"\\u000a/\":2}", "duplicate member name");
}

static void
test_unescapes_every_escape(void)
{
	const char *text = "[\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\\u2713"
	    "\\ud83d\\ude00\xe2\x9c\x93\\u0000z\"]";
	const char expected[] = "a\"b\\c/\b\f\n\r\t\xc3\xa9\xe2\x9c\x93"
	    "\xf0\x9f\x98\x80\xe2\x9c\x93\0z";
	struct bb_json doc;
	struct bb_buf out;
	char err[128];

	bb_buf_init(&out);
	CU_ASSERT_EQUAL_FATAL(bb_json_parse(&doc, text, strlen(text), err,
	    sizeof(err)), BB_JSON_OK);
	bb_json_unescape(&doc, 1, &out);
	CU_ASSERT_EQUAL(out.len, sizeof(expected) - 1);
	CU_ASSERT(memcmp(out.data, expected, sizeof(expected) - 1) == 0);
	bb_buf_free(&out);
	bb_json_free(&doc);
}

static void
test_get_and_typed_values(void)
{
	const char *text = "{\"n\":42,\"f\":4.2,\"e\":1e3,\"big\":"
	    "99999999999999999999,\"\\u0061\":\"first\","
	    "\"o\":{\"x\":[1,2]},\"z\":null}";
	struct bb_json doc;
	char err[128];
	long long v;

	CU_ASSERT_EQUAL_FATAL(bb_json_parse(&doc, text, strlen(text), err,
	    sizeof(err)), BB_JSON_OK);
	CU_ASSERT(bb_json_integer(&doc, bb_json_get(&doc, 0, "n"), &v));
	CU_ASSERT_EQUAL(v, 42);
	CU_ASSERT(!bb_json_integer(&doc, bb_json_get(&doc, 0, "f"), &v));
	CU_ASSERT(!bb_json_integer(&doc, bb_json_get(&doc, 0, "e"), &v));
	CU_ASSERT(!bb_json_integer(&doc, bb_json_get(&doc, 0, "big"), &v));
	CU_ASSERT(bb_json_string_equals(&doc, bb_json_get(&doc, 0, "a"), "first"));
	CU_ASSERT_EQUAL(bb_json_type(&doc, bb_json_get(&doc, 0, "o")),
	    BB_JSON_OBJECT);
	CU_ASSERT_EQUAL(bb_json_type(&doc, bb_json_get(&doc, 0, "z")),
	    BB_JSON_NULL);
	CU_ASSERT_EQUAL(bb_json_get(&doc, 0, "missing"), -1);
	CU_ASSERT_EQUAL(bb_json_get(&doc, bb_json_get(&doc, 0, "n"), "x"), -1);
	bb_json_free(&doc);
}

static void
test_string_equals_compares_unescaped(void)
{
	const char *text = "[\"a\\u0062c\",\"\\u00e9\\ud83d\\ude00\",\"x\\u0000\","
	    "\"plain\",1]";
	struct bb_json doc;
	char err[128];

	CU_ASSERT_EQUAL_FATAL(bb_json_parse(&doc, text, strlen(text), err,
	    sizeof(err)), BB_JSON_OK);
	CU_ASSERT(bb_json_string_equals(&doc, 1, "abc"));
	CU_ASSERT_FALSE(bb_json_string_equals(&doc, 1, "ab"));
	CU_ASSERT_FALSE(bb_json_string_equals(&doc, 1, "abcd"));
	CU_ASSERT_FALSE(bb_json_string_equals(&doc, 1, "abd"));
	CU_ASSERT(bb_json_string_equals(&doc, 2, "\xc3\xa9\xf0\x9f\x98\x80"));
	CU_ASSERT_FALSE(bb_json_string_equals(&doc, 2, "\xc3\xa9"));
	CU_ASSERT_FALSE(bb_json_string_equals(&doc, 3, "x"));
	CU_ASSERT(bb_json_string_equals(&doc, 4, "plain"));
	CU_ASSERT_FALSE(bb_json_string_equals(&doc, 4, "plai"));
	CU_ASSERT_FALSE(bb_json_string_equals(&doc, 5, "1"));
	bb_json_free(&doc);
}

static void
test_member_steps_through_names(void)
{
	const char *text = "{\"a\":{\"x\":[1,{}]},\"b\":[],\"c\":{},\"d\":1}";
	static const char *const names[] = { "a", "b", "c", "d" };
	struct bb_json doc;
	char err[128];
	int n = 0;

	CU_ASSERT_EQUAL_FATAL(bb_json_parse(&doc, text, strlen(text), err,
	    sizeof(err)), BB_JSON_OK);
	for (int k = bb_json_member(&doc, 0, -1); k >= 0;
	    k = bb_json_member(&doc, 0, k)) {
		CU_ASSERT_FATAL(n < 4);
		CU_ASSERT(bb_json_string_equals(&doc, k, names[n]));
		n++;
	}
	CU_ASSERT_EQUAL(n, 4);
	/* An empty object that is not last, and a value that is no object. */
	CU_ASSERT_EQUAL(bb_json_member(&doc, bb_json_get(&doc, 0, "c"), -1), -1);
	CU_ASSERT_EQUAL(bb_json_member(&doc, bb_json_get(&doc, 0, "b"), -1), -1);
	CU_ASSERT_EQUAL(bb_json_member(&doc, bb_json_get(&doc, 0, "d"), -1), -1);
	bb_json_free(&doc);
}

static void
test_writer_escapes(void)
{
	struct bb_buf out;
	const char in[] = "q\"b\\n\nt\tc\x01\x1f d\x7f \xe2\x9c\x93 /";

	bb_buf_init(&out);
	bb_json_write_string(&out, in, sizeof(in) - 1);
	CU_ASSERT_STRING_EQUAL(out.data,
	    "\"q\\\"b\\\\n\\nt\\tc\\u0001\\u001f d\x7f \xe2\x9c\x93 /\"");
	bb_buf_reset(&out);
	bb_json_write_string(&out, "a\0b", 3);
	CU_ASSERT_STRING_EQUAL(out.data, "\"a\\u0000b\"");
	bb_buf_free(&out);
}

/* The writers' buffer: reused, unless one answer made it large. */
static void
test_a_large_buffer_is_released_on_reset(void)
{
	struct bb_buf b;

	bb_buf_init(&b);
	bb_buf_puts(&b, "small");
	bb_buf_reset(&b);
	CU_ASSERT_PTR_NOT_NULL(b.data);
	CU_ASSERT(b.cap > 0);
	memset(bb_buf_space(&b, BB_BUF_KEEP + 1), 'x', BB_BUF_KEEP + 1);
	b.len = BB_BUF_KEEP + 1;
	bb_buf_reset(&b);
	CU_ASSERT_PTR_NULL(b.data);
	CU_ASSERT_EQUAL(b.cap, 0);
	CU_ASSERT_EQUAL(b.len, 0);
	bb_buf_puts(&b, "again");
	CU_ASSERT_EQUAL(memcmp(b.data, "again", 5), 0);
	bb_buf_free(&b);
}

static void
test_write_value_is_compact_and_canonical(void)
{
	const char *text = " { \"a\" : [ 1 , \"x\\u0041\\/\" , { } ] ,\n"
	    " \"\\u00e9\" : -0.5e-3 } ";
	struct bb_json doc;
	struct bb_buf out;
	char err[128];

	bb_buf_init(&out);
	CU_ASSERT_EQUAL_FATAL(bb_json_parse(&doc, text, strlen(text), err,
	    sizeof(err)), BB_JSON_OK);
	bb_json_write_value(&out, &doc, 0);
	CU_ASSERT_STRING_EQUAL(out.data,
	    "{\"a\":[1,\"xA/\",{}],\"\xc3\xa9\":-0.5e-3}");
	bb_buf_free(&out);
	bb_json_free(&doc);
}

/* CONTRACT §8: any body within MAX_BODY_BYTES parses in time linear in its
 * size, whatever its shape. Each shape below is a whole MiB (the default
 * MAX_BODY_BYTES); linear code takes a few milliseconds of CPU on it, code
 * that looks back over the tokens on every ']' or ',' takes seconds, so
 * LINEAR_MS (tests.h) tells them apart with a wide margin. */
#define MIB 1048576

/* Appends spaces to b until appending tail more bytes makes a MiB. */
static void
pad_to_mib(struct bb_buf *b, size_t tail)
{
	while (b->len + tail < MIB)
		bb_buf_putc(b, ' ');
}

/* Parses b, expecting want; a document that parses is also written out
 * and searched for a missing key, so that every pass over it is timed. */
static void
assert_linear(const struct bb_buf *b, enum bb_json_status want)
{
	struct bb_json doc;
	struct bb_buf out;
	char err[128];
	double start = cpu_ms(), ms;
	enum bb_json_status st;

	bb_buf_init(&out);
	st = bb_json_parse(&doc, b->data, b->len, err, sizeof(err));
	if (st == BB_JSON_OK) {
		bb_json_write_value(&out, &doc, 0);
		CU_ASSERT_EQUAL(bb_json_get(&doc, 0, "missing"), -1);
	}
	ms = cpu_ms() - start;
	bb_json_free(&doc);
	bb_buf_free(&out);
	CU_ASSERT_EQUAL(b->len, MIB);
	CU_ASSERT_EQUAL(st, want);
	CU_ASSERT(ms < LINEAR_MS);
	if (ms >= LINEAR_MS)
		fprintf(stderr, "\n    %.0f ms of CPU ", ms);
}

static void
test_linear_object_of_many_members(void)
{
	struct bb_buf b;

	bb_buf_init(&b);
	bb_buf_putc(&b, '{');
	for (int k = 0; k < 32000; k++)
		bb_buf_printf(&b, "%s\"k%025d\":0", k ? "," : "", k);
	pad_to_mib(&b, 1);
	bb_buf_putc(&b, '}');
	assert_linear(&b, BB_JSON_OK);
	bb_buf_free(&b);
}

static void
test_linear_array_of_empty_arrays(void)
{
	struct bb_buf b;

	bb_buf_init(&b);
	bb_buf_putc(&b, '[');
	for (int k = 0; k < BB_JSON_MAX_TOKENS - 1; k++)
		bb_buf_puts(&b, k ? ",[]" : "[]");
	pad_to_mib(&b, 1);
	bb_buf_putc(&b, ']');
	assert_linear(&b, BB_JSON_OK);
	bb_buf_free(&b);
}

/* An array of 1000 nests of the given depth, so the document is one level
 * deeper than that. */
static void
many_nests(struct bb_buf *b, int depth)
{
	bb_buf_putc(b, '[');
	for (int k = 0; k < 1000; k++) {
		if (k)
			bb_buf_putc(b, ',');
		for (int d = 0; d < depth; d++)
			bb_buf_putc(b, '[');
		for (int d = 0; d < depth; d++)
			bb_buf_putc(b, ']');
	}
	pad_to_mib(b, 1);
	bb_buf_putc(b, ']');
}

static void
test_linear_nesting_at_the_depth_limit(void)
{
	struct bb_buf b;

	bb_buf_init(&b);
	many_nests(&b, BB_JSON_MAX_DEPTH - 1);
	assert_linear(&b, BB_JSON_OK);
	bb_buf_free(&b);
}

static void
test_linear_nesting_over_the_depth_limit(void)
{
	struct bb_buf b;
	const int deep = BB_JSON_MAX_TOKENS - 1;

	bb_buf_init(&b);
	many_nests(&b, BB_JSON_MAX_DEPTH);
	assert_linear(&b, BB_JSON_TOO_LARGE);
	/* As deep as the token limit allows. */
	bb_buf_reset(&b);
	for (int d = 0; d < deep; d++)
		bb_buf_putc(&b, '[');
	pad_to_mib(&b, (size_t)deep);
	for (int d = 0; d < deep; d++)
		bb_buf_putc(&b, ']');
	assert_linear(&b, BB_JSON_TOO_LARGE);
	bb_buf_free(&b);
}

static void
test_linear_long_string_of_escapes(void)
{
	struct bb_buf b;

	bb_buf_init(&b);
	bb_buf_puts(&b, "[\"");
	while (b.len + 12 + 2 <= MIB)
		bb_buf_puts(&b, "\\u00e9\\\"\\\\\\n");
	pad_to_mib(&b, 2);
	bb_buf_puts(&b, "\"]");
	assert_linear(&b, BB_JSON_OK);
	bb_buf_free(&b);
}

static void
test_linear_object_of_escaped_names(void)
{
	struct bb_buf b;

	bb_buf_init(&b);
	bb_buf_putc(&b, '{');
	for (int k = 0; k < 32000; k++)
		bb_buf_printf(&b, "%s\"\\u006b\\t%011d\":\"\\n\"", k ? "," : "", k);
	pad_to_mib(&b, 1);
	bb_buf_putc(&b, '}');
	assert_linear(&b, BB_JSON_OK);
	bb_buf_free(&b);
}

/* Not JSON, but shapes on which jsmn's parent links form long chains: a
 * ':' makes the last token the parent of the next, and an unmatched ']'
 * after one passes jsmn, so that the brackets after it would go uncounted
 * by a pre-scan that let its depth go below zero. */
static void
test_linear_chains_of_parent_links(void)
{
	struct bb_buf b;
	const int n = BB_JSON_MAX_TOKENS / 2 - 1;

	bb_buf_init(&b);
	bb_buf_puts(&b, "{\"k\"");
	for (int k = 0; k < n; k++)
		bb_buf_puts(&b, ":\"k\"");
	pad_to_mib(&b, 1);
	bb_buf_putc(&b, '}');
	assert_linear(&b, BB_JSON_INVALID);
	bb_buf_reset(&b);
	bb_buf_puts(&b, "[[]");
	for (int k = 0; k < n; k++)
		bb_buf_puts(&b, ":[]");
	pad_to_mib(&b, 1);
	bb_buf_putc(&b, ']');
	assert_linear(&b, BB_JSON_INVALID);
	bb_buf_reset(&b);
	bb_buf_puts(&b, "[]");
	for (int k = 0; k < n / 2; k++)
		bb_buf_puts(&b, ":]");
	for (int k = 0; k < n / 2; k++)
		bb_buf_putc(&b, '[');
	pad_to_mib(&b, (size_t)n / 2);
	for (int k = 0; k < n / 2; k++)
		bb_buf_putc(&b, ']');
	assert_linear(&b, BB_JSON_INVALID);
	bb_buf_free(&b);
}

static void
test_linear_duplicate_among_many_names(void)
{
	struct bb_buf b;

	bb_buf_init(&b);
	bb_buf_putc(&b, '{');
	for (int k = 0; k < 32000; k++)
		bb_buf_printf(&b, "\"\\u006b%020d\":0,", (k * 7919) % 32000);
	bb_buf_puts(&b, "\"k00000000000000031999\":0");
	pad_to_mib(&b, 1);
	bb_buf_putc(&b, '}');
	assert_linear(&b, BB_JSON_INVALID);
	bb_buf_free(&b);
}

void
add_json_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "accepts well-formed documents", test_accepts_well_formed_documents },
		{ "rejects bad structure", test_rejects_bad_structure },
		{ "rejects bad literals and numbers",
		    test_rejects_bad_literals_and_numbers },
		{ "rejects bad strings and UTF-8", test_rejects_bad_strings },
		{ "limits nesting depth", test_limits_depth },
		{ "limits nesting depth by a limit of its own",
		    test_limits_depth_of_its_own },
		{ "limits token count", test_limits_token_count },
		{ "I-JSON: numbers fit a double", test_ijson_numbers_fit_a_double },
		{ "I-JSON: member names are unique",
		    test_ijson_member_names_are_unique },
		{ "unescapes every escape", test_unescapes_every_escape },
		{ "get and typed values", test_get_and_typed_values },
		{ "string_equals compares unescaped",
		    test_string_equals_compares_unescaped },
		{ "member steps through names", test_member_steps_through_names },
		{ "writer escapes", test_writer_escapes },
		{ "a large buffer is released on reset",
		    test_a_large_buffer_is_released_on_reset },
		{ "write_value is compact and canonical",
		    test_write_value_is_compact_and_canonical },
		{ "linear: object of many members",
		    test_linear_object_of_many_members },
		{ "linear: array of empty arrays",
		    test_linear_array_of_empty_arrays },
		{ "linear: nesting at the depth limit",
		    test_linear_nesting_at_the_depth_limit },
		{ "linear: nesting over the depth limit",
		    test_linear_nesting_over_the_depth_limit },
		{ "linear: long string of escapes",
		    test_linear_long_string_of_escapes },
		{ "linear: object of escaped names",
		    test_linear_object_of_escaped_names },
		{ "linear: chains of parent links",
		    test_linear_chains_of_parent_links },
		{ "linear: duplicate among many names",
		    test_linear_duplicate_among_many_names },
		CU_TEST_INFO_NULL,
	};
	add_suite("json", tests);
}
