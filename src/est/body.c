/* EST bodies: base64 of DER (RFC 7030 section 4, as RFC 8951 section 3 clarifies:
 * Content-Transfer-Encoding is ignored, line breaks are optional). */
#include "est/body.h"

#include "base/b64.h"
#include "pki/cert.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A CSR or a CMC request is a few KiB; a body far beyond that is an attack. */
#define EST_BODY_MAX (256 * 1024)

static const char B64_ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int est_body_decode(const uint8_t *body, size_t len, uint8_t **der, size_t *der_len,
                    struct acmera_errmsg *e)
{
	*der = NULL;
	*der_len = 0;
	if (len > EST_BODY_MAX)
		return acmera_fail(e, ACMERA_ERR_INVAL, "body is %zu bytes, more than %d", len,
		                   EST_BODY_MAX);
	size_t bad = 0;
	int rc = b64_decode((const char *)body, len, der, der_len, &bad);
	if (rc == ACMERA_ERR_NOMEM)
		return acmera_fail(e, rc, "out of memory");
	if (rc) {
		if (bad >= len)
			return acmera_fail(e, ACMERA_ERR_INVAL, "body is not base64");
		unsigned char c = body[bad];
		if (c == '=' || (c != '\0' && strchr(B64_ALPHABET, c)))
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "body is not base64: incomplete group or misplaced "
			                   "padding at offset %zu",
			                   bad);
		if (c >= 0x21 && c < 0x7f)
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "body is not base64: '%c' at offset %zu", c, bad);
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "body is not base64: byte 0x%02x at offset %zu", c, bad);
	}
	if (*der_len == 0) {
		free(*der);
		*der = NULL;
		return acmera_fail(e, ACMERA_ERR_INVAL, "body is empty");
	}
	return 0;
}

int est_body_pkcs7(STACK_OF(X509) * chain, char **body, size_t *len, struct acmera_errmsg *e)
{
	uint8_t *der = NULL;
	size_t der_len = 0;
	*body = NULL;
	*len = 0;
	int rc = pkcs7_certs_only_der(chain, &der, &der_len, e);
	if (rc)
		return rc;
	*body = b64_encode(der, der_len, 64);
	free(der);
	if (!*body)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	*len = strlen(*body);
	return 0;
}

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* The media type of a Content-Type value: the text before any ';', without the
 * whitespace around it. */
static void media_type(const char *s, const char **start, size_t *n)
{
	while (is_ows(*s))
		s++;
	size_t k = strcspn(s, ";");
	while (k > 0 && (is_ows(s[k - 1]) || s[k - 1] == '\r' || s[k - 1] == '\n'))
		k--;
	*start = s;
	*n = k;
}

int est_content_type_is(const char *header, const char *mime)
{
	if (!header || !mime)
		return 0;
	const char *h, *m;
	size_t hn, mn;
	media_type(header, &h, &hn);
	media_type(mime, &m, &mn);
	return hn > 0 && hn == mn && strncasecmp(h, m, hn) == 0;
}
