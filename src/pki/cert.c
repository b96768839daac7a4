#include "pki/cert.h"

#include "base/buf.h"
#include "pki/keyless.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 16 certificates of a few KiB each, with room for text between the blocks. */
#define CHAIN_MAX_PEM (1024 * 1024)

static const char *ossl_why(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_error());
	ERR_clear_error();
	return r ? r : "unknown reason";
}

/* The end of the input is where PEM_read_bio_ex finds no further BEGIN line. */
static int pem_input_ended(void)
{
	unsigned long err = ERR_peek_last_error();
	int ended = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
	if (ended)
		ERR_clear_error();
	return ended;
}

/* One certificate from a decoded CERTIFICATE block: all bytes must be used. */
static X509 *cert_from_der(const unsigned char *der, long len, OSSL_LIB_CTX *ctx,
                           struct acmera_errmsg *e)
{
	const unsigned char *p = der;
	X509 *x = ctx ? (X509 *)ASN1_item_d2i_ex(NULL, &p, len, ASN1_ITEM_rptr(X509), ctx, NULL)
	              : d2i_X509(NULL, &p, len);
	if (!x) {
		acmera_fail(e, ACMERA_ERR_INVAL, "not an X.509 certificate: %s", ossl_why());
		return NULL;
	}
	if (p != der + len) {
		acmera_fail(e, ACMERA_ERR_INVAL, "certificate has trailing bytes");
		X509_free(x);
		return NULL;
	}
	return x;
}

static int read_cert_blocks(BIO *bio, STACK_OF(X509) * chain, OSSL_LIB_CTX *ctx,
                            struct acmera_errmsg *e)
{
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		long len = 0;
		X509 *x = NULL;
		int rc = 0;
		if (!PEM_read_bio_ex(bio, &name, &header, &data, &len, PEM_FLAG_EAY_COMPATIBLE)) {
			if (pem_input_ended())
				return 0;
			return acmera_fail(e, ACMERA_ERR_INVAL, "bad PEM block %d: %s",
			                   sk_X509_num(chain) + 1, ossl_why());
		}
		if (strcmp(name, PEM_STRING_X509) != 0)
			rc = acmera_fail(e, ACMERA_ERR_INVAL,
			                 "PEM block %d is \"%.40s\", not a "
			                 "CERTIFICATE",
			                 sk_X509_num(chain) + 1, name);
		else if (header[0])
			rc = acmera_fail(e, ACMERA_ERR_INVAL, "PEM block %d has headers",
			                 sk_X509_num(chain) + 1);
		else if (sk_X509_num(chain) == CHAIN_MAX_CERTS)
			rc = acmera_fail(e, ACMERA_ERR_INVAL, "more than %d certificates",
			                 CHAIN_MAX_CERTS);
		else if (!(x = cert_from_der(data, len, ctx, e)))
			rc = acmera_fail_wrap(e, ACMERA_ERR_INVAL, "PEM block %d",
			                      sk_X509_num(chain) + 1);
		else if (!sk_X509_push(chain, x))
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		if (rc)
			X509_free(x);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		if (rc)
			return rc;
	}
}

/* ctx NULL: the default library context. */
static int parse_pem(const char *pem, size_t len, OSSL_LIB_CTX *ctx, STACK_OF(X509) * *out,
                     struct acmera_errmsg *e)
{
	BIO *bio = NULL;
	STACK_OF(X509) *chain = NULL;
	int rc;
	*out = NULL;
	if (len > CHAIN_MAX_PEM)
		return acmera_fail(e, ACMERA_ERR_INVAL, "PEM chain is %zu bytes, more than %d", len,
		                   CHAIN_MAX_PEM);
	chain = sk_X509_new_null();
	bio = BIO_new_mem_buf(len ? pem : "", (int)len);
	if (!chain || !bio) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = read_cert_blocks(bio, chain, ctx, e);
	if (rc)
		goto out;
	if (sk_X509_num(chain) == 0) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "no CERTIFICATE in PEM chain");
		goto out;
	}
	*out = chain;
	chain = NULL;
out:
	sk_X509_pop_free(chain, X509_free);
	BIO_free(bio);
	return rc;
}

