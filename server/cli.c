/* benchline: the admin CLI; migrates the database and manages projects, targets, workers and jobs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "xmalloc.h"

#define MAX_OPTS 32

/* "--name value" pairs after the command words; a repeated name keeps every value. */
struct opts {
	const char	*name[MAX_OPTS];
	const char	*value[MAX_OPTS];
	int		 n;
	const char	*positional;
};

static void BL_NORETURN
usage(void)
{
	fprintf(stderr,
	    "usage: benchline [-c config] command\n"
	    "  migrate\n"
	    "  project create NAME --repo URL [--branch B] [--secret S] "
	    "[--settings JSON]\n"
	    "  target create NAME [--arch A] [--cpu C] [--gpu G] [--ram-mb N] "
	    "[--label k=v ...]\n"
	    "  worker create --target T [--name N]     prints the worker's token "
	    "once\n"
	    "  admin-token create [--name N]           prints an admin token "
	    "once\n"
	    "  job create --project P --commit SHA --target T "
	    "[--scenarios a,b] [--branch B]\n"
	    "             [--priority N] [--reason R] [--params JSON]\n"
	    "  list projects|targets|workers|jobs [--json]\n");
	exit(2);
}

static void
opts_parse(struct opts *o, int argc, char **argv)
{
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) == 0) {
			if (o->n == MAX_OPTS)
				fatalx("too many options");
			o->name[o->n] = argv[i] + 2;
			if (strcmp(argv[i], "--json") == 0)
				o->value[o->n++] = "";
			else if (i + 1 < argc)
				o->value[o->n++] = argv[++i];
			else
				fatalx("option '%s' needs a value", argv[i]);
		} else if (o->positional == NULL)
			o->positional = argv[i];
		else
			fatalx("unexpected argument '%s'", argv[i]);
	}
}

static const char *
opt(const struct opts *o, const char *name)
{
	int i;

	for (i = 0; i < o->n; i++)
		if (strcmp(o->name[i], name) == 0)
			return o->value[i];
	return NULL;
}

static const char *
opt_required(const struct opts *o, const char *name)
{
	const char *v = opt(o, name);

	if (v == NULL)
		fatalx("option '--%s' is required", name);
	return v;
}

/* Refuses options the command does not know, so a typo is not ignored. */
static void
opts_only(const struct opts *o, const char *const *known)
{
	int i, j;

	for (i = 0; i < o->n; i++) {
		for (j = 0; known[j] != NULL; j++)
			if (strcmp(o->name[i], known[j]) == 0)
				break;
		if (known[j] == NULL)
			fatalx("unknown option '--%s'", o->name[i]);
	}
}

static json_t *
json_arg(const char *text, const char *what)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);

	if (v == NULL || !json_is_object(v))
		fatalx("--%s must be a JSON object: %s", what,
		    v ? "not an object" : jerr.text);
	return v;
}

static void
fail_rc(int rc, struct db *db, const char *what)
{
	if (rc == BL_ECONFLICT)
		fatalx("%s already exists", what);
	if (rc == BL_ENOTFOUND)
		fatalx("%s", what);
	fatalx("%s: %s", what, db_errmsg(db));
}

static void
print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2));

	printf("%s\n", s);
	free(s);
}

static void
cmd_project(struct db *db, const struct opts *o)
{
	static const char *const known[] = {
		"repo", "branch", "secret", "settings", NULL
	};
	struct project_spec spec = { 0 };
	char err[256];
	json_t *row = NULL;
	int rc;

	opts_only(o, known);
	if ((spec.name = o->positional) == NULL)
		usage();
	if (!catalog_name_valid(spec.name, err, sizeof(err)))
		fatalx("project name %s", err);
	spec.repo_url = opt_required(o, "repo");
	spec.default_branch = opt(o, "branch");
	spec.webhook_secret = opt(o, "secret");
	if (opt(o, "settings") != NULL)
		spec.settings = json_arg(opt(o, "settings"), "settings");
	if ((rc = catalog_project_create(&row, db, &spec)) < 0)
		fail_rc(rc, db, "project");
	print_json(row);
	json_decref(row);
	json_decref(spec.settings);
}

