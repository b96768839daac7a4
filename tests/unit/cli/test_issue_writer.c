/* issue_writer: each watched job finished while it runs is handed over once, with
 * its certificate, from its own store handle; failed jobs, jobs finished before
 * it started and unknown ids are left to the caller; more finishes at once than
 * the store names still reach it. */
#include "cli/issue_writer.h"
#include "store/store.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../store/db_dir.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OWNER "issuer.test:1:w1"
#define CHAIN "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"

/* What the writer handed over, kept by the function it calls. */
struct handed {
	pthread_mutex_t mu;
	pthread_cond_t more;
	size_t n;
	char *path[512];
	int other_chain; /* handed over with another chain than the stored one */
	int refuse;      /* answer -1, as a failed write would */
};

struct fx {
	char dir[64], path[128];
	struct store *s;
	struct handed h;
	struct issue_writer_job jobs[400];
	size_t n_jobs;
};

static int take(void *arg, const char *path, const char *chain_pem)
{
	struct handed *h = arg;
	/* No cmocka assertion here: this runs on the writer's thread. */
	pthread_mutex_lock(&h->mu);
	if (strcmp(chain_pem, CHAIN) != 0)
		h->other_chain++;
	if (h->n < 512)
		h->path[h->n++] = strdup(path);
	pthread_cond_broadcast(&h->more);
	pthread_mutex_unlock(&h->mu);
	return h->refuse ? -1 : 0;
}

/* Waits, at most 10 s, until n have been handed over. */
static void wait_handed(struct handed *h, size_t n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&h->mu);
	while (h->n < n && pthread_cond_timedwait(&h->more, &h->mu, &until) == 0)
		;
	size_t got = h->n;
	int other = h->other_chain;
	pthread_mutex_unlock(&h->mu);
	assert_int_equal(got, n);
	assert_int_equal(other, 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct acmera_errmsg e = {{0}};
	assert_non_null(f);
	db_dir_make(f->dir, f->path, "writer");
	if (store_open(f->path, &f->s, &e) != 0)
		fail_msg("store_open: %s", e.text);
	pthread_mutex_init(&f->h.mu, NULL);
	pthread_cond_init(&f->h.more, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	for (size_t i = 0; i < f->h.n; i++)
		free(f->h.path[i]);
	for (size_t i = 0; i < f->n_jobs; i++) {
		free((void *)f->jobs[i].digest);
		free(f->jobs[i].path);
	}
	pthread_mutex_destroy(&f->h.mu);
	pthread_cond_destroy(&f->h.more);
	store_close(f->s);
	assert_int_equal(db_dir_remove(f->dir, f->path), 0);
	free(f);
	return 0;
}

/* A claimed job of a fake CSR, watched under out/<i>.pem; returns its id. */
static int64_t watched_job(struct fx *f, int i)
{
	char digest[65], path[32];
	int64_t id = db_claimed_job(f->s, i, OWNER, (int64_t)time(NULL), digest);
	snprintf(path, sizeof(path), "out/%d.pem", i);
	struct issue_writer_job *j = &f->jobs[f->n_jobs++];
	j->id = id;
	j->digest = strdup(digest);
	j->path = strdup(path);
	assert_non_null(j->digest);
	assert_non_null(j->path);
	return id;
}

static void complete(struct fx *f, int64_t id)
{
	assert_int_equal(store_job_complete(f->s, id, OWNER, CHAIN, (int64_t)time(NULL) + 86400,
	                                    "CN=test", NULL),
	                 0);
}

static struct issue_writer *start(struct fx *f)
{
	struct issue_writer *w = NULL;
	struct acmera_errmsg e = {{0}};
	if (issue_writer_start(f->path, f->jobs, f->n_jobs, take, &f->h, &w, &e))
		fail_msg("issue_writer_start: %s", e.text);
	return w;
}

static void finished_jobs_are_handed_over_once_failed_ones_never(void **state)
{
	struct fx *f = *state;
	int64_t before = watched_job(f, 1), a = watched_job(f, 2), b = watched_job(f, 3);
	int64_t c = watched_job(f, 4);
	/* A second CSR file with the same content shares the job of the first. */
	f->jobs[f->n_jobs] = (struct issue_writer_job){
	    .id = a, .digest = strdup(f->jobs[1].digest), .path = strdup("out/2-copy.pem")};
	f->n_jobs++;
	complete(f, before); /* before the writer: the caller's */
	struct issue_writer *w = start(f);
	complete(f, a);
	assert_int_equal(store_job_fail(f->s, b, OWNER, "refused", NULL), 0);
	wait_handed(&f->h, 2);
	complete(f, c);
	wait_handed(&f->h, 3);
	issue_writer_stop(w);

	assert_int_equal(f->h.n, 3);
	/* The two files of job a, in either order, then c's. */
	assert_true((strcmp(f->h.path[0], "out/2.pem") == 0 &&
	             strcmp(f->h.path[1], "out/2-copy.pem") == 0) ||
	            (strcmp(f->h.path[1], "out/2.pem") == 0 &&
	             strcmp(f->h.path[0], "out/2-copy.pem") == 0));
	assert_string_equal(f->h.path[2], "out/4.pem");
	assert_int_equal(f->jobs[0].written, 0);
	assert_int_equal(f->jobs[1].written, 1);
	assert_int_equal(f->jobs[2].written, 0);
	assert_int_equal(f->jobs[3].written, 1);
	assert_int_equal(f->jobs[4].written, 1);
}

static void a_refused_file_stays_the_callers(void **state)
{
	struct fx *f = *state;
	int64_t a = watched_job(f, 1);
	f->h.refuse = 1;
	struct issue_writer *w = start(f);
	complete(f, a);
	wait_handed(&f->h, 1);
	issue_writer_stop(w);
	assert_int_equal(f->jobs[0].written, 0);
}

static void more_finishes_than_the_store_names_are_all_handed_over(void **state)
{
	struct fx *f = *state;
	enum { N = 300 }; /* more than STORE_FINISHED_RING in one commit */
	int64_t id[N];
	for (int i = 0; i < N; i++)
		id[i] = watched_job(f, 100 + i);
	struct issue_writer *w = start(f);
	assert_int_equal(store_batch_begin(f->s, NULL), 0);
	for (int i = 0; i < N; i++)
		complete(f, id[i]);
	assert_int_equal(store_batch_end(f->s, NULL), 0);
	wait_handed(&f->h, N);
	issue_writer_stop(w);
	for (int i = 0; i < N; i++)
		assert_int_equal(f->jobs[i].written, 1);
}

static void stopping_an_idle_writer_returns(void **state)
{
	struct fx *f = *state;
	watched_job(f, 1);
	issue_writer_stop(start(f));
	issue_writer_stop(NULL);
	assert_int_equal(f->h.n, 0);
	assert_int_equal(f->jobs[0].written, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(finished_jobs_are_handed_over_once_failed_ones_never,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(a_refused_file_stays_the_callers, setup, teardown),
	    cmocka_unit_test_setup_teardown(more_finishes_than_the_store_names_are_all_handed_over,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(stopping_an_idle_writer_returns, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
