#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "app.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

static volatile sig_atomic_t stop_requested;

static void
on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static ssize_t
read_fcgi_body(void *ctx, char *buf, size_t len)
{
	return FCGX_GetStr(buf, (int)len, (FCGX_Stream *)ctx);
}

/* A place for one request: its FastCGI connection and the call that
 * answers it. A slot that is not busy may still hold a connection the web
 * server keeps open for its next request (nginx's fastcgi_keep_conn): such
 * a kept connection is read only once it is readable, and only a slot
 * without one takes a new connection from the listening socket. */
struct request_slot {
	FCGX_Request fcgi;
	struct bb_request req;
	struct bb_call *call;
	bool busy;
};

struct worker {
	int listen_fd;
	struct bb_app *app;
	struct request_slot *slots;
	int nslots, busy;
	struct pollfd *polled;	/* the loop's wait: listen, broker, kept */
	struct request_slot **polled_slot;	/* the slot of each kept one */
	struct bb_buf out;
	long long request_ms;	/* the longest a request can take */
	bool stopping;		/* until the kept connections close */
};

static bool
kept(const struct request_slot *s)
{
	return !s->busy && s->fcgi.ipcFd >= 0;
}

/* A free slot with no connection, or NULL. */
static struct request_slot *
unconnected(struct worker *w)
{
	for (int k = 0; k < w->nslots; k++) {
		if (!w->slots[k].busy && w->slots[k].fcgi.ipcFd < 0)
			return &w->slots[k];
	}
	return NULL;
}

/* Ends a request with libfcgi, which closes its connection unless the web
 * server keeps it. libfcgi closes gracefully -- shutdown, then read until
 * the web server closes too, three system calls -- so that unread input
 * cannot turn the close into a reset that loses the answer. When the
 * request's input has been read to its end (its end record is normally in
 * the buffer already) nothing is unread, and a plain close is as safe. */
static void
end_request(FCGX_Request *fcgi)
{
	char c;

	if (FCGX_GetStr(&c, 1, fcgi->in) == 0 && FCGX_HasSeenEOF(fcgi->in))
		fcgi->detached = 1;
	FCGX_Finish_r(fcgi);
}

/* Writes the slot's answer in one record and ends the request: the
 * connection is closed unless the web server asked to keep it. A stopping
 * worker keeps it too: nginx may already be sending the next request on
 * it, and would answer that one 502 (it does not retry a POST). So the
 * web server closes a kept connection (idle for keepalive_timeout, or used
 * for keepalive_time); the worker closes what is left only when its drain
 * ends (loop()). */
static void
reply(struct worker *w, struct request_slot *s)
{
	const struct bb_response *resp = bb_call_response(s->call);

	bb_metrics_request(bb_call_route(s->call), resp->status);
	bb_buf_reset(&w->out);
	bb_response_serialize(resp, strcmp(s->req.method, "HEAD") != 0,
	    &w->out);
	FCGX_PutStr(w->out.data, (int)w->out.len, s->fcgi.out);
	end_request(&s->fcgi);
	s->busy = false;
	w->busy--;
}

/* Two headers that reach us as one FastCGI parameter (X-Forwarded-For and
 * X_Forwarded_For, or one header sent twice): believing either would let a
 * client choose, so the request is refused. */
static void
refuse_repeated(struct worker *w, struct request_slot *s)
{
	char detail[160];
	int n = (int)strcspn(s->req.repeated, "=");

	bb_log_info("request from %s refused: %.*s came twice",
	    s->req.remote_addr, n > 64 ? 64 : n, s->req.repeated);
	snprintf(detail, sizeof(detail), "a header came twice as %.*s (names "
	    "differing only in '-' and '_' are one)", n > 64 ? 64 : n,
	    s->req.repeated);
	bb_call_error(s->call, 400, "invalid_request", detail);
	reply(w, s);
}

/* Reads the next request into a free slot -- from its kept connection, or
 * from a connection accepted on the listening socket -- and starts
 * answering it: at once, or once its event's confirm comes. Returns 1 when
 * a request was taken, 0 when there was none (another worker took the
 * connection first, or the web server closed the kept one), -1 on a fatal
 * error. */
static int
take(struct worker *w, struct request_slot *s)
{
	int rc = FCGX_Accept_r(&s->fcgi);
	if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR)
		return 0;
	if (rc < 0) {
		bb_log_error("accept on the FastCGI socket failed: %s",
		    rc > -9998 ? strerror(-rc) : "libfcgi error");
		return -1;
	}
	s->busy = true;
	w->busy++;
	if (bb_request_from_params(&s->req, s->fcgi.envp) != 0) {
		s->req.method = "GET";
		bb_call_error(s->call, 400, "invalid_request",
		    "request path too long");
		reply(w, s);
	} else if (s->req.repeated) {
		refuse_repeated(w, s);
	} else if (!bb_app_begin(w->app, s->call, &s->req, read_fcgi_body,
	    s->fcgi.in)) {
		reply(w, s);
	}
	return 1;
}

