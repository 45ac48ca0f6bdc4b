/* Statistics for the worker and the detector: tests, trends, change points. */
#ifndef BL_STATS_H
#define BL_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Conventions for every function below.
 *
 * - Samples are passed as (const double *x, size_t n) and are never
 *   modified; functions that need order sort a private copy.
 * - Functions return 0 on success and -1 when n is too small for the
 *   statistic, n is above STATS_MAX_N, a pointer is NULL, or an input is not
 *   finite (NaN or infinity) or out of range; *out is then unspecified.
 *   n == 0 is always -1.
 * - Nothing keeps state between calls and nothing writes globals (lgamma_r
 *   rather than lgamma), so every function is thread-safe.  A struct
 *   stats_rng must not be shared between threads without a lock.
 * - Memory comes from xmalloc() (abort on exhaustion, as everywhere in
 *   benchline).  Memory is O(n): the pairwise estimators count pairs
 *   rather than list them, except Theil-Sen on at most 1000 points, which
 *   lists up to 499,500 slopes (4 MB).
 * - "level" arguments are confidence levels in (0, 1), such as 0.95.
 */

/* Inputs longer than this are rejected, which keeps every size and pair
 * count far from overflow (n * (n - 1) / 2 < 2^52, exact in a double). */
#define STATS_MAX_N		((size_t)1 << 26)

/* MAD * 1.4826 estimates the standard deviation of a normal sample
 * (1 / qnorm(0.75); Rousseeuw & Croux, JASA 88, 1993). */
#define STATS_MAD_SCALE		1.4826

/* Mann-Whitney: exact null distribution when nx + ny <= this and no value
 * is tied; the normal approximation otherwise.  Up to 50 the arrangement
 * counts (at most C(50, 25) ~ 1.3e14) are exact in 64-bit integers, and
 * three rounds of 7 A/B pairs (21 + 21 runs) still get exact p-values. */
#define STATS_MWU_EXACT_MAX	50

/* Theil-Sen: list and sort every pairwise slope up to this many points;
 * above it, find the needed order statistics by bisection instead; above
 * STATS_THEILSEN_MAX, thin the series first (see stats_theil_sen()). */
#define STATS_THEILSEN_EXACT_MAX 1000
#define STATS_THEILSEN_MAX	100000

/*
 * Descriptive statistics
 */

/* Arithmetic mean; n >= 1.  Two passes: the second adds the mean of the
 * residuals, which removes most of the rounding error of the first. */
int	stats_mean(double *out, const double *x, size_t n);

/* Sample variance (divisor n - 1) and its square root; n >= 2.  Corrected
 * two-pass algorithm (Chan, Golub & LeVeque, Am. Stat. 37, 1983). */
int	stats_variance(double *out, const double *x, size_t n);
int	stats_stddev(double *out, const double *x, size_t n);

/* Smallest and largest value; n >= 1.  Either out pointer may be NULL. */
int	stats_minmax(double *min, double *max, const double *x, size_t n);

/*
 * Quantile p in [0, 1] with linear interpolation between order statistics,
 * Hyndman & Fan (Am. Stat. 50, 1996) type 7, the default of R's quantile()
 * and of numpy.quantile(): with the sorted sample s[0..n-1] and
 * h = (n - 1) p, the result is s[floor h] + (h - floor h) (s[floor h + 1] -
 * s[floor h]).  n >= 1.  stats_quantiles() computes np probabilities with a
 * single sort, writing out[i] for p[i].
 */
int	stats_quantile(double *out, const double *x, size_t n, double p);
int	stats_quantiles(double *out, const double *x, size_t n,
	    const double *p, size_t np);

/* Median: the type 7 quantile at 0.5 (the mean of the two middle values
 * when n is even); n >= 1. */
int	stats_median(double *out, const double *x, size_t n);

/*
 * Median absolute deviation from the median, median(|x - median(x)|), raw
 * and multiplied by STATS_MAD_SCALE so that it estimates sigma for normal
 * data (R's mad() default).  n >= 1.  Both are 0 when more than half the
 * values are equal: callers that divide by the MAD need a floor.
 */
