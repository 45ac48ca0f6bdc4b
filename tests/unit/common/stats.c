/*
 * Unit tests for common/stats.c against reference values.
 *
 * Unless a test says otherwise, expected values were computed once with
 * Python 3.11.2, numpy 1.24.2 and scipy 1.10.1 (Debian 12 python3-numpy and
 * python3-scipy) and printed with repr(), then pasted here; the call that
 * produced each is named next to it.  Nothing here needs Python to run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "stats.h"

/* |got - want| <= tol * max(1, |want|): relative for large values,
 * absolute near zero. */
#define assert_near(got, want, tol) do {				\
	double g_ = (got), w_ = (want);					\
	if (!(fabs(g_ - w_) <= (tol) * fmax(1.0, fabs(w_))))		\
		fail_msg("%s = %.17g, want %.17g (tol %g)", #got, g_,	\
		    w_, (double)(tol));					\
} while (0)

/* |got - want| <= tol * |want|: for p-values far below 1. */
#define assert_rel(got, want, tol) do {					\
	double g_ = (got), w_ = (want);					\
	if (!(fabs(g_ - w_) <= (tol) * fabs(w_)))			\
		fail_msg("%s = %.17g, want %.17g (rel tol %g)", #got,	\
		    g_, w_, (double)(tol));				\
} while (0)

#define N_OF(a) BL_ARRAY_LEN(a)

/* Eleven values with a tie, unsorted. */
static const double qa[] = {
	3.1, -1.0, 4.4, 1.5, 9.2, 2.6, 5.3, 5.3, 8.9, 7.0, 0.25
};
/* Eight values, even n, with ties. */
static const double qb[] = { 10, 2, 38, 23, 38, 23, 21, 7 };
static const double qp[] = {
	0, 0.05, 0.1, 0.25, 1.0 / 3, 0.5, 0.75, 0.9, 0.95, 0.99, 1
};

/*
 * Descriptive statistics
 */

/* numpy.quantile(x, p), whose default method is "linear" (type 7). */
static void
test_quantiles(void **state)
{
	static const double want_a[] = {
		-1.0, -0.375, 0.25, 2.05, 2.7666666666666666, 4.4, 6.15, 8.9,
		9.05, 9.17, 9.2
	};
	static const double want_b[] = {
		2.0, 3.75, 5.5, 9.25, 13.666666666666664, 22.0, 26.75, 38.0,
		38.0, 38.0, 38.0
	};
	double got[N_OF(qp)], v, one = 42;
	size_t i;

	(void)state;
	assert_int_equal(stats_quantiles(got, qa, N_OF(qa), qp, N_OF(qp)), 0);
	for (i = 0; i < N_OF(qp); i++)
		assert_near(got[i], want_a[i], 1e-14);
	assert_int_equal(stats_quantiles(got, qb, N_OF(qb), qp, N_OF(qp)), 0);
	for (i = 0; i < N_OF(qp); i++)
		assert_near(got[i], want_b[i], 1e-14);

	assert_int_equal(stats_quantile(&v, qa, N_OF(qa), 0.25), 0);
	assert_near(v, 2.05, 1e-14);
	assert_int_equal(stats_median(&v, qa, N_OF(qa)), 0);
	assert_near(v, 4.4, 0);
	assert_int_equal(stats_median(&v, qb, N_OF(qb)), 0);	/* (21+23)/2 */
	assert_near(v, 22.0, 0);
	assert_int_equal(stats_median(&v, &one, 1), 0);
	assert_near(v, 42, 0);
	assert_int_equal(stats_quantile(&v, &one, 1, 0.99), 0);
	assert_near(v, 42, 0);

	/* The input is left as it was. */
	assert_near(qa[0], 3.1, 0);
	assert_near(qa[10], 0.25, 0);
}

static void
test_mean_variance(void **state)
{
	/* 1e9 + {4, 7, 13, 16}: the textbook case where the one-pass
	 * formula loses every digit; the variance is exactly 30. */
	static const double big[] = { 1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16 };
	static const double x[] = { 2, 4, 4, 4, 5, 5, 7, 9 };
	double v, lo, hi;

	(void)state;
	/* numpy.mean(qa), numpy.var(qa, ddof=1), numpy.std(qa, ddof=1) */
	assert_int_equal(stats_mean(&v, qa, N_OF(qa)), 0);
	assert_near(v, 4.2318181818181815, 1e-15);
	assert_int_equal(stats_variance(&v, qa, N_OF(qa)), 0);
	assert_near(v, 11.108136363636365, 1e-14);
	assert_int_equal(stats_stddev(&v, qa, N_OF(qa)), 0);
	assert_near(v, 3.3328870913423345, 1e-14);
	/* numpy.std(qa, ddof=1) / abs(numpy.mean(qa)) */
	assert_int_equal(stats_cv(&v, qa, N_OF(qa)), 0);
	assert_near(v, 0.7875780452151596, 1e-14);

	/* By hand: mean 5, sum of squares 32, variance 32 / 7. */
	assert_int_equal(stats_mean(&v, x, N_OF(x)), 0);
	assert_near(v, 5, 0);
	assert_int_equal(stats_variance(&v, x, N_OF(x)), 0);
	assert_near(v, 32.0 / 7, 1e-15);

	assert_int_equal(stats_mean(&v, big, N_OF(big)), 0);
	assert_near(v, 1e9 + 10, 1e-15);
	assert_int_equal(stats_variance(&v, big, N_OF(big)), 0);
	assert_near(v, 30, 1e-12);

	assert_int_equal(stats_minmax(&lo, &hi, qa, N_OF(qa)), 0);
	assert_near(lo, -1, 0);
	assert_near(hi, 9.2, 0);
	assert_int_equal(stats_minmax(NULL, &hi, qb, N_OF(qb)), 0);
	assert_near(hi, 38, 0);

	/* Values near the top of the double range do not overflow. */
	{
		const double huge[] = { 1.5e308, 1.7e308, 1.6e308 };

		assert_int_equal(stats_mean(&v, huge, 3), 0);
		assert_near(v, 1.6e308, 1e-15);
	}
}

static void
test_mad(void **state)
{
	/* The usual example: median 2, deviations 1 1 0 0 2 4 7, MAD 1. */
	static const double x[] = { 1, 1, 2, 2, 4, 6, 9 };
	static const double flat[] = { 5, 5, 5, 5, 9, 1 };
	double v;

	(void)state;
	assert_int_equal(stats_mad(&v, x, N_OF(x)), 0);
	assert_near(v, 1, 0);
	assert_int_equal(stats_mad_scaled(&v, x, N_OF(x)), 0);
	assert_near(v, 1.4826, 1e-15);
	/* numpy.median(numpy.abs(x - numpy.median(x))) */
	assert_int_equal(stats_mad(&v, qa, N_OF(qa)), 0);
	assert_near(v, 2.5999999999999996, 1e-14);
	assert_int_equal(stats_mad(&v, qb, N_OF(qb)), 0);
	assert_near(v, 13.5, 1e-14);
	/* More than half equal: 0, as documented. */
	assert_int_equal(stats_mad(&v, flat, N_OF(flat)), 0);
	assert_near(v, 0, 0);
}

/* Fields against numpy.mean/std(ddof=1)/min/quantile/max of qa. */
static void
test_summary(void **state)
{
	struct stats_summary s;
	double one = 3;

	(void)state;
	assert_int_equal(stats_summary(&s, qa, N_OF(qa)), 0);
	assert_int_equal(s.n, N_OF(qa));
	assert_near(s.mean, 4.2318181818181815, 1e-15);
	assert_near(s.stddev, 3.3328870913423345, 1e-14);
	assert_near(s.min, -1, 0);
	assert_near(s.p5, -0.375, 1e-14);
	assert_near(s.p25, 2.05, 1e-14);
	assert_near(s.p50, 4.4, 1e-14);
	assert_near(s.p75, 6.15, 1e-14);
	assert_near(s.p95, 9.05, 1e-14);
	assert_near(s.p99, 9.17, 1e-14);
	assert_near(s.max, 9.2, 0);

	assert_int_equal(stats_summary(&s, &one, 1), 0);
	assert_near(s.stddev, 0, 0);
	assert_near(s.p5, 3, 0);
	assert_near(s.p99, 3, 0);
}

/*
 * Every entry point refuses n == 0, NULL, NaN and infinities, too-small n,
 * and lengths above STATS_MAX_N, without reading past the array (the huge
 * lengths are checked before any element is read; ASan would complain).
 */
