/*
 * Detection over stored runs: marks suspect runs, judges every point
 * (performance through detect_core.c, leaks, accuracy drift, endurance
 * degradation) and opens or resolves alerts.  Runs are taken from the
 * database in a background thread, one transaction each.
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

#define HISTORY_MAX	200	/* points of a series the detector looks at */

/* What detect_run() knows about the run it judges. */
struct run_ctx {
	int64_t		 run_id;
	int64_t		 project_id;
	int64_t		 target_id;
	int64_t		 commit_id;
	json_t		*env;		/* owned */
	json_t		*info;		/* owned */
	json_t		*settings;	/* the project's; owned */
	char		*reference;	/* the project's pinned commit, or NULL */
	json_t		*suspect;	/* reasons this run is suspect */
	int64_t		 investigation;	/* the run measures an investigation's step */
};

static double
setting_num(const struct run_ctx *c, const char *key, double def)
{
	json_t *v = json_object_get(c->settings, key);

	return json_is_number(v) ? json_number_value(v) : def;
}

double
detect_threshold(json_t *settings, const char *metric)
{
	json_t *v = json_object_get(json_object_get(settings, "thresholds"),
	    metric);

	if (json_is_number(v))
		return json_number_value(v);
	v = json_object_get(settings, "threshold");
	return json_is_number(v) ? json_number_value(v) : 0.10;
}

static double
threshold_for(const struct run_ctx *c, const char *metric)
{
	return detect_threshold(c->settings, metric);
}

static int
load_run(struct run_ctx *c, struct db *db, int64_t run_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	memset(c, 0, sizeof(*c));
	c->run_id = run_id;
	dbp_int(&p, run_id);
	if ((rc = db_queryp(&res, db, "SELECT j.project_id, j.target_id, "
	    "j.commit_id, r.environment, r.info, pr.settings, "
	    "pr.reference_commit, coalesce(j.investigation_id, 0) FROM runs r "
	    "JOIN jobs j ON j.id = r.job_id "
	    "JOIN projects pr ON pr.id = j.project_id WHERE r.id = $1", &p)) < 0)
		return rc;
	if (dbres_rows(res) != 1) {
		dbres_free(res);
		return BL_ENOTFOUND;
	}
	c->project_id = dbres_int(res, 0, 0);
	c->target_id = dbres_int(res, 0, 1);
	c->commit_id = dbres_int(res, 0, 2);
	c->env = json_loads(dbres_get(res, 0, 3), 0, NULL);
	c->info = json_loads(dbres_get(res, 0, 4), 0, NULL);
	c->settings = json_loads(dbres_get(res, 0, 5), 0, NULL);
	if (dbres_get(res, 0, 6) != NULL)
		c->reference = xstrdup(dbres_get(res, 0, 6));
	c->investigation = dbres_int(res, 0, 7);
	c->suspect = json_array();
	dbres_free(res);
	return 0;
}

static void
free_run(struct run_ctx *c)
{
	json_decref(c->env);
	json_decref(c->info);
	json_decref(c->settings);
	json_decref(c->suspect);
	free(c->reference);
}

/*
 * Marks the run suspect when the machine changed since the previous run
 * on this target, or when a scenario saw throttling.  Suspect runs stay
 * out of every baseline and are named in the alerts they touch.
 */
static int
check_suspect(struct run_ctx *c, struct db *db)
{
	static const char *const keys[] = {
		"cpu_model", "cores", "kernel", "governor", "arch"
	};
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	const char *scen;
	json_t *prev, *a, *b, *v;
	char *sa, *sb, *text;
	size_t i;
	int rc;

	json_object_foreach(c->info, scen, v) {
		if (json_is_true(json_object_get(v, "throttling"))) {
			text = xasprintf("throttling seen in %s", scen);
			json_array_append_new(c->suspect, json_string(text));
			free(text);
		}
	}
	dbp_int(&p, c->project_id);
	dbp_int(&p, c->target_id);
	dbp_int(&p, c->run_id);
	if ((rc = db_queryp(&res, db, "SELECT r.environment FROM runs r JOIN "
	    "jobs j ON j.id = r.job_id WHERE j.project_id = $1 AND "
	    "j.target_id = $2 AND r.id < $3 ORDER BY r.id DESC LIMIT 1", &p)) < 0)
		return rc;
	if (dbres_rows(res) == 1 &&
	    (prev = json_loads(dbres_get(res, 0, 0), 0, NULL)) != NULL) {
		for (i = 0; i < BL_ARRAY_LEN(keys); i++) {
			a = json_object_get(prev, keys[i]);
			b = json_object_get(c->env, keys[i]);
			if (a == NULL || b == NULL || json_equal(a, b))
				continue;
			sa = jsonx_dump(a);
			sb = jsonx_dump(b);
			text = xasprintf("environment changed: %s %s -> %s",
			    keys[i], sa, sb);
			json_array_append_new(c->suspect, json_string(text));
			free(text);
			free(sa);
			free(sb);
		}
		json_decref(prev);
	}
	dbres_free(res);
	if (json_array_size(c->suspect) == 0)
		return 0;
	text = jsonx_dump(c->suspect);
	p.n = 0;
	dbp_int(&p, c->run_id);
	dbp_str(&p, text);
	rc = db_queryp(NULL, db, "UPDATE runs SET suspect = ARRAY(SELECT "
	    "json_array_elements_text($2::json)) WHERE id = $1", &p);
	log_info("run %" PRId64 " is suspect: %s", c->run_id, text);
	free(text);
	return rc;
}

