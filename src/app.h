/* app: what Bloodbank does with a request -- authentication, routing,
 * validation, the envelope, publishing -- independent of FastCGI. */
#ifndef BB_APP_H
#define BB_APP_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "http.h"

struct bb_app;

/* Reads up to len bytes of the request body; returns the count, 0 at end. */
typedef ssize_t (*bb_body_reader)(void *ctx, char *buf, size_t len);

struct bb_app *bb_app_new(const struct bb_config *cfg);
void bb_app_free(struct bb_app *app);

/* The broker connection's socket, for an idle worker to watch (-1 when
 * there is none), and what to call when it is readable or once a second. */
int bb_app_broker_fd(const struct bb_app *app);
void bb_app_service_broker(struct bb_app *app);

/* Answers one request into resp; reads the body through read_body only
 * once the request is known to need one and to be small enough. */
void bb_app_handle(struct bb_app *app, struct bb_request *req,
    bb_body_reader read_body, void *ctx, struct bb_response *resp);

#endif
