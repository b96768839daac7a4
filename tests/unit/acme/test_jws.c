/* JWS, JWK, thumbprints, EAB, key rollover and dns-01 values, checked against
 * OpenSSL verification, RFC 7638 and RFC 7515 vectors, and values computed here
 * without the code under test (base64url here is OpenSSL's base64, translated). */
#include "acme/jws.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 7638 section 3.1 example RSA key and its thumbprint. */
static const char RFC7638_N[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc"
    "_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR"
    "0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTW"
    "hAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
static const char RFC7638_TP[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/* RFC 7515 appendix A.3 P-256 key. */
static const char RFC7515_X[] = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
static const char RFC7515_Y[] = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
static const char RFC7515_D[] = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";

/* ---- independent base64url via OpenSSL's base64 ---- */

static char *t_b64url_enc(const unsigned char *p, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);
	assert_non_null(s);
	int len = EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	while (len > 0 && s[len - 1] == '=')
		len--;
	s[len] = '\0';
	for (char *c = s; *c; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	return s;
}

static unsigned char *t_b64url_dec(const char *s, size_t *outlen)
{
	size_t n = strlen(s);
	size_t pad = (4 - n % 4) % 4;
	char *t = malloc(n + pad + 1);
	assert_non_null(t);
	for (size_t i = 0; i < n; i++) {
		assert_true(s[i] != '+' && s[i] != '/' && s[i] != '=');
		t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	}
	memset(t + n, '=', pad);
	t[n + pad] = '\0';
	unsigned char *out = malloc(n + 4);
	assert_non_null(out);
	int len = EVP_DecodeBlock(out, (unsigned char *)t, (int)(n + pad));
	assert_true(len >= 0);
	free(t);
	*outlen = (size_t)len - pad;
	return out;
}

static char *t_sha256_b64url(const char *s)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	assert_int_equal(EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL), 1);
	return t_b64url_enc(md, mdlen);
}

static EVP_PKEY *gen(enum acme_key_type t)
{
	EVP_PKEY *k = NULL;
	struct acmera_errmsg e;
	assert_int_equal(acme_key_generate(t, &k, &e), 0);
	assert_non_null(k);
	return k;
}

/* ---- JWS verification with OpenSSL, independent of jws.c ---- */

struct decoded {
	json_t *header;
	char *payload;
};

static void decoded_free(struct decoded *d)
{
	json_decref(d->header);
	free(d->payload);
}

/* Checks the flattened JWS shape and the signature with key; returns 1 when the
 * signature verifies. */
static int verify_jws(const char *text, EVP_PKEY *key, struct decoded *d)
{
	json_error_t jerr;
	json_t *jws = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	assert_non_null(jws);
	assert_int_equal(json_object_size(jws), 3);
	const char *prot = json_string_value(json_object_get(jws, "protected"));
	const char *pay = json_string_value(json_object_get(jws, "payload"));
	const char *sig = json_string_value(json_object_get(jws, "signature"));
	assert_non_null(prot);
	assert_non_null(pay);
	assert_non_null(sig);

	size_t hl, pl, sl;
	unsigned char *h = t_b64url_dec(prot, &hl);
	unsigned char *p = t_b64url_dec(pay, &pl);
	unsigned char *s = t_b64url_dec(sig, &sl);
	d->header = json_loadb((const char *)h, hl, JSON_REJECT_DUPLICATES, &jerr);
	assert_non_null(d->header);
	d->payload = strndup((const char *)p, pl);

	char *input = malloc(strlen(prot) + strlen(pay) + 2);
	sprintf(input, "%s.%s", prot, pay);

	const char *alg = json_string_value(json_object_get(d->header, "alg"));
	assert_non_null(alg);
	const EVP_MD *md = strcmp(alg, "ES384") == 0 ? EVP_sha384() : EVP_sha256();
	unsigned char *der = NULL;
	size_t derlen = sl;
	if (alg[0] == 'E') {
		size_t w = strcmp(alg, "ES256") == 0 ? 32 : 48;
		assert_int_equal(sl, 2 * w);
		ECDSA_SIG *es = ECDSA_SIG_new();
		ECDSA_SIG_set0(es, BN_bin2bn(s, (int)w, NULL), BN_bin2bn(s + w, (int)w, NULL));
		int n = i2d_ECDSA_SIG(es, &der);
		assert_true(n > 0);
		derlen = (size_t)n;
		ECDSA_SIG_free(es);
	} else {
		assert_string_equal(alg, "RS256");
		der = OPENSSL_memdup(s, sl);
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, key), 1);
	int ok = EVP_DigestVerify(ctx, der, derlen, (unsigned char *)input, strlen(input));
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	free(input);
	free(h);
	free(p);
	free(s);
	json_decref(jws);
	return ok == 1;
}