static void
cmd_target(struct db *db, const struct opts *o)
{
	static const char *const known[] = {
		"arch", "cpu", "gpu", "ram-mb", "label", NULL
	};
	struct target_spec spec = { 0 };
	char err[256], *eq;
	json_t *row = NULL;
	int i, rc;

	opts_only(o, known);
	if ((spec.name = o->positional) == NULL)
		usage();
	if (!catalog_name_valid(spec.name, err, sizeof(err)))
		fatalx("target name %s", err);
	spec.arch = opt(o, "arch");
	spec.cpu = opt(o, "cpu");
	spec.gpu = opt(o, "gpu");
	spec.ram_mb = opt(o, "ram-mb") ? strtoll(opt(o, "ram-mb"), NULL, 10) : 0;
	spec.labels = json_object();
	for (i = 0; i < o->n; i++) {
		if (strcmp(o->name[i], "label") != 0)
			continue;
		if ((eq = strchr(o->value[i], '=')) == NULL)
			fatalx("--label wants key=value, got '%s'", o->value[i]);
		*eq = '\0';
		json_object_set_new(spec.labels, o->value[i], json_string(eq + 1));
		*eq = '=';
	}
	if ((rc = catalog_target_create(&row, db, &spec)) < 0)
		fail_rc(rc, db, "target");
	print_json(row);
	json_decref(row);
	json_decref(spec.labels);
}

static void
cmd_worker(struct db *db, const struct opts *o)
{
	static const char *const known[] = { "target", "name", NULL };
	const char *target, *name;
	char *token = NULL, what[200];
	json_t *row = NULL;
	int rc;

	opts_only(o, known);
	target = opt_required(o, "target");
	name = opt(o, "name") ? opt(o, "name") : target;
	snprintf(what, sizeof(what), "no target '%s'", target);
	if ((rc = catalog_worker_create(&row, &token, db, target, name)) < 0)
		fail_rc(rc, db, what);
	fprintf(stderr, "worker %lld created for target '%s'; its token "
	    "is printed once:\n", (long long)json_integer_value(
	    json_object_get(row, "id")), target);
	printf("%s\n", token);
	free(token);
	json_decref(row);
}

static void
cmd_admin_token(struct db *db, const struct opts *o)
{
	static const char *const known[] = { "name", NULL };
	char *token = NULL;
	int rc;

	opts_only(o, known);
	if ((rc = catalog_admin_token_create(&token, db,
	    opt(o, "name") ? opt(o, "name") : "admin")) < 0)
		fail_rc(rc, db, "admin token");
	fprintf(stderr, "admin token created; it is printed once:\n");
	printf("%s\n", token);
	free(token);
}

static void
cmd_job(struct db *db, const struct opts *o, int max_attempts)
{
	static const char *const known[] = {
		"project", "commit", "target", "scenarios", "branch",
		"priority", "reason", "params", NULL
	};
	struct job_spec spec = { .reason = "manual" };
	const char *sha, *scen;
	char *copy, *tok, *save, err[256];
	int64_t id;
	int rc;

	opts_only(o, known);
	sha = opt_required(o, "commit");
	if (!catalog_sha_valid(sha))
		fatalx("'%s' is not a commit sha (7 to 64 lowercase hex digits)",
		    sha);
	scen = opt(o, "scenarios") ? opt(o, "scenarios") :
	    "latency,throughput,stress,endurance,memory_leak";
	spec.scenarios = json_array();
	copy = xstrdup(scen);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save))
		json_array_append_new(spec.scenarios, json_string(tok));
	free(copy);
	spec.branch = opt(o, "branch");
	spec.priority = opt(o, "priority") ? atoi(opt(o, "priority")) : 0;
	if (opt(o, "reason") != NULL)
		spec.reason = opt(o, "reason");
	if (!queue_reason_valid(spec.reason))
		fatalx("--reason must be push, bisect, manual, baseline or confirm");
	if (opt(o, "params") != NULL)
		spec.params = json_arg(opt(o, "params"), "params");
	rc = queue_enqueue_named(&id, db, opt_required(o, "project"),
	    opt_required(o, "target"), sha, &spec, max_attempts, err,
	    sizeof(err));
	if (rc < 0)
		fail_rc(rc, db, rc == BL_ENOTFOUND ? err : "job");
	printf("%lld\n", (long long)id);
	json_decref(spec.scenarios);
	json_decref(spec.params);
}

