/* The engine manifest: parsing benchline.json and scenario settings. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonx.h"
#include "worker.h"
#include "xmalloc.h"

/*
 * Rules that hold everywhere in a manifest (configs/benchline.json.example
 * shows them):
 * - A key that starts with '_' is a comment and is ignored, in every object
 *   (top level, "metrics", each metric, "scenarios", each scenario) and in
 *   a job's params.<scenario> object.  Any other unknown key is an error.
 * - A null member counts as absent, as in jsonx.c; a null scenario
 *   parameter keeps the value below it (default or manifest).
 * - The parameters of a scenario always come out complete and normalized:
 *   list parameters are arrays even when given one integer, and fractions
 *   and the temperature are JSON reals.
 * - Error messages name the JSON path and are printable ASCII (other bytes
 *   become '?'), so they can be logged and sent to the server as is.
 */

#define MANIFEST_MAX	(1024 * 1024)	/* bytes of benchline.json */
#define MAX_STRING	4096		/* build command, one argv element */
#define MAX_ARGS	256		/* argv elements */
#define MAX_METRICS	64
#define MAX_NAME	128		/* a metric name, as server/ingest.c */
#define MAX_UNIT	32		/* as the server's ingest.c */
#define MAX_REGEX	1024
#define MAX_REGEX_COST	10000		/* characters once {m,n} are expanded */
#define MAX_REGEX_DEPTH	32		/* nested groups */
#define MAX_LIST	64		/* elements of an array parameter */
#define MAX_TIMEOUT	86400
#define MAX_TOKENS	1000000
#define MAX_DURATION	(7 * 86400)
#define MAX_CONCURRENCY	1024

/*
 * A scenario parameter.  PARAM_INTS is a list of integers; a single integer
 * given for it is normalized to a one-element array.  PARAM_REAL is always
 * stored as a JSON real.
 */
enum param_type { PARAM_INT, PARAM_INTS, PARAM_REAL };

struct param_def {
	const char	*name;
	enum param_type	 type;
	const char	*def;		/* the default, as JSON text */
	int64_t		 min, max;	/* PARAM_INT, PARAM_INTS */
	double		 lo, hi;	/* PARAM_REAL */
	int		 lo_open;	/* lo itself is refused */
	int		 hi_open;	/* hi itself is refused */
};

#define P_INT(n, d, a, b) \
	{ .name = (n), .type = PARAM_INT, .def = (d), .min = (a), .max = (b) }
#define P_INTS(n, d, a, b) \
	{ .name = (n), .type = PARAM_INTS, .def = (d), .min = (a), .max = (b) }
#define P_REAL(n, d, a, ao, b, bo) \
	{ .name = (n), .type = PARAM_REAL, .def = (d), .lo = (a), \
	  .lo_open = (ao), .hi = (b), .hi_open = (bo) }
#define P_END	{ .name = NULL }

