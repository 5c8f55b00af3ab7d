#include "claim.h"

#include <string.h>

#define PENDING 'P'
#define DONE 'D'
#define HEAD_LEN (1 + BB_BODY_HASH_LEN)

void
bb_claim_pending(uint8_t *out, const uint8_t *hash, const uint8_t *nonce)
{
	out[0] = PENDING;
	memcpy(out + 1, hash, BB_BODY_HASH_LEN);
	memcpy(out + HEAD_LEN, nonce, BB_CLAIM_NONCE_LEN);
}

static void
settled(struct bb_buf *out, char tag, const uint8_t *pending,
    const char *envelope, size_t envelope_len)
{
	bb_buf_putc(out, tag);
	bb_buf_append(out, pending + 1, BB_BODY_HASH_LEN);
	bb_buf_append(out, envelope, envelope_len);
}

void
bb_claim_done(struct bb_buf *out, const uint8_t *pending,
    const char *envelope, size_t envelope_len)
{
	settled(out, DONE, pending, envelope, envelope_len);
}

void
bb_claim_spooled(struct bb_buf *out, const uint8_t *pending,
    const char *envelope, size_t envelope_len)
{
	settled(out, BB_CLAIM_SPOOLED_TAG, pending, envelope, envelope_len);
}

int
bb_claim_read(const char *val, size_t len, const uint8_t *hash,
    enum bb_claim *out, size_t *envelope_at)
{
	if (len < HEAD_LEN || (val[0] != PENDING && val[0] != DONE &&
	    val[0] != BB_CLAIM_SPOOLED_TAG))
		return -1;
	/* The body decides first: another body is refused whatever the state
	 * of the claim. */
	if (memcmp(val + 1, hash, BB_BODY_HASH_LEN) != 0)
		*out = BB_CLAIM_MISMATCH;
	else if (val[0] == DONE)
		*out = BB_CLAIM_REPLAY;
	else if (val[0] == BB_CLAIM_SPOOLED_TAG)
		*out = BB_CLAIM_SPOOLED;
	else
		*out = BB_CLAIM_IN_FLIGHT;
	*envelope_at = HEAD_LEN;
	return 0;
}
