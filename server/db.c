/* PostgreSQL access: the connection pool and thin query wrappers; the only file that calls libpq. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "clock.h"
#include "log.h"
#include "server.h"
#include "xmalloc.h"

struct db {
	PGconn		*conn;
	char		*url;
	char		 err[512];
	char		 sqlstate[6];
	int		 in_use;
	struct dbpool	*pool;		/* the pool that lends it, or NULL */
};

struct dbres {
	PGresult *res;
};

struct dbpool {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct db	**conns;
	int		 size;
	char		*url;
	int		 quiet;		/* failures to connect are the caller's to log */
	char		 err[512];	/* the last failure to connect */
};

/* Copies the connection's or the result's error text, folded to one line. */
static void
db_set_error(struct db *db, const PGresult *res)
{
	const char *msg, *state;
	char *nl;

	msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(db->conn);
	if (msg == NULL || *msg == '\0')
		msg = PQerrorMessage(db->conn);
	snprintf(db->err, sizeof(db->err), "%s", msg);
	while ((nl = strchr(db->err, '\n')) != NULL)
		*nl = *(nl + 1) ? ' ' : '\0';
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
}

static void
db_notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("postgres: %.*s", (int)strcspn(msg, "\n"), msg);
}

/* Connects; on failure writes libpq's reason into err and logs nothing. */
static int
db_open(struct db **out, const char *url, char *err, size_t errlen)
{
	struct db *db = xcalloc(1, sizeof(*db));
	PGresult *res;

	db->url = xstrdup(url);
	db->conn = PQconnectdb(url);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db_set_error(db, NULL);
		snprintf(err, errlen, "%s", db->err);
		db_close(db);
		return BL_EUNAVAIL;
	}
	PQsetNoticeProcessor(db->conn, db_notice, NULL);
	res = PQexec(db->conn, "SET TIME ZONE 'UTC'");
	PQclear(res);
	*out = db;
	return 0;
}

int
db_connect(struct db **out, const char *url)
{
	char err[512];
	int rc;

	if ((rc = db_open(out, url, err, sizeof(err))) < 0)
		log_warnx("cannot connect to database: %s", err);
	return rc;
}

void
db_close(struct db *db)
{
	if (db == NULL)
		return;
	PQfinish(db->conn);
	free(db->url);
	free(db);
}

/* Re-establishes a connection that broke, e.g. after a database restart. */
static int
db_ensure(struct db *db)
{
	PGresult *res;

	if (PQstatus(db->conn) == CONNECTION_OK)
		return 0;
	PQreset(db->conn);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db_set_error(db, NULL);
		return BL_EUNAVAIL;
	}
	res = PQexec(db->conn, "SET TIME ZONE 'UTC'");
	PQclear(res);
	log_info("database connection re-established");
	return 0;
}

const char *
db_errmsg(const struct db *db)
{
	return db->err;
}

int
db_is_unique_violation(const struct db *db)
{
	return strcmp(db->sqlstate, "23505") == 0;
}

int
db_query(struct dbres **out, struct db *db, const char *sql, int nparams,
    const char *const *params)
{
	PGresult *res;
	ExecStatusType st;

	if (out != NULL)
		*out = NULL;
	db->err[0] = '\0';
	db->sqlstate[0] = '\0';
	if (db_ensure(db) < 0)
		return BL_EUNAVAIL;
	res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (res == NULL) {
		db_set_error(db, NULL);
		return PQstatus(db->conn) == CONNECTION_OK ? BL_ERROR : BL_EUNAVAIL;
	}
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		db_set_error(db, res);
		PQclear(res);
		if (PQstatus(db->conn) != CONNECTION_OK)
			return BL_EUNAVAIL;
		if (db_is_unique_violation(db))
			return BL_ECONFLICT;
		return BL_ERROR;
	}
	if (out != NULL) {
		*out = xmalloc(sizeof(**out));
		(*out)->res = res;
	} else
		PQclear(res);
	return 0;
}

int
db_queryp(struct dbres **out, struct db *db, const char *sql,
    const struct dbparams *p)
{
	return db_query(out, db, sql, p->n, p->v);
}

int
db_exec(struct db *db, const char *sql)
{
	return db_query(NULL, db, sql, 0, NULL);
}

int
db_begin(struct db *db)
{
	return db_exec(db, "BEGIN");
}

int
db_commit(struct db *db)
{
	return db_exec(db, "COMMIT");
}

void
db_rollback(struct db *db)
{
	PGresult *res;

	if (PQstatus(db->conn) != CONNECTION_OK)
		return;
	res = PQexec(db->conn, "ROLLBACK");
	PQclear(res);
}

int
dbres_rows(const struct dbres *r)
{
	return PQntuples(r->res);
}

int
dbres_affected(const struct dbres *r)
{
	const char *s = PQcmdTuples(r->res);

	return *s ? atoi(s) : 0;
}

const char *
dbres_get(const struct dbres *r, int row, int col)
{
	if (PQgetisnull(r->res, row, col))
		return NULL;
	return PQgetvalue(r->res, row, col);
}

