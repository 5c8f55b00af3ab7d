/* The spool's records (spoolrec.c) and its segment files (spool.c), in a
 * directory of the test's own. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "spoolrec.h"
#include "tests.h"

#define ID1 "11111111-1111-4111-8111-111111111111"
#define ID2 "22222222-2222-4222-8222-222222222222"
#define ID3 "33333333-3333-4333-8333-333333333333"

static void
envelope(struct bb_envelope *env, const char *id, const char *type)
{
	memset(env, 0, sizeof(*env));
	snprintf(env->event_id, sizeof(env->event_id), "%s", id);
	snprintf(env->event_type, sizeof(env->event_type), "%s", type);
	env->unix_us = 1764700000123456LL;
}

static void
test_record_round_trip(void)
{
	struct bb_envelope env;
	struct bb_buf b;
	struct bb_spoolrec_head h;
	struct bb_spooled ev;
	uint8_t hash[BB_BODY_HASH_LEN];

	for (size_t k = 0; k < sizeof(hash); k++)
		hash[k] = (uint8_t)(k * 7);
	envelope(&env, ID1, "order.placed");
	env.nparents = 2;
	strcpy(env.parents[0], ID2);
	strcpy(env.parents[1], ID3);
	env.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
	env.tracestate = "congo=t61rcWkgMzE";
	bb_buf_init(&b);
	bb_spoolrec_encode(&b, &env, "{\"a\":1}", 7, true, hash, 1764700000999LL);
	CU_ASSERT_EQUAL_FATAL(bb_spoolrec_head((uint8_t *)b.data, &h), 0);
	CU_ASSERT_EQUAL(h.state, BB_SPOOLREC_WAITING);
	CU_ASSERT_EQUAL(h.spooled_ms, 1764700000999LL);
	CU_ASSERT_EQUAL(BB_SPOOLREC_HEAD + h.body_len, b.len);
	CU_ASSERT_EQUAL_FATAL(bb_spoolrec_body(&h, (uint8_t *)b.data +
	    BB_SPOOLREC_HEAD, &ev), 0);
	CU_ASSERT_STRING_EQUAL(ev.env.event_id, ID1);
	CU_ASSERT_STRING_EQUAL(ev.env.event_type, "order.placed");
	CU_ASSERT_EQUAL(ev.env.unix_us, 1764700000123456LL);
	CU_ASSERT_STRING_EQUAL(ev.env.timestamp,
	    "2025-12-02T18:26:40.123456+00:00");
	CU_ASSERT_EQUAL(ev.env.nparents, 2);
	CU_ASSERT_STRING_EQUAL(ev.env.parents[1], ID3);
	CU_ASSERT_STRING_EQUAL(ev.env.traceparent, env.traceparent);
	CU_ASSERT_STRING_EQUAL(ev.env.tracestate, env.tracestate);
	CU_ASSERT(ev.cloudevents);
	CU_ASSERT(ev.keyed);
	CU_ASSERT(memcmp(ev.hash, hash, sizeof(hash)) == 0);
	CU_ASSERT_EQUAL(ev.json_len, 7);
	CU_ASSERT(memcmp(ev.json, "{\"a\":1}", 7) == 0);

	/* without a key, parents or trace context */
	envelope(&env, ID2, "t");
	bb_buf_reset(&b);
	bb_spoolrec_encode(&b, &env, "{}", 2, false, NULL, 5);
	CU_ASSERT_EQUAL_FATAL(bb_spoolrec_head((uint8_t *)b.data, &h), 0);
	CU_ASSERT_EQUAL_FATAL(bb_spoolrec_body(&h, (uint8_t *)b.data +
	    BB_SPOOLREC_HEAD, &ev), 0);
	CU_ASSERT(!ev.keyed);
	CU_ASSERT(!ev.cloudevents);
	CU_ASSERT_PTR_NULL(ev.env.traceparent);
	CU_ASSERT_PTR_NULL(ev.env.tracestate);
	CU_ASSERT_EQUAL(ev.env.nparents, 0);

	/* an empty tracestate is not an absent one */
	env.tracestate = "";
	bb_buf_reset(&b);
	bb_spoolrec_encode(&b, &env, "{}", 2, false, NULL, 5);
	CU_ASSERT_EQUAL_FATAL(bb_spoolrec_head((uint8_t *)b.data, &h), 0);
	CU_ASSERT_EQUAL_FATAL(bb_spoolrec_body(&h, (uint8_t *)b.data +
	    BB_SPOOLREC_HEAD, &ev), 0);
	CU_ASSERT_PTR_NULL(ev.env.traceparent);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev.env.tracestate);
	CU_ASSERT_STRING_EQUAL(ev.env.tracestate, "");
	bb_buf_free(&b);
}