/* The defaults are those of the engine benchmarking plan. */
static const struct param_def common_params[] = {
	P_INT("sample_hz", "10", 1, 1000),
	P_REAL("temperature", "0", 0, 0, 10, 0),
	P_END
};
static const struct param_def latency_params[] = {
	P_INTS("prompt_tokens", "[32, 128, 512]", 1, MAX_TOKENS),
	P_INTS("max_tokens", "[32, 128]", 1, MAX_TOKENS),
	P_INT("repetitions", "100", 1, 100000),
	P_INT("warmup", "3", 0, 100000),
	P_REAL("warmup_s", "2", 0, 0, 3600, 0),
	P_END
};
static const struct param_def throughput_params[] = {
	P_INTS("concurrency", "[1, 5, 10, 20]", 1, MAX_CONCURRENCY),
	P_INT("requests", "20", 1, 100000),
	P_INT("prompt_tokens", "128", 1, MAX_TOKENS),
	P_INT("max_tokens", "64", 1, MAX_TOKENS),
	P_REAL("warmup_s", "2", 0, 0, 3600, 0),
	P_END
};
static const struct param_def stress_params[] = {
	P_INT("duration_s", "300", 1, MAX_DURATION),
	P_REAL("load_fraction", "0.8", 0, 1, 1, 0),
	P_INT("spike_s", "10", 1, MAX_DURATION),
	P_INT("max_concurrency", "20", 1, MAX_CONCURRENCY),
	P_INT("prompt_tokens", "128", 1, MAX_TOKENS),
	P_INT("max_tokens", "64", 1, MAX_TOKENS),
	P_END
};
static const struct param_def endurance_params[] = {
	P_INT("duration_s", "86400", 1, MAX_DURATION),
	P_INT("concurrency", "1", 1, MAX_CONCURRENCY),
	P_INT("window_s", "60", 1, 86400),
	P_INT("prompt_tokens", "128", 1, MAX_TOKENS),
	P_INT("max_tokens", "64", 1, MAX_TOKENS),
	P_END
};
static const struct param_def memory_leak_params[] = {
	P_INT("requests", "1000", 1, 1000000),
	P_REAL("warmup_fraction", "0.1", 0, 0, 1, 1),
	P_INT("prompt_tokens", "64", 1, MAX_TOKENS),
	P_INT("max_tokens", "32", 1, MAX_TOKENS),
	P_END
};
/* Small and fixed: every request is counted, under valgrind (~50x slower). */
static const struct param_def instructions_params[] = {
	P_INT("requests", "3", 1, 1000),
	P_INT("warmup", "1", 0, 1000),
	P_INT("prompt_tokens", "32", 1, MAX_TOKENS),
	P_INT("max_tokens", "16", 1, MAX_TOKENS),
	P_END
};
static const struct param_def no_params[] = {
	P_END
};

struct scenario_def {
	const char		*name;
	const struct param_def	*params;	/* besides common_params */
	int			 jsonl_only;
	int			 named_only;	/* not in the default set: name it */
};

/* Every scenario the worker knows, in the order of manifest->scenarios. */
static const struct scenario_def scenario_defs[] = {
	{ "latency", latency_params, 0, 0 },
	{ "throughput", throughput_params, 0, 0 },
	{ "stress", stress_params, 0, 0 },
	{ "endurance", endurance_params, 0, 0 },
	{ "memory_leak", memory_leak_params, 0, 0 },
	{ "accuracy", no_params, 1, 0 },
	/*
	 * Opt-in: under valgrind a big model runs ~50x slower.  The exec
	 * adapter's process per request would count its start-up too.
	 */
	{ "instructions", instructions_params, 1, 1 },
};

/* Copies s into buf for quoting in an error message: at most 64 bytes. */
static const char *
shown(char *buf, size_t len, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < 64 && i + 4 < len; i++)
		buf[i] = s[i];
	if (s[i] != '\0' && i + 3 < len) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

/*
 * Makes the error message printable ASCII: it quotes keys and, through
 * jansson, bytes of a file from outside, and callers log it and send it
 * to the server in JSON, which wants valid UTF-8.
 */
static void
err_clean(char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < errlen && err[i] != '\0'; i++)
		if ((unsigned char)err[i] < 0x20 || (unsigned char)err[i] > 0x7e)
			err[i] = '?';
}

/* Keys that start with '_' are comments, wherever they appear. */
static int
is_comment(const char *key)
{
	return key[0] == '_';
}

/*
 * Refuses members of obj that are not in allowed, as jsonx_only() does,
 * but lets comment keys through.
 */
static int
check_fields(json_t *obj, const char *const *allowed, const char *path,
    char *err, size_t errlen)
{
	const char *key;
	char kbuf[80];
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v) {
		if (is_comment(key))
			continue;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			snprintf(err, errlen, "%s.%s: unknown field", path,
			    shown(kbuf, sizeof(kbuf), key));
			return BL_EINVAL;
		}
	}
	return 0;
}

static const struct scenario_def *
scenario_def_find(const char *name)
{
	size_t i;

	for (i = 0; i < BL_ARRAY_LEN(scenario_defs); i++)
		if (strcmp(scenario_defs[i].name, name) == 0)
			return &scenario_defs[i];
	return NULL;
}