/*
 * Opens an alert and, when it opened one, records that it wants
 * investigating: held from the mail until the investigation loop (which
 * sees the whole run by then) has taken it up.
 */
static int
open_alert(struct db *db, const struct alert_spec *a, int64_t *alerts)
{
	struct dbparams p = { .n = 0 };
	int64_t id = 0;
	int rc;

	if ((rc = alert_open(db, a, alerts, &id)) < 0 || id == 0)
		return rc;
	dbp_int(&p, id);
	return db_queryp(NULL, db, "UPDATE alerts SET investigation_wanted = "
	    "true, investigating = true WHERE id = $1", &p);
}

/* One point of a series' history as the detector sees it. */
struct hist_row {
	int64_t	run_id;
	int64_t	commit_id;
	double	*samples;
};

static enum verdict_kind
verdict_parse(const char *s)
{
	int v;

	for (v = V_BASELINE; v <= V_EXCLUDED; v++)
		if (s != NULL && strcmp(s, verdict_name((enum verdict_kind)v)) == 0)
			return (enum verdict_kind)v;
	return V_BASELINE;
}

/*
 * Loads the series' recent history, oldest first, with this run last,
 * each point with its verdict and whether its run is suspect.
 */
static int
load_history(struct detect_point **pts, struct hist_row **rows, size_t *n,
    size_t *epoch, struct db *db, int64_t series_id, int64_t run_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	size_t i;
	int rc;

	dbp_int(&p, series_id);
	dbp_int(&p, run_id);
	dbp_int(&p, HISTORY_MAX);
	if ((rc = db_queryp(&res, db, "SELECT * FROM (SELECT p.run_id, "
	    "p.commit_id, p.value, p.samples, d.verdict, cardinality(r.suspect) "
	    "> 0, p.run_id = s.baseline_from_run, p.run_id = $2 AS this "
	    "FROM points p JOIN runs r ON r.id = p.run_id JOIN jobs j ON j.id = "
	    "r.job_id AND j.investigation_id IS NULL JOIN series s ON "
	    "s.id = p.series_id LEFT JOIN detections d ON d.series_id = "
	    "p.series_id AND d.run_id = p.run_id WHERE p.series_id = $1 AND "
	    "(p.run_id = $2 OR r.detected_at IS NOT NULL) ORDER BY p.run_id = $2 "
	    "DESC, p.commit_id DESC, p.run_id DESC LIMIT $3) x "
	    "ORDER BY this, commit_id, run_id", &p)) < 0)
		return rc;
	*n = (size_t)dbres_rows(res);
	*pts = xcalloc(*n + 1, sizeof(**pts));
	*rows = xcalloc(*n + 1, sizeof(**rows));
	*epoch = 0;
	for (i = 0; i < *n; i++) {
		struct detect_point *pt = &(*pts)[i];

		(*rows)[i].run_id = dbres_int(res, (int)i, 0);
		(*rows)[i].commit_id = dbres_int(res, (int)i, 1);
		pt->value = dbres_double(res, (int)i, 2);
		pt->n = dbres_doubles(&(*rows)[i].samples, res, (int)i, 3);
		pt->samples = (*rows)[i].samples;
		pt->verdict = verdict_parse(dbres_get(res, (int)i, 4));
		pt->excluded = dbres_bool(res, (int)i, 5);
		if (dbres_bool(res, (int)i, 6))
			*epoch = i;
	}
	/* The run being judged has no verdict yet. */
	if (*n > 0)
		(*pts)[*n - 1].verdict = V_BASELINE;
	dbres_free(res);
	return 0;
}

static void
free_history(struct detect_point *pts, struct hist_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(rows[i].samples);
	free(rows);
	free(pts);
}

