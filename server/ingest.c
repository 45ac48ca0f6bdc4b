/* Result ingestion: validates a worker's upload and stores its run, series and points in one transaction. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "stats.h"
#include "xmalloc.h"

#define MAX_SCENARIOS		64
#define MAX_METRICS		10000	/* per scenario */
#define MAX_SAMPLES		100000	/* per metric */
#define MAX_TIMESERIES		64	/* per scenario */
#define MAX_TS_POINTS		100000
#define MAX_NAME		128

struct metric {
	const char	*name;
	const char	*unit;
	const char	*direction;
	double		*samples;
	size_t		 n;
	double		 value, lo, hi;
	int		 counted;	/* counted (instructions), not timed */
	int64_t		 series_id;
};

struct tseries {
	const char	*name;
	const char	*unit;
	double		*t;
	double		*v;
	size_t		 n;
};

struct scenario {
	const char	*name;
	struct metric	*metrics;
	size_t		 nmetrics;
	struct tseries	*ts;
	size_t		 nts;
};

/* A validated upload; its strings are borrowed from body, which it holds. */
struct result {
	json_t		*body;
	int64_t		 attempt;
	json_t		*environment;
	json_t		*info;		/* scenario name -> its "info" object */
	const char	*build_log;
	double		 build_duration_s;
	double		 duration_s;
	struct scenario	*sc;
	size_t		 nsc;
	size_t		 npoints;
};

int
ingest_attempt(const struct result *res)
{
	return (int)res->attempt;
}

static int
name_valid(const char *s, const char *extra)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > MAX_NAME)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr(extra, s[i]) == NULL)
			return 0;
	return 1;
}

/* Copies a JSON array of finite numbers; names the bad element on failure. */
static int
parse_numbers(double **out, size_t *n, json_t *arr, size_t min, size_t max,
    const char *path, char *err, size_t errlen)
{
	size_t i, len = json_array_size(arr);
	double *v;
	json_t *e;

	if (!json_is_array(arr)) {
		snprintf(err, errlen, "%s: must be an array of numbers", path);
		return BL_EINVAL;
	}
	if (len < min) {
		snprintf(err, errlen, "%s: must hold at least %zu number%s", path,
		    min, min == 1 ? "" : "s");
		return BL_EINVAL;
	}
	if (len > max) {
		snprintf(err, errlen, "%s: more than %zu numbers", path, max);
		return BL_EINVAL;
	}
	v = xreallocarray(NULL, len ? len : 1, sizeof(*v));
	json_array_foreach(arr, i, e) {
		if (!json_is_number(e) || !isfinite(json_number_value(e))) {
			snprintf(err, errlen, "%s[%zu]: must be a finite number",
			    path, i);
			free(v);
			return BL_EINVAL;
		}
		v[i] = json_number_value(e);
	}
	*out = v;
	*n = len;
	return 0;
}

static int
parse_metric(struct metric *m, const char *name, json_t *obj, const char *path,
    char *err, size_t errlen)
{
	static const char *const fields[] = {
		"unit", "direction", "samples", "value", "counted", NULL
	};
	struct stats_summary sum;
	json_t *samples = NULL;
	int has_value = 0, rc;

	m->name = name;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: must be an object", path);
		return BL_EINVAL;
	}
	if ((rc = jsonx_only(obj, fields, path, err, errlen)) < 0 ||
	    (rc = jsonx_string(&m->unit, obj, "unit", 1, 32, path, err,
	    errlen)) < 0 ||
	    (rc = jsonx_string(&m->direction, obj, "direction", 1, 16, path,
	    err, errlen)) < 0 ||
	    (rc = jsonx_array(&samples, obj, "samples", 1, MAX_SAMPLES, path,
	    err, errlen)) < 0 ||
	    (rc = jsonx_bool(&m->counted, obj, "counted", 0, path, err,
	    errlen)) < 0)
		return rc;
	if (strcmp(m->direction, "lower") != 0 &&
	    strcmp(m->direction, "higher") != 0) {
		snprintf(err, errlen, "%s.direction: must be \"lower\" or "
		    "\"higher\", got \"%s\"", path, m->direction);
		return BL_EINVAL;
	}
	if (json_object_get(obj, "value") != NULL) {
		if ((rc = jsonx_number(&m->value, obj, "value", 1, path, err,
		    errlen)) < 0)
			return rc;
		has_value = 1;
	}
	{
		char sp[512];

		snprintf(sp, sizeof(sp), "%s.samples", path);
		if ((rc = parse_numbers(&m->samples, &m->n, samples, 1,
		    MAX_SAMPLES, sp, err, errlen)) < 0)
			return rc;
	}
	if (stats_summary(&sum, m->samples, m->n) < 0) {
		snprintf(err, errlen, "%s.samples: cannot be summarized", path);
		return BL_EINVAL;
	}
	if (!has_value)
		m->value = sum.p50;
	m->lo = sum.p5;
	m->hi = sum.p95;
	return 0;
}

