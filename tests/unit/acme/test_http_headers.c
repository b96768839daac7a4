/* Retry-After and Link header parsing. */
#include "acme/resources.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sun, 06 Nov 1994 08:49:37 GMT */
#define T1994 784111777LL
/* Sat, 28 Nov 2026 13:00:00 GMT */
#define T2026 1795870800LL

static int64_t retry(const char *v, int64_t now)
{
	int64_t s = -12345;
	if (http_retry_after_parse(v, now, &s) != 0)
		return -1;
	assert_true(s >= 0 && s <= 86400);
	return s;
}

static void retry_after_reads_delta_seconds_and_clamps(void **state)
{
	(void)state;
	assert_int_equal(retry("120", T2026), 120);
	assert_int_equal(retry("0", T2026), 0);
	assert_int_equal(retry(" \t30 ", T2026), 30);
	assert_int_equal(retry("86400", T2026), 86400);
	assert_int_equal(retry("86401", T2026), 86400);
	assert_int_equal(retry("99999999999999999999999999", T2026), 86400);
	assert_int_equal(retry("007", T2026), 7);
}

static void retry_after_reads_the_three_http_date_forms(void **state)
{
	(void)state;
	assert_int_equal(retry("Sun, 06 Nov 1994 08:49:37 GMT", T1994 - 60), 60);
	assert_int_equal(retry("Sunday, 06-Nov-94 08:49:37 GMT", T1994 - 90), 90);
	assert_int_equal(retry("Sun Nov  6 08:49:37 1994", T1994 - 5), 5);
	assert_int_equal(retry("Wed Nov 16 08:49:37 1994", T1994), 86400);
	assert_int_equal(retry("Sat, 28 Nov 2026 13:30:00 GMT", T2026), 1800);
	/* Past dates mean now, far ones are clamped. */
	assert_int_equal(retry("Sun, 06 Nov 1994 08:49:37 GMT", T2026), 0);
	assert_int_equal(retry("Fri, 31 Dec 9999 23:59:59 GMT", T2026), 86400);
	/* A two-digit year more than 50 years ahead is in the past (RFC 9110 5.6.7). */
	assert_int_equal(retry("Saturday, 28-Nov-26 13:01:00 GMT", T2026), 60);
	assert_int_equal(retry("Sunday, 06-Nov-94 08:49:37 GMT", T2026), 0);
	assert_int_equal(retry("Monday, 28-Nov-50 13:00:00 GMT", T2026), 86400);
	/* An absurd clock does not overflow the difference. */
	assert_int_equal(retry("Sun, 06 Nov 1994 08:49:37 GMT", INT64_MIN), 86400);
	assert_int_equal(retry("Sun, 06 Nov 1994 08:49:37 GMT", INT64_MAX), 0);
}

