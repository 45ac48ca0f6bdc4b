/* Retention: the background thread drops month partitions of points older than points_retention_months. */
#include <stdint.h>

#include "clock.h"
#include "log.h"
#include "server.h"

#define RETENTION_EVERY_MS	(3600 * 1000)	/* an hour */
#define RETENTION_RETRY_MS	(300 * 1000)	/* after a failure */

/* When the next check is due; 0 = at the first call.  Background thread only. */
static int64_t retention_due_ms;

int
retention_drop(int *out, struct db *db, long long months)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	dbp_int(&p, months);
	if ((rc = db_queryp(&res, db, "SELECT points_drop_before(now() - "
	    "make_interval(months => $1::int))", &p)) < 0)
		return rc;
	*out = (int)dbres_int(res, 0, 0);
	dbres_free(res);
	return 0;
}

void
retention_tick(struct db *db, const struct settings *s)
{
	int64_t now = clock_mono_ms();
	int dropped = 0, rc;

	if (s->points_retention_months <= 0 || now < retention_due_ms)
		return;
	if ((rc = retention_drop(&dropped, db, s->points_retention_months)) < 0) {
		log_warnx("retention: cannot drop old partitions of points: %s",
		    db_errmsg(db));
		retention_due_ms = now + RETENTION_RETRY_MS;
		return;
	}
	retention_due_ms = now + RETENTION_EVERY_MS;
	if (dropped > 0)
		log_info("retention: dropped %d month partition%s of points "
		    "older than %lld months", dropped, dropped == 1 ? "" : "s",
		    s->points_retention_months);
	else
		log_debug("retention: no partition of points is older than "
		    "%lld months", s->points_retention_months);
}
