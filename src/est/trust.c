/* Trust anchors of a profile and the verification of a client's chain, plus the
 * identity a name template may use from the client certificate. */
#include "est/auth.h"

#include "base/buf.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRUST_MAX_FILE (4 * 1024 * 1024)
#define TRUST_MAX_CERTS 1000
/* Device chains are short: IDevID, perhaps one or two manufacturer CAs. */
#define CHAIN_MAX 16
#define SUBJECT_SHOWN_MAX 200

struct est_trust {
	X509_STORE *store;
};

static const char *ossl_why(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());
	ERR_clear_error();
	return r ? r : "unknown reason";
}

/* The whole file, at most TRUST_MAX_FILE bytes, as a memory BIO. */
static int read_bundle(const char *path, BIO **bio, struct acmera_errmsg *e)
{
	struct buf b = BUF_INIT;
	int rc = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
	for (;;) {
		char chunk[8192];
		size_t n = fread(chunk, 1, sizeof(chunk), f);
		if (b.len + n > TRUST_MAX_FILE) {
			rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: larger than %d bytes", path,
			                 TRUST_MAX_FILE);
			goto out;
		}
		if (n > 0 && buf_append(&b, chunk, n)) {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (n < sizeof(chunk))
			break;
	}
	if (ferror(f)) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: read error", path);
		goto out;
	}
	/* A read-only memory BIO does not copy; a read-write one owns its copy. */
	*bio = BIO_new(BIO_s_mem());
	if (!*bio || (b.len > 0 && BIO_write(*bio, b.data, (int)b.len) != (int)b.len)) {
		BIO_free(*bio);
		*bio = NULL;
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
out:
	buf_free(&b);
	fclose(f);
	return rc;
}

int est_trust_load(const char *pem_file, struct est_trust **out, struct acmera_errmsg *e)
{
	struct est_trust *t = NULL;
	X509 *x = NULL;
	BIO *bio = NULL;
	int n = 0;
	*out = NULL;
	int rc = read_bundle(pem_file, &bio, e);
	if (rc)
		return rc;
	t = calloc(1, sizeof(*t));
	if (!t || !(t->store = X509_STORE_new())) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Every certificate of the bundle is an anchor, a manufacturer's issuing CA
	 * as much as its root: the chain need not end in a self-signed one. */
	X509_STORE_set_flags(t->store, X509_V_FLAG_PARTIAL_CHAIN);
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (++n > TRUST_MAX_CERTS) {
			rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: more than %d certificates",
			                 pem_file, TRUST_MAX_CERTS);
			goto out;
		}
		if (X509_STORE_add_cert(t->store, x) != 1) {
			rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: certificate %d: %s", pem_file,
			                 n, ossl_why());
			goto out;
		}
		X509_free(x);
		x = NULL;
	}
	/* The loop ends at the end of the file or at a broken block. */
	unsigned long err = ERR_peek_last_error();
	if (ERR_GET_LIB(err) != ERR_LIB_PEM || ERR_GET_REASON(err) != PEM_R_NO_START_LINE) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: after %d certificates: %s", pem_file, n,
		                 ossl_why());
		goto out;
	}
	ERR_clear_error();
	if (n == 0) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: no PEM certificate", pem_file);
		goto out;
	}
	*out = t;
	t = NULL;
out:
	X509_free(x);
	est_trust_free(t);
	BIO_free(bio);
	return rc;
}

void est_trust_free(struct est_trust *t)
{
	if (!t)
		return;
	X509_STORE_free(t->store);
	free(t);
}

/* RFC 2253 subject of x for a message, printable ASCII only, bounded. */
static void subject_line(X509 *x, char *out, size_t outlen)
{
	out[0] = '\0';
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return;
	if (x && X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
		char *p;
		long n = BIO_get_mem_data(bio, &p);
		size_t k = n > 0 ? (size_t)n : 0;
		if (k > SUBJECT_SHOWN_MAX)
			k = SUBJECT_SHOWN_MAX;
		if (k >= outlen)
			k = outlen - 1;
		for (size_t i = 0; i < k; i++)
			out[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
		out[k] = '\0';
	}
	BIO_free(bio);
}

int est_trust_verify(struct est_trust *t, STACK_OF(X509) * chain, struct acmera_errmsg *e)
{
	STACK_OF(X509) *untrusted = NULL;
	X509_STORE_CTX *ctx = NULL;
	int rc = 0, n = chain ? sk_X509_num(chain) : 0;
	if (n <= 0)
		return acmera_fail(e, ACMERA_ERR_REFUSED, "no client certificate");
	if (n > CHAIN_MAX)
		return acmera_fail(e, ACMERA_ERR_REFUSED,
		                   "client certificate chain has %d certificates, more than %d", n,
		                   CHAIN_MAX);
	untrusted = sk_X509_new_null();
	ctx = X509_STORE_CTX_new();
	if (!untrusted || !ctx) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* The stack only borrows the certificates of chain. */
	for (int i = 1; i < n; i++)
		if (sk_X509_push(untrusted, sk_X509_value(chain, i)) <= 0) {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
	if (X509_STORE_CTX_init(ctx, t->store, sk_X509_value(chain, 0), untrusted) != 1) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "cannot verify: %s", ossl_why());
		goto out;
	}
	/* IDevIDs (IEEE 802.1AR) often carry no extended key usage. */
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
	if (X509_verify_cert(ctx) != 1) {
		char subj[SUBJECT_SHOWN_MAX + 1];
		int err = X509_STORE_CTX_get_error(ctx);
		subject_line(X509_STORE_CTX_get_current_cert(ctx), subj, sizeof(subj));
		rc = acmera_fail(e, ACMERA_ERR_REFUSED,
		                 "client certificate not trusted: %s (depth %d%s%s)",
		                 X509_verify_cert_error_string(err),
		                 X509_STORE_CTX_get_error_depth(ctx), subj[0] ? ", " : "", subj);
		ERR_clear_error();
	}
out:
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	return rc;
}

/* The UTF-8 of the subject's single entry of nid into out, or "" when there is
 * none, more than one (ambiguous), it does not fit, or it holds a control
 * character (C0, DEL or C1). */
static void subject_value(const X509_NAME *name, int nid, char *out, size_t outlen)
{
	unsigned char *utf8 = NULL;
	out[0] = '\0';
	int i = X509_NAME_get_index_by_NID(name, nid, -1);
	if (i < 0 || X509_NAME_get_index_by_NID(name, nid, i) >= 0)
		return;
	const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	int len = ASN1_STRING_to_UTF8(&utf8, s);
	if (len <= 0 || (size_t)len >= outlen)
		goto out;
	for (int k = 0; k < len; k++) {
		unsigned char c = utf8[k];
		if (c < 0x20 || c == 0x7f)
			goto out;
		/* U+0080..U+009F are C2 80..C2 9F in UTF-8. */
		if (c == 0xc2 && k + 1 < len && utf8[k + 1] >= 0x80 && utf8[k + 1] <= 0x9f)
			goto out;
	}
	memcpy(out, utf8, (size_t)len);
	out[len] = '\0';
out:
	ERR_clear_error();
	OPENSSL_free(utf8);
}

void est_identity_from_cert(X509 *cert, struct est_identity *id)
{
	id->cn[0] = '\0';
	id->serial_number[0] = '\0';
	if (!cert)
		return;
	const X509_NAME *subj = X509_get_subject_name(cert);
	subject_value(subj, NID_commonName, id->cn, sizeof(id->cn));
	subject_value(subj, NID_serialNumber, id->serial_number, sizeof(id->serial_number));
}
