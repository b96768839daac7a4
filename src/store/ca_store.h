/* The state of `acmera ca` (RFC 8555 accounts, orders, authorizations, challenges,
 * certificates; RFC 9444 subdomain authorizations) in the store's SQLite file, in
 * tables of its own (ca_*). A handle is used by one thread at a time; every thread
 * (HTTP worker, validator) opens its own.
 *
 * Ids are the random base64url strings of the URLs (CA_ID_LEN characters). Statuses
 * are RFC 8555's words as stored; "expired" is not stored but derived by readers
 * from expires. Multi-row changes are one transaction. Errors: ACMERA_ERR_NOTFOUND
 * (no such row), ACMERA_ERR_REFUSED (a uniqueness rule: key or EAB kid in use,
 * already revoked), ACMERA_ERR_AGAIN (the row is not in the state the change needs;
 * nothing changed), ACMERA_ERR_STORE, ACMERA_ERR_NOMEM. */
#ifndef ACMERA_STORE_CA_STORE_H
#define ACMERA_STORE_CA_STORE_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

#define CA_ID_LEN 22        /* 16 random bytes, base64url */
#define CA_TOKEN_LEN 43     /* 32 random bytes, base64url (RFC 8555 8.1: >= 128 bits) */
#define CA_THUMB_LEN 43     /* RFC 7638 SHA-256 thumbprint, base64url */
#define CA_DNS_NAME_MAX 253 /* a DNS name without its final dot */
#define CA_MAX_CHALLENGES 2
#define CA_ORDER_MAX_IDS 100 /* identifiers (and so authorizations) per order */

struct ca_store;

/* Opens (creating and migrating as store_open does) path. */
int ca_store_open(const char *path, struct ca_store **out, struct acmera_errmsg *e);
void ca_store_close(struct ca_store *s);
/* Group commit of the CA's changes, as store_batch_begin, store_batch_end and
 * store_batch_pending. */
int ca_store_batch_begin(struct ca_store *s, struct acmera_errmsg *e);
int ca_store_batch_end(struct ca_store *s, struct acmera_errmsg *e);
int ca_store_batch_pending(const struct ca_store *s);
/* As store_batch_begin_nosync and store_wal_open (store.h). */
int ca_store_batch_begin_nosync(struct ca_store *s, struct acmera_errmsg *e);
int ca_store_wal_open(struct ca_store *s, struct acmera_errmsg *e);

/* ---- accounts ---- */

struct ca_account {
	char id[CA_ID_LEN + 1];
	char *jwk; /* the public key as JWK JSON text */
	char thumbprint[CA_THUMB_LEN + 1];
	char status[16]; /* valid, deactivated, revoked */
	char *contact;   /* JSON array of URLs, or NULL */
	char *eab_kid;   /* the external account binding kid it was created with, or NULL */
	int64_t created;
};

/* ACMERA_ERR_REFUSED when the key (thumbprint) or the EAB kid already has an account. */
int ca_store_account_add(struct ca_store *s, const struct ca_account *a, struct acmera_errmsg *e);
int ca_store_account_get(struct ca_store *s, const char *id, struct ca_account *out,
                         struct acmera_errmsg *e);
int ca_store_account_by_thumbprint(struct ca_store *s, const char *thumbprint,
                                   struct ca_account *out, struct acmera_errmsg *e);
/* Sets contact (JSON text) when non-NULL and status when non-NULL. Deactivating
 * also invalidates the account's pending and ready orders and deactivates its
 * pending and valid authorizations, in the same transaction. */
int ca_store_account_update(struct ca_store *s, const char *id, const char *contact,
                            const char *status, struct acmera_errmsg *e);
/* Replaces the key; ACMERA_ERR_REFUSED when another account has it. */
int ca_store_account_set_key(struct ca_store *s, const char *id, const char *jwk,
                             const char *thumbprint, struct acmera_errmsg *e);
void ca_account_free(struct ca_account *a);

/* ---- authorizations and challenges ---- */

struct ca_authz {
	char id[CA_ID_LEN + 1];
	char account[CA_ID_LEN + 1];
	char name[CA_DNS_NAME_MAX + 1]; /* identifier value, lower case, without "*." */
	int wildcard;                   /* for "*.name" */
	int subdomains;                 /* RFC 9444 subdomainAuthAllowed */
	char status[16];                /* pending, valid, invalid, deactivated */
	int64_t expires, created;
};

struct ca_challenge {
	char id[CA_ID_LEN + 1];
	char authz[CA_ID_LEN + 1];
	char type[16]; /* dns-01, http-01 */
	char token[CA_TOKEN_LEN + 1];
	char status[16]; /* pending, processing, valid, invalid */
	int64_t validated;
	char *error; /* problem document JSON, or NULL */
};

/* Adds a with its n (1..CA_MAX_CHALLENGES) challenges. */
int ca_store_authz_add(struct ca_store *s, const struct ca_authz *a, const struct ca_challenge *ch,
                       size_t n, struct acmera_errmsg *e);
int ca_store_authz_get(struct ca_store *s, const char *id, struct ca_authz *out,
                       struct acmera_errmsg *e);
/* The challenges of an authorization, in the order they were added (free each with
 * ca_challenge_free). */
