#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#define MAX_SEGMENTS 4096	/* segment-000 .. segment-4095 */
#define FAILURE_LOG_MS 60000
#define BB_SPOOL_STRIKES 5	/* refusals of one record before it is set aside */

/* A segment this worker holds the lock of. */
struct segment {
	int fd;
	int number;
	bool writer;		/* the one this worker appends to */
	int64_t size;		/* its length, as this worker knows it */
	int64_t synced;		/* durable up to here; only this is sent */
	int64_t cursor;		/* the next record not handed out */
	long waiting;		/* records 'S', handed out or not */
	int64_t waiting_bytes;
	int in_flight;		/* handed out, not yet done */
	bool next_known;	/* next_ms is the record at cursor's */
	int64_t next_ms;
};

struct bb_spool {
	char *dir;
	long max_bytes;
	struct segment *segs;
	int nsegs, cap;
	int writer;		/* index in segs; -1 before the first append */
	uint64_t appended;	/* tickets handed out */
	uint64_t synced;	/* tickets made durable (or failed) */
	uint64_t lost_from, lost_to;	/* the tickets of a failed fsync */
	long long failure_logged_ms;
	long long full_logged_ms;
	long refused_full;	/* since that line */
	struct bb_spool_entry entries[BB_SPOOL_WINDOW];
	struct strike {
		int segment;
		int64_t offset;
		int count;		/* 0: a free place */
	} strikes[BB_SPOOL_WINDOW];
	struct bb_buf scratch;
};

/* A failure of the directory or the disk: logged at most once a minute. */
static void
failure(struct bb_spool *s, const char *what, int err)
{
	long long now = bb_monotonic_ms();

	if (s->failure_logged_ms && now - s->failure_logged_ms < FAILURE_LOG_MS)
		return;
	s->failure_logged_ms = now;
	bb_log_error("spool %s: %s: %s; events are answered 503 instead of "
	    "spooled", s->dir, what, strerror(err));
}

static void
segment_path(const char *dir, int number, char *out, size_t len)
{
	snprintf(out, len, "%s/segment-%03d", dir, number);
}

/* The number of a segment file's name; -1 for another file. */
static int
segment_number(const char *name)
{
	char *end;

	if (strncmp(name, "segment-", 8) != 0 || name[8] < '0' || name[8] > '9')
		return -1;
	long n = strtol(name + 8, &end, 10);
	return *end == '\0' && n >= 0 && n < MAX_SEGMENTS ? (int)n : -1;
}

static int
lock_whole(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	return fcntl(fd, F_OFD_SETLK, &fl);
}

