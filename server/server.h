/* benchline-server's internal interfaces, grouped by the file that implements them. */
#ifndef BL_SERVER_H
#define BL_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "jsonx.h"

#define BL_VERSION "0.1.0"

/* settings.c */
/* The server's configuration; see settings.c for each entry's meaning and bounds. */
struct settings {
	char		*listen_addr;
	long long	 listen_port;
	char		*database_url;
	char		*database_read_url;
	long long	 db_pool_size;
	long long	 threads;
	long long	 max_body_bytes;
	long long	 lease_seconds;
	long long	 max_attempts;
	long long	 queue_aging_s;
	long long	 claim_wait_seconds;
	long long	 reap_interval_ms;
	char		*migrations_dir;
	char		*web_root;
	char		*log_level;
	int		 public_reads;
	char		*public_url;
	char		*smtp_url;
	char		*smtp_from;
	char		*smtp_user;
	char		*smtp_password;
	int		 smtp_starttls;
	long long	 mail_delay_s;
	long long	 mail_max_attempts;
	long long	 mail_retry_base_s;
	long long	 background_interval_ms;
	long long	 points_retention_months;
};
int	settings_load(struct settings *out, const char *path, char *err,
	    size_t errlen);
void	settings_free(struct settings *s);
void	settings_print(const struct settings *s);

/* db.c */
struct db;
struct dbres;
struct dbpool;

#define DBP_MAX 24
/* Query parameters in text form; numbers are formatted into store. */
struct dbparams {
	const char	*v[DBP_MAX];
	char		 store[DBP_MAX][32];
	int		 n;
};
void	 dbp_str(struct dbparams *p, const char *s);	/* s borrowed; NULL = SQL NULL */
void	 dbp_int(struct dbparams *p, int64_t v);
void	 dbp_double(struct dbparams *p, double v);
void	 dbp_num(struct dbparams *p, double v);	/* NAN or infinity = SQL NULL */
void	 dbp_id(struct dbparams *p, int64_t id);	/* <= 0 = SQL NULL */

int	 db_connect(struct db **out, const char *url);
void	 db_close(struct db *db);
/* The last error's text, valid until the next call on db. */
const char *db_errmsg(const struct db *db);
int	 db_is_unique_violation(const struct db *db);
/*
 * Runs one statement with text parameters.  out, when not NULL, receives the
 * result (caller frees with dbres_free()).  Returns 0, BL_ECONFLICT on a
 * unique violation, BL_EUNAVAIL when the database cannot be reached, or
 * BL_ERROR; db_errmsg() says why.
 */
int	 db_query(struct dbres **out, struct db *db, const char *sql,
	    int nparams, const char *const *params);
int	 db_queryp(struct dbres **out, struct db *db, const char *sql,
	    const struct dbparams *p);
int	 db_exec(struct db *db, const char *sql);
/* Runs several statements in one string, as a migration holds. */
int	 db_exec_script(struct db *db, const char *sql);
int	 db_begin(struct db *db);
int	 db_commit(struct db *db);
void	 db_rollback(struct db *db);
int	 db_ping(struct db *db);
int	 db_copy_begin(struct db *db, const char *sql);
int	 db_copy_put(struct db *db, const char *data, size_t len);
int	 db_copy_end(struct db *db, const char *abort_msg);
int	 db_listen(struct db *db, const char *channel);
/* Waits for a notification; 1 with its payload, 0 on timeout, < 0 on error. */
int	 db_notify_wait(struct db *db, int timeout_ms, char *payload,
	    size_t len);

int	 dbres_rows(const struct dbres *r);
int	 dbres_affected(const struct dbres *r);
/* Borrowed; valid while r lives.  NULL for SQL NULL. */
const char *dbres_get(const struct dbres *r, int row, int col);
int64_t	 dbres_int(const struct dbres *r, int row, int col);
double	 dbres_double(const struct dbres *r, int row, int col);
int	 dbres_bool(const struct dbres *r, int row, int col);
void	 dbres_free(struct dbres *r);
/* A float8[] column as a new array (caller frees *out); returns its length. */
size_t	 dbres_doubles(double **out, const struct dbres *r, int row, int col);

