#include "record.h"

#include <string.h>
#include <uuid/uuid.h>

void
bb_record_key(const bb_id id, char *out)
{
	memcpy(out, BB_RECORD_PREFIX, sizeof(BB_RECORD_PREFIX) - 1);
	memcpy(out + sizeof(BB_RECORD_PREFIX) - 1, id, 16);
}

int
bb_id_parse(const char *uuid, bb_id out)
{
	return uuid_parse(uuid, out) == 0 ? 0 : -1;
}

void
bb_id_format(const bb_id id, char *out)
{
	uuid_unparse_lower(id, out);
}

void
bb_record_meta(struct bb_buf *out, const struct bb_envelope *env)
{
	uint8_t head[BB_RECORD_META_HEAD];
	uint64_t us = (uint64_t)env->unix_us;
	size_t tlen = strlen(env->event_type);
	bb_id id;

	head[0] = BB_RECORD_META[0];
	for (int k = 0; k < 8; k++)
		head[1 + k] = (uint8_t)(us >> (56 - 8 * k));
	head[9] = (uint8_t)env->nparents;
	bb_buf_append(out, head, sizeof(head));
	for (int k = 0; k < env->nparents; k++) {
		bb_id_parse(env->parents[k], id);
		bb_buf_append(out, id, 16);
	}
	bb_buf_putc(out, (char)(uint8_t)tlen);
	bb_buf_append(out, env->event_type, tlen);
}

void
bb_record_child(struct bb_buf *out, const bb_id child)
{
	bb_buf_putc(out, BB_RECORD_CHILD[0]);
	bb_buf_append(out, child, 16);
}

/* Reads one 'M' entry at p (n bytes left); returns its length or 0. */
static size_t
parse_meta(const uint8_t *p, size_t n, struct bb_record *rec)
{
	const size_t head = BB_RECORD_META_HEAD;
	uint64_t us = 0;
	size_t need = head;

	if (n < need)
		return 0;
	for (int k = 0; k < 8; k++)
		us = (us << 8) | p[1 + k];
	uint8_t np = p[head - 1];
	if (np > BB_MAX_PARENTS)
		return 0;
	need += (size_t)np * 16 + 1;
	if (n < need || n < need + p[need - 1])
		return 0;
	rec->has_meta = true;
	rec->unix_us = (int64_t)us;
	rec->nparents = np;
	memcpy(rec->parents, p + head, (size_t)np * 16);
	memcpy(rec->event_type, p + need, p[need - 1]);
	rec->event_type[p[need - 1]] = '\0';
	return need + p[need - 1];
}

int
bb_record_parse(const char *val, size_t len, struct bb_record *rec,
    struct bb_buf *children)
{
	const uint8_t *p = (const uint8_t *)val;
	size_t k = 0;

	memset(rec, 0, sizeof(*rec));
	if (len >= BB_RECORD_COUNT_LEN && (p[0] == BB_RECORD_COUNTED[0] ||
	    p[0] == BB_RECORD_CAPPED[0])) {
		rec->children_capped = (p[0] == BB_RECORD_CAPPED[0]);
		k = BB_RECORD_COUNT_LEN;
	}
	while (k < len) {
		size_t used;
		if (p[k] == BB_RECORD_CHILD[0] && len - k >= BB_RECORD_CHILD_LEN) {
			if (children)
				bb_buf_append(children, p + k + 1, 16);
			k += BB_RECORD_CHILD_LEN;
		} else if (p[k] == BB_RECORD_META[0] && (used = parse_meta(p + k, len - k, rec))) {
			k += used;
		} else {
			return -1;
		}
	}
	return 0;
}
