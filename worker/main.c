/* benchline-worker: runs the benchmark jobs of one hardware target. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpc.h"
#include "log.h"
#include "worker.h"

static volatile int stopping;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: benchline-worker [-n] [-c config]\n"
	    "  -c config  read settings from this file (key = value)\n"
	    "  -n         check the configuration, print it and exit\n"
	    "Every setting can be overridden by BENCHLINE_WORKER_<NAME> in the "
	    "environment.\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct worker_settings s;
	const char *config = NULL;
	struct sigaction sa;
	enum log_level level;
	char err[512];
	int ch, check = 0, rc;

	while ((ch = getopt(argc, argv, "c:nh")) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'n':
			check = 1;
			break;
		default:
			usage();
		}
	}
	if (worker_settings_load(&s, config, err, sizeof(err)) < 0) {
		fprintf(stderr, "benchline-worker: %s\n", err);
		return 1;
	}
	if (check) {
		worker_settings_print(&s);
		printf("configuration OK\n");
		worker_settings_free(&s);
		return 0;
	}
	log_level_parse(&level, s.log_level);
	log_init("benchline-worker", level);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	httpc_global_init();
	rc = worker_loop(&s, &stopping);
	worker_settings_free(&s);
	log_info("stopped");
	return rc < 0 ? 1 : 0;
}
