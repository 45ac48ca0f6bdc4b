/* benchline-worker's internal interfaces, grouped by the file that implements them. */
#ifndef BL_WORKER_H
#define BL_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "jsonx.h"

#define BL_WORKER_VERSION "0.1.0"

/* repo.c: the only file that calls libgit2. */
struct repo_cache;
/* Opens (creating) a cache directory holding one bare clone per repository URL. */
int	repo_cache_open(struct repo_cache **out, const char *dir);
void	repo_cache_free(struct repo_cache *c);
/*
 * Makes worktree a clean checkout of commit sha of the repository at url:
 * clones into the cache on first use, fetches only when sha is missing,
 * then checks out with every untracked and ignored file removed, so no
 * build output of an earlier job survives.  err gets the reason on failure.
 */
int	repo_checkout(struct repo_cache *c, const char *url, const char *sha,
	    const char *worktree, char *err, size_t errlen);

/* manifest.c */
enum adapter_kind { ADAPTER_JSONL, ADAPTER_EXEC };

struct exec_metric {
	char	*name;		/* metric name, e.g. "tokens_per_s" */
	char	*regex;		/* POSIX extended regex, first group is the number */
	char	*unit;
	int	 higher;	/* 1 if higher is better */
};

/* One scenario's settings: the manifest's, merged over the defaults. */
struct scenario_conf {
	char	*name;
	json_t	*params;	/* owned; every parameter after merging */
};

struct manifest {
	char			*build;		/* shell command, run in the worktree */
	enum adapter_kind	 adapter;
	char			**command;	/* argv, NULL-terminated */
	size_t			 ncommand;
	struct exec_metric	*metrics;	/* exec adapter only */
	size_t			 nmetrics;
	struct scenario_conf	*scenarios;
	size_t			 nscenarios;
	int64_t			 build_timeout_s;
	int64_t			 request_timeout_s;
};
/*
 * Parses a benchline.json text.  A bad manifest gets BL_EINVAL and err
 * names the field ("$.scenarios.latency.repetitions: must be ...").
 */
int	manifest_parse(struct manifest **out, const char *text, size_t len,
	    char *err, size_t errlen);
/* Reads path and parses it. */
int	manifest_load(struct manifest **out, const char *path, char *err,
	    size_t errlen);
/*
 * The settings of scenario name: defaults, then the manifest, then the
 * job's overrides (its "params" object, keyed by scenario).  Unknown
 * scenario names are BL_ENOTFOUND.  Caller json_decref()s *out.
 */
int	manifest_scenario(json_t **out, const struct manifest *m,
	    const char *name, json_t *job_params, char *err, size_t errlen);
void	manifest_free(struct manifest *m);


/* settings.c */
struct worker_settings {
	char		*server_url;
	char		*token;
	char		*target;
	char		*work_dir;
	char		*log_level;
	long long	 claim_wait_s;
	long long	 heartbeat_s;
	long long	 build_timeout_s;
	long long	 job_timeout_s;
	long long	 request_timeout_s;
	long long	 limit_cpu_s;
	long long	 limit_as_mb;
	long long	 limit_nofile;
	char		*engine_cpus;
	long long	 max_timeseries_points;
	long long	 retry_max_s;
	long long	 log_tail_bytes;
};
int	worker_settings_load(struct worker_settings *out, const char *path,
	    char *err, size_t errlen);
void	worker_settings_free(struct worker_settings *s);
void	worker_settings_print(const struct worker_settings *s);

/* proc.c */
/* Limits applied to every child: the build and the engine. 0 = no limit. */
struct proc_limits {
	long long	 cpu_s;
	long long	 as_mb;
	long long	 nofile;
	const char	*cpus;		/* CPU list for affinity ("1", "0-3"), or NULL */
};

#define PROC_PIPE_STDIN		0x1
#define PROC_PIPE_STDOUT	0x2

struct proc {
	pid_t	pid;		/* also the process group id */
	int	in_fd;		/* write end of its stdin, or -1 */
	int	out_fd;		/* read end of its stdout, or -1 */
	int	err_fd;		/* read end of its stderr (and stdout without PROC_PIPE_STDOUT) */
	int	reaped;
	int	status;		/* wait status once reaped */
};

/*
 * Starts argv[0] (looked up in PATH) in dir, in a new process group, under
 * lim, with stdout and stderr captured.  env entries ("K=V") are added.
 */
int	proc_spawn(struct proc *out, char *const argv[], const char *dir,
	    const struct proc_limits *lim, int flags, char *err, size_t errlen);
/*
 * Runs a shell command to completion within timeout_s, keeping the tail of
 * its combined output.  Returns 0 when it ran (see *status), BL_ETOOBIG on
 * timeout (the group is killed) or BL_ERROR when it could not start.
 */
int	proc_run_shell(int *status, double *seconds, const char *cmd,
	    const char *dir, const struct proc_limits *lim, int64_t timeout_s,
	    struct tailbuf *log, volatile int *cancel, char *err, size_t errlen);
/* Reaps the child if it exited; 1 when it has, 0 when it still runs. */
int	proc_poll(struct proc *p, struct rusage *ru);
/* Ends the whole group: SIGTERM, then SIGKILL after grace_ms; reaps. */
void	proc_kill(struct proc *p, int grace_ms);
void	proc_close_fds(struct proc *p);
/* "exit status 2", "killed by signal 9 (Killed)"; into buf. */
const char *proc_status_str(char *buf, size_t len, int status);

/* engine.c, adapter_jsonl.c, adapter_exec.c */
/* One request to the engine. */
struct request_spec {
	int64_t		id;
	int		prompt_tokens;
	int		max_tokens;
	double		temperature;
	uint64_t	seed;
};

