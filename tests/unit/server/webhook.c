/*
 * Unit tests of server/webhook.c: GitHub and GitLab push payloads (the
 * fixtures under tests/fixtures/webhooks/, read from the repository root,
 * and variants of them), the parents derived from the order of commits,
 * refusals that name the bad field, repository URLs, and the projects'
 * webhook settings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "server.h"

#define FIXTURES	"tests/fixtures/webhooks/"
#define ZEROS		"0000000000000000000000000000000000000000"

static json_t *
fixture(const char *name)
{
	char path[256];
	json_error_t jerr;
	json_t *v;

	snprintf(path, sizeof(path), FIXTURES "%s", name);
	v = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL)
		fail_msg("cannot read %s (run from the repository root): %s",
		    path, jerr.text);
	return v;
}

static struct push *
parse_ok(enum forge forge, json_t *body)
{
	struct push *p = NULL;
	char err[512] = "";

	if (webhook_parse(&p, forge, body, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	json_decref(body);
	return p;
}

/* Parses body, expects a refusal whose message starts with want. */
static void
parse_refused(enum forge forge, json_t *body, const char *want)
{
	struct push *p = NULL;
	char err[512] = "";

	assert_int_equal(webhook_parse(&p, forge, body, err, sizeof(err)),
	    BL_EINVAL);
	assert_null(p);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error '%s' does not start with '%s'", err, want);
	json_decref(body);
}

/* The commit shas of a github_push.json-like payload, oldest first. */
static const char *
commit_sha(json_t *body, size_t i)
{
	return json_string_value(json_object_get(json_array_get(
	    json_object_get(body, "commits"), i), "id"));
}

static void
test_sha_and_time(void **state)
{
	static const char *const good_times[] = {
		"2024-03-01T10:15:00+01:00", "2011-12-12T14:27:31+02:00",
		"2024-02-29T23:59:59Z", "2024-02-29 10:00:00-0700",
		"2016-12-31T23:59:60Z", "2024-01-01T00:00:00.123456789Z",
		"2024-01-01T00:00:00", "2024-01-01T00:00:00+15:59",
		"0001-01-01T00:00:00Z", "2024-01-01T00:00:00-05",
	};
	static const char *const bad_times[] = {
		"", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
		"2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z",
		"0000-01-01T00:00:00Z", "2024-01-01T24:00:00Z",
		"2024-01-01T00:60:00Z", "2024-01-01T00:00:61Z",
		"2024-01-01T00:00:00+16:00", "2024-01-01T00:00:00+01:60",
		"2024-01-01T00:00:00.Z", "2024-01-01T00:00:00.1234567890Z",
		"2024-01-01T00:00:00Zjunk", "2024-01-01", "1709287400",
		"2024-1-01T00:00:00Z", "2024-01-01T00:00:00+1",
		"2024-01-01X00:00:00Z",
	};
	size_t i;

	(void)state;
	assert_true(webhook_sha_valid("6fda9e9b1ccb0ebda31a37e44301dfe961c965f7"));
	assert_true(webhook_sha_valid(ZEROS));
	assert_true(webhook_sha_valid("6fda9e9b1ccb0ebda31a37e44301dfe961c965f7"
	    "6fda9e9b1ccb0ebda31a37e4"));
	assert_false(webhook_sha_valid("6fda9e9b"));
	assert_false(webhook_sha_valid("6FDA9E9B1CCB0EBDA31A37E44301DFE961C965F7"));
	assert_false(webhook_sha_valid("6fda9e9b1ccb0ebda31a37e44301dfe961c965fg"));
	for (i = 0; i < BL_ARRAY_LEN(good_times); i++)
		if (!webhook_time_valid(good_times[i]))
			fail_msg("'%s' refused", good_times[i]);
	for (i = 0; i < BL_ARRAY_LEN(bad_times); i++)
		if (webhook_time_valid(bad_times[i]))
			fail_msg("'%s' accepted", bad_times[i]);
}

