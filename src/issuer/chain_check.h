/* What the CA sent back, checked before it is stored: a chain (PEM or PKCS#7
 * certs-only) whose leaf carries exactly the CSR's key and names. */
#ifndef ACMERA_ISSUER_CHAIN_CHECK_H
#define ACMERA_ISSUER_CHAIN_CHECK_H

#include "acme/client.h"
#include "base/err.h"

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

struct issued_chain {
	STACK_OF(X509) * certs; /* leaf first; keys not decoded (pki/keyless.h) */
	char *pem;              /* the chain as PEM, as stored */
	int64_t not_after;      /* of the leaf */
	char *issuer;           /* issuer line of the leaf */
};

/* Parses resp (application/pkcs7-mime, or PEM otherwise) and compares the leaf
 * with the CSR: same public key, same set of DNS names. ACMERA_ERR_INVAL with the
 * difference named when they disagree. */
int issued_chain_from_response(const struct acme_response *resp, const uint8_t *csr_der,
                               size_t csr_len, struct issued_chain *out, struct acmera_errmsg *e);
/* 1 when the chain's issuers mention want (case-insensitive). */
int issued_chain_matches(const struct issued_chain *c, const char *want);
void issued_chain_free(struct issued_chain *c);

#endif
