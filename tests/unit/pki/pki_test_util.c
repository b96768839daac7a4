#include "pki_test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

EVP_PKEY *tu_key(enum tu_key_type type)
{
	EVP_PKEY *k = NULL;
	switch (type) {
	case TU_EC_P256:
		k = EVP_EC_gen("P-256");
		break;
	case TU_RSA_2048:
		k = EVP_RSA_gen(2048);
		break;
	case TU_ED25519:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	}
	assert_non_null(k);
	return k;
}

static void add_name(X509_NAME *name, const char *field, const char *value)
{
	assert_int_equal(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
	                                            (const unsigned char *)value, -1, -1, 0),
	                 1);
}

static void add_exts(X509_REQ *req, X509_EXTENSION *ext)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	assert_non_null(exts);
	assert_true(sk_X509_EXTENSION_push(exts, ext) > 0);
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

X509_REQ *tu_req_new(EVP_PKEY *key, const char *cn, const char *san)
{
	X509_REQ *req = X509_REQ_new();
	assert_non_null(req);
	assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
	X509_NAME *name = X509_REQ_get_subject_name(req);
	add_name(name, "O", "Acme");
	if (cn)
		add_name(name, "CN", cn);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	if (san)
		tu_req_add_ext(req, NID_subject_alt_name, san);
	return req;
}

void tu_req_add_ext(X509_REQ *req, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, nid, value);
	assert_non_null(ext);
	add_exts(req, ext);
}

void tu_req_add_gens(X509_REQ *req, GENERAL_NAMES *gens)
{
	X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
	assert_non_null(ext);
	add_exts(req, ext);
}

/* Ed25519 takes no separate digest. */
static const EVP_MD *md_for(EVP_PKEY *key)
{
	return EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
}

void tu_req_sign(X509_REQ *req, EVP_PKEY *key)
{
	assert_true(X509_REQ_sign(req, key, md_for(key)) > 0);
}

void tu_req_der(X509_REQ *req, uint8_t **der, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_X509_REQ(req, &p);
	assert_true(n > 0);
	*der = malloc((size_t)n);
	assert_non_null(*der);
	memcpy(*der, p, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(p);
}

void tu_csr(EVP_PKEY *key, const char *cn, const char *san, uint8_t **der, size_t *len)
{
	X509_REQ *req = tu_req_new(key, cn, san);
	tu_req_sign(req, key);
	tu_req_der(req, der, len);
	X509_REQ_free(req);
}

X509 *tu_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int64_t not_after,
              const char *san)
{
	static long serial = 1;
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	X509_NAME *name = X509_get_subject_name(x);
	add_name(name, "O", "Acme");
	add_name(name, "CN", cn);
	assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), 1600000000));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (san) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		assert_non_null(ext);
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	EVP_PKEY *signer = issuer ? issuer_key : key;
	assert_true(X509_sign(x, signer, md_for(signer)) > 0);
	return x;
}

char *tu_temp_file(const void *data, size_t len)
{
	char *path = strdup("/tmp/acmera-pki-test-XXXXXX");
	assert_non_null(path);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}
