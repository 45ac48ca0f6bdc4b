/* Unit tests of common/jsonx.c: field checks that name the JSON path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "jsonx.h"

static void
test_getters(void **state)
{
	json_t *o = json_loads("{\"s\":\"abc\",\"i\":7,\"f\":1.5,\"b\":true,"
	    "\"a\":[1,2],\"o\":{},\"n\":null}", 0, NULL);
	const char *s = NULL;
	int64_t i = 0;
	double d = 0;
	json_t *v = NULL;
	char err[200];
	int b = 0;

	(void)state;
	assert_int_equal(jsonx_string(&s, o, "s", 1, 10, "$", err, sizeof(err)), 0);
	assert_string_equal(s, "abc");
	assert_int_equal(jsonx_int(&i, o, "i", 1, 0, 10, "$", err, sizeof(err)), 0);
	assert_int_equal(i, 7);
	assert_int_equal(jsonx_number(&d, o, "i", 1, "$", err, sizeof(err)), 0);
	assert_true(d == 7.0);
	assert_int_equal(jsonx_number(&d, o, "f", 1, "$", err, sizeof(err)), 0);
	assert_true(d == 1.5);
	assert_int_equal(jsonx_bool(&b, o, "b", 1, "$", err, sizeof(err)), 0);
	assert_int_equal(b, 1);
	assert_int_equal(jsonx_array(&v, o, "a", 1, 2, "$", err, sizeof(err)), 0);
	assert_int_equal(jsonx_object(&v, o, "o", 1, "$", err, sizeof(err)), 0);
	/* Optional and null members leave the value alone. */
	s = "keep";
	assert_int_equal(jsonx_string(&s, o, "missing", 0, 10, "$", err,
	    sizeof(err)), 0);
	assert_int_equal(jsonx_string(&s, o, "n", 0, 10, "$", err, sizeof(err)), 0);
	assert_string_equal(s, "keep");
	json_decref(o);
}

static void
test_errors(void **state)
{
	json_t *o = json_loads("{\"s\":\"abcdef\",\"i\":7,\"f\":1.5,\"a\":[1,2,3]}",
	    0, NULL);
	const char *s;
	int64_t i;
	json_t *v;
	char err[200];

	(void)state;
	assert_int_equal(jsonx_string(&s, o, "s", 1, 3, "$.x", err, sizeof(err)),
	    BL_EINVAL);
	assert_string_equal(err, "$.x.s: longer than 3 bytes");
	assert_int_equal(jsonx_int(&i, o, "f", 1, 0, 10, "$", err, sizeof(err)),
	    BL_EINVAL);
	assert_string_equal(err, "$.f: must be an integer");
	assert_int_equal(jsonx_int(&i, o, "i", 1, 8, 10, "$", err, sizeof(err)),
	    BL_EINVAL);
	assert_string_equal(err, "$.i: 7 is outside 8..10");
	assert_int_equal(jsonx_string(&s, o, "zz", 1, 3, "$", err, sizeof(err)),
	    BL_EINVAL);
	assert_string_equal(err, "$.zz: is required");
	assert_int_equal(jsonx_array(&v, o, "a", 1, 2, "$", err, sizeof(err)),
	    BL_EINVAL);
	assert_string_equal(err, "$.a: more than 2 elements");
	{
		static const char *const ok[] = { "s", "i", "f", NULL };

		assert_int_equal(jsonx_only(o, ok, "$", err, sizeof(err)),
		    BL_EINVAL);
		assert_string_equal(err, "$.a: unknown field");
	}
	json_decref(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests_name("jsonx", tests, NULL, NULL);
}
