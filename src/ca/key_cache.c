/* See key_cache.h. A direct-mapped table under one mutex: a hit is a hash, a
 * string compare and a reference count. */
#include "ca/key_cache.h"

#include "ca/jws_verify.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	char *jwk;
	EVP_PKEY *key;
};

struct ca_key_cache {
	pthread_mutex_t mu;
	size_t n;
	struct slot *slots;
};

int ca_key_cache_new(size_t slots, struct ca_key_cache **out, struct acmera_errmsg *e)
{
	*out = NULL;
	if (slots == 0 || slots > 65536)
		return acmera_fail(e, ACMERA_ERR_INVAL, "key cache of %zu slots", slots);
	struct ca_key_cache *c = calloc(1, sizeof(*c));
	if (c)
		c->slots = calloc(slots, sizeof(*c->slots));
	if (!c || !c->slots || pthread_mutex_init(&c->mu, NULL) != 0) {
		if (c)
			free(c->slots);
		free(c);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	c->n = slots;
	*out = c;
	return 0;
}

/* FNV-1a. Clients choose their keys, so they can make texts collide: that only
 * evicts (a hit needs the whole text equal), costing the colliding accounts the
 * cache. */
static size_t slot_of(const struct ca_key_cache *c, const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h % c->n);
}

static int make_key(const char *jwk_text, EVP_PKEY **key, struct acmera_errmsg *e)
{
	json_t *jwk = json_loads(jwk_text, 0, NULL);
	int rc = jwk ? ca_jwk_to_key(jwk, key, e)
	             : acmera_fail(e, ACMERA_ERR_INVAL, "the JWK is not JSON");
	json_decref(jwk);
	return rc;
}

int ca_key_cache_get(struct ca_key_cache *c, const char *jwk_text, EVP_PKEY **key,
                     struct acmera_errmsg *e)
{
	*key = NULL;
	if (!c || !jwk_text)
		return acmera_fail(e, ACMERA_ERR_INVAL, "no key cache or no JWK");
	size_t i = slot_of(c, jwk_text);
	pthread_mutex_lock(&c->mu);
	struct slot *s = &c->slots[i];
	if (s->jwk && strcmp(s->jwk, jwk_text) == 0 && EVP_PKEY_up_ref(s->key))
		*key = s->key;
	pthread_mutex_unlock(&c->mu);
	if (*key)
		return 0;
	/* Made outside the lock: other threads go on meanwhile. */
	EVP_PKEY *k = NULL;
	int rc = make_key(jwk_text, &k, e);
	if (rc)
		return rc;
	char *text = strdup(jwk_text);
	if (text && EVP_PKEY_up_ref(k)) {
		pthread_mutex_lock(&c->mu);
		s = &c->slots[i];
		free(s->jwk);
		EVP_PKEY_free(s->key);
		s->jwk = text;
		s->key = k;
		pthread_mutex_unlock(&c->mu);
	} else {
		free(text); /* not kept; the caller still has its key */
	}
	*key = k;
	return 0;
}

void ca_key_cache_free(struct ca_key_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->slots[i].jwk);
		EVP_PKEY_free(c->slots[i].key);
	}
	free(c->slots);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
