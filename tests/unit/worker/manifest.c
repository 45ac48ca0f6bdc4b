/* Unit tests of worker/manifest.c: benchline.json and scenario settings. */
#include <regex.h>
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

/* The members every valid manifest of these tests starts with. */
#define JSONL	"\"build\":\"make\",\"adapter\":\"jsonl\",\"command\":[\"./e\"]"
#define EXEC	"\"build\":\"make\",\"adapter\":\"exec\",\"command\":[\"./e\"]"
#define METRIC	"\"metrics\":{\"tps\":{\"regex\":\"tok/s: ([0-9.]+)\"," \
		"\"unit\":\"tok/s\",\"direction\":\"higher\"}}"

static struct manifest *
parse_ok(const char *text)
{
	struct manifest *m = NULL;
	char err[512] = "";
	int rc;

	rc = manifest_parse(&m, text, strlen(text), err, sizeof(err));
	if (rc != 0)
		print_error("manifest_parse: %s\n", err);
	assert_int_equal(rc, 0);
	assert_non_null(m);
	return m;
}

/* Returns the merged settings of scenario name with job overrides params. */
static json_t *
scenario_ok(const struct manifest *m, const char *name, const char *params)
{
	json_t *jp = NULL, *out = NULL;
	char err[512] = "";
	int rc;

	if (params != NULL)
		assert_non_null(jp = json_loads(params, JSON_DECODE_ANY,
		    NULL));
	rc = manifest_scenario(&out, m, name, jp, err, sizeof(err));
	if (rc != 0)
		print_error("manifest_scenario: %s\n", err);
	assert_int_equal(rc, 0);
	assert_non_null(out);
	json_decref(jp);
	return out;
}

/* Asserts that v serializes, keys sorted, to the JSON text want. */
static void
assert_json(json_t *v, const char *want)
{
	json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
	char *a, *b;

	assert_non_null(w);
	a = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	b = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a, b);
	free(a);
	free(b);
	json_decref(w);
}

static void
test_full(void **state)
{
	static const char text[] =
	    "{\n"
	    "  \"_comment\": \"an exec engine\",\n"
	    "  \"build\": \"make -j2 bench\",\n"
	    "  \"adapter\": \"exec\",\n"
	    "  \"command\": [\"./tinyllm\", \"--dim\", \"128\", \"\"],\n"
	    "  \"metrics\": {\n"
	    "    \"tokens_per_s\": {\"regex\": \"achieved tok/s: ([0-9.]+)\",\n"
	    "      \"unit\": \"tok/s\", \"direction\": \"higher\"},\n"
	    "    \"load_ms\": {\"regex\": \"load: ([0-9]+) ms\",\n"
	    "      \"unit\": \"ms\", \"direction\": \"lower\",\n"
	    "      \"_why\": \"startup\"}\n"
	    "  },\n"
	    "  \"build_timeout_s\": 600, \"request_timeout_s\": 30,\n"
	    "  \"scenarios\": {\n"
	    "    \"memory_leak\": {\"requests\": 50},\n"
	    "    \"latency\": {\"repetitions\": 10, \"_note\": \"short\"}\n"
	    "  }\n"
	    "}\n";
	struct manifest *m;
	json_t *p;

	(void)state;
	m = parse_ok(text);
	assert_string_equal(m->build, "make -j2 bench");
	assert_int_equal(m->adapter, ADAPTER_EXEC);
	assert_int_equal(m->ncommand, 4);
	assert_string_equal(m->command[0], "./tinyllm");
	assert_string_equal(m->command[2], "128");
	assert_string_equal(m->command[3], "");
	assert_null(m->command[4]);
	assert_int_equal(m->nmetrics, 2);
	assert_string_equal(m->metrics[0].name, "tokens_per_s");
	assert_string_equal(m->metrics[0].regex, "achieved tok/s: ([0-9.]+)");
	assert_string_equal(m->metrics[0].unit, "tok/s");
	assert_int_equal(m->metrics[0].higher, 1);
	assert_string_equal(m->metrics[1].name, "load_ms");
	assert_string_equal(m->metrics[1].unit, "ms");
	assert_int_equal(m->metrics[1].higher, 0);
	assert_int_equal(m->build_timeout_s, 600);
	assert_int_equal(m->request_timeout_s, 30);
	/* Scenarios come in the worker's order, not the manifest's. */
	assert_int_equal(m->nscenarios, 2);
	assert_string_equal(m->scenarios[0].name, "latency");
	assert_string_equal(m->scenarios[1].name, "memory_leak");
	/* Comment keys do not reach the settings. */
	assert_null(json_object_get(m->scenarios[0].params, "_note"));
	p = scenario_ok(m, "memory_leak", NULL);
	assert_json(p, "{\"requests\": 50, \"warmup_fraction\": 0.1, "
	    "\"prompt_tokens\": 64, \"max_tokens\": 32, \"sample_hz\": 10, "
	    "\"temperature\": 0.0}");
	json_decref(p);
	manifest_free(m);
}

