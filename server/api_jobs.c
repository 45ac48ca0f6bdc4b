/* The worker-facing job endpoints: claim (long poll), heartbeat, fail and result. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "server.h"
#include "xmalloc.h"

/* Parses the {} path parameter as a job id, or answers 404. */
static int
job_id_param(int64_t *out, struct request *r)
{
	const char *s = req_param(r, 0);
	char *end;

	*out = s ? strtoll(s, &end, 10) : 0;
	if (s == NULL || *end != '\0' || *out <= 0) {
		reply_error(r, 404, "not_found", "no job '%s'", s ? s : "");
		return -1;
	}
	return 0;
}

/* Authenticates a worker; answers 401 (or 503) on failure. */
static int
api_worker(struct worker_ident *out, struct request *r, struct db *db)
{
	int rc = auth_worker(out, r, db);

	if (rc == BL_EAUTH)
		reply_status(r, rc, "a valid worker token is required");
	else if (rc < 0)
		reply_db_error(r, db);
	return rc;
}

struct claim_state {
	struct queue		*queue;
	struct waiter		*waiter;
	struct worker_ident	 worker;
	int64_t			 deadline_ms;
};

static void
claim_state_free(void *arg)
{
	struct claim_state *st = arg;

	queue_wait_cancel(st->queue, st->waiter);
	free(st);
}

/* Reads the claim's options on its first call: the wait and the worker's version. */
static int
claim_begin(struct request *r, struct db *db)
{
	struct server *srv = req_server(r);
	struct claim_state *st;
	struct worker_ident w;
	struct dbparams p = { .n = 0 };
	const char *version = NULL;
	int64_t wait_s = srv->settings->claim_wait_seconds;
	char err[256];
	json_t *body = NULL;

	if (api_worker(&w, r, db) < 0)
		return -1;
	if (req_body(r)->len > 0) {
		if ((body = req_json_body(r)) == NULL)
			return -1;
		if (jsonx_int(&wait_s, body, "wait_s", 0, 0,
		    srv->settings->claim_wait_seconds, "$", err, sizeof(err)) < 0 ||
		    jsonx_string(&version, body, "worker_version", 0, 64, "$", err,
		    sizeof(err)) < 0) {
			json_decref(body);
			reply_status(r, BL_EINVAL, err);
			return -1;
		}
	}
	dbp_int(&p, w.worker_id);
	dbp_str(&p, version ? version : "");
	db_queryp(NULL, db, "UPDATE workers SET last_heartbeat = now(), "
	    "version = CASE WHEN $2 = '' THEN version ELSE $2 END "
	    "WHERE id = $1", &p);
	json_decref(body);
	st = xcalloc(1, sizeof(*st));
	st->queue = srv->queue;
	st->worker = w;
	st->deadline_ms = clock_mono_ms() + wait_s * 1000;
	req_set_state(r, st, claim_state_free);
	return 0;
}

/*
 * POST /api/v1/jobs/claim: hands the worker the next job of its target, or
 * waits for one up to wait_s seconds (204 when none came).  A waiting claim
 * is suspended, not parked on a thread; the queue's thread resumes it when
 * a job of its target is queued, and this handler then runs again.
 */
void
api_jobs_claim(struct request *r)
{
	struct server *srv = req_server(r);
	struct claim_state *st;
	struct db *db;
	json_t *job = NULL;
	int rc;

	if ((db = req_db(r)) == NULL)
		return;
	if (req_state(r) == NULL && claim_begin(r, db) < 0)
		goto out;
	st = req_state(r);
	for (;;) {
		queue_wait_cancel(st->queue, st->waiter);
		st->waiter = NULL;
		if (srv->stopping) {
			reply_no_content(r);
			break;
		}
		/* Registered before the attempt, so no NOTIFY falls in between. */
		st->waiter = queue_wait_register(st->queue, r,
		    st->worker.target_id, st->deadline_ms);
		rc = queue_claim(&job, db, &st->worker,
		    (int)srv->settings->lease_seconds,
		    (int)srv->settings->queue_aging_s);
		if (rc == 0) {
			log_info("job %" PRId64 " claimed by worker %" PRId64
			    " (attempt %" PRId64 ")",
			    (int64_t)json_integer_value(json_object_get(job, "id")),
			    st->worker.worker_id,
			    (int64_t)json_integer_value(json_object_get(job,
			    "attempt")));
			reply_json(r, 200, job);
			break;
		}
		if (rc != BL_ENOTFOUND) {
			reply_db_error(r, db);
			break;
		}
		if (clock_mono_ms() >= st->deadline_ms) {
			reply_no_content(r);
			break;
		}
		if (queue_wait_park(st->queue, st->waiter))
			break;
	}
out:
	dbpool_put(srv->pool, db);
}