static void retry_after_refuses_malformed(void **state)
{
	(void)state;
	const char *bad[] = {
	    "",
	    "   ",
	    "-5",
	    "+5",
	    "1.5",
	    "12a",
	    "5 s",
	    "Sun, 06 Nov 1994 08:49:37 UTC",
	    "Sun, 06 Nov 1994 08:49:37",
	    "Sun, 31 Feb 1994 08:49:37 GMT",
	    "Xyz, 06 Nov 1994 08:49:37 GMT",
	    "Sun, 06 Foo 1994 08:49:37 GMT",
	    "Sun, 06 Nov 1994 25:49:37 GMT",
	    "Sun, 06 Nov 1994 08-49-37 GMT",
	    "Sun,  6 Nov 1994 08:49:37 GMT",
	    "Sunday, 06-Nov-1994 08:49:37 GMT",
	    "Funday, 06-Nov-94 08:49:37 GMT",
	    "Sun Nov  6 08:49:37 94",
	    "Sun Nov 6 08:49:37 1994",
	    "2026-11-28T13:00:00Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (retry(bad[i], T2026) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	char lng[300];
	memset(lng, '1', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	assert_int_equal(retry(lng, T2026), -1);
	int64_t s;
	assert_int_equal(http_retry_after_parse(NULL, T2026, &s), -1);
}

/* Parses and checks the URLs found, then frees them. */
static void expect_links(const char *value, const char *rel, size_t n, ...)
{
	char **urls = (char **)1;
	size_t got = 99;
	assert_int_equal(http_link_parse(value, rel, &urls, &got), 0);
	if (got != n)
		fail_msg("%s rel=%s: %zu URLs, expected %zu", value, rel, got, n);
	if (n == 0)
		assert_null(urls);
	va_list ap;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(urls[i], va_arg(ap, const char *));
	va_end(ap);
	for (size_t i = 0; i < got; i++)
		free(urls[i]);
	free(urls);
}

static void link_finds_urls_by_rel(void **state)
{
	(void)state;
	/* As Pebble sends them. */
	expect_links("<https://127.0.0.1:14444/dir>;rel=\"index\"", "index", 1,
	             "https://127.0.0.1:14444/dir");
	expect_links("<https://127.0.0.1:14444/dir>;rel=\"index\"", "up", 0);
	expect_links("<https://127.0.0.1:14444/authZ/U1In-QRh>;rel=\"up\"", "up", 1,
	             "https://127.0.0.1:14444/authZ/U1In-QRh");
	/* Alternate chains (RFC 8555 7.4.2), several in one value, in order. */
	const char *alts = "<https://a.example/cert/1/1>;rel=\"alternate\", "
	                   "<https://a.example/dir>;rel=\"index\",<https://a.example/cert/1/2>; "
	                   "rel=alternate ,";
	expect_links(alts, "alternate", 2, "https://a.example/cert/1/1",
	             "https://a.example/cert/1/2");
	expect_links(alts, "index", 1, "https://a.example/dir");
	expect_links("", "up", 0);
}

static void link_handles_rel_lists_case_and_other_params(void **state)
{
	(void)state;
	expect_links("<https://a/x>; rel=\"up alternate\"", "alternate", 1, "https://a/x");
	expect_links("<https://a/x>; rel=\"up\talternate\"", "up", 1, "https://a/x");
	expect_links("<https://a/x>; REL=\"UP\"", "up", 1, "https://a/x");
	expect_links("<https://a/x>; rel=uploader", "up", 0);
	expect_links("<https://a/x>; rel=\"http://example.net/rel/up\"", "up", 0);
	expect_links("<https://a/x>; title=\"a, b; c <d>\"; rel=up; type=\"text/html\"", "up", 1,
	             "https://a/x");
	expect_links("<https://a/x>; title=\"say \\\"hi\\\", rel=up\"; rel=\"index\"", "up", 0);
	expect_links("<https://a/x>; title=\"say \\\"hi\\\"\"; rel=\"index\"", "index", 1,
	             "https://a/x");
	/* Only the first rel parameter counts (RFC 8288 3.3). */
	expect_links("<https://a/x>; rel=index; rel=up", "up", 0);
	expect_links("<https://a/x> ; rel = \"up\" ;; anchor=\"#foo\"", "up", 1, "https://a/x");
	expect_links("<https://a/x;y,z>; rel=up, <https://a/w>; hreflang=de", "up", 1,
	             "https://a/x;y,z");
	expect_links("<https://a/x>; rel*=UTF-8'de'up; rel=up", "up", 1, "https://a/x");
}

static void link_refuses_malformed_values(void **state)
{
	(void)state;
	const char *bad[] = {
	    "https://a/x; rel=up",
	    "<https://a/x; rel=up",
	    "<https://a/x> rel=up",
	    "<https://a/x>; rel=\"up",
	    "<https://a/x>; rel=\"up\\",
	    "<https://a/ x>; rel=up",
	    "<https://a/x>; rel=up <https://a/y>; rel=up",
	    "<https://a/x>; =up",
	    "<https://a/x>; rel=\"u\x01p\"",
	    "<https://a/\x7fx>; rel=up",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char **urls = (char **)1;
		size_t n = 7;
		if (http_link_parse(bad[i], "up", &urls, &n) != ACMERA_ERR_INVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_null(urls);
		assert_int_equal(n, 0);
	}
	char **urls;
	size_t n;
	assert_int_equal(http_link_parse(NULL, "up", &urls, &n), ACMERA_ERR_INVAL);
	assert_int_equal(http_link_parse("<https://a/x>;rel=up", NULL, &urls, &n),
	                 ACMERA_ERR_INVAL);
}

static void link_bounds_count_and_size(void **state)
{
	(void)state;
	char *v = malloc(70000);
	size_t o = 0;
	for (int i = 0; i < 40; i++)
		o += (size_t)sprintf(v + o, "%s<https://a/%d>;rel=up", i ? ", " : "", i);
	char **urls;
	size_t n;
	assert_int_equal(http_link_parse(v, "up", &urls, &n), 0);
	assert_int_equal(n, 32);
	assert_string_equal(urls[31], "https://a/31");
	for (size_t i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
	memset(v, ' ', 65537);
	memcpy(v, "<https://a/x>;rel=up", 20);
	v[65537] = '\0';
	assert_int_equal(http_link_parse(v, "up", &urls, &n), ACMERA_ERR_INVAL);
	v[65536] = '\0';
	assert_int_equal(http_link_parse(v, "up", &urls, &n), 0);
	assert_int_equal(n, 1);
	free(urls[0]);
	free(urls);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(retry_after_reads_delta_seconds_and_clamps),
	    cmocka_unit_test(retry_after_reads_the_three_http_date_forms),
	    cmocka_unit_test(retry_after_refuses_malformed),
	    cmocka_unit_test(link_finds_urls_by_rel),
	    cmocka_unit_test(link_handles_rel_lists_case_and_other_params),
	    cmocka_unit_test(link_refuses_malformed_values),
	    cmocka_unit_test(link_bounds_count_and_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