/* A pool of size connections, the first one made now: a bad URL fails here. */
int	 dbpool_open(struct dbpool **out, const char *url, int size);
/*
 * A pool that connects on first use, for a database that may be down at
 * start.  A quiet pool does not log its failures to connect: its caller
 * decides what they mean and asks dbpool_error() why.
 */
struct dbpool *dbpool_new(const char *url, int size, int quiet);
/* Why the pool last failed to lend a connection. */
void	 dbpool_error(struct dbpool *p, char *out, size_t len);
void	 dbpool_close(struct dbpool *p);
struct db *dbpool_get(struct dbpool *p, int wait_ms);
/* Returns db to the pool that lent it (which need not be p). */
void	 dbpool_put(struct dbpool *p, struct db *db);

/* migrate.c */
/* Applies the migrations in dir not yet recorded in schema_migrations. */
int	migrate_run(struct db *db, const char *dir, int *applied);

/* httpd.c */
struct request;
struct httpd;
/* The server-wide state every handler can reach through req_server(). */
struct server {
	struct settings	*settings;
	struct dbpool	*pool;
	struct dbpool	*read_pool;	/* the replica's, or NULL: see req_db_read() */
	_Atomic int64_t	 read_retry_ms;	/* replica skipped until this monotonic time */
	atomic_int	 read_down;	/* the replica failed last time it was tried */
	struct httpd	*httpd;
	struct queue	*queue;
	struct background *background;
	volatile int	 stopping;
};
int	 httpd_start(struct httpd **out, struct server *srv);
void	 httpd_stop(struct httpd *h);

uint64_t	 req_id(const struct request *r);
const char	*req_method(const struct request *r);
const char	*req_path(const struct request *r);
/* Borrowed; NULL when absent. */
const char	*req_header(struct request *r, const char *name);
const char	*req_query(struct request *r, const char *name);
const struct buf *req_body(const struct request *r);
struct server	*req_server(const struct request *r);
void		 req_set_route(struct request *r, const char *name);
/* Path segments matched by "{}" in the route, in order; NULL past the last. */
void		 req_add_param(struct request *r, const char *s, size_t len);
const char	*req_param(const struct request *r, int i);
/* Per-request state a handler keeps across a suspension; freed with the request. */
void		*req_state(const struct request *r);
void		 req_set_state(struct request *r, void *state, void (*fn)(void *));
/*
 * Parks the request after the handler returns; req_resume() (from any
 * thread) makes the server call the handler again.
 */
void		 req_suspend(struct request *r);
void		 req_resume(struct request *r);
/* Sets the response; the body is copied. */
void		 req_respond(struct request *r, int status, const char *ctype,
		    const char *body, size_t len);
void		 req_add_header(struct request *r, const char *name,
		    const char *value);

/* route.c */
/* Finds the handler for the request and runs it. */
void	route_dispatch(struct request *r);

/* reply.c */
void	reply_json(struct request *r, int status, json_t *body);	/* steals body */
void	reply_error(struct request *r, int status, const char *code,
	    const char *fmt, ...) BL_PRINTF(4, 5);
/* Maps a BL_E* code to its status and JSON error; msg says what failed. */
void	reply_status(struct request *r, int rc, const char *msg);
void	reply_db_error(struct request *r, struct db *db);
void	reply_no_content(struct request *r);
/* Lends a pooled connection, or answers 503 and returns NULL; dbpool_put() it. */
struct db *req_db(struct request *r);
/*
 * The same for a read-only query that may lag the primary a little: a
 * connection to the read replica when one is configured and reachable,
 * else one to the primary.  A replica that fails is left alone for a few
 * seconds, and its going and coming back are each logged once.
 */
struct db *req_db_read(struct request *r);
/* Parses the body as a JSON object; on failure answers 400 and returns NULL. */
json_t	*req_json_body(struct request *r);

/* auth.c */
struct worker_ident {
	int64_t	worker_id;
	int64_t	target_id;
};
#define TOKEN_SECRET_BYTES 24
/* Makes a token "<prefix>_<id>_<secret>"; hash_hex gets the SHA-256 of the secret. */
void	token_generate(char *out, size_t outlen, const char *prefix, int64_t id,
	    char hash_hex[65]);
int	auth_worker(struct worker_ident *out, struct request *r, struct db *db);
int	auth_admin(struct request *r, struct db *db);
/* Reads are public unless settings say otherwise; then any valid token reads. */
int	auth_reader(struct request *r, struct db *db);

