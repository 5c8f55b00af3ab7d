/* bloodbank replay: events read again from the archive stream (CONTRACT
 * §11.1, §11.2) and published once more, unchanged, with confirms. One
 * connection reads the stream (a consumer with a prefetch window, so that
 * a million events never sit in memory), another publishes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_framing.h>

#include "buf.h"
#include "cli_command.h"
#include "clitime.h"
#include "clock.h"
#include "connect.h"
#include "json.h"
#include "topic.h"

#define PREFETCH 500		/* stream messages the broker sends ahead */
#define WINDOW 200		/* publishes awaiting their confirms */
#define QUIET_MS 2000		/* nothing more this long: the archive's end */
#define REPLAYED_HEADER "x-bloodbank-replayed"

struct replay {
	const struct bb_command *c;
	amqp_connection_state_t reader, writer;
	const char *exchange;	/* where the events go again */
	const char *pattern;	/* --type */
	long long since, until;	/* µs; until: the replay's own start at most */
	bool dry_run, progress, colour;
	long read, matched, replayed, failed;
	/* the publishes in flight: delivery tags next_tag - n .. next_tag - 1 */
	uint64_t next_tag;
	bool settled[WINDOW];
	int n;
	struct bb_buf line;
};

/* The event's own time: the envelope's timestamp, or a CloudEvent's. */
static bool
event_time(const amqp_bytes_t body, long long *us)
{
	struct bb_json doc;
	char err[64];
	size_t len;
	bool ok = false;

	if (bb_json_parse(&doc, body.bytes, body.len, err, sizeof(err)) ==
	    BB_JSON_OK && bb_json_type(&doc, 0) == BB_JSON_OBJECT) {
		int t = bb_json_get(&doc, 0, "timestamp");
		if (t < 0)
			t = bb_json_get(&doc, 0, "time");
		if (t >= 0 && bb_json_type(&doc, t) == BB_JSON_STRING) {
			const char *raw = bb_json_raw(&doc, t, &len);
			ok = bb_rfc3339_us(raw, len, us);
		}
	}
	bb_json_free(&doc);
	return ok;
}

static bool
replayed_before(const amqp_basic_properties_t *p)
{
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return false;
	for (int k = 0; k < p->headers.num_entries; k++) {
		const amqp_bytes_t key = p->headers.entries[k].key;
		if (key.len == sizeof(REPLAYED_HEADER) - 1 &&
		    memcmp(key.bytes, REPLAYED_HEADER, key.len) == 0)
			return true;
	}
	return false;
}

/* Waits until every publish in flight is confirmed (or the confirm
 * timeout passes); counts the acks and the nacks. */
static bool
settle(struct replay *r, int timeout_ms)
{
	long long deadline = bb_monotonic_ms() + timeout_ms;
	uint64_t first = r->next_tag - (uint64_t)r->n;
	int open = 0;

	for (int k = 0; k < r->n; k++)
		open += !r->settled[k];
	while (open > 0) {
		long long left = deadline - bb_monotonic_ms();
		struct timeval tv = bb_ms_to_tv(left > 0 ? left : 0);
		amqp_frame_t f;
		if (left <= 0 || amqp_simple_wait_frame_noblock(r->writer, &f,
		    &tv) != AMQP_STATUS_OK || f.frame_type != AMQP_FRAME_METHOD)
			return false;
		uint64_t tag;
		bool multiple, ack = true;
		if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
			amqp_basic_ack_t *a = f.payload.method.decoded;
			tag = a->delivery_tag;
			multiple = a->multiple;
		} else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
			amqp_basic_nack_t *a = f.payload.method.decoded;
			tag = a->delivery_tag;
			multiple = a->multiple;
			ack = false;
		} else {
			return false;	/* the channel or connection closed */
		}
		for (int k = 0; k < r->n; k++) {
			uint64_t t = first + (uint64_t)k;
			if (r->settled[k] || !(t == tag || (multiple && t < tag)))
				continue;
			r->settled[k] = true;
			open--;
			if (ack)
				r->replayed++;
			else
				r->failed++;
		}
	}
	r->n = 0;
	return true;
}

/* Publishes a delivery again: its body, routing key and properties, the
 * stream's own offset header left out and REPLAYED_HEADER added. */
