/* JWS for ACME (RFC 8555 6.2, RFC 7515 flattened JSON, RFC 7518 algorithms,
 * RFC 7638 thumbprints) over OpenSSL 3 EVP. */
#include "acme/jws.h"
#include "base/b64.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RSA_MIN_BITS JWS_RSA_MIN_BITS
#define RSA_MAX_BITS JWS_RSA_MAX_BITS
#define HMAC_KEY_MAX 1024 /* decoded EAB MAC key; real ones are 32..64 bytes */

enum jws_key_kind jws_key_kind(EVP_PKEY *key)
{
	if (!key)
		return JWS_KEY_NONE;
	if (EVP_PKEY_is_a(key, "ED25519"))
		return JWS_KEY_ED25519;
	if (EVP_PKEY_is_a(key, "RSA")) {
		int bits = EVP_PKEY_get_bits(key);
		return bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS ? JWS_KEY_RSA : JWS_KEY_NONE;
	}
	if (!EVP_PKEY_is_a(key, "EC"))
		return JWS_KEY_NONE;
	char group[64];
	size_t glen = 0;
	if (!EVP_PKEY_get_group_name(key, group, sizeof(group), &glen))
		return JWS_KEY_NONE;
	int nid = OBJ_sn2nid(group);
	if (nid == NID_undef)
		nid = EC_curve_nist2nid(group);
	if (nid == NID_X9_62_prime256v1)
		return JWS_KEY_P256;
	if (nid == NID_secp384r1)
		return JWS_KEY_P384;
	return JWS_KEY_NONE;
}

/* The kinds of key the client signs with; anything else (Ed25519 too) is refused. */
static enum jws_key_kind key_kind(EVP_PKEY *key)
{
	enum jws_key_kind k = jws_key_kind(key);
	return k == JWS_KEY_ED25519 ? JWS_KEY_NONE : k;
}

int acme_key_type_parse(const char *s)
{
	static const struct {
		const char *name;
		enum acme_key_type type;
	} names[] = {
	    {"p256", ACME_KEY_P256},       {"ec256", ACME_KEY_P256},
	    {"p384", ACME_KEY_P384},       {"ec384", ACME_KEY_P384},
	    {"rsa2048", ACME_KEY_RSA2048}, {"rsa3072", ACME_KEY_RSA3072},
	    {"rsa4096", ACME_KEY_RSA4096},
	};
	if (!s)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return (int)names[i].type;
	return -1;
}

int acme_key_generate(enum acme_key_type type, EVP_PKEY **out, struct acmera_errmsg *e)
{
	EVP_PKEY *k = NULL;
	switch (type) {
	case ACME_KEY_P256:
		k = EVP_EC_gen("P-256");
		break;
	case ACME_KEY_P384:
		k = EVP_EC_gen("P-384");
		break;
	case ACME_KEY_RSA2048:
		k = EVP_RSA_gen(2048);
		break;
	case ACME_KEY_RSA3072:
		k = EVP_RSA_gen(3072);
		break;
	case ACME_KEY_RSA4096:
		k = EVP_RSA_gen(4096);
		break;
	default:
		return acmera_fail(e, ACMERA_ERR_INVAL, "unknown key type %d", (int)type);
	}
	if (!k)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "key generation failed");
	*out = k;
	return 0;
}

char *acme_key_to_pem(EVP_PKEY *key)
{
	char *pem = NULL;
	if (key_kind(key) == JWS_KEY_NONE)
		return NULL;
	/* secmem: the buffer is cleansed when freed, as it holds the private key. */
	BIO *bio = BIO_new(BIO_s_secmem());
	if (!bio)
		return NULL;
	if (!PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
		goto out;
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	if (n <= 0)
		goto out;
	pem = malloc((size_t)n + 1);
	if (!pem)
		goto out;
	memcpy(pem, data, (size_t)n);
	pem[n] = '\0';
out:
	BIO_free(bio);
	return pem;
}

int acme_key_from_pem(const char *pem, EVP_PKEY **out, struct acmera_errmsg *e)
{
	if (!pem)
		return acmera_fail(e, ACMERA_ERR_INVAL, "no key");
	BIO *bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!k)
		return acmera_fail(e, ACMERA_ERR_INVAL, "not a PEM private key");
	if (key_kind(k) == JWS_KEY_NONE) {
		EVP_PKEY_free(k);
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "unsupported account key: need P-256, P-384 or RSA %d..%d bits",
		                   RSA_MIN_BITS, RSA_MAX_BITS);
	}
	*out = k;
	return 0;
}

