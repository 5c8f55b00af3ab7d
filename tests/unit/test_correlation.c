#include <string.h>

#include "correlation.h"
#include "record.h"
#include "tests.h"

/* An in-memory store: records keyed by the last byte of their id. */
struct store {
	struct bb_buf value[256];
	int fetches;		/* batches asked for: one per level */
	bool broken;
};

static void
id_of(int n, bb_id out)
{
	memset(out, 0xab, 16);		/* alike but for the last byte */
	out[15] = (uint8_t)n;
}

static void
store_init(struct store *s)
{
	memset(s, 0, sizeof(*s));
	for (int k = 0; k < 256; k++)
		bb_buf_init(&s->value[k]);
}

static void
store_free(struct store *s)
{
	for (int k = 0; k < 256; k++)
		bb_buf_free(&s->value[k]);
}

/* Publishes event n with the given parents, as the tracker would. */
static void
publish(struct store *s, int n, const int *parents, int nparents)
{
	struct bb_envelope env;
	bb_id id, parent;

	memset(&env, 0, sizeof(env));
	id_of(n, id);
	bb_id_format(id, env.event_id);
	snprintf(env.event_type, sizeof(env.event_type), "test.event");
	env.unix_us = 1795728531123456LL + n;
	for (int k = 0; k < nparents; k++) {
		id_of(parents[k], parent);
		bb_id_format(parent, env.parents[k]);
	}
	env.nparents = nparents;
	bb_record_meta(&s->value[n], &env);
	for (int k = 0; k < nparents; k++)
		bb_record_child(&s->value[parents[k]], id);
}

static int
fetch(void *ctx, const bb_id *ids, int n, bb_fetch_each each, void *walk)
{
	struct store *s = ctx;

	if (s->broken)
		return -1;
	s->fetches++;
	for (int k = 0; k < n; k++) {
		struct bb_buf *v = &s->value[ids[k][15]];
		each(walk, k, v->len ? v->data : NULL, v->len);
	}
	return 0;
}

/* The walk's result as event numbers, e.g. "3 2 1". */
static void
numbers(const struct bb_walk_result *w, char *out, size_t outlen)
{
	out[0] = '\0';
	for (size_t k = 0; k < w->ids.len; k += 16)
		snprintf(out + strlen(out), outlen - strlen(out), "%s%d",
		    k ? " " : "", (uint8_t)w->ids.data[k + 15]);
}

static void
walk_numbers(struct store *s, int from, enum bb_direction dir, int depth,
    char *out, size_t outlen, struct bb_walk_result *w)
{
	bb_id id;

	id_of(from, id);
	CU_ASSERT_EQUAL_FATAL(bb_walk(fetch, s, id, dir, depth, w), 0);
	numbers(w, out, outlen);
}

static void
test_record_round_trip(void)
{
	struct store s;
	struct bb_record rec;
	struct bb_buf children;
	int one[] = { 1 };

	store_init(&s);
	bb_buf_init(&children);
	publish(&s, 1, NULL, 0);
	publish(&s, 2, one, 1);
	publish(&s, 3, one, 1);
	CU_ASSERT_EQUAL_FATAL(bb_record_parse(s.value[1].data, s.value[1].len,
	    &rec, &children), 0);
	CU_ASSERT(rec.has_meta);
	CU_ASSERT_STRING_EQUAL(rec.event_type, "test.event");
	CU_ASSERT_EQUAL(rec.unix_us, 1795728531123457LL);
	CU_ASSERT_EQUAL(rec.nparents, 0);
	CU_ASSERT_EQUAL(children.len, 32);
	CU_ASSERT_EQUAL((uint8_t)children.data[15], 2);
	CU_ASSERT_EQUAL((uint8_t)children.data[31], 3);
	bb_buf_reset(&children);
	CU_ASSERT_EQUAL(bb_record_parse(s.value[2].data, s.value[2].len, &rec,
	    &children), 0);
	CU_ASSERT_EQUAL(rec.nparents, 1);
	CU_ASSERT_EQUAL(rec.parents[0][15], 1);
	CU_ASSERT_EQUAL(children.len, 0);
	/* A truncated value is refused, not read past its end. */
	CU_ASSERT_EQUAL(bb_record_parse(s.value[2].data, s.value[2].len - 1,
	    &rec, &children), -1);
	CU_ASSERT_EQUAL(bb_record_parse("X", 1, &rec, &children), -1);
	bb_buf_free(&children);
	store_free(&s);
}

