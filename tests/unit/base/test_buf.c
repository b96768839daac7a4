/* struct buf: appends keep a NUL after the bytes, growth, ownership hand-over. */
#include "base/buf.h"
#include "base/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void empty_buffer_reads_as_empty_string(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void append_keeps_bytes_and_terminating_nul(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append(&b, "ab\0c", 4), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "ab\0c", 4);
	assert_int_equal(b.data[4], '\0');
	assert_int_equal(buf_append_str(&b, "de"), 0);
	assert_int_equal(b.len, 6);
	assert_memory_equal(b.data, "ab\0cde", 7);
	assert_int_equal(buf_append(&b, NULL, 0), 0);
	assert_int_equal(b.len, 6);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void append_grows_past_many_reallocations(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	char chunk[97];
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)('a' + i % 26);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 97000);
	assert_true(b.cap > b.len);
	for (size_t i = 0; i < b.len; i += sizeof(chunk))
		assert_memory_equal(b.data + i, chunk, sizeof(chunk));
	assert_int_equal(b.data[b.len], '\0');
	buf_free(&b);
}

static void printf_appends_formatted_text(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append_str(&b, "x="), 0);
	assert_int_equal(buf_printf(&b, "%d/%s", 42, "y"), 0);
	assert_string_equal(buf_str(&b), "x=42/y");
	assert_int_equal(b.len, 6);
	char big[300];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(buf_printf(&b, "[%s]", big), 0);
	assert_int_equal(b.len, 6 + 2 + 299);
	assert_int_equal(b.data[b.len - 1], ']');
	assert_int_equal(b.data[b.len], '\0');
	buf_free(&b);
}

static void reserve_refuses_sizes_that_overflow(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append_str(&b, "abc"), 0);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), ACMERA_ERR_NOMEM);
	assert_int_equal(buf_reserve(&b, SIZE_MAX - 3), ACMERA_ERR_NOMEM);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX - 2), ACMERA_ERR_NOMEM);
	assert_string_equal(buf_str(&b), "abc"); /* unchanged */
	assert_int_equal(buf_reserve(&b, 1000), 0);
	assert_true(b.cap >= 3 + 1000 + 1);
	buf_free(&b);
}

static void reserve_on_empty_buffer_still_reads_as_empty_string(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_reserve(&b, 100), 0);
	assert_non_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_str(&b), "");
	buf_free(&b);
}

static void reset_empties_but_keeps_memory(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append_str(&b, "hello"), 0);
	size_t cap = b.cap;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_append_str(&b, "x"), 0);
	assert_string_equal(buf_str(&b), "x");
	buf_free(&b);
	struct buf never = BUF_INIT;
	buf_reset(&never); /* no data yet: must not crash */
	assert_int_equal(never.len, 0);
}

static void steal_hands_over_text_and_empties_buffer(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append_str(&b, "owned"), 0);
	char *s = buf_steal(&b);
	assert_string_equal(s, "owned");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(s);
	/* an empty buffer still gives a string, never NULL */
	s = buf_steal(&b);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_buffer_reads_as_empty_string),
	    cmocka_unit_test(append_keeps_bytes_and_terminating_nul),
	    cmocka_unit_test(append_grows_past_many_reallocations),
	    cmocka_unit_test(printf_appends_formatted_text),
	    cmocka_unit_test(reserve_refuses_sizes_that_overflow),
	    cmocka_unit_test(reserve_on_empty_buffer_still_reads_as_empty_string),
	    cmocka_unit_test(reset_empties_but_keeps_memory),
	    cmocka_unit_test(steal_hands_over_text_and_empties_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
