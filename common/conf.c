/* Configuration loading from a table of settings, a file and the environment. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "xmalloc.h"

static const struct conf_option *
conf_find(const struct conf_option *opts, size_t nopts, const char *name)
{
	size_t i;

	for (i = 0; i < nopts; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

static int
parse_bool(int *out, const char *v)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") ||
	    !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") ||
	    !strcmp(v, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* Stores the text value of one option into settings, checking type and bounds. */
static int
conf_set(void *settings, const struct conf_option *o, const char *value,
    const char *where, char *err, size_t errlen)
{
	char *base = settings, *end, verr[200] = "";
	char **sp;
	long long n;

	if (o->validate != NULL && o->validate(value, verr, sizeof(verr)) < 0) {
		snprintf(err, errlen, "%s: invalid value for '%s': %s", where,
		    o->name, verr);
		return -1;
	}
	switch (o->type) {
	case CONF_STRING:
		sp = (char **)(void *)(base + o->offset);
		free(*sp);
		*sp = xstrdup(value);
		return 0;
	case CONF_INT:
		errno = 0;
		n = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0') {
			snprintf(err, errlen, "%s: '%s' wants an integer, got '%s'",
			    where, o->name, value);
			return -1;
		}
		if (n < o->min || n > o->max) {
			snprintf(err, errlen, "%s: '%s' is %lld, outside %lld..%lld",
			    where, o->name, n, o->min, o->max);
			return -1;
		}
		*(long long *)(void *)(base + o->offset) = n;
		return 0;
	case CONF_BOOL:
		if (parse_bool((int *)(void *)(base + o->offset), value) < 0) {
			snprintf(err, errlen, "%s: '%s' wants true or false, got '%s'",
			    where, o->name, value);
			return -1;
		}
		return 0;
	}
	return -1;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Reads key = value lines; '#' starts a comment; values may be double-quoted. */
static int
conf_read_file(void *settings, const struct conf_option *opts, size_t nopts,
    const char *path, char *err, size_t errlen)
{
	char line[4096], where[512], *key, *val, *eq;
	const struct conf_option *o;
	int lineno = 0, rc = 0;
	size_t vl;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot open config '%s': %s", path,
		    strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		snprintf(where, sizeof(where), "config '%s' line %d", path,
		    lineno);
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(err, errlen, "%s: line too long", where);
			rc = -1;
			break;
		}
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			snprintf(err, errlen, "%s: expected 'key = value'", where);
			rc = -1;
			break;
		}
		*eq = '\0';
		key = trim(key);
		val = trim(eq + 1);
		vl = strlen(val);
		if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
			val[vl - 1] = '\0';
			val++;
		}
		if ((o = conf_find(opts, nopts, key)) == NULL) {
			snprintf(err, errlen, "%s: unknown key '%s'", where, key);
			rc = -1;
			break;
		}
		if ((rc = conf_set(settings, o, val, where, err, errlen)) < 0)
			break;
	}
	fclose(fp);
	return rc;
}

int
conf_load(void *settings, const struct conf_option *opts, size_t nopts,
    const char *path, const char *env_prefix, char *err, size_t errlen)
{
	char envname[256], where[300];
	const char *v;
	size_t i, j;

	for (i = 0; i < nopts; i++) {
		if (opts[i].def == NULL)
			continue;
		if (conf_set(settings, &opts[i], opts[i].def, "default", err,
		    errlen) < 0)
			return -1;
	}
	if (path != NULL &&
	    conf_read_file(settings, opts, nopts, path, err, errlen) < 0)
		return -1;
	for (i = 0; i < nopts; i++) {
		snprintf(envname, sizeof(envname), "%s_%s", env_prefix,
		    opts[i].name);
		for (j = 0; envname[j] != '\0'; j++)
			envname[j] = (char)toupper((unsigned char)envname[j]);
		v = getenv(envname);
		if (v == NULL && opts[i].env_alias != NULL) {
			v = getenv(opts[i].env_alias);
			snprintf(envname, sizeof(envname), "%s", opts[i].env_alias);
		}
		if (v == NULL)
			continue;
		snprintf(where, sizeof(where), "environment %s", envname);
		if (conf_set(settings, &opts[i], v, where, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int
conf_valid_log_level(const char *value, char *err, size_t errlen)
{
	enum log_level l;

	if (log_level_parse(&l, value) < 0) {
		snprintf(err, errlen, "must be error, warn, info or debug");
		return -1;
	}
	return 0;
}

void
conf_free(void *settings, const struct conf_option *opts, size_t nopts)
{
	char *base = settings;
	size_t i;

	for (i = 0; i < nopts; i++) {
		if (opts[i].type == CONF_STRING) {
			char **sp = (char **)(void *)(base + opts[i].offset);
			free(*sp);
			*sp = NULL;
		}
	}
}

void
conf_print(const void *settings, const struct conf_option *opts, size_t nopts)
{
	const char *base = settings;
	const char *s;
	size_t i;

	for (i = 0; i < nopts; i++) {
		const void *p = base + opts[i].offset;

		switch (opts[i].type) {
		case CONF_STRING:
			s = *(char *const *)p;
			/* An empty secret shows as empty: "not set" is no secret. */
			printf("%s = %s\n", opts[i].name, s == NULL || *s == '\0' ?
			    "" : opts[i].secret ? "********" : s);
			break;
		case CONF_INT:
			printf("%s = %lld\n", opts[i].name, *(const long long *)p);
			break;
		case CONF_BOOL:
			printf("%s = %s\n", opts[i].name,
			    *(const int *)p ? "true" : "false");
			break;
		}
	}
}
