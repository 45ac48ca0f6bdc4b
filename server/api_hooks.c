/* Forge webhooks over HTTP: POST /hooks/github and /hooks/gitlab check the sender, record a push once, and queue its jobs. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "sha256.h"
#include "xmalloc.h"

#define DELIVERY_MAX	128	/* longest delivery id accepted from a header */

/* The project a delivery is for, as the hooks need it. */
struct hook_project {
	int64_t	 id;
	char	*name;
	char	*secret;	/* NULL when the project has none */
	char	*default_branch;
	json_t	*settings;
};

/* One delivery being handled. */
struct hook {
	struct request		*r;
	struct db		*db;
	enum forge		 forge;
	struct hook_project	 project;
	json_t			*body;
	/* The forge's id of the delivery, or "sha256:" and the body's hash. */
	char			 delivery[DELIVERY_MAX + 1];
};

static const char *
forge_name(enum forge forge)
{
	return forge == FORGE_GITHUB ? "github" : "gitlab";
}

static void
hook_project_free(struct hook_project *p)
{
	free(p->name);
	free(p->secret);
	free(p->default_branch);
	json_decref(p->settings);
	memset(p, 0, sizeof(*p));
}

#define PROJECT_SELECT "SELECT id, name, webhook_secret, default_branch, " \
	"settings FROM projects "

/* Fills the project from row i of a PROJECT_SELECT result. */
static void
hook_project_row(struct hook_project *out, const struct dbres *res, int i)
{
	const char *secret = dbres_get(res, i, 2);

	out->id = dbres_int(res, i, 0);
	out->name = xstrdup(dbres_get(res, i, 1));
	out->secret = secret != NULL && secret[0] != '\0' ? xstrdup(secret) :
	    NULL;
	out->default_branch = xstrdup(dbres_get(res, i, 3));
	out->settings = json_loads(dbres_get(res, i, 4), 0, NULL);
}

/* Finds the project named by ?project= (a name or an id), or answers 404. */
static int
hook_find_by_name(struct hook *h, const char *name)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	char why[160];
	int64_t id;
	int rc;

	/* What cannot be a name or an id is not looked up (nor sent to SQL). */
	if ((name[0] == '\0' || strspn(name, "0123456789") != strlen(name) ||
	    strlen(name) > 18) && !catalog_name_valid(name, why, sizeof(why)))
		rc = BL_ENOTFOUND;
	else
		rc = catalog_project_find(&id, h->db, name);
	if (rc < 0) {
		if (rc == BL_ENOTFOUND)
			reply_error(h->r, 404, "not_found", "no project '%s'",
			    name);
		else
			reply_db_error(h->r, h->db);
		return rc;
	}
	dbp_int(&p, id);
	if ((rc = db_queryp(&res, h->db, PROJECT_SELECT "WHERE id = $1",
	    &p)) < 0) {
		reply_db_error(h->r, h->db);
		return rc;
	}
	if (dbres_rows(res) == 1)
		hook_project_row(&h->project, res, 0);
	else {
		reply_error(h->r, 404, "not_found", "no project '%s'", name);
		rc = BL_ENOTFOUND;
	}
	dbres_free(res);
	return rc;
}

/*
 * Finds the project by the repository URLs the payload names: a URL
 * matches a project's repo_url when both are equal without a trailing
 * ".git" and slashes, ignoring case (the forges' paths are not
 * case-sensitive).  Answers 404 when none matches and 409 when several
 * projects benchmark that repository: then ?project= must say which.
 */
