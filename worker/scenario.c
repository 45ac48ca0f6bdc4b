/* The benchmark scenarios: latency, throughput, stress, endurance, memory_leak, accuracy and instructions. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "collector.h"
#include "log.h"
#include "stats.h"
#include "worker.h"
#include "xmalloc.h"

/* A growable array of doubles: the raw samples of one metric. */
struct vec {
	double	*v;
	size_t	 n, cap;
};

static void
vec_push(struct vec *a, double x)
{
	if (!isfinite(x))
		return;
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
	}
	a->v[a->n++] = x;
}

static void
vec_free(struct vec *a)
{
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* What every scenario shares: the engine, its collector, the result being built. */
struct run {
	const char			*name;
	const struct manifest		*m;
	const struct worker_settings	*s;
	const char			*dir;
	json_t				*params;
	struct engine			*engine;
	struct collector		*coll;
	json_t				*metrics;
	json_t				*timeseries;
	json_t				*info;
	volatile int			*cancel;
	int64_t				 next_id;
	uint64_t			 requests, tokens;
	int				 errors;
	double				 t0;
	double				 next_progress;
	char				*err;
	size_t				 errlen;
};

static int64_t
param_int(const struct run *r, const char *key)
{
	return json_integer_value(json_object_get(r->params, key));
}

static double
param_num(const struct run *r, const char *key)
{
	return json_number_value(json_object_get(r->params, key));
}

/*
 * Adds a metric with its raw samples and, in info, their summary.  A
 * counted metric (instructions, not time) says so: the server then needs
 * one run per commit where a timed one needs pairs.
 */
static void
metric_add(struct run *r, const char *name, const char *unit, int higher,
    const double *v, size_t n, int counted)
{
	struct stats_summary sum;
	json_t *samples;
	size_t i;

	if (n == 0)
		return;
	samples = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(samples, json_real(v[i]));
	json_object_set_new(r->metrics, name, json_pack("{s:s,s:s,s:o}",
	    "unit", unit, "direction", higher ? "higher" : "lower", "samples",
	    samples));
	if (counted)
		json_object_set_new(json_object_get(r->metrics, name), "counted",
		    json_true());
	if (stats_summary(&sum, v, n) == 0)
		json_object_set_new(json_object_get(r->info, "summary"), name,
		    json_pack("{s:I,s:f,s:f,s:f,s:f,s:f}", "n", (json_int_t)n,
		    "mean", sum.mean, "p50", sum.p50, "p95", sum.p95, "p99",
		    sum.p99, "max", sum.max));
}

static void
metric(struct run *r, const char *name, const char *unit, int higher,
    const double *v, size_t n)
{
	metric_add(r, name, unit, higher, v, n, 0);
}

static void
metric1(struct run *r, const char *name, const char *unit, int higher,
    double v)
{
	if (isfinite(v))
		metric(r, name, unit, higher, &v, 1);
}

/* Adds a time series, thinned evenly to the configured number of points. */
static void
timeseries(struct run *r, const char *name, const char *unit,
    const double *t, const double *v, size_t n)
{
	size_t max = (size_t)r->s->max_timeseries_points, i, k, keep;
	json_t *jt, *jv;

	if (n == 0)
		return;
	keep = n < max ? n : max;
	jt = json_array();
	jv = json_array();
	for (k = 0; k < keep; k++) {
		i = keep == 1 ? 0 : k * (n - 1) / (keep - 1);
		if (!isfinite(t[i]) || !isfinite(v[i]))
			continue;
		json_array_append_new(jt, json_real(t[i]));
		json_array_append_new(jv, json_real(v[i]));
	}
	if (json_array_size(jt) == 0) {
		json_decref(jt);
		json_decref(jv);
		return;
	}
	json_object_set_new(r->timeseries, name, json_pack("{s:s,s:o,s:o}",
	    "unit", unit, "t", jt, "v", jv));
}

static int
cancelled(struct run *r)
{
	if (r->cancel != NULL && *r->cancel) {
		snprintf(r->err, r->errlen, "scenario '%s' cancelled", r->name);
		return 1;
	}
	return 0;
}

/* Logs "elapsed of duration, requests done" at most every 10 s. */
static void
progress(struct run *r, double duration_s)
{
	double now = clock_mono_s() - r->t0;

	if (now < r->next_progress)
		return;
	r->next_progress = now + 10;
	if (duration_s > 0)
		log_info("%s: %.0f of %.0f s, %" PRIu64 " requests done", r->name,
		    now, duration_s, r->requests);
	else
		log_info("%s: %.0f s, %" PRIu64 " requests done", r->name, now,
		    r->requests);
}

static void
request(struct run *r, struct request_spec *rq, int prompt, int gen)
{
	rq->id = ++r->next_id;
	rq->prompt_tokens = prompt;
	rq->max_tokens = gen;
	rq->temperature = param_num(r, "temperature");
	rq->seed = (uint64_t)rq->id;
}

/* Counts a reply; an error reply is counted, not fatal. */
static void
account(struct run *r, const struct reply *rp)
{
	r->requests++;
	if (!rp->ok) {
		if (r->errors++ < 3)
			log_warnx("%s: request %" PRId64 " failed: %s", r->name,
			    rp->id, rp->error);
		return;
	}
	r->tokens += (uint64_t)(rp->tokens > 0 ? rp->tokens : 0);
	if (r->coll != NULL)
		collector_mark(r->coll, r->requests, r->tokens);
}

/* One request, waited for. */
static int
call(struct run *r, int prompt, int gen, struct reply *rp)
{
	struct request_spec rq;
	int rc;

	request(r, &rq, prompt, gen);
	if ((rc = engine_call(r->engine, &rq, rp, r->err, r->errlen)) < 0)
		return rc;
	account(r, rp);
	return 0;
}

/*
 * Warms the engine up: at least `warmup` requests and at least `warmup_s`
 * seconds of them, unmeasured.  Measured on these VMs, a run's median
 * tokens/s varied by 7-10% between fresh engine processes after 3 warm-up
 * requests and by 2% after 2 s of them: caches, page faults and the CPU's
 * clock settle in time, not in a count.
 */
static int
warm_up(struct run *r, int prompt, int gen)
{
	json_t *n = json_object_get(r->params, "warmup");
	int64_t count = n ? json_integer_value(n) : 1, k;
	double until = clock_mono_s() + param_num(r, "warmup_s");
	struct reply rp = { 0 };
	int rc = 0;

	reply_clear(&rp);
	for (k = 0; rc == 0 && (k < count || clock_mono_s() < until); k++) {
		if (cancelled(r)) {
			rc = BL_ECONFLICT;
			break;
		}
		rc = call(r, prompt, gen, &rp);
	}
	reply_clear(&rp);
	return rc;
}

/* Decode speed of one reply: tokens per second over its total time. */
static double
reply_tps(const struct reply *rp)
{
	double ms = isfinite(rp->total_ms) ? rp->total_ms : rp->wall_ms;

	if (!rp->ok || rp->tokens <= 0 || !(ms > 0))
		return NAN;
	return rp->tokens / (ms / 1000.0);
}

/* Mean time between tokens after the first. */
static double
reply_itl(const struct reply *rp)
{
	double sum = 0;
	size_t i;

	if (!rp->ok || rp->ntoken_ms < 2)
		return NAN;
	for (i = 1; i < rp->ntoken_ms; i++)
		sum += rp->token_ms[i];
	return sum / (double)(rp->ntoken_ms - 1);
}

static int
latency(struct run *r)
{
	json_t *prompts = json_object_get(r->params, "prompt_tokens");
	json_t *gens = json_object_get(r->params, "max_tokens");
	int64_t reps = param_int(r, "repetitions");
	struct vec ttft = { 0 }, itl = { 0 }, tps = { 0 }, total = { 0 };
	struct vec all_tps = { 0 };
	struct reply rp = { 0 };
	size_t i, j;
	int64_t k;
	char name[128];
	int rc = 0, p, g;

	reply_clear(&rp);
	rc = warm_up(r, (int)json_integer_value(json_array_get(prompts, 0)),
	    (int)json_integer_value(json_array_get(gens, 0)));
	for (i = 0; i < json_array_size(prompts) && rc == 0; i++) {
		for (j = 0; j < json_array_size(gens) && rc == 0; j++) {
			p = (int)json_integer_value(json_array_get(prompts, i));
			g = (int)json_integer_value(json_array_get(gens, j));
			for (k = 0; k < reps && rc == 0; k++) {
				if (cancelled(r)) {
					rc = BL_ECONFLICT;
					break;
				}
				if ((rc = call(r, p, g, &rp)) < 0)
					break;
				vec_push(&ttft, rp.ok ? rp.ttft_ms : NAN);
				vec_push(&itl, reply_itl(&rp));
				vec_push(&tps, reply_tps(&rp));
				vec_push(&all_tps, reply_tps(&rp));
				vec_push(&total, rp.ok ? rp.wall_ms : NAN);
				progress(r, 0);
			}
			snprintf(name, sizeof(name), "p%d_g%d.ttft_ms", p, g);
			metric(r, name, "ms", 0, ttft.v, ttft.n);
			snprintf(name, sizeof(name), "p%d_g%d.itl_ms", p, g);
			metric(r, name, "ms", 0, itl.v, itl.n);
			snprintf(name, sizeof(name), "p%d_g%d.tokens_per_s", p, g);
			metric(r, name, "tok/s", 1, tps.v, tps.n);
			snprintf(name, sizeof(name), "p%d_g%d.total_ms", p, g);
			metric(r, name, "ms", 0, total.v, total.n);
			ttft.n = itl.n = tps.n = total.n = 0;
		}
	}
	metric(r, "tokens_per_s", "tok/s", 1, all_tps.v, all_tps.n);
	reply_clear(&rp);
	vec_free(&ttft);
	vec_free(&itl);
	vec_free(&tps);
	vec_free(&total);
	vec_free(&all_tps);
	return rc;
}

/*
 * Keeps `level` requests in flight until `count` have been answered, or
 * until `until_s` (seconds on the run's clock) when count is 0.  Returns
 * the answered requests' latencies and the tokens they produced.
 */
static int
closed_loop(struct run *r, int level, int64_t count, double until_s,
    int prompt, int gen, struct vec *lat, uint64_t *tokens, int *errors,
    struct vec *window_tps, double window_s, double duration_s)
{
	struct request_spec rq;
	struct reply rp = { 0 };
	int64_t sent = 0, done = 0;
	uint64_t win_tokens = 0;
	double win_start = clock_mono_s();
	int rc = 0;

	reply_clear(&rp);
	for (;;) {
		int more = count > 0 ? sent < count :
		    clock_mono_s() - r->t0 < until_s;

		while (more && r->engine->inflight < level) {
			request(r, &rq, prompt, gen);
			if ((rc = engine_send(r->engine, &rq, r->err,
			    r->errlen)) < 0)
				goto out;
			sent++;
			more = count > 0 ? sent < count :
			    clock_mono_s() - r->t0 < until_s;
		}
		if (r->engine->inflight == 0)
			break;
		if ((rc = engine_recv(r->engine, &rp, r->err, r->errlen)) < 0)
			goto out;
		account(r, &rp);
		done++;
		if (rp.ok) {
			vec_push(lat, rp.wall_ms);
			*tokens += (uint64_t)rp.tokens;
			win_tokens += (uint64_t)rp.tokens;
		} else
			(*errors)++;
		if (window_tps != NULL && clock_mono_s() - win_start >= window_s) {
			vec_push(window_tps, (double)win_tokens /
			    (clock_mono_s() - win_start));
			win_tokens = 0;
			win_start = clock_mono_s();
		}
		if (cancelled(r)) {
			rc = BL_ECONFLICT;
			goto out;
		}
		progress(r, duration_s);
	}
out:
	reply_clear(&rp);
	(void)done;
	return rc;
}

static int
throughput(struct run *r)
{
	json_t *levels = json_object_get(r->params, "concurrency");
	int64_t requests = param_int(r, "requests");
	int prompt = (int)param_int(r, "prompt_tokens");
	int gen = (int)param_int(r, "max_tokens");
	struct vec lat = { 0 };
	double best = 0, t, tps;
	uint64_t tokens;
	char name[96];
	size_t i;
	int rc, level, errors;

	rc = warm_up(r, prompt, gen);
	for (i = 0; i < json_array_size(levels) && rc == 0; i++) {
		level = (int)json_integer_value(json_array_get(levels, i));
		tokens = 0;
		errors = 0;
		lat.n = 0;
		t = clock_mono_s();
		rc = closed_loop(r, level, requests, 0, prompt, gen, &lat,
		    &tokens, &errors, NULL, 0, 0);
		t = clock_mono_s() - t;
		if (rc < 0)
			break;
		tps = t > 0 ? (double)tokens / t : NAN;
		if (tps > best)
			best = tps;
		snprintf(name, sizeof(name), "c%d.tokens_per_s", level);
		metric1(r, name, "tok/s", 1, tps);
		snprintf(name, sizeof(name), "c%d.latency_ms", level);
		metric(r, name, "ms", 0, lat.v, lat.n);
		snprintf(name, sizeof(name), "c%d.errors", level);
		metric1(r, name, "count", 0, errors);
	}
	if (rc == 0)
		metric1(r, "max_tokens_per_s", "tok/s", 1, best);
	vec_free(&lat);
	return rc;
}

/* Takes the next reply off the engine and files its latency or its error. */
static int
collect(struct run *r, struct reply *rp, struct vec *lat, int *errors)
{
	int rc;

	if ((rc = engine_recv(r->engine, rp, r->err, r->errlen)) < 0)
		return rc;
	account(r, rp);
	if (rp->ok)
		vec_push(lat, rp->wall_ms);
	else
		(*errors)++;
	return 0;
}

/* Waits for every request still in flight. */
static int
drain(struct run *r, struct reply *rp, struct vec *lat, int *errors,
    int64_t *answered)
{
	int rc;

	while (r->engine->inflight > 0) {
		if ((rc = collect(r, rp, lat, errors)) < 0)
			return rc;
		(*answered)++;
	}
	return 0;
}

/*
 * Stress: capacity is measured first (requests per second with
 * max_concurrency in flight); then requests arrive at load_fraction of it
 * for duration_s, open loop, so a slow engine builds a queue; then a
 * spike ramps the requests in flight from 1 to max_concurrency in spike_s.
 */
static int
stress(struct run *r)
{
	int prompt = (int)param_int(r, "prompt_tokens");
	int gen = (int)param_int(r, "max_tokens");
	int maxc = (int)param_int(r, "max_concurrency");
	double duration = (double)param_int(r, "duration_s");
	double spike = (double)param_int(r, "spike_s");
	double frac = param_num(r, "load_fraction"), probe, t, rate, next;
	struct vec lat = { 0 }, spike_lat = { 0 };
	struct request_spec rq;
	struct reply rp = { 0 };
	uint64_t tokens = 0;
	int errors = 0, spike_errors = 0, rc, level;
	int64_t answered = 0, start_req;

	reply_clear(&rp);
	probe = duration / 5 < 5 ? duration / 5 : 5;
	if (probe < 1)
		probe = 1;
	start_req = (int64_t)r->requests;
	t = clock_mono_s();
	if ((rc = closed_loop(r, maxc, 0, clock_mono_s() - r->t0 + probe,
	    prompt, gen, &lat, &tokens, &errors, NULL, 0, 0)) < 0)
		goto out;
	rate = (double)((int64_t)r->requests - start_req) / (clock_mono_s() - t);
	metric1(r, "capacity_rps", "req/s", 1, rate);
	rate *= frac;
	json_object_set_new(r->info, "target_rps", json_real(rate));
	lat.n = 0;
	errors = 0;

	/* Sustained load: open-loop arrivals at the target rate. */
	t = clock_mono_s();
	next = t;
	while (clock_mono_s() - t < duration) {
		while (clock_mono_s() >= next && r->engine->inflight < maxc * 8) {
			request(r, &rq, prompt, gen);
			if ((rc = engine_send(r->engine, &rq, r->err, r->errlen)) < 0)
				goto out;
			next += rate > 0 ? 1.0 / rate : 1.0;
		}
		if (r->engine->inflight == 0) {
			clock_sleep_ms((int64_t)((next - clock_mono_s()) * 1000) + 1);
			continue;
		}
		if ((rc = collect(r, &rp, &lat, &errors)) < 0)
			goto out;
		answered++;
		if (cancelled(r)) {
			rc = BL_ECONFLICT;
			goto out;
		}
		progress(r, duration + spike + probe);
	}
	if ((rc = drain(r, &rp, &lat, &errors, &answered)) < 0)
		goto out;
	metric(r, "sustained.latency_ms", "ms", 0, lat.v, lat.n);
	metric1(r, "sustained.achieved_rps", "req/s", 1,
	    (double)answered / (clock_mono_s() - t));
	metric1(r, "sustained.errors", "count", 0, errors);

	/* Spike: from idle to max_concurrency in spike_s seconds. */
	t = clock_mono_s();
	while (clock_mono_s() - t < spike) {
		level = 1 + (int)((maxc - 1) * (clock_mono_s() - t) / spike);
		while (r->engine->inflight < level) {
			request(r, &rq, prompt, gen);
			if ((rc = engine_send(r->engine, &rq, r->err, r->errlen)) < 0)
				goto out;
		}
		if ((rc = collect(r, &rp, &spike_lat, &spike_errors)) < 0)
			goto out;
		if (cancelled(r)) {
			rc = BL_ECONFLICT;
			goto out;
		}
	}
	if ((rc = drain(r, &rp, &spike_lat, &spike_errors, &answered)) < 0)
		goto out;
	metric(r, "spike.latency_ms", "ms", 0, spike_lat.v, spike_lat.n);
	metric1(r, "spike.errors", "count", 0, spike_errors);
out:
	reply_clear(&rp);
	vec_free(&lat);
	vec_free(&spike_lat);
	return rc;
}

/* Median of v[from..to). */
static double
median_range(const double *v, size_t from, size_t to)
{
	double m = NAN;

	if (to > from)
		stats_median(&m, v + from, to - from);
	return m;
}

/*
 * Endurance: continuous load for duration_s; tokens/s per window.  The
 * initial rate is the median of the first 20% of windows after the first
 * (warm-up), the sustained rate that of the last 20%.
 */
static int
endurance(struct run *r)
{
	int prompt = (int)param_int(r, "prompt_tokens");
	int gen = (int)param_int(r, "max_tokens");
	int level = (int)param_int(r, "concurrency");
	double duration = (double)param_int(r, "duration_s");
	double window = (double)param_int(r, "window_s");
	struct vec lat = { 0 }, win = { 0 }, t = { 0 };
	double initial, sustained, ratio;
	uint64_t tokens = 0;
	size_t n, fifth, i;
	int errors = 0, rc;

	if (window > duration / 10)
		window = duration / 10 > 0.5 ? duration / 10 : 0.5;
	rc = closed_loop(r, level, 0, clock_mono_s() - r->t0 + duration, prompt,
	    gen, &lat, &tokens, &errors, &win, window, duration);
	if (rc < 0)
		goto out;
	n = win.n;
	for (i = 0; i < n; i++)
		vec_push(&t, (double)(i + 1) * window);
	timeseries(r, "window_tokens_per_s", "tok/s", t.v, win.v, n);
	metric(r, "tokens_per_s", "tok/s", 1, win.v, n);
	metric(r, "latency_ms", "ms", 0, lat.v, lat.n);
	metric1(r, "errors", "count", 0, errors);
	fifth = n >= 6 ? (n - 1) / 5 : 1;
	if (n >= 3) {
		initial = median_range(win.v, 1, 1 + fifth);
		sustained = median_range(win.v, n - fifth, n);
		ratio = initial > 0 ? sustained / initial : NAN;
		metric1(r, "initial_tokens_per_s", "tok/s", 1, initial);
		metric1(r, "sustained_tokens_per_s", "tok/s", 1, sustained);
		metric1(r, "sustained_ratio", "ratio", 1, ratio);
		json_object_set_new(r->info, "throttling",
		    json_boolean(isfinite(ratio) && ratio < 0.97));
	}
out:
	vec_free(&lat);
	vec_free(&win);
	vec_free(&t);
	return rc;
}

/*
 * Memory leak: requests one after another in one engine process, its RSS
 * read after each.  After warm-up, growth per request is the least-squares
 * slope (and, robustly, Theil-Sen), total growth the last minus the first.
 */
static int
memory_leak(struct run *r)
{
	int64_t n = param_int(r, "requests"), i;
	int prompt = (int)param_int(r, "prompt_tokens");
	int gen = (int)param_int(r, "max_tokens");
	double warm_frac = param_num(r, "warmup_fraction");
	struct vec idx = { 0 }, rss = { 0 };
	struct stats_linfit fit;
	struct stats_theilsen ts;
	struct stats_mk mk;
	struct reply rp = { 0 };
	size_t w;
	int64_t bytes;
	int rc = 0;

	reply_clear(&rp);
	for (i = 0; i < n; i++) {
		if (cancelled(r)) {
			rc = BL_ECONFLICT;
			break;
		}
		if ((rc = call(r, prompt, gen, &rp)) < 0)
			break;
		if (rp.peak_rss_bytes >= 0)
			bytes = rp.peak_rss_bytes;	/* exec: one process each */
		else if (procfs_tree_rss(&bytes, engine_pid(r->engine)) < 0)
			bytes = -1;
		if (bytes >= 0) {
			vec_push(&idx, (double)i);
			vec_push(&rss, (double)bytes);
		}
		progress(r, 0);
	}
	if (rc < 0)
		goto out;
	timeseries(r, "rss_per_request", "bytes", idx.v, rss.v, rss.n);
	w = (size_t)(warm_frac * (double)rss.n);
	if (rss.n - w >= 3 && stats_linfit(&fit, idx.v + w, rss.v + w,
	    rss.n - w, 0.95) == 0) {
		metric1(r, "rss_slope_bytes_per_request", "bytes/req", 0,
		    fit.slope);
		metric1(r, "rss_growth_bytes", "bytes", 0, rss.v[rss.n - 1] -
		    rss.v[w]);
		metric1(r, "rss_steady_bytes", "bytes", 0,
		    median_range(rss.v, w, rss.n));
		json_object_set_new(r->info, "slope_ci", json_pack("[f,f]",
		    fit.slope_lo, fit.slope_hi));
		if (stats_theil_sen(&ts, idx.v + w, rss.v + w, rss.n - w,
		    0.95) == 0)
			json_object_set_new(r->info, "theil_sen_slope",
			    json_real(ts.slope));
		if (stats_mann_kendall(&mk, rss.v + w, rss.n - w) == 0)
			json_object_set_new(r->info, "mann_kendall_p_increasing",
			    json_real(mk.p_incr));
		json_object_set_new(r->info, "warmup_requests",
		    json_integer((json_int_t)w));
	}
out:
	reply_clear(&rp);
	vec_free(&idx);
	vec_free(&rss);
	return rc;
}

/* Accuracy as the engine reports it against its own reference. */
static int
accuracy(struct run *r)
{
	const char *key;
	json_t *acc = NULL, *v;
	int rc, higher;

	if ((rc = engine_accuracy(r->engine, &acc, r->err, r->errlen)) < 0)
		return rc;
	json_object_foreach(acc, key, v) {
		if (!json_is_number(v))
			continue;
		higher = strstr(key, "agreement") != NULL ||
		    strstr(key, "accuracy") != NULL || strstr(key, "score") != NULL;
		metric1(r, key, strstr(key, "perplexity") ? "ppl" : "ratio",
		    higher, json_number_value(v));
	}
	json_decref(acc);
	return 0;
}

/* One engine under cachegrind serving n requests; its counts once it has exited. */
static int
counted_pass(struct run *r, const char *out_file, int64_t n, int prompt,
    int gen, uint64_t *tokens, struct counts *c)
{
	struct proc_limits lim = { r->s->limit_cpu_s, r->s->limit_as_mb,
	    r->s->limit_nofile, r->s->engine_cpus };
	struct manifest vm = *r->m;
	struct reply rp = { 0 };
	int64_t k;
	int rc;

	/* valgrind reserves far more address space than the engine uses. */
	lim.as_mb = 0;
	vm.command = counter_argv(r->m->command, r->m->ncommand, out_file);
	vm.ncommand = r->m->ncommand + 4;
	unlink(out_file);
	reply_clear(&rp);
	/* Every pass asks the same requests: ids, hence seeds, from 1. */
	r->next_id = 0;
	*tokens = 0;
	if ((rc = engine_start(&r->engine, &vm, r->dir, &lim,
	    r->s->request_timeout_s, r->err, r->errlen)) < 0)
		goto out;
	/* Let it exit on its own: the counts are written at exit. */
	r->engine->stop_wait_ms = r->s->request_timeout_s * 1000;
	for (k = 0; k < n && rc == 0; k++) {
		if (cancelled(r)) {
			rc = BL_ECONFLICT;
			break;
		}
		if ((rc = call(r, prompt, gen, &rp)) < 0)
			break;
		if (!rp.ok) {
			snprintf(r->err, r->errlen, "request %" PRId64 " failed: "
			    "%s", rp.id, rp.error);
			rc = BL_ERROR;
			break;
		}
		*tokens += (uint64_t)(rp.tokens > 0 ? rp.tokens : 0);
	}
	engine_stop(r->engine);
	r->engine = NULL;
	if (rc == 0)
		rc = counter_read(c, out_file, r->err, r->errlen);
out:
	unlink(out_file);
	reply_clear(&rp);
	vm.command = (counter_argv_free(vm.command), NULL);
	return rc;
}

/*
 * Instructions: the engine's CPU work per request, counted by cachegrind.
 * Start-up, model load and warm-up are left out by difference: one engine
 * serves the warm-up requests alone, another the same warm-up and then
 * the measured requests, and the second's counts less the first's are
 * those of the measured requests.  A count is deterministic (same binary,
 * same requests: the same count within a few parts in ten million), so one
 * run of this scenario per commit decides what timing needs pairs for.
 */
static int
instructions(struct run *r)
{
	int64_t warm = param_int(r, "warmup"), n = param_int(r, "requests");
	int prompt = (int)param_int(r, "prompt_tokens");
	int gen = (int)param_int(r, "max_tokens");
	struct counts base, all, d;
	uint64_t t0 = 0, t1 = 0;
	char path[2][4096], hw[160];
	double per, misses;
	int rc, i;

	for (i = 0; i < 2; i++)
		snprintf(path[i], sizeof(path[i]), "%s/.benchline-counts.%d",
		    r->dir, i);
	if ((rc = counted_pass(r, path[0], warm, prompt, gen, &t0, &base)) < 0 ||
	    (rc = counted_pass(r, path[1], warm + n, prompt, gen, &t1, &all)) < 0)
		return rc;
	counter_sub(&d, &all, &base);
	if (d.v[COUNT_IR] <= 0) {
		snprintf(r->err, r->errlen, "the measured requests counted %.0f "
		    "instructions: the engine did not serve them", d.v[COUNT_IR]);
		return BL_ERROR;
	}
	per = d.v[COUNT_IR] / (double)n;
	metric_add(r, "instructions_per_request", "instructions", 0, &per, 1, 1);
	if (t1 > t0) {
		per = d.v[COUNT_IR] / (double)(t1 - t0);
		metric_add(r, "instructions_per_token", "instructions/token", 0,
		    &per, 1, 1);
	}
	if (d.cache_sim) {
		per = counter_est_cycles(&d) / (double)n;
		metric_add(r, "est_cycles_per_request", "cycles", 0, &per, 1, 1);
		misses = (d.v[COUNT_I1MR] + d.v[COUNT_D1MR] + d.v[COUNT_D1MW]) /
		    (double)n;
		metric_add(r, "l1_misses_per_request", "misses", 0, &misses, 1, 1);
		misses = (d.v[COUNT_ILMR] + d.v[COUNT_DLMR] + d.v[COUNT_DLMW]) /
		    (double)n;
		metric_add(r, "ll_misses_per_request", "misses", 0, &misses, 1, 1);
	}
	counter_hw_probe(hw, sizeof(hw));
	json_object_set_new(r->info, "counter", json_pack("{s:s,s:s,s:f,s:f,"
	    "s:s}", "tool", "valgrind cachegrind", "hardware_counters", hw,
	    "warmup_instructions", base.v[COUNT_IR], "total_instructions",
	    all.v[COUNT_IR], "excludes", "start-up, model load and warm-up "
	    "(the difference of two engine runs)"));
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct run *);
	int own_engine;		/* starts its engines itself */
} scenarios[] = {
	{ "latency", latency, 0 },
	{ "throughput", throughput, 0 },
	{ "stress", stress, 0 },
	{ "endurance", endurance, 0 },
	{ "memory_leak", memory_leak, 0 },
	{ "accuracy", accuracy, 0 },
	{ "instructions", instructions, 1 },
};