static void
test_bad_input(void **state)
{
	static const double ok[] = { 1, 2, 3, 4 };
	const double nan4[] = { 1, NAN, 3, 4 };
	const double inf4[] = { 1, 2, INFINITY, 4 };
	const double *bad[] = { nan4, inf4 };
	const size_t huge[] = { STATS_MAX_N + 1, SIZE_MAX };
	struct stats_summary sum;
	struct stats_linfit lf;
	struct stats_theilsen ts;
	struct stats_mk mk;
	struct stats_mwu mw;
	struct stats_hl hl;
	struct stats_ttest tt;
	struct stats_cp *cp = NULL;
	struct stats_edivisive_opts eo;
	double v, q[4];
	bool rej[4];
	size_t i, ncp;

	(void)state;
	for (i = 0; i < 2; i++) {
		assert_int_equal(stats_mean(&v, bad[i], 4), -1);
		assert_int_equal(stats_variance(&v, bad[i], 4), -1);
		assert_int_equal(stats_stddev(&v, bad[i], 4), -1);
		assert_int_equal(stats_minmax(&v, &v, bad[i], 4), -1);
		assert_int_equal(stats_median(&v, bad[i], 4), -1);
		assert_int_equal(stats_quantile(&v, bad[i], 4, 0.5), -1);
		assert_int_equal(stats_mad(&v, bad[i], 4), -1);
		assert_int_equal(stats_mad_scaled(&v, bad[i], 4), -1);
		assert_int_equal(stats_cv(&v, bad[i], 4), -1);
		assert_int_equal(stats_summary(&sum, bad[i], 4), -1);
		assert_int_equal(stats_linfit(&lf, NULL, bad[i], 4, 0.95), -1);
		assert_int_equal(stats_linfit(&lf, bad[i], ok, 4, 0.95), -1);
		assert_int_equal(stats_theil_sen(&ts, NULL, bad[i], 4, 0.95),
		    -1);
		assert_int_equal(stats_theil_sen(&ts, bad[i], ok, 4, 0.95),
		    -1);
		assert_int_equal(stats_mann_kendall(&mk, bad[i], 4), -1);
		assert_int_equal(stats_mwu_test(&mw, bad[i], 4, ok, 4,
		    STATS_TWO_SIDED), -1);
		assert_int_equal(stats_mwu_test(&mw, ok, 4, bad[i], 4,
		    STATS_TWO_SIDED), -1);
		assert_int_equal(stats_hodges_lehmann(&hl, ok, 4, bad[i], 4,
		    0.95), -1);
		assert_int_equal(stats_welch_test(&tt, bad[i], 4, ok, 4,
		    STATS_TWO_SIDED), -1);
		assert_int_equal(stats_edivisive(&cp, &ncp, bad[i], 4, NULL),
		    -1);
		assert_int_equal(stats_bh(rej, bad[i], 4, 0.05), -1);
		assert_int_equal(stats_bh_adjust(q, bad[i], 4), -1);
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(stats_mean(&v, ok, huge[i]), -1);
		assert_int_equal(stats_median(&v, ok, huge[i]), -1);
		assert_int_equal(stats_summary(&sum, ok, huge[i]), -1);
		assert_int_equal(stats_linfit(&lf, NULL, ok, huge[i], 0.95),
		    -1);
		assert_int_equal(stats_theil_sen(&ts, NULL, ok, huge[i], 0.95),
		    -1);
		assert_int_equal(stats_mann_kendall(&mk, ok, huge[i]), -1);
		assert_int_equal(stats_mwu_test(&mw, ok, huge[i], ok, 4,
		    STATS_X_LESS), -1);
		assert_int_equal(stats_hodges_lehmann(&hl, ok, 4, ok, huge[i],
		    0.95), -1);
		assert_int_equal(stats_welch_test(&tt, ok, huge[i], ok, 4,
		    STATS_TWO_SIDED), -1);
		assert_int_equal(stats_edivisive(&cp, &ncp, ok, huge[i], NULL),
		    -1);
		assert_int_equal(stats_bh(rej, ok, huge[i], 0.05), -1);
	}
	/* n == 0, NULL, and n too small for the statistic. */
	assert_int_equal(stats_mean(&v, ok, 0), -1);
	assert_int_equal(stats_mean(&v, NULL, 4), -1);
	assert_int_equal(stats_median(&v, ok, 0), -1);
	assert_int_equal(stats_variance(&v, ok, 1), -1);
	assert_int_equal(stats_cv(&v, ok, 1), -1);
	assert_int_equal(stats_summary(&sum, ok, 0), -1);
	assert_int_equal(stats_linfit(&lf, NULL, ok, 2, 0.95), -1);
	assert_int_equal(stats_theil_sen(&ts, NULL, ok, 1, 0.95), -1);
	assert_int_equal(stats_mann_kendall(&mk, ok, 2), -1);
	assert_int_equal(stats_mwu_test(&mw, ok, 0, ok, 4, STATS_X_LESS), -1);
	assert_int_equal(stats_hodges_lehmann(&hl, ok, 4, ok, 0, 0.95), -1);
	assert_int_equal(stats_welch_test(&tt, ok, 1, ok, 4, STATS_X_LESS),
	    -1);
	assert_int_equal(stats_edivisive(&cp, &ncp, ok, 0, NULL), -1);
	assert_int_equal(stats_bh(rej, ok, 0, 0.05), -1);
	/* Out-of-range parameters. */
	assert_int_equal(stats_quantile(&v, ok, 4, 1.01), -1);
	assert_int_equal(stats_quantile(&v, ok, 4, -0.01), -1);
	assert_int_equal(stats_quantile(&v, ok, 4, NAN), -1);
	assert_int_equal(stats_quantiles(q, ok, 4, NULL, 1), -1);
	assert_int_equal(stats_linfit(&lf, NULL, ok, 4, 1), -1);
	assert_int_equal(stats_theil_sen(&ts, NULL, ok, 4, 0), -1);
	assert_int_equal(stats_hodges_lehmann(&hl, ok, 4, ok, 4, NAN), -1);
	assert_int_equal(stats_mwu_test(&mw, ok, 4, ok, 4, (enum stats_alt)7),
	    -1);
	assert_int_equal(stats_welch_test(&tt, ok, 4, ok, 4,
	    (enum stats_alt)-1), -1);
	assert_int_equal(stats_bh(rej, ok, 4, 0.05), -1);	/* p > 1 */
	assert_int_equal(stats_bh(rej, (const double[]){ 0.1, 0.2 }, 2, 0),
	    -1);
	assert_int_equal(stats_cv(&v, (const double[]){ -1, 1 }, 2), -1);
	/* Regressions need two distinct t. */
	assert_int_equal(stats_linfit(&lf, (const double[]){ 1, 1, 1 }, ok, 3,
	    0.95), -1);
	assert_int_equal(stats_theil_sen(&ts, (const double[]){ 2, 2, 2 }, ok,
	    3, 0.95), -1);
	stats_edivisive_defaults(&eo);
	eo.window = 3;
	assert_int_equal(stats_edivisive(&cp, &ncp, ok, 4, &eo), -1);
	stats_edivisive_defaults(&eo);
	eo.max_pvalue = 0;
	assert_int_equal(stats_edivisive(&cp, &ncp, ok, 4, &eo), -1);
	/* Distributions. */
	assert_int_equal(stats_norm_cdf(&v, NAN), -1);
	assert_int_equal(stats_norm_quantile(&v, 0), -1);
	assert_int_equal(stats_norm_quantile(&v, 1), -1);
	assert_int_equal(stats_t_cdf(&v, 1, 0), -1);
	assert_int_equal(stats_t_cdf(&v, NAN, 3), -1);
	assert_int_equal(stats_t_quantile(&v, 0.5, -1), -1);
	assert_int_equal(stats_betainc(&v, 0, 1, 0.5), -1);
	assert_int_equal(stats_betainc(&v, 1, 1, 1.5), -1);
	assert_int_equal(stats_betainc(&v, 1, INFINITY, 0.5), -1);
}

/*
 * Trends
 */