/* One reply.  Times the engine did not report are NaN. */
struct reply {
	int64_t		 id;
	int		 ok;		/* 0: the engine answered with an error */
	char		 error[256];
	double		 ttft_ms;
	double		 total_ms;	/* as the engine measured it */
	double		 wall_ms;	/* send to reply, measured by the worker */
	int		 tokens;
	double		*token_ms;	/* per generated token; owned */
	size_t		 ntoken_ms;
	int64_t		 peak_rss_bytes;	/* exec: from wait4; else -1 */
	json_t		*values;	/* exec: metrics read by regex; accuracy: its object */
};
void	reply_clear(struct reply *r);

struct engine;
struct adapter_ops {
	int	(*start)(struct engine *e, char *err, size_t errlen);
	int	(*send)(struct engine *e, const struct request_spec *rq,
		    char *err, size_t errlen);
	int	(*recv)(struct engine *e, struct reply *out, int64_t timeout_ms,
		    char *err, size_t errlen);
	int	(*accuracy)(struct engine *e, json_t **out, char *err,
		    size_t errlen);
	void	(*stop)(struct engine *e);
};

/* A running engine; the adapter's fields live behind impl. */
struct engine {
	const struct adapter_ops *ops;
	const struct manifest	*manifest;
	char			*dir;
	struct proc_limits	 limits;
	int64_t			 request_timeout_ms;
	int			 inflight;
	pid_t			 pid;		/* jsonl: the engine process */
	int64_t			 stop_wait_ms;	/* jsonl: wait this long for it to exit */
	struct tailbuf		 stderr_tail;
	void			*impl;
};

extern const struct adapter_ops adapter_jsonl_ops;
extern const struct adapter_ops adapter_exec_ops;

/*
 * Starts the manifest's engine in dir.  For jsonl the process is started
 * and its ready line awaited; for exec nothing runs until a request.
 */
int	engine_start(struct engine **out, const struct manifest *m,
	    const char *dir, const struct proc_limits *lim,
	    int64_t request_timeout_s, char *err, size_t errlen);
/* Sends a request without waiting: several may be in flight. */
int	engine_send(struct engine *e, const struct request_spec *rq, char *err,
	    size_t errlen);
/*
 * Waits for the next reply.  A crash, a hang past the request timeout or
 * garbage output is an error (BL_ERROR, BL_ETOOBIG) with the reason and
 * the engine's last stderr in err; the engine is then unusable.
 */
int	engine_recv(struct engine *e, struct reply *out, char *err,
	    size_t errlen);
/* Sends one request and waits for its reply. */
int	engine_call(struct engine *e, const struct request_spec *rq,
	    struct reply *out, char *err, size_t errlen);
int	engine_accuracy(struct engine *e, json_t **out, char *err,
	    size_t errlen);
pid_t	engine_pid(const struct engine *e);
/* Stops the engine's process group and frees it. */
void	engine_stop(struct engine *e);

/* counter.c: counted metrics, through valgrind's cachegrind. */
enum count_event {
	COUNT_IR, COUNT_I1MR, COUNT_ILMR, COUNT_DR, COUNT_D1MR, COUNT_DLMR,
	COUNT_DW, COUNT_D1MW, COUNT_DLMW, COUNTER_EVENTS
};
struct counts {
	double	v[COUNTER_EVENTS];	/* by enum count_event */
	int	cache_sim;		/* the cache events were counted */
};
/* command (ncommand elements) under cachegrind, writing its counts to out_file. */
char	**counter_argv(char *const *command, size_t ncommand,
	    const char *out_file);
void	counter_argv_free(char **argv);
/* Parses the text of a cachegrind output file: its events: and summary: lines. */
int	counter_parse(struct counts *c, const char *text, char *err,
	    size_t errlen);
int	counter_read(struct counts *c, const char *path, char *err,
	    size_t errlen);
/* out = a - b, event by event. */
void	counter_sub(struct counts *out, const struct counts *a,
	    const struct counts *b);
/* Ir + 10 x first-level misses + 100 x last-level misses. */
double	counter_est_cycles(const struct counts *c);
/* 1 when perf_event_open can count instructions here; why says so either way. */
int	counter_hw_probe(char *why, size_t len);

/* scenario.c */
/*
 * Runs one scenario of a job against a fresh engine and returns its part
 * of the result: {"metrics": {...}, "timeseries": {...}, "info": {...}}.
 * cancel, when it becomes non-zero, stops the scenario early (BL_ECONFLICT).
 */
int	scenario_run(json_t **out, const char *name, const struct manifest *m,
	    json_t *params, const char *dir, const struct worker_settings *s,
	    volatile int *cancel, char *err, size_t errlen);

/* spool.c */
struct httpc;
struct spool;
/* Opens (creating) the spool directory, with a rejected/ folder inside. */
int	spool_open(struct spool **out, const char *dir);
void	spool_free(struct spool *s);
/* Stores a result durably (write, fsync, rename) before it is sent. */
int	spool_put(struct spool *s, int64_t job_id, int attempt, const char *body,
	    size_t len);
/*
 * Sends every spooled result, oldest first.  An answered upload leaves the
 * spool: 2xx as stored, 4xx as refused (kept in rejected/ for a look).  A
 * server that cannot be reached or answers 5xx leaves it for the next try.
 * *pending is what is left.
 */
int	spool_flush(struct spool *s, struct httpc *h, int *pending);

/* loop.c */
/* Claims and runs jobs until *stop becomes non-zero. */
int	worker_loop(const struct worker_settings *s, volatile int *stop);

#endif