static void
test_defaults(void **state)
{
	static const struct {
		const char	*name;
		const char	*want;
	} defaults[] = {
		{ "latency", "{\"prompt_tokens\": [32, 128, 512], "
		    "\"max_tokens\": [32, 128], \"repetitions\": 100, "
		    "\"warmup\": 3, \"warmup_s\": 2.0, \"sample_hz\": 10, "
		    "\"temperature\": 0.0}" },
		{ "throughput", "{\"concurrency\": [1, 5, 10, 20], "
		    "\"requests\": 20, \"prompt_tokens\": 128, "
		    "\"max_tokens\": 64, \"warmup_s\": 2.0, \"sample_hz\": 10, "
		    "\"temperature\": 0.0}" },
		{ "stress", "{\"duration_s\": 300, \"load_fraction\": 0.8, "
		    "\"spike_s\": 10, \"max_concurrency\": 20, "
		    "\"prompt_tokens\": 128, \"max_tokens\": 64, "
		    "\"sample_hz\": 10, \"temperature\": 0.0}" },
		{ "endurance", "{\"duration_s\": 86400, \"concurrency\": 1, "
		    "\"window_s\": 60, \"prompt_tokens\": 128, "
		    "\"max_tokens\": 64, \"sample_hz\": 10, "
		    "\"temperature\": 0.0}" },
		{ "memory_leak", "{\"requests\": 1000, "
		    "\"warmup_fraction\": 0.1, \"prompt_tokens\": 64, "
		    "\"max_tokens\": 32, \"sample_hz\": 10, "
		    "\"temperature\": 0.0}" },
		{ "accuracy", "{\"sample_hz\": 10, \"temperature\": 0.0}" },
	};
	struct manifest *m;
	json_t *p;
	char err[256];
	size_t i;

	(void)state;
	/* Without "scenarios", a jsonl engine supports all six. */
	m = parse_ok("{" JSONL "}");
	assert_int_equal(m->adapter, ADAPTER_JSONL);
	assert_int_equal(m->nmetrics, 0);
	assert_null(m->metrics);
	assert_int_equal(m->build_timeout_s, 1800);
	assert_int_equal(m->request_timeout_s, 120);
	assert_int_equal(m->nscenarios, 6);
	for (i = 0; i < BL_ARRAY_LEN(defaults); i++) {
		assert_string_equal(m->scenarios[i].name, defaults[i].name);
		assert_json(m->scenarios[i].params, defaults[i].want);
		p = scenario_ok(m, defaults[i].name, "{}");
		assert_json(p, defaults[i].want);
		json_decref(p);
	}
	assert_true(json_is_real(json_object_get(m->scenarios[2].params,
	    "load_fraction")));
	manifest_free(m);

	/* An exec engine cannot report accuracy. */
	m = parse_ok("{" EXEC "," METRIC "}");
	assert_int_equal(m->nscenarios, 5);
	p = (json_t *)1;
	assert_int_equal(manifest_scenario(&p, m, "accuracy", NULL, err,
	    sizeof(err)), BL_ENOTFOUND);
	assert_null(p);
	assert_string_equal(err, "scenario 'accuracy' is not in the manifest");
	manifest_free(m);
}

