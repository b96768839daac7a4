/* The SQLite back-end of store.h: one file in WAL mode shared by the front and
 * issuer processes. Every statement is prepared once per handle and all values
 * are bound; multi-statement changes run in BEGIN IMMEDIATE transactions so that
 * they are atomic across processes. */
#include "store/store.h"
#include "base/secret.h"
#include "store/job_events.h"
#include "store/migrations.h"
#include "store/sqlite_internal.h"
#include "pki/csr.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Long enough for an issuer's commit to finish, short enough to surface a stuck
 * process as an error rather than a hang. */
#define STORE_BUSY_TIMEOUT_MS 5000
/* A DNS name (253) with an optional trailing dot. */
#define STORE_MAX_NAME 254
/* A leaf certificate's PEM; far above any real one, bounds the scan. */
#define STORE_MAX_LEAF_PEM (256 * 1024)
#define PEM_CERT_BEGIN "-----BEGIN CERTIFICATE-----\n"
#define PEM_CERT_END "-----END CERTIFICATE-----\n"

#define JOB_COLS                                                                                   \
	"id, csr_sha256, csr_der, names, state, order_url, attempts, not_before, "                 \
	"lease_until, reason, created, owner"
#define AUTHZ_COLS "directory, domain, url, status, subdomains, expires"
/* The claim owner's parameter, one index in every statement that checks it. */
#define OWNER_PARAM 9

enum q {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_SAVEPOINT,
	Q_RELEASE,
	Q_ROLLBACK_TO,
	Q_ACCOUNT_GET,
	Q_ACCOUNT_PUT,
	Q_AUTHZ_PUT,
	Q_AUTHZ_GET,
	Q_AUTHZ_VALID,
	Q_JOB_INSERT,
	Q_JOB_STATE,
	Q_JOB_RESET,
	Q_JOB_CLAIM,
	Q_JOB_CLAIM_IDS,
	Q_JOB_GET,
	Q_JOB_GET_DIGEST,
	Q_JOB_SET_ORDER,
	Q_JOB_RENEW,
	Q_JOB_DEFER,
	Q_JOB_DEFER_ANY,
	Q_JOB_FAIL,
	Q_JOB_DONE,
	Q_JOB_COUNTS,
	Q_CERT_INSERT,
	Q_CERT_VALID,
	Q_CERT_LOOKUP,
	Q_CERT_BY_LEAF,
	Q_CERT_NEWEST,
	Q_CERT_COUNT,
	Q_CERT_REVOKE,
	Q_DNS_ADD,
	Q_DNS_DEL,
	Q_DNS_LIST,
	Q_DATA_VERSION,
	Q_COUNT
};

static const char *const sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT op",
    [Q_RELEASE] = "RELEASE op",
    [Q_ROLLBACK_TO] = "ROLLBACK TO op",
    [Q_ACCOUNT_GET] = "SELECT directory, key_pem, kid, status, next_key_pem FROM accounts "
                      "WHERE directory = ?1",
    [Q_ACCOUNT_PUT] = "INSERT INTO accounts (directory, key_pem, kid, status, next_key_pem) "
                      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (directory) DO UPDATE SET "
                      "key_pem = excluded.key_pem, kid = excluded.kid, "
                      "status = excluded.status, next_key_pem = excluded.next_key_pem",
    [Q_AUTHZ_PUT] = "INSERT INTO authzs (" AUTHZ_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                    "ON CONFLICT (directory, domain) DO UPDATE SET url = excluded.url, "
                    "status = excluded.status, subdomains = excluded.subdomains, "
                    "expires = excluded.expires",
    [Q_AUTHZ_GET] = "SELECT " AUTHZ_COLS " FROM authzs WHERE directory = ?1 AND domain = ?2",
    [Q_AUTHZ_VALID] = "SELECT " AUTHZ_COLS " FROM authzs WHERE directory = ?1 AND "
                      "domain = ?2 AND status = 'valid' AND (expires = 0 OR expires > ?3) "
                      "AND subdomains >= ?4",
    [Q_JOB_INSERT] = "INSERT INTO jobs (csr_sha256, csr_der, names, state, attempts, "
                     "not_before, lease_until, created, updated) "
                     "VALUES (?1, ?2, ?3, 0, 0, ?4, 0, ?4, ?4) "
                     "ON CONFLICT (csr_sha256) DO NOTHING RETURNING id",
    [Q_JOB_STATE] = "SELECT id, state FROM jobs WHERE csr_sha256 = ?1",
    [Q_JOB_RESET] = "UPDATE jobs SET state = 0, attempts = 0, reason = NULL, "
                    "order_url = NULL, not_before = ?2, lease_until = 0, owner = NULL, "
                    "updated = ?2 WHERE id = ?1",
    /* An expired lease is taken over: the old owner's later calls then fail. */
    [Q_JOB_CLAIM] = "UPDATE jobs SET state = 1, lease_until = ?2, owner = ?4, updated = ?1 "
                    "WHERE id IN (SELECT id FROM jobs WHERE "
                    "(state = 0 AND not_before <= ?1) OR (state = 1 AND lease_until < ?1) "
                    "ORDER BY created, id LIMIT ?3) RETURNING " JOB_COLS,
    /* The same, among the ids of a JSON array (?5): one bound value however many. */
    [Q_JOB_CLAIM_IDS] = "UPDATE jobs SET state = 1, lease_until = ?2, owner = ?4, updated = ?1 "
                        "WHERE id IN (SELECT id FROM jobs WHERE "
                        "id IN (SELECT value FROM json_each(?5)) AND "
                        "((state = 0 AND not_before <= ?1) OR (state = 1 AND lease_until < ?1)) "
                        "ORDER BY created, id LIMIT ?3) RETURNING " JOB_COLS,
    [Q_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [Q_JOB_GET_DIGEST] = "SELECT " JOB_COLS " FROM jobs WHERE csr_sha256 = ?1",
    /* Changes by an issuer apply only to a job it still holds (?9, OWNER_PARAM). */
    [Q_JOB_SET_ORDER] = "UPDATE jobs SET order_url = ?2, updated = ?3 "
                        "WHERE id = ?1 AND state = 1 AND owner = ?9",
    [Q_JOB_RENEW] = "UPDATE jobs SET lease_until = ?2, updated = ?3 "
                    "WHERE id = ?1 AND state = 1 AND owner = ?9",
    [Q_JOB_DEFER] = "UPDATE jobs SET state = 0, not_before = ?2, reason = ?3, "
                    "attempts = attempts + 1, lease_until = 0, owner = NULL, updated = ?4 "
                    "WHERE id = ?1 AND state = 1 AND owner = ?9",
    /* No owner check; still, a DONE or FAILED job is never moved back. */
    [Q_JOB_DEFER_ANY] = "UPDATE jobs SET state = 0, not_before = ?2, reason = ?3, "
                        "attempts = attempts + 1, lease_until = 0, owner = NULL, "
                        "updated = ?4 WHERE id = ?1 AND state IN (0, 1)",
    [Q_JOB_FAIL] = "UPDATE jobs SET state = 3, reason = ?2, lease_until = 0, owner = NULL, "
                   "updated = ?3 WHERE id = ?1 AND state = 1 AND owner = ?9",
    [Q_JOB_DONE] = "UPDATE jobs SET state = 2, lease_until = 0, reason = NULL, owner = NULL, "
                   "updated = ?2 WHERE id = ?1 AND state = 1 AND owner = ?9 "
                   "RETURNING csr_sha256",
    [Q_JOB_COUNTS] = "SELECT state, COUNT(*) FROM jobs GROUP BY state",
    [Q_CERT_INSERT] = "INSERT INTO certs (csr_sha256, chain_pem, not_after, issuer, issued, "
                      "leaf_sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_CERT_VALID] = "SELECT 1 FROM certs WHERE csr_sha256 = ?1 AND not_after > ?2 "
                     "AND revoked = 0 LIMIT 1",
    [Q_CERT_LOOKUP] = "SELECT csr_sha256, chain_pem, not_after, issuer, issued FROM certs "
                      "WHERE csr_sha256 = ?1 AND not_after > ?2 AND revoked = 0 "
                      "ORDER BY issued DESC, id DESC LIMIT 1",
    /* The digest finds the rows (certs_by_leaf); the text compare makes it exact. */
    [Q_CERT_BY_LEAF] = "SELECT csr_sha256, chain_pem, not_after, issuer, issued FROM certs "
                       "WHERE leaf_sha256 = ?3 AND substr(chain_pem, 1, length(?1)) = ?1 "
                       "AND not_after > ?2 AND revoked = 0 "
                       "ORDER BY issued DESC, id DESC LIMIT 1",
    [Q_CERT_NEWEST] = "SELECT csr_sha256, chain_pem, not_after, issuer, issued FROM certs "
                      "WHERE not_after > ?1 AND revoked = 0 ORDER BY issued DESC, id DESC LIMIT 1",
    [Q_CERT_COUNT] = "SELECT COUNT(*) FROM certs WHERE csr_sha256 = ?1",
    /* A prefix compare, not LIKE/GLOB: PEM text has no wildcards to escape then.
     * Rows already revoked are rewritten too, so that the count covers them. */
    [Q_CERT_REVOKE] = "UPDATE certs SET revoked = 1 "
                      "WHERE leaf_sha256 = ?2 AND substr(chain_pem, 1, length(?1)) = ?1",
    [Q_DNS_ADD] = "INSERT INTO dns_records (zone, name, value, created) "
                  "VALUES (?1, ?2, ?3, ?4) RETURNING id",
    [Q_DNS_DEL] = "DELETE FROM dns_records WHERE id = ?1",
    [Q_DNS_LIST] = "SELECT id, zone, name, value, created FROM dns_records ORDER BY id",
    [Q_DATA_VERSION] = "PRAGMA data_version",
};

