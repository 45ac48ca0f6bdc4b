/* Unit tests of the engine adapters against real processes that behave and misbehave. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "worker.h"

/* A jsonl engine in sh: ready line, then one reply per request line. */
#define GOOD_ENGINE \
	"echo '{\"ready\":true}'; " \
	"while read -r l; do " \
	"  id=$(echo \"$l\" | sed 's/.*\"id\":\\([0-9]*\\).*/\\1/'); " \
	"  case \"$l\" in *accuracy*) " \
	"    echo \"{\\\"id\\\":$id,\\\"accuracy\\\":{\\\"top1_agreement\\\":0.99}}\";; " \
	"  *) echo \"{\\\"id\\\":$id,\\\"ttft_ms\\\":1.5,\\\"tokens\\\":4,\\\"total_ms\\\":6," \
	"\\\"token_ms\\\":[1.5,1.5,1.5,1.5]}\";; esac; " \
	"done"

static struct manifest *
jsonl_manifest(const char *script)
{
	struct manifest *m = NULL;
	json_t *doc;
	char err[512], *text;

	doc = json_pack("{s:s,s:s,s:[s,s,s]}", "build", "true", "adapter",
	    "jsonl", "command", "/bin/sh", "-c", script);
	text = json_dumps(doc, 0);
	assert_int_equal(manifest_parse(&m, text, strlen(text), err,
	    sizeof(err)), 0);
	free(text);
	json_decref(doc);
	return m;
}

static const struct proc_limits nolimits = { 0, 0, 0, NULL };

static void
start_ok(struct engine **e, struct manifest *m, int64_t timeout_s)
{
	char err[2048];

	if (engine_start(e, m, "/tmp", &nolimits, timeout_s, err,
	    sizeof(err)) != 0)
		fail_msg("engine did not start: %s", err);
}

static void
test_good_engine(void **state)
{
	struct manifest *m = jsonl_manifest(GOOD_ENGINE);
	struct request_spec rq = { 1, 16, 4, 0, 1 };
	struct reply rp = { 0 };
	struct engine *e;
	json_t *acc = NULL;
	char err[2048];
	int i;

	(void)state;
	reply_clear(&rp);
	start_ok(&e, m, 10);
	assert_true(engine_pid(e) > 0);
	/* Three requests in flight, answered in order. */
	for (i = 1; i <= 3; i++) {
		rq.id = i;
		assert_int_equal(engine_send(e, &rq, err, sizeof(err)), 0);
	}
	for (i = 1; i <= 3; i++) {
		assert_int_equal(engine_recv(e, &rp, err, sizeof(err)), 0);
		assert_int_equal(rp.id, i);
		assert_true(rp.ok);
		assert_int_equal(rp.tokens, 4);
		assert_true(rp.ttft_ms == 1.5);
		assert_int_equal(rp.ntoken_ms, 4);
		assert_true(rp.wall_ms >= 0);
	}
	assert_int_equal(engine_accuracy(e, &acc, err, sizeof(err)), 0);
	assert_true(json_real_value(json_object_get(acc, "top1_agreement")) == 0.99);
	json_decref(acc);
	reply_clear(&rp);
	engine_stop(e);
	manifest_free(m);
}

/* Starts script as a jsonl engine, sends one request, expects recv to fail with text. */
static void
expect_failure(const char *script, int start_fails, int want_rc,
    const char *text)
{
	struct manifest *m = jsonl_manifest(script);
	struct request_spec rq = { 1, 16, 4, 0, 1 };
	struct reply rp = { 0 };
	struct engine *e = NULL;
	char err[2048] = "";
	int rc;

	reply_clear(&rp);
	rc = engine_start(&e, m, "/tmp", &nolimits, 2, err, sizeof(err));
	if (start_fails) {
		assert_true(rc < 0);
	} else {
		assert_int_equal(rc, 0);
		rc = engine_send(e, &rq, err, sizeof(err));
		if (rc == 0)
			rc = engine_recv(e, &rp, err, sizeof(err));
		assert_int_equal(rc, want_rc);
		engine_stop(e);
	}
	if (strstr(err, text) == NULL)
		fail_msg("error '%s' does not mention '%s'", err, text);
	reply_clear(&rp);
	manifest_free(m);
}

static void
test_crash(void **state)
{
	(void)state;
	expect_failure("echo '{\"ready\":true}'; read l; echo 'segfault here' >&2;"
	    " kill -SEGV $$", 0, BL_ERROR, "exited (killed by signal 11");
	expect_failure("echo '{\"ready\":true}'; read l; echo oops >&2; exit 3",
	    0, BL_ERROR, "exit status 3");
	expect_failure("echo '{\"ready\":true}'; read l; echo oops >&2; exit 3",
	    0, BL_ERROR, "stderr ends: oops");
}