static void
test_github_push(void **state)
{
	json_t *body = fixture("github_push.json");
	const char *c1 = commit_sha(body, 0), *c2 = commit_sha(body, 1),
	    *c3 = commit_sha(body, 2);
	char before[41];
	struct push *p;

	(void)state;
	snprintf(before, sizeof(before), "%s", json_string_value(
	    json_object_get(body, "before")));
	json_incref(body);
	p = parse_ok(FORGE_GITHUB, body);
	assert_int_equal(p->forge, FORGE_GITHUB);
	assert_string_equal(p->ref, "refs/heads/main");
	assert_string_equal(p->branch, "main");
	assert_false(p->is_tag || p->deleted || p->created || p->forced ||
	    p->truncated);
	assert_string_equal(p->before, before);
	assert_string_equal(p->head, c3);
	assert_int_equal(p->ncommits, 3);
	assert_int_equal(p->total_commits, 3);
	/* Oldest first; each commit's parent is the one before it. */
	assert_string_equal(p->commits[0].sha, c1);
	assert_string_equal(p->commits[0].parent, before);
	assert_string_equal(p->commits[1].sha, c2);
	assert_string_equal(p->commits[1].parent, c1);
	assert_string_equal(p->commits[2].sha, c3);
	assert_string_equal(p->commits[2].parent, c2);
	assert_string_equal(p->commits[1].author_name, "Grace Hopper");
	assert_string_equal(p->commits[1].author_email, "grace@example.org");
	assert_string_equal(p->commits[1].message, "quant: Q8_0 dot product "
	    "without the scale per element\n\nThe scale is applied once per "
	    "block.");
	assert_string_equal(p->commits[0].timestamp, "2024-03-01T10:15:00+01:00");
	webhook_free(p);
	json_decref(body);
}

/* A new branch, a forced push, and a head the list does not hold. */
static void
test_github_variants(void **state)
{
	json_t *body = fixture("github_push.json"), *commits, *head;
	const char *c3;
	struct push *p;

	(void)state;
	/* A new branch: before is zeros, so the first parent is unknown. */
	json_object_set_new(body, "before", json_string(ZEROS));
	json_object_set_new(body, "created", json_true());
	json_object_set_new(body, "ref", json_string("refs/heads/feature/kv"));
	p = parse_ok(FORGE_GITHUB, json_deep_copy(body));
	assert_true(p->created);
	assert_null(p->before);
	assert_string_equal(p->branch, "feature/kv");
	assert_null(p->commits[0].parent);
	assert_string_equal(p->commits[1].parent, p->commits[0].sha);
	webhook_free(p);

	/* Forced: the list starts at the merge base, not at before. */
	json_object_set_new(body, "before", json_string(
	    "1111111111111111111111111111111111111111"));
	json_object_set_new(body, "created", json_false());
	json_object_set_new(body, "forced", json_true());
	p = parse_ok(FORGE_GITHUB, json_deep_copy(body));
	assert_true(p->forced);
	assert_null(p->commits[0].parent);
	webhook_free(p);

	/*
	 * The branch moved to a commit pushed before: no commits listed,
	 * head_commit describes the head, which is recorded with no parent.
	 */
	commits = json_object_get(body, "commits");
	head = json_deep_copy(json_array_get(commits, 2));
	c3 = json_string_value(json_object_get(head, "id"));
	json_object_set_new(body, "forced", json_false());
	json_object_set_new(body, "head_commit", head);
	json_object_set_new(body, "commits", json_array());
	p = parse_ok(FORGE_GITHUB, json_deep_copy(body));
	assert_int_equal(p->ncommits, 1);
	assert_int_equal(p->total_commits, 0);
	assert_string_equal(p->commits[0].sha, c3);
	assert_string_equal(p->head, c3);
	assert_null(p->commits[0].parent);
	assert_string_equal(p->commits[0].message,
	    "sample: keep the top-k heap between tokens");
	webhook_free(p);

	/* Without head_commit the head is still recorded, bare. */
	json_object_del(body, "head_commit");
	p = parse_ok(FORGE_GITHUB, json_deep_copy(body));
	assert_int_equal(p->ncommits, 1);
	assert_string_equal(p->commits[0].sha, p->head);
	assert_string_equal(p->commits[0].message, "");
	assert_null(p->commits[0].timestamp);
	webhook_free(p);
	json_decref(body);
}

