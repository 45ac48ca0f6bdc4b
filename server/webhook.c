/* Forge webhooks without side effects: GitHub and GitLab push payloads parsed into a struct push, and the projects' webhook settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "xmalloc.h"

#define MAX_REF		1024
#define MAX_BRANCH	255
#define MAX_PERSON	1024		/* an author's name or e-mail */
#define MAX_MESSAGE	(1 << 24)	/* the request body is smaller anyway */
#define MAX_URL		2048
#define MAX_BRANCHES	64
#define MAX_SCENARIOS	16

/* The scenarios a push job runs unless the project's settings say otherwise. */
static const char *const default_scenarios[] = {
	"latency", "throughput", "stress", "endurance", "memory_leak",
	"accuracy", NULL
};

int
webhook_sha_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n != 40 && n != 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* A sha of zeros stands for "no commit": the ref did not exist, or no longer does. */
static int
sha_is_zero(const char *s)
{
	return strspn(s, "0") == strlen(s);
}

/* Reads exactly n digits at *s into *out and advances *s; 0 if they are not all digits. */
static int
digits(int *out, const char **s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return 0;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	*out = v;
	return 1;
}

static int
days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

/*
 * Checks the shape and the ranges of the time, so that PostgreSQL never
 * refuses a time that was accepted here: a refusal there would fail the
 * whole delivery with a 500 instead of a 400 naming the field.
 */
int
webhook_time_valid(const char *s)
{
	int y, mo, d, h, mi, sec, zh = 0, zm = 0, n;

	if (!digits(&y, &s, 4) || *s++ != '-' || !digits(&mo, &s, 2) ||
	    *s++ != '-' || !digits(&d, &s, 2) || (*s != 'T' && *s != ' '))
		return 0;
	s++;
	if (!digits(&h, &s, 2) || *s++ != ':' || !digits(&mi, &s, 2) ||
	    *s++ != ':' || !digits(&sec, &s, 2))
		return 0;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || sec > 60)
		return 0;
	if (*s == '.') {
		s++;
		for (n = 0; *s >= '0' && *s <= '9'; n++)
			s++;
		if (n < 1 || n > 9)
			return 0;
	}
	if (*s == 'Z')
		return s[1] == '\0';
	if (*s == '\0')
		return 1;	/* no zone: read as UTC, the server's session zone */
	if (*s != '+' && *s != '-')
		return 0;
	s++;
	if (!digits(&zh, &s, 2))
		return 0;
	if (*s == ':')
		s++;
	if (*s != '\0' && !digits(&zm, &s, 2))
		return 0;
	return *s == '\0' && zh <= 15 && zm <= 59;
}

/* A sha member: required, a full commit id (zeros included). */
static int
get_sha(const char **out, json_t *obj, const char *key, int required,
    const char *path, char *err, size_t errlen)
{
	const char *s = NULL;
	int rc;

	if ((rc = jsonx_string(&s, obj, key, required, 64, path, err,
	    errlen)) < 0 || s == NULL)
		return rc;
	if (!webhook_sha_valid(s)) {
		snprintf(err, errlen, "%s.%s: '%s' is not a commit id (40 or 64 "
		    "lowercase hex digits)", path, key, s);
		return BL_EINVAL;
	}
	*out = s;
	return 0;
}

/*
 * Parses one commit object, laid out alike by both forges: id, message,
 * timestamp, author {name, email}.
 */
static int
parse_commit(struct push_commit *c, json_t *obj, const char *path, char *err,
    size_t errlen)
{
	json_t *author = NULL;
	char apath[96];
	int rc;

	memset(c, 0, sizeof(*c));
	c->author_name = c->author_email = c->message = "";
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: must be an object", path);
		return BL_EINVAL;
	}
	if ((rc = get_sha(&c->sha, obj, "id", 1, path, err, errlen)) < 0 ||
	    (rc = jsonx_string(&c->message, obj, "message", 0, MAX_MESSAGE,
	    path, err, errlen)) < 0 ||
	    (rc = jsonx_string(&c->timestamp, obj, "timestamp", 0, 64, path,
	    err, errlen)) < 0 ||
	    (rc = jsonx_object(&author, obj, "author", 0, path, err,
	    errlen)) < 0)
		return rc;
	if (c->timestamp != NULL && !webhook_time_valid(c->timestamp)) {
		snprintf(err, errlen, "%s.timestamp: '%s' is not an ISO 8601 time",
		    path, c->timestamp);
		return BL_EINVAL;
	}
	if (author != NULL) {
		snprintf(apath, sizeof(apath), "%s.author", path);
		if ((rc = jsonx_string(&c->author_name, author, "name", 0,
		    MAX_PERSON, apath, err, errlen)) < 0 ||
		    (rc = jsonx_string(&c->author_email, author, "email", 0,
		    MAX_PERSON, apath, err, errlen)) < 0)
			return rc;
	}
	return 0;
}

