/* Server-side JWS verification (RFC 8555 6.2, 7.3.4, 7.3.5; RFC 7515 flattened JSON;
 * RFC 7518 and RFC 8037 algorithms) over OpenSSL 3 EVP and jansson. Everything here
 * reads bytes from unauthenticated clients: each member is type-checked and each
 * length bounded before use. */
#include "ca/jws_verify.h"
#include "acme/jws.h"
#include "base/b64.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <stdlib.h>
#include <string.h>

#define RSA_MIN_BITS JWS_RSA_MIN_BITS
#define RSA_MAX_BITS JWS_RSA_MAX_BITS
#define RSA_E_MAX 32 /* octets: e < 2^256, as SP 800-56B asks */
#define ED25519_LEN 32

static const char P_MALFORMED[] = "malformed";
static const char P_BADALG[] = "badSignatureAlgorithm";
static const char P_BADKEY[] = "badPublicKey";

static const struct {
	const char *alg;
	enum jws_key_kind kind;
} algs[] = {
    {"ES256", JWS_KEY_P256},
    {"ES384", JWS_KEY_P384},
    {"RS256", JWS_KEY_RSA},
    {"EdDSA", JWS_KEY_ED25519},
};

static enum jws_key_kind alg_kind(const char *alg)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(alg, algs[i].alg) == 0)
			return algs[i].kind;
	return JWS_KEY_NONE;
}

static void set_problem(const char **problem, const char *type)
{
	if (problem)
		*problem = type;
}

/* Decodes obj[name], which must be a base64url string, into a heap buffer with one
 * spare NUL byte after *len bytes. */
static int b64_member(const json_t *obj, const char *name, uint8_t **out, size_t *len,
                      struct acmera_errmsg *e)
{
	*out = NULL;
	*len = 0;
	const json_t *v = json_object_get(obj, name);
	if (!json_is_string(v))
		return acmera_fail(e, ACMERA_ERR_INVAL, "\"%s\" is not a string", name);
	uint8_t *raw = NULL, *buf = NULL;
	size_t n = 0;
	int rc = b64url_decode(json_string_value(v), json_string_length(v), &raw, &n);
	if (rc == ACMERA_ERR_NOMEM)
		return acmera_fail(e, rc, "out of memory");
	if (rc)
		return acmera_fail(e, ACMERA_ERR_INVAL, "\"%s\" is not base64url", name);
	buf = malloc(n + 1);
	if (!buf) {
		free(raw);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	if (n)
		memcpy(buf, raw, n);
	buf[n] = '\0';
	free(raw);
	*out = buf;
	*len = n;
	return 0;
}

/* Decodes the base64url member name to a JSON object (duplicates refused). */
static int b64_json_member(const json_t *obj, const char *name, json_t **out,
                           struct acmera_errmsg *e)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	*out = NULL;
	int rc = b64_member(obj, name, &raw, &n, e);
	if (rc)
		return rc;
	json_error_t jerr;
	json_t *j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &jerr);
	free(raw);
	if (!json_is_object(j)) {
		json_decref(j);
		return acmera_fail(e, ACMERA_ERR_INVAL, "\"%s\" is not a JSON object", name);
	}
	*out = j;
	return 0;
}

/* RFC 8555 6.2: flattened serialization, one signature, no unprotected header, payload
 * not detached: exactly protected, payload and signature, all strings. */
static int check_flattened(const json_t *jws, struct acmera_errmsg *e)
{
	if (!json_is_object(jws))
		return acmera_fail(e, ACMERA_ERR_INVAL, "JWS is not a JSON object");
	if (json_object_get(jws, "header"))
		return acmera_fail(e, ACMERA_ERR_INVAL, "JWS has an unprotected header");
	static const char *const names[] = {"protected", "payload", "signature"};
	for (size_t i = 0; i < 3; i++)
		if (!json_is_string(json_object_get(jws, names[i])))
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "JWS \"%s\" missing or not a string", names[i]);
	if (json_object_size(jws) != 3)
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "JWS has members other than protected, "
		                   "payload and signature");
	return 0;
}

