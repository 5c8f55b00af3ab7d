#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tests.h"

static char ini_path[64], env_path[64];

static const char *const variables[] = {
	"RABBIT_URL", "RABBIT_EXCHANGE", "EXCHANGE_NAME", "RABBIT_EXCHANGE_TYPE",
	"RABBIT_CONFIRM_TIMEOUT_MS", "REDIS_HOST", "REDIS_PORT", "REDIS_DB",
	"REDIS_PASSWORD", "REDIS_TTL_DAYS", "CORRELATION_TTL_DAYS",
	"REDIS_TIMEOUT_MS", "CORRELATION_TRACKING", "HTTP_HOST", "HTTP_PORT",
	"MAX_BODY_BYTES", "API_TOKEN", "DEBUG_ENDPOINTS", "LOG_LEVEL",
	"FIREFLIES_WEBHOOK_SECRET", "UNROUTED_QUEUE_TYPE", "UNROUTED_MAX_BYTES",
	"IDEMPOTENCY_MAX_STORED_BYTES", "TRUSTED_PROXIES", "RABBIT_TLS_CA",
	"RABBIT_TLS_CERT", "RABBIT_TLS_KEY", "RABBIT_TLS_VERIFY", "REDIS_SENTINELS",
	"REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_PASSWORD", NULL,
};

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* A clean slate: no variables, both files empty and private. */
static void
setup(const char *ini, const char *env)
{
	for (const char *const *v = variables; *v; v++)
		unsetenv(*v);
	snprintf(ini_path, sizeof(ini_path), "/tmp/bb-test-%d.ini", (int)getpid());
	snprintf(env_path, sizeof(env_path), "/tmp/bb-test-%d.env", (int)getpid());
	write_file(ini_path, ini);
	write_file(env_path, env);
	setenv("BLOODBANK_CONFIG", ini_path, 1);
	setenv("BLOODBANK_ENV_FILE", env_path, 1);
}

static void
teardown(void)
{
	unlink(ini_path);
	unlink(env_path);
	unsetenv("BLOODBANK_CONFIG");
	unsetenv("BLOODBANK_ENV_FILE");
}

static int
load(struct bb_config *cfg, char *err, size_t errlen)
{
	int rc = bb_config_load(cfg, err, errlen);
	return rc;
}

static void
test_defaults(void)
{
	struct bb_config cfg;
	char err[256];

	setup("", "");
	CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.rabbit_url, "amqp://guest:guest@localhost:5672/");
	CU_ASSERT_STRING_EQUAL(cfg.exchange, "events");
	CU_ASSERT_STRING_EQUAL(cfg.exchange_type, "topic");
	CU_ASSERT_EQUAL(cfg.confirm_timeout_ms, 5000);
	CU_ASSERT_EQUAL(cfg.connect_timeout_ms, 2000);
	CU_ASSERT_EQUAL(cfg.heartbeat_s, 30);
	CU_ASSERT_EQUAL(cfg.max_children, 10000);
	CU_ASSERT_STRING_EQUAL(cfg.redis_host, "localhost");
	CU_ASSERT_EQUAL(cfg.redis_port, 6379);
	CU_ASSERT_EQUAL(cfg.redis_ttl_days, 30);
	CU_ASSERT_EQUAL(cfg.redis_timeout_ms, 100);
	CU_ASSERT(cfg.correlation_tracking);
	CU_ASSERT_EQUAL(cfg.http_port, 8682);
	CU_ASSERT_EQUAL(cfg.max_body_bytes, 1048576);
	CU_ASSERT_STRING_EQUAL(cfg.api_token, "");
	CU_ASSERT(cfg.debug_endpoints);
	CU_ASSERT_EQUAL(cfg.worker_concurrency, 16);
	CU_ASSERT_EQUAL(cfg.batch_max_events, 500);
	CU_ASSERT_EQUAL(cfg.log_level, BB_LOG_INFO);
	bb_config_free(&cfg);
	teardown();
}

static void
test_environment_beats_env_file_beats_ini(void)
{
	struct bb_config cfg;
	char err[256];

	setup("[redis]\nport = 1001\ndb = 3\n[log]\nlevel = debug\n",
	    "REDIS_PORT=1002\nLOG_LEVEL=\"warning\"\n");
	setenv("REDIS_PORT", "1003", 1);
	CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.redis_port, 1003);
	CU_ASSERT_EQUAL(cfg.redis_db, 3);
	CU_ASSERT_EQUAL(cfg.log_level, BB_LOG_WARNING);
	bb_config_free(&cfg);
	unsetenv("REDIS_PORT");
	CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.redis_port, 1002);
	bb_config_free(&cfg);
	write_file(env_path, "");
	CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.redis_port, 1001);
	CU_ASSERT_EQUAL(cfg.log_level, BB_LOG_DEBUG);
	bb_config_free(&cfg);
	teardown();
}

