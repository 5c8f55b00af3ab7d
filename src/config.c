#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <iniparser/iniparser.h>

#include "proxy.h"
#include "xalloc.h"

#define DEFAULT_INI "/etc/bloodbank/bloodbank.ini"
#define DEFAULT_ENV_FILE ".env"

enum kind { K_STRING, K_AMQP_URLS, K_INT, K_LONG, K_BOOL, K_EXCHANGE_TYPE,
	K_QUEUE_TYPE, K_ENVELOPE_FORMAT, K_LOG_LEVEL, K_LOG_TARGET, K_ADDRESSES,
	K_HOST_PORTS, K_DURATION };

static const char *const exchange_types[] = {
	"topic", "direct", "fanout", "headers", NULL
};
static const char *const queue_types[] = { "quorum", "classic", NULL };
static const char *const envelope_formats[] = { "bloodbank", "cloudevents",
	NULL };

struct setting {
	const char *env;
	const char *alias;	/* older name, still honoured */
	const char *ini;	/* section:key, as iniparser spells it */
	const char *def;
	enum kind kind;
	size_t offset;
	long min, max;
	bool secret;
};

#define OFF(f) offsetof(struct bb_config, f)

/* A stream's x-max-age: digits and a unit (RabbitMQ: Y, M, D, h, m, s). */
static bool
duration_valid(const char *v)
{
	size_t digits = strspn(v, "0123456789");

	return digits > 0 && digits < 10 && v[digits] != '\0' &&
	    strchr("YMDhms", v[digits]) != NULL && v[digits + 1] == '\0';
}

