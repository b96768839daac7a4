/* Certificate chains: PEM parsing and printing, PKCS#7 certs-only, leaf facts. */
#include "pki/cert.h"
#include "pki_test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_2030 1893456000 /* 2030-01-01T00:00:00Z: UTCTime */
#define T_2051 2556144000 /* 2051-01-01T00:00:00Z: GeneralizedTime */

static EVP_PKEY *key;
static X509 *root, *inter, *leaf;

static int pki_setup(void **state)
{
	key = tu_key(TU_EC_P256);
	root = tu_cert("ISRG Root X1", key, NULL, NULL, T_2051, NULL);
	inter = tu_cert("R3", key, root, key, T_2051, NULL);
	leaf = tu_cert("dev1.iot.example.com", key, inter, key, T_2030,
	               "DNS:Dev1.IoT.example.com,IP:192.0.2.1,DNS:alt.example.com");
	return 0;
}

static int pki_teardown(void **state)
{
	X509_free(leaf);
	X509_free(inter);
	X509_free(root);
	EVP_PKEY_free(key);
	return 0;
}

static STACK_OF(X509) * stack_of(X509 *const *certs, int n)
{
	STACK_OF(X509) *s = sk_X509_new_null();
	assert_non_null(s);
	for (int i = 0; i < n; i++) {
		assert_true(sk_X509_push(s, certs[i]) > 0);
		X509_up_ref(certs[i]);
	}
	return s;
}

static void chain_free(STACK_OF(X509) * s)
{
	sk_X509_pop_free(s, X509_free);
}

static char *pem_of(X509 *x)
{
	STACK_OF(X509) *s = stack_of(&x, 1);
	char *pem = chain_to_pem(s);
	assert_non_null(pem);
	chain_free(s);
	return pem;
}

static void expect_pem_refused(const char *pem, const char *want)
{
	STACK_OF(X509) *out = (STACK_OF(X509) *)1;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(chain_parse_pem(pem, strlen(pem), &out, &e), ACMERA_ERR_INVAL);
	assert_null(out);
	if (!strstr(e.text, want))
		fail_msg("error \"%s\" does not mention \"%s\"", e.text, want);
}

static void chain_pem_round_trips_in_order(void **state)
{
	X509 *certs[] = {leaf, inter};
	STACK_OF(X509) *in = stack_of(certs, 2);
	char *pem = chain_to_pem(in);
	assert_non_null(pem);
	assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE-----"));

	STACK_OF(X509) *out = NULL;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(chain_parse_pem(pem, strlen(pem), &out, &e), 0);
	assert_int_equal(sk_X509_num(out), 2);
	assert_int_equal(X509_cmp(sk_X509_value(out, 0), leaf), 0);
	assert_int_equal(X509_cmp(sk_X509_value(out, 1), inter), 0);
	char *again = chain_to_pem(out);
	assert_string_equal(again, pem);
	free(again);
	chain_free(out);
	chain_free(in);
	free(pem);
}

static void chain_pem_allows_text_and_crlf_between_blocks(void **state)
{
	char *a = pem_of(leaf), *b = pem_of(inter);
	char text[16384];
	/* CRLF line endings, as some servers send. */
	size_t o = (size_t)snprintf(text, sizeof(text), "subject=CN = dev1\r\n");
	for (const char *p = a; *p; p++) {
		if (*p == '\n')
			text[o++] = '\r';
		text[o++] = *p;
	}
	snprintf(text + o, sizeof(text) - o, "\nissuer: R3\n%s\ntrailer", b);
	STACK_OF(X509) *out = NULL;
	struct acmera_errmsg e = {{0}};
	if (chain_parse_pem(text, strlen(text), &out, &e) != 0)
		fail_msg("%s", e.text);
	assert_int_equal(sk_X509_num(out), 2);
	assert_int_equal(X509_cmp(sk_X509_value(out, 0), leaf), 0);
	chain_free(out);
	free(a);
	free(b);
}

static void chain_pem_with_private_key_block_is_refused(void **state)
{
	char *a = pem_of(leaf);
	BIO *bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
	char *k;
	long kn = BIO_get_mem_data(bio, &k);
	char text[16384];
	snprintf(text, sizeof(text), "%s%.*s", a, (int)kn, k);
	expect_pem_refused(text, "PEM block 2 is \"PRIVATE KEY\", not a CERTIFICATE");
	BIO_free(bio);
	free(a);
}