const char *store_sqlite_statement(size_t i)
{
	return i < Q_COUNT ? sql[i] : NULL;
}

struct store {
	sqlite3 *db;
	int version;
	/* store_batch_begin: BATCH_OPEN until the first change begins its transaction
	 * (BATCH_BEGUN); each change is then a savepoint of it. */
	enum { BATCH_NONE, BATCH_OPEN, BATCH_BEGUN, BATCH_BROKEN } batch;
	int batch_nosync;        /* store_batch_begin_nosync: its commit skips the sync */
	int batch_lazy;          /* store_batch_begin_lazy: syncs from its first certificate */
	uint64_t batch_finished; /* jobs finished in the batch, counted at its commit */
	int64_t *batch_ids;      /* their ids, published at its commit */
	size_t batch_ids_n, batch_ids_cap;
	sqlite3_stmt *st[Q_COUNT];
};

/* ---- helpers ---- */

static int db_fail(struct store *s, struct acmera_errmsg *e, const char *what)
{
	return acmera_fail(e, ACMERA_ERR_STORE, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

static int nomem(struct acmera_errmsg *e)
{
	return acmera_fail(e, ACMERA_ERR_NOMEM, "store: out of memory");
}

/* The answer of an issuer's call on a job it no longer holds. */
static int lost(int64_t id, struct acmera_errmsg *e)
{
	return acmera_fail(e, ACMERA_ERR_NOTFOUND,
	                   "job %" PRId64 " is no longer held by this issuer", id);
}

/* The cached statement, prepared on first use. */
static sqlite3_stmt *prep(struct store *s, enum q id, struct acmera_errmsg *e)
{
	if (!s->st[id] && sqlite3_prepare_v3(s->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT,
	                                     &s->st[id], NULL) != SQLITE_OK) {
		db_fail(s, e, "prepare");
		return NULL;
	}
	return s->st[id];
}

/* Ends a statement's use: releases its locks and any pointers bound to it. */
static void done(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int64_t add_sat(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* Runs a statement that returns no row (or whose rows are not wanted). */
static int step_done(struct store *s, sqlite3_stmt *st, const char *what, struct acmera_errmsg *e)
{
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW)
		;
	return r == SQLITE_DONE ? 0 : db_fail(s, e, what);
}

static int run(struct store *s, enum q id, const char *what, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, id, e);
	int rc;
	if (!st)
		return ACMERA_ERR_STORE;
	rc = step_done(s, st, what, e);
	done(st);
	return rc;
}

/* SQLite undoes a whole transaction by itself on some errors (disk full, I/O
 * error, out of memory): the batch's earlier changes are then gone, so it is
 * broken, refuses every further change and fails at its end. */
static int batch_broken(struct store *s, struct acmera_errmsg *e)
{
	if (s->batch == BATCH_BEGUN && sqlite3_get_autocommit(s->db))
		s->batch = BATCH_BROKEN;
	if (s->batch != BATCH_BROKEN)
		return 0;
	return acmera_fail(e, ACMERA_ERR_STORE, "store: the batch was undone by an earlier error");
}

/* Every later commit of this handle would skip its sync if this failed, so it
 * cannot go on; a crash loses nothing committed. (A pragma without I/O outside a
 * transaction: only out of memory gets here.) */
static void restore_full_sync(struct store *s)
{
	if (!s->batch_nosync)
		return;
	if (sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "store: cannot restore synchronous = FULL: %s\n",
		        sqlite3_errmsg(s->db));
		abort();
	}
}

/* A batch's transaction begins with its first change: an open batch holds no
 * lock while its owner waits for something else. */
static int batch_join(struct store *s, struct acmera_errmsg *e)
{
	int rc = batch_broken(s, e);
	if (rc || s->batch != BATCH_OPEN)
		return rc;
	/* The level can only change between transactions: set here, restored at the end. */
	if (s->batch_nosync &&
	    sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(s, e, "synchronous");
	rc = run(s, Q_BEGIN, "batch begin", e);
	if (rc)
		restore_full_sync(s);
	if (rc == 0)
		s->batch = BATCH_BEGUN;
	return rc;
}

/* In a batch, one change is a savepoint: it succeeds or fails whole, and the
 * batch's COMMIT makes all of them durable with one sync. */
static int tx_begin(struct store *s, struct acmera_errmsg *e)
{
	int rc = batch_join(s, e);
	if (rc)
		return rc;
	return run(s, s->batch ? Q_SAVEPOINT : Q_BEGIN, "begin", e);
}

static int tx_commit(struct store *s, struct acmera_errmsg *e)
{
	return run(s, s->batch ? Q_RELEASE : Q_COMMIT, "commit", e);
}

/* Undoes an open transaction after a failure; the first error is what counts. */
static void tx_rollback(struct store *s)
{
	if (batch_broken(s, NULL) || sqlite3_get_autocommit(s->db))
		return;
	if (!s->batch) {
		run(s, Q_ROLLBACK, "rollback", NULL);
		return;
	}
	/* The change only; the batch goes on. ROLLBACK TO leaves the savepoint open. */
	if (run(s, Q_ROLLBACK_TO, "rollback", NULL) == 0)
		run(s, Q_RELEASE, "rollback", NULL);
}

/* A job finished: seen by waiters once it is committed. A batch keeps the ids
 * until then. An id that finds no room is published as unknown, which makes
 * every waiter look. */
static void job_finished(struct store *s, int64_t id)
{
	if (!s->batch) {
		store_jobs_finished_publish(&id, 1, 1);
		return;
	}
	s->batch_finished++;
	if (s->batch_ids_n == s->batch_ids_cap) {
		size_t cap = s->batch_ids_cap ? 2 * s->batch_ids_cap : 16;
		int64_t *ids = realloc(s->batch_ids, cap * sizeof(*ids));
		if (!ids)
			return;
		s->batch_ids = ids;
		s->batch_ids_cap = cap;
	}
	s->batch_ids[s->batch_ids_n++] = id;
}

int store_sqlite_tx_begin(struct store *s, struct acmera_errmsg *e)
{
	return tx_begin(s, e);
}

int store_sqlite_tx_end(struct store *s, int rc, struct acmera_errmsg *e)
{
	if (rc == 0)
		rc = tx_commit(s, e);
	if (rc)
		tx_rollback(s);
	return rc;
}

/* Forgets the jobs the batch finished: published, or undone with it. */
static void batch_forget_finished(struct store *s)
{
	s->batch_finished = 0;
	s->batch_ids_n = 0;
}

/* The jobs a batch finished become visible to waiters with its commit. */
static void batch_publish_finished(struct store *s)
{
	store_jobs_finished_publish(s->batch_ids, s->batch_ids_n, s->batch_finished);
	batch_forget_finished(s);
}

/* Called before a change that nobody may see before it would survive a power loss
 * (a certificate: a device may hold it from then on). A lazy batch commits what it
 * holds so far without the sync and goes on with it: that change, and the rest of
 * the batch, commit with the sync, which makes the earlier part durable too (the
 * log is written in order). */
static int batch_need_sync(struct store *s, struct acmera_errmsg *e)
{
	int rc = batch_broken(s, e);
	if (rc || !s->batch || !s->batch_lazy || !s->batch_nosync)
		return rc;
	if (s->batch == BATCH_BEGUN) {
		s->batch = BATCH_NONE; /* a failed commit is then undone whole */
		rc = run(s, Q_COMMIT, "batch commit", e);
		if (rc) {
			tx_rollback(s);
			s->batch = BATCH_BROKEN; /* store_batch_end reports it */
			return rc;
		}
		restore_full_sync(s);
		batch_publish_finished(s);
		s->batch = BATCH_OPEN;
	}
	s->batch_nosync = 0;
	return 0;
}

int store_batch_pending(const struct store *s)
{
	return s->batch == BATCH_BEGUN || s->batch == BATCH_BROKEN;
}

static int batch_begin(struct store *s, int nosync, struct acmera_errmsg *e)
{
	if (s->batch)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: a batch is already open");
	s->batch = BATCH_OPEN;
	s->batch_nosync = nosync;
	s->batch_lazy = 0;
	batch_forget_finished(s);
	return 0;
}

int store_batch_begin(struct store *s, struct acmera_errmsg *e)
{
	return batch_begin(s, 0, e);
}

int store_batch_begin_nosync(struct store *s, struct acmera_errmsg *e)
{
	return batch_begin(s, 1, e);
}

int store_batch_begin_lazy(struct store *s, struct acmera_errmsg *e)
{
	int rc = batch_begin(s, 1, e);
	if (rc == 0)
		s->batch_lazy = 1;
	return rc;
}

int store_batch_end(struct store *s, struct acmera_errmsg *e)
{
	if (!s->batch)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no batch is open");
	int rc = batch_broken(s, e);
	/* A broken batch had begun too: SQLite undid its transaction. */
	int begun = s->batch == BATCH_BEGUN || s->batch == BATCH_BROKEN;
	s->batch = BATCH_NONE;
	if (begun && !rc)
		rc = run(s, Q_COMMIT, "batch commit", e);
	if (rc)
		tx_rollback(s);
	else
		batch_publish_finished(s);
	if (begun)
		restore_full_sync(s);
	s->batch_nosync = 0;
	s->batch_lazy = 0;
	batch_forget_finished(s);
	return rc;
}

int store_wal_open(struct store *s, struct acmera_errmsg *e)
{
	const char *wal = sqlite3_filename_wal(sqlite3_db_filename(s->db, "main"));
	int fd = wal ? open(wal, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	if (fd < 0)
		acmera_fail(e, ACMERA_ERR_IO, "store: write-ahead log %s: %s", wal ? wal : "-",
		            wal ? strerror(errno) : "no file name");
	return fd;
}

static int col_hex(sqlite3_stmt *st, int i, char out[65])
{
	const unsigned char *t = sqlite3_column_text(st, i);
	if (!t || sqlite3_column_bytes(st, i) != 64)
		return ACMERA_ERR_STORE;
	memcpy(out, t, 64);
	out[64] = '\0';
	return 0;
}

static char *lower_dup(const char *v)
{
	char *d = strdup(v);
	for (char *p = d; p && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

static int digest_hex(const uint8_t *p, size_t n, char out[65])
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) || len != 32)
		return -1;
	for (unsigned int i = 0; i < len; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

/* ---- open / close ---- */

static int set_pragmas(struct store *s, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = NULL;
	char *msg = NULL;
	int rc = 0;

	/* journal_mode answers with the mode in force: WAL may be refused. */
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = db_fail(s, e, "journal_mode");
		goto out;
	}
	if (sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		rc = acmera_fail(e, ACMERA_ERR_STORE, "store: cannot use WAL journal mode");
		goto out;
	}
	/* FULL: a commit is on disk before the caller acknowledges it. */
	if (sqlite3_exec(s->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", NULL, NULL,
	                 &msg) != SQLITE_OK)
		rc = acmera_fail(e, ACMERA_ERR_STORE, "store: pragmas: %s",
		                 msg ? msg : sqlite3_errmsg(s->db));
out:
	sqlite3_free(msg);
	sqlite3_finalize(st);
	return rc;
}

int store_open(const char *path, struct store **out, struct acmera_errmsg *e)
{
	struct store *s = NULL;
	int rc, fd;

	*out = NULL;
	if (!path || !*path)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no path");
	/* Create it ourselves so that it never exists with a wider mode. SQLite gives
	 * the -wal and -shm files the mode of the database file. Only when it is new:
	 * closing a descriptor of a file drops every POSIX lock this process holds on
	 * it, those of a handle already open here (another thread's) included, and then
	 * another process may take the WAL from under that handle. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0 && errno != EEXIST)
		return acmera_fail(e, ACMERA_ERR_IO, "store: %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	s = calloc(1, sizeof(*s));
	if (!s)
		return nomem(e);
	if (sqlite3_open_v2(path, &s->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
	                    NULL) != SQLITE_OK) {
		rc = acmera_fail(e, ACMERA_ERR_STORE, "store: %s: %s", path,
		                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
	/* Hardening: no schema-writing tricks, no functions run from the schema. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	rc = set_pragmas(s, e);
	if (rc < 0)
		goto out;
	rc = store_migrate(s->db, &s->version, e);
out:
	if (rc < 0) {
		store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close_v2(s->db);
	free(s->batch_ids);
	free(s);
}

int store_schema_version(struct store *s)
{
	return s->version;
}

sqlite3 *store_sqlite_db(struct store *s)
{
	return s->db;
}

/* ---- accounts ---- */

int store_account_get(struct store *s, const char *directory, struct store_account *out,
                      struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc = 0, r;

	memset(out, 0, sizeof(*out));
	if (!directory)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no directory");
	st = prep(s, Q_ACCOUNT_GET, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, directory) != SQLITE_OK) {
		rc = db_fail(s, e, "account get");
		goto out;
	}
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		rc = acmera_fail(e, ACMERA_ERR_NOTFOUND, "store: no account for %s", directory);
		goto out;
	}
	if (r != SQLITE_ROW) {
		rc = db_fail(s, e, "account get");
		goto out;
	}
	if (col_str(st, 0, &out->directory) || col_str(st, 1, &out->key_pem) ||
	    col_str(st, 2, &out->kid) || col_str(st, 3, &out->status) ||
	    col_str(st, 4, &out->next_key_pem))
		rc = nomem(e);
out:
	done(st);
	if (rc < 0)
		store_account_free(out);
	return rc;
}

int store_account_put(struct store *s, const struct store_account *a, struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!a->directory || !a->key_pem)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: account needs directory and key");
	st = prep(s, Q_ACCOUNT_PUT, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, a->directory) != SQLITE_OK || bind_text(st, 2, a->key_pem) ||
	    bind_text(st, 3, a->kid) || bind_text(st, 4, a->status) ||
	    bind_text(st, 5, a->next_key_pem)) {
		rc = db_fail(s, e, "account put");
		goto out;
	}
	rc = step_done(s, st, "account put", e);
out:
	done(st);
	return rc;
}

