/*
 * Investigations of alerts.  Confirmation: before an alert is mailed, the
 * last good and the first bad commit are re-run interleaved on one worker
 * (A B A B ...) and the paired differences decide whether it stands, which
 * separates a real change from a machine that was slow for a while.
 * Bisection: when the alert's range holds more than one commit, the
 * commits in between are measured, halving the range each round, until
 * the first bad commit is known; the alerts then move to that commit.
 * Runs of these jobs stay out of the routine detector's baselines.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "stats.h"
#include "xmalloc.h"

#define RANGE_MAX	1000	/* commits a bisection walks back at most */
#define JOB_ATTEMPTS	3	/* claims of an investigation's job */

/* What an investigation row holds, as loaded. */
struct inv {
	int64_t		 id, project_id, target_id, good, bad, probe, worker;
	int64_t		 lead, step_from;
	int64_t		 leader;	/* following: the counted investigation */
	int64_t		 ref;		/* the reference of the current pairs */
	int		 counted;	/* its lead series is counted */
	int		 boundary;	/* checking a first bad commit against its parent */
	char		 led_by[256];	/* following: the leader's scenario/metric */
	char		 scenario[128], kind[16], state[16], branch[256];
	int64_t		*range;		/* range_commits */
	size_t		 m;
	int		 lo, hi, round;
	double		 change;
	json_t		*params, *steps, *settings;	/* owned */
	struct investigate_params prm;
};

static void
inv_free(struct inv *v)
{
	free(v->range);
	json_decref(v->params);
	json_decref(v->steps);
	json_decref(v->settings);
}

static int
inv_load(struct inv *v, struct db *db, int64_t id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	json_t *range;
	size_t i;
	int rc;

	memset(v, 0, sizeof(*v));
	dbp_int(&p, id);
	if ((rc = db_queryp(&res, db, "SELECT i.project_id, i.target_id, "
	    "i.good_commit_id, i.bad_commit_id, coalesce(i.probe_commit_id, 0), "
	    "coalesce(i.worker_id, 0), coalesce(i.lead_alert_id, 0), "
	    "i.step_from_job, i.scenario, i.kind, i.state, "
	    "array_to_json(i.range_commits), i.lo, i.hi, i.round, i.change, "
	    "i.params, i.steps, pr.settings, coalesce((SELECT s.branch FROM "
	    "alerts a JOIN series s ON s.id = a.series_id WHERE "
	    "a.investigation_id = i.id LIMIT 1), pr.default_branch), "
	    "coalesce(i.leader_id, 0), coalesce(i.ref_commit_id, "
	    "i.good_commit_id), i.boundary, coalesce((SELECT s.counted FROM "
	    "alerts a JOIN series s ON s.id = a.series_id WHERE a.id = "
	    "i.lead_alert_id), false), coalesce((SELECT s.scenario || '/' || "
	    "s.metric FROM investigations l JOIN alerts a ON a.id = "
	    "l.lead_alert_id JOIN series s ON s.id = a.series_id WHERE l.id = "
	    "i.leader_id), '') FROM investigations i JOIN projects pr ON pr.id "
	    "= i.project_id WHERE i.id = $1", &p)) < 0)
		return rc;
	if (dbres_rows(res) != 1) {
		dbres_free(res);
		return BL_ENOTFOUND;
	}
	v->id = id;
	v->project_id = dbres_int(res, 0, 0);
	v->target_id = dbres_int(res, 0, 1);
	v->good = dbres_int(res, 0, 2);
	v->bad = dbres_int(res, 0, 3);
	v->probe = dbres_int(res, 0, 4);
	v->worker = dbres_int(res, 0, 5);
	v->lead = dbres_int(res, 0, 6);
	v->step_from = dbres_int(res, 0, 7);
	snprintf(v->scenario, sizeof(v->scenario), "%s", dbres_get(res, 0, 8));
	snprintf(v->kind, sizeof(v->kind), "%s", dbres_get(res, 0, 9));
	snprintf(v->state, sizeof(v->state), "%s", dbres_get(res, 0, 10));
	range = json_loads(dbres_get(res, 0, 11), 0, NULL);
	v->m = json_array_size(range);
	v->range = xcalloc(v->m + 1, sizeof(*v->range));
	for (i = 0; i < v->m; i++)
		v->range[i] = json_integer_value(json_array_get(range, i));
	json_decref(range);
	v->lo = (int)dbres_int(res, 0, 12);
	v->hi = (int)dbres_int(res, 0, 13);
	v->round = (int)dbres_int(res, 0, 14);
	v->change = dbres_get(res, 0, 15) ? dbres_double(res, 0, 15) : NAN;
	v->params = json_loads(dbres_get(res, 0, 16), 0, NULL);
	v->steps = json_loads(dbres_get(res, 0, 17), 0, NULL);
	v->settings = json_loads(dbres_get(res, 0, 18), 0, NULL);
	snprintf(v->branch, sizeof(v->branch), "%s", dbres_get(res, 0, 19));
	v->leader = dbres_int(res, 0, 20);
	v->ref = dbres_int(res, 0, 21);
	v->boundary = dbres_bool(res, 0, 22);
	v->counted = dbres_bool(res, 0, 23);
	snprintf(v->led_by, sizeof(v->led_by), "%s", dbres_get(res, 0, 24));
	dbres_free(res);
	investigate_params(&v->prm, v->settings);
	return 0;
}

static int
inv_save(struct db *db, const struct inv *v, const char *reason)
{
	struct dbparams p = { .n = 0 };
	char *steps = jsonx_dump(v->steps);
	int rc;

	dbp_int(&p, v->id);
	dbp_str(&p, v->state);
	dbp_int(&p, v->lo);
	dbp_int(&p, v->hi);
	dbp_id(&p, v->probe);
	dbp_int(&p, v->round);
	dbp_int(&p, v->step_from);
	dbp_num(&p, v->change);
	dbp_str(&p, steps);
	dbp_id(&p, v->lead);
	dbp_str(&p, reason);
	dbp_id(&p, v->ref);
	dbp_str(&p, v->boundary ? "true" : "false");
	rc = db_queryp(NULL, db, "UPDATE investigations SET state = "
	    "$2::investigation_state, lo = $3, hi = $4, probe_commit_id = $5, "
	    "round = $6, step_from_job = $7, change = $8, steps = $9::jsonb, "
	    "lead_alert_id = $10, reason = coalesce($11, reason), "
	    "ref_commit_id = $12, boundary = $13::boolean, updated_at = now() WHERE "
	    "id = $1", &p);
	free(steps);
	return rc;
}

static const char *
sha_of(struct db *db, int64_t commit_id, char *buf, size_t len)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;

	snprintf(buf, len, "?");
	dbp_int(&p, commit_id);
	if (db_queryp(&res, db, "SELECT sha FROM commits WHERE id = $1",
	    &p) == 0 && dbres_rows(res) == 1)
		snprintf(buf, len, "%s", dbres_get(res, 0, 0));
	dbres_free(res);
	return buf;
}

