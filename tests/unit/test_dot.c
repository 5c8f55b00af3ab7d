#include <stdlib.h>
#include <string.h>

#include "dot.h"
#include "tests.h"

static const char A[] = "11111111-1111-4111-8111-111111111111";
static const char B[] = "22222222-2222-4222-8222-222222222222";
static const char C[] = "33333333-3333-4333-8333-333333333333";
static const char X[] = "99999999-9999-4999-8999-999999999999";

static struct bb_record
record(const char *type, const char *parent1, const char *parent2)
{
	struct bb_record r;

	memset(&r, 0, sizeof(r));
	r.has_meta = true;
	r.unix_us = 1796333331123456LL;	/* 2026-12-03T21:28:51.123456+00:00... */
	strcpy(r.event_type, type);
	if (parent1)
		bb_id_parse(parent1, r.parents[r.nparents++]);
	if (parent2)
		bb_id_parse(parent2, r.parents[r.nparents++]);
	return r;
}

/* A -> B -> C, walked down from A; B also names X, outside the walk. */
static char *
draw(bool truncated)
{
	bb_id a, b, c;
	uint8_t chain[32];
	struct bb_dot d;
	struct bb_buf out;
	struct bb_record ra = record("llm.prompt", NULL, NULL);
	struct bb_record rb = record("llm.response", A, X);

	bb_id_parse(A, a);
	bb_id_parse(B, b);
	bb_id_parse(C, c);
	memcpy(chain, b, 16);
	memcpy(chain + 16, c, 16);
	bb_buf_init(&out);
	bb_dot_begin(&d, &out, a, chain, 2);
	bb_dot_node(&d, a, &ra);
	bb_dot_node(&d, b, &rb);
	bb_dot_node(&d, c, NULL);
	d.truncated = truncated;
	bb_dot_end(&d);
	bb_buf_putc(&out, '\0');
	return out.data;
}

static void
test_dot_is_a_digraph_with_one_node_per_event(void)
{
	char *s = draw(false);

	CU_ASSERT_EQUAL(strncmp(s, "digraph lineage {\n", 18), 0);
	CU_ASSERT_EQUAL(strcmp(s + strlen(s) - 2, "}\n"), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "  \"22222222-2222-4222-8222-222222222222\""
	    " [label=\"llm.response\\n2026-12-03T21:28:51.123456+00:00"));
	free(s);
}

static void
test_dot_edges_go_parent_to_child_within_the_walk(void)
{
	char *s = draw(false);

	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"11111111-1111-4111-8111-111111111111\""
	    " -> \"22222222-2222-4222-8222-222222222222\";\n"));
	CU_ASSERT_PTR_NULL(strstr(s, "\"99999999"));
	free(s);
}

static void
test_dot_highlights_the_start_and_dashes_unknown_events(void)
{
	char *s = draw(false);
	char *a = strstr(s, "\"11111111-1111-4111-8111-111111111111\" [");
	char *c = strstr(s, "\"33333333-3333-4333-8333-333333333333\" [");

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NOT_NULL(strstr(a, "fillcolor=\"gold\""));
	CU_ASSERT(strstr(a, "fillcolor") < strchr(a, '\n'));
	CU_ASSERT_EQUAL(strncmp(c + 39, "[label=\"(no record)\\n33333333\", "
	    "style=\"rounded,dashed\"];", 56), 0);
	free(s);
}

static void
test_dot_escapes_quotes_in_labels(void)
{
	struct bb_record r = record("a\"b\\c", NULL, NULL);
	struct bb_buf out;
	struct bb_dot d;
	bb_id a;

	bb_id_parse(A, a);
	bb_buf_init(&out);
	bb_dot_begin(&d, &out, a, NULL, 0);
	bb_dot_node(&d, a, &r);
	bb_dot_end(&d);
	bb_buf_putc(&out, '\0');
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "[label=\"a\\\"b\\\\c\\n"));
	bb_buf_free(&out);
}

/* 2,000 events, each a child of 30 earlier ones: far over the bound. */
static void
test_dot_of_a_dense_lineage_is_bounded_and_says_so(void)
{
	enum { N = 2000, P = 30 };
	uint8_t *ids = calloc(N, 16);
	struct bb_record rec;
	struct bb_dot d;
	struct bb_buf out;

	for (int n = 0; n < N; n++) {
		ids[n * 16] = (uint8_t)(n >> 8);
		ids[n * 16 + 1] = (uint8_t)n;
	}
	bb_buf_init(&out);
	bb_dot_begin(&d, &out, ids, ids + 16, N - 1);
	for (int n = 0; n < N; n++) {
		memset(&rec, 0, sizeof(rec));
		rec.has_meta = true;
		strcpy(rec.event_type, "dense");
		for (int k = 0; k < P && k < n; k++)
			memcpy(rec.parents[rec.nparents++],
			    ids + (size_t)(n - k - 1) * 16, 16);
		bb_dot_node(&d, ids + (size_t)n * 16, &rec);
	}
	bb_dot_end(&d);
	bb_buf_putc(&out, '\0');
	CU_ASSERT(out.len < BB_DOT_MAX_BYTES + 8192);
	CU_ASSERT(d.nodes > 0 && d.nodes < N);
	CU_ASSERT_EQUAL(d.nodes + d.nodes_left, N);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "  truncated [shape=note"));
	CU_ASSERT_EQUAL(strcmp(out.data + strlen(out.data) - 2, "}\n"), 0);
	bb_buf_free(&out);
	free(ids);
}

static void
test_dot_says_when_the_walk_was_truncated(void)
{
	char *s = draw(false);
	char *cut = draw(true);

	CU_ASSERT_PTR_NULL(strstr(s, "truncated"));
	CU_ASSERT_PTR_NOT_NULL(strstr(cut, "  truncated [shape=note, color=red, "
	    "fontcolor=red, label=\"truncated: the walk stopped at its bound"));
	free(s);
	free(cut);
}

void
add_dot_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "dot is a digraph with one node per event",
		    test_dot_is_a_digraph_with_one_node_per_event },
		{ "dot edges go parent to child within the walk",
		    test_dot_edges_go_parent_to_child_within_the_walk },
		{ "dot highlights the start and dashes unknown events",
		    test_dot_highlights_the_start_and_dashes_unknown_events },
		{ "dot escapes quotes in labels", test_dot_escapes_quotes_in_labels },
		{ "dot of a dense lineage is bounded and says so",
		    test_dot_of_a_dense_lineage_is_bounded_and_says_so },
		{ "dot says when the walk was truncated",
		    test_dot_says_when_the_walk_was_truncated },
		CU_TEST_INFO_NULL,
	};
	add_suite("dot", tests);
}
