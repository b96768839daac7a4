/* Shared inside src/ca/ by the request handlers: the service, the context of one
 * request, and the helpers every handler uses. Not a public API. */
#ifndef ACMERA_CA_INTERNAL_H
#define ACMERA_CA_INTERNAL_H

#include "base/buf.h"
#include "ca/jws_verify.h"
#include "ca/service.h"
#include "ca/signer.h"
#include "store/ca_store.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>

#define CA_URL_MAX 512
#define CA_RETRY_AFTER "1" /* seconds, on pending and processing resources */
#define CA_ORDERS_PAGE 50  /* order URLs per page of an account's orders list */
#define CA_MAX_CONTACTS 4
#define CA_PROBLEM_PREFIX "urn:ietf:params:acme:error:"

struct ca_nonces;
struct ca_signer;
struct ca_validators;
struct ca_eab;

struct ca_service {
	const struct config *cfg;
	char base[CA_URL_MAX]; /* base URL without a final '/' */
	struct ca_nonces *nonces;
	/* The current signer (signer_renewal.c): replaced while running when its
	 * generated intermediate nears its end; the ones replaced stay until
	 * ca_service_free, as workers may still sign with them. */
	_Atomic(struct ca_signer *) signer;
	struct ca_signer_config signer_cfg; /* to open it again */
	pthread_mutex_t renew_mu;           /* one renewal at a time */
	_Atomic int64_t renew_tried;        /* time of the last try */
	struct ca_signer **retired;
	size_t n_retired;
	struct ca_validators *validators;
	struct ca_eab *eab;
	struct ca_key_cache *keys; /* account keys by their stored JWK */
	struct wal_syncer *syncer; /* the workers' disk syncs (group_commit.c) */
	pthread_key_t store_key;   /* each thread's struct ca_store */
	int store_key_made;
	char *domains[CONFIG_MAX_LIST]; /* lower case, no final dot */
	size_t n_domains;
	int allow_p256, allow_p384, allow_rsa, allow_ed25519;
};

/* One request being handled. */
struct ca_ctx {
	struct ca_service *svc;
	struct ca_store *st;
	const struct ca_request *rq;
	struct ca_response *rs;
	struct ca_jws jws;
	struct ca_account acct; /* the signing account (kid requests) */
	int has_acct;
	EVP_PKEY *key;                    /* the key that signed (owned) */
	struct ca_jws_verifier *verifier; /* for an account's key, from the cache (owned) */
	json_t *payload;                  /* the payload object, NULL for POST-as-GET */
	int64_t now;
	struct buf links; /* Link values other than rel="index" */
};

/* ---- signer_renewal.c ---- */
/* The signer to issue with at now. When its generated intermediate nears its end
 * (ca_signer_renewal_due), the first call makes a new one as a restart would, and
 * swaps it in; a failed or impossible renewal is tried again an hour later, the
 * old signer serving meanwhile. Thread-safe. */
struct ca_signer *ca_service_signer(struct ca_service *s, int64_t now);
/* Frees the current signer and the replaced ones. */
void ca_service_signers_free(struct ca_service *s);

/* ---- server.c ---- */
/* The calling thread's store handle (opened on first use), or NULL. */
struct ca_store *ca_service_store(struct ca_service *s, struct acmera_errmsg *e);

/* rs (empty) becomes 500 serverInternal with detail why, nonce and links. */
void ca_service_fail(struct ca_service *s, struct ca_response *rs, const char *why);

/* ---- group_commit.c ---- */
/* Hands the processing challenge id to the validators once the changes of this
 * request are committed: at once outside a group commit, else after the flush. */
void ca_validate_when_committed(struct ca_ctx *c, const char *id);

/* ---- response.c ---- */
/* Adds a header (copied); silently dropped past CA_MAX_HEADERS (a bug, logged). */
void ca_header(struct ca_response *rs, const char *name, const char *value);
/* Answers status with a copy of data (content_type a static string). */
void ca_reply_body(struct ca_response *rs, int status, const char *content_type, const void *data,
                   size_t len);
