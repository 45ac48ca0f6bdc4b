/* The read side of the API: projects, targets, jobs, series, downsampled points, commit comparisons. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "stats.h"
#include "xmalloc.h"

#define POINTS_DEFAULT	1000
#define POINTS_MAX	100000

/*
 * Opens a read: a pooled connection (to the read replica when there is one)
 * and the reader check.  Answers the request itself and returns NULL when
 * either fails.
 */
struct db *
read_begin(struct request *r)
{
	struct db *db = req_db_read(r);
	int rc;

	if (db == NULL)
		return NULL;
	if ((rc = auth_reader(r, db)) < 0) {
		reply_status(r, rc, "a token is required to read");
		dbpool_put(req_server(r)->pool, db);
		return NULL;
	}
	return db;
}

/* Answers with the JSON a query returns in its single row and column. */
void
reply_query_json(struct request *r, struct db *db, const char *sql,
    const struct dbparams *p)
{
	struct dbres *res = NULL;
	json_t *v;

	if (db_queryp(&res, db, sql, p) < 0) {
		reply_db_error(r, db);
		return;
	}
	v = json_loads(dbres_get(res, 0, 0), 0, NULL);
	dbres_free(res);
	if (v == NULL)
		reply_error(r, 500, "internal", "query returned no JSON");
	else
		reply_json(r, 200, v);
}

static void
reply_list(struct request *r, const char *what)
{
	struct db *db;
	json_t *v = NULL;

	if ((db = read_begin(r)) == NULL)
		return;
	if (catalog_list(&v, db, what) < 0)
		reply_db_error(r, db);
	else
		reply_json(r, 200, v);
	dbpool_put(req_server(r)->pool, db);
}

void
api_projects_list(struct request *r)
{
	reply_list(r, "projects");
}

void
api_targets_list(struct request *r)
{
	reply_list(r, "targets");
}

/* Resolves the project named by the first path parameter, or answers 404. */
int
project_param(int64_t *out, struct request *r, struct db *db)
{
	const char *name = req_param(r, 0);
	int rc = catalog_project_find(out, db, name);

	if (rc == BL_ENOTFOUND)
		reply_error(r, 404, "not_found", "no project '%s'", name);
	else if (rc < 0)
		reply_db_error(r, db);
	return rc;
}

/* Reads an optional integer query parameter within bounds, or answers 400. */
int
query_int(int64_t *out, struct request *r, const char *name, int64_t min,
    int64_t max)
{
	const char *s = req_query(r, name);
	char *end;
	long long v;

	if (s == NULL)
		return 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < min || v > max) {
		reply_error(r, 400, "invalid", "query parameter '%s' must be an "
		    "integer from %lld to %lld, got '%s'", name, (long long)min,
		    (long long)max, s);
		return BL_EINVAL;
	}
	*out = v;
	return 0;
}

