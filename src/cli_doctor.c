/* bloodbank doctor: every part a deployment needs, checked with the
 * workers' own configuration and code, one line each (CONTRACT §11.1). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_framing.h>

#include "catalog.h"
#include "cli_command.h"
#include "clock.h"
#include "connect.h"
#include "log.h"
#include "spool.h"
#include "tracker.h"

#define HTTP_TIMEOUT_MS 2000
#define LIGHTTPD_MODULE "/etc/lighttpd/conf-available/15-bloodbank.conf"
#define LIGHTTPD_ENABLED "/etc/lighttpd/conf-enabled/15-bloodbank.conf"
#define NGINX_SITE "/etc/nginx/sites-enabled/bloodbank"
/* the users the workers run as: the master's (the package's units), and
 * lighttpd's (its bin-path workers, and the dev stack's) */
static const char *const workers_users[] = { "bloodbank", "www-data", NULL };

enum outcome { OK, FAIL, SKIP };

struct doctor {
	bool colour;
	int failed;
	char why[1024];		/* the last warning the workers' code logged */
};

static void
say(struct doctor *d, enum outcome o, const char *what, const char *fmt, ...)
{
	static const char *const mark[] = { "[ok]  ", "[FAIL]", "[skip]" };
	static const char *const tint[] = { "\033[32m", "\033[1;31m", "\033[2m" };
	va_list ap;

	printf("%s%s%s %s: ", d->colour ? tint[o] : "", mark[o], d->colour ?
	    "\033[0m" : "", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (o == FAIL)
		d->failed++;
	d->why[0] = '\0';
}

/* The first setting of a secret with a value in a .env or INI file (its
 * name into key), or false. */
static bool
holds_secret(const char *path, char *key, size_t len)
{
	static const char *const secrets[] = { "rabbit_url", "url", "api_token",
		"redis_password", "password", "fireflies_webhook_secret",
		"fireflies_secret", "redis_sentinel_password", "sentinel_password",
		NULL };
	char line[4096];
	FILE *f = fopen(path, "r");
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " \t");
		if (strncmp(p, "export ", 7) == 0)
			p += 7 + strspn(p + 7, " \t");
		size_t n = strcspn(p, " \t=");
		char *eq = strchr(p, '=');
		if (eq == NULL || n == 0)
			continue;
		char *v = eq + 1 + strspn(eq + 1, " \t\"'");
		if (*v == '\0' || *v == '\n' || *v == '\r' || *v == '"')
			continue;	/* an empty value */
		for (int k = 0; secrets[k] && !found; k++) {
			if (strlen(secrets[k]) == n && strncasecmp(p, secrets[k],
			    n) == 0) {
				snprintf(key, len, "%.*s", (int)n, p);
				found = true;
			}
		}
	}
	fclose(f);
	return found;
}

/* A file that holds a secret (RABBIT_URL's credentials, the API token,
 * a password) must not be readable by every user. */
static void
check_secret_file(struct doctor *d, const char *path)
{
	struct stat st;
	char key[64];

	if (stat(path, &st) != 0 || !holds_secret(path, key, sizeof(key)))
		return;
	if (st.st_mode & S_IROTH)
		say(d, FAIL, "configuration file", "%s holds %s and is readable "
		    "by every user: chmod o-rwx %s", path, key, path);
	else
		say(d, OK, "configuration file", "%s holds %s and is not "
		    "readable by others (mode %04o)", path, key,
		    (unsigned)(st.st_mode & 07777));
}

static bool
passive_queue(amqp_connection_state_t conn, const char *name, uint32_t *n)
{
	amqp_queue_declare_ok_t *ok = amqp_queue_declare(conn, BB_AMQP_CHANNEL,
	    amqp_cstring_bytes(name), 1, 0, 0, 0, amqp_empty_table);

	if (ok == NULL)
		return false;
	*n = ok->message_count;
	return true;
}

