/* Unit tests of server/api_dash.c: the goals a project's report is judged against. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server.h"

/* Checks the goals in text; returns the result and leaves the error in err. */
static int
check(const char *text, char *err, size_t errlen)
{
	json_t *goals = json_loads(text, JSON_DECODE_ANY, NULL);
	int rc;

	assert_non_null(goals);
	err[0] = '\0';
	rc = dash_goals_check(goals, err, errlen);
	json_decref(goals);
	return rc;
}

static void
test_goals_of_the_plan_are_valid(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(check("[]", err, sizeof(err)), 0);
	assert_int_equal(check("[{\"scenario\": \"latency\", \"metric\": "
	    "\"p128_g32.ttft_ms\", \"stat\": \"p95\", \"op\": \"<\", \"value\": 500, "
	    "\"label\": \"TTFT p95 < 500 ms\"}, {\"metric\": \"tokens_per_s\", "
	    "\"op\": \">\", \"value\": 10}, {\"metric\": \"peak_rss_bytes\", "
	    "\"op\": \"<=\", \"value\": 4e9}, {\"metric\": \"mean_power_w\", "
	    "\"op\": \">=\", \"value\": 0.5, \"stat\": \"median\"}]", err,
	    sizeof(err)), 0);
}

static void
test_bad_goals_name_the_field(void **state)
{
	static const struct {
		const char *goals;
		const char *path;
	} bad[] = {
		{ "{}", "$.settings.goals: must be an array" },
		{ "null", "$.settings.goals: must be an array" },
		{ "[1]", "$.settings.goals[0]: must be an object" },
		{ "[{\"op\": \"<\", \"value\": 1}]", "$.settings.goals[0].metric" },
		{ "[{\"metric\": \"m\", \"value\": 1}]", "$.settings.goals[0].op" },
		{ "[{\"metric\": \"m\", \"op\": \"==\", \"value\": 1}]",
		    "$.settings.goals[0].op: must be one of" },
		{ "[{\"metric\": \"m\", \"op\": \"<\"}]", "$.settings.goals[0].value" },
		{ "[{\"metric\": \"m\", \"op\": \"<\", \"value\": \"5\"}]",
		    "$.settings.goals[0].value" },
		{ "[{\"metric\": \"m\", \"op\": \"<\", \"value\": 1}, {\"metric\": "
		    "\"m\", \"op\": \"<\", \"value\": 1, \"stat\": \"p99\"}]",
		    "$.settings.goals[1].stat" },
		{ "[{\"metric\": \"m\", \"op\": \"<\", \"value\": 1, \"unit\": "
		    "\"ms\"}]", "$.settings.goals[0]" },
		{ "[{\"metric\": \"\", \"op\": \"<\", \"value\": 1}]",
		    "$.settings.goals[0].metric" },
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(check(bad[i].goals, err, sizeof(err)), BL_EINVAL);
		if (strstr(err, bad[i].path) == NULL)
			fail_msg("goals %s: error '%s' does not name '%s'",
			    bad[i].goals, err, bad[i].path);
	}
}

static void
test_at_most_200_goals(void **state)
{
	json_t *goals = json_array();
	char err[256];
	int i;

	(void)state;
	for (i = 0; i < 201; i++)
		json_array_append_new(goals, json_pack("{s:s,s:s,s:i}", "metric",
		    "m", "op", "<", "value", i));
	assert_int_equal(dash_goals_check(goals, err, sizeof(err)), BL_EINVAL);
	assert_non_null(strstr(err, "at most 200"));
	json_array_remove(goals, 200);
	assert_int_equal(dash_goals_check(goals, err, sizeof(err)), 0);
	json_decref(goals);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_goals_of_the_plan_are_valid),
		cmocka_unit_test(test_bad_goals_name_the_field),
		cmocka_unit_test(test_at_most_200_goals),
	};

	return cmocka_run_group_tests_name("api_dash", tests, NULL, NULL);
}