static void chain_pem_with_no_certificate_is_refused(void **state)
{
	expect_pem_refused("", "no CERTIFICATE");
	expect_pem_refused("just some text\n", "no CERTIFICATE");
	STACK_OF(X509) *out = NULL;
	assert_int_equal(chain_parse_pem(NULL, 0, &out, NULL), ACMERA_ERR_INVAL);
	assert_null(out);
}

static void chain_pem_of_16_is_accepted_and_17_refused(void **state)
{
	X509 *certs[CHAIN_MAX_CERTS + 1];
	for (int i = 0; i <= CHAIN_MAX_CERTS; i++)
		certs[i] = leaf;
	STACK_OF(X509) *s16 = stack_of(certs, CHAIN_MAX_CERTS);
	STACK_OF(X509) *s17 = stack_of(certs, CHAIN_MAX_CERTS + 1);
	char *p16 = chain_to_pem(s16), *p17 = chain_to_pem(s17);
	STACK_OF(X509) *out = NULL;
	assert_int_equal(chain_parse_pem(p16, strlen(p16), &out, NULL), 0);
	assert_int_equal(sk_X509_num(out), CHAIN_MAX_CERTS);
	chain_free(out);
	expect_pem_refused(p17, "more than 16 certificates");
	free(p16);
	free(p17);
	chain_free(s16);
	chain_free(s17);
}

static void chain_pem_truncated_or_corrupt_is_refused(void **state)
{
	char *a = pem_of(leaf);
	char *cut = strdup(a);
	assert_non_null(cut);
	cut[strlen(cut) / 2] = '\0';
	expect_pem_refused(cut, "bad PEM block 1");
	free(cut);

	/* A byte appended to the DER inside the block. */
	unsigned char *der = NULL;
	int n = i2d_X509(leaf, &der);
	assert_true(n > 0);
	unsigned char *more = OPENSSL_realloc(der, (size_t)n + 1);
	assert_non_null(more);
	more[n] = 0;
	BIO *bio = BIO_new(BIO_s_mem());
	assert_true(PEM_write_bio(bio, "CERTIFICATE", "", more, n + 1) > 0);
	char *p;
	long pn = BIO_get_mem_data(bio, &p);
	char *text = strndup(p, (size_t)pn);
	expect_pem_refused(text, "trailing bytes");
	free(text);
	BIO_free(bio);
	OPENSSL_free(more);

	/* Something that is base64 but not a certificate. */
	expect_pem_refused("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	                   "not an X.509 certificate");
	free(a);
}

static void chain_pem_oversize_is_refused(void **state)
{
	size_t n = 1024 * 1024 + 1;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'x', n);
	big[n] = '\0';
	STACK_OF(X509) *out = NULL;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(chain_parse_pem(big, n, &out, &e), ACMERA_ERR_INVAL);
	assert_non_null(strstr(e.text, "more than"));
	free(big);
}

