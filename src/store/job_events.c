/* The jobs finished, and submitted, in this process (see job_events.h). */
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
/* Eventfds written each time jobs finish, or are submitted. */
struct watchers {
	int *fd;
	size_t n, cap;
};
static struct watchers on_finished, on_submitted;

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

static int watch(struct watchers *w, int efd, struct acmera_errmsg *e)
{
	int rc = 0;
	pthread_mutex_lock(&mu);
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 8;
		int *fd = realloc(w->fd, cap * sizeof(*fd));
		if (fd) {
			w->fd = fd;
			w->cap = cap;
		} else {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		}
	}
	if (rc == 0)
		w->fd[w->n++] = efd;
	pthread_mutex_unlock(&mu);
	return rc;
}

static void unwatch(struct watchers *w, int efd)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < w->n; i++)
		if (w->fd[i] == efd) {
			w->fd[i] = w->fd[--w->n];
			break;
		}
	/* The last one gone: nothing is kept for a process that no longer waits. */
	if (w->n == 0) {
		free(w->fd);
		w->fd = NULL;
		w->cap = 0;
	}
	pthread_mutex_unlock(&mu);
}

/* Called with mu held: an unwatched descriptor, which its owner may close and
 * the number be reused, is never written. A full counter (EAGAIN) already wakes
 * its reader. */
static void wake(const struct watchers *w, const char *what)
{
	static const uint64_t one = 1;
	for (size_t i = 0; i < w->n; i++)
		if (write(w->fd[i], &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_event(LOG_LVL_ERROR, "store.job_events", "error=%s", log_qv(what));
}

int store_jobs_finished_watch(int efd, struct acmera_errmsg *e)
{
	return watch(&on_finished, efd, e);
}

void store_jobs_finished_unwatch(int efd)
{
	unwatch(&on_finished, efd);
}

int store_jobs_submitted_watch(int efd, struct acmera_errmsg *e)
{
	return watch(&on_submitted, efd, e);
}

void store_jobs_submitted_unwatch(int efd)
{
	unwatch(&on_submitted, efd);
}

void store_jobs_submitted_publish(void)
{
	pthread_mutex_lock(&mu);
	wake(&on_submitted, "cannot wake an issuer after jobs were submitted");
	pthread_mutex_unlock(&mu);
}

void store_jobs_finished_publish(const int64_t *ids, size_t n_known, uint64_t n)
{
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
	wake(&on_finished, "cannot wake a waiter after jobs finished");
	pthread_mutex_unlock(&mu);
}