static const struct setting settings[] = {
	{ "RABBIT_URL", NULL, "rabbitmq:url",
	    "amqp://guest:guest@localhost:5672/", K_AMQP_URLS, OFF(rabbit_url), 1,
	    8192, true },
	/* 246 so that "<exchange>.unrouted" fits AMQP's 255-byte names. */
	{ "RABBIT_EXCHANGE", "EXCHANGE_NAME", "rabbitmq:exchange", "events",
	    K_STRING, OFF(exchange), 1, 246, false },
	{ "RABBIT_EXCHANGE_TYPE", NULL, "rabbitmq:exchange_type", "topic",
	    K_EXCHANGE_TYPE, OFF(exchange_type), 0, 0, false },
	{ "RABBIT_CONFIRM_TIMEOUT_MS", NULL, "rabbitmq:confirm_timeout_ms", "5000",
	    K_INT, OFF(confirm_timeout_ms), 1, 600000, false },
	{ "RABBIT_CONNECT_TIMEOUT_MS", NULL, "rabbitmq:connect_timeout_ms", "2000",
	    K_INT, OFF(connect_timeout_ms), 1, 600000, false },
	{ "RABBIT_HEARTBEAT_SECONDS", NULL, "rabbitmq:heartbeat_seconds", "30",
	    K_INT, OFF(heartbeat_s), 0, 3600, false },
	{ "REDIS_HOST", NULL, "redis:host", "localhost",
	    K_STRING, OFF(redis_host), 1, 1024, false },
	{ "REDIS_PORT", NULL, "redis:port", "6379",
	    K_INT, OFF(redis_port), 1, 65535, false },
	{ "REDIS_DB", NULL, "redis:db", "0", K_INT, OFF(redis_db), 0, 65535, false },
	{ "REDIS_PASSWORD", NULL, "redis:password", "",
	    K_STRING, OFF(redis_password), 0, 1024, true },
	{ "REDIS_TTL_DAYS", "CORRELATION_TTL_DAYS", "redis:ttl_days", "30",
	    K_INT, OFF(redis_ttl_days), 1, 3650, false },
	{ "REDIS_TIMEOUT_MS", NULL, "redis:timeout_ms", "100",
	    K_INT, OFF(redis_timeout_ms), 1, 60000, false },
	{ "IDEMPOTENCY_WINDOW_SECONDS", NULL, "redis:idempotency_window_seconds",
	    "86400", K_INT, OFF(idempotency_window_s), 1, 2592000, false },
	{ "CORRELATION_TRACKING", NULL, "correlation:enabled", "true",
	    K_BOOL, OFF(correlation_tracking), 0, 0, false },
	{ "CORRELATION_MAX_CHILDREN", NULL, "correlation:max_children", "10000",
	    K_INT, OFF(max_children), 1, 1000000, false },
	{ "HTTP_HOST", NULL, "http:host", "127.0.0.1",
	    K_STRING, OFF(http_host), 1, 255, false },
	{ "HTTP_PORT", NULL, "http:port", "8682",
	    K_INT, OFF(http_port), 1, 65535, false },
	{ "MAX_BODY_BYTES", NULL, "http:max_body_bytes", "1048576",
	    K_LONG, OFF(max_body_bytes), 2, 1073741824, false },
	{ "API_TOKEN", NULL, "http:api_token", "",
	    K_STRING, OFF(api_token), 0, 4096, true },
	{ "DEBUG_ENDPOINTS", NULL, "http:debug_endpoints", "true",
	    K_BOOL, OFF(debug_endpoints), 0, 0, false },
	{ "WORKER_CONCURRENCY", NULL, "http:worker_concurrency", "16",
	    K_INT, OFF(worker_concurrency), 1, 256, false },
	{ "BATCH_MAX_EVENTS", NULL, "http:batch_max_events", "500",
	    K_INT, OFF(batch_max_events), 1, 5000, false },
	{ "LOG_LEVEL", NULL, "log:level", "info",
	    K_LOG_LEVEL, OFF(log_level), 0, 0, false },
	{ "LOG_TARGET", NULL, "log:target", "stderr",
	    K_LOG_TARGET, OFF(log_target), 0, 0, false },
	{ "METRICS_PATH", NULL, "http:metrics_path", "/run/bloodbank/metrics",
	    K_STRING, OFF(metrics_path), 0, 1024, false },
	{ "FIREFLIES_WEBHOOK_SECRET", NULL, "webhooks:fireflies_secret", "",
	    K_STRING, OFF(fireflies_secret), 0, 4096, true },
	{ "UNROUTED_QUEUE_TYPE", NULL, "rabbitmq:unrouted_queue_type", "quorum",
	    K_QUEUE_TYPE, OFF(unrouted_queue_type), 0, 0, false },
	/* RabbitMQ takes x-max-length-bytes as a signed 64-bit number. */
	{ "UNROUTED_MAX_BYTES", NULL, "rabbitmq:unrouted_max_bytes", "1073741824",
	    K_LONG, OFF(unrouted_max_bytes), 1, LONG_MAX, false },
	{ "IDEMPOTENCY_MAX_STORED_BYTES", NULL,
	    "redis:idempotency_max_stored_bytes", "65536",
	    K_LONG, OFF(idempotency_max_stored_bytes), 0, 1073741824, false },
	{ "TRUSTED_PROXIES", NULL, "http:trusted_proxies", "",
	    K_ADDRESSES, OFF(trusted_proxies), 0, 0, false },
	{ "RABBIT_TLS_CA", NULL, "rabbitmq:tls_ca", "",
	    K_STRING, OFF(rabbit_tls_ca), 0, 4096, false },
	{ "RABBIT_TLS_CERT", NULL, "rabbitmq:tls_cert", "",
	    K_STRING, OFF(rabbit_tls_cert), 0, 4096, false },
	{ "RABBIT_TLS_KEY", NULL, "rabbitmq:tls_key", "",
	    K_STRING, OFF(rabbit_tls_key), 0, 4096, false },
	{ "RABBIT_TLS_VERIFY", NULL, "rabbitmq:tls_verify", "true",
	    K_BOOL, OFF(rabbit_tls_verify), 0, 0, false },
	{ "REDIS_SENTINELS", NULL, "redis:sentinels", "",
	    K_HOST_PORTS, OFF(redis_sentinels), 0, 4096, false },
	{ "REDIS_SENTINEL_MASTER", NULL, "redis:sentinel_master", "mymaster",
	    K_STRING, OFF(redis_sentinel_master), 1, 255, false },
	{ "REDIS_SENTINEL_PASSWORD", NULL, "redis:sentinel_password", "",
	    K_STRING, OFF(redis_sentinel_password), 0, 1024, true },
	{ "ENVELOPE_FORMAT", NULL, "rabbitmq:envelope_format", "bloodbank",
	    K_ENVELOPE_FORMAT, OFF(envelope_format), 0, 0, false },
	{ "SCHEMA_DIR", NULL, "schemas:dir", "/etc/bloodbank/schemas",
	    K_STRING, OFF(schema_dir), 0, 1024, false },
	/* a queue name: AMQP's 255 bytes */
	{ "ARCHIVE_STREAM", NULL, "rabbitmq:archive_stream", "",
	    K_STRING, OFF(archive_stream), 0, 255, false },
	{ "ARCHIVE_MAX_AGE", NULL, "rabbitmq:archive_max_age", "7D",
	    K_DURATION, OFF(archive_max_age), 0, 0, false },
	{ "ARCHIVE_MAX_BYTES", NULL, "rabbitmq:archive_max_bytes", "10737418240",
	    K_LONG, OFF(archive_max_bytes), 1, LONG_MAX, false },
	{ "SPOOL_DIR", NULL, "spool:dir", "",
	    K_STRING, OFF(spool_dir), 0, 1024, false },
	{ "SPOOL_MAX_BYTES", NULL, "spool:max_bytes", "1073741824",
	    K_LONG, OFF(spool_max_bytes), 1, LONG_MAX, false },
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Where each value came from, for error messages. */
struct source {
	const char *name;
	dictionary *dict;
};

static char ini_error[256];

/* iniparser reports syntax errors through a printf-like callback; keep the
 * first one for the startup error instead of printing it. */
static int
capture_ini_error(const char *fmt, ...)
{
	va_list ap;

	if (ini_error[0] != '\0')
		return 0;
	va_start(ap, fmt);
	vsnprintf(ini_error, sizeof(ini_error), fmt, ap);
	va_end(ap);
	ini_error[strcspn(ini_error, "\n")] = '\0';
	return 0;
}

static int
load_file(const char *path, bool must_exist, dictionary **out, char *err,
    size_t errlen)
{
	*out = NULL;
	if (access(path, F_OK) != 0) {
		if (!must_exist)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	ini_error[0] = '\0';
	iniparser_set_error_callback(capture_ini_error);
	*out = iniparser_load(path);
	if (*out == NULL) {
		snprintf(err, errlen, "%s: %s", path,
		    ini_error[0] ? ini_error : "cannot be read");
		return -1;
	}
	return 0;
}

/* Every key of the INI file must be one we know: a misspelt key silently
 * ignored would leave the operator running on a default. */
static int
check_ini_keys(dictionary *ini, const char *path, char *err, size_t errlen)
{
	for (int i = 0; i < ini->size; i++) {
		const char *key = ini->key[i];
		bool known = (key == NULL || strchr(key, ':') == NULL);

		for (size_t s = 0; !known && s < NSETTINGS; s++)
			known = (strcmp(key, settings[s].ini) == 0);
		if (!known) {
			snprintf(err, errlen, "%s: unknown key %s", path, key);
			return -1;
		}
	}
	return 0;
}

static bool
parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "true", "1", "yes", "on" };
	static const char *const no[] = { "false", "0", "no", "off" };

	for (size_t k = 0; k < 4; k++) {
		if (strcasecmp(v, yes[k]) == 0)
			return *out = true, true;
		if (strcasecmp(v, no[k]) == 0)
			return *out = false, true;
	}
	return false;
}