static void
test_checksums_catch_damage_but_not_a_new_state(void)
{
	struct bb_envelope env;
	struct bb_buf b;
	struct bb_spoolrec_head h;
	struct bb_spooled ev;

	envelope(&env, ID1, "t");
	bb_buf_init(&b);
	bb_spoolrec_encode(&b, &env, "{\"x\":true}", 10, false, NULL, 1);
	uint8_t *p = (uint8_t *)b.data;

	p[BB_SPOOLREC_STATE_AT] = BB_SPOOLREC_FORWARDED;
	CU_ASSERT_EQUAL(bb_spoolrec_head(p, &h), 0);
	CU_ASSERT_EQUAL(h.state, BB_SPOOLREC_FORWARDED);
	p[BB_SPOOLREC_STATE_AT] = 'X';
	CU_ASSERT_EQUAL(bb_spoolrec_head(p, &h), -1);
	p[BB_SPOOLREC_STATE_AT] = BB_SPOOLREC_WAITING;

	p[9] ^= 1;		/* the body's length */
	CU_ASSERT_EQUAL(bb_spoolrec_head(p, &h), -1);
	p[9] ^= 1;
	p[0] = 'X';		/* the magic */
	CU_ASSERT_EQUAL(bb_spoolrec_head(p, &h), -1);
	p[0] = 'B';
	CU_ASSERT_EQUAL_FATAL(bb_spoolrec_head(p, &h), 0);

	p[b.len - 2] ^= 0x20;	/* the payload */
	CU_ASSERT_EQUAL(bb_spoolrec_body(&h, p + BB_SPOOLREC_HEAD, &ev), -1);
	p[b.len - 2] ^= 0x20;
	CU_ASSERT_EQUAL(bb_spoolrec_body(&h, p + BB_SPOOLREC_HEAD, &ev), 0);
	bb_buf_free(&b);
}

static void
test_resync_finds_the_next_record(void)
{
	struct bb_envelope env;
	struct bb_buf b;

	envelope(&env, ID1, "t");
	bb_buf_init(&b);
	bb_buf_puts(&b, "garbage");
	size_t second = b.len;
	bb_spoolrec_encode(&b, &env, "{}", 2, false, NULL, 1);
	CU_ASSERT_EQUAL(bb_spoolrec_resync((uint8_t *)b.data, b.len), second);
	CU_ASSERT_EQUAL(bb_spoolrec_resync((uint8_t *)b.data + second,
	    b.len - second), b.len - second);
	bb_buf_free(&b);
}

/* ------------------------------------------------ segment files */

static char dir[64];

static void
fresh_dir(void)
{
	char cmd[128];

	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		CU_ASSERT_EQUAL(system(cmd), 0);
	}
	strcpy(dir, "/tmp/bb-spool-unit-XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
}