/* ---- key types, generation, PEM ---- */

static void key_type_parse_accepts_known_names_only(void **state)
{
	(void)state;
	assert_int_equal(acme_key_type_parse("p256"), ACME_KEY_P256);
	assert_int_equal(acme_key_type_parse("ec256"), ACME_KEY_P256);
	assert_int_equal(acme_key_type_parse("p384"), ACME_KEY_P384);
	assert_int_equal(acme_key_type_parse("ec384"), ACME_KEY_P384);
	assert_int_equal(acme_key_type_parse("rsa2048"), ACME_KEY_RSA2048);
	assert_int_equal(acme_key_type_parse("rsa3072"), ACME_KEY_RSA3072);
	assert_int_equal(acme_key_type_parse("rsa4096"), ACME_KEY_RSA4096);
	assert_int_equal(acme_key_type_parse("p521"), -1);
	assert_int_equal(acme_key_type_parse("rsa1024"), -1);
	assert_int_equal(acme_key_type_parse(""), -1);
	assert_int_equal(acme_key_type_parse(NULL), -1);
}

static void key_generate_gives_the_requested_algorithm(void **state)
{
	(void)state;
	EVP_PKEY *k = gen(ACME_KEY_P256);
	assert_string_equal(jws_alg(k), "ES256");
	assert_int_equal(EVP_PKEY_get_bits(k), 256);
	EVP_PKEY_free(k);
	k = gen(ACME_KEY_P384);
	assert_string_equal(jws_alg(k), "ES384");
	assert_int_equal(EVP_PKEY_get_bits(k), 384);
	EVP_PKEY_free(k);
	k = gen(ACME_KEY_RSA2048);
	assert_string_equal(jws_alg(k), "RS256");
	assert_int_equal(EVP_PKEY_get_bits(k), 2048);
	EVP_PKEY_free(k);
}

static void key_pem_round_trip_keeps_the_key(void **state)
{
	(void)state;
	enum acme_key_type types[] = {ACME_KEY_P256, ACME_KEY_P384, ACME_KEY_RSA2048};
	for (size_t i = 0; i < 3; i++) {
		EVP_PKEY *k = gen(types[i]), *back = NULL;
		char *pem = acme_key_to_pem(k);
		assert_non_null(pem);
		assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
		assert_int_equal(acme_key_from_pem(pem, &back, NULL), 0);
		assert_int_equal(EVP_PKEY_eq(k, back), 1);
		char *tp1 = jws_thumbprint(k), *tp2 = jws_thumbprint(back);
		assert_string_equal(tp1, tp2);
		free(tp1);
		free(tp2);
		free(pem);
		EVP_PKEY_free(k);
		EVP_PKEY_free(back);
	}
}