static int
parse_timeseries(struct tseries *t, const char *name, json_t *obj,
    const char *path, char *err, size_t errlen)
{
	static const char *const fields[] = { "unit", "t", "v", NULL };
	char sp[512];
	size_t nt;
	int rc;

	t->name = name;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: must be an object", path);
		return BL_EINVAL;
	}
	if ((rc = jsonx_only(obj, fields, path, err, errlen)) < 0 ||
	    (rc = jsonx_string(&t->unit, obj, "unit", 1, 32, path, err,
	    errlen)) < 0)
		return rc;
	snprintf(sp, sizeof(sp), "%s.t", path);
	if ((rc = parse_numbers(&t->t, &nt, json_object_get(obj, "t"), 1,
	    MAX_TS_POINTS, sp, err, errlen)) < 0)
		return rc;
	snprintf(sp, sizeof(sp), "%s.v", path);
	if ((rc = parse_numbers(&t->v, &t->n, json_object_get(obj, "v"), 1,
	    MAX_TS_POINTS, sp, err, errlen)) < 0)
		return rc;
	if (nt != t->n) {
		snprintf(err, errlen, "%s: t has %zu values but v has %zu", path,
		    nt, t->n);
		return BL_EINVAL;
	}
	return 0;
}

static int
parse_scenario(struct scenario *sc, struct result *res, const char *name,
    json_t *obj, char *err, size_t errlen)
{
	static const char *const fields[] = {
		"metrics", "timeseries", "info", NULL
	};
	char path[200], mpath[400];
	json_t *metrics = NULL, *ts = NULL, *info = NULL, *v;
	const char *key;
	int rc;

	snprintf(path, sizeof(path), "$.scenarios.%s", name);
	sc->name = name;
	if (!name_valid(name, "_") || strlen(name) > 64) {
		snprintf(err, errlen, "%s: a scenario name holds 1 to 64 letters, "
		    "digits and '_'", path);
		return BL_EINVAL;
	}
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: must be an object", path);
		return BL_EINVAL;
	}
	if ((rc = jsonx_only(obj, fields, path, err, errlen)) < 0 ||
	    (rc = jsonx_object(&metrics, obj, "metrics", 1, path, err,
	    errlen)) < 0 ||
	    (rc = jsonx_object(&ts, obj, "timeseries", 0, path, err,
	    errlen)) < 0 ||
	    (rc = jsonx_object(&info, obj, "info", 0, path, err, errlen)) < 0)
		return rc;
	if (json_object_size(metrics) == 0 ||
	    json_object_size(metrics) > MAX_METRICS) {
		snprintf(err, errlen, "%s.metrics: must hold 1 to %d metrics",
		    path, MAX_METRICS);
		return BL_EINVAL;
	}
	sc->metrics = xcalloc(json_object_size(metrics), sizeof(*sc->metrics));
	json_object_foreach(metrics, key, v) {
		snprintf(mpath, sizeof(mpath), "%s.metrics.%s", path, key);
		if (!name_valid(key, "_.-")) {
			snprintf(err, errlen, "%s: a metric name holds 1 to %d "
			    "letters, digits, '_', '.' and '-'", mpath, MAX_NAME);
			return BL_EINVAL;
		}
		if ((rc = parse_metric(&sc->metrics[sc->nmetrics++], key, v,
		    mpath, err, errlen)) < 0)
			return rc;
	}
	res->npoints += sc->nmetrics;
	if (ts != NULL) {
		if (json_object_size(ts) > MAX_TIMESERIES) {
			snprintf(err, errlen, "%s.timeseries: more than %d series",
			    path, MAX_TIMESERIES);
			return BL_EINVAL;
		}
		sc->ts = xcalloc(json_object_size(ts) + 1, sizeof(*sc->ts));
		json_object_foreach(ts, key, v) {
			snprintf(mpath, sizeof(mpath), "%s.timeseries.%s", path,
			    key);
			if (!name_valid(key, "_.-")) {
				snprintf(err, errlen, "%s: a series name holds "
				    "letters, digits, '_', '.' and '-'", mpath);
				return BL_EINVAL;
			}
			if ((rc = parse_timeseries(&sc->ts[sc->nts++], key, v,
			    mpath, err, errlen)) < 0)
				return rc;
		}
	}
	if (info != NULL)
		json_object_set(res->info, name, info);
	return 0;
}

