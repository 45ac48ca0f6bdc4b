/*
 * The decisions of confirmation and bisection on interleaved pairs of runs,
 * on worked cases and on simulated pairs with a known truth: a real change
 * must stand, noise must be overturned, a bisection probe must land on the
 * right side.  Prints the rates it measures.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server.h"
#include "stats.h"

#include "host.h"

#define TRIALS	2000

static struct investigate_params
defaults(void)
{
	struct investigate_params p;
	json_t *empty = json_object();

	investigate_params(&p, empty);
	json_decref(empty);
	return p;
}

static void
test_settings(void **state)
{
	struct investigate_params p = defaults();
	json_t *s = json_pack("{s:b,s:i,s:i,s:f}", "confirm", 0,
	    "confirm_pairs", 7, "bisect_pairs", 1000, "confirm_alpha", 0.01);

	(void)state;
	assert_true(p.confirm);
	assert_true(p.bisect);
	assert_int_equal(p.confirm_pairs, 5);
	assert_int_equal(p.confirm_max_pairs, 9);
	assert_int_equal(p.step_pairs, 5);
	assert_int_equal(p.step_max_pairs, 11);
	assert_int_equal(p.boundary_pairs, 9);
	assert_int_equal(p.boundary_max_pairs, 13);
	assert_float_equal(p.boundary_alpha, 0.002, 1e-12);
	assert_float_equal(p.alpha, 0.05, 1e-12);
	investigate_params(&p, s);
	assert_false(p.confirm);
	assert_false(investigate_wanted(s));
	assert_int_equal(p.confirm_pairs, 7);
	assert_int_equal(p.confirm_max_pairs, 9);
	assert_int_equal(p.step_pairs, 50);		/* clamped */
	assert_int_equal(p.step_max_pairs, 50);
	assert_float_equal(p.alpha, 0.01, 1e-12);
	json_decref(s);
}

static void
test_confirm_cases(void **state)
{
	struct investigate_params p = defaults();
	struct confirm_verdict v;
	/* tokens/s: higher is better; the bad commit is ~15% slower every time. */
	const double good[] = { 100, 80, 102, 99, 70 };
	const double slow[] = { 85, 68.5, 87.2, 83.5, 60 };
	const double same[] = { 101, 79, 101, 100, 71 };
	const double one_off[] = { 85, 68.5, 120, 83.5, 60 };

	(void)state;
	assert_int_equal(investigate_confirm(&v, good, slow, 5, 1, 0.10, &p), 0);
	assert_true(v.stands);
	assert_float_equal(v.p, 1.0 / 32, 1e-12);
	assert_true(v.change > 0.16 && v.change < 0.19);	/* ~1/0.85 - 1 */
	/* The same numbers as latency (lower is better) are an improvement. */
	assert_int_equal(investigate_confirm(&v, good, slow, 5, 0, 0.10, &p), 0);
	assert_false(v.stands);
	assert_false(v.more);
	/* Noise around the same level is overturned at once. */
	assert_int_equal(investigate_confirm(&v, good, same, 5, 1, 0.10, &p), 0);
	assert_false(v.stands);
	assert_false(v.more);
	/* One pair the other way: undecided, more pairs are asked for. */
	assert_int_equal(investigate_confirm(&v, good, one_off, 5, 1, 0.10, &p),
	    0);
	assert_false(v.stands);
	assert_true(v.more);
	/* Significant but under the threshold: not an alert. */
	assert_int_equal(investigate_confirm(&v, good, (const double[]){ 95,
	    76, 96.9, 94, 66.5 }, 5, 1, 0.10, &p), 0);
	assert_false(v.stands);
	/* Failed runs (no value) leave too few pairs. */
	assert_int_equal(investigate_confirm(&v, good, (const double[]){ NAN,
	    NAN, NAN, NAN, 80 }, 5, 1, 0.10, &p), BL_ENOTFOUND);
}