static void
check_broker(struct doctor *d, const struct bb_config *cfg)
{
	char unrouted[300];
	SSL *ssl;
	uint32_t n;

	snprintf(unrouted, sizeof(unrouted), "%s.unrouted", cfg->exchange);
	amqp_connection_state_t conn = bb_cli_open_broker(cfg, &ssl);
	if (conn == NULL) {
		say(d, FAIL, "broker", "%s — check RABBIT_URL (host, port, user, "
		    "password, vhost) and that RabbitMQ runs", d->why[0] ? d->why :
		    "no broker answered within RABBIT_CONNECT_TIMEOUT_MS");
		say(d, SKIP, "exchange", "no broker");
		return;
	}
	if (d->why[0])		/* a declaration refused: the warning says why */
		say(d, FAIL, "exchange", "%s", d->why);
	else
		say(d, OK, "broker", "connected%s and logged in; exchange %s "
		    "(%s) declared with alternate exchange %s", ssl ? " over TLS" :
		    "", cfg->exchange, cfg->exchange_type, unrouted);
	if (passive_queue(conn, unrouted, &n))
		say(d, OK, "unrouted queue", "%s holds %u event%s no queue was "
		    "bound for", unrouted, n, n == 1 ? "" : "s");
	else
		say(d, FAIL, "unrouted queue", "%s is missing: the workers "
		    "declare it when they connect", unrouted);
	if (cfg->archive_stream[0] == '\0')
		say(d, SKIP, "archive", "ARCHIVE_STREAM is not set");
	else if (passive_queue(conn, cfg->archive_stream, &n))
		say(d, OK, "archive", "stream %s bound to %s (max age %s)",
		    cfg->archive_stream, cfg->exchange, cfg->archive_max_age);
	else
		say(d, FAIL, "archive", "stream %s is missing: RabbitMQ 3.9 or "
		    "later is needed for streams", cfg->archive_stream);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
}

static void
check_redis(struct doctor *d, const struct bb_config *cfg)
{
	char memory[64] = "?";

	if (!cfg->correlation_tracking) {
		say(d, SKIP, "redis", "CORRELATION_TRACKING is false");
		return;
	}
	struct bb_tracker *t = bb_tracker_new(cfg, 0);
	if (bb_tracker_healthy(t, cfg->redis_timeout_ms) &&
	    bb_tracker_used_memory(t, memory, sizeof(memory)))
		say(d, OK, "redis", "%s:%d db %d answered, the record script is "
		    "loaded, %s in use, records kept %d days", cfg->redis_host,
		    cfg->redis_port, cfg->redis_db, memory, cfg->redis_ttl_days);
	else
		say(d, FAIL, "redis", "%s — check REDIS_HOST, REDIS_PORT, "
		    "REDIS_PASSWORD (or REDIS_SENTINELS) and that Redis runs",
		    d->why[0] ? d->why : "no answer within REDIS_TIMEOUT_MS");
	bb_tracker_free(t);
}

static void
check_schemas(struct doctor *d, const struct bb_config *cfg)
{
	char err[1024];

	struct stat st;

	if (cfg->schema_dir[0] == '\0' || stat(cfg->schema_dir, &st) != 0) {
		say(d, SKIP, "event schemas", "SCHEMA_DIR %s%s", cfg->schema_dir,
		    cfg->schema_dir[0] ? " does not exist: no event schemas" :
		    "is empty");
		return;
	}
	struct bb_catalog *c = bb_catalog_load(cfg->schema_dir, err, sizeof(err));
	if (c == NULL) {
		say(d, FAIL, "event schemas", "%s: the workers refuse to start "
		    "with it; fix or remove that file", err);
		return;
	}
	say(d, OK, "event schemas", "%d loaded from %s", bb_catalog_count(c),
	    cfg->schema_dir);
	bb_catalog_free(c);
}

/* Whether user pw may write to a file with st's owner, group and mode. */
static bool
writable_by(const struct passwd *pw, const struct stat *st)
{
	gid_t groups[64];
	int n = 64;

	if (pw->pw_uid == 0 || pw->pw_uid == st->st_uid)
		return pw->pw_uid == 0 || (st->st_mode & S_IWUSR);
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		n = 0;
	for (int k = 0; k < n; k++) {
		if (groups[k] == st->st_gid)
			return (st->st_mode & S_IWGRP) != 0;
	}
	return (st->st_mode & S_IWOTH) != 0;
}

/* The user the workers run as: this command's user, or when it runs as
 * root the first of workers_users that exists; NULL when there is none. */