static void
test_aliases(void)
{
	struct bb_config cfg;
	char err[256];

	setup("", "CORRELATION_TTL_DAYS=7\n");
	setenv("EXCHANGE_NAME", "legacy", 1);
	CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.exchange, "legacy");
	CU_ASSERT_EQUAL(cfg.redis_ttl_days, 7);
	bb_config_free(&cfg);
	setenv("RABBIT_EXCHANGE", "current", 1);
	CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.exchange, "current");
	bb_config_free(&cfg);
	teardown();
}

static void
expect_error(const char *ini, const char *env, const char *var,
    const char *value, const char *must_mention)
{
	struct bb_config cfg;
	char err[256];

	setup(ini, env);
	if (var)
		setenv(var, value, 1);
	CU_ASSERT_EQUAL(load(&cfg, err, sizeof(err)), -1);
	if (strstr(err, must_mention) == NULL)
		CU_FAIL(err);
	bb_config_free(&cfg);
	teardown();
}

static void
test_bad_values_name_key_and_file(void)
{
	char path[64];

	expect_error("[redis]\nport = abc\n", "", NULL, NULL, "REDIS_PORT");
	snprintf(path, sizeof(path), "/tmp/bb-test-%d.ini", (int)getpid());
	expect_error("[redis]\nport = 70000\n", "", NULL, NULL, path);
	expect_error("", "RABBIT_CONFIRM_TIMEOUT_MS=0\n", NULL, NULL,
	    "RABBIT_CONFIRM_TIMEOUT_MS");
	expect_error("", "", "RABBIT_EXCHANGE_TYPE", "x-delayed",
	    "topic, direct, fanout or headers");
	expect_error("", "", "CORRELATION_TRACKING", "maybe",
	    "CORRELATION_TRACKING");
	expect_error("", "", "LOG_LEVEL", "loud", "LOG_LEVEL");
	expect_error("", "", "MAX_BODY_BYTES", "12abc", "MAX_BODY_BYTES");
	expect_error("[rabbitmq]\nurl_typo = x\n", "", NULL, NULL,
	    "unknown key rabbitmq:url_typo");
	expect_error("", "", "RABBIT_URL", "localhost:5672", "RABBIT_URL");
	expect_error("", "", "RABBIT_URL", "amqps:///", "RABBIT_URL");
	expect_error("", "", "RABBIT_URL", "http://u:secret@h/", "RABBIT_URL");
	expect_error("", "", "RABBIT_URL", "amqp://h/,", "RABBIT_URL");
}

static void
test_security_settings(void)
{
	struct bb_config cfg;
	char err[256];

	setup("", "");
	CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.fireflies_secret, "");
	CU_ASSERT_STRING_EQUAL(cfg.unrouted_queue_type, "quorum");
	CU_ASSERT_EQUAL(cfg.unrouted_max_bytes, 1073741824L);
	CU_ASSERT_EQUAL(cfg.idempotency_max_stored_bytes, 65536L);
	CU_ASSERT_STRING_EQUAL(cfg.trusted_proxies, "");
	bb_config_free(&cfg);
	teardown();

	setup("[webhooks]\nfireflies_secret = ff\n[rabbitmq]\n"
	    "unrouted_queue_type = classic\nunrouted_max_bytes = 4096\n"
	    "[redis]\nidempotency_max_stored_bytes = 0\n"
	    "[http]\ntrusted_proxies = 10.0.0.0/8, ::1\n", "");
	CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.fireflies_secret, "ff");
	CU_ASSERT_STRING_EQUAL(cfg.unrouted_queue_type, "classic");
	CU_ASSERT_EQUAL(cfg.unrouted_max_bytes, 4096L);
	CU_ASSERT_EQUAL(cfg.idempotency_max_stored_bytes, 0L);
	CU_ASSERT_STRING_EQUAL(cfg.trusted_proxies, "10.0.0.0/8, ::1");
	bb_config_free(&cfg);
	teardown();

	expect_error("", "", "UNROUTED_QUEUE_TYPE", "stream", "quorum or classic");
	expect_error("", "", "UNROUTED_MAX_BYTES", "0", "UNROUTED_MAX_BYTES");
	expect_error("", "", "IDEMPOTENCY_MAX_STORED_BYTES", "-1",
	    "IDEMPOTENCY_MAX_STORED_BYTES");
	expect_error("", "", "TRUSTED_PROXIES", "lb.internal", "lb.internal");
}

