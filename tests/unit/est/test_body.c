/* EST bodies: base64 as RFC 8951 asks a receiver to read it, the PKCS#7
 * certs-only response body, and Content-Type matching. */
#include "est/body.h"
#include "base/b64.h"
#include "pki/cert.h"
#include "../pki/pki_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T_2051 2556144000 /* 2051-01-01T00:00:00Z */

static uint8_t *csr_der;
static size_t csr_len;

static int setup(void **state)
{
	EVP_PKEY *key = tu_key(TU_EC_P256);
	tu_csr(key, "dev1.iot.example.com", "DNS:dev1.iot.example.com", &csr_der, &csr_len);
	EVP_PKEY_free(key);
	return 0;
}

static int teardown(void **state)
{
	free(csr_der);
	return 0;
}

/* The base64 of the CSR with a break (sep) every line_len characters, and
 * final_break after the last line. */
static char *csr_b64(size_t line_len, const char *sep, int final_break)
{
	char *one = b64_encode(csr_der, csr_len, 0);
	assert_non_null(one);
	size_t n = strlen(one), seplen = strlen(sep);
	char *out = malloc(n + (n / line_len + 2) * seplen + 1);
	assert_non_null(out);
	size_t o = 0;
	for (size_t i = 0; i < n; i += line_len) {
		size_t k = n - i < line_len ? n - i : line_len;
		memcpy(out + o, one + i, k);
		o += k;
		if (i + k < n || final_break) {
			memcpy(out + o, sep, seplen);
			o += seplen;
		}
	}
	out[o] = '\0';
	free(one);
	return out;
}

static void expect_decodes_to_csr(const char *body)
{
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	int rc = est_body_decode((const uint8_t *)body, strlen(body), &der, &len, &e);
	if (rc)
		fail_msg("decode: %s", e.text);
	assert_int_equal(len, csr_len);
	assert_memory_equal(der, csr_der, len);
	free(der);
}

static void body_with_crlf_lines_decodes(void **state)
{
	char *b = csr_b64(64, "\r\n", 1);
	assert_non_null(strstr(b, "\r\n"));
	expect_decodes_to_csr(b);
	free(b);
}

static void body_without_final_newline_decodes(void **state)
{
	char *b = csr_b64(64, "\n", 0);
	assert_true(b[strlen(b) - 1] != '\n');
	expect_decodes_to_csr(b);
	free(b);
}

/* What a MIME base64 encoder sends with Content-Transfer-Encoding: base64 (76
 * characters, CRLF), and a client that sends one long line. */
static void body_in_mime_lines_or_one_line_decodes(void **state)
{
	char *b = csr_b64(76, "\r\n", 1);
	expect_decodes_to_csr(b);
	free(b);
	b = csr_b64(100000, "\n", 0);
	assert_null(strchr(b, '\n'));
	expect_decodes_to_csr(b);
	free(b);
}

static void expect_refused(const char *body, size_t len, const char *why)
{
	uint8_t *der = (uint8_t *)1;
	size_t dlen = 5;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(est_body_decode((const uint8_t *)body, len, &der, &dlen, &e),
	                 ACMERA_ERR_INVAL);
	assert_null(der);
	assert_int_equal(dlen, 0);
	if (!strstr(e.text, why))
		fail_msg("reason \"%s\" lacks \"%s\"", e.text, why);
}

static void body_with_a_bad_character_names_its_offset(void **state)
{
	expect_refused("MIIB\r\nZm9v*mFy\r\n", 16, "'*' at offset 10");
	expect_refused("Zm9vYmFy\r\n-----END", 19, "'-' at offset 10");
	expect_refused("Zm9v\0mFy", 8, "byte 0x00 at offset 4");
	expect_refused("Zm9v\xc3\xa9mFy", 9, "byte 0xc3 at offset 4");
}

static void body_with_broken_groups_or_nothing_is_refused(void **state)
{
	expect_refused("Zm9vY", 5, "incomplete group or misplaced padding at offset 4");
	expect_refused("Zm9v=mFy", 8, "offset 4");
	expect_refused("", 0, "empty");
	expect_refused(" \r\n\t\r\n", 6, "empty");
}

static void body_over_256k_is_refused(void **state)
{
	size_t n = 256 * 1024 + 4;
	char *b = malloc(n);
	assert_non_null(b);
	memset(b, 'A', n);
	expect_refused(b, n, "more than");
	free(b);
}

