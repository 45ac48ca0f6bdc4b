/* Logging: one line per event with a millisecond timestamp, level and context. */
#ifndef BL_LOG_H
#define BL_LOG_H

#include "error.h"

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Sets the program name and the most verbose level that is printed. */
void	log_init(const char *progname, enum log_level level);
/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int	log_level_parse(enum log_level *out, const char *name);
/*
 * Sets this thread's context, such as "req=42" or "job=7"; it is printed on
 * every line the thread logs until it is changed.  NULL clears it.
 */
void	log_set_context(const char *ctx);

/* log_warn and fatal append the text of errno. */
void	log_warn(const char *fmt, ...) BL_PRINTF(1, 2);
void	log_warnx(const char *fmt, ...) BL_PRINTF(1, 2);
void	log_info(const char *fmt, ...) BL_PRINTF(1, 2);
void	log_debug(const char *fmt, ...) BL_PRINTF(1, 2);
void	fatal(const char *fmt, ...) BL_PRINTF(1, 2) BL_NORETURN;
void	fatalx(const char *fmt, ...) BL_PRINTF(1, 2) BL_NORETURN;

#endif
