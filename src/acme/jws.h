/* JSON Web Signatures as ACME uses them (RFC 8555 section 6.2, RFC 7515 flattened
 * JSON serialization): ES256 (P-256, the default), ES384 (P-384), RS256 (RSA
 * >= 2048 bits). EC signatures are converted from DER to the fixed-width r||s. */
#ifndef ACMERA_ACME_JWS_H
#define ACMERA_ACME_JWS_H

#include "base/err.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* The kinds of account key this project's JWS code knows (RFC 7518: ES256 on P-256,
 * ES384 on P-384, RS256 on RSA of JWS_RSA_MIN_BITS..JWS_RSA_MAX_BITS; RFC 8037: EdDSA on
 * Ed25519), and JWS_KEY_NONE for any other key. The client signs with the first three;
 * acmera ca verifies all four. */
enum jws_key_kind { JWS_KEY_NONE, JWS_KEY_P256, JWS_KEY_P384, JWS_KEY_RSA, JWS_KEY_ED25519 };
#define JWS_RSA_MIN_BITS 2048
#define JWS_RSA_MAX_BITS 8192 /* bounds signing and verification cost and JWK buffers */
enum jws_key_kind jws_key_kind(EVP_PKEY *key);

enum acme_key_type {
	ACME_KEY_P256,
	ACME_KEY_P384,
	ACME_KEY_RSA2048,
	ACME_KEY_RSA3072,
	ACME_KEY_RSA4096
};

/* Parses "p256"/"ec256", "p384"/"ec384", "rsa2048", "rsa3072", "rsa4096"; -1 if unknown. */
int acme_key_type_parse(const char *s);
/* A fresh account key. */
int acme_key_generate(enum acme_key_type type, EVP_PKEY **out, struct acmera_errmsg *e);
/* PKCS#8 PEM (heap string; a secret) and back. Refuses keys of other kinds
 * (only P-256, P-384, RSA >= 2048). */
char *acme_key_to_pem(EVP_PKEY *key);
int acme_key_from_pem(const char *pem, EVP_PKEY **out, struct acmera_errmsg *e);

/* "ES256", "ES384" or "RS256" for key. */
const char *jws_alg(EVP_PKEY *key);
/* The public JWK of key with members in lexicographic order (RFC 7638), as a new
 * json object. */
json_t *jws_jwk(EVP_PKEY *key);
/* RFC 7638 thumbprint, base64url of SHA-256 (heap string). */
char *jws_thumbprint(EVP_PKEY *key);

/* Signs payload (NULL for POST-as-GET, which sends an empty payload string) with
 * a protected header {alg, nonce, url, and kid when kid != NULL else jwk}.
 * Returns the flattened JWS as compact JSON text (heap string). */
char *jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
               const char *payload, struct acmera_errmsg *e);

/* An account key made ready to sign many JWSs: its kind is found once and an OpenSSL
 * signing context is set up once (EVP_DigestSignInit). Each signature then works on a
 * copy of that context, which costs about a tenth of setting one up. The signatures
 * are the ones jws_sign makes. It holds a reference to key. Not thread-safe: one
 * thread at a time uses it (an acme_client's). */
struct jws_signer;
int jws_signer_new(EVP_PKEY *key, struct jws_signer **out, struct acmera_errmsg *e);
/* The key s was made for (s's reference, valid while s is). */
EVP_PKEY *jws_signer_key(const struct jws_signer *s);
/* jws_sign with s's key. */
char *jws_signer_sign(struct jws_signer *s, const char *kid, const char *nonce, const char *url,
                      const char *payload, struct acmera_errmsg *e);
void jws_signer_free(struct jws_signer *s);

/* External account binding (RFC 8555 7.3.4): a JWS over the account's JWK,
 * signed with HS256 using the CA-provided MAC key (base64url), header
 * {alg: HS256, kid: eab_kid, url: newAccount URL}. Returns a new json object. */
json_t *jws_eab(EVP_PKEY *account_key, const char *eab_kid, const char *hmac_key_b64url,
                const char *url, struct acmera_errmsg *e);

/* Key rollover inner JWS (RFC 8555 7.3.5): signed by new_key with its jwk, url =
 * keyChange URL, payload {account: kid, oldKey: jwk(old_key)}. Heap JSON text. */
char *jws_key_change_inner(EVP_PKEY *new_key, EVP_PKEY *old_key, const char *kid, const char *url,
                           struct acmera_errmsg *e);

/* dns-01 TXT value for a challenge token: base64url(SHA-256(token "." thumbprint)). */
char *acme_dns01_value(const char *token, const char *thumbprint);

#endif
