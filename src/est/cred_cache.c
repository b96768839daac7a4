/* See cred_cache.h. */
#include "est/cred_cache.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

struct cred_slot {
	uint8_t key[32];
	uint8_t entry[32]; /* SHA-256 of the entry's hash string */
	int64_t expires;   /* 0: empty */
};

struct cred_cache {
	uint8_t secret[32];
	int ttl;
	EVP_MD *sha256; /* fetched once: an implicit fetch per digest costs more than the digest */
	struct cred_slot slots[CRED_CACHE_SLOTS];
};

int cred_cache_new(int ttl_s, struct cred_cache **out, struct acmera_errmsg *e)
{
	struct cred_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	if (RAND_bytes(c->secret, sizeof(c->secret)) != 1) {
		free(c);
		return acmera_fail(e, ACMERA_ERR_IO, "no random bytes for the credential cache");
	}
	if (!(c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) {
		free(c);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "no SHA-256 for the credential cache");
	}
	c->ttl = ttl_s > 0 ? ttl_s : 0;
	*out = c;
	return 0;
}

void cred_cache_free(struct cred_cache *c)
{
	if (!c)
		return;
	EVP_MD_free(c->sha256);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

static void sha256_parts(const struct cred_cache *c, const void *a, size_t alen, const void *b,
                         size_t blen, uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	/* On failure out is all zeros: a key no put ever matches with a real entry. */
	memset(out, 0, 32);
	if (ctx && EVP_DigestInit_ex2(ctx, c->sha256, NULL) == 1 &&
	    EVP_DigestUpdate(ctx, a, alen) == 1 &&
	    (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1))
		EVP_DigestFinal_ex(ctx, out, &n);
	EVP_MD_CTX_free(ctx);
}

void cred_cache_key(const struct cred_cache *c, const char *authorization, uint8_t key[32])
{
	sha256_parts(c, c->secret, sizeof(c->secret), authorization, strlen(authorization), key);
}

static struct cred_slot *slot_of(const struct cred_cache *c, const uint8_t key[32])
{
	/* The key is a keyed hash: its first bytes index the table uniformly. */
	uint32_t i = (uint32_t)key[0] | (uint32_t)key[1] << 8 | (uint32_t)key[2] << 16;
	return (struct cred_slot *)&c->slots[i % CRED_CACHE_SLOTS];
}

int cred_cache_hit(const struct cred_cache *c, const uint8_t key[32], const char *entry_hash,
                   int64_t now)
{
	if (c->ttl == 0)
		return 0;
	const struct cred_slot *s = slot_of(c, key);
	if (s->expires <= now || CRYPTO_memcmp(s->key, key, 32) != 0)
		return 0;
	uint8_t entry[32];
	sha256_parts(c, entry_hash, strlen(entry_hash), NULL, 0, entry);
	return CRYPTO_memcmp(s->entry, entry, 32) == 0;
}

void cred_cache_put(struct cred_cache *c, const uint8_t key[32], const char *entry_hash,
                    int64_t now)
{
	if (c->ttl == 0)
		return;
	struct cred_slot *s = slot_of(c, key);
	memcpy(s->key, key, 32);
	sha256_parts(c, entry_hash, strlen(entry_hash), NULL, 0, s->entry);
	s->expires = now + c->ttl;
}

void cred_cache_clear(struct cred_cache *c)
{
	memset(c->slots, 0, sizeof(c->slots));
}
