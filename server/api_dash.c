/* The dashboard's reads: an overview, commits with their jobs per target, one run in full, a series' markers, and a commit's report against the project's goals. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "xmalloc.h"

#define OVERVIEW_COMMITS_DEFAULT	10
#define OVERVIEW_COMMITS_MAX		100
#define COMMITS_DEFAULT			50
#define COMMITS_MAX			1000
#define LOG_TAIL_DEFAULT		8192
#define LOG_TAIL_MAX			(1 << 20)
#define TS_POINTS_DEFAULT		2000
#define TS_POINTS_MAX			100000
#define GOALS_MAX			200

/*
 * A commit as the overview and the commit list show it: who, what, and per
 * target the state of its latest job with the failure reason, and the
 * latest run of the commit there.  Needs "c" (commits) and "p" (projects).
 */
#define COMMIT_JSON \
	"json_build_object('id', c.id, 'project', p.name, 'sha', c.sha, " \
	"'author', c.author_name, 'message', c.message, 'committed_at', " \
	"c.committed_at, 'branch', c.branch, 'first_seen', c.created_at, " \
	"'parent', c.parents[1], 'parent_known', EXISTS (SELECT 1 FROM " \
	"commits pc WHERE pc.project_id = c.project_id AND pc.sha = " \
	"c.parents[1]), 'has_points', EXISTS (SELECT 1 FROM points pt WHERE " \
	"pt.commit_id = c.id), 'status', (SELECT coalesce(json_agg(" \
	"json_build_object('target', t.name, 'state', j.state, 'job_id', " \
	"j.id, 'reason', j.reason, 'attempt', j.attempt, 'fail_reason', " \
	"j.fail_reason, 'jobs', j.njobs, 'created_at', j.created_at, " \
	"'started_at', j.started_at, 'finished_at', j.finished_at, 'run_id', " \
	"(SELECT r.id FROM runs r JOIN jobs rj ON rj.id = r.job_id WHERE " \
	"rj.commit_id = c.id AND rj.target_id = j.target_id ORDER BY r.id " \
	"DESC LIMIT 1)) ORDER BY t.name), '[]') FROM (SELECT DISTINCT ON " \
	"(jj.target_id) jj.*, count(*) OVER (PARTITION BY jj.target_id) AS " \
	"njobs FROM jobs jj WHERE jj.commit_id = c.id ORDER BY jj.target_id, " \
	"jj.id DESC) j JOIN targets t ON t.id = j.target_id))"

/* Parses the first path parameter as a positive id, or answers 404. */
static int
id_param(int64_t *out, struct request *r, const char *what)
{
	const char *s = req_param(r, 0);
	char *end;

	*out = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || *out <= 0) {
		reply_error(r, 404, "not_found", "no %s '%s'", what, s);
		return BL_ENOTFOUND;
	}
	return 0;
}

/* Resolves the optional ?project= to an id (0 when absent), or answers 404. */
static int
project_query(int64_t *out, struct request *r, struct db *db)
{
	const char *name = req_query(r, "project");
	int rc;

	*out = 0;
	if (name == NULL)
		return 0;
	if ((rc = catalog_project_find(out, db, name)) == BL_ENOTFOUND)
		reply_error(r, 404, "not_found", "no project '%s'", name);
	else if (rc < 0)
		reply_db_error(r, db);
	return rc;
}

/*
 * GET /api/v1/overview?project=&commits=: the projects, the hardware
 * targets with their workers (busy, idle, silent or never seen), the
 * latest commits with their jobs' state per target, and the incidents that
 * are open or acknowledged.  A worker's heartbeat is only sent during a
 * job, so "idle" means it ran one in the last 10 minutes and "silent" that
 * it did not: an idle worker waiting for jobs is silent too.
 */
