/*
 * Unit tests of worker/counter.c and of the instructions scenario: the
 * cachegrind output it reads, the cycle estimate, and a real engine
 * counted under valgrind twice, which must count the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker.h"

/* The shape of a cachegrind.out file (valgrind 3.19), numbers made up. */
#define CG_OUT \
	"desc: I1 cache:         32768 B, 64 B, 8-way associative\n" \
	"cmd: ./tinyllm --dim 192\n" \
	"events: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw \n" \
	"fl=???\nfn=main\n0 10 1 1 2 0 0 1 0 0\n" \
	"summary: 1107800917 2192 1841 116363691 6733901 1373 41931757 " \
	"299127 154406\n"

static void
test_parse(void **state)
{
	struct counts c, d;
	char err[256];

	(void)state;
	assert_int_equal(counter_parse(&c, CG_OUT, err, sizeof(err)), 0);
	assert_true(c.cache_sim);
	assert_float_equal(c.v[COUNT_IR], 1107800917, 0);
	assert_float_equal(c.v[COUNT_D1MR], 6733901, 0);
	assert_float_equal(c.v[COUNT_DLMW], 154406, 0);
	/* Ir + 10 (I1mr + D1mr + D1mw) + 100 (ILmr + DLmr + DLmw). */
	assert_float_equal(counter_est_cycles(&c), 1107800917.0 + 10.0 *
	    (2192 + 6733901 + 299127) + 100.0 * (1841 + 1373 + 154406), 0.5);
	counter_sub(&d, &c, &c);
	assert_float_equal(d.v[COUNT_IR], 0, 0);

	/* Without the cache simulation: instructions only. */
	assert_int_equal(counter_parse(&c, "events: Ir\nsummary: 42\n", err,
	    sizeof(err)), 0);
	assert_false(c.cache_sim);
	assert_float_equal(c.v[COUNT_IR], 42, 0);

	assert_int_equal(counter_parse(&c, "events: Ir\n", err, sizeof(err)),
	    BL_EINVAL);
	assert_string_equal(err, "no summary: line in cachegrind's output");
	assert_int_equal(counter_parse(&c, "events: Ir D1mr\nsummary: 5\n", err,
	    sizeof(err)), BL_EINVAL);
	assert_string_equal(err, "cachegrind's summary has 1 numbers for 2 "
	    "events");
	assert_int_equal(counter_parse(&c, "events: Dr\nsummary: 5\n", err,
	    sizeof(err)), BL_EINVAL);
	assert_int_equal(counter_parse(&c, "", err, sizeof(err)), BL_EINVAL);
}

static void
test_argv(void **state)
{
	char *cmd[] = { "./e", "--x", NULL };
	char **argv = counter_argv(cmd, 2, "/tmp/out");

	(void)state;
	assert_string_equal(argv[0], "valgrind");
	assert_string_equal(argv[1], "--tool=cachegrind");
	assert_string_equal(argv[3], "--cachegrind-out-file=/tmp/out");
	assert_string_equal(argv[4], "./e");
	assert_string_equal(argv[5], "--x");
	assert_null(argv[6]);
	counter_argv_free(argv);
}

static void
test_hw_probe(void **state)
{
	char why[160];
	int have = counter_hw_probe(why, sizeof(why));

	(void)state;
	/* Either way the run says which; this VM has no hardware counters. */
	if (have)
		assert_non_null(strstr(why, "available"));
	else
		assert_non_null(strstr(why, "not supported here"));
}

/* A jsonl engine in sh whose work per request is fixed: a loop of 200 steps. */
#define COUNTED_ENGINE \
	"echo '{\"ready\":true}'; " \
	"while read -r l; do i=0; while [ $i -lt 200 ]; do i=$((i+1)); done; " \
	"  id=${l#*\\\"id\\\":}; id=${id%%,*}; " \
	"  echo \"{\\\"id\\\":$id,\\\"ttft_ms\\\":1.5,\\\"tokens\\\":4," \
	"\\\"total_ms\\\":6}\"; done"

static json_t *
count_once(struct manifest *m, json_t *params)
{
	struct worker_settings s;
	json_t *out = NULL;
	char err[2048] = "";

	memset(&s, 0, sizeof(s));
	s.request_timeout_s = 60;
	s.max_timeseries_points = 100;
	s.limit_nofile = 1024;
	s.engine_cpus = "";
	if (scenario_run(&out, "instructions", m, params, "/tmp", &s, NULL, err,
	    sizeof(err)) != 0)
		fail_msg("instructions scenario failed: %s", err);
	return out;
}

static double
metric_value(json_t *out, const char *name)
{
	json_t *m = json_object_get(json_object_get(out, "metrics"), name);

	assert_non_null(m);
	assert_true(json_is_true(json_object_get(m, "counted")));
	return json_number_value(json_array_get(json_object_get(m, "samples"),
	    0));
}

static void
test_scenario_counts_the_same_twice(void **state)
{
	struct manifest *m = NULL;
	json_t *doc, *params = NULL, *a, *b;
	char err[512], *text;
	double ia, ib;

	(void)state;
	doc = json_pack("{s:s,s:s,s:[s,s,s],s:{s:{}}}", "build", "true",
	    "adapter", "jsonl", "command", "/bin/sh", "-c", COUNTED_ENGINE,
	    "scenarios", "instructions");
	text = json_dumps(doc, 0);
	assert_int_equal(manifest_parse(&m, text, strlen(text), err,
	    sizeof(err)), 0);
	assert_int_equal(manifest_scenario(&params, m, "instructions", NULL,
	    err, sizeof(err)), 0);
	a = count_once(m, params);
	b = count_once(m, params);
	ia = metric_value(a, "instructions_per_request");
	ib = metric_value(b, "instructions_per_request");
	/* 200 shell loop steps cost far more than 10,000 instructions. */
	assert_true(ia > 1e4);
	assert_true(ib / ia > 0.999 && ib / ia < 1.001);
	assert_true(metric_value(a, "instructions_per_token") * 4 > ia * 0.99);
	assert_true(metric_value(a, "est_cycles_per_request") >= ia);
	assert_non_null(json_object_get(json_object_get(json_object_get(a,
	    "info"), "counter"), "hardware_counters"));
	/* No cachegrind output is left behind in the worktree. */
	assert_int_not_equal(access("/tmp/.benchline-counts.0", F_OK), 0);
	assert_int_not_equal(access("/tmp/.benchline-counts.1", F_OK), 0);
	json_decref(a);
	json_decref(b);
	json_decref(params);
	json_decref(doc);
	free(text);
	manifest_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_hw_probe),
		cmocka_unit_test(test_scenario_counts_the_same_twice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
