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

static int
setting_int(json_t *settings, const char *key, int def, int lo, int hi)
{
	json_t *v = json_object_get(settings, key);
	json_int_t x;

	x = json_is_integer(v) ? json_integer_value(v) : def;
	return x < lo ? lo : x > hi ? hi : (int)x;
}

void
investigate_params(struct investigate_params *p, json_t *settings)
{
	json_t *v;

	p->confirm = !json_is_false(json_object_get(settings, "confirm"));
	p->bisect = !json_is_false(json_object_get(settings, "bisect"));
	p->confirm_pairs = setting_int(settings, "confirm_pairs", 5, 2, 50);
	p->confirm_max_pairs = setting_int(settings, "confirm_max_pairs", 9,
	    p->confirm_pairs, 50);
	p->step_pairs = setting_int(settings, "bisect_pairs", 3, 2, 50);
	p->step_max_pairs = setting_int(settings, "bisect_max_pairs", 7,
	    p->step_pairs, 50);
	p->priority = setting_int(settings, "investigation_priority", 10,
	    -1000, 1000);
	v = json_object_get(settings, "confirm_alpha");
	p->alpha = json_is_number(v) && json_number_value(v) > 0 &&
	    json_number_value(v) < 0.5 ? json_number_value(v) : 0.05;
}

int
investigate_wanted(json_t *settings)
{
	struct investigate_params p;

	investigate_params(&p, settings);
	return p.confirm;
}

/* Paired differences log(b / a), signed so that + is worse; returns the count. */
static size_t
worse_logs(double *d, const double *a, const double *b, size_t n, int higher)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (a[i] > 0 && b[i] > 0 && isfinite(a[i]) && isfinite(b[i]))
			d[k++] = (higher ? -1 : 1) * log(b[i] / a[i]);
	return k;
}

int
investigate_confirm(struct confirm_verdict *out, const double *good,
    const double *bad, size_t n, int higher_better, double threshold,
    const struct investigate_params *p)
{
	struct stats_signed_rank sr;
	double *d = xreallocarray(NULL, n > 0 ? n : 1, sizeof(*d)), est;
	size_t k = worse_logs(d, good, bad, n, higher_better);

	memset(out, 0, sizeof(*out));
	out->pairs = k;
	out->p = 1;
	out->change = NAN;
	if (k < 2 || stats_signed_rank(&sr, d, k, STATS_X_GREATER) < 0 ||
	    stats_walsh_median(&est, d, k) < 0) {
		free(d);
		return k < 2 ? BL_ENOTFOUND : BL_ERROR;
	}
	free(d);
	out->p = sr.p;
	out->change = expm1(est);
	out->stands = sr.p <= p->alpha && out->change >= threshold;
	/* Still plausible: more pairs may settle it. */
	out->more = !out->stands && (int)k < p->confirm_max_pairs &&
	    out->change >= threshold / 2;
	return 0;
}

int
investigate_step(struct step_verdict *out, const double *ref,
    const double *probe, size_t n, int higher_better, double change,
    const struct investigate_params *p)
{
	double *d = xreallocarray(NULL, n > 0 ? n : 1, sizeof(*d));
	double mean = 0, sd = 0, mid = log1p(change) / 2, t, cdf;
	size_t k = worse_logs(d, ref, probe, n, higher_better), i;

	memset(out, 0, sizeof(*out));
	out->pairs = k;
	out->p = 1;
	out->change = NAN;
	if (k == 0) {
		free(d);
		return BL_ENOTFOUND;
	}
	for (i = 0; i < k; i++)
		mean += d[i] / (double)k;
	for (i = 0; i < k && k > 1; i++)
		sd += (d[i] - mean) * (d[i] - mean) / (double)(k - 1);
	sd = sqrt(sd);
	free(d);
	out->change = expm1(mean);
	/*
	 * Is the probe nearer the good level (0) or the bad one (the
	 * confirmed change)?  A t-test of the mean difference against the
	 * midway point; with too few pairs to tell, more are run.
	 */
	if (k >= 2 && sd == 0)
		out->p = mean == mid ? 1 : 0;
	else if (k >= 2) {
		t = (mean - mid) / (sd / sqrt((double)k));
		if (stats_t_cdf(&cdf, -fabs(t), (double)(k - 1)) == 0)
			out->p = 2 * cdf;
	}
	if (out->p < p->alpha && mean != mid)
		out->verdict = mean > mid ? STEP_BAD : STEP_GOOD;
	else if ((int)k < p->step_max_pairs)
		out->verdict = STEP_UNDECIDED;
	else {
		/* Out of pairs: the nearer level, marked weak. */
		out->verdict = mean > mid ? STEP_BAD : STEP_GOOD;
		out->weak = 1;
	}
	return 0;
}

