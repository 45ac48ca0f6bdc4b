/* Alert state: opening alerts once, grouping them into incidents, recovery, and users' changes of state. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "xmalloc.h"

/* Recomputes an incident's state from its alerts: resolved when none is open. */
static int
incident_sync_id(struct db *db, int64_t incident_id)
{
	struct dbparams p = { .n = 0 };

	dbp_int(&p, incident_id);
	return db_queryp(NULL, db, "UPDATE incidents i SET state = CASE "
	    "WHEN EXISTS (SELECT 1 FROM alerts a WHERE a.incident_id = i.id AND "
	    "a.state = 'open') THEN 'open' WHEN EXISTS (SELECT 1 FROM alerts a "
	    "WHERE a.incident_id = i.id AND a.state = 'acknowledged') THEN "
	    "'acknowledged' WHEN EXISTS (SELECT 1 FROM alerts a WHERE "
	    "a.incident_id = i.id AND a.state = 'resolved') THEN 'resolved' "
	    "ELSE 'invalid' END::alert_state, updated_at = now() WHERE i.id = $1",
	    &p);
}

/* The incident of an alert, or 0. */
static int64_t
incident_of(struct db *db, int64_t alert_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int64_t id = 0;

	dbp_int(&p, alert_id);
	if (db_queryp(&res, db, "SELECT incident_id FROM alerts WHERE id = $1",
	    &p) == 0 && dbres_rows(res) == 1 && dbres_get(res, 0, 0) != NULL)
		id = dbres_int(res, 0, 0);
	dbres_free(res);
	return id;
}

static int
incident_sync(struct db *db, int64_t alert_id)
{
	return incident_sync_id(db, incident_of(db, alert_id));
}

/*
 * An incident an alert has left for incident `to`.  Emptied and not yet
 * mailed, it becomes a pointer to `to` (as do the incidents that pointed
 * to it), so that a link to it taken meanwhile still leads to the alerts;
 * else it is recomputed.
 */
static int
incident_leave(struct db *db, int64_t incident_id, int64_t to)
{
	struct dbparams p = { .n = 0 };
	int rc;

	dbp_int(&p, incident_id);
	dbp_int(&p, to);
	if ((rc = db_queryp(NULL, db, "WITH moved AS (UPDATE incidents i SET "
	    "moved_to = $2, mail_state = 'none', mail_error = 'its alerts "
	    "moved to incident ' || $2, updated_at = now() WHERE id = $1 AND "
	    "$2 <> $1 AND mail_state = 'pending' AND NOT EXISTS (SELECT 1 FROM "
	    "alerts a WHERE a.incident_id = i.id) RETURNING id) UPDATE "
	    "incidents SET moved_to = $2 WHERE moved_to = $1 AND EXISTS "
	    "(SELECT 1 FROM moved)", &p)) < 0)
		return rc;
	return incident_sync_id(db, incident_id);
}

/* The incident of a commit in the series' project, made if missing, e-mail pending. */
static int
incident_for(int64_t *out, struct db *db, int64_t series_id, int64_t commit_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	dbp_int(&p, series_id);
	dbp_int(&p, commit_id);
	if ((rc = db_queryp(&res, db, "INSERT INTO incidents (project_id, "
	    "commit_id, mail_next_at) SELECT s.project_id, $2, now() + "
	    "make_interval(secs => coalesce((SELECT (settings->>'mail_delay_s')"
	    "::float8 FROM projects WHERE id = s.project_id), 0)) FROM series s "
	    "WHERE s.id = $1 ON CONFLICT (project_id, commit_id) DO UPDATE SET "
	    "updated_at = now(), state = CASE WHEN incidents.state IN "
	    "('resolved', 'invalid') THEN 'open'::alert_state ELSE "
	    "incidents.state END, mail_state = CASE WHEN incidents.moved_to IS "
	    "NOT NULL THEN 'pending'::mail_state ELSE incidents.mail_state END, "
	    "mail_error = CASE WHEN incidents.moved_to IS NOT NULL THEN NULL "
	    "ELSE incidents.mail_error END, moved_to = NULL RETURNING id", &p)) < 0)
		return rc;
	*out = dbres_int(res, 0, 0);
	dbres_free(res);
	return 0;
}