static char *
path_of(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static off_t
size_of(const char *name)
{
	struct stat st;

	return stat(path_of(name), &st) == 0 ? st.st_size : -1;
}

/* Spools the events ID1, ID2, ID3 (types a, b, c); returns their
 * records' offsets in segment-000. */
static void
spool_three(long max_bytes, off_t at[4])
{
	struct bb_spool *s = bb_spool_new(dir, max_bytes);
	const char *ids[] = { ID1, ID2, ID3 }, *types[] = { "a", "b", "c" };
	struct bb_envelope env;
	uint64_t t = 0;

	at[0] = 0;
	for (int k = 0; k < 3; k++) {
		envelope(&env, ids[k], types[k]);
		t = bb_spool_append(s, &env, "{\"n\":1}", 7, false, NULL);
		CU_ASSERT(t > 0);
		at[k + 1] = size_of("segment-000");
	}
	CU_ASSERT_EQUAL(bb_spool_sync(s, t), 0);
	bb_spool_free(s);
}

/* The types the spool hands out, in order, each forwarded. */
static void
forward_all(struct bb_spool *s, char *types, size_t len)
{
	struct bb_spool_entry *e;
	size_t n = 0;

	while ((e = bb_spool_next(s)) != NULL && n + 1 < len) {
		types[n++] = e->event.env.event_type[0];
		bb_spool_done(s, e, BB_SPOOL_FORWARDED);
	}
	types[n] = '\0';
}

static void
test_forwarded_segment_is_emptied(void)
{
	off_t at[4];
	char types[8];

	fresh_dir();
	spool_three(1 << 20, at);
	CU_ASSERT_EQUAL(size_of("segment-000"), at[3]);
	struct bb_spool *s = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(s);
	CU_ASSERT(bb_spool_waiting(s));
	forward_all(s, types, sizeof(types));
	CU_ASSERT_STRING_EQUAL(types, "abc");
	CU_ASSERT(!bb_spool_waiting(s));
	CU_ASSERT_EQUAL(size_of("segment-000"), 0);
	bb_spool_free(s);
}

static void
flip_byte(off_t where)
{
	int fd = open(path_of("segment-000"), O_RDWR);
	uint8_t c;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pread(fd, &c, 1, where), 1);
	c ^= 0x55;
	CU_ASSERT_EQUAL(pwrite(fd, &c, 1, where), 1);
	close(fd);
}

