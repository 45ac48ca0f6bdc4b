/*
 * The verdicts of investigations, free of the database so that they can be
 * tested on simulated pairs (tests/unit/server/verdict.c) as the
 * detector's rules are (detect_core.c).  investigate.c holds the state
 * machines that queue the runs these verdicts are given on.
 *
 * Timed metrics are judged on interleaved pairs of runs: the paired
 * differences in log space, signed so that + is worse, through rank
 * statistics (Wilcoxon's signed-rank test, the Hodges-Lehmann estimate),
 * so that no single slowed pair decides.  Counted metrics (instructions)
 * are deterministic: one run per commit is exact, and a change is what it
 * is.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "stats.h"
#include "xmalloc.h"

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
	/* Five pairs: fewer cannot reach p 0.05 in a signed-rank test. */
	p->step_pairs = setting_int(settings, "bisect_pairs", 5, 2, 50);
	p->step_max_pairs = setting_int(settings, "bisect_max_pairs", 11,
	    p->step_pairs, 50);
	/* Nine pairs: 2^-9 is the least p nine signed ranks can give. */
	p->boundary_pairs = setting_int(settings, "boundary_pairs", 9, 2, 50);
	p->boundary_max_pairs = setting_int(settings, "boundary_max_pairs", 13,
	    p->boundary_pairs, 50);
	p->priority = setting_int(settings, "investigation_priority", 10,
	    -1000, 1000);
	v = json_object_get(settings, "confirm_alpha");
	p->alpha = json_is_number(v) && json_number_value(v) > 0 &&
	    json_number_value(v) < 0.5 ? json_number_value(v) : 0.05;
	v = json_object_get(settings, "boundary_alpha");
	p->boundary_alpha = json_is_number(v) && json_number_value(v) > 0 &&
	    json_number_value(v) < 0.5 ? json_number_value(v) : 0.002;
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

/* The medians of the two commits' values over the complete pairs. */
static void
medians(struct confirm_verdict *out, const double *a, const double *b,
    size_t n)
{
	double *x = xreallocarray(NULL, n > 0 ? n : 1, sizeof(*x));
	double *y = xreallocarray(NULL, n > 0 ? n : 1, sizeof(*y));
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (a[i] > 0 && b[i] > 0 && isfinite(a[i]) && isfinite(b[i])) {
			x[k] = a[i];
			y[k++] = b[i];
		}
	out->before = out->after = NAN;
	if (k > 0) {
		stats_median(&out->before, x, k);
		stats_median(&out->after, y, k);
	}
	free(x);
	free(y);
}

/* A pair whose difference lies beyond OUTLIER_K MADs of the others' median. */
#define OUTLIER_K	3.5
#define OUTLIER_FLOOR	0.01	/* a MAD of differences under 1% is not trusted */
#define OUTLIER_MIN	5	/* pairs before any is set aside */

/*
 * Paired differences as worse_logs(), less the pairs whose difference is
 * far off the others': a pair one of whose runs the host slowed by a third
 * says something about the host, not about the commits.  (A slow phase
 * that covers both runs of a pair moves both alike and leaves its
 * difference alone, so it is kept.)  The rule is symmetric, so under no
 * change it takes from neither side more than from the other.
 */
static size_t
timed_logs(double *d, const double *a, const double *b, size_t n, int higher)
{
	size_t k = worse_logs(d, a, b, n, higher), i, kept = 0;
	double med, mad;

	if (k < OUTLIER_MIN || stats_median(&med, d, k) < 0 ||
	    stats_mad_scaled(&mad, d, k) < 0)
		return k;
	if (mad < OUTLIER_FLOOR)
		mad = OUTLIER_FLOOR;
	for (i = 0; i < k; i++)
		if (fabs(d[i] - med) <= OUTLIER_K * mad)
			d[kept++] = d[i];
	return kept;
}

/*
 * The paired comparison both confirmation and the final check rest on:
 * the one-sided signed-rank p that the tested commit is worse, and the
 * Hodges-Lehmann estimate of the change in log space (*est).
 */
static int
paired_test(struct confirm_verdict *out, double *est, const double *ref,
    const double *test, size_t n, int higher_better)
{
	struct stats_signed_rank sr;
	double *d = xreallocarray(NULL, n > 0 ? n : 1, sizeof(*d));
	size_t k = timed_logs(d, ref, test, n, higher_better);

	memset(out, 0, sizeof(*out));
	out->pairs = k;
	out->p = 1;
	out->change = NAN;
	if (k < 2 || stats_signed_rank(&sr, d, k, STATS_X_GREATER) < 0 ||
	    stats_walsh_median(est, d, k) < 0) {
		free(d);
		return k < 2 ? BL_ENOTFOUND : BL_ERROR;
	}
	free(d);
	out->p = sr.p;
	out->change = expm1(*est);
	medians(out, ref, test, n);
	return 0;
}

