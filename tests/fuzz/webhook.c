/* libFuzzer target: the forge webhook payload parser (webhook_parse), its URL finder and the webhook settings. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "server.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks what every parsed push promises its users. */
static void
check_push(const struct push *p)
{
	size_t i;

	if (p->branch == NULL || p->branch[0] == '\0' ||
	    p->ncommits > WEBHOOK_MAX_COMMITS + 1 ||
	    p->total_commits + 1 < p->ncommits)
		__builtin_trap();
	if ((p->head == NULL) != (p->deleted != 0))
		__builtin_trap();
	for (i = 0; i < p->ncommits; i++) {
		if (!webhook_sha_valid(p->commits[i].sha) ||
		    (p->commits[i].parent != NULL &&
		    !webhook_sha_valid(p->commits[i].parent)) ||
		    p->commits[i].message == NULL ||
		    p->commits[i].author_name == NULL ||
		    p->commits[i].author_email == NULL ||
		    (p->commits[i].timestamp != NULL &&
		    !webhook_time_valid(p->commits[i].timestamp)))
			__builtin_trap();
	}
	/* The head is always among the commits recorded. */
	if (p->head != NULL) {
		for (i = 0; i < p->ncommits; i++)
			if (strcmp(p->commits[i].sha, p->head) == 0)
				break;
		if (i == p->ncommits)
			__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *urls[WEBHOOK_MAX_URLS];
	enum forge forges[] = { FORGE_GITHUB, FORGE_GITLAB };
	struct push *p;
	char err[512];
	json_t *body;
	size_t i, n;

	body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (body == NULL)
		return 0;
	for (i = 0; i < BL_ARRAY_LEN(forges); i++) {
		p = NULL;
		err[0] = '\0';
		if (webhook_parse(&p, forges[i], body, err, sizeof(err)) == 0) {
			check_push(p);
			webhook_free(p);
		} else if (p != NULL || err[0] != '$')
			__builtin_trap();	/* every refusal names a JSON path */
	}
	n = webhook_urls(urls, BL_ARRAY_LEN(urls), body);
	for (i = 0; i < n; i++)
		if (urls[i] == NULL || urls[i][0] == '\0')
			__builtin_trap();
	/* The same bytes as a project's settings. */
	err[0] = '\0';
	if (webhook_settings_check(body, err, sizeof(err)) != 0 && err[0] != '$')
		__builtin_trap();
	json_decref(body);
	return 0;
}
