/*
 * The jsonl adapter: one long-lived engine process; one JSON request per
 * line on its stdin, one JSON reply per line on its stdout.  The engine
 * first prints {"ready":true,...} once its model is loaded.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "worker.h"
#include "xmalloc.h"

#define LINE_MAX_BYTES	(16 << 20)
#define SENT_SLOTS	4096

struct jsonl {
	struct proc	 p;
	struct buf	 out;		/* stdout bytes not yet split into lines */
	double		 sent_at[SENT_SLOTS];	/* by id % SENT_SLOTS */
	int		 dead;
};

/* Appends the engine's exit status and stderr tail to err. */
static void
jsonl_died(struct engine *e, const char *what, char *err, size_t errlen)
{
	struct jsonl *j = e->impl;
	char st[96] = "still running", *tail;

	if (proc_poll(&j->p, NULL))
		proc_status_str(st, sizeof(st), j->p.status);
	tail = tailbuf_str(&e->stderr_tail);
	snprintf(err, errlen, "engine %s (%s); stderr ends: %.600s", what, st,
	    *tail ? tail : "(empty)");
	free(tail);
	j->dead = 1;
}

/* Drains stderr into the tail and stdout into the line buffer. */
static int
jsonl_pump(struct engine *e, int64_t deadline_ms)
{
	struct jsonl *j = e->impl;
	struct pollfd pfd[2];
	char chunk[65536];
	int64_t wait;
	ssize_t n;

	pfd[0].fd = j->p.out_fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = j->p.err_fd;
	pfd[1].events = POLLIN;
	wait = deadline_ms - clock_mono_ms();
	if (wait < 0)
		wait = 0;
	if (poll(pfd, 2, (int)(wait > 1000 ? 1000 : wait)) < 0)
		return errno == EINTR ? 0 : BL_ERROR;
	if (pfd[1].revents & (POLLIN | POLLHUP)) {
		n = read(j->p.err_fd, chunk, sizeof(chunk));
		if (n > 0)
			tailbuf_add(&e->stderr_tail, chunk, (size_t)n);
	}
	if (pfd[0].revents & (POLLIN | POLLHUP)) {
		n = read(j->p.out_fd, chunk, sizeof(chunk));
		if (n == 0)
			return BL_ERROR;	/* stdout closed: it exited */
		if (n > 0 && buf_add(&j->out, chunk, (size_t)n) < 0)
			return BL_ETOOBIG;
	}
	return 0;
}

/* Takes the next complete line out of the buffer; caller frees. */
static char *
jsonl_take_line(struct jsonl *j)
{
	char *nl = memchr(j->out.ptr, '\n', j->out.len), *line;
	size_t n;

	if (nl == NULL)
		return NULL;
	n = (size_t)(nl - j->out.ptr);
	line = xstrndup(j->out.ptr, n);
	memmove(j->out.ptr, nl + 1, j->out.len - n - 1);
	j->out.len -= n + 1;
	j->out.ptr[j->out.len] = '\0';
	return line;
}

/* Reads the next line within timeout_ms, telling crash, hang and flood apart. */
static int
jsonl_read_line(struct engine *e, char **line, int64_t timeout_ms, char *err,
    size_t errlen)
{
	struct jsonl *j = e->impl;
	int64_t deadline = clock_mono_ms() + timeout_ms;
	int rc;

	if (j->dead) {
		snprintf(err, errlen, "engine is no longer running");
		return BL_ERROR;
	}
	while ((*line = jsonl_take_line(j)) == NULL) {
		if (clock_mono_ms() >= deadline) {
			char what[96];

			snprintf(what, sizeof(what), "gave no reply within %lld ms "
			    "(hung)", (long long)timeout_ms);
			jsonl_died(e, what, err, errlen);
			return BL_ETOOBIG;
		}
		if ((rc = jsonl_pump(e, deadline)) == BL_ETOOBIG) {
			jsonl_died(e, "printed a line longer than 16 MiB", err,
			    errlen);
			return BL_ERROR;
		}
		if (rc < 0) {
			/* Let it finish dying, to report how. */
			for (int i = 0; i < 50 && !proc_poll(&j->p, NULL); i++)
				clock_sleep_ms(10);
			jsonl_died(e, "exited", err, errlen);
			return BL_ERROR;
		}
	}
	return 0;
}

static int
jsonl_start(struct engine *e, char *err, size_t errlen)
{
	struct jsonl *j = xcalloc(1, sizeof(*j));
	json_t *ready = NULL;
	char *line = NULL;
	int rc;

	e->impl = j;
	buf_init(&j->out, LINE_MAX_BYTES);
	j->p.pid = -1;
	j->p.in_fd = j->p.out_fd = j->p.err_fd = -1;
	if (proc_spawn(&j->p, e->manifest->command, e->dir, &e->limits,
	    PROC_PIPE_STDIN | PROC_PIPE_STDOUT, err, errlen) < 0)
		return BL_ERROR;
	e->pid = j->p.pid;
	if ((rc = jsonl_read_line(e, &line, e->request_timeout_ms, err,
	    errlen)) < 0)
		return rc;
	ready = json_loads(line, 0, NULL);
	if (!json_is_true(json_object_get(ready, "ready"))) {
		char what[200];

		snprintf(what, sizeof(what), "did not start with a ready line: "
		    "'%.100s'", line);
		jsonl_died(e, what, err, errlen);
		rc = BL_ERROR;
	} else
		log_info("engine %d ready: %.200s", (int)j->p.pid, line);
	json_decref(ready);
	free(line);
	return rc;
}

