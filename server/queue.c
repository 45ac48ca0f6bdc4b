/* The job queue: enqueue, claim with SKIP LOCKED, leases, and long-poll waiters woken by NOTIFY. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "server.h"
#include "xmalloc.h"

struct waiter {
	struct request	*r;
	int64_t		 target_id;
	int64_t		 deadline_ms;
	int		 woken;
	int		 parked;
	struct waiter	*prev;
	struct waiter	*next;
};

struct queue {
	struct server	*srv;
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	struct waiter	*head;
	volatile int	 stop;
};

static const char *const job_reasons[] = {
	"push", "bisect", "manual", "baseline", "confirm", NULL
};

int
queue_enqueue(int64_t *out, struct db *db, const struct job_spec *spec,
    int default_max_attempts)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	char *scen, *params;
	int rc;

	scen = jsonx_dump(spec->scenarios);
	params = spec->params ? jsonx_dump(spec->params) : NULL;
	dbp_int(&p, spec->project_id);
	dbp_int(&p, spec->commit_id);
	dbp_int(&p, spec->target_id);
	dbp_str(&p, spec->branch);
	dbp_str(&p, scen);
	dbp_str(&p, params ? params : "{}");
	dbp_str(&p, spec->reason);
	dbp_int(&p, spec->priority);
	dbp_int(&p, spec->max_attempts > 0 ? spec->max_attempts :
	    default_max_attempts);
	dbp_id(&p, spec->investigation_id);
	dbp_id(&p, spec->pinned_worker_id);
	rc = db_queryp(&res, db, "INSERT INTO jobs (project_id, commit_id, "
	    "target_id, branch, scenarios, params, reason, priority, "
	    "max_attempts, investigation_id, pinned_worker_id) VALUES ($1, $2, "
	    "$3, $4, ARRAY(SELECT json_array_elements_text($5::json)), "
	    "$6::jsonb, $7::job_reason, $8, $9, $10, $11) RETURNING id", &p);
	free(scen);
	free(params);
	if (rc < 0)
		return rc;
	*out = dbres_int(res, 0, 0);
	dbres_free(res);
	return 0;
}

/*
 * Queues a job named by project, target and commit sha, recording the commit
 * if it is new.  Without a branch, the project's default branch is used.
 * On BL_ENOTFOUND, err names the missing field.
 */
int
queue_enqueue_named(int64_t *out, struct db *db, const char *project,
    const char *target, const char *sha, const struct job_spec *spec,
    int default_max_attempts, char *err, size_t errlen)
{
	struct job_spec js = *spec;
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	char branch[256];
	int rc;

	if ((rc = catalog_project_find(&js.project_id, db, project)) < 0) {
		snprintf(err, errlen, "$.project: no project '%s'", project);
		return rc;
	}
	if ((rc = catalog_target_find(&js.target_id, db, target)) < 0) {
		snprintf(err, errlen, "$.target: no target '%s'", target);
		return rc;
	}
	if (js.branch == NULL) {
		dbp_int(&p, js.project_id);
		if ((rc = db_queryp(&res, db, "SELECT default_branch FROM "
		    "projects WHERE id = $1", &p)) < 0)
			return rc;
		snprintf(branch, sizeof(branch), "%s", dbres_get(res, 0, 0));
		dbres_free(res);
		js.branch = branch;
	}
	if ((rc = catalog_commit_ensure(&js.commit_id, db, js.project_id, sha,
	    js.branch)) < 0)
		return rc;
	return queue_enqueue(out, db, &js, default_max_attempts);
}

int
queue_reason_valid(const char *reason)
{
	size_t i;

	for (i = 0; job_reasons[i] != NULL; i++)
		if (strcmp(reason, job_reasons[i]) == 0)
			return 1;
	return 0;
}

