/* tracker: correlation records and idempotency claims in Redis (CONTRACT
 * §5, §7), over one persistent hiredis connection per worker. Every call is
 * bounded by REDIS_TIMEOUT_MS; when Redis is down the tracker says so at
 * once and retries the connection later, with backoff. */
#ifndef BB_TRACKER_H
#define BB_TRACKER_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "correlation.h"
#include "envelope.h"
#include "record.h"

#define BB_BODY_HASH_LEN 32	/* SHA-256 */

struct bb_tracker;

enum bb_claim {
	BB_CLAIM_NEW,		/* ours to publish */
	BB_CLAIM_IN_FLIGHT,	/* the same key is being published now */
	BB_CLAIM_REPLAY,	/* published before; the envelope is returned */
	BB_CLAIM_MISMATCH,	/* the same key with a different body */
	BB_CLAIM_UNAVAILABLE,	/* no Redis: publish, with the same id */
};

/* claim_ms: how long an idempotency claim may stay pending -- longer than
 * any publish can take. */
struct bb_tracker *bb_tracker_new(const struct bb_config *cfg,
    long long claim_ms);
void bb_tracker_free(struct bb_tracker *t);

bool bb_tracker_enabled(const struct bb_tracker *t);
/* Connects if need be (and if the backoff allows) and pings. */
bool bb_tracker_healthy(struct bb_tracker *t);

/* Records a confirmed event: its metadata, and it as a child of each
 * parent, with the TTL on every key -- one MULTI/EXEC transaction. With
 * body_hash, also marks its idempotency claim as done, keeping the
 * envelope for replays. The commands are sent at once and their replies
 * read later by bb_tracker_settle, so that the round trip overlaps other
 * work; a failure is logged then. Every other call settles first. */
void bb_tracker_record(struct bb_tracker *t,
    const struct bb_envelope *env, const char *envelope, size_t envelope_len,
    const uint8_t *body_hash);

/* Reads the replies of the last record, within REDIS_TIMEOUT_MS. */
void bb_tracker_settle(struct bb_tracker *t);

/* Claims an idempotent event id before publishing it. On REPLAY the
 * original envelope is put in original. */
enum bb_claim bb_tracker_claim(struct bb_tracker *t, const char *event_id,
    const uint8_t *body_hash, struct bb_buf *original);
/* Gives a claim up after a failed publish, so that a retry may publish. */
void bb_tracker_release(struct bb_tracker *t, const char *event_id);

/* The store behind bb_walk (a bb_fetch_fn over a struct bb_tracker). */
int bb_tracker_fetch(void *tracker, const bb_id *ids, int n,
    bb_fetch_each each, void *walk);

#endif
