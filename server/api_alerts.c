/* Alerts, incidents and project settings over HTTP: listing them, and users' changes of state. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

/* Resolves ?project= to an id (0 for all), or answers 404. */
static int
project_filter(int64_t *out, struct request *r, struct db *db)
{
	const char *name = req_query(r, "project");

	*out = 0;
	if (name == NULL)
		return 0;
	if (catalog_project_find(out, db, name) < 0) {
		reply_error(r, 404, "not_found", "no project '%s'", name);
		return -1;
	}
	return 0;
}

static int
enum_valid(struct request *r, const char *param, const char *const *allowed)
{
	const char *v = req_query(r, param);
	size_t i;

	if (v == NULL)
		return 1;
	for (i = 0; allowed[i] != NULL; i++)
		if (strcmp(v, allowed[i]) == 0)
			return 1;
	reply_error(r, 400, "invalid", "query parameter '%s': '%s' is not one "
	    "of the allowed values", param, v);
	return 0;
}

static const char *const states[] = {
	"open", "acknowledged", "resolved", "invalid", NULL
};
static const char *const kinds[] = {
	"perf", "accuracy", "leak", "degradation", NULL
};

/* GET /api/v1/alerts?project=&state=&kind= */
void
api_alerts_list(struct request *r)
{
	int64_t project;
	json_t *out = NULL;
	struct db *db;
	int rc;

	if (!enum_valid(r, "state", states) || !enum_valid(r, "kind", kinds) ||
	    (db = req_db(r)) == NULL)
		return;
	if ((rc = auth_reader(r, db)) < 0)
		reply_status(r, rc, "a token is required to read");
	else if (project_filter(&project, r, db) == 0) {
		if (alert_list(&out, db, project, req_query(r, "state"),
		    req_query(r, "kind")) < 0)
			reply_db_error(r, db);
		else
			reply_json(r, 200, out);
	}
	dbpool_put(req_server(r)->pool, db);
}

typedef int (*lister_fn)(json_t **, struct db *, int64_t, const char *,
    int64_t);

/* GET a list filtered by ?project=&state=, or with an {id} one item of it. */
static void
list_or_one(struct request *r, const char *what,
    const char *const *state_values, lister_fn list)
{
	const char *sid = req_param(r, 0);
	int64_t project, id = 0;
	json_t *out = NULL;
	struct db *db;
	char *end;
	int rc;

	if (sid != NULL) {
		id = strtoll(sid, &end, 10);
		if (*end != '\0' || id <= 0) {
			reply_error(r, 404, "not_found", "no %s '%s'", what, sid);
			return;
		}
	}
	if (!enum_valid(r, "state", state_values) || (db = req_db(r)) == NULL)
		return;
	if ((rc = auth_reader(r, db)) < 0)
		reply_status(r, rc, "a token is required to read");
	else if (project_filter(&project, r, db) == 0) {
		if (list(&out, db, project, req_query(r, "state"), id) < 0)
			reply_db_error(r, db);
		else if (id > 0 && json_array_size(out) == 0) {
			json_decref(out);
			reply_error(r, 404, "not_found", "no %s '%s'", what, sid);
		} else if (id > 0) {
			reply_json(r, 200, json_incref(json_array_get(out, 0)));
			json_decref(out);
		} else
			reply_json(r, 200, out);
	}
	dbpool_put(req_server(r)->pool, db);
}

/* GET /api/v1/incidents?project=&state= and /api/v1/incidents/{id} */
void
api_incidents_list(struct request *r)
{
	list_or_one(r, "incident", states, alert_incidents);
}

/* GET /api/v1/investigations?project=&state= and /api/v1/investigations/{id} */
void
api_investigations_list(struct request *r)
{
	static const char *const inv_states[] = {
		"confirming", "bisecting", "following", "done", "overturned",
		"undecided", "failed", NULL
	};

	list_or_one(r, "investigation", inv_states, investigate_list);
}

/* PATCH /api/v1/alerts/{id} {"state": "acknowledged"|"resolved"|"invalid"|"open"} */
void
api_alert_patch(struct request *r)
{
	static const char *const fields[] = { "state", NULL };
	const char *sid = req_param(r, 0), *state = NULL;
	json_t *body = NULL, *out = NULL;
	struct db *db;
	char err[256], *end;
	int64_t id;
	int rc;

	id = strtoll(sid, &end, 10);
	if (*end != '\0' || id <= 0) {
		reply_error(r, 404, "not_found", "no alert '%s'", sid);
		return;
	}
	if ((db = req_db(r)) == NULL)
		return;
	if ((rc = auth_admin(r, db)) < 0) {
		reply_status(r, rc, "the admin token is required");
		goto out;
	}
	if ((body = req_json_body(r)) == NULL)
		goto out;
	if (jsonx_only(body, fields, "$", err, sizeof(err)) < 0 ||
	    jsonx_string(&state, body, "state", 1, 32, "$", err,
	    sizeof(err)) < 0) {
		reply_status(r, BL_EINVAL, err);
		goto out;
	}
	if ((rc = db_begin(db)) < 0 ||
	    (rc = alert_set_state(&out, db, id, state, err, sizeof(err))) < 0 ||
	    (rc = db_commit(db)) < 0) {
		db_rollback(db);
		if (rc == BL_EINVAL || rc == BL_ENOTFOUND)
			reply_status(r, rc, err);
		else
			reply_db_error(r, db);
		goto out;
	}
	log_info("alert %" PRId64 " set to %s", id, state);
	reply_json(r, 200, out);
out:
	json_decref(body);
	dbpool_put(req_server(r)->pool, db);
}