static int
store_verdict(struct db *db, int64_t series_id, int64_t run_id,
    int64_t commit_id, enum verdict_kind v, const struct detect_result *r,
    json_t *details)
{
	struct dbparams p = { .n = 0 };
	char *d = jsonx_dump(details);
	int rc;

	dbp_int(&p, series_id);
	dbp_int(&p, run_id);
	dbp_int(&p, commit_id);
	dbp_str(&p, verdict_name(v));
	dbp_num(&p, r != NULL ? r->change * 100 : NAN);
	dbp_num(&p, r != NULL ? r->z : NAN);
	dbp_num(&p, r != NULL ? r->p : NAN);
	dbp_int(&p, r != NULL ? (int64_t)r->baseline_n : 0);
	dbp_str(&p, d);
	rc = db_queryp(NULL, db, "INSERT INTO detections (series_id, run_id, "
	    "commit_id, verdict, change_pct, z, p_value, baseline_n, details) "
	    "VALUES ($1, $2, $3, $4::verdict, $5, $6, $7, $8, $9::jsonb) "
	    "ON CONFLICT (series_id, run_id) DO UPDATE SET verdict = "
	    "EXCLUDED.verdict, change_pct = EXCLUDED.change_pct, z = EXCLUDED.z, "
	    "p_value = EXCLUDED.p_value, baseline_n = EXCLUDED.baseline_n, "
	    "details = EXCLUDED.details", &p);
	free(d);
	return rc;
}

/* The median of the accepted values in hist[from..to). */
static double
level_between(const struct detect_point *h, size_t from, size_t to)
{
	double *v = xreallocarray(NULL, to > from ? to - from : 1, sizeof(*v));
	double m = NAN;
	size_t i, k = 0;

	for (i = from; i < to; i++)
		if (!h[i].excluded && h[i].verdict != V_SUSPECT)
			v[k++] = h[i].value;
	if (k > 0)
		stats_median(&m, v, k);
	free(v);
	return m;
}

/* The suspect runs among hist[from..to), for an alert's details. */
static json_t *
suspects_between(const struct detect_point *h, const struct hist_row *rows,
    size_t from, size_t to)
{
	json_t *a = json_array();
	size_t i;

	for (i = from; i < to; i++)
		if (h[i].excluded)
			json_array_append_new(a, json_integer(rows[i].run_id));
	return a;
}

/*
 * Change points over the series' history (E-divisive means with a t-test,
 * the Hunter/Otava variant in stats.c): a persistent shift since the
 * current epoch that the run-by-run detector did not confirm (a slow
 * drift, a step of small steps) becomes the new epoch, and an alert when
 * it reaches the threshold in the bad direction.  It needs 3 runs on the
 * new side, so a lone run never moves the baseline.
 */
static int
history_changes(struct run_ctx *c, struct db *db, int64_t series_id,
    struct detect_point *h, struct hist_row *rows, size_t n, size_t epoch,
    const struct detect_params *prm, int64_t *alerts)
{
	struct stats_edivisive_opts opts;
	struct stats_cp *cps = NULL;
	struct dbparams p = { .n = 0 };
	struct alert_spec a;
	double *v, before, after, change;
	size_t *idx, i, k = 0, ncp = 0, at;
	int rc = 0;

	if (n < epoch + 10)
		return 0;
	v = xreallocarray(NULL, n, sizeof(*v));
	idx = xreallocarray(NULL, n, sizeof(*idx));
	/* Only the current epoch: any change point in it is a new one. */
	for (i = epoch; i < n; i++) {
		if (h[i].excluded || !(h[i].value > 0))
			continue;
		v[k] = log(h[i].value);
		idx[k++] = i;
	}
	stats_edivisive_defaults(&opts);
	opts.min_magnitude = prm->threshold * prm->suspect_frac;
	if (k < 10 || stats_edivisive(&cps, &ncp, v, k, &opts) < 0 || ncp == 0)
		goto out;
	at = idx[cps[ncp - 1].index];
	if (at <= epoch || k - cps[ncp - 1].index < 3)
		goto out;
	before = exp(cps[ncp - 1].mean_before);
	after = exp(cps[ncp - 1].mean_after);
	change = (after - before) / before;
	p.n = 0;
	dbp_int(&p, series_id);
	dbp_int(&p, rows[at].run_id);
	if ((rc = db_queryp(NULL, db, "UPDATE series SET baseline_from_run = $2 "
	    "WHERE id = $1", &p)) < 0)
		goto out;
	log_info("series %" PRId64 ": change point at run %" PRId64 " (%+.1f%%)",
	    series_id, rows[at].run_id, change * 100);
	if ((prm->higher_better ? -change : change) >= prm->threshold) {
		memset(&a, 0, sizeof(a));
		a.series_id = series_id;
		a.kind = "perf";
		a.run_id = c->run_id;
		a.bad_commit_id = rows[at].commit_id;
		a.good_commit_id = at > 0 ? rows[at - 1].commit_id : 0;
		a.before = before;
		a.after = after;
		a.change_pct = change * 100;
		a.p_value = cps[ncp - 1].p;
		a.details = json_pack("{s:s,s:I}", "source", "e-divisive",
		    "runs_after", (json_int_t)(k - cps[ncp - 1].index));
		rc = open_alert(db, &a, alerts);
		json_decref(a.details);
	}
out:
	free(cps);
	free(v);
	free(idx);
	return rc;
}