/* Puts the count entry that the tracker's script keeps in front of the
 * record of event n: tag 'N', or 'T' once a child was dropped. */
static void
prefix_count(struct store *s, int n, char tag, uint32_t count)
{
	struct bb_buf v;

	bb_buf_init(&v);
	bb_buf_putc(&v, tag);
	for (int k = 0; k < 4; k++)
		bb_buf_putc(&v, (char)(uint8_t)(count >> (24 - 8 * k)));
	bb_buf_append(&v, s->value[n].data, s->value[n].len);
	bb_buf_free(&s->value[n]);
	s->value[n] = v;
}

static void
test_count_entry_is_read_only_first(void)
{
	struct store s;
	struct bb_record rec;
	struct bb_buf children;
	int one[] = { 1 };

	store_init(&s);
	bb_buf_init(&children);
	publish(&s, 1, NULL, 0);
	publish(&s, 2, one, 1);
	publish(&s, 3, one, 1);
	prefix_count(&s, 1, 'N', 2);
	CU_ASSERT_EQUAL_FATAL(bb_record_parse(s.value[1].data, s.value[1].len,
	    &rec, &children), 0);
	CU_ASSERT(rec.has_meta);
	CU_ASSERT_FALSE(rec.children_capped);
	CU_ASSERT_EQUAL(children.len, 32);
	s.value[1].data[0] = 'T';
	bb_buf_reset(&children);
	CU_ASSERT_EQUAL(bb_record_parse(s.value[1].data, s.value[1].len, &rec,
	    &children), 0);
	CU_ASSERT(rec.children_capped);
	CU_ASSERT_EQUAL(children.len, 32);
	/* Anywhere else it is no entry; cut short it is no count. */
	prefix_count(&s, 3, 'N', 1);
	bb_buf_append(&s.value[2], s.value[3].data, s.value[3].len);
	CU_ASSERT_EQUAL(bb_record_parse(s.value[2].data, s.value[2].len, &rec,
	    &children), -1);
	CU_ASSERT_EQUAL(bb_record_parse("N\0\0\0", 4, &rec, &children), -1);
	/* A parent that has no record but the count and its children. */
	CU_ASSERT_EQUAL(bb_record_parse("T\0\0\0\0", 5, &rec, &children), 0);
	CU_ASSERT_FALSE(rec.has_meta);
	CU_ASSERT(rec.children_capped);
	bb_buf_free(&children);
	store_free(&s);
}

/* 1 <- 2 <- 3, where 2 had more children than it could record. */
static void
test_descendants_walk_tells_when_children_were_capped(void)
{
	struct store s;
	struct bb_walk_result w;
	char got[256];
	int one[] = { 1 }, two[] = { 2 };

	store_init(&s);
	publish(&s, 1, NULL, 0);
	publish(&s, 2, one, 1);
	publish(&s, 3, two, 1);
	prefix_count(&s, 1, 'N', 1);
	prefix_count(&s, 2, 'T', 1);
	walk_numbers(&s, 1, BB_DESCENDANTS, 100, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "2 3");
	CU_ASSERT(w.children_capped);
	CU_ASSERT_FALSE(w.truncated);
	bb_buf_free(&w.ids);
	/* 2's children are not read: nothing listed was capped */
	walk_numbers(&s, 1, BB_DESCENDANTS, 1, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "2");
	CU_ASSERT_FALSE(w.children_capped);
	bb_buf_free(&w.ids);
	walk_numbers(&s, 2, BB_DESCENDANTS, 100, got, sizeof(got), &w);
	CU_ASSERT(w.children_capped);
	bb_buf_free(&w.ids);
	/* going up, children are not listed */
	walk_numbers(&s, 3, BB_ANCESTORS, 100, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "1 2");
	CU_ASSERT_FALSE(w.children_capped);
	bb_buf_free(&w.ids);
	store_free(&s);
}