/* Parses the ref into branch or tag; refuses refs that are neither. */
static int
parse_ref(struct push *p, char *err, size_t errlen)
{
	size_t prefix;

	if (strncmp(p->ref, "refs/heads/", 11) == 0)
		prefix = 11;
	else if (strncmp(p->ref, "refs/tags/", 10) == 0) {
		prefix = 10;
		p->is_tag = 1;
	} else {
		snprintf(err, errlen, "$.ref: '%.200s' names neither a branch "
		    "(refs/heads/) nor a tag (refs/tags/)", p->ref);
		return BL_EINVAL;
	}
	p->branch = p->ref + prefix;
	if (p->branch[0] == '\0' || strlen(p->branch) > MAX_BRANCH) {
		snprintf(err, errlen, "$.ref: the name after '%.*s' must be 1 to "
		    "%d bytes", (int)prefix, p->ref, MAX_BRANCH);
		return BL_EINVAL;
	}
	return 0;
}

/* The members each forge names differently: flags, the head, the count. */
static int
parse_forge_fields(struct push *p, json_t **head_commit_out, char *err,
    size_t errlen)
{
	json_t *body = p->body, *v;
	const char *checkout = NULL, *kind = NULL;
	int64_t total = -1;
	int rc;

	*head_commit_out = NULL;
	if (p->forge == FORGE_GITHUB) {
		if ((rc = jsonx_bool(&p->deleted, body, "deleted", 0, "$", err,
		    errlen)) < 0 ||
		    (rc = jsonx_bool(&p->created, body, "created", 0, "$", err,
		    errlen)) < 0 ||
		    (rc = jsonx_bool(&p->forced, body, "forced", 0, "$", err,
		    errlen)) < 0 ||
		    (rc = jsonx_object(head_commit_out, body, "head_commit", 0,
		    "$", err, errlen)) < 0)
			return rc;
		p->head = p->after;
		return 0;
	}
	if ((rc = jsonx_string(&kind, body, "object_kind", 0, 32, "$", err,
	    errlen)) < 0 ||
	    (rc = get_sha(&checkout, body, "checkout_sha", 0, "$", err,
	    errlen)) < 0 ||
	    (rc = jsonx_int(&total, body, "total_commits_count", 0, 0,
	    INT64_C(1) << 40, "$", err, errlen)) < 0)
		return rc;
	if (kind != NULL && strcmp(kind, "push") != 0 &&
	    strcmp(kind, "tag_push") != 0) {
		snprintf(err, errlen, "$.object_kind: '%.64s' is not a push",
		    kind);
		return BL_EINVAL;
	}
	/* checkout_sha is the commit even when after is an annotated tag. */
	p->head = checkout != NULL && !sha_is_zero(checkout) ? checkout :
	    p->after;
	v = json_object_get(body, "commits");
	if (total >= 0 && (size_t)total < json_array_size(v)) {
		snprintf(err, errlen, "$.total_commits_count: %lld is less than "
		    "the %zu commits listed", (long long)total,
		    json_array_size(v));
		return BL_EINVAL;
	}
	p->total_commits = total >= 0 ? (size_t)total : 0;
	return 0;
}

/*
 * Derives the parents from the order of the list.  Both forges list the
 * commits between before and after oldest first (GitLab: the newest 20 of
 * them, in ascending order, with total_commits_count saying how many there
 * were), so each commit's parent is the one listed before it.  The first
 * one's parent is before, unless the ref is new (before is zeros), the
 * forge cut the list short (its parent was not sent), or GitHub says the
 * push was forced (before was rewritten away, and the list starts at the
 * merge base).  GitLab does not tell forced pushes apart: there, and for
 * pushes holding merges, whose side branches are interleaved in the list,
 * a derived parent can differ from git's first parent.
 */
static void
derive_parents(struct push *p, size_t listed)
{
	size_t i;

	for (i = 0; i < listed; i++) {
		if (i > 0)
			p->commits[i].parent = p->commits[i - 1].sha;
		else if (p->before != NULL && !p->forced && !p->truncated)
			p->commits[i].parent = p->before;
	}
}