/* catalog.c */
/* Creation and listing of projects, targets, workers and tokens, for the CLI and the API. */
struct project_spec {
	const char	*name;
	const char	*repo_url;
	const char	*default_branch;
	const char	*webhook_secret;
	json_t		*settings;	/* borrowed, may be NULL */
};
struct target_spec {
	const char	*name;
	const char	*arch;
	const char	*cpu;
	const char	*gpu;
	int64_t		 ram_mb;
	json_t		*labels;	/* borrowed, may be NULL */
};
int	catalog_project_create(json_t **out, struct db *db,
	    const struct project_spec *spec);
int	catalog_project_find(int64_t *out, struct db *db, const char *name_or_id);
int	catalog_target_create(json_t **out, struct db *db,
	    const struct target_spec *spec);
int	catalog_target_find(int64_t *out, struct db *db, const char *name_or_id);
/* *token_out is the one printing of the token; caller frees. */
int	catalog_worker_create(json_t **out, char **token_out, struct db *db,
	    const char *target, const char *name);
int	catalog_admin_token_create(char **token_out, struct db *db,
	    const char *name);
/* Finds or records a commit of a project. */
int	catalog_commit_ensure(int64_t *out, struct db *db, int64_t project_id,
	    const char *sha, const char *branch);
int	catalog_list(json_t **out, struct db *db, const char *what);
/* Validates a name of a project or target; writes the reason into err. */
int	catalog_name_valid(const char *name, char *err, size_t errlen);
int	catalog_sha_valid(const char *sha);

/* queue.c */
struct queue;
struct job_spec {
	int64_t		 project_id;
	int64_t		 commit_id;
	int64_t		 target_id;
	const char	*branch;
	json_t		*scenarios;	/* array of names; borrowed */
	json_t		*params;	/* object or NULL; borrowed */
	const char	*reason;	/* push|bisect|manual|baseline|confirm */
	int		 priority;
	int		 max_attempts;	/* 0 = the server's default */
	int64_t		 investigation_id;	/* 0 = none */
	int64_t		 pinned_worker_id;	/* 0 = any worker of the target */
};
int	queue_start(struct queue **out, struct server *srv);
/* Ends every waiting claim and joins the queue's thread. */
void	queue_stop(struct queue *q);
void	queue_free(struct queue *q);
int	queue_reason_valid(const char *reason);
int	queue_enqueue_named(int64_t *out, struct db *db, const char *project,
	    const char *target, const char *sha, const struct job_spec *spec,
	    int default_max_attempts, char *err, size_t errlen);
int	queue_enqueue(int64_t *out, struct db *db, const struct job_spec *spec,
	    int default_max_attempts);
/*
 * Claims the queued job of the worker's target that comes first: highest
 * priority, where waiting aging_s seconds counts as one level more, then
 * oldest.  Jobs pinned to another worker are skipped; claiming a job of an
 * investigation pins its other jobs to this worker.  BL_ENOTFOUND if none.
 */
int	queue_claim(json_t **out, struct db *db, const struct worker_ident *w,
	    int lease_seconds, int aging_s);
int	queue_heartbeat(json_t **out, struct db *db, int64_t job_id,
	    const struct worker_ident *w, int attempt, int lease_seconds);
/* Fails the job, or with retry hands it back to the queue while attempts remain. */
int	queue_fail(struct db *db, int64_t job_id, const struct worker_ident *w,
	    int attempt, const char *reason, const char *log_tail, int retry);
/* Returns expired leases to the queue, or fails jobs out of attempts. */
int	queue_reap(struct db *db, int *requeued, int *failed);
/* Long-poll waiters: registered before a claim attempt, woken by NOTIFY. */
struct waiter;
struct waiter *queue_wait_register(struct queue *q, struct request *r,
	    int64_t target_id, int64_t deadline_ms);
/* Suspends the request unless the waiter was woken meanwhile; returns 1 if suspended. */
int	queue_wait_park(struct queue *q, struct waiter *w);
void	queue_wait_cancel(struct queue *q, struct waiter *w);

/* api_jobs.c */
void	api_jobs_claim(struct request *r);
void	api_jobs_heartbeat(struct request *r);
void	api_jobs_fail(struct request *r);
void	api_jobs_result(struct request *r);