static const struct param_def *
param_def_find(const struct scenario_def *sd, const char *name)
{
	const struct param_def *p;

	for (p = sd->params; p->name != NULL; p++)
		if (strcmp(p->name, name) == 0)
			return p;
	for (p = common_params; p->name != NULL; p++)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static int
int_in_range(json_t *v, const struct param_def *p)
{
	return json_is_integer(v) && json_integer_value(v) >= p->min &&
	    json_integer_value(v) <= p->max;
}

/* Says which numbers p->lo..p->hi accepts, for an error message. */
static void
real_range_error(const struct param_def *p, const char *path, char *err,
    size_t errlen)
{
	if (!p->lo_open && !p->hi_open)
		snprintf(err, errlen, "%s: must be a number from %g to %g",
		    path, p->lo, p->hi);
	else
		snprintf(err, errlen, "%s: must be a number %s %g and %s %g",
		    path, p->lo_open ? "greater than" : "at least", p->lo,
		    p->hi_open ? "less than" : "at most", p->hi);
}

static int
int_error(const struct param_def *p, const char *path, const char *also,
    char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: must be an integer from %lld to %lld%s",
	    path, (long long)p->min, (long long)p->max, also);
	return BL_EINVAL;
}

/*
 * Checks the value v of parameter p, whose JSON path is path, and returns
 * its normalized form as a new reference in *out.
 */
static int
param_check(json_t **out, const struct param_def *p, json_t *v,
    const char *path, char *err, size_t errlen)
{
	char epath[300];
	json_t *e;
	double d;
	size_t i;

	*out = NULL;
	switch (p->type) {
	case PARAM_INT:
		if (!int_in_range(v, p))
			return int_error(p, path, "", err, errlen);
		*out = json_integer(json_integer_value(v));
		break;
	case PARAM_INTS:
		if (json_is_integer(v)) {
			if (!int_in_range(v, p))
				return int_error(p, path, "", err, errlen);
			*out = json_pack("[I]", json_integer_value(v));
			break;
		}
		if (!json_is_array(v))
			return int_error(p, path, " or an array of them", err,
			    errlen);
		if (json_array_size(v) == 0 || json_array_size(v) > MAX_LIST) {
			snprintf(err, errlen, "%s: must be a non-empty array "
			    "of at most %d integers", path, MAX_LIST);
			return BL_EINVAL;
		}
		json_array_foreach(v, i, e) {
			if (!int_in_range(e, p)) {
				snprintf(epath, sizeof(epath), "%s[%zu]", path,
				    i);
				return int_error(p, epath, "", err, errlen);
			}
		}
		*out = json_deep_copy(v);
		break;
	case PARAM_REAL:
		d = json_is_number(v) ? json_number_value(v) : NAN;
		if (!isfinite(d) || d < p->lo || d > p->hi ||
		    (p->lo_open && d == p->lo) || (p->hi_open && d == p->hi)) {
			real_range_error(p, path, err, errlen);
			return BL_EINVAL;
		}
		*out = json_real(d);
		break;
	}
	return *out != NULL ? 0 : BL_ERROR;
}

/* Stores the checked value v of parameter p in params. */
static int
param_set(json_t *params, const struct param_def *p, json_t *v,
    const char *path, char *err, size_t errlen)
{
	json_t *norm;
	int rc;

	if ((rc = param_check(&norm, p, v, path, err, errlen)) < 0) {
		if (rc == BL_ERROR)
			snprintf(err, errlen, "%s: out of memory", path);
		return rc;
	}
	if (json_object_set_new(params, p->name, norm) < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		return BL_ERROR;
	}
	return 0;
}

/*
 * Lays the parameter overrides of obj, found at path, over params.  A null
 * value leaves the parameter as it was; comment keys are skipped.
 */
static int
scenario_apply(json_t *params, const struct scenario_def *sd, json_t *obj,
    const char *path, char *err, size_t errlen)
{
	const struct param_def *p;
	const char *key;
	char kbuf[80], ppath[256];
	json_t *v;
	int rc;

	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: must be an object", path);
		return BL_EINVAL;
	}
	json_object_foreach(obj, key, v) {
		if (is_comment(key))
			continue;
		if ((p = param_def_find(sd, key)) == NULL) {
			snprintf(err, errlen, "%s.%s: unknown parameter", path,
			    shown(kbuf, sizeof(kbuf), key));
			return BL_EINVAL;
		}
		if (json_is_null(v))
			continue;
		snprintf(ppath, sizeof(ppath), "%s.%s", path, p->name);
		if ((rc = param_set(params, p, v, ppath, err, errlen)) < 0)
			return rc;
	}
	return 0;
}