/* Answers status with body as JSON (json is consumed; NULL answers 500). */
void ca_reply_json(struct ca_response *rs, int status, json_t *json);
/* Answers a problem document (RFC 7807) of type CA_PROBLEM_PREFIX + type;
 * subproblems (consumed) may be NULL. */
void ca_reply_problem(struct ca_response *rs, int status, const char *type, json_t *subproblems,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A problem document as JSON text (heap), for storing with a resource. */
char *ca_problem_text(const char *type, int status, const char *detail);
/* The problem for a store failure: 500 serverInternal (or 503 when busy). */
void ca_reply_store_error(struct ca_response *rs, int rc, const struct acmera_errmsg *e);

/* ---- util.c ---- */
int ca_random_id(char out[CA_ID_LEN + 1]);
int ca_random_token(char out[CA_TOKEN_LEN + 1]);
/* RFC 3339 UTC, "2026-01-02T03:04:05Z". */
void ca_time_str(int64_t t, char out[32]);
/* base + path formatted into out; 0, or -1 when it does not fit. */
int ca_url(const struct ca_service *s, char out[CA_URL_MAX], const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends <url>;rel="rel" to the request's Link values. */
void ca_link(struct ca_ctx *c, const char *url, const char *rel);
/* The id in path after prefix ("/order/"), exactly CA_ID_LEN base64url characters
 * followed by suffix (may be ""). Returns 1 and fills id, else 0. */
int ca_path_id(const char *path, const char *prefix, const char *suffix, char id[CA_ID_LEN + 1]);
/* Sets the payload's json object member to a string (copied); -1 on ENOMEM. */
int ca_json_set_str(json_t *o, const char *key, const char *value);

/* ---- account.c ---- */
void ca_handle_new_account(struct ca_ctx *c);
void ca_handle_account(struct ca_ctx *c, const char *id);
void ca_handle_orders(struct ca_ctx *c, const char *id, size_t page);
void ca_handle_key_change(struct ca_ctx *c);

/* ---- authz.c ---- */
/* The status a reader sees: "expired" once a pending or valid one passed expires. */
const char *ca_authz_status(const struct ca_authz *a, int64_t now);
/* Creates a pending authorization of the signing account with its challenges
 * (dns-01 only for a wildcard or subdomains, else dns-01 and http-01). Answers a
 * problem and returns nonzero on failure. */
int ca_authz_create(struct ca_ctx *c, const char *name, int wildcard, int subdomains,
                    int64_t expires, struct ca_authz *out);
void ca_handle_new_authz(struct ca_ctx *c);
void ca_handle_authz(struct ca_ctx *c, const char *id);
void ca_handle_challenge(struct ca_ctx *c, const char *id);

/* ---- order.c ---- */
/* The status a reader sees: "invalid" once a pending or ready one passed expires. */
const char *ca_order_status(const struct ca_order *o, int64_t now);
/* Answers the order as JSON with Location (and Retry-After while not final). */
void ca_reply_order(struct ca_ctx *c, int status, const struct ca_order *o);
void ca_handle_new_order(struct ca_ctx *c);
void ca_handle_order(struct ca_ctx *c, const char *id);

/* ---- finalize.c ---- */
void ca_handle_finalize(struct ca_ctx *c, const char *id);
void ca_handle_cert(struct ca_ctx *c, const char *id);

/* ---- revoke.c ---- */
void ca_handle_revoke(struct ca_ctx *c);

/* ---- validator.c ---- */
/* n threads validating challenges; each opens its own store handle. */
int ca_validators_new(struct ca_service *s, int n, struct ca_validators **out,
                      struct acmera_errmsg *e);
/* Queues a processing challenge; ACMERA_ERR_AGAIN when the queue is full. */
int ca_validators_submit(struct ca_validators *v, const char *chall_id);
void ca_validators_free(struct ca_validators *v);

/* ---- eab.c ---- */
/* Reads the EAB keys file (mode 0600; "kid base64url-key" lines, '#' comments). */
int ca_eab_load(const char *path, struct ca_eab **out, struct acmera_errmsg *e);
/* The MAC key of kid (owned by eab), or NULL. */
const uint8_t *ca_eab_key(const struct ca_eab *eab, const char *kid, size_t *len);
void ca_eab_free(struct ca_eab *eab);

#endif
