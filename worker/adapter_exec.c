/*
 * The exec adapter: one process per request, for engines that only print
 * text.  Arguments may hold {prompt_tokens}, {max_tokens}, {temperature}
 * and {seed}; numbers are read from the output with the manifest's regular
 * expressions; wall time and peak RSS come from wait4.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "worker.h"
#include "xmalloc.h"

#define EXEC_MAX_INFLIGHT	1024
#define EXEC_OUTPUT_MAX		(1 << 20)

struct exec_run {
	struct proc	 p;
	int64_t		 id;
	double		 started;
	struct buf	 output;
	int		 eof;
};

struct exec {
	struct exec_run	*runs[EXEC_MAX_INFLIGHT];
	int		 nruns;
	regex_t		*re;
	size_t		 nre;		/* compiled so far */
};

static int
exec_start(struct engine *e, char *err, size_t errlen)
{
	const struct manifest *m = e->manifest;
	struct exec *x = xcalloc(1, sizeof(*x));
	size_t i;

	e->impl = x;
	x->re = xcalloc(m->nmetrics + 1, sizeof(*x->re));
	for (i = 0; i < m->nmetrics; i++) {
		if (regcomp(&x->re[i], m->metrics[i].regex, REG_EXTENDED) != 0) {
			snprintf(err, errlen, "metric '%s': regex does not compile",
			    m->metrics[i].name);
			return BL_EINVAL;
		}
		x->nre++;
	}
	return 0;
}

/* Replaces {name} placeholders in one argument. */
static char *
expand(const char *arg, const struct request_spec *rq)
{
	struct buf b;
	const char *p = arg;

	buf_init(&b, 65536);
	while (*p != '\0') {
		if (strncmp(p, "{prompt_tokens}", 15) == 0) {
			buf_addf(&b, "%d", rq->prompt_tokens);
			p += 15;
		} else if (strncmp(p, "{max_tokens}", 12) == 0) {
			buf_addf(&b, "%d", rq->max_tokens);
			p += 12;
		} else if (strncmp(p, "{temperature}", 13) == 0) {
			buf_addf(&b, "%g", rq->temperature);
			p += 13;
		} else if (strncmp(p, "{seed}", 6) == 0) {
			buf_addf(&b, "%llu", (unsigned long long)rq->seed);
			p += 6;
		} else
			buf_add(&b, p++, 1);
	}
	return buf_detach(&b);
}

static int
exec_send(struct engine *e, const struct request_spec *rq, char *err,
    size_t errlen)
{
	const struct manifest *m = e->manifest;
	struct exec *x = e->impl;
	struct exec_run *run;
	char **argv;
	size_t i;
	int rc;

	if (x->nruns == EXEC_MAX_INFLIGHT) {
		snprintf(err, errlen, "more than %d requests in flight",
		    EXEC_MAX_INFLIGHT);
		return BL_ETOOBIG;
	}
	argv = xcalloc(m->ncommand + 1, sizeof(*argv));
	for (i = 0; i < m->ncommand; i++)
		argv[i] = expand(m->command[i], rq);
	run = xcalloc(1, sizeof(*run));
	run->id = rq->id;
	run->started = clock_mono_s();
	buf_init(&run->output, EXEC_OUTPUT_MAX);
	rc = proc_spawn(&run->p, argv, e->dir, &e->limits, 0, err, errlen);
	for (i = 0; i < m->ncommand; i++)
		free(argv[i]);
	free(argv);
	if (rc < 0) {
		buf_free(&run->output);
		free(run);
		return rc;
	}
	x->runs[x->nruns++] = run;
	return 0;
}

