/* The performance detector's decision rules, free of the database (see detect.c for the glue). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "stats.h"
#include "xmalloc.h"

/*
 * How a series is judged (the design of shared/DETECTION.md):
 *
 * Runs are compared by their medians in log space, oriented so that + is
 * worse.  The baseline is the last `window` accepted runs of the current
 * epoch; its centre is their median and its spread their MAD x 1.4826,
 * never below noise_floor, nor below prior_noise while it has fewer than
 * short_baseline runs (a spread estimated from three runs is a guess).
 *
 * A run is suspect when it moves at least threshold * suspect_frac (5%)
 * away from the centre with a robust z of at least z_suspect (3).  A
 * suspicion then waits for up to max_pending runs; after each one the
 * pending runs, all of them, are tested against the baseline:
 *   - run level: z of their mean against the centre, with the baseline's
 *     own uncertainty, one-sided normal p (the spread of run medians,
 *     not of samples within a run, which share a boot and a temperature
 *     and so overstate significance);
 *   - the Hodges-Lehmann shift between baseline and pending runs and its
 *     95% interval (Hodges & Lehmann 1963; Moses interval);
 *   - raw samples: one-sided Mann-Whitney of the pending runs' samples
 *     against the baseline's, as a further guard (not for a counted
 *     series: one exact sample a run, so the runs themselves decide).
 * A change is confirmed when p < p_max, the raw p < p_max, the shift is at
 * least the suspect level and its upper bound reaches the threshold, so an
 * exact 10% step is not a coin toss; and it needs two runs unless it is
 * twice the threshold and z >= 6.  A single outlier followed by normal
 * runs is cleared and its run goes back to the baseline.  A significant
 * change whose interval stays under the threshold becomes a quiet change
 * point: a new epoch, no alert.  The change is dated to its first run,
 * moved back over baseline runs that already sat at the new level.
 */

void
detect_defaults(struct detect_params *p)
{
	p->threshold = 0.10;
	p->suspect_frac = 0.5;
	p->z_suspect = 3.0;
	p->p_max = 0.001;
	p->noise_floor = 0.005;
	p->prior_noise = 0.03;
	p->min_baseline = 3;
	p->short_baseline = 10;
	p->window = 20;
	p->max_pending = 3;
	p->higher_better = 0;
	p->counted = 0;
}

const char *
verdict_name(enum verdict_kind v)
{
	static const char *const names[] = {
		"baseline", "noise", "suspect", "regression", "improvement",
		"excluded"
	};

	return (size_t)v < BL_ARRAY_LEN(names) ? names[v] : "?";
}

/* The point's value in oriented log space: + is worse. */
static double
bad(const struct detect_params *p, double v)
{
	return p->higher_better ? -log(v) : log(v);
}

static int
accepted(const struct detect_point *pt)
{
	/* A confirmed change's own run belongs to the new level. */
	return !pt->excluded && pt->verdict != V_SUSPECT;
}

/* Pools the raw samples of points idx[0..k) in oriented log space. */
static double *
pool_samples(size_t *out_n, const struct detect_params *p,
    const struct detect_point *hist, const size_t *idx, size_t k)
{
	size_t i, j, n = 0, total = 0;
	double *v;

	for (i = 0; i < k; i++)
		total += hist[idx[i]].samples ? hist[idx[i]].n : 0;
	v = xreallocarray(NULL, total ? total : 1, sizeof(*v));
	for (i = 0; i < k; i++) {
		const struct detect_point *pt = &hist[idx[i]];

		for (j = 0; pt->samples != NULL && j < pt->n; j++)
			if (pt->samples[j] > 0)
				v[n++] = bad(p, pt->samples[j]);
	}
	*out_n = n;
	return v;
}

/*
 * The series' run-to-run noise from its recent history, epochs and all:
 * the MAD of consecutive differences, x 1.4826 / sqrt 2.  A step moves one
 * difference only, so this survives the changes that start new epochs.
 * Returns -1 when there are fewer than 6 differences.
 */
static double
history_spread(const struct detect_params *p, const struct detect_point *hist,
    size_t end)
{
	double *d = xreallocarray(NULL, end ? end : 1, sizeof(*d)), prev = 0, m;
	size_t i, nd = 0;
	int have = 0;

	for (i = 0; i < end; i++) {
		if (hist[i].excluded || !(hist[i].value > 0))
			continue;
		if (have)
			d[nd++] = bad(p, hist[i].value) - prev;
		prev = bad(p, hist[i].value);
		have = 1;
	}
	if (nd < 6 || stats_mad_scaled(&m, d, nd) < 0)
		m = -1;
	else
		m /= M_SQRT2;
	free(d);
	return m;
}

