/* EST message bodies (RFC 7030 section 4, RFC 8951): base64 of DER in, base64 of
 * DER out. */
#ifndef ACMERA_EST_BODY_H
#define ACMERA_EST_BODY_H

#include "base/err.h"

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#define EST_CT_PKCS10 "application/pkcs10"
#define EST_CT_PKCS7 "application/pkcs7-mime; smime-type=certs-only"
#define EST_CT_CSRATTRS "application/csrattrs"
#define EST_CT_PKCS8 "application/pkcs8"

/* Decodes a request body the way RFC 8951 asks: base64 with or without line
 * breaks and final newline (Content-Transfer-Encoding is ignored). Error text says
 * which byte is wrong. *der is heap (free()). */
int est_body_decode(const uint8_t *body, size_t len, uint8_t **der, size_t *der_len,
                    struct acmera_errmsg *e);

/* The base64 body (64-character lines, CRLF-free "\n" breaks) of a PKCS#7
 * certs-only structure holding chain (heap string). */
int est_body_pkcs7(STACK_OF(X509) * chain, char **body, size_t *len, struct acmera_errmsg *e);

/* 1 when a Content-Type header value names mime (parameters and case ignored). */
int est_content_type_is(const char *header, const char *mime);

#endif