/* Queues one job of the investigation on a commit. */
static int
queue_one(struct db *db, struct inv *v, int64_t commit_id, const char *reason,
    int64_t *first)
{
	struct job_spec js;
	json_t *scen = json_pack("[s]", v->scenario);
	int64_t id;
	int rc;

	memset(&js, 0, sizeof(js));
	js.project_id = v->project_id;
	js.commit_id = commit_id;
	js.target_id = v->target_id;
	js.branch = v->branch;
	js.scenarios = scen;
	js.params = v->params;
	js.reason = reason;
	/* A counted lead goes first: its verdict steers the timed ones. */
	js.priority = v->prm.priority + (v->counted ? 1 : 0);
	js.investigation_id = v->id;
	js.pinned_worker_id = v->worker;
	rc = queue_enqueue(&id, db, &js, JOB_ATTEMPTS);
	json_decref(scen);
	if (rc == 0 && *first == 0)
		*first = id;
	return rc;
}

/*
 * Queues n interleaved pairs of the reference and the commit under test,
 * their order alternating (A B, B A, A B, ...) from pair `start` of the
 * step on, so that drift over the step and any order effect (the second
 * run of a pair finding warm caches, a throttled core) fall on both alike.
 */
static int
queue_pairs(struct db *db, struct inv *v, int64_t ref, int64_t test, int n,
    int start, const char *reason, int64_t *first)
{
	int i, rc = 0, flip;

	for (i = 0; i < n && rc == 0; i++) {
		flip = (start + i) % 2;
		if ((rc = queue_one(db, v, flip ? test : ref, reason,
		    first)) == 0)
			rc = queue_one(db, v, flip ? ref : test, reason, first);
	}
	return rc;
}

/* The commits bisection has skipped (their jobs failed), as range indexes. */
static int
skipped(const struct inv *v, int idx)
{
	json_t *s;
	size_t i;

	json_array_foreach(v->steps, i, s)
		if (json_integer_value(json_object_get(s, "index")) == idx &&
		    json_is_string(json_object_get(s, "verdict")) &&
		    strcmp(json_string_value(json_object_get(s, "verdict")),
		    "skipped") == 0)
			return 1;
	return 0;
}

/* The next commit to measure: the one nearest the middle not skipped; 0 if none. */
static int
next_probe(const struct inv *v)
{
	int mid = (v->lo + v->hi) / 2, d, i;

	for (d = 0; d < v->hi - v->lo; d++)
		for (i = mid - d; i <= mid + d; i += d > 0 ? 2 * d : 1)
			if (i > v->lo && i < v->hi && !skipped(v, i))
				return i;
	return 0;
}

/* Whether the investigation has a job of the commit. */
static int
ran(struct db *db, const struct inv *v, int64_t commit_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int yes = 0;

	dbp_int(&p, v->id);
	dbp_int(&p, commit_id);
	if (db_queryp(&res, db, "SELECT 1 FROM jobs WHERE investigation_id = "
	    "$1 AND commit_id = $2 LIMIT 1", &p) == 0)
		yes = dbres_rows(res) > 0;
	dbres_free(res);
	return yes;
}

/* Begins the next bisection step; returns 0 with *queued = 0 when none is left. */
static int
bisect_step_begin(struct db *db, struct inv *v, int *queued)
{
	int idx = next_probe(v), rc;
	int64_t first = 0;

	*queued = 0;
	if (idx == 0)
		return 0;
	v->probe = v->range[idx - 1];
	v->round++;
	/*
	 * A count is exact: one run of the probe, against good's count (run
	 * once here first when no confirmation measured it).
	 */
	if (strcmp(v->kind, "perf") == 0 && !v->counted)
		rc = queue_pairs(db, v, v->good, v->probe, v->prm.step_pairs,
		    0, "bisect", &first);
	else {
		rc = 0;
		if (strcmp(v->kind, "perf") == 0 && !ran(db, v, v->good))
			rc = queue_one(db, v, v->good, "bisect", &first);
		if (rc == 0)
			rc = queue_one(db, v, v->probe, "bisect", &first);
	}
	if (rc < 0)
		return rc;
	v->step_from = first;
	*queued = 1;
	log_info("investigation %" PRId64 ": round %d measures commit %d of %zu",
	    v->id, v->round, idx, v->m);
	return 0;
}

/* Sets a JSON field of the details of the investigation's alerts under way. */
static int
alerts_detail(struct db *db, const struct inv *v, const char *key, json_t *val)
{
	struct dbparams p = { .n = 0 };
	char *text = jsonx_dump(val);
	int rc;

	dbp_int(&p, v->id);
	dbp_str(&p, key);
	dbp_str(&p, text);
	rc = db_queryp(NULL, db, "UPDATE alerts SET details = details || "
	    "jsonb_build_object($2::text, $3::jsonb), updated_at = now() WHERE "
	    "investigation_id = $1 AND investigating", &p);
	free(text);
	return rc;
}

static json_t *
bisection_json(struct db *db, const struct inv *v, const char *state,
    int64_t first_bad)
{
	char g[72], b[72], f[72];

	json_t *out = json_pack("{s:s,s:s,s:s,s:o,s:i,s:O,s:I}", "state", state,
	    "good", sha_of(db, v->good, g, sizeof(g)), "bad",
	    sha_of(db, v->bad, b, sizeof(b)), "first_bad", first_bad > 0 ?
	    json_string(sha_of(db, first_bad, f, sizeof(f))) : json_null(),
	    "rounds", v->round, "steps", v->steps, "investigation_id",
	    (json_int_t)v->id);

	if (v->leader > 0) {
		json_object_set_new(out, "leader", json_integer(v->leader));
		if (v->led_by[0] != '\0')
			json_object_set_new(out, "led_by", json_string(v->led_by));
	}
	return out;
}

/*
 * The commits after good up to bad along first parents, oldest first, as
 * the forge's pushes recorded them; just {bad} when the chain does not
 * reach good (commits never recorded).
 */
static int
commit_range(int64_t **out, size_t *m, struct db *db, int64_t project,
    int64_t good, int64_t bad)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int n, i, rc;

	dbp_int(&p, project);
	dbp_int(&p, good);
	dbp_int(&p, bad);
	dbp_int(&p, RANGE_MAX);
	if ((rc = db_queryp(&res, db, "WITH RECURSIVE walk(id, parent, depth) "
	    "AS (SELECT id, parents[1], 0 FROM commits WHERE id = $3 UNION ALL "
	    "SELECT c.id, c.parents[1], w.depth + 1 FROM walk w JOIN commits c "
	    "ON c.project_id = $1 AND c.sha = w.parent WHERE w.id <> $2 AND "
	    "w.depth < $4) SELECT id FROM walk ORDER BY depth DESC", &p)) < 0)
		return rc;
	n = dbres_rows(res);
	*out = xcalloc((size_t)n + 1, sizeof(**out));
	*m = 0;
	if (n >= 2 && dbres_int(res, 0, 0) == good) {
		for (i = 1; i < n; i++)
			(*out)[(*m)++] = dbres_int(res, i, 0);
	} else
		(*out)[(*m)++] = bad;
	dbres_free(res);
	return 0;
}

/*
 * The class of a perf metric: metrics of one class move together, those
 * of different classes need not (a leak raises peak RSS, not tokens/s), so
 * each class is bisected on its own.
 */
