/* bloodbank: the FastCGI responder. main only wires the modules together:
 * configuration, the application, and libfcgi's accept loop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "app.h"
#include "buf.h"
#include "config.h"
#include "http.h"
#include "log.h"

static void
usage(FILE *out)
{
	fprintf(out, "usage: bloodbank [--check-config | --version | --help]\n"
	    "Run as a FastCGI responder with the listening socket on fd 0\n"
	    "(lighttpd bin-path, spawn-fcgi). Configuration: environment,\n"
	    "$BLOODBANK_ENV_FILE or ./.env, $BLOODBANK_CONFIG or\n"
	    "/etc/bloodbank/bloodbank.ini.\n");
}

static ssize_t
read_fcgi_body(void *ctx, char *buf, size_t len)
{
	return FCGX_GetStr(buf, (int)len, (FCGX_Stream *)ctx);
}

static int
serve(const struct bb_config *cfg)
{
	FCGX_Request fcgi;
	struct bb_app *app;
	struct bb_request req;
	struct bb_response resp;
	struct bb_buf out;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&fcgi, 0, 0) != 0) {
		bb_log_error("cannot initialise libfcgi");
		return 1;
	}
	app = bb_app_new(cfg);
	bb_response_init(&resp);
	bb_buf_init(&out);
	bb_log_info("worker ready");
	while (FCGX_Accept_r(&fcgi) >= 0) {
		if (bb_request_from_params(&req, fcgi.envp) != 0) {
			bb_response_reset(&resp);
			bb_response_error(&resp, 400, "invalid_request",
			    "request path too long");
		} else {
			bb_app_handle(app, &req, read_fcgi_body, fcgi.in, &resp);
		}
		bb_buf_reset(&out);
		bb_response_serialize(&resp, &out);
		FCGX_PutStr(out.data, (int)out.len, fcgi.out);
		FCGX_Finish_r(&fcgi);
	}
	bb_buf_free(&out);
	bb_response_free(&resp);
	bb_app_free(app);
	return 0;
}

int
main(int argc, char **argv)
{
	struct bb_config cfg;
	char err[512];
	bool check = false;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check-config") == 0) {
			check = true;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("bloodbank %s\n", PACKAGE_VERSION);
			return 0;
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (bb_config_load(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "bloodbank: configuration error: %s\n", err);
		bb_config_free(&cfg);
		return 1;
	}
	bb_log_set_level(cfg.log_level);
	if (check) {
		bb_config_print(&cfg, stdout);
		bb_config_free(&cfg);
		return 0;
	}
	/* A client that goes away mid-answer must not kill the worker. */
	signal(SIGPIPE, SIG_IGN);
	rc = serve(&cfg);
	bb_config_free(&cfg);
	return rc;
}