/* The columns shown for each kind of row by "list". */
static const struct {
	const char *what;
	const char *cols[10];
} list_columns[] = {
	{ "projects", { "id", "name", "default_branch", "repo_url", NULL } },
	{ "targets", { "id", "name", "arch", "cpu", "gpu", "ram_mb", NULL } },
	{ "workers", { "id", "name", "target", "version", "last_heartbeat",
	    NULL } },
	{ "jobs", { "id", "project", "commit", "target", "reason", "state",
	    "attempt", "fail_reason", NULL } },
};

static void
cmd_list(struct db *db, const struct opts *o)
{
	static const char *const known[] = { "json", NULL };
	const char *const *cols = NULL;
	json_t *rows = NULL, *row, *v;
	char *s;
	size_t i, k;
	int rc;

	opts_only(o, known);
	if (o->positional == NULL)
		usage();
	for (i = 0; i < BL_ARRAY_LEN(list_columns); i++)
		if (strcmp(list_columns[i].what, o->positional) == 0)
			cols = list_columns[i].cols;
	if (cols == NULL)
		usage();
	if ((rc = catalog_list(&rows, db, o->positional)) < 0)
		fail_rc(rc, db, "list");
	if (opt(o, "json") != NULL) {
		print_json(rows);
		json_decref(rows);
		return;
	}
	for (k = 0; cols[k] != NULL; k++)
		printf("%s%s", k ? "\t" : "", cols[k]);
	printf("\n");
	json_array_foreach(rows, i, row) {
		for (k = 0; cols[k] != NULL; k++) {
			v = json_object_get(row, cols[k]);
			if (json_is_string(v))
				printf("%s%s", k ? "\t" : "", json_string_value(v));
			else {
				s = jsonx_dump(v ? v : json_null());
				printf("%s%s", k ? "\t" : "", s);
				free(s);
			}
		}
		printf("\n");
	}
	json_decref(rows);
}

int
main(int argc, char **argv)
{
	struct settings settings;
	const char *config = NULL, *cmd, *sub = NULL;
	struct opts o;
	struct db *db = NULL;
	char err[512];
	int ch, applied, first;

	while ((ch = getopt(argc, argv, "+c:h")) != -1) {
		if (ch == 'c')
			config = optarg;
		else
			usage();
	}
	if (optind >= argc)
		usage();
	log_init("benchline", LOG_LEVEL_INFO);
	cmd = argv[optind];
	first = optind + 1;
	if (strcmp(cmd, "migrate") != 0 && strcmp(cmd, "list") != 0) {
		if (first >= argc)
			usage();
		sub = argv[first++];
		if (strcmp(sub, "create") != 0)
			usage();
	}
	opts_parse(&o, argc - first, argv + first);
	if (settings_load(&settings, config, err, sizeof(err)) < 0)
		fatalx("%s", err);
	if (db_connect(&db, settings.database_url) < 0)
		fatalx("cannot connect to the database");
	if (strcmp(cmd, "migrate") == 0) {
		if (migrate_run(db, settings.migrations_dir, &applied) < 0)
			fatalx("migrations failed");
		printf("%d migration%s applied\n", applied, applied == 1 ? "" : "s");
	} else if (strcmp(cmd, "project") == 0)
		cmd_project(db, &o);
	else if (strcmp(cmd, "target") == 0)
		cmd_target(db, &o);
	else if (strcmp(cmd, "worker") == 0)
		cmd_worker(db, &o);
	else if (strcmp(cmd, "admin-token") == 0)
		cmd_admin_token(db, &o);
	else if (strcmp(cmd, "job") == 0)
		cmd_job(db, &o, (int)settings.max_attempts);
	else if (strcmp(cmd, "list") == 0)
		cmd_list(db, &o);
	else
		usage();
	db_close(db);
	settings_free(&settings);
	return 0;
}
