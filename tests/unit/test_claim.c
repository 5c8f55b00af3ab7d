#include <string.h>

#include "claim.h"
#include "tests.h"

static void
fill(uint8_t *p, size_t n, uint8_t first)
{
	for (size_t k = 0; k < n; k++)
		p[k] = (uint8_t)(first + k);
}

static void
test_pending_value_is_tag_hash_nonce(void)
{
	uint8_t hash[BB_BODY_HASH_LEN], nonce[BB_CLAIM_NONCE_LEN];
	uint8_t v[BB_CLAIM_PENDING_LEN];

	fill(hash, sizeof(hash), 1);
	fill(nonce, sizeof(nonce), 100);
	bb_claim_pending(v, hash, nonce);
	CU_ASSERT_EQUAL(BB_CLAIM_PENDING_LEN, 49);
	CU_ASSERT_EQUAL(v[0], 'P');
	CU_ASSERT(memcmp(v + 1, hash, sizeof(hash)) == 0);
	CU_ASSERT(memcmp(v + 33, nonce, sizeof(nonce)) == 0);
}

static void
test_done_value_keeps_hash_and_envelope(void)
{
	uint8_t hash[BB_BODY_HASH_LEN], nonce[BB_CLAIM_NONCE_LEN];
	uint8_t v[BB_CLAIM_PENDING_LEN];
	struct bb_buf done;

	fill(hash, sizeof(hash), 1);
	fill(nonce, sizeof(nonce), 100);
	bb_claim_pending(v, hash, nonce);
	bb_buf_init(&done);
	bb_claim_done(&done, v, "{\"e\":1}", 7);
	CU_ASSERT_EQUAL_FATAL(done.len, 1 + BB_BODY_HASH_LEN + 7);
	CU_ASSERT_EQUAL(done.data[0], 'D');
	CU_ASSERT(memcmp(done.data + 1, hash, sizeof(hash)) == 0);
	CU_ASSERT(memcmp(done.data + 33, "{\"e\":1}", 7) == 0);
	bb_buf_free(&done);
}

/* Another request's pending claim: its nonce differs, only the body counts. */
static void
test_pending_claim_of_same_body_is_in_flight_whatever_its_nonce(void)
{
	uint8_t hash[BB_BODY_HASH_LEN], nonce[BB_CLAIM_NONCE_LEN];
	uint8_t v[BB_CLAIM_PENDING_LEN];
	enum bb_claim c;
	size_t at;

	fill(hash, sizeof(hash), 1);
	fill(nonce, sizeof(nonce), 200);
	bb_claim_pending(v, hash, nonce);
	CU_ASSERT_EQUAL(bb_claim_read((char *)v, sizeof(v), hash, &c, &at), 0);
	CU_ASSERT_EQUAL(c, BB_CLAIM_IN_FLIGHT);
	/* written by an earlier build: no nonce */
	CU_ASSERT_EQUAL(bb_claim_read((char *)v, 33, hash, &c, &at), 0);
	CU_ASSERT_EQUAL(c, BB_CLAIM_IN_FLIGHT);
}

static void
test_other_body_is_a_mismatch_pending_or_done(void)
{
	uint8_t hash[BB_BODY_HASH_LEN], other[BB_BODY_HASH_LEN];
	uint8_t nonce[BB_CLAIM_NONCE_LEN], v[BB_CLAIM_PENDING_LEN];
	struct bb_buf done;
	enum bb_claim c;
	size_t at;

	fill(hash, sizeof(hash), 1);
	fill(other, sizeof(other), 2);
	fill(nonce, sizeof(nonce), 0);
	bb_claim_pending(v, other, nonce);
	CU_ASSERT_EQUAL(bb_claim_read((char *)v, sizeof(v), hash, &c, &at), 0);
	CU_ASSERT_EQUAL(c, BB_CLAIM_MISMATCH);
	bb_buf_init(&done);
	bb_claim_done(&done, v, "{}", 2);
	CU_ASSERT_EQUAL(bb_claim_read(done.data, done.len, hash, &c, &at), 0);
	CU_ASSERT_EQUAL(c, BB_CLAIM_MISMATCH);
	bb_buf_free(&done);
}