static void
test_linear_chain_both_ways(void)
{
	struct store s;
	struct bb_walk_result w;
	char got[256];

	store_init(&s);
	publish(&s, 1, NULL, 0);
	for (int n = 2; n <= 5; n++) {
		int parent[] = { n - 1 };
		publish(&s, n, parent, 1);
	}
	walk_numbers(&s, 5, BB_ANCESTORS, 100, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "1 2 3 4");
	CU_ASSERT_FALSE(w.depth_capped);
	bb_buf_free(&w.ids);
	walk_numbers(&s, 1, BB_DESCENDANTS, 100, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "2 3 4 5");
	CU_ASSERT_EQUAL(w.nearest, 1);
	CU_ASSERT_FALSE(w.depth_capped);
	bb_buf_free(&w.ids);
	/* max_depth stops short of more: said */
	walk_numbers(&s, 1, BB_DESCENDANTS, 2, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "2 3");
	CU_ASSERT_TRUE(w.depth_capped);
	bb_buf_free(&w.ids);
	walk_numbers(&s, 5, BB_ANCESTORS, 2, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "3 4");
	CU_ASSERT_TRUE(w.depth_capped);
	bb_buf_free(&w.ids);
	/* max_depth reached exactly where the lineage ends: nothing left out */
	walk_numbers(&s, 5, BB_ANCESTORS, 4, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "1 2 3 4");
	CU_ASSERT_FALSE(w.depth_capped);
	bb_buf_free(&w.ids);
	store_free(&s);
}

static void
test_one_batch_per_level(void)
{
	struct store s;
	struct bb_walk_result w;
	char got[256];

	store_init(&s);
	publish(&s, 1, NULL, 0);
	for (int n = 2; n <= 9; n++) {	/* 8 children of 1 */
		int parent[] = { 1 };
		publish(&s, n, parent, 1);
	}
	walk_numbers(&s, 1, BB_DESCENDANTS, 100, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "2 3 4 5 6 7 8 9");
	CU_ASSERT_EQUAL(s.fetches, 2);	/* the root, then its 8 children */
	bb_buf_free(&w.ids);
	store_free(&s);
}

static void
test_diamond_lists_each_id_once(void)
{
	struct store s;
	struct bb_walk_result w;
	char got[256];
	int a[] = { 1 }, bc[] = { 2, 3 };

	store_init(&s);
	publish(&s, 1, NULL, 0);
	publish(&s, 2, a, 1);
	publish(&s, 3, a, 1);
	publish(&s, 4, bc, 2);
	walk_numbers(&s, 1, BB_DESCENDANTS, 100, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "2 3 4");
	bb_buf_free(&w.ids);
	walk_numbers(&s, 4, BB_ANCESTORS, 100, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "1 2 3");
	bb_buf_free(&w.ids);
	store_free(&s);
}

/* A root that is also a direct parent still comes first (oldest first). */
static void
test_ancestors_list_a_root_before_its_descendants(void)
{
	struct store s;
	struct bb_walk_result w;
	char got[256];
	int r[] = { 1 }, p2[] = { 2 }, e[] = { 3, 1 };

	store_init(&s);
	publish(&s, 1, NULL, 0);	/* R */
	publish(&s, 2, r, 1);		/* P2, child of R */
	publish(&s, 3, p2, 1);		/* P1, child of P2 */
	publish(&s, 4, e, 2);		/* E, child of P1 and R */
	walk_numbers(&s, 4, BB_ANCESTORS, 100, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "1 2 3");
	bb_buf_free(&w.ids);
	store_free(&s);
}

