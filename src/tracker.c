#include "tracker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "log.h"
#include "uuid.h"
#include "xalloc.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
#define IDEM_PREFIX "bloodbank:i:"
#define IDEM_KEY_LEN (sizeof(IDEM_PREFIX) - 1 + 16)
#define CLAIM_PENDING 'P'
#define CLAIM_DONE 'D'

struct bb_tracker {
	bool enabled;
	char *host;
	int port;
	int db;
	char *password;
	struct timeval timeout;
	long long ttl_ms;
	long long window_ms;		/* how long a replay is possible */
	long long inflight_ms;		/* how long a claim may stay pending */
	redisContext *c;		/* NULL while disconnected */
	int pending;			/* replies of the last record, unread */
	char pending_event[BB_UUID_STRLEN + 1];
	long long retry_at;		/* no connect attempt before (ms) */
	long long skip_logged_at;	/* last "skipped" line (ms) */
	long skipped;			/* events not tracked since then */
	int backoff_ms;
	struct bb_buf scratch;
};

struct bb_tracker *
bb_tracker_new(const struct bb_config *cfg, long long claim_ms)
{
	struct bb_tracker *t = bb_xcalloc(1, sizeof(*t));

	t->enabled = cfg->correlation_tracking;
	t->host = bb_xstrdup(cfg->redis_host);
	t->port = cfg->redis_port;
	t->db = cfg->redis_db;
	t->password = bb_xstrdup(cfg->redis_password);
	t->timeout.tv_sec = cfg->redis_timeout_ms / 1000;
	t->timeout.tv_usec = (cfg->redis_timeout_ms % 1000) * 1000;
	t->ttl_ms = (long long)cfg->redis_ttl_days * 86400 * 1000;
	t->window_ms = (long long)cfg->idempotency_window_s * 1000;
	t->inflight_ms = claim_ms;
	t->backoff_ms = BACKOFF_MIN_MS;
	bb_buf_init(&t->scratch);
	return t;
}

void
bb_tracker_free(struct bb_tracker *t)
{
	if (t == NULL)
		return;
	bb_tracker_settle(t);
	if (t->c)
		redisFree(t->c);
	free(t->host);
	free(t->password);
	bb_buf_free(&t->scratch);
	free(t);
}

bool
bb_tracker_enabled(const struct bb_tracker *t)
{
	return t->enabled;
}

/* Drops the connection after an error and schedules the next attempt. */
static void
fail(struct bb_tracker *t)
{
	if (t->c) {
		redisFree(t->c);
		t->c = NULL;
	}
	t->retry_at = bb_monotonic_ms() + t->backoff_ms;
	t->backoff_ms = t->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    t->backoff_ms * 2;
}

/* True when the failure of the last command was the timeout. */
static bool
timed_out(const redisContext *c)
{
	return c && c->err == REDIS_ERR_IO &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS);
}

/* Reads one reply; false (and the connection dropped) on any failure or an
 * error reply. */
static bool
read_reply(struct bb_tracker *t, redisReply **out)
{
	void *r = NULL;

	if (redisGetReply(t->c, &r) != REDIS_OK || r == NULL)
		return false;
	*out = r;
	if ((*out)->type == REDIS_REPLY_ERROR) {
		bb_log_warning("Redis error: %.*s", (int)(*out)->len, (*out)->str);
		freeReplyObject(r);
		*out = NULL;
		return false;
	}
	return true;
}

static bool
login(struct bb_tracker *t)
{
	char db[16];
	const char *auth[] = { "AUTH", t->password };
	const char *select[] = { "SELECT", db };
	int pending = 0;
	redisReply *r;

	snprintf(db, sizeof(db), "%d", t->db);
	if (t->password[0] &&
	    redisAppendCommandArgv(t->c, 2, auth, NULL) == REDIS_OK)
		pending++;
	if (t->db && redisAppendCommandArgv(t->c, 2, select, NULL) == REDIS_OK)
		pending++;
	while (pending--) {
		if (!read_reply(t, &r))
			return false;
		freeReplyObject(r);
	}
	return true;
}

/* Connects if there is no connection and the backoff has passed. */
static bool
ensure(struct bb_tracker *t)
{
	if (t->c)
		return true;
	if (bb_monotonic_ms() < t->retry_at)
		return false;
	if (t->host[0] == '/')
		t->c = redisConnectUnixWithTimeout(t->host, t->timeout);
	else
		t->c = redisConnectWithTimeout(t->host, t->port, t->timeout);
	if (t->c == NULL || t->c->err ||
	    redisSetTimeout(t->c, t->timeout) != REDIS_OK || !login(t)) {
		bb_log_warning("Redis at %s:%d unavailable: %s", t->host, t->port,
		    t->c && t->c->errstr[0] ? t->c->errstr : "login failed");
		fail(t);
		return false;
	}
	t->backoff_ms = BACKOFF_MIN_MS;
	bb_log_info("Redis connected at %s:%d", t->host, t->port);
	return true;
}