void store_account_free(struct store_account *a)
{
	if (!a)
		return;
	free(a->directory);
	/* The account keys must not linger in freed heap memory. */
	secret_free(a->key_pem);
	secret_free(a->next_key_pem);
	free(a->kid);
	free(a->status);
	memset(a, 0, sizeof(*a));
}

/* ---- authorizations ---- */

static int read_authz(sqlite3_stmt *st, struct store_authz *a)
{
	if (col_str(st, 0, &a->directory) || col_str(st, 1, &a->domain) ||
	    col_str(st, 2, &a->url) || col_str(st, 3, &a->status))
		return ACMERA_ERR_NOMEM;
	a->subdomains = sqlite3_column_int(st, 4) ? 1 : 0;
	a->expires = sqlite3_column_int64(st, 5);
	return 0;
}

int store_authz_put(struct store *s, const struct store_authz *a, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = NULL;
	char *domain = NULL;
	int rc;

	if (!a->directory || !a->domain || !a->status)
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "store: authorization needs directory, domain and status");
	domain = lower_dup(a->domain);
	if (!domain)
		return nomem(e);
	st = prep(s, Q_AUTHZ_PUT, e);
	if (!st) {
		rc = ACMERA_ERR_STORE;
		goto out;
	}
	if (bind_text(st, 1, a->directory) != SQLITE_OK || bind_text(st, 2, domain) ||
	    bind_text(st, 3, a->url) || bind_text(st, 4, a->status) ||
	    sqlite3_bind_int(st, 5, a->subdomains ? 1 : 0) ||
	    sqlite3_bind_int64(st, 6, a->expires)) {
		rc = db_fail(s, e, "authz put");
		goto out;
	}
	rc = step_done(s, st, "authz put", e);