static const char *kind_alg(enum jws_key_kind kind)
{
	switch (kind) {
	case JWS_KEY_P256:
		return "ES256";
	case JWS_KEY_P384:
		return "ES384";
	case JWS_KEY_RSA:
		return "RS256";
	default:
		return NULL;
	}
}

const char *jws_alg(EVP_PKEY *key)
{
	return kind_alg(key_kind(key));
}

static const EVP_MD *key_md(enum jws_key_kind kind)
{
	return kind == JWS_KEY_P384 ? EVP_sha384() : EVP_sha256();
}

/* base64url of a big number: fixed width when width > 0 (EC coordinates, RFC 7518
 * 6.2.1.2), else the minimal big-endian octets (RSA n and e, RFC 7518 6.3.1). */
static json_t *bn_b64url(const BIGNUM *bn, int width)
{
	uint8_t buf[RSA_MAX_BITS / 8];
	int n = width > 0 ? width : BN_num_bytes(bn);
	if (n <= 0 || n > (int)sizeof(buf))
		return NULL;
	if (BN_bn2binpad(bn, buf, n) != n)
		return NULL;
	char *s = b64url_encode(buf, (size_t)n);
	if (!s)
		return NULL;
	json_t *j = json_string(s);
	free(s);
	return j;
}

/* Sets obj[name] to the base64url of key's BIGNUM parameter param. */
static int set_bn(json_t *obj, const char *name, EVP_PKEY *key, const char *param, int width)
{
	BIGNUM *bn = NULL;
	if (!EVP_PKEY_get_bn_param(key, param, &bn))
		return -1;
	json_t *v = bn_b64url(bn, width);
	BN_free(bn);
	if (!v)
		return -1;
	return json_object_set_new(obj, name, v);
}

json_t *jws_jwk(EVP_PKEY *key)
{
	enum jws_key_kind kind = key_kind(key);
	if (kind == JWS_KEY_NONE)
		return NULL;
	json_t *jwk = json_object();
	if (!jwk)
		return NULL;
	/* Inserted in lexicographic order so the plain dump is already canonical. */
	if (kind == JWS_KEY_RSA) {
		if (set_bn(jwk, "e", key, OSSL_PKEY_PARAM_RSA_E, 0) ||
		    json_object_set_new(jwk, "kty", json_string("RSA")) ||
		    set_bn(jwk, "n", key, OSSL_PKEY_PARAM_RSA_N, 0))
			goto fail;
	} else {
		int width = kind == JWS_KEY_P256 ? 32 : 48;
		if (json_object_set_new(jwk, "crv", json_string(width == 32 ? "P-256" : "P-384")) ||
		    json_object_set_new(jwk, "kty", json_string("EC")) ||
		    set_bn(jwk, "x", key, OSSL_PKEY_PARAM_EC_PUB_X, width) ||
		    set_bn(jwk, "y", key, OSSL_PKEY_PARAM_EC_PUB_Y, width))
			goto fail;
	}
	return jwk;
fail:
	json_decref(jwk);
	return NULL;
}

static char *sha256_b64url(const void *p, size_t n)
{
	uint8_t md[32];
	unsigned int mdlen = 0;
	if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != sizeof(md))
		return NULL;
	return b64url_encode(md, sizeof(md));
}

/* The RFC 7638 members of an Ed25519 key (RFC 8037 2), in lexicographic order. For
 * `acmera ca`, whose accounts may use EdDSA; the client itself never signs with it. */