int
alert_open(struct db *db, const struct alert_spec *a, int64_t *opened,
    int64_t *alert_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	char *details = jsonx_dump(a->details ? a->details : json_object());
	int64_t incident, alert;
	int rc;

	if (alert_id != NULL)
		*alert_id = 0;
	if (a->only_if_none_open) {
		dbp_int(&p, a->series_id);
		dbp_str(&p, a->kind);
		rc = db_queryp(&res, db, "SELECT 1 FROM alerts WHERE series_id = "
		    "$1 AND kind = $2::alert_kind AND state IN ('open', "
		    "'acknowledged')", &p);
		if (rc == 0 && dbres_rows(res) > 0)
			rc = BL_ECONFLICT;
		dbres_free(res);
		res = NULL;
		if (rc < 0)
			goto out;
	}
	/* The incident of the bad commit in this series' project. */
	if ((rc = incident_for(&incident, db, a->series_id,
	    a->bad_commit_id)) < 0)
		goto out;
	p.n = 0;
	dbp_int(&p, a->series_id);
	dbp_str(&p, a->kind);
	dbp_id(&p, a->good_commit_id);
	dbp_int(&p, a->bad_commit_id);
	dbp_num(&p, a->before);
	dbp_num(&p, a->after);
	dbp_num(&p, a->change_pct);
	dbp_num(&p, a->p_value);
	dbp_str(&p, details);
	dbp_int(&p, incident);
	dbp_int(&p, a->run_id);
	if ((rc = db_queryp(&res, db, "INSERT INTO alerts (series_id, kind, "
	    "good_commit_id, bad_commit_id, before_value, after_value, "
	    "change_pct, p_value, details, incident_id, run_id) VALUES ($1, "
	    "$2::alert_kind, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11) "
	    "ON CONFLICT (series_id, kind, bad_commit_id) DO NOTHING "
	    "RETURNING id", &p)) < 0)
		goto out;
	if (dbres_rows(res) == 1) {
		alert = dbres_int(res, 0, 0);
		(*opened)++;
		if (alert_id != NULL)
			*alert_id = alert;
		log_info("alert %" PRId64 ": %s on series %" PRId64 ", change "
		    "%.1f%% (incident %" PRId64 ")", alert, a->kind, a->series_id,
		    a->change_pct, incident);
		rc = incident_sync(db, alert);
	}
out:
	if (rc == BL_ECONFLICT)
		rc = 0;		/* already open: the same alert goes on */
	dbres_free(res);
	free(details);
	return rc;
}

int
alert_detail(struct db *db, int64_t alert_id, const char *key, json_t *val)
{
	struct dbparams p = { .n = 0 };
	char *text = jsonx_dump(val);
	int rc;

	dbp_int(&p, alert_id);
	dbp_str(&p, key);
	dbp_str(&p, text);
	rc = db_queryp(NULL, db, "UPDATE alerts SET details = details || "
	    "jsonb_build_object($2::text, $3::jsonb), updated_at = now() WHERE "
	    "id = $1", &p);
	free(text);
	return rc;
}

int
alert_overturn(struct db *db, int64_t alert_id, json_t *confirmation)
{
	struct dbparams p = { .n = 0 };
	int64_t incident = incident_of(db, alert_id);
	int rc;

	if ((rc = alert_detail(db, alert_id, "confirmation", confirmation)) < 0)
		return rc;
	dbp_int(&p, alert_id);
	if ((rc = db_queryp(NULL, db, "UPDATE alerts SET state = 'invalid', "
	    "resolved_by = 'overturned', investigating = false WHERE id = $1",
	    &p)) < 0 || (rc = incident_sync_id(db, incident)) < 0)
		return rc;
	log_info("alert %" PRId64 " overturned by its confirmation runs",
	    alert_id);
	p.n = 0;
	dbp_int(&p, incident);
	/* An incident of overturned alerts alone is nobody's news. */
	return db_queryp(NULL, db, "UPDATE incidents SET mail_state = 'none', "
	    "mail_error = 'every alert of it was overturned by its "
	    "confirmation' WHERE id = $1 AND state = 'invalid' AND mail_state = "
	    "'pending'", &p);
}