static void
test_step_cases(void **state)
{
	struct investigate_params p = defaults();
	struct step_verdict v;
	const double ref[] = { 100, 80, 102, 99, 70 };

	(void)state;
	/* Confirmed change 20%: a probe at the good level, one at the bad. */
	assert_int_equal(investigate_step(&v, ref, (const double[]){ 100.5,
	    79, 103, 98, 71 }, 5, 1, 0.20, &p), 0);
	assert_int_equal(v.verdict, STEP_GOOD);
	assert_float_equal(v.p, 1.0 / 32, 1e-12);
	assert_int_equal(investigate_step(&v, ref, (const double[]){ 84, 66.5,
	    85, 82, 58 }, 5, 1, 0.20, &p), 0);
	assert_int_equal(v.verdict, STEP_BAD);
	/* One pair slowed by the host does not make a good probe bad. */
	assert_int_equal(investigate_step(&v, ref, (const double[]){ 100.5,
	    79, 51, 98, 71 }, 5, 1, 0.20, &p), 0);
	assert_int_equal(v.verdict, STEP_UNDECIDED);
	assert_true(v.more);
	/* Three pairs can never reach p 0.05: more are asked for. */
	assert_int_equal(investigate_step(&v, ref, (const double[]){ 100.5,
	    79, 103 }, 3, 1, 0.20, &p), 0);
	assert_int_equal(v.verdict, STEP_UNDECIDED);
	assert_true(v.more);
	/* Halfway, out of pairs: undecided, never the nearer level. */
	p.step_max_pairs = 5;
	assert_int_equal(investigate_step(&v, ref, (const double[]){ 91, 73,
	    93, 90, 64 }, 5, 1, 0.20, &p), 0);
	assert_int_equal(v.verdict, STEP_UNDECIDED);
	assert_false(v.more);
}

static void
test_boundary_cases(void **state)
{
	struct investigate_params p = defaults();
	struct confirm_verdict v;
	double a[13], b[13];
	int i;

	(void)state;
	for (i = 0; i < 13; i++) {
		a[i] = 100 + (i % 3);
		b[i] = a[i] / (1.15 + 0.001 * i);
	}
	/* Nine pairs all ~15% slower: 2^-9 < 0.002, and past halfway of 15%. */
	assert_int_equal(investigate_boundary(&v, a, b, 9, 1, 0.15, &p), 0);
	assert_true(v.stands);
	assert_float_equal(v.p, 1.0 / 512, 1e-12);
	assert_true(v.change > 0.15 && v.change < 0.16);
	/* Eight cannot reach 0.002 (2^-8 = 0.0039): more pairs. */
	assert_int_equal(investigate_boundary(&v, a, b, 8, 1, 0.15, &p), 0);
	assert_false(v.stands);
	assert_true(v.more);
	/* Significant but not halfway to the confirmed 40%: not blamed. */
	assert_int_equal(investigate_boundary(&v, a, b, 13, 1, 0.40, &p), 0);
	assert_false(v.stands);
	assert_false(v.more);
	/* The same level as the reference: nothing to blame, nothing to add. */
	assert_int_equal(investigate_boundary(&v, a, a, 9, 1, 0.15, &p), 0);
	assert_false(v.stands);
	assert_false(v.more);
}