/* The environment fingerprint: these fields are required, the rest free-form scalars. */
static int
parse_environment(json_t *env, char *err, size_t errlen)
{
	static const char *const strings[] = {
		"cpu_model", "kernel", "worker_version", NULL
	};
	static const char *const optional[] = {
		"governor", "compiler", "engine_commit", "hostname", NULL
	};
	const char *s, *key;
	int64_t cores;
	json_t *v;
	size_t i;
	int rc;

	for (i = 0; strings[i] != NULL; i++)
		if ((rc = jsonx_string(&s, env, strings[i], 1, 256,
		    "$.environment", err, errlen)) < 0)
			return rc;
	for (i = 0; optional[i] != NULL; i++)
		if ((rc = jsonx_string(&s, env, optional[i], 0, 256,
		    "$.environment", err, errlen)) < 0)
			return rc;
	if ((rc = jsonx_int(&cores, env, "cores", 1, 1, 1 << 20,
	    "$.environment", err, errlen)) < 0)
		return rc;
	json_object_foreach(env, key, v) {
		if (json_is_object(v) || json_is_array(v)) {
			snprintf(err, errlen, "$.environment.%s: must be a string, "
			    "number or boolean", key);
			return BL_EINVAL;
		}
	}
	return 0;
}

int
ingest_parse(struct result **out, json_t *body, char *err, size_t errlen)
{
	static const char *const fields[] = {
		"attempt", "environment", "build", "duration_s", "scenarios",
		NULL
	};
	static const char *const build_fields[] = {
		"log_tail", "duration_s", NULL
	};
	struct result *res = xcalloc(1, sizeof(*res));
	json_t *scenarios = NULL, *build = NULL, *v;
	const char *key;
	int rc;

	res->body = json_incref(body);
	res->info = json_object();
	res->build_log = "";
	res->build_duration_s = NAN;
	res->duration_s = NAN;
	if ((rc = jsonx_only(body, fields, "$", err, errlen)) < 0 ||
	    (rc = jsonx_int(&res->attempt, body, "attempt", 1, 1, 1000000, "$",
	    err, errlen)) < 0 ||
	    (rc = jsonx_object(&res->environment, body, "environment", 1, "$",
	    err, errlen)) < 0 ||
	    (rc = parse_environment(res->environment, err, errlen)) < 0 ||
	    (rc = jsonx_object(&build, body, "build", 0, "$", err, errlen)) < 0 ||
	    (rc = jsonx_number(&res->duration_s, body, "duration_s", 0, "$",
	    err, errlen)) < 0 ||
	    (rc = jsonx_object(&scenarios, body, "scenarios", 1, "$", err,
	    errlen)) < 0)
		goto fail;
	if (build != NULL &&
	    ((rc = jsonx_only(build, build_fields, "$.build", err, errlen)) < 0 ||
	    (rc = jsonx_string(&res->build_log, build, "log_tail", 0, 1 << 20,
	    "$.build", err, errlen)) < 0 ||
	    (rc = jsonx_number(&res->build_duration_s, build, "duration_s", 0,
	    "$.build", err, errlen)) < 0))
		goto fail;
	if (json_object_size(scenarios) == 0 ||
	    json_object_size(scenarios) > MAX_SCENARIOS) {
		snprintf(err, errlen, "$.scenarios: must hold 1 to %d scenarios",
		    MAX_SCENARIOS);
		rc = BL_EINVAL;
		goto fail;
	}
	res->sc = xcalloc(json_object_size(scenarios), sizeof(*res->sc));
	json_object_foreach(scenarios, key, v) {
		if ((rc = parse_scenario(&res->sc[res->nsc++], res, key, v, err,
		    errlen)) < 0)
			goto fail;
	}
	*out = res;
	return 0;
fail:
	ingest_free(res);
	return rc;
}