void
api_dash_overview(struct request *r)
{
	struct dbparams p = { .n = 0 };
	int64_t project, ncommits = OVERVIEW_COMMITS_DEFAULT;
	struct db *db;

	if (query_int(&ncommits, r, "commits", 1, OVERVIEW_COMMITS_MAX) < 0 ||
	    (db = read_begin(r)) == NULL)
		return;
	if (project_query(&project, r, db) < 0)
		goto out;
	dbp_int(&p, project);
	dbp_int(&p, ncommits);
	reply_query_json(r, db, "SELECT json_build_object("
	    "'generated_at', now(), "
	    "'projects', (SELECT coalesce(json_agg(json_build_object('id', "
	    "  p.id, 'name', p.name, 'repo_url', p.repo_url, 'default_branch', "
	    "  p.default_branch, 'series', (SELECT count(*) FROM series s WHERE "
	    "  s.project_id = p.id), 'commits', (SELECT count(*) FROM commits c "
	    "  WHERE c.project_id = p.id), 'open_incidents', (SELECT count(*) "
	    "  FROM incidents i WHERE i.project_id = p.id AND i.state IN "
	    "  ('open', 'acknowledged')), 'last_run_at', (SELECT max("
	    "  r.created_at) FROM runs r JOIN jobs j ON j.id = r.job_id WHERE "
	    "  j.project_id = p.id)) ORDER BY p.name), '[]') FROM projects p "
	    "  WHERE $1::bigint = 0 OR p.id = $1), "
	    "'targets', (SELECT coalesce(json_agg(json_build_object('id', t.id, "
	    "  'name', t.name, 'arch', t.arch, 'cpu', t.cpu, 'gpu', t.gpu, "
	    "  'ram_mb', t.ram_mb, 'labels', t.labels, 'active', t.active, "
	    "  'queued', (SELECT count(*) FROM jobs j WHERE j.target_id = t.id "
	    "  AND j.state = 'queued'), 'running', (SELECT count(*) FROM jobs j "
	    "  WHERE j.target_id = t.id AND j.state = 'running'), "
	    "  'last_heartbeat', (SELECT max(w.last_heartbeat) FROM workers w "
	    "  WHERE w.target_id = t.id AND NOT w.revoked), "
	    "  'workers', (SELECT coalesce(json_agg(json_build_object('id', "
	    "  w.id, 'name', w.name, 'version', w.version, 'last_heartbeat', "
	    "  w.last_heartbeat, 'job_id', rj.id, 'state', CASE WHEN rj.id IS "
	    "  NOT NULL THEN 'busy' WHEN w.last_heartbeat IS NULL THEN "
	    "  'never seen' WHEN w.last_heartbeat > now() - interval "
	    "  '10 minutes' THEN 'idle' ELSE 'silent' END) ORDER BY w.name), "
	    "  '[]') FROM workers w LEFT JOIN LATERAL (SELECT j.id FROM jobs j "
	    "  WHERE j.worker_id = w.id AND j.state = 'running' ORDER BY j.id "
	    "  DESC LIMIT 1) rj ON true WHERE w.target_id = t.id AND NOT "
	    "  w.revoked)) ORDER BY t.name), '[]') FROM targets t), "
	    "'commits', (SELECT coalesce(json_agg(" COMMIT_JSON " ORDER BY "
	    "  c.id DESC), '[]') FROM (SELECT * FROM commits cc WHERE ($1 = 0 "
	    "  OR cc.project_id = $1) AND EXISTS (SELECT 1 FROM jobs j WHERE "
	    "  j.commit_id = cc.id) ORDER BY cc.id DESC LIMIT $2) c JOIN "
	    "  projects p ON p.id = c.project_id), "
	    "'incidents', (SELECT coalesce(json_agg(x ORDER BY x.id DESC), "
	    "  '[]') FROM (SELECT i.id, p.name AS project, c.sha AS commit, "
	    "  c.author_name AS author, c.message, i.state, i.mail_state, "
	    "  i.created_at, i.updated_at, (SELECT array_agg(DISTINCT a.kind) "
	    "  FROM alerts a WHERE a.incident_id = i.id) AS kinds, (SELECT "
	    "  array_agg(DISTINCT t.name) FROM alerts a JOIN series s ON s.id = "
	    "  a.series_id JOIN targets t ON t.id = s.target_id WHERE "
	    "  a.incident_id = i.id) AS targets, (SELECT count(*) FROM alerts a "
	    "  WHERE a.incident_id = i.id) AS alerts FROM incidents i JOIN "
	    "  projects p ON p.id = i.project_id JOIN commits c ON c.id = "
	    "  i.commit_id WHERE i.state IN ('open', 'acknowledged') AND ($1 = "
	    "  0 OR i.project_id = $1) ORDER BY i.id DESC LIMIT 50) x))", &p);
out:
	dbpool_put(req_server(r)->pool, db);
}