/* The performance detector on one point, with its verdict, epoch and alert. */
static int
detect_perf(struct run_ctx *c, struct db *db, int64_t series_id,
    const char *metric, int higher_better, int counted, int64_t *alerts)
{
	struct detect_point *h = NULL;
	struct hist_row *rows = NULL;
	struct detect_params prm;
	struct detect_result r;
	struct dbparams p = { .n = 0 };
	enum verdict_kind *before = NULL;
	struct alert_spec a;
	json_t *details = NULL, *base = NULL;
	size_t n = 0, epoch, i;
	int rc;

	if ((rc = load_history(&h, &rows, &n, &epoch, db, series_id,
	    c->run_id)) < 0 || n == 0)
		goto out;
	detect_defaults(&prm);
	prm.threshold = threshold_for(c, metric);
	prm.higher_better = higher_better;
	prm.counted = counted;
	before = xreallocarray(NULL, n, sizeof(*before));
	for (i = 0; i < n; i++)
		before[i] = h[i].verdict;
	detect_series_step(&r, &prm, h, n, epoch);
	details = json_pack("{s:f,s:f,s:f,s:I}", "shift_lo_pct",
	    r.shift_lo * 100, "shift_hi_pct", r.shift_hi * 100, "p_raw",
	    r.p_raw, "threshold_pct", (json_int_t)lround(prm.threshold * 100));
	if ((rc = store_verdict(db, series_id, c->run_id, c->commit_id,
	    h[n - 1].verdict == V_SUSPECT ? V_SUSPECT : r.verdict, &r,
	    details)) < 0)
		goto out;
	/* Earlier suspects the decision relabelled. */
	for (i = 0; i + 1 < n; i++) {
		if (before[i] == h[i].verdict)
			continue;
		p.n = 0;
		dbp_int(&p, series_id);
		dbp_int(&p, rows[i].run_id);
		dbp_str(&p, verdict_name(h[i].verdict));
		if ((rc = db_queryp(NULL, db, "UPDATE detections SET verdict = "
		    "$3::verdict WHERE series_id = $1 AND run_id = $2", &p)) < 0)
			goto out;
	}
	if (r.verdict == V_REGRESSION || r.verdict == V_IMPROVEMENT ||
	    r.quiet_change) {
		p.n = 0;
		dbp_int(&p, series_id);
		dbp_int(&p, rows[r.change_at].run_id);
		if ((rc = db_queryp(NULL, db, "UPDATE series SET "
		    "baseline_from_run = $2 WHERE id = $1", &p)) < 0)
			goto out;
	}
	if (h[n - 1].verdict == V_SUSPECT && r.change >= prm.threshold *
	    prm.suspect_frac && investigate_wanted(c->settings)) {
		/*
		 * A run well off in the bad direction: rather than wait for
		 * the next push to confirm it, re-run it against the last
		 * good commit now (an alert under investigation, not mailed).
		 */
		for (i = n - 1; i-- > epoch;)
			if (!h[i].excluded && h[i].verdict != V_SUSPECT)
				break;
		memset(&a, 0, sizeof(a));
		a.series_id = series_id;
		a.kind = "perf";
		a.run_id = c->run_id;
		a.bad_commit_id = c->commit_id;
		a.good_commit_id = i < n - 1 && i >= epoch ? rows[i].commit_id : 0;
		a.before = level_between(h, epoch, n - 1);
		a.after = h[n - 1].value;
		a.change_pct = r.change * 100;
		a.p_value = r.p;
		a.only_if_none_open = 1;
		a.details = json_pack("{s:s,s:f,s:I}", "source", "suspect",
		    "z", r.z, "baseline_runs", (json_int_t)r.baseline_n);
		if (a.good_commit_id > 0 && a.good_commit_id != a.bad_commit_id)
			rc = open_alert(db, &a, alerts);
		json_decref(a.details);
		if (rc < 0)
			goto out;
	}
	if (r.verdict == V_REGRESSION) {
		base = json_array();
		for (i = epoch; i < r.change_at; i++)
			if (!h[i].excluded && h[i].verdict != V_SUSPECT)
				json_array_append_new(base,
				    json_integer(rows[i].commit_id));
		memset(&a, 0, sizeof(a));
		a.series_id = series_id;
		a.kind = "perf";
		a.run_id = c->run_id;
		a.bad_commit_id = rows[r.change_at].commit_id;
		a.good_commit_id = r.change_at > 0 ?
		    rows[r.change_at - 1].commit_id : 0;
		a.before = level_between(h, epoch, r.change_at);
		a.after = level_between(h, r.change_at, n);
		a.change_pct = isfinite(a.before) && a.before != 0 ?
		    (a.after - a.before) / a.before * 100 : NAN;
		a.p_value = r.p;
		a.details = json_pack("{s:f,s:f,s:f,s:I,s:I,s:o,s:o}",
		    "p_raw", r.p_raw, "shift_lo_pct", r.shift_lo * 100,
		    "shift_hi_pct", r.shift_hi * 100, "baseline_runs",
		    (json_int_t)r.baseline_n, "runs_after",
		    (json_int_t)(n - r.change_at), "baseline_commits", base,
		    "suspect_runs", suspects_between(h, rows, epoch, n));
		base = NULL;
		rc = open_alert(db, &a, alerts);
		json_decref(a.details);
	} else {
		/*
		 * A series back near the level it had before a regression
		 * resolves the regression's alert, whatever this run's verdict.
		 */
		double prev = NAN;

		for (i = n - 1; i-- > 0;)
			if (!h[i].excluded) {
				prev = h[i].value;
				break;
			}
		rc = alert_recover(db, series_id, "perf", c->run_id,
		    h[n - 1].value, prev, prm.threshold);
		if (rc == 0 && r.verdict != V_SUSPECT && !r.quiet_change)
			rc = history_changes(c, db, series_id, h, rows, n,
			    r.verdict == V_IMPROVEMENT ? r.change_at : epoch,
			    &prm, alerts);
	}
out:
	json_decref(details);
	json_decref(base);
	free(before);
	free_history(h, rows, n);
	return rc;
}