/* The counted scenario is named, never implied, and needs a long-lived engine. */
static void
test_instructions(void **state)
{
	struct manifest *m;
	json_t *p;
	char err[256], text[256];

	(void)state;
	m = parse_ok("{" JSONL ",\"scenarios\":{\"instructions\":{}}}");
	assert_int_equal(m->nscenarios, 1);
	p = scenario_ok(m, "instructions", "{\"instructions\": {\"requests\": 2}}");
	assert_json(p, "{\"requests\": 2, \"warmup\": 1, \"prompt_tokens\": 32, "
	    "\"max_tokens\": 16, \"sample_hz\": 10, \"temperature\": 0.0}");
	json_decref(p);
	manifest_free(m);
	/* Not in the default set: valgrind slows a big model ~50x. */
	m = parse_ok("{" JSONL "}");
	p = (json_t *)1;
	assert_int_equal(manifest_scenario(&p, m, "instructions", NULL, err,
	    sizeof(err)), BL_ENOTFOUND);
	manifest_free(m);
	snprintf(text, sizeof(text), "{%s,%s,\"scenarios\":{"
	    "\"instructions\":{}}}", EXEC, METRIC);
	m = NULL;
	assert_int_equal(manifest_parse(&m, text, strlen(text), err,
	    sizeof(err)), BL_EINVAL);
	assert_string_equal(err, "$.scenarios.instructions: only the jsonl "
	    "adapter supports this scenario");
}

static void
test_normalize(void **state)
{
	struct manifest *m;
	json_t *p;

	(void)state;
	m = parse_ok("{" JSONL ",\"scenarios\":{"
	    "\"latency\":{\"prompt_tokens\":64,\"max_tokens\":[8],"
	    "\"temperature\":1},"
	    "\"throughput\":{\"concurrency\":8},"
	    "\"stress\":{\"load_fraction\":1}}}");
	p = scenario_ok(m, "latency", NULL);
	assert_json(json_object_get(p, "prompt_tokens"), "[64]");
	assert_json(json_object_get(p, "max_tokens"), "[8]");
	assert_true(json_is_real(json_object_get(p, "temperature")));
	assert_true(json_real_value(json_object_get(p, "temperature")) == 1.0);
	json_decref(p);
	p = scenario_ok(m, "throughput", NULL);
	assert_json(json_object_get(p, "concurrency"), "[8]");
	json_decref(p);
	p = scenario_ok(m, "stress", NULL);
	assert_true(json_is_real(json_object_get(p, "load_fraction")));
	json_decref(p);
	/* A job's integer override is normalized too. */
	p = scenario_ok(m, "latency", "{\"latency\":{\"max_tokens\":3}}");
	assert_json(json_object_get(p, "max_tokens"), "[3]");
	json_decref(p);
	manifest_free(m);
}

static void
test_merge(void **state)
{
	struct manifest *m;
	json_t *p;

	(void)state;
	m = parse_ok("{" JSONL ",\"scenarios\":{"
	    "\"latency\":{\"repetitions\":10,\"prompt_tokens\":[16,32]},"
	    "\"endurance\":{\"duration_s\":20}}}");
	/* Defaults, then the manifest, then the job. */
	p = scenario_ok(m, "latency", "{\"latency\":{\"repetitions\":5,"
	    "\"max_tokens\":[7,9],\"warmup\":null,\"_c\":1},"
	    "\"endurance\":{\"duration_s\":\"bad, but not asked for\"}}");
	assert_json(p, "{\"prompt_tokens\": [16, 32], \"max_tokens\": [7, 9], "
	    "\"repetitions\": 5, \"warmup\": 3, \"warmup_s\": 2.0, "
	    "\"sample_hz\": 10, \"temperature\": 0.0}");
	json_decref(p);
	/* The manifest's own settings are left alone. */
	assert_json(json_object_get(m->scenarios[0].params, "repetitions"),
	    "10");
	p = scenario_ok(m, "latency", "{}");
	assert_json(json_object_get(p, "repetitions"), "10");
	json_decref(p);
	p = scenario_ok(m, "endurance", "{\"endurance\":{\"window_s\":5,"
	    "\"sample_hz\":100}}");
	assert_json(p, "{\"duration_s\": 20, \"concurrency\": 1, "
	    "\"window_s\": 5, \"prompt_tokens\": 128, \"max_tokens\": 64, "
	    "\"sample_hz\": 100, \"temperature\": 0.0}");
	json_decref(p);
	p = scenario_ok(m, "endurance", "null");
	assert_json(json_object_get(p, "duration_s"), "20");
	json_decref(p);
	manifest_free(m);
}