static const char *
metric_class(const char *kind, const char *metric)
{
	if (strcmp(kind, "perf") != 0)
		return "";
	if (strstr(metric, "bytes") != NULL || strstr(metric, "rss") != NULL)
		return "memory";
	if (strstr(metric, "power") != NULL || strstr(metric, "energy") != NULL ||
	    strstr(metric, "temp") != NULL || strstr(metric, "joule") != NULL)
		return "power";
	return "speed";
}

/*
 * The counted investigation that leads a timed one of the same class and
 * range: the same target, the same last good and first bad commit.  Its
 * exact verdict finds the first bad commit; the timed alerts then only
 * check that commit against its parent on their own pairs.  0 if none.
 */
static int
find_leader(int64_t *out, struct db *db, const struct inv *v,
    const char *class)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	*out = 0;
	dbp_int(&p, v->target_id);
	dbp_str(&p, class);
	dbp_int(&p, v->good);
	dbp_int(&p, v->bad);
	if ((rc = db_queryp(&res, db, "SELECT i.id FROM investigations i JOIN "
	    "alerts a ON a.id = i.lead_alert_id JOIN series s ON s.id = "
	    "a.series_id WHERE i.target_id = $1 AND i.kind = 'perf' AND "
	    "i.metric_class = $2 AND i.good_commit_id = $3 AND "
	    "i.bad_commit_id = $4 AND i.state IN ('confirming', 'bisecting') "
	    "AND s.counted AND i.leader_id IS NULL ORDER BY i.id LIMIT 1",
	    &p)) < 0)
		return rc;
	if (dbres_rows(res) == 1)
		*out = dbres_int(res, 0, 0);
	dbres_free(res);
	return 0;
}

int
investigate_alert(struct db *db, int64_t alert_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	struct inv v;
	json_t *range = NULL, *pending = NULL;
	char *rtext = NULL, *ptext = NULL, *dtext = NULL, class[16];
	int64_t first = 0, *r = NULL;
	size_t m = 0, i;
	int rc, queued, existing;

	memset(&v, 0, sizeof(v));
	dbp_int(&p, alert_id);
	if ((rc = db_queryp(&res, db, "SELECT s.project_id, s.target_id, "
	    "s.scenario, a.kind, coalesce(a.good_commit_id, 0), "
	    "a.bad_commit_id, coalesce(j.params, '{}'), pr.settings, s.branch, "
	    "s.metric, s.counted, a.change_pct FROM alerts a JOIN series s ON "
	    "s.id = a.series_id JOIN projects pr ON pr.id = s.project_id LEFT "
	    "JOIN runs ru ON ru.id = a.run_id LEFT JOIN jobs j ON j.id = "
	    "ru.job_id WHERE a.id = $1", &p)) < 0)
		return rc;
	if (dbres_rows(res) != 1 || dbres_int(res, 0, 4) == 0) {
		dbres_free(res);	/* nothing good to compare with */
		return 0;
	}
	v.project_id = dbres_int(res, 0, 0);
	v.target_id = dbres_int(res, 0, 1);
	snprintf(v.scenario, sizeof(v.scenario), "%s", dbres_get(res, 0, 2));
	snprintf(v.kind, sizeof(v.kind), "%s", dbres_get(res, 0, 3));
	v.good = dbres_int(res, 0, 4);
	v.bad = dbres_int(res, 0, 5);
	v.params = json_loads(dbres_get(res, 0, 6), 0, NULL);
	v.settings = json_loads(dbres_get(res, 0, 7), 0, NULL);
	snprintf(v.branch, sizeof(v.branch), "%s", dbres_get(res, 0, 8));
	snprintf(class, sizeof(class), "%s", metric_class(v.kind,
	    dbres_get(res, 0, 9)));
	v.counted = dbres_bool(res, 0, 10);
	/* Without confirmation, bisection steers by the change as detected. */
	v.change = dbres_get(res, 0, 11) ? dbres_double(res, 0, 11) / 100 : NAN;
	dbres_free(res);
	res = NULL;
	v.lead = alert_id;
	investigate_params(&v.prm, v.settings);
	v.steps = json_array();
	if ((rc = commit_range(&r, &m, db, v.project_id, v.good, v.bad)) < 0)
		goto out;
	v.range = r;
	v.m = m;
	v.hi = (int)m;
	if (strcmp(v.kind, "perf") == 0 && !v.counted &&
	    (rc = find_leader(&v.leader, db, &v, class)) < 0)
		goto out;
	if (v.leader > 0)
		snprintf(v.state, sizeof(v.state), "following");
	else if (strcmp(v.kind, "perf") == 0 && v.prm.confirm)
		snprintf(v.state, sizeof(v.state), "confirming");
	else if (v.prm.bisect && m > 1)
		snprintf(v.state, sizeof(v.state), "bisecting");
	else
		goto out;	/* nothing to confirm, nothing to bisect */

	range = json_array();
	for (i = 0; i < m; i++)
		json_array_append_new(range, json_integer(r[i]));
	rtext = jsonx_dump(range);
	p.n = 0;
	dbp_int(&p, v.project_id);
	dbp_int(&p, v.target_id);
	dbp_str(&p, v.scenario);
	dbp_str(&p, v.kind);
	dbp_str(&p, v.state);
	dbp_int(&p, v.good);
	dbp_int(&p, v.bad);
	dbp_str(&p, rtext);
	dbp_int(&p, v.hi);
	dbp_str(&p, (ptext = jsonx_dump(v.params)));
	dbp_int(&p, alert_id);
	dbp_str(&p, class);
	dbp_id(&p, v.leader);
	/* The alerts of one run share the investigation of their range. */
	if ((rc = db_queryp(&res, db, "WITH ins AS (INSERT INTO investigations "
	    "(project_id, target_id, scenario, kind, state, good_commit_id, "
	    "bad_commit_id, range_commits, hi, params, lead_alert_id, "
	    "metric_class, leader_id, ref_commit_id) VALUES ($1, $2, $3, "
	    "$4::alert_kind, $5::investigation_state, $6, $7, ARRAY(SELECT "
	    "json_array_elements_text($8::json)::bigint), $9, $10::jsonb, $11, "
	    "$12, $13, $6) ON CONFLICT DO NOTHING RETURNING id, true) "
	    "SELECT * FROM ins UNION ALL SELECT id, false FROM investigations "
	    "WHERE target_id = $2 AND scenario = $3 AND kind = $4::alert_kind "
	    "AND metric_class = $12 AND good_commit_id = $6 AND "
	    "bad_commit_id = $7 AND state IN "
	    "('confirming', 'bisecting', 'following') AND NOT EXISTS "
	    "(SELECT 1 FROM ins)", &p)) < 0)
		goto out;
	if (dbres_rows(res) != 1) {
		rc = 0;		/* one of that range ended already */
		goto out;
	}
	v.id = dbres_int(res, 0, 0);
	existing = !dbres_bool(res, 0, 1);
	p.n = 0;
	dbp_int(&p, alert_id);
	dbp_int(&p, v.id);
	pending = json_pack("{s:{s:s}}", "confirmation", "state", "pending");
	if (v.leader > 0) {
		json_decref(pending);
		pending = json_pack("{s:{s:s,s:I}}", "bisection", "state",
		    "following", "leader", (json_int_t)v.leader);
	} else if (strcmp(v.state, "bisecting") == 0) {
		json_decref(pending);
		pending = json_pack("{s:o}", "bisection", bisection_json(db, &v,
		    "running", 0));
	}
	dbp_str(&p, (dtext = jsonx_dump(pending)));
	if ((rc = db_queryp(NULL, db, "UPDATE alerts SET investigation_id = $2, "
	    "investigating = true, details = details || $3::jsonb WHERE id = $1",
	    &p)) < 0 || existing)
		goto out;
	v.ref = v.good;
	if (v.leader > 0)
		rc = 0;		/* it waits for its leader's first bad commit */
	else if (strcmp(v.state, "confirming") == 0) {
		rc = queue_pairs(db, &v, v.good, v.bad, v.counted ? 1 :
		    v.prm.confirm_pairs, 0, "confirm", &first);
		v.step_from = first;
	} else
		rc = bisect_step_begin(db, &v, &queued);
	if (rc == 0)
		rc = inv_save(db, &v, NULL);
	if (rc == 0)
		log_info("investigation %" PRId64 " of alert %" PRId64 ": %s "
		    "over %zu commit(s)", v.id, alert_id, v.state, m);
out:
	dbres_free(res);
	json_decref(range);
	json_decref(pending);
	free(rtext);
	free(ptext);
	free(dtext);
	inv_free(&v);
	return rc;
}

