/* The jobs finished in this process, for whoever waits on them here (a held EST
 * request): how many (store_jobs_finished_here, store.h), the ids of the latest
 * ones, and eventfds written each time some finish, so that a waiter sleeps until
 * something can have changed for its job rather than polling the store.
 *
 * A job counts once its change is committed: at store_job_complete or
 * store_job_fail outside a batch, at a successful store_batch_end for the jobs of
 * a batch (none for a batch that fails). Jobs finished by another process sharing
 * the store are not seen here: a waiter still looks now and then. Thread-safe. */
#ifndef ACMERA_STORE_JOB_EVENTS_H
#define ACMERA_STORE_JOB_EVENTS_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

/* How many of the latest finished jobs' ids are remembered. */
#define STORE_FINISHED_RING 256
/* store_jobs_finished_since: some ids after *seen were forgotten. */
#define STORE_FINISHED_FORGOTTEN 1

/* The ids of the jobs finished after *seen (a value of store_jobs_finished_here
 * or of an earlier call), oldest first: up to max into ids, *n of them, and *seen
 * advanced past them (call again while *n == max). Returns 0, or
 * STORE_FINISHED_FORGOTTEN with *n = 0 and *seen set to now when some of those ids
 * are no longer known (more than STORE_FINISHED_RING finished since, or the store
 * ran out of memory keeping them): the caller must then look at all its jobs. */
int store_jobs_finished_since(uint64_t *seen, int64_t *ids, size_t max, size_t *n);

/* Has 8 bytes written to efd (an eventfd, best non-blocking) each time jobs
 * finish, until unwatched. Unwatched, efd is never written again: close it after.
 * 0, or ACMERA_ERR_NOMEM. */
int store_jobs_finished_watch(int efd, struct acmera_errmsg *e);
void store_jobs_finished_unwatch(int efd);

/* For the store's back-ends: n jobs were just committed finished, whose ids are
 * the first n_known of ids (fewer than n when some could not be kept). n == 0
 * does nothing. */
void store_jobs_finished_publish(const int64_t *ids, size_t n_known, uint64_t n);

/* The other way: eventfds written each time a submitter here (EST) says it has
 * committed new jobs (store_job_submit), so that an issuer of this process claims
 * them at once rather than at its next look in the store. Jobs submitted by another
 * process are not seen: an issuer still looks now and then. Same rules as
 * store_jobs_finished_watch. */
int store_jobs_submitted_watch(int efd, struct acmera_errmsg *e);
void store_jobs_submitted_unwatch(int efd);
void store_jobs_submitted_publish(void);

#endif
