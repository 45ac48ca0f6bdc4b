/* The HTTP front: libmicrohttpd setup, request bodies, suspension; the only file that calls libmicrohttpd. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "clock.h"
#include "log.h"
#include "server.h"
#include "xmalloc.h"

#define REQ_MAX_HEADERS	8
#define REQ_MAX_PARAMS	4

struct httpd {
	struct MHD_Daemon	*daemon;
	struct server		*srv;
};

struct request {
	uint64_t		 id;
	struct MHD_Connection	*conn;
	struct server		*srv;
	char			*method;
	char			*path;
	struct buf		 body;
	int			 too_big;
	int			 queued;	/* the response is with libmicrohttpd */
	size_t			 dropped;	/* body bytes read past the limit */
	int			 suspended;
	int			 status;
	char			*ctype;
	char			*resp;
	size_t			 resp_len;
	int			 nhdrs;
	char			*hdr_name[REQ_MAX_HEADERS];
	char			*hdr_value[REQ_MAX_HEADERS];
	int			 nparams;
	char			*params[REQ_MAX_PARAMS];
	const char		*route;
	double			 start_s;
	void			*state;
	void			(*state_free)(void *);
	char			 ctx[32];
};

static atomic_uint_fast64_t next_request_id = 1;

uint64_t
req_id(const struct request *r)
{
	return r->id;
}

const char *
req_method(const struct request *r)
{
	return r->method;
}

const char *
req_path(const struct request *r)
{
	return r->path;
}

const char *
req_header(struct request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
req_query(struct request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const struct buf *
req_body(const struct request *r)
{
	return &r->body;
}

struct server *
req_server(const struct request *r)
{
	return r->srv;
}

void
req_set_route(struct request *r, const char *name)
{
	r->route = name;
}

void *
req_state(const struct request *r)
{
	return r->state;
}

void
req_set_state(struct request *r, void *state, void (*fn)(void *))
{
	r->state = state;
	r->state_free = fn;
}

void
req_add_param(struct request *r, const char *s, size_t len)
{
	if (r->nparams < REQ_MAX_PARAMS)
		r->params[r->nparams++] = xstrndup(s, len);
}

const char *
req_param(const struct request *r, int i)
{
	return i < r->nparams ? r->params[i] : NULL;
}

void
req_suspend(struct request *r)
{
	r->suspended = 1;
	MHD_suspend_connection(r->conn);
}

void
req_resume(struct request *r)
{
	MHD_resume_connection(r->conn);
}

void
req_respond(struct request *r, int status, const char *ctype, const char *body,
    size_t len)
{
	free(r->resp);
	free(r->ctype);
	r->status = status;
	r->ctype = xstrdup(ctype);
	r->resp = xmalloc(len + 1);
	memcpy(r->resp, body, len);
	r->resp[len] = '\0';
	r->resp_len = len;
}

void
req_add_header(struct request *r, const char *name, const char *value)
{
	if (r->nhdrs >= REQ_MAX_HEADERS)
		return;
	r->hdr_name[r->nhdrs] = xstrdup(name);
	r->hdr_value[r->nhdrs] = xstrdup(value);
	r->nhdrs++;
}

static void
request_free(struct request *r)
{
	int i;

	if (r->state_free != NULL)
		r->state_free(r->state);
	buf_free(&r->body);
	free(r->method);
	free(r->path);
	free(r->ctype);
	free(r->resp);
	for (i = 0; i < r->nhdrs; i++) {
		free(r->hdr_name[i]);
		free(r->hdr_value[i]);
	}
	for (i = 0; i < r->nparams; i++)
		free(r->params[i]);
	free(r);
}

/* Hands the response the handler set to libmicrohttpd. */
static enum MHD_Result
request_queue(struct request *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int i;

	if (r->resp == NULL)
		reply_error(r, 500, "internal", "handler '%s' set no response",
		    r->route ? r->route : "?");
	resp = MHD_create_response_from_buffer(r->resp_len, r->resp,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (r->status != 204)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    r->ctype);
	for (i = 0; i < r->nhdrs; i++)
		MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
	ret = MHD_queue_response(r->conn, (unsigned int)r->status, resp);
	MHD_destroy_response(resp);
	r->queued = ret == MHD_YES;
	return ret;
}

/*
 * The access handler.  The first call only sets up the request: answering
 * in it would make libmicrohttpd close the connection after the reply.
 * Body chunks are collected up to max_body_bytes; the last call dispatches.
 * A body announced too big is refused at once; one found too big while it
 * arrives (chunked, no Content-Length) cannot be answered mid-body, so the
 * rest is read and dropped, up to max_body_bytes more, and the 413 goes
 * out at its end; a client sending more than that is cut off.
 */
static enum MHD_Result
httpd_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct httpd *h = cls;
	struct request *r = *con_cls;
	const char *cl;

	(void)version;
	if (r == NULL) {
		r = xcalloc(1, sizeof(*r));
		r->id = atomic_fetch_add(&next_request_id, 1);
		r->conn = conn;
		r->srv = h->srv;
		r->method = xstrdup(method);
		r->path = xstrdup(url);
		r->start_s = clock_mono_s();
		snprintf(r->ctx, sizeof(r->ctx), "req=%llu",
		    (unsigned long long)r->id);
		buf_init(&r->body, (size_t)h->srv->settings->max_body_bytes);
		*con_cls = r;
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) >
		    (unsigned long long)h->srv->settings->max_body_bytes) {
			r->too_big = 1;
			reply_error(r, 413, "too_large",
			    "request body of %s bytes exceeds the limit of %lld",
			    cl, h->srv->settings->max_body_bytes);
			return request_queue(r);
		}
		return MHD_YES;
	}
	log_set_context(r->ctx);
	if (*upload_size != 0) {
		if (!r->too_big && buf_add(&r->body, upload, *upload_size) < 0) {
			r->too_big = 1;
			reply_error(r, 413, "too_large",
			    "request body exceeds the limit of %lld bytes",
			    h->srv->settings->max_body_bytes);
		}
		if (r->too_big) {
			r->dropped += *upload_size;
			if (r->dropped > (size_t)h->srv->settings->max_body_bytes)
				return MHD_NO;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_big)
		return r->queued ? MHD_YES : request_queue(r);
	r->suspended = 0;
	route_dispatch(r);
	log_set_context(NULL);
	if (r->suspended)
		return MHD_YES;
	return request_queue(r);
}