static char *pem_of(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s = strndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

static void key_from_pem_refuses_other_curves_and_types(void **state)
{
	(void)state;
	EVP_PKEY *bad[4] = {
	    EVP_EC_gen("P-521"),
	    EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
	    EVP_RSA_gen(1024),
	    EVP_EC_gen("secp256k1"),
	};
	for (size_t i = 0; i < 4; i++) {
		assert_non_null(bad[i]);
		char *pem = pem_of(bad[i]);
		EVP_PKEY *k = NULL;
		struct acmera_errmsg e = {{0}};
		assert_int_equal(acme_key_from_pem(pem, &k, &e), ACMERA_ERR_INVAL);
		assert_null(k);
		assert_non_null(strstr(e.text, "unsupported"));
		/* Nor will they be written, signed with or described. */
		assert_null(acme_key_to_pem(bad[i]));
		assert_null(jws_alg(bad[i]));
		assert_null(jws_jwk(bad[i]));
		assert_null(jws_sign(bad[i], NULL, "n", "https://x/", "{}", NULL));
		free(pem);
		EVP_PKEY_free(bad[i]);
	}
	EVP_PKEY *k = NULL;
	assert_int_equal(acme_key_from_pem("not a key", &k, NULL), ACMERA_ERR_INVAL);
	assert_int_equal(acme_key_from_pem(NULL, &k, NULL), ACMERA_ERR_INVAL);
	assert_null(k);
}

/* ---- JWK and thumbprints ---- */

static EVP_PKEY *rsa_from_n_e(const char *n64, unsigned long e)
{
	size_t nl;
	unsigned char *n = t_b64url_dec(n64, &nl);
	BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_new();
	BN_set_word(be, e);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be);
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	free(n);
	return k;
}

static void jwk_rsa_matches_rfc7638_example(void **state)
{
	(void)state;
	EVP_PKEY *k = rsa_from_n_e(RFC7638_N, 65537);
	json_t *jwk = jws_jwk(k);
	assert_non_null(jwk);
	char *text = json_dumps(jwk, JSON_COMPACT);
	char expect[1024];
	snprintf(expect, sizeof(expect), "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"%s\"}",
	         RFC7638_N);
	assert_string_equal(text, expect);
	char *tp = jws_thumbprint(k);
	assert_string_equal(tp, RFC7638_TP);
	free(tp);
	free(text);
	json_decref(jwk);
	EVP_PKEY_free(k);
}

static void jwk_ec_matches_rfc7515_example_key(void **state)
{
	(void)state;
	size_t xl, yl, dl;
	unsigned char *x = t_b64url_dec(RFC7515_X, &xl), *y = t_b64url_dec(RFC7515_Y, &yl);
	unsigned char *d = t_b64url_dec(RFC7515_D, &dl);
	unsigned char pub[65] = {0x04};
	memcpy(pub + 1, x, 32);
	memcpy(pub + 33, y, 32);
	BIGNUM *bd = BN_bin2bn(d, (int)dl, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
	OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bd);
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, params), 1);

	json_t *jwk = jws_jwk(k);
	char *text = json_dumps(jwk, JSON_COMPACT);
	char expect[256];
	snprintf(expect, sizeof(expect),
	         "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", RFC7515_X,
	         RFC7515_Y);
	assert_string_equal(text, expect);
	char *want = t_sha256_b64url(expect), *tp = jws_thumbprint(k);
	assert_string_equal(tp, want);
	/* And a signature made with it verifies against the same key. */
	char *jws = jws_sign(k, NULL, "bm9uY2U", "https://ca.example/acme/new-acct", "{}", NULL);
	struct decoded dec = {0};
	assert_true(verify_jws(jws, k, &dec));
	decoded_free(&dec);

	free(jws);
	free(want);
	free(tp);
	free(text);
	json_decref(jwk);
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bd);
	free(x);
	free(y);
	free(d);
}