/* An alert under investigation. */
struct inv_alert {
	int64_t	id;
	int64_t	series_id;
	int	higher;
	double	threshold;
};

/* The investigation's alerts still under way; with closed, those users closed too. */
static int
load_alerts(struct inv_alert **out, size_t *n, struct db *db,
    const struct inv *v, int closed)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	size_t i;
	int rc;

	dbp_int(&p, v->id);
	dbp_int(&p, closed);
	if ((rc = db_queryp(&res, db, "SELECT a.id, a.series_id, s.direction = "
	    "'higher', s.metric FROM alerts a JOIN series s ON s.id = "
	    "a.series_id WHERE a.investigation_id = $1 AND a.investigating AND "
	    "(a.state IN ('open', 'acknowledged') OR ($2 = 1 AND a.state = "
	    "'resolved')) ORDER BY a.id", &p)) < 0)
		return rc;
	*n = (size_t)dbres_rows(res);
	*out = xcalloc(*n + 1, sizeof(**out));
	for (i = 0; i < *n; i++) {
		(*out)[i].id = dbres_int(res, (int)i, 0);
		(*out)[i].series_id = dbres_int(res, (int)i, 1);
		(*out)[i].higher = dbres_bool(res, (int)i, 2);
		(*out)[i].threshold = detect_threshold(v->settings,
		    dbres_get(res, (int)i, 3));
	}
	dbres_free(res);
	return 0;
}

/* Investigations under way: their jobs run, or they wait for a leader. */
#define ACTIVE	"'confirming', 'bisecting', 'following'"

/*
 * A series' values in the current step's jobs, paired as they were queued:
 * two jobs in a row, one of the reference and one of the commit under
 * test, in either order (queue_pairs() alternates it).  A pair with a
 * failed job is left out; why gets the last failure.
 */
static int
step_values(double **ref, double **test, size_t *n, struct db *db,
    const struct inv *v, int64_t series_id, int64_t ref_id, int64_t test_id,
    char *why, size_t whylen)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int64_t c0, c1;
	int i, r, rows, rc;

	dbp_int(&p, v->id);
	dbp_int(&p, v->step_from);
	dbp_int(&p, series_id);
	if ((rc = db_queryp(&res, db, "SELECT j.commit_id, j.fail_reason, "
	    "(SELECT pt.value FROM runs r JOIN points pt ON pt.run_id = r.id AND "
	    "pt.series_id = $3 WHERE r.job_id = j.id ORDER BY r.attempt DESC "
	    "LIMIT 1) FROM jobs j WHERE j.investigation_id = $1 AND j.id >= $2 "
	    "ORDER BY j.id", &p)) < 0)
		return rc;
	rows = dbres_rows(res);
	*ref = xcalloc((size_t)rows + 1, sizeof(**ref));
	*test = xcalloc((size_t)rows + 1, sizeof(**test));
	*n = 0;
	for (i = 0; i < rows; i++)
		if (dbres_get(res, i, 1) != NULL)
			snprintf(why, whylen, "%s", dbres_get(res, i, 1));
	for (i = 0; i + 1 < rows; i++) {
		c0 = dbres_int(res, i, 0);
		c1 = dbres_int(res, i + 1, 0);
		if (!(c0 == ref_id && c1 == test_id) &&
		    !(c0 == test_id && c1 == ref_id))
			continue;
		r = c0 == ref_id ? i : i + 1;
		if (dbres_get(res, i, 2) != NULL &&
		    dbres_get(res, i + 1, 2) != NULL) {
			(*ref)[*n] = dbres_double(res, r, 2);
			(*test)[(*n)++] = dbres_double(res, r == i ? i + 1 : i, 2);
		}
		i++;
	}
	dbres_free(res);
	return 0;
}

/*
 * A counted series' value at a commit, from the investigation's latest run
 * of it (a count is the same in every run).  BL_ENOTFOUND if none ran.
 */
static int
counted_value(double *out, struct db *db, const struct inv *v,
    int64_t series_id, int64_t commit_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	dbp_int(&p, v->id);
	dbp_int(&p, series_id);
	dbp_int(&p, commit_id);
	if ((rc = db_queryp(&res, db, "SELECT pt.value FROM jobs j JOIN runs r "
	    "ON r.job_id = j.id JOIN points pt ON pt.run_id = r.id AND "
	    "pt.series_id = $2 WHERE j.investigation_id = $1 AND j.commit_id = "
	    "$3 ORDER BY r.id DESC LIMIT 1", &p)) < 0)
		return rc;
	rc = dbres_rows(res) == 1 ? 0 : BL_ENOTFOUND;
	if (rc == 0)
		*out = dbres_double(res, 0, 0);
	dbres_free(res);
	return rc;
}

/*
 * Ends the investigation's hold on its alerts: they may be mailed now,
 * unless timed investigations it leads are still checking its first bad
 * commit; then the mail waits for their verdict, so that it carries it.
 */
static int
alerts_release(struct db *db, const struct inv *v)
{
	struct dbparams p = { .n = 0 };

	dbp_int(&p, v->id);
	return db_queryp(NULL, db, "UPDATE alerts SET investigating = (state "
	    "IN ('open', 'acknowledged') AND EXISTS (SELECT 1 FROM "
	    "investigations f WHERE f.leader_id = $1 AND f.state IN (" ACTIVE
	    "))) WHERE investigation_id = $1 AND (investigating OR state IN "
	    "('open', 'acknowledged'))", &p);
}

/* A follower has ended: its leader's alerts go once none is left. */
static int
leader_release(struct db *db, const struct inv *v)
{
	struct dbparams p = { .n = 0 };

	if (v->leader == 0)
		return 0;
	dbp_int(&p, v->leader);
	return db_queryp(NULL, db, "UPDATE alerts SET investigating = false "
	    "WHERE investigation_id = $1 AND investigating AND NOT EXISTS "
	    "(SELECT 1 FROM investigations f WHERE f.leader_id = $1 AND "
	    "f.state IN (" ACTIVE "))", &p);
}

