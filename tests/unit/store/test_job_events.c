/* job_events: the ids of the jobs finished in this process, in order, with the
 * loss of old ones reported; eventfds written when jobs finish, outside a batch
 * or at its commit, never for a batch that fails, and no more once unwatched;
 * the same for submitted jobs, on their own watchers.
 * The record is process-wide: each test reads it from where it stands. */
#include "store/job_events.h"
#include "store/sqlite_internal.h"
#include "store/store.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "db_dir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define T0 1700000000
#define OWNER "issuer.test:1:a1"

/* ---- the ring, fed as a back-end does ---- */

static void publish_ids(int64_t first, size_t n)
{
	int64_t ids[2 * STORE_FINISHED_RING];
	assert_true(n <= sizeof(ids) / sizeof(ids[0]));
	for (size_t i = 0; i < n; i++)
		ids[i] = first + (int64_t)i;
	store_jobs_finished_publish(ids, n, n);
}

static void ids_come_in_order_and_advance_seen(void **state)
{
	(void)state;
	uint64_t seen = store_jobs_finished_here();
	int64_t ids[8];
	size_t n = 99;
	assert_int_equal(store_jobs_finished_since(&seen, ids, 8, &n), 0);
	assert_int_equal(n, 0);

	publish_ids(101, 3);
	int64_t two[] = {7, 5};
	store_jobs_finished_publish(two, 2, 2);
	assert_int_equal(store_jobs_finished_here(), seen + 5);
	/* Fewer than there are: the rest on the next call. */
	assert_int_equal(store_jobs_finished_since(&seen, ids, 4, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(ids[0], 101);
	assert_int_equal(ids[1], 102);
	assert_int_equal(ids[2], 103);
	assert_int_equal(ids[3], 7);
	assert_int_equal(store_jobs_finished_since(&seen, ids, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], 5);
	assert_int_equal(seen, store_jobs_finished_here());
	/* Nothing published for n == 0. */
	store_jobs_finished_publish(NULL, 0, 0);
	assert_int_equal(store_jobs_finished_since(&seen, ids, 8, &n), 0);
	assert_int_equal(n, 0);
}

static void readers_each_get_what_finished_after_their_seen(void **state)
{
	(void)state;
	uint64_t a = store_jobs_finished_here();
	publish_ids(1, 2);
	uint64_t b = store_jobs_finished_here();
	publish_ids(3, 2);
	int64_t ids[8];
	size_t n = 0;
	assert_int_equal(store_jobs_finished_since(&b, ids, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 4);
	/* One reader's read takes nothing from another. */
	assert_int_equal(store_jobs_finished_since(&a, ids, 8, &n), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(ids[i], (int64_t)i + 1);
	assert_int_equal(a, b);
}

static void an_overrun_ring_reports_forgotten_ids(void **state)
{
	(void)state;
	int64_t ids[STORE_FINISHED_RING];
	size_t n = 0;
	uint64_t behind = store_jobs_finished_here();
	uint64_t just = behind;
	publish_ids(1000, STORE_FINISHED_RING); /* exactly a ringful: all still known */
	assert_int_equal(store_jobs_finished_since(&just, ids, STORE_FINISHED_RING, &n), 0);
	assert_int_equal(n, STORE_FINISHED_RING);
	assert_int_equal(ids[0], 1000);
	assert_int_equal(ids[STORE_FINISHED_RING - 1], 1000 + STORE_FINISHED_RING - 1);

	publish_ids(5000, 1); /* one more: the oldest is gone */
	n = 99;
	assert_int_equal(store_jobs_finished_since(&behind, ids, STORE_FINISHED_RING, &n),
	                 STORE_FINISHED_FORGOTTEN);
	assert_int_equal(n, 0);
	assert_int_equal(behind, store_jobs_finished_here());
	/* From the new seen on, the reader is served again. */
	publish_ids(6000, 1);
	assert_int_equal(store_jobs_finished_since(&behind, ids, STORE_FINISHED_RING, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], 6000);
	/* A reader one behind the overrun still gets its ids. */
	assert_int_equal(store_jobs_finished_since(&just, ids, STORE_FINISHED_RING, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], 5000);
	assert_int_equal(ids[1], 6000);
	/* A seen that no call gave (ahead of the count) is treated as forgotten. */
	uint64_t bogus = store_jobs_finished_here() + 10;
	assert_int_equal(store_jobs_finished_since(&bogus, ids, 8, &n), STORE_FINISHED_FORGOTTEN);
	assert_int_equal(bogus, store_jobs_finished_here());
}

static void ids_the_store_could_not_keep_are_reported_forgotten(void **state)
{
	(void)state;
	int64_t ids[8];
	size_t n = 0;
	uint64_t seen = store_jobs_finished_here();
	int64_t known[] = {42};
	store_jobs_finished_publish(known, 1, 3); /* three finished, one id kept */
	assert_int_equal(store_jobs_finished_here(), seen + 3);
	assert_int_equal(store_jobs_finished_since(&seen, ids, 8, &n), STORE_FINISHED_FORGOTTEN);
	assert_int_equal(seen, store_jobs_finished_here());
	publish_ids(43, 1);
	assert_int_equal(store_jobs_finished_since(&seen, ids, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], 43);
}

/* ---- wake-ups from a real store ---- */

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
	int efd;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct acmera_errmsg e = {{0}};
	assert_non_null(f);
	db_dir_make(f->dir, f->path, "jobev");
	if (store_open(f->path, &f->s, &e) != 0)
		fail_msg("store_open: %s", e.text);
	f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(f->efd >= 0);
	assert_int_equal(store_jobs_finished_watch(f->efd, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_jobs_finished_unwatch(f->efd);
	close(f->efd);
	store_close(f->s);
	assert_int_equal(db_dir_remove(f->dir, f->path), 0);
	free(f);
	return 0;
}

/* A claimed job of a fake CSR. */
static int64_t claimed_job(struct store *s, int i)
{
	return db_claimed_job(s, i, OWNER, T0, NULL);
}

static void complete(struct store *s, int64_t id)
{
	assert_int_equal(store_job_complete(s, id, OWNER,
	                                    "-----BEGIN CERTIFICATE-----\nAA==\n"
	                                    "-----END CERTIFICATE-----\n",
	                                    T0 + 86400, "CN=test", NULL),
	                 0);
}

/* How many wake-ups efd holds (0 when none), emptying it. */
static uint64_t wakeups(int efd)
{
	uint64_t v = 0;
	if (read(efd, &v, sizeof(v)) < 0) {
		assert_int_equal(errno, EAGAIN);
		return 0;
	}
	return v;
}

static void finishing_a_job_wakes_the_watcher_with_its_id(void **state)
{
	struct fx *f = *state;
	int64_t a = claimed_job(f->s, 1), b = claimed_job(f->s, 2);
	uint64_t seen = store_jobs_finished_here();
	assert_int_equal(wakeups(f->efd), 0);
	complete(f->s, a);
	assert_int_equal(wakeups(f->efd), 1);
	assert_int_equal(store_job_fail(f->s, b, OWNER, "refused", NULL), 0);
	assert_int_equal(wakeups(f->efd), 1);
	int64_t ids[8];
	size_t n = 0;
	assert_int_equal(store_jobs_finished_since(&seen, ids, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], a);
	assert_int_equal(ids[1], b);
	/* A change that finishes nothing wakes nothing. */
	int64_t c = claimed_job(f->s, 3);
	assert_int_equal(store_job_defer(f->s, c, OWNER, T0 + 10, "later", NULL), 0);
	assert_int_equal(wakeups(f->efd), 0);
}

static void a_batch_wakes_once_at_its_commit_with_all_its_ids(void **state)
{
	struct fx *f = *state;
	enum { N = 40 }; /* past the batch's first allocation */
	int64_t job[N];
	for (int i = 0; i < N; i++)
		job[i] = claimed_job(f->s, 100 + i);
	uint64_t seen = store_jobs_finished_here();
	assert_int_equal(store_batch_begin(f->s, NULL), 0);
	for (int i = 0; i < N; i++) {
		if (i % 3 == 2)
			assert_int_equal(store_job_fail(f->s, job[i], OWNER, "refused", NULL), 0);
		else
			complete(f->s, job[i]);
	}
	/* Not committed yet: nothing told, nothing counted. */
	assert_int_equal(wakeups(f->efd), 0);
	assert_int_equal(store_jobs_finished_here(), seen);
	assert_int_equal(store_batch_end(f->s, NULL), 0);
	assert_int_equal(wakeups(f->efd), 1);
	assert_int_equal(store_jobs_finished_here(), seen + N);
	int64_t ids[2 * N];
	size_t n = 0;
	assert_int_equal(store_jobs_finished_since(&seen, ids, 2 * N, &n), 0);
	assert_int_equal(n, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(ids[i], job[i]);

	/* The next batch starts its ids afresh; one that finishes nothing tells nothing. */
	int64_t x = claimed_job(f->s, 500);
	assert_int_equal(store_batch_begin(f->s, NULL), 0);
	complete(f->s, x);
	assert_int_equal(store_batch_end(f->s, NULL), 0);
	assert_int_equal(wakeups(f->efd), 1);
	assert_int_equal(store_batch_begin(f->s, NULL), 0);
	assert_int_equal(store_job_defer(f->s, claimed_job(f->s, 501), OWNER, T0, "later", NULL),
	                 0);
	assert_int_equal(store_batch_end(f->s, NULL), 0);
	assert_int_equal(wakeups(f->efd), 0);
	assert_int_equal(store_jobs_finished_since(&seen, ids, 2 * N, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], x);
}

/* Turns the connection's next COMMIT into a rollback. */
static int refuse_commit(void *arg)
{
	(void)arg;
	return 1;
}

static void a_batch_that_fails_to_commit_tells_nothing(void **state)
{
	struct fx *f = *state;
	int64_t a = claimed_job(f->s, 1), b = claimed_job(f->s, 2);
	uint64_t seen = store_jobs_finished_here();
	assert_int_equal(store_batch_begin(f->s, NULL), 0);
	complete(f->s, a);
	assert_int_equal(store_job_fail(f->s, b, OWNER, "refused", NULL), 0);
	sqlite3_commit_hook(store_sqlite_db(f->s), refuse_commit, NULL);
	assert_true(store_batch_end(f->s, NULL) < 0);
	sqlite3_commit_hook(store_sqlite_db(f->s), NULL, NULL);
	assert_int_equal(wakeups(f->efd), 0);
	assert_int_equal(store_jobs_finished_here(), seen);
	struct store_job j;
	assert_int_equal(store_job_get(f->s, a, &j, NULL), 0);
	assert_int_equal(j.state, JOB_ACTIVE); /* the batch was undone */
	store_job_free(&j);
	/* Finished again, the ids are those of the new commit only. */
	complete(f->s, a);
	assert_int_equal(wakeups(f->efd), 1);
	int64_t ids[8];
	size_t n = 0;
	assert_int_equal(store_jobs_finished_since(&seen, ids, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], a);
}

static void an_unwatched_eventfd_is_not_written(void **state)
{
	struct fx *f = *state;
	int other = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(other >= 0);
	assert_int_equal(store_jobs_finished_watch(other, NULL), 0);
	complete(f->s, claimed_job(f->s, 1));
	assert_int_equal(wakeups(f->efd), 1);
	assert_int_equal(wakeups(other), 1);
	store_jobs_finished_unwatch(other);
	complete(f->s, claimed_job(f->s, 2));
	assert_int_equal(wakeups(f->efd), 1); /* the other watcher still is */
	assert_int_equal(wakeups(other), 0);
	close(other);
	/* Unwatching one never watched changes nothing. */
	store_jobs_finished_unwatch(-1);
	complete(f->s, claimed_job(f->s, 3));
	assert_int_equal(wakeups(f->efd), 1);
}

/* Submissions wake the submitted-job watchers only, and finished jobs the others. */
static void submissions_wake_their_own_watchers(void **state)
{
	struct fx *f = *state;
	int sub = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), sub2 = eventfd(0, EFD_NONBLOCK);
	assert_true(sub >= 0 && sub2 >= 0);
	assert_int_equal(store_jobs_submitted_watch(sub, NULL), 0);
	assert_int_equal(store_jobs_submitted_watch(sub2, NULL), 0);
	store_jobs_submitted_publish();
	store_jobs_submitted_publish();
	assert_int_equal(wakeups(sub), 2);
	assert_int_equal(wakeups(sub2), 2);
	assert_int_equal(wakeups(f->efd), 0);
	complete(f->s, claimed_job(f->s, 1));
	assert_int_equal(wakeups(sub), 0);
	assert_int_equal(wakeups(f->efd), 1);
	store_jobs_submitted_unwatch(sub2);
	store_jobs_submitted_publish();
	assert_int_equal(wakeups(sub), 1);
	assert_int_equal(wakeups(sub2), 0);
	store_jobs_submitted_unwatch(sub);
	store_jobs_submitted_publish(); /* no watcher left: nothing to write */
	assert_int_equal(wakeups(sub), 0);
	close(sub);
	close(sub2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ids_come_in_order_and_advance_seen),
	    cmocka_unit_test(readers_each_get_what_finished_after_their_seen),
	    cmocka_unit_test(an_overrun_ring_reports_forgotten_ids),
	    cmocka_unit_test(ids_the_store_could_not_keep_are_reported_forgotten),
	    T(finishing_a_job_wakes_the_watcher_with_its_id),
	    T(a_batch_wakes_once_at_its_commit_with_all_its_ids),
	    T(a_batch_that_fails_to_commit_tells_nothing),
	    T(an_unwatched_eventfd_is_not_written),
	    T(submissions_wake_their_own_watchers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