/* The JWK of an EC key, built here from the encoded public point. */
static char *ec_jwk_text(EVP_PKEY *k, const char *crv, size_t w)
{
	unsigned char pub[97];
	size_t pl = 0;
	assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
	                                                 sizeof(pub), &pl),
	                 1);
	assert_int_equal(pl, 1 + 2 * w);
	assert_int_equal(pub[0], 0x04);
	char *x = t_b64url_enc(pub + 1, w), *y = t_b64url_enc(pub + 1 + w, w);
	char *s = malloc(512);
	snprintf(s, 512, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", crv, x, y);
	free(x);
	free(y);
	return s;
}

static void jwk_ec_and_thumbprint_match_independent_computation(void **state)
{
	(void)state;
	struct {
		enum acme_key_type t;
		const char *crv;
		size_t w;
	} cases[] = {{ACME_KEY_P256, "P-256", 32}, {ACME_KEY_P384, "P-384", 48}};
	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *k = gen(cases[i].t);
		char *expect = ec_jwk_text(k, cases[i].crv, cases[i].w);
		json_t *jwk = jws_jwk(k);
		char *text = json_dumps(jwk, JSON_COMPACT);
		assert_string_equal(text, expect);
		char *want = t_sha256_b64url(expect), *tp = jws_thumbprint(k);
		assert_string_equal(tp, want);
		assert_int_equal(strlen(tp), 43);
		free(want);
		free(tp);
		free(text);
		free(expect);
		json_decref(jwk);
		EVP_PKEY_free(k);
	}
}

static void jwk_ec_keeps_leading_zero_bytes_of_coordinates(void **state)
{
	(void)state;
	/* About one key in 128 has a coordinate starting with a zero byte. */
	int found = 0;
	for (int i = 0; i < 20000 && !found; i++) {
		EVP_PKEY *k = gen(ACME_KEY_P256);
		unsigned char pub[65];
		size_t pl = 0;
		EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
		                                sizeof(pub), &pl);
		if (pub[1] == 0 || pub[33] == 0) {
			found = 1;
			char *expect = ec_jwk_text(k, "P-256", 32);
			json_t *jwk = jws_jwk(k);
			char *text = json_dumps(jwk, JSON_COMPACT);
			assert_string_equal(text, expect);
			size_t xl, yl;
			free(t_b64url_dec(json_string_value(json_object_get(jwk, "x")), &xl));
			free(t_b64url_dec(json_string_value(json_object_get(jwk, "y")), &yl));
			assert_int_equal(xl, 32);
			assert_int_equal(yl, 32);
			free(text);
			free(expect);
			json_decref(jwk);
		}
		EVP_PKEY_free(k);
	}
	assert_true(found);
}

/* ---- signing ---- */

static void sign_and_check(enum acme_key_type t, const char *alg)
{
	EVP_PKEY *k = gen(t);
	const char *url = "https://acme.example/acme/new-order";
	const char *payload = "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example\"}]}";
	struct acmera_errmsg e;

	/* With jwk (newAccount). */
	char *jws = jws_sign(k, NULL, "Z7ngtCAtPQKu7uOHMyZUcw", url, payload, &e);
	assert_non_null(jws);
	struct decoded d = {0};
	assert_true(verify_jws(jws, k, &d));
	assert_string_equal(json_string_value(json_object_get(d.header, "alg")), alg);
	assert_string_equal(json_string_value(json_object_get(d.header, "nonce")),
	                    "Z7ngtCAtPQKu7uOHMyZUcw");
	assert_string_equal(json_string_value(json_object_get(d.header, "url")), url);
	assert_null(json_object_get(d.header, "kid"));
	json_t *jwk = jws_jwk(k);
	assert_true(json_equal(json_object_get(d.header, "jwk"), jwk));
	assert_string_equal(d.payload, payload);
	json_decref(jwk);
	decoded_free(&d);
	free(jws);

	/* With kid, and POST-as-GET. */
	const char *kid = "https://acme.example/acme/acct/1234";
	jws = jws_sign(k, kid, "bm9uY2UtMg", url, NULL, &e);
	assert_non_null(jws);
	memset(&d, 0, sizeof(d));
	assert_true(verify_jws(jws, k, &d));
	assert_string_equal(json_string_value(json_object_get(d.header, "kid")), kid);
	assert_null(json_object_get(d.header, "jwk"));
	assert_int_equal(json_object_size(d.header), 4);
	assert_string_equal(d.payload, "");
	assert_non_null(strstr(jws, "\"payload\":\"\""));
	decoded_free(&d);
	free(jws);
	EVP_PKEY_free(k);
}