/* What an investigation row holds, as loaded. */
struct inv {
	int64_t		 id, project_id, target_id, good, bad, probe, worker;
	int64_t		 lead, step_from;
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
	    "a.investigation_id = i.id LIMIT 1), pr.default_branch) FROM "
	    "investigations i JOIN projects pr ON pr.id = i.project_id WHERE "
	    "i.id = $1", &p)) < 0)
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
	rc = db_queryp(NULL, db, "UPDATE investigations SET state = "
	    "$2::investigation_state, lo = $3, hi = $4, probe_commit_id = $5, "
	    "round = $6, step_from_job = $7, change = $8, steps = $9::jsonb, "
	    "lead_alert_id = $10, reason = coalesce($11, reason), updated_at = "
	    "now() WHERE id = $1", &p);
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
	js.priority = v->prm.priority;
	js.investigation_id = v->id;
	js.pinned_worker_id = v->worker;
	rc = queue_enqueue(&id, db, &js, JOB_ATTEMPTS);
	json_decref(scen);
	if (rc == 0 && *first == 0)
		*first = id;
	return rc;
}

/* Queues n interleaved pairs: the reference, then the commit under test. */
static int
queue_pairs(struct db *db, struct inv *v, int64_t ref, int64_t test, int n,
    const char *reason, int64_t *first)
{
	int i, rc = 0;

	for (i = 0; i < n && rc == 0; i++)
		if ((rc = queue_one(db, v, ref, reason, first)) == 0)
			rc = queue_one(db, v, test, reason, first);
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
	if (strcmp(v->kind, "perf") == 0)
		rc = queue_pairs(db, v, v->good, v->probe, v->prm.step_pairs,
		    "bisect", &first);
	else
		rc = queue_one(db, v, v->probe, "bisect", &first);
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

	return json_pack("{s:s,s:s,s:s,s:o,s:i,s:O,s:I}", "state", state,
	    "good", sha_of(db, v->good, g, sizeof(g)), "bad",
	    sha_of(db, v->bad, b, sizeof(b)), "first_bad", first_bad > 0 ?
	    json_string(sha_of(db, first_bad, f, sizeof(f))) : json_null(),
	    "rounds", v->round, "steps", v->steps, "investigation_id",
	    (json_int_t)v->id);
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
	    "s.metric FROM alerts a JOIN series s ON s.id = a.series_id JOIN projects pr "
	    "ON pr.id = s.project_id LEFT JOIN runs ru ON ru.id = a.run_id "
	    "LEFT JOIN jobs j ON j.id = ru.job_id WHERE a.id = $1", &p)) < 0)
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
	if (strcmp(v.kind, "perf") == 0 && v.prm.confirm)
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
	/* The alerts of one run share the investigation of their range. */
	if ((rc = db_queryp(&res, db, "WITH ins AS (INSERT INTO investigations "
	    "(project_id, target_id, scenario, kind, state, good_commit_id, "
	    "bad_commit_id, range_commits, hi, params, lead_alert_id, "
	    "metric_class) VALUES ($1, $2, $3, $4::alert_kind, "
	    "$5::investigation_state, $6, $7, ARRAY(SELECT "
	    "json_array_elements_text($8::json)::bigint), $9, $10::jsonb, $11, "
	    "$12) ON CONFLICT DO NOTHING RETURNING id, true) "
	    "SELECT * FROM ins UNION ALL SELECT id, false FROM investigations "
	    "WHERE target_id = $2 AND scenario = $3 AND kind = $4::alert_kind "
	    "AND metric_class = $12 AND good_commit_id = $6 AND "
	    "bad_commit_id = $7 AND state IN "
	    "('confirming', 'bisecting') AND NOT EXISTS (SELECT 1 FROM ins)",
	    &p)) < 0)
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
	if (strcmp(v.state, "bisecting") == 0) {
		json_decref(pending);
		pending = json_pack("{s:o}", "bisection", bisection_json(db, &v,
		    "running", 0));
	}
	dbp_str(&p, (dtext = jsonx_dump(pending)));
	if ((rc = db_queryp(NULL, db, "UPDATE alerts SET investigation_id = $2, "
	    "investigating = true, details = details || $3::jsonb WHERE id = $1",
	    &p)) < 0 || existing)
		goto out;
	if (strcmp(v.state, "confirming") == 0) {
		rc = queue_pairs(db, &v, v.good, v.bad, v.prm.confirm_pairs,
		    "confirm", &first);
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

/*
 * A series' values in the current step's jobs, paired in queue order:
 * a run of the reference commit, then one of the commit under test.  A
 * pair with a failed job is left out; why gets the last failure.
 */
static int
step_values(double **ref, double **test, size_t *n, struct db *db,
    const struct inv *v, int64_t series_id, char *why, size_t whylen)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int i, rows, rc;

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
		if (dbres_int(res, i, 0) != v->good ||
		    dbres_int(res, i + 1, 0) == v->good)
			continue;
		if (dbres_get(res, i, 2) != NULL &&
		    dbres_get(res, i + 1, 2) != NULL) {
			(*ref)[*n] = dbres_double(res, i, 2);
			(*test)[(*n)++] = dbres_double(res, i + 1, 2);
		}
		i++;
	}
	dbres_free(res);
	return 0;
}

