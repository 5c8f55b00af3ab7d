#include <string.h>

#include "regex.h"
#include "tests.h"

/* 1, 0 or -1 as bb_regex_search says for pattern p on subject s. */
static int
search(const char *p, const char *s)
{
	char err[256];
	void *match = NULL;
	struct bb_regex *re = bb_regex_compile(p, strlen(p), err, sizeof(err));
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(re);
	rc = bb_regex_search(re, s, strlen(s), &match);
	bb_regex_match_free(match);
	bb_regex_free(re);
	return rc;
}

static void
test_search_is_unanchored(void)
{
	CU_ASSERT_EQUAL(search("b+", "abbbc"), 1);
	CU_ASSERT_EQUAL(search("^b", "abc"), 0);
}

static void
test_dollar_matches_only_at_the_end(void)
{
	CU_ASSERT_EQUAL(search("^abc$", "abc\n"), 0);
	CU_ASSERT_EQUAL(search("^abc$", "abc"), 1);
}

static void
test_whitespace_is_ecma_whitespace(void)
{
	CU_ASSERT_EQUAL(search("^\\s$", "\xc2\xa0"), 1);	/* U+00A0 */
	CU_ASSERT_EQUAL(search("^\\S$", "\xe2\x80\x83"), 0);	/* U+2003 */
	CU_ASSERT_EQUAL(search("^\\d$", "\xd9\xa3"), 0);	/* Arabic 3 */
}

static void
test_dot_stops_at_line_terminators(void)
{
	CU_ASSERT_EQUAL(search("^a.b$", "a\rb"), 0);
	CU_ASSERT_EQUAL(search("^a.b$", "a\xe2\x80\xa8" "b"), 0);
	CU_ASSERT_EQUAL(search("^a.b$", "axb"), 1);
}

static void
test_empty_classes(void)
{
	CU_ASSERT_EQUAL(search("a[]", "a]"), 0);
	CU_ASSERT_EQUAL(search("^a[^]$", "a\n"), 1);
}

static void
test_code_point_escapes(void)
{
	CU_ASSERT_EQUAL(search("^\\u00e9$", "\xc3\xa9"), 1);
	CU_ASSERT_EQUAL(search("^\\u{1F600}$", "\xf0\x9f\x98\x80"), 1);
}

static void
test_bad_pattern_says_where(void)
{
	char err[256];

	CU_ASSERT_PTR_NULL(bb_regex_compile("ab(c", 4, err, sizeof(err)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "at offset 4"));
}

static void
test_backtracking_stops_at_the_limit(void)
{
	char s[4096];

	memset(s, 'a', sizeof(s) - 2);
	s[sizeof(s) - 2] = 'b';
	s[sizeof(s) - 1] = '\0';
	CU_ASSERT_EQUAL(search("^(a+)+$", s), -1);
}

void
add_regex_tests(void)
{
	static CU_TestInfo tests[] = {
		{ "search is unanchored", test_search_is_unanchored },
		{ "$ matches only at the end",
		    test_dollar_matches_only_at_the_end },
		{ "\\s is ECMA-262 whitespace, \\d ASCII",
		    test_whitespace_is_ecma_whitespace },
		{ ". stops at line terminators",
		    test_dot_stops_at_line_terminators },
		{ "[] matches nothing, [^] anything", test_empty_classes },
		{ "code point escapes", test_code_point_escapes },
		{ "a bad pattern says where", test_bad_pattern_says_where },
		{ "backtracking stops at the limit",
		    test_backtracking_stops_at_the_limit },
		CU_TEST_INFO_NULL,
	};

	add_suite("regex", tests);
}