static void
test_counted_cases(void **state)
{
	struct confirm_verdict v;
	struct step_verdict sv;
	/* Instructions per request: lower is better; +15.9% is a real change. */
	const double good[] = { 208.2e6 }, slow[] = { 241.3e6 };

	(void)state;
	assert_int_equal(investigate_confirm_counted(&v, good, slow, 1, 0, 0.10),
	    0);
	assert_true(v.stands);
	assert_false(v.more);
	assert_int_equal(v.pairs, 1);
	assert_float_equal(v.change, 241.3 / 208.2 - 1, 1e-12);
	assert_float_equal(v.before, 208.2e6, 0);
	assert_float_equal(v.after, 241.3e6, 0);
	/* 9% is under the threshold, exactly: it does not stand. */
	assert_int_equal(investigate_confirm_counted(&v, good,
	    (const double[]){ 208.2e6 * 1.09 }, 1, 0, 0.10), 0);
	assert_false(v.stands);
	/* A failed run leaves nothing to count. */
	assert_int_equal(investigate_confirm_counted(&v, good,
	    (const double[]){ NAN }, 1, 0, 0.10), BL_ENOTFOUND);

	/* Steps: the probe's count against good's, halfway in log space. */
	assert_int_equal(investigate_step_counted(&sv, 208.2e6, 208.2e6, 0,
	    0.159), 0);
	assert_int_equal(sv.verdict, STEP_GOOD);
	assert_int_equal(investigate_step_counted(&sv, 208.2e6, 241.3e6, 0,
	    0.159), 0);
	assert_int_equal(sv.verdict, STEP_BAD);
	assert_int_equal(sv.pairs, 1);
	assert_int_equal(investigate_step_counted(&sv, 208.2e6, 208.2e6 * 1.05,
	    0, 0.159), 0);
	assert_int_equal(sv.verdict, STEP_GOOD);
	assert_int_equal(investigate_step_counted(&sv, 208.2e6, 208.2e6 * 1.09,
	    0, 0.159), 0);
	assert_int_equal(sv.verdict, STEP_BAD);
	/* Higher is better: fewer tokens/s is the bad side. */
	assert_int_equal(investigate_step_counted(&sv, 100, 86, 1, 0.159), 0);
	assert_int_equal(sv.verdict, STEP_BAD);
	assert_int_equal(investigate_step_counted(&sv, 0, 86, 1, 0.159),
	    BL_ENOTFOUND);
}

/*
 * n simulated pairs: each run's value is its commit's level (a at 100, b
 * at level_b) times a slow phase shared by both runs of a pair (one pair
 * in five, up to 50% slower, as this VM's host does) and its own noise.
 */
static void
simulate_pairs(struct stats_rng *rng, double *a, double *b, int n,
    double level_b, double noise)
{
	double phase;
	int i;

	for (i = 0; i < n; i++) {
		phase = stats_rng_uniform(rng) < 0.2 ?
		    0.5 + 0.5 * stats_rng_uniform(rng) : 1;
		a[i] = 100 * phase * stats_rng_lognormal(rng, 0, noise);
		b[i] = level_b * phase * stats_rng_lognormal(rng, 0, noise);
	}
}

/* Confirmation then bisection rules on simulated pairs with a known truth. */
static void
test_simulated(void **state)
{
	struct investigate_params p = defaults();
	struct stats_rng rng;
	struct confirm_verdict cv;
	struct step_verdict sv;
	double a[16], b[16];
	const double noise[] = { 0.02, 0.05 };
	int t, k, n, stood, nulls, wrong, asked, open;
	size_t ni;

	(void)state;
	stats_rng_seed(&rng, 20261122);
	for (ni = 0; ni < 2; ni++) {
		stood = nulls = wrong = asked = open = 0;
		for (t = 0; t < TRIALS; t++) {
			for (k = 0; k < 2; k++) {
				/* k = 0: a real 15% slowdown; 1: none. */
				n = p.confirm_pairs;
				for (;;) {
					simulate_pairs(&rng, a, b, n, k == 0 ?
					    100 / 1.15 : 100, noise[ni]);
					assert_int_equal(investigate_confirm(&cv, a,
					    b, (size_t)n, 1, 0.10, &p), 0);
					if (!cv.more)
						break;
					n += 2;
				}
				if (k == 0)
					stood += cv.stands;
				else
					nulls += cv.stands;
			}
			/* A bisection probe at the good or the bad level. */
			for (k = 0; k < 2; k++) {
				n = p.step_pairs;
				for (;;) {
					simulate_pairs(&rng, a, b, n, k == 0 ?
					    100 / 1.15 : 100, noise[ni]);
					assert_int_equal(investigate_step(&sv, a, b,
					    (size_t)n, 1, 0.15, &p), 0);
					if (sv.verdict != STEP_UNDECIDED || !sv.more)
						break;
					n += 2;
				}
				asked += n - p.step_pairs;
				open += sv.verdict == STEP_UNDECIDED;
				wrong += sv.verdict == (k == 0 ? STEP_GOOD :
				    STEP_BAD);
			}
		}
		printf("pair noise %.0f%%: a real 15%% change stands %.1f%%, "
		    "noise stands %.2f%%; bisection steps wrong %.2f%%, "
		    "undecided %.2f%%, extra pairs %.2f per step\n",
		    noise[ni] * 100, 100.0 * stood / TRIALS, 100.0 * nulls /
		    TRIALS, 100.0 * wrong / (2 * TRIALS), 100.0 * open /
		    (2 * TRIALS), (double)asked / (2 * TRIALS));
		assert_true(stood > TRIALS * 0.95);
		assert_true(nulls < TRIALS * 0.01);
		assert_true(wrong < 2 * TRIALS * 0.01);
	}
}