/*
 * The spread of the baseline runs: their standard deviation within 3 MAD
 * of the median.  The MAD alone is robust but wastes most of the data (its
 * relative error with 20 runs is about 26%, against 16% here), and that
 * error alone cost a tenth of the power to see a 10% step at 3% noise.
 */
static double
trimmed_sd(const double *b, size_t nb, double centre)
{
	double mad, sum = 0, sum2 = 0, mean, var;
	size_t i, k = 0;

	if (nb < 2 || stats_mad_scaled(&mad, b, nb) < 0)
		return 0;
	for (i = 0; i < nb; i++) {
		if (mad > 0 && fabs(b[i] - centre) > 3 * mad)
			continue;
		sum += b[i];
		sum2 += b[i] * b[i];
		k++;
	}
	if (k < 2)
		return mad;
	mean = sum / (double)k;
	var = (sum2 - (double)k * mean * mean) / (double)(k - 1);
	return var > 0 ? sqrt(var) : 0;
}

struct judgement {
	double	centre, spread, z_run, change;
	double	p, p_raw, lo, hi;	/* lo, hi: Hodges-Lehmann 95% */
	double	reach;		/* |change| + 1.96 se: the change it may be */
	int	worse;		/* +1 worse, -1 better */
};

/*
 * Tests the pending points against the baseline points.  hist_sd is the
 * series' noise from its whole recent history (history_spread()), which a
 * short baseline borrows instead of trusting the MAD of a few runs.
 */
static void
judge(struct judgement *j, const struct detect_params *p,
    const struct detect_point *hist, const size_t *base_in, size_t nb_in,
    const size_t *pend, size_t np, double hist_sd)
{
	double *b = xreallocarray(NULL, nb_in, sizeof(double));
	double *q = xreallocarray(NULL, np, sizeof(double));
	size_t *base = xreallocarray(NULL, nb_in, sizeof(*base));
	double *bs, *qs, mean = 0, z, floor_sd, se;
	struct stats_hl hl;
	struct stats_mwu mw;
	size_t i, nb, nbs, nqs;

	for (i = 0; i < nb_in; i++)
		b[i] = bad(p, hist[base_in[i]].value);
	for (i = 0; i < np; i++) {
		q[i] = bad(p, hist[pend[i]].value);
		mean += q[i] / (double)np;
	}
	stats_median(&j->centre, b, nb_in);
	j->spread = trimmed_sd(b, nb_in, j->centre);
	floor_sd = log1p(p->noise_floor);
	if ((int)nb_in < p->short_baseline) {
		/*
		 * A few runs' spread is a guess, and a wild one when one of them
		 * belongs to an earlier level: the series' history knows better,
		 * else the prior.
		 */
		j->spread = hist_sd > 0 ? hist_sd : log1p(p->prior_noise);
	}
	if (j->spread < floor_sd)
		j->spread = floor_sd;
	/*
	 * Baseline runs far from its centre (a run before an unjudged change,
	 * a bad day) are left out of the tests, their raw samples above all.
	 */
	for (i = nb = 0; i < nb_in; i++) {
		if (fabs(b[i] - j->centre) > 4 * j->spread)
			continue;
		base[nb] = base_in[i];
		b[nb++] = b[i];
	}
	j->change = mean - j->centre;
	j->worse = j->change >= 0 ? 1 : -1;
	/* The centre is a median of nb runs: its variance is about pi/2 s^2/nb. */
	se = j->spread * sqrt(1.0 / (double)np + M_PI / 2 / (double)nb);
	z = j->change / se;
	j->reach = fabs(j->change) + 1.96 * se;
	j->z_run = (bad(p, hist[pend[np - 1]].value) - j->centre) / j->spread;
	stats_norm_cdf(&j->p, -fabs(z));
	j->lo = j->hi = j->change;
	if (stats_hodges_lehmann(&hl, b, nb, q, np, 0.95) == 0) {
		j->lo = hl.lo;
		j->hi = hl.hi;
	}
	j->p_raw = 1;
	bs = pool_samples(&nbs, p, hist, base, nb);
	qs = pool_samples(&nqs, p, hist, pend, np);
	if (nbs > 0 && nqs > 0 && stats_mwu_test(&mw, bs, nbs, qs, nqs,
	    j->worse > 0 ? STATS_X_LESS : STATS_X_GREATER) == 0)
		j->p_raw = mw.p;
	else if (nbs == 0 || nqs == 0)
		j->p_raw = 0;	/* no samples to test: the run level decides */
	if (p->counted)
		j->p_raw = 0;	/* one exact sample a run: the runs are the test */
	free(bs);
	free(qs);
	free(b);
	free(q);
	free(base);
}

