/* Server-side JWS: what the ACME client (src/acme/jws.c) sends must parse and verify;
 * EdDSA, HMAC and every malformed variant are built here with OpenSSL directly. */
#include "ca/jws_verify.h"
#include "acme/jws.h"
#include "base/b64.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE "bm9uY2UtMQ"
#define URL "https://ca.test/acme/new-order"
#define KID "https://ca.test/acme/acct/1"

enum { K_P256, K_P384, K_RSA, K_ED, K_COUNT };
static EVP_PKEY *keys[K_COUNT], *others[K_COUNT], *rsa1024;
static const char *const alg_of[K_COUNT] = {"ES256", "ES384", "RS256", "EdDSA"};

static EVP_PKEY *gen(int kind)
{
	EVP_PKEY *k = NULL;
	struct acmera_errmsg e;
	switch (kind) {
	case K_P256:
		assert_int_equal(acme_key_generate(ACME_KEY_P256, &k, &e), 0);
		break;
	case K_P384:
		assert_int_equal(acme_key_generate(ACME_KEY_P384, &k, &e), 0);
		break;
	case K_RSA:
		assert_int_equal(acme_key_generate(ACME_KEY_RSA2048, &k, &e), 0);
		break;
	default:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	}
	assert_non_null(k);
	return k;
}

static int setup(void **state)
{
	(void)state;
	for (int i = 0; i < K_COUNT; i++) {
		keys[i] = gen(i);
		others[i] = gen(i);
	}
	rsa1024 = EVP_RSA_gen(1024);
	return rsa1024 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < K_COUNT; i++) {
		EVP_PKEY_free(keys[i]);
		EVP_PKEY_free(others[i]);
	}
	EVP_PKEY_free(rsa1024);
	return 0;
}

/* ---- building JWS here ---- */

/* Allocation that cannot return NULL (abort, which the compiler knows ends it). */
static void *xalloc(void *old, size_t n)
{
	void *p = realloc(old, n ? n : 1);
	if (!p)
		abort();
	return p;
}

static char *b64s(const char *s)
{
	char *r = b64url_encode((const uint8_t *)s, strlen(s));
	assert_non_null(r);
	return r;
}

/* The public JWK of any of our keys; Ed25519 per RFC 8037 section 2. */
static json_t *t_jwk(EVP_PKEY *k)
{
	if (!EVP_PKEY_is_a(k, "ED25519")) {
		json_t *j = jws_jwk(k);
		if (!j) { /* RSA 1024, which jws_jwk refuses: build it by hand */
			BIGNUM *n = NULL, *ex = NULL;
			assert_int_equal(EVP_PKEY_get_bn_param(k, "n", &n), 1);
			assert_int_equal(EVP_PKEY_get_bn_param(k, "e", &ex), 1);
			uint8_t nb[1024], eb[8];
			int nl = BN_bn2bin(n, nb), el = BN_bn2bin(ex, eb);
			char *n64 = b64url_encode(nb, (size_t)nl),
			     *e64 = b64url_encode(eb, (size_t)el);
			j = json_pack("{s:s, s:s, s:s}", "e", e64, "kty", "RSA", "n", n64);
			free(n64);
			free(e64);
			BN_free(n);
			BN_free(ex);
		}
		assert_non_null(j);
		return j;
	}
	uint8_t x[32];
	size_t xl = sizeof(x);
	assert_int_equal(EVP_PKEY_get_raw_public_key(k, x, &xl), 1);
	char *x64 = b64url_encode(x, xl);
	json_t *j = json_pack("{s:s, s:s, s:s}", "crv", "Ed25519", "kty", "OKP", "x", x64);
	free(x64);
	assert_non_null(j);
	return j;
}

/* The JWS signature of in by k: r||s for EC, raw for RSA and Ed25519. */
static uint8_t *t_sign(EVP_PKEY *k, const char *in, size_t *outlen)
{
	int ed = EVP_PKEY_is_a(k, "ED25519"), ec = EVP_PKEY_is_a(k, "EC");
	const EVP_MD *md = ed ? NULL : EVP_PKEY_get_bits(k) == 384 ? EVP_sha384() : EVP_sha256();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t len = 0;
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(ctx, NULL, &len, (const uint8_t *)in, strlen(in)), 1);
	uint8_t *sig = xalloc(NULL, len);
	assert_int_equal(EVP_DigestSign(ctx, sig, &len, (const uint8_t *)in, strlen(in)), 1);
	EVP_MD_CTX_free(ctx);
	if (ec) {
		const uint8_t *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
		assert_non_null(es);
		int w = EVP_PKEY_get_bits(k) / 8;
		uint8_t *rs = xalloc(NULL, 2 * (size_t)w);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, w), w);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + w, w), w);
		ECDSA_SIG_free(es);
		free(sig);
		sig = rs;
		len = 2 * (size_t)w;
	}
	*outlen = len;
	return sig;
}

/* What the ACME client sends: jws_sign with nonce NONCE. */
static char *client_jws(EVP_PKEY *k, const char *kid, const char *nonce, const char *url,
                        const char *payload)
{
	struct acmera_errmsg e;
	char *s = jws_sign(k, kid, nonce, url, payload, &e);
	if (!s)
		abort();
	return s;
}

