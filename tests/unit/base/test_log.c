/* Logging: log_quote makes any value safe for one key=value line, level names
 * parse, and log_event writes one filtered line. */
#include "base/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void quote_leaves_plain_values_alone(void **state)
{
	(void)state;
	char buf[64];
	assert_string_equal(log_quote("dev1.example.com", buf, sizeof(buf)), "dev1.example.com");
	assert_ptr_equal(log_quote("x", buf, sizeof(buf)), buf);
}

static void quote_wraps_spaces_quotes_and_equals(void **state)
{
	(void)state;
	char buf[64];
	assert_string_equal(log_quote("a b", buf, sizeof(buf)), "\"a b\"");
	assert_string_equal(log_quote("k=v", buf, sizeof(buf)), "\"k=v\"");
	assert_string_equal(log_quote("say \"hi\"", buf, sizeof(buf)), "\"say \\\"hi\\\"\"");
	assert_string_equal(log_quote("", buf, sizeof(buf)), "\"\"");
	assert_string_equal(log_quote(NULL, buf, sizeof(buf)), "\"\"");
}

static void quote_replaces_control_characters(void **state)
{
	(void)state;
	char buf[64];
	/* a newline must never split the log line */
	assert_string_equal(log_quote("a\nlevel=error", buf, sizeof(buf)), "\"a?level=error\"");
	assert_string_equal(log_quote("t\tx\x1b", buf, sizeof(buf)), "\"t?x?\"");
}

static void quote_truncates_within_the_buffer(void **state)
{
	(void)state;
	char buf[8];
	memset(buf, 'X', sizeof(buf));
	const char *q = log_quote("a very long value", buf, sizeof(buf));
	assert_true(strlen(q) < sizeof(buf));
	assert_int_equal(q[0], '"');
	assert_int_equal(q[strlen(q) - 1], '"'); /* still closed */
	memset(buf, 'X', sizeof(buf));
	q = log_quote("abcdefghijkl", buf, sizeof(buf));
	assert_true(strlen(q) < sizeof(buf));
	assert_memory_equal(q, "abcdef", strlen(q));
	/* an escape is never cut in half */
	char small[5];
	q = log_quote("\"\"\"\"", small, sizeof(small));
	assert_true(strlen(q) < sizeof(small));
	assert_int_equal(q[0], '"');
	assert_int_equal(q[strlen(q) - 1], '"');
	assert_int_not_equal(q[strlen(q) - 2], '\\');
	char one[1] = {'X'};
	log_quote("abc", one, sizeof(one));
	assert_int_equal(one[0], '\0');
}

static void level_names_parse(void **state)
{
	(void)state;
	assert_int_equal(log_level_parse("debug"), LOG_LVL_DEBUG);
	assert_int_equal(log_level_parse("info"), LOG_LVL_INFO);
	assert_int_equal(log_level_parse("warn"), LOG_LVL_WARN);
	assert_int_equal(log_level_parse("error"), LOG_LVL_ERROR);
	assert_int_equal(log_level_parse("warning"), -1);
	assert_int_equal(log_level_parse("INFO"), -1);
	assert_int_equal(log_level_parse(""), -1);
}

static void init_refuses_unknown_destination(void **state)
{
	(void)state;
	assert_int_equal(log_init("stderr", LOG_LVL_WARN), 0);
	assert_int_equal(log_get_level(), LOG_LVL_WARN);
	assert_int_equal(log_init("file", LOG_LVL_INFO), -1);
	assert_int_equal(log_init(NULL, LOG_LVL_INFO), 0);
}

/* Runs log_event with stderr sent to a temporary file and returns what it wrote. */
static char *capture_event(enum log_level level, const char *event, const char *kv)
{
	char path[] = "/tmp/acmera-test-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	log_event(level, event, "%s", kv);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	off_t n = lseek(fd, 0, SEEK_END);
	char *out = calloc(1, (size_t)n + 1);
	assert_non_null(out);
	assert_int_equal(pread(fd, out, (size_t)n, 0), n);
	close(fd);
	return out;
}

static void event_writes_one_key_value_line_at_or_above_level(void **state)
{
	(void)state;
	assert_int_equal(log_init("stderr", LOG_LVL_INFO), 0);
	char *line = capture_event(LOG_LVL_WARN, "acme.order", "order=o1 status=valid");
	assert_true(strncmp(line, "ts=", 3) == 0);
	assert_non_null(strstr(line, "Z level=warn event=acme.order order=o1 status=valid\n"));
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1); /* one line */
	free(line);
	line = capture_event(LOG_LVL_DEBUG, "acme.order", "hidden=1");
	assert_string_equal(line, "");
	free(line);
	log_set_level(LOG_LVL_DEBUG);
	line = capture_event(LOG_LVL_DEBUG, "x", "shown=1");
	assert_non_null(strstr(line, "level=debug event=x shown=1"));
	free(line);
	log_set_level(LOG_LVL_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(quote_leaves_plain_values_alone),
	    cmocka_unit_test(quote_wraps_spaces_quotes_and_equals),
	    cmocka_unit_test(quote_replaces_control_characters),
	    cmocka_unit_test(quote_truncates_within_the_buffer),
	    cmocka_unit_test(level_names_parse),
	    cmocka_unit_test(init_refuses_unknown_destination),
	    cmocka_unit_test(event_writes_one_key_value_line_at_or_above_level),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
