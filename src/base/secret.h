/* Secrets kept in files: readable by their owner only (0600 or stricter). */
#ifndef ACMERA_BASE_SECRET_H
#define ACMERA_BASE_SECRET_H

#include "base/err.h"

/* Reads a small secret file (at most 4 KiB), refusing one that group or others
 * may read, and strips surrounding whitespace. *out is a heap string the caller
 * wipes and frees. */
int read_secret_file(const char *path, char **out, struct acmera_errmsg *e);

#endif
