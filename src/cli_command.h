/* cli_command: what the operator's subcommands share -- their table entry,
 * the workers' configuration, and the one-line answers of §11.1. */
#ifndef BB_CLI_COMMAND_H
#define BB_CLI_COMMAND_H

#include <stdbool.h>
#include <stdio.h>

#include <signal.h>

#include <amqp.h>
#include <openssl/ssl.h>

#include "config.h"

struct bb_command {
	const char *name;
	const char *usage;	/* after "bloodbank NAME " */
	const char *help;
	int (*run)(const struct bb_command *c, int argc, char **argv);
};

/* "bloodbank NAME: <why>" on stderr; returns 1, the failure status. */
int bb_cli_fail(const struct bb_command *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One line on stderr: why (when not NULL) and the usage; returns 2. */
int bb_cli_usage(const struct bb_command *c, const char *why);
/* After getopt_long returned '?': names the option in one line; returns 2. */
int bb_cli_bad_option(const struct bb_command *c, char **argv);
/* The usage and help on stdout; returns 0. */
int bb_cli_help(const struct bb_command *c);
/* Colour only on a terminal that has it, and never with NO_COLOR set. */
bool bb_cli_colour(FILE *f);
/* Loads the workers' configuration (false, said, when it is wrong). The
 * workers' info lines are not the operator's business here: only errors
 * are logged, to stderr, unless LOG_LEVEL is debug. */
bool bb_cli_config(const struct bb_command *c, struct bb_config *cfg);

/* Set by SIGINT or SIGTERM once bb_cli_catch_interrupts ran (which also
 * ignores SIGPIPE: a reader that goes away is a failed write). */
extern volatile sig_atomic_t bb_cli_interrupted;
void bb_cli_catch_interrupts(void);

/* A connection to the first broker of RABBIT_URL that answers within
 * RABBIT_CONNECT_TIMEOUT_MS, the workers' topology declared and channel
 * BB_AMQP_CHANNEL open, as the workers open theirs; *ssl is its TLS
 * session (NULL for amqp). NULL when none answers. */
amqp_connection_state_t bb_cli_open_broker(const struct bb_config *cfg,
    SSL **ssl);
/* The same, said on stderr when none answers. */
amqp_connection_state_t bb_cli_connect(const struct bb_command *c,
    const struct bb_config *cfg);

/* One event as a line (replacing out's contents): time, type, id, its
 * parents (the first 8 digits of each), and its payload cut to 80 bytes.
 * A Bloodbank envelope and a CloudEvent (ENVELOPE_FORMAT=cloudevents) both
 * read so; anything else is shown as its first bytes. */
struct bb_buf;
void bb_cli_event_line(const char *body, size_t len, bool colour,
    struct bb_buf *out);

/* The subcommands of cli_*.c. */
int bb_cli_doctor(const struct bb_command *c, int argc, char **argv);
int bb_cli_tail(const struct bb_command *c, int argc, char **argv);
int bb_cli_replay(const struct bb_command *c, int argc, char **argv);

#endif