/*
 * GET /api/v1/projects/{p}/commits?limit=&before=&with_points=: the
 * project's commits, newest first (the order the server learnt of them),
 * each with its jobs' state per target; before= pages by commit id, and
 * with_points=1 keeps the commits that have results.
 */
void
api_dash_commits(struct request *r)
{
	struct dbparams p = { .n = 0 };
	int64_t project, limit = COMMITS_DEFAULT, before = 0, with_points = 0;
	struct db *db;

	if (query_int(&limit, r, "limit", 1, COMMITS_MAX) < 0 ||
	    query_int(&before, r, "before", 1, INT64_MAX) < 0 ||
	    query_int(&with_points, r, "with_points", 0, 1) < 0 ||
	    (db = read_begin(r)) == NULL)
		return;
	if (project_param(&project, r, db) < 0)
		goto out;
	dbp_int(&p, project);
	dbp_int(&p, limit);
	dbp_int(&p, before);
	dbp_int(&p, with_points);
	reply_query_json(r, db, "SELECT coalesce(json_agg(" COMMIT_JSON
	    " ORDER BY c.id DESC), '[]') FROM (SELECT * FROM commits cc WHERE "
	    "cc.project_id = $1 AND ($3::bigint = 0 OR cc.id < $3) AND ($4 = 0 OR "
	    "EXISTS (SELECT 1 FROM points pt WHERE pt.commit_id = cc.id)) "
	    "ORDER BY cc.id DESC LIMIT $2) c JOIN projects p ON p.id = "
	    "c.project_id", &p);
out:
	dbpool_put(req_server(r)->pool, db);
}

/* A JSON array of the values v[idx[0..k)], with null for what is not finite. */
static json_t *
doubles_json(const double *v, const size_t *idx, size_t k)
{
	json_t *a = json_array();
	size_t i;
	double x;

	for (i = 0; i < k; i++) {
		x = v[idx[i]];
		json_array_append_new(a, isfinite(x) ? json_real(x) :
		    json_null());
	}
	return a;
}

/*
 * The time series recorded inside a run (RSS, tokens/s, temperature,
 * power), each cut down to at most max points by LTTB, which keeps the
 * spikes a throttled or leaking run shows.
 */
static int
run_timeseries(json_t **out, struct db *db, int64_t run_id, size_t max)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	double *t = NULL, *v = NULL;
	size_t nt, nv, n, k, *idx = NULL, j;
	json_t *list, *one;
	int rc, i;

	dbp_int(&p, run_id);
	if ((rc = db_queryp(&res, db, "SELECT scenario, name, unit, t, v FROM "
	    "run_series WHERE run_id = $1 ORDER BY scenario, name", &p)) < 0)
		return rc;
	list = json_array();
	for (i = 0; i < dbres_rows(res); i++) {
		nt = dbres_doubles(&t, res, i, 3);
		nv = dbres_doubles(&v, res, i, 4);
		n = nt < nv ? nt : nv;
		idx = xreallocarray(NULL, n ? n : 1, sizeof(*idx));
		if (n > max)
			k = downsample_lttb(idx, t, v, n, max);
		else
			for (k = 0, j = 0; j < n; j++)
				idx[k++] = j;
		one = json_pack("{s:s,s:s,s:s,s:I,s:I}", "scenario",
		    dbres_get(res, i, 0), "name", dbres_get(res, i, 1), "unit",
		    dbres_get(res, i, 2), "total", (json_int_t)n, "returned",
		    (json_int_t)k);
		json_object_set_new(one, "t", doubles_json(t, idx, k));
		json_object_set_new(one, "v", doubles_json(v, idx, k));
		json_array_append_new(list, one);
		free(t);
		free(v);
		free(idx);
		t = v = NULL;
		idx = NULL;
	}
	dbres_free(res);
	*out = list;
	return 0;
}

