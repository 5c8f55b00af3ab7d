#include <string.h>

#include "confirms.h"
#include "tests.h"

/* n messages written in order, tags 1..n */
static void
written(struct bb_confirms *c, struct bb_publish *p, const char **ids, int n)
{
	bb_confirms_init(c);
	for (int k = 0; k < n; k++) {
		memset(&p[k], 0, sizeof(p[k]));
		p[k].message_id = ids[k];
		bb_confirms_add(c, &p[k]);
	}
}

static const char *ids[] = { "a", "b", "c", "d", "e" };

static void
test_tags_count_from_one_in_order(void)
{
	struct bb_confirms c = { 0 };
	struct bb_publish p[3];

	written(&c, p, ids, 3);
	for (int k = 0; k < 3; k++) {
		CU_ASSERT_EQUAL(p[k].tag, (uint64_t)k + 1);
		CU_ASSERT_EQUAL(p[k].result, BB_PUBLISH_PENDING);
	}
	CU_ASSERT(bb_confirms_waiting(&c));
	bb_confirms_free(&c);
}

static void
test_single_ack_settles_only_its_tag(void)
{
	struct bb_confirms c = { 0 };
	struct bb_publish p[3];

	written(&c, p, ids, 3);
	CU_ASSERT_EQUAL(bb_confirms_settle(&c, 2, false, true), 0);
	CU_ASSERT_EQUAL(p[0].result, BB_PUBLISH_PENDING);
	CU_ASSERT_EQUAL(p[1].result, BB_PUBLISH_OK);
	CU_ASSERT_EQUAL(p[2].result, BB_PUBLISH_PENDING);
	bb_confirms_free(&c);
}

static void
test_multiple_ack_settles_every_tag_up_to_it(void)
{
	struct bb_confirms c = { 0 };
	struct bb_publish p[5];

	written(&c, p, ids, 5);
	CU_ASSERT_EQUAL(bb_confirms_settle(&c, 3, true, true), 0);
	for (int k = 0; k < 3; k++)
		CU_ASSERT_EQUAL(p[k].result, BB_PUBLISH_OK);
	CU_ASSERT_EQUAL(p[3].result, BB_PUBLISH_PENDING);
	CU_ASSERT_EQUAL(bb_confirms_settle(&c, 5, true, false), 0);
	CU_ASSERT_EQUAL(p[3].result, BB_PUBLISH_NACKED);
	CU_ASSERT_EQUAL(p[4].result, BB_PUBLISH_NACKED);
	CU_ASSERT(!bb_confirms_waiting(&c));
	bb_confirms_free(&c);
}

static void
test_multiple_with_tag_zero_settles_all(void)
{
	struct bb_confirms c = { 0 };
	struct bb_publish p[3];

	written(&c, p, ids, 3);
	CU_ASSERT_EQUAL(bb_confirms_settle(&c, 0, true, true), 0);
	for (int k = 0; k < 3; k++)
		CU_ASSERT_EQUAL(p[k].result, BB_PUBLISH_OK);
	bb_confirms_free(&c);
}

static void
test_nack_is_nacked(void)
{
	struct bb_confirms c = { 0 };
	struct bb_publish p[1];

	written(&c, p, ids, 1);
	bb_confirms_settle(&c, 1, false, false);
	CU_ASSERT_EQUAL(p[0].result, BB_PUBLISH_NACKED);
	bb_confirms_free(&c);
}

/* A message answered 504 and given up on: its late ack changes nothing,
 * and the others still settle. */
static void
test_late_ack_for_a_forgotten_message_is_ignored(void)
{
	struct bb_confirms c = { 0 };
	struct bb_publish p[3];

	written(&c, p, ids, 3);
	bb_confirms_forget(&c, &p[0]);
	p[0].result = BB_PUBLISH_TIMEOUT;
	CU_ASSERT_EQUAL(bb_confirms_settle(&c, 1, false, true), 0);
	CU_ASSERT_EQUAL(p[0].result, BB_PUBLISH_TIMEOUT);
	CU_ASSERT_EQUAL(bb_confirms_settle(&c, 3, true, true), 0);
	CU_ASSERT_EQUAL(p[0].result, BB_PUBLISH_TIMEOUT);
	CU_ASSERT_EQUAL(p[1].result, BB_PUBLISH_OK);
	CU_ASSERT_EQUAL(p[2].result, BB_PUBLISH_OK);
	bb_confirms_free(&c);
}

static void
test_ack_for_a_tag_never_sent_is_an_error(void)
{
	struct bb_confirms c = { 0 };
	struct bb_publish p[2];

	written(&c, p, ids, 2);
	CU_ASSERT_EQUAL(bb_confirms_settle(&c, 3, false, true), -1);
	CU_ASSERT_EQUAL(bb_confirms_settle(&c, 7, true, true), -1);
	CU_ASSERT_EQUAL(p[0].result, BB_PUBLISH_PENDING);
	CU_ASSERT_EQUAL(p[1].result, BB_PUBLISH_PENDING);
	bb_confirms_free(&c);
}