bool
bb_tracker_healthy(struct bb_tracker *t)
{
	redisReply *r;

	bb_tracker_settle(t);
	if (!t->enabled || !ensure(t))
		return false;
	if (redisAppendCommand(t->c, "PING") != REDIS_OK || !read_reply(t, &r)) {
		fail(t);
		return false;
	}
	freeReplyObject(r);
	return true;
}

static void
idem_key(const char *event_id, char *out)
{
	bb_id id;

	bb_id_parse(event_id, id);
	memcpy(out, IDEM_PREFIX, sizeof(IDEM_PREFIX) - 1);
	memcpy(out + sizeof(IDEM_PREFIX) - 1, id, 16);
}

/* Reads the replies of `sent` pipelined commands; the last must be EXEC's
 * array with no error inside. */
static bool
read_transaction(struct bb_tracker *t, int sent)
{
	redisReply *r = NULL;
	bool ok = true;

	for (int k = 0; k < sent && ok; k++) {
		ok = read_reply(t, &r);
		if (ok && k == sent - 1) {
			ok = (r->type == REDIS_REPLY_ARRAY);
			for (size_t e = 0; ok && e < r->elements; e++)
				ok = (r->element[e]->type != REDIS_REPLY_ERROR);
		}
		if (r)
			freeReplyObject(r);
		r = NULL;
	}
	return ok;
}

static void
append(struct bb_tracker *t, int *sent, int argc, const char **argv,
    const size_t *lens)
{
	if (redisAppendCommandArgv(t->c, argc, argv, lens) == REDIS_OK)
		(*sent)++;
}

/* Logs the failure of the tracking of event_id and drops the connection. */
static void
report(struct bb_tracker *t, const char *event_id)
{
	if (timed_out(t->c))
		bb_log_warning("Correlation tracking timed out for event %s",
		    event_id);
	else
		bb_log_warning("Correlation tracking failed for event %s: %s",
		    event_id, t->c && t->c->err ? t->c->errstr : "error reply");
	fail(t);
}

/* While Redis is known to be down, events go untracked; say so, but at most
 * once a second, with how many. */
static void
skipped(struct bb_tracker *t, const char *event_id)
{
	long long now = bb_monotonic_ms();

	t->skipped++;
	if (now - t->skip_logged_at < 1000)
		return;
	bb_log_warning("Correlation tracking skipped for event %s: Redis "
	    "unavailable (%ld events untracked)", event_id, t->skipped);
	t->skip_logged_at = now;
	t->skipped = 0;
}

void
bb_tracker_record(struct bb_tracker *t, const struct bb_envelope *env,
    const char *envelope, size_t envelope_len, const uint8_t *body_hash)
{
	char keys[1 + BB_MAX_PARENTS][BB_RECORD_KEY_LEN];
	char ikey[IDEM_KEY_LEN], ttl[24], window[24];
	struct bb_buf *b = &t->scratch;
	struct bb_buf claim;
	bb_id id;
	int sent = 0;

	bb_tracker_settle(t);
	if (!t->enabled)
		return;
	if (!ensure(t)) {
		skipped(t, env->event_id);
		return;
	}
	snprintf(ttl, sizeof(ttl), "%lld", t->ttl_ms);
	bb_id_parse(env->event_id, id);
	bb_record_key(id, keys[0]);
	bb_buf_reset(b);
	bb_record_meta(b, env);
	size_t meta_len = b->len;
	bb_record_child(b, id);
	for (int k = 0; k < env->nparents; k++) {
		bb_id parent;
		bb_id_parse(env->parents[k], parent);
		bb_record_key(parent, keys[1 + k]);
	}

	const char *multi[] = { "MULTI" }, *exec[] = { "EXEC" };
	append(t, &sent, 1, multi, NULL);
	for (int k = 0; k <= env->nparents; k++) {
		const char *put[] = { "APPEND", keys[k],
			k ? b->data + meta_len : b->data };
		size_t put_len[] = { 6, BB_RECORD_KEY_LEN,
			k ? b->len - meta_len : meta_len };
		const char *expire[] = { "PEXPIRE", keys[k], ttl };
		size_t expire_len[] = { 7, BB_RECORD_KEY_LEN, strlen(ttl) };
		append(t, &sent, 3, put, put_len);
		append(t, &sent, 3, expire, expire_len);
	}
	bb_buf_init(&claim);
	if (body_hash) {
		bb_buf_putc(&claim, CLAIM_DONE);
		bb_buf_append(&claim, body_hash, BB_BODY_HASH_LEN);
		bb_buf_append(&claim, envelope, envelope_len);
		idem_key(env->event_id, ikey);
		snprintf(window, sizeof(window), "%lld", t->window_ms);
		const char *set[] = { "SET", ikey, claim.data, "PX", window };
		size_t set_len[] = { 3, IDEM_KEY_LEN, claim.len, 2, strlen(window) };
		append(t, &sent, 5, set, set_len);
	}
	append(t, &sent, 1, exec, NULL);
	bb_buf_free(&claim);

	/* Sent now; the replies are read by bb_tracker_settle, while the next
	 * publish waits for its confirm. */
	int done = 0;
	while (!done) {
		if (redisBufferWrite(t->c, &done) != REDIS_OK) {
			report(t, env->event_id);
			return;
		}
	}
	t->pending = sent;
	memcpy(t->pending_event, env->event_id, sizeof(t->pending_event));
}