/* GET /api/v1/jobs?state=&project=&limit=: the newest jobs first. */
void
api_jobs_list(struct request *r)
{
	static const char *const states[] = {
		"queued", "running", "done", "failed", "cancelled", NULL
	};
	struct dbparams p = { .n = 0 };
	const char *state = req_query(r, "state");
	int64_t limit = 100, project_id = 0;
	struct db *db;
	size_t i;

	if (state != NULL) {
		for (i = 0; states[i] != NULL; i++)
			if (strcmp(states[i], state) == 0)
				break;
		if (states[i] == NULL) {
			reply_error(r, 400, "invalid", "query parameter 'state' "
			    "must be queued, running, done, failed or cancelled");
			return;
		}
	}
	if (query_int(&limit, r, "limit", 1, 1000) < 0 ||
	    (db = read_begin(r)) == NULL)
		return;
	if (req_query(r, "project") != NULL && catalog_project_find(&project_id,
	    db, req_query(r, "project")) < 0) {
		reply_error(r, 404, "not_found", "no project '%s'",
		    req_query(r, "project"));
		goto out;
	}
	dbp_str(&p, state);
	dbp_int(&p, project_id);
	dbp_int(&p, limit);
	reply_query_json(r, db, "SELECT coalesce(json_agg(x ORDER BY x.id DESC), "
	    "'[]') FROM (SELECT j.id, p.name AS project, c.sha AS commit, "
	    "t.name AS target, j.branch, j.scenarios, j.reason, j.priority, "
	    "j.state, j.attempt, j.max_attempts, j.worker_id, j.fail_reason, "
	    "j.created_at, j.started_at, j.finished_at, (SELECT r.id FROM runs r "
	    "WHERE r.job_id = j.id ORDER BY r.id DESC LIMIT 1) AS run_id "
	    "FROM jobs j JOIN projects p ON p.id = j.project_id "
	    "JOIN commits c ON c.id = j.commit_id JOIN targets t ON "
	    "t.id = j.target_id WHERE ($1::job_state IS NULL OR j.state = $1) "
	    "AND ($2 = 0 OR j.project_id = $2) ORDER BY j.id DESC LIMIT $3) x",
	    &p);
out:
	dbpool_put(req_server(r)->pool, db);
}

/* GET /api/v1/projects/{p}/series?target=&scenario=&metric=&branch= */
void
api_project_series(struct request *r)
{
	struct dbparams p = { .n = 0 };
	int64_t project_id;
	struct db *db;

	if ((db = read_begin(r)) == NULL)
		return;
	if (project_param(&project_id, r, db) < 0)
		goto out;
	dbp_int(&p, project_id);
	dbp_str(&p, req_query(r, "target"));
	dbp_str(&p, req_query(r, "scenario"));
	dbp_str(&p, req_query(r, "metric"));
	dbp_str(&p, req_query(r, "branch"));
	reply_query_json(r, db, "SELECT coalesce(json_agg(x ORDER BY x.target, "
	    "x.scenario, x.metric), '[]') FROM (SELECT s.id, t.name AS target, "
	    "s.branch, s.scenario, s.metric, s.unit, s.direction, "
	    "(SELECT json_build_object('ts', pt.ts, 'value', pt.value) FROM "
	    "points pt WHERE pt.series_id = s.id ORDER BY pt.ts DESC LIMIT 1) "
	    "AS last FROM series s JOIN targets t ON t.id = s.target_id "
	    "WHERE s.project_id = $1 AND ($2::text IS NULL OR t.name = $2) AND "
	    "($3::text IS NULL OR s.scenario = $3) AND ($4::text IS NULL OR "
	    "s.metric = $4) AND ($5::text IS NULL OR s.branch = $5)) x", &p);
out:
	dbpool_put(req_server(r)->pool, db);
}

/*
 * Accepts epoch seconds ("1704067200", "1704067200.5") or text that starts
 * as an ISO 8601 date ("2024-01-01", "2024-01-01T10:00:00Z"); PostgreSQL
 * checks the rest.  Its other spellings ("yesterday") are refused.
 */
static int
time_param_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return 1;
	if (strspn(s, "0123456789") > 0 && s[strspn(s, "0123456789.")] == '\0')
		return strchr(s, '.') == strrchr(s, '.');
	for (i = 0; i < 10; i++) {
		if (i == 4 || i == 7) {
			if (s[i] != '-')
				return 0;
		} else if (s[i] < '0' || s[i] > '9')
			return 0;
	}
	return 1;
}

/*
 * Picks the points to send: all of them when they fit in max_points,
 * otherwise the LTTB selection, which keeps the line's shape and its spikes.
 */
