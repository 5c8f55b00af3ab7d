/* dot: an event's lineage as a Graphviz digraph (CONTRACT §4.8,
 * format=dot) -- one node per event labelled with its type and time, one
 * edge parent -> child, the start event highlighted. Pure: the caller
 * fetches the records. */
#ifndef BB_DOT_H
#define BB_DOT_H

#include <stddef.h>

#include "buf.h"
#include "record.h"

struct bb_dot {
	struct bb_buf *out;
	uint8_t *sorted;	/* the ids of the graph, for the edges */
	size_t n;
	bb_id start;
};

/* Starts the graph of start and the ids of its chain (16 bytes each). */
void bb_dot_begin(struct bb_dot *d, struct bb_buf *out, const bb_id start,
    const uint8_t *chain, size_t n);
/* One event: its node, and an edge from each of its parents in the graph.
 * rec is NULL for an id with no record of its own. */
void bb_dot_node(struct bb_dot *d, const bb_id id,
    const struct bb_record *rec);
void bb_dot_end(struct bb_dot *d);

#endif
