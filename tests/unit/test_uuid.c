#include <string.h>

#include "tests.h"
#include "uuid.h"

static void
check_v5(const char *name, const char *expected)
{
	char id[BB_UUID_STRLEN + 1];

	bb_uuid_oid_v5(name, strlen(name), id);
	CU_ASSERT_STRING_EQUAL(id, expected);
}

/* The vectors of CONTRACT §5 and the endpoints issue. */
static void
test_v5_matches_contract_vectors(void)
{
	check_v5("bloodbank:llm.prompt:abc",
	    "8b43ec22-ff98-53f4-aeb6-af9614832d4f");
	check_v5("bloodbank:fireflies.transcript.upload:meeting_abc123",
	    "92ac3d31-3cbb-5518-9cc9-eaa1d1198639");
	check_v5("bloodbank:artifact.created:doc-42",
	    "da6b137a-f623-5dee-959b-26ff17e3b254");
}

static void
test_random_is_lowercase_v4_and_distinct(void)
{
	char a[BB_UUID_STRLEN + 1], b[BB_UUID_STRLEN + 1];

	bb_uuid_random(a);
	bb_uuid_random(b);
	CU_ASSERT(bb_uuid_valid(a, strlen(a)));
	CU_ASSERT_EQUAL(a[14], '4');
	CU_ASSERT(strchr("89ab", a[19]) != NULL);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	for (const char *p = a; *p; p++)
		CU_ASSERT(!(*p >= 'A' && *p <= 'F'));
}

static void
test_valid_rejects_malformed(void)
{
	const char *ok = "8B43EC22-ff98-53f4-aeb6-af9614832d4f";

	CU_ASSERT(bb_uuid_valid(ok, strlen(ok)));
	CU_ASSERT(!bb_uuid_valid(ok, strlen(ok) - 1));
	CU_ASSERT(!bb_uuid_valid("8b43ec22ff98-53f4-aeb6-af9614832d4f0", 36));
	CU_ASSERT(!bb_uuid_valid("8b43ec22-ff98-53f4-aeb6-af9614832d4g", 36));
	CU_ASSERT(!bb_uuid_valid("", 0));
}

static void
test_lower(void)
{
	char out[BB_UUID_STRLEN + 1];

	bb_uuid_lower("8B43EC22-FF98-53F4-AEB6-AF9614832D4F", out);
	CU_ASSERT_STRING_EQUAL(out, "8b43ec22-ff98-53f4-aeb6-af9614832d4f");
}

void
add_uuid_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "v5 matches the contract's vectors", test_v5_matches_contract_vectors },
		{ "random ids are lowercase v4 and distinct",
		    test_random_is_lowercase_v4_and_distinct },
		{ "valid rejects malformed ids", test_valid_rejects_malformed },
		{ "lower lowercases", test_lower },
		CU_TEST_INFO_NULL,
	};
	add_suite("uuid", tests);
}
