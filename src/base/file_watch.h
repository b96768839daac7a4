/* Tells cheaply whether a file may have changed, so that a caller that must see
 * every change at once (a removed user of the password file is refused on the
 * next request) need not stat the file on every use.
 *
 * inotify watches the file (its bytes, mode and owner) and the entries of the
 * directory of its path and, for a symbolic link, of its target's directory (a
 * file replaced, a link swapped); any such event counts as a possible change.
 * Writes to other files of those directories do not. On file systems whose
 * changes made elsewhere inotify does not see (NFS), the answer is also "maybe"
 * once a second. */
#ifndef ACMERA_BASE_FILE_WATCH_H
#define ACMERA_BASE_FILE_WATCH_H

struct file_watch;

/* NULL when inotify is not available: the caller then checks every time. */
struct file_watch *file_watch_new(const char *path);

/* 0 when the file has certainly not changed since the previous call that
 * returned 1 (or since file_watch_new); 1 when it may have. The first call
 * returns 1. */
int file_watch_maybe_changed(struct file_watch *w);

void file_watch_free(struct file_watch *w);

#endif