static void pkcs7_certs_only_round_trips_without_signers_or_content(void **state)
{
	X509 *certs[] = {leaf, inter, root};
	STACK_OF(X509) *in = stack_of(certs, 3);
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(pkcs7_certs_only_der(in, &der, &len, &e), 0);

	const unsigned char *p = der;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	assert_non_null(p7);
	assert_ptr_equal(p, der + len);
	assert_true(PKCS7_type_is_signed(p7));
	assert_int_equal(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
	assert_true(PKCS7_type_is_data(p7->d.sign->contents));
	assert_null(p7->d.sign->contents->d.data);
	assert_null(p7->d.sign->crl);
	PKCS7_free(p7);

	STACK_OF(X509) *out = NULL;
	assert_int_equal(pkcs7_certs_only_parse(der, len, &out, &e), 0);
	assert_int_equal(sk_X509_num(out), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(X509_cmp(sk_X509_value(out, i), certs[i]), 0);
	chain_free(out);
	chain_free(in);
	free(der);
}

/* The PEM path must give exactly the bytes OpenSSL's encoder gives. */
static void pkcs7_from_pem_equals_the_encoder_byte_for_byte(void **state)
{
	X509 *certs[] = {leaf, inter, root};
	struct acmera_errmsg e = {{0}};
	for (int skip = 0; skip <= 1; skip++) {
		STACK_OF(X509) *in = stack_of(certs, 3);
		char *pem = chain_to_pem(in);
		assert_non_null(pem);
		if (skip)
			X509_free(sk_X509_shift(in));
		uint8_t *want = NULL, *got = NULL;
		size_t want_len = 0, got_len = 0;
		assert_int_equal(pkcs7_certs_only_der(in, &want, &want_len, &e), 0);
		assert_int_equal(
		    pkcs7_certs_only_from_pem(pem, strlen(pem), skip, &got, &got_len, &e), 0);
		assert_int_equal(got_len, want_len);
		assert_memory_equal(got, want, want_len);
		free(want);
		free(got);
		free(pem);
		chain_free(in);
	}
	/* One certificate, and text around the blocks. */
	STACK_OF(X509) *one = stack_of(certs, 1);
	char *pem = chain_to_pem(one);
	char text[8192];
	snprintf(text, sizeof(text), "leaf:\n%s\ntrailer\n", pem);
	uint8_t *want = NULL, *got = NULL;
	size_t want_len = 0, got_len = 0;
	assert_int_equal(pkcs7_certs_only_der(one, &want, &want_len, &e), 0);
	assert_int_equal(pkcs7_certs_only_from_pem(text, strlen(text), 0, &got, &got_len, &e), 0);
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
	free(got);
	got = NULL;
	/* Leaving out the only certificate leaves nothing. */
	assert_int_equal(pkcs7_certs_only_from_pem(pem, strlen(pem), 1, &got, &got_len, &e),
	                 ACMERA_ERR_INVAL);
	free(want);
	free(pem);
	chain_free(one);
}

static void pkcs7_from_pem_refuses_other_blocks(void **state)
{
	struct acmera_errmsg e = {{0}};
	uint8_t *der = NULL;
	size_t len = 0;
	const char *key_pem = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";
	assert_int_equal(pkcs7_certs_only_from_pem(key_pem, strlen(key_pem), 0, &der, &len, &e),
	                 ACMERA_ERR_INVAL);
	/* A CERTIFICATE block whose content is not one DER SEQUENCE. */
	const char *junk = "-----BEGIN CERTIFICATE-----\nMAMCAQAA\n-----END CERTIFICATE-----\n";
	assert_int_equal(pkcs7_certs_only_from_pem(junk, strlen(junk), 0, &der, &len, &e),
	                 ACMERA_ERR_INVAL);
	assert_int_equal(pkcs7_certs_only_from_pem("", 0, 0, &der, &len, &e), ACMERA_ERR_INVAL);
	assert_null(der);
}

static void pkcs7_of_no_or_17_certificates_is_not_made(void **state)
{
	uint8_t *der = (uint8_t *)1;
	size_t len = 1;
	STACK_OF(X509) *s = sk_X509_new_null();
	assert_int_equal(pkcs7_certs_only_der(s, &der, &len, NULL), ACMERA_ERR_INVAL);
	assert_null(der);
	assert_int_equal(len, 0);
	sk_X509_free(s);
	X509 *certs[CHAIN_MAX_CERTS + 1];
	for (int i = 0; i <= CHAIN_MAX_CERTS; i++)
		certs[i] = leaf;
	s = stack_of(certs, CHAIN_MAX_CERTS + 1);
	assert_int_equal(pkcs7_certs_only_der(s, &der, &len, NULL), ACMERA_ERR_INVAL);
	chain_free(s);
}

static void expect_pkcs7_refused(const uint8_t *der, size_t len, const char *want)
{
	STACK_OF(X509) *out = (STACK_OF(X509) *)1;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(pkcs7_certs_only_parse(der, len, &out, &e), ACMERA_ERR_INVAL);
	assert_null(out);
	if (!strstr(e.text, want))
		fail_msg("error \"%s\" does not mention \"%s\"", e.text, want);
}

static void pkcs7_parse_refuses_trailing_bytes_other_types_and_empty(void **state)
{
	X509 *certs[] = {leaf};
	STACK_OF(X509) *in = stack_of(certs, 1);
	uint8_t *der = NULL;
	size_t len = 0;
	assert_int_equal(pkcs7_certs_only_der(in, &der, &len, NULL), 0);
	uint8_t *more = realloc(der, len + 1);
	assert_non_null(more);
	more[len] = 0;
	expect_pkcs7_refused(more, len + 1, "1 trailing bytes");
	expect_pkcs7_refused(more, len - 1, "not PKCS#7");
	expect_pkcs7_refused(more, 0, "empty");
	free(more);
	chain_free(in);

	/* A data ContentInfo is PKCS#7 but not SignedData. */
	PKCS7 *p7 = PKCS7_new();
	assert_int_equal(PKCS7_set_type(p7, NID_pkcs7_data), 1);
	unsigned char *enc = NULL;
	int n = i2d_PKCS7(p7, &enc);
	assert_true(n > 0);
	expect_pkcs7_refused(enc, (size_t)n, "not SignedData");
	OPENSSL_free(enc);
	PKCS7_free(p7);

	/* SignedData without certificates. */
	p7 = PKCS7_new();
	assert_int_equal(PKCS7_set_type(p7, NID_pkcs7_signed), 1);
	assert_int_equal(PKCS7_content_new(p7, NID_pkcs7_data), 1);
	enc = NULL;
	n = i2d_PKCS7(p7, &enc);
	assert_true(n > 0);
	expect_pkcs7_refused(enc, (size_t)n, "holds 0 certificates");
	OPENSSL_free(enc);
	PKCS7_free(p7);

	uint8_t *big = calloc(1, 1024 * 1024 + 1);
	assert_non_null(big);
	expect_pkcs7_refused(big, 1024 * 1024 + 1, "more than");
	free(big);
}

static void cert_not_after_reads_utc_and_generalized_time(void **state)
{
	int64_t t = 0;
	assert_int_equal(cert_not_after(leaf, &t), 0);
	assert_int_equal(t, T_2030);
	assert_int_equal(cert_not_after(root, &t), 0);
	assert_int_equal(t, T_2051);
}

static void cert_lines_are_rfc2253(void **state)
{
	char *s = cert_subject_line(leaf), *i = cert_issuer_line(leaf);
	assert_string_equal(s, "CN=dev1.iot.example.com,O=Acme");
	assert_string_equal(i, "CN=R3,O=Acme");
	free(s);
	free(i);
}

static void chain_matches_issuer_of_any_and_subject_of_last(void **state)
{
	X509 *certs[] = {leaf, inter};
	STACK_OF(X509) *s = stack_of(certs, 2);
	assert_int_equal(chain_matches_issuer(s, "isrg root x1"), 1);
	assert_int_equal(chain_matches_issuer(s, "CN=R3"), 1);
	/* The leaf's own subject is in every alternate chain: no match. */
	assert_int_equal(chain_matches_issuer(s, "dev1.iot"), 0);
	assert_int_equal(chain_matches_issuer(s, "Other Root"), 0);
	chain_free(s);

	s = stack_of(&leaf, 1);
	assert_int_equal(chain_matches_issuer(s, "ISRG"), 0);
	assert_int_equal(chain_matches_issuer(s, "r3"), 1);
	chain_free(s);

	X509 *top[] = {inter, root};
	s = stack_of(top, 2);
	assert_int_equal(chain_matches_issuer(s, "ISRG Root X1"), 1);
	chain_free(s);
	assert_int_equal(chain_matches_issuer(NULL, "x"), 0);
}

static void cert_dns_names_are_lower_case_dns_sans_only(void **state)
{
	char **names = NULL;
	size_t n = 99;
	assert_int_equal(cert_dns_names(leaf, &names, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "dev1.iot.example.com");
	assert_string_equal(names[1], "alt.example.com");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);

	assert_int_equal(cert_dns_names(root, &names, &n), 0);
	assert_int_equal(n, 0);
	free(names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(chain_pem_round_trips_in_order),
	    cmocka_unit_test(chain_pem_allows_text_and_crlf_between_blocks),
	    cmocka_unit_test(chain_pem_with_private_key_block_is_refused),
	    cmocka_unit_test(chain_pem_with_no_certificate_is_refused),
	    cmocka_unit_test(chain_pem_of_16_is_accepted_and_17_refused),
	    cmocka_unit_test(chain_pem_truncated_or_corrupt_is_refused),
	    cmocka_unit_test(chain_pem_oversize_is_refused),
	    cmocka_unit_test(pkcs7_certs_only_round_trips_without_signers_or_content),
	    cmocka_unit_test(pkcs7_of_no_or_17_certificates_is_not_made),
	    cmocka_unit_test(pkcs7_parse_refuses_trailing_bytes_other_types_and_empty),
	    cmocka_unit_test(cert_not_after_reads_utc_and_generalized_time),
	    cmocka_unit_test(cert_lines_are_rfc2253),
	    cmocka_unit_test(chain_matches_issuer_of_any_and_subject_of_last),
	    cmocka_unit_test(cert_dns_names_are_lower_case_dns_sans_only),
	    cmocka_unit_test(pkcs7_from_pem_equals_the_encoder_byte_for_byte),
	    cmocka_unit_test(pkcs7_from_pem_refuses_other_blocks),
	};
	return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