/* True when a live worker holds the lock of the file open at fd. */
static bool
locked_by_other(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* ------------------------------------------------ reading a segment */

/* Copies a damaged record into aside/, for whoever wants to look at it. */
static void
set_aside(struct bb_spool *s, int number, int64_t at, const uint8_t *p,
    size_t len)
{
	char path[4200];
	int fd;

	/* group-writable whatever the umask, as the segments are */
	snprintf(path, sizeof(path), "%s/aside", s->dir);
	int err = mkdir(path, 0770) == 0 ? 0 : errno;
	if (err == 0 && chmod(path, 02770) != 0)
		err = errno;
	if (err != 0 && err != EEXIST) {
		failure(s, "cannot create aside/", err);
	} else {
		snprintf(path, sizeof(path), "%s/aside/segment-%03d.%lld.%lld",
		    s->dir, number, (long long)at, (long long)bb_realtime_ms());
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
		if (fd < 0 || fchmod(fd, 0660) != 0 ||
		    write(fd, p, len) != (ssize_t)len)
			failure(s, "cannot write into aside/", errno);
		if (fd >= 0)
			close(fd);
	}
	bb_metrics_add(BB_SPOOL_SET_ASIDE, 1);
	bb_log_warning("spool segment-%03d: a damaged record of %zu bytes at "
	    "offset %lld was set aside", number, len, (long long)at);
}

static bool
all_zero(const uint8_t *p, size_t len)
{
	for (size_t k = 0; k < len; k++)
		if (p[k])
			return false;
	return true;
}

static void
write_state(struct segment *g, int64_t at, char state)
{
	if (pwrite(g->fd, &state, 1, at + BB_SPOOLREC_STATE_AT) != 1)
		bb_log_warning("spool segment-%03d: cannot mark the record at "
		    "%lld: %s", g->number, (long long)at, strerror(errno));
}

/* Reads a segment just locked: counts its waiting records, sets damaged
 * ones aside, and cuts off a torn tail -- the records after the last
 * whole one, never answered, since an answer follows the fsync. */
static int
scan(struct bb_spool *s, struct segment *g)
{
	struct stat st;

	g->waiting = 0;
	g->waiting_bytes = 0;
	g->cursor = 0;
	g->next_known = false;
	if (fstat(g->fd, &st) != 0)
		return -1;
	g->size = g->synced = st.st_size;
	if (st.st_size == 0)
		return 0;
	uint8_t *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED,
	    g->fd, 0);
	if (p == MAP_FAILED)
		return -1;
	size_t size = (size_t)st.st_size, at = 0;
	while (at < size) {
		struct bb_spoolrec_head h;
		struct bb_spooled ev;
		size_t left = size - at;
		if (left < BB_SPOOLREC_HEAD || bb_spoolrec_head(p + at, &h) != 0) {
			size_t next = at + bb_spoolrec_resync(p + at, left);
			if (next == size) {
				/* a whole head's worth that is not one: the
				 * last record damaged, rather than torn (a torn
				 * append keeps its head, or is zeros) */
				if (left >= BB_SPOOLREC_HEAD && !all_zero(p + at, left))
					set_aside(s, g->number, (int64_t)at, p + at,
					    left);
				break;
			}
			/* a damaged head: what lies before the next record
			 * is set aside, then zeroed so as to be skipped */
			if (!all_zero(p + at, next - at)) {
				set_aside(s, g->number, (int64_t)at, p + at,
				    next - at);
				uint8_t zero[BB_SPOOLREC_HEAD] = { 0 };
				for (size_t k = at; k < next; k += sizeof(zero))
					if (pwrite(g->fd, zero, next - k <
					    sizeof(zero) ? next - k : sizeof(zero),
					    (off_t)k) < 0)
						break;
			}
			at = next;
			continue;
		}
		size_t len = BB_SPOOLREC_HEAD + h.body_len;
		if (len > left)
			break;			/* the torn tail */
		if (h.state == BB_SPOOLREC_WAITING &&
		    bb_spoolrec_body(&h, p + at + BB_SPOOLREC_HEAD, &ev) != 0) {
			set_aside(s, g->number, (int64_t)at, p + at, len);
			write_state(g, (int64_t)at, BB_SPOOLREC_ASIDE);
		} else if (h.state == BB_SPOOLREC_WAITING) {
			if (!g->waiting++) {
				g->cursor = (int64_t)at;
				g->next_known = true;
				g->next_ms = h.spooled_ms;
			}
			g->waiting_bytes += (int64_t)len;
		}
		at += len;
	}
	munmap(p, size);
	if (at < size) {
		bb_log_warning("spool segment-%03d: a torn record of %zu bytes "
		    "at its end (never answered) was cut off", g->number,
		    size - at);
		if (ftruncate(g->fd, (off_t)at) != 0)
			return -1;
		g->size = g->synced = (int64_t)at;
	}
	return 0;
}

/* ------------------------------------------------ held segments */

static void
publish_gauges(const struct bb_spool *s)
{
	long events = 0;
	int64_t bytes = 0, oldest = 0;

	for (int k = 0; k < s->nsegs; k++) {
		events += s->segs[k].waiting;
		bytes += s->segs[k].waiting_bytes;
		if (s->segs[k].next_known && s->segs[k].next_ms &&
		    (!oldest || s->segs[k].next_ms < oldest))
			oldest = s->segs[k].next_ms;
	}
	for (int k = 0; k < BB_SPOOL_WINDOW; k++)
		if (s->entries[k].busy && (!oldest ||
		    s->entries[k].spooled_ms < oldest))
			oldest = s->entries[k].spooled_ms;
	bb_metrics_gauge(BB_GAUGE_SPOOL_EVENTS, (uint64_t)events);
	bb_metrics_gauge(BB_GAUGE_SPOOL_BYTES, (uint64_t)bytes);
	bb_metrics_gauge(BB_GAUGE_SPOOL_OLDEST_MS, (uint64_t)oldest);
}

static int
find(const struct bb_spool *s, int number)
{
	for (int k = 0; k < s->nsegs; k++)
		if (s->segs[k].number == number)
			return k;
	return -1;
}

/* Locks segment number (created when create is true): its index in segs,
 * -2 when another worker holds it, -1 on an error (errno). */