/* A value of this run for another metric of the same scenario, or NAN. */
static double
run_value(struct db *db, int64_t run_id, const char *scenario,
    const char *metric)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	double v = NAN;

	dbp_int(&p, run_id);
	dbp_str(&p, scenario);
	dbp_str(&p, metric);
	if (db_queryp(&res, db, "SELECT p.value FROM points p JOIN series s ON "
	    "s.id = p.series_id WHERE p.run_id = $1 AND s.scenario = $2 AND "
	    "s.metric = $3", &p) == 0 && dbres_rows(res) == 1)
		v = dbres_double(res, 0, 0);
	dbres_free(res);
	return v;
}

/* The commit of the series' previous point, for an alert's good end. */
static int64_t
previous_commit(struct db *db, int64_t series_id, int64_t run_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int64_t id = 0;

	dbp_int(&p, series_id);
	dbp_int(&p, run_id);
	if (db_queryp(&res, db, "SELECT p.commit_id FROM points p JOIN runs r "
	    "ON r.id = p.run_id JOIN jobs j ON j.id = r.job_id WHERE "
	    "p.series_id = $1 AND p.run_id <> $2 AND r.detected_at IS NOT NULL "
	    "AND j.investigation_id IS NULL ORDER BY p.commit_id DESC, "
	    "p.run_id DESC LIMIT 1", &p) == 0 && dbres_rows(res) == 1)
		id = dbres_int(res, 0, 0);
	dbres_free(res);
	return id;
}

/*
 * Opens an alert of a kind judged within one run (leak, accuracy,
 * degradation) unless one is already open on the series: the condition
 * persisting over later commits is the same alert.  Steals details.
 */
static int
open_condition(struct run_ctx *c, struct db *db, int64_t series_id,
    const char *kind, double before, double after, double p_value,
    json_t *details, int64_t *alerts)
{
	struct alert_spec a;
	int rc;

	memset(&a, 0, sizeof(a));
	a.series_id = series_id;
	a.kind = kind;
	a.run_id = c->run_id;
	a.bad_commit_id = c->commit_id;
	a.good_commit_id = previous_commit(db, series_id, c->run_id);
	a.before = before;
	a.after = after;
	a.change_pct = isfinite(before) && before != 0 ?
	    (after - before) / fabs(before) * 100 : NAN;
	a.p_value = p_value;
	a.details = details;	/* a leak has no before: its after is bytes/request */
	a.only_if_none_open = 1;
	rc = open_alert(db, &a, alerts);
	json_decref(details);
	return rc;
}

/*
 * A leak: the RSS slope after warm-up above leak_bytes_per_request (1 KiB),
 * growth over the run above 1% of the steady RSS, and a significant upward
 * trend (Mann-Kendall, one-sided p < 0.001, from the worker's info).
 */