static int
jsonl_write(struct engine *e, const char *text, char *err, size_t errlen)
{
	struct jsonl *j = e->impl;
	size_t len = strlen(text), off = 0;
	ssize_t n;

	while (off < len) {
		n = write(j->p.in_fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			jsonl_died(e, "stopped reading its input", err, errlen);
			return BL_ERROR;
		}
		off += (size_t)n;
	}
	return 0;
}

static int
jsonl_send(struct engine *e, const struct request_spec *rq, char *err,
    size_t errlen)
{
	struct jsonl *j = e->impl;
	char line[256];

	snprintf(line, sizeof(line), "{\"id\":%lld,\"prompt_tokens\":%d,"
	    "\"max_tokens\":%d,\"temperature\":%g,\"seed\":%llu}\n",
	    (long long)rq->id, rq->prompt_tokens, rq->max_tokens,
	    rq->temperature, (unsigned long long)rq->seed);
	j->sent_at[rq->id % SENT_SLOTS] = clock_mono_s();
	return jsonl_write(e, line, err, errlen);
}

static double
num_or_nan(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

static int
jsonl_recv(struct engine *e, struct reply *out, int64_t timeout_ms, char *err,
    size_t errlen)
{
	struct jsonl *j = e->impl;
	json_t *v = NULL, *tms, *x;
	char *line = NULL;
	size_t i;
	int rc;

	if ((rc = jsonl_read_line(e, &line, timeout_ms, err, errlen)) < 0)
		return rc;
	v = json_loads(line, 0, NULL);
	if (!json_is_object(v) || !json_is_integer(json_object_get(v, "id"))) {
		char what[200];

		snprintf(what, sizeof(what), "printed garbage instead of a reply: "
		    "'%.100s'", line);
		jsonl_died(e, what, err, errlen);
		rc = BL_ERROR;
		goto out;
	}
	out->id = json_integer_value(json_object_get(v, "id"));
	out->wall_ms = (clock_mono_s() - j->sent_at[out->id % SENT_SLOTS]) *
	    1000.0;
	if (json_is_string(json_object_get(v, "error"))) {
		snprintf(out->error, sizeof(out->error), "%s",
		    json_string_value(json_object_get(v, "error")));
		goto out;
	}
	out->ok = 1;
	out->ttft_ms = num_or_nan(v, "ttft_ms");
	out->total_ms = num_or_nan(v, "total_ms");
	out->tokens = (int)json_integer_value(json_object_get(v, "tokens"));
	if ((tms = json_object_get(v, "token_ms")) != NULL && json_is_array(tms)) {
		out->token_ms = xreallocarray(NULL, json_array_size(tms) + 1,
		    sizeof(double));
		json_array_foreach(tms, i, x)
			out->token_ms[out->ntoken_ms++] = json_number_value(x);
	}
	if ((x = json_object_get(v, "accuracy")) != NULL)
		out->values = json_incref(x);
out:
	json_decref(v);
	free(line);
	return rc;
}

static int
jsonl_accuracy(struct engine *e, json_t **out, char *err, size_t errlen)
{
	struct reply r = { 0 };
	int rc;

	reply_clear(&r);
	if ((rc = jsonl_write(e, "{\"id\":0,\"accuracy\":true}\n", err,
	    errlen)) < 0)
		return rc;
	e->inflight++;
	if ((rc = engine_recv(e, &r, err, errlen)) < 0)
		return rc;
	if (!r.ok || !json_is_object(r.values)) {
		snprintf(err, errlen, "engine gave no accuracy: %s",
		    r.ok ? "no 'accuracy' object in its reply" : r.error);
		reply_clear(&r);
		return BL_EINVAL;
	}
	*out = json_incref(r.values);
	reply_clear(&r);
	return 0;
}

static void
jsonl_stop(struct engine *e)
{
	struct jsonl *j = e->impl;
	char st[96];

	if (j == NULL)
		return;
	if (j->p.pid > 0) {
		/* Closing stdin asks it to exit; then the group is ended. */
		if (j->p.in_fd >= 0) {
			close(j->p.in_fd);
			j->p.in_fd = -1;
		}
		for (int64_t t = 0; t < e->stop_wait_ms &&
		    !proc_poll(&j->p, NULL); t += 10)
			clock_sleep_ms(10);
		proc_kill(&j->p, 1000);
		if (!(WIFEXITED(j->p.status) && WEXITSTATUS(j->p.status) == 0) &&
		    !j->dead)
			log_warnx("engine %d ended abnormally: %s", (int)j->p.pid,
			    proc_status_str(st, sizeof(st), j->p.status));
	}
	proc_close_fds(&j->p);
	buf_free(&j->out);
	free(j);
	e->impl = NULL;
}

const struct adapter_ops adapter_jsonl_ops = {
	jsonl_start, jsonl_send, jsonl_recv, jsonl_accuracy, jsonl_stop
};
