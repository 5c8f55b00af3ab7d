/* tracker: correlation records and idempotency claims in Redis (CONTRACT
 * §5, §7), over one persistent hiredis connection per worker: to
 * REDIS_HOST/PORT, or with REDIS_SENTINELS to the master the Sentinels name,
 * asked again before every reconnect and checked with ROLE. Every call is
 * bounded by REDIS_TIMEOUT_MS (with Sentinels, each one asked too); when
 * Redis is down the tracker says so at once and retries the connection
 * later, with backoff. */
#ifndef BB_TRACKER_H
#define BB_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "claim.h"
#include "config.h"
#include "correlation.h"
#include "envelope.h"
#include "record.h"

struct bb_tracker;

/* An idempotency claim as the request that took it holds it: the pending
 * value it set, which alone releases the claim or marks it done. One per
 * request, owned by the caller. */
struct bb_claim_token {
	bool held;		/* taken (BB_CLAIM_NEW) and not yet given up */
	/* value is 'S' and the hash: the claim of a spooled event, which
	 * bb_tracker_record marks done when it is forwarded */
	bool spooled;
	uint8_t value[BB_CLAIM_PENDING_LEN];
};

/* claim_ms: how long an idempotency claim may stay pending -- longer than
 * any publish can take. */
struct bb_tracker *bb_tracker_new(const struct bb_config *cfg,
    long long claim_ms);
void bb_tracker_free(struct bb_tracker *t);

bool bb_tracker_enabled(const struct bb_tracker *t);
/* Connects if need be (and if the backoff allows) and pings, all within
 * budget_ms: a Sentinel or a Redis that hangs costs no more. */
bool bb_tracker_healthy(struct bb_tracker *t, int budget_ms);
/* Redis's used_memory_human (INFO memory) into out, for `doctor`. */
bool bb_tracker_used_memory(struct bb_tracker *t, char *out, size_t len);

/* Queues the record of a confirmed event: its metadata, and it as a child
 * of each parent, with the TTL on every key -- one script, run atomically.
 * With a held claim, also marks the claim done, keeping the envelope for
 * replays, unless another request holds the key by then. bb_tracker_flush
 * sends what is queued in one write; the replies are read later by
 * bb_tracker_settle, so that the round trip overlaps other work, and a
 * failure is logged then. Every other call settles first. */
void bb_tracker_record(struct bb_tracker *t,
    const struct bb_envelope *env, const char *envelope, size_t envelope_len,
    const struct bb_claim_token *claim);
void bb_tracker_flush(struct bb_tracker *t);

/* Sends what is queued and reads the replies of every record sent, within
 * REDIS_TIMEOUT_MS each. */
void bb_tracker_settle(struct bb_tracker *t);
/* For an idle worker: settles once replies have come, never waiting for
 * Redis, so that counters and failure logs do not wait for a next
 * request. */
void bb_tracker_idle(struct bb_tracker *t);

/* Claims an idempotent event id before publishing it; on NEW the claim is
 * held in *claim. On REPLAY the original envelope is put in original. */
enum bb_claim bb_tracker_claim(struct bb_tracker *t, const char *event_id,
    const uint8_t *body_hash, struct bb_buf *original,
    struct bb_claim_token *claim);
/* Gives a held claim up after a failed publish, so that a retry may
 * publish: deletes the key only if it still holds this claim's value. */
void bb_tracker_release(struct bb_tracker *t, const char *event_id,
    struct bb_claim_token *claim);

/* Turns a held claim into the spooled one of an event answered 202
 * (CONTRACT §12), with the envelope for replays, kept for the idempotency
 * window: a retry is answered 202 again, never spooled twice. */
void bb_tracker_spool(struct bb_tracker *t, const char *event_id,
    struct bb_claim_token *claim, const char *envelope, size_t envelope_len);

/* Child links this tracker did not record because their parent had
 * CORRELATION_MAX_CHILDREN children already (as of the last reply read). */
long bb_tracker_children_dropped(const struct bb_tracker *t);

/* The master's host and port from a Sentinel's reply to SENTINEL
 * get-master-addr-by-name; false for any other reply (a nil one when the
 * Sentinel does not know the master). */
struct redisReply;
bool bb_sentinel_master_addr(const struct redisReply *r, char *host,
    size_t hostlen, int *port);

/* The store behind bb_walk (a bb_fetch_fn over a struct bb_tracker). */
int bb_tracker_fetch(void *tracker, const bb_id *ids, int n,
    bb_fetch_each each, void *walk);

#endif
