/* The issuer: claims enrollment jobs from the store and drives them to
 * certificates through the ACME CA, many at once on one libcurl multi handle,
 * with the DNS-01 records of all pending challenges published in one UPDATE per
 * zone. Pre-authorizes configured parent domains (newAuthz, RFC 9444) when the
 * CA offers it, so that orders below them need no challenge. */
#ifndef ACMERA_ISSUER_ISSUER_H
#define ACMERA_ISSUER_ISSUER_H

#include "base/config.h"
#include "base/err.h"
#include "store/store.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct issuer_opts {
	const struct config *cfg;
	/* Return once each of these jobs is DONE or FAILED (`acmera issue`); with
	 * n_watch == 0 the issuer runs until *stop becomes non-zero. */
	const int64_t *watch;
	size_t n_watch;
	int64_t deadline;            /* Unix time to give up, 0 = none */
	volatile sig_atomic_t *stop; /* may be NULL */
};

struct issuer_stats {
	uint64_t acme_requests; /* HTTP requests to the CA */
	uint64_t dns_messages;  /* UPDATE messages (or hook runs) */
	uint64_t issued;        /* certificates stored */
	uint64_t failed;        /* jobs failed for good */
	uint64_t deferred;      /* times a job was put back for later */
};

/* Runs the issuer. Returns 0 when every watched job ended (DONE or FAILED: look at
 * the store for which), ACMERA_ERR_TIMEOUT at the deadline, or an error that
 * stops it from working at all (no account, bad settings). */
int issuer_run(struct store *s, const struct issuer_opts *o, struct issuer_stats *st,
               struct acmera_errmsg *e);

#endif
