/* correlation: walking the event graph that the records describe --
 * breadth-first, one batch of lookups per level, each id once, bounded in
 * depth and size. Pure: lookups go through a caller's fetch function (the
 * tracker's pipelined GETs in production, a table in the unit tests). */
#ifndef BB_CORRELATION_H
#define BB_CORRELATION_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "record.h"

#define BB_WALK_MAX_IDS 10000
#define BB_WALK_DEFAULT_DEPTH 100
#define BB_WALK_MAX_DEPTH 1000

enum bb_direction { BB_ANCESTORS, BB_DESCENDANTS };

/* Called once per fetched id with its record's value (NULL when absent). */
typedef void (*bb_fetch_each)(void *walk, int i, const char *val, size_t len);
/* Looks up the records of n ids in one batch; -1 when the store failed. */
typedef int (*bb_fetch_fn)(void *store, const bb_id *ids, int n,
    bb_fetch_each each, void *walk);

struct bb_walk_result {
	struct bb_buf ids;	/* 16 bytes per id, in the contract's order */
	size_t nearest;		/* how many ids are one step away */
	bool truncated;		/* stopped at BB_WALK_MAX_IDS */
	/* max_depth stopped the walk while the farthest events it reached
	 * had relations it did not follow. */
	bool depth_capped;
	/* Going down: an event whose children were read had more than
	 * CORRELATION_MAX_CHILDREN, so some are not in the result. */
	bool children_capped;
};

/* Walks from start: ancestors come out oldest first (the roots first, the
 * immediate parents last), descendants nearest first. start itself is never
 * in the result. Returns 0, or -1 when fetch failed. */
int bb_walk(bb_fetch_fn fetch, void *store, const bb_id start,
    enum bb_direction dir, int max_depth, struct bb_walk_result *out);

/* The keyed hash of the walk's set of ids seen (exposed for its tests):
 * with a random key, ids that differ anywhere hash apart. */
#define BB_ID_HASH_KEY 5
uint32_t bb_id_hash(const uint64_t key[BB_ID_HASH_KEY], const uint8_t *id);

/* Writes ids (16 bytes each) as a JSON array of UUID strings. */
void bb_write_id_array(struct bb_buf *out, const uint8_t *ids, size_t n);

#endif