int
investigate_confirm(struct confirm_verdict *out, const double *good,
    const double *bad, size_t n, int higher_better, double threshold,
    const struct investigate_params *p)
{
	double est;
	int rc;

	if ((rc = paired_test(out, &est, good, bad, n, higher_better)) < 0)
		return rc;
	out->stands = out->p <= p->alpha && out->change >= threshold;
	/* Still plausible: more pairs may settle it. */
	out->more = !out->stands && (int)out->pairs < p->confirm_max_pairs &&
	    out->change >= threshold / 2;
	return 0;
}

/*
 * A timed bisection step: is the probe at the good level (0) or at the bad
 * one (the confirmed change)?  The paired differences less the midway
 * level are tested both ways with the signed-rank test: above it at alpha,
 * the probe is bad; below, good.  Otherwise more pairs are asked for, up
 * to the budget; then the step is undecided and the bisection with it.
 * There is no "nearer level" guess: a step decides on evidence or not at
 * all, and one or two pairs slowed by the host cannot decide it alone.
 */
int
investigate_step(struct step_verdict *out, const double *ref,
    const double *probe, size_t n, int higher_better, double change,
    const struct investigate_params *p)
{
	double *d = xreallocarray(NULL, n > 0 ? n : 1, sizeof(*d));
	double mid = log1p(change) / 2, est;
	struct stats_signed_rank up, down;
	size_t k = timed_logs(d, ref, probe, n, higher_better), i;

	memset(out, 0, sizeof(*out));
	out->pairs = k;
	out->p = 1;
	out->change = NAN;
	if (k == 0 || stats_walsh_median(&est, d, k) < 0) {
		free(d);
		return BL_ENOTFOUND;
	}
	out->change = expm1(est);
	for (i = 0; i < k; i++)
		d[i] -= mid;
	if (k >= 2 && stats_signed_rank(&up, d, k, STATS_X_GREATER) == 0 &&
	    stats_signed_rank(&down, d, k, STATS_X_LESS) == 0) {
		out->p = up.p < down.p ? up.p : down.p;
		if (up.p <= p->alpha)
			out->verdict = STEP_BAD;
		else if (down.p <= p->alpha)
			out->verdict = STEP_GOOD;
	}
	free(d);
	out->more = out->verdict == STEP_UNDECIDED && (int)k < p->step_max_pairs;
	return 0;
}

/*
 * The last check before a commit is blamed: the commit against the last
 * good one before it (its parent when every commit could be measured), on
 * pairs of their own.  It stands when the signed-rank p is at most
 * boundary_alpha (0.002) and the Hodges-Lehmann change is nearer the bad
 * level than the good one.  Bisection steps may err at their 5%; this
 * check is what keeps a wrong step from naming an innocent commit: a
 * commit at the same level as its parent passes it at most once in 500.
 */
int
investigate_boundary(struct confirm_verdict *out, const double *ref,
    const double *test, size_t n, int higher_better, double change,
    const struct investigate_params *p)
{
	double est;
	int rc;

	if ((rc = paired_test(out, &est, ref, test, n, higher_better)) < 0)
		return rc;
	out->stands = out->p <= p->boundary_alpha && est >= log1p(change) / 2;
	out->more = !out->stands && (int)out->pairs < p->boundary_max_pairs &&
	    est > 0;
	return 0;
}

/*
 * Counted pairs: each difference is exact, so their median is the change
 * and no test is needed; more pairs add nothing.  The p reported is 0 for
 * a change that stands (it is certain), 1 otherwise.
 */
int
investigate_confirm_counted(struct confirm_verdict *out, const double *good,
    const double *bad, size_t n, int higher_better, double threshold)
{
	double *d = xreallocarray(NULL, n > 0 ? n : 1, sizeof(*d)), med;
	size_t k = worse_logs(d, good, bad, n, higher_better);

	memset(out, 0, sizeof(*out));
	out->pairs = k;
	out->p = 1;
	out->change = NAN;
	if (k == 0 || stats_median(&med, d, k) < 0) {
		free(d);
		return BL_ENOTFOUND;
	}
	free(d);
	out->change = expm1(med);
	medians(out, good, bad, n);
	out->stands = out->change >= threshold;
	out->p = out->stands ? 0 : 1;
	return 0;
}

/*
 * A counted probe against the reference's count: at the bad level when it
 * has moved at least halfway to the confirmed change (in log space).
 */
int
investigate_step_counted(struct step_verdict *out, double ref, double probe,
    int higher_better, double change)
{
	double d;

	memset(out, 0, sizeof(*out));
	out->p = 1;
	out->change = NAN;
	if (worse_logs(&d, &ref, &probe, 1, higher_better) != 1 ||
	    !(change > 0))
		return BL_ENOTFOUND;
	out->pairs = 1;
	out->change = expm1(d);
	out->p = 0;
	out->verdict = d >= log1p(change) / 2 ? STEP_BAD : STEP_GOOD;
	return 0;
}
