/* frames: the AMQP 0-9-1 frames Bloodbank writes itself (§2.3.5, §4.2.3)
 * -- basic.publish with its content header and body frames, or one method
 * alone -- encoded with librabbitmq's exported encoders into one run of
 * bytes, for one write. No I/O. */
#ifndef BB_FRAMES_H
#define BB_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <amqp.h>

#include "buf.h"

struct bb_message {
	const char *routing_key;
	const char *body;
	size_t body_len;
	const char *message_id;
	const char *content_type;	/* NULL: application/json */
	const char *correlation_id;	/* NULL for none */
	const char *type;
	time_t timestamp;
	const char *traceparent;	/* NULL for none */
	const char *tracestate;
};

/* Replaces out's contents with basic.publish (mandatory) of msg to
 * exchange, its content header (CONTRACT §6 properties) and its body in
 * frames of at most frame_max bytes. Returns 0, or a negative
 * amqp_status_enum. */
int bb_frames_publish(struct bb_buf *out, amqp_channel_t channel,
    uint32_t frame_max, const char *exchange, const struct bb_message *msg);

/* Replaces out's contents with one method frame. */
int bb_frames_method(struct bb_buf *out, amqp_channel_t channel,
    amqp_method_number_t id, void *decoded);

#endif
