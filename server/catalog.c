/* The catalog: projects, hardware targets, workers, admin tokens and commits, for the CLI and the API. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "xmalloc.h"

int
catalog_name_valid(const char *name, char *err, size_t errlen)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > 64 || !isalpha((unsigned char)name[0])) {
		snprintf(err, errlen, "'%s' must be 1 to 64 characters and start "
		    "with a letter", name);
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (!isalnum((unsigned char)name[i]) && name[i] != '.' &&
		    name[i] != '_' && name[i] != '-') {
			snprintf(err, errlen, "'%s' may hold only letters, digits, "
			    "'.', '_' and '-'", name);
			return 0;
		}
	}
	return 1;
}

int
catalog_sha_valid(const char *sha)
{
	size_t i, n = strlen(sha);

	if (n < 7 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)sha[i]) || isupper((unsigned char)sha[i]))
			return 0;
	return 1;
}

/* Runs a query that returns one row as JSON in its first column. */
static int
query_json_row(json_t **out, struct db *db, const char *sql,
    const struct dbparams *p)
{
	struct dbres *res = NULL;
	json_error_t jerr;
	int rc;

	if ((rc = db_queryp(&res, db, sql, p)) < 0)
		return rc;
	if (dbres_rows(res) != 1) {
		dbres_free(res);
		return BL_ENOTFOUND;
	}
	*out = json_loads(dbres_get(res, 0, 0), 0, &jerr);
	dbres_free(res);
	return *out != NULL ? 0 : BL_ERROR;
}

int
catalog_project_create(json_t **out, struct db *db,
    const struct project_spec *spec)
{
	struct dbparams p = { .n = 0 };
	char *settings = spec->settings ? jsonx_dump(spec->settings) : NULL;
	int rc;

	dbp_str(&p, spec->name);
	dbp_str(&p, spec->repo_url);
	dbp_str(&p, spec->default_branch ? spec->default_branch : "main");
	dbp_str(&p, spec->webhook_secret);
	dbp_str(&p, settings ? settings : "{}");
	rc = query_json_row(out, db,
	    "INSERT INTO projects (name, repo_url, default_branch, "
	    "webhook_secret, settings) VALUES ($1, $2, $3, $4, $5::jsonb) "
	    "RETURNING json_build_object('id', id, 'name', name, 'repo_url', "
	    "repo_url, 'default_branch', default_branch, 'settings', settings)",
	    &p);
	free(settings);
	return rc;
}

/* Finds a row id by name, or by id when the text is all digits. */
static int
find_by_name(int64_t *out, struct db *db, const char *table,
    const char *name_or_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	char *sql;
	int rc, numeric = name_or_id[0] != '\0' &&
	    strspn(name_or_id, "0123456789") == strlen(name_or_id);

	if (numeric) {
		dbp_int(&p, strtoll(name_or_id, NULL, 10));
		sql = xasprintf("SELECT id FROM %s WHERE id = $1", table);
	} else {
		dbp_str(&p, name_or_id);
		sql = xasprintf("SELECT id FROM %s WHERE name = $1", table);
	}
	rc = db_queryp(&res, db, sql, &p);
	free(sql);
	if (rc < 0)
		return rc;
	if (dbres_rows(res) == 1)
		*out = dbres_int(res, 0, 0);
	else
		rc = BL_ENOTFOUND;
	dbres_free(res);
	return rc;
}

int
catalog_project_find(int64_t *out, struct db *db, const char *name_or_id)
{
	return find_by_name(out, db, "projects", name_or_id);
}

int
catalog_target_find(int64_t *out, struct db *db, const char *name_or_id)
{
	return find_by_name(out, db, "targets", name_or_id);
}

int
catalog_target_create(json_t **out, struct db *db,
    const struct target_spec *spec)
{
	struct dbparams p = { .n = 0 };
	char *labels = spec->labels ? jsonx_dump(spec->labels) : NULL;
	int rc;

	dbp_str(&p, spec->name);
	dbp_str(&p, spec->arch ? spec->arch : "");
	dbp_str(&p, spec->cpu ? spec->cpu : "");
	dbp_str(&p, spec->gpu ? spec->gpu : "");
	dbp_int(&p, spec->ram_mb);
	dbp_str(&p, labels ? labels : "{}");
	rc = query_json_row(out, db,
	    "INSERT INTO targets (name, arch, cpu, gpu, ram_mb, labels) "
	    "VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING "
	    "json_build_object('id', id, 'name', name, 'arch', arch, 'cpu', cpu, "
	    "'gpu', gpu, 'ram_mb', ram_mb, 'labels', labels)", &p);
	free(labels);
	return rc;
}

/*
 * Creates a worker bound to a target.  The row is inserted first to learn
 * its id, then given the hash of a token that embeds that id, in one
 * transaction.
 */