static void
test_job_errors(void **state)
{
	static const struct {
		const char	*name;
		const char	*params;
		int		 rc;
		const char	*err;
	} cases[] = {
		{ "latency", "{\"latency\":{\"repetitions\":0}}", BL_EINVAL,
		  "$.params.latency.repetitions: must be an integer from 1 to "
		  "100000" },
		{ "latency", "{\"latency\":{\"prompt_tokens\":[1,2,-3]}}",
		  BL_EINVAL, "$.params.latency.prompt_tokens[2]: must be an "
		  "integer from 1 to 1000000" },
		{ "latency", "{\"latency\":{\"bogus\":1}}", BL_EINVAL,
		  "$.params.latency.bogus: unknown parameter" },
		{ "latency", "{\"latency\":[1]}", BL_EINVAL,
		  "$.params.latency: must be an object" },
		{ "latency", "[1]", BL_EINVAL, "$.params: must be an object" },
		{ "stress", "{\"stress\":{\"load_fraction\":0}}", BL_ENOTFOUND,
		  "scenario 'stress' is not in the manifest" },
		{ "warp", "{}", BL_ENOTFOUND,
		  "scenario 'warp' is not in the manifest" },
	};
	struct manifest *m;
	json_t *jp, *out;
	char err[512];
	size_t i;

	(void)state;
	m = parse_ok("{" JSONL ",\"scenarios\":{\"latency\":{}}}");
	for (i = 0; i < BL_ARRAY_LEN(cases); i++) {
		assert_non_null(jp = json_loads(cases[i].params, 0, NULL));
		out = (json_t *)1;
		err[0] = '\0';
		assert_int_equal(manifest_scenario(&out, m, cases[i].name, jp,
		    err, sizeof(err)), cases[i].rc);
		assert_null(out);
		assert_string_equal(err, cases[i].err);
		json_decref(jp);
	}
	manifest_free(m);
}

/* A manifest with this "scenarios" object, and one with this metric "tps". */
#define SCEN(s)	"{" JSONL ",\"scenarios\":" s "}"
#define TPS(s)	"{" EXEC ",\"metrics\":{\"tps\":" s "}}"
#define TOP(s)	"{\"build\":\"make\",\"adapter\":\"jsonl\"," s "}"

