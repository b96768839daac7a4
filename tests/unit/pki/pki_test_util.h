/* Keys, CSRs and certificates made with OpenSSL for the pki unit tests. Every
 * helper fails the running test on error, so callers need no checks. */
#ifndef ACMERA_TESTS_PKI_TEST_UTIL_H
#define ACMERA_TESTS_PKI_TEST_UTIL_H

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stddef.h>
#include <stdint.h>

enum tu_key_type { TU_EC_P256, TU_RSA_2048, TU_ED25519 };

EVP_PKEY *tu_key(enum tu_key_type type);

/* A request with subject O=Acme,CN=cn (cn may be NULL) and, when san is not NULL,
 * a subjectAltName from an OpenSSL config string such as "DNS:a.example,IP:192.0.2.1". */
X509_REQ *tu_req_new(EVP_PKEY *key, const char *cn, const char *san);
/* Adds an extension from an OpenSSL config string, e.g. NID_key_usage, "digitalSignature". */
void tu_req_add_ext(X509_REQ *req, int nid, const char *value);
/* Adds a subjectAltName holding the given names to a request without one. */
void tu_req_add_gens(X509_REQ *req, GENERAL_NAMES *gens);
void tu_req_sign(X509_REQ *req, EVP_PKEY *key);
/* DER of req (heap, free()). */
void tu_req_der(X509_REQ *req, uint8_t **der, size_t *len);
/* tu_req_new + tu_req_sign + tu_req_der. */
void tu_csr(EVP_PKEY *key, const char *cn, const char *san, uint8_t **der, size_t *len);

/* A certificate for subject CN=cn with key, signed by issuer/issuer_key (self-signed
 * when issuer is NULL), valid until not_after (Unix time), with an optional SAN. */
X509 *tu_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int64_t not_after,
              const char *san);

/* Writes bytes to a new temporary file; returns its path (heap; unlink and free). */
char *tu_temp_file(const void *data, size_t len);

#endif