/* Fills params with the defaults of every parameter of sd. */
static int
scenario_defaults(json_t *params, const struct scenario_def *sd, char *err,
    size_t errlen)
{
	const struct param_def *lists[2] = { sd->params, common_params };
	const struct param_def *p;
	char path[256];
	json_t *v;
	size_t i;
	int rc;

	for (i = 0; i < BL_ARRAY_LEN(lists); i++) {
		for (p = lists[i]; p->name != NULL; p++) {
			snprintf(path, sizeof(path), "default of %s.%s",
			    sd->name, p->name);
			if ((v = json_loads(p->def, JSON_DECODE_ANY, NULL)) ==
			    NULL) {
				snprintf(err, errlen, "%s: cannot parse '%s'",
				    path, p->def);
				return BL_ERROR;
			}
			rc = param_set(params, p, v, path, err, errlen);
			json_decref(v);
			if (rc < 0)
				return BL_ERROR;
		}
	}
	return 0;
}

/*
 * Makes sc the settings of scenario sd: the defaults, then the manifest's
 * object obj (NULL for none) found at path.
 */
static int
scenario_build(struct scenario_conf *sc, const struct scenario_def *sd,
    json_t *obj, const char *path, char *err, size_t errlen)
{
	int rc;

	sc->name = xstrdup(sd->name);
	if ((sc->params = json_object()) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return BL_ERROR;
	}
	if ((rc = scenario_defaults(sc->params, sd, err, errlen)) < 0)
		return rc;
	if (obj != NULL &&
	    (rc = scenario_apply(sc->params, sd, obj, path, err, errlen)) < 0)
		return rc;
	return 0;
}

/*
 * Reads "scenarios": the scenarios the engine supports, in the order of
 * scenario_defs.  Without the key, every scenario the adapter can run is
 * supported with its defaults.
 */
