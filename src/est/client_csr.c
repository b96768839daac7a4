/* The device's key and CSR, and the checks of what the RA sends back. No I/O.
 * See client.h. */
#include "est/client.h"

#include "est/body.h"
#include "pki/cert.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOST_NAME_MAX_LEN 253
#define HOST_LABEL_MAX_LEN 63
#define CN_MAX_LEN 64 /* ub-common-name, RFC 5280 */
#define TEMPLATE_MAX_NAMES 100
#define RSA_BITS_MIN 2048
#define RSA_BITS_MAX 16384
#define CHALLENGE_PASSWORD_MAX 255 /* pkcs-9-ub-challengePassword, RFC 2985 */

static const char *ossl_why(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_error());
	ERR_clear_error();
	return r ? r : "unknown reason";
}

/* ---- key specs ---- */

int est_key_spec_parse(const char *name, struct est_key_spec *out)
{
	memset(out, 0, sizeof(*out));
	if (strcmp(name, "p256") == 0)
		out->kind = EST_KEY_EC_P256;
	else if (strcmp(name, "p384") == 0)
		out->kind = EST_KEY_EC_P384;
	else if (strcmp(name, "ed25519") == 0)
		out->kind = EST_KEY_ED25519;
	else if (strcmp(name, "rsa2048") == 0 || strcmp(name, "rsa3072") == 0 ||
	         strcmp(name, "rsa4096") == 0) {
		out->kind = EST_KEY_RSA;
		out->rsa_bits = atoi(name + 3);
	} else {
		return ACMERA_ERR_INVAL;
	}
	return 0;
}

const char *est_key_spec_name(const struct est_key_spec *s, char *buf, size_t len)
{
	switch (s->kind) {
	case EST_KEY_EC_P256:
		snprintf(buf, len, "p256");
		break;
	case EST_KEY_EC_P384:
		snprintf(buf, len, "p384");
		break;
	case EST_KEY_ED25519:
		snprintf(buf, len, "ed25519");
		break;
	case EST_KEY_RSA:
		snprintf(buf, len, "rsa%d", s->rsa_bits);
		break;
	default:
		snprintf(buf, len, "unknown");
		break;
	}
	return buf;
}

int est_key_spec_of(EVP_PKEY *key, struct est_key_spec *out, struct acmera_errmsg *e)
{
	memset(out, 0, sizeof(*out));
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		out->kind = EST_KEY_RSA;
		out->rsa_bits = EVP_PKEY_get_bits(key);
		return 0;
	case EVP_PKEY_ED25519:
		out->kind = EST_KEY_ED25519;
		return 0;
	case EVP_PKEY_EC: {
		char group[64] = "";
		size_t glen = 0;
		if (EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) == 1) {
			if (strcmp(group, SN_X9_62_prime256v1) == 0) {
				out->kind = EST_KEY_EC_P256;
				return 0;
			}
			if (strcmp(group, SN_secp384r1) == 0) {
				out->kind = EST_KEY_EC_P384;
				return 0;
			}
		}
		ERR_clear_error();
		return acmera_fail(e, ACMERA_ERR_INVAL, "EC key on curve '%s': not P-256 or P-384",
		                   group);
	}
	}
	return acmera_fail(e, ACMERA_ERR_INVAL, "key type %s is not one EST enrollment makes",
	                   OBJ_nid2sn(EVP_PKEY_get_base_id(key)));
}

void est_key_choose(const struct est_csrattrs_out *attrs, const struct est_key_spec *want,
                    struct est_key_spec *out, int *want_ignored)
{
	*want_ignored = 0;
	if (!attrs || !attrs->have_key) {
		if (want)
			*out = *want;
		else
			*out = (struct est_key_spec){.kind = EST_KEY_EC_P256};
		return;
	}
	struct est_key_spec ra = {.kind = attrs->key,
	                          .rsa_bits = attrs->key == EST_KEY_RSA ? attrs->rsa_bits : 0};
	if (ra.kind == EST_KEY_RSA && ra.rsa_bits < RSA_BITS_MIN)
		ra.rsa_bits = RSA_BITS_MIN;
	if (!want) {
		*out = ra;
		return;
	}
	if (want->kind == ra.kind && (ra.kind != EST_KEY_RSA || want->rsa_bits >= ra.rsa_bits)) {
		*out = *want;
		return;
	}
	*out = ra;
	*want_ignored = 1;
}

int est_key_generate(const struct est_key_spec *s, EVP_PKEY **out, struct acmera_errmsg *e)
{
	EVP_PKEY *k = NULL;
	*out = NULL;
	switch (s->kind) {
	case EST_KEY_EC_P256:
		k = EVP_EC_gen("P-256");
		break;
	case EST_KEY_EC_P384:
		k = EVP_EC_gen("P-384");
		break;
	case EST_KEY_ED25519:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case EST_KEY_RSA:
		if (s->rsa_bits < RSA_BITS_MIN || s->rsa_bits > RSA_BITS_MAX)
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "RSA key of %d bits: not from %d to %d", s->rsa_bits,
			                   RSA_BITS_MIN, RSA_BITS_MAX);
		k = EVP_RSA_gen((unsigned int)s->rsa_bits);
		break;
	default:
		return acmera_fail(e, ACMERA_ERR_INVAL, "unknown key type");
	}
	if (!k)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "key generation failed: %s", ossl_why());
	*out = k;
	return 0;
}

