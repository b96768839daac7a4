/* wal_syncer: commits are numbered, synced on the thread in order, watchers woken;
 * a failed sync marks what it covered. */
#include "ca/wal_syncer.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A syncer on a file removed at once (the descriptor keeps it). */
static struct wal_syncer *start_on_temp_file(void)
{
	char path[] = "/tmp/acmera-wal-syncer-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	struct wal_syncer *w = NULL;
	assert_int_equal(wal_syncer_start(fd, &w, NULL), 0);
	return w;
}

/* An eventfd that w writes after each sync (the caller closes it). */
static int watched_eventfd(struct wal_syncer *w)
{
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(efd >= 0);
	assert_int_equal(wal_syncer_watch(w, efd), 0);
	return efd;
}

static void commits_are_synced_in_order_and_watchers_woken(void **state)
{
	(void)state;
	struct wal_syncer *w = start_on_temp_file();
	int efd = watched_eventfd(w);

	uint64_t failed = 99;
	assert_int_equal(wal_syncer_unsynced(w), 0);
	assert_int_equal(wal_syncer_synced(w, &failed), 0);
	assert_int_equal(failed, 0);
	assert_int_equal(wal_syncer_commit(w), 1);
	assert_int_equal(wal_syncer_commit(w), 2);
	wal_syncer_wait(w, 2);
	assert_int_equal(wal_syncer_unsynced(w), 0);
	assert_true(wal_syncer_synced(w, &failed) >= 2);
	assert_int_equal(failed, 0);
	/* The watcher's eventfd was written. */
	struct pollfd p = {.fd = efd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	uint64_t n = 0;
	assert_int_equal(read(efd, &n, sizeof(n)), (ssize_t)sizeof(n));
	assert_true(n >= 1);

	/* Unwatched: the next sync leaves the eventfd alone. */
	wal_syncer_unwatch(w, efd);
	wal_syncer_wait(w, wal_syncer_commit(w));
	assert_int_equal(read(efd, &n, sizeof(n)), -1);
	close(efd);
	wal_syncer_stop(w);
}

static void a_failed_sync_marks_the_commits_it_covered(void **state)
{
	(void)state;
	/* fdatasync on a pipe fails (EINVAL). */
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	close(pfd[1]);
	struct wal_syncer *w = NULL;
	assert_int_equal(wal_syncer_start(pfd[0], &w, NULL), 0);
	uint64_t n = wal_syncer_commit(w), failed = 0;
	wal_syncer_wait(w, n);
	assert_true(wal_syncer_synced(w, &failed) >= n);
	assert_true(failed >= n);
	wal_syncer_stop(w);
}

/* Stopping with commits outstanding returns (the thread syncs them before it ends,
 * which the watcher sees) and frees everything (the ASan run checks leaks). */
static void stop_with_commits_outstanding_syncs_them(void **state)
{
	(void)state;
	struct wal_syncer *w = start_on_temp_file();
	int efd = watched_eventfd(w);
	for (int i = 0; i < 10; i++)
		wal_syncer_commit(w);
	assert_int_equal(wal_syncer_stop(w), 10);
	uint64_t n = 0;
	assert_int_equal(read(efd, &n, sizeof(n)), (ssize_t)sizeof(n));
	assert_true(n >= 1);
	close(efd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(commits_are_synced_in_order_and_watchers_woken),
	    cmocka_unit_test(a_failed_sync_marks_the_commits_it_covered),
	    cmocka_unit_test(stop_with_commits_outstanding_syncs_them),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
