/* Jansson helpers: field validation that names the JSON path of a bad field. */
#ifndef BL_JSONX_H
#define BL_JSONX_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * Each getter checks one member key of obj.  On failure it returns
 * BL_EINVAL and writes "<path>.<key>: <reason>" into err; a missing optional
 * member returns 0 and leaves *out as it was.  path names obj, such as
 * "$.scenarios.latency".
 */
int	jsonx_string(const char **out, json_t *obj, const char *key,
	    int required, size_t maxlen, const char *path, char *err,
	    size_t errlen);
int	jsonx_int(int64_t *out, json_t *obj, const char *key, int required,
	    int64_t min, int64_t max, const char *path, char *err,
	    size_t errlen);
/* Accepts integers and reals; refuses anything that is not finite. */
int	jsonx_number(double *out, json_t *obj, const char *key, int required,
	    const char *path, char *err, size_t errlen);
int	jsonx_bool(int *out, json_t *obj, const char *key, int required,
	    const char *path, char *err, size_t errlen);
int	jsonx_object(json_t **out, json_t *obj, const char *key, int required,
	    const char *path, char *err, size_t errlen);
int	jsonx_array(json_t **out, json_t *obj, const char *key, int required,
	    size_t maxlen, const char *path, char *err, size_t errlen);
/* Refuses members of obj that are not in the NULL-terminated list allowed. */
int	jsonx_only(json_t *obj, const char *const *allowed, const char *path,
	    char *err, size_t errlen);
/* Returns a new string of v serialized compactly; caller frees. */
char	*jsonx_dump(const json_t *v);

#endif