/* What one simulated investigation ended with. */
struct sim_outcome {
	int	blamed;		/* 1-based in the range; 0: nobody */
	int	confirmed;
	int	undecided;	/* confirmed, then a step or the final check undecided */
	int	pairs;		/* pairs of runs (counted: runs) it used */
};

struct sim_range {
	int	m;		/* commits after the good one */
	int	first_bad;	/* 1..m; 0: no change at all */
	double	step;		/* the change, as a fraction of tokens/s lost */
};

static double
sim_level(const struct sim_range *r, int i)
{
	return r->first_bad > 0 && i >= r->first_bad ? 100 / (1 + r->step) : 100;
}

/*
 * One investigation of a timed metric as investigate.c runs it, pair by
 * pair: confirmation of good against the head (more pairs while
 * plausible), bisection steps of the probe against good (more pairs while
 * undecided, then undecided for good), and the final check of the
 * narrowed commit against the last good one before it.
 */
static void
sim_timed(struct sim_outcome *o, struct stats_rng *rng,
    const struct investigate_params *p, const struct sim_range *r,
    double noise)
{
	struct confirm_verdict cv;
	struct step_verdict sv;
	double a[64], b[64], change;
	int n, lo = 0, hi = r->m, mid;

	memset(o, 0, sizeof(*o));
	host_pairs(rng, a, b, 0, n = p->confirm_pairs, 100, sim_level(r, r->m),
	    noise, 1);
	while (investigate_confirm(&cv, a, b, (size_t)n, 1, 0.10, p) == 0 &&
	    cv.more) {
		host_pairs(rng, a, b, n, n + 2, 100, sim_level(r, r->m), noise, 1);
		n += 2;
	}
	o->pairs += n;
	if (!(o->confirmed = cv.stands))
		return;
	change = cv.change;
	while (hi - lo > 1) {
		mid = (lo + hi) / 2;
		host_pairs(rng, a, b, 0, n = p->step_pairs, 100, sim_level(r, mid),
		    noise, 1);
		while (investigate_step(&sv, a, b, (size_t)n, 1, change, p) == 0 &&
		    sv.verdict == STEP_UNDECIDED && sv.more) {
			host_pairs(rng, a, b, n, n + 2, 100, sim_level(r, mid),
			    noise, 1);
			n += 2;
		}
		o->pairs += n;
		if ((o->undecided = sv.verdict == STEP_UNDECIDED))
			return;
		if (sv.verdict == STEP_BAD)
			hi = mid;
		else
			lo = mid;
	}
	host_pairs(rng, a, b, 0, n = p->boundary_pairs, sim_level(r, lo),
	    sim_level(r, hi), noise, 1);
	while (investigate_boundary(&cv, a, b, (size_t)n, 1, change, p) == 0 &&
	    cv.more) {
		host_pairs(rng, a, b, n, n + 2, sim_level(r, lo), sim_level(r, hi),
		    noise, 1);
		n += 2;
	}
	o->pairs += n;
	o->blamed = cv.stands ? hi : 0;
	o->undecided = !cv.stands;
}

