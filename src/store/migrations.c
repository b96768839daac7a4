#include "store/migrations.h"
#include "store/sqlite_internal.h"

#include <stdio.h>

#define STEP_LEAF_DIGESTS 4 /* the step whose new column backfill_leaf_digests fills */

/* Never edit a step once released: append a new one. Types and constraints are
 * kept to what PostgreSQL also understands (INTEGER PRIMARY KEY maps to BIGSERIAL
 * there); states are the integers of enum store_job_state. */
static const char *const steps[] = {
    /* 1: initial schema */
    "CREATE TABLE accounts ("
    "  directory TEXT PRIMARY KEY,"
    "  key_pem TEXT NOT NULL,"
    "  kid TEXT,"
    "  status TEXT"
    ");"
    "CREATE TABLE authzs ("
    "  id INTEGER PRIMARY KEY,"
    "  directory TEXT NOT NULL,"
    "  domain TEXT NOT NULL,"
    "  url TEXT,"
    "  status TEXT NOT NULL,"
    "  subdomains INTEGER NOT NULL DEFAULT 0 CHECK (subdomains IN (0, 1)),"
    "  expires BIGINT NOT NULL DEFAULT 0,"
    "  UNIQUE (directory, domain)"
    ");"
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY,"
    "  csr_sha256 TEXT NOT NULL UNIQUE,"
    "  csr_der BLOB NOT NULL,"
    "  names TEXT NOT NULL,"
    "  state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2, 3)),"
    "  order_url TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  not_before BIGINT NOT NULL DEFAULT 0,"
    "  lease_until BIGINT NOT NULL DEFAULT 0,"
    "  reason TEXT,"
    "  created BIGINT NOT NULL,"
    "  updated BIGINT NOT NULL"
    ");"
    "CREATE INDEX jobs_by_state ON jobs (state, not_before);"
    "CREATE TABLE certs ("
    "  id INTEGER PRIMARY KEY,"
    "  csr_sha256 TEXT NOT NULL REFERENCES jobs (csr_sha256),"
    "  chain_pem TEXT NOT NULL,"
    "  not_after BIGINT NOT NULL,"
    "  issuer TEXT,"
    "  issued BIGINT NOT NULL"
    ");"
    "CREATE INDEX certs_by_csr ON certs (csr_sha256, not_after);"
    "CREATE TABLE dns_records ("
    "  id INTEGER PRIMARY KEY,"
    "  zone TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  created BIGINT NOT NULL"
    ");",
    /* 2: the issuer holding a job (NULL unless ACTIVE); revoked certificates */
    "ALTER TABLE jobs ADD COLUMN owner TEXT CHECK (length(owner) BETWEEN 1 AND 128);"
    "ALTER TABLE certs ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0 "
    "  CHECK (revoked IN (0, 1));",
    /* 3: the ACME CA of `acmera ca` (RFC 8555, RFC 9444); ids are random base64url */
    "CREATE TABLE ca_accounts ("
    "  id TEXT PRIMARY KEY,"
    "  jwk TEXT NOT NULL,"
    "  thumbprint TEXT NOT NULL UNIQUE,"
    "  status TEXT NOT NULL,"
    "  contact TEXT,"
    "  eab_kid TEXT UNIQUE,"
    "  created BIGINT NOT NULL"
    ");"
    "CREATE TABLE ca_authzs ("
    "  id TEXT PRIMARY KEY,"
    "  account TEXT NOT NULL REFERENCES ca_accounts (id),"
    "  name TEXT NOT NULL,"
    "  wildcard INTEGER NOT NULL DEFAULT 0 CHECK (wildcard IN (0, 1)),"
    "  subdomains INTEGER NOT NULL DEFAULT 0 CHECK (subdomains IN (0, 1)),"
    "  status TEXT NOT NULL,"
    "  expires BIGINT NOT NULL,"
    "  created BIGINT NOT NULL"
    ");"
    "CREATE INDEX ca_authzs_by_name ON ca_authzs (account, name, status);"
    "CREATE TABLE ca_challenges ("
    "  id TEXT PRIMARY KEY,"
    "  authz TEXT NOT NULL REFERENCES ca_authzs (id),"
    "  type TEXT NOT NULL,"
    "  token TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  validated BIGINT NOT NULL DEFAULT 0,"
    "  error TEXT"
    ");"
    "CREATE INDEX ca_challenges_by_authz ON ca_challenges (authz);"
    "CREATE TABLE ca_orders ("
    "  id TEXT PRIMARY KEY,"
    "  account TEXT NOT NULL REFERENCES ca_accounts (id),"
    "  status TEXT NOT NULL,"
    "  expires BIGINT NOT NULL,"
    "  identifiers TEXT NOT NULL,"
    "  cert TEXT,"
    "  error TEXT,"
    "  created BIGINT NOT NULL,"
    "  seq INTEGER NOT NULL"
    ");"
    "CREATE INDEX ca_orders_by_account ON ca_orders (account, seq);"
    "CREATE TABLE ca_order_authzs ("
    "  order_id TEXT NOT NULL REFERENCES ca_orders (id),"
    "  authz TEXT NOT NULL REFERENCES ca_authzs (id),"
    "  pos INTEGER NOT NULL,"
    "  PRIMARY KEY (order_id, authz)"
    ");"
    "CREATE INDEX ca_order_authzs_by_authz ON ca_order_authzs (authz);"
    "CREATE TABLE ca_certs ("
    "  id TEXT PRIMARY KEY,"
    "  account TEXT NOT NULL REFERENCES ca_accounts (id),"
    "  order_id TEXT NOT NULL REFERENCES ca_orders (id),"
    "  serial TEXT NOT NULL UNIQUE,"
    "  chain_pem TEXT NOT NULL,"
    "  not_after BIGINT NOT NULL,"
    "  revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),"
    "  reason INTEGER NOT NULL DEFAULT 0,"
    "  revoked_at BIGINT NOT NULL DEFAULT 0,"
    "  issued BIGINT NOT NULL"
    ");",
    /* 4: indexes for the lookups that scanned whole tables: a certificate by its
     * leaf (re-enrollment, revocation), the newest certificate (/cacerts), the
     * challenges a CA left in processing. leaf_sha256 of the rows already there
     * is filled in by backfill_leaf_digests. */
    "ALTER TABLE certs ADD COLUMN leaf_sha256 TEXT;"
    "CREATE INDEX certs_by_leaf ON certs (leaf_sha256);"
    "CREATE INDEX certs_by_issued ON certs (issued);"
    "CREATE INDEX ca_challenges_processing ON ca_challenges (status) "
    "  WHERE status = 'processing';",
    /* 5: the new key of an account key rollover, stored before the CA hears of it
     * (acme_account_rollover) and kept until it is known which key the CA holds */
    "ALTER TABLE accounts ADD COLUMN next_key_pem TEXT;",
};