static void jws_es256_verifies_with_openssl(void **state)
{
	(void)state;
	sign_and_check(ACME_KEY_P256, "ES256");
}

static void jws_es384_verifies_with_openssl(void **state)
{
	(void)state;
	sign_and_check(ACME_KEY_P384, "ES384");
}

static void jws_rs256_verifies_with_openssl(void **state)
{
	(void)state;
	sign_and_check(ACME_KEY_RSA2048, "RS256");
}

static void jws_does_not_verify_with_another_key_or_tampered(void **state)
{
	(void)state;
	EVP_PKEY *k = gen(ACME_KEY_P256), *other = gen(ACME_KEY_P256);
	char *jws = jws_sign(k, "https://a/acct/1", "bm9uY2U", "https://a/x", "{}", NULL);
	struct decoded d = {0};
	assert_false(verify_jws(jws, other, &d));
	decoded_free(&d);
	/* Change the payload ("e30" is "{}") to "[]" ("W10"). */
	char *p = strstr(jws, "\"payload\":\"e30\"");
	assert_non_null(p);
	memcpy(p + 11, "W10", 3);
	memset(&d, 0, sizeof(d));
	assert_false(verify_jws(jws, k, &d));
	decoded_free(&d);
	free(jws);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
}

static void jws_sign_refuses_missing_nonce_or_url(void **state)
{
	(void)state;
	EVP_PKEY *k = gen(ACME_KEY_P256);
	struct acmera_errmsg e = {{0}};
	assert_null(jws_sign(k, NULL, NULL, "https://a/x", "{}", &e));
	assert_non_null(strstr(e.text, "nonce"));
	assert_null(jws_sign(k, NULL, "bm9uY2U", NULL, "{}", &e));
	assert_null(jws_sign(k, NULL, "", "https://a/x", "{}", &e));
	EVP_PKEY_free(k);
}

/* The signer the ACME client keeps for its account key: set up once, it signs every
 * request as jws_sign would, and keeps the key alive for itself. */
static void signer_signs_again_and_again_as_jws_sign_does(void **state)
{
	(void)state;
	const enum acme_key_type types[] = {ACME_KEY_P256, ACME_KEY_P384, ACME_KEY_RSA2048};
	const char *url = "https://acme.example/acme/new-order", *kid = "https://a/acct/1";
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		EVP_PKEY *k = gen(types[t]);
		struct jws_signer *s = NULL;
		struct acmera_errmsg e = {{0}};
		assert_int_equal(jws_signer_new(k, &s, &e), 0);
		assert_ptr_equal(jws_signer_key(s), k);
		EVP_PKEY_free(k); /* the signer's reference remains */
		const char *nonces[] = {"bm9uY2UtMQ", "bm9uY2UtMg", "bm9uY2UtMw"};
		for (size_t i = 0; i < 3; i++) {
			const char *payload = i == 1 ? NULL : "{\"a\":1}";
			char *jws =
			    jws_signer_sign(s, i == 2 ? NULL : kid, nonces[i], url, payload, &e);
			assert_non_null(jws);
			struct decoded d = {0};
			assert_true(verify_jws(jws, jws_signer_key(s), &d));
			assert_string_equal(json_string_value(json_object_get(d.header, "nonce")),
			                    nonces[i]);
			assert_string_equal(d.payload, payload ? payload : "");
			decoded_free(&d);
			/* RS256 is deterministic: byte for byte what jws_sign makes. */
			char *once = jws_sign(jws_signer_key(s), i == 2 ? NULL : kid, nonces[i],
			                      url, payload, &e);
			assert_non_null(once);
			if (types[t] == ACME_KEY_RSA2048)
				assert_string_equal(jws, once);
			free(once);
			free(jws);
		}
		assert_null(jws_signer_sign(s, kid, NULL, url, "{}", &e));
		assert_non_null(strstr(e.text, "nonce"));
		jws_signer_free(s);
	}
	EVP_PKEY *bad[] = {EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), EVP_RSA_gen(1024), NULL};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct jws_signer *s = NULL;
		assert_int_equal(jws_signer_new(bad[i], &s, NULL), ACMERA_ERR_INVAL);
		assert_null(s);
		EVP_PKEY_free(bad[i]);
	}
	assert_null(jws_signer_sign(NULL, NULL, "bm9uY2U", url, "{}", NULL));
	jws_signer_free(NULL);
}

