#include "correlation.h"

#include <stdlib.h>
#include <string.h>

#include "random.h"
#include "uuid.h"
#include "xalloc.h"

/* An open-addressing set of ids, sized for the walk's cap. Clients choose
 * ids (X-Correlation-Ids names any UUID as a parent), so an id's slot comes
 * from a hash keyed afresh for each walk: ids aimed at one slot would make
 * every lookup a scan. */
#define SET_BITS 15
#define SET_SLOTS (1u << SET_BITS)	/* > 3 * BB_WALK_MAX_IDS */

struct id_set {
	uint8_t (*slot)[16];
	bool *used;
	int *node;		/* the id's number in the walk; 0 is the start */
	uint64_t key[BB_ID_HASH_KEY];
};

/* Multilinear hashing (Lemire and Kaser, "Strongly universal string
 * hashing is fast") of the id's four 32-bit words with 64-bit keys, taking
 * the high half: two ids collide with probability about 2^-32 over the
 * key, whatever their bytes. The set takes the hash's top bits, the ones
 * multiplication mixes best. */
uint32_t
bb_id_hash(const uint64_t key[BB_ID_HASH_KEY], const uint8_t *id)
{
	uint64_t h = key[0];

	for (int k = 0; k < 4; k++) {
		uint32_t word;
		memcpy(&word, id + 4 * k, sizeof(word));
		h += key[k + 1] * word;
	}
	return (uint32_t)(h >> 32);
}

/* The slot of id, or the empty slot where it would go. */
static uint32_t
set_slot(const struct id_set *s, const uint8_t *id)
{
	uint32_t h = bb_id_hash(s->key, id) >> (32 - SET_BITS);

	for (uint32_t k = h;; k = (k + 1) & (SET_SLOTS - 1)) {
		if (!s->used[k] || memcmp(s->slot[k], id, 16) == 0)
			return k;
	}
}

static bool
set_has(const struct id_set *s, const uint8_t *id)
{
	return s->used[set_slot(s, id)];
}

/* Adds id as node number `node`. */
static void
set_add(struct id_set *s, const uint8_t *id, int node)
{
	uint32_t k = set_slot(s, id);

	s->used[k] = true;
	s->node[k] = node;
	memcpy(s->slot[k], id, 16);
}

/* The node number of id, or -1. */
static int
set_node(const struct id_set *s, const uint8_t *id)
{
	uint32_t k = set_slot(s, id);

	return s->used[k] ? s->node[k] : -1;
}

struct walk {
	enum bb_direction dir;
	struct id_set seen;
	const uint8_t *level;		/* the ids being fetched */
	struct bb_buf next;		/* the next level's ids */
	struct bb_buf children;		/* scratch for parsing */
	struct bb_walk_result *out;
	size_t found;
	bool probe;		/* past max_depth: only look for more */
	/* Going up, the parents of every node fetched, for the final order:
	 * node n's parents are parents[first[n] .. first[n] + count[n]). */
	struct bb_buf parents;		/* node numbers, as ints */
	size_t *first;
	int *count;
};

static void
take(struct walk *w, const uint8_t *id)
{
	if (w->out->truncated || set_has(&w->seen, id))
		return;
	if (w->found == BB_WALK_MAX_IDS) {
		w->out->truncated = true;
		return;
	}
	set_add(&w->seen, id, (int)++w->found);
	bb_buf_append(&w->out->ids, id, 16);
	bb_buf_append(&w->next, id, 16);
}

static void
visit(void *ctx, int i, const char *val, size_t len)
{
	struct walk *w = ctx;
	struct bb_record rec;

	if (val == NULL)
		return;
	bb_buf_reset(&w->children);
	if (bb_record_parse(val, len, &rec, &w->children) != 0)
		return;		/* a record we cannot read ends the path */
	if (w->probe) {
		for (int k = 0; w->dir == BB_ANCESTORS && k < rec.nparents; k++)
			w->out->depth_capped |= !set_has(&w->seen,
			    rec.parents[k]);
		for (size_t k = 0; w->dir == BB_DESCENDANTS &&
		    k < w->children.len; k += 16)
			w->out->depth_capped |= !set_has(&w->seen,
			    (const uint8_t *)w->children.data + k);
		return;
	}
	if (w->dir == BB_ANCESTORS) {
		int node = set_node(&w->seen, w->level + (size_t)i * 16);
		w->first[node] = w->parents.len / sizeof(int);
		for (int k = 0; k < rec.nparents; k++) {
			take(w, rec.parents[k]);
			int parent = set_node(&w->seen, rec.parents[k]);
			if (parent >= 0) {
				bb_buf_append(&w->parents, &parent, sizeof(int));
				w->count[node]++;
			}
		}
	} else {
		if (rec.children_capped)
			w->out->children_capped = true;
		for (size_t k = 0; k < w->children.len; k += 16)
			take(w, (const uint8_t *)w->children.data + k);
	}
}