/*
 * PATCH /api/v1/projects/{p} {"reference_commit": sha|null, "settings": {...},
 * "webhook_secret": s|null}: pins the accuracy reference, merges detection,
 * mail and webhook settings, and sets or clears the webhook secret.
 */
void
api_project_patch(struct request *r)
{
	static const char *const fields[] = {
		"reference_commit", "settings", "webhook_secret", NULL
	};
	const char *name = req_param(r, 0), *sha = NULL, *secret = NULL;
	struct dbparams p = { .n = 0 };
	json_t *body = NULL, *settings = NULL, *out = NULL, *v;
	struct dbres *res = NULL;
	int64_t project;
	struct db *db;
	char err[256], *text = NULL;
	int rc;

	if ((db = req_db(r)) == NULL)
		return;
	if ((rc = auth_admin(r, db)) < 0) {
		reply_status(r, rc, "the admin token is required");
		goto out;
	}
	if ((body = req_json_body(r)) == NULL)
		goto out;
	if (catalog_project_find(&project, db, name) < 0) {
		reply_error(r, 404, "not_found", "no project '%s'", name);
		goto out;
	}
	if (jsonx_only(body, fields, "$", err, sizeof(err)) < 0 ||
	    jsonx_string(&sha, body, "reference_commit", 0, 64, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_object(&settings, body, "settings", 0, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&secret, body, "webhook_secret", 0, 255, "$", err,
	    sizeof(err)) < 0 ||
	    (settings != NULL && webhook_settings_check(settings, err,
	    sizeof(err)) < 0)) {
		reply_status(r, BL_EINVAL, err);
		goto out;
	}
	if (secret != NULL && secret[0] == '\0') {
		reply_error(r, 400, "invalid", "$.webhook_secret: must not be "
		    "empty (null removes it)");
		goto out;
	}
	if (sha != NULL && !catalog_sha_valid(sha)) {
		reply_error(r, 400, "invalid", "$.reference_commit: '%s' is not a "
		    "commit sha", sha);
		goto out;
	}
	v = json_object_get(settings, "subscribers");
	if (v != NULL) {
		size_t i;
		json_t *e;

		if (!json_is_array(v)) {
			reply_error(r, 400, "invalid", "$.settings.subscribers: "
			    "must be an array of e-mail addresses");
			goto out;
		}
		json_array_foreach(v, i, e) {
			if (!json_is_string(e) ||
			    !mail_address_valid(json_string_value(e))) {
				reply_error(r, 400, "invalid", "$.settings."
				    "subscribers[%zu]: not an e-mail address", i);
				goto out;
			}
		}
	}
	v = json_object_get(settings, "goals");
	if (v != NULL && dash_goals_check(v, err, sizeof(err)) < 0) {
		reply_status(r, BL_EINVAL, err);
		goto out;
	}
	text = settings ? jsonx_dump(settings) : NULL;
	dbp_int(&p, project);
	dbp_str(&p, text);
	dbp_str(&p, sha);
	dbp_str(&p, json_object_get(body, "reference_commit") ? "t" : "f");
	dbp_str(&p, secret);
	dbp_str(&p, json_object_get(body, "webhook_secret") ? "t" : "f");
	if ((rc = db_queryp(&res, db, "UPDATE projects SET settings = settings "
	    "|| coalesce($2::jsonb, '{}'), reference_commit = CASE WHEN $4::bool "
	    "THEN $3 ELSE reference_commit END, webhook_secret = CASE WHEN "
	    "$6::bool THEN $5 ELSE webhook_secret END WHERE id = $1 RETURNING "
	    "json_build_object('id', id, 'name', name, 'settings', settings, "
	    "'reference_commit', reference_commit, 'webhook_secret_set', "
	    "webhook_secret IS NOT NULL)", &p)) < 0) {
		reply_db_error(r, db);
		goto out;
	}
	out = json_loads(dbres_get(res, 0, 0), 0, NULL);
	reply_json(r, 200, out);
out:
	free(text);
	dbres_free(res);
	json_decref(body);
	dbpool_put(req_server(r)->pool, db);
}