/* {"protected":..,"payload":..,"signature":..} text from the parts. */
static char *t_flat(const char *p64, const char *pl64, const char *s64)
{
	json_t *j =
	    json_pack("{s:s, s:s, s:s}", "protected", p64, "payload", pl64, "signature", s64);
	assert_non_null(j);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

/* A flattened JWS over header (reference taken) and payload (NULL: ""), signed by k
 * whatever the header says, or with a dummy signature when k is NULL. */
static char *t_jws(EVP_PKEY *k, json_t *header, const char *payload)
{
	char *ht = json_dumps(header, JSON_COMPACT);
	json_decref(header);
	char *p64 = b64s(ht), *pl64 = b64s(payload ? payload : "");
	char *input = xalloc(NULL, strlen(p64) + strlen(pl64) + 2);
	sprintf(input, "%s.%s", p64, pl64);
	char *s64;
	if (k) {
		size_t sl;
		uint8_t *sig = t_sign(k, input, &sl);
		s64 = b64url_encode(sig, sl);
		free(sig);
	} else {
		s64 = b64s("not a signature");
	}
	char *body = t_flat(p64, pl64, s64);
	free(ht);
	free(p64);
	free(pl64);
	free(input);
	free(s64);
	return body;
}

/* Header {alg, jwk of jwk_key or kid, nonce, url}. */
static json_t *t_header(const char *alg, EVP_PKEY *jwk_key, const char *kid)
{
	json_t *h = json_pack("{s:s, s:s, s:s}", "alg", alg, "nonce", NONCE, "url", URL);
	if (jwk_key)
		json_object_set_new(h, "jwk", t_jwk(jwk_key));
	if (kid)
		json_object_set_new(h, "kid", json_string(kid));
	return h;
}

/* Parses body, expecting failure with problem want. */
static void expect_refused(const char *body, const char *want)
{
	struct ca_jws j;
	const char *problem = NULL;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(ca_jws_parse(body, strlen(body), &j, &problem, &e), ACMERA_ERR_INVAL);
	assert_non_null(problem);
	assert_string_equal(problem, want);
	assert_true(e.text[0] != '\0');
	assert_null(j.key);
	assert_null(j.signing_input);
}

/* Parses body, expecting success. */
static void parse_ok(const char *body, struct ca_jws *j)
{
	const char *problem = "unset";
	struct acmera_errmsg e = {{0}};
	int rc = ca_jws_parse(body, strlen(body), j, &problem, &e);
	if (rc)
		print_error("%s\n", e.text);
	assert_int_equal(rc, 0);
	assert_null(problem);
}

/* Expects ca_jws_verify(j, k) to fail with problem want, and a verifier of k to fail
 * the same way (a key refused as badPublicKey gets no verifier). */
static void expect_verify_fails(const struct ca_jws *j, EVP_PKEY *k, const char *want)
{
	const char *problem = NULL;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(ca_jws_verify(j, k, &problem, &e), ACMERA_ERR_INVAL);
	assert_non_null(problem);
	assert_string_equal(problem, want);
	struct ca_jws_verifier *v = NULL;
	if (ca_jws_verifier_new(k, &v, NULL) != 0) {
		assert_null(v);
		assert_string_equal(want, "badPublicKey");
		return;
	}
	problem = NULL;
	assert_int_equal(ca_jws_verify_with(j, v, &problem, &e), ACMERA_ERR_INVAL);
	assert_non_null(problem);
	assert_string_equal(problem, want);
	ca_jws_verifier_free(v);
}

/* ---- valid requests ---- */

static void parse_accepts_client_jws_with_jwk_and_verifies(void **state)
{
	(void)state;
	for (int i = K_P256; i <= K_RSA; i++) {
		struct acmera_errmsg e;
		char *body =
		    client_jws(keys[i], NULL, NONCE, URL, "{\"termsOfServiceAgreed\":true}");
		struct ca_jws j;
		parse_ok(body, &j);
		assert_string_equal(j.alg, alg_of[i]);
		assert_string_equal(j.nonce, NONCE);
		assert_string_equal(j.url, URL);
		assert_null(j.kid);
		assert_non_null(j.jwk);
		assert_true(ca_key_equal(j.key, keys[i]));
		assert_false(ca_key_equal(j.key, others[i]));
		char *tp1 = jws_thumbprint(j.key), *tp2 = jws_thumbprint(keys[i]);
		assert_non_null(tp1);
		assert_string_equal(tp1, tp2);
		free(tp1);
		free(tp2);
		assert_int_equal(j.payload_len, strlen("{\"termsOfServiceAgreed\":true}"));
		assert_string_equal((char *)j.payload, "{\"termsOfServiceAgreed\":true}");
		assert_false(j.post_as_get);
		const char *problem = "unset";
		assert_int_equal(ca_jws_verify(&j, j.key, &problem, &e), 0);
		assert_null(problem);
		ca_jws_free(&j);
		ca_jws_free(&j); /* idempotent */
		free(body);
	}
}

static void parse_accepts_kid_and_verifies_only_with_the_account_key(void **state)
{
	(void)state;
	for (int i = K_P256; i <= K_RSA; i++) {
		struct acmera_errmsg e;
		char *body = client_jws(keys[i], KID, NONCE, URL, "{}");
		struct ca_jws j;
		parse_ok(body, &j);
		assert_string_equal(j.kid, KID);
		assert_null(j.key);
		assert_null(j.jwk);
		assert_int_equal(ca_jws_verify(&j, keys[i], NULL, &e), 0);
		expect_verify_fails(&j, others[i], "malformed");
		expect_verify_fails(&j, keys[(i + 1) % K_COUNT], "badSignatureAlgorithm");
		expect_verify_fails(&j, rsa1024, "badPublicKey");
		ca_jws_free(&j);
		free(body);
	}
}

static void eddsa_with_jwk_and_with_kid_verifies(void **state)
{
	(void)state;
	char *body = t_jws(keys[K_ED], t_header("EdDSA", keys[K_ED], NULL), "{\"a\":1}");
	struct ca_jws j;
	parse_ok(body, &j);
	assert_string_equal(j.alg, "EdDSA");
	assert_true(ca_key_equal(j.key, keys[K_ED]));
	assert_int_equal(ca_jws_verify(&j, j.key, NULL, NULL), 0);
	expect_verify_fails(&j, others[K_ED], "malformed");
	ca_jws_free(&j);
	free(body);

	body = t_jws(keys[K_ED], t_header("EdDSA", NULL, KID), "{\"a\":1}");
	parse_ok(body, &j);
	assert_int_equal(ca_jws_verify(&j, keys[K_ED], NULL, NULL), 0);
	expect_verify_fails(&j, keys[K_P256], "badSignatureAlgorithm");
	ca_jws_free(&j);
	free(body);
}

static void post_as_get_has_an_empty_payload(void **state)
{
	(void)state;
	struct acmera_errmsg e;
	char *body = client_jws(keys[K_P256], KID, NONCE, URL, NULL);
	struct ca_jws j;
	parse_ok(body, &j);
	assert_true(j.post_as_get);
	assert_int_equal(j.payload_len, 0);
	assert_int_equal(ca_jws_verify(&j, keys[K_P256], NULL, &e), 0);
	ca_jws_free(&j);
	free(body);

	/* "{}" is not POST-as-GET. */
	body = client_jws(keys[K_P256], KID, NONCE, URL, "{}");
	parse_ok(body, &j);
	assert_false(j.post_as_get);
	ca_jws_free(&j);
	free(body);
}

static void trailing_whitespace_is_accepted_but_trailing_garbage_is_not(void **state)
{
	(void)state;
	struct acmera_errmsg e;
	char *body = client_jws(keys[K_P256], KID, NONCE, URL, "{}");
	size_t n = strlen(body);
	char *more = xalloc(NULL, n + 8);
	sprintf(more, "%s \r\n", body);
	struct ca_jws j;
	parse_ok(more, &j);
	ca_jws_free(&j);
	sprintf(more, "%s{}", body);
	expect_refused(more, "malformed");
	sprintf(more, "%sx", body);
	expect_refused(more, "malformed");
	/* An embedded NUL ends nothing: the length counts. */
	memcpy(more, body, n + 1);
	more[n] = '\0';
	more[n + 1] = 'x';
	assert_int_equal(ca_jws_parse(more, n + 2, &j, NULL, &e), ACMERA_ERR_INVAL);
	free(more);
	free(body);
}

/* ---- malformed requests ---- */

static void parse_refuses_missing_or_extra_members(void **state)
{
	(void)state;
	char *p64 = b64s("{\"alg\":\"ES256\",\"kid\":\"" KID "\",\"nonce\":\"" NONCE
	                 "\",\"url\":\"" URL "\"}");
	char body[1024];
	snprintf(body, sizeof(body), "{\"payload\":\"\",\"signature\":\"AAAA\"}");
	expect_refused(body, "malformed");
	snprintf(body, sizeof(body), "{\"protected\":\"%s\",\"signature\":\"AAAA\"}", p64);
	expect_refused(body, "malformed");
	snprintf(body, sizeof(body), "{\"protected\":\"%s\",\"payload\":\"\"}", p64);
	expect_refused(body, "malformed");
	/* The same three with an unprotected header, or another member. */
	snprintf(body, sizeof(body),
	         "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"AAAA\",\"header\":{}}",
	         p64);
	expect_refused(body, "malformed");
	snprintf(body, sizeof(body),
	         "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"AAAA\",\"x\":1}", p64);
	expect_refused(body, "malformed");
	/* The general serialization is not accepted either. */
	snprintf(
	    body, sizeof(body),
	    "{\"payload\":\"\",\"signatures\":[{\"protected\":\"%s\",\"signature\":\"AAAA\"}]}",
	    p64);
	expect_refused(body, "malformed");
	/* Members of the wrong type, an empty signature, a non-object. */
	snprintf(body, sizeof(body),
	         "{\"protected\":\"%s\",\"payload\":null,\"signature\":\"AAAA\"}", p64);
	expect_refused(body, "malformed");
	snprintf(body, sizeof(body), "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"\"}",
	         p64);
	expect_refused(body, "malformed");
	expect_refused("[]", "malformed");
	expect_refused("\"x\"", "malformed");
	expect_refused("", "malformed");
	/* Sanity: the same parts with a signature do parse. */
	snprintf(body, sizeof(body),
	         "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"AAAA\"}", p64);
	struct ca_jws j;
	parse_ok(body, &j);
	ca_jws_free(&j);
	free(p64);
}

static void parse_refuses_duplicate_members(void **state)
{
	(void)state;
	char *p64 = b64s("{\"alg\":\"ES256\",\"kid\":\"" KID "\",\"nonce\":\"" NONCE
	                 "\",\"url\":\"" URL "\"}");
	char body[1024];
	snprintf(
	    body, sizeof(body),
	    "{\"protected\":\"%s\",\"payload\":\"\",\"payload\":\"e30\",\"signature\":\"AAAA\"}",
	    p64);
	expect_refused(body, "malformed");
	free(p64);
	/* In the protected header: a second alg that a lenient parser would take. */
	p64 = b64s("{\"alg\":\"ES256\",\"alg\":\"none\",\"kid\":\"" KID "\",\"nonce\":\"" NONCE
	           "\",\"url\":\"" URL "\"}");
	snprintf(body, sizeof(body),
	         "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"AAAA\"}", p64);
	expect_refused(body, "malformed");
	free(p64);
}

static void parse_refuses_alg_none_hmac_and_unknown_algs(void **state)
{
	(void)state;
	static const char *const bad[] = {"none", "HS256", "HS512", "ES512", "PS256", "es256", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *body = t_jws(NULL, t_header(bad[i], NULL, KID), "{}");
		expect_refused(body, "badSignatureAlgorithm");
		free(body);
	}
	json_t *h = t_header("ES256", NULL, KID);
	json_object_del(h, "alg");
	char *body = t_jws(keys[K_P256], h, "{}");
	expect_refused(body, "malformed");
	free(body);
	h = t_header("ES256", NULL, KID);
	json_object_set_new(h, "alg", json_integer(-7));
	body = t_jws(keys[K_P256], h, "{}");
	expect_refused(body, "malformed");
	free(body);
}

static void parse_needs_exactly_one_of_jwk_and_kid(void **state)
{
	(void)state;
	char *body = t_jws(keys[K_P256], t_header("ES256", keys[K_P256], KID), "{}");
	expect_refused(body, "malformed");
	free(body);
	body = t_jws(keys[K_P256], t_header("ES256", NULL, NULL), "{}");
	expect_refused(body, "malformed");
	free(body);
	json_t *h = t_header("ES256", NULL, NULL);
	json_object_set_new(h, "kid", json_integer(1));
	body = t_jws(keys[K_P256], h, "{}");
	expect_refused(body, "malformed");
	free(body);
	h = t_header("ES256", NULL, NULL);
	json_object_set_new(h, "jwk", json_string("not an object"));
	body = t_jws(keys[K_P256], h, "{}");
	expect_refused(body, "badPublicKey");
	free(body);
}

static void parse_needs_nonce_and_url_strings_and_no_crit(void **state)
{
	(void)state;
	static const char *const drop[] = {"nonce", "url"};
	for (size_t i = 0; i < 2; i++) {
		json_t *h = t_header("ES256", NULL, KID);
		json_object_del(h, drop[i]);
		char *body = t_jws(keys[K_P256], h, "{}");
		expect_refused(body, "malformed");
		free(body);
		h = t_header("ES256", NULL, KID);
		json_object_set_new(h, drop[i], json_integer(5));
		body = t_jws(keys[K_P256], h, "{}");
		expect_refused(body, "malformed");
		free(body);
		h = t_header("ES256", NULL, KID);
		json_object_set_new(h, drop[i], json_string(""));
		body = t_jws(keys[K_P256], h, "{}");
		expect_refused(body, "malformed");
		free(body);
	}
	/* RFC 8555 6.5.2: a nonce that is not base64url is malformed. */
	json_t *h = t_header("ES256", NULL, KID);
	json_object_set_new(h, "nonce", json_string("bm9u+Y2U="));
	char *body = t_jws(keys[K_P256], h, "{}");
	expect_refused(body, "malformed");
	free(body);
	h = t_header("ES256", NULL, KID);
	json_object_set_new(h, "crit", json_pack("[s]", "b64"));
	json_object_set_new(h, "b64", json_false());
	body = t_jws(keys[K_P256], h, "{}");
	expect_refused(body, "malformed");
	free(body);
}

static void parse_refuses_a_jwk_that_does_not_fit_alg(void **state)
{
	(void)state;
	static const struct {
		const char *alg;
		int key;
	} bad[] = {{"ES384", K_P256}, {"ES256", K_P384}, {"ES256", K_RSA},
	           {"RS256", K_ED},   {"EdDSA", K_P256}, {"RS256", K_P256}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *body =
		    t_jws(keys[bad[i].key], t_header(bad[i].alg, keys[bad[i].key], NULL), "{}");
		expect_refused(body, "badPublicKey");
		free(body);
	}
}

/* Signs with a jwk edited by edit(jwk). */
static void expect_jwk_refused(int kind, void (*edit)(json_t *))
{
	json_t *h = t_header(alg_of[kind], keys[kind], NULL);
	edit(json_object_get(h, "jwk"));
	char *body = t_jws(keys[kind], h, "{}");
	expect_refused(body, "badPublicKey");
	free(body);
}

static void add_d(json_t *jwk)
{
	json_object_set_new(jwk, "d", json_string("AAAA"));
}
static void add_p(json_t *jwk)
{
	json_object_set_new(jwk, "p", json_string("AAAA"));
}
static void add_k(json_t *jwk)
{
	json_object_set_new(jwk, "k", json_string("AAAA"));
}
static void crv_p521(json_t *jwk)
{
	json_object_set_new(jwk, "crv", json_string("P-521"));
}
static void crv_ed448(json_t *jwk)
{
	json_object_set_new(jwk, "crv", json_string("Ed448"));
}
static void kty_oct(json_t *jwk)
{
	json_object_set_new(jwk, "kty", json_string("oct"));
}
static void no_y(json_t *jwk)
{
	json_object_del(jwk, "y");
}

/* The y coordinate changed by one bit: not on the curve. */
static void flip_y(json_t *jwk)
{
	const char *y = json_string_value(json_object_get(jwk, "y"));
	uint8_t *raw;
	size_t n;
	assert_int_equal(b64url_decode(y, strlen(y), &raw, &n), 0);
	raw[n - 1] ^= 1;
	char *y2 = b64url_encode(raw, n);
	json_object_set_new(jwk, "y", json_string(y2));
	free(y2);
	free(raw);
}

/* x without its first octet: short of the curve's width. */
static void short_x(json_t *jwk)
{
	const char *x = json_string_value(json_object_get(jwk, "x"));
	uint8_t *raw;
	size_t n;
	assert_int_equal(b64url_decode(x, strlen(x), &raw, &n), 0);
	char *x2 = b64url_encode(raw + 1, n - 1);
	json_object_set_new(jwk, "x", json_string(x2));
	free(x2);
	free(raw);
}

/* n with a leading zero octet: a second spelling of the same key. */
static void padded_n(json_t *jwk)
{
	const char *n64 = json_string_value(json_object_get(jwk, "n"));
	uint8_t *raw;
	size_t n;
	assert_int_equal(b64url_decode(n64, strlen(n64), &raw, &n), 0);
	uint8_t *p = xalloc(NULL, n + 1);
	p[0] = 0;
	memcpy(p + 1, raw, n);
	char *n2 = b64url_encode(p, n + 1);
	json_object_set_new(jwk, "n", json_string(n2));
	free(n2);
	free(p);
	free(raw);
}

static void parse_refuses_private_and_invalid_jwks(void **state)
{
	(void)state;
	expect_jwk_refused(K_P256, add_d);
	expect_jwk_refused(K_RSA, add_d);
	expect_jwk_refused(K_RSA, add_p);
	expect_jwk_refused(K_ED, add_d);
	expect_jwk_refused(K_P256, add_k);
	expect_jwk_refused(K_P256, crv_p521);
	expect_jwk_refused(K_ED, crv_ed448);
	expect_jwk_refused(K_P256, kty_oct);
	expect_jwk_refused(K_P256, no_y);
	expect_jwk_refused(K_P256, flip_y);
	expect_jwk_refused(K_P384, flip_y);
	expect_jwk_refused(K_P256, short_x);
	expect_jwk_refused(K_ED, short_x);
	expect_jwk_refused(K_RSA, padded_n);
}

static void parse_refuses_rsa_1024(void **state)
{
	(void)state;
	char *body = t_jws(rsa1024, t_header("RS256", rsa1024, NULL), "{}");
	expect_refused(body, "badPublicKey");
	free(body);
	EVP_PKEY *k = NULL;
	json_t *jwk = t_jwk(rsa1024);
	struct acmera_errmsg e = {{0}};
	assert_int_equal(ca_jwk_to_key(jwk, &k, &e), ACMERA_ERR_INVAL);
	assert_null(k);
	assert_non_null(strstr(e.text, "1024"));
	json_decref(jwk);
	/* while the 2048-bit key of the same shape is fine */
	jwk = t_jwk(keys[K_RSA]);
	assert_int_equal(ca_jwk_to_key(jwk, &k, &e), 0);
	assert_true(ca_key_equal(k, keys[K_RSA]));
	EVP_PKEY_free(k);
	json_decref(jwk);
}

/* body with member name's value replaced by value. */
static char *replace_member(const char *body, const char *name, const char *value)
{
	json_t *j = json_loads(body, 0, NULL);
	assert_non_null(j);
	json_object_set_new(j, name, json_string(value));
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

static void parse_refuses_bad_base64url(void **state)
{
	(void)state;
	char *body = client_jws(keys[K_P256], KID, NONCE, URL, "{\"a\":\"b\"}");
	json_t *j = json_loads(body, 0, NULL);
	static const char *const names[] = {"protected", "payload", "signature"};
	for (int i = 0; i < 3; i++) {
		const char *good = json_string_value(json_object_get(j, names[i]));
		size_t gl = strlen(good);
		static const char *const suffix[] = {"=", "==", "+", "/", " ", "\n", "A", "AA"};
		for (size_t s = 0; s < sizeof(suffix) / sizeof(suffix[0]); s++) {
			char *v = NULL;
			/* "A"s only where they make a length of 4k+1, which no octets have. */
			if (suffix[s][0] == 'A' && (gl + strlen(suffix[s])) % 4 != 1)
				continue;
			assert_true(asprintf(&v, "%s%s", good, suffix[s]) > 0);
			char *bad = replace_member(body, names[i], v);
			expect_refused(bad, "malformed");
			free(bad);
			free(v);
		}
	}
	json_decref(j);
	/* A non-canonical last character: "e30" is "{}", "e31" has unused bits set. */
	char *bad = replace_member(body, "payload", "e31");
	expect_refused(bad, "malformed");
	free(bad);
	/* protected decodes but is not a JSON object */
	char *p64 = b64s("[1,2]");
	bad = replace_member(body, "protected", p64);
	expect_refused(bad, "malformed");
	free(bad);
	free(p64);
	free(body);
}

static void parse_refuses_oversize_bodies(void **state)
{
	(void)state;
	struct acmera_errmsg e;
	size_t big = CA_JWS_MAX_BODY;
	char *payload = xalloc(NULL, big + 16);
	snprintf(payload, big + 16, "{\"x\":\"");
	memset(payload + 6, 'a', big - 8);
	snprintf(payload + big - 2, 18, "\"}");
	char *body = client_jws(keys[K_P256], KID, NONCE, URL, payload);
	assert_true(strlen(body) > CA_JWS_MAX_BODY);
	expect_refused(body, "malformed");
	free(body);
	free(payload);

	/* Just under the limit passes. */
	payload = xalloc(NULL, CA_JWS_MAX_BODY / 2);
	memset(payload, 'a', CA_JWS_MAX_BODY / 2 - 1);
	payload[CA_JWS_MAX_BODY / 2 - 1] = '\0';
	body = client_jws(keys[K_P256], KID, NONCE, URL, payload);
	assert_true(strlen(body) < CA_JWS_MAX_BODY);
	struct ca_jws j;
	parse_ok(body, &j);
	assert_int_equal(j.payload_len, CA_JWS_MAX_BODY / 2 - 1);
	assert_int_equal(ca_jws_verify(&j, keys[K_P256], NULL, &e), 0);
	ca_jws_free(&j);
	free(body);
	free(payload);
}

/* The signature of body decoded, passed to edit, and put back. */
static char *edit_signature(const char *body, void (*edit)(uint8_t **, size_t *))
{
	json_t *j = json_loads(body, 0, NULL);
	const char *s64 = json_string_value(json_object_get(j, "signature"));
	uint8_t *sig;
	size_t n;
	assert_int_equal(b64url_decode(s64, strlen(s64), &sig, &n), 0);
	json_decref(j);
	edit(&sig, &n);
	char *s2 = b64url_encode(sig, n);
	char *res = replace_member(body, "signature", s2);
	free(s2);
	free(sig);
	return res;
}

static void flip_bit(uint8_t **sig, size_t *n)
{
	(*sig)[*n / 2] ^= 0x10;
}
static void drop_last(uint8_t **sig, size_t *n)
{
	(*n)--;
}
static void add_zero(uint8_t **sig, size_t *n)
{
	*sig = xalloc(*sig, *n + 1);
	(*sig)[(*n)++] = 0;
}
/* What a client that forgets the r||s conversion sends: DER ECDSA-Sig-Value. */
static void to_der(uint8_t **sig, size_t *n)
{
	size_t w = *n / 2;
	ECDSA_SIG *es = ECDSA_SIG_new();
	ECDSA_SIG_set0(es, BN_bin2bn(*sig, (int)w, NULL), BN_bin2bn(*sig + w, (int)w, NULL));
	uint8_t *der = NULL;
	int len = i2d_ECDSA_SIG(es, &der);
	assert_true(len > 0);
	free(*sig);
	*sig = xalloc(NULL, (size_t)len);
	memcpy(*sig, der, (size_t)len);
	*n = (size_t)len;
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
}

static void verify_refuses_bad_signatures_and_wrong_lengths(void **state)
{
	(void)state;
	void (*edits[])(uint8_t **, size_t *) = {flip_bit, drop_last, add_zero};
	for (int k = 0; k < K_COUNT; k++) {
		char *body = t_jws(keys[k], t_header(alg_of[k], NULL, KID), "{\"x\":1}");
		struct ca_jws j;
		parse_ok(body, &j);
		assert_int_equal(ca_jws_verify(&j, keys[k], NULL, NULL), 0);
		ca_jws_free(&j);
		for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
			char *bad = edit_signature(body, edits[i]);
			parse_ok(bad, &j);
			expect_verify_fails(&j, keys[k], "malformed");
			ca_jws_free(&j);
			free(bad);
		}
		if (k == K_P256 || k == K_P384) {
			char *bad = edit_signature(body, to_der);
			parse_ok(bad, &j);
			expect_verify_fails(&j, keys[k], "malformed");
			ca_jws_free(&j);
			free(bad);
		}
		/* The signature of another payload. */
		char *other = t_jws(keys[k], t_header(alg_of[k], NULL, KID), "{\"x\":2}");
		json_t *oj = json_loads(other, 0, NULL);
		char *bad = replace_member(body, "signature",
		                           json_string_value(json_object_get(oj, "signature")));
		parse_ok(bad, &j);
		expect_verify_fails(&j, keys[k], "malformed");
		ca_jws_free(&j);
		free(bad);
		json_decref(oj);
		free(other);
		free(body);
	}
	/* A struct that failed to parse is not verified. */
	struct ca_jws none;
	memset(&none, 0, sizeof(none));
	expect_verify_fails(&none, keys[K_P256], "malformed");
	expect_verify_fails(NULL, keys[K_P256], "malformed");
}

/* A verifier is set up once and used for many requests: each verification, passed or
 * failed, leaves it as it was, and a copy works on its own. */
static void verifier_verifies_again_and_again_and_its_copies_too(void **state)
{
	(void)state;
	for (int k = 0; k < K_COUNT; k++) {
		char *body = t_jws(keys[k], t_header(alg_of[k], NULL, KID), "{\"x\":1}");
		char *bad = edit_signature(body, flip_bit);
		struct ca_jws j, b;
		parse_ok(body, &j);
		parse_ok(bad, &b);
		struct ca_jws_verifier *v = NULL, *copy = NULL;
		assert_int_equal(ca_jws_verifier_new(keys[k], &v, NULL), 0);
		assert_ptr_equal(ca_jws_verifier_key(v), keys[k]);
		assert_non_null(copy = ca_jws_verifier_dup(v));
		assert_ptr_equal(ca_jws_verifier_key(copy), keys[k]);
		for (int i = 0; i < 3; i++) {
			struct ca_jws_verifier *use = i % 2 ? copy : v;
			const char *problem = "unset";
			assert_int_equal(ca_jws_verify_with(&j, use, &problem, NULL), 0);
			assert_null(problem);
			assert_int_equal(ca_jws_verify_with(&b, use, &problem, NULL),
			                 ACMERA_ERR_INVAL);
			assert_string_equal(problem, "malformed");
		}
		ca_jws_verifier_free(v); /* the copy stands alone */
		assert_int_equal(ca_jws_verify_with(&j, copy, NULL, NULL), 0);
		expect_verify_fails(&j, keys[(k + 1) % K_COUNT], "badSignatureAlgorithm");
		ca_jws_verifier_free(copy);
		ca_jws_free(&j);
		ca_jws_free(&b);
		free(body);
		free(bad);
	}
	struct ca_jws_verifier *v = NULL;
	assert_int_equal(ca_jws_verifier_new(rsa1024, &v, NULL), ACMERA_ERR_INVAL);
	assert_null(v);
	assert_int_equal(ca_jws_verifier_new(NULL, &v, NULL), ACMERA_ERR_INVAL);
	assert_null(ca_jws_verifier_dup(NULL));
	ca_jws_verifier_free(NULL);
}

/* ---- external account binding ---- */

static const uint8_t MAC_KEY[32] = "0123456789abcdef0123456789abcdef";
#define NEW_ACCOUNT "https://ca.test/acme/new-account"

static json_t *client_eab(EVP_PKEY *k, const char *url)
{
	char *mk = b64url_encode(MAC_KEY, sizeof(MAC_KEY));
	struct acmera_errmsg e;
	json_t *eab = jws_eab(k, "eab-kid-1", mk, url, &e);
	free(mk);
	assert_non_null(eab);
	return eab;
}

/* An EAB built here: header and payload text, HMAC with md. */
static json_t *t_eab(const char *header, const char *payload, const char *md)
{
	char *p64 = b64s(header), *pl64 = b64s(payload);
	char input[4096];
	snprintf(input, sizeof(input), "%s.%s", p64, pl64);
	uint8_t mac[64];
	size_t maclen = 0;
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, md, NULL, MAC_KEY, sizeof(MAC_KEY),
	                          (const uint8_t *)input, strlen(input), mac, sizeof(mac),
	                          &maclen));
	char *s64 = b64url_encode(mac, maclen);
	json_t *eab =
	    json_pack("{s:s, s:s, s:s}", "protected", p64, "payload", pl64, "signature", s64);
	free(p64);
	free(pl64);
	free(s64);
	return eab;
}

