/* Checks an issued chain against the device's CSR. See chain_check.h. */
#include "issuer/chain_check.h"

#include "pki/cert.h"
#include "pki/csr.h"
#include "pki/keyless.h"

#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_pkcs7(const struct acme_response *resp)
{
	const char *ct = resp->content_type;
	return ct && strncasecmp(ct, "application/pkcs7-mime", 22) == 0;
}

static int names_equal(X509 *leaf, const struct csr_info *csr, struct acmera_errmsg *e)
{
	char **names = NULL;
	size_t n = 0;
	int rc = 0;
	int got = cert_dns_names(leaf, &names, &n);
	if (got)
		return acmera_fail(e, got, "the CA's certificate has unreadable DNS names");
	for (size_t i = 0; i < csr->n_names && !rc; i++) {
		size_t j = 0;
		while (j < n && strcasecmp(names[j], csr->names[i]) != 0)
			j++;
		if (j == n)
			rc = acmera_fail(e, ACMERA_ERR_INVAL,
			                 "the CA's certificate lacks the CSR's name %s",
			                 csr->names[i]);
	}
	for (size_t j = 0; j < n && !rc; j++) {
		size_t i = 0;
		while (i < csr->n_names && strcasecmp(names[j], csr->names[i]) != 0)
			i++;
		if (i == csr->n_names)
			rc = acmera_fail(e, ACMERA_ERR_INVAL,
			                 "the CA's certificate adds a name %s not in the CSR",
			                 names[j]);
	}
	for (size_t j = 0; j < n; j++)
		free(names[j]);
	free(names);
	return rc;
}

/* The certificate carrying key: by encoding first (the usual case, no decoding at
 * all), then by value (the CA encoded the key otherwise); -1 when none. */
static int find_leaf(STACK_OF(X509) * certs, const X509_PUBKEY *key)
{
	unsigned char *want = NULL;
	int n = sk_X509_num(certs), leaf = -1, wlen = i2d_X509_PUBKEY(key, &want);
	for (int i = 0; i < n && leaf < 0 && wlen > 0; i++) {
		unsigned char *der = NULL;
		int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(sk_X509_value(certs, i)), &der);
		if (len == wlen && memcmp(der, want, (size_t)len) == 0)
			leaf = i;
		OPENSSL_free(der);
	}
	OPENSSL_free(want);
	for (int i = 0; i < n && leaf < 0; i++)
		if (pki_spki_equal(X509_get_X509_PUBKEY(sk_X509_value(certs, i)), key))
			leaf = i;
	return leaf;
}

/* Puts the certificate of key first and each issuer after its subject: a PKCS#7
 * SET need not keep the CA's order. Certificates that chain to nothing stay at the
 * end as they came. Returns -1 when no certificate carries key. */
static int order_chain(STACK_OF(X509) * certs, const X509_PUBKEY *key)
{
	int n = sk_X509_num(certs), leaf = find_leaf(certs, key);
	if (leaf < 0)
		return -1;
	X509 *tmp = sk_X509_value(certs, 0);
	sk_X509_set(certs, 0, sk_X509_value(certs, leaf));
	sk_X509_set(certs, leaf, tmp);
	for (int pos = 1; pos < n; pos++) {
		X509 *prev = sk_X509_value(certs, pos - 1);
		for (int j = pos; j < n; j++) {
			X509 *cand = sk_X509_value(certs, j);
			if (X509_NAME_cmp(X509_get_subject_name(cand),
			                  X509_get_issuer_name(prev)) == 0) {
				sk_X509_set(certs, j, sk_X509_value(certs, pos));
				sk_X509_set(certs, pos, cand);
				break;
			}
		}
	}
	return 0;
}

int issued_chain_from_response(const struct acme_response *resp, const uint8_t *csr_der,
                               size_t csr_len, struct issued_chain *out, struct acmera_errmsg *e)
{
	struct csr_info csr = {0};
	int rc;
	memset(out, 0, sizeof(*out));
	if (is_pkcs7(resp))
		rc =
		    pkcs7_certs_only_parse_keyless(resp->body.data, resp->body.len, &out->certs, e);
	else
		rc = chain_parse_pem_keyless(buf_str(&resp->body), resp->body.len, &out->certs, e);
	if (rc) {
		acmera_fail_wrap(e, rc, "certificate from the CA");
		goto out;
	}
	/* The job's CSR, verified when it was taken. */
	rc = csr_parse_stored(csr_der, csr_len, &csr, e);
	if (rc)
		goto out;
	if (order_chain(out->certs, X509_REQ_get_X509_PUBKEY(csr.req)) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL,
		                 "the CA's certificate carries another key than the CSR");
		goto out;
	}
	X509 *leaf = sk_X509_value(out->certs, 0);
	rc = names_equal(leaf, &csr, e);
	if (rc)
		goto out;
	out->pem = chain_to_pem(out->certs);
	out->issuer = cert_issuer_line(leaf);
	if (!out->pem || !out->issuer) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (cert_not_after(leaf, &out->not_after)) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "the CA's certificate has no valid notAfter");
		goto out;
	}
out:
	csr_info_free(&csr);
	if (rc)
		issued_chain_free(out);
	return rc;
}

int issued_chain_matches(const struct issued_chain *c, const char *want)
{
	return c->certs && chain_matches_issuer(c->certs, want);
}

void issued_chain_free(struct issued_chain *c)
{
	if (c->certs)
		sk_X509_pop_free(c->certs, X509_free);
	free(c->pem);
	free(c->issuer);
	memset(c, 0, sizeof(*c));
}
