/* revokeCert (RFC 8555 7.6): by the account that ordered the certificate (kid) or by
 * the certificate's own key (jwk). */
#include "ca/internal.h"

#include "base/b64.h"
#include "base/log.h"
#include "pki/cert.h"

#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CERT_DER_MAX 16384

/* RFC 5280 5.3.1 reasons a subscriber may give: unspecified, keyCompromise,
 * affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn. */
static int reason_ok(json_t *r, int *out)
{
	static const int allowed[] = {0, 1, 3, 4, 5, 9};
	*out = 0;
	if (!r)
		return 1;
	if (!json_is_integer(r))
		return 0;
	json_int_t v = json_integer_value(r);
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (v == allowed[i]) {
			*out = (int)v;
			return 1;
		}
	return 0;
}

/* The serial of cert as lower-case hex (the signer's format: 32 digits). */
static int serial_hex(X509 *cert, char out[41])
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
	BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	int rc = -1;
	if (hex && strlen(hex) <= 40) {
		size_t n = strlen(hex);
		/* left-pad to 32 digits as issued */
		size_t pad = n < 32 ? 32 - n : 0;
		memset(out, '0', pad);
		for (size_t i = 0; i < n; i++)
			out[pad + i] =
			    (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
		out[pad + n] = '\0';
		rc = 0;
	}
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

/* 1 when der is exactly the leaf of the stored chain. */
static int same_leaf(const char *chain_pem, const uint8_t *der, size_t len)
{
	STACK_OF(X509) *chain = NULL;
	uint8_t *mine = NULL;
	int n = 0, same = 0;
	if (chain_parse_pem(chain_pem, strlen(chain_pem), &chain, NULL) == 0 &&
	    (n = i2d_X509(sk_X509_value(chain, 0), &mine)) > 0)
		same = (size_t)n == len && memcmp(mine, der, len) == 0;
	OPENSSL_free(mine);
	if (chain)
		sk_X509_pop_free(chain, X509_free);
	return same;
}

void ca_handle_revoke(struct ca_ctx *c)
{
	struct acmera_errmsg e = {{0}};
	struct ca_cert stored = {0};
	const char *b64 =
	    c->payload ? json_string_value(json_object_get(c->payload, "certificate")) : NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	X509 *cert = NULL;
	char serial[41];
	int reason;
	if (!b64 || strlen(b64) > CERT_DER_MAX * 4 / 3 + 4 ||
	    b64url_decode(b64, strlen(b64), &der, &len) != 0 || len > CERT_DER_MAX) {
		ca_reply_problem(c->rs, 400, "malformed", NULL,
		                 "revokeCert needs {\"certificate\": base64url DER}");
		goto out;
	}
	const uint8_t *p = der;
	cert = d2i_X509(NULL, &p, (long)len);
	if (!cert || p != der + len || serial_hex(cert, serial)) {
		ca_reply_problem(c->rs, 400, "malformed", NULL, "not one DER certificate");
		goto out;
	}
	if (!reason_ok(json_object_get(c->payload, "reason"), &reason)) {
		ca_reply_problem(c->rs, 400, "badRevocationReason", NULL,
		                 "reason must be 0, 1, 3, 4, 5 or 9 (RFC 5280)");
		goto out;
	}
	int rc = ca_store_cert_by_serial(c->st, serial, &stored, &e);
	if (rc == ACMERA_ERR_NOTFOUND || (rc == 0 && !same_leaf(stored.chain_pem, der, len))) {
		ca_reply_problem(c->rs, 404, "malformed", NULL, "not a certificate of this CA");
		goto out;
	}
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		goto out;
	}
	int allowed = c->has_acct ? strcmp(stored.account, c->acct.id) == 0
	                          : ca_key_equal(X509_get0_pubkey(cert), c->key);
	if (!allowed) {
		ca_reply_problem(c->rs, 403, "unauthorized", NULL,
		                 c->has_acct ? "not the account that ordered this certificate"
		                             : "the JWS key is not the certificate's key");
		goto out;
	}
	if (stored.revoked) {
		ca_reply_problem(c->rs, 400, "alreadyRevoked", NULL, "already revoked");
		goto out;
	}
	rc = ca_store_cert_revoke(c->st, stored.id, reason, c->now, &e);
	if (rc == ACMERA_ERR_REFUSED) {
		ca_reply_problem(c->rs, 400, "alreadyRevoked", NULL, "already revoked");
		goto out;
	}
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		goto out;
	}
	log_event(LOG_LVL_INFO, "ca.revoke", "serial=%s reason=%d by=%s", serial, reason,
	          c->has_acct ? "account" : "certificate-key");
	c->rs->status = 200;
out:
	ca_cert_free(&stored);
	X509_free(cert);
	free(der);
}