void
ingest_free(struct result *res)
{
	size_t i, j;

	if (res == NULL)
		return;
	for (i = 0; i < res->nsc; i++) {
		for (j = 0; j < res->sc[i].nmetrics; j++)
			free(res->sc[i].metrics[j].samples);
		for (j = 0; j < res->sc[i].nts; j++) {
			free(res->sc[i].ts[j].t);
			free(res->sc[i].ts[j].v);
		}
		free(res->sc[i].metrics);
		free(res->sc[i].ts);
	}
	free(res->sc);
	json_decref(res->info);
	json_decref(res->body);
	free(res);
}

/* Appends s as an element of a PostgreSQL array literal, quoted and escaped. */
static void
pgarray_add_text(struct buf *b, const char *s)
{
	if (b->len > 1)
		buf_addstr(b, ",");
	buf_addstr(b, "\"");
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			buf_add(b, "\\", 1);
		buf_add(b, s, 1);
	}
	buf_addstr(b, "\"");
}

/* Appends {v1,v2,...} with round-trip precision. */
static void
pgarray_add_numbers(struct buf *b, const double *v, size_t n)
{
	size_t i;

	buf_addstr(b, "{");
	for (i = 0; i < n; i++)
		buf_addf(b, i ? ",%.17g" : "%.17g", v[i]);
	buf_addstr(b, "}");
}

struct job_row {
	int64_t	project_id, target_id, commit_id, worker_id, attempt;
	char	state[16];
	char	branch[256];
};

/* Locks the job's row for the rest of the transaction and reads it. */
static int
lock_job(struct job_row *out, struct db *db, int64_t job_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	dbp_int(&p, job_id);
	if ((rc = db_queryp(&res, db, "SELECT project_id, target_id, "
	    "commit_id, coalesce(worker_id, 0), attempt, state, branch FROM "
	    "jobs WHERE id = $1 FOR UPDATE", &p)) < 0)
		return rc;
	if (dbres_rows(res) != 1) {
		dbres_free(res);
		return BL_ENOTFOUND;
	}
	out->project_id = dbres_int(res, 0, 0);
	out->target_id = dbres_int(res, 0, 1);
	out->commit_id = dbres_int(res, 0, 2);
	out->worker_id = dbres_int(res, 0, 3);
	out->attempt = dbres_int(res, 0, 4);
	snprintf(out->state, sizeof(out->state), "%s", dbres_get(res, 0, 5));
	snprintf(out->branch, sizeof(out->branch), "%s", dbres_get(res, 0, 6));
	dbres_free(res);
	return 0;
}

/*
 * Creates the series of every metric not seen before and fills in the ids
 * of all, in two statements whatever the number of metrics: an insert of
 * the missing ones only (so existing series take no sequence value), then
 * a read back in the order the metrics were sent (WITH ORDINALITY), so no
 * matching is needed.  A metric whose unit or direction differs from its
 * series' is refused.
 */
