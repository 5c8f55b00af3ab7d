#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"

#define MAGIC 0x43495254454d4242ULL	/* "BBMETRIC", little-endian */
#define LAYOUT 3			/* bump when struct slot changes */

/* One worker's counts. Only its owner writes it; a scrape reads it. Each
 * field is one aligned 64-bit word, written with a single store, so a reader
 * (or a worker killed between two stores) sees every field either before or
 * after an increment, never half of one. */
struct slot {
	uint64_t used;			/* claimed at least once */
	uint64_t pid;			/* the last owner, for the curious */
	uint64_t counter[BB_COUNTERS];
	uint64_t gauge[BB_GAUGES];
	uint64_t http[BB_METRICS_ROUTES][BB_METRICS_CODES];
	uint64_t bucket[BB_METRICS_BUCKETS + 1];
	uint64_t sum_us;
} __attribute__((aligned(64)));	/* no two owners share a cache line */

struct header {
	uint64_t magic;
	uint64_t layout;
	uint64_t slots;
	uint64_t slot_size;
} __attribute__((aligned(64)));

#define FILE_SIZE (sizeof(struct header) + \
	BB_METRICS_SLOTS * sizeof(struct slot))
#define SLOT_OFFSET(k) ((off_t)(sizeof(struct header) + \
	(size_t)(k) * sizeof(struct slot)))

static struct {
	int fd;
	struct slot *slots;	/* the mapping, after the header */
	struct slot *mine;	/* NULL while counting is off */
	int index;
	bool configured;	/* METRICS_PATH is set */
} m = { -1, NULL, NULL, -1, false };

/* The le bounds of bloodbank_publish_duration_seconds, as the contract
 * lists them, in microseconds and as written. */
static const long long bound_us[BB_METRICS_BUCKETS] = {
	1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
	2500000, 5000000,
};
static const char *const bound_text[BB_METRICS_BUCKETS] = {
	"0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
	"2.5", "5",
};

static const int codes[BB_METRICS_CODES - 1] = {
	200, 202, 207, 400, 401, 404, 405, 409, 413, 415, 422, 500, 503, 504,
};

static const char *const route_labels[BB_METRICS_ROUTES] = {
	"none", "healthz", "prompt", "response", "artifact", "fireflies",
	"generic", "events", "batch", "debug", "metrics", "schemas",
};

static int
route_index(enum bb_route r)
{
	switch (r) {
	case BB_ROUTE_NONE: return 0;
	case BB_ROUTE_HEALTHZ: return 1;
	case BB_ROUTE_LLM_PROMPT: return 2;
	case BB_ROUTE_LLM_RESPONSE: return 3;
	case BB_ROUTE_ARTIFACT: return 4;
	case BB_ROUTE_FIREFLIES: return 5;
	case BB_ROUTE_EVENT_TYPE: return 6;
	case BB_ROUTE_EVENTS: return 7;
	case BB_ROUTE_BATCH: return 8;
	case BB_ROUTE_CORRELATION:
	case BB_ROUTE_CHAIN: return 9;
	case BB_ROUTE_METRICS: return 10;
	case BB_ROUTE_SCHEMAS: return 11;
	}
	return 0;
}

/* ---------------------------------------------------------- the file */

static int
lock(int fd, short type, off_t start, off_t len, bool wait)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
		.l_start = start, .l_len = len };

	return fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
}

/* True when another open file description holds a lock in the range. */
static int
held(int fd, off_t start, off_t len, bool *out)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
		.l_start = start, .l_len = len };

	if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
		return -1;
	*out = fl.l_type != F_UNLCK;
	return 0;
}

/* Under the header's lock: a file of another layout (an older version) or
 * a new, empty one is laid out afresh -- unless some worker still counts
 * in it. A file that is not ours (no header, and not one whose lay-out was
 * interrupted after the truncation: all zero) is refused, never truncated:
 * METRICS_PATH set to the wrong file must not destroy it. */