static json_t *ed25519_jwk(EVP_PKEY *key)
{
	uint8_t raw[32];
	size_t len = sizeof(raw);
	if (!EVP_PKEY_get_raw_public_key(key, raw, &len) || len != sizeof(raw))
		return NULL;
	char *x = b64url_encode(raw, len);
	json_t *jwk =
	    x ? json_pack("{s:s, s:s, s:s}", "crv", "Ed25519", "kty", "OKP", "x", x) : NULL;
	free(x);
	return jwk;
}

char *jws_thumbprint(EVP_PKEY *key)
{
	json_t *jwk = key && EVP_PKEY_is_a(key, "ED25519") ? ed25519_jwk(key) : jws_jwk(key);
	if (!jwk)
		return NULL;
	/* RFC 7638 3.3: required members only, sorted, no whitespace. */
	char *text = json_dumps(jwk, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(jwk);
	if (!text)
		return NULL;
	char *tp = sha256_b64url(text, strlen(text));
	free(text);
	return tp;
}

struct jws_signer {
	EVP_PKEY *key;
	enum jws_key_kind kind;
	EVP_MD_CTX *ready; /* EVP_DigestSignInit done; each signature works on a copy */
};

int jws_signer_new(EVP_PKEY *key, struct jws_signer **out, struct acmera_errmsg *e)
{
	*out = NULL;
	enum jws_key_kind kind = key_kind(key);
	if (kind == JWS_KEY_NONE)
		return acmera_fail(e, ACMERA_ERR_INVAL, "unsupported account key");
	struct jws_signer *s = calloc(1, sizeof(*s));
	if (!s || !EVP_PKEY_up_ref(key)) {
		free(s);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	s->key = key;
	s->kind = kind;
	s->ready = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	if (!s->ready || EVP_DigestSignInit(s->ready, &pctx, key_md(kind), NULL, key) != 1 ||
	    (kind == JWS_KEY_RSA && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)) {
		jws_signer_free(s);
		ERR_clear_error();
		return acmera_fail(e, ACMERA_ERR_INVAL, "cannot set up JWS signing");
	}
	*out = s;
	return 0;
}

EVP_PKEY *jws_signer_key(const struct jws_signer *s)
{
	return s ? s->key : NULL;
}

void jws_signer_free(struct jws_signer *s)
{
	if (!s)
		return;
	EVP_MD_CTX_free(s->ready);
	EVP_PKEY_free(s->key);
	free(s);
}

/* JWS signature over in (RFC 7518 3.3 and 3.4), as base64url. EC signatures are
 * turned from DER ECDSA-Sig-Value into fixed-width r||s. */
static char *sign_b64url(const struct jws_signer *s, const char *in, size_t inlen)
{
	uint8_t der[RSA_MAX_BITS / 8]; /* an RSA signature is the modulus' size; DER ECDSA less */
	size_t derlen = sizeof(der);
	ECDSA_SIG *sig = NULL;
	char *res = NULL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_MD_CTX_copy_ex(ctx, s->ready) != 1)
		goto out;
	/* One signature per copy: OpenSSL need not copy it again to keep it reusable. */
	EVP_MD_CTX_set_flags(ctx, EVP_MD_CTX_FLAG_FINALISE);
	if (EVP_DigestSign(ctx, der, &derlen, (const uint8_t *)in, inlen) != 1)
		goto out;
	if (s->kind == JWS_KEY_RSA) {
		res = b64url_encode(der, derlen);
		goto out;
	}
	const uint8_t *p = der;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (!sig)
		goto out;
	int w = s->kind == JWS_KEY_P256 ? 32 : 48;
	uint8_t rs[96];
	if (BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, w) != w ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + w, w) != w)
		goto out;
	res = b64url_encode(rs, (size_t)(2 * w));
out:
	if (!res)
		ERR_clear_error();
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(ctx);
	return res;
}

static char *b64url_str(const char *s)
{
	return b64url_encode((const uint8_t *)s, strlen(s));
}

/* Flattened JWS {protected, payload, signature} over a header object and payload text
 * (NULL = empty payload for POST-as-GET). Returns a new json object. */
