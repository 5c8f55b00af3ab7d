/* cli: the operator's subcommands of the bloodbank binary (CONTRACT §11.1),
 * each reading the workers' configuration and running their modules in
 * this process: `emit` answers its event through the app as an HTTP
 * request would be answered, `trace` walks the records as the debug
 * endpoints do. */
#ifndef BB_CLI_H
#define BB_CLI_H

#include <stdbool.h>

/* True when name is a subcommand. */
bool bb_cli_is_command(const char *name);

/* Runs `bloodbank NAME ARGS...` (argv[0] is NAME); returns the exit
 * status: 0 on success, 1 on a failure (one line on stderr), 2 on a usage
 * error. */
int bb_cli_run(int argc, char **argv);

#endif
