/* The chain the CA sent back: parsed (PEM or PKCS#7), ordered leaf first, and
 * refused when its leaf does not carry exactly the CSR's key and names. */
#include "issuer/chain_check.h"
#include "../pki/pki_test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include <stdlib.h>
#include <string.h>

#define T_2030 1893456000 /* 2030-01-01T00:00:00Z */
#define T_2051 2556144000 /* 2051-01-01T00:00:00Z */

#define ROOT_CN "Acmera Test Root Certification Authority X1"
#define INTER_CN "Acmera Int 1"
#define LEAF_CN "dev1.iot.example.test"
#define LEAF_SAN "DNS:dev1.iot.example.test,DNS:alt.example.test"

static EVP_PKEY *root_key, *inter_key, *leaf_key, *other_key;
static X509 *root, *inter, *leaf;
static uint8_t *csr;
static size_t csr_len;

static int group_setup(void **state)
{
	(void)state;
	root_key = tu_key(TU_EC_P256);
	inter_key = tu_key(TU_EC_P256);
	leaf_key = tu_key(TU_EC_P256);
	other_key = tu_key(TU_EC_P256);
	root = tu_cert(ROOT_CN, root_key, NULL, NULL, T_2051, NULL);
	inter = tu_cert(INTER_CN, inter_key, root, root_key, T_2051, NULL);
	leaf = tu_cert(LEAF_CN, leaf_key, inter, inter_key, T_2030, LEAF_SAN);
	/* Upper case in the CSR: names compare without regard to case. */
	tu_csr(leaf_key, LEAF_CN, "DNS:Dev1.IoT.example.test,DNS:alt.example.test", &csr, &csr_len);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(csr);
	X509_free(leaf);
	X509_free(inter);
	X509_free(root);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(inter_key);
	EVP_PKEY_free(root_key);
	return 0;
}

/* PEM of the certificates in the order given, written by OpenSSL directly. */
static void pem_body(struct buf *b, X509 *const *certs, size_t n)
{
	BIO *bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(PEM_write_bio_X509(bio, certs[i]), 1);
	char *p = NULL;
	long len = BIO_get_mem_data(bio, &p);
	assert_true(len > 0);
	assert_int_equal(buf_append(b, p, (size_t)len), 0);
	BIO_free(bio);
}

static void response_init(struct acme_response *r, const char *content_type)
{
	memset(r, 0, sizeof(*r));
	r->status = 200;
	r->retry_after = -1;
	if (content_type) {
		r->content_type = strdup(content_type);
		assert_non_null(r->content_type);
	}
}

/* Frees what response_init and the body helpers allocated (r itself is on the stack). */
static void response_clear(struct acme_response *r)
{
	buf_free(&r->body);
	free(r->content_type);
	memset(r, 0, sizeof(*r));
}

static void pem_response(struct acme_response *r, X509 *const *certs, size_t n)
{
	response_init(r, "application/pem-certificate-chain");
	pem_body(&r->body, certs, n);
}

static void assert_chain_is(const struct issued_chain *c, X509 *const *want, int n)
{
	assert_non_null(c->certs);
	assert_int_equal(sk_X509_num(c->certs), n);
	for (int i = 0; i < n; i++)
		assert_int_equal(X509_cmp(sk_X509_value(c->certs, i), want[i]), 0);
}

static void pem_leaf_first_is_accepted_in_order(void **state)
{
	(void)state;
	X509 *order[] = {leaf, inter, root};
	struct acme_response r;
	struct issued_chain c;
	struct acmera_errmsg e = {{0}};
	pem_response(&r, order, 3);

	assert_int_equal(issued_chain_from_response(&r, csr, csr_len, &c, &e), 0);
	assert_chain_is(&c, order, 3);
	assert_int_equal(c.not_after, T_2030);
	assert_non_null(c.issuer);
	assert_non_null(strstr(c.issuer, "CN=" INTER_CN));
	assert_null(strstr(c.issuer, ROOT_CN));

	/* The stored PEM holds the whole chain, leaf first. */
	assert_non_null(c.pem);
	BIO *bio = BIO_new_mem_buf(c.pem, -1);
	assert_non_null(bio);
	for (int i = 0; i < 3; i++) {
		X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		assert_non_null(x);
		assert_int_equal(X509_cmp(x, order[i]), 0);
		X509_free(x);
	}
	assert_null(PEM_read_bio_X509(bio, NULL, NULL, NULL));
	BIO_free(bio);

	issued_chain_free(&c);
	assert_null(c.certs);
	assert_null(c.pem);
	response_clear(&r);
}