/* ingest.c */
struct result;
/*
 * Parses and validates a result upload; on failure returns BL_EINVAL with
 * the JSON path of the bad field and the reason in err.
 */
int	ingest_parse(struct result **out, json_t *body, char *err, size_t errlen);
void	ingest_free(struct result *res);
int	ingest_attempt(const struct result *res);
/*
 * Stores a validated result of a job in one transaction.  A result already
 * stored for (job, attempt) is not stored again: *out is the first answer.
 */
int	ingest_store(json_t **out, struct db *db, int64_t job_id,
	    const struct worker_ident *w, const struct result *res,
	    char *err, size_t errlen);

/* api_query.c */
void	api_projects_list(struct request *r);
void	api_project_series(struct request *r);
void	api_series_points(struct request *r);
void	api_commit_compare(struct request *r);
void	api_jobs_list(struct request *r);
void	api_targets_list(struct request *r);
/* Helpers of the read handlers, shared with api_dash.c. */
/* A pooled connection once the reader check passed; else answers and returns NULL. */
struct db *read_begin(struct request *r);
/* Answers with the JSON a query returns in its single row and column. */
void	reply_query_json(struct request *r, struct db *db, const char *sql,
	    const struct dbparams *p);
/* Resolves the project named by the first path parameter, or answers 404. */
int	project_param(int64_t *out, struct request *r, struct db *db);
/* An optional integer query parameter within bounds, or answers 400. */
int	query_int(int64_t *out, struct request *r, const char *name,
	    int64_t min, int64_t max);
/* A commit of the project by full or abbreviated sha: BL_EINVAL, BL_ENOTFOUND, BL_ECONFLICT. */
int	commit_find(int64_t *out, struct db *db, int64_t project_id,
	    const char *sha);

/* api_admin.c */
void	api_admin_project_create(struct request *r);
void	api_admin_target_create(struct request *r);
void	api_admin_worker_create(struct request *r);
void	api_admin_job_create(struct request *r);

/* detect.c */
/*
 * The performance detector's decision for one series, without the
 * database, so the synthetic-corpus test runs the very code the server
 * runs.  A series' current epoch (its points since the last accepted
 * change, oldest first) goes in; the verdict of its last point comes out.
 */
enum verdict_kind {
	V_BASELINE, V_NOISE, V_SUSPECT, V_REGRESSION, V_IMPROVEMENT,
	V_EXCLUDED
};

struct detect_params {
	double	threshold;	/* relative change that matters: 0.10 */
	double	suspect_frac;	/* screen at threshold * this: 0.5 */
	double	z_suspect;	/* robust z of one run to suspect it: 3 */
	double	p_max;		/* one-sided p to confirm: 0.001 */
	double	noise_floor;	/* smallest run-to-run noise assumed: 0.005 */
	double	prior_noise;	/* noise assumed while the baseline is short: 0.03 */
	int	min_baseline;	/* runs before anything is judged: 3 */
	int	short_baseline;	/* below this many runs, prior_noise applies: 10 */
	int	window;		/* baseline runs used: 20 */
	int	max_pending;	/* runs a suspicion may wait for: 3 */
	int	higher_better;
	int	counted;	/* an exact count: one sample a run, no raw-sample test */
};

struct detect_point {
	double			 value;		/* the run's summary (median) */
	const double		*samples;	/* its raw samples, or NULL */
	size_t			 n;
	int			 excluded;	/* a suspect run: not in baselines */
	enum verdict_kind	 verdict;	/* in: previous; out: updated */
};

struct detect_result {
	enum verdict_kind	verdict;	/* of the last point */
	size_t			change_at;	/* first point of a confirmed change */
	double			change;		/* relative, + is worse */
	double			z;
	double			p;		/* run-level, one-sided */
	double			p_raw;		/* raw samples, one-sided MWU */
	double			shift_lo;	/* Hodges-Lehmann 95% interval, relative */
	double			shift_hi;
	size_t			baseline_n;
	int			relabelled;	/* earlier suspects became noise */
	int			quiet_change;	/* significant but under the threshold */
};