static void
test_done_claim_of_same_body_replays_its_envelope(void)
{
	uint8_t hash[BB_BODY_HASH_LEN], nonce[BB_CLAIM_NONCE_LEN];
	uint8_t v[BB_CLAIM_PENDING_LEN];
	struct bb_buf done;
	enum bb_claim c;
	size_t at;

	fill(hash, sizeof(hash), 1);
	fill(nonce, sizeof(nonce), 0);
	bb_claim_pending(v, hash, nonce);
	bb_buf_init(&done);
	bb_claim_done(&done, v, "{\"e\":1}", 7);
	CU_ASSERT_EQUAL(bb_claim_read(done.data, done.len, hash, &c, &at), 0);
	CU_ASSERT_EQUAL(c, BB_CLAIM_REPLAY);
	CU_ASSERT_EQUAL(done.len - at, 7);
	CU_ASSERT(memcmp(done.data + at, "{\"e\":1}", 7) == 0);
	bb_buf_free(&done);
}

static void
test_short_or_unknown_value_is_no_claim(void)
{
	uint8_t hash[BB_BODY_HASH_LEN], nonce[BB_CLAIM_NONCE_LEN];
	uint8_t v[BB_CLAIM_PENDING_LEN];
	enum bb_claim c;
	size_t at;

	fill(hash, sizeof(hash), 1);
	fill(nonce, sizeof(nonce), 0);
	bb_claim_pending(v, hash, nonce);
	CU_ASSERT_EQUAL(bb_claim_read((char *)v, 32, hash, &c, &at), -1);
	CU_ASSERT_EQUAL(bb_claim_read("", 0, hash, &c, &at), -1);
	v[0] = 'X';
	CU_ASSERT_EQUAL(bb_claim_read((char *)v, sizeof(v), hash, &c, &at), -1);
}

static void
test_spooled_claim_replays_its_envelope_until_done(void)
{
	uint8_t hash[BB_BODY_HASH_LEN], other[BB_BODY_HASH_LEN];
	uint8_t nonce[BB_CLAIM_NONCE_LEN], v[BB_CLAIM_PENDING_LEN];
	struct bb_buf spooled;
	enum bb_claim c;
	size_t at;

	fill(hash, sizeof(hash), 1);
	fill(other, sizeof(other), 2);
	fill(nonce, sizeof(nonce), 100);
	bb_claim_pending(v, hash, nonce);
	bb_buf_init(&spooled);
	bb_claim_spooled(&spooled, v, "{\"e\":1}", 7);
	CU_ASSERT_EQUAL(spooled.data[0], 'S');
	CU_ASSERT_EQUAL_FATAL(bb_claim_read(spooled.data, spooled.len, hash, &c,
	    &at), 0);
	CU_ASSERT_EQUAL(c, BB_CLAIM_SPOOLED);
	CU_ASSERT_EQUAL(spooled.len - at, 7);
	CU_ASSERT(memcmp(spooled.data + at, "{\"e\":1}", 7) == 0);
	CU_ASSERT_EQUAL_FATAL(bb_claim_read(spooled.data, spooled.len, other,
	    &c, &at), 0);
	CU_ASSERT_EQUAL(c, BB_CLAIM_MISMATCH);
	bb_buf_free(&spooled);
}

void
add_claim_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "pending value is tag, hash, nonce",
		    test_pending_value_is_tag_hash_nonce },
		{ "done value keeps hash and envelope",
		    test_done_value_keeps_hash_and_envelope },
		{ "pending claim of the same body is in flight whatever its nonce",
		    test_pending_claim_of_same_body_is_in_flight_whatever_its_nonce },
		{ "other body is a mismatch, pending or done",
		    test_other_body_is_a_mismatch_pending_or_done },
		{ "done claim of the same body replays its envelope",
		    test_done_claim_of_same_body_replays_its_envelope },
		{ "short or unknown value is no claim",
		    test_short_or_unknown_value_is_no_claim },
		{ "spooled claim replays its envelope until done",
		    test_spooled_claim_replays_its_envelope_until_done },
		CU_TEST_INFO_NULL,
	};
	add_suite("claim", tests);
}
