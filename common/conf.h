/* Table-driven configuration: defaults, a key = value file, environment overrides. */
#ifndef BL_CONF_H
#define BL_CONF_H

#include <stddef.h>

enum conf_type { CONF_STRING, CONF_INT, CONF_BOOL };

/*
 * One setting.  The value lands at offset in the caller's settings struct:
 * a char * for CONF_STRING (owned by the struct, freed by conf_free()),
 * a long long for CONF_INT (checked against min..max) and an int for
 * CONF_BOOL (true/false, yes/no, on/off, 1/0).
 *
 * def is the default as text; NULL means the setting has no default and
 * stays NULL (strings) or 0.  validate, when set, sees the final text and
 * writes a reason into err when it refuses it.
 */
struct conf_option {
	const char	*name;
	enum conf_type	 type;
	const char	*def;
	long long	 min;
	long long	 max;
	size_t		 offset;
	int		(*validate)(const char *value, char *err, size_t errlen);
	int		 secret;	/* never printed by conf_print() */
	const char	*env_alias;	/* a second environment name, or NULL */
	const char	*help;
};

/*
 * Fills settings from the defaults, then the file at path (if path is not
 * NULL), then the environment: PREFIX_NAME in upper case, and env_alias.
 * Unknown keys in the file are errors.  Returns 0, or -1 with a message
 * such as "config 'x.conf' line 3: unknown key 'foo'" in err.
 */
int	conf_load(void *settings, const struct conf_option *opts, size_t nopts,
	    const char *path, const char *env_prefix, char *err, size_t errlen);
/* A validator for log level settings: error, warn, info or debug. */
int	conf_valid_log_level(const char *value, char *err, size_t errlen);
/* Frees the strings conf_load() put in settings. */
void	conf_free(void *settings, const struct conf_option *opts, size_t nopts);
/* Prints every setting as name = value to stdout, secrets masked. */
void	conf_print(const void *settings, const struct conf_option *opts,
	    size_t nopts);

#endif