int	stats_mad(double *out, const double *x, size_t n);
int	stats_mad_scaled(double *out, const double *x, size_t n);

/* Coefficient of variation: sample standard deviation / |mean|; n >= 2,
 * and -1 when the mean is 0.  Meaningful only for positive ratio data such
 * as tokens/s or latencies. */
int	stats_cv(double *out, const double *x, size_t n);

/*
 * A summary computed from one sorted copy: mean and sample standard
 * deviation (0 when n == 1), extremes and type 7 quantiles.  n >= 1.
 * Percentiles of small samples are mostly noise; n is kept so that
 * reports can show it next to them.
 */
struct stats_summary {
	size_t	n;
	double	mean;
	double	stddev;
	double	min;
	double	p5;
	double	p25;
	double	p50;
	double	p75;
	double	p95;
	double	p99;
	double	max;
};

int	stats_summary(struct stats_summary *out, const double *x, size_t n);

/*
 * Trends
 *
 * In the functions that take (t, y), t may be NULL, meaning t[i] = i: a
 * series in its natural order (requests, runs).
 */

/*
 * Ordinary least squares fit y = intercept + slope * t; n >= 3 and at least
 * two distinct t.  The standard errors assume independent normal errors of
 * constant variance; the confidence interval of the slope is
 * slope -/+ t_{(1 + level) / 2, n - 2} * slope_se and p is the two-sided
 * p-value of slope == 0 (Student t, n - 2 df; e.g. Draper & Smith, Applied
 * Regression Analysis, ch. 1).  r2 = 1 - SSE / Syy, and 1 when y is
 * constant (the fit is then exact).
 */
struct stats_linfit {
	size_t	n;
	double	slope;
	double	intercept;
	double	slope_se;
	double	intercept_se;
	double	slope_lo;	/* confidence interval of the slope */
	double	slope_hi;
	double	p;
	double	r2;
	double	resid_sd;	/* sqrt(SSE / (n - 2)) */
};

int	stats_linfit(struct stats_linfit *out, const double *t, const double *y,
	    size_t n, double level);

/*
 * Theil-Sen estimator (Theil 1950, Sen, JASA 63, 1968): the slope is the
 * median of the slopes (y[j] - y[i]) / (t[j] - t[i]) over all pairs with
 * t[i] != t[j]; the intercept is median(y) - slope * median(t) (Conover;
 * scipy's method="separate").  n >= 2 and at least two distinct t.
 *
 * The interval is Sen's (1968, eq. 2.6) distribution-free one, computed as
 * scipy.stats.theilslopes does: with N slopes, C = z_{(1 + level) / 2} *
 * sqrt(Var S), where Var S is the Mann-Kendall variance with ties in t and
 * in y removed, the bounds are the slopes of 0-based ranks
 * round((N - C) / 2) - 1 and round((N + C) / 2) (rounding half to even),
 * clamped to [0, N - 1].
 *
 * Up to STATS_THEILSEN_EXACT_MAX points every slope is listed and sorted
 * (O(n^2) memory, 80 ms at 1000 points): exact = true and the results
 * equal scipy's.  Above, the points are sorted by t and each needed order
 * statistic is found by bisecting on the value d, counting the pairs with
 * slope <= d as the pairs i < j with y[j] - d t[j] <= y[i] - d t[i], an
 * inversion count done by merge sort in O(n log n); at most 64 bisection
 * steps over the ordered doubles for each of the four order statistics.
 * O(n) memory; 10 ms at 1001 points, 0.2 s at 10^4, 4 s at 10^5.  The
 * results agree with the listed slopes to within rounding (about 1e-12
 * relative), and exact = false.  Above STATS_THEILSEN_MAX points, to bound
 * the time, only every stride-th point (from the first, in the order
 * given) is used, stride = ceil(n / STATS_THEILSEN_MAX): the slope is
 * still consistent and the interval, from fewer points, wider.
 */