void	detect_defaults(struct detect_params *p);
/*
 * Decides the last of n points of a series' recent history, whose current
 * epoch starts at index epoch; may relabel earlier suspects (verdicts are
 * updated in place).  On V_REGRESSION or V_IMPROVEMENT, or when
 * quiet_change is set, a new epoch starts at change_at (an index in hist).
 */
int	detect_series_step(struct detect_result *out,
	    const struct detect_params *p, struct detect_point *hist, size_t n,
	    size_t epoch);
const char *verdict_name(enum verdict_kind v);

/* detect.c */
/* Judges one stored run; *alerts counts the alerts it opened. */
int	detect_run(struct db *db, int64_t run_id, int64_t *alerts);
/* A metric's threshold: settings.thresholds[metric], settings.threshold, 0.10. */
double	detect_threshold(json_t *settings, const char *metric);
/*
 * Whether the run shows the condition of an alert of kind leak, accuracy
 * or degradation on the series, by the rules detect_run() applies (for
 * accuracy, against the value at ref_commit_id): 1 yes, 0 no, < 0 error
 * (BL_ENOTFOUND: the run has no point of the series).  *value gets the
 * run's value.
 */
int	detect_condition(struct db *db, int64_t run_id, int64_t series_id,
	    const char *kind, int64_t ref_commit_id, double *value);
/* Judges the oldest run waiting; 1 if one was judged, 0 if none waits. */
int	detect_next(struct db *db);

/* verdict.c: the decisions of investigations, free of the database. */
/* Confirmation and bisection settings, from a project's settings. */
struct investigate_params {
	int	confirm;		/* "confirm": re-run good and bad: true */
	int	bisect;			/* "bisect": true */
	int	confirm_pairs;		/* 5 */
	int	confirm_max_pairs;	/* 9 */
	int	step_pairs;		/* "bisect_pairs": 5 */
	int	step_max_pairs;		/* "bisect_max_pairs": 11 */
	int	boundary_pairs;		/* "boundary_pairs": 9 */
	int	boundary_max_pairs;	/* "boundary_max_pairs": 13 */
	int	priority;		/* "investigation_priority": 10 */
	double	alpha;			/* "confirm_alpha": 0.05, also a step's */
	double	boundary_alpha;		/* "boundary_alpha": 0.002 */
};
void	investigate_params(struct investigate_params *p, json_t *settings);
/* 1 when the project confirms suspicions (its "confirm" setting). */
int	investigate_wanted(json_t *settings);

/* The verdict on interleaved pairs of the last good and the first bad commit. */
struct confirm_verdict {
	int	stands;		/* signed-rank p <= alpha and change >= threshold */
	int	more;		/* undecided: more pairs may settle it */
	double	change;		/* Hodges-Lehmann estimate, relative, + is worse */
	double	p;		/* one-sided Wilcoxon signed-rank */
	double	before, after;	/* medians of the reference's and the tested runs */
	size_t	pairs;
};
/* BL_ENOTFOUND with fewer than two complete pairs. */
int	investigate_confirm(struct confirm_verdict *out, const double *good,
	    const double *bad, size_t n, int higher_better, double threshold,
	    const struct investigate_params *p);

enum step_kind { STEP_UNDECIDED, STEP_GOOD, STEP_BAD };
/* A bisection step's verdict: is the probe at the good level or the bad? */
struct step_verdict {
	enum step_kind	verdict;
	int		more;	/* undecided, and more pairs may settle it */
	double		change;	/* Hodges-Lehmann change against good, + is worse */
	double		p;	/* signed-rank against the midway level, the nearer side */
	size_t		pairs;
};
/* change: the confirmed change of the bad commit (relative, + is worse). */
int	investigate_step(struct step_verdict *out, const double *ref,
	    const double *probe, size_t n, int higher_better, double change,
	    const struct investigate_params *p);
/*
 * The blamed commit against the last good one before it, on their own
 * pairs; change is the level it must reach halfway (the confirmed change,
 * or the threshold).
 */
int	investigate_boundary(struct confirm_verdict *out, const double *ref,
	    const double *test, size_t n, int higher_better, double change,
	    const struct investigate_params *p);
/* The same for counted metrics: exact, so one pair decides. */
int	investigate_confirm_counted(struct confirm_verdict *out,
	    const double *good, const double *bad, size_t n, int higher_better,
	    double threshold);
int	investigate_step_counted(struct step_verdict *out, double ref,
	    double probe, int higher_better, double change);