/* Pairs of the current step so far: its jobs, two by two. */
static int
step_jobs(struct db *db, const struct inv *v)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int n = 0;

	dbp_int(&p, v->id);
	dbp_int(&p, v->step_from);
	if (db_queryp(&res, db, "SELECT count(*) FROM jobs WHERE "
	    "investigation_id = $1 AND id >= $2", &p) == 0)
		n = (int)dbres_int(res, 0, 0);
	dbres_free(res);
	return n;
}

/* The verdict on the pairs of the current step as JSON, for an alert's details. */
static json_t *
pairs_json(struct db *db, const struct inv *v, const struct confirm_verdict *cv,
    const char *state)
{
	char g[72];
	json_t *c;

	c = json_pack("{s:s,s:i,s:f,s:f,s:s}", "state", state, "pairs",
	    (int)cv->pairs, "change_pct", isfinite(cv->change) ? cv->change *
	    100 : 0, "p_value", cv->p, "reference", sha_of(db, v->ref, g,
	    sizeof(g)));
	if (v->counted)
		json_object_set_new(c, "counted", json_true());
	if (v->boundary) {
		json_object_set_new(c, "boundary", json_true());
		json_object_set_new(c, "commit", json_string(sha_of(db,
		    v->probe, g, sizeof(g))));
	}
	return c;
}

/*
 * A follower's check of its leader's first bad commit C against the last
 * good commit before it, on its own pairs: an alert whose change stands
 * there moves to C with those figures as its headline; one that does not
 * is undecided over its range, and says so, blaming nobody.  Either way it
 * joins the incident of C, whose mail then carries its verdict.
 */
static int
boundary_end(struct db *db, struct inv *v, const struct inv_alert *al,
    const struct confirm_verdict *cv, size_t n)
{
	char g[72], b[72], c[72], *note;
	json_t *conf, *bis;
	size_t i;
	int rc = 0, stood = 0;

	for (i = 0; i < n && rc == 0; i++) {
		conf = pairs_json(db, v, &cv[i], cv[i].stands ? "confirmed" :
		    "undecided");
		if ((rc = alert_detail(db, al[i].id, "confirmation", conf)) < 0) {
			json_decref(conf);
			break;
		}
		if (cv[i].stands) {
			stood++;
			bis = bisection_json(db, v, "done", v->probe);
			json_object_set_new(bis, "boundary", conf);
			if ((rc = alert_headline(db, al[i].id, cv[i].before,
			    cv[i].after, cv[i].change, cv[i].p)) == 0)
				rc = alert_move(db, al[i].id, v->ref, v->probe,
				    "bisection", bis);
		} else {
			note = xasprintf("between %.12s and %.12s (%zu "
			    "commit%s): not separable at this target's noise; "
			    "%.12s against %.12s changed it %+.1f%% (p %.2g, %d "
			    "pairs)", sha_of(db, v->good, g, sizeof(g)),
			    sha_of(db, v->bad, b, sizeof(b)), v->m, v->m == 1 ?
			    "" : "s", sha_of(db, v->probe, c, sizeof(c)),
			    sha_of(db, v->ref, g, sizeof(g)), isfinite(cv[i].change) ?
			    cv[i].change * 100 : 0, cv[i].p, (int)cv[i].pairs);
			bis = bisection_json(db, v, "undecided", 0);
			json_object_set_new(bis, "boundary", conf);
			json_object_set_new(bis, "note", json_string(note));
			free(note);
			/* A follower's verdict belongs with its leader's commit. */
			rc = alert_undecided(db, al[i].id, v->leader > 0 ?
			    v->probe : 0, bis);
		}
		json_decref(bis);
	}
	if (rc < 0)
		return rc;
	snprintf(v->state, sizeof(v->state), stood ? "done" : "undecided");
	if ((rc = inv_save(db, v, NULL)) < 0)
		return rc;
	return leader_release(db, v);
}

static int
confirm_end(struct db *db, struct inv *v)
{
	struct confirm_verdict *cv = NULL;
	struct inv_alert *al = NULL;
	double *ref = NULL, *test = NULL, best = -INFINITY;
	char why[512] = "";
	int64_t first = 0, tested = v->boundary ? v->probe : v->bad;
	size_t n = 0, k, i;
	int rc, more = 0, measured = 0, stood = 0, have, add, r, budget;
	json_t *c;

	if ((rc = load_alerts(&al, &n, db, v, 0)) < 0)
		return rc;
	cv = xcalloc(n + 1, sizeof(*cv));
	for (i = 0; i < n && rc == 0; i++) {
		if ((rc = step_values(&ref, &test, &k, db, v, al[i].series_id,
		    v->ref, tested, why, sizeof(why))) < 0)
			break;
		if (v->counted)
			r = investigate_confirm_counted(&cv[i], ref, test, k,
			    al[i].higher, al[i].threshold);
		else if (v->boundary)
			r = investigate_boundary(&cv[i], ref, test, k,
			    al[i].higher, v->leader > 0 ? al[i].threshold :
			    v->change, &v->prm);
		else
			r = investigate_confirm(&cv[i], ref, test, k,
			    al[i].higher, al[i].threshold, &v->prm);
		if (r == 0) {
			measured = 1;
			more |= cv[i].more;
		}
		free(ref);
		free(test);
		ref = test = NULL;
	}
	if (rc < 0)
		goto out;
	have = step_jobs(db, v) / 2;
	budget = v->boundary ? v->prm.boundary_max_pairs :
	    v->prm.confirm_max_pairs;
	if (more && have < budget) {
		add = budget - have < 2 ? budget - have : 2;
		if ((rc = queue_pairs(db, v, v->ref, tested, add, have,
		    "confirm", &first)) == 0)
			rc = inv_save(db, v, NULL);
		log_info("investigation %" PRId64 ": undecided after %d pairs, "
		    "%d more", v->id, have, add);
		goto out;
	}
	if (n == 0 || !measured) {
		snprintf(v->state, sizeof(v->state), "failed");
		c = json_pack("{s:s,s:s}", "state", "failed", "reason", n == 0 ?
		    "its alerts were closed" : why[0] ? why : "no pair of runs "
		    "completed");
		if ((rc = alerts_detail(db, v, "confirmation", c)) == 0 &&
		    (rc = alerts_release(db, v)) == 0 &&
		    (rc = inv_save(db, v, json_string_value(json_object_get(c,
		    "reason")))) == 0)
			rc = leader_release(db, v);
		json_decref(c);
		goto out;
	}
	if (v->boundary) {
		rc = boundary_end(db, v, al, cv, n);
		goto out;
	}
	for (i = 0; i < n && rc == 0; i++) {
		c = pairs_json(db, v, &cv[i], cv[i].stands ? "confirmed" :
		    "overturned");
		if (cv[i].stands) {
			rc = alert_detail(db, al[i].id, "confirmation", c);
			stood++;
			if (cv[i].change > best) {
				best = cv[i].change;
				v->lead = al[i].id;
			}
		} else
			rc = alert_overturn(db, al[i].id, c);
		json_decref(c);
	}
	if (rc < 0)
		goto out;
	log_info("investigation %" PRId64 ": %d of %zu alert(s) confirmed", v->id,
	    stood, n);
	if (stood == 0) {
		snprintf(v->state, sizeof(v->state), "overturned");
		if ((rc = inv_save(db, v, "the interleaved re-runs did not "
		    "confirm it")) == 0)
			rc = leader_release(db, v);
		goto out;
	}
	v->change = best;
	if (v->prm.bisect && v->m > 1) {
		snprintf(v->state, sizeof(v->state), "bisecting");
		if ((rc = bisect_step_begin(db, v, &have)) < 0)
			goto out;
		c = bisection_json(db, v, "running", 0);
		rc = alerts_detail(db, v, "bisection", c);
		json_decref(c);
	} else {
		snprintf(v->state, sizeof(v->state), "done");
		if ((rc = inv_save(db, v, NULL)) == 0)
			rc = alerts_release(db, v);
		if (rc == 0)
			rc = leader_release(db, v);
		goto out;
	}
	if (rc == 0)
		rc = inv_save(db, v, NULL);
out:
	free(ref);
	free(test);
	free(cv);
	free(al);
	return rc;
}