/* Answers every call whose confirm came or whose deadline passed (all of
 * them, waiting for each, when wait is true). */
static void
complete(struct worker *w, bool wait)
{
	for (int k = 0; k < w->nslots && w->busy; k++) {
		struct request_slot *s = &w->slots[k];
		if (s->busy && bb_app_finish(w->app, s->call, wait))
			reply(w, s);
	}
}

/* How long the loop may sleep: until the next second (heartbeats, stop
 * requests), the earliest deadline of a call in flight, or limit. */
static struct timespec
sleep_time(const struct worker *w, long long now, long long limit)
{
	long long until = now + 1000 < limit ? now + 1000 : limit;

	for (int k = 0; k < w->nslots; k++) {
		const struct request_slot *s = &w->slots[k];
		if (s->busy && bb_call_deadline(s->call) < until)
			until = bb_call_deadline(s->call);
	}
	long long ms = until > now ? until - now : 0;
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
	return ts;
}

/* Fills the loop's wait: the listening socket while a slot without a
 * connection is free (and listening is true), the broker, and every kept
 * connection. Returns how many kept connections there are. */
static int
watch(struct worker *w, bool listening)
{
	int nkept = 0;

	w->polled[0] = (struct pollfd){ listening && unconnected(w) ?
		w->listen_fd : -1, POLLIN, 0 };
	w->polled[1] = (struct pollfd){ bb_app_broker_fd(w->app), POLLIN, 0 };
	for (int k = 0; k < w->nslots; k++) {
		struct request_slot *s = &w->slots[k];
		if (kept(s)) {
			w->polled[2 + nkept] = (struct pollfd){ s->fcgi.ipcFd,
				POLLIN, 0 };
			w->polled_slot[nkept++] = s;
		}
	}
	return nkept;
}

/* Whether the web server has closed (or reset) a kept connection. A
 * stopping worker asks before reading it, because libfcgi, meeting the
 * close, goes on to accept a new connection. */
static bool
closed_by_web_server(const struct request_slot *s)
{
	char c;
	ssize_t n = recv(s->fcgi.ipcFd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR);
}

/* Takes the requests the wait found: on kept connections, then on the
 * listening socket. Returns -1 on a fatal error. */
static int
take_ready(struct worker *w, int nkept)
{
	for (int i = 0; i < nkept; i++) {
		struct request_slot *s = w->polled_slot[i];
		if (w->polled[2 + i].revents == 0)
			continue;
		if (w->stopping && closed_by_web_server(s))
			FCGX_Free(&s->fcgi, 1);
		else if (take(w, s) < 0)
			return -1;
	}
	struct request_slot *s;
	if (!(w->polled[0].revents & POLLIN))
		return 0;
	/* One connection a turn; but while spooled events wait for their
	 * fsync, every one already waiting, so that one fsync answers them
	 * all. */
	int rc;
	do {
		if ((s = unconnected(w)) == NULL)
			return 0;
		if ((rc = take(w, s)) < 0)
			return -1;
	} while (rc == 1 && bb_app_spool_unsynced(w->app));
	return 0;
}

/* The listening socket is non-blocking, so that a worker that loses the
 * race for a connection goes back to waiting (and can see a stop request)
 * instead of blocking in accept(). Signals are blocked except while
 * waiting, so that no request is interrupted half way.
 *
 * A worker answers up to WORKER_CONCURRENCY requests at once: it takes a
 * new request while earlier events wait for their confirms, so that the
 * broker confirms several together (one disk flush for all). The same wait
 * watches the AMQP connection between requests: heartbeats,
 * connection.blocked and a broker that closes are seen when idle too.
 *
 * Stopping, a worker finishes what is in flight, takes connections
 * already queued while a whole request still fits a second before the kill
 * (BB_STOP_SECONDS), answers what comes on its kept connections until the
 * web server has closed them all, and at that second closes what is left. */