static void
test_github_tag_and_delete(void **state)
{
	struct push *p;

	(void)state;
	p = parse_ok(FORGE_GITHUB, fixture("github_tag.json"));
	assert_true(p->is_tag);
	assert_true(p->created);
	assert_string_equal(p->branch, "v1.2.0");
	webhook_free(p);

	p = parse_ok(FORGE_GITHUB, fixture("github_delete.json"));
	assert_true(p->deleted);
	assert_false(p->is_tag);
	assert_null(p->head);
	assert_null(p->after);
	assert_int_equal(p->ncommits, 0);
	assert_string_equal(p->branch, "feature/kv-cache");
	webhook_free(p);
}

static void
test_gitlab_push(void **state)
{
	json_t *body = fixture("gitlab_push.json");
	const char *g1 = commit_sha(body, 0), *g2 = commit_sha(body, 1);
	char before[41];
	struct push *p;

	(void)state;
	snprintf(before, sizeof(before), "%s", json_string_value(
	    json_object_get(body, "before")));
	p = parse_ok(FORGE_GITLAB, json_deep_copy(body));
	assert_string_equal(p->branch, "main");
	assert_string_equal(p->head, g2);
	assert_int_equal(p->ncommits, 2);
	assert_string_equal(p->commits[0].parent, before);
	assert_string_equal(p->commits[1].parent, g1);
	assert_string_equal(p->commits[0].message, "matmul: unroll by four\n");
	/* GitLab redacts hidden addresses; they are kept as sent. */
	assert_string_equal(p->commits[1].author_email, "[REDACTED]");
	assert_false(p->truncated);
	webhook_free(p);

	/* 25 commits pushed, the newest 20 listed: the first parent is unknown. */
	json_object_set_new(body, "total_commits_count", json_integer(25));
	p = parse_ok(FORGE_GITLAB, json_deep_copy(body));
	assert_true(p->truncated);
	assert_int_equal(p->total_commits, 25);
	assert_null(p->commits[0].parent);
	assert_string_equal(p->commits[1].parent, g1);
	webhook_free(p);

	/* checkout_sha names the head when after does not (annotated tags). */
	json_object_set_new(body, "total_commits_count", json_integer(2));
	json_object_set_new(body, "after", json_string(
	    "2222222222222222222222222222222222222222"));
	p = parse_ok(FORGE_GITLAB, json_deep_copy(body));
	assert_string_equal(p->head, g2);
	assert_int_equal(p->ncommits, 2);
	webhook_free(p);

	json_object_set_new(body, "total_commits_count", json_integer(1));
	parse_refused(FORGE_GITLAB, json_deep_copy(body),
	    "$.total_commits_count: 1 is less than the 2 commits listed");
	json_object_set_new(body, "total_commits_count", json_integer(2));
	json_object_set_new(body, "object_kind", json_string("merge_request"));
	parse_refused(FORGE_GITLAB, body, "$.object_kind: 'merge_request' is "
	    "not a push");
}

static void
test_gitlab_tag_and_delete(void **state)
{
	struct push *p;

	(void)state;
	p = parse_ok(FORGE_GITLAB, fixture("gitlab_tag.json"));
	assert_true(p->is_tag);
	assert_string_equal(p->branch, "v1.0.0");
	webhook_free(p);

	p = parse_ok(FORGE_GITLAB, fixture("gitlab_delete.json"));
	assert_true(p->deleted);
	assert_null(p->head);
	assert_int_equal(p->ncommits, 0);
	webhook_free(p);
}

