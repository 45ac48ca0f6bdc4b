/* Unit tests of common/buf.c: bounded buffers and the tail ring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void
test_buf_limit(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_int_equal(buf_addstr(&b, "hello"), 0);
	assert_int_equal(buf_addf(&b, "%d", 1234), 0);
	assert_string_equal(b.ptr, "hello1234");
	/* Two more bytes would pass the maximum: refused, buffer unchanged. */
	assert_int_equal(buf_addstr(&b, "xy"), BL_ETOOBIG);
	assert_string_equal(b.ptr, "hello1234");
	assert_int_equal(buf_addf(&b, "%s", "ab"), BL_ETOOBIG);
	assert_int_equal(buf_add(&b, "z", 1), 0);
	assert_int_equal(b.len, 10);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.ptr, "");
	buf_free(&b);
}

static void
test_buf_grows(void **state)
{
	struct buf b;
	char *s;
	int i;

	(void)state;
	buf_init(&b, 1 << 20);
	for (i = 0; i < 10000; i++)
		assert_int_equal(buf_addf(&b, "%04d", i % 10000), 0);
	assert_int_equal(b.len, 40000);
	assert_memory_equal(b.ptr + 39996, "9999", 4);
	s = buf_detach(&b);
	assert_int_equal(strlen(s), 40000);
	free(s);
	buf_free(&b);
}

static void
test_tailbuf_keeps_the_end(void **state)
{
	struct tailbuf t;
	char *s;

	(void)state;
	tailbuf_init(&t, 8);
	tailbuf_add(&t, "abc", 3);
	s = tailbuf_str(&t);
	assert_string_equal(s, "abc");
	free(s);
	tailbuf_add(&t, "defghij", 7);
	s = tailbuf_str(&t);
	assert_string_equal(s, "cdefghij");
	assert_int_equal(t.dropped, 2);
	free(s);
	tailbuf_add(&t, "0123456789ABCDEF", 16);
	s = tailbuf_str(&t);
	assert_string_equal(s, "89ABCDEF");
	assert_int_equal(t.dropped, 18);
	free(s);
	tailbuf_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_limit),
		cmocka_unit_test(test_buf_grows),
		cmocka_unit_test(test_tailbuf_keeps_the_end),
	};

	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