static int
prepare(int fd, char *err, size_t errlen)
{
	struct header h = { 0 };
	struct stat st;
	bool busy;

	if (fstat(fd, &st) != 0)
		goto syserr;
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		return -1;
	}
	if (st.st_size >= (off_t)sizeof(h) &&
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		goto syserr;
	if (st.st_size > 0 && h.magic != MAGIC &&
	    !(st.st_size == (off_t)FILE_SIZE && h.magic == 0 && h.layout == 0)) {
		snprintf(err, errlen, "not a Bloodbank metrics file; refusing "
		    "to overwrite it");
		return -1;
	}
	if (h.magic == MAGIC && h.layout == LAYOUT &&
	    h.slots == BB_METRICS_SLOTS && h.slot_size == sizeof(struct slot) &&
	    st.st_size == (off_t)FILE_SIZE)
		return 0;
	if (st.st_size > 0) {
		if (held(fd, (off_t)sizeof(h), 0, &busy) != 0)
			goto syserr;
		if (busy) {
			snprintf(err, errlen, "it has another layout and "
			    "workers of another version count in it");
			return -1;
		}
	}
	h = (struct header){ MAGIC, LAYOUT, BB_METRICS_SLOTS,
		sizeof(struct slot) };
	if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)FILE_SIZE) != 0 ||
	    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		goto syserr;
	return 0;
syserr:
	snprintf(err, errlen, "%s", strerror(errno));
	return -1;
}

/* The first slot nobody holds. Its counts are kept (a dead worker's, or
 * none); its gauges are this worker's from now on. */
static int
claim(void)
{
	for (int k = 0; k < BB_METRICS_SLOTS; k++) {
		if (lock(m.fd, F_WRLCK, SLOT_OFFSET(k),
		    (off_t)sizeof(struct slot), false) != 0)
			continue;
		struct slot *s = &m.slots[k];
		for (int g = 0; g < BB_GAUGES; g++)
			__atomic_store_n(&s->gauge[g], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->pid, (uint64_t)getpid(), __ATOMIC_RELAXED);
		__atomic_store_n(&s->used, 1, __ATOMIC_RELEASE);
		m.index = k;
		m.mine = s;
		return 0;
	}
	return -1;
}

int
bb_metrics_open(const char *path, char *err, size_t errlen)
{
	void *map;
	int rc;

	bb_metrics_close();
	m.configured = path[0] != '\0';
	if (!m.configured)
		return 0;
	m.fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
	if (m.fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (lock(m.fd, F_WRLCK, 0, (off_t)sizeof(struct header), true) != 0) {
		snprintf(err, errlen, "%s: lock: %s", path, strerror(errno));
		goto error;
	}
	rc = prepare(m.fd, err, errlen);
	lock(m.fd, F_UNLCK, 0, (off_t)sizeof(struct header), false);
	if (rc != 0)
		goto error;
	map = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);
	if (map == MAP_FAILED) {
		snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
		goto error;
	}
	m.slots = (struct slot *)((char *)map + sizeof(struct header));
	if (claim() != 0) {
		snprintf(err, errlen, "%s: all %d slots are held by live workers",
		    path, BB_METRICS_SLOTS);
		goto error;
	}
	bb_metrics_add(BB_WORKER_STARTS, 1);
	return 0;
error:
	bb_metrics_close();
	return -1;
}

void
bb_metrics_close(void)
{
	if (m.slots)
		munmap((char *)m.slots - sizeof(struct header), FILE_SIZE);
	if (m.fd >= 0)
		close(m.fd);	/* drops the slot's lock */
	m.fd = -1;
	m.slots = m.mine = NULL;
	m.index = -1;
}

bool
bb_metrics_enabled(void)
{
	return m.mine != NULL;
}

/* ---------------------------------------------------------- counting */

/* This process is the slot's only writer: a relaxed load and store, no
 * read-modify-write instruction, and a reader sees whole values. */
