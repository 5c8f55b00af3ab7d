/* config: the effective configuration (CONTRACT §2). Sources, strongest
 * first: the process environment, the .env file, the INI file, defaults. */
#ifndef BB_CONFIG_H
#define BB_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "log.h"

struct bb_config {
	char *rabbit_url;
	char *exchange;
	char *exchange_type;
	int confirm_timeout_ms;
	int connect_timeout_ms;
	int heartbeat_s;		/* 0: no AMQP heartbeats */
	char *redis_host;
	int redis_port;
	int redis_db;
	char *redis_password;
	int redis_ttl_days;
	int redis_timeout_ms;
	int idempotency_window_s;
	bool correlation_tracking;
	int max_children;		/* child links recorded per parent */
	char *http_host;
	int http_port;
	long max_body_bytes;
	char *api_token;
	bool debug_endpoints;
	int worker_concurrency;		/* requests one worker answers at once */
	int batch_max_events;		/* items in one POST /events/batch */
	enum bb_log_level log_level;
	enum bb_log_target log_target;
	char *metrics_path;		/* "": no counting, no /metrics */
	char *fireflies_secret;		/* empty: the webhook is not signed */
	char *unrouted_queue_type;	/* quorum or classic */
	long unrouted_max_bytes;	/* x-max-length-bytes of it */
	long idempotency_max_stored_bytes;	/* larger envelopes: id only */
	char *trusted_proxies;		/* TRUSTED_PROXIES, as written */
	char *rabbit_tls_ca;		/* "": the system's CA store */
	char *rabbit_tls_cert;		/* "": no client certificate */
	char *rabbit_tls_key;
	bool rabbit_tls_verify;		/* peer and host name */
	char *redis_sentinels;		/* "": REDIS_HOST/PORT directly */
	char *redis_sentinel_master;
	char *redis_sentinel_password;
	char *schema_dir;		/* "": no event schemas */
	char *envelope_format;		/* bloodbank or cloudevents */
	char *archive_stream;		/* "": no archive (§11.2) */
	char *archive_max_age;		/* its x-max-age, e.g. 7D */
	long archive_max_bytes;		/* its x-max-length-bytes */
	char *spool_dir;		/* "": no spool (§12) */
	long spool_max_bytes;		/* the pool's spool, at most */
};

/* The two files bb_config_load reads when they exist: the .env file
 * (BLOODBANK_ENV_FILE, else ./.env) and the INI file (BLOODBANK_CONFIG,
 * else /etc/bloodbank/bloodbank.ini). */
const char *bb_config_env_file(void);
const char *bb_config_ini_file(void);

/* Fills cfg. On a bad value, an unreadable file or an unknown INI key,
 * returns -1 with a message naming the key and the file in err; cfg must be
 * freed with bb_config_free either way. */
int bb_config_load(struct bb_config *cfg, char *err, size_t errlen);
void bb_config_free(struct bb_config *cfg);

/* Prints the effective configuration as KEY=value lines, one per setting,
 * with passwords and the API token redacted. */
void bb_config_print(const struct bb_config *cfg, FILE *out);

/* The next entry of a comma-separated host:port list (REDIS_SENTINELS)
 * from *list on, and *list moved past it: 1 with its host (an IPv6
 * address without its brackets) and its port, 0 at the end of the list,
 * -1 for an entry that is not host:port with a host under hostlen bytes. */
int bb_host_port_next(const char **list, char *host, size_t hostlen,
    int *port);

/* Copies an AMQP URL into out with its password replaced by "***". */
void bb_config_redact_url(const char *url, char *out, size_t outlen);

#endif