out:
	done(st);
	free(domain);
	return rc;
}

/* One row of the cached statement st (already bound) into out, or NOTFOUND. */
static int fetch_authz(struct store *s, sqlite3_stmt *st, const char *name, struct store_authz *out,
                       struct acmera_errmsg *e)
{
	int r = sqlite3_step(st);

	if (r == SQLITE_DONE)
		return acmera_fail(e, ACMERA_ERR_NOTFOUND, "store: no authorization for %s", name);
	if (r != SQLITE_ROW)
		return db_fail(s, e, "authz get");
	if (read_authz(st, out) < 0) {
		store_authz_free(out);
		return nomem(e);
	}
	return 0;
}

int store_authz_get(struct store *s, const char *directory, const char *domain,
                    struct store_authz *out, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = NULL;
	char *d = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!directory || !domain)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no directory or domain");
	d = lower_dup(domain);
	if (!d)
		return nomem(e);
	st = prep(s, Q_AUTHZ_GET, e);
	if (!st) {
		rc = ACMERA_ERR_STORE;
		goto out;
	}
	if (bind_text(st, 1, directory) != SQLITE_OK || bind_text(st, 2, d)) {
		rc = db_fail(s, e, "authz get");
		goto out;
	}
	rc = fetch_authz(s, st, d, out, e);
out:
	done(st);
	free(d);
	return rc;
}