static int
loop(struct worker *w)
{
	sigset_t waiting;
	long long serviced = 0, stop_by = 0;
	int rc = 0;

	sigprocmask(SIG_BLOCK, NULL, &waiting);
	sigdelset(&waiting, SIGTERM);
	sigdelset(&waiting, SIGINT);
	for (;;) {
		long long now = bb_monotonic_ms(), limit = now + 1000;
		if (stop_requested && !w->stopping) {
			w->stopping = true;
			stop_by = now + (BB_STOP_SECONDS - 1) * 1000LL;
		}
		if (w->stopping && now >= stop_by)
			break;
		int nkept = watch(w, !w->stopping ||
		    now + w->request_ms <= stop_by);
		bool idle = w->busy == 0 && nkept == 0;
		if (w->stopping)
			limit = idle ? now : stop_by;
		struct timespec ts = sleep_time(w, now, limit);
		int n = ppoll(w->polled, (nfds_t)(2 + nkept), &ts, &waiting);
		if (w->stopping && idle && n == 0)
			break;
		now = bb_monotonic_ms();
		if (now - serviced >= 1000)
			bb_app_idle(w->app);
		if (w->polled[1].revents || now - serviced >= 1000) {
			bb_app_service_broker(w->app);
			serviced = now;
		}
		if (n > 0 && take_ready(w, nkept) < 0) {
			rc = 1;
			break;
		}
		/* after a take: its publish or /healthz may have read the
		 * confirms of calls in flight, which must not wait for the
		 * next wake-up */
		complete(w, false);
		if (!w->stopping)
			bb_app_forward(w->app);
	}
	w->stopping = true;
	complete(w, true);
	for (int k = 0; k < w->nslots; k++) {
		if (kept(&w->slots[k]))
			FCGX_Free(&w->slots[k].fcgi, 1);
	}
	return rc;
}

static int
serve(int listen_fd, struct bb_app *app, int concurrency,
    long long request_ms)
{
	struct worker w = { .listen_fd = listen_fd, .app = app,
		.nslots = concurrency, .request_ms = request_ms };
	int rc = 1;

	w.slots = bb_xcalloc((size_t)concurrency, sizeof(*w.slots));
	w.polled = bb_xcalloc((size_t)concurrency + 2, sizeof(*w.polled));
	w.polled_slot = bb_xcalloc((size_t)concurrency,
	    sizeof(*w.polled_slot));
	bb_buf_init(&w.out);
	for (int k = 0; k < concurrency; k++) {
		if (FCGX_InitRequest(&w.slots[k].fcgi, listen_fd, 0) != 0) {
			bb_log_error("cannot initialise a libfcgi request");
			goto end;
		}
		w.slots[k].call = bb_call_new();
	}
	rc = loop(&w);
end:
	for (int k = 0; k < concurrency; k++)
		bb_call_free(w.slots[k].call);
	free(w.slots);
	free(w.polled);
	free(w.polled_slot);
	bb_buf_free(&w.out);
	return rc;
}

int
bb_worker_run(int listen_fd, int ready_fd)
{
	struct bb_config cfg;
	struct sigaction sa;
	sigset_t block;
	char err[1024];
	int flags, rc;

	if (bb_config_load(&cfg, err, sizeof(err)) != 0) {
		bb_log_error("configuration error: %s", err);
		bb_config_free(&cfg);
		return 1;
	}
	bb_log_set_level(cfg.log_level);
	bb_log_set_target(cfg.log_target);
	if (bb_metrics_open(cfg.metrics_path, err, sizeof(err)) != 0)
		bb_log_error("metrics are off: METRICS_PATH %s", err);
	/* A client that goes away mid-answer must not kill the worker. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);	/* the master reloads by replacing us */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, NULL);

	flags = fcntl(listen_fd, F_GETFL);
	if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    FCGX_Init() != 0) {
		bb_log_error("fd %d is not a usable FastCGI socket", listen_fd);
		bb_config_free(&cfg);
		return 1;
	}
	/* §10: a worker never runs with half of SCHEMA_DIR. */
	struct bb_catalog *catalog = bb_catalog_load(cfg.schema_dir, err,
	    sizeof(err));
	if (catalog == NULL) {
		bb_log_error("event schemas: %s", err);
		bb_config_free(&cfg);
		return 1;
	}
	struct bb_app *app = bb_app_new(&cfg, catalog);
	bb_log_info("worker ready");
	if (ready_fd >= 0) {
		if (write(ready_fd, "r", 1) != 1)
			bb_log_warning("cannot tell the master that this worker is ready");
		close(ready_fd);
	}
	/* the longest a request can take (CONTRACT §6's bound) */
	long long request_ms = (long long)cfg.connect_timeout_ms +
	    cfg.confirm_timeout_ms + 1000;
	if (request_ms > (BB_STOP_SECONDS - 1) * 1000LL)
		bb_log_warning("RABBIT_CONNECT_TIMEOUT_MS + RABBIT_CONFIRM_TIMEOUT_MS "
		    "+ 1 s is over %d s: a request in flight when the worker is "
		    "stopped may be killed with it", BB_STOP_SECONDS - 1);
	rc = serve(listen_fd, app, cfg.worker_concurrency, request_ms);
	bb_log_info("worker stopping");
	bb_app_free(app);
	bb_catalog_free(catalog);
	bb_metrics_close();
	bb_config_free(&cfg);
	return rc;
}
