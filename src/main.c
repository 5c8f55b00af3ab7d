/* bloodbank: the FastCGI responder. main only reads the command line and
 * hands over to a single worker (lighttpd bin-path, spawn-fcgi), to the
 * pre-fork master (nginx, systemd), or to an operator's subcommand. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cli.h"
#include "config.h"
#include "log.h"
#include "master.h"
#include "worker.h"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: bloodbank [--check-config | --version | --help]\n"
	    "       bloodbank --workers N [--listen unix:PATH|HOST:PORT]\n"
	    "                 [--user NAME] [--socket-group GROUP]\n"
	    "                 [--socket-mode MODE]\n"
	    "       bloodbank doctor|emit|replay|tail|trace [--help] ...\n"
	    "With no options, serves FastCGI on the socket inherited on fd 0\n"
	    "(lighttpd bin-path, spawn-fcgi). With --workers, runs the pre-fork\n"
	    "master: binds --listen (or takes fd 0), drops to --user, and keeps N\n"
	    "workers; SIGHUP reloads, SIGTERM stops gracefully. doctor checks a\n"
	    "deployment, emit publishes an event, replay publishes archived\n"
	    "events again, tail shows the events on the bus, trace an event's\n"
	    "lineage. See bloodbank(8).\n");
}

static int
check_config(void)
{
	struct bb_config cfg;
	struct bb_catalog *catalog = NULL;
	char err[1024];
	int rc = 0;

	if (bb_config_load(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "bloodbank: configuration error: %s\n", err);
		rc = 1;
	} else if ((catalog = bb_catalog_load(cfg.schema_dir, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "bloodbank: event schemas: %s\n", err);
		rc = 1;
	} else {
		bb_config_print(&cfg, stdout);
		printf("# event schemas: %d loaded from %s\n",
		    bb_catalog_count(catalog), cfg.schema_dir[0] ?
		    cfg.schema_dir : "(SCHEMA_DIR empty)");
	}
	bb_catalog_free(catalog);
	bb_config_free(&cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "check-config", no_argument, NULL, 'c' },
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	struct bb_master_options opt = { .socket_mode = 0660 };
	const char *master_only = NULL;
	bool master = false;
	char *end;
	int c;

	if (argc > 1 && bb_cli_is_command(argv[1]))
		return bb_cli_run(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			return check_config();
		case 'v':
			printf("bloodbank %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'l':
			opt.listen = optarg;
			master_only = "--listen";
			break;
		case 'w':
			opt.workers = (int)strtol(optarg, &end, 10);
			if (*end || end == optarg)
				opt.workers = -1;
			master = true;
			break;
		case 'u':
			opt.user = optarg;
			master_only = "--user";
			break;
		case 'g':
			opt.socket_group = optarg;
			master_only = "--socket-group";
			break;
		case 'm':
			master_only = "--socket-mode";
			opt.socket_mode = (mode_t)strtol(optarg, &end, 8);
			if (*end || end == optarg || opt.socket_mode > 0777) {
				fprintf(stderr, "bloodbank: --socket-mode wants an "
				    "octal mode such as 0660\n");
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	/* A worker does none of what these ask for: it would serve as
	 * root, or on a socket with another owner or mode, without a word. */
	if (!master && master_only != NULL) {
		fprintf(stderr, "bloodbank: %s is an option of the master: "
		    "it needs --workers N\n", master_only);
		return 2;
	}
	if (!master)
		return bb_worker_run(0, -1);
	if (opt.workers == 0)
		opt.workers = 4;
	return bb_master_run(&opt);
}
