/* job_watch: a held request's entry runs when its job finishes in this process,
 * and only then (all of them when the store forgot which finished); entries may
 * remove themselves and others, or add new ones, while woken; the eventfd lives
 * exactly as long as the thread has entries. Jobs are finished as a store
 * back-end tells of them (store_jobs_finished_publish). */
#include "est/job_watch.h"
#include "store/job_events.h"
#include "store/store.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct holder {
	struct job_watch_entry en;
	int runs;
	/* What its run does besides counting. */
	struct holder *remove[2];
	struct holder *add;
	struct event_base *base;
};

static void on_finished(void *arg)
{
	struct holder *h = arg;
	h->runs++;
	for (size_t i = 0; i < 2; i++)
		if (h->remove[i])
			job_watch_remove(&h->remove[i]->en);
	if (h->add) {
		assert_true(job_watch_add(h->base, &h->add->en, store_jobs_finished_here(), NULL) >=
		            0);
		h->add = NULL;
	}
}

/* A holder of job, not yet watched. */
static void prepare(struct event_base *base, struct holder *h, int64_t job)
{
	memset(h, 0, sizeof(*h));
	h->en.job = job;
	h->en.on_finished = on_finished;
	h->en.arg = h;
	h->base = base;
}

static void hold(struct event_base *base, struct holder *h, int64_t job)
{
	prepare(base, h, job);
	assert_int_equal(job_watch_add(base, &h->en, store_jobs_finished_here(), NULL), 0);
}

