/* See key_cache.h. A direct-mapped table under one mutex: a hit is a hash, a
 * string compare, a reference count and a copy of the slot's verifier. */
#include "ca/key_cache.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	char *jwk;
	struct ca_jws_verifier *v; /* holds the key; only read (copied) under the mutex */
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
                     struct ca_jws_verifier **v, struct acmera_errmsg *e)
{
	*key = NULL;
	if (v)
		*v = NULL;
	if (!c || !jwk_text)
		return acmera_fail(e, ACMERA_ERR_INVAL, "no key cache or no JWK");
	size_t i = slot_of(c, jwk_text);
	pthread_mutex_lock(&c->mu);
	struct slot *s = &c->slots[i];
	EVP_PKEY *cached =
	    s->jwk && strcmp(s->jwk, jwk_text) == 0 ? ca_jws_verifier_key(s->v) : NULL;
	if (cached && EVP_PKEY_up_ref(cached)) {
		*key = cached;
		/* Copied under the lock, as a verifier serves one thread at a time. */
		if (v)
			*v = ca_jws_verifier_dup(s->v);
	}
	pthread_mutex_unlock(&c->mu);
	if (*key)
		return 0;
	/* Made outside the lock: other threads go on meanwhile. */
	EVP_PKEY *k = NULL;
	struct ca_jws_verifier *made = NULL;
	int rc = make_key(jwk_text, &k, e);
	if (rc)
		return rc;
	char *text = strdup(jwk_text);
	/* A slot always has a verifier: without one the key is only not kept. */
	if (text && ca_jws_verifier_new(k, &made, NULL) == 0) {
		/* The caller's copy is made while no other thread can see made. */
		if (v)
			*v = ca_jws_verifier_dup(made);
		pthread_mutex_lock(&c->mu);
		s = &c->slots[i];
		char *old_jwk = s->jwk;
		struct ca_jws_verifier *old_v = s->v;
		s->jwk = text;
		s->v = made;
		pthread_mutex_unlock(&c->mu);
		free(old_jwk);
		ca_jws_verifier_free(old_v);
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
		ca_jws_verifier_free(c->slots[i].v);
	}
	free(c->slots);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