static bool
parse_long(const char *v, long min, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(v, &end, 10);
	return errno == 0 && end != v && *end == '\0' && *out >= min &&
	    *out <= max;
}

/* Each entry of a comma-separated list names a host after amqp:// or
 * amqps:// (TLS). */
static bool
amqp_urls_valid(const char *v)
{
	for (;;) {
		size_t n = strcspn(v, ",");
		const char *e = v;
		while (*e == ' ')
			e++;
		size_t scheme = strncmp(e, "amqps://", 8) == 0 ? 8 :
		    strncmp(e, "amqp://", 7) == 0 ? 7 : 0;
		if (scheme == 0 || n <= (size_t)(e - v) + scheme ||
		    strchr(",/:", e[scheme]) != NULL)
			return false;
		if (v[n] != ',')
			return true;
		v += n + 1;
	}
}

/* An empty string, or a comma-separated list of host:port (an IPv6 address
 * in brackets), the port 1-65535. */
static bool
host_ports_valid(const char *v)
{
	char host[256];
	int port, got;
	size_t n = strlen(v);

	while (n > 0 && v[n - 1] == ' ')
		n--;
	if (n > 0 && v[n - 1] == ',')
		return false;
	while ((got = bb_host_port_next(&v, host, sizeof(host), &port)) > 0)
		;
	return got == 0;
}

