/* Responses: JSON bodies, and the one mapping from error codes to HTTP statuses. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "server.h"

void
reply_json(struct request *r, int status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);

	if (s == NULL) {
		json_decref(body);
		reply_error(r, 500, "internal", "cannot encode the response");
		return;
	}
	req_respond(r, status, "application/json", s, strlen(s));
	free(s);
	json_decref(body);
}

/*
 * Replaces each byte that is not part of a well-formed UTF-8 sequence with
 * '?'.  Messages quote what clients sent (a query parameter, a header), and
 * Jansson refuses to encode invalid UTF-8: the error body would be NULL.
 */
static void
utf8_scrub(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n, i;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf)
			n = 1;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 2;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 3;
		else {
			*p++ = '?';
			continue;
		}
		/* A NUL stops this loop too: nothing past the string is read. */
		for (i = 1; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				break;
		/* Overlong forms, UTF-16 surrogates, beyond U+10FFFF. */
		if (i <= n || (p[0] == 0xe0 && p[1] < 0xa0) ||
		    (p[0] == 0xed && p[1] >= 0xa0) ||
		    (p[0] == 0xf0 && p[1] < 0x90) ||
		    (p[0] == 0xf4 && p[1] >= 0x90)) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
	}
}

void
reply_error(struct request *r, int status, const char *code, const char *fmt,
    ...)
{
	char msg[1024];
	json_t *body;
	va_list ap;
	char *s;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_scrub(msg);
	if (status >= 500)
		log_warnx("%s %s: %d %s", req_method(r), req_path(r), status, msg);
	else
		log_debug("%s %s: %d %s", req_method(r), req_path(r), status, msg);
	body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
	s = json_dumps(body, JSON_COMPACT);
	req_respond(r, status, "application/json", s, strlen(s));
	free(s);
	json_decref(body);
}

void
reply_status(struct request *r, int rc, const char *msg)
{
	switch (rc) {
	case BL_ENOTFOUND:
		reply_error(r, 404, "not_found", "%s", msg);
		break;
	case BL_ECONFLICT:
		reply_error(r, 409, "conflict", "%s", msg);
		break;
	case BL_ETOOBIG:
		reply_error(r, 413, "too_large", "%s", msg);
		break;
	case BL_EINVAL:
		reply_error(r, 400, "invalid", "%s", msg);
		break;
	case BL_EAUTH:
		req_add_header(r, "WWW-Authenticate", "Bearer");
		reply_error(r, 401, "unauthorized", "%s", msg);
		break;
	case BL_EFORBIDDEN:
		reply_error(r, 403, "forbidden", "%s", msg);
		break;
	case BL_EUNAVAIL:
		req_add_header(r, "Retry-After", "5");
		reply_error(r, 503, "unavailable", "%s", msg);
		break;
	default:
		reply_error(r, 500, "internal", "%s", msg);
		break;
	}
}

void
reply_db_error(struct request *r, struct db *db)
{
	char msg[600];

	snprintf(msg, sizeof(msg), "database error: %s", db_errmsg(db));
	reply_status(r, BL_ERROR, msg);
}

void
reply_no_content(struct request *r)
{
	req_respond(r, 204, "application/json", "", 0);
}

struct db *
req_db(struct request *r)
{
	struct db *db = dbpool_get(req_server(r)->pool, 5000);

	if (db == NULL)
		reply_status(r, BL_EUNAVAIL, "database unavailable");
	return db;
}

/* How long a failed read replica is left alone before it is tried again. */
#define READ_RETRY_MS	5000

struct db *
req_db_read(struct request *r)
{
	struct server *srv = req_server(r);
	struct db *db;
	char why[512];

	if (srv->read_pool == NULL ||
	    clock_mono_ms() < atomic_load(&srv->read_retry_ms))
		return req_db(r);
	if ((db = dbpool_get(srv->read_pool, 1000)) != NULL) {
		if (atomic_exchange(&srv->read_down, 0))
			log_info("read replica: reachable again; dashboard "
			    "reads go to it");
		return db;
	}
	atomic_store(&srv->read_retry_ms, clock_mono_ms() + READ_RETRY_MS);
	if (!atomic_exchange(&srv->read_down, 1)) {
		dbpool_error(srv->read_pool, why, sizeof(why));
		log_warnx("read replica: no connection (%s); dashboard reads "
		    "go to the primary until it answers", why);
	}
	return req_db(r);
}

json_t *
req_json_body(struct request *r)
{
	const struct buf *b = req_body(r);
	json_error_t jerr;
	json_t *v;

	if (b->len == 0) {
		reply_error(r, 400, "invalid", "request body is empty; a JSON "
		    "object is required");
		return NULL;
	}
	v = json_loadb(b->ptr, b->len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL) {
		reply_error(r, 400, "malformed_json",
		    "malformed JSON at line %d column %d: %s", jerr.line,
		    jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		reply_error(r, 400, "invalid", "$: must be a JSON object");
		return NULL;
	}
	return v;
}