static STACK_OF(X509) * test_chain(void)
{
	EVP_PKEY *key = tu_key(TU_EC_P256);
	X509 *root = tu_cert("Test Root", key, NULL, NULL, T_2051, NULL);
	X509 *leaf =
	    tu_cert("dev1.iot.example.com", key, root, key, T_2051, "DNS:dev1.iot.example.com");
	STACK_OF(X509) *chain = sk_X509_new_null();
	assert_non_null(chain);
	assert_true(sk_X509_push(chain, leaf) > 0);
	assert_true(sk_X509_push(chain, root) > 0);
	EVP_PKEY_free(key);
	return chain;
}

static void pkcs7_body_has_64_char_lines_and_reads_back_as_the_chain(void **state)
{
	STACK_OF(X509) *chain = test_chain(), *back = NULL;
	char *body = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(est_body_pkcs7(chain, &body, &len, &e), 0);
	assert_int_equal(len, strlen(body));
	assert_null(strchr(body, '\r'));
	assert_int_equal(body[len - 1], '\n');
	size_t lines = 0;
	for (const char *p = body; *p; lines++) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		size_t l = (size_t)(nl - p);
		if (nl[1] != '\0')
			assert_int_equal(l, 64);
		else
			assert_true(l > 0 && l <= 64);
		p = nl + 1;
	}
	assert_true(lines > 2);

	uint8_t *der = NULL;
	size_t der_len = 0;
	assert_int_equal(est_body_decode((const uint8_t *)body, len, &der, &der_len, &e), 0);
	assert_int_equal(pkcs7_certs_only_parse(der, der_len, &back, &e), 0);
	assert_int_equal(sk_X509_num(back), 2);
	assert_int_equal(X509_cmp(sk_X509_value(back, 0), sk_X509_value(chain, 0)), 0);
	assert_int_equal(X509_cmp(sk_X509_value(back, 1), sk_X509_value(chain, 1)), 0);
	free(der);
	free(body);
	sk_X509_pop_free(back, X509_free);
	sk_X509_pop_free(chain, X509_free);
}

static void pkcs7_body_of_an_empty_chain_is_refused(void **state)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	char *body = (char *)1;
	size_t len = 3;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(est_body_pkcs7(chain, &body, &len, &e), ACMERA_ERR_INVAL);
	assert_null(body);
	assert_int_equal(len, 0);
	sk_X509_free(chain);
}

static void content_type_matches_the_media_type_only(void **state)
{
	assert_true(est_content_type_is("application/pkcs10", EST_CT_PKCS10));
	assert_true(est_content_type_is("Application/PKCS10; charset=x", EST_CT_PKCS10));
	assert_true(est_content_type_is("  application/pkcs10 ;charset=x", EST_CT_PKCS10));
	assert_true(est_content_type_is("application/pkcs10\t", EST_CT_PKCS10));
	assert_true(est_content_type_is("application/pkcs7-mime", EST_CT_PKCS7));
	assert_true(
	    est_content_type_is("application/pkcs7-mime; smime-type=certs-only", EST_CT_PKCS7));
	assert_true(est_content_type_is("APPLICATION/CSRATTRS", EST_CT_CSRATTRS));

	assert_false(est_content_type_is("application/pkcs10x", EST_CT_PKCS10));
	assert_false(est_content_type_is("application/pkcs1", EST_CT_PKCS10));
	assert_false(est_content_type_is("application/pkcs8", EST_CT_PKCS10));
	assert_false(est_content_type_is("text/plain; x=application/pkcs10", EST_CT_PKCS10));
	assert_false(est_content_type_is("", EST_CT_PKCS10));
	assert_false(est_content_type_is("; application/pkcs10", EST_CT_PKCS10));
	assert_false(est_content_type_is(NULL, EST_CT_PKCS10));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(body_with_crlf_lines_decodes),
	    cmocka_unit_test(body_without_final_newline_decodes),
	    cmocka_unit_test(body_in_mime_lines_or_one_line_decodes),
	    cmocka_unit_test(body_with_a_bad_character_names_its_offset),
	    cmocka_unit_test(body_with_broken_groups_or_nothing_is_refused),
	    cmocka_unit_test(body_over_256k_is_refused),
	    cmocka_unit_test(pkcs7_body_has_64_char_lines_and_reads_back_as_the_chain),
	    cmocka_unit_test(pkcs7_body_of_an_empty_chain_is_refused),
	    cmocka_unit_test(content_type_matches_the_media_type_only),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