static int
hook_find_by_urls(struct hook *h)
{
	const char *urls[WEBHOOK_MAX_URLS];
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	json_t *arr;
	char *text;
	size_t i, n;
	int rc;

	n = webhook_urls(urls, BL_ARRAY_LEN(urls), h->body);
	if (n == 0) {
		reply_error(h->r, 404, "not_found", "the payload names no "
		    "repository URL: name the project with ?project=");
		return BL_ENOTFOUND;
	}
	arr = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(arr, json_string(urls[i]));
	text = jsonx_dump(arr);
	json_decref(arr);
	dbp_str(&p, text);
	rc = db_queryp(&res, h->db, PROJECT_SELECT "WHERE "
	    "lower(regexp_replace(repo_url, '(\\.git)?/*$', '')) IN (SELECT "
	    "lower(regexp_replace(u, '(\\.git)?/*$', '')) FROM "
	    "json_array_elements_text($1::json) u) ORDER BY id LIMIT 3", &p);
	free(text);
	if (rc < 0) {
		reply_db_error(h->r, h->db);
		return rc;
	}
	if (dbres_rows(res) == 1)
		hook_project_row(&h->project, res, 0);
	else if (dbres_rows(res) == 0) {
		reply_error(h->r, 404, "not_found", "no project has the "
		    "repository '%s'", urls[0]);
		rc = BL_ENOTFOUND;
	} else {
		reply_error(h->r, 409, "conflict", "the repository '%s' is "
		    "benchmarked by several projects ('%s', '%s'%s): name one "
		    "with ?project=", urls[0], dbres_get(res, 0, 1),
		    dbres_get(res, 1, 1), dbres_rows(res) > 2 ? ", ..." : "");
		rc = BL_ECONFLICT;
	}
	dbres_free(res);
	return rc;
}

/*
 * GitHub signs the raw body: X-Hub-Signature-256 is "sha256=" and the hex
 * HMAC-SHA256 of the body under the hook's secret.
 */
static int
github_signed(struct request *r, const char *secret, char *why,
    size_t whylen)
{
	const char *sig = req_header(r, "X-Hub-Signature-256");
	const struct buf *body = req_body(r);
	uint8_t want[SHA256_LEN], got[SHA256_LEN];

	if (sig == NULL) {
		snprintf(why, whylen, "missing X-Hub-Signature-256 (the "
		    "HMAC-SHA256 of the body under the project's webhook "
		    "secret)");
		return 0;
	}
	if (strncmp(sig, "sha256=", 7) != 0 ||
	    hex_decode(got, sizeof(got), sig + 7) < 0) {
		snprintf(why, whylen, "X-Hub-Signature-256 must be 'sha256=' "
		    "and 64 hex digits");
		return 0;
	}
	hmac_sha256(want, secret, strlen(secret), body->ptr, body->len);
	if (!ct_equal(want, got, SHA256_LEN)) {
		snprintf(why, whylen, "X-Hub-Signature-256 does not match the "
		    "body signed with the project's webhook secret");
		return 0;
	}
	return 1;
}

/*
 * GitLab sends the secret itself in X-Gitlab-Token.  Their digests are
 * compared, so that the time taken says nothing of the secret, its length
 * included.
 */
static int
gitlab_signed(struct request *r, const char *secret, char *why,
    size_t whylen)
{
	const char *token = req_header(r, "X-Gitlab-Token");
	uint8_t want[SHA256_LEN], got[SHA256_LEN];

	if (token == NULL) {
		snprintf(why, whylen, "missing X-Gitlab-Token (the project's "
		    "webhook secret)");
		return 0;
	}
	sha256(want, secret, strlen(secret));
	sha256(got, token, strlen(token));
	if (!ct_equal(want, got, SHA256_LEN)) {
		snprintf(why, whylen, "X-Gitlab-Token is not the project's "
		    "webhook secret");
		return 0;
	}
	return 1;
}

/* Checks that the project's secret vouches for the request; answers 401 if not. */
static int
hook_authentic(struct hook *h)
{
	char why[160];
	int ok;

	if (h->project.secret == NULL) {
		reply_error(h->r, 401, "unauthorized", "project '%s' has no "
		    "webhook secret: set one with PATCH /api/v1/projects/%s",
		    h->project.name, h->project.name);
		return 0;
	}
	if (h->forge == FORGE_GITHUB)
		ok = github_signed(h->r, h->project.secret, why, sizeof(why));
	else
		ok = gitlab_signed(h->r, h->project.secret, why, sizeof(why));
	if (!ok) {
		log_info("%s hook for project '%s' refused: %s",
		    forge_name(h->forge), h->project.name, why);
		reply_error(h->r, 401, "unauthorized", "%s", why);
	}
	return ok;
}

/*
 * The delivery's id, for the replay guard.  GitHub: X-GitHub-Delivery,
 * which a redelivery repeats.  GitLab: Idempotency-Key (GitLab 17.4 on),
 * the one id its retries repeat; else X-Gitlab-Event-UUID, which names the
 * event but is new on a retry of older GitLabs.  Without either header
 * (a proxy dropped it, an old forge), the SHA-256 of the body stands in:
 * a retry sends the same bytes.  Answers 400 for an unusable header.
 */