static int
ensure_series(struct db *db, const struct job_row *job, struct result *res,
    char *err, size_t errlen)
{
	struct buf scen, met, unit, dir, cnt;
	struct dbparams p = { .n = 0 };
	struct dbres *rows = NULL;
	struct metric **flat;
	struct metric *m;
	size_t i, j, k = 0;
	int rc, row;

	flat = xreallocarray(NULL, res->npoints ? res->npoints : 1,
	    sizeof(*flat));
	buf_init(&scen, SIZE_MAX / 2);
	buf_init(&met, SIZE_MAX / 2);
	buf_init(&unit, SIZE_MAX / 2);
	buf_init(&dir, SIZE_MAX / 2);
	buf_init(&cnt, SIZE_MAX / 2);
	buf_addstr(&cnt, "{");
	buf_addstr(&scen, "{");
	buf_addstr(&met, "{");
	buf_addstr(&unit, "{");
	buf_addstr(&dir, "{");
	for (i = 0; i < res->nsc; i++) {
		for (j = 0; j < res->sc[i].nmetrics; j++) {
			m = &res->sc[i].metrics[j];
			flat[k++] = m;
			pgarray_add_text(&scen, res->sc[i].name);
			pgarray_add_text(&met, m->name);
			pgarray_add_text(&unit, m->unit);
			pgarray_add_text(&dir, m->direction);
			pgarray_add_text(&cnt, m->counted ? "t" : "f");
		}
	}
	buf_addstr(&cnt, "}");
	buf_addstr(&scen, "}");
	buf_addstr(&met, "}");
	buf_addstr(&unit, "}");
	buf_addstr(&dir, "}");
	dbp_int(&p, job->project_id);
	dbp_int(&p, job->target_id);
	dbp_str(&p, job->branch);
	dbp_str(&p, scen.ptr);
	dbp_str(&p, met.ptr);
	dbp_str(&p, unit.ptr);
	dbp_str(&p, dir.ptr);
	dbp_str(&p, cnt.ptr);
	if ((rc = db_queryp(NULL, db, "INSERT INTO series (project_id, "
	    "target_id, branch, scenario, metric, unit, direction, counted) "
	    "SELECT $1, $2, $3, x.s, x.m, x.u, x.d::direction, x.c FROM "
	    "unnest($4::text[], $5::text[], $6::text[], $7::text[], "
	    "$8::bool[]) AS x(s, m, u, d, c) WHERE NOT "
	    "EXISTS (SELECT 1 FROM series e WHERE e.project_id = $1 AND "
	    "e.target_id = $2 AND e.branch = $3 AND e.scenario = x.s AND "
	    "e.metric = x.m) ON CONFLICT DO NOTHING", &p)) < 0)
		goto out;
	p.n = 5;
	if ((rc = db_queryp(&rows, db, "SELECT s.id, s.unit, s.direction, x.i, "
	    "s.counted "
	    "FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS x(sc, m, i) "
	    "JOIN series s ON s.scenario = x.sc AND s.metric = x.m AND "
	    "s.project_id = $1 AND s.target_id = $2 AND s.branch = $3 "
	    "ORDER BY x.i", &p)) < 0)
		goto out;
	if ((size_t)dbres_rows(rows) != k) {
		snprintf(err, errlen, "cannot create the series of this result");
		rc = BL_ERROR;
		goto out;
	}
	for (row = 0; row < dbres_rows(rows); row++) {
		m = flat[dbres_int(rows, row, 3) - 1];
		m->series_id = dbres_int(rows, row, 0);
		if (strcmp(m->unit, dbres_get(rows, row, 1)) != 0 ||
		    strcmp(m->direction, dbres_get(rows, row, 2)) != 0 ||
		    m->counted != dbres_bool(rows, row, 4)) {
			for (i = 0; i < res->nsc; i++)
				if (m >= res->sc[i].metrics &&
				    m < res->sc[i].metrics + res->sc[i].nmetrics)
					break;
			snprintf(err, errlen, "$.scenarios.%s.metrics.%s: the "
			    "series is recorded in '%s' with %s is better%s, "
			    "got '%s' with %s%s", res->sc[i].name, m->name,
			    dbres_get(rows, row, 1), dbres_get(rows, row, 2),
			    dbres_bool(rows, row, 4) ? ", counted" : "",
			    m->unit, m->direction, m->counted ? ", counted" : "");
			rc = BL_EINVAL;
			goto out;
		}
	}
out:
	free(flat);
	dbres_free(rows);
	buf_free(&scen);
	buf_free(&met);
	buf_free(&unit);
	buf_free(&dir);
	buf_free(&cnt);
	return rc;
}

/* Appends integers in network byte order, as binary COPY wants them. */
static void
put16(struct buf *b, uint16_t v)
{
	unsigned char x[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	buf_add(b, x, 2);
}

static void
put32(struct buf *b, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)(v >> 24),
	    (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v };

	buf_add(b, x, 4);
}

static void
put64(struct buf *b, uint64_t v)
{
	put32(b, (uint32_t)(v >> 32));
	put32(b, (uint32_t)v);
}

/* A float8 field: its length, then the IEEE 754 bits. */
static void
put_float8(struct buf *b, double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	put32(b, 8);
	put64(b, u);
}

static void
put_int8(struct buf *b, int64_t v)
{
	put32(b, 8);
	put64(b, (uint64_t)v);
}

/*
 * Streams every point of the result into the points table with a binary
 * COPY: numbers travel as their bits, so neither side prints or parses
 * text (which cost most of the server's time with text COPY).  Formats
 * from PostgreSQL's documentation of COPY BINARY and of array_send: a
 * float8[] is ndim, has-nulls, element type (701), then length and lower
 * bound of its one dimension, then each element as length and bits.
 */
