/* Checks an issued chain against the device's CSR. See chain_check.h. */
#include "issuer/chain_check.h"

#include "pki/cert.h"
#include "pki/csr.h"

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
					 "the CA's certificate lacks the CSR's name %s", csr->names[i]);
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

int issued_chain_from_response(const struct acme_response *resp, const uint8_t *csr_der,
			       size_t csr_len, struct issued_chain *out, struct acmera_errmsg *e)
{
	struct csr_info csr = {0};
	int rc;
	memset(out, 0, sizeof(*out));
	if (is_pkcs7(resp))
		rc = pkcs7_certs_only_parse(resp->body.data, resp->body.len, &out->certs, e);
	else
		rc = chain_parse_pem(buf_str(&resp->body), resp->body.len, &out->certs, e);
	if (rc) {
		acmera_fail_wrap(e, rc, "certificate from the CA");
		goto out;
	}
	rc = csr_parse_der(csr_der, csr_len, &csr, e);
	if (rc)
		goto out;
	X509 *leaf = sk_X509_value(out->certs, 0);
	if (EVP_PKEY_eq(X509_get0_pubkey(leaf), X509_REQ_get0_pubkey(csr.req)) != 1) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL,
				 "the CA's certificate carries another key than the CSR");
		goto out;
	}
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
