#include "envelope.h"

#include <stdio.h>
#include <string.h>

#include "json.h"

void
bb_timestamp_format(int64_t unix_us, char *out)
{
	time_t secs = (time_t)(unix_us / 1000000);
	struct tm tm;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(out, BB_TIMESTAMP_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, BB_TIMESTAMP_LEN + 1 - n, ".%06d+00:00",
	    (int)(unix_us % 1000000));
}

void
bb_envelope_stamp(struct bb_envelope *env, const struct timespec *now)
{
	env->unix_us = (int64_t)now->tv_sec * 1000000 + now->tv_nsec / 1000;
	bb_timestamp_format(env->unix_us, env->timestamp);
}

int
bb_envelope_add_parent(struct bb_envelope *env, const char *uuid)
{
	char id[BB_UUID_STRLEN + 1];

	bb_uuid_lower(uuid, id);
	for (int k = 0; k < env->nparents; k++) {
		if (strcmp(env->parents[k], id) == 0)
			return 0;
	}
	if (env->nparents == BB_MAX_PARENTS)
		return -1;
	memcpy(env->parents[env->nparents++], id, sizeof(id));
	return 0;
}

static void
put_field(struct bb_buf *out, const char *name, const char *value)
{
	bb_buf_printf(out, ",\"%s\":", name);
	bb_json_write_string(out, value, strlen(value));
}

void
bb_envelope_write(const struct bb_envelope *env, struct bb_buf *out)
{
	bb_buf_printf(out, "{\"event_id\":\"%s\"", env->event_id);
	put_field(out, "event_type", env->event_type);
	bb_buf_printf(out, ",\"timestamp\":\"%s\",\"version\":\"%s\"",
	    env->timestamp, BB_ENVELOPE_VERSION);
	bb_buf_puts(out, ",\"source\":{\"host\":");
	bb_json_write_string(out, env->source_host, strlen(env->source_host));
	put_field(out, "type", env->source_type);
	put_field(out, "app", env->source_app);
	bb_buf_printf(out, ",\"meta\":%s}",
	    env->source_meta ? env->source_meta : "{}");
	bb_buf_puts(out, ",\"correlation_ids\":[");
	for (int k = 0; k < env->nparents; k++)
		bb_buf_printf(out, "%s\"%s\"", k ? "," : "", env->parents[k]);
	bb_buf_printf(out, "],\"agent_context\":%s",
	    env->agent_context ? env->agent_context : "null");
	bb_buf_puts(out, ",\"payload\":");
	if (env->payload)
		bb_buf_append(out, env->payload, env->payload_len);
	else
		bb_buf_puts(out, "null");
	if (env->traceparent)
		put_field(out, "traceparent", env->traceparent);
	if (env->tracestate)
		put_field(out, "tracestate", env->tracestate);
	bb_buf_putc(out, '}');
}

/* §9.3: the source of an event that did not come as a CloudEvent, a
 * URI-reference naming the producer. Source names are [A-Za-z0-9_.:-]. */
static void
put_source(struct bb_buf *out, const struct bb_envelope *env)
{
	bb_buf_puts(out, ",\"source\":");
	if (strcmp(env->source_type, "hook") == 0)
		bb_buf_printf(out, "\"/bloodbank/webhooks/%s\"", env->source_app);
	else if (strcmp(env->source_app, "http") == 0)
		bb_buf_puts(out, "\"/bloodbank/http\"");
	else
		bb_buf_printf(out, "\"/bloodbank/apps/%s\"", env->source_app);
}

void
bb_envelope_write_cloudevent(const struct bb_envelope *env, struct bb_buf *out)
{
	bb_buf_puts(out, "{\"specversion\":\"1.0\"");
	if (env->ce_kept) {
		bb_buf_putc(out, ',');
		bb_buf_puts(out, env->ce_kept);
	} else {
		bb_buf_printf(out, ",\"id\":\"%s\"", env->event_id);
		put_source(out, env);
		bb_buf_puts(out, ",\"datacontenttype\":\"application/json\"");
	}
	put_field(out, "type", env->event_type);
	bb_buf_printf(out, ",\"time\":\"%s\",\"bloodbankid\":\"%s\"",
	    env->timestamp, env->event_id);
	if (env->nparents) {
		bb_buf_puts(out, ",\"causationid\":\"");
		for (int k = 0; k < env->nparents; k++)
			bb_buf_printf(out, "%s%s", k ? "," : "", env->parents[k]);
		bb_buf_putc(out, '"');
	}
	if (env->traceparent)
		put_field(out, "traceparent", env->traceparent);
	if (env->tracestate)
		put_field(out, "tracestate", env->tracestate);
	if (env->data_base64) {
		put_field(out, "data_base64", env->data_base64);
	} else if (env->payload) {
		bb_buf_puts(out, ",\"data\":");
		bb_buf_append(out, env->payload, env->payload_len);
	}
	bb_buf_putc(out, '}');
}
