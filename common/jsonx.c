/* Jansson helpers for validating request bodies, results and manifests. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "jsonx.h"
#include "xmalloc.h"

/* Finds key in obj; reports a missing required member or a non-object. */
static int
member(json_t **out, json_t *obj, const char *key, int required,
    const char *path, char *err, size_t errlen)
{
	*out = NULL;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: must be an object", path);
		return BL_EINVAL;
	}
	*out = json_object_get(obj, key);
	if (*out == NULL || json_is_null(*out)) {
		*out = NULL;
		if (required) {
			snprintf(err, errlen, "%s.%s: is required", path, key);
			return BL_EINVAL;
		}
	}
	return 0;
}

int
jsonx_string(const char **out, json_t *obj, const char *key, int required,
    size_t maxlen, const char *path, char *err, size_t errlen)
{
	json_t *v;
	int rc;

	if ((rc = member(&v, obj, key, required, path, err, errlen)) < 0 ||
	    v == NULL)
		return rc;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s.%s: must be a string", path, key);
		return BL_EINVAL;
	}
	if (json_string_length(v) > maxlen) {
		snprintf(err, errlen, "%s.%s: longer than %zu bytes", path, key,
		    maxlen);
		return BL_EINVAL;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(err, errlen, "%s.%s: contains a NUL character", path,
		    key);
		return BL_EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

int
jsonx_int(int64_t *out, json_t *obj, const char *key, int required,
    int64_t min, int64_t max, const char *path, char *err, size_t errlen)
{
	json_t *v;
	int64_t n;
	int rc;

	if ((rc = member(&v, obj, key, required, path, err, errlen)) < 0 ||
	    v == NULL)
		return rc;
	if (!json_is_integer(v)) {
		snprintf(err, errlen, "%s.%s: must be an integer", path, key);
		return BL_EINVAL;
	}
	n = json_integer_value(v);
	if (n < min || n > max) {
		snprintf(err, errlen, "%s.%s: %lld is outside %lld..%lld", path,
		    key, (long long)n, (long long)min, (long long)max);
		return BL_EINVAL;
	}
	*out = n;
	return 0;
}

int
jsonx_number(double *out, json_t *obj, const char *key, int required,
    const char *path, char *err, size_t errlen)
{
	json_t *v;
	double d;
	int rc;

	if ((rc = member(&v, obj, key, required, path, err, errlen)) < 0 ||
	    v == NULL)
		return rc;
	if (!json_is_number(v)) {
		snprintf(err, errlen, "%s.%s: must be a number", path, key);
		return BL_EINVAL;
	}
	d = json_number_value(v);
	if (!isfinite(d)) {
		snprintf(err, errlen, "%s.%s: must be finite", path, key);
		return BL_EINVAL;
	}
	*out = d;
	return 0;
}

int
jsonx_bool(int *out, json_t *obj, const char *key, int required,
    const char *path, char *err, size_t errlen)
{
	json_t *v;
	int rc;

	if ((rc = member(&v, obj, key, required, path, err, errlen)) < 0 ||
	    v == NULL)
		return rc;
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "%s.%s: must be true or false", path, key);
		return BL_EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

int
jsonx_object(json_t **out, json_t *obj, const char *key, int required,
    const char *path, char *err, size_t errlen)
{
	json_t *v;
	int rc;

	if ((rc = member(&v, obj, key, required, path, err, errlen)) < 0 ||
	    v == NULL)
		return rc;
	if (!json_is_object(v)) {
		snprintf(err, errlen, "%s.%s: must be an object", path, key);
		return BL_EINVAL;
	}
	*out = v;
	return 0;
}

int
jsonx_array(json_t **out, json_t *obj, const char *key, int required,
    size_t maxlen, const char *path, char *err, size_t errlen)
{
	json_t *v;
	int rc;

	if ((rc = member(&v, obj, key, required, path, err, errlen)) < 0 ||
	    v == NULL)
		return rc;
	if (!json_is_array(v)) {
		snprintf(err, errlen, "%s.%s: must be an array", path, key);
		return BL_EINVAL;
	}
	if (json_array_size(v) > maxlen) {
		snprintf(err, errlen, "%s.%s: more than %zu elements", path, key,
		    maxlen);
		return BL_EINVAL;
	}
	*out = v;
	return 0;
}

int
jsonx_only(json_t *obj, const char *const *allowed, const char *path,
    char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			snprintf(err, errlen, "%s.%s: unknown field", path, key);
			return BL_EINVAL;
		}
	}
	return 0;
}

char *
jsonx_dump(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s == NULL)
		return xstrdup("null");
	return s;
}