static int
hook_delivery_id(struct hook *h)
{
	static const char *const github[] = { "X-GitHub-Delivery", NULL };
	static const char *const gitlab[] = {
		"Idempotency-Key", "X-Gitlab-Event-UUID", NULL
	};
	const char *const *names = h->forge == FORGE_GITHUB ? github : gitlab;
	const struct buf *body = req_body(h->r);
	uint8_t digest[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	const char *v;
	size_t i, n;

	for (i = 0; names[i] != NULL; i++) {
		if ((v = req_header(h->r, names[i])) == NULL)
			continue;
		n = strlen(v);
		if (n == 0 || n > DELIVERY_MAX || strspn(v, "0123456789"
		    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "-_.:+/=") != n) {
			reply_error(h->r, 400, "invalid", "%s: must be 1 to %d "
			    "letters, digits or -_.:+/=", names[i],
			    DELIVERY_MAX);
			return BL_EINVAL;
		}
		memcpy(h->delivery, v, n + 1);
		return 0;
	}
	sha256(digest, body->ptr, body->len);
	hex_encode(hex, digest, sizeof(digest));
	snprintf(h->delivery, sizeof(h->delivery), "sha256:%s", hex);
	return 0;
}

static void
reply_duplicate(struct hook *h)
{
	log_info("%s delivery '%s' for project '%s' seen before: nothing done",
	    forge_name(h->forge), h->delivery, h->project.name);
	reply_json(h->r, 200, json_pack("{s:b,s:s}", "duplicate", 1,
	    "delivery", h->delivery));
}

/* Records the delivery; BL_ECONFLICT when it was recorded before. */
static int
hook_delivery_insert(struct hook *h)
{
	struct dbparams p = { .n = 0 };

	dbp_str(&p, h->delivery);
	dbp_str(&p, forge_name(h->forge));
	dbp_int(&p, h->project.id);
	return db_queryp(NULL, h->db, "INSERT INTO webhook_deliveries "
	    "(delivery_id, forge, project_id) VALUES ($1, $2, $3)", &p);
}

/*
 * Answers a delivery that asks for nothing (a tag, a deleted branch, a
 * branch the project does not benchmark) with 202 and the reason.  Its id
 * is still recorded, so that a redelivery is a duplicate like any other.
 */
static void
hook_ignore(struct hook *h, const char *reason, const char *branch)
{
	json_t *answer;
	int rc;

	if ((rc = hook_delivery_insert(h)) == BL_ECONFLICT) {
		reply_duplicate(h);
		return;
	}
	if (rc < 0) {
		reply_db_error(h->r, h->db);
		return;
	}
	log_info("%s delivery '%s' for project '%s' ignored: %s",
	    forge_name(h->forge), h->delivery, h->project.name, reason);
	answer = json_pack("{s:s,s:s,s:s}", "ignored", reason, "delivery",
	    h->delivery, "project", h->project.name);
	if (branch != NULL)
		json_object_set_new(answer, "branch", json_string(branch));
	reply_json(h->r, 202, answer);
}

/* A commit's id by its sha, for the jobs of a push. */
struct commit_id {
	const char	*sha;
	int64_t		 id;
};

static int
commit_id_cmp(const void *a, const void *b)
{
	return strcmp(((const struct commit_id *)a)->sha,
	    ((const struct commit_id *)b)->sha);
}

/*
 * Records the push's commits, filling in what an existing row lacks, and
 * returns their ids sorted by sha (caller frees *out; strings borrowed from
 * res, which the caller frees after).  The rows are written in sha order,
 * so two pushes sharing commits lock them in the same order and cannot
 * deadlock.
 */
static int
hook_commits_upsert(struct commit_id **out, size_t *n, struct dbres **res,
    struct hook *h, const struct push *push)
{
	struct dbparams p = { .n = 0 };
	const struct push_commit *c;
	json_t *arr = json_array();
	struct commit_id *ids;
	char *text;
	size_t i;
	int rc;

	for (i = 0; i < push->ncommits; i++) {
		c = &push->commits[i];
		json_array_append_new(arr, json_pack("{s:s,s:s?,s:s,s:s,s:s,"
		    "s:s?}", "sha", c->sha, "parent", c->parent, "author_name",
		    c->author_name, "author_email", c->author_email, "message",
		    c->message, "committed_at", c->timestamp));
	}
	text = jsonx_dump(arr);
	json_decref(arr);
	dbp_int(&p, h->project.id);
	dbp_str(&p, text);
	dbp_str(&p, push->branch);
	rc = db_queryp(res, h->db,
	    "INSERT INTO commits AS c (project_id, sha, parents, author_name, "
	    "  author_email, message, committed_at, branch) "
	    "SELECT DISTINCT ON (x.sha) $1, x.sha, "
	    "  CASE WHEN x.parent IS NULL THEN '{}' ELSE ARRAY[x.parent] END, "
	    "  coalesce(x.author_name, ''), coalesce(x.author_email, ''), "
	    "  coalesce(x.message, ''), bl_time(x.committed_at), $3 "
	    "FROM json_to_recordset($2::json) AS x(sha text, parent text, "
	    "  author_name text, author_email text, message text, "
	    "  committed_at text) ORDER BY x.sha "
	    "ON CONFLICT (project_id, sha) DO UPDATE SET "
	    "  parents = CASE WHEN c.parents = '{}' THEN EXCLUDED.parents "
	    "    ELSE c.parents END, "
	    "  author_name = CASE WHEN c.author_name = '' THEN "
	    "    EXCLUDED.author_name ELSE c.author_name END, "
	    "  author_email = CASE WHEN c.author_email = '' THEN "
	    "    EXCLUDED.author_email ELSE c.author_email END, "
	    "  message = CASE WHEN c.message = '' THEN EXCLUDED.message "
	    "    ELSE c.message END, "
	    "  committed_at = coalesce(c.committed_at, EXCLUDED.committed_at), "
	    "  branch = CASE WHEN c.branch = '' THEN EXCLUDED.branch "
	    "    ELSE c.branch END "
	    "RETURNING c.id, c.sha", &p);
	free(text);
	if (rc < 0)
		return rc;
	*n = (size_t)dbres_rows(*res);
	ids = xreallocarray(NULL, *n ? *n : 1, sizeof(*ids));
	for (i = 0; i < *n; i++) {
		ids[i].id = dbres_int(*res, (int)i, 0);
		ids[i].sha = dbres_get(*res, (int)i, 1);
	}
	qsort(ids, *n, sizeof(*ids), commit_id_cmp);
	*out = ids;
	return 0;
}

/*
 * Cancels the branch's push jobs that are queued and were never claimed,
 * naming the delivery that superseded them; appends their ids to out.
 */
static int
hook_supersede(json_t *out, struct hook *h, const char *branch)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	char reason[DELIVERY_MAX + 64];
	int i, rc;

	snprintf(reason, sizeof(reason), "superseded by push delivery '%s'",
	    h->delivery);
	dbp_int(&p, h->project.id);
	dbp_str(&p, branch);
	dbp_str(&p, reason);
	if ((rc = db_queryp(&res, h->db, "WITH c AS (UPDATE jobs SET "
	    "state = 'cancelled', fail_reason = $3, finished_at = now() "
	    "WHERE project_id = $1 AND branch = $2 AND reason = 'push' AND "
	    "state = 'queued' AND attempt = 0 RETURNING id) "
	    "SELECT id FROM c ORDER BY id", &p)) < 0)
		return rc;
	for (i = 0; i < dbres_rows(res); i++)
		json_array_append_new(out, json_integer(dbres_int(res, i, 0)));
	dbres_free(res);
	return 0;
}