static int
copy_points(struct db *db, const struct job_row *job, const struct result *res,
    int64_t run_id, int64_t ts_us)
{
	static const char header[11] = "PGCOPY\n\377\r\n";
	const struct metric *m;
	struct buf b;
	size_t i, j, k;
	int rc;

	if ((rc = db_copy_begin(db, "COPY points (series_id, ts, commit_id, "
	    "run_id, value, lo, hi, n, samples) FROM STDIN WITH (FORMAT "
	    "binary)")) < 0)
		return rc;
	buf_init(&b, SIZE_MAX / 2);
	buf_add(&b, header, sizeof(header));	/* its NUL is part of it */
	put32(&b, 0);				/* flags */
	put32(&b, 0);				/* header extension */
	for (i = 0; i < res->nsc; i++) {
		for (j = 0; j < res->sc[i].nmetrics; j++) {
			m = &res->sc[i].metrics[j];
			put16(&b, 9);
			put_int8(&b, m->series_id);
			put_int8(&b, ts_us);
			put_int8(&b, job->commit_id);
			put_int8(&b, run_id);
			put_float8(&b, m->value);
			put_float8(&b, m->lo);
			put_float8(&b, m->hi);
			put32(&b, 4);
			put32(&b, (uint32_t)m->n);
			put32(&b, (uint32_t)(20 + 12 * m->n));
			put32(&b, 1);		/* one dimension */
			put32(&b, 0);		/* no NULLs */
			put32(&b, 701);		/* float8 */
			put32(&b, (uint32_t)m->n);
			put32(&b, 1);		/* lower bound */
			for (k = 0; k < m->n; k++)
				put_float8(&b, m->samples[k]);
			if (b.len > 256 * 1024) {
				if ((rc = db_copy_put(db, b.ptr, b.len)) < 0)
					goto out;
				buf_reset(&b);
			}
		}
	}
	put16(&b, 0xffff);			/* end of data */
	if ((rc = db_copy_put(db, b.ptr, b.len)) < 0)
		goto out;
	rc = db_copy_end(db, NULL);
	buf_free(&b);
	return rc;
out:
	db_copy_end(db, "aborted");
	buf_free(&b);
	return rc;
}

static int
store_timeseries(struct db *db, const struct result *res, int64_t run_id)
{
	const struct tseries *t;
	struct buf tb, vb;
	size_t i, j;
	int rc = 0;

	buf_init(&tb, SIZE_MAX / 2);
	buf_init(&vb, SIZE_MAX / 2);
	for (i = 0; i < res->nsc && rc == 0; i++) {
		for (j = 0; j < res->sc[i].nts && rc == 0; j++) {
			struct dbparams p = { .n = 0 };

			t = &res->sc[i].ts[j];
			buf_reset(&tb);
			buf_reset(&vb);
			pgarray_add_numbers(&tb, t->t, t->n);
			pgarray_add_numbers(&vb, t->v, t->n);
			dbp_int(&p, run_id);
			dbp_str(&p, res->sc[i].name);
			dbp_str(&p, t->name);
			dbp_str(&p, t->unit);
			dbp_str(&p, tb.ptr);
			dbp_str(&p, vb.ptr);
			rc = db_queryp(NULL, db, "INSERT INTO run_series (run_id, "
			    "scenario, name, unit, t, v) VALUES ($1, $2, $3, $4, "
			    "$5::float8[], $6::float8[])", &p);
		}
	}
	buf_free(&tb);
	buf_free(&vb);
	return rc;
}

/* Returns the stored answer to a result already uploaded for (job, attempt). */
static int
stored_response(json_t **out, struct db *db, int64_t job_id,
    const struct worker_ident *w, int64_t attempt, char *err, size_t errlen)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	dbp_int(&p, job_id);
	dbp_int(&p, attempt);
	if ((rc = db_queryp(&res, db, "SELECT response, worker_id FROM runs "
	    "WHERE job_id = $1 AND attempt = $2", &p)) < 0)
		return rc;
	if (dbres_rows(res) == 0) {
		dbres_free(res);
		return BL_ENOTFOUND;
	}
	if (dbres_int(res, 0, 1) != w->worker_id) {
		snprintf(err, errlen, "job '%" PRId64 "' attempt %" PRId64
		    " was reported by another worker", job_id, attempt);
		rc = BL_ECONFLICT;
	} else {
		*out = json_loads(dbres_get(res, 0, 0), 0, NULL);
		json_object_set_new(*out, "duplicate", json_true());
		rc = 0;
	}
	dbres_free(res);
	return rc;
}