int store_authz_find_covering(struct store *s, const char *directory, const char *name, int64_t now,
                              int64_t margin, struct store_authz *out, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = NULL;
	char *n = NULL;
	size_t len;
	int rc = ACMERA_ERR_NOTFOUND;

	memset(out, 0, sizeof(*out));
	if (!directory || !name)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no directory or name");
	len = strnlen(name, STORE_MAX_NAME + 1);
	if (len == 0 || len > STORE_MAX_NAME)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: bad name length");
	n = lower_dup(name);
	if (!n)
		return nomem(e);
	if (n[len - 1] == '.')
		n[--len] = '\0';
	st = prep(s, Q_AUTHZ_VALID, e);
	if (!st) {
		rc = ACMERA_ERR_STORE;
		goto out;
	}
	/* The name itself, then each ancestor, most specific first; an ancestor
	 * counts only with subdomains=1. Walking labels in C keeps the SQL an exact
	 * match on the unique key, with no LIKE and its wildcards ('_' is common). */
	for (const char *d = n; d && *d;) {
		done(st);
		if (bind_text(st, 1, directory) != SQLITE_OK || bind_text(st, 2, d) ||
		    sqlite3_bind_int64(st, 3, add_sat(now, margin < 0 ? 0 : margin)) ||
		    sqlite3_bind_int(st, 4, d == n ? 0 : 1)) {
			rc = db_fail(s, e, "authz find");
			goto out;
		}
		rc = fetch_authz(s, st, d, out, e);
		if (rc != ACMERA_ERR_NOTFOUND)
			goto out;
		d = strchr(d, '.');
		if (d)
			d++;
	}
	rc = acmera_fail(e, ACMERA_ERR_NOTFOUND, "store: no valid authorization covers %s", n);
out:
	done(st);
	free(n);
	return rc;
}

void store_authz_free(struct store_authz *a)
{
	if (!a)
		return;
	free(a->directory);
	free(a->domain);
	free(a->url);
	free(a->status);
	memset(a, 0, sizeof(*a));
}

/* ---- jobs ---- */

static int read_job(sqlite3_stmt *st, struct store_job *j)
{
	const void *blob;
	int state, n;

	memset(j, 0, sizeof(*j));
	j->id = sqlite3_column_int64(st, 0);
	if (col_hex(st, 1, j->csr_sha256) < 0)
		return ACMERA_ERR_STORE;
	blob = sqlite3_column_blob(st, 2);
	n = sqlite3_column_bytes(st, 2);
	if (n > 0) {
		if (!blob)
			return ACMERA_ERR_NOMEM;
		j->csr_der = malloc((size_t)n);
		if (!j->csr_der)
			return ACMERA_ERR_NOMEM;
		memcpy(j->csr_der, blob, (size_t)n);
		j->csr_der_len = (size_t)n;
	}
	if (col_str(st, 3, &j->names) || col_str(st, 5, &j->order_url) ||
	    col_str(st, 9, &j->reason) || col_str(st, 11, &j->owner))
		return ACMERA_ERR_NOMEM;
	state = sqlite3_column_int(st, 4);
	if (state < JOB_PENDING || state > JOB_FAILED)
		return ACMERA_ERR_STORE;
	j->state = (enum store_job_state)state;
	j->attempts = sqlite3_column_int(st, 6);
	j->not_before = sqlite3_column_int64(st, 7);
	j->lease_until = sqlite3_column_int64(st, 8);
	j->created = sqlite3_column_int64(st, 10);
	return 0;
}

static int read_job_fail(struct store_job *j, int code, struct acmera_errmsg *e)
{
	store_job_free(j);
	if (code == ACMERA_ERR_NOMEM)
		return nomem(e);
	return acmera_fail(e, ACMERA_ERR_STORE, "store: malformed job row");
}

/* Under the submit transaction, after the insert met an existing job: says which
 * job it is, and resets it to PENDING when it must be worked on again (FAILED, or
 * DONE with no unexpired certificate left). */
static int rejoin(struct store *s, const char *hex, int64_t now, int64_t *id,
                  struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_JOB_STATE, e);
	int rc = 0, state, reset = 0, r = 0;

	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, hex) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		rc = db_fail(s, e, "job lookup");
		goto out;
	}
	*id = sqlite3_column_int64(st, 0);
	state = sqlite3_column_int(st, 1);
	done(st);
	if (state == JOB_FAILED)
		reset = 1;
	if (state == JOB_DONE) {
		/* Done long ago and its certificate expired: issue a new one. */
		st = prep(s, Q_CERT_VALID, e);
		if (!st)
			return ACMERA_ERR_STORE;
		if (bind_text(st, 1, hex) != SQLITE_OK || sqlite3_bind_int64(st, 2, now) ||
		    ((r = sqlite3_step(st)) != SQLITE_ROW && r != SQLITE_DONE)) {
			rc = db_fail(s, e, "cert lookup");
			goto out;
		}
		reset = r == SQLITE_DONE;
		done(st);
	}
	if (!reset)
		return 0;
	st = prep(s, Q_JOB_RESET, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (sqlite3_bind_int64(st, 1, *id) != SQLITE_OK || sqlite3_bind_int64(st, 2, now)) {
		rc = db_fail(s, e, "job reset");
		goto out;
	}
	rc = step_done(s, st, "job reset", e);
out:
	done(st);
	return rc;
}

int store_job_submit(struct store *s, const uint8_t *csr_der, size_t len, const char *names,
                     int64_t now, int64_t *id, int *created, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = NULL;
	char hex[65];
	char *lnames = NULL;
	int rc, r;

	*id = 0;
	*created = 0;
	if (!csr_der || len == 0 || !names)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: job needs a CSR and names");
	if (digest_hex(csr_der, len, hex) < 0)
		return acmera_fail(e, ACMERA_ERR_STORE, "store: SHA-256 failed");
	lnames = lower_dup(names);
	if (!lnames)
		return nomem(e);
	rc = tx_begin(s, e);
	if (rc < 0)
		goto out;
	st = prep(s, Q_JOB_INSERT, e);
	if (!st) {
		rc = ACMERA_ERR_STORE;
		goto out;
	}
	if (bind_text(st, 1, hex) != SQLITE_OK ||
	    sqlite3_bind_blob64(st, 2, csr_der, len, SQLITE_STATIC) || bind_text(st, 3, lnames) ||
	    sqlite3_bind_int64(st, 4, now)) {
		rc = db_fail(s, e, "job insert");
		goto out;
	}
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		*created = 1;
		r = sqlite3_step(st);
	}
	if (r != SQLITE_DONE) {
		rc = db_fail(s, e, "job insert");
		goto out;
	}
	done(st);
	st = NULL;
	if (!*created) {
		rc = rejoin(s, hex, now, id, e);
		if (rc < 0)
			goto out;
	}
	rc = tx_commit(s, e);
out:
	done(st);
	if (rc < 0) {
		tx_rollback(s);
		*id = 0;
		*created = 0;
	}
	free(lnames);
	return rc;
}

/* A claim owner token: present and bounded (the schema bounds it too). */
static int check_owner(const char *owner, struct acmera_errmsg *e)
{
	size_t len;

	if (!owner)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no claim owner");
	len = strnlen(owner, STORE_OWNER_MAX + 1);
	if (len == 0 || len > STORE_OWNER_MAX)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: claim owner must be 1 to %d bytes",
		                   STORE_OWNER_MAX);
	return 0;
}