/* "protected" "." "payload", the octets that were signed. */
static char *signing_input(const json_t *jws)
{
	const json_t *p = json_object_get(jws, "protected"), *q = json_object_get(jws, "payload");
	size_t pl = json_string_length(p), ql = json_string_length(q);
	char *s = malloc(pl + ql + 2);
	if (!s)
		return NULL;
	memcpy(s, json_string_value(p), pl);
	s[pl] = '.';
	memcpy(s + pl + 1, json_string_value(q), ql);
	s[pl + ql + 1] = '\0';
	return s;
}

/* Copies header[name], which must be a non-empty string, to the heap. */
static int header_string(const json_t *header, const char *name, char **out,
                         struct acmera_errmsg *e)
{
	const json_t *v = json_object_get(header, name);
	if (!json_is_string(v) || json_string_length(v) == 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "protected \"%s\" missing or not a string",
		                   name);
	*out = strdup(json_string_value(v));
	if (!*out)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	return 0;
}

/* ---- JWK to key ---- */

/* obj[name] as base64url of exactly want octets (want 0: 1..max octets), into buf. */
static int jwk_octets(const json_t *jwk, const char *name, uint8_t *buf, size_t want, size_t max,
                      size_t *len, struct acmera_errmsg *e)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	int rc = b64_member(jwk, name, &raw, &n, e);
	if (rc)
		return acmera_fail_wrap(e, rc, "JWK");
	if (want ? n != want : (n == 0 || n > max)) {
		free(raw);
		return acmera_fail(e, ACMERA_ERR_INVAL, "JWK \"%s\" has a wrong length (%zu)", name,
		                   n);
	}
	memcpy(buf, raw, n);
	free(raw);
	if (len)
		*len = n;
	return 0;
}

static int ec_from_jwk(const json_t *jwk, EVP_PKEY **out, struct acmera_errmsg *e)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	char group[16];
	size_t w;
	if (crv && strcmp(crv, "P-256") == 0) {
		w = 32;
		strcpy(group, "prime256v1");
	} else if (crv && strcmp(crv, "P-384") == 0) {
		w = 48;
		strcpy(group, "secp384r1");
	} else {
		return acmera_fail(e, ACMERA_ERR_INVAL, "EC JWK curve is not P-256 or P-384");
	}
	/* RFC 7518 6.2.1.2: coordinates are full width; uncompressed point 04||x||y. */
	uint8_t pub[1 + 2 * 48];
	pub[0] = 0x04;
	int rc = jwk_octets(jwk, "x", pub + 1, w, w, NULL, e);
	if (rc == 0)
		rc = jwk_octets(jwk, "y", pub + 1 + w, w, w, NULL, e);
	if (rc)
		return rc;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * w),
	    OSSL_PARAM_construct_end(),
	};
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL), *cctx = NULL;
	rc = ACMERA_ERR_INVAL;
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		acmera_fail(e, rc, "EC JWK is not a point on %s", crv);
		goto out;
	}
	/* On the curve and in range, checked here rather than trusting the import to;
	 * both curves have cofactor 1. */
	cctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	if (!cctx || EVP_PKEY_public_check_quick(cctx) != 1) {
		acmera_fail(e, rc, "EC JWK is not a valid point on %s", crv);
		goto out;
	}
	*out = k;
	k = NULL;
	rc = 0;
out:
	EVP_PKEY_CTX_free(cctx);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(k);
	return rc;
}

