/* The spool: results are written to disk before upload and resent until the server answers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpc.h"
#include "log.h"
#include "worker.h"
#include "xmalloc.h"

#define SPOOL_MAX_FILE (256 << 20)

struct spool {
	char	*dir;
};

static int
mkdir_p(const char *path)
{
	char *p = xstrdup(path), *s;
	int rc = 0;

	for (s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

int
spool_open(struct spool **out, const char *dir)
{
	char *rej = xasprintf("%s/rejected", dir);
	int rc = mkdir_p(rej);

	free(rej);
	if (rc < 0) {
		log_warn("cannot create spool '%s'", dir);
		return BL_ERROR;
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->dir = xstrdup(dir);
	return 0;
}

void
spool_free(struct spool *s)
{
	if (s == NULL)
		return;
	free(s->dir);
	free(s);
}

int
spool_put(struct spool *s, int64_t job_id, int attempt, const char *body,
    size_t len)
{
	char *tmp, *final;
	size_t off = 0;
	ssize_t n;
	int fd, dfd, rc = BL_ERROR;

	tmp = xasprintf("%s/.%" PRId64 "-%d.json.tmp", s->dir, job_id, attempt);
	final = xasprintf("%s/%" PRId64 "-%d.json", s->dir, job_id, attempt);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		log_warn("cannot write '%s'", tmp);
		goto out;
	}
	while (off < len) {
		if ((n = write(fd, body + off, len - off)) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("cannot write '%s'", tmp);
			close(fd);
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, final) < 0) {
		log_warn("cannot store '%s'", final);
		goto out;
	}
	if ((dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	rc = 0;
out:
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	free(final);
	return rc;
}

static char *
read_all(const char *path, size_t *len)
{
	struct buf b;
	char chunk[65536];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	buf_init(&b, SPOOL_MAX_FILE);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (buf_add(&b, chunk, (size_t)n) < 0) {
			close(fd);
			buf_free(&b);
			return NULL;
		}
	}
	close(fd);
	*len = b.len;
	return buf_detach(&b);
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	long long ja = strtoll((*a)->d_name, NULL, 10);
	long long jb = strtoll((*b)->d_name, NULL, 10);

	return ja < jb ? -1 : ja > jb;
}

static int
is_result(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 &&
	    strcmp(d->d_name + n - 5, ".json") == 0;
}

/* Sends one spooled file; 1 when it is done with (answered), 0 to retry. */
static int
spool_send(struct spool *s, struct httpc *h, const char *name)
{
	char *path = xasprintf("%s/%s", s->dir, name), *body, *dest, err[512];
	char url[96];
	long long job;
	json_t *resp = NULL;
	long status;
	size_t len = 0;
	int attempt, done = 0;

	if (sscanf(name, "%lld-%d.json", &job, &attempt) != 2 ||
	    (body = read_all(path, &len)) == NULL) {
		log_warnx("spool: cannot read '%s'; moving it aside", path);
		dest = xasprintf("%s/rejected/%s", s->dir, name);
		rename(path, dest);
		free(dest);
		free(path);
		return 1;
	}
	snprintf(url, sizeof(url), "/api/v1/jobs/%lld/result", job);
	if (httpc_post(h, url, body, len, 120, &status, &resp, err,
	    sizeof(err)) < 0) {
		log_warnx("job %lld: upload failed, kept in the spool: %s", job,
		    err);
	} else if (status >= 200 && status < 300) {
		log_info("job %lld attempt %d: result stored%s", job, attempt,
		    json_is_true(json_object_get(resp, "duplicate")) ?
		    " (already had it)" : "");
		unlink(path);
		done = 1;
	} else if (status >= 400 && status < 500) {
		log_warnx("job %lld attempt %d: result refused (%ld): %s", job,
		    attempt, status, httpc_error_message(resp));
		dest = xasprintf("%s/rejected/%s", s->dir, name);
		rename(path, dest);
		free(dest);
		done = 1;
	} else
		log_warnx("job %lld: server answered %ld, kept in the spool: %s",
		    job, status, httpc_error_message(resp));
	json_decref(resp);
	free(body);
	free(path);
	return done;
}

int
spool_flush(struct spool *s, struct httpc *h, int *pending)
{
	struct dirent **names = NULL;
	int i, n, failed = 0;

	*pending = 0;
	if ((n = scandir(s->dir, &names, is_result, by_name)) < 0) {
		log_warn("cannot read spool '%s'", s->dir);
		return BL_ERROR;
	}
	for (i = 0; i < n; i++) {
		/* After one failure the server is down: count the rest. */
		if (failed || !spool_send(s, h, names[i]->d_name)) {
			failed = 1;
			(*pending)++;
		}
		free(names[i]);
	}
	free(names);
	return 0;
}
