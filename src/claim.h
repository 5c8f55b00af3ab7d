/* claim: the value of an idempotency claim in Redis (CONTRACT §5, §7), kept
 * under "bloodbank:i:" + the 16 bytes of the event id. Pure encoding and
 * decoding; the tracker does the I/O.
 *   'P' hash(32) nonce(16)   -- pending: a request is publishing the event
 *   'D' hash(32) envelope    -- done: published; the envelope for replays,
 *                               or nothing when it was larger than
 *                               IDEMPOTENCY_MAX_STORED_BYTES
 *   'S' hash(32) envelope    -- spooled (CONTRACT §12): answered 202, to be
 *                               published; 'D' once the broker confirms
 * hash is the SHA-256 of what makes two requests the same (the body); the
 * nonce is random per request, so that only the request that set a pending
 * claim matches it when it releases the claim or marks it done. A pending
 * claim of earlier builds ('P' hash, no nonce) reads the same. */
#ifndef BB_CLAIM_H
#define BB_CLAIM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define BB_BODY_HASH_LEN 32	/* SHA-256 */
#define BB_CLAIM_NONCE_LEN 16
#define BB_CLAIM_PENDING_LEN (1 + BB_BODY_HASH_LEN + BB_CLAIM_NONCE_LEN)

enum bb_claim {
	BB_CLAIM_NEW,		/* ours to publish */
	BB_CLAIM_IN_FLIGHT,	/* the same key is being published now */
	BB_CLAIM_REPLAY,	/* published before; the envelope is returned */
	BB_CLAIM_MISMATCH,	/* the same key with a different body */
	BB_CLAIM_UNAVAILABLE,	/* no Redis: publish, with the same id */
	BB_CLAIM_SPOOLED,	/* spooled before; the envelope is returned */
};

#define BB_CLAIM_SPOOLED_TAG 'S'

/* Writes the pending value out[BB_CLAIM_PENDING_LEN]. */
void bb_claim_pending(uint8_t *out, const uint8_t *hash, const uint8_t *nonce);

/* Appends to out the done value that follows the pending value `pending`;
 * an empty envelope keeps the hash alone. */
void bb_claim_done(struct bb_buf *out, const uint8_t *pending,
    const char *envelope, size_t envelope_len);
/* The same for the spooled value. */
void bb_claim_spooled(struct bb_buf *out, const uint8_t *pending,
    const char *envelope, size_t envelope_len);

/* Reads a claim value that a request whose body has `hash` found in Redis:
 * BB_CLAIM_MISMATCH, BB_CLAIM_IN_FLIGHT, or BB_CLAIM_REPLAY or
 * BB_CLAIM_SPOOLED with the envelope from val + *envelope_at to the end (empty when it was not kept).
 * Returns -1 when val is no claim value. */
int bb_claim_read(const char *val, size_t len, const uint8_t *hash,
    enum bb_claim *out, size_t *envelope_at);

#endif
