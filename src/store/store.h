/* The store: every durable fact of acmera, behind one interface so that a
 * PostgreSQL back-end can sit beside the SQLite one (sqlite.c). All calls are
 * synchronous and each state change is committed before the call returns.
 *
 * Times are Unix seconds (int64_t). Strings returned through out-parameters are
 * heap copies owned by the caller (free() them); structs with a _free function
 * are released with it. A store handle is used by one thread at a time; open one
 * handle per thread. */
#ifndef ACMERA_STORE_STORE_H
#define ACMERA_STORE_STORE_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

struct store;

/* Opens (creating if needed, mode 0600) and migrates the schema to the newest
 * version. path is a file name for SQLite. */
int store_open(const char *path, struct store **out, struct acmera_errmsg *e);
void store_close(struct store *s);
/* Schema version after migration (for tests and `acmera` diagnostics). */
int store_schema_version(struct store *s);

/* ---- ACME accounts, one per (directory URL) ---- */
struct store_account {
	char *directory; /* directory URL */
	char *key_pem;   /* PKCS#8 PEM private key: a secret, never log it */
	char *kid;       /* account URL, NULL until registered */
	char *status;    /* "valid", "deactivated", ... */
	/* The new key of a key rollover that may not have reached the CA (PKCS#8 PEM,
	 * a secret as key_pem is); NULL when none is pending. */
	char *next_key_pem;
};
int store_account_get(struct store *s, const char *directory, struct store_account *out,
                      struct acmera_errmsg *e); /* ACMERA_ERR_NOTFOUND when none */
/* Inserts or replaces the account of out->directory. */
int store_account_put(struct store *s, const struct store_account *a, struct acmera_errmsg *e);
/* Wipes key_pem and next_key_pem (secret_free) before freeing them. */
void store_account_free(struct store_account *a);

/* ---- Authorizations (pre-authorized parent domains, and per-name ones) ---- */
struct store_authz {
	char *directory;
	char *domain;    /* identifier value, lower case */
	char *url;       /* authorization URL */
	char *status;    /* "pending", "valid", ... */
	int subdomains;  /* 1 when RFC 9444 subdomainAuthAllowed was granted */
	int64_t expires; /* 0 when unknown */
};
int store_authz_put(struct store *s, const struct store_authz *a, struct acmera_errmsg *e);
/* The authorization of exactly this domain, whatever its status. */
int store_authz_get(struct store *s, const char *directory, const char *domain,
                    struct store_authz *out, struct acmera_errmsg *e);
/* A valid authorization, unexpired at `now` + margin, that covers name: the name
 * itself, or an ancestor with subdomains=1. ACMERA_ERR_NOTFOUND when none. */
int store_authz_find_covering(struct store *s, const char *directory, const char *name, int64_t now,
                              int64_t margin, struct store_authz *out, struct acmera_errmsg *e);
void store_authz_free(struct store_authz *a);

/* ---- Enrollment jobs, keyed by SHA-256 of the CSR DER ---- */
enum store_job_state {
	JOB_PENDING = 0, /* waiting for an issuer */
	JOB_ACTIVE,      /* claimed by an issuer (lease until lease_until) */
	JOB_DONE,        /* certificate stored */
	JOB_FAILED       /* failed for good (policy or CA refused); reason set */
};
struct store_job {
	int64_t id;
	char csr_sha256[65]; /* lower-case hex */
	uint8_t *csr_der;
	size_t csr_der_len;
	char *names; /* the CSR's DNS names, comma-separated, lower case */
	enum store_job_state state;
	char *order_url; /* ACME order, NULL until placed: resumes after a crash */
	int attempts;
	int64_t not_before; /* do not work on it before this time (Retry-After) */
	int64_t lease_until;
	char *reason; /* last error, NULL if none */
	int64_t created;
	char *owner; /* the claiming issuer's token while ACTIVE, else NULL */
};
/* Group commit: between store_batch_begin and store_batch_end, the job changes of
 * this handle (submit, set order, defer, fail, complete, lease) still succeed or
 * fail whole, but none is durable, nor seen by other handles or counted by
 * store_jobs_finished_here, before store_batch_end commits them all with one disk
 * sync. The batch's transaction, and the store's write lock, begin with its first
 * change: end the batch before waiting for anything, and act on nothing outside
 * the store that needs a change durable before store_batch_end succeeded. When it
 * fails, every change of the batch is undone. Other single writes (accounts,
 * authorizations, revocations) made before the batch's first job change commit at
 * once, as outside a batch; made after it, they join it. DNS record notes join an
 * open batch as job changes do. */