static void
test_hang(void **state)
{
	int64_t t0 = clock_mono_ms();

	(void)state;
	expect_failure("echo '{\"ready\":true}'; read l; sleep 30", 0, BL_ETOOBIG,
	    "hung");
	/* The 2 s request timeout held, and the sleeping engine was killed. */
	assert_true(clock_mono_ms() - t0 < 8000);
}

static void
test_garbage(void **state)
{
	(void)state;
	expect_failure("echo '{\"ready\":true}'; read l; echo 'hello world'", 0,
	    BL_ERROR, "printed garbage instead of a reply: 'hello world'");
	expect_failure("echo '{\"ready\":true}'; read l; echo '{\"no\":\"id\"}'", 0,
	    BL_ERROR, "printed garbage");
}

static void
test_early_exit_and_no_ready(void **state)
{
	(void)state;
	expect_failure("echo 'cannot load model' >&2; exit 1", 1, 0,
	    "cannot load model");
	expect_failure("echo 'loading...'; sleep 5", 1, 0,
	    "did not start with a ready line: 'loading...'");
	expect_failure("exec /nonexistent/engine", 1, 0, "exit status 127");
}

static void
test_error_reply_is_not_fatal(void **state)
{
	struct manifest *m = jsonl_manifest("echo '{\"ready\":true}'; "
	    "read l; echo '{\"id\":1,\"error\":\"prompt too long\"}'; "
	    "read l; echo '{\"id\":2,\"tokens\":1,\"total_ms\":1}'; read l");
	struct request_spec rq = { 1, 16, 4, 0, 1 };
	struct reply rp = { 0 };
	struct engine *e;
	char err[2048];

	(void)state;
	reply_clear(&rp);
	start_ok(&e, m, 5);
	assert_int_equal(engine_call(e, &rq, &rp, err, sizeof(err)), 0);
	assert_false(rp.ok);
	assert_string_equal(rp.error, "prompt too long");
	rq.id = 2;
	assert_int_equal(engine_call(e, &rq, &rp, err, sizeof(err)), 0);
	assert_true(rp.ok);
	reply_clear(&rp);
	engine_stop(e);
	manifest_free(m);
}

static void
test_exec_adapter(void **state)
{
	const char *text = "{\"build\":\"true\",\"adapter\":\"exec\","
	    "\"command\":[\"/bin/sh\",\"-c\",\"test {max_tokens} -lt 100 && "
	    "echo 'achieved tok/s: 12{max_tokens}.5' || exit 4\"],"
	    "\"metrics\":{\"tokens_per_s\":{\"regex\":\"achieved tok/s: ([0-9.]+)\","
	    "\"unit\":\"tok/s\",\"direction\":\"higher\"}}}";
	struct request_spec rq = { 1, 16, 3, 0, 1 };
	struct manifest *m = NULL;
	struct reply rp = { 0 };
	struct engine *e;
	char err[2048];
	int i, seen = 0;

	(void)state;
	reply_clear(&rp);
	assert_int_equal(manifest_parse(&m, text, strlen(text), err, sizeof(err)),
	    0);
	start_ok(&e, m, 5);
	assert_int_equal(engine_call(e, &rq, &rp, err, sizeof(err)), 0);
	assert_true(rp.ok);
	assert_true(json_real_value(json_object_get(rp.values,
	    "tokens_per_s")) == 123.5);
	assert_true(rp.peak_rss_bytes > 0);
	assert_true(rp.wall_ms > 0);
	/* A failing run is an error reply, not the end of the engine. */
	rq.max_tokens = 200;
	assert_int_equal(engine_call(e, &rq, &rp, err, sizeof(err)), 0);
	assert_false(rp.ok);
	assert_string_equal(rp.error, "exit status 4");
	/* Several runs at once. */
	rq.max_tokens = 5;
	for (i = 10; i < 14; i++) {
		rq.id = i;
		assert_int_equal(engine_send(e, &rq, err, sizeof(err)), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(engine_recv(e, &rp, err, sizeof(err)), 0);
		assert_true(rp.ok);
		seen |= 1 << (rp.id - 10);
	}
	assert_int_equal(seen, 0xf);
	reply_clear(&rp);
	engine_stop(e);
	manifest_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_engine),
		cmocka_unit_test(test_crash),
		cmocka_unit_test(test_hang),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_early_exit_and_no_ready),
		cmocka_unit_test(test_error_reply_is_not_fatal),
		cmocka_unit_test(test_exec_adapter),
	};

	return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
