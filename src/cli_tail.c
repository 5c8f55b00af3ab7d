/* bloodbank tail: a live view of the bus (CONTRACT §11.1). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <amqp.h>

#include "buf.h"
#include "cli_command.h"
#include "connect.h"
#include "json.h"
#include "topic.h"

#define SHORT_PAYLOAD 80

/* A string member's raw text, or "-". */
static void
put_member(struct bb_buf *out, const struct bb_json *doc, const char *key)
{
	int v = bb_json_get(doc, 0, key);
	size_t len;

	if (v < 0 || bb_json_type(doc, v) != BB_JSON_STRING) {
		bb_buf_putc(out, '-');
		return;
	}
	const char *raw = bb_json_raw(doc, v, &len);
	bb_buf_append(out, raw, len);
}

void
bb_cli_event_line(const char *body, size_t len, bool colour, struct bb_buf *out)
{
	struct bb_json doc;
	char err[128];

	bb_buf_reset(out);
	if (bb_json_parse(&doc, body, len, err, sizeof(err)) != BB_JSON_OK ||
	    bb_json_type(&doc, 0) != BB_JSON_OBJECT) {
		bb_buf_printf(out, "(not an event: %zu bytes) %.*s", len,
		    (int)(len < SHORT_PAYLOAD ? len : SHORT_PAYLOAD), body);
		bb_json_free(&doc);
		return;
	}
	bool ce = bb_json_get(&doc, 0, "specversion") >= 0;
	put_member(out, &doc, ce ? "time" : "timestamp");
	bb_buf_puts(out, colour ? "  \033[1m" : "  ");
	put_member(out, &doc, ce ? "type" : "event_type");
	bb_buf_puts(out, colour ? "\033[0m  " : "  ");
	put_member(out, &doc, ce ? "bloodbankid" : "event_id");

	int parents = bb_json_get(&doc, 0, ce ? "causationid" : "correlation_ids");
	struct bb_buf ids;
	bb_buf_init(&ids);
	if (parents >= 0 && bb_json_type(&doc, parents) == BB_JSON_ARRAY) {
		for (int k = parents + 1, n = 0; n < bb_json_size(&doc, parents);
		    k = bb_json_next(&doc, k), n++) {
			size_t l;
			const char *raw = bb_json_raw(&doc, k, &l);
			bb_buf_printf(&ids, "%s%.*s", n ? "," : "", l < 8 ? (int)l : 8,
			    raw);
		}
	} else if (parents >= 0 && bb_json_type(&doc, parents) == BB_JSON_STRING) {
		size_t l;
		const char *raw = bb_json_raw(&doc, parents, &l);
		for (size_t k = 0; k < l; k += 37)	/* "id,id,..." */
			bb_buf_printf(&ids, "%s%.*s", k ? "," : "",
			    (int)(l - k < 8 ? l - k : 8), raw + k);
	}
	if (ids.len)
		bb_buf_printf(out, "  parents=%.*s", (int)ids.len, ids.data);
	bb_buf_free(&ids);

	int payload = bb_json_get(&doc, 0, ce ? "data" : "payload");
	if (payload < 0 && ce)
		payload = bb_json_get(&doc, 0, "data_base64");
	if (payload >= 0) {
		struct bb_buf p;
		bb_buf_init(&p);
		bb_json_write_value(&p, &doc, payload);
		bb_buf_puts(out, "  ");
		if (p.len > SHORT_PAYLOAD) {
			size_t cut = SHORT_PAYLOAD;
			while (cut > 0 && (p.data[cut] & 0xC0) == 0x80)
				cut--;		/* not inside a UTF-8 character */
			bb_buf_append(out, p.data, cut);
			bb_buf_puts(out, "…");
		} else {
			bb_buf_append(out, p.data, p.len);
		}
		bb_buf_free(&p);
	}
	bb_json_free(&doc);
}