void
bb_tracker_settle(struct bb_tracker *t)
{
	int n = t->pending;

	if (n == 0)
		return;
	t->pending = 0;
	if (!read_transaction(t, n))
		report(t, t->pending_event);
}

enum bb_claim
bb_tracker_claim(struct bb_tracker *t, const char *event_id,
    const uint8_t *body_hash, struct bb_buf *original)
{
	char ikey[IDEM_KEY_LEN], pending[1 + BB_BODY_HASH_LEN], ttl[24];
	redisReply *r;

	bb_tracker_settle(t);
	if (!t->enabled || !ensure(t))
		return BB_CLAIM_UNAVAILABLE;
	idem_key(event_id, ikey);
	pending[0] = CLAIM_PENDING;
	memcpy(pending + 1, body_hash, BB_BODY_HASH_LEN);
	snprintf(ttl, sizeof(ttl), "%lld", t->inflight_ms);
	/* Twice: a claim may expire between the SET and the GET. */
	for (int attempt = 0; attempt < 2; attempt++) {
		const char *set[] = { "SET", ikey, pending, "NX", "PX", ttl };
		size_t set_len[] = { 3, IDEM_KEY_LEN, sizeof(pending), 2, 2,
			strlen(ttl) };
		const char *get[] = { "GET", ikey };
		size_t get_len[] = { 3, IDEM_KEY_LEN };

		if (redisAppendCommandArgv(t->c, 6, set, set_len) != REDIS_OK ||
		    !read_reply(t, &r))
			goto unavailable;
		bool claimed = (r->type == REDIS_REPLY_STATUS);
		freeReplyObject(r);
		if (claimed)
			return BB_CLAIM_NEW;
		if (redisAppendCommandArgv(t->c, 2, get, get_len) != REDIS_OK ||
		    !read_reply(t, &r))
			goto unavailable;
		if (r->type != REDIS_REPLY_STRING || r->len <= BB_BODY_HASH_LEN) {
			freeReplyObject(r);
			continue;
		}
		enum bb_claim c;
		if (memcmp(r->str + 1, body_hash, BB_BODY_HASH_LEN) != 0) {
			c = BB_CLAIM_MISMATCH;
		} else if (r->str[0] == CLAIM_DONE) {
			bb_buf_append(original, r->str + 1 + BB_BODY_HASH_LEN,
			    r->len - 1 - BB_BODY_HASH_LEN);
			c = BB_CLAIM_REPLAY;
		} else {
			c = BB_CLAIM_IN_FLIGHT;
		}
		freeReplyObject(r);
		return c;
	}
	return BB_CLAIM_IN_FLIGHT;
unavailable:
	bb_log_warning("idempotency check for event %s failed: %s", event_id,
	    t->c && t->c->err ? t->c->errstr : "error reply");
	fail(t);
	return BB_CLAIM_UNAVAILABLE;
}

void
bb_tracker_release(struct bb_tracker *t, const char *event_id)
{
	char ikey[IDEM_KEY_LEN];
	const char *del[] = { "DEL", ikey };
	size_t del_len[] = { 3, IDEM_KEY_LEN };
	redisReply *r;

	bb_tracker_settle(t);
	if (!t->enabled || !ensure(t))
		return;
	idem_key(event_id, ikey);
	if (redisAppendCommandArgv(t->c, 2, del, del_len) != REDIS_OK ||
	    !read_reply(t, &r)) {
		fail(t);
		return;
	}
	freeReplyObject(r);
}

int
bb_tracker_fetch(void *tracker, const bb_id *ids, int n, bb_fetch_each each,
    void *walk)
{
	struct bb_tracker *t = tracker;
	char key[BB_RECORD_KEY_LEN];
	size_t len[] = { 3, BB_RECORD_KEY_LEN };
	const char *get[] = { "GET", key };
	redisReply *r;

	bb_tracker_settle(t);
	if (!ensure(t))
		return -1;
	/* One round trip for the whole level: N GETs, then N replies. */
	for (int k = 0; k < n; k++) {
		bb_record_key(ids[k], key);
		if (redisAppendCommandArgv(t->c, 2, get, len) != REDIS_OK)
			goto error;
	}
	for (int k = 0; k < n; k++) {
		if (!read_reply(t, &r))
			goto error;
		if (r->type == REDIS_REPLY_STRING)
			each(walk, k, r->str, r->len);
		else
			each(walk, k, NULL, 0);
		freeReplyObject(r);
	}
	return 0;
error:
	bb_log_warning("Redis lookup failed: %s",
	    t->c && t->c->err ? t->c->errstr : "error reply");
	fail(t);
	return -1;
}
