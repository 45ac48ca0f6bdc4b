/* Unit tests of server/downsample.c: LTTB keeps the ends, the count and the spikes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "server.h"

static void
test_small_series_pass_through(void **state)
{
	double x[5] = { 0, 1, 2, 3, 4 }, y[5] = { 1, 2, 3, 4, 5 };
	size_t out[5], k, i;

	(void)state;
	k = downsample_lttb(out, x, y, 5, 10);
	assert_int_equal(k, 5);
	for (i = 0; i < k; i++)
		assert_int_equal(out[i], i);
}

static void
test_keeps_ends_count_order_and_spikes(void **state)
{
	size_t n = 100000, i, k, *out = malloc(n * sizeof(*out));
	double *x = malloc(n * sizeof(*x)), *y = malloc(n * sizeof(*y));
	int seen_up = 0, seen_down = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		x[i] = (double)i;
		y[i] = 10.0 + (double)(i % 13) * 0.01;
	}
	y[31337] = 1000.0;	/* a spike up */
	y[77777] = -1000.0;	/* and one down */
	k = downsample_lttb(out, x, y, n, 1000);
	assert_int_equal(k, 1000);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[k - 1], n - 1);
	for (i = 1; i < k; i++)
		assert_true(out[i] > out[i - 1]);
	for (i = 0; i < k; i++) {
		seen_up |= out[i] == 31337;
		seen_down |= out[i] == 77777;
	}
	assert_true(seen_up);
	assert_true(seen_down);
	free(out);
	free(x);
	free(y);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_series_pass_through),
		cmocka_unit_test(test_keeps_ends_count_order_and_spikes),
	};

	return cmocka_run_group_tests_name("downsample", tests, NULL, NULL);
}