/*
 * GET /api/v1/runs/{id}?log_bytes=&ts_points=: one run in full: its job,
 * commit and target, the machine's fingerprint, the tail of the build log,
 * the worker's notes, every metric with the detector's verdict, the alerts
 * it raised, and the time series inside it.
 */
void
api_dash_run(struct request *r)
{
	struct dbparams p = { .n = 0 };
	int64_t id, log_bytes = LOG_TAIL_DEFAULT, ts_points = TS_POINTS_DEFAULT;
	struct dbres *res = NULL;
	json_t *run = NULL, *ts = NULL;
	struct db *db;

	if (id_param(&id, r, "run") < 0 ||
	    query_int(&log_bytes, r, "log_bytes", 0, LOG_TAIL_MAX) < 0 ||
	    query_int(&ts_points, r, "ts_points", 2, TS_POINTS_MAX) < 0 ||
	    (db = read_begin(r)) == NULL)
		return;
	dbp_int(&p, id);
	dbp_int(&p, log_bytes);
	if (db_queryp(&res, db, "SELECT json_build_object('id', r.id, "
	    "'job_id', r.job_id, 'attempt', r.attempt, 'project', p.name, "
	    "'target', t.name, 'worker', w.name, 'reason', j.reason, "
	    "'scenarios', j.scenarios, 'params', j.params, 'commit', "
	    "json_build_object('id', c.id, 'sha', c.sha, 'author', "
	    "c.author_name, 'message', c.message, 'committed_at', "
	    "c.committed_at, 'branch', j.branch), 'created_at', r.created_at, "
	    "'build_duration_s', r.build_duration_s, 'duration_s', "
	    "r.duration_s, 'suspect', r.suspect, 'judged', r.detected_at IS NOT "
	    "NULL, 'environment', r.environment, 'info', r.info, "
	    "'build_log_bytes', octet_length(r.build_log), 'build_log_tail', "
	    "right(r.build_log, $2::int), "
	    "'metrics', (SELECT coalesce(json_agg(json_build_object("
	    "  'series_id', s.id, 'scenario', s.scenario, 'metric', s.metric, "
	    "  'unit', s.unit, 'direction', s.direction, 'value', pt.value, "
	    "  'lo', pt.lo, 'hi', pt.hi, 'n', pt.n, 'verdict', d.verdict, "
	    "  'change_pct', d.change_pct, 'p_value', d.p_value) ORDER BY "
	    "  s.scenario, s.metric), '[]') FROM points pt JOIN series s ON "
	    "  s.id = pt.series_id LEFT JOIN detections d ON d.series_id = "
	    "  pt.series_id AND d.run_id = pt.run_id WHERE pt.run_id = r.id), "
	    "'alerts', (SELECT coalesce(json_agg(json_build_object('id', a.id, "
	    "  'kind', a.kind, 'state', a.state, 'incident_id', a.incident_id, "
	    "  'scenario', s.scenario, 'metric', s.metric, 'change_pct', "
	    "  a.change_pct) ORDER BY a.id), '[]') FROM alerts a JOIN series s "
	    "  ON s.id = a.series_id WHERE a.run_id = r.id)) "
	    "FROM runs r JOIN jobs j ON j.id = r.job_id JOIN projects p ON "
	    "p.id = j.project_id JOIN targets t ON t.id = j.target_id JOIN "
	    "commits c ON c.id = j.commit_id LEFT JOIN workers w ON w.id = "
	    "r.worker_id WHERE r.id = $1", &p) < 0) {
		reply_db_error(r, db);
		goto out;
	}
	if (dbres_rows(res) == 0) {
		reply_error(r, 404, "not_found", "no run '%" PRId64 "'", id);
		goto out;
	}
	if ((run = json_loads(dbres_get(res, 0, 0), 0, NULL)) == NULL) {
		reply_error(r, 500, "internal", "query returned no JSON");
		goto out;
	}
	if (run_timeseries(&ts, db, id, (size_t)ts_points) < 0) {
		reply_db_error(r, db);
		goto out;
	}
	json_object_set_new(run, "timeseries", ts);
	reply_json(r, 200, run);
	run = NULL;
out:
	json_decref(run);
	dbres_free(res);
	dbpool_put(req_server(r)->pool, db);
}

