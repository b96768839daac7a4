/* The jobs finished in this process (see job_events.h). */
#include "store/job_events.h"

#include "base/log.h"
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
/* Jobs finished so far: changed under mu, read without it by
 * store_jobs_finished_here, which is on every enrollment's path. */
static atomic_uint_fast64_t finished;
/* Finished job number k (from 0) has its id in ring[k % STORE_FINISHED_RING]
 * while k >= known_from and k + STORE_FINISHED_RING >= finished. */
static int64_t ring[STORE_FINISHED_RING];
static uint64_t known_from;
static int *watchers;
static size_t n_watchers, cap_watchers;

uint64_t store_jobs_finished_here(void)
{
	return atomic_load(&finished);
}

int store_jobs_finished_since(uint64_t *seen, int64_t *ids, size_t max, size_t *n)
{
	int rc = 0;
	*n = 0;
	pthread_mutex_lock(&mu);
	uint64_t now = atomic_load(&finished);
	uint64_t oldest = now > STORE_FINISHED_RING ? now - STORE_FINISHED_RING : 0;
	if (oldest < known_from)
		oldest = known_from;
	/* A value from no call here is treated as forgotten: the safe side. */
	if (*seen < oldest || *seen > now) {
		*seen = now;
		rc = STORE_FINISHED_FORGOTTEN;
	}
	while (*seen < now && *n < max)
		ids[(*n)++] = ring[(*seen)++ % STORE_FINISHED_RING];
	pthread_mutex_unlock(&mu);
	return rc;
}

int store_jobs_finished_watch(int efd, struct acmera_errmsg *e)
{
	int rc = 0;
	pthread_mutex_lock(&mu);
	if (n_watchers == cap_watchers) {
		size_t cap = cap_watchers ? 2 * cap_watchers : 8;
		int *w = realloc(watchers, cap * sizeof(*w));
		if (w) {
			watchers = w;
			cap_watchers = cap;
		} else {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		}
	}
	if (rc == 0)
		watchers[n_watchers++] = efd;
	pthread_mutex_unlock(&mu);
	return rc;
}

void store_jobs_finished_unwatch(int efd)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < n_watchers; i++)
		if (watchers[i] == efd) {
			watchers[i] = watchers[--n_watchers];
			break;
		}
	/* The last one gone: nothing is kept for a process that no longer waits. */
	if (n_watchers == 0) {
		free(watchers);
		watchers = NULL;
		cap_watchers = 0;
	}
	pthread_mutex_unlock(&mu);
}

void store_jobs_finished_publish(const int64_t *ids, size_t n_known, uint64_t n)
{
	static const uint64_t one = 1;
	if (n == 0)
		return;
	if (n_known > n)
		n_known = n;
	pthread_mutex_lock(&mu);
	uint64_t k = atomic_load(&finished);
	for (size_t i = 0; i < n_known; i++)
		ring[(k + i) % STORE_FINISHED_RING] = ids[i];
	if (n_known < n)
		known_from = k + n;
	atomic_store(&finished, k + n);
	/* Written under mu: an unwatched descriptor, which its owner may close and
	 * the number be reused, is never written. A full counter (EAGAIN) already
	 * wakes its reader. */
	for (size_t i = 0; i < n_watchers; i++)
		if (write(watchers[i], &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_event(LOG_LVL_ERROR, "store.job_events", "error=%s",
			          log_qv("cannot wake a waiter after jobs finished"));
	pthread_mutex_unlock(&mu);
}