static void
test_bad_fields(void **state)
{
	static const struct {
		const char	*text;
		const char	*err;
	} cases[] = {
		{ "{\"adapter\":\"jsonl\",\"command\":[\"./e\"]}",
		  "$.build: is required" },
		{ "{\"build\":5,\"adapter\":\"jsonl\",\"command\":[\"e\"]}",
		  "$.build: must be a string" },
		{ "{\"build\":\"\",\"adapter\":\"jsonl\",\"command\":[\"e\"]}",
		  "$.build: must not be empty" },
		{ "{\"build\":\"m\",\"adapter\":\"grpc\",\"command\":[\"e\"]}",
		  "$.adapter: must be \"jsonl\" or \"exec\"" },
		{ "{\"build\":\"make\",\"command\":[\"e\"]}",
		  "$.adapter: is required" },
		{ TOP("\"_c\":1"), "$.command: is required" },
		{ TOP("\"command\":[]"),
		  "$.command: must be a non-empty array of strings" },
		{ TOP("\"command\":\"./e\""),
		  "$.command: must be a non-empty array of strings" },
		{ TOP("\"command\":[\"./e\",2]"),
		  "$.command[1]: must be a string" },
		{ TOP("\"command\":[\"\"]"),
		  "$.command[0]: the program must not be empty" },
		{ "{" JSONL ",\"colour\":\"blue\"}",
		  "$.colour: unknown field" },
		{ "{" JSONL ",\"build_timeout_s\":0}",
		  "$.build_timeout_s: 0 is outside 1..86400" },
		{ "{" JSONL ",\"request_timeout_s\":1.5}",
		  "$.request_timeout_s: must be an integer" },
		{ SCEN("[]"), "$.scenarios: must be an object" },
		{ SCEN("{}"), "$.scenarios: must name at least one scenario" },
		{ SCEN("{\"warp\":{}}"), "$.scenarios.warp: unknown scenario" },
		{ SCEN("{\"latency\":5}"),
		  "$.scenarios.latency: must be an object" },
		{ SCEN("{\"latency\":{\"repetitions\":0}}"),
		  "$.scenarios.latency.repetitions: must be an integer from 1 "
		  "to 100000" },
		{ SCEN("{\"latency\":{\"repetitions\":100001}}"),
		  "$.scenarios.latency.repetitions: must be an integer from 1 "
		  "to 100000" },
		{ SCEN("{\"latency\":{\"repetitions\":\"10\"}}"),
		  "$.scenarios.latency.repetitions: must be an integer from 1 "
		  "to 100000" },
		{ SCEN("{\"latency\":{\"speed\":1}}"),
		  "$.scenarios.latency.speed: unknown parameter" },
		{ SCEN("{\"latency\":{\"prompt_tokens\":[32,0]}}"),
		  "$.scenarios.latency.prompt_tokens[1]: must be an integer "
		  "from 1 to 1000000" },
		{ SCEN("{\"latency\":{\"prompt_tokens\":[]}}"),
		  "$.scenarios.latency.prompt_tokens: must be a non-empty "
		  "array of at most 64 integers" },
		{ SCEN("{\"latency\":{\"max_tokens\":1000001}}"),
		  "$.scenarios.latency.max_tokens: must be an integer from 1 "
		  "to 1000000" },
		{ SCEN("{\"latency\":{\"max_tokens\":\"x\"}}"),
		  "$.scenarios.latency.max_tokens: must be an integer from 1 "
		  "to 1000000 or an array of them" },
		{ SCEN("{\"latency\":{\"temperature\":-1}}"),
		  "$.scenarios.latency.temperature: must be a number from 0 "
		  "to 10" },
		{ SCEN("{\"throughput\":{\"concurrency\":[1,1025]}}"),
		  "$.scenarios.throughput.concurrency[1]: must be an integer "
		  "from 1 to 1024" },
		{ SCEN("{\"throughput\":{\"repetitions\":3}}"),
		  "$.scenarios.throughput.repetitions: unknown parameter" },
		{ SCEN("{\"stress\":{\"load_fraction\":0}}"),
		  "$.scenarios.stress.load_fraction: must be a number greater "
		  "than 0 and at most 1" },
		{ SCEN("{\"stress\":{\"load_fraction\":1.01}}"),
		  "$.scenarios.stress.load_fraction: must be a number greater "
		  "than 0 and at most 1" },
		{ SCEN("{\"stress\":{\"duration_s\":604801}}"),
		  "$.scenarios.stress.duration_s: must be an integer from 1 "
		  "to 604800" },
		{ SCEN("{\"endurance\":{\"concurrency\":[1]}}"),
		  "$.scenarios.endurance.concurrency: must be an integer from "
		  "1 to 1024" },
		{ SCEN("{\"endurance\":{\"sample_hz\":0}}"),
		  "$.scenarios.endurance.sample_hz: must be an integer from 1 "
		  "to 1000" },
		{ SCEN("{\"memory_leak\":{\"warmup_fraction\":1}}"),
		  "$.scenarios.memory_leak.warmup_fraction: must be a number "
		  "at least 0 and less than 1" },
		{ SCEN("{\"accuracy\":{\"repetitions\":1}}"),
		  "$.scenarios.accuracy.repetitions: unknown parameter" },
		{ "{" EXEC "," METRIC ",\"scenarios\":{\"accuracy\":{}}}",
		  "$.scenarios.accuracy: only the jsonl adapter supports this "
		  "scenario" },
		{ "{" EXEC "}", "$.metrics: is required for the exec adapter" },
		{ "{" EXEC ",\"metrics\":{}}",
		  "$.metrics: must hold 1 to 64 metrics" },
		{ "{" JSONL "," METRIC "}", "$.metrics: only the exec adapter "
		  "reads metrics; a jsonl engine reports its own" },
		{ TPS("{\"regex\":\"tok/s: [0-9.]+\",\"unit\":\"tok/s\","
		  "\"direction\":\"higher\"}"),
		  "$.metrics.tps.regex: must have a group, such as ([0-9.]+), "
		  "that captures the number" },
		{ TPS("{\"regex\":\"\",\"unit\":\"s\","
		  "\"direction\":\"lower\"}"),
		  "$.metrics.tps.regex: must not be empty" },
		{ TPS("{\"regex\":\"(a)\\\\1\",\"unit\":\"s\","
		  "\"direction\":\"lower\"}"),
		  "$.metrics.tps.regex: must not use back-references" },
		{ TPS("{\"regex\":\"((a{255}){255}){255}\",\"unit\":\"s\","
		  "\"direction\":\"lower\"}"),
		  "$.metrics.tps.regex: repeats too much" },
		{ TPS("{\"regex\":\"(a{,99999})\",\"unit\":\"s\","
		  "\"direction\":\"lower\"}"),
		  "$.metrics.tps.regex: repeats too much" },
		{ TPS("{\"regex\":\"(((((((((((((((a)+)+)+)+)+)+)+)+)+)+)+)+)"
		  "+)+)+\",\"unit\":\"s\",\"direction\":\"lower\"}"),
		  "$.metrics.tps.regex: repeats too much" },
		{ TPS("{\"regex\":\"(a+*+*+*+*+*+*+*+*+*+*+*+*)\","
		  "\"unit\":\"s\",\"direction\":\"lower\"}"),
		  "$.metrics.tps.regex: must not repeat a repetition, as in "
		  "a+*" },
		{ TPS("{\"regex\":\"(((((((((((((((((((((((((((((((((a)))))"
		  "))))))))))))))))))))))))))))\",\"unit\":\"s\","
		  "\"direction\":\"lower\"}"),
		  "$.metrics.tps.regex: nests groups too deep" },
		{ TPS("{\"regex\":\"(x)\",\"direction\":\"higher\"}"),
		  "$.metrics.tps.unit: is required" },
		{ TPS("{\"regex\":\"(x)\",\"unit\":\"s\","
		  "\"direction\":\"up\"}"),
		  "$.metrics.tps.direction: must be \"lower\" or \"higher\"" },
		{ TPS("{\"regex\":\"(x)\",\"unit\":\"s\",\"direction\":\"up\","
		  "\"group\":1}"),
		  "$.metrics.tps.group: unknown field" },
		{ TPS("\"(x)\""), "$.metrics.tps: must be an object" },
		{ "{" EXEC ",\"metrics\":{\"tok s\":{}}}",
		  "$.metrics.tok s: a metric name holds 1 to 128 letters, "
		  "digits, '_', '.' and '-'" },
		{ "[]", "$: must be a JSON object" },
	};
	struct manifest *m;
	char err[512];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < BL_ARRAY_LEN(cases); i++) {
		m = (struct manifest *)1;
		err[0] = '\0';
		rc = manifest_parse(&m, cases[i].text, strlen(cases[i].text),
		    err, sizeof(err));
		if (rc != BL_EINVAL || strcmp(err, cases[i].err) != 0)
			print_error("case %zu: %s\n", i, cases[i].text);
		assert_int_equal(rc, BL_EINVAL);
		assert_null(m);
		assert_string_equal(err, cases[i].err);
	}
}

