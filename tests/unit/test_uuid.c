#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

static int
compare_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Thousands of ids span many refills of the random pool. */
static void
test_random_ids_across_pool_refills_are_v4_and_distinct(void)
{
	enum { N = 3000 };
	static char ids[N][BB_UUID_STRLEN + 1];

	for (int k = 0; k < N; k++) {
		bb_uuid_random(ids[k]);
		CU_ASSERT(bb_uuid_valid(ids[k], BB_UUID_STRLEN));
		CU_ASSERT_EQUAL(ids[k][14], '4');
		CU_ASSERT(strchr("89ab", ids[k][19]) != NULL);
	}
	qsort(ids, N, sizeof(ids[0]), compare_ids);
	for (int k = 1; k < N; k++)
		CU_ASSERT_STRING_NOT_EQUAL(ids[k - 1], ids[k]);
}

/* Workers are forked from one parent: a child must not hand out the ids
 * its parent's pool still holds. */
static void
test_random_ids_after_fork_differ_from_the_parents(void)
{
	char parent[BB_UUID_STRLEN + 1], child[BB_UUID_STRLEN + 1] = "";
	int fds[2];

	bb_uuid_random(parent);	/* the pool is full now */
	CU_ASSERT_FATAL(pipe(fds) == 0);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		bb_uuid_random(child);
		_exit(write(fds[1], child, BB_UUID_STRLEN) == BB_UUID_STRLEN ? 0 : 1);
	}
	close(fds[1]);
	CU_ASSERT_EQUAL(read(fds[0], child, BB_UUID_STRLEN), BB_UUID_STRLEN);
	close(fds[0]);
	waitpid(pid, NULL, 0);
	bb_uuid_random(parent);
	CU_ASSERT(bb_uuid_valid(child, BB_UUID_STRLEN));
	CU_ASSERT_STRING_NOT_EQUAL(child, parent);
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
		{ "random ids across pool refills are v4 and distinct",
		    test_random_ids_across_pool_refills_are_v4_and_distinct },
		{ "random ids after fork differ from the parent's",
		    test_random_ids_after_fork_differ_from_the_parents },
		{ "valid rejects malformed ids", test_valid_rejects_malformed },
		{ "lower lowercases", test_lower },
		CU_TEST_INFO_NULL,
	};
	add_suite("uuid", tests);
}