static void pem_in_any_order_comes_back_leaf_first(void **state)
{
	(void)state;
	X509 *sent[] = {root, leaf, inter};
	X509 *want[] = {leaf, inter, root};
	struct acme_response r;
	struct issued_chain c;
	pem_response(&r, sent, 3);

	assert_int_equal(issued_chain_from_response(&r, csr, csr_len, &c, NULL), 0);
	assert_chain_is(&c, want, 3);
	issued_chain_free(&c);
	response_clear(&r);
}

/* A certs-only SignedData; DER sorts the SET OF certificates by encoding, so the
 * order inside is what the lengths make it, checked by the caller. */
static void pkcs7_body(struct buf *b, X509 *const *certs, size_t n)
{
	PKCS7 *p7 = PKCS7_new();
	assert_non_null(p7);
	assert_int_equal(PKCS7_set_type(p7, NID_pkcs7_signed), 1);
	assert_int_equal(PKCS7_content_new(p7, NID_pkcs7_data), 1);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(PKCS7_add_certificate(p7, certs[i]), 1);
	unsigned char *der = NULL;
	int len = i2d_PKCS7(p7, &der);
	assert_true(len > 0);
	assert_int_equal(buf_append(b, der, (size_t)len), 0);
	OPENSSL_free(der);
	PKCS7_free(p7);
}

static void pkcs7_shuffled_comes_back_leaf_first(void **state)
{
	(void)state;
	X509 *sent[] = {inter, root, leaf};
	X509 *want[] = {leaf, inter, root};
	struct acme_response r;
	struct issued_chain c;
	struct acmera_errmsg e = {{0}};
	response_init(&r, "application/pkcs7-mime; smime-type=certs-only");
	pkcs7_body(&r.body, sent, 3);

	/* The premise: the body really holds the intermediate first and the leaf last. */
	const unsigned char *p = r.body.data;
	PKCS7 *check = d2i_PKCS7(NULL, &p, (long)r.body.len);
	assert_non_null(check);
	STACK_OF(X509) *inside = check->d.sign->cert;
	assert_int_equal(sk_X509_num(inside), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(X509_cmp(sk_X509_value(inside, i), sent[i]), 0);
	PKCS7_free(check);

	assert_int_equal(issued_chain_from_response(&r, csr, csr_len, &c, &e), 0);
	assert_chain_is(&c, want, 3);
	assert_int_equal(c.not_after, T_2030);
	assert_non_null(strstr(c.issuer, "CN=" INTER_CN));
	issued_chain_free(&c);
	response_clear(&r);
}

/* Expects a refusal with ACMERA_ERR_INVAL whose reason contains word, and out cleared. */
static void assert_refused(X509 *bad_leaf, const char *word)
{
	X509 *sent[] = {bad_leaf, inter, root};
	struct acme_response r;
	struct issued_chain c;
	struct acmera_errmsg e = {{0}};
	pem_response(&r, sent, 3);

	assert_int_equal(issued_chain_from_response(&r, csr, csr_len, &c, &e), ACMERA_ERR_INVAL);
	assert_non_null(strstr(e.text, word));
	assert_null(c.certs);
	assert_null(c.pem);
	assert_null(c.issuer);
	response_clear(&r);
}

/* The chain is parsed without decoding keys (pki/keyless.h): the leaf is found by
 * comparing key encodings, for PEM and PKCS#7 alike. */
static void chain_is_parsed_without_keys(void **state)
{
	(void)state;
	X509 *order[] = {leaf, inter};
	struct acme_response r;
	struct issued_chain c;
	pem_response(&r, order, 2);
	assert_int_equal(issued_chain_from_response(&r, csr, csr_len, &c, NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_null(X509_get0_pubkey(sk_X509_value(c.certs, i)));
	issued_chain_free(&c);
	response_clear(&r);
	response_init(&r, "application/pkcs7-mime");
	pkcs7_body(&r.body, order, 2);
	assert_int_equal(issued_chain_from_response(&r, csr, csr_len, &c, NULL), 0);
	assert_null(X509_get0_pubkey(sk_X509_value(c.certs, 0)));
	issued_chain_free(&c);
	response_clear(&r);
}

/* A CA may encode the CSR's EC key with the point compressed: other bytes, the
 * same key, still the leaf. */
static void leaf_with_the_key_reencoded_is_accepted(void **state)
{
	(void)state;
	EVP_PKEY *compressed = EVP_PKEY_dup(leaf_key);
	assert_non_null(compressed);
	assert_int_equal(EVP_PKEY_set_utf8_string_param(
	                     compressed, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
	                 1);
	X509 *cleaf = tu_cert(LEAF_CN, compressed, inter, inter_key, T_2030, LEAF_SAN);
	unsigned char *a = NULL, *b = NULL;
	int la = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cleaf), &a);
	int lb = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &b);
	assert_true(la > 0 && lb > 0 && la != lb); /* the premise: other bytes */
	OPENSSL_free(a);
	OPENSSL_free(b);
	X509 *sent[] = {inter, cleaf};
	X509 *want[] = {cleaf, inter};
	struct acme_response r;
	struct issued_chain c;
	pem_response(&r, sent, 2);
	assert_int_equal(issued_chain_from_response(&r, csr, csr_len, &c, NULL), 0);
	assert_chain_is(&c, want, 2);
	issued_chain_free(&c);
	response_clear(&r);
	X509_free(cleaf);
	EVP_PKEY_free(compressed);
}

static void leaf_with_another_key_is_refused(void **state)
{
	(void)state;
	X509 *bad = tu_cert(LEAF_CN, other_key, inter, inter_key, T_2030, LEAF_SAN);
	assert_refused(bad, "key");
	X509_free(bad);
}

static void leaf_lacking_a_csr_name_is_refused(void **state)
{
	(void)state;
	X509 *bad =
	    tu_cert(LEAF_CN, leaf_key, inter, inter_key, T_2030, "DNS:dev1.iot.example.test");
	assert_refused(bad, "alt.example.test");
	X509_free(bad);
}

static void leaf_with_an_extra_name_is_refused(void **state)
{
	(void)state;
	X509 *bad =
	    tu_cert(LEAF_CN, leaf_key, inter, inter_key, T_2030, LEAF_SAN ",DNS:evil.example.test");
	assert_refused(bad, "evil.example.test");
	X509_free(bad);
}

static void assert_not_a_chain(struct acme_response *r)
{
	struct issued_chain c;
	struct acmera_errmsg e = {{0}};
	int rc = issued_chain_from_response(r, csr, csr_len, &c, &e);
	assert_true(rc < 0);
	assert_true(e.text[0] != '\0');
	assert_null(c.certs);
	assert_null(c.pem);
	response_clear(r);
}

static void body_that_is_not_a_chain_is_refused(void **state)
{
	(void)state;
	struct acme_response r;
	static const char garbage[] = "<html>502 Bad Gateway</html>\n";

	response_init(&r, "application/pem-certificate-chain");
	assert_int_equal(buf_append_str(&r.body, garbage), 0);
	assert_not_a_chain(&r);

	response_init(&r, "application/pkcs7-mime");
	assert_int_equal(buf_append_str(&r.body, garbage), 0);
	assert_not_a_chain(&r);

	/* Empty body, no content type. */
	response_init(&r, NULL);
	assert_not_a_chain(&r);

	/* A PRIVATE KEY block where the certificates should be. */
	response_init(&r, "application/pem-certificate-chain");
	BIO *bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PrivateKey(bio, leaf_key, NULL, NULL, 0, NULL, NULL), 1);
	char *p = NULL;
	long len = BIO_get_mem_data(bio, &p);
	assert_true(len > 0);
	assert_int_equal(buf_append(&r.body, p, (size_t)len), 0);
	BIO_free(bio);
	assert_not_a_chain(&r);

	/* A PEM chain sent as PKCS#7 is not PKCS#7. */
	X509 *order[] = {leaf, inter, root};
	response_init(&r, "application/pkcs7-mime");
	pem_body(&r.body, order, 3);
	assert_not_a_chain(&r);
}