/* Publishes ids and turns the loop once (1: it had no event left). */
static void finish(struct event_base *base, const int64_t *ids, size_t n)
{
	store_jobs_finished_publish(ids, n, n);
	assert_true(event_base_loop(base, EVLOOP_NONBLOCK) >= 0);
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void only_the_entries_of_finished_jobs_run(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	struct holder a, b1, b2, c;
	hold(base, &a, 1);
	hold(base, &b1, 2);
	hold(base, &b2, 2);
	hold(base, &c, 3);
	finish(base, (int64_t[]){2, 99}, 2);
	assert_int_equal(a.runs, 0);
	assert_int_equal(b1.runs, 1);
	assert_int_equal(b2.runs, 1);
	assert_int_equal(c.runs, 0);
	/* No wake-up without a finished job; a loop turn runs nothing. */
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(b1.runs, 1);
	finish(base, (int64_t[]){3, 1}, 2);
	assert_int_equal(a.runs, 1);
	assert_int_equal(b1.runs, 1);
	assert_int_equal(c.runs, 1);
	/* Two publications before the loop turns: both are seen. */
	store_jobs_finished_publish((int64_t[]){1}, 1, 1);
	store_jobs_finished_publish((int64_t[]){2}, 1, 1);
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(a.runs, 2);
	assert_int_equal(b2.runs, 2);
	assert_int_equal(c.runs, 1);
	job_watch_remove(&a.en);
	job_watch_remove(&b1.en);
	job_watch_remove(&b2.en);
	job_watch_remove(&c.en);
	event_base_free(base);
}

static void entries_may_remove_and_add_entries_while_woken(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	struct holder first, second, third, later;
	/* Run newest first: third, then second, then first. */
	hold(base, &first, 5);
	hold(base, &second, 5);
	hold(base, &third, 5);
	third.remove[0] = &third;  /* itself, */
	third.remove[1] = &second; /* and the next one due */
	third.add = &later;
	prepare(base, &later, 5);
	finish(base, (int64_t[]){5}, 1);
	assert_int_equal(third.runs, 1);
	assert_int_equal(second.runs, 0); /* removed before its turn */
	assert_int_equal(first.runs, 1);
	assert_int_equal(later.runs, 0); /* added during the run: not due in it */
	finish(base, (int64_t[]){5}, 1);
	assert_int_equal(third.runs, 1);
	assert_int_equal(second.runs, 0);
	assert_int_equal(first.runs, 2);
	assert_int_equal(later.runs, 1);
	/* Removing twice, or an entry never added, is harmless. */
	job_watch_remove(&second.en);
	job_watch_remove(&first.en);
	job_watch_remove(&later.en);
	event_base_free(base);
}

static void every_entry_runs_when_the_store_forgot_which_finished(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	struct holder a, b;
	hold(base, &a, 7);
	hold(base, &b, 8);
	int64_t others[STORE_FINISHED_RING + 1];
	for (size_t i = 0; i < STORE_FINISHED_RING + 1; i++)
		others[i] = 100000 + (int64_t)i;
	finish(base, others, STORE_FINISHED_RING + 1);
	assert_int_equal(a.runs, 1);
	assert_int_equal(b.runs, 1);
	/* Caught up: the next wake-up is precise again. */
	finish(base, (int64_t[]){8}, 1);
	assert_int_equal(a.runs, 1);
	assert_int_equal(b.runs, 2);
	job_watch_remove(&a.en);
	job_watch_remove(&b.en);
	event_base_free(base);
}

static void adding_tells_of_a_job_finished_since_the_holder_looked(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	struct holder keep, h;
	hold(base, &keep, 1); /* the watch exists already */
	uint64_t looked = store_jobs_finished_here();
	store_jobs_finished_publish((int64_t[]){21}, 1, 1);
	prepare(base, &h, 21);
	assert_int_equal(job_watch_add(base, &h.en, looked, NULL), 1);
	job_watch_remove(&h.en);
	h.en.job = 22;
	assert_int_equal(job_watch_add(base, &h.en, looked, NULL), 0);
	job_watch_remove(&h.en);
	job_watch_remove(&keep.en);

	/* The same when the add makes the watch: the job finished before it. */
	looked = store_jobs_finished_here();
	store_jobs_finished_publish((int64_t[]){23}, 1, 1);
	h.en.job = 23;
	assert_int_equal(job_watch_add(base, &h.en, looked, NULL), 1);
	job_watch_remove(&h.en);
	/* Too far behind to know: look, to be safe. */
	looked = store_jobs_finished_here();
	int64_t many[STORE_FINISHED_RING + 1] = {0};
	store_jobs_finished_publish(many, STORE_FINISHED_RING + 1, STORE_FINISHED_RING + 1);
	h.en.job = 24;
	assert_int_equal(job_watch_add(base, &h.en, looked, NULL), 1);
	job_watch_remove(&h.en);
	event_base_free(base);
}

static void the_eventfd_lives_while_the_thread_has_entries(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	int before = open_fds();
	struct holder a, b;
	hold(base, &a, 31);
	assert_int_equal(open_fds(), before + 1);
	hold(base, &b, 32);
	assert_int_equal(open_fds(), before + 1); /* one per thread */
	job_watch_remove(&a.en);
	assert_int_equal(open_fds(), before + 1);
	/* The last entry removes itself from the watch's own wake-up. */
	b.remove[0] = &b;
	finish(base, (int64_t[]){32}, 1);
	assert_int_equal(b.runs, 1);
	assert_int_equal(open_fds(), before);
	/* Nothing is woken any more, and a new entry makes a new watch. */
	finish(base, (int64_t[]){31, 32}, 2);
	assert_int_equal(a.runs, 0);
	assert_int_equal(b.runs, 1);
	hold(base, &a, 31);
	finish(base, (int64_t[]){31}, 1);
	assert_int_equal(a.runs, 1);
	/* One thread, one loop. */
	struct event_base *other = event_base_new();
	struct holder x = {.en = {.job = 1, .on_finished = on_finished}};
	assert_true(job_watch_add(other, &x.en, store_jobs_finished_here(), NULL) < 0);
	job_watch_remove(&x.en); /* never added */
	event_base_free(other);
	job_watch_remove(&a.en);
	assert_int_equal(open_fds(), before);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(only_the_entries_of_finished_jobs_run),
	    cmocka_unit_test(entries_may_remove_and_add_entries_while_woken),
	    cmocka_unit_test(every_entry_runs_when_the_store_forgot_which_finished),
	    cmocka_unit_test(adding_tells_of_a_job_finished_since_the_holder_looked),
	    cmocka_unit_test(the_eventfd_lives_while_the_thread_has_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