static void
test_bad_regex(void **state)
{
	static const char text[] = "{" EXEC ",\"metrics\":{\"tps\":{"
	    "\"regex\":\"tok/s: ([0-9.]+\",\"unit\":\"tok/s\","
	    "\"direction\":\"higher\"}}}";
	struct manifest *m;
	char err[512], want[512], msg[256];
	regex_t rx;
	int rc;

	(void)state;
	rc = regcomp(&rx, "tok/s: ([0-9.]+", REG_EXTENDED);
	assert_int_not_equal(rc, 0);
	regerror(rc, &rx, msg, sizeof(msg));
	snprintf(want, sizeof(want), "$.metrics.tps.regex: does not compile: "
	    "%s", msg);
	assert_int_equal(manifest_parse(&m, text, strlen(text), err,
	    sizeof(err)), BL_EINVAL);
	assert_string_equal(err, want);
	/* Bracket expressions and intervals that are fine. */
	manifest_free(parse_ok("{" EXEC ",\"metrics\":{\"tps\":{"
	    "\"regex\":\"^[[:space:]]*([0-9]{1,12}(\\\\.[0-9]{0,9})?)[])(]\","
	    "\"unit\":\"tok/s\",\"direction\":\"higher\"}}}"));
}

static void
test_malformed(void **state)
{
	static const char trunc[] = "{\n  \"build\": \"make\",\n"
	    "  \"adapter\": ";
	static const char dup[] = "{\"build\":\"a\",\"build\":\"b\"}";
	struct manifest *m;
	char err[512], *big;
	size_t n = 1024 * 1024 + 1;

	(void)state;
	assert_int_equal(manifest_parse(&m, trunc, strlen(trunc), err,
	    sizeof(err)), BL_EINVAL);
	assert_null(m);
	assert_non_null(strstr(err, "malformed JSON at line 3 column "));
	assert_int_equal(manifest_parse(&m, dup, strlen(dup), err,
	    sizeof(err)), BL_EINVAL);
	assert_string_equal(err, "malformed JSON at line 1 column 20: "
	    "duplicate object key near '\"build\"'");
	assert_int_equal(manifest_parse(&m, "", 0, err, sizeof(err)),
	    BL_EINVAL);
	assert_non_null(strstr(err, "malformed JSON at line 1 column 0: "));
	/* Too big, even though it is whitespace around a valid manifest. */
	big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "{" JSONL "}", strlen("{" JSONL "}"));
	assert_int_equal(manifest_parse(&m, big, n, err, sizeof(err)),
	    BL_EINVAL);
	assert_string_equal(err, "manifest is larger than 1048576 bytes");
	manifest_free(parse_ok("{" JSONL "}    \n"));
	free(big);
	/* Messages are printable ASCII, whatever bytes the input holds. */
	assert_int_equal(manifest_parse(&m, "{\"a\": \xc3\xa9}", 9, err,
	    sizeof(err)), BL_EINVAL);
	assert_string_equal(err, "malformed JSON at line 1 column 7: invalid "
	    "token near '?" "?'");
	assert_int_equal(manifest_parse(&m, SCEN("{\"lat\u00e9\\n\":{}}"),
	    strlen(SCEN("{\"lat\u00e9\\n\":{}}")), err, sizeof(err)),
	    BL_EINVAL);
	assert_string_equal(err, "$.scenarios.lat???: unknown scenario");
	/* A short err buffer truncates, never overflows. */
	assert_int_equal(manifest_parse(&m, "[]", 2, err, 5), BL_EINVAL);
	assert_string_equal(err, "$: m");
}