static int
parse_scenarios(struct manifest *m, json_t *root, char *err, size_t errlen)
{
	const struct scenario_def *sd;
	json_t *scen = NULL, *obj;
	const char *key;
	char kbuf[80], path[256];
	size_t i, n = 0;
	json_t *v;
	int rc;

	if ((rc = jsonx_object(&scen, root, "scenarios", 0, "$", err,
	    errlen)) < 0)
		return rc;
	if (scen != NULL) {
		json_object_foreach(scen, key, v) {
			if (is_comment(key))
				continue;
			if ((sd = scenario_def_find(key)) == NULL) {
				snprintf(err, errlen, "$.scenarios.%s: unknown "
				    "scenario", shown(kbuf, sizeof(kbuf), key));
				return BL_EINVAL;
			}
			if (sd->jsonl_only && m->adapter != ADAPTER_JSONL) {
				snprintf(err, errlen, "$.scenarios.%s: only "
				    "the jsonl adapter supports this scenario",
				    key);
				return BL_EINVAL;
			}
			n++;
		}
		if (n == 0) {
			snprintf(err, errlen, "$.scenarios: must name at least "
			    "one scenario");
			return BL_EINVAL;
		}
	}
	m->scenarios = xcalloc(BL_ARRAY_LEN(scenario_defs),
	    sizeof(*m->scenarios));
	for (i = 0; i < BL_ARRAY_LEN(scenario_defs); i++) {
		sd = &scenario_defs[i];
		obj = NULL;
		if (scen != NULL) {
			if ((obj = json_object_get(scen, sd->name)) == NULL)
				continue;
		} else if ((sd->jsonl_only && m->adapter != ADAPTER_JSONL) ||
		    sd->named_only)
			continue;
		snprintf(path, sizeof(path), "$.scenarios.%s", sd->name);
		rc = scenario_build(&m->scenarios[m->nscenarios++], sd, obj,
		    path, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Reads one decimal bound of an interval expression; saturates. */
static size_t
regex_bound(const char **sp)
{
	const char *s = *sp;
	size_t n = 0;

	while (*s >= '0' && *s <= '9') {
		if (n < MAX_REGEX_COST + 1)
			n = n * 10 + (size_t)(*s - '0');
		s++;
	}
	*sp = s;
	return n;
}

static size_t
cost_mul(size_t a, size_t b)
{
	if (a != 0 && b > (MAX_REGEX_COST + 1) / a)
		return MAX_REGEX_COST + 1;
	return a * b;
}

static size_t
cost_add(size_t a, size_t b)
{
	return a + b > MAX_REGEX_COST + 1 ? MAX_REGEX_COST + 1 : a + b;
}

/* Returns the ']' that ends the bracket expression at s, or its last byte. */
static const char *
bracket_end(const char *s)
{
	const char *q = s + 1;
	char end;

	if (*q == '^')
		q++;
	if (*q == ']')
		q++;
	while (*q != '\0' && *q != ']') {
		if (*q == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
			/* [:alpha:], [.a.] and [=a=] may hold a ']'. */
			end = q[1];
			q += 2;
			while (*q != '\0' && !(q[0] == end && q[1] == ']'))
				q++;
			if (*q != '\0')
				q++;
		}
		if (*q != '\0')
			q++;
	}
	return *q == '\0' ? q - 1 : q;
}

/*
 * Refuses what makes glibc's regcomp() or regexec() blow up, found by
 * fuzzing: intervals and '+' nested so that the expanded expression is
 * huge (regcomp copies the operand of {m,n} n times, so
 * ((a{255}){255}){255} takes seconds and gigabytes), repetitions stacked
 * without a group (a+*+*+*+*+*+*+*+*+*+*+*+* takes seconds; POSIX leaves
 * them undefined anyway), groups nested too deep, and back-references,
 * which make matching exponential.  The sizes are an estimate from a light
 * scan; regcomp() still decides what is valid.
 */
static const char *
regex_too_costly(const char *re)
{
	size_t sum[MAX_REGEX_DEPTH + 1];	/* a group's finished atoms */
	size_t last[MAX_REGEX_DEPTH + 1];	/* its last atom */
	size_t depth = 0, atom, mul, lo, hi;
	const char *s, *q;
	int rep = 0;

	sum[0] = last[0] = 0;
	for (s = re; *s != '\0'; s++) {
		atom = mul = 0;
		switch (*s) {
		case '\\':
			if (s[1] >= '1' && s[1] <= '9')
				return "must not use back-references";
			if (s[1] != '\0')
				s++;
			atom = 1;
			break;
		case '[':
			s = bracket_end(s);
			atom = 1;
			break;
		case '(':
			if (depth == MAX_REGEX_DEPTH)
				return "nests groups too deep";
			depth++;
			sum[depth] = last[depth] = 0;
			break;
		case ')':
			if (depth == 0) {
				atom = 1;
				break;
			}
			atom = cost_add(cost_add(sum[depth], last[depth]), 1);
			depth--;
			break;
		case '|':
			sum[depth] = cost_add(sum[depth], last[depth]);
			last[depth] = 0;
			break;
		case '*':
		case '?':
			mul = 1;
			break;
		case '+':
			mul = 2;	/* glibc makes x+ into xx* */
			break;
		case '{':
			/* {m}, {m,}, {m,n} and glibc's {,n}. */
			q = s + 1;
			lo = hi = regex_bound(&q);
			if (*q == ',') {
				q++;
				hi = *q >= '0' && *q <= '9' ?
				    regex_bound(&q) : cost_add(lo, 1);
			}
			if (*q == '}' && q > s + 1) {
				s = q;
				mul = hi > lo ? hi : lo > 0 ? lo : 1;
			} else
				atom = 1;
			break;
		default:
			atom = 1;
			break;
		}
		if (mul != 0) {
			if (rep)
				return "must not repeat a repetition, as in "
				    "a+*";
			last[depth] = cost_mul(last[depth], mul);
		} else if (atom != 0) {
			sum[depth] = cost_add(sum[depth], last[depth]);
			last[depth] = atom;
		}
		rep = mul != 0;
		if (cost_add(sum[depth], last[depth]) > MAX_REGEX_COST)
			return "repeats too much";
	}
	return NULL;
}

/*
 * Checks that re compiles as a POSIX extended regular expression with at
 * least one group, whose match is the number.
 */
static int
regex_check(const char *re, const char *path, char *err, size_t errlen)
{
	const char *why;
	char msg[256];
	regex_t rx;
	int rc;

	if ((why = regex_too_costly(re)) != NULL) {
		snprintf(err, errlen, "%s: %s", path, why);
		return BL_EINVAL;
	}
	if ((rc = regcomp(&rx, re, REG_EXTENDED)) != 0) {
		regerror(rc, &rx, msg, sizeof(msg));
		snprintf(err, errlen, "%s: does not compile: %s", path, msg);
		return BL_EINVAL;
	}
	rc = rx.re_nsub >= 1 ? 0 : BL_EINVAL;
	regfree(&rx);
	if (rc < 0)
		snprintf(err, errlen, "%s: must have a group, such as "
		    "([0-9.]+), that captures the number", path);
	return rc;
}

static int
metric_name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > MAX_NAME)
		return 0;
	for (i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') &&
		    !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') &&
		    strchr("_.-", s[i]) == NULL)
			return 0;
	return 1;
}

/* Reads one entry of "metrics", an object at path, into em. */
static int
parse_metric(struct exec_metric *em, const char *name, json_t *obj,
    const char *path, char *err, size_t errlen)
{
	static const char *const fields[] = {
		"regex", "unit", "direction", NULL
	};
	const char *re = NULL, *unit = NULL, *dir = NULL;
	char rpath[320];
	int rc;

	em->name = xstrdup(name);
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: must be an object", path);
		return BL_EINVAL;
	}
	if ((rc = check_fields(obj, fields, path, err, errlen)) < 0 ||
	    (rc = jsonx_string(&re, obj, "regex", 1, MAX_REGEX, path, err,
	    errlen)) < 0 ||
	    (rc = jsonx_string(&unit, obj, "unit", 1, MAX_UNIT, path, err,
	    errlen)) < 0 ||
	    (rc = jsonx_string(&dir, obj, "direction", 1, 16, path, err,
	    errlen)) < 0)
		return rc;
	snprintf(rpath, sizeof(rpath), "%s.regex", path);
	if (re[0] == '\0') {
		snprintf(err, errlen, "%s: must not be empty", rpath);
		return BL_EINVAL;
	}
	if ((rc = regex_check(re, rpath, err, errlen)) < 0)
		return rc;
	if (strcmp(dir, "higher") == 0)
		em->higher = 1;
	else if (strcmp(dir, "lower") == 0)
		em->higher = 0;
	else {
		snprintf(err, errlen, "%s.direction: must be \"lower\" or "
		    "\"higher\"", path);
		return BL_EINVAL;
	}
	em->regex = xstrdup(re);
	em->unit = xstrdup(unit);
	return 0;
}

