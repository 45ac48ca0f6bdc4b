/* The worker's configuration table: names, types, defaults and bounds of every setting. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "worker.h"

static int
valid_url(const char *v, char *err, size_t errlen)
{
	if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
		snprintf(err, errlen, "must start with http:// or https://");
		return -1;
	}
	return 0;
}

static int
valid_cpus(const char *v, char *err, size_t errlen)
{
	if (v[strspn(v, "0123456789,-")] != '\0') {
		snprintf(err, errlen, "must be a CPU list such as '1' or '2-3'");
		return -1;
	}
	return 0;
}

#define S(f) offsetof(struct worker_settings, f)
static const struct conf_option options[] = {
	{ "server_url", CONF_STRING, "http://127.0.0.1:8080", 0, 0,
	    S(server_url), valid_url, 0, NULL, "the benchline server" },
	{ "token", CONF_STRING, NULL, 0, 0, S(token), NULL, 1, NULL,
	    "this worker's token (benchline worker create), required" },
	{ "target", CONF_STRING, "", 0, 0, S(target), NULL, 0, NULL,
	    "the hardware target's name, checked against the jobs' target" },
	{ "work_dir", CONF_STRING, "var/worker", 0, 0, S(work_dir), NULL, 0,
	    NULL, "repository cache, work tree and spool live here" },
	{ "log_level", CONF_STRING, "info", 0, 0, S(log_level), conf_valid_log_level, 0,
	    NULL, "error, warn, info or debug" },
	{ "claim_wait_s", CONF_INT, "30", 0, 300, S(claim_wait_s), NULL, 0,
	    NULL, "how long one claim waits for a job" },
	{ "heartbeat_s", CONF_INT, "30", 1, 3600, S(heartbeat_s), NULL, 0, NULL,
	    "seconds between heartbeats while a job runs" },
	{ "build_timeout_s", CONF_INT, "1800", 1, 86400, S(build_timeout_s),
	    NULL, 0, NULL, "longest a build may run" },
	{ "job_timeout_s", CONF_INT, "172800", 60, 30 * 86400, S(job_timeout_s),
	    NULL, 0, NULL, "longest a whole job may run" },
	{ "request_timeout_s", CONF_INT, "120", 1, 86400,
	    S(request_timeout_s), NULL, 0, NULL,
	    "longest one engine request (or its start) may take" },
	{ "limit_cpu_s", CONF_INT, "0", 0, 1LL << 40, S(limit_cpu_s), NULL, 0,
	    NULL, "CPU seconds a build or engine may use (0: no limit)" },
	{ "limit_as_mb", CONF_INT, "0", 0, 1LL << 30, S(limit_as_mb), NULL, 0,
	    NULL, "address space of a build or engine in MiB (0: no limit)" },
	{ "limit_nofile", CONF_INT, "4096", 16, 1 << 20, S(limit_nofile), NULL,
	    0, NULL, "open files of a build or engine" },
	{ "engine_cpus", CONF_STRING, "", 0, 0, S(engine_cpus), valid_cpus, 0,
	    NULL, "pin the engine to these CPUs (noise control), e.g. '1'" },
	{ "max_timeseries_points", CONF_INT, "2000", 10, 1000000,
	    S(max_timeseries_points), NULL, 0, NULL,
	    "points kept per time series inside a run" },
	{ "retry_max_s", CONF_INT, "60", 1, 3600, S(retry_max_s), NULL, 0, NULL,
	    "longest wait between upload retries (backoff doubles up to it)" },
	{ "log_tail_bytes", CONF_INT, "65536", 1024, 16 << 20,
	    S(log_tail_bytes), NULL, 0, NULL,
	    "bytes of build output kept and sent" },
};
#undef S

int
worker_settings_load(struct worker_settings *out, const char *path, char *err,
    size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (conf_load(out, options, BL_ARRAY_LEN(options), path,
	    "BENCHLINE_WORKER", err, errlen) < 0)
		return BL_EINVAL;
	if (out->token == NULL || *out->token == '\0') {
		snprintf(err, errlen, "token is not set (config file or "
		    "BENCHLINE_WORKER_TOKEN)");
		return BL_EINVAL;
	}
	return 0;
}

void
worker_settings_free(struct worker_settings *s)
{
	conf_free(s, options, BL_ARRAY_LEN(options));
}

void
worker_settings_print(const struct worker_settings *s)
{
	conf_print(s, options, BL_ARRAY_LEN(options));
}
