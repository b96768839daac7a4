/* `acmera issue`'s certificate files, written while the issuer still works on the
 * other jobs. Creating a file costs the kernel from tens to hundreds of
 * microseconds (more on a file system with many recent deletions); left until
 * after the last certificate, 500 of them added up to a third of a run. A thread
 * of its own, woken by the store when jobs finish (store/job_events.h), looks up
 * each finished job's certificate on its own store handle and hands it to a
 * function that queues the file (cli_files_add): the files still get their names
 * only at cli_files_commit, after one disk sync, as before.
 *
 * Best effort by design: a job it missed (finished by another process, or a look
 * up that failed) is left unwritten, and the caller writes it after
 * issue_writer_stop as it would have without the writer. */
#ifndef ACMERA_CLI_ISSUE_WRITER_H
#define ACMERA_CLI_ISSUE_WRITER_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

struct issue_writer_job {
	int64_t id;         /* the store's job */
	const char *digest; /* its CSR's SHA-256, hex */
	char *path;         /* where its certificate goes (the caller frees it) */
	int written;        /* set by the writer; read it after issue_writer_stop */
};

/* Queues chain_pem's file at path; 0 or -1. Runs on the writer's thread, and
 * never at the same time as the caller uses what it writes into. */
typedef int (*issue_writer_fn)(void *arg, const char *path, const char *chain_pem);

struct issue_writer;

/* Starts watching jobs[0..n): call before the issuer runs, so that no finish is
 * missed. jobs and arg stay the caller's and must outlive the writer. 0, or an
 * error (no thread, no store handle) with nothing started. */
int issue_writer_start(const char *store_path, struct issue_writer_job *jobs, size_t n,
                       issue_writer_fn fn, void *arg, struct issue_writer **out,
                       struct acmera_errmsg *e);

/* Stops and frees the writer; afterwards each job's written flag is final. NULL
 * does nothing. */
void issue_writer_stop(struct issue_writer *w);

#endif
