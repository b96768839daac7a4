/* The DNS worker thread. See dns_worker.h.
 *
 * One mutex guards the hand-over; the worker runs the batch without it. States go
 * IDLE -> QUEUED (loop submits) -> RUNNING (worker takes it) -> DONE (worker
 * finished) -> IDLE (loop collects). The batch's records pass between the threads
 * only under the mutex, so each side sees what the other wrote. */
#include "issuer/dns_worker.h"

#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum worker_state { W_IDLE, W_QUEUED, W_RUNNING, W_DONE };

struct dns_worker {
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* any change of state or quit */
	enum worker_state state; /* under lock */
	int quit;                /* under lock */
	struct dns_batch batch;  /* under lock while QUEUED or DONE; the worker's while RUNNING */
	uint64_t messages;       /* under lock */
	int held;                /* loop only: submitted and not yet collected */
	/* The worker thread's own: used by no other thread while it runs. */
	struct store *store;
	struct publisher *pub;
};

static void *worker_main(void *arg)
{
	struct dns_worker *w = arg;
	pthread_setname_np(pthread_self(), "acmera-dns");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->state != W_QUEUED && !w->quit)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->state != W_QUEUED)
			break;
		w->state = W_RUNNING;
		struct dns_batch b = w->batch;
		pthread_mutex_unlock(&w->lock);

		memset(&b.err, 0, sizeof(b.err));
		if (b.op == DNS_BATCH_ADD)
			b.rc = publisher_add(w->pub, b.recs, b.n, &b.err);
		else
			b.rc = publisher_delete(w->pub, b.recs, b.n, &b.err);

		pthread_mutex_lock(&w->lock);
		w->batch = b;
		w->messages = publisher_messages(w->pub);
		w->state = W_DONE;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void worker_free(struct dns_worker *w)
{
	publisher_free(w->pub);
	store_close(w->store);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->batch.recs);
	free(w);
}

int dns_worker_start(const struct config *cfg, struct dns_worker **out, struct acmera_errmsg *e)
{
	struct dns_worker *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	*out = NULL;
	if (!w)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	/* Timed waits measure on the monotonic clock: a clock step cannot stretch them. */
	if (pthread_mutex_init(&w->lock, NULL) || pthread_condattr_init(&ca)) {
		free(w);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "dns worker: cannot make a mutex");
	}
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) || pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc) {
		pthread_mutex_destroy(&w->lock);
		free(w);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "dns worker: cannot make a condition");
	}
	rc = store_open(cfg->store.path, &w->store, e);
	if (rc) {
		acmera_fail_wrap(e, rc, "dns worker");
		goto fail;
	}
	rc = publisher_new(cfg, w->store, &w->pub, e);
	if (rc)
		goto fail;
	/* Signals (SIGTERM, SIGINT) go to the loop's thread: the handler's flag is
	 * read there, and the worker's waits on DNS are not cut short by them. Faults
	 * stay deliverable. */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "dns worker: cannot start a thread: %s",
		                 strerror(rc));
		goto fail;
	}
	w->started = 1;
	*out = w;
	return 0;
fail:
	worker_free(w);
	return rc;
}

int dns_worker_submit(struct dns_worker *w, enum dns_batch_op op, struct pub_record *recs, size_t n)
{
	if (w->held)
		return ACMERA_ERR_AGAIN;
	pthread_mutex_lock(&w->lock);
	w->batch = (struct dns_batch){.op = op, .recs = recs, .n = n};
	w->state = W_QUEUED;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	w->held = 1;
	return 0;
}

int dns_worker_busy(const struct dns_worker *w)
{
	return w && w->held;
}

static void deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int dns_worker_collect(struct dns_worker *w, int wait_ms, struct dns_batch *out)
{
	struct timespec until;
	int got = 0;
	if (!w || !w->held)
		return 0;
	if (wait_ms > 0)
		deadline_after(&until, wait_ms);
	pthread_mutex_lock(&w->lock);
	while (w->state != W_DONE && wait_ms != 0) {
		if (wait_ms < 0) {
			pthread_cond_wait(&w->cond, &w->lock);
		} else if (pthread_cond_timedwait(&w->cond, &w->lock, &until) == ETIMEDOUT) {
			break;
		}
	}
	if (w->state == W_DONE) {
		*out = w->batch;
		memset(&w->batch, 0, sizeof(w->batch));
		w->state = W_IDLE;
		got = 1;
	}
	pthread_mutex_unlock(&w->lock);
	if (got)
		w->held = 0;
	return got;
}

uint64_t dns_worker_messages(struct dns_worker *w)
{
	uint64_t n;
	if (!w)
		return 0;
	pthread_mutex_lock(&w->lock);
	n = w->messages;
	pthread_mutex_unlock(&w->lock);
	return n;
}

void dns_worker_stop(struct dns_worker *w)
{
	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->quit = 1;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	worker_free(w);
}