#define N_STEPS ((int)(sizeof(steps) / sizeof(steps[0])))

int store_migrations_latest(void)
{
	return N_STEPS;
}

static int fail_db(sqlite3 *db, struct acmera_errmsg *e, const char *what)
{
	return acmera_fail(e, ACMERA_ERR_STORE, "schema %s: %s", what, sqlite3_errmsg(db));
}

static int read_version(sqlite3 *db, int *v, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = fail_db(db, e, "version");
		goto out;
	}
	*v = sqlite3_column_int(st, 0);
out:
	sqlite3_finalize(st);
	return rc;
}

static int exec(sqlite3 *db, const char *sql, struct acmera_errmsg *e, const char *what)
{
	char *msg = NULL;
	int rc = 0;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		rc = acmera_fail(e, ACMERA_ERR_STORE, "schema %s: %s", what,
		                 msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return rc;
}

/* Step 4's new column for the certificates stored before it. */
static int backfill_leaf_digests(sqlite3 *db, struct acmera_errmsg *e)
{
	sqlite3_stmt *rows = NULL, *set = NULL;
	int rc = 0, r;

	if (sqlite3_prepare_v2(db, "SELECT id, chain_pem FROM certs WHERE leaf_sha256 IS NULL", -1,
	                       &rows, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE certs SET leaf_sha256 = ?2 WHERE id = ?1", -1, &set,
	                       NULL) != SQLITE_OK) {
		rc = fail_db(db, e, "step 4 backfill");
		goto out;
	}
	while ((r = sqlite3_step(rows)) == SQLITE_ROW) {
		char hex[65];
		const char *pem = (const char *)sqlite3_column_text(rows, 1);
		if (!pem || store_leaf_digest(pem, hex) != 0)
			continue; /* no leaf block: the row stays unindexed, as before */
		sqlite3_reset(set);
		if (sqlite3_bind_int64(set, 1, sqlite3_column_int64(rows, 0)) != SQLITE_OK ||
		    sqlite3_bind_text(set, 2, hex, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_step(set) != SQLITE_DONE) {
			rc = fail_db(db, e, "step 4 backfill");
			goto out;
		}
	}
	if (r != SQLITE_DONE)
		rc = fail_db(db, e, "step 4 backfill");
out:
	sqlite3_finalize(rows);
	sqlite3_finalize(set);
	return rc;
}

int store_migrate(sqlite3 *db, int *version, struct acmera_errmsg *e)
{
	char pragma[48];
	int v = 0;
	int rc = read_version(db, &v, e);

	if (rc < 0)
		return rc;
	if (v == N_STEPS) {
		*version = v;
		return 0;
	}
	/* Re-read under the write lock: another process may have migrated meanwhile. */
	rc = exec(db, "BEGIN IMMEDIATE", e, "begin");
	if (rc < 0)
		return rc;
	rc = read_version(db, &v, e);
	if (rc < 0)
		goto out;
	if (v < 0 || v > N_STEPS) {
		rc = acmera_fail(e, ACMERA_ERR_STORE,
		                 "schema version %d is newer than this build knows (%d)", v,
		                 N_STEPS);
		goto out;
	}
	for (; v < N_STEPS; v++) {
		char what[32];
		snprintf(what, sizeof(what), "step %d", v + 1);
		rc = exec(db, steps[v], e, what);
		if (rc == 0 && v + 1 == STEP_LEAF_DIGESTS)
			rc = backfill_leaf_digests(db, e);
		if (rc < 0)
			goto out;
	}
	/* PRAGMA takes no bound parameter; the value is our own integer. */
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v);
	rc = exec(db, pragma, e, "set version");
	if (rc < 0)
		goto out;
	rc = exec(db, "COMMIT", e, "commit");
out:
	if (rc < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	*version = v;
	return 0;
}