int
catalog_worker_create(json_t **out, char **token_out, struct db *db,
    const char *target, const char *name)
{
	char token[128], hash[65];
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int64_t target_id, id;
	int rc;

	if ((rc = catalog_target_find(&target_id, db, target)) < 0)
		return rc;
	if ((rc = db_begin(db)) < 0)
		return rc;
	dbp_str(&p, name);
	dbp_int(&p, target_id);
	if ((rc = db_queryp(&res, db, "INSERT INTO workers (name, target_id, "
	    "token_hash) VALUES ($1, $2, '') RETURNING id", &p)) < 0)
		goto out;
	id = dbres_int(res, 0, 0);
	dbres_free(res);
	res = NULL;
	token_generate(token, sizeof(token), "blw", id, hash);
	p.n = 0;
	dbp_int(&p, id);
	dbp_str(&p, hash);
	if ((rc = db_queryp(NULL, db, "UPDATE workers SET token_hash = "
	    "decode($2, 'hex') WHERE id = $1", &p)) < 0)
		goto out;
	if ((rc = db_commit(db)) < 0)
		goto out;
	*out = json_pack("{s:I,s:s,s:I,s:s}", "id", (json_int_t)id, "name", name,
	    "target_id", (json_int_t)target_id, "target", target);
	*token_out = xstrdup(token);
out:
	if (rc < 0)
		db_rollback(db);
	dbres_free(res);
	return rc;
}

int
catalog_admin_token_create(char **token_out, struct db *db, const char *name)
{
	char token[128], hash[65];
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int64_t id;
	int rc;

	if ((rc = db_begin(db)) < 0)
		return rc;
	dbp_str(&p, name);
	if ((rc = db_queryp(&res, db, "INSERT INTO admin_tokens (name, "
	    "token_hash) VALUES ($1, '') RETURNING id", &p)) < 0)
		goto out;
	id = dbres_int(res, 0, 0);
	token_generate(token, sizeof(token), "bla", id, hash);
	p.n = 0;
	dbp_int(&p, id);
	dbp_str(&p, hash);
	if ((rc = db_queryp(NULL, db, "UPDATE admin_tokens SET token_hash = "
	    "decode($2, 'hex') WHERE id = $1", &p)) < 0)
		goto out;
	if ((rc = db_commit(db)) < 0)
		goto out;
	*token_out = xstrdup(token);
out:
	if (rc < 0)
		db_rollback(db);
	dbres_free(res);
	return rc;
}

int
catalog_commit_ensure(int64_t *out, struct db *db, int64_t project_id,
    const char *sha, const char *branch)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	dbp_int(&p, project_id);
	dbp_str(&p, sha);
	dbp_str(&p, branch);
	/* The no-op update makes RETURNING yield the existing row too. */
	if ((rc = db_queryp(&res, db, "INSERT INTO commits (project_id, sha, "
	    "branch) VALUES ($1, $2, $3) ON CONFLICT (project_id, sha) DO "
	    "UPDATE SET sha = EXCLUDED.sha RETURNING id", &p)) < 0)
		return rc;
	*out = dbres_int(res, 0, 0);
	dbres_free(res);
	return 0;
}

static const struct {
	const char *what;
	const char *sql;
} list_queries[] = {
	{ "projects", "SELECT coalesce(json_agg(json_build_object('id', id, "
	    "'name', name, 'repo_url', repo_url, 'default_branch', "
	    "default_branch, 'settings', settings, 'reference_commit', "
	    "reference_commit) ORDER BY id), '[]') FROM projects" },
	{ "targets", "SELECT coalesce(json_agg(json_build_object('id', t.id, "
	    "'name', t.name, 'arch', t.arch, 'cpu', t.cpu, 'gpu', t.gpu, "
	    "'ram_mb', t.ram_mb, 'labels', t.labels, 'active', t.active, "
	    "'workers', (SELECT coalesce(json_agg(json_build_object('id', w.id, "
	    "'name', w.name, 'version', w.version, 'last_heartbeat', "
	    "w.last_heartbeat) ORDER BY w.id), '[]') FROM workers w WHERE "
	    "w.target_id = t.id AND NOT w.revoked)) ORDER BY t.id), '[]') "
	    "FROM targets t" },
	{ "workers", "SELECT coalesce(json_agg(json_build_object('id', w.id, "
	    "'name', w.name, 'target', t.name, 'version', w.version, "
	    "'last_heartbeat', w.last_heartbeat, 'revoked', w.revoked) "
	    "ORDER BY w.id), '[]') FROM workers w JOIN targets t ON "
	    "t.id = w.target_id" },
	{ "jobs", "SELECT coalesce(json_agg(json_build_object('id', j.id, "
	    "'project', p.name, 'commit', c.sha, 'target', t.name, 'branch', "
	    "j.branch, 'scenarios', j.scenarios, 'reason', j.reason, "
	    "'priority', j.priority, 'state', j.state, 'attempt', j.attempt, "
	    "'worker_id', j.worker_id, 'fail_reason', j.fail_reason, "
	    "'created_at', j.created_at) ORDER BY j.id), '[]') FROM jobs j "
	    "JOIN projects p ON p.id = j.project_id JOIN commits c ON "
	    "c.id = j.commit_id JOIN targets t ON t.id = j.target_id" },
};

int
catalog_list(json_t **out, struct db *db, const char *what)
{
	struct dbparams p = { .n = 0 };
	size_t i;

	for (i = 0; i < BL_ARRAY_LEN(list_queries); i++)
		if (strcmp(list_queries[i].what, what) == 0)
			return query_json_row(out, db, list_queries[i].sql, &p);
	return BL_ENOTFOUND;
}
