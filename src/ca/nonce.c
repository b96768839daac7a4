/* Nonces as HMAC'd counters with a window of used bits. See nonce.h. */
#include "ca/nonce.h"

#include "base/b64.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TAG_LEN 16
#define RAW_LEN (8 + TAG_LEN)

struct ca_nonces {
	uint8_t key[32];
	pthread_mutex_t lock;
	uint64_t next;   /* the counter of the next nonce */
	uint64_t window; /* power of two */
	uint64_t *used;  /* bit per counter mod window: 1 = redeemed (or never issued) */
};

int ca_nonces_new(size_t window, struct ca_nonces **out, struct acmera_errmsg *e)
{
	struct ca_nonces *n;
	*out = NULL;
	if (window == 0)
		window = CA_NONCE_WINDOW;
	if (window < 64 || (window & (window - 1)) != 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "nonce window %zu is not a power of two",
		                   window);
	n = calloc(1, sizeof(*n));
	if (!n)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	n->window = window;
	pthread_mutex_init(&n->lock, NULL);
	/* Every bit set: a counter not issued yet can never be redeemed. */
	n->used = malloc(window / 8);
	if (!n->used) {
		ca_nonces_free(n);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	memset(n->used, 0xff, window / 8);
	if (RAND_bytes(n->key, sizeof(n->key)) != 1 ||
	    RAND_bytes((uint8_t *)&n->next, sizeof(n->next)) != 1) {
		ca_nonces_free(n);
		return acmera_fail(e, ACMERA_ERR_IO, "nonce: no randomness");
	}
	/* A random start: counters of an earlier run are unlikely to fall in the window
	 * again (their tags would not verify anyway under the new key). Leave room. */
	n->next >>= 2;
	*out = n;
	return 0;
}

void ca_nonces_free(struct ca_nonces *n)
{
	if (!n)
		return;
	pthread_mutex_destroy(&n->lock);
	OPENSSL_cleanse(n->key, sizeof(n->key));
	free(n->used);
	free(n);
}

static int tag(const struct ca_nonces *n, const uint8_t ctr[8], uint8_t out[TAG_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!HMAC(EVP_sha256(), n->key, sizeof(n->key), ctr, 8, md, &len) || len < TAG_LEN)
		return -1;
	memcpy(out, md, TAG_LEN);
	return 0;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

int ca_nonce_issue(struct ca_nonces *n, char out[CA_NONCE_LEN + 1])
{
	uint8_t raw[RAW_LEN];
	uint64_t ctr;
	pthread_mutex_lock(&n->lock);
	ctr = n->next++;
	/* The counter a window ago shares this bit: it leaves the window now. */
	n->used[(ctr & (n->window - 1)) / 64] &= ~(UINT64_C(1) << (ctr & 63));
	pthread_mutex_unlock(&n->lock);
	put_be64(raw, ctr);
	if (tag(n, raw, raw + 8))
		return ACMERA_ERR_IO;
	char *s = b64url_encode(raw, sizeof(raw));
	if (!s)
		return ACMERA_ERR_NOMEM;
	if (strlen(s) != CA_NONCE_LEN) {
		free(s);
		return ACMERA_ERR_IO;
	}
	memcpy(out, s, CA_NONCE_LEN + 1);
	free(s);
	return 0;
}

int ca_nonce_redeem(struct ca_nonces *n, const char *nonce)
{
	uint8_t *raw = NULL, want[TAG_LEN];
	size_t len = 0;
	int rc = ACMERA_ERR_INVAL;
	if (!nonce || strlen(nonce) != CA_NONCE_LEN ||
	    b64url_decode(nonce, CA_NONCE_LEN, &raw, &len) != 0 || len != RAW_LEN)
		goto out;
	if (tag(n, raw, want) || CRYPTO_memcmp(want, raw + 8, TAG_LEN) != 0)
		goto out;
	uint64_t ctr = get_be64(raw);
	pthread_mutex_lock(&n->lock);
	/* Issued (ctr < next) and within the window of the latest ones. */
	if (ctr < n->next && n->next - ctr <= n->window) {
		uint64_t *word = &n->used[(ctr & (n->window - 1)) / 64];
		uint64_t bit = UINT64_C(1) << (ctr & 63);
		if (!(*word & bit)) {
			*word |= bit;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&n->lock);
out:
	free(raw);
	return rc;
}