static void
test_linfit(void **state)
{
	static const double ty[] = {
		2.3, 3.9, 6.2, 7.8, 10.1, 12.2, 13.8, 16.1, 18.0, 20.2
	};
	double t[10], y[10], flat[5] = { 4, 4, 4, 4, 4 };
	struct stats_linfit f;
	size_t i;

	(void)state;
	/* An exact line: y = 3 - 2t on t = 0..9 (t given as NULL). */
	for (i = 0; i < 10; i++)
		y[i] = 3 - 2 * (double)i;
	assert_int_equal(stats_linfit(&f, NULL, y, 10, 0.95), 0);
	assert_near(f.slope, -2, 1e-14);
	assert_near(f.intercept, 3, 1e-14);
	assert_near(f.slope_se, 0, 1e-14);
	assert_near(f.slope_lo, -2, 1e-13);
	assert_near(f.slope_hi, -2, 1e-13);
	assert_near(f.r2, 1, 1e-14);
	assert_true(f.p < 1e-10);

	/* A constant: slope 0, r2 1 by convention, p 1. */
	assert_int_equal(stats_linfit(&f, NULL, flat, 5, 0.95), 0);
	assert_near(f.slope, 0, 0);
	assert_near(f.r2, 1, 0);
	assert_near(f.p, 1, 0);

	/*
	 * scipy.stats.linregress(t, y) with t = 1..10: slope, intercept,
	 * stderr, intercept_stderr, rvalue**2, pvalue; the interval is
	 * slope -/+ q * stderr with q = 2.306004135204165, the 0.975 quantile
	 * of t with 8 df (see test_distributions on why not t.ppf).
	 */
	for (i = 0; i < 10; i++)
		t[i] = (double)i + 1;
	assert_int_equal(stats_linfit(&f, t, ty, 10, 0.95), 0);
	assert_int_equal(f.n, 10);
	assert_near(f.slope, 1.9963636363636366, 1e-13);
	assert_near(f.intercept, 0.08000000000000007, 1e-13);
	assert_near(f.slope_se, 0.020703867700040277, 1e-12);
	assert_near(f.intercept_se, 0.12846412068363558, 1e-12);
	assert_near(f.r2, 0.9991403134430452, 1e-13);
	assert_rel(f.p, 1.4940599178823233e-13, 1e-8);
	assert_near(f.slope_lo, 1.9486204318326237, 1e-13);
	assert_near(f.slope_hi, 2.0441068408946492, 1e-13);
	assert_near(f.resid_sd, 0.18805221711970374, 1e-12);
}

static void
test_theil_sen(void **state)
{
	/* y = 2t + 1 + small noise on t = 0..14, with y[10] = 80 instead
	 * of 21.1: one wild outlier. */
	static const double y1[] = {
		1.3, 2.8, 5.1, 7.4, 8.5, 11.0, 13.2, 14.9, 17.3, 18.7, 80.0,
		23.2, 24.6, 27.5, 28.8
	};
	/* Ties in t and in y. */
	static const double t2[] = { 1, 1, 2, 3, 3, 3, 4, 5, 6, 6, 7, 8 };
	static const double y2[] = {
		2.0, 2.5, 3.1, 4.0, 4.0, 3.6, 5.2, 5.9, 6.1, 7.3, 7.3, 8.8
	};
	struct stats_theilsen ts;
	struct stats_linfit lf;

	(void)state;
	/* scipy.stats.theilslopes(y1, range(15), 0.95) */
	assert_int_equal(stats_theil_sen(&ts, NULL, y1, N_OF(y1), 0.95), 0);
	assert_true(ts.exact);
	assert_int_equal(ts.n, N_OF(y1));
	assert_int_equal(ts.stride, 1);
	assert_near(ts.slope, 2.0, 1e-14);
	assert_near(ts.intercept, 0.9000000000000004, 1e-13);
	assert_near(ts.slope_lo, 1.942857142857143, 1e-14);
	assert_near(ts.slope_hi, 2.058333333333333, 1e-14);
	/* Least squares is pulled away by the outlier (2.626...). */
	assert_int_equal(stats_linfit(&lf, NULL, y1, N_OF(y1), 0.95), 0);
	assert_near(lf.slope, 2.626428571428571, 1e-12);

	/* scipy.stats.theilslopes(y2, t2, 0.90) */
	assert_int_equal(stats_theil_sen(&ts, t2, y2, N_OF(y2), 0.90), 0);
	assert_near(ts.slope, 0.9249999999999999, 1e-14);
	assert_near(ts.intercept, 1.3624999999999998, 1e-13);
	assert_near(ts.slope_lo, 0.82, 1e-14);
	assert_near(ts.slope_hi, 1.0, 1e-14);

	/* Two points: one slope. */
	assert_int_equal(stats_theil_sen(&ts, (const double[]){ 1, 3 },
	    (const double[]){ 5, 9 }, 2, 0.95), 0);
	assert_near(ts.slope, 2, 0);
	assert_near(ts.slope_lo, 2, 0);
	assert_near(ts.slope_hi, 2, 0);
}

/*
 * Above STATS_THEILSEN_EXACT_MAX the order statistics come from bisection.
 * y = 0.5 i + 20 sin(0.1 i) + (i mod 7), plus 500 at every 97th point, for
 * i = 0..2999; scipy.stats.theilslopes(y, None, 0.95) lists all 4.5
 * million slopes.
 */
static void
test_theil_sen_large(void **state)
{
	struct stats_theilsen ts;
	double *y, *t;
	size_t i, n = 3000;

	(void)state;
	y = malloc(n * sizeof(*y));
	t = malloc(n * sizeof(*t));
	assert_non_null(y);
	assert_non_null(t);
	for (i = 0; i < n; i++) {
		y[i] = 0.5 * (double)i + 20 * sin(0.1 * (double)i) +
		    (double)(i % 7);
		if (i % 97 == 0)
			y[i] += 500;
	}
	assert_int_equal(stats_theil_sen(&ts, NULL, y, n, 0.95), 0);
	assert_false(ts.exact);
	assert_near(ts.slope, 0.4997448896301193, 1e-10);
	assert_near(ts.intercept, 8.442096720677455, 1e-9);
	assert_near(ts.slope_lo, 0.49916685487404505, 1e-10);
	assert_near(ts.slope_hi, 0.5003001205102501, 1e-10);

	/* Explicit t in reverse order, with y reversed to match: the same
	 * points, so the same answer. */
	for (i = 0; i < n; i++) {
		t[i] = (double)(n - 1 - i);
		y[i] = 0.5 * t[i] + 20 * sin(0.1 * t[i]) +
		    (double)((n - 1 - i) % 7);
		if ((n - 1 - i) % 97 == 0)
			y[i] += 500;
	}
	assert_int_equal(stats_theil_sen(&ts, t, y, n, 0.95), 0);
	assert_near(ts.slope, 0.4997448896301193, 1e-10);
	assert_near(ts.slope_lo, 0.49916685487404505, 1e-10);
	assert_int_equal(ts.n, n);
	assert_int_equal(ts.stride, 1);
	free(y);
	free(t);
}

/*
 * Above STATS_THEILSEN_MAX the series is thinned to every stride-th point.
 * y = 7 - 0.25 i + a deterministic wobble of period 13, 250001 points:
 * stride 3, 83334 points used; the wobble averages out and the slope is
 * -0.25 to within its interval.
 */
static void
test_theil_sen_thinned(void **state)
{
	struct stats_theilsen ts;
	size_t i, n = 250001;
	double *y;

	(void)state;
	y = malloc(n * sizeof(*y));
	assert_non_null(y);
	for (i = 0; i < n; i++)
		y[i] = 7 - 0.25 * (double)i + 3 * (double)((i * 5) % 13);
	assert_int_equal(stats_theil_sen(&ts, NULL, y, n, 0.95), 0);
	assert_int_equal(ts.stride, 3);
	assert_int_equal(ts.n, 83334);
	assert_false(ts.exact);
	assert_true(ts.slope_lo <= -0.25 && -0.25 <= ts.slope_hi);
	assert_near(ts.slope, -0.25, 1e-3);
	free(y);
}

/*
 * Mann-Kendall references from the formulas of Gilbert (1987) as
 * pymannkendall.original_test applies them, written out in Python:
 * S by the double loop, Var S with numpy.unique tie counts,
 * Z with continuity correction, p from scipy.stats.norm.
 */
