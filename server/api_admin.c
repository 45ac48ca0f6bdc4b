/* Admin write endpoints: create projects, targets, workers and jobs; each needs the admin token. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

/*
 * Opens an admin write: a pooled connection, the admin token and the JSON
 * body.  Answers the request itself and returns -1 when any is missing.
 */
static int
admin_begin(struct db **db, json_t **body, struct request *r)
{
	int rc;

	*body = NULL;
	if ((*db = req_db(r)) == NULL)
		return -1;
	if ((rc = auth_admin(r, *db)) < 0) {
		reply_status(r, rc, "the admin token is required");
		goto fail;
	}
	if ((*body = req_json_body(r)) == NULL)
		goto fail;
	return 0;
fail:
	dbpool_put(req_server(r)->pool, *db);
	*db = NULL;
	return -1;
}

static void
admin_end(struct request *r, struct db *db, json_t *body)
{
	json_decref(body);
	dbpool_put(req_server(r)->pool, db);
}

/* Answers a creation: 201 with the row, 409 for a duplicate name. */
static void
reply_created(struct request *r, struct db *db, int rc, json_t *row,
    const char *what, const char *name)
{
	if (rc == 0)
		reply_json(r, 201, row);
	else if (rc == BL_ECONFLICT)
		reply_error(r, 409, "conflict", "%s '%s' already exists", what,
		    name);
	else if (rc == BL_ENOTFOUND)
		reply_error(r, 404, "not_found", "%s", name);
	else
		reply_db_error(r, db);
}

/* POST /api/v1/projects {name, repo_url, default_branch?, webhook_secret?, settings?} */
void
api_admin_project_create(struct request *r)
{
	static const char *const fields[] = {
		"name", "repo_url", "default_branch", "webhook_secret",
		"settings", NULL
	};
	struct project_spec spec = { .default_branch = "main" };
	struct db *db;
	json_t *body, *row = NULL;
	char err[256];
	int rc;

	if (admin_begin(&db, &body, r) < 0)
		return;
	if (jsonx_only(body, fields, "$", err, sizeof(err)) < 0 ||
	    jsonx_string(&spec.name, body, "name", 1, 64, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&spec.repo_url, body, "repo_url", 1, 2048, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&spec.default_branch, body, "default_branch", 0, 255,
	    "$", err, sizeof(err)) < 0 ||
	    jsonx_string(&spec.webhook_secret, body, "webhook_secret", 0, 255,
	    "$", err, sizeof(err)) < 0 ||
	    jsonx_object(&spec.settings, body, "settings", 0, "$", err,
	    sizeof(err)) < 0) {
		reply_status(r, BL_EINVAL, err);
		goto out;
	}
	if (!catalog_name_valid(spec.name, err, sizeof(err))) {
		reply_error(r, 400, "invalid", "$.name: %s", err);
		goto out;
	}
	if (spec.settings != NULL &&
	    webhook_settings_check(spec.settings, err, sizeof(err)) < 0) {
		reply_status(r, BL_EINVAL, err);
		goto out;
	}
	rc = catalog_project_create(&row, db, &spec);
	reply_created(r, db, rc, row, "project", spec.name);
out:
	admin_end(r, db, body);
}

