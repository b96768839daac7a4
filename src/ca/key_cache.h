/* Account keys as EVP_PKEYs, by the JWK text the store keeps: turning a JWK into
 * a key (JSON parse, then OpenSSL 3.0's EVP_PKEY_fromdata) costs more than the
 * signature check, and every request of an account carries the same key. Each key
 * is kept with its verifier (jws_verify.h), so that a request does not set up
 * OpenSSL's verification again either. The text is the key, so a keyChange or a new
 * account simply misses. Thread-safe. */
#ifndef ACMERA_CA_KEY_CACHE_H
#define ACMERA_CA_KEY_CACHE_H

#include "base/err.h"
#include "ca/jws_verify.h"

#include <openssl/evp.h>
#include <stddef.h>

struct ca_key_cache;

/* A cache of slots entries (1..65536); the newest key in a slot replaces the old. */
int ca_key_cache_new(size_t slots, struct ca_key_cache **out, struct acmera_errmsg *e);
/* The key of jwk_text (a JSON Web Key): from the cache, or made and kept.
 * *key is a reference of the caller's own (EVP_PKEY_free). When v is not NULL, *v is
 * a verifier of that key of the caller's own (ca_jws_verifier_free), or NULL when
 * memory ran short (ca_jws_verify with *key then does the same). ACMERA_ERR_INVAL
 * when the text is not a usable key, which is not kept. */
int ca_key_cache_get(struct ca_key_cache *c, const char *jwk_text, EVP_PKEY **key,
                     struct ca_jws_verifier **v, struct acmera_errmsg *e);
void ca_key_cache_free(struct ca_key_cache *c);

#endif