/* Ends the investigation's hold on its alerts: they may be mailed now. */
static int
alerts_release(struct db *db, const struct inv *v)
{
	struct dbparams p = { .n = 0 };

	dbp_int(&p, v->id);
	return db_queryp(NULL, db, "UPDATE alerts SET investigating = false "
	    "WHERE investigation_id = $1 AND investigating", &p);
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

static int
confirm_end(struct db *db, struct inv *v)
{
	struct confirm_verdict *cv = NULL;
	struct inv_alert *al = NULL;
	double *ref = NULL, *test = NULL, best = -INFINITY;
	char why[512] = "", g[72];
	size_t n = 0, k, i;
	int rc, more = 0, measured = 0, stood = 0, have, add;
	int64_t first = 0;
	json_t *c;

	if ((rc = load_alerts(&al, &n, db, v, 0)) < 0)
		return rc;
	cv = xcalloc(n + 1, sizeof(*cv));
	for (i = 0; i < n && rc == 0; i++) {
		if ((rc = step_values(&ref, &test, &k, db, v, al[i].series_id,
		    why, sizeof(why))) < 0)
			break;
		if (investigate_confirm(&cv[i], ref, test, k, al[i].higher,
		    al[i].threshold, &v->prm) == 0) {
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
	if (more && have < v->prm.confirm_max_pairs) {
		add = v->prm.confirm_max_pairs - have < 2 ?
		    v->prm.confirm_max_pairs - have : 2;
		if ((rc = queue_pairs(db, v, v->good, v->bad, add, "confirm",
		    &first)) == 0)
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
		    (rc = alerts_release(db, v)) == 0)
			rc = inv_save(db, v, json_string_value(json_object_get(c,
			    "reason")));
		json_decref(c);
		goto out;
	}
	for (i = 0; i < n && rc == 0; i++) {
		c = json_pack("{s:s,s:i,s:f,s:f,s:s}", "state", cv[i].stands ?
		    "confirmed" : "overturned", "pairs", (int)cv[i].pairs,
		    "change_pct", isfinite(cv[i].change) ? cv[i].change * 100 : 0,
		    "p_value", cv[i].p, "reference", sha_of(db, v->good, g,
		    sizeof(g)));
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
		rc = inv_save(db, v, "the interleaved re-runs did not confirm it");
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
		rc = alerts_release(db, v);
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

/* Moves the investigation's alerts to the first bad commit bisection found. */
static int
alerts_move(struct db *db, const struct inv *v, int64_t good, int64_t bad,
    json_t *bisection)
{
	struct inv_alert *al = NULL;
	size_t n = 0, i;
	int rc;

	if ((rc = load_alerts(&al, &n, db, v, 1)) < 0)
		return rc;
	for (i = 0; i < n && rc == 0; i++)
		rc = alert_move(db, al[i].id, good, bad, "bisection", bisection);
	free(al);
	return rc < 0 ? rc : alerts_release(db, v);
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
	if (strcmp(v->kind, "perf") == 0) {
		if ((rc = step_values(&ref, &test, &k, db, v, series, why,
		    sizeof(why))) < 0)
			return rc;
		rc = investigate_step(&sv, ref, test, k, higher, v->change,
		    &v->prm);
		free(ref);
		free(test);
		if (rc == 0 && sv.verdict == STEP_UNDECIDED) {
			if ((rc = queue_pairs(db, v, v->good, v->probe, 1,
			    "bisect", &first)) == 0)
				rc = inv_save(db, v, NULL);
			return rc;
		}
	} else
		rc = condition_step(db, v, series, &sv);
	if (rc < 0 && rc != BL_ENOTFOUND)
		return rc;
	step = json_pack("{s:i,s:i,s:s,s:s,s:i,s:b}", "round", v->round,
	    "index", idx, "commit", sha_of(db, v->probe, sha, sizeof(sha)),
	    "verdict", rc == BL_ENOTFOUND ? "skipped" : sv.verdict == STEP_BAD ?
	    "bad" : "good", "runs", rc == BL_ENOTFOUND ? 0 : (int)sv.pairs,
	    "weak", sv.weak);
	if (rc == BL_ENOTFOUND)
		json_object_set_new(step, "reason", json_string(why[0] ? why :
		    "its jobs failed"));
	else if (strcmp(v->kind, "perf") == 0) {
		json_object_set_new(step, "change_pct", json_real(sv.change * 100));
		json_object_set_new(step, "p_value", json_real(sv.p));
	} else
		json_object_set_new(step, "value", json_real(sv.change));
	json_array_append_new(v->steps, step);
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
	/* Narrowed down: every alert of the range moves to the first bad commit. */
	good = v->hi >= 2 ? v->range[v->hi - 2] : v->good;
	b = bisection_json(db, v, "done", v->range[v->hi - 1]);
	if (v->hi - v->lo > 1)
		json_object_set_new(b, "note", json_string("commits that could "
		    "not be measured lie in between: the first bad commit is "
		    "one of them or this one"));
	rc = alerts_move(db, v, good, v->range[v->hi - 1], b);
	json_decref(b);
	v->probe = 0;
	snprintf(v->state, sizeof(v->state), "done");
	log_info("investigation %" PRId64 ": first bad commit %s after %d "
	    "round(s)", v->id, sha_of(db, v->range[v->hi - 1], sha, sizeof(sha)),
	    v->round);
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

int
investigate_next(struct db *db)
{
	struct dbres *res = NULL;
	struct dbparams p = { .n = 0 };
	struct inv v;
	int64_t id = 0;
	int rc;

	if ((rc = db_begin(db)) < 0)
		return rc;
	/* An investigation whose step has run: none of its jobs waits. */
	if ((rc = db_query(&res, db, "SELECT i.id, i.project_id FROM "
	    "investigations i WHERE i.state IN ('confirming', 'bisecting') AND "
	    "NOT EXISTS (SELECT 1 FROM jobs j WHERE j.investigation_id = i.id "
	    "AND j.state IN ('queued', 'running')) ORDER BY i.updated_at LIMIT 1 "
	    "FOR UPDATE OF i SKIP LOCKED", 0, NULL)) < 0)
		goto fail;
	if (dbres_rows(res) == 0) {
		dbres_free(res);
		db_rollback(db);
		return 0;
	}
	id = dbres_int(res, 0, 0);
	dbp_int(&p, dbres_int(res, 0, 1));
	dbres_free(res);
	/* The detector of this project waits, so no alert joins meanwhile. */
	if ((rc = db_queryp(NULL, db, "SELECT pg_advisory_xact_lock(1234567, "
	    "$1::int)", &p)) < 0 || (rc = inv_load(&v, db, id)) < 0)
		goto fail;
	rc = strcmp(v.state, "confirming") == 0 ? confirm_end(db, &v) :
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