static void
test_load(void **state)
{
	static const char text[] = "{" JSONL ",\"scenarios\":"
	    "{\"latency\":{\"repetitions\":7}}}";
	char path[] = "/tmp/benchline-manifest-XXXXXX", err[512];
	struct manifest *m;
	json_t *p;
	FILE *f;
	int fd;

	(void)state;
	m = (struct manifest *)1;
	assert_int_equal(manifest_load(&m, "/nonexistent/benchline.json", err,
	    sizeof(err)), BL_ENOTFOUND);
	assert_null(m);
	assert_string_equal(err, "cannot open '/nonexistent/benchline.json': "
	    "No such file or directory");
	assert_int_equal(manifest_load(&m, "/tmp", err, sizeof(err)),
	    BL_EINVAL);
	assert_string_equal(err, "cannot read '/tmp': not a regular file");

	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(manifest_load(&m, path, err, sizeof(err)), 0);
	p = scenario_ok(m, "latency", NULL);
	assert_json(json_object_get(p, "repetitions"), "7");
	json_decref(p);
	manifest_free(m);
	/* Errors of the text come through unchanged. */
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs("{\"build\":1}", f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(manifest_load(&m, path, err, sizeof(err)), BL_EINVAL);
	assert_string_equal(err, "$.build: must be a string");
	unlink(path);
}

/* The manifests committed in the repository parse (run from its top). */
static void
test_committed(void **state)
{
	static const char *const paths[] = {
		"configs/benchline.json.example",
		"examples/tinyllm/benchline.json",
	};
	struct manifest *m;
	char err[512];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < BL_ARRAY_LEN(paths); i++) {
		rc = manifest_load(&m, paths[i], err, sizeof(err));
		if (rc == BL_ENOTFOUND)
			continue;
		if (rc != 0)
			print_error("%s: %s\n", paths[i], err);
		assert_int_equal(rc, 0);
		assert_true(m->nscenarios > 0);
		manifest_free(m);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_instructions),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_job_errors),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_bad_regex),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_committed),
	};

	return cmocka_run_group_tests_name("manifest", tests, NULL, NULL);
}