struct stats_theilsen {
	size_t	n;		/* points used: n / stride, rounded up */
	size_t	stride;		/* 1 unless the series was thinned */
	double	slope;
	double	intercept;
	double	slope_lo;
	double	slope_hi;
	bool	exact;
};

int	stats_theil_sen(struct stats_theilsen *out, const double *t,
	    const double *y, size_t n, double level);

/*
 * Mann-Kendall trend test of x in its given order (Mann 1945, Kendall
 * 1975; as in Gilbert, Statistical Methods for Environmental Pollution
 * Monitoring, 1987, ch. 16, and pymannkendall's original_test):
 *
 *   S      = sum over i < j of sign(x[j] - x[i])
 *   Var S  = (n (n-1) (2n+5) - sum over tie groups of t (t-1) (2t+5)) / 18
 *   Z      = (S - 1) / sqrt(Var S) if S > 0, (S + 1) / sqrt(Var S) if S < 0,
 *            0 if S == 0
 *
 * and p-values from the standard normal: p_two = 2 (1 - Phi(|Z|)),
 * p_incr = 1 - Phi(Z) (alternative: x increases), p_decr = Phi(Z).
 * tau = S / (n (n-1) / 2).  n >= 3; when every value is equal, Var S = 0,
 * Z = 0 and p_two = 1.  S is counted with a merge sort in O(n log n)
 * (Knight, JASA 61, 1966), so long series are fine.  Assumes independent
 * observations; autocorrelation makes the p-values too small.
 */
struct stats_mk {
	size_t	n;
	double	s;
	double	var_s;
	double	z;
	double	tau;
	double	p_two;
	double	p_incr;
	double	p_decr;
};

int	stats_mann_kendall(struct stats_mk *out, const double *x, size_t n);

/*
 * Two-sample comparisons
 *
 * The alternative hypothesis: STATS_X_GREATER means x tends to be larger
 * than y.  With x the baseline runs and y the candidate's, a throughput
 * regression is STATS_X_GREATER and a latency regression STATS_X_LESS.
 */
enum stats_alt {
	STATS_TWO_SIDED,
	STATS_X_GREATER,
	STATS_X_LESS,
};

/*
 * Mann-Whitney U test (Mann & Whitney, Ann. Math. Stat. 18, 1947).
 * u = #{(i, j): x[i] > y[j]} + #{x[i] == y[j]} / 2, from mid-ranks of the
 * pooled sample, as scipy.stats.mannwhitneyu reports it.  nx, ny >= 1.
 *
 * exact = true when nx + ny <= STATS_MWU_EXACT_MAX and no value occurs
 * twice in the pooled sample: p comes from the exact null distribution of
 * U, the number of arrangements of each u counted as the coefficients of
 * the Gaussian binomial [nx + ny choose nx]_q (the generating function of
 * Mann & Whitney's recursion).  Otherwise p comes from the normal
 * approximation with continuity correction and the tie-corrected variance
 * sigma^2 = nx ny / 12 ((N + 1) - sum (t^3 - t) / (N (N - 1))), N = nx + ny.
 * Either way the p-values match scipy's method="exact" and
 * method="asymptotic" (use_continuity=True), including the two-sided
 * p = min(1, 2 P(U >= max(u, nx ny - u))).  z = (u - nx ny / 2) / sigma
 * without continuity correction (informational; 0 if sigma == 0).
 */
struct stats_mwu {
	double	u;
	double	z;
	double	p;
	bool	exact;
};

int	stats_mwu_test(struct stats_mwu *out, const double *x, size_t nx,
	    const double *y, size_t ny, enum stats_alt alt);