static void eab_accepts_the_client_binding_and_returns_the_kid(void **state)
{
	(void)state;
	for (int k = K_P256; k <= K_RSA; k++) {
		json_t *eab = client_eab(keys[k], NEW_ACCOUNT), *jwk = t_jwk(keys[k]);
		char *kid = NULL;
		struct acmera_errmsg e = {{0}};
		/* step one: the kid, no key yet */
		assert_int_equal(ca_eab_verify(eab, jwk, NEW_ACCOUNT, NULL, 0, &kid, &e), 0);
		assert_string_equal(kid, "eab-kid-1");
		free(kid);
		kid = NULL;
		/* step two: with the key */
		int rc = ca_eab_verify(eab, jwk, NEW_ACCOUNT, MAC_KEY, sizeof(MAC_KEY), &kid, &e);
		if (rc)
			print_error("%s\n", e.text);
		assert_int_equal(rc, 0);
		assert_string_equal(kid, "eab-kid-1");
		free(kid);
		json_decref(eab);
		json_decref(jwk);
	}
}

static void eab_accepts_hs384_and_hs512_and_ed25519_accounts(void **state)
{
	(void)state;
	json_t *jwk = t_jwk(keys[K_ED]);
	char *jt = json_dumps(jwk, JSON_COMPACT);
	static const char *const algs[][2] = {{"HS384", "SHA384"}, {"HS512", "SHA512"}};
	for (int i = 0; i < 2; i++) {
		char h[256];
		snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"kid\":\"k2\",\"url\":\"%s\"}", algs[i][0],
		         NEW_ACCOUNT);
		json_t *eab = t_eab(h, jt, algs[i][1]);
		char *kid = NULL;
		assert_int_equal(
		    ca_eab_verify(eab, jwk, NEW_ACCOUNT, MAC_KEY, sizeof(MAC_KEY), &kid, NULL), 0);
		assert_string_equal(kid, "k2");
		free(kid);
		json_decref(eab);
	}
	free(jt);
	json_decref(jwk);
}

