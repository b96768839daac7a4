/* The Replay-Nonce pool. */
#include "acme/nonce.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

static int put_str(struct nonce_pool *p, const char *s)
{
	return nonce_pool_put(p, s, strlen(s));
}

static void nonce_pool_hands_out_newest_first_and_each_once(void **state)
{
	(void)state;
	struct nonce_pool p;
	char out[NONCE_MAX_LEN + 1];
	nonce_pool_init(&p);
	assert_int_equal(nonce_pool_size(&p), 0);
	assert_int_equal(nonce_pool_take(&p, out), -1);
	assert_int_equal(put_str(&p, "oFvnlFP1wIhRlYS2jTaXbA"), 0);
	assert_int_equal(put_str(&p, "Z7ngtCAtPQKu7uOHMyZUcw"), 0);
	assert_int_equal(nonce_pool_size(&p), 2);
	assert_int_equal(nonce_pool_take(&p, out), 0);
	assert_string_equal(out, "Z7ngtCAtPQKu7uOHMyZUcw");
	assert_int_equal(put_str(&p, "third-nonce_3"), 0);
	assert_int_equal(nonce_pool_take(&p, out), 0);
	assert_string_equal(out, "third-nonce_3");
	assert_int_equal(nonce_pool_take(&p, out), 0);
	assert_string_equal(out, "oFvnlFP1wIhRlYS2jTaXbA");
	assert_int_equal(nonce_pool_take(&p, out), -1);
	assert_int_equal(nonce_pool_size(&p), 0);
}

static void nonce_pool_refuses_non_base64url_and_bad_lengths(void **state)
{
	(void)state;
	struct nonce_pool p;
	char out[NONCE_MAX_LEN + 1];
	char big[NONCE_MAX_LEN + 2];
	nonce_pool_init(&p);
	const char *bad[] = {"",    "abc=",  "a b",   "a+b",
	                     "a/b", "abc\n", "ab\"c", "\xc3\xa9t\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(put_str(&p, bad[i]), -1);
	assert_int_equal(nonce_pool_put(&p, NULL, 3), -1);
	assert_int_equal(nonce_pool_put(&p, "ab\0cd", 5), -1);
	memset(big, 'A', sizeof(big));
	big[NONCE_MAX_LEN + 1] = '\0';
	assert_int_equal(put_str(&p, big), -1);
	assert_int_equal(nonce_pool_size(&p), 0);
	big[NONCE_MAX_LEN] = '\0';
	assert_int_equal(put_str(&p, big), 0);
	assert_int_equal(nonce_pool_take(&p, out), 0);
	assert_int_equal(strlen(out), NONCE_MAX_LEN);
}

static void nonce_pool_copies_exactly_len_bytes(void **state)
{
	(void)state;
	struct nonce_pool p;
	char out[NONCE_MAX_LEN + 1];
	nonce_pool_init(&p);
	/* A header value is not NUL-terminated where the nonce ends. */
	assert_int_equal(nonce_pool_put(&p, "abcdef\r\n", 6), 0);
	assert_int_equal(nonce_pool_put(&p, "xyz", 1), 0);
	assert_int_equal(nonce_pool_take(&p, out), 0);
	assert_string_equal(out, "x");
	assert_int_equal(nonce_pool_take(&p, out), 0);
	assert_string_equal(out, "abcdef");
}

static void nonce_pool_drops_the_oldest_when_full(void **state)
{
	(void)state;
	struct nonce_pool p;
	char buf[32], out[NONCE_MAX_LEN + 1];
	nonce_pool_init(&p);
	int total = NONCE_POOL_MAX + 44;
	for (int i = 0; i < total; i++) {
		snprintf(buf, sizeof(buf), "n%d", i);
		assert_int_equal(put_str(&p, buf), 0);
	}
	assert_int_equal(nonce_pool_size(&p), NONCE_POOL_MAX);
	for (int i = total - 1; i >= total - NONCE_POOL_MAX; i--) {
		snprintf(buf, sizeof(buf), "n%d", i);
		assert_int_equal(nonce_pool_take(&p, out), 0);
		assert_string_equal(out, buf);
	}
	assert_int_equal(nonce_pool_take(&p, out), -1);
	/* Still usable after wrapping and draining. */
	assert_int_equal(put_str(&p, "again"), 0);
	assert_int_equal(nonce_pool_take(&p, out), 0);
	assert_string_equal(out, "again");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(nonce_pool_hands_out_newest_first_and_each_once),
	    cmocka_unit_test(nonce_pool_refuses_non_base64url_and_bad_lengths),
	    cmocka_unit_test(nonce_pool_copies_exactly_len_bytes),
	    cmocka_unit_test(nonce_pool_drops_the_oldest_when_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