/* ---- CSRs ---- */

/* LDH labels, an optional leading "*.", at most 253 characters (either case). */
static int host_name_valid(const char *s)
{
	size_t n = strlen(s), label = 0;
	if (n == 0 || n > HOST_NAME_MAX_LEN)
		return 0;
	if (n > 2 && s[0] == '*' && s[1] == '.') {
		s += 2;
		n -= 2;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		int ldh = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '-';
		if (!ldh || (c == '-' && label == 0) || ++label > HOST_LABEL_MAX_LEN)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* Signs with SHA-256, or no digest for Ed25519 (RFC 8410), and encodes. */
static int sign_and_encode(X509_REQ *req, EVP_PKEY *key, uint8_t **der, size_t *len,
                           struct acmera_errmsg *e)
{
	const EVP_MD *md = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
	if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, key) ||
	    X509_REQ_sign(req, key, md) <= 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "cannot sign the CSR: %s", ossl_why());
	unsigned char *p = NULL;
	int n = i2d_X509_REQ(req, &p);
	if (n <= 0)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "cannot encode the CSR: %s", ossl_why());
	/* OPENSSL_malloc'd: copied so the caller can use free(). */
	*der = malloc((size_t)n);
	if (!*der) {
		OPENSSL_free(p);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	memcpy(*der, p, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(p);
	return 0;
}

static int add_san_ext(X509_REQ *req, const char *const *names, size_t n, struct acmera_errmsg *e)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	STACK_OF(X509_EXTENSION) *exts = NULL;
	int rc = 0;
	if (!gens) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		if (!gn || !s || !ASN1_STRING_set(s, names[i], (int)strlen(names[i]))) {
			GENERAL_NAME_free(gn);
			ASN1_IA5STRING_free(s);
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
		GENERAL_NAME_set0_value(gn, GEN_DNS, s);
		if (!sk_GENERAL_NAME_push(gens, gn)) {
			GENERAL_NAME_free(gn);
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if (X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1 ||
	    !X509_REQ_add_extensions(req, exts))
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "cannot add the subjectAltName: %s",
		                 ossl_why());
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

/* PKCS#9 challengePassword: a DirectoryString, here the PrintableString when
 * the text fits one (base64 does), else UTF8String; checked to be UTF-8 of 1 to
 * 255 characters. */
static int add_challenge_password(X509_REQ *req, const char *pw, struct acmera_errmsg *e)
{
	ASN1_STRING *s = NULL;
	size_t n = strlen(pw);
	if (n == 0 || n > 4 * CHALLENGE_PASSWORD_MAX ||
	    ASN1_mbstring_ncopy(&s, (const unsigned char *)pw, (int)n, MBSTRING_UTF8,
	                        B_ASN1_PRINTABLESTRING | B_ASN1_UTF8STRING, 1,
	                        CHALLENGE_PASSWORD_MAX) < 0) {
		ERR_clear_error();
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "the challengePassword is not UTF-8 of 1 to %d characters",
		                   CHALLENGE_PASSWORD_MAX);
	}
	int rc = 0;
	if (!X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, ASN1_STRING_type(s),
	                               ASN1_STRING_get0_data(s), ASN1_STRING_length(s)))
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "cannot add the challengePassword: %s",
		                 ossl_why());
	ASN1_STRING_free(s);
	return rc;
}

int est_csr_from_template(const char *cn, const char *const *names, size_t n, EVP_PKEY *key,
                          const char *challenge_password, uint8_t **der, size_t *len,
                          struct acmera_errmsg *e)
{
	*der = NULL;
	*len = 0;
	X509_REQ *req = NULL;
	int rc = 0;
	if (n > TEMPLATE_MAX_NAMES)
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "the template asks for %zu names, more "
		                   "than %d",
		                   n, TEMPLATE_MAX_NAMES);
	for (size_t i = 0; i < n; i++)
		if (!names[i] || !host_name_valid(names[i]))
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "the template's name %zu is not a host name", i + 1);
	if (cn && (strlen(cn) == 0 || strlen(cn) > CN_MAX_LEN))
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "the template's CN is empty or longer "
		                   "than %d characters",
		                   CN_MAX_LEN);
	/* Without SANs the CN is the one name, and it must be one. */
	if (n == 0 && (!cn || !host_name_valid(cn)))
		return acmera_fail(e, ACMERA_ERR_INVAL, "no host name to ask for");
	if (!cn && strlen(names[0]) <= CN_MAX_LEN)
		cn = names[0];
	if (!(req = X509_REQ_new())) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	X509_NAME *subject = X509_REQ_get_subject_name(req);
	if (cn && !X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
	                                      (const unsigned char *)cn, -1, -1, 0)) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "bad CN: %s", ossl_why());
		goto out;
	}
	const char *only[1] = {cn};
	if ((rc = add_san_ext(req, n ? names : only, n ? n : 1, e)) != 0)
		goto out;
	if (challenge_password && (rc = add_challenge_password(req, challenge_password, e)) != 0)
		goto out;
	rc = sign_and_encode(req, key, der, len, e);