int
alert_move(struct db *db, int64_t alert_id, int64_t good, int64_t bad,
    const char *key, json_t *val)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int64_t series, old = incident_of(db, alert_id), incident, dup = 0;
	int rc, same;

	if ((rc = alert_detail(db, alert_id, key, val)) < 0)
		return rc;
	dbp_int(&p, alert_id);
	dbp_int(&p, bad);
	if ((rc = db_queryp(&res, db, "SELECT a.series_id, a.bad_commit_id = "
	    "$2, (SELECT d.id FROM alerts d WHERE d.series_id = a.series_id AND "
	    "d.kind = a.kind AND d.bad_commit_id = $2 AND d.id <> a.id) FROM "
	    "alerts a WHERE a.id = $1", &p)) < 0)
		return rc;
	if (dbres_rows(res) != 1) {
		dbres_free(res);
		return BL_ENOTFOUND;
	}
	series = dbres_int(res, 0, 0);
	same = dbres_bool(res, 0, 1);
	if (dbres_get(res, 0, 2) != NULL)
		dup = dbres_int(res, 0, 2);
	dbres_free(res);
	if (dup > 0) {
		/* The same change was alerted at that commit already. */
		p.n = 0;
		dbp_int(&p, alert_id);
		dbp_int(&p, dup);
		if ((rc = db_queryp(NULL, db, "UPDATE alerts SET state = "
		    "'invalid', resolved_by = 'duplicate', investigating = false, "
		    "details = details || jsonb_build_object('duplicate_of', "
		    "$2::bigint) WHERE id = $1", &p)) < 0)
			return rc;
		return incident_sync_id(db, old);
	}
	if (same)
		incident = old;
	else if ((rc = incident_for(&incident, db, series, bad)) < 0)
		return rc;
	p.n = 0;
	dbp_int(&p, alert_id);
	dbp_id(&p, good);
	dbp_int(&p, bad);
	dbp_int(&p, incident);
	if ((rc = db_queryp(NULL, db, "UPDATE alerts SET good_commit_id = $2, "
	    "bad_commit_id = $3, incident_id = $4, investigating = false, "
	    "updated_at = now() WHERE id = $1", &p)) < 0 ||
	    (rc = incident_sync_id(db, incident)) < 0 || same)
		return rc;
	log_info("alert %" PRId64 " moved to its first bad commit (incident %"
	    PRId64 ")", alert_id, incident);
	return incident_leave(db, old, incident);
}

int
alert_headline(struct db *db, int64_t alert_id, double before, double after,
    double change, double p)
{
	struct dbparams q = { .n = 0 };

	dbp_int(&q, alert_id);
	dbp_num(&q, before);
	dbp_num(&q, after);
	dbp_num(&q, change * 100);
	dbp_num(&q, p);
	return db_queryp(NULL, db, "UPDATE alerts SET before_value = "
	    "coalesce($2, before_value), after_value = coalesce($3, "
	    "after_value), change_pct = coalesce($4, change_pct), p_value = $5, "
	    "updated_at = now() WHERE id = $1", &q);
}

int
alert_undecided(struct db *db, int64_t alert_id, int64_t commit, json_t *val)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int64_t old = incident_of(db, alert_id), series = 0, incident = old;
	int rc;

	if ((rc = alert_detail(db, alert_id, "bisection", val)) < 0)
		return rc;
	dbp_int(&p, alert_id);
	if ((rc = db_queryp(&res, db, "SELECT series_id FROM alerts WHERE id = "
	    "$1", &p)) < 0)
		return rc;
	if (dbres_rows(res) == 1)
		series = dbres_int(res, 0, 0);
	dbres_free(res);
	if (commit > 0 && series > 0 &&
	    (rc = incident_for(&incident, db, series, commit)) < 0)
		return rc;
	p.n = 0;
	dbp_int(&p, alert_id);
	dbp_id(&p, incident);
	if ((rc = db_queryp(NULL, db, "UPDATE alerts SET incident_id = "
	    "coalesce($2, incident_id), investigating = false, updated_at = "
	    "now() WHERE id = $1", &p)) < 0 ||
	    (rc = incident_sync_id(db, incident)) < 0 || incident == old)
		return rc;
	return incident_leave(db, old, incident);
}

