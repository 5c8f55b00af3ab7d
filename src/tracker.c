#include "tracker.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "uuid.h"
#include "random.h"
#include "xalloc.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
#define IDEM_PREFIX "bloodbank:i:"
#define IDEM_KEY_LEN (sizeof(IDEM_PREFIX) - 1 + 16)
#define SHA_LEN 40		/* what SCRIPT LOAD answers: SHA-1 in hex */
/* EVALSHA, its SHA, numkeys, every key, every argument. */
#define CMD_MAX_ARGS (3 + 2 + BB_MAX_PARENTS + 4 + 3)

/* Records one event (bb_tracker_record): as one script, so that what it
 * writes can depend on what Redis holds -- a parent's count of children,
 * who holds the claim -- and still cost one round trip (CONTRACT §7).
 * KEYS: the event's record, its parents' records, [its claim].
 * ARGV: meta entry, child entry, TTL (ms), CORRELATION_MAX_CHILDREN,
 *       [pending claim value, done claim value, window (ms)].
 * Returns { child links not recorded, 0 when another request held the
 * claim (left alone) else 1 }. The claim is ours when it starts with
 * ARGV[5]: the whole pending value, or 'S' and the hash of a spooled one. A claim gone (expired, or released by a
 * later request whose publish failed) is marked done too: nobody holds it,
 * and the event was published with this body. The entries are record.h's,
 * its tags and sizes written in from there; a record without a count
 * entry is counted once, by its entries. */
static const char record_script[] =
	"local ttl, max = ARGV[3], tonumber(ARGV[4])\n"
	"local nparents = #KEYS - 1\n"
	"if ARGV[5] then nparents = nparents - 1 end\n"
	"local function count(v)\n"
	"  local k, n = 1, 0\n"
	"  while k <= #v do\n"
	"    local tag = string.sub(v, k, k)\n"
	"    if tag == '" BB_RECORD_CHILD "' then\n"
	"      n, k = n + 1, k + " BB_STR(BB_RECORD_CHILD_LEN) "\n"
	"    elseif tag == '" BB_RECORD_META "' then\n"
	"      local np = string.byte(v, k + " BB_STR(BB_RECORD_META_HEAD) " - 1) or 0\n"
	"      local at = k + " BB_STR(BB_RECORD_META_HEAD) " + 16 * np\n"
	"      k = at + 1 + (string.byte(v, at) or 0)\n"
	"    else\n"
	"      break\n"
	"    end\n"
	"  end\n"
	"  return n\n"
	"end\n"
	"local function add_child(key)\n"
	"  local head = redis.call('GETRANGE', key, 0, " BB_STR(BB_RECORD_COUNT_LEN) " - 1)\n"
	"  local tag, n = string.sub(head, 1, 1), 0\n"
	"  if tag == '" BB_RECORD_COUNTED "' or tag == '" BB_RECORD_CAPPED "' then\n"
	"    n = struct.unpack('>I4', head, 2)\n"
	"  else\n"
	"    local v = redis.call('GET', key) or ''\n"
	"    n, tag = count(v), '" BB_RECORD_COUNTED "'\n"
	"    redis.call('SET', key, tag .. struct.pack('>I4', n) .. v)\n"
	"  end\n"
	"  if n >= max then\n"
	"    if tag == '" BB_RECORD_COUNTED "' then\n"
	"      redis.call('SETRANGE', key, 0, '" BB_RECORD_CAPPED "')\n"
	"    end\n"
	"    return 0\n"
	"  end\n"
	"  redis.call('SETRANGE', key, 1, struct.pack('>I4', n + 1))\n"
	"  redis.call('APPEND', key, ARGV[2])\n"
	"  return 1\n"
	"end\n"
	"redis.call('APPEND', KEYS[1], ARGV[1])\n"
	"redis.call('PEXPIRE', KEYS[1], ttl)\n"
	"local dropped = 0\n"
	"for k = 2, nparents + 1 do\n"
	"  dropped = dropped + 1 - add_child(KEYS[k])\n"
	"  redis.call('PEXPIRE', KEYS[k], ttl)\n"
	"end\n"
	"if ARGV[5] then\n"
	"  local claim = KEYS[#KEYS]\n"
	"  local held = redis.call('GET', claim)\n"
	"  if held and string.sub(held, 1, #ARGV[5]) ~= ARGV[5] then\n"
	"    return { dropped, 0 }\n"
	"  end\n"
	"  redis.call('SET', claim, ARGV[6], 'PX', ARGV[7])\n"
	"end\n"
	"return { dropped, 1 }\n";

