/* See csr_files.h. */
#include "cli/csr_files.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define MAX_THREADS 8
#define PER_THREAD 32 /* fewer CSRs than this each: not worth a thread */

struct batch {
	const char *const *paths;
	struct csr_info *out;
	size_t n;
	atomic_size_t next;
	pthread_mutex_t lock;
	size_t failed; /* lowest failing index, n while none */
	int rc;        /* its error */
	struct acmera_errmsg err;
};

static void *load_some(void *arg)
{
	struct batch *b = arg;
	pthread_setname_np(pthread_self(), "acmera-csrload");
	for (;;) {
		size_t i = atomic_fetch_add(&b->next, 1);
		if (i >= b->n)
			return NULL;
		struct acmera_errmsg e = {{0}};
		int rc = csr_load_file(b->paths[i], &b->out[i], &e);
		if (rc == 0)
			continue;
		pthread_mutex_lock(&b->lock);
		if (i < b->failed) {
			b->failed = i;
			b->rc = rc;
			b->err = e;
		}
		pthread_mutex_unlock(&b->lock);
	}
}

int cli_load_csr_files(const char *const *paths, size_t n, struct csr_info *out, int threads,
                       size_t *failed, struct acmera_errmsg *e)
{
	struct batch b = {.paths = paths, .out = out, .n = n, .failed = n};
	pthread_t tid[MAX_THREADS];
	/* Threads besides the caller: one per PER_THREAD files, within the cores. */
	size_t started = 0, want = n / PER_THREAD, others = threads > 1 ? (size_t)threads - 1 : 0;
	if (want > others)
		want = others;
	if (want > MAX_THREADS)
		want = MAX_THREADS;
	atomic_init(&b.next, 0);
	pthread_mutex_init(&b.lock, NULL);
	/* The calling thread loads too; a thread that does not start leaves it more. */
	while (started < want && pthread_create(&tid[started], NULL, load_some, &b) == 0)
		started++;
	load_some(&b);
	for (size_t i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	pthread_mutex_destroy(&b.lock);
	if (b.failed == n)
		return 0;
	*failed = b.failed;
	if (e)
		*e = b.err;
	return b.rc;
}