/*
 * Hodges-Lehmann estimate of the shift from x to y (Hodges & Lehmann, Ann.
 * Math. Stat. 34, 1963): the median of the nx * ny differences y[j] - x[i],
 * so a positive shift means y is larger.  The confidence interval is the
 * distribution-free one of Moses (in Walker & Lev, Statistical Inference,
 * 1953; Hollander & Wolfe, Nonparametric Statistical Methods, 1999, sec. 4.3):
 * [D(k), D(N + 1 - k)] for the sorted differences D(1..N), where k is the
 * smallest integer with P(U <= k) >= (1 - level) / 2 under the null, taken
 * from the exact distribution under the same condition as stats_mwu_test()
 * (R's wilcox.test(conf.int = TRUE) does the same), otherwise from the
 * normal approximation of that rule with continuity correction,
 * k = ceil(N / 2 - z_{(1 + level) / 2} sigma - 1 / 2), with the
 * tie-corrected sigma above.  k is at least 1, so very small samples get a
 * wider interval whose real level, reported in level, is lower than asked.
 * nx, ny >= 1.  The differences are never stored: each order statistic
 * is found by at most 64 bisection steps over the ordered doubles, each a
 * two-pointer pass over the sorted samples counting the differences <= d.
 * O(nx + ny) memory; time 64 (nx + ny) per order statistic, up to five of
 * them: microseconds for A/B samples, 8 s for 10^6 against 10^6.
 */
struct stats_hl {
	double	shift;
	double	lo;
	double	hi;
	double	level;		/* achieved confidence, 1 - 2 P(U <= k - 1) */
	bool	exact;
};

int	stats_hodges_lehmann(struct stats_hl *out, const double *x, size_t nx,
	    const double *y, size_t ny, double level);

/*
 * Welch's unequal-variance t-test (Welch, Biometrika 34, 1947):
 * t = (mean_x - mean_y) / sqrt(var_x / nx + var_y / ny), with the
 * Welch-Satterthwaite degrees of freedom, as scipy.stats.ttest_ind
 * (equal_var=False).  nx, ny >= 2.  If both samples have zero variance,
 * t = 0 and p = 1 when the means are equal, else t = +/-infinity and the
 * p-value is 0 on the side of the difference; df is then nx + ny - 2.
 */
struct stats_ttest {
	double	t;
	double	df;
	double	p;
	double	mean_x;
	double	mean_y;
	double	se;	/* standard error of mean_x - mean_y */
};

int	stats_welch_test(struct stats_ttest *out, const double *x, size_t nx,
	    const double *y, size_t ny, enum stats_alt alt);

/*
 * Wilcoxon signed-rank test of one sample of paired differences d (Wilcoxon,
 * Biometrics Bulletin 1, 1945): H1 for STATS_X_GREATER is that d tends to
 * be positive.  Zero differences are dropped (Wilcoxon's own treatment,
 * scipy's zero_method="wilcox"); the |d| get mid-ranks; w = the sum of the
 * ranks of the positive d.  exact = true when at most STATS_SR_EXACT_MAX
 * differences remain and no two |d| are equal: p comes from the exact null
 * distribution of w (each of the 2^n sign patterns equally likely, counted
 * by a recursion over the ranks).  Otherwise from the normal approximation
 * with continuity correction and the tie-corrected variance
 * n (n + 1) (2n + 1) / 24 - sum (t^3 - t) / 48.  n is the number of
 * non-zero differences; with none, p = 1.  Two-sided p = min(1, 2 min tail).
 */
#define STATS_SR_EXACT_MAX	50

struct stats_signed_rank {
	double	w;
	double	p;
	size_t	n;
	bool	exact;
};

int	stats_signed_rank(struct stats_signed_rank *out, const double *d,
	    size_t n, enum stats_alt alt);

/*
 * The one-sample Hodges-Lehmann estimate: the median of the n (n + 1) / 2
 * Walsh averages (d[i] + d[j]) / 2, i <= j, the centre the signed-rank test
 * estimates.  1 <= n <= 4096 (the averages are stored).
 */
int	stats_walsh_median(double *out, const double *d, size_t n);