/* investigate.c: the confirmation and bisection state machines. */
/*
 * Starts (or joins) the investigation of a freshly opened alert: confirmation
 * for perf when the project wants it, bisection when its range holds more
 * than one recorded commit.  Its jobs are queued at once.
 */
int	investigate_alert(struct db *db, int64_t alert_id);
/* Advances one investigation whose jobs have all run; 1 if one was, 0 if none. */
int	investigate_next(struct db *db);
/* Investigations as JSON (newest first), filtered; id > 0 selects one. */
int	investigate_list(json_t **out, struct db *db, int64_t project_id,
	    const char *state, int64_t id);

/* alert.c */
struct alert_spec {
	int64_t		 series_id;
	const char	*kind;		/* perf, accuracy, leak, degradation */
	int64_t		 run_id;
	int64_t		 good_commit_id;	/* 0 when unknown */
	int64_t		 bad_commit_id;
	double		 before, after, change_pct, p_value;	/* NAN when unknown */
	json_t		*details;	/* borrowed */
	int		 only_if_none_open;
};
/*
 * Opens an alert and joins it to its commit's incident (creating it,
 * with its e-mail pending).  One alert per series, kind and first bad
 * commit; with only_if_none_open, none while one of that kind is open on
 * the series.  Adds 1 to *opened when it opened one.
 */
int	alert_open(struct db *db, const struct alert_spec *a, int64_t *opened,
	    int64_t *alert_id);
/* Sets details[key] = val (borrowed) on an alert. */
int	alert_detail(struct db *db, int64_t alert_id, const char *key,
	    json_t *val);
/*
 * Its confirmation did not bear the alert out: it becomes invalid
 * (resolved_by "overturned"), and an incident left with nothing else
 * is not mailed.
 */
int	alert_overturn(struct db *db, int64_t alert_id, json_t *confirmation);
/*
 * Moves an alert to the first bad commit bisection found (good: its
 * parent) and into that commit's incident, setting details[key] = val; an
 * alert of the series and kind already there absorbs it (this one becomes
 * invalid, "duplicate").  The incident it leaves is removed if empty and
 * not mailed.
 */
/* Sets an alert's headline: before, after, change (+ is worse) and p (NAN: none). */
int	alert_headline(struct db *db, int64_t alert_id, double before,
	    double after, double change, double p);
/*
 * An alert bisection could not place: its range stays as it is, its
 * details get val as "bisection", and it joins the incident of commit
 * (when > 0) whose verdict it belongs with, blaming nobody itself.
 */
int	alert_undecided(struct db *db, int64_t alert_id, int64_t commit,
	    json_t *val);
int	alert_move(struct db *db, int64_t alert_id, int64_t good, int64_t bad,
	    const char *key, json_t *val);
/*
 * Resolves the series' open alerts of a kind once it has recovered: for
 * perf, when the last two runs (value, value2; NAN while there is only
 * one) are both back within threshold of the alert's before value; for
 * the other kinds, whenever called (the condition is gone).
 */
int	alert_recover(struct db *db, int64_t series_id, const char *kind,
	    int64_t run_id, double value, double value2, double threshold);
/* A user's change of state: acknowledged, resolved or invalid. */
int	alert_set_state(json_t **out, struct db *db, int64_t id,
	    const char *state, char *err, size_t errlen);
/* Alerts or incidents as JSON, filtered by the request's query. */
int	alert_list_one(json_t **out, struct db *db, int64_t id);
int	alert_list(json_t **out, struct db *db, int64_t project_id,
	    const char *state, const char *kind);
int	alert_incidents(json_t **out, struct db *db, int64_t project_id,
	    const char *state, int64_t id);

/* api_alerts.c */
void	api_alerts_list(struct request *r);
void	api_alert_patch(struct request *r);
void	api_incidents_list(struct request *r);
void	api_investigations_list(struct request *r);
void	api_project_patch(struct request *r);

