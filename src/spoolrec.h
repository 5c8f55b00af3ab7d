/* spoolrec: the records of a spool segment (CONTRACT §12; README, "The
 * spool"). Pure encoding and decoding; spool.c does the I/O.
 *
 * A segment is a sequence of records, each a 32-byte head and a body;
 * numbers are big-endian:
 *   magic(4) "BBsp"  state(1)  version(1) = 1  0(2)
 *   body length(4)  body crc32(4)  spooled at(8, unix ms)  0(4)
 *   head crc32(4)   -- of the 28 bytes before it, the state read as 'S'
 * state is 'S' while the event waits to be forwarded, 'F' once the broker
 * confirmed it and 'A' once it was set aside: the one byte rewritten in
 * place, which the checksums leave out.
 * The body is the event as it will be published and recorded:
 *   flags(1)  nparents(1)  unix_us(8)  event_id(36)
 *     (flags: 1 CloudEvents content type, 2 KEYED, 4 has a traceparent,
 *     8 has a tracestate -- present and empty is not absent)
 *   typelen(1) type  parents(36 * nparents)
 *   traceparent_len(2) traceparent  tracestate_len(2) tracestate
 *   [hash(32), when flags has KEYED: its idempotency claim's body hash]
 *   json_len(4) json   -- the published document, byte for byte */
#ifndef BB_SPOOLREC_H
#define BB_SPOOLREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "claim.h"
#include "envelope.h"

#define BB_SPOOLREC_HEAD 32
#define BB_SPOOLREC_STATE_AT 4	/* the state's offset in the head */
/* A record's body at most; a larger event is not spooled. */
#define BB_SPOOLREC_MAX_BODY (64u << 20)

enum bb_spoolrec_state {
	BB_SPOOLREC_WAITING = 'S',
	BB_SPOOLREC_FORWARDED = 'F',
	BB_SPOOLREC_ASIDE = 'A',
};

/* A spooled event, as decoded: its strings point into the body. */
struct bb_spooled {
	struct bb_envelope env;	/* id, type, time, parents, trace context */
	bool cloudevents;	/* published as application/cloudevents+json */
	bool keyed;		/* it holds an idempotency claim */
	uint8_t hash[BB_BODY_HASH_LEN];
	const char *json;
	size_t json_len;
	char traceparent[513], tracestate[513];
};

/* What a head says. */
struct bb_spoolrec_head {
	enum bb_spoolrec_state state;
	uint32_t body_len;
	uint32_t body_crc;
	int64_t spooled_ms;
};

/* Appends a whole record (head and body) of the event to out. hash is
 * NULL for an event without an idempotency claim. */
void bb_spoolrec_encode(struct bb_buf *out, const struct bb_envelope *env,
    const char *json, size_t json_len, bool cloudevents,
    const uint8_t *hash, int64_t spooled_ms);

/* Reads a head: -1 when the 32 bytes are not one (magic, version, head
 * checksum, state or length wrong). */
int bb_spoolrec_head(const uint8_t *p, struct bb_spoolrec_head *out);

/* Checks a body against its head and decodes it into out (pointing into
 * body, which must outlive it): -1 when the checksum or the layout is
 * wrong. */
int bb_spoolrec_body(const struct bb_spoolrec_head *h, const uint8_t *body,
    struct bb_spooled *out);

/* Where the next record head could start in p[0..len): the offset of the
 * next "BBsp" after the first byte, or len. For finding the records after
 * a damaged one. */
size_t bb_spoolrec_resync(const uint8_t *p, size_t len);

#endif