/*
 * GET /api/v1/series/{id}/markers: what a trend chart marks on the series:
 * its alerts (a perf alert is a regression, an accuracy alert a drift,
 * then leak and degradation) with their incident, and the detector's
 * improvements.  Each names its commit and its value: an alert's
 * headline (after, the figure its mail quotes), else the series' value
 * there; an improvement sits on the run that confirmed it.  change_pct is
 * the signed change of the value.
 */
void
api_dash_markers(struct request *r)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int64_t id;
	struct db *db;

	if (id_param(&id, r, "series") < 0 || (db = read_begin(r)) == NULL)
		return;
	dbp_int(&p, id);
	if (db_queryp(&res, db, "SELECT 1 FROM series WHERE id = $1", &p) < 0) {
		reply_db_error(r, db);
		goto out;
	}
	if (dbres_rows(res) == 0) {
		reply_error(r, 404, "not_found", "no series '%" PRId64 "'", id);
		goto out;
	}
	reply_query_json(r, db, "SELECT json_build_object('series_id', $1::bigint, "
	    "'markers', coalesce(json_agg(m ORDER BY m.commit_id, m.kind, "
	    "m.alert_id), '[]')) FROM ("
	    "SELECT CASE a.kind WHEN 'perf' THEN 'regression' WHEN 'accuracy' "
	    "  THEN 'drift' ELSE a.kind::text END AS kind, 'alert' AS source, "
	    "  a.kind::text AS alert_kind, a.id AS alert_id, a.incident_id, "
	    "  a.state::text AS state, bc.sha AS commit, a.bad_commit_id AS "
	    "  commit_id, gc.sha AS good_commit, a.run_id, a.change_pct, "
	    "  a.p_value, a.before_value AS before, a.after_value AS after, "
	    "  coalesce(a.after_value, v.value) AS value, v.ts, a.created_at "
	    "  FROM alerts a JOIN commits bc ON bc.id = a.bad_commit_id "
	    "  LEFT JOIN commits gc ON gc.id = a.good_commit_id "
	    "  LEFT JOIN LATERAL (SELECT pt.value, pt.ts FROM points pt WHERE "
	    "  pt.series_id = a.series_id AND pt.commit_id = a.bad_commit_id "
	    "  ORDER BY pt.ts DESC LIMIT 1) v ON true WHERE a.series_id = $1 "
	    "UNION ALL "
	    "SELECT 'improvement', 'detection', NULL, NULL, NULL, NULL, c.sha, "
	    "  d.commit_id, NULL, d.run_id, CASE WHEN s.direction = 'higher' "
	    "  THEN -d.change_pct ELSE d.change_pct END, d.p_value, NULL, NULL, "
	    "  pt.value, pt.ts, d.created_at "
	    "  FROM detections d JOIN series s ON s.id = d.series_id JOIN "
	    "  commits c ON c.id = d.commit_id LEFT JOIN points pt ON "
	    "  pt.series_id = d.series_id AND pt.run_id = d.run_id "
	    "  WHERE d.series_id = $1 AND d.verdict = 'improvement') m", &p);
out:
	dbres_free(res);
	dbpool_put(req_server(r)->pool, db);
}

/* The comparison a goal names, or NULL when op is none of them. */
static const char *const goal_ops[] = { "<", "<=", ">", ">=", NULL };