static inline void
bump(uint64_t *field, uint64_t n)
{
	__atomic_store_n(field, __atomic_load_n(field, __ATOMIC_RELAXED) + n,
	    __ATOMIC_RELAXED);
}

void
bb_metrics_add(enum bb_counter c, uint64_t n)
{
	if (m.mine)
		bump(&m.mine->counter[c], n);
}

void
bb_metrics_set(enum bb_gauge g, bool on)
{
	if (m.mine)
		__atomic_store_n(&m.mine->gauge[g], on ? 1 : 0, __ATOMIC_RELAXED);
}

void
bb_metrics_gauge(enum bb_gauge g, uint64_t value)
{
	if (m.mine)
		__atomic_store_n(&m.mine->gauge[g], value, __ATOMIC_RELAXED);
}

void
bb_metrics_request(enum bb_route route, int status)
{
	if (m.mine)
		bump(&m.mine->http[route_index(route)]
		    [bb_metrics_code_index(status)], 1);
}

void
bb_metrics_published(uint64_t n, long long us)
{
	if (m.mine == NULL)
		return;
	if (us < 0)
		us = 0;
	bump(&m.mine->counter[BB_EVENTS_PUBLISHED], n);
	bump(&m.mine->bucket[bb_metrics_bucket(us)], n);
	bump(&m.mine->sum_us, n * (uint64_t)us);
}

enum bb_counter
bb_metrics_outcome(enum bb_publish_result r)
{
	switch (r) {
	case BB_PUBLISH_OK: return BB_EVENTS_PUBLISHED;
	case BB_PUBLISH_UNAVAILABLE: return BB_EVENTS_UNAVAILABLE;
	case BB_PUBLISH_BLOCKED: return BB_EVENTS_BLOCKED;
	case BB_PUBLISH_NACKED: return BB_EVENTS_NACKED;
	case BB_PUBLISH_PENDING:	/* answered as a timeout */
	case BB_PUBLISH_TIMEOUT: return BB_EVENTS_TIMEOUT;
	case BB_PUBLISH_UNROUTABLE: return BB_EVENTS_UNROUTABLE;
	}
	return BB_EVENTS_TIMEOUT;
}

/* ---------------------------------------------------------- a scrape */

static uint64_t
load(const uint64_t *field)
{
	return __atomic_load_n(field, __ATOMIC_RELAXED);
}

int
bb_metrics_collect(struct bb_metrics_totals *t)
{
	memset(t, 0, sizeof(*t));
	if (m.mine == NULL)
		return -1;
	t->now_ms = bb_realtime_ms();
	for (int k = 0; k < BB_METRICS_SLOTS; k++) {
		const struct slot *s = &m.slots[k];
		bool live = true;
		if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE))
			continue;
		/* Our own lock does not conflict with our own description. */
		if (k != m.index && held(m.fd, SLOT_OFFSET(k),
		    (off_t)sizeof(struct slot), &live) != 0)
			return -1;
		for (int c = 0; c < BB_COUNTERS; c++)
			t->counter[c] += load(&s->counter[c]);
		for (int r = 0; r < BB_METRICS_ROUTES; r++)
			for (int c = 0; c < BB_METRICS_CODES; c++)
				t->http[r][c] += load(&s->http[r][c]);
		for (int b = 0; b <= BB_METRICS_BUCKETS; b++)
			t->bucket[b] += load(&s->bucket[b]);
		t->sum_us += load(&s->sum_us);
		if (!live)
			continue;
		t->workers++;
		for (int g = 0; g < BB_GAUGES; g++) {
			uint64_t v = load(&s->gauge[g]);
			if (g != BB_GAUGE_SPOOL_OLDEST_MS)
				t->gauge[g] += v;
			else if (v && (!t->gauge[g] || v < t->gauge[g]))
				t->gauge[g] = v;
		}
	}
	return 0;
}