/* The active targets whose labels contain the settings' target_labels. */
static int
hook_targets(int64_t **out, size_t *n, struct hook *h,
    const struct webhook_settings *s)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	char *labels = jsonx_dump(s->target_labels);
	size_t i;
	int rc;

	dbp_str(&p, labels);
	rc = db_queryp(&res, h->db, "SELECT id FROM targets WHERE active AND "
	    "labels @> $1::jsonb ORDER BY id", &p);
	free(labels);
	if (rc < 0)
		return rc;
	*n = (size_t)dbres_rows(res);
	*out = xreallocarray(NULL, *n ? *n : 1, sizeof(**out));
	for (i = 0; i < *n; i++)
		(*out)[i] = dbres_int(res, (int)i, 0);
	dbres_free(res);
	return 0;
}

/*
 * Queues the push's jobs: its head, or with benchmark_every_commit each
 * of its commits oldest first, on every target; jobs of one push get
 * increasing ids in commit order.
 */
static int
hook_enqueue(json_t *jobs, struct hook *h, const struct push *push,
    const struct webhook_settings *s, const struct commit_id *ids,
    size_t nids)
{
	struct job_spec spec = {
		.project_id = h->project.id, .branch = push->branch,
		.scenarios = s->scenarios, .params = s->params,
		.reason = "push", .priority = 0,
	};
	int default_attempts = (int)req_server(h->r)->settings->max_attempts;
	const struct commit_id *found;
	struct commit_id key;
	int64_t *targets = NULL, job;
	size_t ntargets = 0, i, k, j;
	int rc;

	if ((rc = hook_targets(&targets, &ntargets, h, s)) < 0)
		return rc;
	for (i = 0; i < push->ncommits; i++) {
		key.sha = push->commits[i].sha;
		if (!s->every_commit && strcmp(key.sha, push->head) != 0)
			continue;
		/* A sha the payload lists twice is benchmarked once. */
		for (k = 0; k < i; k++)
			if (strcmp(push->commits[k].sha, key.sha) == 0)
				break;
		if (k < i)
			continue;
		found = bsearch(&key, ids, nids, sizeof(*ids), commit_id_cmp);
		if (found == NULL) {
			rc = BL_ERROR;
			goto out;
		}
		spec.commit_id = found->id;
		for (j = 0; j < ntargets; j++) {
			spec.target_id = targets[j];
			if ((rc = queue_enqueue(&job, h->db, &spec,
			    default_attempts)) < 0)
				goto out;
			json_array_append_new(jobs, json_integer(job));
		}
	}
out:
	free(targets);
	return rc;
}