static void
test_mann_kendall(void **state)
{
	/* Rising, one tie (6.3). */
	static const double x1[] = {
		5.1, 4.9, 5.6, 5.8, 6.0, 5.7, 6.3, 6.3, 6.9, 7.1, 6.8, 7.4
	};
	/* No trend. */
	static const double x2[] = {
		10.2, 9.8, 10.5, 9.9, 10.1, 10.0, 9.7, 10.3, 10.0, 9.9
	};
	/* Falling with many ties. */
	static const double x3[] = {
		9, 8, 8, 7, 7, 7, 6, 5, 5, 4, 4, 3, 2, 2, 1
	};
	static const double flat[] = { 3, 3, 3, 3 };
	struct stats_mk mk;

	(void)state;
	assert_int_equal(stats_mann_kendall(&mk, x1, N_OF(x1)), 0);
	assert_near(mk.s, 55, 0);
	assert_near(mk.var_s, 211.66666666666666, 1e-14);
	assert_near(mk.z, 3.711654341766742, 1e-13);
	assert_rel(mk.p_two, 0.00020590905178673156, 1e-10);
	assert_rel(mk.p_incr, 0.00010295452589336578, 1e-10);
	assert_near(mk.p_decr, 0.9998970454741066, 1e-13);
	assert_near(mk.tau, 0.8333333333333334, 1e-14);

	assert_int_equal(stats_mann_kendall(&mk, x2, N_OF(x2)), 0);
	assert_near(mk.s, -7, 0);
	assert_near(mk.var_s, 123.0, 1e-14);
	assert_near(mk.z, -0.5410017808004594, 1e-13);
	assert_near(mk.p_two, 0.5885063552717107, 1e-13);
	assert_near(mk.p_incr, 0.7057468223641447, 1e-13);
	assert_near(mk.p_decr, 0.29425317763585535, 1e-13);
	assert_near(mk.tau, -0.15555555555555556, 1e-14);

	assert_int_equal(stats_mann_kendall(&mk, x3, N_OF(x3)), 0);
	assert_near(mk.s, -98, 0);
	assert_near(mk.var_s, 400.6666666666667, 1e-14);
	assert_near(mk.z, -4.845963378410102, 1e-13);
	assert_rel(mk.p_two, 1.259987585164014e-06, 1e-9);
	assert_near(mk.p_incr, 0.9999993700062074, 1e-13);
	assert_rel(mk.p_decr, 6.29993792582007e-07, 1e-9);
	assert_near(mk.tau, -0.9333333333333333, 1e-14);

	/* All tied: Var S = 0, no evidence either way. */
	assert_int_equal(stats_mann_kendall(&mk, flat, N_OF(flat)), 0);
	assert_near(mk.s, 0, 0);
	assert_near(mk.var_s, 0, 0);
	assert_near(mk.p_two, 1, 0);
}

/* S from the merge-sort count equals the O(n^2) definition, with ties. */
static void
test_mann_kendall_large(void **state)
{
	struct stats_rng rng;
	struct stats_mk mk;
	double *x, s = 0;
	size_t i, j, n = 3001;

	(void)state;
	x = malloc(n * sizeof(*x));
	assert_non_null(x);
	stats_rng_seed(&rng, 99);
	for (i = 0; i < n; i++)	/* rounding makes many ties */
		x[i] = round(stats_rng_normal(&rng, 50, 5) + 0.002 *
		    (double)i);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			s += (x[j] > x[i]) - (x[j] < x[i]);
	assert_int_equal(stats_mann_kendall(&mk, x, n), 0);
	assert_near(mk.s, s, 0);
	free(x);
}

/*
 * Two-sample comparisons
 */

struct mwu_case {
	enum stats_alt	alt;
	double		p;
};

static void
check_mwu(const double *x, size_t nx, const double *y, size_t ny, double u,
    bool exact, const struct mwu_case want[3], double tol)
{
	struct stats_mwu r;
	int i;

	for (i = 0; i < 3; i++) {
		assert_int_equal(stats_mwu_test(&r, x, nx, y, ny, want[i].alt),
		    0);
		assert_near(r.u, u, 0);
		assert_int_equal(r.exact, exact);
		assert_rel(r.p, want[i].p, tol);
	}
}

/* scipy.stats.mannwhitneyu(x, y, alternative=..., method="exact") */
static void
test_mwu_exact(void **state)
{
	static const double x1[] = { 19.2, 17.4, 22.1, 18.8, 20.5, 21.3, 16.9 };
	static const double y1[] = {
		17.1, 15.8, 18.4, 16.2, 19.0, 15.5, 16.6, 17.9
	};
	static const struct mwu_case w1[3] = {
		{ STATS_TWO_SIDED, 0.020512820512820513 },
		{ STATS_X_GREATER, 0.010256410256410256 },
		{ STATS_X_LESS, 0.9930069930069931 },
	};
	/* 7 against 7, completely separated: the smallest one-sided p is
	 * 1 / C(14, 7) = 1 / 3432. */
	static const double x2[] = { 10, 11, 12, 13, 14, 15, 16 };
	static const double y2[] = { 1, 2, 3, 4, 5, 6, 7 };
	static const struct mwu_case w2[3] = {
		{ STATS_TWO_SIDED, 0.0005827505827505828 },
		{ STATS_X_GREATER, 0.0002913752913752914 },
		{ STATS_X_LESS, 0.9999999999999997 },
	};
	static const struct mwu_case w3[3] = {
		{ STATS_TWO_SIDED, 1.0 },
		{ STATS_X_GREATER, 1.0 },
		{ STATS_X_LESS, 0.5 },
	};
	/* 21 against 21 (three rounds of 7 A/B pairs), no ties: with
	 * g = numpy.random.default_rng(11), x = g.normal(100, 8, 21) and
	 * then y = g.normal(92, 8, 21), rounded to 3 decimals. */
	static const double x4[] = {
		100.274, 110.878, 109.798, 95.918, 97.616, 95.781, 104.558,
		99.551, 105.975, 85.221, 112.532, 99.229, 105.443, 98.907,
		96.967, 103.705, 106.596, 98.38, 98.778, 105.486, 93.037
	};
	static const double y4[] = {
		79.885, 95.16, 86.635, 76.637, 85.488, 88.259, 82.454, 80.06,
		92.293, 99.178, 90.135, 86.051, 95.08, 97.738, 89.6, 96.357,
		100.343, 90.344, 85.492, 94.781, 93.98
	};
	static const struct mwu_case w4[3] = {
		{ STATS_TWO_SIDED, 3.0175276147883864e-06 },
		{ STATS_X_GREATER, 1.5087638073941932e-06 },
		{ STATS_X_LESS, 0.999998721371237 },
	};

	(void)state;
	check_mwu(x1, N_OF(x1), y1, N_OF(y1), 48, true, w1, 1e-13);
	check_mwu(y1, N_OF(y1), x1, N_OF(x1), 56 - 48, true,
	    (const struct mwu_case[3]){ w1[0], { STATS_X_LESS, w1[1].p },
	    { STATS_X_GREATER, w1[2].p } }, 1e-13);
	check_mwu(x2, 7, y2, 7, 49, true, w2, 1e-13);
	check_mwu((const double[]){ 1 }, 1, (const double[]){ 2 }, 1, 0, true,
	    w3, 1e-15);
	check_mwu(x4, 21, y4, 21, 393, true, w4, 1e-10);
}

/*
 * scipy.stats.mannwhitneyu(x, y, alternative=..., method="asymptotic",
 * use_continuity=True): samples with ties, or too large for the exact
 * distribution.
 */