/* Reads "metrics": required by the exec adapter, refused by jsonl. */
static int
parse_metrics(struct manifest *m, json_t *root, char *err, size_t errlen)
{
	json_t *metrics = NULL, *v;
	const char *key;
	char kbuf[80], path[256];
	size_t n = 0;
	int rc;

	if ((rc = jsonx_object(&metrics, root, "metrics", 0, "$", err,
	    errlen)) < 0)
		return rc;
	if (m->adapter == ADAPTER_JSONL) {
		if (metrics != NULL) {
			snprintf(err, errlen, "$.metrics: only the exec "
			    "adapter reads metrics; a jsonl engine reports its "
			    "own");
			return BL_EINVAL;
		}
		return 0;
	}
	if (metrics == NULL) {
		snprintf(err, errlen, "$.metrics: is required for the exec "
		    "adapter");
		return BL_EINVAL;
	}
	json_object_foreach(metrics, key, v)
		if (!is_comment(key))
			n++;
	if (n == 0 || n > MAX_METRICS) {
		snprintf(err, errlen, "$.metrics: must hold 1 to %d metrics",
		    MAX_METRICS);
		return BL_EINVAL;
	}
	m->metrics = xcalloc(n, sizeof(*m->metrics));
	json_object_foreach(metrics, key, v) {
		if (is_comment(key))
			continue;
		if (!metric_name_valid(key)) {
			snprintf(err, errlen, "$.metrics.%s: a metric name "
			    "holds 1 to %d letters, digits, '_', '.' and '-'",
			    shown(kbuf, sizeof(kbuf), key), MAX_NAME);
			return BL_EINVAL;
		}
		snprintf(path, sizeof(path), "$.metrics.%s", key);
		if ((rc = parse_metric(&m->metrics[m->nmetrics++], key, v, path,
		    err, errlen)) < 0)
			return rc;
	}
	return 0;
}