/* The probe's index in the range, 1-based; 0 if it is not there. */
static int
probe_index(const struct inv *v)
{
	size_t i;

	for (i = 0; i < v->m; i++)
		if (v->range[i] == v->probe)
			return (int)i + 1;
	return 0;
}

/* Judges the probe of a kind decided within one run (leak, accuracy, degradation). */
static int
condition_step(struct db *db, const struct inv *v, int64_t series_id,
    struct step_verdict *sv)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	double value;
	int rc;

	memset(sv, 0, sizeof(*sv));
	sv->change = sv->p = NAN;
	dbp_int(&p, v->id);
	dbp_int(&p, v->step_from);
	if ((rc = db_queryp(&res, db, "SELECT r.id FROM jobs j JOIN runs r ON "
	    "r.job_id = j.id WHERE j.investigation_id = $1 AND j.id >= $2 AND "
	    "j.state = 'done' ORDER BY r.id DESC LIMIT 1", &p)) < 0)
		return rc;
	if (dbres_rows(res) == 0) {
		dbres_free(res);
		return BL_ENOTFOUND;
	}
	rc = detect_condition(db, dbres_int(res, 0, 0), series_id, v->kind,
	    v->good, &value);
	dbres_free(res);
	if (rc < 0)
		return rc;
	sv->pairs = 1;
	sv->change = value;
	sv->verdict = rc == 1 ? STEP_BAD : STEP_GOOD;
	return 0;
}

/* Judges a counted probe: its count against good's, exact. */
static int
counted_step(struct db *db, const struct inv *v, int64_t series_id, int higher,
    struct step_verdict *sv)
{
	double ref, probe;
	int rc;

	memset(sv, 0, sizeof(*sv));
	if ((rc = counted_value(&ref, db, v, series_id, v->good)) < 0 ||
	    (rc = counted_value(&probe, db, v, series_id, v->probe)) < 0)
		return rc;
	return investigate_step_counted(sv, ref, probe, higher, v->change) < 0 ?
	    BL_ENOTFOUND : 0;
}

/*
 * Moves the investigation's alerts to the first bad commit bisection found.
 * A counted alert's headline becomes that commit's count against the last
 * good one's: the one comparison its change is then quoted from.
 */
static int
alerts_move(struct db *db, const struct inv *v, int64_t good, int64_t bad,
    json_t *bisection)
{
	struct inv_alert *al = NULL;
	double before, after, d;
	size_t n = 0, i;
	int rc;

	if ((rc = load_alerts(&al, &n, db, v, 1)) < 0)
		return rc;
	for (i = 0; i < n && rc == 0; i++) {
		if (v->counted && counted_value(&before, db, v, al[i].series_id,
		    good) == 0 && counted_value(&after, db, v, al[i].series_id,
		    bad) == 0 && before > 0 && after > 0) {
			d = log(after / before) * (al[i].higher ? -1 : 1);
			rc = alert_headline(db, al[i].id, before, after,
			    expm1(d), NAN);
		}
		if (rc == 0)
			rc = alert_move(db, al[i].id, good, bad, "bisection",
			    bisection);
	}
	free(al);
	return rc < 0 ? rc : alerts_release(db, v);
}

/*
 * Ends a bisection that cannot place the change on a commit: a step or the
 * final check stayed undecided within its pairs.  The alerts keep their
 * range, say why, and blame nobody; they may be mailed as such.
 */
static int
bisect_undecided(struct db *db, struct inv *v, const char *why)
{
	struct inv_alert *al = NULL;
	char g[72], b[72], *note;
	size_t n = 0, i;
	json_t *bis;
	int rc;

	note = xasprintf("between %.12s and %.12s (%zu commit%s): not "
	    "separable at this target's noise; %s", sha_of(db, v->good, g,
	    sizeof(g)), sha_of(db, v->bad, b, sizeof(b)), v->m, v->m == 1 ? "" :
	    "s", why);
	bis = bisection_json(db, v, "undecided", 0);
	json_object_set_new(bis, "note", json_string(note));
	if ((rc = load_alerts(&al, &n, db, v, 1)) == 0)
		for (i = 0; i < n && rc == 0; i++)
			rc = alert_undecided(db, al[i].id, 0, bis);
	json_decref(bis);
	free(al);
	v->probe = 0;
	snprintf(v->state, sizeof(v->state), "undecided");
	if (rc == 0)
		rc = inv_save(db, v, note);
	if (rc == 0)
		rc = leader_release(db, v);
	log_info("investigation %" PRId64 ": %s", v->id, note);
	free(note);
	return rc;
}

/*
 * Narrowed down to commit C, after the last good commit L: before C is
 * blamed, C against L must stand on pairs of its own (a timed metric), or
 * C's count must be at least halfway to the bad level from L's (counted).
 */
static int
boundary_begin(struct db *db, struct inv *v)
{
	int64_t first = 0, series = 0;
	struct inv_alert *al = NULL;
	double lv, cv, d = 0;
	char why[256];
	size_t n = 0;
	json_t *b;
	int rc;

	v->ref = v->lo >= 1 ? v->range[v->lo - 1] : v->good;
	v->probe = v->range[v->hi - 1];
	if (strcmp(v->kind, "perf") == 0 && v->counted) {
		if ((rc = load_alerts(&al, &n, db, v, 1)) < 0)
			return rc;
		series = n > 0 ? al[0].series_id : 0;
		for (size_t i = 0; i < n; i++)
			if (al[i].id == v->lead)
				series = al[i].series_id;
		if (counted_value(&lv, db, v, series, v->ref) == 0 &&
		    counted_value(&cv, db, v, series, v->probe) == 0 &&
		    lv > 0 && cv > 0) {
			d = log(cv / lv);
			for (size_t i = 0; i < n; i++)
				if (al[i].series_id == series && al[i].higher)
					d = -d;
		}
		free(al);
		if (d < log1p(v->change) / 2) {
			snprintf(why, sizeof(why), "the count moved %+.1f%% at "
			    "its first bad commit: the change is spread over "
			    "several commits", expm1(d) * 100);
			return bisect_undecided(db, v, why);
		}
		return 0;
	}
	if (strcmp(v->kind, "perf") != 0)
		return 0;	/* decided within one run: the step was the check */
	v->boundary = 1;
	snprintf(v->state, sizeof(v->state), "confirming");
	if ((rc = queue_pairs(db, v, v->ref, v->probe, v->prm.boundary_pairs, 0,
	    "confirm", &first)) < 0)
		return rc;
	v->step_from = first;
	b = bisection_json(db, v, "checking", v->probe);
	rc = alerts_detail(db, v, "bisection", b);
	json_decref(b);
	return rc < 0 ? rc : inv_save(db, v, NULL);
}