/*
 * Records a push in one transaction: the delivery (a redelivery stops
 * here), the commits, the jobs it supersedes and the jobs it queues.
 * Pushes to one branch take turns under an advisory lock, so their jobs
 * are queued in the order the pushes arrived and a newer push sees the
 * older one's jobs to supersede.
 */
static void
hook_record(struct hook *h, const struct push *push,
    const struct webhook_settings *s)
{
	struct dbparams p = { .n = 0 };
	struct commit_id *ids = NULL;
	struct dbres *res = NULL;
	json_t *jobs = json_array(), *superseded = json_array();
	size_t nids = 0;
	int rc;

	if ((rc = db_begin(h->db)) < 0)
		goto fail;
	if ((rc = hook_delivery_insert(h)) < 0)
		goto fail;
	dbp_int(&p, h->project.id);
	dbp_str(&p, push->branch);
	if ((rc = db_queryp(NULL, h->db, "SELECT pg_advisory_xact_lock("
	    "hashtextextended('benchline push ' || $1::text || ' ' || $2, 0))",
	    &p)) < 0 ||
	    (rc = hook_commits_upsert(&ids, &nids, &res, h, push)) < 0)
		goto fail;
	if (s->supersede && (rc = hook_supersede(superseded, h,
	    push->branch)) < 0)
		goto fail;
	if ((rc = hook_enqueue(jobs, h, push, s, ids, nids)) < 0 ||
	    (rc = db_commit(h->db)) < 0)
		goto fail;
	log_info("%s push '%s' to %s/%s: %zu commits, %zu jobs queued, %zu "
	    "superseded", forge_name(h->forge), h->delivery, h->project.name,
	    push->branch, push->ncommits, json_array_size(jobs),
	    json_array_size(superseded));
	reply_json(h->r, 201, json_pack("{s:s,s:s,s:s,s:I,s:O,s:O}",
	    "delivery", h->delivery, "project", h->project.name, "branch",
	    push->branch, "commits", (json_int_t)push->ncommits, "jobs", jobs,
	    "superseded", superseded));
	goto out;
fail:
	db_rollback(h->db);
	if (rc == BL_ECONFLICT)
		reply_duplicate(h);
	else if (rc == BL_ERROR && db_errmsg(h->db)[0] == '\0')
		reply_error(h->r, 500, "internal", "cannot queue the jobs of "
		    "push '%s'", h->delivery);
	else
		reply_db_error(h->r, h->db);
out:
	free(ids);
	dbres_free(res);
	json_decref(jobs);
	json_decref(superseded);
}

