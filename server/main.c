/* benchline-server: loads the config, migrates the database, serves the API until a signal. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpc.h"
#include "log.h"
#include "server.h"

static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
	got_signal = sig;
}

static void
usage(void)
{
	fprintf(stderr, "usage: benchline-server [-n] [-c config]\n"
	    "  -c config  read settings from this file (key = value)\n"
	    "  -n         check the configuration, print it and exit\n"
	    "Every setting can be overridden by BENCHLINE_<NAME> in the "
	    "environment.\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct settings settings;
	struct server srv = { 0 };
	const char *config = NULL;
	struct sigaction sa;
	enum log_level level;
	struct db *db;
	char err[512];
	int ch, check = 0, applied;

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
	if (settings_load(&settings, config, err, sizeof(err)) < 0) {
		fprintf(stderr, "benchline-server: %s\n", err);
		return 1;
	}
	if (check) {
		settings_print(&settings);
		printf("configuration OK\n");
		settings_free(&settings);
		return 0;
	}
	log_level_parse(&level, settings.log_level);
	log_init("benchline-server", level);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	httpc_global_init();	/* before any thread: libcurl's global state */
	srv.settings = &settings;
	if (dbpool_open(&srv.pool, settings.database_url,
	    (int)settings.db_pool_size) < 0)
		fatalx("cannot connect to the database");
	/* The replica may be down now: its pool connects when first used. */
	if (*settings.database_read_url != '\0') {
		srv.read_pool = dbpool_new(settings.database_read_url,
		    (int)settings.db_pool_size, 1);
		log_info("dashboard reads go to the read replica "
		    "(database_read_url)");
	}
	if ((db = dbpool_get(srv.pool, 5000)) == NULL)
		fatalx("no database connection");
	if (migrate_run(db, settings.migrations_dir, &applied) < 0)
		fatalx("migrations failed; the server does not start");
	dbpool_put(srv.pool, db);
	if (queue_start(&srv.queue, &srv) < 0)
		fatalx("cannot start the queue thread");
	if (background_start(&srv.background, &srv) < 0)
		fatalx("cannot start the background thread");
	if (httpd_start(&srv.httpd, &srv) < 0)
		fatalx("cannot start the HTTP server");
	log_info("listening on http://%s:%lld (%d migration%s applied)",
	    settings.listen_addr, settings.listen_port, applied,
	    applied == 1 ? "" : "s");

	while (!got_signal)
		pause();

	log_info("signal %d: stopping", (int)got_signal);
	srv.stopping = 1;
	queue_stop(srv.queue);
	httpd_stop(srv.httpd);
	background_stop(srv.background);
	queue_free(srv.queue);
	dbpool_close(srv.read_pool);
	dbpool_close(srv.pool);
	settings_free(&settings);
	log_info("stopped");
	return 0;
}