int
ingest_store(json_t **out, struct db *db, int64_t job_id,
    const struct worker_ident *w, const struct result *res, char *err,
    size_t errlen)
{
	struct dbparams p = { .n = 0 };
	struct dbres *q = NULL;
	struct job_row job;
	json_t *answer = NULL;
	char *env = NULL, *info = NULL, *text = NULL;
	int64_t run_id, ts_us;
	int rc;

	snprintf(err, errlen, "cannot store the result of job '%" PRId64 "'",
	    job_id);
	if ((rc = db_begin(db)) < 0)
		return rc;
	if ((rc = lock_job(&job, db, job_id)) < 0) {
		if (rc == BL_ENOTFOUND)
			snprintf(err, errlen, "no job '%" PRId64 "'", job_id);
		goto out;
	}
	rc = stored_response(out, db, job_id, w, res->attempt, err, errlen);
	if (rc == 0) {
		db_rollback(db);	/* a retried upload: nothing to write */
		return 0;
	}
	if (rc != BL_ENOTFOUND)
		goto out;
	if (strcmp(job.state, "running") != 0 || job.worker_id != w->worker_id ||
	    job.attempt != res->attempt) {
		snprintf(err, errlen, "job '%" PRId64 "' attempt %" PRId64 " is "
		    "not leased to this worker (job is %s, attempt %" PRId64 ")",
		    job_id, res->attempt, job.state, job.attempt);
		rc = BL_ECONFLICT;
		goto out;
	}
	if ((rc = ensure_series(db, &job, (struct result *)res, err,
	    errlen)) < 0)
		goto out;
	env = jsonx_dump(res->environment);
	info = jsonx_dump(res->info);
	dbp_int(&p, job_id);
	dbp_int(&p, res->attempt);
	dbp_int(&p, w->worker_id);
	dbp_str(&p, env);
	dbp_str(&p, res->build_log);
	dbp_num(&p, res->build_duration_s);
	dbp_num(&p, res->duration_s);
	dbp_str(&p, info);
	if ((rc = db_queryp(&q, db, "INSERT INTO runs (job_id, attempt, "
	    "worker_id, environment, build_log, build_duration_s, duration_s, "
	    "info, response) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, "
	    "$8::jsonb, '{}') RETURNING id, (extract(epoch FROM created_at - "
	    "'2000-01-01T00:00:00Z') * 1000000)::int8, "
	    "points_partition_for(created_at)", &p)) < 0)
		goto out;
	run_id = dbres_int(q, 0, 0);
	ts_us = dbres_int(q, 0, 1);	/* binary timestamptz: µs since 2000 */
	if ((rc = copy_points(db, &job, res, run_id, ts_us)) < 0 ||
	    (rc = store_timeseries(db, res, run_id)) < 0)
		goto out;
	answer = json_pack("{s:I,s:I,s:I,s:I,s:I}", "job_id", (json_int_t)job_id,
	    "attempt", (json_int_t)res->attempt, "run_id", (json_int_t)run_id,
	    "points", (json_int_t)res->npoints, "scenarios",
	    (json_int_t)res->nsc);
	text = jsonx_dump(answer);
	p.n = 0;
	dbp_int(&p, run_id);
	dbp_str(&p, text);
	if ((rc = db_queryp(NULL, db, "UPDATE runs SET response = $2::jsonb "
	    "WHERE id = $1", &p)) < 0)
		goto out;
	p.n = 0;
	dbp_int(&p, job_id);
	if ((rc = db_queryp(NULL, db, "UPDATE jobs SET state = 'done', "
	    "finished_at = now(), lease_expires_at = NULL, fail_reason = NULL "
	    "WHERE id = $1", &p)) < 0 || (rc = db_commit(db)) < 0)
		goto out;
	metrics_points_add((int64_t)res->npoints);
	log_info("job %" PRId64 " attempt %" PRId64 ": stored run %" PRId64
	    " with %zu points", job_id, res->attempt, run_id, res->npoints);
	*out = answer;
	answer = NULL;
out:
	if (rc < 0) {
		if (rc == BL_ERROR || rc == BL_EUNAVAIL) {
			log_warnx("job %" PRId64 ": %s", job_id, db_errmsg(db));
			snprintf(err, errlen, "cannot store the result of job '%"
			    PRId64 "': database error", job_id);
		}
		db_rollback(db);
	}
	json_decref(answer);
	dbres_free(q);
	free(env);
	free(info);
	free(text);
	return rc;
}