static int rsa_from_jwk(const json_t *jwk, EVP_PKEY **out, struct acmera_errmsg *e)
{
	uint8_t nb[RSA_MAX_BITS / 8], eb[RSA_E_MAX];
	size_t nl = 0, el = 0;
	int rc = jwk_octets(jwk, "n", nb, 0, sizeof(nb), &nl, e);
	if (rc == 0)
		rc = jwk_octets(jwk, "e", eb, 0, sizeof(eb), &el, e);
	if (rc)
		return rc;
	/* RFC 7518 6.3.1: minimal octets, so one key has one spelling. */
	if (nb[0] == 0 || eb[0] == 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "RSA JWK has leading zero octets");
	BIGNUM *n = BN_bin2bn(nb, (int)nl, NULL), *ex = BN_bin2bn(eb, (int)el, NULL);
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *k = NULL;
	rc = ACMERA_ERR_NOMEM;
	if (!n || !ex) {
		acmera_fail(e, rc, "out of memory");
		goto out;
	}
	rc = ACMERA_ERR_INVAL;
	int bits = BN_num_bits(n);
	if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
		acmera_fail(e, rc, "RSA JWK modulus has %d bits, need %d..%d", bits, RSA_MIN_BITS,
		            RSA_MAX_BITS);
		goto out;
	}
	/* Cheap sanity in place of a full public check, whose primality test would let a
	 * client make us spend much time per request. */
	if (!BN_is_odd(n) || !BN_is_odd(ex) || BN_is_one(ex) || BN_cmp(ex, n) >= 0) {
		acmera_fail(e, rc, "RSA JWK modulus or exponent is not valid");
		goto out;
	}
	bld = OSSL_PARAM_BLD_new();
	if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ex) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld))) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		acmera_fail(e, rc, "RSA JWK refused by OpenSSL");
		goto out;
	}
	*out = k;
	k = NULL;
	rc = 0;
out:
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(ex);
	return rc;
}

static int okp_from_jwk(const json_t *jwk, EVP_PKEY **out, struct acmera_errmsg *e)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	if (!crv || strcmp(crv, "Ed25519") != 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "OKP JWK curve is not Ed25519");
	uint8_t x[ED25519_LEN];
	int rc = jwk_octets(jwk, "x", x, sizeof(x), sizeof(x), NULL, e);
	if (rc)
		return rc;
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, sizeof(x));
	if (!k)
		return acmera_fail(e, ACMERA_ERR_INVAL, "Ed25519 JWK refused by OpenSSL");
	*out = k;
	return 0;
}

int ca_jwk_to_key(const json_t *jwk, EVP_PKEY **out, struct acmera_errmsg *e)
{
	/* Private members of RFC 7518 6.2.2, 6.3.2, 6.4 and RFC 8037 2: a client that
	 * sends its private key has leaked it; refuse rather than ignore. */
	static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
	*out = NULL;
	if (!json_is_object(jwk))
		return acmera_fail(e, ACMERA_ERR_INVAL, "JWK is not a JSON object");
	for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++)
		if (json_object_get(jwk, private_members[i]))
			return acmera_fail(e, ACMERA_ERR_INVAL, "JWK has private member \"%s\"",
			                   private_members[i]);
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	int rc;
	if (!kty)
		return acmera_fail(e, ACMERA_ERR_INVAL, "JWK \"kty\" missing or not a string");
	if (strcmp(kty, "EC") == 0)
		rc = ec_from_jwk(jwk, out, e);
	else if (strcmp(kty, "RSA") == 0)
		rc = rsa_from_jwk(jwk, out, e);
	else if (strcmp(kty, "OKP") == 0)
		rc = okp_from_jwk(jwk, out, e);
	else
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "JWK kty is not EC, RSA or OKP");
	if (rc)
		ERR_clear_error();
	return rc;
}

int ca_key_equal(EVP_PKEY *a, EVP_PKEY *b)
{
	if (!a || !b)
		return 0;
	int eq = EVP_PKEY_eq(a, b) == 1;
	ERR_clear_error(); /* keys of different types leave an error behind */
	return eq;
}

/* ---- parsing ---- */

enum nonce_rule { NONCE_REQUIRED, NONCE_FORBIDDEN };