int64_t
dbres_int(const struct dbres *r, int row, int col)
{
	const char *s = dbres_get(r, row, col);

	return s ? strtoll(s, NULL, 10) : 0;
}

double
dbres_double(const struct dbres *r, int row, int col)
{
	const char *s = dbres_get(r, row, col);

	return s ? strtod(s, NULL) : 0.0;
}

int
dbres_bool(const struct dbres *r, int row, int col)
{
	const char *s = dbres_get(r, row, col);

	return s != NULL && s[0] == 't';
}

void
dbres_free(struct dbres *r)
{
	if (r == NULL)
		return;
	PQclear(r->res);
	free(r);
}

void
dbp_str(struct dbparams *p, const char *s)
{
	if (p->n >= DBP_MAX)
		fatalx("too many query parameters");
	p->v[p->n++] = s;
}

void
dbp_int(struct dbparams *p, int64_t v)
{
	if (p->n >= DBP_MAX)
		fatalx("too many query parameters");
	snprintf(p->store[p->n], sizeof(p->store[p->n]), "%" PRId64, v);
	p->v[p->n] = p->store[p->n];
	p->n++;
}

void
dbp_double(struct dbparams *p, double v)
{
	if (p->n >= DBP_MAX)
		fatalx("too many query parameters");
	snprintf(p->store[p->n], sizeof(p->store[p->n]), "%.17g", v);
	p->v[p->n] = p->store[p->n];
	p->n++;
}

void
dbp_num(struct dbparams *p, double v)
{
	if (isfinite(v))
		dbp_double(p, v);
	else
		dbp_str(p, NULL);
}

void
dbp_id(struct dbparams *p, int64_t id)
{
	if (id > 0)
		dbp_int(p, id);
	else
		dbp_str(p, NULL);
}

int
db_copy_begin(struct db *db, const char *sql)
{
	PGresult *res;

	if (db_ensure(db) < 0)
		return BL_EUNAVAIL;
	res = PQexec(db->conn, sql);
	if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
		db_set_error(db, res);
		PQclear(res);
		return BL_ERROR;
	}
	PQclear(res);
	return 0;
}

int
db_copy_put(struct db *db, const char *data, size_t len)
{
	if (PQputCopyData(db->conn, data, (int)len) != 1) {
		db_set_error(db, NULL);
		return BL_ERROR;
	}
	return 0;
}

/* Ends a COPY; a non-NULL abort_msg abandons it instead. */
int
db_copy_end(struct db *db, const char *abort_msg)
{
	PGresult *res;
	int rc = 0;

	if (PQputCopyEnd(db->conn, abort_msg) != 1) {
		db_set_error(db, NULL);
		return BL_ERROR;
	}
	while ((res = PQgetResult(db->conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			db_set_error(db, res);
			rc = BL_ERROR;
		}
		PQclear(res);
	}
	return abort_msg != NULL ? BL_ERROR : rc;
}

int
db_listen(struct db *db, const char *channel)
{
	char *sql = xasprintf("LISTEN %s", channel);
	int rc = db_exec(db, sql);

	free(sql);
	return rc;
}

int
db_notify_wait(struct db *db, int timeout_ms, char *payload, size_t len)
{
	struct pollfd pfd;
	PGnotify *n;
	int rc;

	if (db_ensure(db) < 0)
		return BL_EUNAVAIL;
	if ((n = PQnotifies(db->conn)) == NULL) {
		pfd.fd = PQsocket(db->conn);
		pfd.events = POLLIN;
		rc = poll(&pfd, 1, timeout_ms);
		if (rc < 0 && errno != EINTR)
			return BL_ERROR;
		if (rc <= 0)
			return 0;
		if (!PQconsumeInput(db->conn)) {
			db_set_error(db, NULL);
			return BL_EUNAVAIL;
		}
		if ((n = PQnotifies(db->conn)) == NULL)
			return 0;
	}
	snprintf(payload, len, "%s", n->extra);
	PQfreemem(n);
	return 1;
}

int
db_ping(struct db *db)
{
	return db_exec(db, "SELECT 1");
}

struct dbpool *
dbpool_new(const char *url, int size, int quiet)
{
	struct dbpool *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->url = xstrdup(url);
	p->size = size;
	p->quiet = quiet;
	p->conns = xcalloc((size_t)size, sizeof(*p->conns));
	return p;
}

void
dbpool_error(struct dbpool *p, char *out, size_t len)
{
	pthread_mutex_lock(&p->lock);
	snprintf(out, len, "%s", p->err);
	pthread_mutex_unlock(&p->lock);
}

/* Records why the pool could not lend a connection, and logs it unless quiet. */
static void
dbpool_failed(struct dbpool *p, const char *what, const char *err)
{
	if (!p->quiet)
		log_warnx("%s: %s", what, err);
	pthread_mutex_lock(&p->lock);
	snprintf(p->err, sizeof(p->err), "%s", err);
	pthread_mutex_unlock(&p->lock);
}

int
dbpool_open(struct dbpool **out, const char *url, int size)
{
	struct dbpool *p = dbpool_new(url, size, 0);
	int rc;

	/* The first connection is made now so a bad URL fails at start. */
	if ((rc = db_connect(&p->conns[0], url)) < 0) {
		dbpool_close(p);
		return rc;
	}
	p->conns[0]->pool = p;
	*out = p;
	return 0;
}

void
dbpool_close(struct dbpool *p)
{
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < p->size; i++)
		db_close(p->conns[i]);
	free(p->conns);
	free(p->url);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

/*
 * An idle connection the database closed (a restart, a terminated backend)
 * looks fine until it is read.  Reads what is waiting on the socket, the
 * backend's last words and then the end of the stream, so that libpq marks
 * a dead connection bad and db_ensure() reconnects it before a query is
 * sent on it.  A live idle connection has nothing to read: one poll().
 */
static void
db_check_idle(struct db *db)
{
	struct pollfd pfd;
	int i;

	if (PQstatus(db->conn) != CONNECTION_OK ||
	    PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		return;
	pfd.fd = PQsocket(db->conn);
	pfd.events = POLLIN;
	for (i = 0; i < 4 && pfd.fd >= 0; i++) {
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) != 1 || PQconsumeInput(db->conn) == 0)
			break;
	}
}

