/* dot: an event's lineage as a Graphviz digraph (CONTRACT §4.8,
 * format=dot) -- one node per event labelled with its type and time, one
 * edge parent -> child, the start event highlighted. Pure: the caller
 * fetches the records. */
#ifndef BB_DOT_H
#define BB_DOT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "record.h"

/* A dense lineage of BB_WALK_MAX_IDS events can have hundreds of
 * thousands of edges: the graph stops growing past this many bytes and
 * says so in a node of its own. */
#define BB_DOT_MAX_BYTES (1024 * 1024)

struct bb_dot {
	struct bb_buf *out;
	uint8_t *sorted;	/* the ids of the graph, for the edges */
	size_t n;
	bb_id start;
	size_t first;		/* where the graph starts in out */
	size_t nodes, edges;	/* drawn */
	size_t nodes_left, edges_left;	/* past BB_DOT_MAX_BYTES */
	bool truncated;		/* set by the caller: the walk stopped early */
};

/* Starts the graph of start and the ids of its chain (16 bytes each). */
void bb_dot_begin(struct bb_dot *d, struct bb_buf *out, const bb_id start,
    const uint8_t *chain, size_t n);
/* One event: its node, and an edge from each of its parents in the graph.
 * rec is NULL for an id with no record of its own. */
void bb_dot_node(struct bb_dot *d, const bb_id id,
    const struct bb_record *rec);
/* Closes the graph; when it was cut (bytes, or the walk's own bound), a
 * red note node says what is missing. */
void bb_dot_end(struct bb_dot *d);

#endif