static int
bisect_end(struct db *db, struct inv *v)
{
	struct step_verdict sv;
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	double *ref = NULL, *test = NULL;
	char why[512] = "", sha[72];
	int64_t series = 0, first = 0, good;
	int higher = 0, idx = probe_index(v), rc, queued;
	size_t k = 0;
	json_t *step, *b;

	dbp_int(&p, v->lead);
	if ((rc = db_queryp(&res, db, "SELECT a.series_id, s.direction = "
	    "'higher' FROM alerts a JOIN series s ON s.id = a.series_id WHERE "
	    "a.id = $1", &p)) < 0)
		return rc;
	if (dbres_rows(res) == 1) {
		series = dbres_int(res, 0, 0);
		higher = dbres_bool(res, 0, 1);
	}
	dbres_free(res);
	if (strcmp(v->kind, "perf") == 0 && v->counted)
		rc = counted_step(db, v, series, higher, &sv);
	else if (strcmp(v->kind, "perf") == 0) {
		if ((rc = step_values(&ref, &test, &k, db, v, series, v->good,
		    v->probe, why, sizeof(why))) < 0)
			return rc;
		rc = investigate_step(&sv, ref, test, k, higher, v->change,
		    &v->prm);
		free(ref);
		free(test);
		if (rc == 0 && sv.verdict == STEP_UNDECIDED && sv.more) {
			if ((rc = queue_pairs(db, v, v->good, v->probe, 2,
			    step_jobs(db, v) / 2, "bisect", &first)) == 0)
				rc = inv_save(db, v, NULL);
			return rc;
		}
	} else
		rc = condition_step(db, v, series, &sv);
	if (rc < 0 && rc != BL_ENOTFOUND)
		return rc;
	step = json_pack("{s:i,s:i,s:s,s:s,s:i}", "round", v->round, "index",
	    idx, "commit", sha_of(db, v->probe, sha, sizeof(sha)), "verdict",
	    rc == BL_ENOTFOUND ? "skipped" : sv.verdict == STEP_BAD ? "bad" :
	    sv.verdict == STEP_GOOD ? "good" : "undecided", "runs",
	    rc == BL_ENOTFOUND ? 0 : (int)sv.pairs);
	if (rc == BL_ENOTFOUND)
		json_object_set_new(step, "reason", json_string(why[0] ? why :
		    "its jobs failed"));
	else if (strcmp(v->kind, "perf") == 0) {
		json_object_set_new(step, "change_pct", json_real(sv.change * 100));
		json_object_set_new(step, "p_value", json_real(sv.p));
		if (v->counted)
			json_object_set_new(step, "counted", json_true());
	} else
		json_object_set_new(step, "value", json_real(sv.change));
	json_array_append_new(v->steps, step);
	if (rc == 0 && sv.verdict == STEP_UNDECIDED) {
		snprintf(why, sizeof(why), "commit %.12s stayed between the two "
		    "levels over %zu pairs (%+.1f%% against %.12s)", sha,
		    sv.pairs, sv.change * 100, sha_of(db, v->good, sha,
		    sizeof(sha)));
		return bisect_undecided(db, v, why);
	}
	if (rc == 0 && sv.verdict == STEP_BAD)
		v->hi = idx;
	else if (rc == 0)
		v->lo = idx;
	if ((rc = bisect_step_begin(db, v, &queued)) < 0)
		return rc;
	if (queued) {
		b = bisection_json(db, v, "running", 0);
		rc = alerts_detail(db, v, "bisection", b);
		json_decref(b);
		return rc < 0 ? rc : inv_save(db, v, NULL);
	}
	/* Narrowed down: the last check before anyone is blamed. */
	if ((rc = boundary_begin(db, v)) < 0 || v->boundary ||
	    strcmp(v->state, "undecided") == 0)
		return rc;
	/* Every alert of the range moves to the first bad commit. */
	good = v->hi >= 2 ? v->range[v->hi - 2] : v->good;
	b = bisection_json(db, v, "done", v->range[v->hi - 1]);
	if (v->hi - v->lo > 1)
		json_object_set_new(b, "note", json_string("commits that could "
		    "not be measured lie in between: the first bad commit is "
		    "one of them or this one"));
	v->probe = 0;
	snprintf(v->state, sizeof(v->state), "done");
	/* Saved first: the hold on the mail asks which followers are active. */
	if ((rc = inv_save(db, v, NULL)) == 0)
		rc = alerts_move(db, v, good, v->range[v->hi - 1], b);
	json_decref(b);
	log_info("investigation %" PRId64 ": first bad commit %s after %d "
	    "round(s)", v->id, sha_of(db, v->range[v->hi - 1], sha, sizeof(sha)),
	    v->round);
	return rc;
}

/*
 * A follower whose leader has ended.  When the leader found the first bad
 * commit C, the follower checks C against the last good commit the leader
 * measured before it, on interleaved pairs of its own scenario.  When the
 * leader did not stand (overturned, failed), the follower investigates on
 * its own: confirmation, then bisection.
 */
static int
follow_begin(struct db *db, struct inv *v)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int64_t first = 0;
	int rc, lo = 0, hi = 0, done = 0, queued;
	char sha[72];
	json_t *b;

	dbp_int(&p, v->leader);
	if ((rc = db_queryp(&res, db, "SELECT state = 'done', lo, hi, round, "
	    "steps FROM investigations WHERE id = $1", &p)) < 0)
		return rc;
	if (dbres_rows(res) == 1) {
		done = dbres_bool(res, 0, 0);
		lo = (int)dbres_int(res, 0, 1);
		hi = (int)dbres_int(res, 0, 2);
		/* Its bisection is the leader's: the same rounds and steps. */
		v->round = (int)dbres_int(res, 0, 3);
		json_decref(v->steps);
		v->steps = json_loads(dbres_get(res, 0, 4), 0, NULL);
		if (v->steps == NULL)
			v->steps = json_array();
	}
	dbres_free(res);
	if (done && hi >= 1 && (size_t)hi <= v->m && lo < hi) {
		v->boundary = 1;
		v->lo = lo;
		v->hi = hi;
		v->probe = v->range[hi - 1];
		v->ref = lo >= 1 ? v->range[lo - 1] : v->good;
		snprintf(v->state, sizeof(v->state), "confirming");
		if ((rc = queue_pairs(db, v, v->ref, v->probe,
		    v->prm.boundary_pairs, 0, "confirm", &first)) < 0)
			return rc;
		v->step_from = first;
		b = json_pack("{s:s,s:s,s:I}", "state", "checking", "commit",
		    sha_of(db, v->probe, sha, sizeof(sha)), "leader",
		    (json_int_t)v->leader);
		rc = alerts_detail(db, v, "bisection", b);
		json_decref(b);
		log_info("investigation %" PRId64 ": checks its leader's first "
		    "bad commit %s on its own pairs", v->id, sha);
		return rc < 0 ? rc : inv_save(db, v, NULL);
	}
	log_info("investigation %" PRId64 ": its leader did not stand; on its "
	    "own now", v->id);
	v->ref = v->good;
	if (v->prm.confirm) {
		snprintf(v->state, sizeof(v->state), "confirming");
		rc = queue_pairs(db, v, v->good, v->bad, v->prm.confirm_pairs, 0,
		    "confirm", &first);
		v->step_from = first;
	} else if (v->prm.bisect && v->m > 1) {
		snprintf(v->state, sizeof(v->state), "bisecting");
		rc = bisect_step_begin(db, v, &queued);
	} else {
		snprintf(v->state, sizeof(v->state), "done");
		rc = alerts_release(db, v);
	}
	return rc < 0 ? rc : inv_save(db, v, NULL);
}