static void chain_matches_the_root_by_substring(void **state)
{
	(void)state;
	X509 *order[] = {leaf, inter, root};
	struct acme_response r;
	struct issued_chain c;
	pem_response(&r, order, 3);
	assert_int_equal(issued_chain_from_response(&r, csr, csr_len, &c, NULL), 0);

	assert_int_equal(issued_chain_matches(&c, "test ROOT certification"), 1);
	assert_int_equal(issued_chain_matches(&c, ROOT_CN), 1);
	assert_int_equal(issued_chain_matches(&c, "ISRG Root X1"), 0);
	/* The leaf's own subject says nothing about which chain this is. */
	assert_int_equal(issued_chain_matches(&c, LEAF_CN), 0);

	issued_chain_free(&c);
	assert_int_equal(issued_chain_matches(&c, ROOT_CN), 0);
	response_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pem_leaf_first_is_accepted_in_order),
	    cmocka_unit_test(pem_in_any_order_comes_back_leaf_first),
	    cmocka_unit_test(pkcs7_shuffled_comes_back_leaf_first),
	    cmocka_unit_test(leaf_with_another_key_is_refused),
	    cmocka_unit_test(chain_is_parsed_without_keys),
	    cmocka_unit_test(leaf_with_the_key_reencoded_is_accepted),
	    cmocka_unit_test(leaf_lacking_a_csr_name_is_refused),
	    cmocka_unit_test(leaf_with_an_extra_name_is_refused),
	    cmocka_unit_test(body_that_is_not_a_chain_is_refused),
	    cmocka_unit_test(chain_matches_the_root_by_substring),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
