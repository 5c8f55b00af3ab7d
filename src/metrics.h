/* metrics: the counters and gauges of GET /metrics (CONTRACT §4.9), kept
 * for the whole pool in one shared file, METRICS_PATH.
 *
 * The file holds a header and BB_METRICS_SLOTS slots. Each worker claims
 * one slot with an OFD write lock on the slot's byte range and is its only
 * writer: counting is a load and a store in shared memory, no system call
 * and no locked instruction. A scrape adds up every slot ever used. When a
 * worker dies the kernel drops its lock; its slot keeps its counts, so
 * totals never go backwards, and the next worker to start adopts the slot
 * and counts on from there. Gauges are summed over the slots whose lock is
 * held, so a dead worker's gauges vanish with it. */
#ifndef BB_METRICS_H
#define BB_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "confirms.h"
#include "http.h"

#define BB_METRICS_SLOTS 512
#define BB_METRICS_BUCKETS 11	/* finite histogram buckets; +Inf besides */

enum bb_counter {
	/* bloodbank_events_total{outcome}, in the contract's order */
	BB_EVENTS_PUBLISHED,
	BB_EVENTS_REPLAYED,
	BB_EVENTS_REJECTED,
	BB_EVENTS_UNAVAILABLE,
	BB_EVENTS_BLOCKED,
	BB_EVENTS_NACKED,
	BB_EVENTS_TIMEOUT,
	BB_EVENTS_UNROUTABLE,
	BB_EVENTS_SPOOLED,		/* answered 202 (CONTRACT §12) */
	BB_EVENTS_FORWARDED,		/* from the spool, confirmed */
	/* bloodbank_tracking_writes_total{outcome} */
	BB_TRACKING_OK,
	BB_TRACKING_TIMEOUT,
	BB_TRACKING_ERROR,
	BB_TRACKING_SKIPPED,
	/* bloodbank_broker_connections_total, _redis_connections_total */
	BB_BROKER_CONNECT_OK,
	BB_BROKER_CONNECT_FAILED,
	BB_REDIS_CONNECT_OK,
	BB_REDIS_CONNECT_FAILED,
	BB_WORKER_STARTS,
	BB_CHILDREN_DROPPED,
	BB_SPOOL_SET_ASIDE,		/* damaged spool records */
	BB_COUNTERS
};

enum bb_gauge {
	BB_GAUGE_BROKER_CONNECTED,
	BB_GAUGE_BROKER_BLOCKED,
	BB_GAUGE_REDIS_CONNECTED,
	/* the spool segments a worker holds */
	BB_GAUGE_SPOOL_EVENTS,
	BB_GAUGE_SPOOL_BYTES,
	BB_GAUGE_SPOOL_OLDEST_MS,	/* unix ms; 0: none; the pool's least */
	BB_GAUGES
};

/* The route labels (the debug endpoints share one) and the status codes
 * counted per route: every status this service answers, and "other". */
#define BB_METRICS_ROUTES 12
#define BB_METRICS_CODES 15

/* The pool's totals, as a scrape adds them up. */
struct bb_metrics_totals {
	uint64_t counter[BB_COUNTERS];
	uint64_t http[BB_METRICS_ROUTES][BB_METRICS_CODES];
	uint64_t bucket[BB_METRICS_BUCKETS + 1];	/* not cumulative */
	uint64_t sum_us;
	uint64_t gauge[BB_GAUGES];
	uint64_t workers;
	int64_t now_ms;		/* unix ms of the scrape */
};

/* Claims a slot of the file at path (created if need be) for this process.
 * An empty path turns counting off. Returns -1 with a message in err when
 * the file cannot be used; counting is off then. */
int bb_metrics_open(const char *path, char *err, size_t errlen);
/* Gives the slot up (its counts stay in the file). */
void bb_metrics_close(void);
bool bb_metrics_enabled(void);

void bb_metrics_add(enum bb_counter c, uint64_t n);
void bb_metrics_set(enum bb_gauge g, bool on);
void bb_metrics_gauge(enum bb_gauge g, uint64_t value);
/* One answered request. */
void bb_metrics_request(enum bb_route route, int status);
/* n events confirmed, us microseconds after their request started. */
void bb_metrics_published(uint64_t n, long long us);
/* The bloodbank_events_total outcome of a final publish result. */
enum bb_counter bb_metrics_outcome(enum bb_publish_result r);

/* Adds up every slot of the file; -1 when counting is off or a slot's
 * liveness cannot be read. */
int bb_metrics_collect(struct bb_metrics_totals *t);

/* Answers GET /metrics: the totals in the Prometheus text format 0.0.4;
 * 404 when METRICS_PATH is empty, 503 when the file could not be used. */
void bb_metrics_answer(struct bb_response *resp);

/* Pure, for the text writer and its tests. */
int bb_metrics_bucket(long long us);		/* index; BUCKETS is +Inf */
int bb_metrics_code_index(int status);
void bb_metrics_write(const struct bb_metrics_totals *t, const char *version,
    struct bb_buf *out);
/* A label value with \, " and newline escaped (exposition format 0.0.4). */
void bb_metrics_write_label(struct bb_buf *out, const char *value);

#endif