/* ---- external account binding ---- */

static void eab_is_hs256_over_the_account_jwk(void **state)
{
	(void)state;
	EVP_PKEY *k = gen(ACME_KEY_P256);
	unsigned char mac_key[32];
	for (size_t i = 0; i < sizeof(mac_key); i++)
		mac_key[i] = (unsigned char)(i * 7 + 3);
	char *mac64 = t_b64url_enc(mac_key, sizeof(mac_key));
	const char *url = "https://acme.example/acme/new-account";
	struct acmera_errmsg e;
	json_t *eab = jws_eab(k, "kid-1", mac64, url, &e);
	assert_non_null(eab);
	assert_int_equal(json_object_size(eab), 3);

	const char *prot = json_string_value(json_object_get(eab, "protected"));
	const char *pay = json_string_value(json_object_get(eab, "payload"));
	const char *sig = json_string_value(json_object_get(eab, "signature"));
	size_t hl, pl, sl;
	unsigned char *h = t_b64url_dec(prot, &hl), *p = t_b64url_dec(pay, &pl);
	unsigned char *s = t_b64url_dec(sig, &sl);
	json_t *hdr = json_loadb((char *)h, hl, 0, NULL);
	assert_int_equal(json_object_size(hdr), 3);
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "HS256");
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "kid-1");
	assert_string_equal(json_string_value(json_object_get(hdr, "url")), url);
	json_t *payload = json_loadb((char *)p, pl, 0, NULL), *jwk = jws_jwk(k);
	assert_true(json_equal(payload, jwk));

	char input[2048];
	snprintf(input, sizeof(input), "%s.%s", prot, pay);
	unsigned char mac[32];
	unsigned int ml = 0;
	HMAC(EVP_sha256(), mac_key, sizeof(mac_key), (unsigned char *)input, strlen(input), mac,
	     &ml);
	assert_int_equal(sl, 32);
	assert_memory_equal(s, mac, 32);

	json_decref(hdr);
	json_decref(payload);
	json_decref(jwk);
	json_decref(eab);
	free(h);
	free(p);
	free(s);
	free(mac64);
	EVP_PKEY_free(k);
}

static void eab_refuses_a_mac_key_that_is_not_base64url(void **state)
{
	(void)state;
	EVP_PKEY *k = gen(ACME_KEY_P256);
	struct acmera_errmsg e = {{0}};
	assert_null(jws_eab(k, "kid-1", "not+base64/url==", "https://a/new-acct", &e));
	assert_non_null(strstr(e.text, "MAC key"));
	assert_null(jws_eab(k, "kid-1", "", "https://a/new-acct", &e));
	assert_null(jws_eab(k, NULL, "AAAA", "https://a/new-acct", &e));
	EVP_PKEY_free(k);
}

/* ---- key rollover ---- */

