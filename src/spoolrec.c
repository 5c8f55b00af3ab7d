#include "spoolrec.h"

#include <string.h>
#include <zlib.h>

#include "uuid.h"

#define MAGIC "BBsp"
#define FORMAT_VERSION 1
#define FLAG_CLOUDEVENTS 1
#define FLAG_KEYED 2
#define FLAG_TRACEPARENT 4	/* present, if empty */
#define FLAG_TRACESTATE 8
#define HEAD_CRC_AT 28

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	for (int k = n - 1; k >= 0; k--, v >>= 8)
		p[k] = (uint8_t)v;
}

static uint64_t
get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int k = 0; k < n; k++)
		v = v << 8 | p[k];
	return v;
}

static void
append_be(struct bb_buf *out, uint64_t v, int n)
{
	uint8_t b[8];

	put_be(b, v, n);
	bb_buf_append(out, b, (size_t)n);
}

static uint32_t
crc(const void *p, size_t len)
{
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)len);
}

/* The head's checksum, with its state read as waiting. */
static uint32_t
head_crc(const uint8_t *p)
{
	uint8_t h[HEAD_CRC_AT];

	memcpy(h, p, sizeof(h));
	h[BB_SPOOLREC_STATE_AT] = BB_SPOOLREC_WAITING;
	return crc(h, sizeof(h));
}

static void
append_short_string(struct bb_buf *out, const char *s)
{
	size_t len = s ? strlen(s) : 0;

	append_be(out, len, 2);
	bb_buf_append(out, s ? s : "", len);
}

void
bb_spoolrec_encode(struct bb_buf *out, const struct bb_envelope *env,
    const char *json, size_t json_len, bool cloudevents,
    const uint8_t *hash, int64_t spooled_ms)
{
	size_t at = out->len, type_len = strlen(env->event_type);
	uint8_t *head;

	bb_buf_append(out, (uint8_t[BB_SPOOLREC_HEAD]){ 0 }, BB_SPOOLREC_HEAD);
	bb_buf_putc(out, (char)((cloudevents ? FLAG_CLOUDEVENTS : 0) |
	    (hash ? FLAG_KEYED : 0) |
	    (env->traceparent ? FLAG_TRACEPARENT : 0) |
	    (env->tracestate ? FLAG_TRACESTATE : 0)));
	bb_buf_putc(out, (char)env->nparents);
	append_be(out, (uint64_t)env->unix_us, 8);
	bb_buf_append(out, env->event_id, BB_UUID_STRLEN);
	bb_buf_putc(out, (char)type_len);
	bb_buf_append(out, env->event_type, type_len);
	for (int k = 0; k < env->nparents; k++)
		bb_buf_append(out, env->parents[k], BB_UUID_STRLEN);
	append_short_string(out, env->traceparent);
	append_short_string(out, env->tracestate);
	if (hash)
		bb_buf_append(out, hash, BB_BODY_HASH_LEN);
	append_be(out, json_len, 4);
	bb_buf_append(out, json, json_len);

	size_t body_len = out->len - at - BB_SPOOLREC_HEAD;
	head = (uint8_t *)out->data + at;
	memcpy(head, MAGIC, 4);
	head[BB_SPOOLREC_STATE_AT] = BB_SPOOLREC_WAITING;
	head[5] = FORMAT_VERSION;
	put_be(head + 8, body_len, 4);
	put_be(head + 12, crc(head + BB_SPOOLREC_HEAD, body_len), 4);
	put_be(head + 16, (uint64_t)spooled_ms, 8);
	put_be(head + HEAD_CRC_AT, head_crc(head), 4);
}

int
bb_spoolrec_head(const uint8_t *p, struct bb_spoolrec_head *out)
{
	uint8_t state = p[BB_SPOOLREC_STATE_AT];

	if (memcmp(p, MAGIC, 4) != 0 || p[5] != FORMAT_VERSION ||
	    get_be(p + HEAD_CRC_AT, 4) != head_crc(p))
		return -1;
	if (state != BB_SPOOLREC_WAITING && state != BB_SPOOLREC_FORWARDED &&
	    state != BB_SPOOLREC_ASIDE)
		return -1;
	out->state = state;
	out->body_len = (uint32_t)get_be(p + 8, 4);
	out->body_crc = (uint32_t)get_be(p + 12, 4);
	out->spooled_ms = (int64_t)get_be(p + 16, 8);
	return out->body_len <= BB_SPOOLREC_MAX_BODY ? 0 : -1;
}

/* A cursor over a body: every read checks that the bytes are there. */
struct reader {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static const uint8_t *
take(struct reader *r, size_t n)
{
	const uint8_t *at = r->p;

	if (r->bad || n > r->left) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return at;
}

static uint64_t
take_be(struct reader *r, int n)
{
	const uint8_t *p = take(r, (size_t)n);

	return p ? get_be(p, n) : 0;
}

/* A string of at most size - 1 bytes, copied with its NUL. */
static bool
take_string(struct reader *r, size_t len, char *out, size_t size)
{
	const uint8_t *p = take(r, len);

	if (p == NULL || len >= size)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

int
bb_spoolrec_body(const struct bb_spoolrec_head *h, const uint8_t *body,
    struct bb_spooled *out)
{
	struct reader r = { body, h->body_len, false };
	struct bb_envelope *env = &out->env;

	if (crc(body, h->body_len) != h->body_crc)
		return -1;
	memset(out, 0, sizeof(*out));
	unsigned flags = (unsigned)take_be(&r, 1);
	env->nparents = (int)take_be(&r, 1);
	env->unix_us = (int64_t)take_be(&r, 8);
	if (env->nparents > BB_MAX_PARENTS ||
	    !take_string(&r, BB_UUID_STRLEN, env->event_id,
	    sizeof(env->event_id)) ||
	    !take_string(&r, (size_t)take_be(&r, 1), env->event_type,
	    sizeof(env->event_type)))
		return -1;
	for (int k = 0; k < env->nparents; k++)
		if (!take_string(&r, BB_UUID_STRLEN, env->parents[k],
		    sizeof(env->parents[k])))
			return -1;
	if (!take_string(&r, (size_t)take_be(&r, 2), out->traceparent,
	    sizeof(out->traceparent)) ||
	    !take_string(&r, (size_t)take_be(&r, 2), out->tracestate,
	    sizeof(out->tracestate)))
		return -1;
	env->traceparent = flags & FLAG_TRACEPARENT ? out->traceparent : NULL;
	env->tracestate = flags & FLAG_TRACESTATE ? out->tracestate : NULL;
	bb_timestamp_format(env->unix_us, env->timestamp);
	out->cloudevents = flags & FLAG_CLOUDEVENTS;
	out->keyed = flags & FLAG_KEYED;
	if (out->keyed) {
		const uint8_t *hash = take(&r, BB_BODY_HASH_LEN);
		if (hash)
			memcpy(out->hash, hash, BB_BODY_HASH_LEN);
	}
	out->json_len = (size_t)take_be(&r, 4);
	out->json = (const char *)take(&r, out->json_len);
	return r.bad || r.left != 0 ? -1 : 0;
}

size_t
bb_spoolrec_resync(const uint8_t *p, size_t len)
{
	for (size_t k = 1; k + 4 <= len; k++)
		if (memcmp(p + k, MAGIC, 4) == 0)
			return k;
	return len;
}
