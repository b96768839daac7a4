/* Replay-Nonce pool: a ring of the most recent nonces; head is the slot the next
 * put writes, so the newest is just before it and the oldest count slots back. */
#include "acme/nonce.h"

#include <string.h>

void nonce_pool_init(struct nonce_pool *p)
{
	memset(p, 0, sizeof(*p));
}

/* RFC 8555 6.5.1: a nonce is base64url without padding. */
static int nonce_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > NONCE_MAX_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

int nonce_pool_put(struct nonce_pool *p, const char *nonce, size_t len)
{
	if (!nonce_valid(nonce, len))
		return -1;
	memcpy(p->nonces[p->head], nonce, len);
	p->nonces[p->head][len] = '\0';
	p->head = (p->head + 1) % NONCE_POOL_MAX;
	/* When full the slot just written was the oldest, so it is simply replaced. */
	if (p->count < NONCE_POOL_MAX)
		p->count++;
	return 0;
}

int nonce_pool_take(struct nonce_pool *p, char *out)
{
	if (p->count == 0)
		return -1;
	/* Newest first: it is the least likely to have expired on the server. */
	p->head = (p->head + NONCE_POOL_MAX - 1) % NONCE_POOL_MAX;
	p->count--;
	memcpy(out, p->nonces[p->head], NONCE_MAX_LEN + 1);
	memset(p->nonces[p->head], 0, NONCE_MAX_LEN + 1);
	return 0;
}

size_t nonce_pool_size(const struct nonce_pool *p)
{
	return p->count;
}
