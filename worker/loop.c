/* The worker's loop: claim, check out, build, run the scenarios, spool and upload, with heartbeats. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "httpc.h"
#include "log.h"
#include "worker.h"
#include "xmalloc.h"

struct job {
	int64_t		 id;
	int		 attempt;
	const char	*commit;
	const char	*repo_url;
	const char	*target;
	json_t		*scenarios;
	json_t		*params;
	json_t		*raw;
};

struct worker {
	const struct worker_settings	*s;
	volatile int			*stop;
	struct httpc			*http;
	struct repo_cache		*repos;
	struct spool			*spool;
	char				*tree;
	char				 ctx[48];
};

/*
 * The watchdog of one job: sends the heartbeats that keep its lease, and
 * raises the job's cancel flag when the lease is lost, the worker is told
 * to stop, or the job runs past job_timeout_s.  It wakes every second so a
 * stop interrupts a long scenario promptly.
 */
struct heartbeat {
	pthread_t			 thread;
	const struct worker_settings	*s;
	const struct job		*job;
	volatile int			*stop;		/* the worker's */
	volatile int			*cancel;	/* the job's */
	pthread_mutex_t			 lock;
	pthread_cond_t			 cond;
	int				 done;
	volatile int			 lost;
	volatile int			 timed_out;
	char				 ctx[48];
};

static void *
heartbeat_main(void *arg)
{
	struct heartbeat *hb = arg;
	struct httpc *h = NULL;
	struct timespec ts;
	char path[96], body[64], err[256];
	int64_t start = clock_mono_ms(), next = start + hb->s->heartbeat_s * 1000;
	json_t *resp = NULL;
	long status;

	log_set_context(hb->ctx);
	httpc_new(&h, hb->s->server_url, hb->s->token);
	snprintf(path, sizeof(path), "/api/v1/jobs/%" PRId64 "/heartbeat",
	    hb->job->id);
	snprintf(body, sizeof(body), "{\"attempt\":%d}", hb->job->attempt);
	pthread_mutex_lock(&hb->lock);
	while (!hb->done) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&hb->cond, &hb->lock, &ts);
		if (hb->done)
			break;
		if (*hb->stop)
			*hb->cancel = 1;
		if (clock_mono_ms() - start > hb->s->job_timeout_s * 1000 &&
		    !hb->timed_out) {
			log_warnx("job ran past %lld s; stopping it",
			    hb->s->job_timeout_s);
			hb->timed_out = 1;
			*hb->cancel = 1;
		}
		if (clock_mono_ms() < next)
			continue;
		next = clock_mono_ms() + hb->s->heartbeat_s * 1000;
		pthread_mutex_unlock(&hb->lock);
		if (httpc_post(h, path, body, strlen(body), 30, &status, &resp,
		    err, sizeof(err)) < 0)
			log_warnx("heartbeat failed: %s", err);
		else if (status == 409 || status == 404) {
			log_warnx("lease lost (%ld): %s; abandoning the job",
			    status, httpc_error_message(resp));
			hb->lost = 1;
			*hb->cancel = 1;
		} else if (status != 200)
			log_warnx("heartbeat answered %ld", status);
		json_decref(resp);
		resp = NULL;
		pthread_mutex_lock(&hb->lock);
	}
	pthread_mutex_unlock(&hb->lock);
	httpc_free(h);
	return NULL;
}

static void
heartbeat_start(struct heartbeat *hb, const struct worker_settings *s,
    const struct job *job, volatile int *stop, volatile int *cancel)
{
	memset(hb, 0, sizeof(*hb));
	hb->s = s;
	hb->job = job;
	hb->stop = stop;
	hb->cancel = cancel;
	snprintf(hb->ctx, sizeof(hb->ctx), "job=%" PRId64 " hb", job->id);
	pthread_mutex_init(&hb->lock, NULL);
	pthread_cond_init(&hb->cond, NULL);
	pthread_create(&hb->thread, NULL, heartbeat_main, hb);
}

static void
heartbeat_stop(struct heartbeat *hb)
{
	pthread_mutex_lock(&hb->lock);
	hb->done = 1;
	pthread_cond_signal(&hb->cond);
	pthread_mutex_unlock(&hb->lock);
	pthread_join(hb->thread, NULL);
	pthread_mutex_destroy(&hb->lock);
	pthread_cond_destroy(&hb->cond);
}

