/* libFuzzer target for worker/manifest.c: an engine's benchline.json. */
#include <stddef.h>
#include <stdint.h>

#include "worker.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"latency", "throughput", "stress", "endurance", "memory_leak",
	"accuracy", "warp", ""
};

/* Error messages are printable ASCII, whatever the input. */
static void
check_err(const char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < errlen && err[i] != '\0'; i++)
		if ((unsigned char)err[i] < 0x20 ||
		    (unsigned char)err[i] > 0x7e)
			__builtin_trap();
	if (i == errlen)
		__builtin_trap();
}

/* Asks for one scenario; a failure must leave *out NULL and err a string. */
static void
scenario(const struct manifest *m, const char *name, json_t *job_params)
{
	json_t *out = (json_t *)1;
	char err[256];

	err[0] = 'x';
	if (manifest_scenario(&out, m, name, job_params, err,
	    sizeof(err)) == 0) {
		if (!json_is_object(out))
			__builtin_trap();
		json_decref(out);
	} else {
		if (out != NULL)
			__builtin_trap();
		check_err(err, sizeof(err));
	}
}

/*
 * Parses the input as a manifest; on success, asks for every scenario with
 * no job overrides and with the manifest's own "scenarios" object as the
 * job's params, so that the same bytes fuzz the job overrides too.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest *m = (struct manifest *)1;
	json_t *root, *scen;
	char err[256];
	size_t i;

	err[0] = 'x';
	if (manifest_parse(&m, (const char *)data, size, err,
	    sizeof(err)) < 0) {
		if (m != NULL)
			__builtin_trap();
		check_err(err, sizeof(err));
		return 0;
	}
	if (m->ncommand == 0 || m->command[0][0] == '\0' ||
	    m->command[m->ncommand] != NULL || m->nscenarios == 0 ||
	    (m->adapter == ADAPTER_EXEC) != (m->nmetrics > 0))
		__builtin_trap();
	root = json_loadb((const char *)data, size, 0, NULL);
	scen = root != NULL ? json_object_get(root, "scenarios") : NULL;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		scenario(m, names[i], NULL);
		scenario(m, names[i], scen);
		scenario(m, names[i], root);
	}
	json_decref(root);
	manifest_free(m);
	return 0;
}