/* Handles a push event once the sender is known to be genuine. */
static void
hook_push(struct hook *h)
{
	struct webhook_settings s;
	struct push *push = NULL;
	char err[512], reason[400];

	memset(&s, 0, sizeof(s));
	if (hook_delivery_id(h) < 0)
		goto out;
	if (webhook_parse(&push, h->forge, h->body, err, sizeof(err)) < 0) {
		reply_error(h->r, 400, "invalid", "%s", err);
		goto out;
	}
	if (webhook_settings_load(&s, h->project.settings, err,
	    sizeof(err)) < 0) {
		log_warnx("project '%s': %s", h->project.name, err);
		reply_error(h->r, 500, "internal", "project '%s' has invalid "
		    "webhook settings: %s", h->project.name, err);
		goto out;
	}
	if (push->is_tag)
		hook_ignore(h, "tag push", NULL);
	else if (push->deleted)
		hook_ignore(h, "branch deletion", push->branch);
	else if (!webhook_branch_wanted(&s, push->branch,
	    h->project.default_branch)) {
		snprintf(reason, sizeof(reason), "branch '%.255s' is not one "
		    "the project benchmarks", push->branch);
		hook_ignore(h, reason, push->branch);
	} else
		hook_record(h, push, &s);
out:
	webhook_settings_free(&s);
	webhook_free(push);
}

/* GitHub's X-GitHub-Event: ping is answered, push handled, others refused. */
static void
hook_github_event(struct hook *h)
{
	const char *event = req_header(h->r, "X-GitHub-Event");

	if (event == NULL)
		reply_error(h->r, 400, "invalid", "missing X-GitHub-Event");
	else if (strcmp(event, "ping") == 0)
		reply_json(h->r, 200, json_pack("{s:b,s:s}", "pong", 1,
		    "project", h->project.name));
	else if (strcmp(event, "push") == 0)
		hook_push(h);
	else
		reply_error(h->r, 400, "invalid", "X-GitHub-Event '%.64s' is "
		    "not handled: send push events (ping is answered too)",
		    event);
}

/* GitLab's X-Gitlab-Event: pushes are handled, tag pushes ignored, others refused. */
static void
hook_gitlab_event(struct hook *h)
{
	const char *event = req_header(h->r, "X-Gitlab-Event");

	if (event == NULL)
		reply_error(h->r, 400, "invalid", "missing X-Gitlab-Event");
	else if (strcmp(event, "Push Hook") == 0)
		hook_push(h);
	else if (strcmp(event, "Tag Push Hook") == 0) {
		if (hook_delivery_id(h) == 0)
			hook_ignore(h, "tag push", NULL);
	} else
		reply_error(h->r, 400, "invalid", "X-Gitlab-Event '%.64s' is "
		    "not handled: send push events", event);
}

/*
 * Both endpoints: find the project, check that its secret vouches for the
 * request, then handle the event.  With ?project= the signature is checked
 * before the body is parsed; without, the body must be parsed first to
 * learn the repository.  A refused delivery changes nothing.
 */
static void
hooks_handle(struct request *r, enum forge forge)
{
	const char *name = req_query(r, "project");
	struct hook h;

	memset(&h, 0, sizeof(h));
	h.r = r;
	h.forge = forge;
	if ((h.db = req_db(r)) == NULL)
		return;
	if (name != NULL) {
		if (hook_find_by_name(&h, name) < 0 || !hook_authentic(&h) ||
		    (h.body = req_json_body(r)) == NULL)
			goto out;
	} else {
		if ((h.body = req_json_body(r)) == NULL ||
		    hook_find_by_urls(&h) < 0 || !hook_authentic(&h))
			goto out;
	}
	if (h.project.settings == NULL) {
		reply_error(r, 500, "internal", "cannot read the settings of "
		    "project '%s'", h.project.name);
		goto out;
	}
	if (forge == FORGE_GITHUB)
		hook_github_event(&h);
	else
		hook_gitlab_event(&h);
out:
	json_decref(h.body);
	hook_project_free(&h.project);
	dbpool_put(req_server(r)->pool, h.db);
}

/* POST /hooks/github[?project=P] */
void
api_hooks_github(struct request *r)
{
	hooks_handle(r, FORGE_GITHUB);
}

/* POST /hooks/gitlab[?project=P] */
void
api_hooks_gitlab(struct request *r)
{
	hooks_handle(r, FORGE_GITLAB);
}