/*
 * Ends an investigation whose step cannot be judged, so it is not retried
 * for ever and its alerts (no longer held) are mailed as they stand.
 */
static void
give_up(struct db *db, int64_t id)
{
	struct dbparams p = { .n = 0 };

	dbp_int(&p, id);
	dbp_str(&p, db_errmsg(db));
	if (db_queryp(NULL, db, "WITH i AS (UPDATE investigations SET state = "
	    "'failed', reason = $2, updated_at = now() WHERE id = $1 RETURNING "
	    "id) UPDATE alerts SET investigating = false WHERE investigation_id "
	    "IN (SELECT id FROM i)", &p) < 0)
		log_warnx("cannot set investigation %" PRId64 " aside: %s", id,
		    db_errmsg(db));
}

/*
 * Begins a transaction and locks the first row sql selects (its id and
 * project id), then the project: the detector of that project waits, so
 * no alert joins meanwhile.  1 with *id set, 0 (rolled back) when none.
 */
static int
lock_next(struct db *db, const char *sql, int64_t *id)
{
	struct dbres *res = NULL;
	struct dbparams p = { .n = 0 };
	int rc;

	*id = 0;
	if ((rc = db_begin(db)) < 0)
		return rc;
	if ((rc = db_query(&res, db, sql, 0, NULL)) < 0)
		return rc;
	if (dbres_rows(res) == 0) {
		dbres_free(res);
		db_rollback(db);
		return 0;
	}
	*id = dbres_int(res, 0, 0);
	dbp_int(&p, dbres_int(res, 0, 1));
	dbres_free(res);
	if ((rc = db_queryp(NULL, db, "SELECT pg_advisory_xact_lock(1234567, "
	    "$1::int)", &p)) < 0)
		return rc;
	return 1;
}

/*
 * Takes up the next alert the detector wants investigated.  Its run is
 * judged whole by then (one transaction), so every alert of the run is
 * there, and the counted ones are taken first: they lead the timed alerts
 * of their class.  Returns 1 when one was taken up, 0 when none waits.
 */
static int
take_up_next(struct db *db)
{
	struct dbparams p = { .n = 0 };
	int64_t id;
	int rc;

	if ((rc = lock_next(db, "SELECT a.id, s.project_id FROM alerts a JOIN "
	    "series s ON s.id = a.series_id WHERE a.investigation_wanted ORDER "
	    "BY a.run_id, s.counted DESC, a.id LIMIT 1 FOR UPDATE OF a SKIP "
	    "LOCKED", &id)) <= 0 || (rc = investigate_alert(db, id)) < 0)
		goto fail;
	dbp_int(&p, id);
	/* Held until now; an alert nothing investigates may be mailed. */
	if ((rc = db_queryp(NULL, db, "UPDATE alerts SET investigation_wanted = "
	    "false, investigating = investigating AND investigation_id IS NOT "
	    "NULL WHERE id = $1", &p)) < 0 || (rc = db_commit(db)) < 0)
		goto fail;
	return 1;
fail:
	if (rc < 0) {
		log_warnx("cannot take up the investigation of an alert: %s",
		    db_errmsg(db));
		db_rollback(db);
	}
	return rc;
}

int
investigate_next(struct db *db)
{
	struct inv v;
	int64_t id = 0;
	int rc;

	if ((rc = take_up_next(db)) != 0)
		return rc;
	/*
	 * An investigation whose step has run (none of its jobs waits), or a
	 * follower whose leader has ended.
	 */
	if ((rc = lock_next(db, "SELECT i.id, i.project_id FROM investigations "
	    "i WHERE (i.state IN ('confirming', 'bisecting') AND NOT EXISTS "
	    "(SELECT 1 FROM jobs j WHERE j.investigation_id = i.id AND j.state "
	    "IN ('queued', 'running'))) OR (i.state = 'following' AND NOT "
	    "EXISTS (SELECT 1 FROM investigations l WHERE l.id = i.leader_id "
	    "AND l.state IN ('confirming', 'bisecting'))) ORDER BY "
	    "i.updated_at LIMIT 1 FOR UPDATE OF i SKIP LOCKED", &id)) == 0)
		return 0;
	if (rc < 0 || (rc = inv_load(&v, db, id)) < 0)
		goto fail;
	rc = strcmp(v.state, "following") == 0 ? follow_begin(db, &v) :
	    strcmp(v.state, "confirming") == 0 ? confirm_end(db, &v) :
	    bisect_end(db, &v);
	inv_free(&v);
	if (rc < 0 || (rc = db_commit(db)) < 0)
		goto fail;
	return 1;
fail:
	log_warnx("investigation step failed: %s", db_errmsg(db));
	db_rollback(db);
	if (id > 0 && rc != BL_EUNAVAIL)
		give_up(db, id);
	return rc;
}

int
investigate_list(json_t **out, struct db *db, int64_t project_id,
    const char *state, int64_t id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	dbp_int(&p, project_id);
	dbp_str(&p, state);
	dbp_int(&p, id);
	if ((rc = db_queryp(&res, db, "SELECT coalesce(json_agg(x ORDER BY "
	    "x.id DESC), '[]') FROM (SELECT i.id, pr.name AS project, t.name "
	    "AS target, i.scenario, i.kind, i.metric_class, i.state, g.sha AS "
	    "good_commit, "
	    "b.sha AS bad_commit, cardinality(i.range_commits) AS commits, "
	    "i.round AS rounds, i.change * 100 AS change_pct, i.steps, i.reason, "
	    "(SELECT array_agg(a.id ORDER BY a.id) FROM alerts a WHERE "
	    "a.investigation_id = i.id) AS alerts, (SELECT count(*) FROM jobs j "
	    "WHERE j.investigation_id = i.id) AS jobs, i.created_at, "
	    "i.updated_at FROM investigations i JOIN projects pr ON pr.id = "
	    "i.project_id JOIN targets t ON t.id = i.target_id JOIN commits g "
	    "ON g.id = i.good_commit_id JOIN commits b ON b.id = "
	    "i.bad_commit_id WHERE ($1 = 0 OR i.project_id = $1) AND "
	    "($2::investigation_state IS NULL OR i.state = $2) AND ($3 = 0 OR "
	    "i.id = $3)) x", &p)) < 0)
		return rc;
	*out = json_loads(dbres_get(res, 0, 0), 0, NULL);
	dbres_free(res);
	return *out != NULL ? 0 : BL_ERROR;
}
