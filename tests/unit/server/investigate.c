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

#include <cmocka.h>

#include "server.h"
#include "stats.h"

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
	assert_int_equal(p.step_pairs, 3);
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
	const double ref[] = { 100, 80, 102 };

	(void)state;
	/* Confirmed change 20%: a probe at the good level, one at the bad. */
	assert_int_equal(investigate_step(&v, ref, (const double[]){ 100.5,
	    79, 103 }, 3, 1, 0.20, &p), 0);
	assert_int_equal(v.verdict, STEP_GOOD);
	assert_int_equal(investigate_step(&v, ref, (const double[]){ 84, 66.5,
	    85 }, 3, 1, 0.20, &p), 0);
	assert_int_equal(v.verdict, STEP_BAD);
	/* Halfway with a wide spread: more pairs, then the nearer side, weak. */
	assert_int_equal(investigate_step(&v, ref, (const double[]){ 80, 80,
	    102 }, 3, 1, 0.20, &p), 0);
	assert_int_equal(v.verdict, STEP_UNDECIDED);
	p.step_max_pairs = 3;
	assert_int_equal(investigate_step(&v, ref, (const double[]){ 80, 80,
	    102 }, 3, 1, 0.20, &p), 0);
	assert_true(v.weak);
	assert_int_not_equal(v.verdict, STEP_UNDECIDED);
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
	int t, k, n, stood, nulls, wrong, asked;
	size_t ni;

	(void)state;
	stats_rng_seed(&rng, 20261122);
	for (ni = 0; ni < 2; ni++) {
		stood = nulls = wrong = asked = 0;
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
					if (sv.verdict != STEP_UNDECIDED)
						break;
					n++;
				}
				asked += n - p.step_pairs;
				wrong += sv.verdict != (k == 0 ? STEP_BAD :
				    STEP_GOOD);
			}
		}
		printf("pair noise %.0f%%: a real 15%% change stands %.1f%%, "
		    "noise stands %.2f%%; bisection steps wrong %.2f%%, extra "
		    "pairs %.2f per step\n", noise[ni] * 100,
		    100.0 * stood / TRIALS, 100.0 * nulls / TRIALS,
		    100.0 * wrong / (2 * TRIALS), (double)asked / (2 * TRIALS));
		assert_true(stood > TRIALS * 0.95);
		assert_true(nulls < TRIALS * 0.01);
		assert_true(wrong < 2 * TRIALS * 0.01);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_confirm_cases),
		cmocka_unit_test(test_step_cases),
		cmocka_unit_test(test_simulated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