int
queue_claim(json_t **out, struct db *db, const struct worker_ident *w,
    int lease_seconds, int aging_s)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	json_error_t jerr;
	int rc;

	dbp_int(&p, w->target_id);
	dbp_int(&p, w->worker_id);
	dbp_int(&p, lease_seconds);
	dbp_int(&p, aging_s > 0 ? aging_s : 1);
	/*
	 * A target's queue is short (its jobs of the last hours), so the
	 * aged priority is computed over it rather than read from an index.
	 */
	rc = db_queryp(&res, db,
	    "WITH next AS (SELECT id FROM jobs WHERE state = 'queued' AND "
	    "  target_id = $1 AND (pinned_worker_id IS NULL OR "
	    "  pinned_worker_id = $2) ORDER BY priority + floor(extract(epoch "
	    "  FROM now() - created_at) / $4) DESC, id LIMIT 1 "
	    "  FOR UPDATE SKIP LOCKED), "
	    "claimed AS (UPDATE jobs j SET state = 'running', worker_id = $2, "
	    "  attempt = j.attempt + 1, started_at = now(), "
	    "  lease_expires_at = now() + make_interval(secs => $3) "
	    "  FROM next WHERE j.id = next.id RETURNING j.*), "
	    "pin AS (UPDATE jobs j SET pinned_worker_id = $2 FROM claimed c "
	    "  WHERE c.investigation_id IS NOT NULL AND j.investigation_id = "
	    "  c.investigation_id AND j.state = 'queued' AND "
	    "  j.pinned_worker_id IS NULL RETURNING j.id), "
	    "inv AS (UPDATE investigations i SET worker_id = $2 FROM claimed c "
	    "  WHERE i.id = c.investigation_id AND i.worker_id IS NULL "
	    "  RETURNING i.id) "
	    "SELECT json_build_object('id', c.id, 'attempt', c.attempt, "
	    "  'project', p.name, 'repo_url', p.repo_url, 'commit', cm.sha, "
	    "  'branch', c.branch, 'target', t.name, 'scenarios', c.scenarios, "
	    "  'params', c.params, 'reason', c.reason, 'lease_seconds', $3::int, "
	    "  'lease_expires_at', c.lease_expires_at, "
	    "  'project_settings', p.settings) "
	    "FROM claimed c JOIN projects p ON p.id = c.project_id "
	    "JOIN commits cm ON cm.id = c.commit_id "
	    "JOIN targets t ON t.id = c.target_id", &p);
	if (rc < 0)
		return rc;
	if (dbres_rows(res) == 0) {
		dbres_free(res);
		return BL_ENOTFOUND;
	}
	*out = json_loads(dbres_get(res, 0, 0), 0, &jerr);
	dbres_free(res);
	return *out != NULL ? 0 : BL_ERROR;
}

/* Tells BL_ENOTFOUND (no such job) from BL_ECONFLICT (not this worker's lease). */
static int
queue_lease_lost(struct db *db, int64_t job_id)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	dbp_int(&p, job_id);
	if ((rc = db_queryp(&res, db, "SELECT 1 FROM jobs WHERE id = $1",
	    &p)) < 0)
		return rc;
	rc = dbres_rows(res) == 1 ? BL_ECONFLICT : BL_ENOTFOUND;
	dbres_free(res);
	return rc;
}

int
queue_heartbeat(json_t **out, struct db *db, int64_t job_id,
    const struct worker_ident *w, int attempt, int lease_seconds)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	dbp_int(&p, job_id);
	dbp_int(&p, w->worker_id);
	dbp_int(&p, attempt);
	dbp_int(&p, lease_seconds);
	if ((rc = db_queryp(&res, db, "UPDATE jobs SET lease_expires_at = "
	    "now() + make_interval(secs => $4) WHERE id = $1 AND worker_id = $2 "
	    "AND attempt = $3 AND state = 'running' RETURNING "
	    "json_build_object('id', id, 'attempt', attempt, "
	    "'lease_expires_at', lease_expires_at)", &p)) < 0)
		return rc;
	if (dbres_rows(res) == 0) {
		dbres_free(res);
		return queue_lease_lost(db, job_id);
	}
	*out = json_loads(dbres_get(res, 0, 0), 0, NULL);
	dbres_free(res);
	p.n = 0;
	dbp_int(&p, w->worker_id);
	db_queryp(NULL, db, "UPDATE workers SET last_heartbeat = now() "
	    "WHERE id = $1", &p);
	return *out != NULL ? 0 : BL_ERROR;
}

