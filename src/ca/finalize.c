/* Finalization (RFC 8555 7.4): the CSR checked against the order and the key policy,
 * then issued at once; and the certificate download (7.4.2), PEM or, as the draft's
 * EST flow asks, PKCS#7 certs-only. */
#include "ca/internal.h"
#include "ca/signer.h"

#include "base/b64.h"
#include "base/log.h"
#include "pki/cert.h"
#include "pki/csr.h"

#include <openssl/objects.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSR_B64_MAX ((CSR_MAX_DER / 3 + 1) * 4)

/* The order of the signing account; 0, or answered. */
static int own_order(struct ca_ctx *c, const char *id, struct ca_order *o)
{
	struct acmera_errmsg e = {{0}};
	int rc = ca_store_order_get(c->st, id, o, &e);
	if (rc == ACMERA_ERR_NOTFOUND || (rc == 0 && strcmp(o->account, c->acct.id) != 0)) {
		ca_order_free(o);
		ca_reply_problem(c->rs, 404, "malformed", NULL, "no such order");
		return -1;
	}
	if (rc)
		ca_reply_store_error(c->rs, rc, &e);
	return rc;
}

/* The key kinds [ca] key_types accepts; 1 when allowed. */
static int key_allowed(const struct ca_service *s, EVP_PKEY *k, char *why, size_t why_len)
{
	if (!k) {
		snprintf(why, why_len, "no public key");
		return 0;
	}
	if (EVP_PKEY_is_a(k, "RSA")) {
		int bits = EVP_PKEY_get_bits(k);
		if (s->allow_rsa && bits >= 2048 && bits <= 8192)
			return 1;
		snprintf(why, why_len, "RSA %d-bit keys are not accepted", bits);
		return 0;
	}
	if (EVP_PKEY_is_a(k, "ED25519")) {
		if (s->allow_ed25519)
			return 1;
		snprintf(why, why_len, "Ed25519 keys are not accepted");
		return 0;
	}
	if (EVP_PKEY_is_a(k, "EC")) {
		char group[64] = "";
		size_t glen = 0;
		EVP_PKEY_get_group_name(k, group, sizeof(group), &glen);
		int nid = OBJ_sn2nid(group);
		if (nid == NID_undef)
			nid = EC_curve_nist2nid(group);
		if ((nid == NID_X9_62_prime256v1 && s->allow_p256) ||
		    (nid == NID_secp384r1 && s->allow_p384))
			return 1;
		snprintf(why, why_len, "EC keys on %s are not accepted", group[0] ? group : "?");
		return 0;
	}
	snprintf(why, why_len, "this kind of key is not accepted");
	return 0;
}

/* The order's identifier values (pointers into ids). */
static size_t order_names(json_t *ids, const char **names)
{
	size_t i, n = 0;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "value"));
		if (name && n < CA_ORDER_MAX_IDS)
			names[n++] = name;
	}
	return n;
}

/* The CSR's names equal the order's (as sets); 1 when they do. */
static int same_names(const struct csr_info *csr, const char *const *names, size_t n)
{
	if (csr->n_names != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int found = 0;
		for (size_t k = 0; k < csr->n_names && !found; k++)
			found = strcmp(csr->names[k], names[i]) == 0;
		if (!found)
			return 0;
	}
	return 1;
}

/* Reads and checks the CSR of the payload; 0, or answered (nothing changed). */
static int read_csr(struct ca_ctx *c, const struct ca_order *o, struct csr_info *csr)
{
	const char *names[CA_ORDER_MAX_IDS];
	size_t n = 0;
	struct acmera_errmsg e = {{0}};
	const char *b64 = json_string_value(json_object_get(c->payload, "csr"));
	uint8_t *der = NULL;
	size_t der_len = 0;
	char why[128];
	if (!b64 || strlen(b64) > CSR_B64_MAX ||
	    b64url_decode(b64, strlen(b64), &der, &der_len) != 0) {
		ca_reply_problem(c->rs, 400, "malformed", NULL,
		                 "finalize needs {\"csr\": base64url DER}");
		return -1;
	}
	int rc = csr_parse_der(der, der_len, csr, &e);
	free(der);
	if (rc) {
		ca_reply_problem(c->rs, 400, "badCSR", NULL, "%s", e.text);
		return -1;
	}
	json_t *ids = json_loads(o->identifiers, 0, NULL);
	n = ids ? order_names(ids, names) : 0;
	rc = n > 0 && same_names(csr, names, n);
	json_decref(ids); /* names pointed into it */
	if (!rc) {
		ca_reply_problem(c->rs, 400, "badCSR", NULL,
		                 "the CSR's names must be exactly the order's identifiers");
		return -1;
	}
	EVP_PKEY *k = csr->key;
	if (!key_allowed(c->svc, k, why, sizeof(why))) {
		ca_reply_problem(c->rs, 400, "badCSR", NULL, "%s", why);
		return -1;
	}
	/* RFC 8555 11.1: the certificate key must not be the account key. */
	if (ca_key_equal(k, c->key)) {
		ca_reply_problem(c->rs, 400, "badCSR", NULL, "the CSR uses the account key");
		return -1;
	}
	return 0;
}