int ca_store_challenges_of(struct ca_store *s, const char *authz_id,
                           struct ca_challenge out[CA_MAX_CHALLENGES], size_t *n,
                           struct acmera_errmsg *e);
int ca_store_challenge_get(struct ca_store *s, const char *id, struct ca_challenge *out,
                           struct acmera_errmsg *e);
void ca_challenge_free(struct ca_challenge *c);

/* A valid authorization of account, unexpired at now, that covers name (lower case;
 * "*.b" for a wildcard): for a plain name, one for the name itself (not wildcard) or
 * for an ancestor with subdomains; for "*.b", a wildcard one for b, or one with
 * subdomains for b or an ancestor of b (RFC 9444: control of the subtree). The one
 * expiring last wins. ACMERA_ERR_NOTFOUND when none. */
int ca_store_authz_covering(struct ca_store *s, const char *account, const char *name, int64_t now,
                            struct ca_authz *out, struct acmera_errmsg *e);
/* A pending, unexpired authorization of account for exactly (name, wildcard,
 * subdomains), to reuse; ACMERA_ERR_NOTFOUND when none. */
int ca_store_authz_pending(struct ca_store *s, const char *account, const char *name, int wildcard,
                           int subdomains, int64_t now, struct ca_authz *out,
                           struct acmera_errmsg *e);
/* pending or valid -> deactivated (ACMERA_ERR_AGAIN otherwise); orders waiting on it
 * become invalid. */
int ca_store_authz_deactivate(struct ca_store *s, const char *id, struct acmera_errmsg *e);

/* A pending challenge of a pending, unexpired authorization -> processing. ACMERA_ERR_AGAIN
 * when it is not in that state (nothing changes). */
int ca_store_challenge_begin(struct ca_store *s, const char *id, int64_t now,
                             struct acmera_errmsg *e);
/* The verdict on a processing challenge: valid (error NULL) or invalid (error = problem
 * JSON). Its authorization becomes valid until now + authz_lifetime, or invalid; the
 * pending orders on it become ready (when all their authorizations are now valid) or
 * invalid. ACMERA_ERR_AGAIN when the challenge was not processing. */
int ca_store_challenge_finish(struct ca_store *s, const char *id, const char *error, int64_t now,
                              int64_t authz_lifetime, struct acmera_errmsg *e);
/* Up to max ids of challenges left processing (by a stop), to validate again. */
int ca_store_challenges_processing(struct ca_store *s, char (*ids)[CA_ID_LEN + 1], size_t max,
                                   size_t *n, struct acmera_errmsg *e);

/* ---- orders ---- */

struct ca_order {
	char id[CA_ID_LEN + 1];
	char account[CA_ID_LEN + 1];
	char status[16]; /* pending, ready, processing, valid, invalid */
	int64_t expires, created;
	char *identifiers;             /* JSON array of {type, value} as answered */
	char cert[CA_ID_LEN + 1];      /* certificate id once valid, else "" */
	char *error;                   /* problem JSON or NULL */
	char (*authzs)[CA_ID_LEN + 1]; /* heap array, in the order of the identifiers */
	size_t n_authzs;
};

/* Adds o with its links to the authorizations o->authzs (1..CA_ORDER_MAX_IDS,
 * duplicates linked once). */
int ca_store_order_add(struct ca_store *s, const struct ca_order *o, struct acmera_errmsg *e);
int ca_store_order_get(struct ca_store *s, const char *id, struct ca_order *out,
                       struct acmera_errmsg *e);
/* Ids of account's orders that are not invalid, oldest first, skipping offset; at most
 * max into ids; *more says whether others follow. */
int ca_store_order_list(struct ca_store *s, const char *account, size_t offset, size_t max,
                        char (*ids)[CA_ID_LEN + 1], size_t *n, int *more, struct acmera_errmsg *e);
/* Compare-and-set of the status: ACMERA_ERR_AGAIN when it is not from. error (problem
 * JSON) is recorded when non-NULL. */
int ca_store_order_transition(struct ca_store *s, const char *id, const char *from, const char *to,
                              const char *error, struct acmera_errmsg *e);
void ca_order_free(struct ca_order *o);

/* ---- certificates ---- */

struct ca_cert {
	char id[CA_ID_LEN + 1];
	char account[CA_ID_LEN + 1];
	char order_id[CA_ID_LEN + 1];
	char serial[41]; /* lower-case hex */
	char *chain_pem; /* leaf first */
	int64_t not_after, issued;
	int revoked, reason;
	int64_t revoked_at;
};

/* Stores c and moves its order processing -> valid, in one transaction
 * (ACMERA_ERR_AGAIN when the order was not processing). */
int ca_store_cert_issued(struct ca_store *s, const struct ca_cert *c, struct acmera_errmsg *e);
int ca_store_cert_get(struct ca_store *s, const char *id, struct ca_cert *out,
                      struct acmera_errmsg *e);
int ca_store_cert_by_serial(struct ca_store *s, const char *serial, struct ca_cert *out,
                            struct acmera_errmsg *e);
/* Marks revoked with an RFC 5280 reason code; ACMERA_ERR_REFUSED when it already is. */
int ca_store_cert_revoke(struct ca_store *s, const char *id, int reason, int64_t now,
                         struct acmera_errmsg *e);
void ca_cert_free(struct ca_cert *c);

#endif
