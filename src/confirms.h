/* confirms: the messages written on one AMQP channel and not yet
 * confirmed, in delivery-tag order, and what each basic.ack, basic.nack and
 * basic.return means for them (RabbitMQ publisher confirms). No I/O, so
 * that the matching is unit-tested. */
#ifndef BB_CONFIRMS_H
#define BB_CONFIRMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What happened to a message (CONTRACT §6). UNAVAILABLE and BLOCKED
 * promise that nothing was published; TIMEOUT does not know. */
enum bb_publish_result {
	BB_PUBLISH_PENDING,	/* written; its confirm has not come yet */
	BB_PUBLISH_OK,		/* confirmed */
	BB_PUBLISH_UNAVAILABLE,	/* nothing written: no connection, or a
				 * partly written message abandoned */
	BB_PUBLISH_BLOCKED,	/* nothing written: the broker blocks us */
	BB_PUBLISH_NACKED,	/* the broker refused it */
	BB_PUBLISH_TIMEOUT,	/* written; no confirm in time, or the
				 * connection closed or was blocked first */
	BB_PUBLISH_UNROUTABLE,	/* returned: no queue and no alternate */
};

/* One message in flight, owned by the caller from its publish to its
 * final result. */
struct bb_publish {
	enum bb_publish_result result;
	uint64_t tag;		/* delivery tag on the current channel */
	long long deadline;	/* monotonic ms: first byte + confirm timeout */
	bool returned;		/* a basic.return came for it */
	const char *message_id;
};

struct bb_confirm_slot;

struct bb_confirms {
	struct bb_confirm_slot *slots;	/* waiting: [head, len), tag order */
	size_t head, len, cap;
	uint64_t next_tag;	/* delivery tag of the next publish */
};

/* A channel just put in confirm mode: tags count from 1. */
void bb_confirms_init(struct bb_confirms *c);
void bb_confirms_free(struct bb_confirms *c);

/* p, just written, waits for its confirm; it gets the next tag. */
void bb_confirms_add(struct bb_confirms *c, struct bb_publish *p);
/* basic.ack (ack) or basic.nack: settles the message of `tag`, or with
 * `multiple` every one up to it. A tag not waiting any more (given up on)
 * is ignored. Returns -1 when the tag was never sent. */
int bb_confirms_settle(struct bb_confirms *c, uint64_t tag, bool multiple,
    bool ack);
/* basic.return of the message with this message_id: its ack will mean
 * "unroutable". Returns come in publish order, so of several messages with
 * one id it is the first not returned yet. */
void bb_confirms_returned(struct bb_confirms *c, const char *message_id,
    size_t len);
/* Gives p up: a confirm that comes for it later is ignored. */
void bb_confirms_forget(struct bb_confirms *c, struct bb_publish *p);
/* Every waiting message gets result and waits no more. */
void bb_confirms_settle_all(struct bb_confirms *c,
    enum bb_publish_result result);
bool bb_confirms_waiting(const struct bb_confirms *c);

#endif
