/* envelope: the published document (CONTRACT §3), written once, byte for
 * byte what the consumer receives and what the client gets back. */
#ifndef BB_ENVELOPE_H
#define BB_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "uuid.h"

#define BB_ENVELOPE_VERSION "2.0.0"
#define BB_MAX_PARENTS 32
#define BB_TIMESTAMP_LEN 32	/* 2026-11-26T21:28:51.123456+00:00 */

struct bb_envelope {
	char event_id[BB_UUID_STRLEN + 1];
	char event_type[256];
	char timestamp[BB_TIMESTAMP_LEN + 1];
	int64_t unix_us;		/* the same instant, in microseconds */
	const char *source_host;
	const char *source_type;	/* "manual" or "hook" */
	const char *source_app;		/* "http" or the webhook's name */
	const char *source_meta;	/* compact JSON object; NULL means {} */
	char parents[BB_MAX_PARENTS][BB_UUID_STRLEN + 1];
	int nparents;
	const char *agent_context;	/* compact JSON; NULL means null */
	const char *payload;		/* compact JSON; NULL: an event
					 * without data (a CloudEvent's) */
	size_t payload_len;
	const char *traceparent;	/* NULL when the request had none */
	const char *tracestate;
	/* A CloudEvent input's attributes kept as sent (JSON object members,
	 * §9.3), and its data when that is not JSON (base64); NULL for other
	 * inputs. */
	const char *ce_kept;
	const char *data_base64;
};

/* Stamps env with the time now, in both forms. */
void bb_envelope_stamp(struct bb_envelope *env, const struct timespec *now);

/* Formats unix microseconds as the envelope does: UTC, six fractional
 * digits, +00:00, into out[BB_TIMESTAMP_LEN + 1]. */
void bb_timestamp_format(int64_t unix_us, char *out);

/* Adds a parent id (lowercased) unless already present; -1 when full. */
int bb_envelope_add_parent(struct bb_envelope *env, const char *uuid);

/* The envelope of §3 (ENVELOPE_FORMAT=bloodbank). */
void bb_envelope_write(const struct bb_envelope *env, struct bb_buf *out);
/* The same event as one structured CloudEvent (§9.3,
 * ENVELOPE_FORMAT=cloudevents). */
void bb_envelope_write_cloudevent(const struct bb_envelope *env,
    struct bb_buf *out);

#endif
