#include "dot.h"

#include <stdlib.h>
#include <string.h>

#include "correlation.h"
#include "envelope.h"
#include "uuid.h"
#include "xalloc.h"

static int
compare_ids(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

void
bb_dot_begin(struct bb_dot *d, struct bb_buf *out, const bb_id start,
    const uint8_t *chain, size_t n)
{
	d->out = out;
	d->first = out->len;
	d->nodes = d->edges = d->nodes_left = d->edges_left = 0;
	d->truncated = false;
	d->n = n + 1;
	d->sorted = bb_xcalloc(d->n, 16);
	memcpy(d->sorted, start, 16);
	if (n)
		memcpy(d->sorted + 16, chain, n * 16);
	qsort(d->sorted, d->n, 16, compare_ids);
	memcpy(d->start, start, 16);
	bb_buf_puts(out, "digraph lineage {\n"
	    "  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
}

/* Text inside a DOT quoted string: \" is its only escape, and a
 * backslash is doubled so that it stays itself (not a \n or \l). */
static void
escaped(struct bb_buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			bb_buf_putc(out, '\\');
		if ((unsigned char)*s >= 0x20)
			bb_buf_putc(out, *s);
	}
}

static bool
in_graph(const struct bb_dot *d, const bb_id id)
{
	return bsearch(id, d->sorted, d->n, 16, compare_ids) != NULL;
}

void
bb_dot_node(struct bb_dot *d, const bb_id id, const struct bb_record *rec)
{
	char text[BB_UUID_STRLEN + 1], ts[BB_TIMESTAMP_LEN + 1];
	bool known = rec && rec->has_meta;

	if (d->out->len - d->first > BB_DOT_MAX_BYTES) {
		d->nodes_left++;
		for (int k = 0; rec && k < rec->nparents; k++)
			d->edges_left += in_graph(d, rec->parents[k]);
		return;
	}
	d->nodes++;
	bb_id_format(id, text);
	bb_buf_printf(d->out, "  \"%s\" [label=\"", text);
	if (known) {
		bb_timestamp_format(rec->unix_us, ts);
		escaped(d->out, rec->event_type);
		bb_buf_printf(d->out, "\\n%s\\n%.8s\"", ts, text);
	} else {
		bb_buf_printf(d->out, "(no record)\\n%.8s\"", text);
	}
	if (memcmp(id, d->start, 16) == 0)
		bb_buf_puts(d->out, ", style=\"rounded,filled,bold\", "
		    "fillcolor=\"gold\", penwidth=2");
	else if (!known)
		bb_buf_puts(d->out, ", style=\"rounded,dashed\"");
	bb_buf_puts(d->out, "];\n");
	for (int k = 0; rec && k < rec->nparents; k++) {
		char parent[BB_UUID_STRLEN + 1];
		if (!in_graph(d, rec->parents[k]))
			continue;
		d->edges++;
		bb_id_format(rec->parents[k], parent);
		bb_buf_printf(d->out, "  \"%s\" -> \"%s\";\n", parent, text);
	}
}

void
bb_dot_end(struct bb_dot *d)
{
	if (d->nodes_left || d->truncated) {
		bb_buf_puts(d->out, "  truncated [shape=note, color=red, "
		    "fontcolor=red, label=\"truncated:");
		if (d->nodes_left)
			bb_buf_printf(d->out, " %zu events and %zu edges drawn, "
			    "%zu and %zu more left out (over %d bytes)", d->nodes,
			    d->edges, d->nodes_left, d->edges_left,
			    BB_DOT_MAX_BYTES);
		if (d->truncated)
			bb_buf_printf(d->out, "%sthe walk stopped at its bound "
			    "(max_depth, %d events, or a capped child list)",
			    d->nodes_left ? "; " : " ", BB_WALK_MAX_IDS);
		bb_buf_puts(d->out, "\"];\n");
	}
	bb_buf_puts(d->out, "}\n");
	free(d->sorted);
	d->sorted = NULL;
}
