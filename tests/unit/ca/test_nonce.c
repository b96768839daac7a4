/* Unit tests of the CA's nonces: once only, own nonces only, bounded window. */
#include "ca/nonce.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void ca_nonce_is_accepted_once(void **state)
{
	struct ca_nonces *n = NULL;
	char a[CA_NONCE_LEN + 1], b[CA_NONCE_LEN + 1];
	(void)state;
	assert_int_equal(ca_nonces_new(0, &n, NULL), 0);
	assert_int_equal(ca_nonce_issue(n, a), 0);
	assert_int_equal(ca_nonce_issue(n, b), 0);
	assert_int_equal(strlen(a), CA_NONCE_LEN);
	assert_string_not_equal(a, b);
	assert_int_equal(ca_nonce_redeem(n, b), 0);
	assert_int_equal(ca_nonce_redeem(n, a), 0);
	assert_int_equal(ca_nonce_redeem(n, a), ACMERA_ERR_INVAL);
	assert_int_equal(ca_nonce_redeem(n, b), ACMERA_ERR_INVAL);
	ca_nonces_free(n);
}

static void ca_nonce_of_another_instance_or_altered_is_refused(void **state)
{
	struct ca_nonces *n = NULL, *m = NULL;
	char a[CA_NONCE_LEN + 1];
	(void)state;
	assert_int_equal(ca_nonces_new(64, &n, NULL), 0);
	assert_int_equal(ca_nonces_new(64, &m, NULL), 0);
	assert_int_equal(ca_nonce_issue(n, a), 0);
	assert_int_equal(ca_nonce_redeem(m, a), ACMERA_ERR_INVAL);
	char b[CA_NONCE_LEN + 1];
	memcpy(b, a, sizeof(b));
	b[CA_NONCE_LEN - 2] = b[CA_NONCE_LEN - 2] == 'A' ? 'B' : 'A';
	assert_int_equal(ca_nonce_redeem(n, b), ACMERA_ERR_INVAL);
	assert_int_equal(ca_nonce_redeem(n, ""), ACMERA_ERR_INVAL);
	assert_int_equal(ca_nonce_redeem(n, NULL), ACMERA_ERR_INVAL);
	assert_int_equal(ca_nonce_redeem(n, "not base64url!!!not base64url!!!"), ACMERA_ERR_INVAL);
	assert_int_equal(ca_nonce_redeem(n, a), 0);
	ca_nonces_free(n);
	ca_nonces_free(m);
}

static void ca_nonce_older_than_the_window_is_refused(void **state)
{
	struct ca_nonces *n = NULL;
	char first[CA_NONCE_LEN + 1], x[CA_NONCE_LEN + 1], last[CA_NONCE_LEN + 1];
	(void)state;
	assert_int_equal(ca_nonces_new(64, &n, NULL), 0);
	assert_int_equal(ca_nonce_issue(n, first), 0);
	for (int i = 0; i < 63; i++)
		assert_int_equal(ca_nonce_issue(n, x), 0);
	assert_int_equal(ca_nonce_issue(n, last), 0); /* 65th: first left the window */
	assert_int_equal(ca_nonce_redeem(n, first), ACMERA_ERR_INVAL);
	assert_int_equal(ca_nonce_redeem(n, x), 0);
	assert_int_equal(ca_nonce_redeem(n, last), 0);
	ca_nonces_free(n);
}

static void ca_nonce_window_must_be_a_power_of_two(void **state)
{
	struct ca_nonces *n = NULL;
	(void)state;
	assert_int_equal(ca_nonces_new(100, &n, NULL), ACMERA_ERR_INVAL);
	assert_null(n);
	assert_int_equal(ca_nonces_new(32, &n, NULL), ACMERA_ERR_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ca_nonce_is_accepted_once),
	    cmocka_unit_test(ca_nonce_of_another_instance_or_altered_is_refused),
	    cmocka_unit_test(ca_nonce_older_than_the_window_is_refused),
	    cmocka_unit_test(ca_nonce_window_must_be_a_power_of_two),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