static int
goal_op_valid(const char *op)
{
	size_t i;

	for (i = 0; goal_ops[i] != NULL; i++)
		if (strcmp(op, goal_ops[i]) == 0)
			return 1;
	return 0;
}

/*
 * The column of the report's points query a goal's statistic reads: the
 * point's value (the median of the samples), or the p5 or p95 of its
 * samples.  -1 for an unknown statistic.
 */
static int
goal_stat_column(const char *stat)
{
	if (stat == NULL || strcmp(stat, "median") == 0)
		return 3;
	if (strcmp(stat, "p5") == 0)
		return 7;
	if (strcmp(stat, "p95") == 0)
		return 8;
	return -1;
}

int
dash_goals_check(json_t *goals, char *err, size_t errlen)
{
	static const char *const fields[] = {
		"scenario", "metric", "op", "value", "label", "stat", NULL
	};
	const char *s = NULL, *metric = NULL;
	char path[64];
	double v;
	json_t *g;
	size_t i;

	if (!json_is_array(goals)) {
		snprintf(err, errlen, "$.settings.goals: must be an array");
		return BL_EINVAL;
	}
	if (json_array_size(goals) > GOALS_MAX) {
		snprintf(err, errlen, "$.settings.goals: at most %d goals",
		    GOALS_MAX);
		return BL_EINVAL;
	}
	json_array_foreach(goals, i, g) {
		snprintf(path, sizeof(path), "$.settings.goals[%zu]", i);
		if (!json_is_object(g)) {
			snprintf(err, errlen, "%s: must be an object", path);
			return BL_EINVAL;
		}
		if (jsonx_only(g, fields, path, err, errlen) < 0 ||
		    jsonx_string(&s, g, "scenario", 0, 64, path, err,
		    errlen) < 0 ||
		    jsonx_string(&metric, g, "metric", 1, 128, path, err,
		    errlen) < 0 ||
		    jsonx_string(&s, g, "label", 0, 128, path, err,
		    errlen) < 0 ||
		    jsonx_string(&s, g, "stat", 0, 8, path, err, errlen) < 0 ||
		    jsonx_number(&v, g, "value", 1, path, err, errlen) < 0 ||
		    jsonx_string(&s, g, "op", 1, 2, path, err, errlen) < 0)
			return BL_EINVAL;
		if (*metric == '\0') {
			snprintf(err, errlen, "%s.metric: must not be empty", path);
			return BL_EINVAL;
		}
		if (!goal_op_valid(s)) {
			snprintf(err, errlen, "%s.op: must be one of <, <=, >, >=",
			    path);
			return BL_EINVAL;
		}
		s = json_string_value(json_object_get(g, "stat"));
		if (s != NULL && goal_stat_column(s) < 0) {
			snprintf(err, errlen, "%s.stat: must be \"median\", "
			    "\"p5\" or \"p95\"", path);
			return BL_EINVAL;
		}
	}
	return 0;
}

/* 1 when value meets the goal "value op goal". */
static int
goal_met(double value, const char *op, double goal)
{
	if (strcmp(op, "<") == 0)
		return value < goal;
	if (strcmp(op, "<=") == 0)
		return value <= goal;
	if (strcmp(op, ">") == 0)
		return value > goal;
	return value >= goal;
}

