#include "master.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "worker.h"

#define READY_SECONDS 10	/* a new worker must be ready within this */
#define RESTART_WINDOW 10	/* seconds; more restarts than ... */
#define RESTART_BURST 5		/* ... this within it are slowed down */
#define MAX_WORKERS 256

static volatile sig_atomic_t got_stop, got_reload, got_child;

static void
on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		got_stop = 1;
	else if (sig == SIGHUP)
		got_reload = 1;
	else if (sig == SIGCHLD)
		got_child = 1;
}

struct master {
	const struct bb_master_options *opt;
	int listen_fd;
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pid_t pid[MAX_WORKERS];		/* 0 for an empty slot */
	time_t restarts[RESTART_BURST];	/* when the last restarts happened */
	int nrestarts;
	sigset_t waiting;		/* the mask while waiting for signals */
};

static int
bind_unix(struct master *m, const char *path)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		bb_log_error("socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	unlink(path);	/* a stale socket of an earlier run */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod(path, m->opt->socket_mode) != 0) {
		bb_log_error("cannot bind %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	strcpy(m->unix_path, path);
	return fd;
}

/* 127.0.0.0/8 or ::1 (an IPv4-mapped one included). */
static bool
loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			return a->s6_addr[12] == 127;
		return IN6_IS_ADDR_LOOPBACK(a);
	}
	return false;
}

/* A FastCGI peer sets REMOTE_ADDR, which TRUSTED_PROXIES and source.host
 * believe: on an address others can reach, libfcgi must accept only the
 * web servers that FCGI_WEB_SERVER_ADDRS lists. */
static bool
peers_limited(const struct addrinfo *res, const char *spec)
{
	const char *allowed = getenv("FCGI_WEB_SERVER_ADDRS");

	if (loopback(res->ai_addr) || (allowed && allowed[0]))
		return true;
	bb_log_error("--listen %s: not a loopback address, so anyone who "
	    "reaches it could speak FastCGI and set REMOTE_ADDR; set "
	    "FCGI_WEB_SERVER_ADDRS to the web servers' addresses", spec);
	return false;
}

