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

#define DRAIN_SECONDS 10

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

static void
answer(struct bb_app *app, FCGX_Request *fcgi, struct bb_response *resp,
    struct bb_buf *out)
{
	struct bb_request req;

	if (bb_request_from_params(&req, fcgi->envp) != 0) {
		bb_response_reset(resp);
		bb_response_error(resp, 400, "invalid_request",
		    "request path too long");
	} else {
		bb_app_handle(app, &req, read_fcgi_body, fcgi->in, resp);
	}
	bb_buf_reset(out);
	bb_response_serialize(resp, strcmp(req.method, "HEAD") != 0, out);
	FCGX_PutStr(out->data, (int)out->len, fcgi->out);
	finish(fcgi);
}

/* Accepts and answers one connection if one is waiting. Returns 1 when a
 * request was answered, 0 when another worker took the connection first,
 * -1 on a fatal error. */
static int
serve_one(struct bb_app *app, FCGX_Request *fcgi, struct bb_response *resp,
    struct bb_buf *out)
{
	int rc = FCGX_Accept_r(fcgi);

	if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR)
		return 0;
	if (rc < 0) {
		bb_log_error("accept on the FastCGI socket failed: %s",
		    rc > -9998 ? strerror(-rc) : "libfcgi error");
		return -1;
	}
	answer(app, fcgi, resp, out);
	return 1;
}

/* The listening socket is non-blocking, so that a worker that loses the
 * race for a connection goes back to waiting (and can see a stop request)
 * instead of blocking in accept(). Signals are blocked except while
 * waiting, so that no request is interrupted half way. While waiting, the
 * worker also watches its AMQP connection: heartbeats, connection.blocked
 * and a broker that closes must be seen between requests too. */
static int
loop(int listen_fd, struct bb_app *app)
{
	FCGX_Request fcgi;
	struct bb_response resp;
	struct bb_buf out;
	sigset_t waiting;
	int rc = 0;

	if (FCGX_InitRequest(&fcgi, listen_fd, 0) != 0) {
		bb_log_error("cannot initialise a libfcgi request");
		return 1;
	}
	bb_response_init(&resp);
	bb_buf_init(&out);
	sigprocmask(SIG_BLOCK, NULL, &waiting);
	sigdelset(&waiting, SIGTERM);
	sigdelset(&waiting, SIGINT);
	long long serviced = 0;
	while (!stop_requested) {
		struct pollfd p[2] = {
			{ listen_fd, POLLIN, 0 },
			{ bb_app_broker_fd(app), POLLIN, 0 },	/* -1: ignored */
		};
		struct timespec second = { 1, 0 };
		int n = ppoll(p, 2, &second, &waiting);
		long long now = bb_monotonic_ms();
		if (p[1].revents || now - serviced >= 1000) {
			bb_app_service_broker(app);
			serviced = now;
		}
		if (n <= 0 || !(p[0].revents & POLLIN))
			continue;
		if (serve_one(app, &fcgi, &resp, &out) < 0) {
			rc = 1;
			break;
		}
	}
	/* Stopping: answer what is already queued, then leave. */
	time_t deadline = time(NULL) + DRAIN_SECONDS;
	while (rc == 0 && time(NULL) < deadline) {
		struct pollfd p = { listen_fd, POLLIN, 0 };
		if (poll(&p, 1, 0) <= 0 || serve_one(app, &fcgi, &resp, &out) <= 0)
			break;
	}
	bb_buf_free(&out);
	bb_response_free(&resp);
	return rc;
}

int
bb_worker_run(int listen_fd, int ready_fd)
{
	struct bb_config cfg;
	struct sigaction sa;
	sigset_t block;
	char err[512];
	int flags, rc;

	if (bb_config_load(&cfg, err, sizeof(err)) != 0) {
		bb_log_error("configuration error: %s", err);
		bb_config_free(&cfg);
		return 1;
	}
	bb_log_set_level(cfg.log_level);
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
	struct bb_app *app = bb_app_new(&cfg);
	bb_log_info("worker ready");
	if (ready_fd >= 0) {
		if (write(ready_fd, "r", 1) != 1)
			bb_log_warning("cannot tell the master that this worker is ready");
		close(ready_fd);
	}
	rc = loop(listen_fd, app);
	bb_log_info("worker stopping");
	bb_app_free(app);
	bb_config_free(&cfg);
	return rc;
}