/* One row of the report: the goal, the commit's value and the verdict. */
static json_t *
report_row(json_t *goal, const struct dbres *pts, int *passed, int *failed,
    int *missing)
{
	const char *scenario = json_string_value(json_object_get(goal,
	    "scenario"));
	const char *metric = json_string_value(json_object_get(goal, "metric"));
	const char *op = json_string_value(json_object_get(goal, "op"));
	const char *label = json_string_value(json_object_get(goal, "label"));
	const char *stat = json_string_value(json_object_get(goal, "stat"));
	int col = goal_stat_column(stat);
	double want = json_number_value(json_object_get(goal, "value"));
	json_t *row;
	char buf[256];
	int i, hit = -1;

	for (i = 0; i < dbres_rows(pts) && hit < 0; i++)
		if (strcmp(dbres_get(pts, i, 1), metric) == 0 &&
		    (scenario == NULL ||
		    strcmp(dbres_get(pts, i, 0), scenario) == 0))
			hit = i;
	if (label == NULL) {
		snprintf(buf, sizeof(buf), "%s%s%s %s %g", scenario ? scenario :
		    "", scenario ? "/" : "", metric, op, want);
		label = buf;
	}
	row = json_pack("{s:s,s:o,s:s,s:s,s:f,s:s}", "label", label, "scenario",
	    scenario ? json_string(scenario) : json_null(), "metric", metric,
	    "op", op, "goal", want, "stat", stat ? stat : "median");
	if (hit < 0) {
		json_object_set_new(row, "status", json_string("not measured"));
		(*missing)++;
		return row;
	}
	json_object_set_new(row, "scenario", json_string(dbres_get(pts, hit,
	    0)));
	json_object_set_new(row, "unit", json_string(dbres_get(pts, hit, 2)));
	json_object_set_new(row, "value", json_real(dbres_double(pts, hit,
	    col)));
	json_object_set_new(row, "n", json_integer(dbres_int(pts, hit, 4)));
	json_object_set_new(row, "run_id", json_integer(dbres_int(pts, hit, 5)));
	json_object_set_new(row, "series_id", json_integer(dbres_int(pts, hit,
	    6)));
	if (goal_met(dbres_double(pts, hit, col), op, want)) {
		json_object_set_new(row, "status", json_string("pass"));
		(*passed)++;
	} else {
		json_object_set_new(row, "status", json_string("fail"));
		(*failed)++;
	}
	return row;
}

/*
 * Picks the report's commit and target when the request leaves them out:
 * the commit of the project's latest run (on the target, if given), and
 * the target of that commit's latest run.  Either stays 0 when there is
 * no run.
 */
static int
report_defaults(int64_t *commit, int64_t *target, struct db *db,
    int64_t project)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	if (*commit == 0) {
		dbp_int(&p, project);
		dbp_int(&p, *target);
		if ((rc = db_queryp(&res, db, "SELECT j.commit_id FROM runs r "
		    "JOIN jobs j ON j.id = r.job_id WHERE j.project_id = $1 AND "
		    "($2 = 0 OR j.target_id = $2) ORDER BY r.id DESC LIMIT 1",
		    &p)) < 0)
			return rc;
		if (dbres_rows(res) == 1)
			*commit = dbres_int(res, 0, 0);
		dbres_free(res);
		res = NULL;
	}
	if (*target == 0 && *commit != 0) {
		p.n = 0;
		dbp_int(&p, *commit);
		if ((rc = db_queryp(&res, db, "SELECT j.target_id FROM runs r "
		    "JOIN jobs j ON j.id = r.job_id WHERE j.commit_id = $1 ORDER "
		    "BY r.id DESC LIMIT 1", &p)) < 0)
			return rc;
		if (dbres_rows(res) == 1)
			*target = dbres_int(res, 0, 0);
		dbres_free(res);
	}
	return 0;
}

/*
 * GET /api/v1/projects/{p}/report?commit=&target=: the benchmarking plan's
 * report of a commit on a target against the goals in the project's
 * settings ("goals": [{"scenario", "metric", "op", "value", "label"}]):
 * each goal with the commit's latest value and pass, fail, or "not
 * measured" when the run has no such metric (power on a machine without
 * sensors).  Without commit, the commit of the latest run; without target,
 * the target of that commit's latest run.
 */