static size_t
select_points(size_t **out, const struct dbres *res, size_t n, size_t max)
{
	double *x, *y;
	size_t i, k;

	*out = xreallocarray(NULL, n ? n : 1, sizeof(**out));
	if (n <= max) {
		for (i = 0; i < n; i++)
			(*out)[i] = i;
		return n;
	}
	x = xreallocarray(NULL, n, sizeof(*x));
	y = xreallocarray(NULL, n, sizeof(*y));
	for (i = 0; i < n; i++) {
		x[i] = dbres_double(res, (int)i, 0);
		y[i] = dbres_double(res, (int)i, 1);
	}
	k = downsample_lttb(*out, x, y, n, max);
	free(x);
	free(y);
	return k;
}

/*
 * GET /api/v1/series/{id}/points?from=&to=&max_points=: the series' points
 * in a time range (ISO 8601 or epoch seconds), downsampled on the server.
 * Only (ts, value, run) are read for the whole range, from the covering
 * index; the details are fetched for the chosen points alone.
 */
void
api_series_points(struct request *r)
{
	struct dbparams p = { .n = 0 };
	struct dbres *all = NULL, *det = NULL;
	int64_t series_id, max_points = POINTS_DEFAULT;
	const char *sid = req_param(r, 0);
	size_t n, k, i, *idx = NULL;
	struct buf runs;
	json_t *body, *pts, *meta = NULL;
	struct db *db;
	char *end;

	series_id = strtoll(sid, &end, 10);
	if (*end != '\0' || series_id <= 0) {
		reply_error(r, 404, "not_found", "no series '%s'", sid);
		return;
	}
	if (query_int(&max_points, r, "max_points", 2, POINTS_MAX) < 0)
		return;
	if (!time_param_valid(req_query(r, "from")) ||
	    !time_param_valid(req_query(r, "to"))) {
		reply_error(r, 400, "invalid", "query parameters 'from' and 'to' "
		    "must be ISO 8601 times or epoch seconds");
		return;
	}
	if ((db = read_begin(r)) == NULL)
		return;
	buf_init(&runs, SIZE_MAX / 2);
	dbp_int(&p, series_id);
	if (db_queryp(&det, db, "SELECT json_build_object('id', s.id, "
	    "'project', p.name, 'target', t.name, 'branch', s.branch, "
	    "'scenario', s.scenario, 'metric', s.metric, 'unit', s.unit, "
	    "'direction', s.direction) FROM series s JOIN projects p ON "
	    "p.id = s.project_id JOIN targets t ON t.id = s.target_id "
	    "WHERE s.id = $1", &p) < 0) {
		reply_db_error(r, db);
		goto out;
	}
	if (dbres_rows(det) == 0) {
		reply_error(r, 404, "not_found", "no series '%s'", sid);
		goto out;
	}
	meta = json_loads(dbres_get(det, 0, 0), 0, NULL);
	dbres_free(det);
	det = NULL;
	dbp_str(&p, req_query(r, "from"));
	dbp_str(&p, req_query(r, "to"));
	if (db_queryp(&all, db, "SELECT date_part('epoch', ts), value, run_id "
	    "FROM points WHERE series_id = $1 AND ts >= coalesce("
	    "bl_time($2), '-infinity') AND ts <= coalesce(bl_time($3), "
	    "'infinity') ORDER BY ts", &p) < 0) {
		if (strstr(db_errmsg(db), "bl_time") != NULL ||
		    strstr(db_errmsg(db), "invalid input syntax") != NULL)
			reply_error(r, 400, "invalid", "query parameters 'from' "
			    "and 'to' must be ISO 8601 times or epoch seconds");
		else
			reply_db_error(r, db);
		goto out;
	}
	n = (size_t)dbres_rows(all);
	k = select_points(&idx, all, n, (size_t)max_points);
	buf_addstr(&runs, "{");
	for (i = 0; i < k; i++)
		buf_addf(&runs, i ? ",%s" : "%s", dbres_get(all, (int)idx[i], 2));
	buf_addstr(&runs, "}");
	p.n = 1;
	dbp_str(&p, runs.ptr);
	if (db_queryp(&det, db, "SELECT coalesce(json_agg(json_build_object("
	    "'ts', pt.ts, 'value', pt.value, 'lo', pt.lo, 'hi', pt.hi, 'n', "
	    "pt.n, 'run_id', pt.run_id, 'commit', c.sha, 'author', "
	    "c.author_name, 'message', c.message, 'commit_id', c.id) ORDER BY "
	    "c.id, pt.ts), '[]') FROM points pt JOIN commits c ON "
	    "c.id = pt.commit_id WHERE pt.series_id = $1 AND "
	    "pt.run_id = ANY($2::bigint[])", &p) < 0) {
		reply_db_error(r, db);
		goto out;
	}
	pts = json_loads(dbres_get(det, 0, 0), 0, NULL);
	body = json_pack("{s:o,s:I,s:I,s:o}", "series", meta, "total",
	    (json_int_t)n, "returned", (json_int_t)k, "points",
	    pts ? pts : json_array());
	meta = NULL;
	reply_json(r, 200, body);
out:
	json_decref(meta);
	free(idx);
	buf_free(&runs);
	dbres_free(all);
	dbres_free(det);
	dbpool_put(req_server(r)->pool, db);
}