/* The protected header's fields into out, the jwk turned into a key. */
static int parse_header(const json_t *h, enum nonce_rule rule, struct ca_jws *out,
                        const char **prob, struct acmera_errmsg *e)
{
	const json_t *alg = json_object_get(h, "alg");
	if (!json_is_string(alg))
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "protected \"alg\" missing or not a string");
	enum jws_key_kind want = alg_kind(json_string_value(alg));
	if (want == JWS_KEY_NONE) {
		*prob = P_BADALG;
		return acmera_fail(e, ACMERA_ERR_INVAL, "alg is not ES256, ES384, RS256 or EdDSA");
	}
	strcpy(out->alg, json_string_value(alg)); /* one of the four, fits */
	/* RFC 7515 4.1.11: we understand no extension, so any "crit" is refused; this also
	 * keeps out RFC 7797 unencoded payloads, which RFC 8555 6.2 forbids. */
	if (json_object_get(h, "crit") || json_object_get(h, "b64"))
		return acmera_fail(e, ACMERA_ERR_INVAL, "protected header has \"crit\" or \"b64\"");

	int rc = header_string(h, "url", &out->url, e);
	if (rc)
		return rc;
	if (rule == NONCE_FORBIDDEN) {
		if (json_object_get(h, "nonce"))
			return acmera_fail(e, ACMERA_ERR_INVAL, "inner JWS must not have a nonce");
	} else {
		rc = header_string(h, "nonce", &out->nonce, e);
		if (rc)
			return rc;
		/* RFC 8555 6.5.2: a nonce that is not base64url is malformed. */
		uint8_t *raw = NULL;
		size_t n = 0;
		rc = b64url_decode(out->nonce, strlen(out->nonce), &raw, &n);
		free(raw);
		if (rc == ACMERA_ERR_NOMEM)
			return acmera_fail(e, rc, "out of memory");
		if (rc)
			return acmera_fail(e, ACMERA_ERR_INVAL, "nonce is not base64url");
	}

	const json_t *jwk = json_object_get(h, "jwk"), *kid = json_object_get(h, "kid");
	if (jwk && kid)
		return acmera_fail(e, ACMERA_ERR_INVAL, "protected header has both jwk and kid");
	if (!jwk && !kid)
		return acmera_fail(e, ACMERA_ERR_INVAL, "protected header has neither jwk nor kid");
	if (kid)
		return header_string(h, "kid", &out->kid, e);
	rc = ca_jwk_to_key(jwk, &out->key, e);
	if (rc) {
		if (rc == ACMERA_ERR_INVAL)
			*prob = P_BADKEY;
		return rc;
	}
	/* RFC 8555 6.2: "alg is ES256 but jwk does not contain a valid P-256 key". */
	if (jws_key_kind(out->key) != want) {
		*prob = P_BADKEY;
		return acmera_fail(e, ACMERA_ERR_INVAL, "jwk is not a key for %s", out->alg);
	}
	out->jwk = json_incref((json_t *)jwk);
	return 0;
}

static int parse_jws(const char *body, size_t len, enum nonce_rule rule, struct ca_jws *out,
                     const char **prob, struct acmera_errmsg *e)
{
	json_t *jws = NULL, *header = NULL;
	int rc = ACMERA_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	*prob = P_MALFORMED;
	if (!body || len == 0) {
		acmera_fail(e, rc, "empty JWS");
		goto out;
	}
	if (len > CA_JWS_MAX_BODY) {
		acmera_fail(e, rc, "JWS is larger than %d bytes", CA_JWS_MAX_BODY);
		goto out;
	}
	json_error_t jerr;
	/* Without JSON_DISABLE_EOF_CHECK, anything but whitespace after the object fails. */
	jws = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!jws) {
		acmera_fail(e, rc, "JWS is not JSON: %s", jerr.text);
		goto out;
	}
	rc = check_flattened(jws, e);
	if (rc == 0)
		rc = b64_json_member(jws, "protected", &header, e);
	if (rc == 0)
		rc = parse_header(header, rule, out, prob, e);
	if (rc == 0)
		rc = b64_member(jws, "payload", &out->payload, &out->payload_len, e);
	if (rc == 0)
		rc = b64_member(jws, "signature", &out->sig, &out->sig_len, e);
	if (rc)
		goto out;
	if (out->sig_len == 0) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "JWS signature is empty");
		goto out;
	}
	out->post_as_get = json_string_length(json_object_get(jws, "payload")) == 0;
	out->signing_input = signing_input(jws);
	if (!out->signing_input) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