static bool
publish_again(struct replay *r, const amqp_envelope_t *env)
{
	amqp_basic_properties_t p = env->message.properties;
	const amqp_table_t *h = &env->message.properties.headers;
	bool had = (p._flags & AMQP_BASIC_HEADERS_FLAG) != 0;
	amqp_table_entry_t *e = calloc((size_t)(had ? h->num_entries : 0) + 1,
	    sizeof(*e));
	int n = 0;

	if (e == NULL)
		return false;
	for (int k = 0; had && k < h->num_entries; k++) {
		if (h->entries[k].key.len == 15 &&
		    memcmp(h->entries[k].key.bytes, "x-stream-offset", 15) == 0)
			continue;
		e[n++] = h->entries[k];
	}
	e[n].key = amqp_cstring_bytes(REPLAYED_HEADER);
	e[n].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	e[n++].value.value.boolean = 1;
	p.headers = (amqp_table_t){ n, e };
	p._flags |= AMQP_BASIC_HEADERS_FLAG;
	int rc = amqp_basic_publish(r->writer, BB_AMQP_CHANNEL,
	    amqp_cstring_bytes(r->exchange), env->routing_key, 0, 0, &p,
	    env->message.body);
	free(e);
	if (rc != AMQP_STATUS_OK)
		return false;
	r->settled[r->n++] = false;
	r->next_tag++;
	return true;
}

static void
show_progress(struct replay *r, bool last)
{
	if (!r->progress)
		return;
	fprintf(stderr, "\rread %ld  matched %ld  %s %ld%s", r->read, r->matched,
	    r->dry_run ? "listed" : "replayed", r->dry_run ? r->matched :
	    r->replayed, last ? "\n" : "");
	fflush(stderr);
}

/* Reads the archive from r->since to its end (or r->until), handing on
 * each event that matches. Returns 0, or 1 when the broker failed. */
static int
run(struct replay *r, const struct bb_config *cfg)
{
	amqp_table_entry_t offset = { amqp_cstring_bytes("x-stream-offset"),
		{ AMQP_FIELD_KIND_TIMESTAMP, { .u64 = (uint64_t)(r->since /
		    1000000) } } };
	amqp_table_t args = { 1, &offset };
	long long shown = 0;
	uint64_t unacked = 0;
	int rc = 0;

	amqp_basic_qos(r->reader, BB_AMQP_CHANNEL, 0, PREFETCH, 0);
	if (amqp_get_rpc_reply(r->reader).reply_type != AMQP_RESPONSE_NORMAL)
		return bb_cli_fail(r->c, "the broker refused basic.qos");
	amqp_basic_consume(r->reader, BB_AMQP_CHANNEL,
	    amqp_cstring_bytes(cfg->archive_stream), amqp_empty_bytes, 0, 0, 0,
	    args);
	if (amqp_get_rpc_reply(r->reader).reply_type != AMQP_RESPONSE_NORMAL)
		return bb_cli_fail(r->c, "the broker refused to read stream %s",
		    cfg->archive_stream);
	r->next_tag = 1;
	while (!bb_cli_interrupted) {
		struct timeval quiet = bb_ms_to_tv(QUIET_MS);
		amqp_envelope_t env;
		amqp_maybe_release_buffers(r->reader);
		amqp_rpc_reply_t got = amqp_consume_message(r->reader, &env, &quiet,
		    0);
		if (got.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    got.library_error == AMQP_STATUS_TIMEOUT)
			break;		/* the end of the archive */
		if (got.reply_type != AMQP_RESPONSE_NORMAL) {
			rc = bb_cli_fail(r->c, "the broker closed the connection");
			break;
		}
		r->read++;
		/* the stream counts acks as credit for more */
		if (++unacked >= PREFETCH / 2) {
			amqp_basic_ack(r->reader, BB_AMQP_CHANNEL, env.delivery_tag, 1);
			unacked = 0;
		}
		long long t;
		bool stop = false, take = false;
		char key[256] = "";
		if (env.routing_key.len < sizeof(key))
			memcpy(key, env.routing_key.bytes, env.routing_key.len);
		if (!replayed_before(&env.message.properties) &&
		    event_time(env.message.body, &t) && t >= r->since) {
			stop = t > r->until;
			take = !stop && (r->pattern == NULL ||
			    bb_topic_match(r->pattern, key));
		}
		if (take) {
			r->matched++;
			if (r->dry_run) {
				bb_cli_event_line(env.message.body.bytes,
				    env.message.body.len, r->colour, &r->line);
				printf("%.*s\n", (int)r->line.len, r->line.data);
			} else if (!publish_again(r, &env) || (r->n == WINDOW &&
			    !settle(r, cfg->confirm_timeout_ms))) {
				amqp_destroy_envelope(&env);
				rc = bb_cli_fail(r->c, "publishing to exchange %s failed "
				    "after %ld events", r->exchange, r->replayed);
				break;
			}
		}
		amqp_destroy_envelope(&env);
		if (stop)
			break;
		if (bb_monotonic_ms() - shown >= 250) {
			show_progress(r, false);
			shown = bb_monotonic_ms();
		}
	}
	if (rc == 0 && !r->dry_run && r->n && !settle(r, cfg->confirm_timeout_ms))
		rc = bb_cli_fail(r->c, "the broker did not confirm the last %d "
		    "events", r->n);
	show_progress(r, true);
	return rc;
}