/* mail.c */
/* Where and as whom mail is sent.  Every string is borrowed. */
struct mail_config {
	const char	*url;		/* "smtp://127.0.0.1:2525", "smtps://host:465" */
	const char	*from;		/* "benchline <bl@example.org>" or a bare address */
	const char	*user;		/* NULL or "" = no AUTH */
	const char	*password;	/* never logged, never put in err */
	int		 starttls;	/* 1: require STARTTLS on smtp:// */
	long		 timeout_s;	/* the whole exchange; <= 0 means 30 */
};
/* One plain-text message.  Every string is borrowed. */
struct mail_message {
	const char *const *to;		/* NULL-terminated; "a@b" or "Name <a@b>" */
	const char	*subject;	/* UTF-8, no control characters */
	const char	*body;		/* UTF-8, "\n" (or "\r\n") line ends */
	/*
	 * Makes the Message-ID "<benchline.HINT@from-domain>", the same on every
	 * retry, so a receiver drops the copy of a message whose 250 got lost.
	 * It must therefore name one message; [A-Za-z0-9_+-] and single dots,
	 * at most 64.  NULL or "" makes a random one.
	 */
	const char	*message_id_hint;
};
/*
 * Sends msg to every address of msg->to in one SMTP transaction.  Returns
 * 0 when the server accepted the data (250); BL_EUNAVAIL when it could not
 * be reached, timed out or answered 4xx (try again later); BL_ERROR when it
 * refused (5xx) or the configuration is wrong; BL_EINVAL when cfg or msg
 * is invalid.  err gets the server's reply or curl's reason.
 */
int	mail_send(const struct mail_config *cfg, const struct mail_message *msg,
	    char *err, size_t errlen);
/* 1 if addr is a mailbox fit for To/From: "local@domain" or "Name <local@domain>". */
int	mail_address_valid(const char *addr);
/* Appends the whole message as it is sent (headers, quoted-printable body, CRLF). */
int	mail_build(struct buf *out, const struct mail_config *cfg,
	    const struct mail_message *msg, int64_t now, char *err,
	    size_t errlen);
/* Appends "Name: text" CRLF, folded, RFC 2047-encoded where needed. */
int	mail_header_text(struct buf *out, const char *name, const char *text);
/* Appends text as a quoted-printable body (RFC 2045 6.7) with CRLF line ends. */
int	mail_qp_encode(struct buf *out, const char *text, size_t len);
/* Writes t as an RFC 5322 date in UTC. */
void	mail_date(char *out, size_t outlen, int64_t t);

/* notify.c */
/* Mails the next incident due; 1 if one was handled, 0 if none, < 0 on error. */
int	notify_next(struct db *db, const struct settings *s);
/* The subject and body of an incident's mail, from its JSON (alert_incidents()). */
void	notify_compose(struct buf *subject, struct buf *body, json_t *inc,
	    const char *public_url);

/* retention.c */
/* Drops the partitions of points older than months; *out says how many. */
int	retention_drop(int *out, struct db *db, long long months);
/*
 * Runs retention_drop() when points_retention_months is set and an hour
 * has passed since the last run (the first call runs it at once).
 */
void	retention_tick(struct db *db, const struct settings *s);

/* background.c */
struct background;
/* Starts the thread that judges runs (detect_next) and mails (notify_next). */
int	background_start(struct background **out, struct server *srv);
void	background_stop(struct background *bg);

/* downsample.c */
/*
 * Largest-Triangle-Three-Buckets: picks out (<= n) indexes of the points
 * (x[i], y[i]) that keep the shape of the line, always keeping the first and
 * last point.  x must be non-decreasing.  Returns the number of indexes.
 */
size_t	downsample_lttb(size_t *out, const double *x, const double *y, size_t n,
	    size_t max_points);

/* metrics.c */
void	metrics_request(const char *route, int status, double seconds);
void	metrics_points_add(int64_t n);
void	metrics_render(struct buf *out, struct db *db);
void	api_metrics(struct request *r);
void	api_healthz(struct request *r);
void	api_readyz(struct request *r);

/* static.c */
void	static_serve(struct request *r);


/* webhook.c */
/*
 * Forge push payloads, parsed without the database or HTTP so that they can
 * be unit-tested and fuzzed.  Every string of a push is borrowed from the
 * payload, which the push holds: valid until webhook_free().
 */
enum forge { FORGE_GITHUB, FORGE_GITLAB };

#define WEBHOOK_MAX_URLS	16
#define WEBHOOK_MAX_COMMITS	4096	/* GitHub sends at most 2048 */

