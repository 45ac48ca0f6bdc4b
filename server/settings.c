/* The server's configuration table: names, types, defaults and bounds of every setting. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "server.h"

static int
valid_url(const char *v, char *err, size_t errlen)
{
	if (strncmp(v, "postgres://", 11) != 0 &&
	    strncmp(v, "postgresql://", 13) != 0 && strchr(v, '=') == NULL) {
		snprintf(err, errlen, "must be a postgresql:// URL or a "
		    "key=value connection string");
		return -1;
	}
	return 0;
}

#define S(f) offsetof(struct settings, f)
static const struct conf_option options[] = {
	{ "listen_addr", CONF_STRING, "127.0.0.1", 0, 0, S(listen_addr), NULL,
	    0, NULL, "IPv4 address the HTTP server binds" },
	{ "listen_port", CONF_INT, "8080", 1, 65535, S(listen_port), NULL, 0,
	    NULL, "TCP port of the HTTP server" },
	{ "database_url", CONF_STRING, NULL, 0, 0, S(database_url), valid_url,
	    1, "DATABASE_URL", "PostgreSQL connection URL (required)" },
	{ "db_pool_size", CONF_INT, "8", 1, 200, S(db_pool_size), NULL, 0, NULL,
	    "connections in the pool" },
	{ "threads", CONF_INT, "4", 1, 256, S(threads), NULL, 0, NULL,
	    "HTTP worker threads" },
	{ "max_body_bytes", CONF_INT, "16777216", 1024, 1LL << 30,
	    S(max_body_bytes), NULL, 0, NULL, "largest request body accepted" },
	{ "lease_seconds", CONF_INT, "120", 1, 86400, S(lease_seconds), NULL, 0,
	    NULL, "how long a claimed job stays a worker's without a heartbeat" },
	{ "max_attempts", CONF_INT, "3", 1, 100, S(max_attempts), NULL, 0, NULL,
	    "claims of a job before it fails" },
	{ "claim_wait_seconds", CONF_INT, "30", 0, 300, S(claim_wait_seconds),
	    NULL, 0, NULL, "longest a claim waits for a job (long poll)" },
	{ "reap_interval_ms", CONF_INT, "2000", 50, 600000, S(reap_interval_ms),
	    NULL, 0, NULL, "how often expired leases are returned to the queue" },
	{ "migrations_dir", CONF_STRING, "sql", 0, 0, S(migrations_dir), NULL, 0,
	    NULL, "directory of NNNN_name.sql migrations" },
	{ "web_root", CONF_STRING, "web", 0, 0, S(web_root), NULL, 0, NULL,
	    "directory of the dashboard's files" },
	{ "log_level", CONF_STRING, "info", 0, 0, S(log_level), conf_valid_log_level, 0,
	    NULL, "error, warn, info or debug" },
	{ "public_reads", CONF_BOOL, "true", 0, 0, S(public_reads), NULL, 0,
	    NULL, "whether reads of the API need no token" },
	{ "public_url", CONF_STRING, "http://127.0.0.1:8080", 0, 0,
	    S(public_url), NULL, 0, NULL, "the dashboard's address in e-mails" },
};
#undef S

int
settings_load(struct settings *out, const char *path, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (conf_load(out, options, BL_ARRAY_LEN(options), path, "BENCHLINE",
	    err, errlen) < 0)
		return BL_EINVAL;
	if (out->database_url == NULL) {
		snprintf(err, errlen, "database_url is not set (config file, "
		    "BENCHLINE_DATABASE_URL or DATABASE_URL)");
		return BL_EINVAL;
	}
	return 0;
}

void
settings_free(struct settings *s)
{
	conf_free(s, options, BL_ARRAY_LEN(options));
}

void
settings_print(const struct settings *s)
{
	conf_print(s, options, BL_ARRAY_LEN(options));
}
