/* The issuer's DNS worker: one thread that does the publisher's blocking work
 * (RFC 2136 UPDATEs with their retries, the propagation check, dns.hook runs), so
 * that the issuer's loop keeps driving ACME requests and renewing leases meanwhile.
 * It has a store handle and a publisher of its own (store handles are per thread).
 * The loop hands it one batch at a time and polls for the result; only the loop
 * calls these functions. Internal to the issuer. */
#ifndef ACMERA_ISSUER_DNS_WORKER_H
#define ACMERA_ISSUER_DNS_WORKER_H

#include "base/config.h"
#include "base/err.h"
#include "issuer/publisher.h"

#include <stddef.h>
#include <stdint.h>

struct dns_worker;

enum dns_batch_op { DNS_BATCH_ADD, DNS_BATCH_DELETE };

/* A finished batch: recs as publisher_add (zone and store id filled) or
 * publisher_delete (id cleared for each record deleted) left them. */
struct dns_batch {
	enum dns_batch_op op;
	struct pub_record *recs; /* the caller's again: free() it */
	size_t n;
	int rc; /* publisher_add's or publisher_delete's answer */
	struct acmera_errmsg err;
};

/* Opens cfg->store.path, makes the publisher and starts the thread. */
int dns_worker_start(const struct config *cfg, struct dns_worker **out, struct acmera_errmsg *e);

/* Hands n records (a malloc'ed array, owned by the worker until collected) over for
 * one publisher_add or publisher_delete. ACMERA_ERR_AGAIN, and recs still the
 * caller's, while an earlier batch has not been collected. */
int dns_worker_submit(struct dns_worker *w, enum dns_batch_op op, struct pub_record *recs,
                      size_t n);

/* 1 from submit until the result is collected. */
int dns_worker_busy(const struct dns_worker *w);

/* Takes the result of the batch: 1 with *out filled once it is done, else 0.
 * wait_ms 0 only looks, > 0 waits up to that long, < 0 waits until it is done
 * (as long as the publisher's own timeouts allow). */
int dns_worker_collect(struct dns_worker *w, int wait_ms, struct dns_batch *out);

/* UPDATE messages (or hook runs) the worker sent so far. */
uint64_t dns_worker_messages(struct dns_worker *w);

/* Lets a batch in progress finish, joins the thread and frees everything, the
 * records of a batch never collected included. NULL is a no-op. */
void dns_worker_stop(struct dns_worker *w);

#endif