/* Turns the collector's samples into the run's time series and summary metrics. */
static void
collector_results(struct run *r)
{
	const struct collector_sample *cs;
	struct collector_summary sum;
	struct vec t = { 0 }, rss = { 0 }, cpu = { 0 }, temp = { 0 },
	    power = { 0 }, tps = { 0 }, tt = { 0 };
	size_t n, i;

	n = collector_samples(r->coll, &cs);
	for (i = 0; i < n; i++) {
		if (cs[i].rss_bytes < 0)
			continue;
		vec_push(&t, cs[i].t_s);
		vec_push(&rss, (double)cs[i].rss_bytes);
		vec_push(&cpu, cs[i].cpu_pct);
		vec_push(&temp, cs[i].temp_c);
		vec_push(&power, cs[i].power_w);
		if (i > 0 && cs[i].t_s > cs[i - 1].t_s) {
			vec_push(&tt, cs[i].t_s);
			vec_push(&tps, (double)(cs[i].tokens - cs[i - 1].tokens) /
			    (cs[i].t_s - cs[i - 1].t_s));
		}
	}
	timeseries(r, "rss_bytes", "bytes", t.v, rss.v, rss.n);
	if (cpu.n == t.n)
		timeseries(r, "cpu_pct", "%", t.v, cpu.v, cpu.n);
	if (temp.n == t.n && temp.n > 0)
		timeseries(r, "temp_c", "C", t.v, temp.v, temp.n);
	if (power.n == t.n && power.n > 0)
		timeseries(r, "power_w", "W", t.v, power.v, power.n);
	if (tps.n > 0)
		timeseries(r, "tokens_per_s", "tok/s", tt.v, tps.v, tps.n);
	if (collector_summary(&sum, r->coll) == 0) {
		metric1(r, "peak_rss_bytes", "bytes", 0, (double)sum.rss_peak_bytes);
		json_object_set_new(r->info, "cpu_mean_pct",
		    json_real(sum.cpu_mean_pct));
		json_object_set_new(r->info, "sensors", json_pack("{s:b,s:b,s:b}",
		    "temperature", sum.has_temp, "power", sum.has_power,
		    "throttle_counter", sum.has_throttle));
		if (sum.has_temp)
			metric1(r, "max_temp_c", "C", 0, sum.temp_max_c);
		if (sum.has_power) {
			metric1(r, "mean_power_w", "W", 0, sum.power_mean_w);
			if (r->tokens > 0)
				metric1(r, "energy_j_per_token", "J/token", 0,
				    sum.energy_j / (double)r->tokens);
		}
		if (sum.has_throttle) {
			json_object_set_new(r->info, "throttle_events",
			    json_integer(sum.throttle_events));
			if (sum.throttle_events > 0)
				json_object_set_new(r->info, "throttling",
				    json_true());
		}
		json_object_set_new(r->info, "collector_cpu_s",
		    json_real(sum.self_cpu_s));
	}
	vec_free(&t);
	vec_free(&rss);
	vec_free(&cpu);
	vec_free(&temp);
	vec_free(&power);
	vec_free(&tps);
	vec_free(&tt);
}