/* Reads "command", the engine's argv, into a NULL-terminated vector. */
static int
parse_command(struct manifest *m, json_t *root, char *err, size_t errlen)
{
	json_t *cmd, *e;
	size_t i, n;

	cmd = json_object_get(root, "command");
	if (cmd == NULL || json_is_null(cmd)) {
		snprintf(err, errlen, "$.command: is required");
		return BL_EINVAL;
	}
	if (!json_is_array(cmd) || json_array_size(cmd) == 0) {
		snprintf(err, errlen, "$.command: must be a non-empty array of "
		    "strings");
		return BL_EINVAL;
	}
	if ((n = json_array_size(cmd)) > MAX_ARGS) {
		snprintf(err, errlen, "$.command: more than %d elements",
		    MAX_ARGS);
		return BL_EINVAL;
	}
	json_array_foreach(cmd, i, e) {
		if (!json_is_string(e)) {
			snprintf(err, errlen, "$.command[%zu]: must be a "
			    "string", i);
			return BL_EINVAL;
		}
		if (json_string_length(e) > MAX_STRING) {
			snprintf(err, errlen, "$.command[%zu]: longer than %d "
			    "bytes", i, MAX_STRING);
			return BL_EINVAL;
		}
		if (strlen(json_string_value(e)) != json_string_length(e)) {
			snprintf(err, errlen, "$.command[%zu]: contains a NUL "
			    "character", i);
			return BL_EINVAL;
		}
	}
	if (json_string_length(json_array_get(cmd, 0)) == 0) {
		snprintf(err, errlen, "$.command[0]: the program must not be "
		    "empty");
		return BL_EINVAL;
	}
	m->command = xcalloc(n + 1, sizeof(*m->command));
	for (i = 0; i < n; i++)
		m->command[i] = xstrdup(json_string_value(json_array_get(cmd,
		    i)));
	m->ncommand = n;
	return 0;
}

/* Checks the members of root, a JSON object, and fills m. */
static int
manifest_fill(struct manifest *m, json_t *root, char *err, size_t errlen)
{
	static const char *const fields[] = {
		"build", "adapter", "command", "metrics", "build_timeout_s",
		"request_timeout_s", "scenarios", NULL
	};
	const char *build = NULL, *adapter = NULL;
	int rc;

	if ((rc = check_fields(root, fields, "$", err, errlen)) < 0 ||
	    (rc = jsonx_string(&build, root, "build", 1, MAX_STRING, "$", err,
	    errlen)) < 0)
		return rc;
	if (build[0] == '\0') {
		snprintf(err, errlen, "$.build: must not be empty");
		return BL_EINVAL;
	}
	m->build = xstrdup(build);
	if ((rc = jsonx_string(&adapter, root, "adapter", 1, 16, "$", err,
	    errlen)) < 0)
		return rc;
	if (strcmp(adapter, "jsonl") == 0)
		m->adapter = ADAPTER_JSONL;
	else if (strcmp(adapter, "exec") == 0)
		m->adapter = ADAPTER_EXEC;
	else {
		snprintf(err, errlen, "$.adapter: must be \"jsonl\" or "
		    "\"exec\"");
		return BL_EINVAL;
	}
	m->build_timeout_s = 1800;
	m->request_timeout_s = 120;
	if ((rc = parse_command(m, root, err, errlen)) < 0 ||
	    (rc = parse_metrics(m, root, err, errlen)) < 0 ||
	    (rc = jsonx_int(&m->build_timeout_s, root, "build_timeout_s", 0,
	    1, MAX_TIMEOUT, "$", err, errlen)) < 0 ||
	    (rc = jsonx_int(&m->request_timeout_s, root, "request_timeout_s",
	    0, 1, MAX_TIMEOUT, "$", err, errlen)) < 0 ||
	    (rc = parse_scenarios(m, root, err, errlen)) < 0)
		return rc;
	return 0;
}

