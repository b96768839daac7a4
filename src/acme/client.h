/* The ACME transport: every request to the CA goes through one libcurl multi
 * handle (connection reuse, HTTP/2 multiplexing where offered), signed as JWS
 * with nonces taken from earlier responses. Asynchronous: requests complete
 * through callbacks fired from acme_client_step(). One client per thread.
 *
 * Every answer carries a Replay-Nonce, so a POST queued while requests are in
 * flight normally waits for one of them rather than costing a newNonce request;
 * only a wait beyond ACME_NONCE_PATIENCE_MS (seen, or foreseen from the queue
 * and the usual answer time) adds nonces (up to ACME_NONCE_CONCURRENCY in
 * circulation), which the pool then keeps.
 *
 * Retries done here, below the caller: badNonce (with the nonce of the error
 * response), and serverInternal / rateLimited / HTTP 503 whose Retry-After is
 * at most ACME_RETRY_INLINE_MAX seconds. Anything else reaches the callback. */
#ifndef ACMERA_ACME_CLIENT_H
#define ACMERA_ACME_CLIENT_H

#include "acme/resources.h"
#include "base/buf.h"
#include "base/err.h"

#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>

#define ACME_RETRY_INLINE_MAX 30
#define ACME_BADNONCE_RETRIES 8
#define ACME_NONCE_CONCURRENCY 16 /* newNonce fetches plus requests in flight */
/* How long a POST waits for the nonce an answer in flight will bring before
 * newNonce is asked to widen the concurrency (with nothing in flight: at once;
 * with a queue the answers in flight would take this long to feed, at once). */
#define ACME_NONCE_PATIENCE_MS 500

struct acme_client;

struct acme_client_opts {
	const char *directory_url;
	const char *ca_bundle; /* PEM file trusted for the CA's TLS; NULL = system store */
	int timeout_s;         /* per request, 0 = 30 */
	int max_connections;   /* per host, 0 = 8 */
};

struct acme_response {
	long status;         /* HTTP status */
	struct buf body;     /* at most ACME_MAX_BODY bytes */
	char *location;      /* Location header or NULL */
	char *content_type;  /* Content-Type or NULL */
	int64_t retry_after; /* seconds, -1 when absent */
	char **alternates;   /* Link rel="alternate" URLs */
	size_t n_alternates;
	struct acme_problem *problem; /* parsed problem document for errors, else NULL */
};
void acme_response_free(struct acme_response *r);

/* rc is 0 for a 2xx answer; otherwise negative with e explaining (problem type and
 * detail included) and r possibly non-NULL (with r->problem). The callback owns
 * r and frees it with acme_response_free. */
typedef void (*acme_cb)(void *arg, int rc, struct acme_response *r, const struct acmera_errmsg *e);
typedef void (*acme_timer_cb)(void *arg);

int acme_client_new(const struct acme_client_opts *o, struct acme_client **out,
                    struct acmera_errmsg *e);
void acme_client_free(struct acme_client *c);

/* Fetches the directory (synchronously; it runs the loop). */
int acme_client_load_directory(struct acme_client *c, struct acmera_errmsg *e);
const struct acme_directory *acme_client_directory(const struct acme_client *c);
const char *acme_client_directory_url(const struct acme_client *c);

/* The account key (not owned: the caller keeps it alive) and, once known, the
 * account URL used as "kid". Without kid, requests carry the jwk. Signing sets the
 * key up once (jws_signer), which holds a reference to it until another key (or
 * NULL) is set or the client is freed. */
void acme_client_set_key(struct acme_client *c, EVP_PKEY *key, const char *kid);
const char *acme_client_kid(const struct acme_client *c);
/* RFC 7638 thumbprint of the account key (for dns-01 values). */
const char *acme_client_thumbprint(const struct acme_client *c);

/* Signed POST. payload NULL is POST-as-GET. accept may be NULL. */
void acme_post(struct acme_client *c, const char *url, const char *payload, const char *accept,
               acme_cb cb, void *arg);
/* Same, signed with the jwk instead of kid (newAccount, revocation by cert key). */
void acme_post_jwk(struct acme_client *c, const char *url, const char *payload, acme_cb cb,
                   void *arg);
/* Fires cb after delay_ms from acme_client_step(). */
void acme_client_after(struct acme_client *c, int64_t delay_ms, acme_timer_cb cb, void *arg);

/* Runs transfers and due timers for at most wait_ms, firing callbacks. Returns the
 * number of requests and timers still pending. */
int acme_client_step(struct acme_client *c, int wait_ms);
/* Requests sent so far (every HTTP request, newNonce included): for benchmarks. */
uint64_t acme_client_requests(const struct acme_client *c);
/* fn(arg) is called by acme_client_step just before it waits for the network or a
 * timer: the issuer commits its store batch there, so that nothing stays locked
 * while it waits. NULL removes it. */
void acme_client_set_wait_hook(struct acme_client *c, void (*fn)(void *arg), void *arg);
/* acme_client_step's wait also ends when fd becomes readable (the issuer's eventfd
 * for jobs submitted in its process); the caller drains it. -1 removes it. */
void acme_client_set_wake_fd(struct acme_client *c, int fd);
/* 1 when a wait since the last call saw the wake descriptor readable: the caller
 * drains it only then, instead of trying a read on every step. */
int acme_client_woken(struct acme_client *c);
/* The synchronous calls (acme_client_load_directory, acme_post_sync) give up with
 * ACMERA_ERR_TIMEOUT once *stop is non-zero (a signal handler's flag), instead of
 * waiting for a CA that does not answer; NULL (the default) waits. */
void acme_client_set_stop(struct acme_client *c, const volatile sig_atomic_t *stop);

/* Synchronous helper: sends and runs the loop until the answer. *out owned by caller. */
int acme_post_sync(struct acme_client *c, const char *url, const char *payload, const char *accept,
                   int use_jwk, struct acme_response **out, struct acmera_errmsg *e);

#endif