/* Looks a commit of the project up by full or abbreviated sha. */
int
commit_find(int64_t *out, struct db *db, int64_t project_id, const char *sha)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	if (!catalog_sha_valid(sha))
		return BL_EINVAL;
	dbp_int(&p, project_id);
	dbp_str(&p, sha);
	if ((rc = db_queryp(&res, db, "SELECT id FROM commits WHERE "
	    "project_id = $1 AND sha LIKE $2 || '%' LIMIT 2", &p)) < 0)
		return rc;
	if (dbres_rows(res) == 1)
		*out = dbres_int(res, 0, 0);
	else
		rc = dbres_rows(res) == 0 ? BL_ENOTFOUND : BL_ECONFLICT;
	dbres_free(res);
	return rc;
}

/* The commit's first parent, when it is known. */
static int
commit_parent(int64_t *out, struct db *db, int64_t commit_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	dbp_int(&p, commit_id);
	if ((rc = db_queryp(&res, db, "SELECT pc.id FROM commits c JOIN "
	    "commits pc ON pc.project_id = c.project_id AND pc.sha = "
	    "c.parents[1] WHERE c.id = $1", &p)) < 0)
		return rc;
	if (dbres_rows(res) == 1)
		*out = dbres_int(res, 0, 0);
	else
		rc = BL_ENOTFOUND;
	dbres_free(res);
	return rc;
}

/* Adds the head-versus-base change and its two-sided Mann-Whitney p-value. */
static void
compare_row(json_t *row, const struct dbres *res, int i)
{
	double base = dbres_double(res, i, 6), head = dbres_double(res, i, 8);
	double *bs = NULL, *hs = NULL, change;
	struct stats_mwu mw;
	size_t nb, nh;
	int lower = strcmp(dbres_get(res, i, 5), "lower") == 0;

	if (dbres_get(res, i, 6) == NULL || dbres_get(res, i, 8) == NULL)
		return;
	change = base != 0 ? (head - base) / fabs(base) * 100.0 : NAN;
	if (isfinite(change)) {
		json_object_set_new(row, "change_pct", json_real(change));
		json_object_set_new(row, "better", json_boolean(lower ?
		    change < 0 : change > 0));
	}
	nb = dbres_doubles(&bs, res, i, 10);
	nh = dbres_doubles(&hs, res, i, 11);
	if (stats_mwu_test(&mw, hs, nh, bs, nb, STATS_TWO_SIDED) == 0)
		json_object_set_new(row, "p_value", json_real(mw.p));
	free(bs);
	free(hs);
}

/*
 * GET /api/v1/projects/{p}/commits/{sha}/compare?base=&target=: every metric
 * of two commits side by side, from each one's latest run per series.
 * Without base, the commit's first parent is the base.
 */