/* Whether the run leaks, by the rule below; the figures for the alert go in d. */
static int
leak_found(struct run_ctx *c, struct db *db, double slope, json_t **d)
{
	json_t *ml = json_object_get(c->info, "memory_leak");
	json_t *params = json_object_get(ml, "params");
	double min_slope = setting_num(c, "leak_bytes_per_request", 1024);
	double frac = setting_num(c, "leak_rss_fraction", 0.01);
	double steady = run_value(db, c->run_id, "memory_leak",
	    "rss_steady_bytes");
	double mk_p = json_number_value(json_object_get(ml,
	    "mann_kendall_p_increasing"));
	double requests = json_number_value(json_object_get(params, "requests"));
	double warm = json_number_value(json_object_get(params,
	    "warmup_fraction"));
	double growth = slope * requests * (1 - warm);

	if (json_object_get(ml, "mann_kendall_p_increasing") == NULL)
		mk_p = 1;
	if (d != NULL)
		*d = json_pack("{s:f,s:f,s:f,s:f}", "bytes_per_request", slope,
		    "growth_bytes", growth, "steady_rss_bytes", isfinite(steady) ?
		    steady : 0, "mann_kendall_p", mk_p);
	return slope >= min_slope && isfinite(steady) && growth > frac * steady &&
	    mk_p < 0.001;
}

static int
detect_leak(struct run_ctx *c, struct db *db, int64_t series_id, double slope,
    int64_t *alerts)
{
	json_t *d = NULL;
	int rc;

	if (leak_found(c, db, slope, &d))
		rc = open_condition(c, db, series_id, "leak", NAN, slope,
		    json_number_value(json_object_get(d, "mann_kendall_p")),
		    json_incref(d), alerts);
	else
		rc = alert_recover(db, series_id, "leak", c->run_id, slope, NAN,
		    0);
	json_decref(d);
	return rc;
}

/* The tolerance of an accuracy metric: {"abs": x} or {"rel": x}. */
static void
accuracy_tolerance(const struct run_ctx *c, const char *metric, double *abs_tol,
    double *rel_tol)
{
	json_t *t = json_object_get(json_object_get(c->settings,
	    "accuracy_tolerance"), metric);

	*abs_tol = *rel_tol = NAN;
	if (json_is_number(json_object_get(t, "abs")))
		*abs_tol = json_number_value(json_object_get(t, "abs"));
	else if (json_is_number(json_object_get(t, "rel")))
		*rel_tol = json_number_value(json_object_get(t, "rel"));
	else if (strstr(metric, "agreement") || strstr(metric, "accuracy"))
		*abs_tol = 0.005;	/* half a percentage point */
	else if (strstr(metric, "kl"))
		*abs_tol = 0.001;
	else
		*rel_tol = 0.01;	/* perplexity and the rest: 1% */
}

/* How much worse v is than ref, in the tolerance's terms (> 1 drifts). */
static double
accuracy_excess(double v, double ref, int higher, double abs_tol, double rel_tol)
{
	double worse = higher ? ref - v : v - ref;

	if (!isfinite(ref))
		return 0;
	if (isfinite(abs_tol))
		return worse / abs_tol;
	return ref != 0 ? worse / fabs(ref) / rel_tol : 0;
}

/*
 * Accuracy drift: against the pinned reference (the project's reference
 * commit, or the series' first point) and against the recent window (the
 * median of the last 5 points), so a slow drift is caught as well as a
 * step.  Accuracy is deterministic for a deterministic engine, so a
 * tolerance is the test.
 */