/*
 * Change points
 *
 * E-divisive with a t-test, as Hunter / Apache Otava compute it (Fleming
 * et al., "Hunter: Using Change Point Detection to Hunt for Performance
 * Regressions", ICPE 2023; the E-divisive of Matteson & James, JASA 109,
 * 2014, with the permutation test replaced by a t-test for determinism).
 * Precisely:
 *
 * 1. Split of one segment.  For a segment z[s..e) of m >= 4 points, every
 *    left part X = z[s..tau) and right part Y = z[tau..kappa), kappa <= e,
 *    of a >= 2 and b >= 2 points is scored with
 *        Q = a b / (a + b) * (2 C / (a b) - A / C(a, 2) - B / C(b, 2)),
 *    A, B and C being the sums of |z_i - z_k| over pairs inside X, inside Y
 *    and across: the energy statistic of Matteson & James (eq. 5, alpha = 1).
 *    The candidate is the tau of the largest Q over all (tau, kappa), the
 *    first in (tau, kappa) order on ties.  It is accepted if Student's
 *    pooled-variance two-sided t-test of z[s..tau) against z[tau..e) gives
 *    p <= the threshold; then both sides are split the same way, until no
 *    candidate is accepted.  A work stack replaces recursion.  O(m^2) time
 *    per split, O(m) memory.
 *
 * 2. Windows (Otava's split()).  Step 1 runs on windows of opts.window
 *    points with a relaxed threshold: 10 * max_pvalue (2 * max_pvalue when
 *    max_pvalue >= 0.05).  The first window starts at 0; the next one at
 *    max(last change point found in this window, start + window / 2); and
 *    so on while start < n.  Windows overlap, so a change near a window
 *    edge is seen whole in the next one.
 *
 * 3. Merge (Otava's merge()).  Each change point found is re-tested with
 *    the same t-test between the segments bounded by its neighbours (or
 *    the series ends).  While some p > max_pvalue, the point with the
 *    largest p is removed and its two neighbours re-tested.  Then, while
 *    the smallest magnitude, max(|after / before - 1|, |before / after -
 *    1|) of the segment means (a term is 0 when its divisor is), is below
 *    min_magnitude, that point is removed the same way (0 turns this off).
 *
 * Where this differs from Otava: both sides of a split need 2 points
 * (Otava allows 1, which a single outlier can satisfy), and the t-test uses
 * sample standard deviations (Otava passes population ones to scipy).
 * Student's test rather than Welch's, as Otava: on segments of a few points
 * Welch's test trusts a variance estimated from two or three values, and in
 * simulations it doubled the false change points (11.5% against 3.8% of
 * 120-point N(100, 2) series) for the same power.
 *
 * The split is chosen before it is tested, so p-values are optimistic:
 * expect a spurious change point in roughly 4% of 120-point noise series
 * at max_pvalue 0.001 (usually a short bump bracketed by two points), and
 * use min_magnitude (0.05 removes nearly all of them at 2% noise) or a
 * confirmation step before acting on one.  The result is deterministic: it
 * depends only on x and the options.
 */
struct stats_edivisive_opts {
	size_t	window;		/* points per window, >= 4; default 50 */
	double	max_pvalue;	/* final threshold in (0, 1); default 0.001 */
	double	min_magnitude;	/* relative change, >= 0; default 0 (off) */
};

/* One change point: the first index of the new regime. */
struct stats_cp {
	size_t	index;
	double	p;		/* t-test two-sided p against the neighbours */
	double	mean_before;	/* mean of the segment ending at index */
	double	mean_after;	/* mean of the segment starting at index */
};

/* Fills opts with window 50, max_pvalue 0.001, min_magnitude 0. */
void	stats_edivisive_defaults(struct stats_edivisive_opts *opts);
/*
 * Finds change points in x (n >= 1; series under 4 points have none).
 * opts may be NULL for the defaults.  On success *out is an array of
 * *nout change points in increasing index order, which the caller frees
 * with free(); it is NULL when *nout is 0.
 */