static void
test_returned_then_acked_is_unroutable(void)
{
	struct bb_confirms c = { 0 };
	struct bb_publish p[3];

	written(&c, p, ids, 3);
	bb_confirms_returned(&c, "b", 1);
	bb_confirms_settle(&c, 3, true, true);
	CU_ASSERT_EQUAL(p[0].result, BB_PUBLISH_OK);
	CU_ASSERT_EQUAL(p[1].result, BB_PUBLISH_UNROUTABLE);
	CU_ASSERT_EQUAL(p[2].result, BB_PUBLISH_OK);
	bb_confirms_free(&c);
}

/* Two messages with one message_id in flight (one Idempotency-Key with
 * tracking off), both returned, one multiple ack: both are unroutable. A
 * basic.return comes in publish order, so each marks the first one not
 * returned yet. */
static void
test_two_returns_of_one_id_mark_both(void)
{
	static const char *same[] = { "k", "x", "k" };
	struct bb_confirms c = { 0 };
	struct bb_publish p[3];

	written(&c, p, same, 3);
	bb_confirms_returned(&c, "k", 1);
	bb_confirms_returned(&c, "k", 1);
	bb_confirms_settle(&c, 3, true, true);
	CU_ASSERT_EQUAL(p[0].result, BB_PUBLISH_UNROUTABLE);
	CU_ASSERT_EQUAL(p[1].result, BB_PUBLISH_OK);
	CU_ASSERT_EQUAL(p[2].result, BB_PUBLISH_UNROUTABLE);
	bb_confirms_free(&c);
}

static void
test_settle_all_answers_every_waiting_one(void)
{
	struct bb_confirms c = { 0 };
	struct bb_publish p[3];

	written(&c, p, ids, 3);
	bb_confirms_settle(&c, 1, false, true);
	bb_confirms_settle_all(&c, BB_PUBLISH_TIMEOUT);
	CU_ASSERT_EQUAL(p[0].result, BB_PUBLISH_OK);
	CU_ASSERT_EQUAL(p[1].result, BB_PUBLISH_TIMEOUT);
	CU_ASSERT_EQUAL(p[2].result, BB_PUBLISH_TIMEOUT);
	CU_ASSERT(!bb_confirms_waiting(&c));
	/* a confirm after that finds nobody */
	CU_ASSERT_EQUAL(bb_confirms_settle(&c, 2, false, true), 0);
	CU_ASSERT_EQUAL(p[1].result, BB_PUBLISH_TIMEOUT);
	bb_confirms_free(&c);
}

/* Thousands in flight, acked out of order in single and multiple acks:
 * every one settles exactly once, to its own result. */
static void
test_many_in_flight_settle_to_their_own_results(void)
{
	enum { N = 5000 };
	static struct bb_publish p[N];
	struct bb_confirms c = { 0 };

	bb_confirms_init(&c);
	for (int k = 0; k < N; k++) {
		memset(&p[k], 0, sizeof(p[k]));
		p[k].message_id = "x";
		bb_confirms_add(&c, &p[k]);
	}
	for (int k = N; k >= 1; k -= 2)		/* even tags, singly, descending */
		bb_confirms_settle(&c, (uint64_t)k, false, k % 4 != 0);
	bb_confirms_settle(&c, N - 1, true, true);	/* the odd ones */
	for (int k = 0; k < N; k++) {
		int tag = k + 1;
		enum bb_publish_result want = tag % 2 ? BB_PUBLISH_OK :
		    tag % 4 != 0 ? BB_PUBLISH_OK : BB_PUBLISH_NACKED;
		CU_ASSERT_EQUAL(p[k].result, want);
	}
	CU_ASSERT(!bb_confirms_waiting(&c));
	bb_confirms_free(&c);
}

void
add_confirms_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "tags count from one in order", test_tags_count_from_one_in_order },
		{ "a single ack settles only its tag",
		    test_single_ack_settles_only_its_tag },
		{ "a multiple ack settles every tag up to it",
		    test_multiple_ack_settles_every_tag_up_to_it },
		{ "multiple with tag zero settles all",
		    test_multiple_with_tag_zero_settles_all },
		{ "a nack is nacked", test_nack_is_nacked },
		{ "a late ack for a forgotten message is ignored",
		    test_late_ack_for_a_forgotten_message_is_ignored },
		{ "an ack for a tag never sent is an error",
		    test_ack_for_a_tag_never_sent_is_an_error },
		{ "returned then acked is unroutable",
		    test_returned_then_acked_is_unroutable },
		{ "two returns of one message id mark both",
		    test_two_returns_of_one_id_mark_both },
		{ "settle all answers every waiting one",
		    test_settle_all_answers_every_waiting_one },
		{ "many in flight settle to their own results",
		    test_many_in_flight_settle_to_their_own_results },
		CU_TEST_INFO_NULL,
	};
	add_suite("confirms", tests);
}