/* "a, b or c", for the message about a value that is none of them. */
static const char *
choices_text(const char *const *choices, char *out, size_t outlen)
{
	out[0] = '\0';
	for (const char *const *c = choices; *c; c++) {
		size_t used = strlen(out);
		snprintf(out + used, outlen - used, "%s%s",
		    c == choices ? "" : c[1] ? ", " : " or ", *c);
	}
	return out;
}

static int
apply(struct bb_config *cfg, const struct setting *s, const char *value,
    const char *from, char *err, size_t errlen)
{
	char *base = (char *)cfg;
	const char *expected = NULL;
	const char *const *choices;
	char text[128];
	long n;

	switch (s->kind) {
	case K_AMQP_URLS:
		if (!amqp_urls_valid(value)) {
			expected = "amqp://user:password@host:port/vhost, or a "
			    "comma-separated list of them";
			break;
		}
		/* FALLTHROUGH */
	case K_HOST_PORTS:
		if (s->kind == K_HOST_PORTS && !host_ports_valid(value)) {
			expected = "host:port, or a comma-separated list of them";
			break;
		}
		/* FALLTHROUGH */
	case K_STRING:
		if (s->max && (strlen(value) < (size_t)s->min ||
		    strlen(value) > (size_t)s->max)) {
			expected = "a shorter non-empty string";
			break;
		}
		*(char **)(base + s->offset) = bb_xstrdup(value);
		return 0;
	case K_INT:
	case K_LONG:
		if (!parse_long(value, s->min, s->max, &n)) {
			expected = "an integer in range";
			break;
		}
		if (s->kind == K_INT)
			*(int *)(base + s->offset) = (int)n;
		else
			*(long *)(base + s->offset) = n;
		return 0;
	case K_BOOL:
		if (parse_bool(value, (bool *)(base + s->offset)))
			return 0;
		expected = "true or false";
		break;
	case K_DURATION:
		if (!duration_valid(value)) {
			expected = "a duration as RabbitMQ writes it: a number and "
			    "one of Y M D h m s (7D, 12h)";
			break;
		}
		*(char **)(base + s->offset) = bb_xstrdup(value);
		return 0;
	case K_EXCHANGE_TYPE:
	case K_QUEUE_TYPE:
	case K_ENVELOPE_FORMAT:
		choices = s->kind == K_QUEUE_TYPE ? queue_types :
		    s->kind == K_ENVELOPE_FORMAT ? envelope_formats :
		    exchange_types;
		for (const char *const *c = choices; *c; c++) {
			if (strcmp(value, *c) == 0) {
				*(char **)(base + s->offset) = bb_xstrdup(value);
				return 0;
			}
		}
		expected = choices_text(choices, text, sizeof(text));
		break;
	case K_ADDRESSES:
		if (bb_proxies_parse(NULL, value, text, sizeof(text)) == 0) {
			*(char **)(base + s->offset) = bb_xstrdup(value);
			return 0;
		}
		expected = text;
		break;
	case K_LOG_LEVEL:
		if (bb_log_parse_level(value,
		    (enum bb_log_level *)(base + s->offset)) == 0)
			return 0;
		expected = "error, warning, info or debug";
		break;
	case K_LOG_TARGET:
		if (bb_log_parse_target(value,
		    (enum bb_log_target *)(base + s->offset)) == 0)
			return 0;
		expected = "stderr or syslog";
		break;
	}
	if (s->kind == K_INT || s->kind == K_LONG)
		snprintf(err, errlen, "%s (from %s): \"%s\" is not an integer "
		    "from %ld to %ld", s->env, from, value, s->min, s->max);
	else if (s->secret)
		snprintf(err, errlen, "%s (from %s): invalid value", s->env, from);
	else
		snprintf(err, errlen, "%s (from %s): invalid value \"%s\", "
		    "expected %s", s->env, from, value, expected);
	return -1;
}