static void eab_refuses_wrong_mac_url_key_and_shape(void **state)
{
	(void)state;
	json_t *jwk = t_jwk(keys[K_P256]), *other = t_jwk(others[K_P256]);
	json_t *eab = client_eab(keys[K_P256], NEW_ACCOUNT);
	char *kid = (char *)"sentinel";
	struct acmera_errmsg e = {{0}};
	uint8_t wrong[32];
	memcpy(wrong, MAC_KEY, sizeof(wrong));
	wrong[31] ^= 1;
	assert_int_equal(ca_eab_verify(eab, jwk, NEW_ACCOUNT, wrong, sizeof(wrong), &kid, &e),
	                 ACMERA_ERR_INVAL);
	assert_null(kid);
	assert_non_null(strstr(e.text, "MAC"));
	/* a shorter key with the same prefix */
	assert_int_equal(ca_eab_verify(eab, jwk, NEW_ACCOUNT, MAC_KEY, 16, &kid, &e),
	                 ACMERA_ERR_INVAL);
	/* a url other than the outer one */
	assert_int_equal(
	    ca_eab_verify(eab, jwk, NEW_ACCOUNT "/x", MAC_KEY, sizeof(MAC_KEY), &kid, &e),
	    ACMERA_ERR_INVAL);
	assert_int_equal(ca_eab_verify(eab, jwk, NEW_ACCOUNT "/x", NULL, 0, &kid, &e),
	                 ACMERA_ERR_INVAL);
	/* the binding covers another key than the account's */
	assert_int_equal(ca_eab_verify(eab, other, NEW_ACCOUNT, MAC_KEY, sizeof(MAC_KEY), &kid, &e),
	                 ACMERA_ERR_INVAL);
	assert_int_equal(ca_eab_verify(eab, other, NEW_ACCOUNT, NULL, 0, &kid, &e),
	                 ACMERA_ERR_INVAL);
	assert_int_equal(ca_eab_verify(eab, NULL, NEW_ACCOUNT, NULL, 0, &kid, &e),
	                 ACMERA_ERR_INVAL);
	/* an unprotected header member */
	json_t *copy = json_deep_copy(eab);
	json_object_set_new(copy, "header", json_object());
	assert_int_equal(ca_eab_verify(copy, jwk, NEW_ACCOUNT, MAC_KEY, sizeof(MAC_KEY), &kid, &e),
	                 ACMERA_ERR_INVAL);
	json_decref(copy);
	/* a truncated MAC */
	const char *s64 = json_string_value(json_object_get(eab, "signature"));
	char trunc[64];
	snprintf(trunc, sizeof(trunc), "%.40s", s64);
	copy = json_deep_copy(eab);
	json_object_set_new(copy, "signature", json_string(trunc));
	assert_int_equal(ca_eab_verify(copy, jwk, NEW_ACCOUNT, MAC_KEY, sizeof(MAC_KEY), &kid, &e),
	                 ACMERA_ERR_INVAL);
	/* refused already in step one, before any key is looked up */
	assert_int_equal(ca_eab_verify(copy, jwk, NEW_ACCOUNT, NULL, 0, &kid, &e),
	                 ACMERA_ERR_INVAL);
	json_decref(copy);
	json_decref(eab);

	char *jt = json_dumps(jwk, JSON_COMPACT);
	static const char *const headers[] = {
	    "{\"alg\":\"HS256\",\"kid\":\"k\",\"nonce\":\"" NONCE "\",\"url\":\"" NEW_ACCOUNT "\"}",
	    "{\"alg\":\"ES256\",\"kid\":\"k\",\"url\":\"" NEW_ACCOUNT "\"}",
	    "{\"alg\":\"none\",\"kid\":\"k\",\"url\":\"" NEW_ACCOUNT "\"}",
	    "{\"alg\":\"HS256\",\"url\":\"" NEW_ACCOUNT "\"}",
	    "{\"alg\":\"HS256\",\"kid\":7,\"url\":\"" NEW_ACCOUNT "\"}",
	    "{\"alg\":\"HS256\",\"kid\":\"k\"}",
	    "{\"alg\":\"HS256\",\"kid\":\"k\",\"kid\":\"j\",\"url\":\"" NEW_ACCOUNT "\"}",
	};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		json_t *bad = t_eab(headers[i], jt, "SHA256");
		assert_int_equal(
		    ca_eab_verify(bad, jwk, NEW_ACCOUNT, MAC_KEY, sizeof(MAC_KEY), &kid, &e),
		    ACMERA_ERR_INVAL);
		json_decref(bad);
	}
	/* sanity: the same builder with a good header passes */
	json_t *good =
	    t_eab("{\"alg\":\"HS256\",\"kid\":\"k\",\"url\":\"" NEW_ACCOUNT "\"}", jt, "SHA256");
	assert_int_equal(ca_eab_verify(good, jwk, NEW_ACCOUNT, MAC_KEY, sizeof(MAC_KEY), &kid, &e),
	                 0);
	free(kid);
	json_decref(good);
	/* a payload with a private member */
	json_t *priv = json_deep_copy(jwk);
	json_object_set_new(priv, "d", json_string("AAAA"));
	char *pt = json_dumps(priv, JSON_COMPACT);
	good = t_eab("{\"alg\":\"HS256\",\"kid\":\"k\",\"url\":\"" NEW_ACCOUNT "\"}", pt, "SHA256");
	assert_int_equal(ca_eab_verify(good, jwk, NEW_ACCOUNT, MAC_KEY, sizeof(MAC_KEY), &kid, &e),
	                 ACMERA_ERR_INVAL);
	json_decref(good);
	free(pt);
	json_decref(priv);
	free(jt);
	json_decref(jwk);
	json_decref(other);
}

