/* Replay nonces of `acmera ca` (RFC 8555 6.5): each nonce is accepted once. A nonce is
 * a 64-bit counter with an HMAC-SHA-256 tag under a key made at start, so that only
 * this process's nonces are accepted and nothing is stored per nonce but one bit in a
 * sliding window of the most recent CA_NONCE_WINDOW counters: memory stays bounded
 * however many nonces are handed out; a nonce older than the window, like one from
 * before a restart, is refused (the client gets badNonce and a fresh one). Shared by
 * all threads (a mutex guards the window). */
#ifndef ACMERA_CA_NONCE_H
#define ACMERA_CA_NONCE_H

#include "base/err.h"

#include <stddef.h>

#define CA_NONCE_WINDOW (1u << 20) /* 128 KiB of bits */
#define CA_NONCE_LEN 32            /* base64url of 8 counter + 16 tag bytes */

struct ca_nonces;

/* window: how many of the latest nonces stay redeemable (a power of two, at least 64;
 * 0 means CA_NONCE_WINDOW). */
int ca_nonces_new(size_t window, struct ca_nonces **out, struct acmera_errmsg *e);
void ca_nonces_free(struct ca_nonces *n);

/* A fresh nonce, NUL-terminated. Returns 0 or ACMERA_ERR_NOMEM/ACMERA_ERR_IO (crypto
 * failure). */
int ca_nonce_issue(struct ca_nonces *n, char out[CA_NONCE_LEN + 1]);

/* 0 when nonce was handed out by n, is still in the window and was not redeemed
 * before (it is redeemed now); ACMERA_ERR_INVAL otherwise. */
int ca_nonce_redeem(struct ca_nonces *n, const char *nonce);

#endif
