/* Held EST requests woken when their job finishes (see job_watch.h). */
#include "est/job_watch.h"

#include "base/log.h"
#include "store/job_events.h"
#include "store/store.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct job_watch {
	struct event_base *base;
	struct event *ev;
	int efd;
	int watched;   /* efd is known to the store */
	uint64_t seen; /* finished jobs up to here were handled */
	struct job_watch_entry *head;
	/* What a wake-up runs next, moved on when that entry is removed; set while
	 * running, when the watch outlives its last entry until the run ends. */
	struct job_watch_entry *cursor;
	int running;
};

/* This thread's watch while it has entries. */
static _Thread_local struct job_watch *here;

static void watch_free(struct job_watch *w)
{
	if (here == w)
		here = NULL;
	/* The event before the descriptor (its loop must unregister an open one),
	 * the store's watch before the close (it must never write to a reused one). */
	if (w->ev)
		event_free(w->ev);
	if (w->watched)
		store_jobs_finished_unwatch(w->efd);
	if (w->efd >= 0)
		close(w->efd);
	free(w);
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Marks the entries whose job finished since the last wake-up: all of them when
 * the store forgot some of those jobs. */
static void mark_due(struct job_watch *w)
{
	int64_t ids[STORE_FINISHED_RING];
	size_t n = 0;
	do {
		if (store_jobs_finished_since(&w->seen, ids, STORE_FINISHED_RING, &n)) {
			for (struct job_watch_entry *en = w->head; en; en = en->next)
				en->due = 1;
			return;
		}
		qsort(ids, n, sizeof(ids[0]), cmp_id);
		for (struct job_watch_entry *en = w->head; en; en = en->next)
			if (!en->due && bsearch(&en->job, ids, n, sizeof(ids[0]), cmp_id))
				en->due = 1;
	} while (n == STORE_FINISHED_RING);
}

/* Runs the marked entries. Each run may remove any entry (the cursor steps over
 * it) or add one (at the head, unmarked: not run now). */
static void run_due(struct job_watch *w)
{
	w->running = 1;
	w->cursor = w->head;
	while (w->cursor) {
		struct job_watch_entry *en = w->cursor;
		w->cursor = en->next;
		if (!en->due)
			continue;
		en->due = 0;
		en->on_finished(en->arg);
	}
	w->running = 0;
	if (!w->head)
		watch_free(w); /* its event's callback may free it (libevent allows it) */
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct job_watch *w = arg;
	uint64_t count;
	(void)what;
	/* Drained before the store is read: jobs finished from now on wake it again. */
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_event(LOG_LVL_ERROR, "est.job_watch", "error=%s", log_qv(strerror(errno)));
	mark_due(w);
	run_due(w);
}

static int watch_new(struct event_base *base, struct job_watch **out, struct acmera_errmsg *e)
{
	struct job_watch *w = calloc(1, sizeof(*w));
	int rc = 0;
	if (!w)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	w->base = base;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "eventfd: %s", strerror(errno));
		goto out;
	}
	w->ev = event_new(base, w->efd, EV_READ | EV_PERSIST, on_wake, w);
	if (!w->ev || event_add(w->ev, NULL) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "cannot watch an eventfd on the loop");
		goto out;
	}
	rc = store_jobs_finished_watch(w->efd, e);
	if (rc)
		goto out;
	w->watched = 1;
	/* Read once watched: a job finished later is past seen and wakes the loop. */
	w->seen = store_jobs_finished_here();
out:
	if (rc) {
		watch_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* 1 when job is among the jobs finished after since, or may be. */
static int finished_since(int64_t job, uint64_t since)
{
	int64_t ids[64];
	size_t n = 0;
	do {
		if (store_jobs_finished_since(&since, ids, 64, &n))
			return 1;
		for (size_t i = 0; i < n; i++)
			if (ids[i] == job)
				return 1;
	} while (n == 64);
	return 0;
}

int job_watch_add(struct event_base *base, struct job_watch_entry *en, uint64_t since,
                  struct acmera_errmsg *e)
{
	if (here && here->base != base)
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "job watch: a second event loop on a thread");
	if (!here) {
		int rc = watch_new(base, &here, e);
		if (rc)
			return rc;
	}
	struct job_watch *w = here;
	en->w = w;
	en->due = 0;
	en->prev = NULL;
	en->next = w->head;
	if (w->head)
		w->head->prev = en;
	w->head = en;
	/* Since the watch's seen, a wake-up tells; before it, only the store can. */
	return finished_since(en->job, since);
}

void job_watch_remove(struct job_watch_entry *en)
{
	struct job_watch *w = en->w;
	if (!w)
		return;
	if (w->cursor == en)
		w->cursor = en->next;
	if (en->prev)
		en->prev->next = en->next;
	else
		w->head = en->next;
	if (en->next)
		en->next->prev = en->prev;
	en->w = NULL;
	en->prev = en->next = NULL;
	en->due = 0;
	if (!w->head && !w->running)
		watch_free(w);
}