static int
hold(struct bb_spool *s, int number, bool create)
{
	char path[4200];
	int fd;

	segment_path(s->dir, number, path, sizeof(path));
	/* not O_APPEND: Linux's pwrite appends anyway then, and a record's
	 * state is rewritten in place */
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
		if (fd < 0 && errno == EEXIST)
			return -2;	/* another worker made it just now */
	}
	if (fd < 0)
		return -1;
	if (lock_whole(fd) != 0) {
		int err = errno;
		close(fd);
		errno = err;
		return err == EAGAIN || err == EACCES ? -2 : -1;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size == 0) {
		/* new (by this worker or another that lost the race to lock
		 * it): group-writable whatever the umask, since lighttpd's
		 * workers and the master's may be different users of one
		 * group, and its name durable before anything in it is */
		int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fchmod(fd, 0660) != 0 || dfd < 0 || fsync(dfd) != 0) {
			int err = errno;
			if (dfd >= 0)
				close(dfd);
			close(fd);
			errno = err;
			return -1;
		}
		close(dfd);
	}
	if (s->nsegs == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4;
		s->segs = bb_xreallocarray(s->segs, (size_t)s->cap,
		    sizeof(*s->segs));
	}
	struct segment *g = &s->segs[s->nsegs];
	memset(g, 0, sizeof(*g));
	g->fd = fd;
	g->number = number;
	if (scan(s, g) != 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	if (g->waiting)
		bb_log_info("spool segment-%03d: %ld events to forward",
		    number, g->waiting);
	return s->nsegs++;
}

/* Lets a segment of no more use go: an adopted one once empty. */
static void
release(struct bb_spool *s, int k)
{
	close(s->segs[k].fd);
	s->segs[k] = s->segs[--s->nsegs];
	if (s->writer == s->nsegs)
		s->writer = k;
}

/* Empties a segment whose every record is forwarded. */
static void
settle(struct bb_spool *s, int k)
{
	struct segment *g = &s->segs[k];

	if (g->waiting || g->in_flight || g->size == 0 || g->synced < g->size)
		return;
	if (ftruncate(g->fd, 0) != 0) {
		bb_log_warning("spool segment-%03d: cannot empty it: %s",
		    g->number, strerror(errno));
		return;
	}
	g->size = g->synced = g->cursor = 0;
	g->next_known = false;
	if (k != s->writer)
		release(s, k);
}

struct bb_spool *
bb_spool_new(const char *dir, long max_bytes)
{
	if (dir == NULL || dir[0] == '\0')
		return NULL;
	struct bb_spool *s = bb_xcalloc(1, sizeof(*s));
	s->dir = bb_xstrdup(dir);
	s->max_bytes = max_bytes;
	s->writer = -1;
	bb_buf_init(&s->scratch);
	for (int k = 0; k < BB_SPOOL_WINDOW; k++)
		bb_buf_init(&s->entries[k].buf);
	return s;
}

void
bb_spool_free(struct bb_spool *s)
{
	if (s == NULL)
		return;
	for (int k = 0; k < s->nsegs; k++)
		close(s->segs[k].fd);
	for (int k = 0; k < BB_SPOOL_WINDOW; k++)
		bb_buf_free(&s->entries[k].buf);
	bb_buf_free(&s->scratch);
	free(s->segs);
	free(s->dir);
	free(s);
}

/* ------------------------------------------------ appending */

/* The pool's spool: every segment file's size. */
static int64_t
pool_bytes(const struct bb_spool *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *de;
	int64_t total = 0;
	struct stat st;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (segment_number(de->d_name) >= 0 &&
		    fstatat(dirfd(d), de->d_name, &st, 0) == 0)
			total += st.st_size;
	closedir(d);
	return total;
}

/* The segment this worker writes: the lowest-numbered it can lock. */
static int
writer(struct bb_spool *s)
{
	if (s->writer >= 0)
		return s->writer;
	for (int n = 0; n < MAX_SEGMENTS; n++) {
		int k = find(s, n);
		if (k < 0)
			k = hold(s, n, true);
		if (k == -1) {
			failure(s, "cannot open a segment", errno);
			return -1;
		}
		if (k >= 0) {
			s->segs[k].writer = true;
			return s->writer = k;
		}
	}
	failure(s, "every segment is held", EBUSY);
	return -1;
}