int
manifest_parse(struct manifest **out, const char *text, size_t len,
    char *err, size_t errlen)
{
	struct manifest *m = NULL;
	json_error_t jerr;
	json_t *root = NULL;
	int rc = BL_EINVAL;

	*out = NULL;
	if (len > MANIFEST_MAX) {
		snprintf(err, errlen, "manifest is larger than %d bytes",
		    MANIFEST_MAX);
		goto out;
	}
	root = json_loadb(text != NULL ? text : "", len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "malformed JSON at line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "$: must be a JSON object");
		goto out;
	}
	m = xcalloc(1, sizeof(*m));
	if ((rc = manifest_fill(m, root, err, errlen)) < 0)
		goto out;
	*out = m;
	m = NULL;
out:
	if (rc < 0)
		err_clean(err, errlen);
	manifest_free(m);
	json_decref(root);
	return rc;
}

int
manifest_load(struct manifest **out, const char *path, char *err,
    size_t errlen)
{
	char chunk[8192];
	struct stat st;
	struct buf b;
	ssize_t n;
	int fd, rc;

	*out = NULL;
	buf_init(&b, MANIFEST_MAX);
	/* O_NONBLOCK: a FIFO must not block us before fstat() refuses it. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		rc = errno == ENOENT || errno == ENOTDIR ? BL_ENOTFOUND :
		    BL_ERROR;
		snprintf(err, errlen, "cannot open '%s': %s", path,
		    strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat '%s': %s", path,
		    strerror(errno));
		rc = BL_ERROR;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cannot read '%s': not a regular file",
		    path);
		rc = BL_EINVAL;
		goto out;
	}
	for (;;) {
		if ((n = read(fd, chunk, sizeof(chunk))) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "cannot read '%s': %s", path,
			    strerror(errno));
			rc = BL_ERROR;
			goto out;
		}
		if (n == 0)
			break;
		if (buf_add(&b, chunk, (size_t)n) < 0) {
			snprintf(err, errlen, "cannot read '%s': larger than "
			    "%d bytes", path, MANIFEST_MAX);
			rc = BL_EINVAL;
			goto out;
		}
	}
	rc = manifest_parse(out, b.ptr, b.len, err, errlen);
out:
	if (rc < 0)
		err_clean(err, errlen);
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	return rc;
}

int
manifest_scenario(json_t **out, const struct manifest *m, const char *name,
    json_t *job_params, char *err, size_t errlen)
{
	const struct scenario_conf *sc = NULL;
	const struct scenario_def *sd = NULL;
	json_t *params = NULL, *over = NULL;
	char nbuf[80], path[256];
	size_t i;
	int rc = BL_EINVAL;

	*out = NULL;
	for (i = 0; name != NULL && i < m->nscenarios; i++)
		if (strcmp(m->scenarios[i].name, name) == 0)
			sc = &m->scenarios[i];
	if (sc == NULL || (sd = scenario_def_find(sc->name)) == NULL) {
		snprintf(err, errlen, "scenario '%s' is not in the manifest",
		    name != NULL ? shown(nbuf, sizeof(nbuf), name) : "");
		rc = BL_ENOTFOUND;
		goto out;
	}
	if (job_params != NULL && !json_is_null(job_params)) {
		if (!json_is_object(job_params)) {
			snprintf(err, errlen, "$.params: must be an object");
			goto out;
		}
		over = json_object_get(job_params, sc->name);
		if (json_is_null(over))
			over = NULL;
	}
	if ((params = json_deep_copy(sc->params)) == NULL) {
		snprintf(err, errlen, "scenario '%s': out of memory", sc->name);
		rc = BL_ERROR;
		goto out;
	}
	snprintf(path, sizeof(path), "$.params.%s", sc->name);
	if (over != NULL &&
	    (rc = scenario_apply(params, sd, over, path, err, errlen)) < 0)
		goto out;
	*out = params;
	params = NULL;
	rc = 0;
out:
	if (rc < 0)
		err_clean(err, errlen);
	json_decref(params);
	return rc;
}

void
manifest_free(struct manifest *m)
{
	size_t i;

	if (m == NULL)
		return;
	free(m->build);
	for (i = 0; i < m->ncommand; i++)
		free(m->command[i]);
	free(m->command);
	for (i = 0; i < m->nmetrics; i++) {
		free(m->metrics[i].name);
		free(m->metrics[i].regex);
		free(m->metrics[i].unit);
	}
	free(m->metrics);
	for (i = 0; i < m->nscenarios; i++) {
		free(m->scenarios[i].name);
		json_decref(m->scenarios[i].params);
	}
	free(m->scenarios);
	free(m);
}