static void
test_mwu_asymptotic(void **state)
{
	/* Hollander & Wolfe's example (R's ?wilcox.test), ties in y. */
	static const double x5[] = {
		1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30
	};
	static const double y5[] = {
		0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29
	};
	static const struct mwu_case w5[3] = {
		{ STATS_TWO_SIDED, 0.13291945818531892 },
		{ STATS_X_GREATER, 0.06645972909265946 },
		{ STATS_X_LESS, 0.9442044002897128 },
	};
	/* Heavy ties across the samples. */
	static const double x6[] = { 1, 2, 2, 3, 3, 3, 4, 4, 5, 5, 5, 5, 6 };
	static const double y6[] = {
		2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8
	};
	static const struct mwu_case w6[3] = {
		{ STATS_TWO_SIDED, 0.06865992874046516 },
		{ STATS_X_GREATER, 0.9692482134904715 },
		{ STATS_X_LESS, 0.03432996437023258 },
	};
	/* 30 + 31 > STATS_MWU_EXACT_MAX, no ties: the same generator, next
	 * g.normal(10, 1, 30) and g.normal(10.5, 1, 31), 3 decimals. */
	static const double x7[] = {
		11.099, 8.715, 9.338, 9.162, 8.266, 10.126, 10.528, 9.261,
		11.386, 10.822, 10.627, 10.402, 10.956, 8.668, 10.614, 10.603,
		8.232, 10.347, 9.75, 10.782, 9.561, 9.982, 10.343, 9.124,
		10.599, 9.895, 10.492, 9.478, 11.086, 10.605
	};
	static const double y7[] = {
		10.322, 11.132, 11.76, 12.291, 8.926, 11.383, 10.965, 10.406,
		9.493, 11.757, 9.238, 11.067, 11.802, 8.9, 10.197, 9.191,
		10.744, 12.014, 12.524, 8.722, 9.925, 11.204, 12.079, 10.921,
		9.754, 10.797, 10.483, 10.296, 9.766, 10.887, 10.808
	};
	static const struct mwu_case w7[3] = {
		{ STATS_TWO_SIDED, 0.0258235637181354 },
		{ STATS_X_GREATER, 0.9875606533195924 },
		{ STATS_X_LESS, 0.0129117818590677 },
	};
	struct stats_mwu r;

	(void)state;
	check_mwu(x5, N_OF(x5), y5, N_OF(y5), 58, false, w5, 1e-12);
	check_mwu(x6, N_OF(x6), y6, N_OF(y6), 53.5, false, w6, 1e-12);
	check_mwu(x7, N_OF(x7), y7, N_OF(y7), 310, false, w7, 1e-12);

	/* Everything equal: no evidence. */
	assert_int_equal(stats_mwu_test(&r, (const double[]){ 4, 4, 4 }, 3,
	    (const double[]){ 4, 4 }, 2, STATS_X_GREATER), 0);
	assert_near(r.u, 3, 0);
	assert_near(r.p, 1, 0);
}

/*
 * Hodges-Lehmann: the shift is numpy.median of all y[j] - x[i]; the exact
 * interval is R's rule (lower = D(k) for the smallest k with
 * P(U <= k) >= alpha / 2, k at least 1; achieved level 1 - 2 P(U <= k - 1)),
 * with the null distribution of U enumerated by brute force over
 * itertools.combinations in Python.
 */
static void
test_hodges_lehmann(void **state)
{
	static const double x1[] = { 19.2, 17.4, 22.1, 18.8, 20.5, 21.3, 16.9 };
	static const double y1[] = {
		17.1, 15.8, 18.4, 16.2, 19.0, 15.5, 16.6, 17.9
	};
	static const double xa[] = { 151, 160, 172, 148, 165, 158, 170 };
	static const double ya[] = { 171, 180, 169, 185, 177, 190, 176 };
	static const double x5[] = {
		1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30
	};
	static const double y5[] = {
		0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29
	};
	struct stats_hl hl;

	(void)state;
	assert_int_equal(stats_hodges_lehmann(&hl, x1, 7, y1, 8, 0.95), 0);
	assert_true(hl.exact);
	assert_near(hl.shift, -2.4499999999999993, 1e-14);
	assert_near(hl.lo, -4.699999999999999, 1e-14);
	assert_near(hl.hi, -0.29999999999999716, 1e-14);
	assert_near(hl.level, 0.9599067599067599, 1e-14);
	assert_int_equal(stats_hodges_lehmann(&hl, x1, 7, y1, 8, 0.90), 0);
	assert_near(hl.lo, -4.199999999999999, 1e-14);
	assert_near(hl.hi, -0.7999999999999972, 1e-14);
	assert_near(hl.level, 0.9061383061383061, 1e-14);

	/* 7 A/B pairs, tokens/s: y is 18 higher, 95% CI [6, 29]. */
	assert_int_equal(stats_hodges_lehmann(&hl, xa, 7, ya, 7, 0.95), 0);
	assert_near(hl.shift, 18, 0);
	assert_near(hl.lo, 6, 0);
	assert_near(hl.hi, 29, 0);
	assert_near(hl.level, 0.9621212121212122, 1e-14);

	/* Too small for 95%: k is raised to 1, the interval is the range of
	 * the differences and the level says 0.8. */
	assert_int_equal(stats_hodges_lehmann(&hl, (const double[]){ 1, 2, 3 },
	    3, (const double[]){ 2.5, 4 }, 2, 0.95), 0);
	assert_near(hl.shift, 1.25, 1e-15);
	assert_near(hl.lo, -0.5, 0);
	assert_near(hl.hi, 3, 0);
	assert_near(hl.level, 0.8, 1e-15);

	/*
	 * With ties, the normal approximation: k = ceil(N / 2 - z sigma - 1/2)
	 * with the tie-corrected sigma (computed in Python from the
	 * documented formula; k = 18 here).  The shift is still the median.
	 */
	assert_int_equal(stats_hodges_lehmann(&hl, x5, 9, y5, 9, 0.95), 0);
	assert_false(hl.exact);
	assert_near(hl.shift, -0.56, 1e-14);
	assert_near(hl.lo, -1.183, 1e-14);
	assert_near(hl.hi, 0.3699999999999999, 1e-14);
	assert_near(hl.level, 0.9579524057592858, 1e-12);
}

/* Nine million differences, never stored: numpy.median of the outer
 * difference of x = 100 + 5 sin(0.37 i) + 0.001 i and
 * y = 103 + 5 cos(0.23 i) - 0.002 i, i = 0..2999. */
static void
test_hodges_lehmann_large(void **state)
{
	struct stats_hl hl;
	double *x, *y;
	size_t i, n = 3000;

	(void)state;
	x = malloc(n * sizeof(*x));
	y = malloc(n * sizeof(*y));
	assert_non_null(x);
	assert_non_null(y);
	for (i = 0; i < n; i++) {
		x[i] = 100 + 5 * sin(0.37 * (double)i) + 0.001 * (double)i;
		y[i] = 103 + 5 * cos(0.23 * (double)i) - 0.002 * (double)i;
	}
	assert_int_equal(stats_hodges_lehmann(&hl, x, n, y, n, 0.95), 0);
	assert_near(hl.shift, -1.5125507643774583, 1e-12);
	assert_true(hl.lo < hl.shift && hl.shift < hl.hi);
	assert_true(hl.hi - hl.lo < 0.5);
	free(x);
	free(y);
}

/* scipy.stats.ttest_ind(x, y, equal_var=False, alternative=...) */
static void
test_welch(void **state)
{
	static const double x1[] = {
		20.1, 22.3, 19.8, 21.7, 23.0, 20.9, 22.4, 21.1
	};
	static const double y1[] = { 18.2, 19.9, 17.5, 20.3, 18.8, 19.1 };
	static const double x2[] = {
		5.0, 5.1, 4.9, 5.2, 5.0, 4.8, 5.1, 5.0, 4.9, 5.3, 5.0, 5.1
	};
	static const double y2[] = { 5.4, 6.1, 4.2, 5.9, 6.8, 4.9, 5.5 };
	static const double c1[] = { 7, 7, 7 }, c2[] = { 9, 9, 9, 9 };
	struct stats_ttest t;

	(void)state;
	assert_int_equal(stats_welch_test(&t, x1, 8, y1, 6, STATS_TWO_SIDED),
	    0);
	assert_near(t.t, 4.17803799018629, 1e-12);
	assert_near(t.df, 11.412852037959048, 1e-12);	/* by the formula */
	assert_rel(t.p, 0.001424893552384607, 1e-10);
	assert_int_equal(stats_welch_test(&t, x1, 8, y1, 6, STATS_X_GREATER),
	    0);
	assert_rel(t.p, 0.0007124467761923035, 1e-10);
	assert_int_equal(stats_welch_test(&t, x1, 8, y1, 6, STATS_X_LESS), 0);
	assert_near(t.p, 0.9992875532238077, 1e-12);

	assert_int_equal(stats_welch_test(&t, x2, 12, y2, 7, STATS_TWO_SIDED),
	    0);
	assert_near(t.t, -1.588186542713794, 1e-12);
	assert_rel(t.p, 0.16186105256415528, 1e-10);
	assert_int_equal(stats_welch_test(&t, x2, 12, y2, 7, STATS_X_GREATER),
	    0);
	assert_rel(t.p, 0.9190694737179224, 1e-10);
	assert_int_equal(stats_welch_test(&t, x2, 12, y2, 7, STATS_X_LESS), 0);
	assert_rel(t.p, 0.08093052628207764, 1e-10);

	/* Zero variance on both sides, as documented. */
	assert_int_equal(stats_welch_test(&t, c1, 3, c2, 4, STATS_TWO_SIDED),
	    0);
	assert_true(isinf(t.t) && t.t < 0);
	assert_near(t.p, 0, 0);
	assert_int_equal(stats_welch_test(&t, c1, 3, c2, 4, STATS_X_LESS), 0);
	assert_near(t.p, 0, 0);
	assert_int_equal(stats_welch_test(&t, c1, 3, c2, 4, STATS_X_GREATER),
	    0);
	assert_near(t.p, 1, 0);
	assert_int_equal(stats_welch_test(&t, c1, 3, c1, 2, STATS_TWO_SIDED),
	    0);
	assert_near(t.t, 0, 0);
	assert_near(t.p, 1, 0);
}

