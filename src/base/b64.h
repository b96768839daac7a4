/* Base64 (RFC 4648 section 4) and base64url without padding (section 5, as JOSE
 * and ACME use it). */
#ifndef ACMERA_BASE_B64_H
#define ACMERA_BASE_B64_H

#include <stddef.h>
#include <stdint.h>

/* Encodes; returns a NUL-terminated heap string (free()), or NULL on ENOMEM.
 * line_len > 0 breaks lines every line_len characters with "\n" (e.g. 64 for EST
 * bodies and PEM), the last line included; 0 gives one line and no "\n". */
char *b64_encode(const uint8_t *p, size_t n, size_t line_len);
char *b64url_encode(const uint8_t *p, size_t n);

/* Decodes base64 as RFC 8951 asks a receiver to: whitespace (space, tab, CR, LF)
 * anywhere is ignored, padding is optional, and any other character outside the
 * alphabet is an error. Returns 0 and a heap buffer (*out, free()), or
 * ACMERA_ERR_INVAL (with the offset of the bad character in *bad_at if given). */
int b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen, size_t *bad_at);
/* Decodes base64url strictly: no padding, no whitespace. */
int b64url_decode(const char *s, size_t n, uint8_t **out, size_t *outlen);

#endif
