/* Server-side key generation for /serverkeygen. See serverkeygen.h. */
#include "est/serverkeygen.h"

#include "base/b64.h"
#include "base/buf.h"
#include "est/body.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEYGEN_TTL_S 3600
#define KEYGEN_MAX 10000 /* keys kept at once: beyond it the oldest go */

struct keygen_entry {
	char digest[65];
	uint8_t *csr, *key;
	size_t csr_len, key_len;
	time_t made;
};

struct est_keygen_cache {
	pthread_mutex_t lock;
	struct keygen_entry *e;
	size_t n, cap;
};

static void entry_clear(struct keygen_entry *k)
{
	free(k->csr);
	if (k->key) {
		OPENSSL_cleanse(k->key, k->key_len);
		free(k->key);
	}
	memset(k, 0, sizeof(*k));
}

int est_keygen_cache_new(struct est_keygen_cache **out, struct acmera_errmsg *e)
{
	struct est_keygen_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void est_keygen_cache_free(struct est_keygen_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		entry_clear(&c->e[i]);
	free(c->e);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Drops expired entries (and the oldest when full). Called with the lock held. */
static void prune(struct est_keygen_cache *c, time_t now)
{
	size_t kept = 0;
	for (size_t i = 0; i < c->n; i++) {
		if (now - c->e[i].made > KEYGEN_TTL_S)
			entry_clear(&c->e[i]);
		else
			c->e[kept++] = c->e[i];
	}
	c->n = kept;
	if (c->n >= KEYGEN_MAX) {
		entry_clear(&c->e[0]);
		memmove(c->e, c->e + 1, (c->n - 1) * sizeof(*c->e));
		c->n--;
	}
}

static int dup_bytes(const uint8_t *p, size_t n, uint8_t **out)
{
	*out = malloc(n ? n : 1);
	if (!*out)
		return ACMERA_ERR_NOMEM;
	memcpy(*out, p, n);
	return 0;
}

/* A fresh key and the RA's CSR for it. */
static int make_entry(const struct est_key_spec *spec, const char *name, struct keygen_entry *k,
                      struct acmera_errmsg *e)
{
	EVP_PKEY *key = NULL;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	unsigned char *der = NULL;
	int len = -1;
	const char *names[] = {name};
	int rc = est_key_generate(spec, &key, e);
	if (rc)
		return rc;
	rc = est_csr_from_template(name, names, 1, key, NULL, &k->csr, &k->csr_len, e);
	if (rc)
		goto out;
	p8 = EVP_PKEY2PKCS8(key);
	len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;
	if (len <= 0 || dup_bytes(der, (size_t)len, &k->key)) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "cannot encode the new key");
		goto out;
	}
	k->key_len = (size_t)len;
out:
	if (der) {
		OPENSSL_cleanse(der, (size_t)(len > 0 ? len : 0));
		OPENSSL_free(der);
	}
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(key);
	if (rc)
		entry_clear(k);
	return rc;
}

int est_keygen_get(struct est_keygen_cache *c, const char *req_digest,
                   const struct est_key_spec *spec, const char *name, uint8_t **csr_der,
                   size_t *csr_len, uint8_t **key_der, size_t *key_len, struct acmera_errmsg *e)
{
	int rc = 0;
	time_t now = time(NULL);
	*csr_der = *key_der = NULL;
	pthread_mutex_lock(&c->lock);
	prune(c, now);
	struct keygen_entry *k = NULL;
	for (size_t i = 0; i < c->n && !k; i++)
		if (strcmp(c->e[i].digest, req_digest) == 0)
			k = &c->e[i];
	if (!k) {
		if (c->n == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 16;
			struct keygen_entry *g = realloc(c->e, cap * sizeof(*g));
			if (!g) {
				rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
				goto out;
			}
			c->e = g;
			c->cap = cap;
		}
		struct keygen_entry fresh = {0};
		rc = make_entry(spec, name, &fresh, e);
		if (rc)
			goto out;
		snprintf(fresh.digest, sizeof(fresh.digest), "%s", req_digest);
		fresh.made = now;
		c->e[c->n] = fresh;
		k = &c->e[c->n++];
	}
	if (dup_bytes(k->csr, k->csr_len, csr_der) || dup_bytes(k->key, k->key_len, key_der)) {
		free(*csr_der);
		free(*key_der);
		*csr_der = *key_der = NULL;
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	*csr_len = k->csr_len;
	*key_len = k->key_len;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void est_keygen_forget(struct est_keygen_cache *c, const char *req_digest)
{
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->e[i].digest, req_digest) == 0) {
			entry_clear(&c->e[i]);
			c->e[i] = c->e[--c->n];
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

int est_serverkeygen_body(const uint8_t *key_der, size_t key_len, STACK_OF(X509) * chain,
                          char **body, size_t *len, char **content_type, struct acmera_errmsg *e)
{
	struct buf b = BUF_INIT;
	char *key_b64 = NULL, *p7 = NULL;
	size_t p7_len = 0;
	unsigned char rnd[12];
	char boundary[40];
	int rc = est_body_pkcs7(chain, &p7, &p7_len, e);
	if (rc)
		return rc;
	key_b64 = b64_encode(key_der, key_len, 64);
	if (!key_b64 || RAND_bytes(rnd, sizeof(rnd)) != 1) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	snprintf(boundary, sizeof(boundary), "est-%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x",
	         rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9],
	         rnd[10], rnd[11]);
	/* RFC 7030 4.4.2 with RFC 8951: base64 parts, no Content-Transfer-Encoding. */
	if (buf_printf(&b, "--%s\r\nContent-Type: %s\r\n\r\n%s\r\n--%s\r\nContent-Type: %s\r\n\r\n",
	               boundary, EST_CT_PKCS8, key_b64, boundary, EST_CT_PKCS7) ||
	    buf_append(&b, p7, p7_len) || buf_printf(&b, "\r\n--%s--\r\n", boundary)) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	size_t ctl = strlen(boundary) + 32;
	*content_type = malloc(ctl);
	if (!*content_type) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	snprintf(*content_type, ctl, "multipart/mixed; boundary=%s", boundary);
	*len = b.len;
	*body = buf_steal(&b);
out:
	if (key_b64) {
		OPENSSL_cleanse(key_b64, strlen(key_b64));
		free(key_b64);
	}
	if (rc && b.data)
		OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
	free(p7);
	return rc;
}
