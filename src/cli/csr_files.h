/* Reading the CSR files of `acmera issue`: each parsed and its signature checked,
 * several at a time. */
#ifndef ACMERA_CLI_CSR_FILES_H
#define ACMERA_CLI_CSR_FILES_H

#include "base/err.h"
#include "pki/csr.h"

#include <stddef.h>

/* Loads paths[0..n) into out[0..n) (zeroed by the caller) with up to `threads`
 * threads: the proof-of-possession check of each CSR is most of the time a batch
 * takes before its first request. Returns 0, or the error of the first failing
 * file in argument order with *failed set to its index; the CSRs loaded are
 * then left in out for the caller to free, as on success. */
int cli_load_csr_files(const char *const *paths, size_t n, struct csr_info *out, int threads,
                       size_t *failed, struct acmera_errmsg *e);

#endif
