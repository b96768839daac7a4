/* Remembers HTTP Basic credentials that verified, so that a device pays for the
 * yescrypt hash once per cache lifetime rather than on every request (its 202
 * retries, re-enrollments, keep-alive requests).
 *
 * What is kept is not the password: a slot holds SHA-256(secret || Authorization
 * header value) under a random per-process secret, the SHA-256 of the password
 * file entry it verified against, and an expiry. A hit needs the same header, the
 * same entry (a password changed or removed in the file misses) and a slot not
 * expired. Fixed size (direct-mapped): memory is bounded whatever clients send.
 * Not locked: the caller serialises (est_passwd holds its lock). */
#ifndef ACMERA_EST_CRED_CACHE_H
#define ACMERA_EST_CRED_CACHE_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

#define CRED_CACHE_SLOTS 4096

struct cred_cache;

/* ttl_s 0 makes a cache that never hits. */
int cred_cache_new(int ttl_s, struct cred_cache **out, struct acmera_errmsg *e);
void cred_cache_free(struct cred_cache *c);

/* The cache key of an Authorization header value. */
void cred_cache_key(const struct cred_cache *c, const char *authorization, uint8_t key[32]);
/* 1 when key verified against entry_hash (the crypt(3) string of the user's entry)
 * less than ttl seconds before now. */
int cred_cache_hit(const struct cred_cache *c, const uint8_t key[32], const char *entry_hash,
                   int64_t now);
/* Records a successful check. */
void cred_cache_put(struct cred_cache *c, const uint8_t key[32], const char *entry_hash,
                    int64_t now);
/* Forgets everything (the password file was reloaded). */
void cred_cache_clear(struct cred_cache *c);

#endif
