/* Certificate chains as the CA returns them: PEM parsing, facts about the leaf,
 * conversion to PKCS#7 certs-only (RFC 5652 SignedData without signers; what EST
 * and the draft's "Accept: application/pkcs7-mime" ask for). */
#ifndef ACMERA_PKI_CERT_H
#define ACMERA_PKI_CERT_H

#include "base/err.h"

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#define CHAIN_MAX_CERTS 16

/* Parses a PEM chain (leaf first). Refuses anything but CERTIFICATE blocks
 * (text around them is allowed), zero certificates or more than CHAIN_MAX_CERTS.
 * *out is a new stack owned by the caller (sk_X509_pop_free(chain, X509_free)). */
int chain_parse_pem(const char *pem, size_t len, STACK_OF(X509) * *out, struct acmera_errmsg *e);
/* The same without decoding the keys (pki/keyless.h): X509_get0_pubkey() of each
 * certificate is NULL (unless OpenSSL could not make the keyless context; then
 * this parses as chain_parse_pem). For chains whose keys are only compared. */
int chain_parse_pem_keyless(const char *pem, size_t len, STACK_OF(X509) * *out,
                            struct acmera_errmsg *e);
/* The inverse: PEM text of every certificate, in order (heap string). */
char *chain_to_pem(STACK_OF(X509) * chain);

/* PKCS#7 certs-only, DER encoded (heap, free()). */
int pkcs7_certs_only_der(STACK_OF(X509) * chain, uint8_t **der, size_t *len,
                         struct acmera_errmsg *e);
/* The same from a PEM chain acmera stored (leaf first), without parsing the
 * certificates (each block must be a CERTIFICATE holding one DER SEQUENCE);
 * skip_first leaves the leaf out (the CA chain of an issued chain). */
int pkcs7_certs_only_from_pem(const char *pem, size_t len, int skip_first, uint8_t **der,
                              size_t *der_len, struct acmera_errmsg *e);
/* Reads a PKCS#7 certs-only structure (DER) back into a stack, leaf first as
 * found. Bounded like chain_parse_pem. */
int pkcs7_certs_only_parse(const uint8_t *der, size_t len, STACK_OF(X509) * *out,
                           struct acmera_errmsg *e);
/* The same without decoding the keys, as chain_parse_pem_keyless. */
int pkcs7_certs_only_parse_keyless(const uint8_t *der, size_t len, STACK_OF(X509) * *out,
                                   struct acmera_errmsg *e);

/* notAfter of cert as Unix time. */
int cert_not_after(X509 *cert, int64_t *out);
/* One-line RFC 2253 issuer / subject names (heap strings). */
char *cert_issuer_line(X509 *cert);
char *cert_subject_line(X509 *cert);
/* 1 if the issuer DN of any certificate in chain, or the subject DN of the last,
 * contains needle (case-insensitive): how an operator picks an alternate chain
 * ("ISRG Root X1"). The leaf's subject is not looked at: every alternate has it. */
int chain_matches_issuer(STACK_OF(X509) * chain, const char *needle);
/* The dNSName SANs of cert, lower case (heap strings in *names, count in *n; free
 * each and the array). */
int cert_dns_names(X509 *cert, char ***names, size_t *n);

#endif
