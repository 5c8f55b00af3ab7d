/* master: the pre-fork process manager for nginx and systemd. It binds the
 * FastCGI socket (or takes one on fd 0), drops privileges, keeps N workers
 * running, replaces them one at a time on SIGHUP, and stops them gracefully
 * on SIGTERM/SIGINT. It never handles a request itself. */
#ifndef BB_MASTER_H
#define BB_MASTER_H

#include <sys/types.h>

struct bb_master_options {
	const char *listen;	/* unix:PATH or HOST:PORT; NULL means fd 0 */
	int workers;
	const char *user;	/* drop to this user after binding; or NULL */
	const char *socket_group;	/* group of a unix socket; or NULL */
	mode_t socket_mode;	/* of a unix socket */
};

/* Runs the master until SIGTERM/SIGINT; returns the exit status. */
int bb_master_run(const struct bb_master_options *opt);

#endif
