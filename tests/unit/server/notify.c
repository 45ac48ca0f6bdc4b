/*
 * Unit tests of server/notify.c's message: an incident that blames its
 * commit names the author; one whose every alert is undecided names the
 * range and nobody; an undecided alert beside a blamed one is listed with
 * its note but never made the subject.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server.h"

#define SHA	"5a25298556dac6f44e4c28222bc00b92cb7dd8b2"

/* An incident of alerts given as (metric, change, bisection state, note). */
static json_t *
incident(size_t n, const char *const metrics[], const double changes[],
    const char *const states[])
{
	json_t *alerts = json_array(), *a, *b;
	size_t i;

	for (i = 0; i < n; i++) {
		a = json_pack("{s:s,s:s,s:s,s:s,s:s,s:f,s:f,s:f,s:s}", "kind",
		    "perf", "state", "open", "scenario", "latency", "metric",
		    metrics[i], "target", "t1", "before", 100.0, "after",
		    100 + changes[i], "change_pct", changes[i], "unit", "ms");
		b = json_pack("{s:s,s:s,s:s,s:s}", "state", states[i], "good",
		    "79dd3225f61d", "bad", "bb9953b0fd4b", "note", "between "
		    "79dd3225f61d and bb9953b0fd4b (7 commits): not separable at "
		    "this target's noise");
		if (strcmp(states[i], "done") == 0)
			json_object_set_new(b, "first_bad", json_string(SHA));
		json_object_set_new(a, "details", json_pack("{s:o}", "bisection",
		    b));
		json_array_append_new(alerts, a);
	}
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:o,s:[s],s:I}", "id",
	    (json_int_t)14, "project", "tinyllm", "commit", SHA, "author",
	    "Tia Nylm", "message", "attention: score the whole window",
	    "alerts", alerts, "targets", "t1", "active_targets", (json_int_t)1);
}

static void
compose(struct buf *subject, struct buf *body, json_t *inc)
{
	buf_init(subject, 1 << 16);
	buf_init(body, 1 << 20);
	notify_compose(subject, body, inc, "http://127.0.0.1:8080");
}

static void
test_blamed_commit_names_its_author(void **state)
{
	const char *const metrics[] = { "ttft_ms", "total_ms" };
	const double changes[] = { 12.0, 30.0 };
	const char *const states[] = { "done", "undecided" };
	json_t *inc = incident(2, metrics, changes, states);
	struct buf s, b;

	(void)state;
	compose(&s, &b, inc);
	/* The undecided alert has the larger change but is not the subject. */
	assert_string_equal(s.ptr, "[benchline] tinyllm 5a252985: perf "
	    "latency/ttft_ms +12.0%");
	assert_non_null(strstr(b.ptr, "Commit " SHA " by Tia Nylm"));
	assert_non_null(strstr(b.ptr, "not placed on a commit: between "
	    "79dd3225f61d and bb9953b0fd4b (7 commits): not separable"));
	buf_free(&s);
	buf_free(&b);
	json_decref(inc);
}

static void
test_undecided_incident_names_nobody(void **state)
{
	const char *const metrics[] = { "ttft_ms", "total_ms" };
	const double changes[] = { 12.0, 30.0 };
	const char *const states[] = { "undecided", "undecided" };
	json_t *inc = incident(2, metrics, changes, states);
	struct buf s, b;

	(void)state;
	compose(&s, &b, inc);
	assert_string_equal(s.ptr, "[benchline] tinyllm: perf "
	    "latency/total_ms +30.0% up to 5a252985, not placed on a commit");
	assert_null(strstr(b.ptr, "Tia Nylm"));
	assert_null(strstr(b.ptr, "attention: score"));
	assert_non_null(strstr(b.ptr, "no author is named"));
	assert_non_null(strstr(b.ptr, "/#/incidents/14"));
	buf_free(&s);
	buf_free(&b);
	json_decref(inc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blamed_commit_names_its_author),
		cmocka_unit_test(test_undecided_incident_names_nobody),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
