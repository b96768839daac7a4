/* Disk syncs of the CA store's write-ahead log on a thread of their own.
 *
 * A worker commits a pass without a sync (a batch begun with
 * ca_store_batch_begin_nosync) and counts it with wal_syncer_commit; this thread
 * fdatasyncs the log and tells every watching worker through its eventfd.
 * Commits made while a sync runs share the next one, and the workers go on
 * handling requests meanwhile. The log is written in order, so a sync covers
 * every commit made before it began. */
#ifndef ACMERA_CA_WAL_SYNCER_H
#define ACMERA_CA_WAL_SYNCER_H

#include "base/err.h"

#include <stdint.h>

struct wal_syncer;

/* Takes wal_fd (a descriptor of the log, closed by wal_syncer_stop). */
int wal_syncer_start(int wal_fd, struct wal_syncer **out, struct acmera_errmsg *e);
/* Joins the thread, which syncs what was committed before it ends; no worker may
 * watch any more. Returns the last commit then synced (0 for NULL). */
uint64_t wal_syncer_stop(struct wal_syncer *w);

/* Counts one more commit, asks for its sync and returns its number (from 1). */
uint64_t wal_syncer_commit(struct wal_syncer *w);
/* The last commit counted if its sync has yet to return, else 0: what a request
 * that read the store now must wait for before it answers. */
uint64_t wal_syncer_unsynced(struct wal_syncer *w);
/* The last commit known on disk, and the last one whose sync failed (0: none):
 * answers up to *failed_upto must not claim their change is durable. */
uint64_t wal_syncer_synced(struct wal_syncer *w, uint64_t *failed_upto);

/* Blocks until commit n is synced (or its sync failed): for a worker that cannot
 * wait on its loop. */
void wal_syncer_wait(struct wal_syncer *w, uint64_t n);

/* An eventfd that becomes readable after each sync; 0 or -1 when no room. */
int wal_syncer_watch(struct wal_syncer *w, int efd);
void wal_syncer_unwatch(struct wal_syncer *w, int efd);

#endif
