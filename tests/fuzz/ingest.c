/* libFuzzer target: the server's parser of result uploads (ingest_parse). */
#include <stddef.h>
#include <stdint.h>

#include "server.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result *res = NULL;
	char err[512];
	json_t *body;

	body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (body == NULL || !json_is_object(body)) {
		json_decref(body);
		return 0;
	}
	if (ingest_parse(&res, body, err, sizeof(err)) == 0) {
		if (ingest_attempt(res) < 1)
			__builtin_trap();
		ingest_free(res);
	} else if (err[0] != '$' && err[0] != '\0')
		__builtin_trap();	/* every refusal names a JSON path */
	json_decref(body);
	return 0;
}