/*
 * Distributions: scipy.special.betainc(a, b, x), scipy.stats.t.cdf(t, df),
 * scipy.stats.norm.ppf(p) and .cdf(z).  The t quantiles are NOT
 * scipy.stats.t.ppf, which in scipy 1.10 is only good to about 1e-10 (it
 * gives 2.3060041350333704 for p = 0.975, df = 8, where the closed form of
 * the df = 8 CDF, solved in 50-digit decimal arithmetic, gives
 * 2.30600413520416668...); they are the roots of scipy.stats.t.cdf(x, df)
 * = p (t.sf for the upper half) found by scipy.optimize.brentq with
 * rtol = 8.9e-16.
 */
static void
test_distributions(void **state)
{
	static const struct {
		double a, b, x, want;
	} bi[] = {
		{ 0.5, 0.5, 0.3, 0.3690101195655454 },
		{ 2, 3, 0.4, 0.5247999999999999 },
		{ 10, 0.5, 0.95, 0.3171515754655451 },
		{ 100, 200, 0.3, 0.10884306564491235 },
		{ 0.1, 20, 0.001, 0.7079970084234188 },
		/* Not scipy's 0.001565019762228878, which is wrong in the
		 * 11th digit: 2 P(T > t) for df = 1e5 and t^2 = 10 / 0.9999,
		 * from the finite series of the t CDF for even df,
		 * 1/2 + t / (2 sqrt(df + t^2)) sum_{j < df/2} c_j u^j with
		 * u = df / (df + t^2), c_0 = 1, c_j = c_{j-1} (2j - 1) / (2j),
		 * summed in 60-digit decimal arithmetic. */
		{ 5e4, 0.5, 0.9999, 0.0015650197621725589 },
		{ 3, 3, 1e-5, 9.999850000600003e-15 },
		{ 50, 60, 0.999, 0.9999999999999999 },
		{ 2, 3, 0, 0 },
		{ 2, 3, 1, 1 },
	};
	static const struct {
		double t, df, want;
	} tc[] = {
		{ 0.5, 1, 0.6475836176504333 },
		{ -2.5, 3, 0.04385332350403277 },
		{ 1.96, 1e6, 0.9750019662073651 },
		{ 10, 5, 0.9999145262121285 },
		{ -40, 2.5, 7.097817145246693e-05 },
		{ 3, 30, 0.997305017967174 },
		{ 0, 7, 0.5 },
		{ -1e-3, 4, 0.499625000078125 },
		{ 2.0, 1e12, 0.9772498680516858 },
		{ -8, 1000, 1.7133307411957495e-15 },
	};
	static const struct {
		double p, df, want;
	} tq[] = {
		{ 0.975, 8, 2.306004135204165 },
		{ 0.975, 1, 12.706204736174696 },
		{ 0.975, 10, 2.2281388519862735 },
		{ 0.999, 3, 10.214531852407383 },
		{ 1e-10, 5, -156.82559270889442 },
		{ 0.995, 2.5, 7.163728138948781 },
		{ 0.5, 4, 0 },
		{ 0.9, 1e6, 1.2815524121299384 },
		{ 0.025, 100, -1.983971518523552 },
	};
	static const struct {
		double p, want;
	} nq[] = {
		{ 0.975, 1.959963984540054 },
		{ 1e-10, -6.361340902404056 },
		{ 0.5 + 1e-12, 2.5065728237018607e-12 },
		{ 1e-300, -37.0470962993612 },
		{ 0.3, -0.5244005127080409 },
		{ 0.999999, 4.753424308817087 },
	};
	double v;
	size_t i;

	(void)state;
	for (i = 0; i < N_OF(bi); i++) {
		assert_int_equal(stats_betainc(&v, bi[i].a, bi[i].b, bi[i].x),
		    0);
		if (bi[i].want == 0)
			assert_near(v, 0, 0);
		else
			assert_rel(v, bi[i].want,
			    bi[i].a > 1000 ? 2e-12 : 1e-13);
	}
	for (i = 0; i < N_OF(tc); i++) {
		assert_int_equal(stats_t_cdf(&v, tc[i].t, tc[i].df), 0);
		assert_rel(v, tc[i].want, 1e-12);
	}
	/* A tail at df = 1e6 near the switch point of the fraction, where
	 * the documented accuracy is at its worst (about 1e-11); exact
	 * value from the even-df series as above. */
	assert_int_equal(stats_t_cdf(&v, -1.96, 1e6), 0);
	assert_rel(v, 0.024998033792634893, 2e-11);
	/* df = 1 is the Cauchy: cdf(t) = 1/2 + atan(t) / pi, and the
	 * quantile tan(pi (p - 1/2)). */
	assert_int_equal(stats_t_cdf(&v, -3, 1), 0);
	assert_rel(v, 0.5 + atan(-3) / 3.14159265358979323846, 1e-14);
	assert_int_equal(stats_t_quantile(&v, 0.975, 1), 0);
	assert_rel(v, tan(0.475 * 3.14159265358979323846), 1e-14);
	assert_int_equal(stats_t_cdf(&v, INFINITY, 3), 0);
	assert_near(v, 1, 0);
	assert_int_equal(stats_t_cdf(&v, -INFINITY, 3), 0);
	assert_near(v, 0, 0);
	for (i = 0; i < N_OF(tq); i++) {
		assert_int_equal(stats_t_quantile(&v, tq[i].p, tq[i].df), 0);
		assert_near(v, tq[i].want, 1e-12);
	}
	for (i = 0; i < N_OF(nq); i++) {
		assert_int_equal(stats_norm_quantile(&v, nq[i].p), 0);
		assert_near(v, nq[i].want, 1e-13);
	}
	assert_int_equal(stats_norm_cdf(&v, -1.96), 0);
	assert_rel(v, 0.024997895148220435, 1e-14);
	assert_int_equal(stats_norm_cdf(&v, 3.5), 0);
	assert_near(v, 0.9997673709209645, 1e-15);
	assert_int_equal(stats_norm_cdf(&v, 0), 0);
	assert_near(v, 0.5, 0);
	assert_int_equal(stats_norm_cdf(&v, -INFINITY), 0);
	assert_near(v, 0, 0);
	/* Round trips. */
	for (i = 1; i < 100; i++) {
		double p = (double)i / 100, q;

		assert_int_equal(stats_t_quantile(&v, p, 3.7), 0);
		assert_int_equal(stats_t_cdf(&q, v, 3.7), 0);
		assert_near(q, p, 1e-13);
		assert_int_equal(stats_norm_quantile(&v, p), 0);
		assert_int_equal(stats_norm_cdf(&q, v), 0);
		assert_near(q, p, 1e-14);
	}
}

/*
 * Change points
 */

/* n1 points of N(m1, sd) then n2 of N(m2, sd), from seed. */
static double *
step_series(uint64_t seed, size_t n1, double m1, size_t n2, double m2,
    double sd)
{
	struct stats_rng rng;
	double *x = malloc((n1 + n2) * sizeof(*x));
	size_t i;

	assert_non_null(x);
	stats_rng_seed(&rng, seed);
	for (i = 0; i < n1 + n2; i++)
		x[i] = stats_rng_normal(&rng, i < n1 ? m1 : m2, sd);
	return x;
}

/*
 * E-divisive with a t-test picks the best split first and tests it after,
 * so its p-values are optimistic, and short "bumps" of a few high points
 * get bracketed by two change points now and then.  Measured with these
 * functions over 1000 series of 120 points (seeds 7000..7999): pure noise
 * of CV 2% gave a change point in 3.8% of the series; a +10% step at 60
 * (5 sigma) was found at 60 +/- 2 in 100% of them, with a spurious extra
 * point in 3.4%.  Hence the tests below check one fixed series each, as
 * the brief asks, and bound the rates over many seeds (loosely, as a guard
 * against regressions) rather than demand perfection from every seed.
 */

