/* Unit tests of common/conf.c: defaults, file, environment, bounds, unknown keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "error.h"

struct s {
	char		*name;
	long long	 port;
	int		 flag;
	char		*secret;
};

static int
no_spaces(const char *v, char *err, size_t errlen)
{
	if (strchr(v, ' ') != NULL) {
		snprintf(err, errlen, "must not contain spaces");
		return -1;
	}
	return 0;
}

static const struct conf_option opts[] = {
	{ "name", CONF_STRING, "default", 0, 0, offsetof(struct s, name),
	    no_spaces, 0, NULL, "a name" },
	{ "port", CONF_INT, "80", 1, 65535, offsetof(struct s, port), NULL, 0,
	    NULL, "a port" },
	{ "flag", CONF_BOOL, "false", 0, 0, offsetof(struct s, flag), NULL, 0,
	    NULL, "a flag" },
	{ "secret", CONF_STRING, NULL, 0, 0, offsetof(struct s, secret), NULL, 1,
	    "TEST_SECRET_ALIAS", "a secret" },
};

static char *
write_conf(const char *text)
{
	char *path = strdup("/tmp/bl-conf-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static int
load(struct s *out, const char *text, char *err, size_t errlen)
{
	char *path = text ? write_conf(text) : NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = conf_load(out, opts, BL_ARRAY_LEN(opts), path, "BLTEST", err, errlen);
	if (path != NULL) {
		unlink(path);
		free(path);
	}
	return rc;
}

static void
test_defaults_file_env(void **state)
{
	char err[256];
	struct s s;

	(void)state;
	unsetenv("BLTEST_PORT");
	assert_int_equal(load(&s, NULL, err, sizeof(err)), 0);
	assert_string_equal(s.name, "default");
	assert_int_equal(s.port, 80);
	assert_null(s.secret);
	conf_free(&s, opts, BL_ARRAY_LEN(opts));

	assert_int_equal(load(&s, "# comment\n\nname = \"x\"\nport=8080\nflag = yes\n",
	    err, sizeof(err)), 0);
	assert_string_equal(s.name, "x");
	assert_int_equal(s.port, 8080);
	assert_int_equal(s.flag, 1);
	conf_free(&s, opts, BL_ARRAY_LEN(opts));

	setenv("BLTEST_PORT", "9090", 1);
	setenv("TEST_SECRET_ALIAS", "hush", 1);
	assert_int_equal(load(&s, "port = 8080\n", err, sizeof(err)), 0);
	assert_int_equal(s.port, 9090);
	assert_string_equal(s.secret, "hush");
	conf_free(&s, opts, BL_ARRAY_LEN(opts));
	unsetenv("BLTEST_PORT");
	unsetenv("TEST_SECRET_ALIAS");
}

static void
test_errors_name_the_place(void **state)
{
	char err[256];
	struct s s;

	(void)state;
	assert_int_equal(load(&s, "port = 1\nbogus = 2\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 2: unknown key 'bogus'"));
	conf_free(&s, opts, BL_ARRAY_LEN(opts));
	assert_int_equal(load(&s, "port = 70000\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'port' is 70000, outside 1..65535"));
	conf_free(&s, opts, BL_ARRAY_LEN(opts));
	assert_int_equal(load(&s, "port = 12ab\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "wants an integer"));
	conf_free(&s, opts, BL_ARRAY_LEN(opts));
	assert_int_equal(load(&s, "flag = maybe\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "wants true or false"));
	conf_free(&s, opts, BL_ARRAY_LEN(opts));
	assert_int_equal(load(&s, "name = a b\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "must not contain spaces"));
	conf_free(&s, opts, BL_ARRAY_LEN(opts));
	assert_int_equal(load(&s, "just text\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected 'key = value'"));
	conf_free(&s, opts, BL_ARRAY_LEN(opts));
	setenv("BLTEST_PORT", "zero", 1);
	assert_int_equal(load(&s, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "environment BLTEST_PORT"));
	conf_free(&s, opts, BL_ARRAY_LEN(opts));
	unsetenv("BLTEST_PORT");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_file_env),
		cmocka_unit_test(test_errors_name_the_place),
	};

	return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
