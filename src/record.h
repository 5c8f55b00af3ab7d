/* record: the layout of correlation records in Redis (README, "Key
 * layout"). Pure encoding and decoding; the tracker does the I/O.
 *
 * One key per event, "bloodbank:" + the 16 bytes of its id. Its value is a
 * sequence of entries, each appended so that writers never overwrite each
 * other:
 *   'M' ts(8, big-endian unix microseconds) n(1) parents(16 * n)
 *       typelen(1) type(typelen)       -- the event's metadata
 *   'C' child(16)                      -- one child of the event
 * and, first of all once the event has a child, the count of its 'C'
 * entries, kept in place by the tracker's script that appends them, so
 * that a parent holds at most CORRELATION_MAX_CHILDREN of them (CONTRACT §7):
 *   'N' n(4, big-endian)               -- n children recorded
 *   'T' n(4, big-endian)               -- the same, and at least one more
 *                                         was not recorded (truncated)
 * Records written before the count existed start with 'M' or 'C'; the
 * script counts and prefixes them when it first adds a child.
 * An id with children but no 'M' entry is a parent this service never
 * published (or whose record expired). */
#ifndef BB_RECORD_H
#define BB_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "envelope.h"

#define BB_RECORD_PREFIX "bloodbank:"
#define BB_RECORD_KEY_LEN (sizeof(BB_RECORD_PREFIX) - 1 + 16)

/* The entries' tags and sizes, as strings and numbers that C and the
 * tracker's Lua script both read (BB_STR makes a string of a number). */
#define BB_RECORD_META "M"
#define BB_RECORD_CHILD "C"
#define BB_RECORD_COUNTED "N"
#define BB_RECORD_CAPPED "T"
#define BB_RECORD_META_HEAD 10	/* tag, ts, n: the parents come next */
#define BB_RECORD_CHILD_LEN 17	/* tag, child */
#define BB_RECORD_COUNT_LEN 5	/* tag, n */
#define BB_STR_(x) #x
#define BB_STR(x) BB_STR_(x)

typedef uint8_t bb_id[16];

struct bb_record {
	bool has_meta;
	bool children_capped;	/* a child was not recorded ('T') */
	int64_t unix_us;
	char event_type[256];
	int nparents;
	bb_id parents[BB_MAX_PARENTS];
};

/* Writes the record key of id into out[BB_RECORD_KEY_LEN]. */
void bb_record_key(const bb_id id, char *out);

/* Text UUID <-> 16 bytes. bb_id_parse returns -1 on a malformed UUID. */
int bb_id_parse(const char *uuid, bb_id out);
void bb_id_format(const bb_id id, char *out);

/* The entry of an event's own metadata. */
void bb_record_meta(struct bb_buf *out, const struct bb_envelope *env);
/* The entry that makes child a child of the key's event. */
void bb_record_child(struct bb_buf *out, const bb_id child);

/* Decodes a value: the metadata into rec, the children's ids (16 bytes
 * each, in the order written) appended to children unless it is NULL.
 * Returns -1 when malformed. */
int bb_record_parse(const char *val, size_t len, struct bb_record *rec,
    struct bb_buf *children);

#endif