/* ---- key change ---- */

#define KEY_CHANGE "https://ca.test/acme/key-change"

static void key_change_accepts_the_client_inner_jws(void **state)
{
	(void)state;
	for (int o = K_P256; o <= K_RSA; o++) {
		int n = (o + 1) % 3;
		struct acmera_errmsg e = {{0}};
		char *inner = jws_key_change_inner(keys[n], keys[o], KID, KEY_CHANGE, &e);
		assert_non_null(inner);
		EVP_PKEY *nk = NULL;
		const char *problem = "unset";
		int rc = ca_key_change_verify(inner, strlen(inner), KEY_CHANGE, KID, keys[o], &nk,
		                              &problem, &e);
		if (rc)
			print_error("%s\n", e.text);
		assert_int_equal(rc, 0);
		assert_null(problem);
		assert_true(ca_key_equal(nk, keys[n]));
		EVP_PKEY_free(nk);
		free(inner);
	}
}

static void expect_key_change_refused(const char *inner, EVP_PKEY *old, const char *url,
                                      const char *want)
{
	EVP_PKEY *nk = (EVP_PKEY *)1;
	const char *problem = NULL;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(
	    ca_key_change_verify(inner, strlen(inner), url, KID, old, &nk, &problem, &e),
	    ACMERA_ERR_INVAL);
	assert_null(nk);
	assert_non_null(problem);
	assert_string_equal(problem, want);
}

