/*
 * Test helper: this machine as an investigation meets it, for simulations
 * of the server's decisions (verdict.c, detect_core.c).  A pair of runs
 * differs by `noise` (the standard deviation of its log ratio), and one
 * pair in five has one of its runs, either one, slowed by up to half, as
 * this VM's host does for seconds to minutes at a time.
 */
#ifndef BL_TEST_HOST_H
#define BL_TEST_HOST_H

#include <math.h>

#include "server.h"
#include "stats.h"

/*
 * Appends pairs [from, to) of runs of commits at levels la (the reference)
 * and lb.  higher: the metric is better higher (tokens/s), so a slowed run
 * is lower; else (ms) it is higher.
 */
static inline void
host_pairs(struct stats_rng *rng, double *a, double *b, int from, int to,
    double la, double lb, double noise, int higher)
{
	double f;
	int i;

	for (i = from; i < to; i++) {
		a[i] = la * stats_rng_lognormal(rng, 0, noise / M_SQRT2);
		b[i] = lb * stats_rng_lognormal(rng, 0, noise / M_SQRT2);
		if (stats_rng_uniform(rng) < 0.2) {
			f = 0.5 + 0.5 * stats_rng_uniform(rng);
			if (!higher)
				f = 1 / f;
			if (stats_rng_uniform(rng) < 0.5)
				a[i] *= f;
			else
				b[i] *= f;
		}
	}
}

/*
 * The server's confirmation of commit level lb against the last good
 * level la, pair by pair as investigate.c runs it (more pairs while
 * plausible).  Returns whether the change stands; *pairs gets the count.
 */
static inline int
host_confirm(struct stats_rng *rng, const struct investigate_params *p,
    double la, double lb, double noise, int higher, double threshold,
    int *pairs)
{
	struct confirm_verdict cv;
	double a[64], b[64];
	int n = p->confirm_pairs;

	host_pairs(rng, a, b, 0, n, la, lb, noise, higher);
	while (investigate_confirm(&cv, a, b, (size_t)n, higher, threshold,
	    p) == 0 && cv.more && n + 2 <= 64) {
		host_pairs(rng, a, b, n, n + 2, la, lb, noise, higher);
		n += 2;
	}
	if (pairs != NULL)
		*pairs = n;
	return cv.stands;
}

#endif