/* Reads numbers out of a finished run's output with the manifest's regexes. */
static void
exec_parse(struct engine *e, struct exec_run *run, struct reply *out)
{
	const struct manifest *m = e->manifest;
	struct exec *x = e->impl;
	regmatch_t g[2];
	size_t i;
	double v;

	out->values = json_object();
	for (i = 0; i < m->nmetrics; i++) {
		if (regexec(&x->re[i], run->output.ptr, 2, g, 0) != 0 ||
		    g[1].rm_so < 0)
			continue;
		v = strtod(run->output.ptr + g[1].rm_so, NULL);
		if (isfinite(v))
			json_object_set_new(out->values, m->metrics[i].name,
			    json_real(v));
	}
	if (json_is_number(json_object_get(out->values, "tokens")))
		out->tokens = (int)json_number_value(json_object_get(out->values,
		    "tokens"));
	out->ttft_ms = json_is_number(json_object_get(out->values, "ttft_ms")) ?
	    json_number_value(json_object_get(out->values, "ttft_ms")) : NAN;
}

/* Waits until one run has exited and its output is read, oldest deadline first. */
static int
exec_recv(struct engine *e, struct reply *out, int64_t timeout_ms, char *err,
    size_t errlen)
{
	struct exec *x = e->impl;
	struct pollfd pfd[EXEC_MAX_INFLIGHT];
	struct exec_run *run;
	struct rusage ru;
	char chunk[16384], st[96];
	ssize_t n;
	int i, k;

	if (x->nruns == 0) {
		snprintf(err, errlen, "no request in flight");
		return BL_ERROR;
	}
	for (;;) {
		for (i = 0; i < x->nruns; i++) {
			run = x->runs[i];
			if (!run->eof || !proc_poll(&run->p, &ru))
				continue;
			out->id = run->id;
			out->wall_ms = (clock_mono_s() - run->started) * 1000.0;
			out->total_ms = out->wall_ms;
			out->peak_rss_bytes = (int64_t)ru.ru_maxrss * 1024;
			if (WIFEXITED(run->p.status) &&
			    WEXITSTATUS(run->p.status) == 0) {
				out->ok = 1;
				exec_parse(e, run, out);
			} else {
				tailbuf_add(&e->stderr_tail, run->output.ptr,
				    run->output.len);
				snprintf(out->error, sizeof(out->error), "%s",
				    proc_status_str(st, sizeof(st), run->p.status));
			}
			proc_close_fds(&run->p);
			buf_free(&run->output);
			free(run);
			x->runs[i] = x->runs[--x->nruns];
			return 0;
		}
		for (i = 0; i < x->nruns; i++) {
			run = x->runs[i];
			if (clock_mono_s() - run->started > timeout_ms / 1000.0) {
				proc_kill(&run->p, 500);
				snprintf(err, errlen, "engine run %lld gave no result "
				    "within %lld ms (hung) and was killed",
				    (long long)run->id, (long long)timeout_ms);
				return BL_ETOOBIG;
			}
		}
		for (i = k = 0; i < x->nruns; i++) {
			pfd[k].fd = x->runs[i]->eof ? -1 : x->runs[i]->p.err_fd;
			pfd[k++].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)k, 50) < 0 && errno != EINTR)
			return BL_ERROR;
		for (i = 0; i < k; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP)))
				continue;
			run = x->runs[i];
			n = read(run->p.err_fd, chunk, sizeof(chunk));
			if (n <= 0)
				run->eof = 1;
			else
				buf_add(&run->output, chunk, (size_t)n);
		}
	}
}

static void
exec_stop(struct engine *e)
{
	struct exec *x = e->impl;
	int i;

	if (x == NULL)
		return;
	for (i = 0; i < x->nruns; i++) {
		proc_kill(&x->runs[i]->p, 500);
		proc_close_fds(&x->runs[i]->p);
		buf_free(&x->runs[i]->output);
		free(x->runs[i]);
	}
	for (i = 0; (size_t)i < x->nre; i++)
		regfree(&x->re[i]);
	free(x->re);
	free(x);
	e->impl = NULL;
}

const struct adapter_ops adapter_exec_ops = {
	exec_start, exec_send, exec_recv, NULL, exec_stop
};