static void
test_tls_and_sentinel_settings(void)
{
	struct bb_config cfg;
	char err[256];

	setup("", "");
	CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.rabbit_tls_ca, "");
	CU_ASSERT_STRING_EQUAL(cfg.rabbit_tls_cert, "");
	CU_ASSERT_STRING_EQUAL(cfg.rabbit_tls_key, "");
	CU_ASSERT_TRUE(cfg.rabbit_tls_verify);
	CU_ASSERT_STRING_EQUAL(cfg.redis_sentinels, "");
	CU_ASSERT_STRING_EQUAL(cfg.redis_sentinel_master, "mymaster");
	CU_ASSERT_STRING_EQUAL(cfg.redis_sentinel_password, "");
	bb_config_free(&cfg);
	teardown();

	setup("[rabbitmq]\nurl = amqps://u:p@broker:5671/, amqps://b2/\n"
	    "tls_ca = /etc/ca.pem\ntls_cert = /etc/c.pem\ntls_key = /etc/k.pem\n"
	    "tls_verify = false\n[redis]\n"
	    "sentinels = s1:26379, [::1]:26380,10.0.0.3:26379\n"
	    "sentinel_master = events\nsentinel_password = sp\n", "");
	CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.rabbit_url, "amqps://u:p@broker:5671/, amqps://b2/");
	CU_ASSERT_STRING_EQUAL(cfg.rabbit_tls_ca, "/etc/ca.pem");
	CU_ASSERT_STRING_EQUAL(cfg.rabbit_tls_cert, "/etc/c.pem");
	CU_ASSERT_STRING_EQUAL(cfg.rabbit_tls_key, "/etc/k.pem");
	CU_ASSERT_FALSE(cfg.rabbit_tls_verify);
	CU_ASSERT_STRING_EQUAL(cfg.redis_sentinels,
	    "s1:26379, [::1]:26380,10.0.0.3:26379");
	CU_ASSERT_STRING_EQUAL(cfg.redis_sentinel_master, "events");
	CU_ASSERT_STRING_EQUAL(cfg.redis_sentinel_password, "sp");
	bb_config_free(&cfg);
	teardown();

	expect_error("", "", "RABBIT_TLS_CERT", "/etc/c.pem", "RABBIT_TLS_KEY");
	expect_error("", "", "RABBIT_TLS_VERIFY", "sometimes", "RABBIT_TLS_VERIFY");
	expect_error("", "", "REDIS_SENTINELS", "s1", "REDIS_SENTINELS");
	expect_error("", "", "REDIS_SENTINELS", "s1:0", "REDIS_SENTINELS");
	expect_error("", "", "REDIS_SENTINELS", "s1:26379,", "REDIS_SENTINELS");
	expect_error("", "", "REDIS_SENTINELS", "s1:99999", "REDIS_SENTINELS");
	expect_error("", "", "REDIS_SENTINEL_MASTER", "", "REDIS_SENTINEL_MASTER");
}

static void
test_missing_named_file_is_an_error(void)
{
	struct bb_config cfg;
	char err[256];

	setup("", "");
	setenv("BLOODBANK_CONFIG", "/nonexistent/bloodbank.ini", 1);
	CU_ASSERT_EQUAL(load(&cfg, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "/nonexistent/bloodbank.ini") != NULL);
	bb_config_free(&cfg);
	teardown();
}

static void
test_print_redacts_secrets(void)
{
	struct bb_config cfg;
	char err[256], out[4096];
	FILE *f;
	size_t n;

	setup("[redis]\npassword = hunter2\n[webhooks]\n"
	    "fireflies_secret = ff-s3cret\n", "API_TOKEN=s3cret-token\n");
	setenv("RABBIT_URL", "amqp://user:pa55word@broker:5672/vh", 1);
	CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err)), 0);
	f = fmemopen(out, sizeof(out) - 1, "w");
	bb_config_print(&cfg, f);
	fclose(f);
	n = strlen(out);
	CU_ASSERT(n > 0);
	CU_ASSERT(strstr(out, "hunter2") == NULL);
	CU_ASSERT(strstr(out, "s3cret-token") == NULL);
	CU_ASSERT(strstr(out, "ff-s3cret") == NULL);
	CU_ASSERT(strstr(out, "FIREFLIES_WEBHOOK_SECRET=***\n") != NULL);
	CU_ASSERT(strstr(out, "pa55word") == NULL);
	CU_ASSERT(strstr(out, "RABBIT_URL=amqp://user:***@broker:5672/vh\n") != NULL);
	CU_ASSERT(strstr(out, "REDIS_PASSWORD=***\n") != NULL);
	CU_ASSERT(strstr(out, "API_TOKEN=***\n") != NULL);
	bb_config_free(&cfg);
	unsetenv("RABBIT_URL");
	teardown();
}

static void
test_redacts_every_url_of_a_list(void)
{
	char out[256];

	bb_config_redact_url("amqp://a:p1@h1:5672/,amqp://b:p2@h2/v,amqp://h3/",
	    out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out,
	    "amqp://a:***@h1:5672/,amqp://b:***@h2/v,amqp://h3/");
	bb_config_redact_url("amqp://u:p@ss,w@rd@h/", out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "amqp://u:***@h/");
}

void
add_config_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "defaults", test_defaults },
		{ "environment beats .env beats INI",
		    test_environment_beats_env_file_beats_ini },
		{ "aliases", test_aliases },
		{ "bad values name key and file", test_bad_values_name_key_and_file },
		{ "security settings", test_security_settings },
		{ "TLS and Sentinel settings", test_tls_and_sentinel_settings },
		{ "a missing named file is an error",
		    test_missing_named_file_is_an_error },
		{ "print redacts secrets", test_print_redacts_secrets },
		{ "redacts every URL of a list", test_redacts_every_url_of_a_list },
		CU_TEST_INFO_NULL,
	};
	add_suite("config", tests);
}
