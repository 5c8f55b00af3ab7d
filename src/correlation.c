#include "correlation.h"

#include <stdlib.h>
#include <string.h>

#include "uuid.h"
#include "xalloc.h"

/* An open-addressing set of ids, sized for the walk's cap: ids are UUIDs,
 * random in their first bytes, so those serve as the hash. */
#define SET_SLOTS 32768		/* a power of two > 3 * BB_WALK_MAX_IDS */

struct id_set {
	uint8_t (*slot)[16];
	bool *used;
};

static bool
set_add(struct id_set *s, const uint8_t *id)
{
	uint32_t h;

	memcpy(&h, id, sizeof(h));
	for (uint32_t k = h & (SET_SLOTS - 1);; k = (k + 1) & (SET_SLOTS - 1)) {
		if (!s->used[k]) {
			s->used[k] = true;
			memcpy(s->slot[k], id, 16);
			return true;
		}
		if (memcmp(s->slot[k], id, 16) == 0)
			return false;
	}
}

struct walk {
	enum bb_direction dir;
	struct id_set seen;
	struct bb_buf next;		/* the next level's ids */
	struct bb_buf children;		/* scratch for parsing */
	struct bb_walk_result *out;
	size_t found;
};

static void
take(struct walk *w, const uint8_t *id)
{
	if (w->out->truncated)
		return;
	if (w->found == BB_WALK_MAX_IDS) {
		w->out->truncated = true;
		return;
	}
	if (!set_add(&w->seen, id))
		return;
	w->found++;
	bb_buf_append(&w->out->ids, id, 16);
	bb_buf_append(&w->next, id, 16);
}

static void
visit(void *ctx, int i, const char *val, size_t len)
{
	struct walk *w = ctx;
	struct bb_record rec;

	(void)i;
	if (val == NULL)
		return;
	bb_buf_reset(&w->children);
	if (bb_record_parse(val, len, &rec, &w->children) != 0)
		return;		/* a record we cannot read ends the path */
	if (w->dir == BB_ANCESTORS) {
		for (int k = 0; k < rec.nparents; k++)
			take(w, rec.parents[k]);
	} else {
		for (size_t k = 0; k < w->children.len; k += 16)
			take(w, (const uint8_t *)w->children.data + k);
	}
}

/* Puts the levels of ids in reverse order, keeping the order within each
 * level: ends[k] is where level k ends, in ids. */
static void
reverse_levels(struct bb_buf *ids, const size_t *ends, int nlevels)
{
	struct bb_buf out;

	if (ids->len == 0)
		return;
	bb_buf_init(&out);
	for (int k = nlevels - 1; k >= 0; k--) {
		size_t start = k ? ends[k - 1] : 0;
		bb_buf_append(&out, ids->data + start * 16, (ends[k] - start) * 16);
	}
	bb_buf_free(ids);
	*ids = out;
}

int
bb_walk(bb_fetch_fn fetch, void *store, const bb_id start,
    enum bb_direction dir, int max_depth, struct bb_walk_result *out)
{
	struct walk w = { .dir = dir, .out = out };
	struct bb_buf level;
	size_t *ends = bb_xcalloc((size_t)max_depth + 1, sizeof(size_t));
	int nlevels = 0, rc = 0;

	bb_buf_init(&out->ids);
	out->nearest = 0;
	out->truncated = false;
	bb_buf_init(&w.next);
	bb_buf_init(&w.children);
	bb_buf_init(&level);
	w.seen.slot = bb_xcalloc(SET_SLOTS, 16);
	w.seen.used = bb_xcalloc(SET_SLOTS, sizeof(bool));
	set_add(&w.seen, start);
	bb_buf_append(&level, start, 16);
	for (int depth = 0; depth < max_depth && level.len && !out->truncated;
	    depth++) {
		bb_buf_reset(&w.next);
		if (fetch(store, (const bb_id *)(const void *)level.data,
		    (int)(level.len / 16), visit, &w) != 0) {
			rc = -1;
			break;
		}
		ends[nlevels++] = w.found;
		if (depth == 0)
			out->nearest = w.found;
		bb_buf_reset(&level);
		bb_buf_append(&level, w.next.data, w.next.len);
	}
	/* Breadth-first order is nearest first; ancestors read oldest first:
	 * the farthest level first, each level in the order its ids were
	 * named. */
	if (rc == 0 && dir == BB_ANCESTORS)
		reverse_levels(&out->ids, ends, nlevels);
	free(ends);
	free(w.seen.slot);
	free(w.seen.used);
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