static int
detect_accuracy(struct run_ctx *c, struct db *db, int64_t series_id,
    const char *metric, int higher, double value, int64_t *alerts)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	double ref = NAN, recent = NAN, *v = NULL, abs_tol, rel_tol, e_ref, e_rec;
	int i, rc;

	dbp_int(&p, series_id);
	dbp_str(&p, c->reference);
	if ((rc = db_queryp(&res, db, "SELECT coalesce((SELECT p.value FROM "
	    "points p JOIN commits cm ON cm.id = p.commit_id WHERE "
	    "p.series_id = $1 AND $2::text IS NOT NULL AND cm.sha LIKE $2 || '%' "
	    "ORDER BY p.run_id DESC LIMIT 1), (SELECT p.value FROM points p "
	    "WHERE p.series_id = $1 ORDER BY p.commit_id, p.run_id LIMIT 1))",
	    &p)) < 0)
		return rc;
	ref = dbres_get(res, 0, 0) ? dbres_double(res, 0, 0) : NAN;
	dbres_free(res);
	p.n = 1;
	dbp_int(&p, c->run_id);
	if ((rc = db_queryp(&res, db, "SELECT p.value FROM points p JOIN runs r "
	    "ON r.id = p.run_id JOIN jobs j ON j.id = r.job_id WHERE "
	    "p.series_id = $1 AND p.run_id <> $2 AND r.detected_at IS NOT NULL "
	    "AND cardinality(r.suspect) = 0 AND j.investigation_id IS NULL "
	    "ORDER BY p.commit_id DESC, p.run_id DESC LIMIT 5", &p)) < 0)
		return rc;
	if (dbres_rows(res) > 0) {
		v = xreallocarray(NULL, (size_t)dbres_rows(res), sizeof(*v));
		for (i = 0; i < dbres_rows(res); i++)
			v[i] = dbres_double(res, i, 0);
		stats_median(&recent, v, (size_t)dbres_rows(res));
		free(v);
	}
	dbres_free(res);
	accuracy_tolerance(c, metric, &abs_tol, &rel_tol);
	e_ref = accuracy_excess(value, ref, higher, abs_tol, rel_tol);
	e_rec = accuracy_excess(value, recent, higher, abs_tol, rel_tol);
	if (e_ref > 1 || e_rec > 1)
		return open_condition(c, db, series_id, "accuracy",
		    e_rec > 1 ? recent : ref, value, NAN,
		    json_pack("{s:f,s:f,s:f,s:s}", "reference", ref, "recent",
		    recent, "tolerance", isfinite(abs_tol) ? abs_tol : rel_tol,
		    "tolerance_kind", isfinite(abs_tol) ? "absolute" :
		    "relative"), alerts);
	return alert_recover(db, series_id, "accuracy", c->run_id, value, NAN,
	    0);
}

/* Endurance degradation: sustained tokens/s more than 10% under the initial. */
static int
detect_degradation(struct run_ctx *c, struct db *db, int64_t series_id,
    double ratio, int64_t *alerts)
{
	double limit = 1 - setting_num(c, "degradation", 0.10);

	if (ratio < limit)
		return open_condition(c, db, series_id, "degradation", 1.0,
		    ratio, NAN, json_pack("{s:f,s:f}", "sustained_ratio", ratio,
		    "limit", limit), alerts);
	return alert_recover(db, series_id, "degradation", c->run_id, ratio,
	    NAN, 0);
}

/* Metrics the collector adds to every scenario: judged for performance. */
static int
collector_metric(const char *metric)
{
	return strcmp(metric, "peak_rss_bytes") == 0 ||
	    strcmp(metric, "max_temp_c") == 0 ||
	    strcmp(metric, "mean_power_w") == 0 ||
	    strcmp(metric, "energy_j_per_token") == 0;
}

/* Which detector judges a metric. */
static int
judge_point(struct run_ctx *c, struct db *db, int64_t series_id,
    const char *scenario, const char *metric, const char *unit, int higher,
    int counted, double value, int64_t *alerts)
{
	if (strcmp(scenario, "accuracy") == 0 && !collector_metric(metric))
		return detect_accuracy(c, db, series_id, metric, higher, value,
		    alerts);
	if (strcmp(scenario, "memory_leak") == 0) {
		if (strcmp(metric, "rss_slope_bytes_per_request") == 0)
			return detect_leak(c, db, series_id, value, alerts);
		return 0;	/* the leak detector reads the others */
	}
	if (strcmp(scenario, "endurance") == 0 &&
	    strcmp(metric, "sustained_ratio") == 0)
		return detect_degradation(c, db, series_id, value, alerts);
	if (strcmp(unit, "count") == 0)
		return 0;	/* error counts: zero is normal, ratios meaningless */
	return detect_perf(c, db, series_id, metric, higher, counted, alerts);
}

int
detect_run(struct db *db, int64_t run_id, int64_t *alerts)
{
	struct dbparams p = { .n = 0 };
	struct dbres *pts = NULL;
	struct run_ctx c;
	int i, rc;

	*alerts = 0;
	if ((rc = load_run(&c, db, run_id)) < 0)
		return rc;
	if (c.investigation > 0) {
		/* Judged by its investigation, kept out of the routine. */
		dbp_int(&p, run_id);
		rc = db_queryp(NULL, db, "UPDATE runs SET detected_at = now() "
		    "WHERE id = $1", &p);
		goto out;
	}
	dbp_int(&p, c.project_id);
	/* One project's runs are judged one at a time, whichever server. */
	if ((rc = db_queryp(NULL, db, "SELECT pg_advisory_xact_lock(1234567, "
	    "$1::int)", &p)) < 0 || (rc = check_suspect(&c, db)) < 0)
		goto out;
	p.n = 0;
	dbp_int(&p, run_id);
	if ((rc = db_queryp(&pts, db, "SELECT s.id, s.scenario, s.metric, "
	    "s.unit, s.direction = 'higher', p.value, s.counted FROM points p "
	    "JOIN series s ON s.id = p.series_id WHERE p.run_id = $1 ORDER BY "
	    "s.id", &p)) < 0)
		goto out;
	for (i = 0; i < dbres_rows(pts) && rc == 0; i++)
		rc = judge_point(&c, db, dbres_int(pts, i, 0),
		    dbres_get(pts, i, 1), dbres_get(pts, i, 2),
		    dbres_get(pts, i, 3), dbres_bool(pts, i, 4),
		    dbres_bool(pts, i, 6), dbres_double(pts, i, 5), alerts);
	if (rc == 0)
		rc = db_queryp(NULL, db, "UPDATE runs SET detected_at = now() "
		    "WHERE id = $1", &p);
out:
	dbres_free(pts);
	free_run(&c);
	return rc;
}