int
webhook_parse(struct push **out, enum forge forge, json_t *body, char *err,
    size_t errlen)
{
	struct push *p = NULL;
	json_t *commits = NULL, *head_commit = NULL, *e;
	const char *before = NULL, *after = NULL;
	char path[64];
	size_t i, listed;
	int rc;

	*out = NULL;
	if (!json_is_object(body)) {
		snprintf(err, errlen, "$: must be a JSON object");
		return BL_EINVAL;
	}
	p = xcalloc(1, sizeof(*p));
	p->body = json_incref(body);
	p->forge = forge;
	if ((rc = jsonx_string(&p->ref, body, "ref", 1, MAX_REF, "$", err,
	    errlen)) < 0 ||
	    (rc = parse_ref(p, err, errlen)) < 0 ||
	    (rc = get_sha(&before, body, "before", 1, "$", err, errlen)) < 0 ||
	    (rc = get_sha(&after, body, "after", 1, "$", err, errlen)) < 0 ||
	    (rc = jsonx_array(&commits, body, "commits", 0,
	    WEBHOOK_MAX_COMMITS, "$", err, errlen)) < 0)
		goto fail;
	p->before = sha_is_zero(before) ? NULL : before;
	p->after = sha_is_zero(after) ? NULL : after;
	if ((rc = parse_forge_fields(p, &head_commit, err, errlen)) < 0)
		goto fail;
	p->created = p->created || p->before == NULL;
	p->deleted = p->deleted || p->after == NULL;
	if (p->deleted)
		p->head = NULL;

	listed = json_array_size(commits);
	/* One more for a head the list does not hold. */
	p->commits = xcalloc(listed + 1, sizeof(*p->commits));
	json_array_foreach(commits, i, e) {
		snprintf(path, sizeof(path), "$.commits[%zu]", i);
		if ((rc = parse_commit(&p->commits[i], e, path, err,
		    errlen)) < 0)
			goto fail;
	}
	p->ncommits = listed;
	if (p->total_commits < listed)
		p->total_commits = listed;
	/* GitHub states no count: a full list may have been cut at its cap. */
	p->truncated = p->total_commits > listed ||
	    (forge == FORGE_GITHUB && listed >= 2048);
	derive_parents(p, listed);

	if (p->head != NULL) {
		for (i = 0; i < listed; i++)
			if (strcmp(p->commits[i].sha, p->head) == 0)
				break;
		if (i == listed) {
			/*
			 * A branch created at, or moved back to, a commit
			 * pushed before: the list does not hold the head.
			 * GitHub still describes it in head_commit.
			 */
			if (head_commit != NULL && json_is_string(json_object_get(
			    head_commit, "id")) && strcmp(json_string_value(
			    json_object_get(head_commit, "id")), p->head) == 0) {
				if ((rc = parse_commit(&p->commits[listed],
				    head_commit, "$.head_commit", err,
				    errlen)) < 0)
					goto fail;
			} else {
				p->commits[listed].sha = p->head;
				p->commits[listed].author_name = "";
				p->commits[listed].author_email = "";
				p->commits[listed].message = "";
			}
			p->ncommits++;
		}
	}
	*out = p;
	return 0;
fail:
	webhook_free(p);
	return rc < 0 ? rc : BL_EINVAL;
}

void
webhook_free(struct push *p)
{
	if (p == NULL)
		return;
	free(p->commits);
	json_decref(p->body);
	free(p);
}

size_t
webhook_urls(const char **out, size_t max, json_t *body)
{
	/* GitHub's repository, GitLab's project and its older repository. */
	static const char *const objects[] = { "repository", "project", NULL };
	static const char *const keys[] = {
		"clone_url", "html_url", "ssh_url", "git_url", "url",
		"git_http_url", "git_ssh_url", "web_url", "http_url", "homepage",
		NULL
	};
	size_t n = 0, i, j, k;
	const char *s;
	json_t *obj, *v;

	for (i = 0; objects[i] != NULL; i++) {
		obj = json_object_get(body, objects[i]);
		if (!json_is_object(obj))
			continue;
		for (j = 0; keys[j] != NULL && n < max; j++) {
			v = json_object_get(obj, keys[j]);
			if (!json_is_string(v) || json_string_length(v) == 0 ||
			    json_string_length(v) > MAX_URL ||
			    strlen(json_string_value(v)) != json_string_length(v))
				continue;
			s = json_string_value(v);
			for (k = 0; k < n; k++)
				if (strcmp(out[k], s) == 0)
					break;
			if (k == n)
				out[n++] = s;
		}
	}
	return n;
}

