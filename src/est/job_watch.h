/* Held EST requests woken when their job finishes in this process, instead of
 * each polling the store.
 *
 * Per worker thread: the entries of the requests it holds, and one eventfd on the
 * worker's event loop that the store writes when jobs finish
 * (store_jobs_finished_watch). On a wake-up, the entries whose job is among the
 * finished ones are run, or all of them when the store forgot which finished.
 * The eventfd and its event exist while the thread has entries: made with the
 * first, freed with the last. Entries are removed before the loop is freed (a
 * held request's on_gone runs first), so the event never outlives its loop.
 *
 * Jobs finished by another process sharing the store wake nothing here: a
 * holder looks now and then as well. */
#ifndef ACMERA_EST_JOB_WATCH_H
#define ACMERA_EST_JOB_WATCH_H

#include "base/err.h"

#include <stdint.h>

struct event_base;
struct job_watch;

/* Kept by the holder (e.g. in its own struct), zeroed before job_watch_add. */
struct job_watch_entry {
	int64_t job;
	/* Run from the loop after the job finished (or may have). It may remove this
	 * entry or any other, free them, and add new ones. */
	void (*on_finished)(void *arg);
	void *arg;
	/* The watch's own. */
	struct job_watch *w; /* NULL while not watched */
	struct job_watch_entry *prev, *next;
	int due;
};

/* Watches en->job from this thread's loop, base (the same one for every entry of
 * a thread). since is a value of store_jobs_finished_here read before the holder
 * looked for the job in the store. Returns 1 when the job finished since then
 * (or may have): look again at once, as no wake-up will tell of it (en is watched
 * all the same); 0; or an error (e set, en not added: the holder can only poll). */
int job_watch_add(struct event_base *base, struct job_watch_entry *en, uint64_t since,
                  struct acmera_errmsg *e);
/* Stops watching en: an entry never added or already removed is fine, and so is
 * a call from any on_finished. */
void job_watch_remove(struct job_watch_entry *en);

#endif