/* The value of setting s from the strongest source that has it. */
static const char *
lookup(const struct setting *s, dictionary *envfile, const char *envpath,
    dictionary *ini, const char *inipath, const char **from)
{
	char key[64];
	const char *v;

	if ((v = getenv(s->env)) != NULL)
		return *from = "environment", v;
	if (s->alias && (v = getenv(s->alias)) != NULL)
		return *from = "environment", v;
	for (int pass = 0; envfile && pass < 2; pass++) {
		const char *name = pass ? s->alias : s->env;
		if (name == NULL)
			continue;
		/* iniparser keeps keys outside any section as ":name",
		 * lowercased. */
		snprintf(key, sizeof(key), ":%s", name);
		for (char *p = key; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if ((v = iniparser_getstring(envfile, key, NULL)) != NULL)
			return *from = envpath, v;
	}
	if (ini && (v = iniparser_getstring(ini, s->ini, NULL)) != NULL)
		return *from = inipath, v;
	return *from = "default", s->def;
}

const char *
bb_config_env_file(void)
{
	const char *p = getenv("BLOODBANK_ENV_FILE");

	return p ? p : DEFAULT_ENV_FILE;
}

const char *
bb_config_ini_file(void)
{
	const char *p = getenv("BLOODBANK_CONFIG");

	return p ? p : DEFAULT_INI;
}

int
bb_config_load(struct bb_config *cfg, char *err, size_t errlen)
{
	const char *envpath = getenv("BLOODBANK_ENV_FILE");
	const char *inipath = getenv("BLOODBANK_CONFIG");
	dictionary *envfile = NULL, *ini = NULL;
	int rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	if (load_file(envpath ? envpath : DEFAULT_ENV_FILE, envpath != NULL,
	    &envfile, err, errlen) != 0)
		goto end;
	if (load_file(inipath ? inipath : DEFAULT_INI, inipath != NULL, &ini,
	    err, errlen) != 0)
		goto end;
	if (ini && check_ini_keys(ini, inipath ? inipath : DEFAULT_INI, err,
	    errlen) != 0)
		goto end;
	for (size_t s = 0; s < NSETTINGS; s++) {
		const char *from;
		const char *v = lookup(&settings[s], envfile,
		    envpath ? envpath : DEFAULT_ENV_FILE, ini,
		    inipath ? inipath : DEFAULT_INI, &from);
		if (apply(cfg, &settings[s], v, from, err, errlen) != 0)
			goto end;
	}
	if ((cfg->rabbit_tls_cert[0] == '\0') != (cfg->rabbit_tls_key[0] == '\0')) {
		snprintf(err, errlen, "RABBIT_TLS_CERT and RABBIT_TLS_KEY go "
		    "together: a client certificate needs its key");
		goto end;
	}
	rc = 0;
end:
	if (envfile)
		iniparser_freedict(envfile);
	if (ini)
		iniparser_freedict(ini);
	return rc;
}

void
bb_config_free(struct bb_config *cfg)
{
	char *base = (char *)cfg;

	for (size_t s = 0; s < NSETTINGS; s++) {
		if (settings[s].kind == K_STRING ||
		    settings[s].kind == K_AMQP_URLS ||
		    settings[s].kind == K_EXCHANGE_TYPE ||
		    settings[s].kind == K_QUEUE_TYPE ||
		    settings[s].kind == K_ENVELOPE_FORMAT ||
		    settings[s].kind == K_ADDRESSES ||
		    settings[s].kind == K_HOST_PORTS ||
		    settings[s].kind == K_DURATION) {
			free(*(char **)(base + settings[s].offset));
			*(char **)(base + settings[s].offset) = NULL;
		}
	}
}

/* Redacts each URL of a comma-separated list: everything between the
 * user name and the last '@' of an entry, so that a password holding a raw
 * '@' or ',' does not show either. An entry starts at the list's start or
 * at a ',' followed by "amqp". */
int
bb_host_port_next(const char **list, char *host, size_t hostlen, int *port)
{
	const char *p = *list + strspn(*list, " ");
	const char *end = p + strcspn(p, ","), *colon = end, *h = p, *d;
	long n = 0;

	if (*p == '\0')
		return 0;
	*list = *end ? end + 1 : end;
	while (colon > p && colon[-1] != ':')
		colon--;
	if (colon == p)
		return -1;
	for (d = colon; d < end && *d >= '0' && *d <= '9' && n <= 65535; d++)
		n = n * 10 + (*d - '0');
	if (d == colon || d + strspn(d, " ") < end || n < 1 || n > 65535)
		return -1;
	colon--;			/* the ':' itself */
	if (*h == '[' && colon - h >= 2 && colon[-1] == ']') {
		h++;
		colon--;
	}
	if (colon == h || (size_t)(colon - h) >= hostlen)
		return -1;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	*port = (int)n;
	return 1;
}

void
bb_config_redact_url(const char *url, char *out, size_t outlen)
{
	size_t used = 0;

	out[0] = '\0';
	while (*url && used + 1 < outlen) {
		const char *end = url + 1;
		while (*end && !(end[0] == ',' && strncmp(end + 1 +
		    strspn(end + 1, " "), "amqp", 4) == 0))
			end++;
		size_t n = (size_t)(end - url);
		const char *scheme = strstr(url, "://");
		const char *start = scheme && scheme < end ? scheme + 3 : url;
		const char *at = NULL;
		for (const char *p = start; p < end; p++)
			if (*p == '@')
				at = p;
		const char *colon = at ? memchr(start, ':', (size_t)(at - start)) :
		    NULL;

		if (colon)
			snprintf(out + used, outlen - used, "%.*s:***%.*s",
			    (int)(colon - url), url, (int)(end - at), at);
		else
			snprintf(out + used, outlen - used, "%.*s", (int)n, url);
		used = strlen(out);
		url = end;
		if (*url == ',') {
			snprintf(out + used, outlen - used, ",");
			used = strlen(out);
			url++;
		}
	}
}

void
bb_config_print(const struct bb_config *cfg, FILE *out)
{
	const char *base = (const char *)cfg;

	for (size_t s = 0; s < NSETTINGS; s++) {
		const struct setting *st = &settings[s];
		const void *field = base + st->offset;
		char redacted[1024];

		fprintf(out, "%s=", st->env);
		switch (st->kind) {
		case K_STRING:
		case K_AMQP_URLS:
		case K_EXCHANGE_TYPE:
		case K_QUEUE_TYPE:
		case K_ENVELOPE_FORMAT:
		case K_ADDRESSES:
		case K_HOST_PORTS:
		case K_DURATION:
			if (st->kind == K_AMQP_URLS) {
				bb_config_redact_url(*(char *const *)field,
				    redacted, sizeof(redacted));
				fputs(redacted, out);
			} else if (st->secret) {
				fputs(**(char *const *)field ? "***" : "", out);
			} else {
				fputs(*(char *const *)field, out);
			}
			break;
		case K_INT:
			fprintf(out, "%d", *(const int *)field);
			break;
		case K_LONG:
			fprintf(out, "%ld", *(const long *)field);
			break;
		case K_BOOL:
			fputs(*(const bool *)field ? "true" : "false", out);
			break;
		case K_LOG_LEVEL:
			fputs(bb_log_level_name(*(const enum bb_log_level *)field),
			    out);
			break;
		case K_LOG_TARGET:
			fputs(bb_log_target_name(*(const enum bb_log_target *)
			    field), out);
			break;
		}
		fputc('\n', out);
	}
}