uint64_t
bb_spool_append(struct bb_spool *s, const struct bb_envelope *env,
    const char *json, size_t json_len, bool cloudevents, const uint8_t *hash)
{
	int k = writer(s);

	if (k < 0)
		return 0;
	struct segment *g = &s->segs[k];
	bb_buf_reset(&s->scratch);
	bb_spoolrec_encode(&s->scratch, env, json, json_len, cloudevents, hash,
	    bb_realtime_ms());
	if (s->scratch.len - BB_SPOOLREC_HEAD > BB_SPOOLREC_MAX_BODY) {
		bb_log_warning("event %s is too large to spool (%zu bytes, at "
		    "most %u): answered 503", env->event_id, s->scratch.len,
		    BB_SPOOLREC_MAX_BODY);
		return 0;
	}
	int64_t total = pool_bytes(s);
	if (total < 0) {
		failure(s, "cannot read the directory", errno);
		return 0;
	}
	if (total + (int64_t)s->scratch.len > s->max_bytes) {
		long long now = bb_monotonic_ms();
		s->refused_full++;
		if (!s->full_logged_ms || now - s->full_logged_ms >=
		    FAILURE_LOG_MS) {
			bb_log_warning("spool %s is full (%lld bytes, "
			    "SPOOL_MAX_BYTES %ld): %ld event%s answered 503 since "
			    "this was last said", s->dir, (long long)total,
			    s->max_bytes, s->refused_full,
			    s->refused_full == 1 ? "" : "s");
			s->full_logged_ms = now;
			s->refused_full = 0;
		}
		return 0;
	}
	ssize_t n = pwrite(g->fd, s->scratch.data, s->scratch.len,
	    (off_t)g->size);
	if (n != (ssize_t)s->scratch.len) {
		int err = n < 0 ? errno : ENOSPC;
		/* no part of a record may stay before the next one */
		if (ftruncate(g->fd, (off_t)g->size) != 0)
			bb_log_error("spool segment-%03d: cannot cut a failed "
			    "append off: %s", g->number, strerror(errno));
		failure(s, "cannot append", err);
		return 0;
	}
	if (!g->next_known && g->cursor == g->size) {
		g->next_known = true;
		g->next_ms = bb_realtime_ms();
	}
	g->size += (int64_t)s->scratch.len;
	g->waiting++;
	g->waiting_bytes += (int64_t)s->scratch.len;
	publish_gauges(s);
	return ++s->appended;
}

int
bb_spool_sync(struct bb_spool *s, uint64_t ticket)
{
	if (ticket >= s->lost_from && ticket <= s->lost_to)
		return -1;
	if (ticket <= s->synced)
		return 0;
	struct segment *g = &s->segs[s->writer];
	if (fdatasync(g->fd) == 0) {
		g->synced = g->size;
		s->synced = s->appended;
		return 0;
	}
	/* The kernel may have dropped what it could not write: the appends
	 * since the last good fsync are cut off, and answered 503. */
	failure(s, "fsync failed", errno);
	long lost = 0;
	for (int64_t at = g->synced; at < g->size; lost++) {
		uint8_t head[BB_SPOOLREC_HEAD];
		struct bb_spoolrec_head h;
		if (pread(g->fd, head, sizeof(head), at) != sizeof(head) ||
		    bb_spoolrec_head(head, &h) != 0)
			break;
		g->waiting_bytes -= BB_SPOOLREC_HEAD + h.body_len;
		at += BB_SPOOLREC_HEAD + h.body_len;
	}
	g->waiting -= lost;
	if (ftruncate(g->fd, (off_t)g->synced) != 0)
		bb_log_error("spool segment-%03d: cannot cut unsynced appends "
		    "off: %s", g->number, strerror(errno));
	g->size = g->synced;
	if (g->cursor > g->size)
		g->cursor = g->size;
	s->lost_from = s->synced + 1;
	s->lost_to = s->synced = s->appended;
	publish_gauges(s);
	return -1;
}

bool
bb_spool_unsynced(const struct bb_spool *s)
{
	return s->appended > s->synced;
}

/* ------------------------------------------------ adoption */

