/* Logging to stderr with millisecond timestamps, levels and a per-thread context. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"

static const char	*log_prog = "benchline";
static enum log_level	 log_max = LOG_LEVEL_INFO;
static _Thread_local char log_ctx[64];
static pthread_mutex_t	 log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *progname, enum log_level level)
{
	log_prog = progname;
	log_max = level;
}

int
log_level_parse(enum log_level *out, const char *name)
{
	size_t i;

	for (i = 0; i < BL_ARRAY_LEN(level_names); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_set_context(const char *ctx)
{
	if (ctx == NULL)
		log_ctx[0] = '\0';
	else
		snprintf(log_ctx, sizeof(log_ctx), "%s", ctx);
}

/* Formats and writes one line; errnum >= 0 appends strerror(errnum). */
static void
log_vline(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char stamp[32], msg[2048];
	struct timeval tv;
	struct tm tm;

	if (level > log_max)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);

	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s.%03ldZ %-5s %s%s%s%s: %s", stamp,
	    (long)(tv.tv_usec / 1000), level_names[level], log_prog,
	    log_ctx[0] ? " [" : "", log_ctx, log_ctx[0] ? "]" : "", msg);
	if (errnum >= 0)
		fprintf(stderr, ": %s", strerror(errnum));
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

#define LOG_BODY(level, errnum) do {		\
	va_list ap;				\
	va_start(ap, fmt);			\
	log_vline(level, errnum, fmt, ap);	\
	va_end(ap);				\
} while (0)

void
log_warn(const char *fmt, ...)
{
	int e = errno;

	LOG_BODY(LOG_LEVEL_WARN, e);
	errno = e;
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARN, -1);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_INFO, -1);
}

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_DEBUG, -1);
}

void
fatal(const char *fmt, ...)
{
	int e = errno;

	LOG_BODY(LOG_LEVEL_ERROR, e);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_ERROR, -1);
	exit(1);
}