void
api_dash_report(struct request *r)
{
	struct dbparams p = { .n = 0 };
	const char *sha = req_query(r, "commit"), *tname = req_query(r, "target");
	int64_t project, commit = 0, target = 0;
	struct dbres *res = NULL, *pts = NULL;
	json_t *settings = NULL, *goals, *rows = NULL, *body, *g, *cm = NULL;
	int passed = 0, failed = 0, missing = 0, rc;
	char err[256];
	struct db *db;
	size_t i;

	if ((db = read_begin(r)) == NULL)
		return;
	if (project_param(&project, r, db) < 0)
		goto out;
	if (tname != NULL && (rc = catalog_target_find(&target, db,
	    tname)) < 0) {
		if (rc == BL_ENOTFOUND)
			reply_error(r, 404, "not_found", "no target '%s'", tname);
		else
			reply_db_error(r, db);
		goto out;
	}
	if (sha != NULL && (rc = commit_find(&commit, db, project, sha)) < 0) {
		if (rc == BL_EINVAL)
			reply_error(r, 400, "invalid", "query parameter 'commit' "
			    "must be a commit sha (7 to 64 hex digits), got '%s'",
			    sha);
		else if (rc == BL_ENOTFOUND)
			reply_error(r, 404, "not_found", "no commit '%s' in this "
			    "project", sha);
		else if (rc == BL_ECONFLICT)
			reply_error(r, 409, "conflict", "commit prefix '%s' is "
			    "ambiguous", sha);
		else
			reply_db_error(r, db);
		goto out;
	}
	if (report_defaults(&commit, &target, db, project) < 0) {
		reply_db_error(r, db);
		goto out;
	}
	dbp_int(&p, project);
	dbp_int(&p, commit);
	dbp_int(&p, target);
	if (db_queryp(&res, db, "SELECT p.name, CASE WHEN jsonb_typeof("
	    "p.settings->'goals') = 'array' THEN p.settings->'goals' END, "
	    "(SELECT json_build_object('id', c.id, 'sha', c.sha, 'author', "
	    "c.author_name, 'message', c.message, 'committed_at', "
	    "c.committed_at) FROM commits c WHERE c.id = $2), (SELECT t.name "
	    "FROM targets t WHERE t.id = $3) FROM projects p WHERE p.id = $1",
	    &p) < 0) {
		reply_db_error(r, db);
		goto out;
	}
	goals = settings = dbres_get(res, 0, 1) ? json_loads(dbres_get(res, 0,
	    1), 0, NULL) : json_array();
	if (goals == NULL || dash_goals_check(goals, err, sizeof(err)) < 0) {
		reply_error(r, 500, "internal", "the project's goals are not "
		    "valid: %s", goals ? err : "not JSON");
		goto out;
	}
	if (dbres_get(res, 0, 2) == NULL ||
	    (cm = json_loads(dbres_get(res, 0, 2), 0, NULL)) == NULL)
		cm = json_null();
	/* The latest value of each of the commit's series on the target. */
	p.n = 0;
	dbp_int(&p, commit);
	dbp_int(&p, target);
	if (db_queryp(&pts, db, "SELECT DISTINCT ON (s.scenario, s.metric) "
	    "s.scenario, s.metric, s.unit, pt.value, pt.n, pt.run_id, s.id, "
	    "pt.lo, pt.hi FROM "
	    "points pt JOIN series s ON s.id = pt.series_id WHERE "
	    "pt.commit_id = $1 AND s.target_id = $2 ORDER BY s.scenario, "
	    "s.metric, pt.ts DESC", &p) < 0) {
		reply_db_error(r, db);
		goto out;
	}
	rows = json_array();
	json_array_foreach(goals, i, g)
		json_array_append_new(rows, report_row(g, pts, &passed, &failed,
		    &missing));
	body = json_pack("{s:s,s:O,s:o,s:i,s:i,s:i,s:i,s:o}", "project",
	    dbres_get(res, 0, 0), "commit", cm, "target",
	    dbres_get(res, 0, 3) ? json_string(dbres_get(res, 0, 3)) :
	    json_null(), "goals", (int)json_array_size(goals), "passed", passed,
	    "failed", failed, "not_measured", missing, "rows", rows);
	rows = NULL;
	reply_json(r, 200, body);
out:
	json_decref(cm);
	json_decref(rows);
	json_decref(settings);
	dbres_free(res);
	dbres_free(pts);
	dbpool_put(req_server(r)->pool, db);
}