/* Reads the first line of a file into buf; "" when absent. */
static void
read_line(char *buf, size_t len, const char *path, const char *prefix)
{
	char line[512];
	FILE *fp = fopen(path, "r");

	buf[0] = '\0';
	if (fp == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (prefix != NULL && strncmp(line, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(buf, len, "%s", prefix ? strchr(line, ':') + 2 : line);
		buf[strcspn(buf, "\n")] = '\0';
		break;
	}
	fclose(fp);
}

/* The environment fingerprint: what a result was measured on. */
static json_t *
environment(const struct worker_settings *s, const struct job *job)
{
	char cpu[512], gov[512], cc[512] = "";
	struct utsname u;
	json_t *env;
	FILE *fp;

	read_line(cpu, sizeof(cpu), "/proc/cpuinfo", "model name");
	read_line(gov, sizeof(gov),
	    "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", NULL);
	if ((fp = popen("cc --version 2>/dev/null", "r")) != NULL) {
		if (fgets(cc, sizeof(cc), fp) == NULL)
			cc[0] = '\0';
		cc[strcspn(cc, "\n")] = '\0';
		pclose(fp);
	}
	uname(&u);
	env = json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s}",
	    "cpu_model", cpu[0] ? cpu : u.machine,
	    "cores", (json_int_t)sysconf(_SC_NPROCESSORS_ONLN),
	    "kernel", u.release, "compiler", cc, "engine_commit", job->commit,
	    "worker_version", BL_WORKER_VERSION, "hostname", u.nodename);
	if (gov[0] != '\0')
		json_object_set_new(env, "governor", json_string(gov));
	json_object_set_new(env, "arch", json_string(u.machine));
	json_object_set_new(env, "engine_cpus", json_string(s->engine_cpus));
	return env;
}

/* Tells the server the job failed, or with retry hands it back. */
static void
job_fail(struct worker *w, const struct job *job, const char *reason,
    const char *log_tail, int retry)
{
	json_t *body, *resp = NULL;
	char path[96], err[256], *text;
	long status;

	log_warnx("%s: %s", retry ? "handing the job back" : "job failed",
	    reason);
	body = json_pack("{s:i,s:s,s:s,s:b}", "attempt", job->attempt, "reason",
	    reason, "log_tail", log_tail ? log_tail : "", "retry", retry);
	text = jsonx_dump(body);
	snprintf(path, sizeof(path), "/api/v1/jobs/%" PRId64 "/fail", job->id);
	if (httpc_post(w->http, path, text, strlen(text), 30, &status, &resp, err,
	    sizeof(err)) < 0)
		log_warnx("cannot report the failure: %s", err);
	else if (status != 200)
		log_warnx("failure report answered %ld: %s", status,
		    httpc_error_message(resp));
	json_decref(resp);
	json_decref(body);
	free(text);
}

static int
job_parse(struct job *job, json_t *raw)
{
	memset(job, 0, sizeof(*job));
	job->raw = raw;
	job->id = json_integer_value(json_object_get(raw, "id"));
	job->attempt = (int)json_integer_value(json_object_get(raw, "attempt"));
	job->commit = json_string_value(json_object_get(raw, "commit"));
	job->repo_url = json_string_value(json_object_get(raw, "repo_url"));
	job->target = json_string_value(json_object_get(raw, "target"));
	job->scenarios = json_object_get(raw, "scenarios");
	job->params = json_object_get(raw, "params");
	if (job->id <= 0 || job->attempt <= 0 || job->commit == NULL ||
	    job->repo_url == NULL || !json_is_array(job->scenarios))
		return BL_EINVAL;
	return 0;
}

/*
 * Runs one claimed job to its end: a result in the spool, a failure
 * reported, or the job handed back when the worker is stopping.
 */