out:
	if (rc) {
		ca_jws_free(out);
		if (rc == ACMERA_ERR_NOMEM)
			*prob = P_MALFORMED;
	}
	json_decref(header);
	json_decref(jws);
	return rc;
}

int ca_jws_parse(const char *body, size_t len, struct ca_jws *out, const char **problem,
                 struct acmera_errmsg *e)
{
	const char *prob = NULL;
	int rc = parse_jws(body, len, NONCE_REQUIRED, out, &prob, e);
	set_problem(problem, rc ? prob : NULL);
	return rc;
}

/* ---- signatures ---- */

/* Fixed-width r||s (RFC 7518 3.4) to the DER ECDSA-Sig-Value that EVP expects. */
static int ec_sig_to_der(const uint8_t *rs, size_t w, uint8_t **der, size_t *derlen)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, (int)w, NULL), *s = BN_bin2bn(rs + w, (int)w, NULL);
	int rc = ACMERA_ERR_NOMEM;
	if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	*der = NULL;
	int n = i2d_ECDSA_SIG(sig, der);
	if (n <= 0)
		goto out;
	*derlen = (size_t)n;
	rc = 0;
out:
	ECDSA_SIG_free(sig);
	return rc;
}

static const EVP_MD *kind_md(enum jws_key_kind kind)
{
	return kind == JWS_KEY_ED25519 ? NULL : kind == JWS_KEY_P384 ? EVP_sha384() : EVP_sha256();
}

/* EVP_DigestVerifyInit for the JWS algorithm of kind; 1 on success. */
static int verify_init(EVP_MD_CTX *ctx, EVP_PKEY *key, enum jws_key_kind kind)
{
	EVP_PKEY_CTX *pctx = NULL;
	return EVP_DigestVerifyInit(ctx, &pctx, kind_md(kind), NULL, key) == 1 &&
	       (kind != JWS_KEY_RSA || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1);
}

/* j's signature checked with key, whose kind is kind, on a copy of ready (a context
 * verify_init made for key), or on a context set up here when ready is NULL. */