int store_batch_begin(struct store *s, struct acmera_errmsg *e);
int store_batch_end(struct store *s, struct acmera_errmsg *e);
/* 1 when the open batch holds changes that store_batch_end has yet to commit. */
int store_batch_pending(const struct store *s);
/* A batch whose store_batch_end commits without the disk sync: its changes are
 * committed (seen by every handle, kept if this process dies) but may not survive
 * a power loss until an fdatasync of a descriptor from store_wal_open returns.
 * Acknowledge nothing before that. */
int store_batch_begin_nosync(struct store *s, struct acmera_errmsg *e);
/* A batch that commits without the disk sync, like store_batch_begin_nosync,
 * until it stores a certificate (store_job_complete): what it holds by then
 * commits at once without the sync, and the rest of the batch, the certificate
 * included, with it, which makes both parts durable. For changes that a restart
 * may lose to a power loss and simply redo (claims, order URLs, deferrals,
 * failures), while no certificate is seen before it would survive one. */
int store_batch_begin_lazy(struct store *s, struct acmera_errmsg *e);
/* A read-only descriptor of the store's write-ahead log, to sync it from another
 * thread; -1 with e set on error. Keep it open while the store is: closing a
 * descriptor of a file drops this process's locks on it. */
int store_wal_open(struct store *s, struct acmera_errmsg *e);

/* Records a job for this CSR once. When one exists for the same digest (pending,
 * active, or done) its id is returned and *created is 0: repeats join it. A
 * FAILED job is reset to PENDING (a device trying again after a refusal), and so
 * is a DONE one with no certificate left that is unexpired and not revoked. */
int store_job_submit(struct store *s, const uint8_t *csr_der, size_t len, const char *names,
                     int64_t now, int64_t *id, int *created, struct acmera_errmsg *e);
/* Longest claim owner token, e.g. "host:pid:random" (bytes, without the NUL). */
#define STORE_OWNER_MAX 128

/* Atomically claims up to max jobs that are PENDING with not_before <= now, or
 * ACTIVE with an expired lease (an issuer that died or stalled), marking them
 * ACTIVE until now + lease and held by owner (1..STORE_OWNER_MAX bytes, unique
 * per issuer run). Oldest first. *jobs is an array of *n jobs: free with
 * store_jobs_free.
 *
 * The calls below that take an owner change the job only while it is ACTIVE and
 * held by that owner (a lapsed lease that nobody took over is still held);
 * otherwise (another issuer claimed it, it is finished, there is no such job)
 * they change nothing and return ACMERA_ERR_NOTFOUND, "job N is no longer held
 * by this issuer". An empty or over-long owner, or a NULL one except where
 * stated, is ACMERA_ERR_INVAL. */
int store_job_claim(struct store *s, const char *owner, int64_t now, int64_t lease, size_t max,
                    struct store_job **jobs, size_t *n, struct acmera_errmsg *e);
/* Most ids store_job_claim_ids takes at once. */
#define STORE_CLAIM_IDS_MAX 1000000
/* The same as store_job_claim, among the jobs whose id is one of ids (n_ids up to
 * STORE_CLAIM_IDS_MAX; ids that name no job, or a job not due, are passed over):
 * an issuer that works for given jobs only (`acmera issue`) leaves the others of a
 * shared store alone. n_ids == 0 claims nothing. */
int store_job_claim_ids(struct store *s, const char *owner, const int64_t *ids, size_t n_ids,
                        int64_t now, int64_t lease, size_t max, struct store_job **jobs, size_t *n,
                        struct acmera_errmsg *e);
int store_job_get(struct store *s, int64_t id, struct store_job *out, struct acmera_errmsg *e);
int store_job_get_by_digest(struct store *s, const char *csr_sha256, struct store_job *out,
                            struct acmera_errmsg *e);
/* order_url may be NULL (forget the order). */
int store_job_set_order(struct store *s, int64_t id, const char *owner, const char *order_url,
                        struct acmera_errmsg *e);
/* Extends the lease of an active job. */
int store_job_renew_lease(struct store *s, int64_t id, const char *owner, int64_t lease_until,
                          struct acmera_errmsg *e);
/* Back to PENDING, to be retried at not_before; attempts++, reason kept, owner
 * cleared. owner NULL (for callers that are not the issuer holding the job, e.g.
 * putting a job back by hand) skips the owner check: any PENDING or ACTIVE job is
 * deferred, never a DONE or FAILED one. Only this call accepts a NULL owner. */
