/*
 * Detection quality over a synthetic corpus with a known truth: series of
 * run medians with run-to-run noise of 1, 3 and 5% (lognormal) and a step
 * of 0, 5, 10 or 20% in the bad direction, each run carrying 20 raw
 * samples that share its offset (as samples of one run do).  The server's
 * own decision code (detect_series_step) runs over each series exactly as
 * the server applies it, epochs included.  Prints caught and false-alarm
 * rates per cell; requires a 10% step at 3% noise caught within 3 runs at
 * least 95% of the time and false alarms under 1% of runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server.h"
#include "stats.h"

#include "host.h"

#define SERIES		300	/* per cell */
#define RUNS		60
#define STEP_AT		30
#define SAMPLES		20

struct cell {
	double	noise, step;
	int	caught, caught_exact, late, missed;
	int	false_alarms, judged, improvements;
	int	naive_caught, naive_false;	/* ">10% against the previous run" */
	int	conf_caught, conf_false;	/* alerts that stood confirmation */
	int	conf_pairs;
};

/* Runs one series through the detector; returns the run where the step was caught or -1. */
static int
run_series(struct cell *c, struct stats_rng *rng, struct stats_rng *crng)
{
	static double samples[RUNS][SAMPLES];
	struct detect_point hist[RUNS];
	struct detect_params p;
	struct detect_result res;
	size_t start = 0, i;
	int r, k, caught = -1;
	struct investigate_params ip;
	json_t *empty = json_object();
	double level;
	int stood = 0, trigger, pairs;

	investigate_params(&ip, empty);
	json_decref(empty);
	detect_defaults(&p);
	p.higher_better = 0;
	memset(hist, 0, sizeof(hist));
	for (r = 0; r < RUNS; r++) {
		level = 100.0 * (r >= STEP_AT ? 1.0 + c->step : 1.0) *
		    stats_rng_lognormal(rng, 0, c->noise);
		for (k = 0; k < SAMPLES; k++)
			samples[r][k] = level * stats_rng_lognormal(rng, 0, 0.03);
		stats_median(&hist[r].value, samples[r], SAMPLES);
		/* The rule people use today, for comparison. */
		if (r > 0 && hist[r].value > hist[r - 1].value * (1 + 0.10)) {
			if (r == STEP_AT && c->step > 0)
				c->naive_caught++;
			else
				c->naive_false++;
		}
		hist[r].samples = samples[r];
		hist[r].n = SAMPLES;
		hist[r].verdict = V_BASELINE;
		detect_series_step(&res, &p, hist, (size_t)r + 1, start);
		c->judged++;
		if (res.verdict == V_REGRESSION) {
			int at = (int)res.change_at;

			if (r < STEP_AT || c->step == 0 || caught >= 0)
				c->false_alarms++;
			else {
				caught = r;
				if (at == STEP_AT)
					c->caught_exact++;
				else if (getenv("DETECT_DEBUG"))
					printf("noise %.2f step %.2f: caught at run %d, "
					    "dated to %d\n", c->noise, c->step, r, at);
			}
		} else if (res.verdict == V_IMPROVEMENT)
			c->improvements++;
		/*
		 * With confirmation, as the server runs it: a run suspect in
		 * the bad direction, or a confirmed regression, re-runs the
		 * last good level against this commit's in interleaved pairs,
		 * and only what stands is an alert.
		 */
		trigger = res.verdict == V_REGRESSION ||
		    (hist[r].verdict == V_SUSPECT &&
		    res.change >= p.threshold * p.suspect_frac);
		if (trigger && !stood && host_confirm(crng, &ip, 100, 100.0 *
		    (r >= STEP_AT ? 1.0 + c->step : 1.0), c->noise * M_SQRT2, 0,
		    p.threshold, &pairs)) {
			c->conf_pairs += pairs;
			if (r < STEP_AT || c->step == 0)
				c->conf_false++;
			else {
				stood = 1;
				c->conf_caught += r <= STEP_AT + 2;
			}
		}
		if (res.verdict == V_REGRESSION || res.verdict == V_IMPROVEMENT ||
		    res.quiet_change) {
			start = res.change_at;
			for (i = start; i <= (size_t)r; i++)
				if (hist[i].verdict == V_SUSPECT)
					hist[i].verdict = V_NOISE;
		}
	}
	return caught;
}