/* A private queue: server-named, exclusive, deleted with the connection,
 * bound to the exchange with each pattern; nothing is taken from anyone
 * else's queue. */
static bool
subscribe(amqp_connection_state_t conn, const struct bb_config *cfg,
    char **patterns, int n)
{
	amqp_queue_declare_ok_t *q = amqp_queue_declare(conn, BB_AMQP_CHANNEL,
	    amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
	if (q == NULL)
		return false;
	amqp_bytes_t name = amqp_bytes_malloc_dup(q->queue);
	bool ok = true;
	for (int k = 0; k < n && ok; k++) {
		amqp_queue_bind(conn, BB_AMQP_CHANNEL, name,
		    amqp_cstring_bytes(cfg->exchange), amqp_cstring_bytes(patterns[k]),
		    amqp_empty_table);
		ok = amqp_get_rpc_reply(conn).reply_type == AMQP_RESPONSE_NORMAL;
	}
	if (ok) {
		amqp_basic_consume(conn, BB_AMQP_CHANNEL, name, amqp_empty_bytes, 0,
		    1, 1, amqp_empty_table);
		ok = amqp_get_rpc_reply(conn).reply_type == AMQP_RESPONSE_NORMAL;
	}
	amqp_bytes_free(name);
	return ok;
}

int
bb_cli_tail(const struct bb_command *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char *everything[] = { "#" };
	bool json = false;
	long count = 0;
	char *end;
	int o;

	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			json = true;
			break;
		case 'n':
			count = strtol(optarg, &end, 10);
			if (*end || end == optarg || count < 1)
				return bb_cli_usage(c, "--count wants a number of "
				    "events, 1 or more");
			break;
		case 'h':
			return bb_cli_help(c);
		default:
			return bb_cli_bad_option(c, argv);
		}
	}
	char **patterns = argc > optind ? argv + optind : everything;
	int npatterns = argc > optind ? argc - optind : 1;
	for (int k = 0; k < npatterns; k++) {
		if (!bb_topic_pattern_valid(patterns[k])) {
			fprintf(stderr, "bloodbank %s: %s is not a topic pattern: "
			    "words of [a-z0-9_-] joined by dots, * for one word, "
			    "# for any number\n", c->name, patterns[k]);
			return 2;
		}
	}

	struct bb_config cfg;
	if (!bb_cli_config(c, &cfg))
		return 1;
	int rc = 1;
	amqp_connection_state_t conn = bb_cli_connect(c, &cfg);
	if (conn == NULL)
		goto end;
	if (!subscribe(conn, &cfg, patterns, npatterns)) {
		rc = bb_cli_fail(c, "the broker refused the private queue or its "
		    "bindings to exchange %s", cfg.exchange);
		goto close;
	}

	bb_cli_catch_interrupts();

	bool colour = bb_cli_colour(stdout);
	struct bb_buf line;
	bb_buf_init(&line);
	long seen = 0;
	rc = 0;
	while (!bb_cli_interrupted && (count == 0 || seen < count)) {
		struct timeval wait = { 0, 250 * 1000 };
		amqp_envelope_t env;
		amqp_maybe_release_buffers(conn);
		amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &wait, 0);
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_TIMEOUT)
			continue;
		if (r.reply_type != AMQP_RESPONSE_NORMAL) {
			if (!bb_cli_interrupted)
				rc = bb_cli_fail(c, "the broker closed the "
				    "connection");
			break;
		}
		if (json) {
			fwrite(env.message.body.bytes, 1, env.message.body.len,
			    stdout);
		} else {
			bb_cli_event_line(env.message.body.bytes, env.message.body.len,
			    colour, &line);
			fwrite(line.data, 1, line.len, stdout);
		}
		amqp_destroy_envelope(&env);
		if (putchar('\n') == EOF || fflush(stdout) != 0)
			break;		/* the reader went away */
		seen++;
	}
	bb_buf_free(&line);
close:
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
end:
	bb_config_free(&cfg);
	return rc;
}
