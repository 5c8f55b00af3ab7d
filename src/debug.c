#include "debug.h"

#include <stdlib.h>
#include <string.h>

#include "correlation.h"
#include "dot.h"
#include "json.h"
#include "record.h"
#include "uuid.h"
#include "xalloc.h"

/* The raw record of one id, as bb_tracker_fetch hands it over. */
struct lookup {
	bool found;
	struct bb_buf value;
};

static void
keep_value(void *ctx, int i, const char *val, size_t len)
{
	struct lookup *l = ctx;

	(void)i;
	if (val == NULL)
		return;
	l->found = true;
	bb_buf_append(&l->value, val, len);
}

static int
parse_query(const char *query, bool chain, enum bb_direction *dir,
    int *depth, bool *dot, struct bb_response *resp)
{
	char v[16];
	char *end;

	*dir = BB_DESCENDANTS;
	*depth = BB_WALK_DEFAULT_DEPTH;
	*dot = false;
	if (chain && bb_query_param(query, "format", v, sizeof(v))) {
		*dot = strcmp(v, "dot") == 0;
		if (!*dot && strcmp(v, "json") != 0) {
			bb_response_error(resp, 400, "invalid_request",
			    "format must be json or dot");
			return -1;
		}
	}
	if (chain && bb_query_param(query, "direction", v, sizeof(v))) {
		if (strcmp(v, "ancestors") == 0) {
			*dir = BB_ANCESTORS;
		} else if (strcmp(v, "descendants") != 0) {
			bb_response_error(resp, 400, "invalid_request",
			    "direction must be ancestors or descendants");
			return -1;
		}
	}
	if (bb_query_param(query, "max_depth", v, sizeof(v))) {
		long n = strtol(v, &end, 10);
		if (end == v || *end || n < 1 || n > BB_WALK_MAX_DEPTH) {
			bb_response_error(resp, 400, "invalid_request",
			    "max_depth must be an integer from 1 to 1000");
			return -1;
		}
		*depth = (int)n;
	}
	return 0;
}

static void
write_metadata(struct bb_buf *out, const struct bb_record *rec)
{
	char ts[BB_TIMESTAMP_LEN + 1];

	if (!rec->has_meta) {
		bb_buf_puts(out, "null");
		return;
	}
	bb_timestamp_format(rec->unix_us, ts);
	bb_buf_puts(out, "{\"event_type\":");
	bb_json_write_string(out, rec->event_type, strlen(rec->event_type));
	/* The routing key is the event type (CONTRACT §3). */
	bb_buf_puts(out, ",\"routing_key\":");
	bb_json_write_string(out, rec->event_type, strlen(rec->event_type));
	bb_buf_printf(out, ",\"timestamp\":\"%s\"}", ts);
}

static void
unavailable(struct bb_response *resp)
{
	bb_response_error(resp, 503, "tracking_unavailable",
	    "correlation tracking is unavailable (Redis is unreachable)");
}

/* The walk's events as a Graphviz digraph: the records of the start and of
 * every id of its chain, in one pipelined lookup. */
struct dot_lookup {
	struct bb_dot dot;
	const uint8_t *ids;
};

static void
draw_node(void *ctx, int i, const char *val, size_t len)
{
	struct dot_lookup *l = ctx;
	struct bb_record rec;
	bool ok = val && bb_record_parse(val, len, &rec, NULL) == 0;

	bb_dot_node(&l->dot, l->ids + (size_t)i * 16, ok ? &rec : NULL);
}

/* The walk left events out: its size bound, max_depth, or a capped list
 * of children. */
static bool
cut(const struct bb_walk_result *w)
{
	return w->truncated || w->depth_capped || w->children_capped;
}

static void
answer_dot(struct bb_tracker *t, const bb_id id,
    const struct bb_walk_result *w, struct bb_response *resp)
{
	size_t n = w->ids.len / 16;
	uint8_t *ids = bb_xcalloc(n + 1, 16);
	struct dot_lookup l = { .ids = ids };

	memcpy(ids, id, 16);
	if (n)
		memcpy(ids + 16, w->ids.data, n * 16);
	bb_dot_begin(&l.dot, &resp->body, id, ids + 16, n);
	l.dot.truncated = cut(w);
	int rc = bb_tracker_fetch(t, (const bb_id *)ids, (int)n + 1, draw_node,
	    &l);
	bb_dot_end(&l.dot);
	free(ids);
	if (rc != 0) {
		unavailable(resp);
		return;
	}
	resp->content_type = "text/vnd.graphviz; charset=utf-8";
}