int	stats_edivisive(struct stats_cp **out, size_t *nout, const double *x,
	    size_t n, const struct stats_edivisive_opts *opts);

/*
 * Multiple testing
 *
 * Benjamini-Hochberg step-up procedure (JRSS B 57, 1995) at false
 * discovery rate q in (0, 1]: with p sorted ascending p(1) <= ... <= p(n),
 * find the largest k with p(k) <= k q / n and reject the k hypotheses with
 * the smallest p-values.  out[i] is true when hypothesis i is rejected.
 * p-values must lie in [0, 1].  Valid for independent or positively
 * dependent tests.
 */
int	stats_bh(bool *out, const double *p, size_t n, double q);
/* BH-adjusted p-values: out[i] = min over p(k) >= p[i] of min(1, n p(k) / k)
 * (R's p.adjust(method = "BH")); reject i at level q iff out[i] <= q.
 * out may be the same array as p. */
int	stats_bh_adjust(double *out, const double *p, size_t n);

/*
 * Distributions
 */

/* Standard normal CDF Phi(z) = erfc(-z / sqrt 2) / 2; z may be infinite.
 * Upper tails: 1 - Phi(z) = Phi(-z), without cancellation. */
int	stats_norm_cdf(double *out, double z);
/* Inverse of Phi for p in (0, 1): Newton steps on erfc from the
 * Abramowitz & Stegun 26.2.23 approximation, to full double precision. */
int	stats_norm_quantile(double *out, double p);

/*
 * Regularized incomplete beta function I_x(a, b) for a, b > 0 and x in
 * [0, 1], from its continued fraction (DLMF 8.17.22) evaluated with the
 * modified Lentz method (Thompson & Barnett, J. Comput. Phys. 64, 1986),
 * using I_x(a, b) = 1 - I_{1-x}(b, a) when x > (a + 1) / (a + b + 2) so
 * that the fraction converges fast (under 100 terms even for a = 5e7).
 * Relative accuracy about 1e-14 for moderate a and b.  Near the switch
 * point with a large a, the first terms of the fraction cancel and the
 * error grows like a * 2e-17: measured 7e-13 at a = 5e4 and 9e-12 at
 * a = 5e5 (a t-test at df = 1e6, |t| near 1.7), still far below what any
 * significance threshold can notice.
 */
int	stats_betainc(double *out, double a, double b, double x);

/*
 * Student t with df > 0 degrees of freedom (df may be +infinity: the
 * normal).  CDF from P(T > t) = I_{df / (df + t^2)}(df / 2, 1 / 2) / 2 for
 * t >= 0; upper tails: P(T > t) = cdf(-t), without cancellation.  The
 * quantile for p in (0, 1) is found by safeguarded Newton steps.
 */
int	stats_t_cdf(double *out, double t, double df);
int	stats_t_quantile(double *out, double p, double df);

/*
 * Deterministic pseudo-random numbers for synthetic test series:
 * xoshiro256** (Blackman & Vigna, ACM TOMS 47, 2021) seeded through
 * splitmix64 (Steele, Lea & Flood, OOPSLA 2014), so one 64-bit seed gives
 * the same stream on every machine.  Not for anything secret.  The state
 * is plain data owned by the caller.
 */
struct stats_rng {
	uint64_t	s[4];
	double		spare;		/* second normal of a Box-Muller pair */
	bool		has_spare;
};

void		stats_rng_seed(struct stats_rng *r, uint64_t seed);
uint64_t	stats_rng_next(struct stats_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double		stats_rng_uniform(struct stats_rng *r);
/* Normal with the given mean and standard deviation (Box & Muller, Ann.
 * Math. Stat. 29, 1958: two variates per pair of uniforms). */
double		stats_rng_normal(struct stats_rng *r, double mean, double sd);
/* exp(N(mu, sigma)): for a median of m and a spread of about c (as a
 * fraction), use mu = log(m) and sigma = c. */
double		stats_rng_lognormal(struct stats_rng *r, double mu,
		    double sigma);

#endif