void
api_commit_compare(struct request *r)
{
	struct dbparams p = { .n = 0 };
	const char *sha = req_param(r, 1), *base = req_query(r, "base");
	int64_t project_id, head_id, base_id;
	struct dbres *res = NULL;
	struct db *db;
	json_t *rows, *row;
	int rc, i;

	if ((db = read_begin(r)) == NULL)
		return;
	if (project_param(&project_id, r, db) < 0)
		goto out;
	if ((rc = commit_find(&head_id, db, project_id, sha)) < 0) {
		reply_status(r, rc == BL_EINVAL ? BL_EINVAL : rc,
		    rc == BL_ECONFLICT ? "commit prefix is ambiguous" :
		    "no such commit in this project");
		goto out;
	}
	if (base != NULL)
		rc = commit_find(&base_id, db, project_id, base);
	else
		rc = commit_parent(&base_id, db, head_id);
	if (rc < 0) {
		reply_error(r, base ? (rc == BL_EINVAL ? 400 : 404) : 400,
		    base ? "not_found" : "invalid", base ? "no commit '%s' in "
		    "this project" : "%s", base ? base : "the commit's parent is "
		    "unknown; give 'base'");
		goto out;
	}
	dbp_int(&p, project_id);
	dbp_int(&p, head_id);
	dbp_int(&p, base_id);
	dbp_str(&p, req_query(r, "target"));
	if (db_queryp(&res, db,
	    "WITH h AS (SELECT DISTINCT ON (series_id) series_id, value, n, "
	    "  samples FROM points WHERE commit_id = $2 ORDER BY series_id, "
	    "  ts DESC), "
	    "b AS (SELECT DISTINCT ON (series_id) series_id, value, n, samples "
	    "  FROM points WHERE commit_id = $3 ORDER BY series_id, ts DESC) "
	    "SELECT s.id, t.name, s.scenario, s.metric, s.unit, s.direction, "
	    "  b.value, b.n, h.value, h.n, b.samples, h.samples "
	    "FROM series s JOIN targets t ON t.id = s.target_id "
	    "LEFT JOIN h ON h.series_id = s.id LEFT JOIN b ON b.series_id = s.id "
	    "WHERE s.project_id = $1 AND (h.series_id IS NOT NULL OR "
	    "  b.series_id IS NOT NULL) AND ($4::text IS NULL OR t.name = $4) "
	    "ORDER BY t.name, s.scenario, s.metric", &p) < 0) {
		reply_db_error(r, db);
		goto out;
	}
	rows = json_array();
	for (i = 0; i < dbres_rows(res); i++) {
		row = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "series_id",
		    (json_int_t)dbres_int(res, i, 0), "target", dbres_get(res, i, 1),
		    "scenario", dbres_get(res, i, 2), "metric",
		    dbres_get(res, i, 3), "unit", dbres_get(res, i, 4),
		    "direction", dbres_get(res, i, 5));
		json_object_set_new(row, "base", dbres_get(res, i, 6) ?
		    json_pack("{s:f,s:I}", "value", dbres_double(res, i, 6), "n",
		    (json_int_t)dbres_int(res, i, 7)) : json_null());
		json_object_set_new(row, "head", dbres_get(res, i, 8) ?
		    json_pack("{s:f,s:I}", "value", dbres_double(res, i, 8), "n",
		    (json_int_t)dbres_int(res, i, 9)) : json_null());
		compare_row(row, res, i);
		json_array_append_new(rows, row);
	}
	reply_json(r, 200, json_pack("{s:s,s:I,s:I,s:o}", "commit", sha,
	    "head_commit_id", (json_int_t)head_id, "base_commit_id",
	    (json_int_t)base_id, "metrics", rows));
out:
	dbres_free(res);
	dbpool_put(req_server(r)->pool, db);
}
