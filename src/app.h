/* app: what Bloodbank does with a request -- authentication, routing,
 * validation, the envelope, publishing -- independent of FastCGI. */
#ifndef BB_APP_H
#define BB_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "catalog.h"
#include "config.h"
#include "http.h"

struct bb_app;

/* Reads up to len bytes of the request body; returns the count, 0 at end. */
typedef ssize_t (*bb_body_reader)(void *ctx, char *buf, size_t len);

/* catalog (the schemas of SCHEMA_DIR) must outlive the app. */
struct bb_app *bb_app_new(const struct bb_config *cfg,
    const struct bb_catalog *catalog);
void bb_app_free(struct bb_app *app);

/* The broker connection's socket, for an idle worker to watch (-1 when
 * there is none), and what to call when it is readable or once a second. */
int bb_app_broker_fd(const struct bb_app *app);
void bb_app_service_broker(struct bb_app *app);
/* Once a second when the broker is quiet: tracking replies that have come
 * are read. */
void bb_app_idle(struct bb_app *app);
/* On every turn of a worker's loop: the spool's events are forwarded
 * (CONTRACT §12), and the segments of dead workers adopted. */
void bb_app_forward(struct bb_app *app);
/* True when spooled events wait for their fsync: a worker then takes the
 * other requests already waiting first, so that one fsync answers them
 * all (group commit). */
bool bb_app_spool_unsynced(const struct bb_app *app);

/* One request from its start to its answer; reused from request to
 * request. */
struct bb_call;
struct bb_call *bb_call_new(void);
void bb_call_free(struct bb_call *call);
const struct bb_response *bb_call_response(const struct bb_call *call);
/* Makes the call's answer an error (a request that cannot be parsed). */
void bb_call_error(struct bb_call *call, int status, const char *code,
    const char *detail);
/* The route the call's request took (BB_ROUTE_NONE for none). */
enum bb_route bb_call_route(const struct bb_call *call);
/* When a call that waits for its confirm is answered at the latest
 * (monotonic ms). */
long long bb_call_deadline(const struct bb_call *call);

/* Answers req into the call, or starts to: reads the body through
 * read_body only once the request is known to need one and to be small
 * enough. Returns true when the event was written to the broker and the
 * answer waits for its confirm: then bb_app_finish completes it. */
bool bb_app_begin(struct bb_app *app, struct bb_call *call,
    struct bb_request *req, bb_body_reader read_body, void *ctx);
/* Completes a call that bb_app_begin left waiting, once its confirm came
 * or its deadline passed (waiting for that when wait is true). Returns
 * true when the answer is ready. */
bool bb_app_finish(struct bb_app *app, struct bb_call *call, bool wait);

#endif
