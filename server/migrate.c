/* Schema migrations: applies sql/NNNN_name.sql in order, each in a transaction, recorded in schema_migrations. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "xmalloc.h"

/* Migration files are named NNNN_name.sql. */
static int
migration_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 9 && strspn(d->d_name, "0123456789") == 4 &&
	    d->d_name[4] == '_' && strcmp(d->d_name + n - 4, ".sql") == 0;
}

static char *
read_file(const char *path)
{
	struct buf b;
	char chunk[8192];
	size_t n;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	buf_init(&b, 16 << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (buf_add(&b, chunk, n) < 0) {
			fclose(fp);
			buf_free(&b);
			errno = EFBIG;
			return NULL;
		}
	}
	fclose(fp);
	return buf_detach(&b);
}

static int
migration_applied(int *out, struct db *db, const char *version)
{
	struct dbres *res = NULL;
	const char *params[1] = { version };
	int rc;

	if ((rc = db_query(&res, db, "SELECT 1 FROM schema_migrations WHERE "
	    "version = $1", 1, params)) < 0)
		return rc;
	*out = dbres_rows(res) == 1;
	dbres_free(res);
	return 0;
}

/*
 * Applies every migration in dir that schema_migrations does not list.  A
 * session advisory lock makes concurrent servers take turns, so each file
 * runs once.  A failing file is rolled back whole and stops the run.
 */
int
migrate_run(struct db *db, const char *dir, int *applied)
{
	struct dirent **names = NULL;
	const char *params[1];
	char path[4096], version[128], *sql;
	int i, n, rc = 0, done;

	*applied = 0;
	if ((n = scandir(dir, &names, migration_file, alphasort)) < 0) {
		log_warn("cannot read migrations directory '%s'", dir);
		return BL_ERROR;
	}
	if ((rc = db_exec(db, "SELECT pg_advisory_lock(hashtext("
	    "'benchline_migrate'))")) < 0 ||
	    (rc = db_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "version text PRIMARY KEY, applied_at timestamptz NOT NULL "
	    "DEFAULT now())")) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		snprintf(version, sizeof(version), "%.*s",
		    (int)(strlen(names[i]->d_name) - 4), names[i]->d_name);
		if ((rc = migration_applied(&done, db, version)) < 0)
			goto out;
		if (done)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if ((sql = read_file(path)) == NULL) {
			log_warn("cannot read migration '%s'", path);
			rc = BL_ERROR;
			goto out;
		}
		params[0] = version;
		if ((rc = db_begin(db)) < 0 || (rc = db_exec_script(db, sql)) < 0 ||
		    (rc = db_query(NULL, db, "INSERT INTO schema_migrations "
		    "(version) VALUES ($1)", 1, params)) < 0 ||
		    (rc = db_commit(db)) < 0) {
			log_warnx("migration '%s' failed: %s", version,
			    db_errmsg(db));
			db_rollback(db);
			free(sql);
			goto out;
		}
		free(sql);
		log_info("applied migration %s", version);
		(*applied)++;
	}
out:
	db_exec(db, "SELECT pg_advisory_unlock(hashtext('benchline_migrate'))");
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}