static void key_change_refuses_mismatches(void **state)
{
	(void)state;
	struct acmera_errmsg e;
	char *inner = jws_key_change_inner(keys[K_P384], keys[K_P256], KID, KEY_CHANGE, &e);
	/* another url, another account key, another account */
	expect_key_change_refused(inner, keys[K_P256], URL, "malformed");
	expect_key_change_refused(inner, others[K_P256], KEY_CHANGE, "malformed");
	EVP_PKEY *nk = NULL;
	assert_int_equal(ca_key_change_verify(inner, strlen(inner), KEY_CHANGE, KID "2",
	                                      keys[K_P256], &nk, NULL, &e),
	                 ACMERA_ERR_INVAL);
	assert_null(nk);
	/* a tampered signature */
	char *bad = edit_signature(inner, flip_bit);
	expect_key_change_refused(bad, keys[K_P256], KEY_CHANGE, "malformed");
	free(bad);
	free(inner);

	char payload[2048];
	json_t *old = t_jwk(keys[K_P256]);
	char *ot = json_dumps(old, JSON_COMPACT);
	snprintf(payload, sizeof(payload), "{\"account\":\"%s\",\"oldKey\":%s}", KID, ot);
	/* with kid instead of jwk */
	json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "ES384", "kid", KID, "url", KEY_CHANGE);
	bad = t_jws(keys[K_P384], h, payload);
	expect_key_change_refused(bad, keys[K_P256], KEY_CHANGE, "malformed");
	free(bad);
	/* with a nonce */
	h = t_header("ES384", keys[K_P384], NULL);
	json_object_set_new(h, "url", json_string(KEY_CHANGE));
	bad = t_jws(keys[K_P384], h, payload);
	expect_key_change_refused(bad, keys[K_P256], KEY_CHANGE, "malformed");
	free(bad);
	/* a new key that is not acceptable */
	h = json_pack("{s:s, s:s}", "alg", "RS256", "url", KEY_CHANGE);
	json_object_set_new(h, "jwk", t_jwk(rsa1024));
	bad = t_jws(rsa1024, h, payload);
	expect_key_change_refused(bad, keys[K_P256], KEY_CHANGE, "badPublicKey");
	free(bad);
	/* Ed25519 new key built here passes; then payloads that are wrong */
	static const char *const payloads[] = {"", "[]", "{\"account\":\"" KID "\"}",
	                                       "{\"oldKey\":{}}", NULL};
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		h = json_pack("{s:s, s:s}", "alg", "EdDSA", "url", KEY_CHANGE);
		json_object_set_new(h, "jwk", t_jwk(keys[K_ED]));
		bad = t_jws(keys[K_ED], h, payloads[i] ? payloads[i] : payload);
		if (payloads[i]) {
			expect_key_change_refused(bad, keys[K_P256], KEY_CHANGE, "malformed");
		} else {
			assert_int_equal(ca_key_change_verify(bad, strlen(bad), KEY_CHANGE, KID,
			                                      keys[K_P256], &nk, NULL, &e),
			                 0);
			assert_true(ca_key_equal(nk, keys[K_ED]));
			EVP_PKEY_free(nk);
		}
		free(bad);
	}
	free(ot);
	json_decref(old);
}