/* Compare-and-delete of a pending claim (bb_tracker_release). Sent whole
 * with EVAL: a release follows a failed publish, off the hot path. */
static const char release_script[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	"  return redis.call('DEL', KEYS[1])\n"
	"end\n"
	"return 0\n";

/* Turns a pending claim into a spooled one (bb_tracker_spool), if it is
 * still this request's. */
static const char spool_script[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	"  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
	"  return 1\n"
	"end\n"
	"return 0\n";

/* The arguments of one command, binary-safe. */
struct cmd {
	int argc;
	const char *argv[CMD_MAX_ARGS];
	size_t len[CMD_MAX_ARGS];
};

struct bb_tracker {
	bool enabled;
	char *host;			/* with Sentinels: the master last named */
	int port;
	char *sentinels;		/* REDIS_SENTINELS; "": none */
	char *sentinel_master;
	char *sentinel_password;
	/* The entry of REDIS_SENTINELS asked first; after the master it named
	 * failed (not a master any more, or unreachable), the next one is,
	 * so that a Sentinel that has not learnt of a failover is not asked
	 * first again and again. */
	int sentinel_first;
	int sentinel_named;		/* the entry that named t->host */
	int db;
	char *password;
	struct timeval timeout;
	long long until_ms;		/* a caller's deadline (0: none) */
	long long ttl_ms;
	long long window_ms;		/* how long a replay is possible */
	long max_stored;		/* larger envelopes are not kept */
	long long inflight_ms;		/* how long a claim may stay pending */
	int max_children;		/* child links recorded per parent */
	long children_dropped;		/* child links not recorded, so far */
	redisContext *c;		/* NULL while disconnected */
	int queued;			/* records appended, not yet sent */
	int pending;			/* records sent, their replies unread */
	struct bb_buf pending_events;	/* their ids, BB_UUID_STRLEN each */
	long long retry_at;		/* no connect attempt before (ms) */
	long long skip_logged_at;	/* last "skipped" line (ms) */
	long skipped;			/* events not tracked since then */
	int backoff_ms;
	char record_sha[SHA_LEN + 1];	/* of record_script, on this server */
	struct bb_buf scratch;
	struct bb_buf claim;		/* a done claim value */
};

struct bb_tracker *
bb_tracker_new(const struct bb_config *cfg, long long claim_ms)
{
	struct bb_tracker *t = bb_xcalloc(1, sizeof(*t));

	t->enabled = cfg->correlation_tracking;
	t->host = bb_xstrdup(cfg->redis_host);
	t->port = cfg->redis_port;
	t->sentinels = bb_xstrdup(cfg->redis_sentinels);
	t->sentinel_master = bb_xstrdup(cfg->redis_sentinel_master);
	t->sentinel_password = bb_xstrdup(cfg->redis_sentinel_password);
	t->db = cfg->redis_db;
	t->password = bb_xstrdup(cfg->redis_password);
	t->timeout.tv_sec = cfg->redis_timeout_ms / 1000;
	t->timeout.tv_usec = (cfg->redis_timeout_ms % 1000) * 1000;
	t->ttl_ms = (long long)cfg->redis_ttl_days * 86400 * 1000;
	t->window_ms = (long long)cfg->idempotency_window_s * 1000;
	t->max_stored = cfg->idempotency_max_stored_bytes;
	t->inflight_ms = claim_ms;
	t->max_children = cfg->max_children;
	t->backoff_ms = BACKOFF_MIN_MS;
	bb_buf_init(&t->scratch);
	bb_buf_init(&t->pending_events);
	bb_buf_init(&t->claim);
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
	free(t->sentinels);
	free(t->sentinel_master);
	free(t->sentinel_password);
	free(t->password);
	bb_buf_free(&t->scratch);
	bb_buf_free(&t->pending_events);
	bb_buf_free(&t->claim);
	free(t);
}

bool
bb_tracker_enabled(const struct bb_tracker *t)
{
	return t->enabled;
}

/* How long the next connect or reply may take: REDIS_TIMEOUT_MS, or less
 * when a caller's deadline is nearer. */
static struct timeval
wait_for(const struct bb_tracker *t)
{
	if (t->until_ms == 0)
		return t->timeout;
	long long left = t->until_ms - bb_monotonic_ms();
	long long full = t->timeout.tv_sec * 1000LL + t->timeout.tv_usec / 1000;
	if (left > full)
		return t->timeout;
	return bb_ms_to_tv(left > 1 ? left : 1);
}

/* Drops the connection after an error and schedules the next attempt. */
static void
fail(struct bb_tracker *t)
{
	if (t->c) {
		redisFree(t->c);
		t->c = NULL;
		bb_metrics_set(BB_GAUGE_REDIS_CONNECTED, false);
	}
	/* Records not answered yet went with the connection. */
	t->queued = t->pending = 0;
	bb_buf_reset(&t->pending_events);
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

static void
arg(struct cmd *c, const void *p, size_t len)
{
	c->argv[c->argc] = p;
	c->len[c->argc++] = len;
}

static void
arg_str(struct cmd *c, const char *s)
{
	arg(c, s, strlen(s));
}

static bool
send_cmd(struct bb_tracker *t, struct cmd *c)
{
	return redisAppendCommandArgv(t->c, c->argc, c->argv, c->len) ==
	    REDIS_OK;
}

/* AUTH and SELECT when configured, the ROLE checked when the address came
 * from a Sentinel (a master demoted since answers "slave"), and the record
 * script loaded -- again on every connection, as a server restarted or
 * failed over has lost it. After a SCRIPT FLUSH the next record fails with
 * NOSCRIPT: that event goes untracked and logged like any failed record,
 * and the reconnect that follows loads the script again. On failure, why
 * says what failed unless the connection does. */
static bool
login(struct bb_tracker *t, char *why, size_t whylen)
{
	char db[16];
	const char *auth[] = { "AUTH", t->password };
	const char *select[] = { "SELECT", db };
	const char *role[] = { "ROLE" };
	const char *load[] = { "SCRIPT", "LOAD", record_script };
	bool check_role = t->sentinels[0] != '\0';
	int before = (t->password[0] != '\0') + (t->db != 0);
	redisReply *r;
	bool ok;

	snprintf(db, sizeof(db), "%d", t->db);
	snprintf(why, whylen, "login failed");
	if ((t->password[0] &&
	    redisAppendCommandArgv(t->c, 2, auth, NULL) != REDIS_OK) ||
	    (t->db && redisAppendCommandArgv(t->c, 2, select, NULL) != REDIS_OK) ||
	    (check_role &&
	    redisAppendCommandArgv(t->c, 1, role, NULL) != REDIS_OK) ||
	    redisAppendCommandArgv(t->c, 3, load, NULL) != REDIS_OK)
		return false;
	while (before--) {
		if (!read_reply(t, &r))
			return false;
		freeReplyObject(r);
	}
	if (check_role) {
		if (!read_reply(t, &r))
			return false;
		const redisReply *e = r->type == REDIS_REPLY_ARRAY &&
		    r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING ?
		    r->element[0] : NULL;
		ok = e && strcmp(e->str, "master") == 0;
		if (!ok)
			snprintf(why, whylen, "not a master (ROLE %s)",
			    e ? e->str : "?");
		freeReplyObject(r);
		if (!ok)
			return false;
	}
	if (!read_reply(t, &r))
		return false;
	ok = r->type == REDIS_REPLY_STRING && r->len == SHA_LEN;
	if (ok)
		memcpy(t->record_sha, r->str, SHA_LEN + 1);
	freeReplyObject(r);
	return ok;
}

bool
bb_sentinel_master_addr(const struct redisReply *r, char *host,
    size_t hostlen, int *port)
{
	const redisReply *h, *p;
	long n = 0;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
		return false;
	h = r->element[0];
	p = r->element[1];
	if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_STRING ||
	    h->len == 0 || h->len >= hostlen || memchr(h->str, '\0', h->len) ||
	    p->len == 0 || p->len > 5)
		return false;
	for (size_t k = 0; k < p->len; k++) {
		if (p->str[k] < '0' || p->str[k] > '9')
			return false;
		n = n * 10 + (p->str[k] - '0');
	}
	if (n < 1 || n > 65535)
		return false;
	memcpy(host, h->str, h->len);
	host[h->len] = '\0';
	*port = (int)n;
	return true;
}

/* One command to a Sentinel; NULL with why set when it fails or answers
 * an error. */
static redisReply *
sentinel_command(redisContext *s, int argc, const char **argv, char *why,
    size_t whylen)
{
	redisReply *r = redisCommandArgv(s, argc, argv, NULL);

	if (r == NULL) {
		snprintf(why, whylen, "%s: %s", argv[0],
		    timed_out(s) ? "timed out" : s->errstr);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, whylen, "%s: %.*s", argv[0], (int)r->len, r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* Asks the Sentinel at host:port where the master is; true (and t->host
 * and t->port set) when it says. */
static bool
ask_sentinel(struct bb_tracker *t, const char *host, int port)
{
	const char *auth[] = { "AUTH", t->sentinel_password };
	const char *get[] = { "SENTINEL", "get-master-addr-by-name",
	    t->sentinel_master };
	char master[256], why[160] = "";
	struct timeval tv = wait_for(t);
	redisContext *s = redisConnectWithTimeout(host, port, tv);
	redisReply *r = NULL;
	int master_port;
	bool ok = false;

	if (s == NULL || s->err || redisSetTimeout(s, tv) != REDIS_OK) {
		snprintf(why, sizeof(why), "%s", s ? s->errstr : "out of memory");
		goto done;
	}
	if (t->sentinel_password[0]) {
		if ((r = sentinel_command(s, 2, auth, why, sizeof(why))) == NULL)
			goto done;
		freeReplyObject(r);
	}
	r = sentinel_command(s, 3, get, why, sizeof(why));
	if (r == NULL)
		goto done;
	if (r->type == REDIS_REPLY_NIL)
		snprintf(why, sizeof(why), "it does not know master %s",
		    t->sentinel_master);
	else if (!bb_sentinel_master_addr(r, master, sizeof(master),
	    &master_port))
		snprintf(why, sizeof(why), "unexpected reply to SENTINEL "
		    "get-master-addr-by-name");
	else
		ok = true;
done:
	if (r)
		freeReplyObject(r);
	if (s)
		redisFree(s);
	if (!ok) {
		bb_log_warning("Redis Sentinel %s:%d refused: %s", host, port,
		    why);
		return false;
	}
	bb_log_info("Redis master %s is at %s:%d (from Sentinel %s:%d)",
	    t->sentinel_master, master, master_port, host, port);
	free(t->host);
	t->host = bb_xstrdup(master);
	t->port = master_port;
	return true;
}

/* Asks the Sentinels in turn, from t->sentinel_first round the list,
 * until one names the master. */
static bool
find_master(struct bb_tracker *t)
{
	char host[256];
	int port, got = 0, n = 0;

	for (const char *list = t->sentinels;
	    bb_host_port_next(&list, host, sizeof(host), &port) != 0;)
		n++;
	for (int step = 0; step < n; step++) {
		if (t->until_ms && bb_monotonic_ms() >= t->until_ms)
			break;		/* the caller's deadline: ask no more */
		int k = (t->sentinel_first + step) % n;
		const char *list = t->sentinels;
		for (int skip = 0; skip <= k; skip++)
			got = bb_host_port_next(&list, host, sizeof(host), &port);
		if (got < 0) {
			bb_log_warning("a REDIS_SENTINELS entry is not host:port "
			    "with a host under %zu bytes; skipped", sizeof(host));
		} else if (ask_sentinel(t, host, port)) {
			t->sentinel_named = k;
			return true;
		}
	}
	bb_log_warning("Redis master %s: no Sentinel named it",
	    t->sentinel_master);
	return false;
}

/* Connects if there is no connection and the backoff has passed; with
 * Sentinels, to the master they name now. */
static bool
ensure(struct bb_tracker *t)
{
	char why[64] = "out of memory";

	if (t->c)
		return true;
	if (bb_monotonic_ms() < t->retry_at)
		return false;
	if (t->sentinels[0] && !find_master(t)) {
		bb_metrics_add(BB_REDIS_CONNECT_FAILED, 1);
		fail(t);
		return false;
	}
	if (t->host[0] == '/')
		t->c = redisConnectUnixWithTimeout(t->host, wait_for(t));
	else
		t->c = redisConnectWithTimeout(t->host, t->port, wait_for(t));
	if (t->c == NULL || t->c->err ||
	    redisSetTimeout(t->c, wait_for(t)) != REDIS_OK ||
	    !login(t, why, sizeof(why))) {
		bb_log_warning("Redis at %s:%d unavailable: %s", t->host, t->port,
		    t->c && t->c->errstr[0] ? t->c->errstr : why);
		bb_metrics_add(BB_REDIS_CONNECT_FAILED, 1);
		if (t->sentinels[0])	/* its Sentinel named a wrong master */
			t->sentinel_first = t->sentinel_named + 1;
		fail(t);
		return false;
	}
	t->backoff_ms = BACKOFF_MIN_MS;
	bb_metrics_add(BB_REDIS_CONNECT_OK, 1);
	bb_metrics_set(BB_GAUGE_REDIS_CONNECTED, true);
	bb_log_info("Redis connected at %s:%d", t->host, t->port);
	return true;
}

bool
bb_tracker_healthy(struct bb_tracker *t, int budget_ms)
{
	redisReply *r;
	bool up = false;

	if (!t->enabled)
		return false;
	t->until_ms = bb_monotonic_ms() + budget_ms;
	if (t->c)
		redisSetTimeout(t->c, wait_for(t));
	bb_tracker_settle(t);
	if (ensure(t)) {
		redisSetTimeout(t->c, wait_for(t));
		if (redisAppendCommand(t->c, "PING") != REDIS_OK ||
		    !read_reply(t, &r)) {
			fail(t);
		} else {
			freeReplyObject(r);
			up = true;
		}
	}
	t->until_ms = 0;
	if (t->c)
		redisSetTimeout(t->c, t->timeout);
	return up;
}

bool
bb_tracker_used_memory(struct bb_tracker *t, char *out, size_t len)
{
	redisReply *r;
	bool ok = false;

	if (!t->enabled || !ensure(t))
		return false;
	if (redisAppendCommand(t->c, "INFO memory") != REDIS_OK ||
	    !read_reply(t, &r)) {
		fail(t);
		return false;
	}
	const char *v = r->type == REDIS_REPLY_STRING ? strstr(r->str,
	    "used_memory_human:") : NULL;
	if (v) {
		v += strlen("used_memory_human:");
		snprintf(out, len, "%.*s", (int)strcspn(v, "\r\n"), v);
		ok = true;
	}
	freeReplyObject(r);
	return ok;
}

static void
idem_key(const char *event_id, char *out)
{
	bb_id id;

	bb_id_parse(event_id, id);
	memcpy(out, IDEM_PREFIX, sizeof(IDEM_PREFIX) - 1);
	memcpy(out + sizeof(IDEM_PREFIX) - 1, id, 16);
}

/* Logs the failure of the tracking of event_id and drops the connection. */
static void
report(struct bb_tracker *t, const char *event_id)
{
	bool timeout = timed_out(t->c);

	bb_metrics_add(timeout ? BB_TRACKING_TIMEOUT : BB_TRACKING_ERROR, 1);
	if (timeout)
		bb_log_warning("Correlation tracking timed out for event %s",
		    event_id);
	else
		bb_log_warning("Correlation tracking failed for event %s: %s",
		    event_id, t->c && t->c->err ? t->c->errstr : "error reply");
	fail(t);
}

/* Logs the failure of every record sent and not answered, then drops the
 * connection. */
static void
report_pending(struct bb_tracker *t)
{
	bool timeout = timed_out(t->c);

	bb_metrics_add(timeout ? BB_TRACKING_TIMEOUT : BB_TRACKING_ERROR,
	    (uint64_t)(t->pending + t->queued));
	for (int k = 0; k < t->pending + t->queued; k++) {
		const char *id = t->pending_events.data + k * BB_UUID_STRLEN;
		if (timeout)
			bb_log_warning("Correlation tracking timed out for event "
			    "%.*s", BB_UUID_STRLEN, id);
		else
			bb_log_warning("Correlation tracking failed for event "
			    "%.*s: %s", BB_UUID_STRLEN, id, t->c && t->c->err ?
			    t->c->errstr : "error reply");
	}
	fail(t);
}

/* While Redis is known to be down, events go untracked; say so, but at most
 * once a second, with how many. */
static void
skipped(struct bb_tracker *t, const char *event_id)
{
	long long now = bb_monotonic_ms();

	bb_metrics_add(BB_TRACKING_SKIPPED, 1);
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
    const char *envelope, size_t envelope_len,
    const struct bb_claim_token *claim)
{
	char keys[1 + BB_MAX_PARENTS][BB_RECORD_KEY_LEN];
	char ikey[IDEM_KEY_LEN], nkeys[16], ttl[24], max[16], window[24];
	struct bb_buf *b = &t->scratch;
	struct cmd c = { 0 };
	bool claimed = claim && claim->held;
	bb_id id;

	/* Records queued for one flush go out together; only the first of
	 * them reads the replies of what was sent before. */
	if (t->queued == 0)
		bb_tracker_settle(t);
	if (!t->enabled)
		return;
	if (!ensure(t)) {
		skipped(t, env->event_id);
		return;
	}
	bb_id_parse(env->event_id, id);
	bb_buf_reset(b);
	bb_record_meta(b, env);
	size_t meta_len = b->len;
	bb_record_child(b, id);

	snprintf(nkeys, sizeof(nkeys), "%d", 1 + env->nparents + claimed);
	arg_str(&c, "EVALSHA");
	arg(&c, t->record_sha, SHA_LEN);
	arg_str(&c, nkeys);
	bb_record_key(id, keys[0]);
	for (int k = 0; k < env->nparents; k++) {
		bb_id parent;
		bb_id_parse(env->parents[k], parent);
		bb_record_key(parent, keys[1 + k]);
	}
	for (int k = 0; k <= env->nparents; k++)
		arg(&c, keys[k], BB_RECORD_KEY_LEN);
	if (claimed) {
		idem_key(env->event_id, ikey);
		arg(&c, ikey, IDEM_KEY_LEN);
	}
	snprintf(ttl, sizeof(ttl), "%lld", t->ttl_ms);
	snprintf(max, sizeof(max), "%d", t->max_children);
	arg(&c, b->data, meta_len);
	arg(&c, b->data + meta_len, b->len - meta_len);
	arg_str(&c, ttl);
	arg_str(&c, max);
	if (claimed) {
		/* A client must not be able to fill Redis for a whole window
		 * with large idempotent events: past the cap only the hash is
		 * kept, and a replay answers with the id alone. */
		bool keep = (long)envelope_len <= t->max_stored;
		bb_buf_reset(&t->claim);
		bb_claim_done(&t->claim, claim->value, keep ? envelope : "",
		    keep ? envelope_len : 0);
		snprintf(window, sizeof(window), "%lld", t->window_ms);
		arg(&c, claim->value, claim->spooled ? 1 + BB_BODY_HASH_LEN :
		    BB_CLAIM_PENDING_LEN);
		arg(&c, t->claim.data, t->claim.len);
		arg_str(&c, window);
	}
	if (!send_cmd(t, &c)) {
		report(t, env->event_id);
		return;
	}
	bb_buf_append(&t->pending_events, env->event_id, BB_UUID_STRLEN);
	t->queued++;
}

void
bb_tracker_flush(struct bb_tracker *t)
{
	int done = 0;

	if (t->queued == 0)
		return;
	/* Sent now; the replies are read by bb_tracker_settle, while the
	 * next publishes wait for their confirms. */
	while (!done) {
		if (redisBufferWrite(t->c, &done) != REDIS_OK) {
			t->pending += t->queued;
			t->queued = 0;
			report_pending(t);
			return;
		}
	}
	t->pending += t->queued;
	t->queued = 0;
}

void
bb_tracker_settle(struct bb_tracker *t)
{
	redisReply *r;

	bb_tracker_flush(t);
	for (int k = 0; k < t->pending; k++) {
		const char *id = t->pending_events.data + k * BB_UUID_STRLEN;
		if (!read_reply(t, &r)) {
			t->pending -= k;
			memmove(t->pending_events.data, id,
			    (size_t)t->pending * BB_UUID_STRLEN);
			t->pending_events.len = (size_t)t->pending * BB_UUID_STRLEN;
			report_pending(t);
			return;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_INTEGER ||
		    r->element[1]->type != REDIS_REPLY_INTEGER) {
			freeReplyObject(r);
			bb_metrics_add(BB_TRACKING_ERROR, 1);
			bb_log_warning("Correlation tracking failed for event "
			    "%.*s: unexpected reply", BB_UUID_STRLEN, id);
			continue;
		}
		bb_metrics_add(BB_TRACKING_OK, 1);
		bb_metrics_add(BB_CHILDREN_DROPPED,
		    (uint64_t)r->element[0]->integer);
		t->children_dropped += (long)r->element[0]->integer;
		if (r->element[1]->integer == 0)
			bb_log_warning("idempotency claim of event %.*s was taken "
			    "by another request before the event was recorded; "
			    "left to it", BB_UUID_STRLEN, id);
		freeReplyObject(r);
	}
	t->pending = 0;
	bb_buf_reset(&t->pending_events);
}

void
bb_tracker_idle(struct bb_tracker *t)
{
	if (t->c == NULL)
		return;
	bb_tracker_flush(t);
	struct pollfd p = { t->c ? t->c->fd : -1, POLLIN, 0 };
	if (t->pending && poll(&p, 1, 0) > 0)
		bb_tracker_settle(t);
}

enum bb_claim
bb_tracker_claim(struct bb_tracker *t, const char *event_id,
    const uint8_t *body_hash, struct bb_buf *original,
    struct bb_claim_token *claim)
{
	char ikey[IDEM_KEY_LEN], ttl[24];
	uint8_t rnd[BB_CLAIM_NONCE_LEN];
	struct cmd set = { 0 }, get = { 0 };
	redisReply *r;

	claim->held = false;
	claim->spooled = false;
	bb_tracker_settle(t);
	if (!t->enabled || !ensure(t))
		return BB_CLAIM_UNAVAILABLE;
	bb_random(rnd, sizeof(rnd));
	idem_key(event_id, ikey);
	bb_claim_pending(claim->value, body_hash, rnd);
	snprintf(ttl, sizeof(ttl), "%lld", t->inflight_ms);
	arg_str(&set, "SET");
	arg(&set, ikey, IDEM_KEY_LEN);
	arg(&set, claim->value, BB_CLAIM_PENDING_LEN);
	arg_str(&set, "NX");
	arg_str(&set, "PX");
	arg_str(&set, ttl);
	arg_str(&get, "GET");
	arg(&get, ikey, IDEM_KEY_LEN);
	/* Twice: a claim may expire between the SET and the GET. */
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!send_cmd(t, &set) || !read_reply(t, &r))
			goto unavailable;
		claim->held = (r->type == REDIS_REPLY_STATUS);
		freeReplyObject(r);
		if (claim->held)
			return BB_CLAIM_NEW;
		if (!send_cmd(t, &get) || !read_reply(t, &r))
			goto unavailable;
		enum bb_claim c;
		size_t at;
		if (r->type != REDIS_REPLY_STRING ||
		    bb_claim_read(r->str, r->len, body_hash, &c, &at) != 0) {
			freeReplyObject(r);
			continue;
		}
		if (c == BB_CLAIM_REPLAY || c == BB_CLAIM_SPOOLED)
			bb_buf_append(original, r->str + at, r->len - at);
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

/* Runs script (compare and set, or delete) on a held claim's key with the
 * claim's pending value and then its arguments args[0..nargs), giving the
 * claim up; the reply, or NULL when Redis failed (logged as "idempotency
 * claim of event ID <failed>"). */
static redisReply *
eval_on_claim(struct bb_tracker *t, const char *event_id,
    struct bb_claim_token *claim, const char *script,
    const char *const *args, const size_t *lens, int nargs,
    const char *failed)
{
	char ikey[IDEM_KEY_LEN];
	struct cmd c = { 0 };
	redisReply *r;

	if (!claim->held)
		return NULL;
	claim->held = false;
	bb_tracker_settle(t);
	if (!t->enabled || !ensure(t))
		return NULL;
	idem_key(event_id, ikey);
	arg_str(&c, "EVAL");
	arg_str(&c, script);
	arg_str(&c, "1");
	arg(&c, ikey, IDEM_KEY_LEN);
	arg(&c, claim->value, BB_CLAIM_PENDING_LEN);
	for (int k = 0; k < nargs; k++)
		arg(&c, args[k], lens[k]);
	if (!send_cmd(t, &c) || !read_reply(t, &r)) {
		bb_log_warning("idempotency claim of event %s %s: %s", event_id,
		    failed, t->c && t->c->err ? t->c->errstr : "error reply");
		fail(t);
		return NULL;
	}
	return r;
}

void
bb_tracker_release(struct bb_tracker *t, const char *event_id,
    struct bb_claim_token *claim)
{
	redisReply *r = eval_on_claim(t, event_id, claim, release_script, NULL,
	    NULL, 0, "not released");

	if (r == NULL)
		return;
	if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
		bb_log_info("idempotency claim of event %s is no longer this "
		    "request's (expired or taken over); left in place", event_id);
	freeReplyObject(r);
}

void
bb_tracker_spool(struct bb_tracker *t, const char *event_id,
    struct bb_claim_token *claim, const char *envelope, size_t envelope_len)
{
	char window[24];
	bool keep = (long)envelope_len <= t->max_stored;

	if (!claim->held)
		return;
	bb_buf_reset(&t->claim);
	bb_claim_spooled(&t->claim, claim->value, keep ? envelope : "",
	    keep ? envelope_len : 0);
	snprintf(window, sizeof(window), "%lld", t->window_ms);
	const char *args[] = { t->claim.data, window };
	const size_t lens[] = { t->claim.len, strlen(window) };
	redisReply *r = eval_on_claim(t, event_id, claim, spool_script, args,
	    lens, 2, "not marked spooled");
	if (r)
		freeReplyObject(r);
}

long
bb_tracker_children_dropped(const struct bb_tracker *t)
{
	return t->children_dropped;
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