static int verify_sig(const struct ca_jws *j, EVP_PKEY *key, enum jws_key_kind kind,
                      const EVP_MD_CTX *ready, const char **problem, struct acmera_errmsg *e)
{
	enum jws_key_kind want = j && j->signing_input ? alg_kind(j->alg) : JWS_KEY_NONE;
	uint8_t *der = NULL;
	size_t derlen = 0;
	EVP_MD_CTX *ctx = NULL;
	const char *prob = P_MALFORMED;
	int rc = ACMERA_ERR_INVAL;
	if (want == JWS_KEY_NONE || !j->sig) {
		acmera_fail(e, rc, "no parsed JWS to verify");
		goto out;
	}
	if (kind == JWS_KEY_NONE) {
		prob = P_BADKEY;
		acmera_fail(e, rc, "account key is not of an allowed kind");
		goto out;
	}
	if (kind != want) {
		prob = P_BADALG;
		acmera_fail(e, rc, "alg %s does not fit the account key", j->alg);
		goto out;
	}
	const uint8_t *sig = j->sig;
	size_t siglen = j->sig_len, need;
	switch (kind) {
	case JWS_KEY_P256:
		need = 64;
		break;
	case JWS_KEY_P384:
		need = 96;
		break;
	case JWS_KEY_ED25519:
		need = 64;
		break;
	default:
		need = (size_t)EVP_PKEY_get_size(key); /* RFC 7518 3.3: k octets */
		break;
	}
	if (siglen != need) {
		acmera_fail(e, rc, "%s signature has %zu octets, not %zu", j->alg, siglen, need);
		goto out;
	}
	if (kind == JWS_KEY_P256 || kind == JWS_KEY_P384) {
		if (ec_sig_to_der(sig, siglen / 2, &der, &derlen)) {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
		sig = der;
		siglen = derlen;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx || !(ready ? EVP_MD_CTX_copy_ex(ctx, ready) == 1 : verify_init(ctx, key, kind))) {
		acmera_fail(e, rc, "cannot set up %s verification", j->alg);
		goto out;
	}
	/* One verification per context: OpenSSL need not copy it to keep it reusable. */
	EVP_MD_CTX_set_flags(ctx, EVP_MD_CTX_FLAG_FINALISE);
	if (EVP_DigestVerify(ctx, sig, siglen, (const uint8_t *)j->signing_input,
	                     strlen(j->signing_input)) != 1) {
		acmera_fail(e, rc, "JWS signature does not verify");
		goto out;
	}
	rc = 0;
out:
	if (rc)
		ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	set_problem(problem, rc ? prob : NULL);
	return rc;
}

int ca_jws_verify(const struct ca_jws *j, EVP_PKEY *key, const char **problem,
                  struct acmera_errmsg *e)
{
	/* A key seen once (a jwk's) gains nothing from a verifier: set up in place. */
	return verify_sig(j, key, jws_key_kind(key), NULL, problem, e);
}

struct ca_jws_verifier {
	EVP_PKEY *key;
	enum jws_key_kind kind;
	EVP_MD_CTX *ready; /* verify_init done; each verification works on a copy */
};

/* A verifier of key (kind) without its context. */
static struct ca_jws_verifier *verifier_alloc(EVP_PKEY *key, enum jws_key_kind kind)
{
	struct ca_jws_verifier *v = calloc(1, sizeof(*v));
	if (!v || !EVP_PKEY_up_ref(key)) {
		free(v);
		return NULL;
	}
	v->key = key;
	v->kind = kind;
	v->ready = EVP_MD_CTX_new();
	if (!v->ready) {
		ca_jws_verifier_free(v);
		return NULL;
	}
	return v;
}

int ca_jws_verifier_new(EVP_PKEY *key, struct ca_jws_verifier **out, struct acmera_errmsg *e)
{
	*out = NULL;
	enum jws_key_kind kind = jws_key_kind(key);
	if (kind == JWS_KEY_NONE)
		return acmera_fail(e, ACMERA_ERR_INVAL, "key is not of an allowed kind");
	struct ca_jws_verifier *v = verifier_alloc(key, kind);
	if (!v)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	if (!verify_init(v->ready, key, kind)) {
		ERR_clear_error();
		ca_jws_verifier_free(v);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "cannot set up verification");
	}
	*out = v;
	return 0;
}

struct ca_jws_verifier *ca_jws_verifier_dup(const struct ca_jws_verifier *v)
{
	struct ca_jws_verifier *d = v ? verifier_alloc(v->key, v->kind) : NULL;
	if (d && EVP_MD_CTX_copy_ex(d->ready, v->ready) != 1) {
		ERR_clear_error();
		ca_jws_verifier_free(d);
		d = NULL;
	}
	return d;
}

EVP_PKEY *ca_jws_verifier_key(const struct ca_jws_verifier *v)
{
	return v ? v->key : NULL;
}

int ca_jws_verify_with(const struct ca_jws *j, struct ca_jws_verifier *v, const char **problem,
                       struct acmera_errmsg *e)
{
	if (!v)
		return verify_sig(j, NULL, JWS_KEY_NONE, NULL, problem, e);
	return verify_sig(j, v->key, v->kind, v->ready, problem, e);
}