static int cmp_job(const void *a, const void *b)
{
	const struct store_job *x = a, *y = b;
	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Runs a claim statement (Q_JOB_CLAIM, or Q_JOB_CLAIM_IDS with ids_json) for
 * store_job_claim and store_job_claim_ids; arguments already checked. */
static int claim_rows(struct store *s, enum q q, const char *owner, const char *ids_json,
                      int64_t now, int64_t lease, size_t max, struct store_job **jobs, size_t *n,
                      struct acmera_errmsg *e)
{
	sqlite3_stmt *st = NULL;
	struct store_job *arr = NULL;
	size_t cnt = 0, cap = 0;
	int rc, r;

	/* The transaction makes select-and-mark one step for every process, and lets a
	 * failure below (e.g. memory) undo the marking rather than strand the jobs. */
	rc = tx_begin(s, e);
	if (rc < 0)
		return rc;
	st = prep(s, q, e);
	if (!st) {
		rc = ACMERA_ERR_STORE;
		goto out;
	}
	if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, add_sat(now, lease)) ||
	    sqlite3_bind_int64(st, 3, max > INT64_MAX ? INT64_MAX : (int64_t)max) ||
	    bind_text(st, 4, owner) || (ids_json && bind_text(st, 5, ids_json))) {
		rc = db_fail(s, e, "job claim");
		goto out;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == max)
			break; /* LIMIT makes this unreachable; bounds the array anyway */
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct store_job *na;
			if (nc > max)
				nc = max;
			na = reallocarray(arr, nc, sizeof(*arr));
			if (!na) {
				rc = nomem(e);
				goto out;
			}
			arr = na;
			cap = nc;
		}
		rc = read_job(st, &arr[cnt++]);
		if (rc < 0) {
			rc = read_job_fail(&arr[--cnt], rc, e);
			goto out;
		}
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		rc = db_fail(s, e, "job claim");
		goto out;
	}
	done(st);
	st = NULL;
	rc = tx_commit(s, e);
	if (rc < 0)
		goto out;
	/* RETURNING gives no order: oldest first as promised. */
	if (cnt > 1)
		qsort(arr, cnt, sizeof(*arr), cmp_job);
	*jobs = arr;
	*n = cnt;
out:
	done(st);
	if (rc < 0) {
		tx_rollback(s);
		store_jobs_free(arr, cnt);
	}
	return rc;
}

int store_job_claim(struct store *s, const char *owner, int64_t now, int64_t lease, size_t max,
                    struct store_job **jobs, size_t *n, struct acmera_errmsg *e)
{
	int rc;

	*jobs = NULL;
	*n = 0;
	rc = check_owner(owner, e);
	if (rc < 0)
		return rc;
	if (lease < 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: negative lease");
	if (max == 0)
		return 0;
	return claim_rows(s, Q_JOB_CLAIM, owner, NULL, now, lease, max, jobs, n, e);
}

int store_job_claim_ids(struct store *s, const char *owner, const int64_t *ids, size_t n_ids,
                        int64_t now, int64_t lease, size_t max, struct store_job **jobs, size_t *n,
                        struct acmera_errmsg *e)
{
	char *json = NULL, *p;
	size_t len;
	int rc;

	*jobs = NULL;
	*n = 0;
	rc = check_owner(owner, e);
	if (rc < 0)
		return rc;
	if (lease < 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: negative lease");
	if (n_ids > STORE_CLAIM_IDS_MAX || (n_ids > 0 && !ids))
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: claim takes 0 to %d job ids",
		                   STORE_CLAIM_IDS_MAX);
	if (max == 0 || n_ids == 0)
		return 0;
	/* "[id,id,...]": at most 20 digits and a sign per id, one separator each. */
	len = n_ids * 22 + 3;
	json = malloc(len);
	if (!json)
		return nomem(e);
	p = json;
	*p++ = '[';
	for (size_t i = 0; i < n_ids; i++)
		p += snprintf(p, (size_t)(json + len - p), "%s%" PRId64, i ? "," : "", ids[i]);
	*p++ = ']';
	*p = '\0';
	rc = claim_rows(s, Q_JOB_CLAIM_IDS, owner, json, now, lease, max, jobs, n, e);
	free(json);
	return rc;
}

static int job_get(struct store *s, sqlite3_stmt *st, struct store_job *out,
                   struct acmera_errmsg *e)
{
	int r = sqlite3_step(st), rc;

	if (r == SQLITE_DONE)
		return acmera_fail(e, ACMERA_ERR_NOTFOUND, "store: no such job");
	if (r != SQLITE_ROW)
		return db_fail(s, e, "job get");
	rc = read_job(st, out);
	return rc < 0 ? read_job_fail(out, rc, e) : 0;
}

int store_job_get(struct store *s, int64_t id, struct store_job *out, struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	st = prep(s, Q_JOB_GET, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK)
		rc = db_fail(s, e, "job get");
	else
		rc = job_get(s, st, out, e);
	done(st);
	return rc;
}

int store_job_get_by_digest(struct store *s, const char *csr_sha256, struct store_job *out,
                            struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!csr_sha256)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no digest");
	st = prep(s, Q_JOB_GET_DIGEST, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, csr_sha256) != SQLITE_OK)
		rc = db_fail(s, e, "job get");
	else
		rc = job_get(s, st, out, e);
	done(st);
	return rc;
}

/* Runs a bound UPDATE/DELETE on one row: NOTFOUND when it touched none. */
static int change_one(struct store *s, sqlite3_stmt *st, const char *what, int64_t id,
                      struct acmera_errmsg *e)
{
	int rc = step_done(s, st, what, e);

	if (rc == 0 && sqlite3_changes(s->db) == 0)
		rc = acmera_fail(e, ACMERA_ERR_NOTFOUND, "store: %s: no such record %" PRId64, what,
		                 id);
	done(st);
	return rc;
}

/* Runs a bound UPDATE of a job the owner must hold: NOTFOUND when it touched
 * none (the job was taken over, is finished, or does not exist). */
static int change_held(struct store *s, sqlite3_stmt *st, const char *what, int64_t id,
                       struct acmera_errmsg *e)
{
	int rc = batch_join(s, e);
	if (rc == 0)
		rc = step_done(s, st, what, e);

	if (rc == 0 && sqlite3_changes(s->db) == 0)
		rc = lost(id, e);
	done(st);
	return rc;
}

int store_job_set_order(struct store *s, int64_t id, const char *owner, const char *order_url,
                        struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc = check_owner(owner, e);

	if (rc < 0)
		return rc;
	st = prep(s, Q_JOB_SET_ORDER, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK || bind_text(st, 2, order_url) ||
	    sqlite3_bind_int64(st, 3, now_s()) || bind_text(st, OWNER_PARAM, owner)) {
		done(st);
		return db_fail(s, e, "job set order");
	}
	return change_held(s, st, "job set order", id, e);
}

int store_job_renew_lease(struct store *s, int64_t id, const char *owner, int64_t lease_until,
                          struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc = check_owner(owner, e);

	if (rc < 0)
		return rc;
	st = prep(s, Q_JOB_RENEW, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK || sqlite3_bind_int64(st, 2, lease_until) ||
	    sqlite3_bind_int64(st, 3, now_s()) || bind_text(st, OWNER_PARAM, owner)) {
		done(st);
		return db_fail(s, e, "job renew lease");
	}
	return change_held(s, st, "job renew lease", id, e);
}