static void jwk_to_key_round_trips_every_kind(void **state)
{
	(void)state;
	for (int k = 0; k < K_COUNT; k++) {
		json_t *jwk = t_jwk(keys[k]);
		EVP_PKEY *out = NULL;
		assert_int_equal(ca_jwk_to_key(jwk, &out, NULL), 0);
		assert_true(ca_key_equal(out, keys[k]));
		assert_false(ca_key_equal(out, others[k]));
		assert_false(ca_key_equal(out, keys[(k + 1) % K_COUNT]));
		EVP_PKEY_free(out);
		json_decref(jwk);
	}
	assert_false(ca_key_equal(NULL, keys[0]));
	assert_false(ca_key_equal(keys[0], NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_accepts_client_jws_with_jwk_and_verifies),
	    cmocka_unit_test(parse_accepts_kid_and_verifies_only_with_the_account_key),
	    cmocka_unit_test(eddsa_with_jwk_and_with_kid_verifies),
	    cmocka_unit_test(post_as_get_has_an_empty_payload),
	    cmocka_unit_test(trailing_whitespace_is_accepted_but_trailing_garbage_is_not),
	    cmocka_unit_test(parse_refuses_missing_or_extra_members),
	    cmocka_unit_test(parse_refuses_duplicate_members),
	    cmocka_unit_test(parse_refuses_alg_none_hmac_and_unknown_algs),
	    cmocka_unit_test(parse_needs_exactly_one_of_jwk_and_kid),
	    cmocka_unit_test(parse_needs_nonce_and_url_strings_and_no_crit),
	    cmocka_unit_test(parse_refuses_a_jwk_that_does_not_fit_alg),
	    cmocka_unit_test(parse_refuses_private_and_invalid_jwks),
	    cmocka_unit_test(parse_refuses_rsa_1024),
	    cmocka_unit_test(parse_refuses_bad_base64url),
	    cmocka_unit_test(parse_refuses_oversize_bodies),
	    cmocka_unit_test(verify_refuses_bad_signatures_and_wrong_lengths),
	    cmocka_unit_test(verifier_verifies_again_and_again_and_its_copies_too),
	    cmocka_unit_test(eab_accepts_the_client_binding_and_returns_the_kid),
	    cmocka_unit_test(eab_accepts_hs384_and_hs512_and_ed25519_accounts),
	    cmocka_unit_test(eab_refuses_wrong_mac_url_key_and_shape),
	    cmocka_unit_test(key_change_accepts_the_client_inner_jws),
	    cmocka_unit_test(key_change_refuses_mismatches),
	    cmocka_unit_test(jwk_to_key_round_trips_every_kind),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
