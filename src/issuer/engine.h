/* Internals of the issuer shared by engine.c (the loop and the batches),
 * job_flow.c (one job's ACME steps) and preauth.c (one parent domain's
 * pre-authorization, a run of its own with no store job). Not a public API. */
#ifndef ACMERA_ISSUER_ENGINE_H
#define ACMERA_ISSUER_ENGINE_H

#include "acme/client.h"
#include "issuer/chain_check.h"
#include "issuer/issuer.h"
#include "issuer/publisher.h"

#include <openssl/evp.h>

enum run_state {
	RUN_ORDER,        /* newOrder or fetching a stored order */
	RUN_AUTHZ,        /* fetching the order's authorizations (preauth: newAuthz) */
	RUN_WAIT_PUBLISH, /* challenges known, waiting for the batch UPDATE */
	RUN_CHALLENGE,    /* telling the CA the records are there */
	RUN_POLL_READY,   /* waiting for the order to become ready (preauth: the
	                   * authorization to become valid) */
	RUN_FINALIZE,     /* finalize sent */
	RUN_POLL_VALID,   /* waiting for the order to become valid */
	RUN_DOWNLOAD,     /* fetching the certificate */
	RUN_ENDED         /* outcome recorded in the store; to be reaped */
};

struct job_run;

struct run_challenge {
	struct job_run *run;
	char *url;
	struct pub_record rec;
	int published; /* the TXT record may be in DNS: delete it when done */
};

struct engine;

struct job_run {
	struct engine *eng;
	/* A pre-authorization run has job.id 0 and job.names the parent domain; it
	 * never touches the store's jobs. */
	struct store_job job;
	int preauth;
	int preauth_blocking; /* claims wait for it (no usable authorization yet) */
	char *authz_url;      /* preauth: the authorization newAuthz made */
	enum run_state state;
	char *order_url;
	char *finalize_url;
	struct run_challenge *chals;
	size_t n_chals;
	size_t outstanding;    /* authz fetches or challenge posts in flight */
	size_t pending;        /* requests and timers that will call back with this run */
	int finalized;         /* the order may have been finalized: never replace it */
	int finalize_answered; /* this run's finalize was accepted */
	int polls;
	int64_t poll_started;
	/* Alternate chains (Link rel="alternate") tried when the operator prefers
	 * another issuer; the default chain is kept in case none matches. */
	struct issued_chain *fallback;
	char **alts;
	size_t n_alts, alt_next;
	struct job_run *next;
};

struct dns_worker;

struct engine {
	char owner[STORE_OWNER_MAX + 1]; /* claim token: host:pid:random */
	const struct config *cfg;
	struct store *store;
	struct acme_client *acme;
	/* The loop's publisher: zones of names (on_authz) and pre-authorization. The
	 * batches go to the worker's own publisher, on its thread. */
	struct publisher *pub;
	struct dns_worker *dns;
	EVP_PKEY *account_key;
	int subdomains;           /* CA advertises RFC 9444 */
	int have_new_authz;       /* CA offers pre-authorization */
	int64_t preauth_checked;  /* last time parent authorizations were checked */
	int preauth_blocking;     /* pre-authorizations that claims wait for */
	int account_lost;         /* the CA forgot the account (accountDoesNotExist) */
	int64_t account_retry_ms; /* next try to register it again */
	struct job_run *runs;
	size_t n_runs;
	/* Records waiting for the next batch UPDATE (add) and for deletion. A run in
	 * to_publish or in_flight counts one in its pending (kept until the batch is
	 * done with it). */
	struct job_run **to_publish;
	size_t n_publish, cap_publish;
	int64_t publish_since_ms;
	struct pub_record *to_delete;
	size_t n_delete, cap_delete;
	int64_t delete_since_ms, delete_retry_ms;
	int delete_failures;
	/* The runs whose records the DNS worker is adding now, in record order. */
	struct job_run **in_flight;
	size_t n_in_flight, cap_in_flight;
	int last_batch_add; /* the last batch handed over was an add */
	int batch_open;     /* a store batch is open around acme_client_step */
	int more_due;       /* the last claim filled every place: more jobs may be due */
	int submitted_fd;   /* eventfd: jobs were submitted in this process; or -1 */
	int submitted;      /* it was read since the last claim: claim now */
	struct issuer_stats *stats;
	const struct issuer_opts *opts;
};

/* 1 once the issuer was asked to stop or passed its deadline. */
int engine_stopping(const struct engine *g);

/* Commits the store batch of the loop now, before a call that may block (the batch
 * holds the store's write lock once it has a change). */
void engine_commit(struct engine *g);

/* job_flow.c */
void run_start(struct job_run *r);
/* Sends the challenge responses once the batch carrying r's records is in DNS. */
void run_published(struct job_run *r);
/* Ends r: back to the store for a later attempt (or failed for good when the
 * error is permanent or attempts are used up). */
void run_retry(struct job_run *r, int rc, const char *why, int new_order, int64_t retry_after);
void run_free(struct job_run *r);
/* A request or timer that will call back with r (counted in r->pending), and the
 * first thing each such callback does: 1 when r ended meanwhile (resp freed). */
void run_post(struct job_run *r, const char *url, const char *payload, const char *accept,
              acme_cb cb, void *arg);
void run_after(struct job_run *r, int64_t ms, acme_timer_cb cb);
int run_back(struct job_run *r, struct acme_response *resp);

/* engine.c: queues r's challenge records for the next UPDATE (r->pending is
 * held until the batch is done with r). */
int engine_queue_publish(struct engine *g, struct job_run *r);
/* Queues r's published records for deletion. */
void engine_queue_delete(struct engine *g, struct job_run *r);

/* preauth.c: starts a pre-authorization run (newAuthz, RFC 9444 when offered)
 * for each configured parent domain without a fresh authorization. Those with none
 * usable at all hold claims back (g->preauth_blocking) until they end, so that
 * jobs below them wait for it rather than prove every name themselves. */
void preauth_start(struct engine *g);
/* The pre-authorization run's side of run_published and run_retry. */
void preauth_published(struct job_run *r);
void preauth_end(struct job_run *r, int rc, const char *why);
/* Adds "ancestorDomain" to an identifier covered by a pre-authorized parent. */
const char *preauth_ancestor_for(struct engine *g, const char *name, char *buf, size_t len);

#endif
