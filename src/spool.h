/* spool: the pool's durable spool under SPOOL_DIR (CONTRACT §12).
 *
 * SPOOL_DIR holds segment files, segment-000, segment-001, ..., each a
 * sequence of spoolrec.h records. A worker writes into one segment, the
 * lowest-numbered one it can lock (an OFD write lock on the whole file,
 * held for the worker's life), and is its only writer and forwarder. The
 * kernel drops the lock when the worker dies; the next worker to look
 * (once a second, and any worker that starts) locks the segment too and
 * forwards what it holds: a segment is never left without a live owner
 * for longer than that, whether lighttpd or the master spawned the pool.
 *
 * A record is waiting ('S') from its append; once the broker confirms it,
 * its state byte becomes 'F'; a segment whose records are all forwarded
 * is truncated to nothing. An append is answered only after the fsync
 * that covers it (bb_spool_sync, one for every append since the last), so
 * a crash can tear only records that were never answered: found when the
 * segment is next locked, the torn tail is cut off. A record whose
 * checksum fails is copied into SPOOL_DIR/aside/ and marked 'A' (set
 * aside); the records around it are forwarded. */
#ifndef BB_SPOOL_H
#define BB_SPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "spoolrec.h"

#define BB_SPOOL_WINDOW 64	/* spooled events in flight per worker */

struct bb_spool;

/* One spooled event handed out for forwarding: its whole record in buf,
 * the decoded event pointing into it. */
struct bb_spool_entry {
	struct bb_spooled event;
	int64_t spooled_ms;
	struct bb_buf buf;
	int segment;		/* the segment's number */
	int64_t offset;		/* the record's offset in it */
	bool busy;
};

/* The spool at dir (nothing is touched until it is used); NULL when dir
 * is empty. */
struct bb_spool *bb_spool_new(const char *dir, long max_bytes);
void bb_spool_free(struct bb_spool *s);

/* Appends an event (see spoolrec.h for what hash is). Returns the ticket
 * that bb_spool_sync takes, or 0 when it cannot be spooled: the pool's
 * spool would pass SPOOL_MAX_BYTES, or the directory or the disk failed
 * (logged at most once a minute). */
uint64_t bb_spool_append(struct bb_spool *s, const struct bb_envelope *env,
    const char *json, size_t json_len, bool cloudevents,
    const uint8_t *hash);
/* Makes the append of ticket durable, with one fsync for it and every
 * append before it. -1 when that fsync failed: then every append since
 * the last good one was cut off again, and none of them may be answered
 * as spooled. */
int bb_spool_sync(struct bb_spool *s, uint64_t ticket);
/* True when appends wait for their fsync. */
bool bb_spool_unsynced(const struct bb_spool *s);

/* Locks the segments of dead workers (and of earlier runs) and counts what
 * they hold: a look at the directory when there are none. */
void bb_spool_adopt(struct bb_spool *s);

/* True when events wait to be handed out. */
bool bb_spool_waiting(const struct bb_spool *s);
/* The oldest waiting event not yet handed out, in an entry of the spool's
 * own (at most BB_SPOOL_WINDOW at once); NULL when there is none. */
struct bb_spool_entry *bb_spool_next(struct bb_spool *s);
/* An entry's end: forwarded (confirmed: it leaves the spool); or it
 * waits, and is handed out again in its turn -- after the broker was
 * unavailable, or after the broker refused it (a nack, no confirm), which
 * five times in a row sets the record aside. */
enum bb_spool_outcome {
	BB_SPOOL_FORWARDED,
	BB_SPOOL_WAITS,
	BB_SPOOL_REFUSED,
};
void bb_spool_done(struct bb_spool *s, struct bb_spool_entry *e,
    enum bb_spool_outcome outcome);

/* What a spool directory holds, read without locking (for `doctor`). */
struct bb_spool_census {
	long events;		/* waiting */
	long long bytes;	/* the segments' sizes */
	int64_t oldest_ms;	/* the oldest waiting event's; 0: none */
	int segments;		/* files holding records */
	int unowned;		/* of them, locked by no live worker */
	long aside;		/* records in aside/ */
};
int bb_spool_census(const char *dir, struct bb_spool_census *out,
    char *err, size_t errlen);

#endif
