#include "cli.h"
#include "cli_command.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "buf.h"
#include "catalog.h"
#include "clock.h"
#include "config.h"
#include "connect.h"
#include "correlation.h"
#include "debug.h"
#include "dot.h"
#include "http.h"
#include "log.h"
#include "record.h"
#include "tracker.h"
#include "uuid.h"
#include "validate.h"
#include "xalloc.h"

int
bb_cli_fail(const struct bb_command *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bloodbank %s: ", c->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int
bb_cli_usage(const struct bb_command *c, const char *why)
{
	if (why)
		fprintf(stderr, "bloodbank %s: %s (usage: bloodbank %s %s)\n",
		    c->name, why, c->name, c->usage);
	else
		fprintf(stderr, "usage: bloodbank %s %s\n", c->name, c->usage);
	return 2;
}

int
bb_cli_bad_option(const struct bb_command *c, char **argv)
{
	char why[300];

	snprintf(why, sizeof(why), "unknown option, or one without its value: "
	    "%.200s", argv[optind - 1]);
	return bb_cli_usage(c, why);
}

int
bb_cli_help(const struct bb_command *c)
{
	printf("usage: bloodbank %s %s\n%s", c->name, c->usage, c->help);
	return 0;
}

bool
bb_cli_colour(FILE *f)
{
	const char *term = getenv("TERM");

	return isatty(fileno(f)) && getenv("NO_COLOR") == NULL && term &&
	    strcmp(term, "dumb") != 0;
}

bool
bb_cli_config(const struct bb_command *c, struct bb_config *cfg)
{
	char err[1024];

	if (bb_config_load(cfg, err, sizeof(err)) != 0) {
		bb_cli_fail(c, "configuration error: %s", err);
		bb_config_free(cfg);
		return false;
	}
	bb_log_set_target(BB_LOG_STDERR);
	bb_log_set_level(cfg->log_level == BB_LOG_DEBUG ? BB_LOG_DEBUG :
	    BB_LOG_ERROR);
	return true;
}

volatile sig_atomic_t bb_cli_interrupted;

static void
on_interrupt(int sig)
{
	(void)sig;
	bb_cli_interrupted = 1;
}

void
bb_cli_catch_interrupts(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

amqp_connection_state_t
bb_cli_open_broker(const struct bb_config *cfg, SSL **ssl)
{
	char unrouted[300];

	snprintf(unrouted, sizeof(unrouted), "%s.unrouted", cfg->exchange);
	const struct bb_topology topology = { cfg->exchange, cfg->exchange_type,
		unrouted, cfg->unrouted_queue_type, cfg->unrouted_max_bytes,
		cfg->archive_stream, cfg->archive_max_age, cfg->archive_max_bytes };
	const struct bb_connect_options opt = { cfg->heartbeat_s, &topology,
		cfg->rabbit_tls_ca, cfg->rabbit_tls_cert, cfg->rabbit_tls_key,
		cfg->rabbit_tls_verify };
	return bb_connect_any(cfg->rabbit_url, &opt, bb_monotonic_ms() +
	    cfg->connect_timeout_ms, ssl);
}

amqp_connection_state_t
bb_cli_connect(const struct bb_command *c, const struct bb_config *cfg)
{
	SSL *ssl;
	amqp_connection_state_t conn = bb_cli_open_broker(cfg, &ssl);

	if (conn == NULL)
		bb_cli_fail(c, "no broker of RABBIT_URL answered within "
		    "RABBIT_CONNECT_TIMEOUT_MS (%d ms; LOG_LEVEL=debug says why)",
		    cfg->connect_timeout_ms);
	return conn;
}

/* ------------------------------------------------------------ emit */

struct memory_body {
	const char *p;
	size_t left;
};

static ssize_t
read_memory(void *ctx, char *buf, size_t len)
{
	struct memory_body *m = ctx;
	size_t n = len < m->left ? len : m->left;

	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return (ssize_t)n;
}

/* Answers one request with the app in this process, as a worker answers
 * one from FastCGI; params are its CGI parameters, NULL-terminated. */
static const struct bb_response *
answer(struct bb_app *app, struct bb_call *call, char **params,
    const char *body, size_t len)
{
	struct bb_request req;
	struct memory_body m = { body, len };

	if (bb_request_from_params(&req, params) != 0)
		bb_call_error(call, 400, "invalid_request", "path too long");
	else if (bb_app_begin(app, call, &req, read_memory, &m))
		bb_app_finish(app, call, true);
	return bb_call_response(call);
}

/* A parameter "NAME=value", for answer(). */
static char *
param(const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 2;
	char *p = bb_xcalloc(1, n);

	snprintf(p, n, "%s=%s", name, value);
	return p;
}

/* An event type goes into the path /events/{TYPE} as it is. */
static bool
read_stdin(struct bb_buf *out, size_t max)
{
	char chunk[16384];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		bb_buf_append(out, chunk, n);
		if (out->len > max)
			break;		/* enough for the app's 413 */
	}
	return !ferror(stdin);
}

static int
emit(const struct bb_command *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "parent", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bb_buf parents, body;
	const char *key = NULL;
	int nparents = 0, o, rc = 1;

	bb_buf_init(&parents);
	bb_buf_init(&body);
	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (o) {
		case 'k':
			key = optarg;
			break;
		case 'p':
			if (!bb_uuid_valid(optarg, strlen(optarg))) {
				rc = bb_cli_usage(c, "--parent wants an event id "
				    "(a UUID)");
				goto end;
			}
			if (++nparents > BB_MAX_PARENTS) {
				rc = bb_cli_usage(c, "at most 32 --parent");
				goto end;
			}
			bb_buf_printf(&parents, "%s%s", parents.len ? "," : "",
			    optarg);
			break;
		case 'h':
			rc = bb_cli_help(c);
			goto end;
		default:
			rc = bb_cli_bad_option(c, argv);
			goto end;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		rc = bb_cli_usage(c, optind >= argc ? "TYPE is missing" :
		    "too many arguments");
		goto end;
	}
	const char *type = argv[optind];
	if (!bb_event_type_valid(type, strlen(type))) {
		rc = bb_cli_usage(c, "TYPE is an event type: 1-255 bytes of "
		    "[a-z0-9_-] words joined by dots");
		goto end;
	}
	struct bb_config cfg;
	if (!bb_cli_config(c, &cfg))
		goto end;
	if (optind + 1 < argc)
		bb_buf_puts(&body, argv[optind + 1]);
	else if (!read_stdin(&body, cfg.max_body_bytes)) {
		rc = bb_cli_fail(c, "cannot read the payload from stdin");
		bb_config_free(&cfg);
		goto end;
	}

	char err[1024];
	struct bb_catalog *catalog = bb_catalog_load(cfg.schema_dir, err,
	    sizeof(err));
	if (catalog == NULL) {
		rc = bb_cli_fail(c, "event schemas: %s", err);
		bb_config_free(&cfg);
		goto end;
	}
	char uri[BB_PATH_MAX], length[24];
	snprintf(uri, sizeof(uri), "/events/%s", type);
	snprintf(length, sizeof(length), "%zu", body.len);
	char *params[12] = {
		param("REQUEST_METHOD", "POST"), param("REQUEST_URI", uri),
		param("QUERY_STRING", ""), param("SERVER_PROTOCOL", "HTTP/1.1"),
		param("REMOTE_ADDR", "127.0.0.1"),
		param("CONTENT_TYPE", "application/json"),
		param("CONTENT_LENGTH", length),
	};
	int n = 7;
	if (key)
		params[n++] = param("HTTP_IDEMPOTENCY_KEY", key);
	if (parents.len) {
		bb_buf_putc(&parents, '\0');
		params[n++] = param("HTTP_X_CORRELATION_IDS", parents.data);
	}
	if (cfg.api_token[0]) {
		char bearer[1024];
		snprintf(bearer, sizeof(bearer), "Bearer %s", cfg.api_token);
		params[n++] = param("HTTP_AUTHORIZATION", bearer);
	}
	struct bb_app *app = bb_app_new(&cfg, catalog);
	struct bb_call *call = bb_call_new();
	const struct bb_response *resp = answer(app, call, params, body.data,
	    body.len);
	if (resp->status == 200 || resp->status == 202) {
		fwrite(resp->body.data, 1, resp->body.len, stdout);
		putchar('\n');
		rc = fflush(stdout) == 0 ? 0 : 1;
		if (resp->status == 202)
			fprintf(stderr, "bloodbank %s: the broker is unavailable: "
			    "the event is spooled in %s, and the workers will "
			    "publish it\n", c->name, cfg.spool_dir);
	} else {
		fwrite(resp->body.data, 1, resp->body.len, stderr);
		fputc('\n', stderr);
	}
	bb_call_free(call);
	bb_app_free(app);		/* waits for the correlation record */
	for (int k = 0; k < n; k++)
		free(params[k]);
	bb_catalog_free(catalog);
	bb_config_free(&cfg);
end:
	bb_buf_free(&parents);
	bb_buf_free(&body);
	return rc;
}

/* ----------------------------------------------------------- trace */

/* One event of the lineage, with what its record says. */
struct node {
	bb_id id;
	bool found;
	struct bb_record rec;
	struct bb_buf children;	/* 16 bytes each */
	bool shown;
};

struct lineage {
	struct node *nodes;	/* fetched: the start, then the ancestors, then
				 * the descendants; then sorted by id */
	size_t n;
	struct node *start;	/* once sorted */
	bool colour;
};

static int
by_id(const void *a, const void *b)
{
	return memcmp(((const struct node *)a)->id, ((const struct node *)b)->id,
	    16);
}

static int
id_against_node(const void *id, const void *n)
{
	return memcmp(id, ((const struct node *)n)->id, 16);
}

static struct node *
find(struct lineage *l, const uint8_t *id)
{
	return bsearch(id, l->nodes, l->n, sizeof(*l->nodes), id_against_node);
}

static void
keep_record(void *ctx, int i, const char *val, size_t len)
{
	struct node *n = &((struct lineage *)ctx)->nodes[i];

	n->found = val && bb_record_parse(val, len, &n->rec, &n->children) == 0;
}

static void
print_node(const struct lineage *l, const struct node *n, int depth,
    const char *mark, bool again)
{
	char id[BB_UUID_STRLEN + 1], when[40] = "";
	const char *bold = l->colour ? "\033[1m" : "";
	const char *dim = l->colour ? "\033[2m" : "";
	const char *plain = l->colour ? "\033[0m" : "";
	bool start = (n == l->start);

	bb_id_format(n->id, id);
	if (n->found) {
		time_t s = (time_t)(n->rec.unix_us / 1000000);
		struct tm tm;
		gmtime_r(&s, &tm);
		size_t k = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(when + k, sizeof(when) - k, ".%03dZ",
		    (int)(n->rec.unix_us % 1000000 / 1000));
	}
	printf("%*s%s%s%s  %s  %s%s%s%s%s\n", 2 * depth, "", start ? bold : "",
	    mark, n->found ? n->rec.event_type : "(no record)", when, dim, id,
	    plain, start ? "  (start)" : "", again ? "  (again: shown above)" :
	    "");
}

/* Each event under the one it was reached from, once; going up, an
 * event's parents are its branches, going down its children. */
static void
print_tree(struct lineage *l, struct node *n, int depth, bool up)
{
	size_t count = up ? (size_t)n->rec.nparents : n->children.len / 16;

	if (!n->found)
		return;
	for (size_t k = 0; k < count; k++) {
		const uint8_t *id = up ? n->rec.parents[k] :
		    (const uint8_t *)n->children.data + k * 16;
		struct node *next = find(l, id);
		if (next == NULL || next == l->start)
			continue;	/* beyond the walk's bounds, or a cycle */
		print_node(l, next, depth, up ? "↑ " : "↓ ", next->shown);
		if (!next->shown) {
			next->shown = true;
			print_tree(l, next, depth + 1, up);
		}
	}
}

static int
trace(const struct bb_command *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ancestors", no_argument, NULL, 'a' },
		{ "descendants", no_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "dot", no_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool up = true, down = true, json = false, dot = false;
	int o, rc = 1;

	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (o) {
		case 'a':
			down = false;
			break;
		case 'd':
			up = false;
			break;
		case 'j':
			json = true;
			break;
		case 'g':
			dot = true;
			break;
		case 'h':
			return bb_cli_help(c);
		default:
			return bb_cli_bad_option(c, argv);
		}
	}
	if (!up && !down)
		return bb_cli_usage(c, "--ancestors and --descendants exclude "
		    "each other (give neither for both)");
	if (json && dot)
		return bb_cli_usage(c, "--json and --dot exclude each other");
	if (argc - optind != 1)
		return bb_cli_usage(c, optind >= argc ? "ID is missing" :
		    "too many arguments");
	const char *arg = argv[optind];
	if (!bb_uuid_valid(arg, strlen(arg)))
		return bb_cli_usage(c, "ID is an event id (a UUID)");

	struct bb_config cfg;
	if (!bb_cli_config(c, &cfg))
		return 1;
	struct bb_tracker *t = bb_tracker_new(&cfg, 0);
	struct bb_response resp;
	struct bb_walk_result w[2] = { { .truncated = false },
		{ .truncated = false } };
	struct lineage l = { .colour = bb_cli_colour(stdout) };
	char text[BB_UUID_STRLEN + 1];
	bb_id start;

	bb_response_init(&resp);
	bb_uuid_lower(arg, text);
	bb_id_parse(text, start);
	if (!cfg.correlation_tracking) {
		rc = bb_cli_fail(c, "correlation tracking is off "
		    "(CORRELATION_TRACKING=false)");
		goto end;
	}
	if (json || (dot && up != down)) {
		/* the debug endpoints' own answers */
		char query[64];
		struct bb_match m = { up && down ? BB_ROUTE_CORRELATION :
		    BB_ROUTE_CHAIN, NULL, text, BB_UUID_STRLEN };
		snprintf(query, sizeof(query), "direction=%s%s", up ?
		    "ancestors" : "descendants", dot ? "&format=dot" : "");
		bb_debug_handle(t, &m, query, &resp);
		if (resp.status != 200) {
			rc = bb_cli_fail(c, "%.*s", (int)resp.body.len, resp.body.data);
			goto end;
		}
		fwrite(resp.body.data, 1, resp.body.len, stdout);
		if (!dot)
			putchar('\n');
		rc = 0;
		goto end;
	}

	/* both directions drawn, or the tree: walk, then read every record */
	for (int k = 0; k < 2; k++) {
		if (!(k == 0 ? up : down))
			continue;
		if (bb_walk(bb_tracker_fetch, t, start, k == 0 ? BB_ANCESTORS :
		    BB_DESCENDANTS, BB_WALK_DEFAULT_DEPTH, &w[k]) != 0) {
			rc = bb_cli_fail(c, "Redis is unreachable");
			goto end;
		}
	}
	l.n = 1 + w[0].ids.len / 16 + w[1].ids.len / 16;
	l.nodes = bb_xcalloc(l.n, sizeof(*l.nodes));
	bb_id *ids = bb_xcalloc(l.n, sizeof(bb_id));
	memcpy(ids[0], start, 16);
	if (w[0].ids.len)	/* a direction not walked has no data */
		memcpy(ids + 1, w[0].ids.data, w[0].ids.len);
	if (w[1].ids.len)
		memcpy(ids + 1 + w[0].ids.len / 16, w[1].ids.data, w[1].ids.len);
	for (size_t k = 0; k < l.n; k++) {
		memcpy(l.nodes[k].id, ids[k], 16);
		bb_buf_init(&l.nodes[k].children);
	}
	int fetched = bb_tracker_fetch(t, (const bb_id *)ids, (int)l.n,
	    keep_record, &l);
	if (fetched != 0 || !l.nodes[0].found) {
		rc = fetched != 0 ? bb_cli_fail(c, "Redis is unreachable") : bb_cli_fail(c,
		    "no record of event %s: unknown, or older than the "
		    "correlation TTL", text);
		free(ids);
		goto end;
	}
	bool cut = w[0].truncated || w[0].depth_capped || w[1].truncated ||
	    w[1].depth_capped || w[1].children_capped;
	if (dot) {
		struct bb_dot d;
		bb_dot_begin(&d, &resp.body, start, (const uint8_t *)(ids + 1),
		    l.n - 1);
		d.truncated = cut;
		for (size_t k = 0; k < l.n; k++)
			bb_dot_node(&d, l.nodes[k].id, l.nodes[k].found ?
			    &l.nodes[k].rec : NULL);
		bb_dot_end(&d);
		free(ids);
		fwrite(resp.body.data, 1, resp.body.len, stdout);
		rc = fflush(stdout) == 0 ? 0 : 1;
		goto end;
	}
	free(ids);
	qsort(l.nodes, l.n, sizeof(*l.nodes), by_id);
	l.start = find(&l, start);
	print_node(&l, l.start, 0, "* ", false);
	l.start->shown = true;
	if (up)
		print_tree(&l, l.start, 1, true);
	if (down)
		print_tree(&l, l.start, 1, false);
	if (cut)
		printf("(the walk stopped at its bounds: %d levels, %d events, "
		    "or CORRELATION_MAX_CHILDREN; some events are not shown)\n",
		    BB_WALK_DEFAULT_DEPTH, BB_WALK_MAX_IDS);
	rc = fflush(stdout) == 0 ? 0 : 1;
end:
	for (size_t k = 0; k < l.n; k++)
		bb_buf_free(&l.nodes[k].children);
	free(l.nodes);
	bb_buf_free(&w[0].ids);
	bb_buf_free(&w[1].ids);
	bb_response_free(&resp);
	bb_tracker_free(t);
	bb_config_free(&cfg);
	return rc;
}

/* ------------------------------------------------------- dispatch */

static const struct bb_command commands[] = {
	{ "doctor", "",
	    "Checks every part a deployment needs, with the workers'\n"
	    "configuration: the configuration and the modes of the files that\n"
	    "hold secrets, the broker (connect, login, the exchange and its\n"
	    "alternate exchange, the unrouted queue, the archive stream), Redis\n"
	    "(connect, AUTH, the record script, memory, TTL), SCHEMA_DIR,\n"
	    "METRICS_PATH and the web server's /healthz at HTTP_HOST:HTTP_PORT.\n"
	    "One line per check, [ok], [FAIL] with what to do, or [skip] when it\n"
	    "does not apply; exit 0 only when nothing failed.\n",
	    bb_cli_doctor },
	{ "emit", "[--key KEY] [--parent ID]... TYPE [JSON]",
	    "Publishes one event of TYPE, its JSON payload from the argument or\n"
	    "from stdin, through the same validation, envelope, confirm and\n"
	    "tracking as POST /events/TYPE. --key is its Idempotency-Key; each\n"
	    "--parent a parent event id. Prints the published document once the\n"
	    "broker confirmed it; otherwise the error document on stderr, exit 1.\n",
	    emit },
	{ "replay", "--since TIME [--until TIME] [--type PATTERN] "
	    "[--to-exchange EX] [--dry-run]",
	    "Reads the archive stream (ARCHIVE_STREAM) from the first event at\n"
	    "or after TIME (RFC 3339, or a duration back from now: 90s, 15m, 2h,\n"
	    "7d) to --until (default: now), and publishes each event whose type\n"
	    "matches the topic PATTERN (default #) again to EX (default the\n"
	    "configured exchange) with confirms: the same body, message id,\n"
	    "routing key and properties, with the header x-bloodbank-replayed:\n"
	    "true (replayed copies are never replayed again). --dry-run lists\n"
	    "them instead. Prints how many were read, matched and replayed.\n",
	    bb_cli_replay },
	{ "tail", "[--json] [--count N] [PATTERN...]",
	    "A live view of the events on the exchange whose routing keys match\n"
	    "the topic PATTERNs (default #), through a private queue deleted\n"
	    "when the command ends: one line per event (time, type, id, parents,\n"
	    "a short payload), or with --json each published document on a line.\n"
	    "--count N ends it after N events; Ctrl-C ends it too (exit 0).\n",
	    bb_cli_tail },
	{ "trace", "[--ancestors|--descendants] [--json|--dot] ID",
	    "The lineage of event ID from the correlation records in Redis:\n"
	    "both directions by default, one event per line (type, time, id),\n"
	    "the start event marked (*), its ancestors (↑) and descendants (↓)\n"
	    "indented under the event they were reached from. --json prints\n"
	    "the debug endpoint's answer, --dot a Graphviz digraph.\n",
	    trace },
};

bool
bb_cli_is_command(const char *name)
{
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
		if (strcmp(name, commands[k].name) == 0)
			return true;
	}
	return false;
}

int
bb_cli_run(int argc, char **argv)
{
	opterr = 0;		/* bb_cli_bad_option says it, in one line */
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
		if (strcmp(argv[0], commands[k].name) == 0)
			return commands[k].run(&commands[k], argc, argv);
	}
	return 2;
}