static json_t *jws_build(const struct jws_signer *s, json_t *header, const char *payload,
                         struct acmera_errmsg *e)
{
	char *htext = NULL, *h64 = NULL, *p64 = NULL, *input = NULL, *s64 = NULL;
	json_t *jws = NULL;
	htext = json_dumps(header, JSON_COMPACT);
	if (!htext)
		goto nomem;
	h64 = b64url_str(htext);
	p64 = b64url_str(payload ? payload : "");
	if (!h64 || !p64)
		goto nomem;
	size_t hl = strlen(h64), pl = strlen(p64);
	input = malloc(hl + pl + 2);
	if (!input)
		goto nomem;
	memcpy(input, h64, hl);
	input[hl] = '.';
	memcpy(input + hl + 1, p64, pl + 1);
	s64 = sign_b64url(s, input, hl + 1 + pl);
	if (!s64) {
		acmera_fail(e, ACMERA_ERR_INVAL, "JWS signing failed");
		goto out;
	}
	jws = json_pack("{s:s, s:s, s:s}", "protected", h64, "payload", p64, "signature", s64);
	if (!jws)
		goto nomem;
	goto out;
nomem:
	acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory building JWS");
out:
	free(htext);
	free(h64);
	free(p64);
	free(input);
	free(s64);
	return jws;
}

static char *dump_free(json_t *j, struct acmera_errmsg *e)
{
	if (!j)
		return NULL;
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	return s;
}

char *jws_signer_sign(struct jws_signer *s, const char *kid, const char *nonce, const char *url,
                      const char *payload, struct acmera_errmsg *e)
{
	const char *alg = s ? kind_alg(s->kind) : NULL;
	if (!alg) {
		acmera_fail(e, ACMERA_ERR_INVAL, "unsupported account key");
		return NULL;
	}
	if (!nonce || !*nonce || !url || !*url) {
		acmera_fail(e, ACMERA_ERR_INVAL, "JWS needs a nonce and a url");
		return NULL;
	}
	json_t *header = json_pack("{s:s}", "alg", alg);
	if (!header)
		goto nomem;
	/* RFC 8555 6.2: exactly one of jwk (newAccount, revoke by cert key) and kid. */
	if (kid) {
		if (json_object_set_new(header, "kid", json_string(kid)))
			goto nomem;
	} else {
		json_t *jwk = jws_jwk(s->key);
		if (!jwk || json_object_set_new(header, "jwk", jwk))
			goto nomem;
	}
	if (json_object_set_new(header, "nonce", json_string(nonce)) ||
	    json_object_set_new(header, "url", json_string(url)))
		goto nomem;
	json_t *jws = jws_build(s, header, payload, e);
	json_decref(header);
	return dump_free(jws, e);
nomem:
	json_decref(header);
	acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory building JWS header");
	return NULL;
}

char *jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
               const char *payload, struct acmera_errmsg *e)
{
	struct jws_signer *s = NULL;
	if (jws_signer_new(key, &s, e))
		return NULL;
	char *jws = jws_signer_sign(s, kid, nonce, url, payload, e);
	jws_signer_free(s);
	return jws;
}