/* ---------------------------------------------------------- the text */

int
bb_metrics_bucket(long long us)
{
	for (int b = 0; b < BB_METRICS_BUCKETS; b++)
		if (us <= bound_us[b])
			return b;
	return BB_METRICS_BUCKETS;
}

int
bb_metrics_code_index(int status)
{
	for (int c = 0; c < BB_METRICS_CODES - 1; c++)
		if (codes[c] == status)
			return c;
	return BB_METRICS_CODES - 1;
}

void
bb_metrics_write_label(struct bb_buf *out, const char *value)
{
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			bb_buf_puts(out, "\\\\");
		else if (*p == '"')
			bb_buf_puts(out, "\\\"");
		else if (*p == '\n')
			bb_buf_puts(out, "\\n");
		else
			bb_buf_putc(out, *p);
	}
}

static void
head(struct bb_buf *out, const char *name, const char *type, const char *help)
{
	bb_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

static void
labelled(struct bb_buf *out, const char *name, const char *label,
    const char *const *values, const uint64_t *counts, int n)
{
	for (int k = 0; k < n; k++)
		bb_buf_printf(out, "%s{%s=\"%s\"} %llu\n", name, label, values[k],
		    (unsigned long long)counts[k]);
}

static void
write_requests(const struct bb_metrics_totals *t, struct bb_buf *out)
{
	static const char name[] = "bloodbank_http_requests_total";

	head(out, name, "counter", "HTTP requests answered, by route and "
	    "status.");
	for (int r = 0; r < BB_METRICS_ROUTES; r++) {
		for (int c = 0; c < BB_METRICS_CODES; c++) {
			if (t->http[r][c] == 0)
				continue;
			bb_buf_printf(out, "%s{route=\"%s\",code=\"", name,
			    route_labels[r]);
			if (c < BB_METRICS_CODES - 1)
				bb_buf_printf(out, "%d", codes[c]);
			else
				bb_buf_puts(out, "other");
			bb_buf_printf(out, "\"} %llu\n",
			    (unsigned long long)t->http[r][c]);
		}
	}
}

/* Buckets are stored one count per bucket; the text is cumulative, and
 * _count is their total, so the three always agree. */
static void
write_histogram(const struct bb_metrics_totals *t, struct bb_buf *out)
{
	static const char name[] = "bloodbank_publish_duration_seconds";
	uint64_t cumulative = 0;

	head(out, name, "histogram", "Time from a request's start to the "
	    "broker's confirm, per published event.");
	for (int b = 0; b <= BB_METRICS_BUCKETS; b++) {
		cumulative += t->bucket[b];
		bb_buf_printf(out, "%s_bucket{le=\"%s\"} %llu\n", name,
		    b < BB_METRICS_BUCKETS ? bound_text[b] : "+Inf",
		    (unsigned long long)cumulative);
	}
	bb_buf_printf(out, "%s_sum %llu.%06llu\n", name,
	    (unsigned long long)(t->sum_us / 1000000),
	    (unsigned long long)(t->sum_us % 1000000));
	bb_buf_printf(out, "%s_count %llu\n", name,
	    (unsigned long long)cumulative);
}

static void
single(struct bb_buf *out, const char *name, const char *type,
    const char *help, uint64_t value)
{
	head(out, name, type, help);
	bb_buf_printf(out, "%s %llu\n", name, (unsigned long long)value);
}

void
bb_metrics_write(const struct bb_metrics_totals *t, const char *version,
    struct bb_buf *out)
{
	static const char *const events[] = { "published", "replayed",
		"rejected", "unavailable", "blocked", "nacked", "timeout",
		"unroutable", "spooled", "forwarded" };
	static const char *const tracking[] = { "ok", "timeout", "error",
		"skipped" };
	static const char *const results[] = { "ok", "failed" };

	write_requests(t, out);
	head(out, "bloodbank_events_total", "counter", "Events by outcome.");
	labelled(out, "bloodbank_events_total", "outcome", events,
	    &t->counter[BB_EVENTS_PUBLISHED], 10);
	write_histogram(t, out);
	head(out, "bloodbank_tracking_writes_total", "counter",
	    "Correlation tracking writes by outcome.");
	labelled(out, "bloodbank_tracking_writes_total", "outcome", tracking,
	    &t->counter[BB_TRACKING_OK], 4);
	head(out, "bloodbank_broker_connections_total", "counter",
	    "AMQP connection attempts by result.");
	labelled(out, "bloodbank_broker_connections_total", "result", results,
	    &t->counter[BB_BROKER_CONNECT_OK], 2);
	head(out, "bloodbank_redis_connections_total", "counter",
	    "Redis connection attempts by result.");
	labelled(out, "bloodbank_redis_connections_total", "result", results,
	    &t->counter[BB_REDIS_CONNECT_OK], 2);
	single(out, "bloodbank_workers", "gauge", "Live workers in the pool.",
	    t->workers);
	single(out, "bloodbank_worker_starts_total", "counter",
	    "Workers started, first starts included.",
	    t->counter[BB_WORKER_STARTS]);
	single(out, "bloodbank_broker_connected", "gauge",
	    "Workers with an open AMQP connection.",
	    t->gauge[BB_GAUGE_BROKER_CONNECTED]);
	single(out, "bloodbank_broker_blocked", "gauge",
	    "Workers whose AMQP connection the broker blocks.",
	    t->gauge[BB_GAUGE_BROKER_BLOCKED]);
	single(out, "bloodbank_redis_connected", "gauge",
	    "Workers with an open Redis connection.",
	    t->gauge[BB_GAUGE_REDIS_CONNECTED]);
	single(out, "bloodbank_tracking_children_dropped_total", "counter",
	    "Child links not recorded: the parent had "
	    "CORRELATION_MAX_CHILDREN.", t->counter[BB_CHILDREN_DROPPED]);
	single(out, "bloodbank_spool_events", "gauge",
	    "Events in the spool, waiting to be forwarded.",
	    t->gauge[BB_GAUGE_SPOOL_EVENTS]);
	single(out, "bloodbank_spool_bytes", "gauge",
	    "Bytes of the spool's waiting events.",
	    t->gauge[BB_GAUGE_SPOOL_BYTES]);
	int64_t oldest = (int64_t)t->gauge[BB_GAUGE_SPOOL_OLDEST_MS];
	int64_t age = oldest && t->now_ms > oldest ? t->now_ms - oldest : 0;
	head(out, "bloodbank_spool_oldest_seconds", "gauge",
	    "Age of the oldest event in the spool; 0 when it is empty.");
	bb_buf_printf(out, "bloodbank_spool_oldest_seconds %lld.%03lld\n",
	    (long long)(age / 1000), (long long)(age % 1000));
	single(out, "bloodbank_spool_set_aside_total", "counter",
	    "Damaged spool records moved to SPOOL_DIR/aside.",
	    t->counter[BB_SPOOL_SET_ASIDE]);
	head(out, "bloodbank_build_info", "gauge", "The running version.");
	bb_buf_puts(out, "bloodbank_build_info{version=\"");
	bb_metrics_write_label(out, version);
	bb_buf_puts(out, "\"} 1\n");
}

void
bb_metrics_answer(struct bb_response *resp)
{
	struct bb_metrics_totals t;

	if (!m.configured) {
		bb_response_error(resp, 404, "not_found", "metrics are off "
		    "(METRICS_PATH is empty)");
		return;
	}
	if (bb_metrics_collect(&t) != 0) {
		bb_response_error(resp, 503, "metrics_unavailable", "this "
		    "worker cannot read the pool's metrics file (METRICS_PATH); "
		    "its log says why");
		return;
	}
	bb_metrics_write(&t, PACKAGE_VERSION, &resp->body);
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