int chain_parse_pem(const char *pem, size_t len, STACK_OF(X509) * *out, struct acmera_errmsg *e)
{
	return parse_pem(pem, len, NULL, out, e);
}

int chain_parse_pem_keyless(const char *pem, size_t len, STACK_OF(X509) * *out,
                            struct acmera_errmsg *e)
{
	return parse_pem(pem, len, pki_keyless_libctx(), out, e);
}

/* The bytes written to a memory BIO, as a heap string. */
static char *bio_string(BIO *bio)
{
	char *p = NULL;
	long n = BIO_get_mem_data(bio, &p);
	if (n < 0)
		return NULL;
	return strndup(n > 0 ? p : "", (size_t)n);
}

char *chain_to_pem(STACK_OF(X509) * chain)
{
	char *pem = NULL;
	if (!chain)
		return NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return NULL;
	for (int i = 0; i < sk_X509_num(chain); i++)
		if (!PEM_write_bio_X509(bio, sk_X509_value(chain, i)))
			goto out;
	pem = bio_string(bio);
out:
	BIO_free(bio);
	return pem;
}

int cert_not_after(X509 *cert, int64_t *out)
{
	const ASN1_TIME *t = X509_get0_notAfter(cert);
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!t || !ASN1_TIME_to_tm(t, &tm)) {
		ERR_clear_error();
		return ACMERA_ERR_INVAL;
	}
	time_t u = timegm(&tm);
	if (u == (time_t)-1)
		return ACMERA_ERR_INVAL;
	*out = (int64_t)u;
	return 0;
}

static char *name_line(const X509_NAME *name)
{
	char *line = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return NULL;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0)
		line = bio_string(bio);
	BIO_free(bio);
	return line;
}

char *cert_issuer_line(X509 *cert)
{
	return name_line(X509_get_issuer_name(cert));
}

char *cert_subject_line(X509 *cert)
{
	return name_line(X509_get_subject_name(cert));
}

static int line_contains(char *line, const char *needle)
{
	int found = line && strcasestr(line, needle) != NULL;
	free(line);
	return found;
}

/* Issuers of all certificates and the subject of the last: the leaf's subject is
 * the same in every alternate chain, so it must not decide between them. */
int chain_matches_issuer(STACK_OF(X509) * chain, const char *needle)
{
	int n = chain ? sk_X509_num(chain) : 0;
	if (!needle || n <= 0)
		return 0;
	for (int i = 0; i < n; i++)
		if (line_contains(cert_issuer_line(sk_X509_value(chain, i)), needle))
			return 1;
	return line_contains(cert_subject_line(sk_X509_value(chain, n - 1)), needle);
}

static void free_names(char **names, size_t n)
{
	if (!names)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int cert_dns_names(X509 *cert, char ***names, size_t *n)
{
	int crit = -1;
	char **list = NULL;
	size_t count = 0;
	int rc = 0;
	*names = NULL;
	*n = 0;
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (!gens) {
		ERR_clear_error();
		/* -1: no SAN at all; otherwise it is repeated or malformed. */
		return crit == -1 ? 0 : ACMERA_ERR_INVAL;
	}
	int total = sk_GENERAL_NAME_num(gens);
	list = calloc(total > 0 ? (size_t)total : 1, sizeof(*list));
	if (!list) {
		rc = ACMERA_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < total; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		if (gn->type != GEN_DNS)
			continue;
		const unsigned char *raw = ASN1_STRING_get0_data(gn->d.dNSName);
		int len = ASN1_STRING_length(gn->d.dNSName);
		/* An embedded NUL would make the C string say less than the certificate. */
		if (len < 0 || memchr(raw, '\0', (size_t)len)) {
			rc = ACMERA_ERR_INVAL;
			goto out;
		}
		char *s = strndup((const char *)raw, (size_t)len);
		if (!s) {
			rc = ACMERA_ERR_NOMEM;
			goto out;
		}
		for (char *c = s; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		list[count++] = s;
	}
	*names = list;
	*n = count;
	list = NULL;
out:
	free_names(list, count);
	GENERAL_NAMES_free(gens);
	return rc;
}