/* Each refusal names the JSON path of the bad field. */
static void
test_refusals(void **state)
{
	static const struct {
		const char	*name;
		const char	*patch;		/* merged into github_push.json */
		const char	*want;
	} cases[] = {
		{ "ref missing", "{\"ref\": null}", "$.ref: is required" },
		{ "ref a number", "{\"ref\": 5}", "$.ref: must be a string" },
		{ "ref neither", "{\"ref\": \"refs/pull/1/head\"}",
		    "$.ref: 'refs/pull/1/head' names neither" },
		{ "empty branch", "{\"ref\": \"refs/heads/\"}",
		    "$.ref: the name after 'refs/heads/' must be" },
		{ "before short", "{\"before\": \"abc123\"}",
		    "$.before: 'abc123' is not a commit id" },
		{ "after upper", "{\"after\": "
		    "\"6FDA9E9B1CCB0EBDA31A37E44301DFE961C965F7\"}",
		    "$.after: '6FDA9E9B" },
		{ "commits object", "{\"commits\": {}}",
		    "$.commits: must be an array" },
		{ "commit a string", "{\"commits\": [\"x\"]}",
		    "$.commits[0]: must be an object" },
		{ "commit no id", "{\"commits\": [{\"message\": \"m\"}]}",
		    "$.commits[0].id: is required" },
		{ "bad timestamp", "{\"commits\": [{\"id\": "
		    "\"6fda9e9b1ccb0ebda31a37e44301dfe961c965f7\", "
		    "\"timestamp\": \"2024-02-30T00:00:00Z\"}]}",
		    "$.commits[0].timestamp: '2024-02-30T00:00:00Z' is not" },
		{ "author a string", "{\"commits\": [{\"id\": "
		    "\"6fda9e9b1ccb0ebda31a37e44301dfe961c965f7\", "
		    "\"author\": \"ada\"}]}",
		    "$.commits[0].author: must be an object" },
		{ "NUL in message", "{\"commits\": [{\"id\": "
		    "\"6fda9e9b1ccb0ebda31a37e44301dfe961c965f7\", "
		    "\"message\": \"a\\u0000b\"}]}",
		    "$.commits[0].message: contains a NUL" },
		{ "deleted a string", "{\"deleted\": \"no\"}",
		    "$.deleted: must be true or false" },
		{ "head_commit array", "{\"head_commit\": []}",
		    "$.head_commit: must be an object" },
	};
	json_t *base = fixture("github_push.json"), *body, *patch;
	size_t i;

	(void)state;
	for (i = 0; i < BL_ARRAY_LEN(cases); i++) {
		body = json_deep_copy(base);
		patch = json_loads(cases[i].patch, JSON_ALLOW_NUL, NULL);
		assert_non_null(patch);
		json_object_update(body, patch);
		json_decref(patch);
		parse_refused(FORGE_GITHUB, body, cases[i].want);
	}
	parse_refused(FORGE_GITHUB, json_array(), "$: must be a JSON object");
	json_decref(base);
}

static void
test_urls(void **state)
{
	const char *urls[WEBHOOK_MAX_URLS];
	json_t *body;
	size_t n, i;
	int clone = 0, ssh = 0;

	(void)state;
	body = fixture("github_push.json");
	n = webhook_urls(urls, BL_ARRAY_LEN(urls), body);
	for (i = 0; i < n; i++) {
		clone |= strcmp(urls[i], "https://github.com/octo-org/engine.git") == 0;
		ssh |= strcmp(urls[i], "git@github.com:octo-org/engine.git") == 0;
	}
	assert_true(clone && ssh);
	/* html_url and url are the same text: listed once. */
	for (i = 1; i < n; i++)
		assert_string_not_equal(urls[i], urls[0]);
	json_decref(body);

	body = fixture("gitlab_push.json");
	n = webhook_urls(urls, BL_ARRAY_LEN(urls), body);
	assert_int_equal(n, 3);	/* http, ssh, web: both objects name the same */
	assert_int_equal(webhook_urls(urls, 1, body), 1);
	json_decref(body);

	/* The ping names the repository too. */
	body = fixture("github_ping.json");
	assert_true(webhook_urls(urls, BL_ARRAY_LEN(urls), body) >= 3);
	json_decref(body);
	body = json_pack("{s:{s:i}}", "repository", "clone_url", 5);
	assert_int_equal(webhook_urls(urls, BL_ARRAY_LEN(urls), body), 0);
	json_decref(body);
}

static int
settings_rc(const char *text, char *err, size_t errlen)
{
	json_t *v = json_loads(text, 0, NULL);
	int rc;

	assert_non_null(v);
	rc = webhook_settings_check(v, err, errlen);
	json_decref(v);
	return rc;
}