/* 1 if the name is a scenario name as results use them: [a-z0-9_]{1,64}. */
static int
scenario_name_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 64 || strlen(s) != len)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' &&
		    s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* A branch pattern: a git branch name, with at most a trailing '*'. */
static int
branch_pattern_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > MAX_BRANCH || strlen(s) != len)
		return 0;
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return 0;
		if (s[i] == '*' && i != len - 1)
			return 0;
	}
	return 1;
}

/*
 * Reads an optional, non-empty array of strings that each pass valid();
 * names the bad element and says what it must be (hint).
 */
static int
string_array(json_t **out, json_t *settings, const char *key, size_t max,
    int (*valid)(const char *, size_t), const char *hint, char *err,
    size_t errlen)
{
	json_t *arr = NULL, *e;
	size_t i;
	int rc;

	if ((rc = jsonx_array(&arr, settings, key, 0, max, "$.settings", err,
	    errlen)) < 0 || arr == NULL)
		return rc;
	if (json_array_size(arr) == 0) {
		snprintf(err, errlen, "$.settings.%s: must not be empty", key);
		return BL_EINVAL;
	}
	json_array_foreach(arr, i, e) {
		if (!json_is_string(e) || !valid(json_string_value(e),
		    json_string_length(e))) {
			snprintf(err, errlen, "$.settings.%s[%zu]: %s", key, i,
			    hint);
			return BL_EINVAL;
		}
	}
	*out = json_incref(arr);
	return 0;
}

int
webhook_settings_load(struct webhook_settings *out, json_t *settings,
    char *err, size_t errlen)
{
	json_t *obj;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	if (settings == NULL)
		settings = json_object();
	else
		json_incref(settings);
	if (!json_is_object(settings)) {
		snprintf(err, errlen, "$.settings: must be an object");
		rc = BL_EINVAL;
		goto out;
	}
	if ((rc = string_array(&out->branches, settings, "branches",
	    MAX_BRANCHES, branch_pattern_valid, "must be a branch name of 1 to "
	    "255 bytes without blanks; only a trailing '*' is a wildcard", err,
	    errlen)) < 0 ||
	    (rc = string_array(&out->scenarios, settings, "scenarios",
	    MAX_SCENARIOS, scenario_name_valid, "must be a scenario name "
	    "([a-z0-9_]{1,64})", err, errlen)) < 0 ||
	    (rc = jsonx_bool(&out->every_commit, settings,
	    "benchmark_every_commit", 0, "$.settings", err, errlen)) < 0 ||
	    (rc = jsonx_bool(&out->supersede, settings, "supersede_queued", 0,
	    "$.settings", err, errlen)) < 0)
		goto out;
	obj = NULL;
	if ((rc = jsonx_object(&obj, settings, "job_params", 0, "$.settings",
	    err, errlen)) < 0)
		goto out;
	out->params = obj ? json_incref(obj) : json_object();
	obj = NULL;
	if ((rc = jsonx_object(&obj, settings, "target_labels", 0,
	    "$.settings", err, errlen)) < 0)
		goto out;
	out->target_labels = obj ? json_incref(obj) : json_object();
	if (out->scenarios == NULL) {
		out->scenarios = json_array();
		for (i = 0; default_scenarios[i] != NULL; i++)
			json_array_append_new(out->scenarios,
			    json_string(default_scenarios[i]));
	}
out:
	json_decref(settings);
	return rc;
}

void
webhook_settings_free(struct webhook_settings *s)
{
	json_decref(s->branches);
	json_decref(s->scenarios);
	json_decref(s->params);
	json_decref(s->target_labels);
	memset(s, 0, sizeof(*s));
}

int
webhook_settings_check(json_t *settings, char *err, size_t errlen)
{
	struct webhook_settings s;
	int rc;

	rc = webhook_settings_load(&s, settings, err, errlen);
	webhook_settings_free(&s);
	return rc;
}

int
webhook_branch_wanted(const struct webhook_settings *s, const char *branch,
    const char *default_branch)
{
	const char *pat;
	size_t i, n;
	json_t *e;

	if (s->branches == NULL)
		return strcmp(branch, default_branch) == 0;
	json_array_foreach(s->branches, i, e) {
		pat = json_string_value(e);
		n = strlen(pat);
		if (n > 0 && pat[n - 1] == '*') {
			if (strncmp(branch, pat, n - 1) == 0)
				return 1;
		} else if (strcmp(branch, pat) == 0)
			return 1;
	}
	return 0;
}