static struct passwd *
workers_user(void)
{
	struct passwd *pw = geteuid() == 0 ? NULL : getpwuid(geteuid());

	for (int k = 0; geteuid() == 0 && pw == NULL && workers_users[k]; k++)
		pw = getpwnam(workers_users[k]);
	return pw;
}

/* The workers write their counters to METRICS_PATH: the file, or the
 * directory that will hold it, must be writable by their user. */
static void
check_metrics(struct doctor *d, const struct bb_config *cfg)
{
	char dir[1100];
	struct stat st;
	const char *path = cfg->metrics_path;

	if (path[0] == '\0') {
		say(d, SKIP, "metrics", "METRICS_PATH is empty: counting is off");
		return;
	}
	struct passwd *pw = workers_user();
	if (pw == NULL) {
		say(d, SKIP, "metrics", "no workers' user (bloodbank, www-data) "
		    "to check %s for: run doctor as the workers' user", path);
		return;
	}
	bool exists = stat(path, &st) == 0;
	if (exists && !S_ISREG(st.st_mode)) {
		say(d, FAIL, "metrics", "%s is not a regular file: the workers "
		    "refuse it; remove it", path);
		return;
	}
	if (!exists) {
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		else
			snprintf(dir, sizeof(dir), ".");
		if (stat(dir, &st) != 0) {
			say(d, SKIP, "metrics", "%s does not exist yet (bloodbank."
			    "service makes /run/bloodbank when it starts)", dir);
			return;
		}
	}
	if (writable_by(pw, &st))
		say(d, OK, "metrics", "%s %s writable by %s", exists ? path : dir,
		    exists ? "is" : "(where it will be made) is", pw->pw_name);
	else
		say(d, FAIL, "metrics", "%s is not writable by %s, the workers' "
		    "user: counting stays off; chown %s %s", exists ? path : dir,
		    pw->pw_name, pw->pw_name, exists ? path : dir);
}

/* The spool (CONTRACT §12): SPOOL_DIR writable by the workers' user, and
 * what it holds -- its depth, and its oldest event's age, which fails
 * past the alert's 5 minutes -- and records set aside, events answered
 * 202 that no worker can forward. */
static void
check_spool(struct doctor *d, const struct bb_config *cfg)
{
	const char *dir = cfg->spool_dir;
	struct bb_spool_census c;
	struct stat st;
	char err[1100];

	if (dir[0] == '\0') {
		say(d, SKIP, "spool", "SPOOL_DIR is empty: the spool is off (503 "
		    "while the broker is unavailable)");
		return;
	}
	struct passwd *pw = workers_user();
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		say(d, FAIL, "spool", "%s is not a directory: events are answered "
		    "503 instead of spooled; create it, writable by %s", dir,
		    pw ? pw->pw_name : "the workers' user");
		return;
	}
	if (pw && !writable_by(pw, &st)) {
		say(d, FAIL, "spool", "%s is not writable by %s, the workers' "
		    "user: events are answered 503 instead of spooled; chown %s "
		    "%s", dir, pw->pw_name, pw->pw_name, dir);
		return;
	}
	if (bb_spool_census(dir, &c, err, sizeof(err)) != 0) {
		say(d, FAIL, "spool", "cannot read it: %s", err);
		return;
	}
	long long age_s = c.oldest_ms ? (bb_realtime_ms() - c.oldest_ms) / 1000 :
	    0;
	if (c.aside)
		say(d, FAIL, "spool", "%ld damaged record%s set aside in %s/aside:"
		    " events answered 202 that were never forwarded; look at them, "
		    "then move them away", c.aside, c.aside == 1 ? "" : "s", dir);
	else if (age_s > 300)
		say(d, FAIL, "spool", "%ld event%s (%lld bytes) waiting, the oldest "
		    "%lld s old, %d segment%s without a live worker: is the broker "
		    "taking publishes, and are the workers running?", c.events,
		    c.events == 1 ? "" : "s", c.bytes, age_s, c.unowned,
		    c.unowned == 1 ? "" : "s");
	else if (c.events)
		say(d, OK, "spool", "%s: %ld event%s waiting (%lld bytes of "
		    "SPOOL_MAX_BYTES %ld), the oldest %lld s old", dir, c.events,
		    c.events == 1 ? "" : "s", c.bytes, cfg->spool_max_bytes, age_s);
	else
		say(d, OK, "spool", "%s is empty (SPOOL_MAX_BYTES %ld)", dir,
		    cfg->spool_max_bytes);
}