int
scenario_run(json_t **out, const char *name, const struct manifest *m,
    json_t *params, const char *dir, const struct worker_settings *s,
    volatile int *cancel, char *err, size_t errlen)
{
	struct proc_limits lim = { s->limit_cpu_s, s->limit_as_mb,
	    s->limit_nofile, s->engine_cpus };
	struct run r = { 0 };
	size_t i;
	int rc = BL_ENOTFOUND;

	r.name = name;
	r.m = m;
	r.s = s;
	r.params = params;
	r.cancel = cancel;
	r.err = err;
	r.errlen = errlen;
	for (i = 0; i < BL_ARRAY_LEN(scenarios); i++)
		if (strcmp(scenarios[i].name, name) == 0)
			break;
	if (i == BL_ARRAY_LEN(scenarios)) {
		snprintf(err, errlen, "unknown scenario '%s'", name);
		return BL_ENOTFOUND;
	}
	r.dir = dir;
	if (!scenarios[i].own_engine && (rc = engine_start(&r.engine, m, dir,
	    &lim, s->request_timeout_s, err, errlen)) < 0)
		return rc;
	r.metrics = json_object();
	r.timeseries = json_object();
	r.info = json_pack("{s:{}}", "summary");
	if (r.engine != NULL && engine_pid(r.engine) > 0 && collector_start(&r.coll,
	    engine_pid(r.engine), param_num(&r, "sample_hz"),
	    (size_t)s->max_timeseries_points * 2) < 0)
		log_warnx("%s: the collector did not start; no time series", name);
	r.t0 = clock_mono_s();
	r.next_progress = 10;
	log_info("scenario %s: started", name);
	rc = scenarios[i].fn(&r);
	if (r.coll != NULL) {
		collector_stop(r.coll);
		if (rc == 0)
			collector_results(&r);
		collector_free(r.coll);
	}
	engine_stop(r.engine);
	json_object_set_new(r.info, "requests", json_integer((json_int_t)r.requests));
	json_object_set_new(r.info, "errors", json_integer(r.errors));
	json_object_set_new(r.info, "duration_s", json_real(clock_mono_s() - r.t0));
	if (rc == 0 && json_object_size(r.metrics) == 0) {
		snprintf(err, errlen, "scenario '%s' measured nothing (%d of %"
		    PRIu64 " requests failed)", name, r.errors, r.requests);
		rc = BL_ERROR;
	}
	if (rc < 0) {
		json_decref(r.metrics);
		json_decref(r.timeseries);
		json_decref(r.info);
		return rc;
	}
	log_info("scenario %s: done in %.1f s, %" PRIu64 " requests, %d errors",
	    name, clock_mono_s() - r.t0, r.requests, r.errors);
	*out = json_pack("{s:o,s:o,s:o}", "metrics", r.metrics, "timeseries",
	    r.timeseries, "info", r.info);
	return 0;
}