/* Ancestors read oldest first: every event after all of its own ancestors
 * (a topological order of the graph walked), the roots first, parents in the
 * order they were named. A depth-first walk up from the start, listing each
 * event once all its parents are listed, gives exactly that; an edge back to
 * an event still being listed (a cycle) is skipped. */
static void
order_ancestors(struct walk *w)
{
	size_t n = w->found + 1;
	const int *parents = (const int *)(const void *)w->parents.data;
	int *stack = bb_xcalloc(n, sizeof(int));
	int *pos = bb_xcalloc(n, sizeof(int));
	char *state = bb_xcalloc(n, 1);	/* 0 new, 1 open, 2 listed */
	struct bb_buf ordered;
	size_t top = 0;

	bb_buf_init(&ordered);
	stack[top++] = 0;
	state[0] = 1;
	while (top) {
		int node = stack[top - 1];
		if (pos[node] < w->count[node]) {
			int parent = parents[w->first[node] + (size_t)pos[node]++];
			if (state[parent] == 0) {
				state[parent] = 1;
				stack[top++] = parent;
			}
			continue;
		}
		top--;
		state[node] = 2;
		if (node != 0)
			bb_buf_append(&ordered, w->out->ids.data +
			    (size_t)(node - 1) * 16, 16);
	}
	bb_buf_free(&w->out->ids);
	w->out->ids = ordered;
	free(stack);
	free(pos);
	free(state);
}

int
bb_walk(bb_fetch_fn fetch, void *store, const bb_id start,
    enum bb_direction dir, int max_depth, struct bb_walk_result *out)
{
	struct walk w = { .dir = dir, .out = out };
	struct bb_buf level;
	int rc = 0;

	bb_buf_init(&out->ids);
	out->nearest = 0;
	out->truncated = false;
	out->children_capped = false;
	out->depth_capped = false;
	bb_buf_init(&w.next);
	bb_buf_init(&w.children);
	bb_buf_init(&level);
	bb_buf_init(&w.parents);
	w.seen.slot = bb_xcalloc(SET_SLOTS, 16);
	w.seen.used = bb_xcalloc(SET_SLOTS, sizeof(bool));
	w.seen.node = bb_xcalloc(SET_SLOTS, sizeof(int));
	bb_random(w.seen.key, sizeof(w.seen.key));
	w.first = bb_xcalloc(BB_WALK_MAX_IDS + 1, sizeof(size_t));
	w.count = bb_xcalloc(BB_WALK_MAX_IDS + 1, sizeof(int));
	set_add(&w.seen, start, 0);
	bb_buf_append(&level, start, 16);
	for (int depth = 0; depth < max_depth && level.len && !out->truncated;
	    depth++) {
		bb_buf_reset(&w.next);
		w.level = (const uint8_t *)level.data;
		if (fetch(store, (const bb_id *)(const void *)level.data,
		    (int)(level.len / 16), visit, &w) != 0) {
			rc = -1;
			break;
		}
		if (depth == 0)
			out->nearest = w.found;
		bb_buf_reset(&level);
		bb_buf_append(&level, w.next.data, w.next.len);
	}
	/* The farthest level's records are read only to tell whether the
	 * walk stopped short of more. */
	if (rc == 0 && level.len && !out->truncated) {
		w.probe = true;
		w.level = (const uint8_t *)level.data;
		if (fetch(store, (const bb_id *)(const void *)level.data,
		    (int)(level.len / 16), visit, &w) != 0)
			rc = -1;
	}
	/* Breadth-first order is nearest first, as descendants read. */
	if (rc == 0 && dir == BB_ANCESTORS)
		order_ancestors(&w);
	free(w.seen.slot);
	free(w.seen.used);
	free(w.seen.node);
	free(w.first);
	free(w.count);
	bb_buf_free(&w.parents);
	bb_buf_free(&w.next);
	bb_buf_free(&w.children);
	bb_buf_free(&level);
	return rc;
}

void
bb_write_id_array(struct bb_buf *out, const uint8_t *ids, size_t n)
{
	char text[BB_UUID_STRLEN + 1];

	bb_buf_putc(out, '[');
	for (size_t k = 0; k < n; k++) {
		bb_id_format(ids + k * 16, text);
		bb_buf_printf(out, "%s\"%s\"", k ? "," : "", text);
	}
	bb_buf_putc(out, ']');
}