int
queue_fail(struct db *db, int64_t job_id, const struct worker_ident *w,
    int attempt, const char *reason, const char *log_tail, int retry)
{
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int rc;

	dbp_int(&p, job_id);
	dbp_int(&p, w->worker_id);
	dbp_int(&p, attempt);
	dbp_str(&p, reason);
	dbp_str(&p, log_tail);
	dbp_str(&p, retry ? "t" : "f");
	/* A job handed back for retry goes to the queue while attempts remain. */
	if ((rc = db_queryp(&res, db, "UPDATE jobs SET "
	    "state = CASE WHEN $6::bool AND attempt < max_attempts "
	    "  THEN 'queued' ELSE 'failed' END::job_state, "
	    "worker_id = CASE WHEN $6::bool AND attempt < max_attempts "
	    "  THEN NULL ELSE worker_id END, "
	    "fail_reason = $4, log_tail = $5, lease_expires_at = NULL, "
	    "finished_at = CASE WHEN $6::bool AND attempt < max_attempts "
	    "  THEN NULL ELSE now() END "
	    "WHERE id = $1 AND worker_id = $2 AND attempt = $3 AND "
	    "state = 'running'", &p)) < 0)
		return rc;
	rc = dbres_affected(res) == 1 ? 0 : queue_lease_lost(db, job_id);
	dbres_free(res);
	return rc;
}

int
queue_reap(struct db *db, int *requeued, int *failed)
{
	struct dbres *res = NULL;
	int rc, i;

	*requeued = *failed = 0;
	if ((rc = db_query(&res, db,
	    "WITH expired AS (SELECT id FROM jobs WHERE state = 'running' AND "
	    "  lease_expires_at < now() FOR UPDATE SKIP LOCKED) "
	    "UPDATE jobs j SET "
	    "  state = CASE WHEN j.attempt < j.max_attempts THEN 'queued' "
	    "    ELSE 'failed' END::job_state, "
	    "  worker_id = CASE WHEN j.attempt < j.max_attempts THEN NULL "
	    "    ELSE j.worker_id END, "
	    "  lease_expires_at = NULL, "
	    "  fail_reason = CASE WHEN j.attempt < j.max_attempts THEN "
	    "    format('lease of attempt %s expired', j.attempt) ELSE "
	    "    format('lease expired on the last of %s attempts', j.attempt) END, "
	    "  finished_at = CASE WHEN j.attempt < j.max_attempts THEN NULL "
	    "    ELSE now() END "
	    "FROM expired WHERE j.id = expired.id RETURNING j.id, j.state",
	    0, NULL)) < 0)
		return rc;
	for (i = 0; i < dbres_rows(res); i++) {
		if (strcmp(dbres_get(res, i, 1), "queued") == 0) {
			(*requeued)++;
			log_info("job %s: lease expired, back in the queue",
			    dbres_get(res, i, 0));
		} else {
			(*failed)++;
			log_warnx("job %s: lease expired on its last attempt, "
			    "failed", dbres_get(res, i, 0));
		}
	}
	dbres_free(res);
	/*
	 * Pinned jobs wait for their worker; one gone for 15 minutes (or
	 * revoked) will not come back for them, so any worker may take them.
	 */
	if ((rc = db_query(&res, db, "UPDATE jobs j SET pinned_worker_id = NULL "
	    "FROM workers w WHERE j.state = 'queued' AND w.id = "
	    "j.pinned_worker_id AND (w.revoked OR coalesce(w.last_heartbeat, "
	    "w.created_at) < now() - interval '15 minutes') RETURNING j.id",
	    0, NULL)) < 0)
		return rc;
	if (dbres_rows(res) > 0)
		log_info("%d queued job(s) unpinned from a worker gone silent",
		    dbres_rows(res));
	dbres_free(res);
	return 0;
}