/* POST /api/v1/targets {name, arch?, cpu?, gpu?, ram_mb?, labels?} */
void
api_admin_target_create(struct request *r)
{
	static const char *const fields[] = {
		"name", "arch", "cpu", "gpu", "ram_mb", "labels", NULL
	};
	struct target_spec spec = { 0 };
	struct db *db;
	json_t *body, *row = NULL;
	char err[256];
	int rc;

	if (admin_begin(&db, &body, r) < 0)
		return;
	if (jsonx_only(body, fields, "$", err, sizeof(err)) < 0 ||
	    jsonx_string(&spec.name, body, "name", 1, 64, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&spec.arch, body, "arch", 0, 64, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&spec.cpu, body, "cpu", 0, 256, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&spec.gpu, body, "gpu", 0, 256, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_int(&spec.ram_mb, body, "ram_mb", 0, 0, INT64_C(1) << 40, "$",
	    err, sizeof(err)) < 0 ||
	    jsonx_object(&spec.labels, body, "labels", 0, "$", err,
	    sizeof(err)) < 0) {
		reply_status(r, BL_EINVAL, err);
		goto out;
	}
	if (!catalog_name_valid(spec.name, err, sizeof(err))) {
		reply_error(r, 400, "invalid", "$.name: %s", err);
		goto out;
	}
	rc = catalog_target_create(&row, db, &spec);
	reply_created(r, db, rc, row, "target", spec.name);
out:
	admin_end(r, db, body);
}

/* POST /api/v1/workers {target, name}: the token is in the answer, once. */
void
api_admin_worker_create(struct request *r)
{
	static const char *const fields[] = { "target", "name", NULL };
	const char *target = NULL, *name = NULL;
	char *token = NULL, err[256];
	struct db *db;
	json_t *body, *row = NULL;
	int rc;

	if (admin_begin(&db, &body, r) < 0)
		return;
	if (jsonx_only(body, fields, "$", err, sizeof(err)) < 0 ||
	    jsonx_string(&target, body, "target", 1, 64, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&name, body, "name", 1, 128, "$", err,
	    sizeof(err)) < 0) {
		reply_status(r, BL_EINVAL, err);
		goto out;
	}
	rc = catalog_worker_create(&row, &token, db, target, name);
	if (rc == 0)
		json_object_set_new(row, "token", json_string(token));
	if (rc == BL_ENOTFOUND)
		snprintf(err, sizeof(err), "$.target: no target '%s'", target);
	reply_created(r, db, rc, row, "worker", rc == BL_ENOTFOUND ? err : name);
	free(token);
out:
	admin_end(r, db, body);
}

/*
 * POST /api/v1/jobs {project, commit, target, scenarios, branch?, params?,
 * priority?, reason?, max_attempts?}: queues a job by hand.
 */
void
api_admin_job_create(struct request *r)
{
	static const char *const fields[] = {
		"project", "commit", "target", "scenarios", "branch", "params",
		"priority", "reason", "max_attempts", NULL
	};
	const char *project = NULL, *sha = NULL, *target = NULL;
	struct job_spec spec = { .reason = "manual" };
	int64_t priority = 0, max_attempts = 0, job_id;
	struct db *db;
	json_t *body, *e, *ids = NULL;
	char err[256];
	size_t i;
	int rc;

	if (admin_begin(&db, &body, r) < 0)
		return;
	if (jsonx_only(body, fields, "$", err, sizeof(err)) < 0 ||
	    jsonx_string(&project, body, "project", 1, 64, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&sha, body, "commit", 1, 64, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&target, body, "target", 1, 64, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_array(&spec.scenarios, body, "scenarios", 1, 16, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&spec.branch, body, "branch", 0, 255, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_object(&spec.params, body, "params", 0, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_int(&priority, body, "priority", 0, -1000, 1000, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_int(&max_attempts, body, "max_attempts", 0, 1, 20, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&spec.reason, body, "reason", 0, 16, "$", err,
	    sizeof(err)) < 0) {
		reply_status(r, BL_EINVAL, err);
		goto out;
	}
	if (!queue_reason_valid(spec.reason)) {
		reply_error(r, 400, "invalid", "$.reason: must be push, bisect, "
		    "manual, baseline or confirm");
		goto out;
	}
	if (!catalog_sha_valid(sha)) {
		reply_error(r, 400, "invalid", "$.commit: '%s' is not a commit "
		    "sha (7 to 64 lowercase hex digits)", sha);
		goto out;
	}
	if (json_array_size(spec.scenarios) == 0) {
		reply_error(r, 400, "invalid", "$.scenarios: name at least one "
		    "scenario");
		goto out;
	}
	json_array_foreach(spec.scenarios, i, e) {
		if (!json_is_string(e) || json_string_length(e) == 0 ||
		    json_string_length(e) > 64) {
			reply_error(r, 400, "invalid", "$.scenarios[%zu]: must be "
			    "a scenario name", i);
			goto out;
		}
	}
	spec.priority = (int)priority;
	spec.max_attempts = (int)max_attempts;
	rc = queue_enqueue_named(&job_id, db, project, target, sha, &spec,
	    (int)req_server(r)->settings->max_attempts, err, sizeof(err));
	if (rc < 0) {
		if (rc == BL_ENOTFOUND)
			reply_status(r, rc, err);
		else
			reply_db_error(r, db);
		goto out;
	}
	ids = json_pack("{s:I}", "id", (json_int_t)job_id);
	reply_json(r, 201, ids);
out:
	admin_end(r, db, body);
}
