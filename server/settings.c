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

/* The replica's URL may stay empty: then every read goes to the primary. */
static int
valid_read_url(const char *v, char *err, size_t errlen)
{
	return *v == '\0' ? 0 : valid_url(v, err, errlen);
}

#define S(f) offsetof(struct settings, f)
static const struct conf_option options[] = {
	{ "listen_addr", CONF_STRING, "127.0.0.1", 0, 0, S(listen_addr), NULL,
	    0, NULL, "IPv4 address the HTTP server binds" },
	{ "listen_port", CONF_INT, "8080", 1, 65535, S(listen_port), NULL, 0,
	    NULL, "TCP port of the HTTP server" },
	{ "database_url", CONF_STRING, NULL, 0, 0, S(database_url), valid_url,
	    1, "DATABASE_URL", "PostgreSQL connection URL (required)" },
	{ "database_read_url", CONF_STRING, "", 0, 0, S(database_read_url),
	    valid_read_url, 1, NULL, "a read replica for the dashboard's "
	    "read-only queries; empty: the primary serves them" },
	{ "db_pool_size", CONF_INT, "8", 1, 200, S(db_pool_size), NULL, 0, NULL,
	    "connections in the pool (and in the replica's)" },
	{ "threads", CONF_INT, "4", 1, 256, S(threads), NULL, 0, NULL,
	    "HTTP worker threads" },
	{ "max_body_bytes", CONF_INT, "16777216", 1024, 1LL << 30,
	    S(max_body_bytes), NULL, 0, NULL, "largest request body accepted" },
	{ "lease_seconds", CONF_INT, "120", 1, 86400, S(lease_seconds), NULL, 0,
	    NULL, "how long a claimed job stays a worker's without a heartbeat" },
	{ "max_attempts", CONF_INT, "3", 1, 100, S(max_attempts), NULL, 0, NULL,
	    "claims of a job before it fails" },
	{ "queue_aging_s", CONF_INT, "60", 1, 86400, S(queue_aging_s), NULL, 0,
	    NULL, "a queued job gains one priority level per this many seconds "
	    "of waiting, so confirmation and bisection never starve routine jobs" },
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
	{ "smtp_url", CONF_STRING, "", 0, 0, S(smtp_url), NULL, 0, NULL,
	    "smtp://host:port or smtps://host:port; empty: no e-mail" },
	{ "smtp_from", CONF_STRING, "benchline <benchline@localhost>", 0, 0,
	    S(smtp_from), NULL, 0, NULL, "the From of alert e-mails" },
	{ "smtp_user", CONF_STRING, "", 0, 0, S(smtp_user), NULL, 0, NULL,
	    "SMTP AUTH user; empty: no AUTH" },
	{ "smtp_password", CONF_STRING, "", 0, 0, S(smtp_password), NULL, 1,
	    NULL, "SMTP AUTH password" },
	{ "smtp_starttls", CONF_BOOL, "false", 0, 0, S(smtp_starttls), NULL, 0,
	    NULL, "require STARTTLS on smtp://" },
	{ "mail_delay_s", CONF_INT, "60", 0, 86400, S(mail_delay_s), NULL, 0,
	    NULL, "quiet time before an incident is mailed, so every target's "
	    "alerts are in one message" },
	{ "mail_max_attempts", CONF_INT, "10", 1, 1000, S(mail_max_attempts),
	    NULL, 0, NULL, "delivery attempts before a mail is marked failed" },
	{ "mail_retry_base_s", CONF_INT, "5", 1, 3600, S(mail_retry_base_s),
	    NULL, 0, NULL, "first retry delay; it doubles, up to an hour" },
	{ "background_interval_ms", CONF_INT, "300", 10, 60000,
	    S(background_interval_ms), NULL, 0, NULL,
	    "how often waiting runs and mail are looked for" },
	{ "points_retention_months", CONF_INT, "0", 0, 1200,
	    S(points_retention_months), NULL, 0, NULL,
	    "drop month partitions of points older than this, hourly; "
	    "0 keeps every point" },
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