static int
bind_tcp(const char *spec)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints, *res = NULL;
	int fd = -1, one = 1, rc;

	if (colon == NULL || (size_t)(colon - spec) >= sizeof(host)) {
		bb_log_error("--listen wants unix:PATH or HOST:PORT, not %s", spec);
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res))) {
		bb_log_error("cannot resolve %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	if (!peers_limited(res, spec)) {
		freeaddrinfo(res);
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
		bb_log_error("cannot bind %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int
open_socket(struct master *m)
{
	const char *spec = m->opt->listen;
	int fd;

	if (spec == NULL)
		return 0;	/* inherited: systemd StandardInput=socket */
	if (strncmp(spec, "unix:", 5) == 0)
		fd = bind_unix(m, spec + 5);
	else
		fd = bind_tcp(spec);
	if (fd >= 0 && listen(fd, SOMAXCONN) != 0) {
		bb_log_error("cannot listen on %s: %s", spec, strerror(errno));
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Privileged work is done (the socket is bound): become the service user,
 * give the socket to it, and prove the change cannot be undone. */
static int
drop_privileges(struct master *m)
{
	const struct passwd *pw;
	gid_t gid;

	if (m->opt->user == NULL) {
		const struct group *gr;
		if (m->opt->socket_group == NULL || m->unix_path[0] == '\0')
			return 0;
		if ((gr = getgrnam(m->opt->socket_group)) == NULL ||
		    chown(m->unix_path, (uid_t)-1, gr->gr_gid) != 0) {
			bb_log_error("cannot give %s to group %s", m->unix_path,
			    m->opt->socket_group);
			return -1;
		}
		return 0;
	}
	if ((pw = getpwnam(m->opt->user)) == NULL) {
		bb_log_error("no such user: %s", m->opt->user);
		return -1;
	}
	gid = pw->pw_gid;
	if (m->opt->socket_group) {
		const struct group *gr = getgrnam(m->opt->socket_group);
		if (gr == NULL) {
			bb_log_error("no such group: %s", m->opt->socket_group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (m->unix_path[0] && chown(m->unix_path, pw->pw_uid, gid) != 0) {
		bb_log_error("cannot chown %s: %s", m->unix_path, strerror(errno));
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		bb_log_error("cannot become %s: %s", m->opt->user, strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		bb_log_error("privileges could be regained after dropping them");
		return -1;
	}
	return 0;
}

/* Forks a worker. With wait_ready, waits until it says it is ready (so a
 * reload never leaves fewer workers accepting); returns its pid or -1. */
static pid_t
spawn(struct master *m, bool wait_ready)
{
	int ready[2] = { -1, -1 };
	pid_t pid;

	if (wait_ready && pipe(ready) != 0)
		return -1;
	pid_t master = getpid();
	pid = fork();
	if (pid == 0) {
		/* Signals stay blocked: one that comes before the worker has
		 * its own handlers waits for them instead of reaching ours. */
		if (ready[0] >= 0)
			close(ready[0]);
		/* A master killed without stopping its workers (SIGKILL)
		 * stops them still: they get SIGTERM, as from it. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != master)
			_exit(1);
		signal(SIGCHLD, SIG_DFL);
		_exit(bb_worker_run(m->listen_fd, ready[1]));
	}
	if (ready[1] >= 0)
		close(ready[1]);
	if (pid > 0 && wait_ready) {
		struct pollfd p = { ready[0], POLLIN, 0 };
		char c;
		if (poll(&p, 1, READY_SECONDS * 1000) != 1 ||
		    read(ready[0], &c, 1) != 1) {
			bb_log_error("new worker %ld did not become ready",
			    (long)pid);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			pid = -1;
		}
	}
	if (ready[0] >= 0)
		close(ready[0]);
	return pid;
}

/* More than RESTART_BURST restarts within RESTART_WINDOW seconds means
 * something is wrong (a broken configuration, say): slow down instead of
 * spinning. */
static bool
restart_allowed(struct master *m)
{
	time_t now = time(NULL);
	int oldest = m->nrestarts % RESTART_BURST;

	if (m->nrestarts >= RESTART_BURST &&
	    now - m->restarts[oldest] < RESTART_WINDOW)
		return false;
	m->restarts[oldest] = now;
	m->nrestarts++;
	return true;
}

static void
reap(struct master *m, bool restart)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int k = 0; k < m->opt->workers; k++) {
			if (m->pid[k] != pid)
				continue;
			m->pid[k] = 0;
			if (WIFSIGNALED(status))
				bb_log_warning("worker %ld killed by signal %d",
				    (long)pid, WTERMSIG(status));
			else if (restart)
				bb_log_warning("worker %ld exited with status %d",
				    (long)pid, WEXITSTATUS(status));
		}
	}
}

/* Starts a worker in every empty slot; after the first time, these are
 * restarts, and limited. */
static void
fill_slots(struct master *m, bool first)
{
	for (int k = 0; k < m->opt->workers; k++) {
		if (m->pid[k] != 0)
			continue;
		if (!first && !restart_allowed(m)) {
			bb_log_warning("workers are exiting too often; next start "
			    "in a moment");
			return;
		}
		m->pid[k] = spawn(m, false);
		if (m->pid[k] < 0)
			m->pid[k] = 0;
		else
			bb_log_info("started worker %ld", (long)m->pid[k]);
	}
}

/* Waits for a signal (or up to ms milliseconds). */
static void
wait_signal(struct master *m, int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	ppoll(NULL, 0, &ts, &m->waiting);
}

/* Asks one worker, no longer in any slot, to finish, and waits for it. */
static void
stop_worker(pid_t pid)
{
	long long deadline = bb_monotonic_ms() + BB_STOP_SECONDS * 1000LL;
	struct timespec pause = { 0, 100 * 1000000L };

	kill(pid, SIGTERM);
	while (waitpid(pid, NULL, WNOHANG) == 0) {
		if (bb_monotonic_ms() >= deadline) {
			bb_log_warning("worker %ld still busy after %d s; killing it",
			    (long)pid, BB_STOP_SECONDS);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return;
		}
		nanosleep(&pause, NULL);
	}
}

/* SIGHUP: a configuration (or SCHEMA_DIR) that does not validate is
 * refused and the old workers stay; otherwise each worker is replaced in
 * turn, the new one accepting before the old one is asked to finish. */
static void
reload(struct master *m)
{
	struct bb_config cfg;
	struct bb_catalog *catalog = NULL;
	char err[1024];
	int rc;

	rc = bb_config_load(&cfg, err, sizeof(err));
	if (rc != 0) {
		bb_log_error("reload refused, keeping the running workers: "
		    "configuration error: %s", err);
	} else if ((catalog = bb_catalog_load(cfg.schema_dir, err,
	    sizeof(err))) == NULL) {
		bb_log_error("reload refused, keeping the running workers: "
		    "event schemas: %s", err);
		rc = -1;
	}
	bb_catalog_free(catalog);
	bb_config_free(&cfg);
	if (rc != 0)
		return;
	bb_log_info("reloading: replacing %d workers one at a time",
	    m->opt->workers);
	for (int k = 0; k < m->opt->workers && !got_stop; k++) {
		pid_t old = m->pid[k];
		pid_t fresh = spawn(m, true);
		if (fresh < 0) {
			bb_log_error("reload stopped: a new worker failed to start");
			return;
		}
		/* The slot is the new worker's before the old one goes, so
		 * that reap() knows it if it dies meanwhile. */
		m->pid[k] = fresh;
		if (old != 0)
			stop_worker(old);
	}
	bb_log_info("reload done");
}

static void
shutdown_workers(struct master *m)
{
	long long deadline = bb_monotonic_ms() + BB_STOP_SECONDS * 1000LL;
	bool any;

	for (int k = 0; k < m->opt->workers; k++) {
		if (m->pid[k] != 0)
			kill(m->pid[k], SIGTERM);
	}
	do {
		reap(m, false);
		any = false;
		for (int k = 0; k < m->opt->workers; k++)
			any |= (m->pid[k] != 0);
		if (any)
			wait_signal(m, 200);
	} while (any && bb_monotonic_ms() < deadline);
	for (int k = 0; k < m->opt->workers; k++) {
		if (m->pid[k] != 0) {
			bb_log_warning("worker %ld still busy after %d s; killing it",
			    (long)m->pid[k], BB_STOP_SECONDS);
			kill(m->pid[k], SIGKILL);
			waitpid(m->pid[k], NULL, 0);
		}
	}
}

int
bb_master_run(const struct bb_master_options *opt)
{
	struct master m;
	struct sigaction sa;
	sigset_t block;

	memset(&m, 0, sizeof(m));
	m.opt = opt;
	if (opt->workers < 1 || opt->workers > MAX_WORKERS) {
		bb_log_error("--workers must be from 1 to %d", MAX_WORKERS);
		return 1;
	}
	/* Signals only set flags; they are blocked except while waiting. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++) {
		sigaction(sigs[k], &sa, NULL);
		sigaddset(&block, sigs[k]);
	}
	sigprocmask(SIG_BLOCK, &block, &m.waiting);
	signal(SIGPIPE, SIG_IGN);

	if ((m.listen_fd = open_socket(&m)) < 0 || drop_privileges(&m) != 0)
		return 1;
	bb_log_info("master %ld: %d workers on %s", (long)getpid(),
	    opt->workers, opt->listen ? opt->listen : "fd 0");
	fill_slots(&m, true);
	while (!got_stop) {
		wait_signal(&m, 1000);
		if (got_child) {
			got_child = 0;
			reap(&m, true);
		}
		if (got_reload) {
			got_reload = 0;
			reload(&m);
		}
		if (!got_stop)
			fill_slots(&m, false);
	}
	bb_log_info("stopping: no new connections; %d s for requests in flight",
	    BB_STOP_SECONDS);
	if (m.unix_path[0])
		unlink(m.unix_path);	/* new connections fail at once */
	shutdown_workers(&m);
	close(m.listen_fd);
	bb_log_info("stopped");
	return 0;
}