int
alert_recover(struct db *db, int64_t series_id, const char *kind,
    int64_t run_id, double value, double value2, double threshold)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int i, rc;

	dbp_int(&p, series_id);
	dbp_str(&p, kind);
	dbp_num(&p, value);
	dbp_num(&p, threshold);
	dbp_int(&p, run_id);
	dbp_num(&p, value2);
	/* A perf alert resolves when its last two runs are back near the old level. */
	if ((rc = db_queryp(&res, db, "UPDATE alerts SET state = 'resolved', "
	    "resolved_by = 'recovered', updated_at = now(), details = details || "
	    "jsonb_build_object('recovered_in_run', $5::bigint) WHERE series_id = "
	    "$1 AND kind = $2::alert_kind AND state IN ('open', 'acknowledged') "
	    "AND NOT investigating "
	    "AND ($2 <> 'perf' OR (before_value IS NOT NULL AND abs($3 / "
	    "before_value - 1) < $4 AND abs($6 / before_value - 1) < $4)) "
	    "RETURNING id", &p)) < 0)
		return rc;
	for (i = 0; i < dbres_rows(res) && rc == 0; i++) {
		log_info("alert %s resolved: the series recovered",
		    dbres_get(res, i, 0));
		rc = incident_sync(db, dbres_int(res, i, 0));
	}
	dbres_free(res);
	return rc;
}

int
alert_set_state(json_t **out, struct db *db, int64_t id, const char *state,
    char *err, size_t errlen)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	if (strcmp(state, "acknowledged") != 0 && strcmp(state, "resolved") != 0 &&
	    strcmp(state, "invalid") != 0 && strcmp(state, "open") != 0) {
		snprintf(err, errlen, "$.state: must be \"open\", "
		    "\"acknowledged\", \"resolved\" or \"invalid\"");
		return BL_EINVAL;
	}
	dbp_int(&p, id);
	dbp_str(&p, state);
	if ((rc = db_queryp(&res, db, "UPDATE alerts SET state = "
	    "$2::alert_state, updated_at = now(), resolved_by = CASE WHEN $2 IN "
	    "('resolved', 'invalid') THEN 'user' ELSE NULL END WHERE id = $1 "
	    "RETURNING id", &p)) < 0)
		return rc;
	if (dbres_rows(res) == 0) {
		dbres_free(res);
		snprintf(err, errlen, "no alert '%" PRId64 "'", id);
		return BL_ENOTFOUND;
	}
	dbres_free(res);
	if ((rc = incident_sync(db, id)) < 0)
		return rc;
	return alert_list_one(out, db, id);
}

/* The JSON of alerts, joined with their series, target and commits. */
#define ALERT_JSON \
	"json_build_object('id', a.id, 'kind', a.kind, 'state', a.state, " \
	"'incident_id', a.incident_id, 'series_id', a.series_id, 'project', " \
	"p.name, 'target', t.name, 'branch', s.branch, 'scenario', s.scenario, " \
	"'metric', s.metric, 'unit', s.unit, 'direction', s.direction, " \
	"'good_commit', gc.sha, 'bad_commit', bc.sha, 'author', " \
	"bc.author_name, 'message', bc.message, 'before', a.before_value, " \
	"'after', a.after_value, 'change_pct', a.change_pct, 'p_value', " \
	"a.p_value, 'run_id', a.run_id, 'details', a.details, 'resolved_by', " \
	"a.resolved_by, 'investigation_id', a.investigation_id, " \
	"'investigating', a.investigating, 'created_at', a.created_at, " \
	"'updated_at', " \
	"a.updated_at)"
