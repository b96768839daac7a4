/* /serverkeygen (RFC 7030 4.4, RFC 8951 4): the RA makes the device's key. Keys
 * are kept in memory, keyed by the digest of the device's request, until their
 * certificate is collected or an hour passes, so that the retry after a 202
 * gets the same key and joins the same job. They are never written to disk: a
 * restart of the RA makes a new key at the next retry. */
#ifndef ACMERA_EST_SERVERKEYGEN_H
#define ACMERA_EST_SERVERKEYGEN_H

#include "base/err.h"
#include "est/client.h"

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

struct est_keygen_cache;

int est_keygen_cache_new(struct est_keygen_cache **out, struct acmera_errmsg *e);
void est_keygen_cache_free(struct est_keygen_cache *c);

/* The key and the RA's CSR (subject CN and dNSName name) for the request with
 * digest req_digest: made at the first call, the same afterwards. Both outputs
 * are heap copies (the key DER is PKCS#8: wipe before free). Thread-safe. */
int est_keygen_get(struct est_keygen_cache *c, const char *req_digest,
                   const struct est_key_spec *spec, const char *name, uint8_t **csr_der,
                   size_t *csr_len, uint8_t **key_der, size_t *key_len, struct acmera_errmsg *e);
/* Forgets the key of req_digest (its certificate was delivered). */
void est_keygen_forget(struct est_keygen_cache *c, const char *req_digest);

/* The multipart/mixed answer: the PKCS#8 key (application/pkcs8) and the
 * certificate chain (application/pkcs7-mime; smime-type=certs-only), each base64.
 * *content_type is the header value with the boundary (heap). */
int est_serverkeygen_body(const uint8_t *key_der, size_t key_len, STACK_OF(X509) * chain,
                          char **body, size_t *len, char **content_type, struct acmera_errmsg *e);

#endif
