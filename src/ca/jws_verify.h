/* Server-side JWS for `acmera ca`: parses and verifies the flattened JWS of every
 * ACME POST (RFC 8555 6.2, 6.3; RFC 7515), external account binding (7.3.4) and key
 * change (7.3.5). Algorithms: ES256 (P-256), ES384 (P-384), RS256 (RSA 2048..8192
 * bits, PKCS#1 v1.5) and EdDSA (Ed25519, RFC 8037).
 *
 * Failures return ACMERA_ERR_INVAL (ACMERA_ERR_NOMEM when memory ran out) with a
 * reason in e; where a problem pointer is given it gets the RFC 8555 error type
 * suffix to answer with ("malformed", "badSignatureAlgorithm", "badPublicKey"). */
#ifndef ACMERA_CA_JWS_VERIFY_H
#define ACMERA_CA_JWS_VERIFY_H

#include "base/err.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define CA_JWS_MAX_BODY 65536

struct ca_jws {
	char alg[8];        /* "ES256" "ES384" "RS256" "EdDSA" */
	char *nonce;        /* from the protected header (heap); NULL in a key change inner JWS */
	char *url;          /* from the protected header (heap) */
	char *kid;          /* account URL, or NULL when jwk is used */
	EVP_PKEY *key;      /* the jwk's key when jwk is used, else NULL */
	json_t *jwk;        /* the jwk object (owned ref) or NULL */
	uint8_t *payload;   /* decoded payload (heap), NUL-terminated for convenience */
	size_t payload_len; /* without that NUL */
	int post_as_get;    /* payload was the empty string */
	/* kept for verification */
	char *signing_input; /* protected_b64 "." payload_b64 */
	uint8_t *sig;
	size_t sig_len;
};

/* Parses a flattened JWS (exactly the members protected, payload, signature; no
 * "header" member; RFC 8555 6.2): size <= CA_JWS_MAX_BODY; alg one of the four (never
 * "none", never HS*); exactly one of jwk / kid; nonce (base64url) and url present
 * strings; no "crit"; jwk must be a public key of an allowed kind (EC P-256 with ES256,
 * P-384 with ES384, RSA >= 2048 bits with RS256, OKP Ed25519 with EdDSA) and carry no
 * private members ("d", "p", ...). The signature is NOT checked here: call
 * ca_jws_verify. On success out is filled (free with ca_jws_free); on failure out is
 * left empty and *problem (may be NULL) is set to "malformed", "badSignatureAlgorithm"
 * (alg not supported) or "badPublicKey" (jwk refused, or not of alg's kind). */
int ca_jws_parse(const char *body, size_t len, struct ca_jws *out, const char **problem,
                 struct acmera_errmsg *e);

/* Verifies j's signature with key (the jwk's own, or the account's stored key for kid).
 * alg must match the key type (else badSignatureAlgorithm; a key of a kind not allowed
 * gives badPublicKey). EC signatures are r||s of the curve's fixed width. Returns 0, or
 * ACMERA_ERR_INVAL with *problem "malformed" for a bad signature (or one of the wrong
 * length). */
int ca_jws_verify(const struct ca_jws *j, EVP_PKEY *key, const char **problem,
                  struct acmera_errmsg *e);

/* Verification by one key, set up once: its kind is found and an OpenSSL context
 * initialised (EVP_DigestVerifyInit with its algorithm's digest and padding). Each
 * verification then works on a copy of that context, which costs about a tenth of
 * setting one up. acmera ca keeps one per cached account key (key_cache.h). Holds a
 * reference to key. Not thread-safe: a verifier is used by one thread at a time, and
 * ca_jws_verifier_dup gives another thread one of its own. */
struct ca_jws_verifier;
/* ACMERA_ERR_INVAL when key is not of an allowed kind. */
int ca_jws_verifier_new(EVP_PKEY *key, struct ca_jws_verifier **out, struct acmera_errmsg *e);
/* A copy of v, the caller's own; NULL when out of memory. Reads v only. */
struct ca_jws_verifier *ca_jws_verifier_dup(const struct ca_jws_verifier *v);
/* The key v was made for (v's reference, valid while v is). */
EVP_PKEY *ca_jws_verifier_key(const struct ca_jws_verifier *v);
/* ca_jws_verify with v's key: the same checks, answers and problems. */
int ca_jws_verify_with(const struct ca_jws *j, struct ca_jws_verifier *v, const char **problem,
                       struct acmera_errmsg *e);
void ca_jws_verifier_free(struct ca_jws_verifier *v);

/* A JWK (json object) to a new public key (*out, EVP_PKEY_free), with the kind rules
 * above: EC P-256/P-384 with full-width coordinates on the curve, RSA 2048..8192 bits
 * with a minimal-octet odd modulus and an odd exponent 3..2^256, OKP Ed25519; no
 * private members. */
int ca_jwk_to_key(const json_t *jwk, EVP_PKEY **out, struct acmera_errmsg *e);

/* 1 when a and b are the same public key, else 0 (also when either is NULL). */
int ca_key_equal(EVP_PKEY *a, EVP_PKEY *b);

/* External account binding (RFC 8555 7.3.4): eab is the newAccount payload's
 * externalAccountBinding object; checks it is a flattened JWS with alg HS256 (HS384/512
 * also accepted), a kid, no nonce, url == outer_url, payload == outer_jwk (compared as
 * keys), and the HMAC with hmac_key (raw bytes), compared in constant time. The kid is
 * not checked here but returned in *kid_out (heap, free(); NULL on failure).
 * Two-step use: call with hmac_key NULL to get the kid only (0 then means only that
 * everything but the MAC is right), then again with the key looked up for that kid. */
int ca_eab_verify(const json_t *eab, const json_t *outer_jwk, const char *outer_url,
                  const uint8_t *hmac_key, size_t hmac_key_len, char **kid_out,
                  struct acmera_errmsg *e);

/* keyChange (RFC 8555 7.3.5): inner_body is the outer payload, parsed as a JWS; checks
 * inner has a jwk (not kid) and no nonce, the same url as outer, a valid signature by
 * its jwk, payload {"account": account_url, "oldKey": jwk equal to old_key}. On success
 * *new_key is the inner jwk's key (caller frees). The caller still has to check that
 * no other account already uses *new_key (409 conflict). */
int ca_key_change_verify(const char *inner_body, size_t len, const char *outer_url,
                         const char *account_url, EVP_PKEY *old_key, EVP_PKEY **new_key,
                         const char **problem, struct acmera_errmsg *e);

/* Frees what j holds and zeroes it; safe on a zeroed or already freed struct. */
void ca_jws_free(struct ca_jws *j);

#endif
