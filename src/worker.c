#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
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

/* One request a worker is answering: its FastCGI connection and the call
 * that answers it. */
struct slot {
	FCGX_Request fcgi;
	struct bb_request req;
	struct bb_call *call;
	bool busy;
};

struct worker {
	int listen_fd;
	struct bb_app *app;
	struct slot *slots;
	int nslots, busy;
	struct bb_buf out;
	long long request_ms;	/* the longest a request can take */
};

/* libfcgi closes a connection gracefully -- shutdown, then read until the
 * web server closes too, three system calls -- so that unread input cannot
 * turn the close into a reset that loses the answer. When the request's
 * input has been read to its end (its end record is normally in the buffer
 * already) nothing is unread, and a plain close is as safe. */
static void
finish(FCGX_Request *fcgi)
{
	char c;

	if (FCGX_GetStr(&c, 1, fcgi->in) == 0 && FCGX_HasSeenEOF(fcgi->in))
		fcgi->detached = 1;
	FCGX_Finish_r(fcgi);
}

/* Writes the slot's answer in one record and closes the connection. */
static void
reply(struct worker *w, struct slot *s)
{
	const struct bb_response *resp = bb_call_response(s->call);

	bb_metrics_request(bb_call_route(s->call), resp->status);
	bb_buf_reset(&w->out);
	bb_response_serialize(resp, strcmp(s->req.method, "HEAD") != 0,
	    &w->out);
	FCGX_PutStr(w->out.data, (int)w->out.len, s->fcgi.out);
	finish(&s->fcgi);
	s->busy = false;
	w->busy--;
}

/* Two headers that reach us as one FastCGI parameter (X-Forwarded-For and
 * X_Forwarded_For, or one header sent twice): believing either would let a
 * client choose, so the request is refused. */
static void
refuse_repeated(struct worker *w, struct slot *s)
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

/* Accepts one connection into a free slot and starts answering it: at
 * once, or once its event's confirm comes. Returns 1 when a connection
 * was taken, 0 when another worker took it first, -1 on a fatal error. */
static int
take(struct worker *w)
{
	struct slot *s = w->slots;

	while (s->busy)
		s++;
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
		struct slot *s = &w->slots[k];
		if (s->busy && bb_app_finish(w->app, s->call, wait))
			reply(w, s);
	}
}

/* How long the loop may sleep: until the next second (heartbeats, stop
 * requests) or the earliest deadline of a call in flight. */
static struct timespec
sleep_time(const struct worker *w, long long now)
{
	long long until = now + 1000;

	for (int k = 0; k < w->nslots; k++) {
		const struct slot *s = &w->slots[k];
		if (s->busy && bb_call_deadline(s->call) < until)
			until = bb_call_deadline(s->call);
	}
	long long ms = until > now ? until - now : 0;
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
	return ts;
}

/* The listening socket is non-blocking, so that a worker that loses the
 * race for a connection goes back to waiting (and can see a stop request)
 * instead of blocking in accept(). Signals are blocked except while
 * waiting, so that no request is interrupted half way.
 *
 * A worker answers up to WORKER_CONCURRENCY requests at once: it takes a
 * new connection while earlier events wait for their confirms, so that the
 * broker confirms several together (one disk flush for all). The same wait
 * watches the AMQP connection between requests: heartbeats,
 * connection.blocked and a broker that closes are seen when idle too. */
static int
loop(struct worker *w)
{
	sigset_t waiting;
	long long serviced = 0;
	int rc = 0;

	sigprocmask(SIG_BLOCK, NULL, &waiting);
	sigdelset(&waiting, SIGTERM);
	sigdelset(&waiting, SIGINT);
	while (!stop_requested) {
		long long now = bb_monotonic_ms();
		struct timespec ts = sleep_time(w, now);
		struct pollfd p[2] = {
			{ w->busy < w->nslots ? w->listen_fd : -1, POLLIN, 0 },
			{ bb_app_broker_fd(w->app), POLLIN, 0 },	/* -1: ignored */
		};
		int n = ppoll(p, 2, &ts, &waiting);
		now = bb_monotonic_ms();
		if (now - serviced >= 1000)
			bb_app_idle(w->app);
		if (p[1].revents || now - serviced >= 1000) {
			bb_app_service_broker(w->app);
			serviced = now;
		}
		if (n > 0 && (p[0].revents & POLLIN) && take(w) < 0) {
			rc = 1;
			break;
		}
		/* after take(): its publish or /healthz may have read the
		 * confirms of calls in flight, which must not wait for the
		 * next wake-up */
		complete(w, false);
	}
	/* Stopping: finish what is in flight, and answer connections already
	 * queued while one still fits before the kill (BB_STOP_SECONDS). */
	long long stop_by = bb_monotonic_ms() + (BB_STOP_SECONDS - 1) * 1000LL;
	complete(w, true);
	while (rc == 0 && bb_monotonic_ms() + w->request_ms <= stop_by) {
		struct pollfd p = { w->listen_fd, POLLIN, 0 };
		if (poll(&p, 1, 0) <= 0 || take(w) <= 0)
			break;
		complete(w, true);
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
