/* The background thread: judges stored runs and sends incident mail, with its own database connection. */
#include <pthread.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "server.h"
#include "xmalloc.h"

struct background {
	struct server	*srv;
	pthread_t	 thread;
	volatile int	 stop;
};

static void *
background_main(void *arg)
{
	struct background *bg = arg;
	struct settings *s = bg->srv->settings;
	struct db *db = NULL;
	int rc = 0, busy;

	log_set_context("background");
	while (!bg->stop) {
		if (db == NULL && db_connect(&db, s->database_url) < 0) {
			db = NULL;
			clock_sleep_ms(1000);
			continue;
		}
		busy = 0;
		/* Every waiting run first, so an incident holds all its alerts. */
		while (!bg->stop && (rc = detect_next(db)) == 1)
			busy = 1;
		if (!bg->stop && rc >= 0 && investigate_next(db) == 1)
			busy = 1;
		if (!bg->stop && notify_next(db, s) == 1)
			busy = 1;
		if (!bg->stop)
			retention_tick(db, s);	/* hourly, and at start */
		if (rc == BL_EUNAVAIL) {
			db_close(db);
			db = NULL;
		}
		if (!busy)
			clock_sleep_ms(s->background_interval_ms);
	}
	db_close(db);
	return NULL;
}

int
background_start(struct background **out, struct server *srv)
{
	struct background *bg = xcalloc(1, sizeof(*bg));

	bg->srv = srv;
	if (pthread_create(&bg->thread, NULL, background_main, bg) != 0) {
		free(bg);
		return BL_ERROR;
	}
	*out = bg;
	return 0;
}

void
background_stop(struct background *bg)
{
	if (bg == NULL)
		return;
	bg->stop = 1;
	pthread_join(bg->thread, NULL);
	free(bg);
}