void ca_jws_verifier_free(struct ca_jws_verifier *v)
{
	if (!v)
		return;
	EVP_MD_CTX_free(v->ready);
	EVP_PKEY_free(v->key);
	free(v);
}

/* ---- external account binding ---- */

static const EVP_MD *hmac_md(const char *alg)
{
	if (strcmp(alg, "HS256") == 0)
		return EVP_sha256();
	if (strcmp(alg, "HS384") == 0)
		return EVP_sha384();
	if (strcmp(alg, "HS512") == 0)
		return EVP_sha512();
	return NULL;
}

/* The EAB protected header: MAC alg, kid, no nonce, url == outer_url. */
static int eab_header(const json_t *h, const char *outer_url, const EVP_MD **md, char **kid,
                      struct acmera_errmsg *e)
{
	const char *alg = json_string_value(json_object_get(h, "alg"));
	*md = alg ? hmac_md(alg) : NULL;
	if (!*md)
		return acmera_fail(e, ACMERA_ERR_INVAL, "EAB alg is not HS256, HS384 or HS512");
	if (json_object_get(h, "nonce"))
		return acmera_fail(e, ACMERA_ERR_INVAL, "EAB must not have a nonce");
	if (json_object_get(h, "crit") || json_object_get(h, "b64"))
		return acmera_fail(e, ACMERA_ERR_INVAL, "EAB has \"crit\" or \"b64\"");
	const char *url = json_string_value(json_object_get(h, "url"));
	if (!url || !outer_url || strcmp(url, outer_url) != 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "EAB url is not the newAccount url");
	return header_string(h, "kid", kid, e);
}

/* The EAB payload must be the outer jwk: the same key, whatever the spelling. */
static int eab_payload(const json_t *eab, const json_t *outer_jwk, struct acmera_errmsg *e)
{
	json_t *jwk = NULL;
	EVP_PKEY *inner = NULL, *outer = NULL;
	int rc = b64_json_member(eab, "payload", &jwk, e);
	if (rc)
		return acmera_fail_wrap(e, rc, "EAB");
	rc = ca_jwk_to_key(jwk, &inner, e);
	if (rc) {
		acmera_fail_wrap(e, rc, "EAB payload");
		goto out;
	}
	rc = ca_jwk_to_key(outer_jwk, &outer, e);
	if (rc) {
		acmera_fail_wrap(e, rc, "account jwk");
		goto out;
	}
	if (!ca_key_equal(inner, outer))
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "EAB payload is not the account key");
out:
	EVP_PKEY_free(inner);
	EVP_PKEY_free(outer);
	json_decref(jwk);
	return rc;
}

int ca_eab_verify(const json_t *eab, const json_t *outer_jwk, const char *outer_url,
                  const uint8_t *hmac_key, size_t hmac_key_len, char **kid_out,
                  struct acmera_errmsg *e)
{
	json_t *header = NULL;
	char *kid = NULL, *input = NULL;
	uint8_t *sig = NULL;
	size_t siglen = 0;
	const EVP_MD *md = NULL;
	if (kid_out)
		*kid_out = NULL;
	int rc = check_flattened(eab, e);
	if (rc) {
		acmera_fail_wrap(e, rc, "EAB");
		goto out;
	}
	rc = b64_json_member(eab, "protected", &header, e);
	if (rc) {
		acmera_fail_wrap(e, rc, "EAB");
		goto out;
	}
	rc = eab_header(header, outer_url, &md, &kid, e);
	if (rc == 0)
		rc = eab_payload(eab, outer_jwk, e);
	if (rc == 0)
		rc = b64_member(eab, "signature", &sig, &siglen, e);
	if (rc)
		goto out;
	if (siglen != (size_t)EVP_MD_get_size(md)) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "EAB MAC has a wrong length (%zu)", siglen);
		goto out;
	}
	if (hmac_key) {
		uint8_t mac[EVP_MAX_MD_SIZE];
		size_t maclen = 0;
		input = signing_input(eab);
		if (!input) {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (hmac_key_len == 0 ||
		    !EVP_Q_mac(NULL, "HMAC", NULL, EVP_MD_get0_name(md), NULL, hmac_key,
		               hmac_key_len, (const uint8_t *)input, strlen(input), mac,
		               sizeof(mac), &maclen) ||
		    maclen != siglen) {
			ERR_clear_error();
			rc = acmera_fail(e, ACMERA_ERR_INVAL, "EAB MAC cannot be computed");
			goto out;
		}
		int same = CRYPTO_memcmp(mac, sig, siglen) == 0;
		OPENSSL_cleanse(mac, sizeof(mac));
		if (!same) {
			rc = acmera_fail(e, ACMERA_ERR_INVAL, "EAB MAC does not verify");
			goto out;
		}
	}
	if (kid_out) {
		*kid_out = kid;
		kid = NULL;
	}
out:
	free(kid);
	free(input);
	free(sig);
	json_decref(header);
	return rc;
}

