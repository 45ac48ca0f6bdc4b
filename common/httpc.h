/* HTTP client (libcurl) for talking JSON to the benchline server. */
#ifndef BL_HTTPC_H
#define BL_HTTPC_H

#include <stddef.h>

#include <jansson.h>

#include "error.h"

struct httpc;

/* Call once per process before any thread uses the client. */
void	httpc_global_init(void);
/*
 * A client for one server: base_url such as "http://127.0.0.1:8080" and
 * an optional bearer token (borrowed copies are made).  One client is not
 * shared between threads; it keeps its connection alive between calls.
 */
int	httpc_new(struct httpc **out, const char *base_url, const char *token);
void	httpc_free(struct httpc *h);

/*
 * POSTs body (JSON text, or NULL for none) to path and waits up to
 * timeout_s for the answer.  On an answer, returns 0 with *status set and
 * *resp the parsed JSON body (NULL when empty or not JSON; caller
 * json_decref()s).  When no answer came (server down, timeout) returns
 * BL_EUNAVAIL with the reason in err.
 */
int	httpc_post(struct httpc *h, const char *path, const char *body,
	    size_t len, long timeout_s, long *status, json_t **resp, char *err,
	    size_t errlen);
int	httpc_get(struct httpc *h, const char *path, long timeout_s,
	    long *status, json_t **resp, char *err, size_t errlen);
/* The "error.message" of a JSON error body, or "" (borrowed from resp). */
const char *httpc_error_message(json_t *resp);

#endif
