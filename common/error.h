/* Return codes shared by every benchline module. */
#ifndef BL_ERROR_H
#define BL_ERROR_H

/*
 * Functions return 0 on success and -1 (BL_ERROR) on an unexpected failure.
 * The named codes below are expected outcomes that callers act on; the
 * server maps each one to an HTTP status in reply.c.
 */
#define BL_OK		0
#define BL_ERROR	(-1)
#define BL_ENOTFOUND	(-2)	/* the thing named does not exist */
#define BL_ECONFLICT	(-3)	/* state forbids it: lease lost, duplicate */
#define BL_ETOOBIG	(-4)	/* a hard size limit was reached */
#define BL_EINVAL	(-5)	/* input failed validation */
#define BL_EAUTH	(-6)	/* missing or wrong credentials */
#define BL_EFORBIDDEN	(-7)	/* authenticated, but not allowed */
#define BL_EUNAVAIL	(-8)	/* a dependency (database, server) is down */

#define BL_PRINTF(n, m) __attribute__((format(printf, n, m)))
#define BL_NORETURN __attribute__((noreturn))
#define BL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