out:
	X509_REQ_free(req);
	return rc;
}

int est_csr_like_cert(X509 *current, EVP_PKEY *key, const char *challenge_password, uint8_t **der,
                      size_t *len, struct acmera_errmsg *e)
{
	*der = NULL;
	*len = 0;
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	int rc = 0;
	if (!req || !exts) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	const X509_NAME *subject = X509_get_subject_name(current);
	int san = X509_get_ext_by_NID(current, NID_subject_alt_name, -1);
	if (san < 0 && X509_NAME_entry_count(subject) == 0) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL,
		                 "the current certificate has neither subject nor subjectAltName");
		goto out;
	}
	if (!X509_REQ_set_subject_name(req, subject)) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (san >= 0) {
		X509_EXTENSION *x = X509_EXTENSION_dup(X509_get_ext(current, san));
		if (!x || !sk_X509_EXTENSION_push(exts, x)) {
			X509_EXTENSION_free(x);
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (!X509_REQ_add_extensions(req, exts)) {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "cannot add the subjectAltName: %s",
			                 ossl_why());
			goto out;
		}
	}
	if (challenge_password && (rc = add_challenge_password(req, challenge_password, e)) != 0)
		goto out;
	rc = sign_and_encode(req, key, der, len, e);
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return rc;
}

/* ---- answers ---- */

static int pkcs7_body(const uint8_t *body, size_t len, STACK_OF(X509) * *chain,
                      struct acmera_errmsg *e)
{
	uint8_t *der = NULL;
	size_t der_len = 0;
	*chain = NULL;
	int rc = est_body_decode(body, len, &der, &der_len, e);
	if (rc == 0)
		rc = pkcs7_certs_only_parse(der, der_len, chain, e);
	free(der);
	return rc ? acmera_fail_wrap(e, ACMERA_ERR_PROTO, "bad PKCS#7 answer") : 0;
}

int est_cacerts_answer(const uint8_t *body, size_t len, STACK_OF(X509) * *chain,
                       struct acmera_errmsg *e)
{
	return pkcs7_body(body, len, chain, e);
}

int est_enroll_answer(const uint8_t *body, size_t len, EVP_PKEY *key, STACK_OF(X509) * *chain,
                      struct acmera_errmsg *e)
{
	STACK_OF(X509) *got = NULL, *ordered = NULL;
	*chain = NULL;
	int rc = pkcs7_body(body, len, &got, e);
	if (rc)
		return rc;
	int leaf = -1;
	for (int i = 0; i < sk_X509_num(got) && leaf < 0; i++) {
		EVP_PKEY *pub = X509_get0_pubkey(sk_X509_value(got, i));
		if (pub && EVP_PKEY_eq(pub, key) == 1)
			leaf = i;
	}
	ERR_clear_error();
	if (leaf < 0) {
		rc = acmera_fail(e, ACMERA_ERR_PROTO,
		                 "no certificate in the answer is for the key of the CSR");
		goto out;
	}
	if (!(ordered = sk_X509_new_null())) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Leaf first, then the others as they came; references move from got. */
	X509 *x = sk_X509_delete(got, leaf);
	if (!sk_X509_push(ordered, x)) {
		X509_free(x);
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	while (sk_X509_num(got) > 0) {
		x = sk_X509_shift(got);
		if (!sk_X509_push(ordered, x)) {
			X509_free(x);
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	*chain = ordered;
	ordered = NULL;
out:
	sk_X509_pop_free(got, X509_free);
	sk_X509_pop_free(ordered, X509_free);
	return rc;
}

int est_cert_fingerprint(X509 *x, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	unsigned int n = 0;
	out[0] = '\0';
	if (!X509_digest(x, EVP_sha256(), md, &n) || n != SHA256_DIGEST_LENGTH)
		return ACMERA_ERR_INVAL;
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int est_fingerprint_matches(const char *text, const char fp[65])
{
	size_t k = 0;
	if (!text || strlen(fp) != 64)
		return 0;
	for (const char *p = text; *p; p++) {
		if (*p == ':')
			continue;
		if (k == 64 || !((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
		                 (*p >= 'A' && *p <= 'F')))
			return 0;
		char c = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
		if (c != fp[k++])
			return 0;
	}
	return k == 64;
}