/* 60 points of N(100, 2), then 60 of N(110, 2): one change at 60 +/- 1. */
static void
test_edivisive_step(void **state)
{
	struct stats_cp *cp;
	size_t i, ncp;
	uint64_t seed;
	double *x;
	int found = 0, extra = 0, one, other;

	(void)state;
	x = step_series(1, 60, 100, 60, 110, 2);
	assert_int_equal(stats_edivisive(&cp, &ncp, x, 120, NULL), 0);
	assert_int_equal(ncp, 1);
	assert_in_range(cp[0].index, 59, 61);
	assert_true(cp[0].p <= 0.001);
	assert_near(cp[0].mean_before, 100, 0.01);
	assert_near(cp[0].mean_after, 110, 0.01);
	free(cp);
	free(x);

	for (seed = 1; seed <= 100; seed++) {
		x = step_series(seed, 60, 100, 60, 110, 2);
		assert_int_equal(stats_edivisive(&cp, &ncp, x, 120, NULL), 0);
		for (one = other = 0, i = 0; i < ncp; i++) {
			if (cp[i].index >= 59 && cp[i].index <= 61)
				one = 1;
			else
				other = 1;
		}
		found += one;
		extra += other;
		free(cp);
		free(x);
	}
	/* These seeds: found 100, 6 series with extra points. */
	assert_int_equal(found, 100);
	assert_true(extra <= 10);
}

/* 120 points of N(100, 2) hold no change. */
static void
test_edivisive_flat(void **state)
{
	struct stats_cp *cp;
	size_t ncp;
	uint64_t seed;
	double *x;
	int with = 0;

	(void)state;
	x = step_series(1001, 60, 100, 60, 100, 2);
	assert_int_equal(stats_edivisive(&cp, &ncp, x, 120, NULL), 0);
	assert_int_equal(ncp, 0);
	assert_null(cp);
	free(x);

	for (seed = 1001; seed <= 1200; seed++) {
		x = step_series(seed, 60, 100, 60, 100, 2);
		assert_int_equal(stats_edivisive(&cp, &ncp, x, 120, NULL), 0);
		with += ncp > 0;
		free(cp);
		free(x);
	}
	/* These seeds: 11 of 200 (5.5%). */
	assert_true(with <= 16);
}

/*
 * Several regimes in a long series, more than a window apart and closer
 * than one: the windows must find them all; noise of 12% (as measured on
 * these VMs) with 30% steps.
 */
static void
test_edivisive_multi(void **state)
{
	static const double level[] = { 100, 130, 91, 91, 120, 120, 120 };
	static const size_t want[] = { 80, 160, 320 };
	struct stats_rng rng;
	struct stats_cp *cp;
	double x[560], c[40];
	size_t i, j, ncp, hits;
	struct stats_edivisive_opts o;
	uint64_t seed;
	int extra = 0;

	(void)state;
	for (seed = 1; seed <= 10; seed++) {
		stats_rng_seed(&rng, seed);
		for (i = 0; i < 560; i++)
			x[i] = stats_rng_lognormal(&rng, log(level[i / 80]),
			    0.12);
		assert_int_equal(stats_edivisive(&cp, &ncp, x, 560, NULL), 0);
		for (hits = 0, i = 0; i < ncp; i++) {
			if (i > 0)
				assert_true(cp[i].index > cp[i - 1].index);
			for (j = 0; j < N_OF(want); j++)
				if (cp[i].index + 2 >= want[j] &&
				    cp[i].index <= want[j] + 2)
					break;
			if (j < N_OF(want))
				hits++;
			else
				extra++;
		}
		assert_int_equal(hits, N_OF(want));
		free(cp);
	}
	/* These seeds: 2 (a 16-point dip and a 24-point bump). */
	assert_true(extra <= 3);

	/* Constant pieces: the change is found exactly. */
	for (i = 0; i < 40; i++)
		c[i] = i < 23 ? 5 : 7;
	assert_int_equal(stats_edivisive(&cp, &ncp, c, 40, NULL), 0);
	assert_int_equal(ncp, 1);
	assert_int_equal(cp[0].index, 23);
	assert_near(cp[0].p, 0, 0);
	free(cp);

	/* A constant series, and series too short to split. */
	for (i = 0; i < 40; i++)
		c[i] = 5;
	assert_int_equal(stats_edivisive(&cp, &ncp, c, 40, NULL), 0);
	assert_int_equal(ncp, 0);
	for (i = 1; i < 4; i++) {
		assert_int_equal(stats_edivisive(&cp, &ncp, x, i, NULL), 0);
		assert_int_equal(ncp, 0);
	}

	/* A minimum magnitude removes the small steps only. */
	for (i = 0; i < 120; i++)
		x[i] = (i < 40 ? 100 : i < 80 ? 103 : 130) +
		    stats_rng_normal(&rng, 0, 0.5);
	stats_edivisive_defaults(&o);
	assert_int_equal(stats_edivisive(&cp, &ncp, x, 120, &o), 0);
	assert_int_equal(ncp, 2);
	free(cp);
	o.min_magnitude = 0.05;
	assert_int_equal(stats_edivisive(&cp, &ncp, x, 120, &o), 0);
	assert_int_equal(ncp, 1);
	assert_in_range(cp[0].index, 79, 81);
	free(cp);
}

/*
 * Multiple testing
 */

/*
 * The example of Benjamini & Hochberg (1995), section 4: fifteen p-values;
 * at q = 0.05 the procedure rejects the four smallest (Bonferroni-Holm
 * rejects three).  Adjusted values: the running minimum from the top of
 * 15 p(k) / k, as R's p.adjust(method = "BH") computes it, worked out in
 * Python.
 */
static void
test_bh(void **state)
{
	static const double p[] = {
		0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298,
		0.0344, 0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.000
	};
	/* The same, shuffled, to check that positions are kept. */
	static const size_t perm[] = {
		14, 3, 9, 0, 12, 6, 1, 11, 8, 5, 13, 2, 10, 7, 4
	};
	double adj[15], sp[15], sadj[15];
	bool rej[15];
	size_t i;

	(void)state;
	assert_int_equal(stats_bh(rej, p, 15, 0.05), 0);
	for (i = 0; i < 15; i++)
		assert_int_equal(rej[i], i < 4);
	assert_int_equal(stats_bh_adjust(adj, p, 15), 0);
	assert_near(adj[0], 0.0015, 1e-15);		/* 15 * 0.0001 / 1 */
	assert_near(adj[1], 0.003, 1e-15);		/* 15 * 0.0004 / 2 */
	assert_near(adj[2], 0.0095, 1e-15);		/* 15 * 0.0019 / 3 */
	assert_near(adj[3], 0.035625, 1e-15);		/* 15 * 0.0095 / 4 */
	assert_near(adj[4], 0.0603, 1e-15);		/* 15 * 0.0201 / 5 */
	assert_near(adj[5], 0.06385714285714286, 1e-15); /* 15 * .0298 / 7 */
	assert_near(adj[6], 0.06385714285714286, 1e-15);
	assert_near(adj[8], 0.0765, 1e-15);		/* 15 * 0.0459 / 9 */
	assert_near(adj[9], 0.486, 1e-15);		/* 15 * 0.324 / 10 */
	assert_near(adj[14], 1, 0);
	for (i = 0; i < 15; i++)
		assert_int_equal(adj[i] <= 0.05, rej[i]);

	for (i = 0; i < 15; i++)
		sp[i] = p[perm[i]];
	assert_int_equal(stats_bh(rej, sp, 15, 0.05), 0);
	assert_int_equal(stats_bh_adjust(sadj, sp, 15), 0);
	for (i = 0; i < 15; i++) {
		assert_int_equal(rej[i], perm[i] < 4);
		assert_near(sadj[i], adj[perm[i]], 0);
	}

	/* At q = 0.2 the first nine go (p(9) = 0.0459 <= 9 * 0.2 / 15). */
	assert_int_equal(stats_bh(rej, p, 15, 0.2), 0);
	for (i = 0; i < 15; i++)
		assert_int_equal(rej[i], i < 9);
	/* out may be the input. */
	memcpy(sp, p, sizeof(sp));
	assert_int_equal(stats_bh_adjust(sp, sp, 15), 0);
	assert_memory_equal(sp, adj, sizeof(adj));
}

/*
 * Pseudo-random numbers
 */