/* Whether run value v sits nearer the new level than the old. */
static int
at_new_level(const struct detect_params *p, double v, double centre,
    double change)
{
	return fabs(bad(p, v) - (centre + change)) < fabs(bad(p, v) - centre);
}

/* Median of the pending points' values, in oriented log space. */
static double
pending_median(const struct detect_params *p, const struct detect_point *hist,
    const size_t *pend, size_t np)
{
	double *v = xreallocarray(NULL, np, sizeof(*v)), m;
	size_t i;

	for (i = 0; i < np; i++)
		v[i] = bad(p, hist[pend[i]].value);
	stats_median(&m, v, np);
	free(v);
	return m;
}

/* How far run value v has moved from centre, in the direction of the change. */
static double
moved(const struct detect_params *p, double v, const struct judgement *j)
{
	return (bad(p, v) - j->centre) * j->worse;
}

/*
 * The confirmation rule: significant at run level and on raw samples, a
 * shift of at least the suspect level whose interval reaches the
 * threshold, the window's median at the new level, the newest run not back
 * at the old one (it moved at least half the suspect level), and at least
 * two runs.
 */
static int
confirms(const struct detect_params *p, const struct judgement *j,
    const struct detect_point *hist, const size_t *pend, size_t np,
    int *significant)
{
	double screen = log1p(p->threshold * p->suspect_frac);
	double need = log1p(p->threshold);
	double med = pending_median(p, hist, pend, np);
	int ok;

	*significant = j->p < p->p_max && j->p_raw < p->p_max &&
	    fabs(j->change) >= screen;
	ok = *significant && j->reach >= need &&
	    fabs(med - j->centre) >= screen &&
	    moved(p, hist[pend[np - 1]].value, j) >= screen / 2;
	if (np < 2)
		ok = 0;		/* one run is never enough: it may be an outlier */
	return ok;
}

/* Whether the first of the window's points is nearer the rest of it than the old centre. */
static int
joins_rest(const struct detect_params *p, const struct detect_point *hist,
    const size_t *win, size_t nw, double centre)
{
	double rest = 0, first = bad(p, hist[win[0]].value);
	size_t i;

	for (i = 1; i < nw; i++)
		rest += bad(p, hist[win[i]].value) / (double)(nw - 1);
	return fabs(first - rest) < fabs(first - centre);
}

/* Fills base with the accepted points before index end, time-ordered. */
static size_t
baseline_before(size_t *base, const struct detect_params *p,
    const struct detect_point *hist, size_t epoch, size_t end)
{
	size_t nb = 0, i;

	for (i = end; i-- > epoch && nb < (size_t)p->window;)
		if (accepted(&hist[i]) && hist[i].value > 0)
			base[nb++] = i;
	for (i = 0; i < nb / 2; i++) {
		size_t t = base[i];

		base[i] = base[nb - 1 - i];
		base[nb - 1 - i] = t;
	}
	return nb;
}

static void
fill_result(struct detect_result *out, const struct judgement *j, size_t nb)
{
	out->change = expm1(j->change);
	out->z = j->z_run;
	out->p = j->p;
	out->p_raw = j->p_raw;
	out->shift_lo = expm1(j->lo);
	out->shift_hi = expm1(j->hi);
	out->baseline_n = nb;
}