static void
httpd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;
	double secs;

	(void)cls;
	(void)conn;
	if (r == NULL)
		return;
	secs = clock_mono_s() - r->start_s;
	metrics_request(r->route ? r->route : "other", r->status, secs);
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_debug("req=%llu %s %s ended early (%d)",
		    (unsigned long long)r->id, r->method, r->path, (int)toe);
	else
		log_debug("req=%llu %s %s %d %.1f ms", (unsigned long long)r->id,
		    r->method, r->path, r->status, secs * 1000);
	request_free(r);
	*con_cls = NULL;
}

static void
httpd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_warnx("httpd: %s", msg);
}

int
httpd_start(struct httpd **out, struct server *srv)
{
	struct httpd *h = xcalloc(1, sizeof(*h));
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)srv->settings->listen_port);
	if (inet_pton(AF_INET, srv->settings->listen_addr, &sa.sin_addr) != 1) {
		log_warnx("listen_addr '%s' is not an IPv4 address",
		    srv->settings->listen_addr);
		free(h);
		return BL_EINVAL;
	}
	h->srv = srv;
	h->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
	    (uint16_t)srv->settings->listen_port, NULL, NULL, httpd_access, h,
	    MHD_OPTION_EXTERNAL_LOGGER, httpd_log, h,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)srv->settings->threads,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1000,
	    MHD_OPTION_NOTIFY_COMPLETED, httpd_completed, h,
	    MHD_OPTION_END);
	if (h->daemon == NULL) {
		log_warnx("cannot listen on %s:%lld", srv->settings->listen_addr,
		    srv->settings->listen_port);
		free(h);
		return BL_ERROR;
	}
	*out = h;
	return 0;
}

void
httpd_stop(struct httpd *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->daemon);
	free(h);
}