/* Signs the certificate of a ready order and records it, with the order made
 * valid, in one transaction (one disk flush): a concurrent finalize of the same
 * order that recorded first makes this one roll back, its certificate never
 * stored nor sent. 0, or answered. */
static int issue(struct ca_ctx *c, struct ca_order *o, const struct csr_info *csr)
{
	struct acmera_errmsg e = {{0}};
	struct ca_cert cert = {0};
	const char *names[CA_ORDER_MAX_IDS];
	json_t *ids = json_loads(o->identifiers, 0, NULL);
	size_t n = ids ? order_names(ids, names) : 0;
	struct ca_signer *signer = ca_service_signer(c->svc, c->now);
	int rc =
	    n ? ca_signer_issue(signer, csr, names, n, c->now, &cert.chain_pem, cert.serial, &e)
	      : ACMERA_ERR_STORE;
	json_decref(ids);
	/* The signer's own figure: parsing the new PEM back would cost more. */
	cert.not_after = ca_signer_leaf_not_after(signer, c->now);
	if (!rc)
		rc = ca_random_id(cert.id);
	if (!rc) {
		snprintf(cert.account, sizeof(cert.account), "%s", o->account);
		snprintf(cert.order_id, sizeof(cert.order_id), "%s", o->id);
		cert.issued = c->now;
		rc = ca_store_cert_issued(c->st, &cert, &e);
	}
	if (rc == ACMERA_ERR_AGAIN) {
		ca_reply_problem(c->rs, 403, "orderNotReady", NULL,
		                 "the order was finalized meanwhile");
		ca_cert_free(&cert);
		return -1;
	}
	if (rc) {
		log_event(LOG_LVL_ERROR, "ca.issue", "order=%s error=%s", o->id, log_qv(e.text));
		char *err = ca_problem_text("serverInternal", 500, "issuance failed");
		ca_store_order_transition(c->st, o->id, "ready", "invalid", err, NULL);
		free(err);
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "issuance failed");
		ca_cert_free(&cert);
		return -1;
	}
	log_event(LOG_LVL_INFO, "ca.issue", "account=%s order=%s serial=%s names=%zu first=%s",
	          o->account, o->id, cert.serial, n, csr->names[0]);
	snprintf(o->cert, sizeof(o->cert), "%s", cert.id);
	snprintf(o->status, sizeof(o->status), "valid");
	ca_cert_free(&cert);
	return 0;
}

void ca_handle_finalize(struct ca_ctx *c, const char *id)
{
	struct ca_order o;
	struct csr_info csr = {0};
	if (own_order(c, id, &o))
		return;
	const char *st = ca_order_status(&o, c->now);
	if (strcmp(st, "ready") != 0) {
		ca_reply_problem(c->rs, 403, "orderNotReady", NULL, "the order is %s", st);
		goto out;
	}
	if (!c->payload) {
		ca_reply_problem(c->rs, 400, "malformed", NULL, "finalize needs a CSR");
		goto out;
	}
	if (read_csr(c, &o, &csr))
		goto out;
	if (issue(c, &o, &csr))
		goto out;
	ca_reply_order(c, 200, &o);
out:
	csr_info_free(&csr);
	ca_order_free(&o);
}

/* "application/pkcs7-mime" among the Accept media types. */
static int wants_pkcs7(const char *accept)
{
	return accept && strcasestr(accept, "application/pkcs7-mime") != NULL;
}

void ca_handle_cert(struct ca_ctx *c, const char *id)
{
	struct acmera_errmsg e = {{0}};
	struct ca_cert cert;
	uint8_t *der = NULL;
	size_t len = 0;
	int rc = ca_store_cert_get(c->st, id, &cert, &e);
	if (rc == ACMERA_ERR_NOTFOUND || (rc == 0 && strcmp(cert.account, c->acct.id) != 0)) {
		ca_reply_problem(c->rs, 404, "malformed", NULL, "no such certificate");
		goto out;
	}
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		return;
	}
	if (c->payload) {
		ca_reply_problem(c->rs, 400, "malformed", NULL,
		                 "a certificate is read by POST-as-GET");
		goto out;
	}
	if (!wants_pkcs7(c->rq->accept)) {
		ca_reply_body(c->rs, 200, "application/pem-certificate-chain", cert.chain_pem,
		              strlen(cert.chain_pem));
		goto out;
	}
	if (pkcs7_certs_only_from_pem(cert.chain_pem, strlen(cert.chain_pem), 0, &der, &len, &e)) {
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "cannot encode the chain");
		goto out;
	}
	ca_reply_body(c->rs, 200, "application/pkcs7-mime", der, len);
out:
	free(der);
	ca_cert_free(&cert);
}
