/* Parsing certificates and CSRs whose keys acmera does not need decoded, and
 * comparing public keys by their encoding.
 *
 * OpenSSL 3.0 builds a provider key decoder for every certificate and CSR it
 * parses, which is most of a d2i_X509 (about 0.2 ms of 0.23). In the library
 * context below only the null provider is loaded, so that attempt ends at once
 * and the key stays undecoded: X509_get0_pubkey() gives NULL, while names,
 * dates, extensions and re-encoding work as usual. */
#ifndef ACMERA_PKI_KEYLESS_H
#define ACMERA_PKI_KEYLESS_H

#include <openssl/types.h>
#include <openssl/x509.h>

/* The process's keyless library context (made once, thread-safe; NULL when
 * OpenSSL could not make it, and then callers parse as usual). */
OSSL_LIB_CTX *pki_keyless_libctx(void);

/* 1 when a and b hold the same public key, 0 when not or unreadable. Equal
 * encodings decide at once; otherwise both are decoded and compared, so that a
 * key re-encoded (an EC point compressed, say) still matches. */
int pki_spki_equal(const X509_PUBKEY *a, const X509_PUBKEY *b);

/* The key of pub (caller frees), or NULL when it is not a usable key. EC keys on
 * P-256, P-384 and P-521 and Ed25519/Ed448 keys are built straight from their
 * encoded points (a copy of a key holding the curve, with the point set: 7 us
 * for P-256, against 105 for the decoder, with the same point validation); other
 * kinds (RSA) go through the decoder. */
EVP_PKEY *pki_spki_key(const X509_PUBKEY *pub);

#endif