static void
test_rng(void **state)
{
	struct stats_rng a, b;
	double sum = 0, sum2 = 0, v, *ln;
	size_t i, n = 200000;

	(void)state;
	/* xoshiro256** from the state {1, 2, 3, 4}: the first outputs, worked
	 * by hand from the published algorithm (11520 = rotl(2 * 5, 7) * 9)
	 * and checked with a Python transcription. */
	memset(&a, 0, sizeof(a));
	a.s[0] = 1;
	a.s[1] = 2;
	a.s[2] = 3;
	a.s[3] = 4;
	assert_int_equal(stats_rng_next(&a), 11520);
	assert_int_equal(stats_rng_next(&a), 0);
	assert_int_equal(stats_rng_next(&a), 1509978240);
	assert_true(stats_rng_next(&a) == UINT64_C(1215971899390074240));

	/* splitmix64 from 0 gives 0xe220a8397b1dcdaf first, the reference
	 * value of Vigna's splitmix64.c, so s[0] after seeding with 0. */
	stats_rng_seed(&a, 0);
	assert_true(a.s[0] == UINT64_C(0xe220a8397b1dcdaf));

	/* Same seed, same stream; different seed, different stream. */
	stats_rng_seed(&a, 12345);
	stats_rng_seed(&b, 12345);
	for (i = 0; i < 1000; i++)
		assert_true(stats_rng_next(&a) == stats_rng_next(&b));
	stats_rng_seed(&b, 12346);
	assert_true(stats_rng_next(&a) != stats_rng_next(&b));

	/* Uniform in [0, 1); normal moments within a few standard errors. */
	for (i = 0; i < 1000; i++) {
		v = stats_rng_uniform(&a);
		assert_true(v >= 0 && v < 1);
	}
	for (i = 0; i < n; i++) {
		v = stats_rng_normal(&a, 10, 3);
		sum += v;
		sum2 += (v - 10) * (v - 10);
	}
	assert_near(sum / (double)n, 10, 0.005);	/* se 0.0067 / 10 */
	assert_near(sqrt(sum2 / (double)n), 3, 0.005);
	/* Lognormal: the median is exp(mu). */
	ln = malloc(n * sizeof(*ln));
	assert_non_null(ln);
	for (i = 0; i < n; i++)
		ln[i] = stats_rng_lognormal(&a, log(150), 0.12);
	assert_int_equal(stats_median(&v, ln, n), 0);
	assert_near(v, 150, 0.5 / 150);
	free(ln);
}

/*
 * Thread safety: four threads run the heavier functions at once on shared
 * read-only input, and must all get what one thread gets.  (Run under
 * -fsanitize=thread or helgrind to look for races.)
 */
struct thread_job {
	const double	*x;
	size_t		 n;
	double		 ts;
	double		 hl;
	double		 p;
	size_t		 ncp;
};

static void *
thread_run(void *arg)
{
	struct thread_job *j = arg;
	struct stats_theilsen ts;
	struct stats_hl hl;
	struct stats_mwu mw;
	struct stats_cp *cp;
	int k;

	for (k = 0; k < 5; k++) {
		if (stats_theil_sen(&ts, NULL, j->x, j->n, 0.95) < 0 ||
		    stats_hodges_lehmann(&hl, j->x, 10, j->x + 10, 10,
		    0.95) < 0 ||
		    stats_mwu_test(&mw, j->x, 12, j->x + 12, 12,
		    STATS_TWO_SIDED) < 0 ||
		    stats_edivisive(&cp, &j->ncp, j->x, j->n, NULL) < 0)
			return NULL;
		free(cp);
	}
	j->ts = ts.slope;
	j->hl = hl.shift;
	j->p = mw.p;
	return j;
}

static void
test_threads(void **state)
{
	struct thread_job jobs[5];
	pthread_t th[4];
	double *x;
	size_t i;
	void *ret;

	(void)state;
	x = step_series(5, 100, 100, 100, 104, 3);
	for (i = 0; i < 5; i++) {
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].x = x;
		jobs[i].n = 200;
	}
	assert_ptr_equal(thread_run(&jobs[4]), &jobs[4]);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_run,
		    &jobs[i]), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_ptr_equal(ret, &jobs[i]);
		assert_true(jobs[i].ts == jobs[4].ts);
		assert_true(jobs[i].hl == jobs[4].hl);
		assert_true(jobs[i].p == jobs[4].p);
		assert_int_equal(jobs[i].ncp, jobs[4].ncp);
	}
	free(x);
}

/* Signed-rank p-values worked out by enumerating the 2^n sign patterns. */
static void
test_signed_rank(void **state)
{
	static const double all_up[] = { 1, 2, 3, 4, 5 };
	static const double one_down[] = { -1, 2, 3, 4, 5 };
	static const double zero[] = { 0, 1, -2, 3 };
	static const double tied[] = { 1, 1, 2, -2, 3, 3, 3 };
	static const double nothing[] = { 0, 0 };
	struct stats_signed_rank sr;
	double m;

	(void)state;
	assert_int_equal(stats_signed_rank(&sr, all_up, 5, STATS_X_GREATER), 0);
	assert_true(sr.exact);
	assert_float_equal(sr.w, 15, 1e-12);
	assert_float_equal(sr.p, 1.0 / 32, 1e-12);
	assert_int_equal(stats_signed_rank(&sr, all_up, 5, STATS_TWO_SIDED), 0);
	assert_float_equal(sr.p, 2.0 / 32, 1e-12);
	assert_int_equal(stats_signed_rank(&sr, all_up, 5, STATS_X_LESS), 0);
	assert_float_equal(sr.p, 1, 1e-12);
	assert_int_equal(stats_signed_rank(&sr, one_down, 5, STATS_X_GREATER), 0);
	assert_float_equal(sr.w, 14, 1e-12);
	assert_float_equal(sr.p, 2.0 / 32, 1e-12);
	/* The zero is dropped: 3 differences, w = 1 + 3. */
	assert_int_equal(stats_signed_rank(&sr, zero, 4, STATS_X_GREATER), 0);
	assert_int_equal(sr.n, 3);
	assert_float_equal(sr.w, 4, 1e-12);
	assert_float_equal(sr.p, 3.0 / 8, 1e-12);
	assert_int_equal(stats_signed_rank(&sr, zero, 4, STATS_TWO_SIDED), 0);
	assert_float_equal(sr.p, 6.0 / 8, 1e-12);
	/* Ties: mid-ranks, normal approximation with the tie correction. */
	assert_int_equal(stats_signed_rank(&sr, tied, 7, STATS_X_GREATER), 0);
	assert_false(sr.exact);
	assert_float_equal(sr.w, 24.5, 1e-12);
	assert_float_equal(sr.p, 0.04375185, 1e-7);	/* 1 - Phi(10 / sqrt(34.25)) */
	assert_int_equal(stats_signed_rank(&sr, nothing, 2, STATS_X_GREATER), 0);
	assert_int_equal(sr.n, 0);
	assert_float_equal(sr.p, 1, 0);
	assert_int_equal(stats_signed_rank(&sr, NULL, 2, STATS_X_GREATER), -1);

	assert_int_equal(stats_walsh_median(&m, all_up, 3), 0);
	assert_float_equal(m, 2, 1e-12);
	assert_int_equal(stats_walsh_median(&m, (const double[]){ 1, 2, 9 }, 3),
	    0);
	assert_float_equal(m, 3.5, 1e-12);
	assert_int_equal(stats_walsh_median(&m, (const double[]){ 0, 10 }, 2), 0);
	assert_float_equal(m, 5, 1e-12);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantiles),
		cmocka_unit_test(test_mean_variance),
		cmocka_unit_test(test_mad),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_linfit),
		cmocka_unit_test(test_theil_sen),
		cmocka_unit_test(test_theil_sen_large),
		cmocka_unit_test(test_theil_sen_thinned),
		cmocka_unit_test(test_mann_kendall),
		cmocka_unit_test(test_mann_kendall_large),
		cmocka_unit_test(test_mwu_exact),
		cmocka_unit_test(test_mwu_asymptotic),
		cmocka_unit_test(test_hodges_lehmann),
		cmocka_unit_test(test_hodges_lehmann_large),
		cmocka_unit_test(test_welch),
		cmocka_unit_test(test_distributions),
		cmocka_unit_test(test_edivisive_step),
		cmocka_unit_test(test_edivisive_flat),
		cmocka_unit_test(test_edivisive_multi),
		cmocka_unit_test(test_bh),
		cmocka_unit_test(test_signed_rank),
		cmocka_unit_test(test_rng),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