static void key_change_inner_has_new_jwk_no_nonce_and_old_key_payload(void **state)
{
	(void)state;
	EVP_PKEY *oldk = gen(ACME_KEY_RSA2048), *newk = gen(ACME_KEY_P256);
	const char *kid = "https://acme.example/acme/acct/7";
	const char *url = "https://acme.example/acme/key-change";
	char *inner = jws_key_change_inner(newk, oldk, kid, url, NULL);
	assert_non_null(inner);
	struct decoded d = {0};
	assert_true(verify_jws(inner, newk, &d));
	assert_null(json_object_get(d.header, "nonce"));
	assert_null(json_object_get(d.header, "kid"));
	assert_string_equal(json_string_value(json_object_get(d.header, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(d.header, "url")), url);
	json_t *newjwk = jws_jwk(newk), *oldjwk = jws_jwk(oldk);
	assert_true(json_equal(json_object_get(d.header, "jwk"), newjwk));
	json_t *payload = json_loads(d.payload, 0, NULL);
	assert_int_equal(json_object_size(payload), 2);
	assert_string_equal(json_string_value(json_object_get(payload, "account")), kid);
	assert_true(json_equal(json_object_get(payload, "oldKey"), oldjwk));
	json_decref(payload);
	json_decref(newjwk);
	json_decref(oldjwk);
	decoded_free(&d);
	free(inner);
	assert_null(jws_key_change_inner(newk, oldk, NULL, url, NULL));
	EVP_PKEY_free(oldk);
	EVP_PKEY_free(newk);
}

/* ---- dns-01 ---- */

static void dns01_value_is_sha256_of_the_key_authorization(void **state)
{
	(void)state;
	const char *token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
	char *v = acme_dns01_value(token, RFC7638_TP);
	char ka[256];
	snprintf(ka, sizeof(ka), "%s.%s", token, RFC7638_TP);
	char *want = t_sha256_b64url(ka);
	assert_string_equal(v, want);
	assert_int_equal(strlen(v), 43);
	/* Also a fixed answer, so a change in both helpers would still be caught. */
	char *fixed = acme_dns01_value("token", "thumb");
	unsigned char md[32];
	EVP_Digest("token.thumb", 11, md, NULL, EVP_sha256(), NULL);
	char *fixed_want = t_b64url_enc(md, 32);
	assert_string_equal(fixed, fixed_want);
	free(fixed);
	free(fixed_want);
	free(v);
	free(want);
	assert_null(acme_dns01_value(NULL, "x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(key_type_parse_accepts_known_names_only),
	    cmocka_unit_test(key_generate_gives_the_requested_algorithm),
	    cmocka_unit_test(key_pem_round_trip_keeps_the_key),
	    cmocka_unit_test(key_from_pem_refuses_other_curves_and_types),
	    cmocka_unit_test(jwk_rsa_matches_rfc7638_example),
	    cmocka_unit_test(jwk_ec_matches_rfc7515_example_key),
	    cmocka_unit_test(jwk_ec_and_thumbprint_match_independent_computation),
	    cmocka_unit_test(jwk_ec_keeps_leading_zero_bytes_of_coordinates),
	    cmocka_unit_test(jws_es256_verifies_with_openssl),
	    cmocka_unit_test(jws_es384_verifies_with_openssl),
	    cmocka_unit_test(jws_rs256_verifies_with_openssl),
	    cmocka_unit_test(jws_does_not_verify_with_another_key_or_tampered),
	    cmocka_unit_test(jws_sign_refuses_missing_nonce_or_url),
	    cmocka_unit_test(signer_signs_again_and_again_as_jws_sign_does),
	    cmocka_unit_test(eab_is_hs256_over_the_account_jwk),
	    cmocka_unit_test(eab_refuses_a_mac_key_that_is_not_base64url),
	    cmocka_unit_test(key_change_inner_has_new_jwk_no_nonce_and_old_key_payload),
	    cmocka_unit_test(dns01_value_is_sha256_of_the_key_authorization),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