static int
count_aside(void)
{
	char cmd[160];
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls %s/aside | wc -l", dir);
	FILE *p = popen(cmd, "r");
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

static void
test_torn_tail_is_cut_off(void)
{
	off_t at[4];
	char types[8];

	fresh_dir();
	spool_three(1 << 20, at);
	/* the third record half written, as by a crash before its fsync */
	CU_ASSERT_EQUAL(truncate(path_of("segment-000"), at[2] + 40), 0);
	struct bb_spool *s = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(s);
	CU_ASSERT_EQUAL(size_of("segment-000"), at[2]);
	forward_all(s, types, sizeof(types));
	CU_ASSERT_STRING_EQUAL(types, "ab");
	bb_spool_free(s);

	/* the last record's head damaged: not torn (a torn append keeps its
	 * head) but damaged, so set aside before it is cut off */
	fresh_dir();
	spool_three(1 << 20, at);
	flip_byte(at[2] + 9);
	s = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(s);
	CU_ASSERT_EQUAL(size_of("segment-000"), at[2]);
	CU_ASSERT_EQUAL(count_aside(), 1);
	forward_all(s, types, sizeof(types));
	CU_ASSERT_STRING_EQUAL(types, "ab");
	bb_spool_free(s);

	/* a head cut short is a torn tail too */
	fresh_dir();
	spool_three(1 << 20, at);
	CU_ASSERT_EQUAL(truncate(path_of("segment-000"), at[2] + 5), 0);
	s = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(s);
	CU_ASSERT_EQUAL(size_of("segment-000"), at[2]);
	bb_spool_free(s);
}

static void
test_damaged_record_is_set_aside_and_the_others_forwarded(void)
{
	off_t at[4];
	char types[8];

	/* a bad body checksum in the middle */
	fresh_dir();
	spool_three(1 << 20, at);
	flip_byte(at[2] - 3);
	struct bb_spool *s = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(s);
	forward_all(s, types, sizeof(types));
	CU_ASSERT_STRING_EQUAL(types, "ac");
	CU_ASSERT_EQUAL(count_aside(), 1);
	bb_spool_free(s);

	/* a damaged head in the middle: its record cannot even be measured */
	fresh_dir();
	spool_three(1 << 20, at);
	flip_byte(at[1] + 9);
	s = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(s);
	forward_all(s, types, sizeof(types));
	CU_ASSERT_STRING_EQUAL(types, "ac");
	CU_ASSERT_EQUAL(count_aside(), 1);
	bb_spool_free(s);
}

static void
test_damage_is_set_aside_once(void)
{
	off_t at[4];
	char types[8];

	fresh_dir();
	spool_three(1 << 20, at);
	flip_byte(at[1] + 9);
	flip_byte(at[3] - 3);
	/* the first look sets both aside but forwards nothing */
	struct bb_spool *s = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(s);
	bb_spool_free(s);
	s = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(s);
	forward_all(s, types, sizeof(types));
	CU_ASSERT_STRING_EQUAL(types, "a");
	CU_ASSERT_EQUAL(count_aside(), 2);
	bb_spool_free(s);
}

static void
test_a_live_workers_segment_is_adopted_only_once_it_dies(void)
{
	struct bb_envelope env;
	char types[8];

	fresh_dir();
	struct bb_spool *owner = bb_spool_new(dir, 1 << 20);
	envelope(&env, ID1, "a");
	uint64_t t = bb_spool_append(owner, &env, "{}", 2, false, NULL);
	CU_ASSERT_EQUAL(bb_spool_sync(owner, t), 0);

	usleep(5000);		/* b is spooled a few milliseconds later */
	struct bb_spool *other = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(other);	/* the lock is the owner's */
	CU_ASSERT(!bb_spool_waiting(other));
	/* the other appends into a segment of its own */
	envelope(&env, ID2, "b");
	t = bb_spool_append(other, &env, "{}", 2, false, NULL);
	CU_ASSERT_EQUAL(bb_spool_sync(other, t), 0);
	CU_ASSERT(size_of("segment-001") > 0);

	bb_spool_free(owner);	/* its lock goes with it */
	bb_spool_adopt(other);
	forward_all(other, types, sizeof(types));
	CU_ASSERT_STRING_EQUAL(types, "ab");	/* oldest first */
	CU_ASSERT_EQUAL(size_of("segment-000"), 0);
	CU_ASSERT_EQUAL(size_of("segment-001"), 0);
	bb_spool_free(other);
}

static void
test_unforwarded_event_is_handed_out_again_in_its_turn(void)
{
	off_t at[4];
	struct bb_spool_entry *a, *b, *e;

	fresh_dir();
	spool_three(1 << 20, at);
	struct bb_spool *s = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(s);
	a = bb_spool_next(s);
	b = bb_spool_next(s);
	CU_ASSERT_FATAL(a && b);
	CU_ASSERT_EQUAL(a->event.env.event_type[0], 'a');
	bb_spool_done(s, a, BB_SPOOL_WAITS);
	/* a again, then c: b is still in flight */
	e = bb_spool_next(s);
	CU_ASSERT_FATAL(e != NULL);
	CU_ASSERT_EQUAL(e->event.env.event_type[0], 'a');
	bb_spool_done(s, e, BB_SPOOL_FORWARDED);
	e = bb_spool_next(s);
	CU_ASSERT_FATAL(e != NULL);
	CU_ASSERT_EQUAL(e->event.env.event_type[0], 'c');
	bb_spool_done(s, e, BB_SPOOL_FORWARDED);
	CU_ASSERT_PTR_NULL(bb_spool_next(s));
	CU_ASSERT(size_of("segment-000") > 0);	/* b is not forwarded yet */
	bb_spool_done(s, b, BB_SPOOL_FORWARDED);
	CU_ASSERT_EQUAL(size_of("segment-000"), 0);
	bb_spool_free(s);
}

static void
test_a_record_the_broker_keeps_refusing_is_set_aside(void)
{
	off_t at[4];
	struct bb_spool_entry *e;

	fresh_dir();
	spool_three(1 << 20, at);
	struct bb_spool *s = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(s);
	/* unavailable: it waits, however often */
	for (int k = 0; k < 8; k++) {
		e = bb_spool_next(s);
		CU_ASSERT_FATAL(e != NULL);
		CU_ASSERT_EQUAL(e->event.env.event_type[0], 'a');
		bb_spool_done(s, e, BB_SPOOL_WAITS);
	}
	/* refused five times in a row: set aside */
	for (int k = 0; k < 5; k++) {
		e = bb_spool_next(s);
		CU_ASSERT_FATAL(e != NULL);
		CU_ASSERT_EQUAL(e->event.env.event_type[0], 'a');
		bb_spool_done(s, e, BB_SPOOL_REFUSED);
	}
	CU_ASSERT_EQUAL(count_aside(), 1);
	e = bb_spool_next(s);
	CU_ASSERT_FATAL(e != NULL);
	CU_ASSERT_EQUAL(e->event.env.event_type[0], 'b');
	bb_spool_done(s, e, BB_SPOOL_FORWARDED);
	bb_spool_free(s);
}

static void
test_bound_and_unusable_directory_refuse(void)
{
	struct bb_envelope env;
	off_t at[4];

	fresh_dir();
	spool_three(1 << 20, at);
	/* the pool's bound counts every segment, this worker's or not */
	struct bb_spool *s = bb_spool_new(dir, (long)at[3] + 10);
	envelope(&env, ID1, "d");
	CU_ASSERT_EQUAL(bb_spool_append(s, &env, "{}", 2, false, NULL), 0);
	bb_spool_free(s);

	/* an event too large for a record */
	s = bb_spool_new(dir, 1L << 30);
	size_t big = BB_SPOOLREC_MAX_BODY + 1;
	char *json = malloc(big);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	memset(json, ' ', big);
	CU_ASSERT_EQUAL(bb_spool_append(s, &env, json, big, false, NULL), 0);
	free(json);
	bb_spool_free(s);

	s = bb_spool_new("/nonexistent/bloodbank-spool", 1 << 20);
	CU_ASSERT_EQUAL(bb_spool_append(s, &env, "{}", 2, false, NULL), 0);
	bb_spool_free(s);
	CU_ASSERT_PTR_NULL(bb_spool_new("", 1 << 20));
}

static void
test_census_counts_without_locking(void)
{
	struct bb_spool_census c;
	off_t at[4];
	char err[128];

	fresh_dir();
	spool_three(1 << 20, at);
	flip_byte(at[2] - 3);
	struct bb_spool *s = bb_spool_new(dir, 1 << 20);
	bb_spool_adopt(s);	/* sets the damaged one aside */
	CU_ASSERT_EQUAL_FATAL(bb_spool_census(dir, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.events, 2);
	CU_ASSERT_EQUAL(c.bytes, at[3]);
	CU_ASSERT_EQUAL(c.segments, 1);
	CU_ASSERT_EQUAL(c.unowned, 0);
	CU_ASSERT_EQUAL(c.aside, 1);
	CU_ASSERT(c.oldest_ms > 0);
	bb_spool_free(s);
	CU_ASSERT_EQUAL_FATAL(bb_spool_census(dir, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.unowned, 1);
	CU_ASSERT_EQUAL(bb_spool_census("/nonexistent", &c, err, sizeof(err)),
	    -1);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	dir[0] = '\0';
}

void
add_spoolrec_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "record round trip", test_record_round_trip },
		{ "checksums catch damage but not a new state",
		    test_checksums_catch_damage_but_not_a_new_state },
		{ "resync finds the next record",
		    test_resync_finds_the_next_record },
		{ "forwarded segment is emptied",
		    test_forwarded_segment_is_emptied },
		{ "torn tail is cut off", test_torn_tail_is_cut_off },
		{ "damaged record is set aside and the others forwarded",
		    test_damaged_record_is_set_aside_and_the_others_forwarded },
		{ "damage is set aside once", test_damage_is_set_aside_once },
		{ "a live worker's segment is adopted only once it dies",
		    test_a_live_workers_segment_is_adopted_only_once_it_dies },
		{ "unforwarded event is handed out again in its turn",
		    test_unforwarded_event_is_handed_out_again_in_its_turn },
		{ "a record the broker keeps refusing is set aside",
		    test_a_record_the_broker_keeps_refusing_is_set_aside },
		{ "bound and unusable directory refuse",
		    test_bound_and_unusable_directory_refuse },
		{ "census counts without locking",
		    test_census_counts_without_locking },
		CU_TEST_INFO_NULL,
	};
	add_suite("spool", tests);
}
