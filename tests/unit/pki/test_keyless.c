/* pki/keyless.h: parsing without keys, keys made from their encoding, and keys
 * compared by encoding. */
#include "pki/keyless.h"
#include "pki_test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

/* X509_PUBKEY of key, as a certificate or CSR carries it (caller frees). */
static X509_PUBKEY *spki_of(EVP_PKEY *key)
{
	X509_PUBKEY *p = NULL;
	assert_int_equal(X509_PUBKEY_set(&p, key), 1);
	return p;
}

/* The same encoding, parsed again without decoding the key. */
static X509_PUBKEY *reparsed_keyless(const X509_PUBKEY *p, int flip_last_byte)
{
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(p, &der);
	assert_true(len > 0);
	if (flip_last_byte)
		der[len - 1] ^= 0x01;
	const unsigned char *q = der;
	X509_PUBKEY *out = (X509_PUBKEY *)ASN1_item_d2i_ex(
	    NULL, &q, len, ASN1_ITEM_rptr(X509_PUBKEY), pki_keyless_libctx(), NULL);
	assert_non_null(out);
	OPENSSL_free(der);
	return out;
}

static void key_is_made_from_its_encoding_for_each_kind(void **state)
{
	(void)state;
	EVP_PKEY *keys[] = {tu_key(TU_EC_P256), EVP_EC_gen("P-384"), EVP_EC_gen("P-521"),
	                    tu_key(TU_ED25519), tu_key(TU_RSA_2048)};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		assert_non_null(keys[i]);
		X509_PUBKEY *p = spki_of(keys[i]);
		X509_PUBKEY *k = reparsed_keyless(p, 0);
		EVP_PKEY *made = pki_spki_key(k);
		assert_non_null(made);
		assert_int_equal(EVP_PKEY_eq(made, keys[i]), 1);
		EVP_PKEY_free(made);
		X509_PUBKEY_free(k);
		X509_PUBKEY_free(p);
		EVP_PKEY_free(keys[i]);
	}
}

/* The fast path checks the point as the decoder does: off the curve, no key. */
static void ec_point_off_the_curve_gives_no_key(void **state)
{
	(void)state;
	EVP_PKEY *key = tu_key(TU_EC_P256);
	X509_PUBKEY *p = spki_of(key);
	X509_PUBKEY *bad = reparsed_keyless(p, 1);
	EVP_PKEY *made = pki_spki_key(bad);
	assert_null(made);
	assert_null(pki_spki_key(NULL));
	X509_PUBKEY_free(bad);
	X509_PUBKEY_free(p);
	EVP_PKEY_free(key);
}

static void keys_compare_by_encoding_and_by_value(void **state)
{
	(void)state;
	EVP_PKEY *a = tu_key(TU_EC_P256), *b = tu_key(TU_EC_P256);
	EVP_PKEY *ac = EVP_PKEY_dup(a);
	assert_non_null(ac);
	assert_int_equal(EVP_PKEY_set_utf8_string_param(
	                     ac, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
	                 1);
	X509_PUBKEY *pa = spki_of(a), *pb = spki_of(b), *pac = spki_of(ac);
	X509_PUBKEY *ka = reparsed_keyless(pa, 0);
	assert_int_equal(pki_spki_equal(pa, ka), 1);
	assert_int_equal(pki_spki_equal(ka, pac), 1); /* other bytes, same key */
	assert_int_equal(pki_spki_equal(pa, pb), 0);
	assert_int_equal(pki_spki_equal(pa, NULL), 0);
	X509_PUBKEY_free(ka);
	X509_PUBKEY_free(pac);
	X509_PUBKEY_free(pb);
	X509_PUBKEY_free(pa);
	EVP_PKEY_free(ac);
	EVP_PKEY_free(b);
	EVP_PKEY_free(a);
}

static void certificate_parsed_keyless_has_no_key_but_its_encoding(void **state)
{
	(void)state;
	EVP_PKEY *key = tu_key(TU_EC_P256);
	X509 *cert = tu_cert("x.example", key, NULL, NULL, 1893456000, "DNS:x.example");
	unsigned char *der = NULL;
	int len = i2d_X509(cert, &der);
	assert_true(len > 0);
	const unsigned char *p = der;
	X509 *x = (X509 *)ASN1_item_d2i_ex(NULL, &p, len, ASN1_ITEM_rptr(X509),
	                                   pki_keyless_libctx(), NULL);
	assert_non_null(x);
	assert_null(X509_get0_pubkey(x));
	assert_int_equal(X509_cmp(x, cert), 0);
	assert_int_equal(pki_spki_equal(X509_get_X509_PUBKEY(x), X509_get_X509_PUBKEY(cert)), 1);
	X509_free(x);
	OPENSSL_free(der);
	X509_free(cert);
	EVP_PKEY_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(key_is_made_from_its_encoding_for_each_kind),
	    cmocka_unit_test(ec_point_off_the_curve_gives_no_key),
	    cmocka_unit_test(keys_compare_by_encoding_and_by_value),
	    cmocka_unit_test(certificate_parsed_keyless_has_no_key_but_its_encoding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
