/* PKCS#7 certs-only: the "degenerate" SignedData of RFC 5652 section 5 with no
 * signers and no content, used by EST (RFC 7030 section 4.1.3) to carry a chain. */
#include "pki/cert.h"
#include "pki/keyless.h"

#include <openssl/err.h>
#include <openssl/pkcs7.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* 16 certificates of a few KiB each. */
#define PKCS7_MAX_DER (1024 * 1024)

static const char *ossl_why(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_error());
	ERR_clear_error();
	return r ? r : "unknown reason";
}

int pkcs7_certs_only_der(STACK_OF(X509) * chain, uint8_t **der, size_t *len,
                         struct acmera_errmsg *e)
{
	unsigned char *enc = NULL;
	int rc = 0;
	*der = NULL;
	*len = 0;
	int n = chain ? sk_X509_num(chain) : 0;
	if (n <= 0 || n > CHAIN_MAX_CERTS)
		return acmera_fail(e, ACMERA_ERR_INVAL, "chain has %d certificates, not 1..%d", n,
		                   CHAIN_MAX_CERTS);
	PKCS7 *p7 = PKCS7_new();
	if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
	    !PKCS7_content_new(p7, NID_pkcs7_data)) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "cannot build PKCS#7: %s", ossl_why());
		goto out;
	}
	/* eContentType id-data without eContent: detached, nothing was signed. */
	PKCS7_set_detached(p7, 1);
	for (int i = 0; i < n; i++) {
		if (!PKCS7_add_certificate(p7, sk_X509_value(chain, i))) {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "cannot add certificate: %s",
			                 ossl_why());
			goto out;
		}
	}
	int enc_len = i2d_PKCS7(p7, &enc);
	if (enc_len <= 0) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "cannot encode PKCS#7: %s", ossl_why());
		goto out;
	}
	*der = malloc((size_t)enc_len);
	if (!*der) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(*der, enc, (size_t)enc_len);
	*len = (size_t)enc_len;
out:
	OPENSSL_free(enc);
	PKCS7_free(p7);
	return rc;
}

/* ctx NULL: the default library context. */
static int parse(const uint8_t *der, size_t len, OSSL_LIB_CTX *ctx, STACK_OF(X509) * *out,
                 struct acmera_errmsg *e)
{
	STACK_OF(X509) *chain = NULL;
	PKCS7 *p7 = NULL;
	int rc = 0;
	*out = NULL;
	if (len == 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "PKCS#7 is empty");
	if (len > PKCS7_MAX_DER)
		return acmera_fail(e, ACMERA_ERR_INVAL, "PKCS#7 is %zu bytes, more than %d", len,
		                   PKCS7_MAX_DER);
	const unsigned char *p = der;
	p7 = ctx ? (PKCS7 *)ASN1_item_d2i_ex(NULL, &p, (long)len, ASN1_ITEM_rptr(PKCS7), ctx, NULL)
	         : d2i_PKCS7(NULL, &p, (long)len);
	if (!p7) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "not PKCS#7: %s", ossl_why());
		goto out;
	}
	if (p != der + len) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "PKCS#7 has %zu trailing bytes",
		                 (size_t)(der + len - p));
		goto out;
	}
	if (!PKCS7_type_is_signed(p7) || !p7->d.sign) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "PKCS#7 is not SignedData");
		goto out;
	}
	STACK_OF(X509) *certs = p7->d.sign->cert;
	int n = certs ? sk_X509_num(certs) : 0;
	if (n <= 0 || n > CHAIN_MAX_CERTS) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "PKCS#7 holds %d certificates, not 1..%d", n,
		                 CHAIN_MAX_CERTS);
		goto out;
	}
	chain = sk_X509_new_reserve(NULL, n);
	if (!chain) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		X509 *x = sk_X509_value(certs, i);
		if (!sk_X509_push(chain, x)) {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
		/* The stack now holds a reference of its own. */
		X509_up_ref(x);
	}
	*out = chain;
	chain = NULL;
out:
	sk_X509_pop_free(chain, X509_free);
	PKCS7_free(p7);
	return rc;
}

int pkcs7_certs_only_parse(const uint8_t *der, size_t len, STACK_OF(X509) * *out,
                           struct acmera_errmsg *e)
{
	return parse(der, len, NULL, out, e);
}

int pkcs7_certs_only_parse_keyless(const uint8_t *der, size_t len, STACK_OF(X509) * *out,
                                   struct acmera_errmsg *e)
{
	return parse(der, len, pki_keyless_libctx(), out, e);
}
