/* A small JSON-over-HTTP client on libcurl, with keep-alive and bounded replies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "buf.h"
#include "httpc.h"
#include "xmalloc.h"

#define HTTPC_MAX_REPLY (64 << 20)

struct httpc {
	CURL		*curl;
	char		*base;
	char		*auth;		/* "Authorization: Bearer ..." or NULL */
};

void
httpc_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
httpc_new(struct httpc **out, const char *base_url, const char *token)
{
	struct httpc *h = xcalloc(1, sizeof(*h));
	size_t n = strlen(base_url);

	if ((h->curl = curl_easy_init()) == NULL) {
		free(h);
		return BL_ERROR;
	}
	while (n > 0 && base_url[n - 1] == '/')
		n--;
	h->base = xstrndup(base_url, n);
	if (token != NULL && *token != '\0')
		h->auth = xasprintf("Authorization: Bearer %s", token);
	*out = h;
	return 0;
}

void
httpc_free(struct httpc *h)
{
	if (h == NULL)
		return;
	curl_easy_cleanup(h->curl);
	free(h->base);
	free(h->auth);
	free(h);
}

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;

	if (buf_add(b, ptr, size * nmemb) < 0)
		return 0;	/* too big: curl fails the transfer */
	return size * nmemb;
}

/* One request; method is "GET" or "POST". */
static int
httpc_do(struct httpc *h, const char *method, const char *path,
    const char *body, size_t len, long timeout_s, long *status, json_t **resp,
    char *err, size_t errlen)
{
	struct curl_slist *hdrs = NULL;
	char cerr[CURL_ERROR_SIZE] = "";
	char *url = xasprintf("%s%s", h->base, path);
	struct buf b;
	CURLcode cc;
	int rc = 0;

	*resp = NULL;
	*status = 0;
	buf_init(&b, HTTPC_MAX_REPLY);
	curl_easy_reset(h->curl);
	if (h->auth != NULL)
		hdrs = curl_slist_append(hdrs, h->auth);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_NOPROXY, "*");
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(body ? len : 0));
	}
	cc = curl_easy_perform(h->curl);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "cannot reach '%s': %s", url,
		    cerr[0] ? cerr : curl_easy_strerror(cc));
		rc = BL_EUNAVAIL;
		goto out;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status);
	if (b.len > 0)
		*resp = json_loadb(b.ptr, b.len, 0, NULL);
out:
	curl_slist_free_all(hdrs);
	buf_free(&b);
	free(url);
	return rc;
}

int
httpc_post(struct httpc *h, const char *path, const char *body, size_t len,
    long timeout_s, long *status, json_t **resp, char *err, size_t errlen)
{
	return httpc_do(h, "POST", path, body, len, timeout_s, status, resp, err,
	    errlen);
}

int
httpc_get(struct httpc *h, const char *path, long timeout_s, long *status,
    json_t **resp, char *err, size_t errlen)
{
	return httpc_do(h, "GET", path, NULL, 0, timeout_s, status, resp, err,
	    errlen);
}

const char *
httpc_error_message(json_t *resp)
{
	const char *s = json_string_value(json_object_get(json_object_get(resp,
	    "error"), "message"));

	return s ? s : "";
}
