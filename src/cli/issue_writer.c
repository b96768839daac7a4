/* See issue_writer.h. */
#include "cli/issue_writer.h"

#include "store/job_events.h"
#include "store/store.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct by_id {
	int64_t id;
	size_t job; /* index into jobs */
};

struct issue_writer {
	struct store *store; /* the thread's own handle */
	struct issue_writer_job *jobs;
	size_t n;
	struct by_id *by_id; /* sorted by id */
	issue_writer_fn fn;
	void *arg;
	int efd;
	uint64_t seen;
	atomic_int stop;
	pthread_t thread;
};

static int cmp_by_id(const void *x, const void *y)
{
	int64_t a = ((const struct by_id *)x)->id, b = ((const struct by_id *)y)->id;
	return (a > b) - (a < b);
}

static void write_job(struct issue_writer *w, struct issue_writer_job *j)
{
	struct store_cert c = {0};
	if (j->written || store_cert_lookup(w->store, j->digest, (int64_t)time(NULL), &c, NULL))
		return;
	if (w->fn(w->arg, j->path, c.chain_pem) == 0)
		j->written = 1;
	store_cert_free(&c);
}

/* Every job of the run with this id: two CSR files with the same content share
 * one job. */
static void write_finished(struct issue_writer *w, int64_t id)
{
	size_t lo = 0, hi = w->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->by_id[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < w->n && w->by_id[lo].id == id; lo++)
		write_job(w, &w->jobs[w->by_id[lo].job]);
}

static void drain(struct issue_writer *w)
{
	int64_t ids[64];
	size_t got;
	do {
		got = 0;
		if (store_jobs_finished_since(&w->seen, ids, 64, &got) ==
		    STORE_FINISHED_FORGOTTEN) {
			/* Too many finished at once to name them all: look at each job. */
			for (size_t i = 0; i < w->n; i++)
				write_job(w, &w->jobs[i]);
			return;
		}
		for (size_t i = 0; i < got; i++)
			write_finished(w, ids[i]);
	} while (got == 64);
}

static void *run(void *arg)
{
	struct issue_writer *w = arg;
	pthread_setname_np(pthread_self(), "acmera-files");
	while (!atomic_load(&w->stop)) {
		struct pollfd p = {.fd = w->efd, .events = POLLIN};
		uint64_t count;
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		if (read(w->efd, &count, sizeof(count)) < 0 && errno != EAGAIN && errno != EINTR)
			break;
		drain(w);
	}
	return NULL;
}

static void writer_free(struct issue_writer *w)
{
	if (w->efd >= 0)
		close(w->efd);
	store_close(w->store);
	free(w->by_id);
	free(w);
}

int issue_writer_start(const char *store_path, struct issue_writer_job *jobs, size_t n,
                       issue_writer_fn fn, void *arg, struct issue_writer **out,
                       struct acmera_errmsg *e)
{
	*out = NULL;
	struct issue_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	w->jobs = jobs;
	w->n = n;
	w->fn = fn;
	w->arg = arg;
	w->efd = -1;
	atomic_init(&w->stop, 0);
	int rc = 0;
	if (!(w->by_id = malloc((n ? n : 1) * sizeof(*w->by_id)))) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		w->by_id[i] = (struct by_id){.id = jobs[i].id, .job = i};
	qsort(w->by_id, n, sizeof(*w->by_id), cmp_by_id);
	rc = store_open(store_path, &w->store, e);
	if (rc)
		goto fail;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "eventfd: %s", strerror(errno));
		goto fail;
	}
	/* Counted before watching: a finish between the two is seen at the first
	 * wake-up rather than lost. */
	w->seen = store_jobs_finished_here();
	rc = store_jobs_finished_watch(w->efd, e);
	if (rc)
		goto fail;
	int err = pthread_create(&w->thread, NULL, run, w);
	if (err) {
		store_jobs_finished_unwatch(w->efd);
		rc = acmera_fail(e, ACMERA_ERR_IO, "cannot start a thread: %s", strerror(err));
		goto fail;
	}
	*out = w;
	return 0;
fail:
	writer_free(w);
	return rc;
}

void issue_writer_stop(struct issue_writer *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, 1);
	uint64_t one = 1;
	/* Wakes the thread if it sleeps. Only a full counter (EAGAIN) can refuse
	 * the write, and a full counter wakes it as well. */
	ssize_t wrote = write(w->efd, &one, sizeof(one));
	(void)wrote;
	pthread_join(w->thread, NULL);
	store_jobs_finished_unwatch(w->efd);
	writer_free(w);
}
