#include <string.h>

#include "tests.h"
#include "topic.h"

static void
test_patterns_valid_and_not(void)
{
	const char *good[] = { "#", "*", "llm.prompt", "llm.*", "*.created",
		"fireflies.#", "#.upload", "a.#.b", "x_y-1.*.#", NULL };
	const char *bad[] = { "", ".", "llm.", ".llm", "llm..prompt", "LLM.prompt",
		"llm.pro*", "llm.#x", "a b", "llm/prompt", "**", NULL };
	char long_pattern[300];

	for (int k = 0; good[k]; k++)
		CU_ASSERT_TRUE(bb_topic_pattern_valid(good[k]));
	for (int k = 0; bad[k]; k++)
		CU_ASSERT_FALSE(bb_topic_pattern_valid(bad[k]));
	memset(long_pattern, 'a', 256);
	long_pattern[256] = '\0';
	CU_ASSERT_FALSE(bb_topic_pattern_valid(long_pattern));
	long_pattern[255] = '\0';
	CU_ASSERT_TRUE(bb_topic_pattern_valid(long_pattern));
}

static void
test_matching_as_a_topic_exchange_routes(void)
{
	struct { const char *pattern, *key; bool match; } cases[] = {
		{ "#", "llm.prompt", true },
		{ "#", "a", true },
		{ "*", "llm", true },
		{ "*", "llm.prompt", false },
		{ "llm.*", "llm.prompt", true },
		{ "llm.*", "llm", false },
		{ "llm.*", "llm.prompt.x", false },
		{ "llm.#", "llm", true },
		{ "llm.#", "llm.prompt.x", true },
		{ "llm.#", "llmx.prompt", false },
		{ "#.upload", "fireflies.transcript.upload", true },
		{ "#.upload", "upload", true },
		{ "#.upload", "upload.x", false },
		{ "a.#.b", "a.b", true },
		{ "a.#.b", "a.x.y.b", true },
		{ "a.#.b", "a.x.y", false },
		{ "*.created", "artifact.created", true },
		{ "llm.prompt", "llm.prompt", true },
		{ "llm.prompt", "llm.prompts", false },
		{ "#.#", "a.b.c", true },
		{ "*.#.*", "a", false },
		{ "*.#.*", "a.b", true },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		CU_ASSERT_EQUAL(bb_topic_match(cases[k].pattern, cases[k].key),
		    cases[k].match);
}

/* Many `#`s against a long key that does not match: a backtracking
 * matcher takes exponential time here, this one a product of lengths. */
static void
test_many_hashes_cost_no_backtracking(void)
{
	char pattern[256] = "", key[256] = "";

	for (int k = 0; k < 60; k++)
		strcat(pattern, k ? ".#" : "#");
	strcat(pattern, ".z");
	for (int k = 0; k < 120; k++)
		strcat(key, k ? ".a" : "a");
	double start = cpu_ms();
	for (int k = 0; k < 100; k++)
		CU_ASSERT_FALSE(bb_topic_match(pattern, key));
	CU_ASSERT(cpu_ms() - start < LINEAR_MS);
}

void
add_topic_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "patterns valid and not", test_patterns_valid_and_not },
		{ "matching as a topic exchange routes",
		    test_matching_as_a_topic_exchange_routes },
		{ "many #s cost no backtracking",
		    test_many_hashes_cost_no_backtracking },
		CU_TEST_INFO_NULL,
	};
	add_suite("topic", tests);
}