/* Reads the attempt a heartbeat, fail or result speaks for. */
static int
body_attempt(int64_t *out, struct request *r, json_t *body)
{
	char err[256];

	if (jsonx_int(out, body, "attempt", 1, 1, 1000000, "$", err,
	    sizeof(err)) < 0) {
		reply_status(r, BL_EINVAL, err);
		return -1;
	}
	return 0;
}

static void
reply_lease(struct request *r, int rc, int64_t job_id, struct db *db)
{
	char msg[160];

	if (rc == BL_ENOTFOUND)
		snprintf(msg, sizeof(msg), "no job '%" PRId64 "'", job_id);
	else if (rc == BL_ECONFLICT)
		snprintf(msg, sizeof(msg), "job '%" PRId64 "' is not leased to "
		    "this worker for that attempt", job_id);
	else {
		reply_db_error(r, db);
		return;
	}
	reply_status(r, rc, msg);
}

void
api_jobs_heartbeat(struct request *r)
{
	struct server *srv = req_server(r);
	struct worker_ident w;
	int64_t job_id, attempt;
	json_t *body = NULL, *out = NULL;
	struct db *db;
	int rc;

	if (job_id_param(&job_id, r) < 0 || (db = req_db(r)) == NULL)
		return;
	if (api_worker(&w, r, db) < 0 || (body = req_json_body(r)) == NULL ||
	    body_attempt(&attempt, r, body) < 0)
		goto out;
	rc = queue_heartbeat(&out, db, job_id, &w, (int)attempt,
	    (int)srv->settings->lease_seconds);
	if (rc < 0)
		reply_lease(r, rc, job_id, db);
	else
		reply_json(r, 200, out);
out:
	json_decref(body);
	dbpool_put(srv->pool, db);
}

/* POST /api/v1/jobs/{id}/fail: {"attempt", "reason", "log_tail", "retry"}. */
void
api_jobs_fail(struct request *r)
{
	static const char *const fields[] = {
		"attempt", "reason", "log_tail", "retry", NULL
	};
	struct server *srv = req_server(r);
	const char *reason = NULL, *tail = "";
	struct worker_ident w;
	int64_t job_id, attempt;
	json_t *body = NULL;
	struct db *db;
	char err[256];
	int rc, retry = 0;

	if (job_id_param(&job_id, r) < 0 || (db = req_db(r)) == NULL)
		return;
	if (api_worker(&w, r, db) < 0 || (body = req_json_body(r)) == NULL ||
	    body_attempt(&attempt, r, body) < 0)
		goto out;
	if (jsonx_only(body, fields, "$", err, sizeof(err)) < 0 ||
	    jsonx_string(&reason, body, "reason", 1, 4096, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_string(&tail, body, "log_tail", 0, 65536, "$", err,
	    sizeof(err)) < 0 ||
	    jsonx_bool(&retry, body, "retry", 0, "$", err, sizeof(err)) < 0) {
		reply_status(r, BL_EINVAL, err);
		goto out;
	}
	rc = queue_fail(db, job_id, &w, (int)attempt, reason, tail, retry);
	if (rc < 0) {
		reply_lease(r, rc, job_id, db);
		goto out;
	}
	log_info("job %" PRId64 " attempt %" PRId64 " %s: %s", job_id, attempt,
	    retry ? "handed back" : "failed", reason);
	reply_json(r, 200, json_pack("{s:I,s:s}", "id", (json_int_t)job_id,
	    "state", retry ? "handed_back" : "failed"));
out:
	json_decref(body);
	dbpool_put(srv->pool, db);
}

/*
 * POST /api/v1/jobs/{id}/result: validates the whole upload before touching
 * the database, then stores it in one transaction (ingest.c).
 */
void
api_jobs_result(struct request *r)
{
	struct server *srv = req_server(r);
	struct result *res = NULL;
	struct worker_ident w;
	json_t *body = NULL, *out = NULL;
	int64_t job_id;
	struct db *db;
	char err[512];
	int rc;

	if (job_id_param(&job_id, r) < 0 || (db = req_db(r)) == NULL)
		return;
	if (api_worker(&w, r, db) < 0 || (body = req_json_body(r)) == NULL)
		goto out;
	if ((rc = ingest_parse(&res, body, err, sizeof(err))) < 0) {
		reply_status(r, rc, err);
		goto out;
	}
	if ((rc = ingest_store(&out, db, job_id, &w, res, err, sizeof(err))) < 0)
		reply_status(r, rc, err);
	else
		reply_json(r, 200, out);
out:
	ingest_free(res);
	json_decref(body);
	dbpool_put(srv->pool, db);
}