struct push_commit {
	const char	*sha;
	/*
	 * Payloads carry no parents: they are derived from the order of the
	 * list (oldest first), so a commit's parent is the commit before it,
	 * and the first one's is the push's before when that is known (see
	 * webhook.c).  NULL when unknown.
	 */
	const char	*parent;
	const char	*author_name;	/* "" when absent */
	const char	*author_email;	/* "" when absent */
	const char	*message;	/* "" when absent */
	const char	*timestamp;	/* ISO 8601 as sent; NULL when absent */
};

struct push {
	json_t			*body;		/* held: the strings live in it */
	enum forge		 forge;
	const char		*ref;		/* "refs/heads/main" */
	const char		*branch;	/* ref without refs/heads/ (or refs/tags/) */
	int			 is_tag;
	int			 deleted;	/* the ref was deleted: no head */
	int			 created;	/* the ref is new: no before */
	int			 forced;	/* GitHub's forced; GitLab does not say */
	const char		*before;	/* NULL when all zeros */
	const char		*after;		/* NULL when all zeros */
	const char		*head;		/* the commit to benchmark; NULL on deletion */
	struct push_commit	*commits;	/* oldest first, ending with the head */
	size_t			 ncommits;
	size_t			 total_commits;	/* the forge's count, >= the listed ones */
	int			 truncated;	/* the forge listed only the newest */
};

/*
 * Parses a push event of forge (GitHub "push"; GitLab "Push Hook" or "Tag
 * Push Hook").  On failure returns BL_EINVAL and writes the JSON path of the
 * bad field and the reason into err.  Caller frees *out with webhook_free().
 */
int	webhook_parse(struct push **out, enum forge forge, json_t *body,
	    char *err, size_t errlen);
void	webhook_free(struct push *p);
/*
 * Collects the repository URLs a payload of either forge names (any event:
 * ping and tag pushes too) into out; returns how many.  Borrowed from body.
 */
size_t	webhook_urls(const char **out, size_t max, json_t *body);
/* 1 if s is a full commit id: 40 or 64 lowercase hex digits. */
int	webhook_sha_valid(const char *s);
/* 1 if s is an ISO 8601 time PostgreSQL reads: 2024-02-29T13:05:00[.frac](Z|+hh:mm). */
int	webhook_time_valid(const char *s);

/* A project's webhook settings (projects.settings), defaults filled in. */
struct webhook_settings {
	json_t	*branches;	/* names; a trailing * matches any rest; NULL: default branch */
	int	 every_commit;	/* benchmark every commit of a push, not just its head */
	int	 supersede;	/* a push cancels the branch's older queued push jobs */
	json_t	*scenarios;	/* array of scenario names */
	json_t	*params;	/* object: the jobs' params */
	json_t	*target_labels;	/* object: only targets whose labels contain it */
};
/*
 * Reads and validates the webhook keys of a project's settings (other keys
 * are left alone; a key set to null takes its default).  On failure returns
 * BL_EINVAL with "$.settings.<key>: reason" in err.  Free with
 * webhook_settings_free(), also after a failure.
 */
int	webhook_settings_load(struct webhook_settings *out, json_t *settings,
	    char *err, size_t errlen);
void	webhook_settings_free(struct webhook_settings *s);
/* Validates only: for the API writes of project settings. */
int	webhook_settings_check(json_t *settings, char *err, size_t errlen);
/* 1 if branch is one the settings benchmark (default: default_branch alone). */
int	webhook_branch_wanted(const struct webhook_settings *s,
	    const char *branch, const char *default_branch);

/* api_hooks.c */
void	api_hooks_github(struct request *r);
void	api_hooks_gitlab(struct request *r);
/* api_dash.c */
/* The reads the dashboard needs beyond api_query.c's; see docs/API.md. */
void	api_dash_overview(struct request *r);
void	api_dash_commits(struct request *r);
void	api_dash_run(struct request *r);
void	api_dash_markers(struct request *r);
void	api_dash_report(struct request *r);
/*
 * Checks a project's settings.goals: an array of {"metric", "op", "value",
 * "scenario"?, "label"?} with op one of <, <=, >, >=.  On failure returns
 * BL_EINVAL with the JSON path of the bad field in err.
 */
int	dash_goals_check(json_t *goals, char *err, size_t errlen);

#endif
