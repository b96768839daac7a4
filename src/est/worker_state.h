/* What an EST worker thread keeps between requests: its store handle (SQLite
 * handles belong to one thread), the CSRs it has parsed and verified, and the
 * PKCS#7 answers it has encoded. A device that retries or polls sends the same
 * bytes again and again; each is parsed, signature-checked and encoded once per
 * worker while it stays in these bounded caches. Everything is freed when the
 * worker thread ends. */
#ifndef ACMERA_EST_WORKER_STATE_H
#define ACMERA_EST_WORKER_STATE_H

#include "base/err.h"
#include "pki/csr.h"

#include <stddef.h>
#include <stdint.h>

struct store;

/* This thread's handle on the store at path, opened on first use. */
struct store *est_worker_store(const char *path, struct acmera_errmsg *e);

/* The chain of the certificate stored for a CSR (store_cert_lookup on st, this
 * worker's handle): remembered while the store has not changed under the handle
 * (store_data_version, asked at most every 100 ms: a revocation by another
 * process is seen within that time) and the certificate is valid at now. *chain_pem is borrowed:
 * valid until the next call of est_worker_cert on this thread. ACMERA_ERR_NOTFOUND when there is
 * none. */
int est_worker_cert(struct store *st, const char *csr_sha256, int64_t now, const char **chain_pem,
                    struct acmera_errmsg *e);

/* The /cacerts answer learnt from the newest certificate issued (its chain without
 * the leaf), looked up again only when the store changed (as est_worker_cert).
 * *body is borrowed like est_worker_pkcs7's. ACMERA_ERR_NOTFOUND before the first. */
int est_worker_cacerts(struct store *st, int64_t now, const char **body, size_t *len,
                       struct acmera_errmsg *e);

/* The CSR of der, parsed and its signature verified (csr_parse_der), from the
 * cache when these exact bytes were seen before. *out is borrowed: valid until
 * the next call of est_worker_csr on this thread. Failures are never cached. */
int est_worker_csr(const uint8_t *der, size_t len, const struct csr_info **out,
                   struct acmera_errmsg *e);

/* Remembers, with a CSR from est_worker_csr, that it passed the checks of policy
 * (an address the caller owns, e.g. a profile, for its whole life) for name,
 * which depend on nothing but these: a retry of the same CSR skips them. */
void est_worker_csr_pass(const struct csr_info *csr, const void *policy, const char *name);
int est_worker_csr_passed(const struct csr_info *csr, const void *policy, const char *name);

/* The base64 PKCS#7 certs-only body (RFC 8951) of a PEM chain, without its first
 * certificate when skip_leaf (the CA chain of an issued chain). *body is
 * borrowed: valid until the next call of est_worker_pkcs7 on this thread. */
int est_worker_pkcs7(const char *pem, int skip_leaf, const char **body, size_t *len,
                     struct acmera_errmsg *e);

#endif