int store_job_defer(struct store *s, int64_t id, const char *owner, int64_t not_before,
                    const char *reason, struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc = owner ? check_owner(owner, e) : 0;

	if (rc < 0)
		return rc;
	st = prep(s, owner ? Q_JOB_DEFER : Q_JOB_DEFER_ANY, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK || sqlite3_bind_int64(st, 2, not_before) ||
	    bind_text(st, 3, reason) || sqlite3_bind_int64(st, 4, now_s()) ||
	    (owner && bind_text(st, OWNER_PARAM, owner))) {
		done(st);
		return db_fail(s, e, "job defer");
	}
	if (owner)
		return change_held(s, st, "job defer", id, e);
	return change_one(s, st, "defer pending or active job", id, e);
}

int store_job_fail(struct store *s, int64_t id, const char *owner, const char *reason,
                   struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc = check_owner(owner, e);

	if (rc < 0)
		return rc;
	st = prep(s, Q_JOB_FAIL, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK || bind_text(st, 2, reason) ||
	    sqlite3_bind_int64(st, 3, now_s()) || bind_text(st, OWNER_PARAM, owner)) {
		done(st);
		return db_fail(s, e, "job fail");
	}
	rc = change_held(s, st, "job fail", id, e);
	if (rc >= 0)
		job_finished(s, id);
	return rc;
}

/* Under the complete transaction: marks job id DONE if owner holds it, and gives
 * its digest for the certificate row. */
static int job_done(struct store *s, int64_t id, const char *owner, int64_t now, char hex[65],
                    struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_JOB_DONE, e);
	int rc = 0, r;

	if (!st)
		return ACMERA_ERR_STORE;
	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK || sqlite3_bind_int64(st, 2, now) ||
	    bind_text(st, OWNER_PARAM, owner)) {
		rc = db_fail(s, e, "job done");
		goto out;
	}
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		rc = lost(id, e);
		goto out;
	}
	if (r != SQLITE_ROW) {
		rc = db_fail(s, e, "job done");
		goto out;
	}
	if (col_hex(st, 0, hex) < 0) {
		rc = acmera_fail(e, ACMERA_ERR_STORE, "store: malformed job row");
		goto out;
	}
	rc = step_done(s, st, "job done", e);
out:
	done(st);
	return rc;
}

int store_job_complete(struct store *s, int64_t id, const char *owner, const char *chain_pem,
                       int64_t not_after, const char *issuer, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = NULL;
	char hex[65];
	int64_t now = now_s();
	int rc;

	rc = check_owner(owner, e);
	if (rc < 0)
		return rc;
	if (!chain_pem)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no certificate");
	rc = batch_need_sync(s, e);
	if (rc < 0)
		return rc;
	rc = tx_begin(s, e);
	if (rc < 0)
		return rc;
	/* The job first: a taken-over job rolls back before any certificate row. */
	rc = job_done(s, id, owner, now, hex, e);
	if (rc < 0)
		goto out;
	st = prep(s, Q_CERT_INSERT, e);
	if (!st) {
		rc = ACMERA_ERR_STORE;
		goto out;
	}
	/* A chain that does not start with a PEM block has no leaf to be found by. */
	char leaf[65];
	int has_leaf = store_leaf_digest(chain_pem, leaf) == 0;
	if (bind_text(st, 1, hex) != SQLITE_OK || bind_text(st, 2, chain_pem) ||
	    sqlite3_bind_int64(st, 3, not_after) || bind_text(st, 4, issuer) ||
	    sqlite3_bind_int64(st, 5, now) ||
	    (has_leaf ? bind_text(st, 6, leaf) : sqlite3_bind_null(st, 6))) {
		rc = db_fail(s, e, "cert insert");
		goto out;
	}
	rc = step_done(s, st, "cert insert", e);
	if (rc < 0)
		goto out;
	done(st);
	st = NULL;
	rc = tx_commit(s, e);
	if (rc >= 0)
		job_finished(s, id);
out:
	done(st);
	if (rc < 0)
		tx_rollback(s);
	return rc;
}

int store_job_counts(struct store *s, int64_t counts[4], struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_JOB_COUNTS, e);
	int rc = 0, r;

	for (int i = 0; i < 4; i++)
		counts[i] = 0;
	if (!st)
		return ACMERA_ERR_STORE;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int state = sqlite3_column_int(st, 0);
		if (state >= JOB_PENDING && state <= JOB_FAILED)
			counts[state] = sqlite3_column_int64(st, 1);
	}
	if (r != SQLITE_DONE)
		rc = db_fail(s, e, "job counts");
	done(st);
	return rc;
}

void store_job_free(struct store_job *j)
{
	if (!j)
		return;
	free(j->csr_der);
	free(j->names);
	free(j->order_url);
	free(j->reason);
	free(j->owner);
	memset(j, 0, sizeof(*j));
}

void store_jobs_free(struct store_job *jobs, size_t n)
{
	if (!jobs)
		return;
	for (size_t i = 0; i < n; i++)
		store_job_free(&jobs[i]);
	free(jobs);
}

/* ---- certificates ---- */

static int check_leaf_pem(const char *pem, char digest[65], struct acmera_errmsg *e);

/* Reads the one row a cert query returns into out. */
static int cert_row(struct store *s, sqlite3_stmt *st, struct store_cert *out,
                    struct acmera_errmsg *e)
{
	int rc = 0;
	int r = sqlite3_step(st);
	if (r == SQLITE_DONE)
		return acmera_fail(e, ACMERA_ERR_NOTFOUND, "store: no valid certificate");
	if (r != SQLITE_ROW)
		return db_fail(s, e, "cert lookup");
	if (col_hex(st, 0, out->csr_sha256) < 0)
		return acmera_fail(e, ACMERA_ERR_STORE, "store: malformed cert row");
	if (col_str(st, 1, &out->chain_pem) || col_str(st, 3, &out->issuer))
		return nomem(e);
	out->not_after = sqlite3_column_int64(st, 2);
	out->issued = sqlite3_column_int64(st, 4);
	return rc;
}

int store_cert_lookup(struct store *s, const char *csr_sha256, int64_t now, struct store_cert *out,
                      struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!csr_sha256)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no digest");
	st = prep(s, Q_CERT_LOOKUP, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, csr_sha256) != SQLITE_OK || sqlite3_bind_int64(st, 2, now))
		rc = db_fail(s, e, "cert lookup");
	else
		rc = cert_row(s, st, out, e);
	done(st);
	if (rc < 0)
		store_cert_free(out);
	return rc;
}

