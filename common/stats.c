/* Statistics for the worker and the detector: tests, trends, change points. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "xmalloc.h"

#define STATS_PI	3.14159265358979323846
#define STATS_SQRT1_2	0.70710678118654752440	/* 1 / sqrt(2) */

/* Above this many degrees of freedom Student's t is the normal to within
 * about 1e-10 (the difference shrinks like 1 / df). */
#define T_DF_NORMAL	1e10

/* Continued fraction: it took under 100 terms in every case tried, up to
 * a = 5e7; the limit only stops a loop that would never end. */
#define CF_MAXIT	100000
#define CF_EPS		1e-16
#define CF_TINY		1e-300

/* Counts the members <= d of a large implicit set, such as all pairwise
 * slopes or differences, for kth_by_bisection(). */
typedef uint64_t (*count_le_fn)(double d, void *ctx);

/*
 * Helpers
 */

/* Accepts a sample of min_n..STATS_MAX_N finite values. */
static int
check_sample(const double *x, size_t n, size_t min_n)
{
	size_t i;

	if (x == NULL || n == 0 || n < min_n || n > STATS_MAX_N)
		return -1;
	for (i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return -1;
	return 0;
}

static int
check_level(double level)
{
	return level > 0 && level < 1 ? 0 : -1;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double *
copy_of(const double *x, size_t n)
{
	double *s = xreallocarray(NULL, n, sizeof(*s));

	memcpy(s, x, n * sizeof(*s));
	return s;
}

/* Returns a sorted copy of x; caller frees. */
static double *
sorted_copy(const double *x, size_t n)
{
	double *s = copy_of(x, n);

	qsort(s, n, sizeof(*s), cmp_double);
	return s;
}

/*
 * a + t (b - a) for t in [0, 1], computed from the nearer end so that it
 * is exact at t = 0 and t = 1 and monotone (as numpy's _lerp does).
 */
static double
lerp(double a, double b, double t)
{
	double d = b - a;

	if (t == 0)
		return a;
	if (!isfinite(d))
		return a * (1 - t) + b * t;
	return t < 0.5 ? a + d * t : b - d * (1 - t);
}

/* Type 7 quantile of a sorted sample, p in [0, 1]. */
static double
quantile_sorted(const double *s, size_t n, double p)
{
	double h = (double)(n - 1) * p;
	size_t lo = (size_t)floor(h);

	if (lo >= n - 1)
		return s[n - 1];
	return lerp(s[lo], s[lo + 1], h - (double)lo);
}

/*
 * Mean in two passes: the second adds the mean residual, which cancels
 * most of the rounding error of the first.  Sums that overflow are
 * redone on scaled values.
 */
static double
mean_of(const double *x, size_t n)
{
	double sum = 0, corr = 0, m;
	size_t i;

	for (i = 0; i < n; i++)
		sum += x[i];
	if (isfinite(sum)) {
		m = sum / (double)n;
	} else {
		for (m = 0, i = 0; i < n; i++)
			m += x[i] / (double)n;
	}
	for (i = 0; i < n; i++)
		corr += x[i] - m;
	return m + corr / (double)n;
}

/* Sample variance about m with the corrected two-pass formula; n >= 2. */
static double
var_of(const double *x, size_t n, double m)
{
	double ss = 0, s = 0, d, v;
	size_t i;

	for (i = 0; i < n; i++) {
		d = x[i] - m;
		ss += d * d;
		s += d;
	}
	v = (ss - s * s / (double)n) / (double)(n - 1);
	return v > 0 ? v : 0;
}

/*
 * Maps a double to an unsigned integer with the same order, so that
 * bisection can run over the representable values: at most 64 steps
 * between any two finite doubles, all of which map back to finite values.
 */
static uint64_t
dkey(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return (u >> 63) ? ~u : u | (UINT64_C(1) << 63);
}

static double
dval(uint64_t k)
{
	uint64_t u = (k >> 63) ? k & ~(UINT64_C(1) << 63) : ~k;
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

/*
 * Returns the smallest double d in [lo, hi] with count_le(d) >= k, given
 * that count_le is non-decreasing and count_le(hi) >= k: the k-th smallest
 * element of the set that count_le counts.
 */
static double
kth_by_bisection(count_le_fn count_le, void *ctx, double lo, double hi,
    uint64_t k)
{
	uint64_t a = dkey(lo), b = dkey(hi), mid;

	while (a < b) {
		mid = a + (b - a) / 2;
		if (count_le(dval(mid), ctx) >= k)
			b = mid;
		else
			a = mid + 1;
	}
	return dval(a) + 0.0;	/* no -0 */
}

/*
 * Sorts a[0..n) ascending with a bottom-up merge sort (tmp holds n values)
 * and returns the number of pairs i < j, positions before sorting, with
 * a[i] > a[j], or a[i] >= a[j] when ties is true.  When an element of the
 * right run is placed, every element left in the left run is greater (or
 * not smaller), which counts each such pair once (Knight, JASA 61, 1966).
 */
static uint64_t
merge_count(double *a, double *tmp, size_t n, bool ties)
{
	double *src = a, *dst = tmp, *swap;
	size_t width, lo, mid, hi, i, j, k;
	uint64_t cnt = 0;
	bool left;

	for (width = 1; width < n; width *= 2) {
		for (lo = 0; lo < n; lo += 2 * width) {
			mid = n - lo > width ? lo + width : n;
			hi = n - mid > width ? mid + width : n;
			i = lo;
			j = mid;
			k = lo;
			while (i < mid && j < hi) {
				left = ties ? src[i] < src[j] :
				    src[i] <= src[j];
				if (left) {
					dst[k++] = src[i++];
				} else {
					cnt += mid - i;
					dst[k++] = src[j++];
				}
			}
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		swap = src;
		src = dst;
		dst = swap;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
	return cnt;
}

/*
 * Walks the runs of g equal values of a sorted array: returns the number
 * of tied pairs, sum g (g - 1) / 2, and adds sum g (g - 1) (2g + 5), the
 * Mann-Kendall variance correction, to *mk.
 */
static uint64_t
tie_groups(const double *s, size_t n, double *mk)
{
	uint64_t pairs = 0;
	size_t i, j;
	double g;

	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && s[j] == s[i]; j++)
			;
		if (j - i < 2)
			continue;
		g = (double)(j - i);
		pairs += (uint64_t)(j - i) * (j - i - 1) / 2;
		*mk += g * (g - 1) * (2 * g + 5);
	}
	return pairs;
}

/*
 * Descriptive statistics
 */

int
stats_mean(double *out, const double *x, size_t n)
{
	double m;

	if (check_sample(x, n, 1) < 0)
		return -1;
	m = mean_of(x, n);
	if (!isfinite(m))
		return -1;
	*out = m;
	return 0;
}

int
stats_variance(double *out, const double *x, size_t n)
{
	double m, v;

	if (check_sample(x, n, 2) < 0)
		return -1;
	m = mean_of(x, n);
	v = var_of(x, n, m);
	if (!isfinite(m) || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

int
stats_stddev(double *out, const double *x, size_t n)
{
	double v;

	if (stats_variance(&v, x, n) < 0)
		return -1;
	*out = sqrt(v);
	return 0;
}

int
stats_minmax(double *min, double *max, const double *x, size_t n)
{
	double lo, hi;
	size_t i;

	if (check_sample(x, n, 1) < 0)
		return -1;
	lo = hi = x[0];
	for (i = 1; i < n; i++) {
		if (x[i] < lo)
			lo = x[i];
		if (x[i] > hi)
			hi = x[i];
	}
	if (min != NULL)
		*min = lo;
	if (max != NULL)
		*max = hi;
	return 0;
}

int
stats_quantiles(double *out, const double *x, size_t n, const double *p,
    size_t np)
{
	double *s;
	size_t i;

	if (check_sample(x, n, 1) < 0 || p == NULL || np == 0)
		return -1;
	for (i = 0; i < np; i++)
		if (!(p[i] >= 0 && p[i] <= 1))
			return -1;
	s = sorted_copy(x, n);
	for (i = 0; i < np; i++)
		out[i] = quantile_sorted(s, n, p[i]);
	free(s);
	return 0;
}

int
stats_quantile(double *out, const double *x, size_t n, double p)
{
	return stats_quantiles(out, x, n, &p, 1);
}

int
stats_median(double *out, const double *x, size_t n)
{
	return stats_quantile(out, x, n, 0.5);
}

int
stats_mad(double *out, const double *x, size_t n)
{
	double *s, med;
	size_t i;

	if (check_sample(x, n, 1) < 0)
		return -1;
	s = sorted_copy(x, n);
	med = quantile_sorted(s, n, 0.5);
	for (i = 0; i < n; i++)
		s[i] = fabs(s[i] - med);
	qsort(s, n, sizeof(*s), cmp_double);
	*out = quantile_sorted(s, n, 0.5);
	free(s);
	return isfinite(*out) ? 0 : -1;
}

int
stats_mad_scaled(double *out, const double *x, size_t n)
{
	double mad;

	if (stats_mad(&mad, x, n) < 0)
		return -1;
	*out = mad * STATS_MAD_SCALE;
	return 0;
}

int
stats_cv(double *out, const double *x, size_t n)
{
	double m, v;

	if (check_sample(x, n, 2) < 0)
		return -1;
	m = mean_of(x, n);
	v = var_of(x, n, m);
	if (m == 0 || !isfinite(m) || !isfinite(v))
		return -1;
	*out = sqrt(v) / fabs(m);
	return 0;
}

int
stats_summary(struct stats_summary *out, const double *x, size_t n)
{
	double *s;

	if (check_sample(x, n, 1) < 0)
		return -1;
	s = sorted_copy(x, n);
	out->n = n;
	out->mean = mean_of(s, n);
	out->stddev = n > 1 ? sqrt(var_of(s, n, out->mean)) : 0;
	out->min = s[0];
	out->p5 = quantile_sorted(s, n, 0.05);
	out->p25 = quantile_sorted(s, n, 0.25);
	out->p50 = quantile_sorted(s, n, 0.5);
	out->p75 = quantile_sorted(s, n, 0.75);
	out->p95 = quantile_sorted(s, n, 0.95);
	out->p99 = quantile_sorted(s, n, 0.99);
	out->max = s[n - 1];
	free(s);
	return isfinite(out->mean) && isfinite(out->stddev) ? 0 : -1;
}

/*
 * Distributions
 */

/*
 * The remainder of Stirling's formula, log Gamma(x) - ((x - 1/2) log x -
 * x + log(2 pi) / 2), for x >= 10, from its asymptotic series with the
 * Bernoulli numbers B2..B14 (DLMF 5.11.1); the first term left out is
 * below 1e-17 there.
 */
static double
stirling_rest(double x)
{
	double r = 1 / x, r2 = r * r;

	return r * (1.0 / 12 - r2 * (1.0 / 360 - r2 * (1.0 / 1260 -
	    r2 * (1.0 / 1680 - r2 * (1.0 / 1188 - r2 * (691.0 / 360360 -
	    r2 / 156))))));
}

/*
 * log B(a, b).  When the larger argument is big, lgamma(a) and
 * lgamma(a + b) are huge and nearly equal, and their difference loses
 * most of its digits (a relative error of 1e-10 in a t-test p-value at
 * df = 1e6); then the difference comes from Stirling's formula written
 * with log1p, which keeps them.
 */
static double
log_beta(double a, double b)
{
	double big = a > b ? a : b, small = a > b ? b : a;
	int sign;

	if (big < 10)
		return lgamma_r(a, &sign) + lgamma_r(b, &sign) -
		    lgamma_r(a + b, &sign);
	return lgamma_r(small, &sign) - (big - 0.5) * log1p(small / big) -
	    small * log(big + small) + small + stirling_rest(big) -
	    stirling_rest(big + small);
}

/*
 * Evaluates K = 1 + d1 / (1 + d2 / (1 + ...)), the continued fraction of
 * DLMF 8.17.22, with I_x(a, b) = x^a (1 - x)^b / (a B(a, b) K) and
 *	d(2m + 1) = -(a + m) (a + b + m) x / ((a + 2m) (a + 2m + 1)),
 *	d(2m)     = m (b - m) x / ((a + 2m - 1) (a + 2m)).
 * Modified Lentz method: for b0 + a1 / (b1 + a2 / (b2 + ...)) keep
 * C_j = b_j + a_j / C_{j-1} and D_j = 1 / (b_j + a_j D_{j-1}), multiply
 * f by C_j D_j, and stop when that factor is 1 to within CF_EPS; values
 * that would divide by zero are replaced by CF_TINY.
 */
static int
beta_cf(double *out, double a, double b, double x)
{
	double f = 1, c = 1, d = 0, num, delta, m;
	long j;

	for (j = 1; j <= CF_MAXIT; j++) {
		m = (double)(j / 2);
		if (j % 2 == 1)
			num = -(a + m) * (a + b + m) * x /
			    ((a + 2 * m) * (a + 2 * m + 1));
		else
			num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
		d = 1 + num * d;
		if (fabs(d) < CF_TINY)
			d = CF_TINY;
		d = 1 / d;
		c = 1 + num / c;
		if (fabs(c) < CF_TINY)
			c = CF_TINY;
		delta = c * d;
		f *= delta;
		if (fabs(delta - 1) < CF_EPS) {
			*out = f;
			return 0;
		}
	}
	return -1;
}

/*
 * I_x(a, b), with y = 1 - x passed separately so that neither end loses
 * digits to the subtraction.  The fraction converges quickly for
 * x < (a + 1) / (a + b + 2); beyond it, use I_x(a, b) = 1 - I_y(b, a).
 */
static int
betainc_xy(double *out, double a, double b, double x, double y)
{
	double lx, ly, front, k, v;

	if (x <= 0) {
		*out = 0;
		return 0;
	}
	if (y <= 0) {
		*out = 1;
		return 0;
	}
	lx = x < 0.5 ? log(x) : log1p(-y);
	ly = y < 0.5 ? log(y) : log1p(-x);
	front = exp(a * lx + b * ly - log_beta(a, b));
	if (x < (a + 1) / (a + b + 2)) {
		if (beta_cf(&k, a, b, x) < 0)
			return -1;
		v = front / (a * k);
	} else {
		if (beta_cf(&k, b, a, y) < 0)
			return -1;
		v = 1 - front / (b * k);
	}
	if (!isfinite(v))
		return -1;
	*out = v < 0 ? 0 : v > 1 ? 1 : v;
	return 0;
}

int
stats_betainc(double *out, double a, double b, double x)
{
	if (!(a > 0) || !(b > 0) || !isfinite(a) || !isfinite(b) ||
	    !(x >= 0 && x <= 1))
		return -1;
	return betainc_xy(out, a, b, x, 1 - x);
}

/* Upper tail of the standard normal, 1 - Phi(z), accurate for large z. */
static double
norm_upper(double z)
{
	return 0.5 * erfc(z * STATS_SQRT1_2);
}

int
stats_norm_cdf(double *out, double z)
{
	if (isnan(z))
		return -1;
	*out = norm_upper(-z);
	return 0;
}

/*
 * P(T > t) for Student's t with df degrees of freedom, t >= 0:
 * I_x(df / 2, 1 / 2) / 2 with x = df / (df + t^2), written through
 * r = t^2 / df so that neither x nor 1 - x is formed by subtraction.
 */
static int
t_upper(double *out, double t, double df)
{
	double r, x, y, v;

	if (df > T_DF_NORMAL) {
		*out = norm_upper(t);
		return 0;
	}
	if (isinf(t)) {
		*out = 0;
		return 0;
	}
	r = t / sqrt(df);
	if (r > 1e150) {
		x = 1 / r / r;
		y = 1;
	} else {
		x = 1 / (1 + r * r);
		y = r * r / (1 + r * r);
	}
	if (betainc_xy(&v, df / 2, 0.5, x, y) < 0)
		return -1;
	*out = v / 2;
	return 0;
}

/* Density of Student's t (the normal beyond T_DF_NORMAL), for Newton steps. */
static double
t_pdf(double t, double df)
{
	int sign;
	double lc;

	if (df > T_DF_NORMAL)
		return exp(-t * t / 2) / sqrt(2 * STATS_PI);
	lc = lgamma_r((df + 1) / 2, &sign) - lgamma_r(df / 2, &sign) -
	    0.5 * log(df * STATS_PI);
	return exp(lc - (df + 1) / 2 * log1p(t * t / df));
}

int
stats_t_cdf(double *out, double t, double df)
{
	double u;

	if (isnan(t) || !(df > 0))
		return -1;
	if (t_upper(&u, fabs(t), df) < 0)
		return -1;
	*out = t < 0 ? u : 1 - u;
	return 0;
}

/* p-value of a statistic with a t (or, df = infinity, normal) null. */
static int
t_pvalue(double *out, double t, double df, enum stats_alt alt)
{
	double u;

	if (t_upper(&u, fabs(t), df) < 0)
		return -1;
	switch (alt) {
	case STATS_TWO_SIDED:
		*out = 2 * u > 1 ? 1 : 2 * u;
		break;
	case STATS_X_GREATER:		/* P(T >= t) */
		*out = t >= 0 ? u : 1 - u;
		break;
	case STATS_X_LESS:		/* P(T <= t) */
		*out = t <= 0 ? u : 1 - u;
		break;
	default:
		return -1;
	}
	return 0;
}

/*
 * Finds t >= 0 with P(T > t) = q for q in (0, 0.5]: bracket by doubling,
 * then Newton steps (the derivative of the tail is minus the density),
 * falling back to bisection whenever a step leaves the bracket.
 */
static int
t_solve_upper(double *out, double q, double df, double guess)
{
	double lo = 0, hi = 1, t, u, f, pdf, next;
	int i;

	if (q >= 0.5) {
		*out = 0;
		return 0;
	}
	for (;;) {
		if (t_upper(&u, hi, df) < 0)
			return -1;
		if (u < q)
			break;
		lo = hi;
		hi *= 2;
		if (hi > 1e300)
			return -1;
	}
	t = guess > lo && guess < hi ? guess : lo + (hi - lo) / 2;
	for (i = 0; i < 500; i++) {
		if (t_upper(&u, t, df) < 0)
			return -1;
		f = u - q;
		if (f == 0)
			break;
		if (f > 0)
			lo = t;
		else
			hi = t;
		pdf = t_pdf(t, df);
		next = pdf > 0 ? t + f / pdf : lo + (hi - lo) / 2;
		if (!(next > lo && next < hi))
			next = lo + (hi - lo) / 2;
		if (fabs(next - t) <= 2 * DBL_EPSILON * next) {
			t = next;
			break;
		}
		t = next;
		if (hi - lo <= 2 * DBL_EPSILON * hi)
			break;
	}
	*out = t;
	return 0;
}

/*
 * A starting point for the normal upper-tail quantile, within 4.5e-4:
 * Abramowitz & Stegun 26.2.23.
 */
static double
norm_guess(double q)
{
	double w = sqrt(-2 * log(q));

	return w - (2.515517 + 0.802853 * w + 0.010328 * w * w) /
	    (1 + 1.432788 * w + 0.189269 * w * w + 0.001308 * w * w * w);
}

int
stats_t_quantile(double *out, double p, double df)
{
	double q, z, g, t;

	if (!(p > 0 && p < 1) || !(df > 0))
		return -1;
	q = p < 0.5 ? p : 1 - p;
	z = norm_guess(q);
	/* Cornish-Fisher expansion in 1 / df (A&S 26.7.5), first terms. */
	g = z + (z * z * z + z) / (4 * df) +
	    (5 * pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * df * df);
	if (t_solve_upper(&t, q, df, g) < 0)
		return -1;
	*out = p < 0.5 ? -t : t;
	return 0;
}

int
stats_norm_quantile(double *out, double p)
{
	double q, z;

	if (!(p > 0 && p < 1))
		return -1;
	q = p < 0.5 ? p : 1 - p;
	if (t_solve_upper(&z, q, INFINITY, norm_guess(q)) < 0)
		return -1;
	*out = p < 0.5 ? -z : z;
	return 0;
}

/*
 * Trends
 */

/* t[i], or i when the caller gave no t. */
static double
t_at(const double *t, size_t i)
{
	return t != NULL ? t[i] : (double)i;
}

int
stats_linfit(struct stats_linfit *out, const double *t, const double *y,
    size_t n, double level)
{
	double tm = 0, ym, stt = 0, sty = 0, syy = 0, sse = 0, dt, dy, r;
	double s2, tq, b, a;
	size_t i;

	if (check_sample(y, n, 3) < 0 || check_level(level) < 0)
		return -1;
	if (t != NULL && check_sample(t, n, 3) < 0)
		return -1;
	for (i = 0; i < n; i++)
		tm += t_at(t, i);
	tm /= (double)n;
	ym = mean_of(y, n);
	for (i = 0; i < n; i++) {
		dt = t_at(t, i) - tm;
		dy = y[i] - ym;
		stt += dt * dt;
		sty += dt * dy;
		syy += dy * dy;
	}
	if (!(stt > 0) || !isfinite(stt) || !isfinite(syy) || !isfinite(sty))
		return -1;
	b = sty / stt;
	a = ym - b * tm;
	for (i = 0; i < n; i++) {
		r = y[i] - (a + b * t_at(t, i));
		sse += r * r;
	}
	s2 = sse / (double)(n - 2);
	if (stats_t_quantile(&tq, (1 + level) / 2, (double)(n - 2)) < 0)
		return -1;

	out->n = n;
	out->slope = b;
	out->intercept = a;
	out->slope_se = sqrt(s2 / stt);
	out->intercept_se = sqrt(s2 * (1 / (double)n + tm * tm / stt));
	out->slope_lo = b - tq * out->slope_se;
	out->slope_hi = b + tq * out->slope_se;
	out->resid_sd = sqrt(s2);
	out->r2 = syy > 0 ? 1 - sse / syy : 1;
	if (out->r2 < 0)
		out->r2 = 0;
	if (out->slope_se > 0) {
		if (t_pvalue(&out->p, b / out->slope_se, (double)(n - 2),
		    STATS_TWO_SIDED) < 0)
			return -1;
	} else {
		out->p = b != 0 ? 0 : 1;
	}
	return isfinite(a) && isfinite(b) && isfinite(s2) ? 0 : -1;
}

struct tpoint {
	double	t;
	double	y;
};

/* Orders by t, and by y descending among equal t (see slope_count_le). */
static int
cmp_tpoint(const void *a, const void *b)
{
	const struct tpoint *p = a, *q = b;

	if (p->t != q->t)
		return (p->t > q->t) - (p->t < q->t);
	return (p->y < q->y) - (p->y > q->y);
}

struct slope_ctx {
	const struct tpoint	*pt;
	size_t			 n;
	double			*w;
	double			*tmp;
	uint64_t		 tied;	/* pairs with equal t */
	double			 tc;	/* centres of t and y: keep the */
	double			 yc;	/* terms of w small */
};

/*
 * Counts the pairs of distinct t whose slope is <= d.  With the points
 * ordered by t, (y[j] - y[i]) / (t[j] - t[i]) <= d for t[i] < t[j] exactly
 * when w[j] <= w[i] with w = y - d t: a count of pairs i < j with
 * w[i] >= w[j].  Points of equal t are ordered by y descending, so each of
 * their pairs is counted too, and is subtracted.
 */
static uint64_t
slope_count_le(double d, void *arg)
{
	struct slope_ctx *c = arg;
	size_t i;

	for (i = 0; i < c->n; i++)
		c->w[i] = (c->pt[i].y - c->yc) - d * (c->pt[i].t - c->tc);
	return merge_count(c->w, c->tmp, c->n, true) - c->tied;
}

int
stats_theil_sen(struct stats_theilsen *out, const double *t, const double *y,
    size_t n, double level)
{
	struct tpoint *pt = NULL;
	struct slope_ctx ctx;
	double *ys = NULL, *slopes = NULL, *ts = NULL;
	double vt = 0, vy = 0, sigma, z, gap, bound, lo, hi, med, nn;
	uint64_t npairs, tied, rl, ru, k;
	size_t i, j, stride;
	int rc = -1;

	if (check_sample(y, n, 2) < 0 || check_level(level) < 0)
		return -1;
	if (t != NULL && check_sample(t, n, 2) < 0)
		return -1;
	if (stats_norm_quantile(&z, (1 + level) / 2) < 0)
		return -1;

	/* Thin very long series to at most STATS_THEILSEN_MAX points. */
	stride = (n + STATS_THEILSEN_MAX - 1) / STATS_THEILSEN_MAX;
	pt = xreallocarray(NULL, (n + stride - 1) / stride, sizeof(*pt));
	for (j = 0, i = 0; i < n; i += stride, j++) {
		pt[j].t = t_at(t, i);
		pt[j].y = y[i];
	}
	n = j;
	qsort(pt, n, sizeof(*pt), cmp_tpoint);
	ts = xreallocarray(NULL, n, sizeof(*ts));
	ys = xreallocarray(NULL, n, sizeof(*ys));
	for (i = 0; i < n; i++) {
		ts[i] = pt[i].t;
		ys[i] = pt[i].y;
	}
	qsort(ys, n, sizeof(*ys), cmp_double);
	tied = tie_groups(ts, n, &vt);
	tie_groups(ys, n, &vy);
	npairs = (uint64_t)n * (n - 1) / 2 - tied;
	if (npairs == 0)
		goto out;		/* every t is the same */

	/* Sen (1968), eq. 2.6, with scipy's rounding (half to even). */
	nn = (double)n;
	sigma = sqrt(fmax(0, (nn * (nn - 1) * (2 * nn + 5) - vt - vy) / 18));
	hi = nearbyint(((double)npairs + z * sigma) / 2);
	lo = nearbyint(((double)npairs - z * sigma) / 2) - 1;
	ru = hi > (double)(npairs - 1) ? npairs - 1 : (uint64_t)hi;
	rl = lo < 0 ? 0 : (uint64_t)lo;

	if (n <= STATS_THEILSEN_EXACT_MAX) {
		slopes = xreallocarray(NULL, npairs, sizeof(*slopes));
		for (k = 0, i = 0; i < n; i++)
			for (j = i + 1; j < n; j++)
				if (pt[j].t != pt[i].t)
					slopes[k++] = (pt[j].y - pt[i].y) /
					    (pt[j].t - pt[i].t);
		qsort(slopes, npairs, sizeof(*slopes), cmp_double);
		med = quantile_sorted(slopes, npairs, 0.5);
		out->slope_lo = slopes[rl];
		out->slope_hi = slopes[ru];
		out->exact = true;
	} else {
		/* Every slope lies within (max y - min y) / smallest t gap. */
		gap = INFINITY;
		for (i = 1; i < n; i++)
			if (ts[i] > ts[i - 1] && ts[i] - ts[i - 1] < gap)
				gap = ts[i] - ts[i - 1];
		bound = 2 * (ys[n - 1] - ys[0]) / gap;
		if (!(bound <= DBL_MAX))
			bound = DBL_MAX;
		ctx.pt = pt;
		ctx.n = n;
		ctx.w = xreallocarray(NULL, n, sizeof(double));
		ctx.tmp = xreallocarray(NULL, n, sizeof(double));
		ctx.tied = tied;
		ctx.tc = ts[n / 2];
		ctx.yc = ys[n / 2];
		if (npairs % 2 == 1) {
			med = kth_by_bisection(slope_count_le, &ctx, -bound,
			    bound, npairs / 2 + 1);
		} else {
			med = lerp(kth_by_bisection(slope_count_le, &ctx,
			    -bound, bound, npairs / 2),
			    kth_by_bisection(slope_count_le, &ctx, -bound,
			    bound, npairs / 2 + 1), 0.5);
		}
		out->slope_lo = kth_by_bisection(slope_count_le, &ctx, -bound,
		    bound, rl + 1);
		out->slope_hi = kth_by_bisection(slope_count_le, &ctx, -bound,
		    bound, ru + 1);
		out->exact = false;
		free(ctx.w);
		free(ctx.tmp);
	}
	out->n = n;
	out->stride = stride;
	out->slope = med;
	out->intercept = quantile_sorted(ys, n, 0.5) -
	    med * quantile_sorted(ts, n, 0.5);
	rc = isfinite(out->slope) && isfinite(out->intercept) ? 0 : -1;
out:
	free(pt);
	free(ts);
	free(ys);
	free(slopes);
	return rc;
}

int
stats_mann_kendall(struct stats_mk *out, const double *x, size_t n)
{
	double *a, *tmp, vt = 0, nn = (double)n, s, var, z, sd;
	uint64_t disc, tied, npairs;

	if (check_sample(x, n, 3) < 0)
		return -1;
	a = copy_of(x, n);
	tmp = xreallocarray(NULL, n, sizeof(*tmp));
	disc = merge_count(a, tmp, n, false);	/* i < j, x[i] > x[j] */
	tied = tie_groups(a, n, &vt);
	free(a);
	free(tmp);

	npairs = (uint64_t)n * (n - 1) / 2;
	s = (double)(npairs - tied - disc) - (double)disc;
	var = (nn * (nn - 1) * (2 * nn + 5) - vt) / 18;
	sd = sqrt(var > 0 ? var : 0);
	if (sd == 0)
		z = 0;
	else if (s > 0)
		z = (s - 1) / sd;
	else if (s < 0)
		z = (s + 1) / sd;
	else
		z = 0;

	out->n = n;
	out->s = s;
	out->var_s = var;
	out->z = z;
	out->tau = s / (double)npairs;
	out->p_two = erfc(fabs(z) * STATS_SQRT1_2);
	if (out->p_two > 1)
		out->p_two = 1;
	out->p_incr = norm_upper(z);
	out->p_decr = norm_upper(-z);
	return 0;
}

/*
 * Two-sample comparisons
 */

/* A pooled value and the sample it came from. */
struct pooled {
	double	v;
	bool	is_x;
};

static int
cmp_pooled(const void *a, const void *b)
{
	const struct pooled *p = a, *q = b;

	return (p->v > q->v) - (p->v < q->v);
}

/*
 * Ranks the pooled sample with mid-ranks and returns U of x (the rank sum
 * of x minus nx (nx + 1) / 2); *cube gets sum (g^3 - g) over tie groups.
 */
static double
mwu_u(const double *x, size_t nx, const double *y, size_t ny, double *cube)
{
	struct pooled *p;
	size_t n = nx + ny, i, j, k;
	double rx = 0, rank;

	p = xreallocarray(NULL, n, sizeof(*p));
	for (i = 0; i < nx; i++) {
		p[i].v = x[i];
		p[i].is_x = true;
	}
	for (i = 0; i < ny; i++) {
		p[nx + i].v = y[i];
		p[nx + i].is_x = false;
	}
	qsort(p, n, sizeof(*p), cmp_pooled);
	*cube = 0;
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && p[j].v == p[i].v; j++)
			;
		rank = ((double)i + 1 + (double)j) / 2;	/* mean of i+1..j */
		for (k = i; k < j; k++)
			if (p[k].is_x)
				rx += rank;
		if (j - i > 1)
			*cube += (double)(j - i) * (double)(j - i) *
			    (double)(j - i) - (double)(j - i);
	}
	free(p);
	return rx - (double)nx * ((double)nx + 1) / 2;
}

/*
 * Exact null distribution of U for samples of m and n values without
 * ties: c[u] is the number of the C(m + n, m) equally likely arrangements
 * with U = u, for u = 0..mn.  These are the coefficients of the Gaussian
 * binomial [m + n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i),
 * built one factor at a time: multiplying by 1 - q^a subtracts a shifted
 * copy, and dividing by 1 - q^i (exact, the quotient being a polynomial)
 * adds a running sum with stride i.  After step i the array holds
 * [n + i choose i]_q.  Returns a new array of mn + 1 counts; caller frees.
 * Needs m + n <= 66 for the counts to fit (STATS_MWU_EXACT_MAX keeps 50).
 */
static int64_t *
mwu_counts(size_t m, size_t n)
{
	size_t deg = 0, i, d, a;
	int64_t *c;

	c = xcalloc(m * n + m + 1, sizeof(*c));
	c[0] = 1;
	for (i = 1; i <= m; i++) {
		a = n + i;
		for (d = deg + a; d >= a; d--)
			c[d] -= c[d - a];
		for (d = i; d <= deg + a; d++)
			c[d] += c[d - i];
		deg += n;
	}
	return c;
}

/* P(U >= u) from the exact counts of sizes m, n. */
static double
mwu_exact_sf(const int64_t *c, size_t m, size_t n, double u)
{
	int64_t total = 0, tail = 0;
	size_t k, mn = m * n;

	for (k = 0; k <= mn; k++) {
		total += c[k];
		if ((double)k >= u)
			tail += c[k];
	}
	return (double)tail / (double)total;
}

/* Whether the pooled samples qualify for the exact distribution. */
static bool
mwu_use_exact(size_t nx, size_t ny, double cube)
{
	return nx + ny <= STATS_MWU_EXACT_MAX && cube == 0;
}

/* Standard deviation of U under the null, with the tie correction. */
static double
mwu_sigma(size_t nx, size_t ny, double cube)
{
	double n = (double)nx + (double)ny, v;

	v = (double)nx * (double)ny / 12 * ((n + 1) - cube / (n * (n - 1)));
	return v > 0 ? sqrt(v) : 0;
}

int
stats_mwu_test(struct stats_mwu *out, const double *x, size_t nx,
    const double *y, size_t ny, enum stats_alt alt)
{
	double cube, u1, u2, u, f, mu, sigma, p;
	int64_t *c;

	if (check_sample(x, nx, 1) < 0 || check_sample(y, ny, 1) < 0 ||
	    nx + ny > STATS_MAX_N)
		return -1;
	switch (alt) {
	case STATS_TWO_SIDED:
	case STATS_X_GREATER:
	case STATS_X_LESS:
		break;
	default:
		return -1;
	}

	u1 = mwu_u(x, nx, y, ny, &cube);
	u2 = (double)nx * (double)ny - u1;
	/* scipy's choice: the upper tail of U1, of U2, or twice that of the
	 * larger one. */
	u = alt == STATS_X_GREATER ? u1 : alt == STATS_X_LESS ? u2 :
	    fmax(u1, u2);
	f = alt == STATS_TWO_SIDED ? 2 : 1;
	mu = (double)nx * (double)ny / 2;
	sigma = mwu_sigma(nx, ny, cube);

	out->u = u1;
	out->z = sigma > 0 ? (u1 - mu) / sigma : 0;
	out->exact = mwu_use_exact(nx, ny, cube);
	if (out->exact) {
		c = mwu_counts(nx < ny ? nx : ny, nx < ny ? ny : nx);
		p = mwu_exact_sf(c, nx < ny ? nx : ny, nx < ny ? ny : nx, u);
		free(c);
	} else if (sigma > 0) {
		p = norm_upper((u - 0.5 - mu) / sigma);
	} else {
		p = 1;			/* every value is the same */
	}
	p *= f;
	out->p = p > 1 ? 1 : p;
	return 0;
}

struct diff_ctx {
	const double	*x;	/* sorted */
	size_t		 nx;
	const double	*y;	/* sorted */
	size_t		 ny;
};

/*
 * Counts the pairs with y[j] - x[i] <= d.  Rounding is monotone, so the
 * computed differences fall as i grows and rise with j: the number of j
 * that qualify only grows with i, and one pointer sweeps y once.
 */
static uint64_t
diff_count_le(double d, void *arg)
{
	const struct diff_ctx *c = arg;
	uint64_t cnt = 0;
	size_t i, j = 0;

	for (i = 0; i < c->nx; i++) {
		while (j < c->ny && c->y[j] - c->x[i] <= d)
			j++;
		cnt += j;
	}
	return cnt;
}

int
stats_hodges_lehmann(struct stats_hl *out, const double *x, size_t nx,
    const double *y, size_t ny, double level)
{
	struct diff_ctx ctx;
	double *xs, *ys, cube, lo, hi, alpha, sigma, z, cum, total, kd;
	int64_t *c;
	uint64_t npairs, k;
	size_t m, n, u;
	int rc = -1;

	if (check_sample(x, nx, 1) < 0 || check_sample(y, ny, 1) < 0 ||
	    nx + ny > STATS_MAX_N || check_level(level) < 0)
		return -1;
	alpha = 1 - level;
	mwu_u(x, nx, y, ny, &cube);
	xs = sorted_copy(x, nx);
	ys = sorted_copy(y, ny);
	ctx.x = xs;
	ctx.nx = nx;
	ctx.y = ys;
	ctx.ny = ny;
	lo = ys[0] - xs[nx - 1];
	hi = ys[ny - 1] - xs[0];
	npairs = (uint64_t)nx * ny;

	if (npairs % 2 == 1)
		out->shift = kth_by_bisection(diff_count_le, &ctx, lo, hi,
		    npairs / 2 + 1);
	else
		out->shift = lerp(kth_by_bisection(diff_count_le, &ctx, lo, hi,
		    npairs / 2), kth_by_bisection(diff_count_le, &ctx, lo, hi,
		    npairs / 2 + 1), 0.5);

	out->exact = mwu_use_exact(nx, ny, cube);
	if (out->exact) {
		/* Smallest k with P(U <= k) >= alpha / 2 (R's qwilcox). */
		m = nx < ny ? nx : ny;
		n = nx < ny ? ny : nx;
		c = mwu_counts(m, n);
		for (total = 0, u = 0; u <= m * n; u++)
			total += (double)c[u];
		for (cum = 0, u = 0; u <= m * n; u++) {
			if ((cum + (double)c[u]) / total >= alpha / 2)
				break;
			cum += (double)c[u];
		}
		/* The lower bound is D(u), and cum / total = P(U <= u - 1).
		 * Like R, raise u = 0 to 1, where P(U <= 0) = c[0] / total. */
		k = u > 0 ? u : 1;
		if (u == 0)
			cum = (double)c[0];
		free(c);
		out->level = 1 - 2 * cum / total;
	} else {
		sigma = mwu_sigma(nx, ny, cube);
		if (stats_norm_quantile(&z, 1 - alpha / 2) < 0)
			goto out;
		kd = ceil((double)npairs / 2 - z * sigma - 0.5);
		k = kd < 1 ? 1 : (uint64_t)kd;
		if (k > (npairs + 1) / 2)
			k = (npairs + 1) / 2;
		if (sigma > 0)
			out->level = 1 - 2 * norm_upper(((double)npairs / 2 -
			    ((double)k - 0.5)) / sigma);
		else
			out->level = level;
	}
	out->lo = kth_by_bisection(diff_count_le, &ctx, lo, hi, k);
	out->hi = kth_by_bisection(diff_count_le, &ctx, lo, hi,
	    npairs + 1 - k);
	if (isfinite(out->shift) && isfinite(out->lo) && isfinite(out->hi))
		rc = 0;
out:
	free(xs);
	free(ys);
	return rc;
}

int
stats_welch_test(struct stats_ttest *out, const double *x, size_t nx,
    const double *y, size_t ny, enum stats_alt alt)
{
	double mx, my, a, b, s, df, t;

	if (check_sample(x, nx, 2) < 0 || check_sample(y, ny, 2) < 0)
		return -1;
	mx = mean_of(x, nx);
	my = mean_of(y, ny);
	a = var_of(x, nx, mx) / (double)nx;
	b = var_of(y, ny, my) / (double)ny;
	s = a + b;
	if (!isfinite(mx) || !isfinite(my) || !isfinite(s))
		return -1;
	if (s > 0) {
		/* Welch-Satterthwaite, scaled by s against underflow. */
		df = 1 / ((a / s) * (a / s) / (double)(nx - 1) +
		    (b / s) * (b / s) / (double)(ny - 1));
		t = (mx - my) / sqrt(s);
	} else {
		df = (double)(nx + ny - 2);
		t = mx == my ? 0 : copysign(INFINITY, mx - my);
	}
	out->t = t;
	out->df = df;
	out->mean_x = mx;
	out->mean_y = my;
	out->se = sqrt(s);
	return t_pvalue(&out->p, t, df, alt);
}

/*
 * Change points: E-divisive with a t-test
 */

void
stats_edivisive_defaults(struct stats_edivisive_opts *opts)
{
	opts->window = 50;
	opts->max_pvalue = 0.001;
	opts->min_magnitude = 0;
}

struct idxvec {
	size_t	*v;
	size_t	 len;
	size_t	 cap;
};

static void
idxvec_push(struct idxvec *iv, size_t i)
{
	if (iv->len == iv->cap) {
		iv->cap = iv->cap ? 2 * iv->cap : 16;
		iv->v = xreallocarray(iv->v, iv->cap, sizeof(*iv->v));
	}
	iv->v[iv->len++] = i;
}

static int
cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return (x > y) - (x < y);
}

/*
 * Returns the split tau of z[s..e), e - s >= 4, that maximises Matteson &
 * James's statistic over the left part X = z[s..tau) and every right part
 * Y = z[tau..kappa), kappa <= e, both of at least 2 points:
 *	Q = a b / (a + b) (2 C / (a b) - A / C(a, 2) - B / C(b, 2)),
 * A, B and C being the sums of |z_i - z_k| within X, within Y and across.
 * With P[k], the distances from z[k] to the points before it in the
 * segment, and W[k], those from z[k] to X, growing X by one point adds
 * P of that point to A and one distance to every W; growing Y by z[k]
 * adds P[k] - W[k] to B and W[k] to C.  So the scan takes O(m^2) time and
 * the two arrays of m values in scratch.  Ties go to the first (tau,
 * kappa) in order, as numpy's argmax in Otava.
 */
static size_t
ediv_best_split(const double *z, size_t s, size_t e, double *scratch)
{
	double *P = scratch, *W = scratch + (e - s);
	double A = 0, B, C, a, b, q, best = -INFINITY;
	size_t i, k, tau, best_tau = s + 2;

	for (k = s; k < e; k++) {
		P[k - s] = 0;
		for (i = s; i < k; i++)
			P[k - s] += fabs(z[k] - z[i]);
		W[k - s] = 0;
	}
	for (tau = s + 1; tau + 2 <= e; tau++) {
		/* z[tau - 1] joins X. */
		A += P[tau - 1 - s];
		for (k = tau; k < e; k++)
			W[k - s] += fabs(z[k] - z[tau - 1]);
		a = (double)(tau - s);
		if (a < 2)
			continue;
		B = 0;
		C = 0;
		for (k = tau; k < e; k++) {
			/* z[k] joins Y = z[tau..k]. */
			B += P[k - s] - W[k - s];
			C += W[k - s];
			b = (double)(k + 1 - tau);
			if (b < 2)
				continue;
			q = a * b / (a + b) * (2 * C / (a * b) -
			    2 * A / (a * (a - 1)) - 2 * B / (b * (b - 1)));
			if (q > best) {
				best = q;
				best_tau = tau;
			}
		}
	}
	return best_tau;
}

/*
 * Two-sided p-value of Student's pooled-variance t-test of z[lo..mid)
 * against z[mid..hi), both at least 2 long, and the two means.  Two
 * constant parts give p = 1 if equal and 0 if not.
 */
static double
ediv_test(const double *z, size_t lo, size_t mid, size_t hi,
    double *mean_before, double *mean_after)
{
	double m1, m2, n1 = (double)(mid - lo), n2 = (double)(hi - mid);
	double sp2, se, t, p;

	m1 = mean_of(z + lo, mid - lo);
	m2 = mean_of(z + mid, hi - mid);
	if (mean_before != NULL)
		*mean_before = m1;
	if (mean_after != NULL)
		*mean_after = m2;
	sp2 = ((n1 - 1) * var_of(z + lo, mid - lo, m1) +
	    (n2 - 1) * var_of(z + mid, hi - mid, m2)) / (n1 + n2 - 2);
	se = sqrt(sp2 * (1 / n1 + 1 / n2));
	if (!isfinite(m1) || !isfinite(m2) || !isfinite(se))
		return 1;
	if (se == 0)
		return m1 == m2 ? 1 : 0;
	t = (m1 - m2) / se;
	if (t_pvalue(&p, t, n1 + n2 - 2, STATS_TWO_SIDED) < 0)
		return 1;
	return p;
}

/*
 * Step 1 on the window z[s..e): split, test, and split both sides again,
 * with a stack of segments instead of recursion.  Live segments are
 * disjoint and at least 2 long, so the stack never holds more than
 * (e - s) / 2 + 1 of them.  Accepted splits are appended to cps.
 */
static void
ediv_window(struct idxvec *cps, const double *z, size_t s, size_t e,
    double pmax)
{
	size_t (*stack)[2], sp = 0, lo, hi, tau;
	double *scratch;

	stack = xreallocarray(NULL, (e - s) / 2 + 2, sizeof(*stack));
	scratch = xreallocarray(NULL, 2 * (e - s), sizeof(*scratch));
	stack[sp][0] = s;
	stack[sp][1] = e;
	sp++;
	while (sp > 0) {
		sp--;
		lo = stack[sp][0];
		hi = stack[sp][1];
		if (hi - lo < 4)
			continue;
		tau = ediv_best_split(z, lo, hi, scratch);
		if (ediv_test(z, lo, tau, hi, NULL, NULL) > pmax)
			continue;
		idxvec_push(cps, tau);
		stack[sp][0] = lo;
		stack[sp][1] = tau;
		sp++;
		stack[sp][0] = tau;
		stack[sp][1] = hi;
		sp++;
	}
	free(stack);
	free(scratch);
}

/* Tests change point i of cp[0..k) against its neighbours. */
static void
ediv_retest(struct stats_cp *cp, size_t k, size_t i, const double *z,
    size_t n)
{
	size_t lo = i > 0 ? cp[i - 1].index : 0;
	size_t hi = i + 1 < k ? cp[i + 1].index : n;

	cp[i].p = ediv_test(z, lo, cp[i].index, hi, &cp[i].mean_before,
	    &cp[i].mean_after);
}

/* Otava's change_magnitude(): the larger relative change of the two ways. */
static double
ediv_magnitude(const struct stats_cp *cp)
{
	double fwd = 0, bwd = 0;

	if (cp->mean_before != 0)
		fwd = fabs(cp->mean_after / cp->mean_before - 1);
	if (cp->mean_after != 0)
		bwd = fabs(cp->mean_before / cp->mean_after - 1);
	return fwd > bwd ? fwd : bwd;
}

int
stats_edivisive(struct stats_cp **out, size_t *nout, const double *x,
    size_t n, const struct stats_edivisive_opts *opts)
{
	struct stats_edivisive_opts def;
	struct idxvec iv = { NULL, 0, 0 };
	struct stats_cp *cp;
	size_t start, end, step, last, before, i, k, w;
	double first, worst, mag;

	if (opts == NULL) {
		stats_edivisive_defaults(&def);
		opts = &def;
	}
	if (out == NULL || nout == NULL || opts->window < 4 ||
	    !(opts->max_pvalue > 0 && opts->max_pvalue < 1) ||
	    !(opts->min_magnitude >= 0) || !isfinite(opts->min_magnitude))
		return -1;
	if (check_sample(x, n, 1) < 0)
		return -1;
	*out = NULL;
	*nout = 0;

	/* Step 2: overlapping windows, as Otava's split(), with its relaxed
	 * first-pass threshold. */
	first = opts->max_pvalue < 0.05 ? 10 * opts->max_pvalue :
	    opts->max_pvalue < 0.5 ? 2 * opts->max_pvalue : opts->max_pvalue;
	step = opts->window / 2;
	for (start = 0; start < n; start = last > start + step ? last :
	    start + step) {
		end = n - start > opts->window ? start + opts->window : n;
		before = iv.len;
		ediv_window(&iv, x, start, end, first);
		for (last = 0, i = before; i < iv.len; i++)
			if (iv.v[i] > last)
				last = iv.v[i];
	}
	if (iv.len == 0)
		return 0;
	qsort(iv.v, iv.len, sizeof(*iv.v), cmp_size);

	cp = xreallocarray(NULL, iv.len, sizeof(*cp));
	for (k = 0, i = 0; i < iv.len; i++)
		if (k == 0 || iv.v[i] != cp[k - 1].index)
			cp[k++].index = iv.v[i];
	free(iv.v);
	for (i = 0; i < k; i++)
		ediv_retest(cp, k, i, x, n);

	/* Step 3: drop the weakest point until all pass, as Otava's merge(). */
	while (k > 0) {
		for (w = 0, i = 1; i < k; i++)
			if (cp[i].p > cp[w].p)
				w = i;
		worst = cp[w].p;
		if (worst <= opts->max_pvalue) {
			for (w = 0, i = 1; i < k; i++)
				if (ediv_magnitude(&cp[i]) <
				    ediv_magnitude(&cp[w]))
					w = i;
			mag = ediv_magnitude(&cp[w]);
			if (mag >= opts->min_magnitude)
				break;
		}
		memmove(&cp[w], &cp[w + 1], (k - w - 1) * sizeof(*cp));
		k--;
		if (w > 0)
			ediv_retest(cp, k, w - 1, x, n);
		if (w < k)
			ediv_retest(cp, k, w, x, n);
	}
	if (k == 0) {
		free(cp);
		return 0;
	}
	*out = cp;
	*nout = k;
	return 0;
}

/*
 * Multiple testing
 */

struct pidx {
	double	p;
	size_t	i;
};

static int
cmp_pidx(const void *a, const void *b)
{
	const struct pidx *x = a, *y = b;

	if (x->p != y->p)
		return (x->p > y->p) - (x->p < y->p);
	return (x->i > y->i) - (x->i < y->i);
}

/* Returns the p-values with their positions, sorted; caller frees. */
static struct pidx *
sorted_pvalues(const double *p, size_t n)
{
	struct pidx *s;
	size_t i;

	if (p == NULL || n == 0 || n > STATS_MAX_N)
		return NULL;
	for (i = 0; i < n; i++)
		if (!(p[i] >= 0 && p[i] <= 1))
			return NULL;
	s = xreallocarray(NULL, n, sizeof(*s));
	for (i = 0; i < n; i++) {
		s[i].p = p[i];
		s[i].i = i;
	}
	qsort(s, n, sizeof(*s), cmp_pidx);
	return s;
}

int
stats_bh(bool *out, const double *p, size_t n, double q)
{
	struct pidx *s;
	size_t r, kmax = 0;

	if (!(q > 0 && q <= 1) || (s = sorted_pvalues(p, n)) == NULL)
		return -1;
	for (r = 1; r <= n; r++)
		if (s[r - 1].p <= (double)r * q / (double)n)
			kmax = r;
	for (r = 0; r < n; r++)
		out[r] = false;
	for (r = 0; r < kmax; r++)
		out[s[r].i] = true;
	free(s);
	return 0;
}

int
stats_bh_adjust(double *out, const double *p, size_t n)
{
	struct pidx *s;
	double m = 1, v;
	size_t r;

	if ((s = sorted_pvalues(p, n)) == NULL)
		return -1;
	for (r = n; r >= 1; r--) {
		v = (double)n * s[r - 1].p / (double)r;
		if (v < m)
			m = v;
		out[s[r - 1].i] = m;
	}
	free(s);
	return 0;
}

/*
 * Pseudo-random numbers
 */

static uint64_t
rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* splitmix64: a Weyl sequence through a 64-bit finaliser. */
static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void
stats_rng_seed(struct stats_rng *r, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
	r->spare = 0;
	r->has_spare = false;
}

uint64_t
stats_rng_next(struct stats_rng *r)
{
	uint64_t *s = r->s, out = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return out;
}

double
stats_rng_uniform(struct stats_rng *r)
{
	return (double)(stats_rng_next(r) >> 11) * 0x1.0p-53;
}

double
stats_rng_normal(struct stats_rng *r, double mean, double sd)
{
	double u1, u2, rad;

	if (r->has_spare) {
		r->has_spare = false;
		return mean + sd * r->spare;
	}
	u1 = 1 - stats_rng_uniform(r);		/* (0, 1]: log is finite */
	u2 = stats_rng_uniform(r);
	rad = sqrt(-2 * log(u1));
	r->spare = rad * sin(2 * STATS_PI * u2);
	r->has_spare = true;
	return mean + sd * rad * cos(2 * STATS_PI * u2);
}

double
stats_rng_lognormal(struct stats_rng *r, double mu, double sigma)
{
	return exp(stats_rng_normal(r, mu, sigma));
}

/*
 * Paired differences: Wilcoxon's signed-rank test and its estimate
 */

static int
cmp_abs(const void *a, const void *b)
{
	double x = fabs(*(const double *)a), y = fabs(*(const double *)b);

	return (x > y) - (x < y);
}

int
stats_signed_rank(struct stats_signed_rank *out, const double *d, size_t n,
    enum stats_alt alt)
{
	double *a, w = 0, cube = 0, mu, sigma, pg, pl, r, *cnt, total;
	size_t i, j, k, m = 0, top;
	bool ties = false;

	if (out == NULL || check_sample(d, n, 1) < 0 ||
	    (alt != STATS_TWO_SIDED && alt != STATS_X_GREATER &&
	    alt != STATS_X_LESS))
		return -1;
	a = xreallocarray(NULL, n, sizeof(*a));
	for (i = 0; i < n; i++)
		if (d[i] != 0)
			a[m++] = d[i];
	memset(out, 0, sizeof(*out));
	out->n = m;
	if (m == 0) {
		out->p = 1;
		free(a);
		return 0;
	}
	/* Sort by |d|, then give mid-ranks to runs of equal |d|. */
	qsort(a, m, sizeof(*a), cmp_abs);
	for (i = 0; i < m; i = k) {
		for (k = i + 1; k < m && fabs(a[k]) == fabs(a[i]); k++)
			;
		r = ((double)i + 1 + (double)k) / 2;	/* mid-rank of i..k-1 */
		if (k - i > 1) {
			ties = true;
			cube += pow((double)(k - i), 3) - (double)(k - i);
		}
		for (j = i; j < k; j++)
			if (a[j] > 0)
				w += r;
	}
	out->w = w;
	top = m * (m + 1) / 2;
	if (m <= STATS_SR_EXACT_MAX && !ties) {
		/* cnt[s]: sign patterns of ranks 1..k whose positive ranks sum to s. */
		cnt = xcalloc(top + 1, sizeof(*cnt));
		cnt[0] = 1;
		for (k = 1; k <= m; k++)
			for (j = top; j >= k; j--)
				cnt[j] += cnt[j - k];
		total = ldexp(1, (int)m);
		pg = pl = 0;
		for (j = 0; j <= top; j++) {
			if ((double)j >= w)
				pg += cnt[j];
			if ((double)j <= w)
				pl += cnt[j];
		}
		pg /= total;
		pl /= total;
		free(cnt);
		out->exact = true;
	} else {
		mu = (double)top / 2;
		sigma = sqrt((double)m * (double)(m + 1) * (double)(2 * m + 1) /
		    24 - cube / 48);
		if (sigma > 0) {
			pg = norm_upper((w - 0.5 - mu) / sigma);
			pl = norm_upper((mu - w - 0.5) / sigma);
		} else
			pg = pl = 1;
	}
	out->p = alt == STATS_X_GREATER ? pg : alt == STATS_X_LESS ? pl :
	    2 * fmin(pg, pl);
	if (out->p > 1)
		out->p = 1;
	free(a);
	return 0;
}

int
stats_walsh_median(double *out, const double *d, size_t n)
{
	double *w;
	size_t i, j, k = 0;
	int rc;

	if (out == NULL || check_sample(d, n, 1) < 0 || n > 4096)
		return -1;
	w = xreallocarray(NULL, n * (n + 1) / 2, sizeof(*w));
	for (i = 0; i < n; i++)
		for (j = i; j < n; j++)
			w[k++] = d[i] / 2 + d[j] / 2;
	rc = stats_median(out, w, k);
	free(w);
	return rc;
}