static void
test_settings(void **state)
{
	static const struct {
		const char	*settings;
		const char	*want;
	} bad[] = {
		{ "{\"branches\": \"main\"}", "$.settings.branches: must be an array" },
		{ "{\"branches\": []}", "$.settings.branches: must not be empty" },
		{ "{\"branches\": [\"ma*in\"]}", "$.settings.branches[0]: must be a branch" },
		{ "{\"branches\": [\"main\", \"a b\"]}", "$.settings.branches[1]:" },
		{ "{\"branches\": [5]}", "$.settings.branches[0]:" },
		{ "{\"scenarios\": [\"Latency\"]}", "$.settings.scenarios[0]: must be a scenario" },
		{ "{\"benchmark_every_commit\": 1}", "$.settings.benchmark_every_commit: must be true or false" },
		{ "{\"supersede_queued\": \"yes\"}", "$.settings.supersede_queued: must be true or false" },
		{ "{\"job_params\": []}", "$.settings.job_params: must be an object" },
		{ "{\"target_labels\": \"gpu\"}", "$.settings.target_labels: must be an object" },
	};
	struct webhook_settings s;
	char err[256];
	json_t *v;
	size_t i;

	(void)state;
	for (i = 0; i < BL_ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		assert_int_equal(settings_rc(bad[i].settings, err, sizeof(err)),
		    BL_EINVAL);
		if (strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
			fail_msg("%s: '%s' does not start with '%s'",
			    bad[i].settings, err, bad[i].want);
	}
	/* Other keys (the detector's) are not this module's business. */
	assert_int_equal(settings_rc("{\"threshold\": 0.1, \"branches\": null}",
	    err, sizeof(err)), 0);

	/* Defaults. */
	assert_int_equal(webhook_settings_load(&s, NULL, err, sizeof(err)), 0);
	assert_null(s.branches);
	assert_false(s.every_commit || s.supersede);
	assert_int_equal(json_array_size(s.scenarios), 6);
	assert_string_equal(json_string_value(json_array_get(s.scenarios, 4)),
	    "memory_leak");
	assert_int_equal(json_object_size(s.params), 0);
	assert_int_equal(json_object_size(s.target_labels), 0);
	assert_true(webhook_branch_wanted(&s, "main", "main"));
	assert_false(webhook_branch_wanted(&s, "main2", "main"));
	assert_true(webhook_branch_wanted(&s, "trunk", "trunk"));
	webhook_settings_free(&s);

	v = json_loads("{\"branches\": [\"main\", \"release/*\"], "
	    "\"benchmark_every_commit\": true, \"supersede_queued\": true, "
	    "\"scenarios\": [\"latency\"], \"job_params\": {\"latency\": "
	    "{\"repetitions\": 5}}, \"target_labels\": {\"cuda\": \"12\"}}", 0,
	    NULL);
	assert_int_equal(webhook_settings_load(&s, v, err, sizeof(err)), 0);
	json_decref(v);
	assert_true(s.every_commit && s.supersede);
	assert_int_equal(json_array_size(s.scenarios), 1);
	assert_string_equal(json_string_value(json_object_get(s.target_labels,
	    "cuda")), "12");
	assert_true(webhook_branch_wanted(&s, "main", "trunk"));
	assert_true(webhook_branch_wanted(&s, "release/1.0", "main"));
	assert_true(webhook_branch_wanted(&s, "release/", "main"));
	assert_false(webhook_branch_wanted(&s, "release", "main"));
	assert_false(webhook_branch_wanted(&s, "trunk", "trunk"));
	webhook_settings_free(&s);

	v = json_loads("{\"branches\": [\"*\"]}", 0, NULL);
	assert_int_equal(webhook_settings_load(&s, v, err, sizeof(err)), 0);
	json_decref(v);
	assert_true(webhook_branch_wanted(&s, "anything/at/all", "main"));
	webhook_settings_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha_and_time),
		cmocka_unit_test(test_github_push),
		cmocka_unit_test(test_github_variants),
		cmocka_unit_test(test_github_tag_and_delete),
		cmocka_unit_test(test_gitlab_push),
		cmocka_unit_test(test_gitlab_tag_and_delete),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