int store_job_defer(struct store *s, int64_t id, const char *owner, int64_t not_before,
                    const char *reason, struct acmera_errmsg *e);
/* FAILED for good with reason; owner cleared. */
int store_job_fail(struct store *s, int64_t id, const char *owner, const char *reason,
                   struct acmera_errmsg *e);
/* Stores the certificate and marks the job DONE (owner cleared) in one
 * transaction; when the owner no longer holds the job nothing is stored. */
int store_job_complete(struct store *s, int64_t id, const char *owner, const char *chain_pem,
                       int64_t not_after, const char *issuer, struct acmera_errmsg *e);
/* How many jobs this process has completed or failed, through any handle. Someone
 * waiting for a job in this process who saw the same count before has nothing new
 * to look up (jobs finished by other processes are not counted: look now and then
 * anyway). Which jobs they were, and a wake-up when more finish: job_events.h. */
uint64_t store_jobs_finished_here(void);
/* Counts of jobs per state (array indexed by enum store_job_state). */
int store_job_counts(struct store *s, int64_t counts[4], struct acmera_errmsg *e);
void store_job_free(struct store_job *j);
void store_jobs_free(struct store_job *jobs, size_t n);

/* ---- Certificates, keyed by SHA-256 of the CSR DER ---- */
struct store_cert {
	char csr_sha256[65];
	char *chain_pem; /* leaf first, then the chain */
	int64_t not_after;
	char *issuer; /* issuer DN of the leaf, one line */
	int64_t issued;
};
/* The newest certificate for this CSR whose notAfter is after now and that is
 * not marked revoked; ACMERA_ERR_NOTFOUND otherwise (an expired or revoked one is
 * never returned). */
int store_cert_lookup(struct store *s, const char *csr_sha256, int64_t now, struct store_cert *out,
                      struct acmera_errmsg *e);
/* The valid, unrevoked certificate whose chain starts with leaf_pem (one PEM
 * block as PEM_write_bio_X509 writes it): how the EST server recognises a
 * certificate acmera issued when a device re-enrolls with it. */
int store_cert_find_leaf(struct store *s, const char *leaf_pem, int64_t now, struct store_cert *out,
                         struct acmera_errmsg *e);
/* The newest valid, unrevoked certificate of any CSR: its chain tells the CA
 * certificates for /cacerts. ACMERA_ERR_NOTFOUND before the first. */
int store_cert_newest(struct store *s, int64_t now, struct store_cert *out,
                      struct acmera_errmsg *e);
/* A number that changes when another handle (thread or process) has committed a
 * change since this handle last asked (SQLite's data_version): a cache of this
 * handle's reads stays good while it does not change. */
int store_data_version(struct store *s, int64_t *out, struct acmera_errmsg *e);
/* How many certificates were ever stored for this CSR, revoked ones included
 * (tests: no CSR twice). */
int store_cert_count(struct store *s, const char *csr_sha256, int64_t *count,
                     struct acmera_errmsg *e);
/* Marks revoked every stored certificate whose chain_pem starts with exactly
 * leaf_pem: one PEM block as PEM_write_bio_X509 writes it,
 * "-----BEGIN CERTIFICATE-----\n...-----END CERTIFICATE-----\n" (anything else is
 * ACMERA_ERR_INVAL). *marked gets how many stored certificates carry that leaf,
 * all now revoked (ones marked before included); 0 is no error. A job whose
 * certificates are all revoked is issued anew on its next store_job_submit. */
int store_cert_mark_revoked(struct store *s, const char *leaf_pem, int64_t *marked,
                            struct acmera_errmsg *e);
void store_cert_free(struct store_cert *c);

/* ---- DNS records published, so that a crash never leaves one behind ---- */
struct store_dns_record {
	int64_t id;
	char *zone;
	char *name;  /* owner name, e.g. _acme-challenge.host.example.com */
	char *value; /* TXT value */
	int64_t created;
};
/* Recorded BEFORE the UPDATE that adds it is sent. */
int store_dns_record_add(struct store *s, const char *zone, const char *name, const char *value,
                         int64_t now, int64_t *id, struct acmera_errmsg *e);
/* Forgotten AFTER the UPDATE that deletes it succeeded. */
int store_dns_record_remove(struct store *s, int64_t id, struct acmera_errmsg *e);
/* All records still recorded (to delete at start-up). */
int store_dns_record_list(struct store *s, struct store_dns_record **out, size_t *n,
                          struct acmera_errmsg *e);
void store_dns_records_free(struct store_dns_record *r, size_t n);

#endif
