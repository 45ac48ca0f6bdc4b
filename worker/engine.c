/* The engine under test, whatever its adapter: start, requests in flight, replies, stop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"
#include "xmalloc.h"

#define STDERR_TAIL_BYTES 8192

void
reply_clear(struct reply *r)
{
	free(r->token_ms);
	json_decref(r->values);
	memset(r, 0, sizeof(*r));
	r->ttft_ms = r->total_ms = r->wall_ms = NAN;
	r->peak_rss_bytes = -1;
}

int
engine_start(struct engine **out, const struct manifest *m, const char *dir,
    const struct proc_limits *lim, int64_t request_timeout_s, char *err,
    size_t errlen)
{
	struct engine *e = xcalloc(1, sizeof(*e));

	e->ops = m->adapter == ADAPTER_JSONL ? &adapter_jsonl_ops :
	    &adapter_exec_ops;
	e->manifest = m;
	e->dir = xstrdup(dir);
	e->limits = *lim;
	e->request_timeout_ms = request_timeout_s * 1000;
	e->stop_wait_ms = 1000;
	tailbuf_init(&e->stderr_tail, STDERR_TAIL_BYTES);
	if (e->ops->start(e, err, errlen) < 0) {
		engine_stop(e);
		return BL_ERROR;
	}
	*out = e;
	return 0;
}

int
engine_send(struct engine *e, const struct request_spec *rq, char *err,
    size_t errlen)
{
	int rc = e->ops->send(e, rq, err, errlen);

	if (rc == 0)
		e->inflight++;
	return rc;
}

int
engine_recv(struct engine *e, struct reply *out, char *err, size_t errlen)
{
	int rc;

	reply_clear(out);
	rc = e->ops->recv(e, out, e->request_timeout_ms, err, errlen);
	if (rc == 0)
		e->inflight--;
	return rc;
}

int
engine_call(struct engine *e, const struct request_spec *rq, struct reply *out,
    char *err, size_t errlen)
{
	int rc;

	if ((rc = engine_send(e, rq, err, errlen)) < 0)
		return rc;
	return engine_recv(e, out, err, errlen);
}

int
engine_accuracy(struct engine *e, json_t **out, char *err, size_t errlen)
{
	if (e->ops->accuracy == NULL) {
		snprintf(err, errlen, "the %s adapter cannot report accuracy",
		    e->manifest->adapter == ADAPTER_JSONL ? "jsonl" : "exec");
		return BL_EINVAL;
	}
	return e->ops->accuracy(e, out, err, errlen);
}

pid_t
engine_pid(const struct engine *e)
{
	return e->pid;
}

void
engine_stop(struct engine *e)
{
	if (e == NULL)
		return;
	e->ops->stop(e);
	tailbuf_free(&e->stderr_tail);
	free(e->dir);
	free(e);
}