json_t *jws_eab(EVP_PKEY *account_key, const char *eab_kid, const char *hmac_key_b64url,
                const char *url, struct acmera_errmsg *e)
{
	uint8_t *mac_key = NULL;
	size_t mac_len = 0;
	char *jwk_text = NULL, *h64 = NULL, *p64 = NULL, *input = NULL, *s64 = NULL;
	json_t *header = NULL, *res = NULL;
	if (!eab_kid || !*eab_kid || !hmac_key_b64url || !url) {
		acmera_fail(e, ACMERA_ERR_INVAL, "EAB needs a key id, a MAC key and a url");
		goto out;
	}
	size_t klen = strlen(hmac_key_b64url);
	if (klen == 0 || klen > HMAC_KEY_MAX * 4 / 3 + 4 ||
	    b64url_decode(hmac_key_b64url, klen, &mac_key, &mac_len) != 0 || mac_len == 0) {
		acmera_fail(e, ACMERA_ERR_INVAL, "EAB MAC key is not base64url");
		goto out;
	}
	json_t *jwk = jws_jwk(account_key);
	if (!jwk) {
		acmera_fail(e, ACMERA_ERR_INVAL, "unsupported account key");
		goto out;
	}
	jwk_text = dump_free(jwk, e);
	header = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", eab_kid, "url", url);
	if (!jwk_text || !header)
		goto nomem;
	char *htext = json_dumps(header, JSON_COMPACT);
	if (!htext)
		goto nomem;
	h64 = b64url_str(htext);
	free(htext);
	p64 = b64url_str(jwk_text);
	if (!h64 || !p64)
		goto nomem;
	size_t hl = strlen(h64), pl = strlen(p64);
	input = malloc(hl + pl + 2);
	if (!input)
		goto nomem;
	memcpy(input, h64, hl);
	input[hl] = '.';
	memcpy(input + hl + 1, p64, pl + 1);
	uint8_t mac[32];
	size_t maclen = 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, mac_key, mac_len, (const uint8_t *)input,
	               hl + 1 + pl, mac, sizeof(mac), &maclen) ||
	    maclen != sizeof(mac)) {
		acmera_fail(e, ACMERA_ERR_INVAL, "HMAC-SHA256 failed");
		goto out;
	}
	s64 = b64url_encode(mac, maclen);
	if (!s64)
		goto nomem;
	res = json_pack("{s:s, s:s, s:s}", "protected", h64, "payload", p64, "signature", s64);
	if (!res)
		goto nomem;
	goto out;
nomem:
	acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory building EAB");
out:
	if (mac_key) {
		OPENSSL_cleanse(mac_key, mac_len);
		free(mac_key);
	}
	json_decref(header);
	free(jwk_text);
	free(h64);
	free(p64);
	free(input);
	free(s64);
	return res;
}

char *jws_key_change_inner(EVP_PKEY *new_key, EVP_PKEY *old_key, const char *kid, const char *url,
                           struct acmera_errmsg *e)
{
	json_t *header = NULL, *payload = NULL, *jws = NULL;
	char *ptext = NULL;
	struct jws_signer *s = NULL;
	const char *alg = jws_alg(new_key);
	if (!alg || !jws_alg(old_key)) {
		acmera_fail(e, ACMERA_ERR_INVAL, "unsupported account key");
		goto out;
	}
	if (!kid || !*kid || !url || !*url) {
		acmera_fail(e, ACMERA_ERR_INVAL, "key change needs the account URL and a url");
		goto out;
	}
	/* RFC 8555 7.3.5: the inner JWS has jwk and url but no nonce. */
	header = json_pack("{s:s}", "alg", alg);
	payload = json_pack("{s:s}", "account", kid);
	if (!header || !payload)
		goto nomem;
	/* set_new takes the reference even on failure, so nothing leaks here. */
	if (json_object_set_new(header, "jwk", jws_jwk(new_key)) ||
	    json_object_set_new(header, "url", json_string(url)) ||
	    json_object_set_new(payload, "oldKey", jws_jwk(old_key)))
		goto nomem;
	ptext = json_dumps(payload, JSON_COMPACT);
	if (!ptext)
		goto nomem;
	if (jws_signer_new(new_key, &s, e) == 0)
		jws = jws_build(s, header, ptext, e);
	goto out;
nomem:
	acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory building key change");
out:
	jws_signer_free(s);
	json_decref(header);
	json_decref(payload);
	free(ptext);
	return dump_free(jws, e);
}

char *acme_dns01_value(const char *token, const char *thumbprint)
{
	if (!token || !thumbprint)
		return NULL;
	/* RFC 8555 8.1 key authorization, hashed for the TXT record per 8.4. */
	size_t tl = strlen(token), pl = strlen(thumbprint);
	char *ka = malloc(tl + pl + 2);
	if (!ka)
		return NULL;
	memcpy(ka, token, tl);
	ka[tl] = '.';
	memcpy(ka + tl + 1, thumbprint, pl + 1);
	char *v = sha256_b64url(ka, tl + 1 + pl);
	free(ka);
	return v;
}
