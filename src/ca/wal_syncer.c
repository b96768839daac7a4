/* The thread that syncs the CA store's write-ahead log (see wal_syncer.h). */
#include "ca/wal_syncer.h"

#include "base/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { WATCHERS_MAX = 64 }; /* one per HTTPS worker: [ca] workers is at most 64 */

struct wal_syncer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* to the thread: a commit to sync, or stop */
	pthread_cond_t done_cv; /* from the thread: a sync returned */
	int wal_fd;
	uint64_t committed, synced, failed_upto;
	int watchers[WATCHERS_MAX];
	size_t n_watchers;
	int stop;
};

static void tell_watchers(struct wal_syncer *w)
{
	static const uint64_t one = 1;
	for (size_t i = 0; i < w->n_watchers; i++)
		/* A full counter already wakes the worker: nothing is lost. */
		if (write(w->watchers[i], &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_event(LOG_LVL_ERROR, "ca.store", "error=%s",
			          log_qv("cannot wake a worker after a sync"));
}

static void *run(void *arg)
{
	struct wal_syncer *w = arg;
	pthread_setname_np(pthread_self(), "acmera-walsync");
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && w->synced == w->committed)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->synced == w->committed)
			break; /* stopping, nothing left to sync */
		uint64_t target = w->committed;
		pthread_mutex_unlock(&w->mu);
		int rc = fdatasync(w->wal_fd);
		int err = errno;
		pthread_mutex_lock(&w->mu);
		if (rc != 0) {
			/* After a failed sync the kernel may have dropped the pages: never
			 * retry into a false success. */
			w->failed_upto = target;
			log_event(LOG_LVL_ERROR, "ca.store", "error=%s effect=%s",
			          log_qv(strerror(err)),
			          log_qv("changes not known to be on disk, answered 500"));
		}
		w->synced = target;
		pthread_cond_broadcast(&w->done_cv);
		tell_watchers(w);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int wal_syncer_start(int wal_fd, struct wal_syncer **out, struct acmera_errmsg *e)
{
	struct wal_syncer *w = calloc(1, sizeof(*w));
	*out = NULL;
	if (!w) {
		close(wal_fd);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	w->wal_fd = wal_fd;
	int rc = pthread_mutex_init(&w->mu, NULL);
	if (rc == 0 && (rc = pthread_cond_init(&w->cv, NULL)) != 0)
		pthread_mutex_destroy(&w->mu);
	if (rc == 0 && (rc = pthread_cond_init(&w->done_cv, NULL)) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
	}
	if (rc == 0 && (rc = pthread_create(&w->thread, NULL, run, w)) != 0) {
		pthread_cond_destroy(&w->done_cv);
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
	}
	if (rc != 0) {
		close(wal_fd);
		free(w);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "cannot start the store's sync thread: %s",
		                   strerror(rc));
	}
	*out = w;
	return 0;
}

uint64_t wal_syncer_stop(struct wal_syncer *w)
{
	if (!w)
		return 0;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->done_cv);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	close(w->wal_fd);
	uint64_t synced = w->synced;
	free(w);
	return synced;
}

uint64_t wal_syncer_commit(struct wal_syncer *w)
{
	pthread_mutex_lock(&w->mu);
	uint64_t n = ++w->committed;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return n;
}

uint64_t wal_syncer_unsynced(struct wal_syncer *w)
{
	pthread_mutex_lock(&w->mu);
	uint64_t n = w->synced < w->committed ? w->committed : 0;
	pthread_mutex_unlock(&w->mu);
	return n;
}

uint64_t wal_syncer_synced(struct wal_syncer *w, uint64_t *failed_upto)
{
	pthread_mutex_lock(&w->mu);
	uint64_t n = w->synced;
	*failed_upto = w->failed_upto;
	pthread_mutex_unlock(&w->mu);
	return n;
}

void wal_syncer_wait(struct wal_syncer *w, uint64_t n)
{
	pthread_mutex_lock(&w->mu);
	while (w->synced < n)
		pthread_cond_wait(&w->done_cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

int wal_syncer_watch(struct wal_syncer *w, int efd)
{
	int rc = -1;
	pthread_mutex_lock(&w->mu);
	if (w->n_watchers < WATCHERS_MAX) {
		w->watchers[w->n_watchers++] = efd;
		rc = 0;
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

void wal_syncer_unwatch(struct wal_syncer *w, int efd)
{
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->n_watchers; i++)
		if (w->watchers[i] == efd) {
			w->watchers[i] = w->watchers[--w->n_watchers];
			break;
		}
	pthread_mutex_unlock(&w->mu);
}
