/* Pool of anti-replay nonces (RFC 8555 6.5) taken from the Replay-Nonce header of
 * every response, so that newNonce is needed only when the pool is empty.
 * Thread-compatible (one pool per issuer loop). */
#ifndef ACMERA_ACME_NONCE_H
#define ACMERA_ACME_NONCE_H

#include <stddef.h>

#define NONCE_POOL_MAX 256
#define NONCE_MAX_LEN 128

struct nonce_pool {
	char nonces[NONCE_POOL_MAX][NONCE_MAX_LEN + 1];
	size_t head, count;
};

void nonce_pool_init(struct nonce_pool *p);
/* Adds a nonce if it is valid base64url of 1..NONCE_MAX_LEN characters; the oldest
 * is dropped when full. Returns 0, or -1 when refused. */
int nonce_pool_put(struct nonce_pool *p, const char *nonce, size_t len);
/* Takes the newest nonce into out (NONCE_MAX_LEN+1 bytes); returns 0, or -1 when
 * the pool is empty. Each nonce is handed out once. */
int nonce_pool_take(struct nonce_pool *p, char *out);
size_t nonce_pool_size(const struct nonce_pool *p);

#endif