static int
walk(struct bb_tracker *t, const bb_id id, enum bb_direction dir, int depth,
    struct bb_walk_result *w, struct bb_response *resp)
{
	if (bb_walk(bb_tracker_fetch, t, id, dir, depth, w) == 0)
		return 0;
	bb_buf_free(&w->ids);
	unavailable(resp);
	return -1;
}

void
bb_debug_handle(struct bb_tracker *t, const struct bb_match *m,
    const char *query, struct bb_response *resp)
{
	bool chain = (m->route == BB_ROUTE_CHAIN);
	char text[BB_UUID_STRLEN + 1];
	struct lookup l = { false, { NULL, 0, 0 } };
	struct bb_record rec;
	struct bb_walk_result up = { .truncated = false };
	struct bb_walk_result down = { .truncated = false };
	enum bb_direction dir;
	int depth;
	bool dot;
	bb_id id;

	if (!bb_uuid_valid(m->arg, m->arg_len)) {
		bb_response_error(resp, 400, "invalid_request",
		    "the event id in the path is not a UUID");
		return;
	}
	bb_uuid_lower(m->arg, text);
	bb_id_parse(text, id);
	if (parse_query(query, chain, &dir, &depth, &dot, resp) != 0)
		return;
	if (!bb_tracker_enabled(t)) {
		bb_response_error(resp, 503, "tracking_unavailable",
		    "correlation tracking is off (CORRELATION_TRACKING=false)");
		return;
	}
	if (bb_tracker_fetch(t, (const bb_id *)&id, 1, keep_value, &l) != 0) {
		unavailable(resp);
		goto end;
	}
	if (!l.found) {
		bb_response_error(resp, 404, "not_found", "no record of this event: "
		    "unknown, or older than the correlation TTL");
		goto end;
	}
	if (bb_record_parse(l.value.data, l.value.len, &rec, NULL) != 0) {
		bb_response_error(resp, 500, "internal_error",
		    "the correlation record is malformed");
		goto end;
	}
	struct bb_buf *out = &resp->body;
	if (chain) {
		if (walk(t, id, dir, depth, &down, resp) != 0)
			goto end;
		if (dot) {
			answer_dot(t, id, &down, resp);
			goto end;
		}
		size_t n = down.ids.len / 16;
		bb_buf_printf(out, "{\"event_id\":\"%s\",\"direction\":\"%s\","
		    "\"chain\":", text, dir == BB_ANCESTORS ? "ancestors" :
		    "descendants");
		bb_write_id_array(out, (const uint8_t *)down.ids.data, n);
		bb_buf_printf(out, ",\"count\":%zu,\"metadata\":", n);
		write_metadata(out, &rec);
		bb_buf_printf(out, ",\"truncated\":%s}",
		    cut(&down) ? "true" : "false");
		goto end;
	}
	if (walk(t, id, BB_ANCESTORS, depth, &up, resp) != 0 ||
	    walk(t, id, BB_DESCENDANTS, depth, &down, resp) != 0)
		goto end;
	bb_buf_printf(out, "{\"event_id\":\"%s\",\"metadata\":", text);
	write_metadata(out, &rec);
	bb_buf_puts(out, ",\"parents\":");
	bb_write_id_array(out, rec.parents[0], (size_t)rec.nparents);
	/* The first level of the descendants: the children, each once. */
	bb_buf_puts(out, ",\"children\":");
	bb_write_id_array(out, (const uint8_t *)down.ids.data, down.nearest);
	bb_buf_puts(out, ",\"ancestors\":");
	bb_write_id_array(out, (const uint8_t *)up.ids.data, up.ids.len / 16);
	bb_buf_puts(out, ",\"descendants\":");
	bb_write_id_array(out, (const uint8_t *)down.ids.data, down.ids.len / 16);
	bb_buf_printf(out, ",\"truncated\":%s}",
	    cut(&up) || cut(&down) ? "true" : "false");
end:
	bb_buf_free(&l.value);
	bb_buf_free(&up.ids);
	bb_buf_free(&down.ids);
}