void
bb_spool_adopt(struct bb_spool *s)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	bool changed = false;

	if ((d = opendir(s->dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		int n = segment_number(de->d_name);
		if (n < 0 || find(s, n) >= 0 ||
		    fstatat(dirfd(d), de->d_name, &st, 0) != 0 ||
		    st.st_size == 0)
			continue;
		int k = hold(s, n, false);
		if (k == -1)
			failure(s, "cannot adopt a segment", errno);
		if (k < 0)
			continue;
		changed = true;
		if (s->segs[k].waiting)
			bb_log_info("spool segment-%03d adopted (its worker "
			    "is gone)", n);
		settle(s, k);
	}
	closedir(d);
	if (changed)
		publish_gauges(s);
}

/* ------------------------------------------------ forwarding */

/* True when the record at offset at of segment number is handed out. */
static bool
handed_out(const struct bb_spool *s, int number, int64_t at)
{
	for (int k = 0; k < BB_SPOOL_WINDOW; k++)
		if (s->entries[k].busy && s->entries[k].offset == at &&
		    s->entries[k].segment == number)
			return true;
	return false;
}

/* Moves g's cursor past zero bytes: a damaged stretch that scan() set
 * aside. True when it moved. */
static bool
skip_zeros(struct segment *g)
{
	uint8_t chunk[4096];
	int64_t from = g->cursor;

	while (g->cursor < g->synced) {
		int64_t want = g->synced - g->cursor;
		ssize_t n = pread(g->fd, chunk, want < (int64_t)sizeof(chunk) ?
		    (size_t)want : sizeof(chunk), g->cursor);
		if (n <= 0)
			break;
		ssize_t k = 0;
		while (k < n && chunk[k] == 0)
			k++;
		g->cursor += k;
		if (k < n)
			break;
	}
	return g->cursor > from;
}

/* Reads the head at g's cursor, skipping records not waiting or handed
 * out already; false at the end of what may be sent. A head damaged since
 * the segment was locked is found by reading the segment again, which
 * sets it aside. */
static bool
peek(struct bb_spool *s, struct segment *g, struct bb_spoolrec_head *h)
{
	uint8_t head[BB_SPOOLREC_HEAD];
	bool rescanned = false;

	while (g->cursor + BB_SPOOLREC_HEAD <= g->synced) {
		if (pread(g->fd, head, sizeof(head), g->cursor) ==
		    (ssize_t)sizeof(head) && bb_spoolrec_head(head, h) == 0) {
			if (h->state == BB_SPOOLREC_WAITING &&
			    !handed_out(s, g->number, g->cursor)) {
				g->next_known = true;
				g->next_ms = h->spooled_ms;
				return true;
			}
			g->cursor += BB_SPOOLREC_HEAD + h->body_len;
			continue;
		}
		if (skip_zeros(g))
			continue;
		int64_t cursor = g->cursor, synced = g->synced;
		if (rescanned || scan(s, g) != 0)
			break;
		rescanned = true;
		g->synced = synced < g->size ? synced : g->size;
		g->cursor = cursor < g->synced ? cursor : g->synced;
	}
	g->next_known = false;
	return false;
}

bool
bb_spool_waiting(const struct bb_spool *s)
{
	for (int k = 0; k < s->nsegs; k++) {
		const struct segment *g = &s->segs[k];
		if (g->waiting > g->in_flight)
			return true;
	}
	return false;
}

/* Sets the record at offset at of g aside, from what of it could be read
 * into p, so that it is never handed out again. */
static void
drop_record(struct bb_spool *s, struct segment *g, int64_t at,
    const uint8_t *p, size_t len, int64_t record_len)
{
	set_aside(s, g->number, at, p, len);
	write_state(g, at, BB_SPOOLREC_ASIDE);
	g->waiting--;
	g->waiting_bytes -= record_len;
	publish_gauges(s);
}

struct bb_spool_entry *
bb_spool_next(struct bb_spool *s)
{
	struct bb_spool_entry *e = NULL;
	struct bb_spoolrec_head h, best_h;
	int best = -1;

	for (int k = 0; k < BB_SPOOL_WINDOW && e == NULL; k++)
		if (!s->entries[k].busy)
			e = &s->entries[k];
	if (e == NULL)
		return NULL;
	for (;;) {
		best = -1;
		for (int k = 0; k < s->nsegs; k++) {
			struct segment *g = &s->segs[k];
			if (g->waiting > g->in_flight && peek(s, g, &h) &&
			    (best < 0 || h.spooled_ms < best_h.spooled_ms)) {
				best = k;
				best_h = h;
			}
		}
		if (best < 0)
			return NULL;
		struct segment *g = &s->segs[best];
		int64_t at = g->cursor;
		size_t len = BB_SPOOLREC_HEAD + best_h.body_len;
		bb_buf_reset(&e->buf);
		uint8_t *p = (uint8_t *)bb_buf_space(&e->buf, len);
		ssize_t got = pread(g->fd, p, len, at);
		if (got < 0) {
			/* a read error: the record waits for another try */
			g->next_known = false;
			return NULL;
		}
		g->cursor += (int64_t)len;
		g->next_known = false;
		if ((size_t)got == len && bb_spoolrec_body(&best_h,
		    p + BB_SPOOLREC_HEAD, &e->event) == 0) {
			e->buf.len = len;
			e->busy = true;
			e->segment = g->number;
			e->offset = at;
			e->spooled_ms = best_h.spooled_ms;
			g->in_flight++;
			return e;
		}
		/* damaged on disk since the segment was locked */
		drop_record(s, g, at, p, (size_t)got, (int64_t)len);
	}
}

/* A record the broker refused (a nack, or no confirm) is counted here
 * until it is forwarded; at BB_SPOOL_STRIKES in a row it is set aside, so
 * that one event the broker will never take (say, larger than its
 * max_message_size, which closes the channel) does not cost every other
 * event on the connection a failure each second for ever. */
static void
strike(struct bb_spool *s, struct segment *g, struct bb_spool_entry *e)
{
	struct strike *free_one = NULL, *least = &s->strikes[0];

	for (int k = 0; k < BB_SPOOL_WINDOW; k++) {
		struct strike *t = &s->strikes[k];
		if (t->count && t->segment == e->segment && t->offset == e->offset) {
			if (++t->count < BB_SPOOL_STRIKES)
				return;
			bb_log_error("spool segment-%03d: the broker refused event "
			    "%s %d times: it is set aside", g->number,
			    e->event.env.event_id, t->count);
			t->count = 0;
			drop_record(s, g, e->offset, (const uint8_t *)e->buf.data,
			    e->buf.len, (int64_t)e->buf.len);
			return;
		}
		if (t->count == 0 && free_one == NULL)
			free_one = t;
		if (t->count < least->count)
			least = t;
	}
	struct strike *t = free_one ? free_one : least;
	*t = (struct strike){ e->segment, e->offset, 1 };
}

/* Forgets the strikes of a record that leaves the spool. */
static void
forgive(struct bb_spool *s, const struct bb_spool_entry *e)
{
	for (int k = 0; k < BB_SPOOL_WINDOW; k++)
		if (s->strikes[k].count && s->strikes[k].segment == e->segment &&
		    s->strikes[k].offset == e->offset)
			s->strikes[k].count = 0;
}

void
bb_spool_done(struct bb_spool *s, struct bb_spool_entry *e,
    enum bb_spool_outcome outcome)
{
	int k = find(s, e->segment);

	e->busy = false;
	if (k < 0)
		return;
	struct segment *g = &s->segs[k];
	g->in_flight--;
	if (outcome == BB_SPOOL_FORWARDED) {
		forgive(s, e);
		write_state(g, e->offset, BB_SPOOLREC_FORWARDED);
		g->waiting--;
		g->waiting_bytes -= (int64_t)e->buf.len;
		settle(s, k);
	} else {
		if (outcome == BB_SPOOL_REFUSED)
			strike(s, g, e);
		if (e->offset < g->cursor) {
			struct bb_spoolrec_head h;
			g->cursor = e->offset;	/* handed out again, in its turn */
			peek(s, g, &h);
		}
	}
	publish_gauges(s);
}

/* ------------------------------------------------ census */

int
bb_spool_census(const char *dir, struct bb_spool_census *out, char *err,
    size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[4200];

	memset(out, 0, sizeof(*out));
	if (d == NULL) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (segment_number(de->d_name) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		out->segments++;
		out->bytes += st.st_size;
		out->unowned += !locked_by_other(fd);
		uint8_t chunk[4096];
		struct bb_spoolrec_head h;
		ssize_t n;
		for (int64_t at = 0; (n = pread(fd, chunk, sizeof(chunk), at)) >=
		    (ssize_t)BB_SPOOLREC_HEAD; ) {
			if (bb_spoolrec_head(chunk, &h) != 0) {
				/* a damaged or zeroed stretch: on to the next
				 * magic, or past the chunk but for a magic's
				 * worth at its end */
				size_t k = bb_spoolrec_resync(chunk, (size_t)n);
				at += k < (size_t)n ? (int64_t)k : n - 3;
				continue;
			}
			if (h.state == BB_SPOOLREC_WAITING) {
				out->events++;
				if (!out->oldest_ms || h.spooled_ms < out->oldest_ms)
					out->oldest_ms = h.spooled_ms;
			}
			at += BB_SPOOLREC_HEAD + h.body_len;
		}
		close(fd);
	}
	closedir(d);
	snprintf(path, sizeof(path), "%s/aside", dir);
	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL)
			out->aside += de->d_name[0] != '.';
		closedir(d);
	}
	return 0;
}