static void
job_run(struct worker *w, json_t *raw)
{
	const struct worker_settings *s = w->s;
	struct proc_limits lim = { s->limit_cpu_s, s->limit_as_mb,
	    s->limit_nofile, NULL };
	struct manifest *m = NULL;
	struct heartbeat hb;
	struct tailbuf log;
	struct job job;
	json_t *scen_out = NULL, *result = NULL, *elem, *params, *one = NULL;
	char err[2048], reason[2600], *mpath = NULL, *tail = NULL, *text = NULL;
	double t0 = clock_mono_s(), build_s = 0;
	volatile int cancel = 0;
	const char *name;
	size_t i;
	int status, rc;

	tailbuf_init(&log, (size_t)s->log_tail_bytes);
	if (job_parse(&job, raw) < 0) {
		log_warnx("claimed job is malformed; ignoring it");
		tailbuf_free(&log);
		return;
	}
	snprintf(w->ctx, sizeof(w->ctx), "job=%" PRId64, job.id);
	log_set_context(w->ctx);
	log_info("claimed: commit %s of %s, attempt %d, scenarios %s",
	    job.commit, job.repo_url, job.attempt,
	    (text = jsonx_dump(job.scenarios)));
	free(text);
	text = NULL;
	if (s->target[0] != '\0' && job.target != NULL &&
	    strcmp(s->target, job.target) != 0)
		log_warnx("job is for target '%s', this worker is configured as "
		    "'%s'", job.target, s->target);
	heartbeat_start(&hb, s, &job, w->stop, &cancel);

	log_info("checkout: %s", job.commit);
	if (repo_checkout(w->repos, job.repo_url, job.commit, w->tree, err,
	    sizeof(err)) < 0) {
		snprintf(reason, sizeof(reason), "checkout failed: %s", err);
		job_fail(w, &job, reason, NULL, 1);
		goto out;
	}
	mpath = xasprintf("%s/benchline.json", w->tree);
	if (manifest_load(&m, mpath, err, sizeof(err)) < 0) {
		snprintf(reason, sizeof(reason), "bad manifest: %s", err);
		job_fail(w, &job, reason, NULL, 0);
		goto out;
	}
	log_info("build: %s", m->build);
	rc = proc_run_shell(&status, &build_s, m->build, w->tree, &lim,
	    m->build_timeout_s < s->build_timeout_s ? m->build_timeout_s :
	    s->build_timeout_s, &log, &cancel, err, sizeof(err));
	tail = tailbuf_str(&log);
	if (*w->stop) {
		job_fail(w, &job, "worker stopping", NULL, 1);
		goto out;
	}
	if (hb.lost)
		goto out;
	if (rc < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char st[96];

		if (rc == 0)
			snprintf(err, sizeof(err), "'%s' ended with %s", m->build,
			    proc_status_str(st, sizeof(st), status));
		snprintf(reason, sizeof(reason), "build failed: %s", err);
		job_fail(w, &job, reason, tail, 0);
		goto out;
	}
	log_info("build: done in %.1f s", build_s);

	scen_out = json_object();
	json_array_foreach(job.scenarios, i, elem) {
		if ((name = json_string_value(elem)) == NULL)
			continue;
		one = NULL;
		if (manifest_scenario(&params, m, name, job.params, err,
		    sizeof(err)) < 0) {
			snprintf(reason, sizeof(reason), "scenario '%s': %s", name,
			    err);
			job_fail(w, &job, reason, NULL, 0);
			goto out;
		}
		rc = scenario_run(&one, name, m, params, w->tree, s, &cancel,
		    err, sizeof(err));
		if (rc == 0) {
			/* What was run travels with what was measured. */
			json_object_set(json_object_get(one, "info"), "params",
			    params);
			json_object_set_new(scen_out, name, one);
		}
		json_decref(params);
		if (*w->stop) {
			job_fail(w, &job, "worker stopping", NULL, 1);
			goto out;
		}
		if (hb.lost) {
			log_warnx("lease lost: dropping the job");
			goto out;
		}
		if (hb.timed_out) {
			snprintf(reason, sizeof(reason), "job ran past the "
			    "worker's limit of %lld s", s->job_timeout_s);
			job_fail(w, &job, reason, NULL, 0);
			goto out;
		}
		if (rc < 0) {
			snprintf(reason, sizeof(reason), "scenario '%s' failed: %s",
			    name, err);
			job_fail(w, &job, reason, NULL, 0);
			goto out;
		}
	}
	result = json_pack("{s:i,s:o,s:{s:f,s:s},s:f,s:O}", "attempt",
	    job.attempt, "environment", environment(s, &job), "build",
	    "duration_s", build_s, "log_tail", tail, "duration_s",
	    clock_mono_s() - t0, "scenarios", scen_out);
	text = jsonx_dump(result);
	if (spool_put(w->spool, job.id, job.attempt, text, strlen(text)) < 0) {
		job_fail(w, &job, "cannot write the result to the spool", NULL, 1);
		goto out;
	}
	log_info("result spooled (%zu bytes); uploading", strlen(text));
out:
	heartbeat_stop(&hb);
	manifest_free(m);
	json_decref(scen_out);
	json_decref(result);
	tailbuf_free(&log);
	free(mpath);
	free(tail);
	free(text);
	log_set_context(NULL);
}