static void
test_corpus(void **state)
{
	static const double noises[] = { 0.01, 0.03, 0.05 };
	static const double steps[] = { 0, 0.05, 0.10, 0.20 };
	struct cell cells[3][4];
	struct stats_rng rng, crng;	/* crng: the confirmations' own stream */
	size_t a, b;
	int s, at;
	long fa = 0, judged_nostep = 0;

	(void)state;
	stats_rng_seed(&rng, 20261121);
	stats_rng_seed(&crng, 20261204);
	printf("detection over %d series per cell, %d runs, step at run %d:\n"
	    "  noise  step   caught<=3  exact-commit  later  missed  "
	    "false-alarms/run  improvements | naive: caught  false/run | "
	    "confirmed: caught<=3  false/run\n", SERIES, RUNS, STEP_AT);
	for (a = 0; a < BL_ARRAY_LEN(noises); a++) {
		for (b = 0; b < BL_ARRAY_LEN(steps); b++) {
			struct cell *c = &cells[a][b];

			memset(c, 0, sizeof(*c));
			c->noise = noises[a];
			c->step = steps[b];
			for (s = 0; s < SERIES; s++) {
				at = run_series(c, &rng, &crng);
				if (steps[b] == 0)
					continue;
				if (at >= 0 && at <= STEP_AT + 2)
					c->caught++;
				else if (at >= 0)
					c->late++;
				else
					c->missed++;
			}
			if (steps[b] == 0) {
				fa += c->false_alarms;
				judged_nostep += c->judged;
			}
			printf("  %4.0f%%  %3.0f%%   %7.1f%%    %7.1f%%  %5.1f%%  "
			    "%5.1f%%  %14.3f%%  %8d     | %11.1f%%  %8.3f%% | "
			    "%16.1f%%  %8.3f%%\n",
			    c->noise * 100, c->step * 100,
			    100.0 * c->caught / SERIES,
			    100.0 * c->caught_exact / SERIES,
			    100.0 * c->late / SERIES, 100.0 * c->missed / SERIES,
			    100.0 * c->false_alarms / c->judged, c->improvements,
			    100.0 * c->naive_caught / SERIES,
			    100.0 * c->naive_false / c->judged,
			    100.0 * c->conf_caught / SERIES,
			    100.0 * c->conf_false / c->judged);
		}
	}
	printf("false alarms on no-step series: %ld of %ld runs (%.3f%%)\n", fa,
	    judged_nostep, 100.0 * (double)fa / (double)judged_nostep);
	/* The requirements. */
	assert_true(cells[1][2].caught >= SERIES * 95 / 100);
	for (a = 0; a < 3; a++)
		assert_true(cells[a][0].false_alarms * 100 < cells[a][0].judged);
	/* And what any detector must do: big steps are caught, on time. */
	assert_true(cells[0][3].caught == SERIES);
	assert_true(cells[1][3].caught >= SERIES * 99 / 100);
	/* Confirmation: at most one false alarm in a thousand runs anywhere. */
	for (a = 0; a < 3; a++)
		for (b = 0; b < 4; b++)
			assert_true(cells[a][b].conf_false * 1000 <=
			    cells[a][b].judged);
}

/* A step on a series where higher is better (tokens/s) is a drop. */
static void
test_direction(void **state)
{
	struct detect_point hist[12];
	struct detect_params p;
	struct detect_result res;
	double v[12] = { 100, 101, 99, 100.5, 99.5, 100, 80, 81, 79.5, 120,
	    121, 119 };
	int i, regressions = 0, improvements = 0;
	size_t start = 0, k;

	(void)state;
	detect_defaults(&p);
	p.higher_better = 1;
	memset(hist, 0, sizeof(hist));
	for (i = 0; i < 12; i++) {
		hist[i].value = v[i];
		hist[i].verdict = V_BASELINE;
		detect_series_step(&res, &p, hist, (size_t)i + 1, start);
		if (res.verdict == V_REGRESSION) {
			regressions++;
			assert_int_equal(res.change_at, 6);
		}
		if (res.verdict == V_IMPROVEMENT) {
			improvements++;
			assert_int_equal(res.change_at, 9);
		}
		if (res.verdict == V_REGRESSION || res.verdict == V_IMPROVEMENT)
			for (start = res.change_at, k = start; k <= (size_t)i; k++)
				hist[k].verdict = V_NOISE;
	}
	assert_int_equal(regressions, 1);
	assert_int_equal(improvements, 1);
}

/* One outlier followed by normal runs is noise, and goes back to the baseline. */
static void
test_outlier_cleared(void **state)
{
	struct detect_point hist[10];
	struct detect_params p;
	struct detect_result res;
	double v[10] = { 100, 101, 99, 100.5, 99.5, 100, 130, 100.2, 99.8, 100 };
	int i;

	(void)state;
	detect_defaults(&p);
	memset(hist, 0, sizeof(hist));
	for (i = 0; i < 10; i++) {
		hist[i].value = v[i];
		hist[i].verdict = V_BASELINE;
		detect_series_step(&res, &p, hist, (size_t)i + 1, 0);
		assert_true(res.verdict != V_REGRESSION);
		if (i == 6)
			assert_int_equal(res.verdict, V_SUSPECT);
	}
	assert_int_equal(hist[6].verdict, V_NOISE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_direction),
		cmocka_unit_test(test_outlier_cleared),
	};

	return cmocka_run_group_tests_name("detect_core", tests, NULL, NULL);
}