/* The same investigation on a counted metric: one run per commit, exact. */
static void
sim_counted(struct sim_outcome *o, const struct sim_range *r)
{
	struct confirm_verdict cv;
	struct step_verdict sv;
	double good = 2.08e8, head, change;
	int lo = 0, hi = r->m, mid;

	memset(o, 0, sizeof(*o));
	/* A count of the same binary differs by a few parts in ten million. */
	head = good * (1 + r->step * (r->first_bad > 0)) * (1 + 2e-7);
	o->pairs = 2;
	if (investigate_confirm_counted(&cv, &good, &head, 1, 0, 0.10) != 0 ||
	    !(o->confirmed = cv.stands))
		return;
	change = cv.change;
	while (hi - lo > 1) {
		mid = (lo + hi) / 2;
		head = good * (mid >= r->first_bad ? 1 + r->step : 1);
		o->pairs++;
		assert_int_equal(investigate_step_counted(&sv, good, head, 0,
		    change), 0);
		if (sv.verdict == STEP_BAD)
			hi = mid;
		else
			lo = mid;
	}
	/* The boundary: the first bad commit's count against the last good. */
	if (log((hi >= r->first_bad ? 1 + r->step : 1) /
	    (lo >= r->first_bad ? 1 + r->step : 1)) >= log1p(change) / 2)
		o->blamed = hi;
}

/*
 * Whole investigations on simulated ranges with a known first bad commit:
 * how often the right commit is blamed, a wrong one is, or nobody is
 * (undecided, or the change not confirmed), and the pairs of runs it
 * costs.  The bound: a wrong commit is blamed in at most 0.1% of trials
 * in every cell; the counted metric blames the right one in all.
 */
static void
test_simulated_bisection(void **state)
{
	struct investigate_params p = defaults();
	const double steps[] = { 0, 0.10, 0.15, 0.20 };
	const int ranges[] = { 3, 4, 8, 16, 32 };
	struct stats_rng rng;
	struct sim_outcome o;
	struct sim_range r;
	size_t si, ri;
	int t, exact, wrong, none, pairs, cexact, cwrong, missed;

	(void)state;
	stats_rng_seed(&rng, 20261204);
	printf("bisection at pair noise 5%%, one pair in five slowed by up to "
	    "half, %d trials a cell\n", TRIALS);
	printf("  step  commits | timed: exact   wrong  undecided  not "
	    "confirmed  pairs | counted: exact wrong runs\n");
	for (si = 0; si < BL_ARRAY_LEN(steps); si++) {
		for (ri = 0; ri < BL_ARRAY_LEN(ranges); ri++) {
			exact = wrong = none = pairs = cexact = cwrong = missed = 0;
			r.m = ranges[ri];
			r.step = steps[si];
			for (t = 0; t < TRIALS; t++) {
				r.first_bad = steps[si] > 0 ? 1 + (int)(
				    stats_rng_uniform(&rng) * r.m) : 0;
				sim_timed(&o, &rng, &p, &r, 0.05);
				pairs += o.pairs;
				missed += !o.confirmed;
				if (o.blamed == 0)
					none++;
				else if (o.blamed == r.first_bad)
					exact++;
				else
					wrong++;
				sim_counted(&o, &r);
				if (o.blamed == r.first_bad && o.blamed > 0)
					cexact++;
				else if (o.blamed > 0)
					cwrong++;
			}
			printf("  %3.0f%%  %7d | %11.1f%% %6.2f%% %9.1f%% %13.1f%% "
			    "%6.1f | %13.1f%% %5d %4d\n", steps[si] * 100, r.m,
			    100.0 * exact / TRIALS, 100.0 * wrong / TRIALS,
			    100.0 * (none - missed) / TRIALS, 100.0 * missed /
			    TRIALS, (double)pairs / TRIALS,
			    100.0 * cexact / TRIALS, cwrong, 2 + (int)ceil(log2(
			    (double)r.m)));
			assert_true(wrong <= TRIALS / 1000);
			assert_int_equal(cwrong, 0);
			if (steps[si] > 0)
				assert_int_equal(cexact, TRIALS);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_confirm_cases),
		cmocka_unit_test(test_step_cases),
		cmocka_unit_test(test_boundary_cases),
		cmocka_unit_test(test_counted_cases),
		cmocka_unit_test(test_simulated),
		cmocka_unit_test(test_simulated_bisection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