static int
worker_open(struct worker *w, const struct worker_settings *s,
    volatile int *stop)
{
	char *dir;
	int rc;

	memset(w, 0, sizeof(*w));
	w->s = s;
	w->stop = stop;
	if (httpc_new(&w->http, s->server_url, s->token) < 0)
		return BL_ERROR;
	dir = xasprintf("%s/cache", s->work_dir);
	rc = repo_cache_open(&w->repos, dir);
	free(dir);
	if (rc < 0)
		return rc;
	dir = xasprintf("%s/spool", s->work_dir);
	rc = spool_open(&w->spool, dir);
	free(dir);
	w->tree = xasprintf("%s/tree", s->work_dir);
	return rc;
}

static void
worker_close(struct worker *w)
{
	httpc_free(w->http);
	repo_cache_free(w->repos);
	spool_free(w->spool);
	free(w->tree);
}

/* Sleeps up to ms, waking early when the worker is told to stop. */
static void
nap(struct worker *w, int64_t ms)
{
	int64_t end = clock_mono_ms() + ms;

	while (!*w->stop && clock_mono_ms() < end)
		clock_sleep_ms(100);
}

int
worker_loop(const struct worker_settings *s, volatile int *stop)
{
	struct worker w;
	json_t *resp = NULL;
	char body[128], err[512];
	int64_t backoff = 1000;
	long status;
	int pending;

	if (worker_open(&w, s, stop) < 0) {
		worker_close(&w);
		return BL_ERROR;
	}
	log_info("worker %s for target '%s' polling %s", BL_WORKER_VERSION,
	    s->target, s->server_url);
	while (!*stop) {
		/* Results first: nothing new is taken while one waits to be sent. */
		spool_flush(w.spool, w.http, &pending);
		if (pending > 0) {
			log_info("%d result%s waiting in the spool; retrying in "
			    "%lld s", pending, pending == 1 ? "" : "s",
			    (long long)backoff / 1000);
			nap(&w, backoff);
			backoff = backoff * 2 > s->retry_max_s * 1000 ?
			    s->retry_max_s * 1000 : backoff * 2;
			continue;
		}
		snprintf(body, sizeof(body), "{\"wait_s\":%lld,\"worker_version\":"
		    "\"%s\"}", s->claim_wait_s, BL_WORKER_VERSION);
		if (httpc_post(w.http, "/api/v1/jobs/claim", body, strlen(body),
		    s->claim_wait_s + 15, &status, &resp, err, sizeof(err)) < 0) {
			log_warnx("claim failed: %s; retrying in %lld s", err,
			    (long long)backoff / 1000);
			nap(&w, backoff);
			backoff = backoff * 2 > s->retry_max_s * 1000 ?
			    s->retry_max_s * 1000 : backoff * 2;
			continue;
		}
		backoff = 1000;
		if (status == 200 && resp != NULL)
			job_run(&w, resp);
		else if (status == 401) {
			log_warnx("the server refuses this worker's token: %s",
			    httpc_error_message(resp));
			nap(&w, 30000);
		} else if (status != 204) {
			log_warnx("claim answered %ld: %s", status,
			    httpc_error_message(resp));
			nap(&w, 5000);
		}
		json_decref(resp);
		resp = NULL;
	}
	spool_flush(w.spool, w.http, &pending);
	if (pending > 0)
		log_info("stopping with %d result%s in the spool; they are sent "
		    "at the next start", pending, pending == 1 ? "" : "s");
	worker_close(&w);
	return 0;
}
