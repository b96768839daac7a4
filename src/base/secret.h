/* Secrets kept in files: readable by their owner only (0600 or stricter). */
#ifndef ACMERA_BASE_SECRET_H
#define ACMERA_BASE_SECRET_H

#include "base/err.h"

/* Reads a small secret file (at most 4 KiB), refusing one that group or others
 * may read, and strips surrounding whitespace. *out is a heap string the caller
 * frees with secret_free. */
int read_secret_file(const char *path, char **out, struct acmera_errmsg *e);

/* Wipes a heap string holding a secret (a password, a key's PEM text) and frees
 * it, so that it does not linger in freed memory. NULL is fine. */
void secret_free(char *s);

#endif