/* GET /healthz at HTTP_HOST:HTTP_PORT: the status, or -1 when nothing
 * answers; the answer's body into body. */
static int
get_healthz(const struct bb_config *cfg, char *body, size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	char port[8], req[512], buf[2048];
	int fd, status = -1;
	size_t got = 0;

	snprintf(port, sizeof(port), "%d", cfg->http_port);
	if (getaddrinfo(cfg->http_host, port, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		goto end;
	int n = snprintf(req, sizeof(req), "GET /healthz HTTP/1.0\r\nHost: %s\r\n"
	    "\r\n", cfg->http_host);
	if (write(fd, req, (size_t)n) != n)
		goto end;
	long long deadline = bb_monotonic_ms() + HTTP_TIMEOUT_MS;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left = deadline - bb_monotonic_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof(buf) - 1)
			break;
	}
	buf[got] = '\0';
	if (sscanf(buf, "HTTP/%*s %d", &status) != 1)
		status = -1;
	const char *b = strstr(buf, "\r\n\r\n");
	snprintf(body, len, "%.*s", b ? (int)strcspn(b + 4, "\r\n") : 0,
	    b ? b + 4 : "");
end:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return status;
}

static void
check_web_server(struct doctor *d, const struct bb_config *cfg)
{
	char body[512] = "";
	int status = get_healthz(cfg, body, sizeof(body));

	if (status == 200) {
		say(d, OK, "web server", "http://%s:%d/healthz answers 200 %s",
		    cfg->http_host, cfg->http_port, body);
	} else if (status > 0) {
		say(d, FAIL, "web server", "http://%s:%d/healthz answers %d %s",
		    cfg->http_host, cfg->http_port, status, body);
	} else if (access(LIGHTTPD_MODULE, F_OK) == 0 &&
	    access(LIGHTTPD_ENABLED, F_OK) != 0 && access(NGINX_SITE, F_OK) != 0) {
		say(d, FAIL, "web server", "nothing answers at %s:%d, and "
		    "lighttpd's bloodbank module is not enabled: lighty-enable-mod "
		    "bloodbank && systemctl reload lighttpd (or enable the nginx "
		    "site, README)", cfg->http_host, cfg->http_port);
	} else {
		say(d, FAIL, "web server", "nothing answers at %s:%d (HTTP_HOST, "
		    "HTTP_PORT): start lighttpd or nginx with Bloodbank's "
		    "configuration", cfg->http_host, cfg->http_port);
	}
}

int
bb_cli_doctor(const struct bb_command *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct doctor d = { .colour = bb_cli_colour(stdout) };
	struct bb_config cfg;
	char err[1024];
	int o;

	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (o == 'h')
			return bb_cli_help(c);
		return bb_cli_bad_option(c, argv);
	}
	if (optind < argc)
		return bb_cli_usage(c, "doctor takes no arguments");
	if (bb_config_load(&cfg, err, sizeof(err)) != 0) {
		say(&d, FAIL, "configuration", "%s", err);
		bb_config_free(&cfg);
		fprintf(stderr, "bloodbank %s: the configuration does not load; "
		    "nothing else was checked\n", c->name);
		return 1;
	}
	say(&d, OK, "configuration", "loaded (%s, %s and the environment)",
	    bb_config_ini_file(), bb_config_env_file());
	check_secret_file(&d, bb_config_ini_file());
	check_secret_file(&d, bb_config_env_file());
	bb_log_set_target(BB_LOG_STDERR);
	bb_log_set_level(BB_LOG_ERROR);
	bb_log_capture(d.why, sizeof(d.why));
	check_broker(&d, &cfg);
	check_redis(&d, &cfg);
	bb_log_capture(NULL, 0);
	check_schemas(&d, &cfg);
	check_metrics(&d, &cfg);
	check_spool(&d, &cfg);
	check_web_server(&d, &cfg);
	bb_config_free(&cfg);
	fflush(stdout);
	if (d.failed) {
		fprintf(stderr, "bloodbank %s: %d check%s failed\n", c->name,
		    d.failed, d.failed == 1 ? "" : "s");
		return 1;
	}
	return 0;
}