#define ALERT_FROM \
	"FROM alerts a JOIN series s ON s.id = a.series_id JOIN projects p ON " \
	"p.id = s.project_id JOIN targets t ON t.id = s.target_id JOIN commits " \
	"bc ON bc.id = a.bad_commit_id LEFT JOIN commits gc ON gc.id = " \
	"a.good_commit_id"

static int
one_json(json_t **out, struct db *db, const char *sql, const struct dbparams *p)
{
	struct dbres *res = NULL;
	int rc;

	if ((rc = db_queryp(&res, db, sql, p)) < 0)
		return rc;
	if (dbres_rows(res) != 1 || dbres_get(res, 0, 0) == NULL) {
		dbres_free(res);
		return BL_ENOTFOUND;
	}
	*out = json_loads(dbres_get(res, 0, 0), 0, NULL);
	dbres_free(res);
	return *out ? 0 : BL_ERROR;
}

int
alert_list_one(json_t **out, struct db *db, int64_t id)
{
	struct dbparams p = { .n = 0 };

	dbp_int(&p, id);
	return one_json(out, db, "SELECT " ALERT_JSON " " ALERT_FROM
	    " WHERE a.id = $1", &p);
}

int
alert_list(json_t **out, struct db *db, int64_t project_id, const char *state,
    const char *kind)
{
	struct dbparams p = { .n = 0 };

	dbp_int(&p, project_id);
	dbp_str(&p, state);
	dbp_str(&p, kind);
	return one_json(out, db, "SELECT coalesce(json_agg(" ALERT_JSON
	    " ORDER BY a.id DESC), '[]') " ALERT_FROM " WHERE ($1 = 0 OR "
	    "s.project_id = $1) AND ($2::alert_state IS NULL OR a.state = $2) "
	    "AND ($3::alert_kind IS NULL OR a.kind = $3)", &p);
}

/*
 * Incidents with their alerts; scope says whether the commit regressed on
 * every active target of the project or on some of them only.
 */
int
alert_incidents(json_t **out, struct db *db, int64_t project_id,
    const char *state, int64_t id)
{
	struct dbparams p = { .n = 0 };

	dbp_int(&p, project_id);
	dbp_str(&p, state);
	dbp_int(&p, id);
	return one_json(out, db, "SELECT coalesce(json_agg(x ORDER BY x.id "
	    "DESC), '[]') FROM (SELECT i.id, p.name AS project, c.sha AS commit, "
	    "c.author_name AS author, c.message, i.state, i.mail_state, "
	    "i.mail_attempts, i.mail_error, i.mailed_at, i.created_at, "
	    "(SELECT array_agg(DISTINCT a.kind) FROM alerts a WHERE "
	    "a.incident_id = i.id AND a.state <> 'invalid') AS kinds, "
	    "(SELECT array_agg(DISTINCT t.name) FROM alerts a JOIN series s ON "
	    "s.id = a.series_id JOIN targets t ON t.id = s.target_id WHERE "
	    "a.incident_id = i.id AND a.state <> 'invalid') AS targets, "
	    "(SELECT count(*) FROM targets WHERE active) AS active_targets, "
	    "(SELECT json_agg(" ALERT_JSON " ORDER BY a.id) " ALERT_FROM
	    " WHERE a.incident_id = i.id) AS alerts, (SELECT array_agg(o.id "
	    "ORDER BY o.id) FROM incidents o WHERE o.moved_to = i.id) AS "
	    "moved_here "
	    "FROM incidents i JOIN projects p ON p.id = i.project_id JOIN "
	    "commits c ON c.id = i.commit_id WHERE ($1 = 0 OR i.project_id = $1) "
	    "AND ($2::alert_state IS NULL OR i.state = $2) AND ($3 = 0 AND "
	    "i.moved_to IS NULL OR i.id = coalesce((SELECT m.moved_to FROM "
	    "incidents m WHERE m.id = $3), $3))) x", &p);
}