int
detect_condition(struct db *db, int64_t run_id, int64_t series_id,
    const char *kind, int64_t ref_commit_id, double *value)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	struct run_ctx c;
	double ref = NAN, abs_tol, rel_tol;
	char metric[128];
	int higher, rc;

	if ((rc = load_run(&c, db, run_id)) < 0)
		return rc;
	dbp_int(&p, run_id);
	dbp_int(&p, series_id);
	dbp_int(&p, ref_commit_id);
	if ((rc = db_queryp(&res, db, "SELECT p.value, s.metric, s.direction = "
	    "'higher', (SELECT q.value FROM points q WHERE q.series_id = $2 AND "
	    "q.commit_id = $3 ORDER BY q.run_id DESC LIMIT 1) FROM points p JOIN "
	    "series s ON s.id = p.series_id WHERE p.run_id = $1 AND "
	    "p.series_id = $2", &p)) < 0)
		goto out;
	if (dbres_rows(res) != 1) {
		rc = BL_ENOTFOUND;
		goto out;
	}
	*value = dbres_double(res, 0, 0);
	snprintf(metric, sizeof(metric), "%s", dbres_get(res, 0, 1));
	higher = dbres_bool(res, 0, 2);
	if (dbres_get(res, 0, 3) != NULL)
		ref = dbres_double(res, 0, 3);
	if (strcmp(kind, "leak") == 0)
		rc = leak_found(&c, db, *value, NULL);
	else if (strcmp(kind, "accuracy") == 0) {
		accuracy_tolerance(&c, metric, &abs_tol, &rel_tol);
		rc = accuracy_excess(*value, ref, higher, abs_tol, rel_tol) > 1;
	} else if (strcmp(kind, "degradation") == 0)
		rc = *value < 1 - setting_num(&c, "degradation", 0.10);
	else
		rc = BL_EINVAL;
out:
	dbres_free(res);
	free_run(&c);
	return rc;
}

/* Sets a run that cannot be judged aside, so it does not block the others. */
static void
detect_give_up(struct db *db, int64_t run_id)
{
	struct dbparams p = { .n = 0 };

	dbp_int(&p, run_id);
	dbp_str(&p, db_errmsg(db));
	if (db_queryp(NULL, db, "UPDATE runs SET detected_at = now(), info = "
	    "info || jsonb_build_object('detect_error', $2::text) WHERE id = $1",
	    &p) < 0)
		log_warnx("cannot set run %" PRId64 " aside: %s", run_id,
		    db_errmsg(db));
}

/*
 * Judges the oldest run not judged yet, in its own transaction.  Returns
 * 1 when a run was judged, 0 when none waits, < 0 on error.
 */
int
detect_next(struct db *db)
{
	struct dbres *res = NULL;
	int64_t run_id, alerts = 0;
	int rc;

	if ((rc = db_begin(db)) < 0)
		return rc;
	if ((rc = db_query(&res, db, "SELECT id FROM runs WHERE detected_at IS "
	    "NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", 0, NULL)) < 0)
		goto fail;
	if (dbres_rows(res) == 0) {
		dbres_free(res);
		db_rollback(db);
		return 0;
	}
	run_id = dbres_int(res, 0, 0);
	dbres_free(res);
	if ((rc = detect_run(db, run_id, &alerts)) < 0 ||
	    (rc = db_commit(db)) < 0) {
		log_warnx("cannot judge run %" PRId64 ": %s", run_id,
		    db_errmsg(db));
		db_rollback(db);
		if (rc != BL_EUNAVAIL)
			detect_give_up(db, run_id);
		return rc;
	}
	if (alerts > 0)
		log_info("run %" PRId64 " judged: %" PRId64 " alert%s opened",
		    run_id, alerts, alerts == 1 ? "" : "s");
	return 1;
fail:
	db_rollback(db);
	return rc;
}