static void
test_cycle_terminates_without_self(void)
{
	struct store s;
	struct bb_walk_result w;
	char got[256];
	int p1[] = { 3 }, p2[] = { 1 }, p3[] = { 2 };

	store_init(&s);
	publish(&s, 1, p1, 1);
	publish(&s, 2, p2, 1);
	publish(&s, 3, p3, 1);
	walk_numbers(&s, 1, BB_DESCENDANTS, 1000, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "2 3");
	bb_buf_free(&w.ids);
	walk_numbers(&s, 1, BB_ANCESTORS, 1000, got, sizeof(got), &w);
	CU_ASSERT_STRING_EQUAL(got, "2 3");
	bb_buf_free(&w.ids);
	store_free(&s);
}

static void
test_event_without_relations_has_empty_chain(void)
{
	struct store s;
	struct bb_walk_result w;
	char got[256];

	store_init(&s);
	publish(&s, 1, NULL, 0);
	walk_numbers(&s, 1, BB_ANCESTORS, 100, got, sizeof(got), &w);
	CU_ASSERT_EQUAL(w.ids.len, 0);
	CU_ASSERT_FALSE(w.truncated);
	bb_buf_free(&w.ids);
	store_free(&s);
}

static void
test_store_failure_is_reported(void)
{
	struct store s;
	struct bb_walk_result w;
	bb_id id;

	store_init(&s);
	s.broken = true;
	id_of(1, id);
	CU_ASSERT_EQUAL(bb_walk(fetch, &s, id, BB_DESCENDANTS, 100, &w), -1);
	bb_buf_free(&w.ids);
	store_free(&s);
}

/* Ids a client aimed at one slot of an unkeyed hash of their first bytes
 * (here, all alike but for their last 12 bytes) spread over the set. */
static void
test_ids_alike_in_their_first_bytes_hash_apart(void)
{
	enum { N = 4096, SLOTS = 32768 };
	static bool hit[SLOTS];
	uint64_t key[BB_ID_HASH_KEY] = { 0x9e3779b97f4a7c15u, 0xbf58476d1ce4e5b9u,
		0x94d049bb133111ebu, 0x2545f4914f6cdd1du, 0xd6e8feb86659fd93u };
	int distinct = 0;
	bb_id id;

	memset(hit, 0, sizeof(hit));
	for (int n = 0; n < N; n++) {
		memset(id, 0x11, 16);
		memcpy(id + 4, &n, sizeof(n));
		memcpy(id + 12, &n, sizeof(n));
		uint32_t slot = bb_id_hash(key, id) >> 17;	/* top 15 bits */
		distinct += !hit[slot];
		hit[slot] = true;
	}
	/* about N - N^2 / (2 SLOTS) = 3840 for a random function */
	CU_ASSERT(distinct > 3500);
}

void
add_correlation_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "record round trip", test_record_round_trip },
		{ "count entry is read only first",
		    test_count_entry_is_read_only_first },
		{ "descendants walk tells when children were capped",
		    test_descendants_walk_tells_when_children_were_capped },
		{ "linear chain both ways, and max_depth",
		    test_linear_chain_both_ways },
		{ "one batch per level", test_one_batch_per_level },
		{ "diamond lists each id once", test_diamond_lists_each_id_once },
		{ "ancestors list a root before its descendants",
		    test_ancestors_list_a_root_before_its_descendants },
		{ "cycle terminates without the event itself",
		    test_cycle_terminates_without_self },
		{ "event without relations has an empty chain",
		    test_event_without_relations_has_empty_chain },
		{ "store failure is reported", test_store_failure_is_reported },
		{ "ids alike in their first bytes hash apart",
		    test_ids_alike_in_their_first_bytes_hash_apart },
		CU_TEST_INFO_NULL,
	};
	add_suite("correlation", tests);
}