/*
 * Lends a connection, connecting lazily, and waits up to wait_ms for one to
 * be free.  Returns NULL when none could be had (the database is down or
 * every connection stayed busy).
 */
struct db *
dbpool_get(struct dbpool *p, int wait_ms)
{
	struct timespec deadline;
	struct db *db = NULL;
	int i, slot = -1;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += wait_ms / 1000;
	deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&p->lock);
	for (;;) {
		for (i = 0; i < p->size; i++) {
			if (p->conns[i] != NULL && !p->conns[i]->in_use) {
				db = p->conns[i];
				break;
			}
			if (p->conns[i] == NULL && slot < 0)
				slot = i;
		}
		if (db != NULL || slot >= 0)
			break;
		if (pthread_cond_timedwait(&p->cond, &p->lock, &deadline) ==
		    ETIMEDOUT) {
			snprintf(p->err, sizeof(p->err), "every connection "
			    "stayed busy for %d ms", wait_ms);
			break;
		}
	}
	if (db != NULL)
		db->in_use = 1;
	else if (slot >= 0) {
		/* Reserve the slot, connect outside the lock. */
		p->conns[slot] = xcalloc(1, sizeof(struct db));
		p->conns[slot]->in_use = 1;
	}
	pthread_mutex_unlock(&p->lock);
	if (db == NULL && slot >= 0) {
		struct db *fresh = NULL;
		char err[512];

		if (db_open(&fresh, p->url, err, sizeof(err)) < 0)
			dbpool_failed(p, "cannot connect to database", err);
		pthread_mutex_lock(&p->lock);
		free(p->conns[slot]);
		p->conns[slot] = fresh;
		if (fresh != NULL) {
			fresh->in_use = 1;
			fresh->pool = p;
		}
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);
		db = fresh;
	}
	if (db != NULL)
		db_check_idle(db);
	if (db != NULL && db_ensure(db) < 0) {
		dbpool_failed(p, "database unreachable", db->err);
		dbpool_put(p, db);
		return NULL;
	}
	return db;
}

void
dbpool_put(struct dbpool *p, struct db *db)
{
	if (db == NULL)
		return;
	/* A replica's connection goes back to the replica's pool. */
	if (db->pool != NULL)
		p = db->pool;
	/* A connection left inside a transaction is rolled back first. */
	if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		db_rollback(db);
	pthread_mutex_lock(&p->lock);
	db->in_use = 0;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* Runs a script of several statements (a migration); simple protocol, no parameters. */
int
db_exec_script(struct db *db, const char *sql)
{
	PGresult *res;
	int rc = 0;

	if (db_ensure(db) < 0)
		return BL_EUNAVAIL;
	res = PQexec(db->conn, sql);
	if (res == NULL || (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)) {
		db_set_error(db, res);
		rc = BL_ERROR;
	}
	PQclear(res);
	return rc;
}

/*
 * Parses a float8[] column in PostgreSQL's text form ("{1.5,2,3}") into a
 * new array; caller frees *out.  Returns the count, 0 for NULL or empty.
 */
size_t
dbres_doubles(double **out, const struct dbres *r, int row, int col)
{
	const char *s = dbres_get(r, row, col);
	size_t n = 0, cap = 16;
	char *end;

	*out = xreallocarray(NULL, cap, sizeof(**out));
	if (s == NULL || *s++ != '{')
		return 0;
	while (*s != '\0' && *s != '}') {
		if (n == cap)
			*out = xreallocarray(*out, cap *= 2, sizeof(**out));
		(*out)[n] = strtod(s, &end);
		if (end == s)
			break;
		n++;
		s = end;
		if (*s == ',')
			s++;
	}
	return n;
}