/* Resumes a parked waiter; called with the lock held. */
static void
waiter_wake(struct waiter *w)
{
	w->woken = 1;
	if (w->parked) {
		w->parked = 0;
		req_resume(w->r);
	}
}

static void
queue_wake(struct queue *q, int64_t target_id, int all, int64_t now_ms)
{
	struct waiter *w;

	pthread_mutex_lock(&q->lock);
	for (w = q->head; w != NULL; w = w->next)
		if (all || w->target_id == target_id || w->deadline_ms <= now_ms)
			waiter_wake(w);
	pthread_mutex_unlock(&q->lock);
}

struct waiter *
queue_wait_register(struct queue *q, struct request *r, int64_t target_id,
    int64_t deadline_ms)
{
	struct waiter *w = xcalloc(1, sizeof(*w));

	w->r = r;
	w->target_id = target_id;
	w->deadline_ms = deadline_ms;
	pthread_mutex_lock(&q->lock);
	w->next = q->head;
	if (q->head != NULL)
		q->head->prev = w;
	q->head = w;
	if (q->stop)
		w->woken = 1;
	pthread_mutex_unlock(&q->lock);
	return w;
}

int
queue_wait_park(struct queue *q, struct waiter *w)
{
	int parked = 0;

	pthread_mutex_lock(&q->lock);
	if (!w->woken && !q->stop) {
		req_suspend(w->r);
		w->parked = parked = 1;
	}
	pthread_mutex_unlock(&q->lock);
	return parked;
}

void
queue_wait_cancel(struct queue *q, struct waiter *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		q->head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&q->lock);
	free(w);
}

/*
 * The queue's thread: listens for jobs being queued and wakes the claims
 * waiting on their target, wakes claims whose wait is over, and returns
 * expired leases to the queue.  It holds its own connection, outside the pool.
 */
static void *
queue_main(void *arg)
{
	struct queue *q = arg;
	struct settings *s = q->srv->settings;
	int64_t next_reap = 0, now;
	struct db *db = NULL;
	char payload[64];
	int rc, requeued, failed;

	log_set_context("queue");
	while (!q->stop) {
		now = clock_mono_ms();
		if (db == NULL) {
			if (db_connect(&db, s->database_url) < 0 ||
			    db_listen(db, "bl_jobs") < 0) {
				db_close(db);
				db = NULL;
				queue_wake(q, 0, 1, now);
				clock_sleep_ms(1000);
				continue;
			}
			/* Jobs may have been queued while nobody listened. */
			queue_wake(q, 0, 1, now);
		}
		rc = db_notify_wait(db, 200, payload, sizeof(payload));
		while (rc == 1) {
			queue_wake(q, strtoll(payload, NULL, 10), 0,
			    clock_mono_ms());
			rc = db_notify_wait(db, 0, payload, sizeof(payload));
		}
		if (rc < 0) {
			log_warnx("lost the database connection: %s",
			    db_errmsg(db));
			db_close(db);
			db = NULL;
			continue;
		}
		now = clock_mono_ms();
		queue_wake(q, -1, 0, now);
		if (now >= next_reap) {
			next_reap = now + s->reap_interval_ms;
			if (queue_reap(db, &requeued, &failed) < 0)
				log_warnx("cannot reap leases: %s", db_errmsg(db));
		}
	}
	db_close(db);
	return NULL;
}

int
queue_start(struct queue **out, struct server *srv)
{
	struct queue *q = xcalloc(1, sizeof(*q));

	q->srv = srv;
	pthread_mutex_init(&q->lock, NULL);
	if (pthread_create(&q->thread, NULL, queue_main, q) != 0) {
		free(q);
		return BL_ERROR;
	}
	*out = q;
	return 0;
}

/* Wakes every waiter so their requests end, then joins the thread. */
void
queue_stop(struct queue *q)
{
	struct waiter *w;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = 1;
	for (w = q->head; w != NULL; w = w->next)
		waiter_wake(w);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
}

void
queue_free(struct queue *q)
{
	if (q == NULL)
		return;
	pthread_mutex_destroy(&q->lock);
	free(q);
}