/* ---- key change ---- */

/* The keyChange object: {"account": account_url, "oldKey": a jwk equal to old_key}. */
static int key_change_payload(const struct ca_jws *in, const char *account_url, EVP_PKEY *old_key,
                              struct acmera_errmsg *e)
{
	json_error_t jerr;
	EVP_PKEY *named = NULL;
	json_t *p =
	    json_loadb((const char *)in->payload, in->payload_len, JSON_REJECT_DUPLICATES, &jerr);
	int rc = ACMERA_ERR_INVAL;
	if (!json_is_object(p)) {
		acmera_fail(e, rc, "keyChange payload is not a JSON object");
		goto out;
	}
	const char *account = json_string_value(json_object_get(p, "account"));
	if (!account || !account_url || strcmp(account, account_url) != 0) {
		acmera_fail(e, rc, "keyChange account is not the requesting account");
		goto out;
	}
	rc = ca_jwk_to_key(json_object_get(p, "oldKey"), &named, e);
	if (rc) {
		acmera_fail_wrap(e, rc, "keyChange oldKey");
		goto out;
	}
	if (!ca_key_equal(named, old_key)) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "keyChange oldKey is not the account key");
		goto out;
	}
out:
	EVP_PKEY_free(named);
	json_decref(p);
	return rc;
}

int ca_key_change_verify(const char *inner_body, size_t len, const char *outer_url,
                         const char *account_url, EVP_PKEY *old_key, EVP_PKEY **new_key,
                         const char **problem, struct acmera_errmsg *e)
{
	struct ca_jws in;
	const char *prob = P_MALFORMED;
	*new_key = NULL;
	int rc = parse_jws(inner_body, len, NONCE_FORBIDDEN, &in, &prob, e);
	if (rc) {
		acmera_fail_wrap(e, rc, "inner JWS");
		goto out;
	}
	rc = ACMERA_ERR_INVAL;
	if (!in.key) {
		acmera_fail(e, rc, "inner JWS must carry a jwk, not a kid");
		goto out;
	}
	if (!outer_url || strcmp(in.url, outer_url) != 0) {
		acmera_fail(e, rc, "inner JWS url is not the outer url");
		goto out;
	}
	rc = ca_jws_verify(&in, in.key, &prob, e);
	if (rc) {
		acmera_fail_wrap(e, rc, "inner JWS");
		goto out;
	}
	rc = key_change_payload(&in, account_url, old_key, e);
	if (rc) {
		prob = P_MALFORMED;
		goto out;
	}
	*new_key = in.key;
	in.key = NULL;
out:
	ca_jws_free(&in);
	set_problem(problem, rc ? prob : NULL);
	return rc;
}

void ca_jws_free(struct ca_jws *j)
{
	if (!j)
		return;
	free(j->nonce);
	free(j->url);
	free(j->kid);
	EVP_PKEY_free(j->key);
	json_decref(j->jwk);
	free(j->payload);
	free(j->signing_input);
	free(j->sig);
	memset(j, 0, sizeof(*j));
}