int store_cert_find_leaf(struct store *s, const char *leaf_pem, int64_t now, struct store_cert *out,
                         struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!leaf_pem)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no leaf certificate");
	char leaf[65];
	rc = check_leaf_pem(leaf_pem, leaf, e);
	if (rc < 0)
		return rc;
	st = prep(s, Q_CERT_BY_LEAF, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, leaf_pem) != SQLITE_OK || sqlite3_bind_int64(st, 2, now) ||
	    bind_text(st, 3, leaf) != SQLITE_OK)
		rc = db_fail(s, e, "cert lookup");
	else
		rc = cert_row(s, st, out, e);
	done(st);
	if (rc < 0)
		store_cert_free(out);
	return rc;
}

int store_cert_newest(struct store *s, int64_t now, struct store_cert *out, struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	st = prep(s, Q_CERT_NEWEST, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK)
		rc = db_fail(s, e, "cert lookup");
	else
		rc = cert_row(s, st, out, e);
	done(st);
	if (rc < 0)
		store_cert_free(out);
	return rc;
}

int store_cert_count(struct store *s, const char *csr_sha256, int64_t *count,
                     struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc = 0;

	*count = 0;
	if (!csr_sha256)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no digest");
	st = prep(s, Q_CERT_COUNT, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, csr_sha256) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		rc = db_fail(s, e, "cert count");
	else
		*count = sqlite3_column_int64(st, 0);
	done(st);
	return rc;
}

int store_leaf_digest(const char *chain_pem, char hex[65])
{
	const char *end = strstr(chain_pem, PEM_CERT_END);
	if (strncmp(chain_pem, PEM_CERT_BEGIN, strlen(PEM_CERT_BEGIN)) != 0 || !end)
		return -1;
	sha256_hex((const uint8_t *)chain_pem, (size_t)(end - chain_pem) + strlen(PEM_CERT_END),
	           hex);
	return hex[0] ? 0 : -1;
}

/* One PEM certificate block exactly as PEM_write_bio_X509 writes it: the
 * markers, then base64 lines. Anything looser could prefix-match other chains
 * (an empty string matches them all). digest gets its certs_by_leaf key. */
static int check_leaf_pem(const char *pem, char digest[65], struct acmera_errmsg *e)
{
	const size_t nb = strlen(PEM_CERT_BEGIN), ne = strlen(PEM_CERT_END);
	size_t len = strnlen(pem, STORE_MAX_LEAF_PEM + 1);

	if (len > STORE_MAX_LEAF_PEM)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: leaf PEM too long");
	if (len <= nb + ne || memcmp(pem, PEM_CERT_BEGIN, nb) != 0 ||
	    memcmp(pem + len - ne, PEM_CERT_END, ne) != 0)
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "store: leaf is not one PEM certificate block");
	for (size_t i = nb; i < len - ne; i++) {
		char c = pem[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/' || c == '=' || c == '\n'))
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "store: leaf is not one PEM certificate block");
	}
	if (pem[len - ne - 1] != '\n')
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "store: leaf is not one PEM certificate block");
	/* The whole text is the one block store_leaf_digest would hash. */
	sha256_hex((const uint8_t *)pem, len, digest);
	return digest[0] ? 0 : acmera_fail(e, ACMERA_ERR_NOMEM, "store: SHA-256 failed");
}

int store_cert_mark_revoked(struct store *s, const char *leaf_pem, int64_t *marked,
                            struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc;

	*marked = 0;
	if (!leaf_pem)
		return acmera_fail(e, ACMERA_ERR_INVAL, "store: no leaf certificate");
	char leaf[65];
	rc = check_leaf_pem(leaf_pem, leaf, e);
	if (rc < 0)
		return rc;
	st = prep(s, Q_CERT_REVOKE, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, leaf_pem) != SQLITE_OK || bind_text(st, 2, leaf) != SQLITE_OK) {
		rc = db_fail(s, e, "cert revoke");
		goto out;
	}
	rc = step_done(s, st, "cert revoke", e);
	if (rc == 0)
		*marked = sqlite3_changes64(s->db);
out:
	done(st);
	return rc;
}

void store_cert_free(struct store_cert *c)
{
	if (!c)
		return;
	free(c->chain_pem);
	free(c->issuer);
	memset(c, 0, sizeof(*c));
}

/* ---- DNS records ---- */

int store_dns_record_add(struct store *s, const char *zone, const char *name, const char *value,
                         int64_t now, int64_t *id, struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc = 0;

	*id = 0;
	if (!zone || !name || !value)
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "store: dns record needs zone, name, value");
	rc = batch_join(s, e);
	if (rc)
		return rc;
	st = prep(s, Q_DNS_ADD, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, zone) != SQLITE_OK || bind_text(st, 2, name) ||
	    bind_text(st, 3, value) || sqlite3_bind_int64(st, 4, now) ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = db_fail(s, e, "dns record add");
		goto out;
	}
	*id = sqlite3_column_int64(st, 0);
	rc = step_done(s, st, "dns record add", e);
	if (rc < 0)
		*id = 0;
out:
	done(st);
	return rc;
}

int store_dns_record_remove(struct store *s, int64_t id, struct acmera_errmsg *e)
{
	int rc = batch_join(s, e);
	if (rc)
		return rc;
	sqlite3_stmt *st = prep(s, Q_DNS_DEL, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
		done(st);
		return db_fail(s, e, "dns record remove");
	}
	return change_one(s, st, "dns record remove", id, e);
}

int store_dns_record_list(struct store *s, struct store_dns_record **out, size_t *n,
                          struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	struct store_dns_record *arr = NULL;
	size_t cnt = 0, cap = 0;
	int rc = 0, r;

	*out = NULL;
	*n = 0;
	st = prep(s, Q_DNS_LIST, e);
	if (!st)
		return ACMERA_ERR_STORE;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_dns_record *d;
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct store_dns_record *na = reallocarray(arr, nc, sizeof(*arr));
			if (!na) {
				rc = nomem(e);
				goto out;
			}
			arr = na;
			cap = nc;
		}
		d = &arr[cnt++];
		memset(d, 0, sizeof(*d));
		d->id = sqlite3_column_int64(st, 0);
		d->created = sqlite3_column_int64(st, 4);
		if (col_str(st, 1, &d->zone) || col_str(st, 2, &d->name) ||
		    col_str(st, 3, &d->value)) {
			rc = nomem(e);
			goto out;
		}
	}
	if (r != SQLITE_DONE) {
		rc = db_fail(s, e, "dns record list");
		goto out;
	}
	*out = arr;
	*n = cnt;
out:
	done(st);
	if (rc < 0)
		store_dns_records_free(arr, cnt);
	return rc;
}

void store_dns_records_free(struct store_dns_record *r, size_t n)
{
	if (!r)
		return;
	for (size_t i = 0; i < n; i++) {
		free(r[i].zone);
		free(r[i].name);
		free(r[i].value);
	}
	free(r);
}

int store_data_version(struct store *s, int64_t *out, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_DATA_VERSION, e);
	int rc = 0;

	if (!st)
		return ACMERA_ERR_STORE;
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		rc = db_fail(s, e, "data version");
	done(st);
	return rc;
}