/* A passive declare: whether the exchange exists, asked before anything
 * is read. */
static bool
exchange_exists(amqp_connection_state_t conn, const char *name)
{
	amqp_exchange_declare(conn, BB_AMQP_CHANNEL, amqp_cstring_bytes(name),
	    amqp_cstring_bytes("topic"), 1, 0, 0, 0, amqp_empty_table);
	return amqp_get_rpc_reply(conn).reply_type == AMQP_RESPONSE_NORMAL;
}

int
bb_cli_replay(const struct bb_command *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "type", required_argument, NULL, 't' },
		{ "to-exchange", required_argument, NULL, 'x' },
		{ "dry-run", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct timespec now;
	struct replay r = { .c = c };
	const char *since = NULL, *until = NULL, *to = NULL;
	int o;

	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			since = optarg;
			break;
		case 'u':
			until = optarg;
			break;
		case 't':
			r.pattern = optarg;
			break;
		case 'x':
			to = optarg;
			break;
		case 'd':
			r.dry_run = true;
			break;
		case 'h':
			return bb_cli_help(c);
		default:
			return bb_cli_bad_option(c, argv);
		}
	}
	if (optind < argc)
		return bb_cli_usage(c, "too many arguments");
	clock_gettime(CLOCK_REALTIME, &now);
	long long now_us = (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	if (since == NULL)
		return bb_cli_usage(c, "--since is missing");
	if (!bb_cli_time(since, now_us, &r.since) || (until &&
	    !bb_cli_time(until, now_us, &r.until)))
		return bb_cli_usage(c, "TIME is RFC 3339 (2026-12-03T06:00:00Z) "
		    "or a duration back from now (90s, 15m, 2h, 7d)");
	/* never past the replay's own start: what is published from here on
	 * (by others, or by this replay) is not replayed */
	if (until == NULL || r.until > now_us)
		r.until = now_us;
	if (r.until < r.since)
		return bb_cli_usage(c, "--until is before --since");
	if (r.pattern && !bb_topic_pattern_valid(r.pattern)) {
		fprintf(stderr, "bloodbank %s: %s is not a topic pattern: words of "
		    "[a-z0-9_-] joined by dots, * for one word, # for any number\n",
		    c->name, r.pattern);
		return 2;
	}
	if (to && (to[0] == '\0' || strlen(to) > 255))
		return bb_cli_usage(c, "--to-exchange wants an exchange name "
		    "(1-255 bytes)");

	struct bb_config cfg;
	if (!bb_cli_config(c, &cfg))
		return 1;
	int rc = 1;
	r.exchange = to ? to : cfg.exchange;
	if (cfg.archive_stream[0] == '\0') {
		bb_cli_fail(c, "ARCHIVE_STREAM is not set: there is no archive to "
		    "replay from");
		goto end;
	}
	if ((r.reader = bb_cli_connect(c, &cfg)) == NULL)
		goto end;
	if (!r.dry_run && (r.writer = bb_cli_connect(c, &cfg)) == NULL)
		goto end;
	if (r.writer) {
		if (to && !exchange_exists(r.writer, to)) {
			bb_cli_fail(c, "exchange %s does not exist; nothing was read",
			    to);
			goto end;
		}
	}
	bb_cli_catch_interrupts();
	r.progress = isatty(STDERR_FILENO);
	r.colour = bb_cli_colour(stdout);
	bb_buf_init(&r.line);
	rc = run(&r, &cfg);
	bb_buf_free(&r.line);
	printf("read %ld, matched %ld, %s %ld%s\n", r.read, r.matched,
	    r.dry_run ? "listed" : "replayed", r.dry_run ? r.matched : r.replayed,
	    bb_cli_interrupted ? " (interrupted)" : "");
	if (r.failed)
		rc = bb_cli_fail(c, "the broker refused (nacked) %ld events",
		    r.failed);
end:
	for (int k = 0; k < 2; k++) {
		amqp_connection_state_t conn = k ? r.writer : r.reader;
		if (conn) {
			amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
			amqp_destroy_connection(conn);
		}
	}
	bb_config_free(&cfg);
	return rc;
}
