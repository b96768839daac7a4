/* PKCS#10 certificate signing requests (RFC 2986) from devices: parsed, bounded,
 * their signature verified (proof of possession), their names read. */
#ifndef ACMERA_PKI_CSR_H
#define ACMERA_PKI_CSR_H

#include "base/err.h"

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#define CSR_MAX_DER 65536
#define CSR_MAX_NAMES 100

struct csr_info {
	X509_REQ *req; /* owned; parsed without its key (pki/keyless.h): use key */
	EVP_PKEY *key; /* the request's public key, owned; NULL from csr_parse_stored */
	uint8_t *der;  /* the exact bytes received, owned */
	size_t der_len;
	char sha256_hex[65];        /* SHA-256 of der, lower case hex: the cache and job key */
	char *names[CSR_MAX_NAMES]; /* dNSName SANs, lower case, without duplicates;
	                               the subject CN when there is no SAN extension */
	size_t n_names;
	char *subject; /* one-line RFC 2253 subject */
};

/* Parses DER; refuses trailing bytes, more than CSR_MAX_DER bytes or
 * CSR_MAX_NAMES names, a bad signature, and names that are not valid host names
 * (LDH labels, <= 253 characters; a leading "*." is kept for policy to judge). */
int csr_parse_der(const uint8_t *der, size_t len, struct csr_info *out, struct acmera_errmsg *e);
/* The same for a CSR acmera already took through csr_parse_der (a job's): its
 * signature is not checked again and out->key is NULL (X509_REQ_get_X509_PUBKEY
 * still gives the encoded key). */
int csr_parse_stored(const uint8_t *der, size_t len, struct csr_info *out, struct acmera_errmsg *e);
/* Reads a file holding one CSR in PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE
 * REQUEST") or DER. */
int csr_load_file(const char *path, struct csr_info *out, struct acmera_errmsg *e);
/* Comma-separated names, as stored with a job (heap string). */
char *csr_names_joined(const struct csr_info *c);
void csr_info_free(struct csr_info *c);

/* Lower-case hex SHA-256 of bytes into out[65]. */
void sha256_hex(const uint8_t *p, size_t n, char out[65]);

#endif