int
detect_series_step(struct detect_result *out, const struct detect_params *p,
    struct detect_point *hist, size_t n, size_t epoch)
{
	size_t *base = NULL, *pend = NULL, *win = NULL, nb = 0, np = 0, nw;
	size_t wb, i, first, start;
	struct detect_point *last;
	double hist_sd;
	struct judgement j, jw;
	double screen = log1p(p->threshold * p->suspect_frac);
	int confirmed, significant, sig_w, give_up, k;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return BL_EINVAL;
	last = &hist[n - 1];
	out->change_at = n - 1;
	if (last->excluded || !(last->value > 0)) {
		out->verdict = last->excluded ? V_EXCLUDED : V_BASELINE;
		last->verdict = out->verdict;
		return 0;
	}
	/* Pending: the trailing suspects before the new point, and it. */
	for (first = n - 1; first > epoch && hist[first - 1].verdict == V_SUSPECT;
	    first--)
		;
	hist_sd = history_spread(p, hist, n - 1);
	base = xreallocarray(NULL, n, sizeof(*base));
	pend = xreallocarray(NULL, n, sizeof(*pend));
	win = xreallocarray(NULL, n, sizeof(*win));
	for (i = first; i < n; i++)
		if (!hist[i].excluded && hist[i].value > 0)
			pend[np++] = i;
	nb = baseline_before(base, p, hist, epoch, first);
	out->baseline_n = nb;
	if ((int)nb < p->min_baseline) {
		out->verdict = last->verdict = V_BASELINE;
		goto out;
	}
	judge(&j, p, hist, base, nb, pend, np, hist_sd);
	fill_result(out, &j, nb);
	confirmed = confirms(p, &j, hist, pend, np, &significant);
	start = pend[0];

	/*
	 * Also test windows of the last 2..max_pending runs whatever their
	 * labels: a step whose first run happened to look ordinary is then
	 * still caught within max_pending runs.
	 */
	for (k = 2; !confirmed && k <= p->max_pending; k++) {
		nw = 0;
		for (i = n; i-- > epoch && nw < (size_t)k;)
			if (!hist[i].excluded && hist[i].value > 0)
				win[nw++] = i;
		if (nw < (size_t)k || (win[nw - 1] == pend[0] && nw == np))
			continue;	/* the pending block itself */
		for (i = 0; i < nw / 2; i++) {
			size_t t = win[i];

			win[i] = win[nw - 1 - i];
			win[nw - 1 - i] = t;
		}
		wb = baseline_before(base, p, hist, epoch, win[0]);
		if ((int)wb < p->min_baseline)
			continue;
		judge(&jw, p, hist, base, wb, win, nw, hist_sd);
		/*
		 * A window must not straddle the change: its first run sits
		 * nearer the level of the rest of the window than the old
		 * level (confirms() checks the last run and the median).
		 */
		if (moved(p, hist[win[0]].value, &jw) >= screen * 0.8 &&
		    joins_rest(p, hist, win, nw, jw.centre) &&
		    confirms(p, &jw, hist, win, nw, &sig_w)) {
			confirmed = 1;
			j = jw;
			nb = wb;
			start = win[0];
			fill_result(out, &j, nb);
		}
	}
	if (confirmed) {
		out->verdict = j.worse > 0 ? V_REGRESSION : V_IMPROVEMENT;
		out->change_at = start;
		/* Date the change back over runs already at the new level. */
		nb = baseline_before(base, p, hist, epoch, start);
		for (k = (int)nb - 1; k >= 0 && nb - (size_t)k < (size_t)p->max_pending;
		    k--) {
			if (!at_new_level(p, hist[base[k]].value, j.centre,
			    j.change))
				break;
			out->change_at = base[k];
		}
		for (i = out->change_at; i < n; i++)
			if (hist[i].verdict == V_SUSPECT)
				hist[i].verdict = V_NOISE;
		last->verdict = out->verdict;
		goto out;
	}
	if (np == 1 && (fabs(j.change) < screen || fabs(j.z_run) < p->z_suspect)) {
		out->verdict = last->verdict = V_NOISE;	/* nothing to suspect */
		goto out;
	}
	/* A pending run back at the old level clears the suspicion. */
	give_up = np >= 2 && !at_new_level(p, last->value, j.centre, j.change);
	if (give_up || np >= (size_t)p->max_pending) {
		/* Out of patience: a quiet change point, or back to normal. */
		for (i = 0; i < np; i++)
			if (moved(p, hist[pend[i]].value, &j) < screen / 2)
				break;
		/* A quiet change needs every pending run on its side. */
		if (significant && !give_up && j.p < p->p_max / 10 && i == np) {
			out->quiet_change = 1;
			out->change_at = pend[0];
		}
		for (i = 0; i < np; i++)
			hist[pend[i]].verdict = V_NOISE;
		out->relabelled = np > 1;
		out->verdict = V_NOISE;
	} else
		out->verdict = last->verdict = V_SUSPECT;
out:
	free(base);
	free(pend);
	free(win);
	return 0;
}
