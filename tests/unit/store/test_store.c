/* Unit tests of the SQLite store, each on its own file in a fresh temp dir. */
#include "store/migrations.h"
#include "store/sqlite_internal.h"
#include "store/store.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "db_dir.h"
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#define T0 1700000000
#define DIR_URL "https://ca.test/dir"
/* Two issuers' claim tokens. */
#define OWNER_A "issuer-a.test:101:5f2c"
#define OWNER_B "issuer-b.test:202:9e41"

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct acmera_errmsg e = {{0}};

	assert_non_null(f);
	db_dir_make(f->dir, f->path, "store");
	if (store_open(f->path, &f->s, &e) != 0) {
		db_dir_remove(f->dir, f->path);
		fail_msg("store_open: %s", e.text);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[160];

	store_close(f->s);
	/* Left by a failed store_migrate_from_empty_database. */
	snprintf(p, sizeof(p), "%s/raw.db", f->dir);
	unlink(p);
	assert_int_equal(db_dir_remove(f->dir, f->path), 0);
	free(f);
	return 0;
}

static void reopen(struct fx *f)
{
	struct acmera_errmsg e = {{0}};
	store_close(f->s);
	f->s = NULL;
	if (store_open(f->path, &f->s, &e) != 0)
		fail_msg("store_open: %s", e.text);
}

/* A fake CSR: the store only hashes and keeps the bytes. */
static void fake_csr(int i, uint8_t der[32])
{
	memset(der, 0x30, 32);
	memcpy(der + 4, &i, sizeof(i));
}

static int64_t submit(struct store *s, int i, int64_t now, int *created)
{
	uint8_t der[32];
	int64_t id = 0;
	int c = -1;
	struct acmera_errmsg e = {{0}};

	fake_csr(i, der);
	if (store_job_submit(s, der, sizeof(der), "Dev1.IOT.example.com", now, &id, &c, &e) != 0)
		fail_msg("submit: %s", e.text);
	if (created)
		*created = c;
	return id;
}

/* Claims exactly one due job for owner and returns its id. */
static int64_t claim_one(struct store *s, const char *owner, int64_t now, int64_t lease)
{
	struct store_job *jobs = NULL;
	size_t n = 0;
	int64_t id;
	struct acmera_errmsg e = {{0}};

	if (store_job_claim(s, owner, now, lease, 1, &jobs, &n, &e) != 0)
		fail_msg("claim: %s", e.text);
	assert_int_equal(n, 1);
	assert_string_equal(jobs[0].owner, owner);
	id = jobs[0].id;
	store_jobs_free(jobs, n);
	return id;
}

static void digest_of(int i, char hex[65])
{
	uint8_t der[32];
	unsigned char md[32];
	unsigned int len = 0;

	fake_csr(i, der);
	assert_true(EVP_Digest(der, sizeof(der), md, &len, EVP_sha256(), NULL));
	for (unsigned int k = 0; k < len; k++)
		snprintf(hex + 2 * k, 3, "%02x", md[k]);
}

static int64_t pragma_int(const char *path, const char *sql_text, char *text, size_t tlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql_text, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	if (text)
		snprintf(text, tlen, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Runs SQL on the file through a connection of its own. */
static void exec_sql(const char *path, const char *sql_text)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	if (sqlite3_exec(db, sql_text, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql_text, msg);
	sqlite3_close(db);
}

/* ---- open, migrations ---- */

static void store_open_creates_private_wal_file_at_latest_version(void **state)
{
	struct fx *f = *state;
	struct stat sb;
	char mode[16];
	char wal[160];

	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_true(store_migrations_latest() >= 1);
	assert_int_equal(store_schema_version(f->s), store_migrations_latest());
	assert_int_equal(pragma_int(f->path, "PRAGMA user_version", NULL, 0),
	                 store_migrations_latest());
	pragma_int(f->path, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	/* The WAL file inherits the private mode. */
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(wal, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

/* The reader of lease_seen_elsewhere: this program run again as
 * "test_store --lease-of PATH ID", printing lease_until of job ID. */
static int print_lease(const char *path, const char *id)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = 1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_busy_timeout(db, 2000) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT lease_until FROM jobs WHERE id = ?1", -1, &st, NULL) ==
	        SQLITE_OK &&
	    sqlite3_bind_int64(st, 1, strtoll(id, NULL, 10)) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		printf("%lld\n", (long long)sqlite3_column_int64(st, 0));
		rc = 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db); /* as the last connection it would checkpoint and drop the WAL */
	return rc;
}

/* lease_until of job id as another process sees it: a new program image (a forked
 * child would share this one's SQLite lock bookkeeping), closing its connection
 * after the read. */
static int64_t lease_seen_elsewhere(const char *path, int64_t id)
{
	char ids[32], buf[64] = {0};
	int fds[2], status = 0;
	ssize_t got;
	pid_t pid;

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/proc/self/exe", "test_store", "--lease-of", path, ids, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	got = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(got > 0);
	return strtoll(buf, NULL, 10);
}

/* The issuer opens a second handle for its DNS worker thread: opening it must not
 * drop the first handle's file locks, or another process that closes its
 * connection takes the WAL away and the first handle's later commits are lost to
 * everyone else. */
static void store_second_handle_keeps_commits_visible_to_other_processes(void **state)
{
	struct fx *f = *state;
	struct store *s2 = NULL;
	int64_t rid = 0;
	int64_t id = submit(f->s, 1, T0, NULL);

	assert_int_equal(claim_one(f->s, OWNER_A, T0, 60), id);
	assert_int_equal(store_open(f->path, &s2, NULL), 0);
	assert_int_equal(store_dns_record_add(s2, "example.com", "_acme-challenge.example.com", "v",
	                                      T0, &rid, NULL),
	                 0);
	for (int64_t i = 1; i <= 3; i++) {
		assert_int_equal(store_job_renew_lease(f->s, id, OWNER_A, T0 + 100 * i, NULL), 0);
		assert_int_equal(lease_seen_elsewhere(f->path, id), T0 + 100 * i);
	}
	store_close(s2);
}

static void store_open_fails_in_missing_directory(void **state)
{
	struct fx *f = *state;
	struct store *s = (struct store *)1;
	struct acmera_errmsg e = {{0}};
	char p[160];

	snprintf(p, sizeof(p), "%s/nope/acmera.db", f->dir);
	assert_int_equal(store_open(p, &s, &e), ACMERA_ERR_IO);
	assert_null(s);
	assert_non_null(strstr(e.text, "nope"));
}

static void store_reopen_keeps_data_and_version(void **state)
{
	struct fx *f = *state;
	struct store_account a = {DIR_URL, "KEY", "https://ca.test/acct/1", "valid", NULL};
	struct store_account got;
	int created = -1;
	int64_t id = submit(f->s, 1, T0, &created);

	assert_int_equal(created, 1);
	assert_int_equal(store_account_put(f->s, &a, NULL), 0);
	reopen(f);
	assert_int_equal(store_schema_version(f->s), store_migrations_latest());
	assert_int_equal(store_account_get(f->s, DIR_URL, &got, NULL), 0);
	assert_string_equal(got.kid, "https://ca.test/acct/1");
	store_account_free(&got);
	assert_int_equal(submit(f->s, 1, T0 + 5, &created), id);
	assert_int_equal(created, 0);
}

static void store_migrate_twice_is_a_no_op(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = NULL;
	int v = -1;
	struct acmera_errmsg e = {{0}};

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(store_migrate(db, &v, &e), 0);
	assert_int_equal(v, store_migrations_latest());
	sqlite3_close(db);
}

static void store_migrate_from_empty_database(void **state)
{
	struct fx *f = *state;
	char p[160];
	sqlite3 *db = NULL;
	int v = -1;
	struct acmera_errmsg e = {{0}};

	snprintf(p, sizeof(p), "%s/raw.db", f->dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(store_migrate(db, &v, &e), 0);
	assert_int_equal(v, store_migrations_latest());
	assert_int_equal(
	    sqlite3_exec(db, "SELECT id, csr_sha256, lease_until FROM jobs", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(pragma_int(p, "PRAGMA user_version", NULL, 0), store_migrations_latest());
	unlink(p);
}

/* Schema version 1 exactly as released (migrations.c step 1), to prove that an
 * existing file moves to the newest version with its data. */
static const char v1_schema[] =
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
    ");";

/* A version-1 file as an older acmera left it: an account, a job an issuer held
 * when it stopped, a finished job with its certificate, a DNS record. */
static void write_v1_file(const char *path)
{
	static const char job_sql[] =
	    "INSERT INTO jobs (id, csr_sha256, csr_der, names, state, order_url, "
	    "lease_until, created, updated) "
	    "VALUES (?1, ?2, ?3, 'dev1.iot.example.com', ?4, ?5, ?6, ?7, ?7)";
	static const char cert_sql[] =
	    "INSERT INTO certs (csr_sha256, chain_pem, not_after, issuer, issued) "
	    "VALUES (?1, 'V1CHAIN', ?2, 'CN=CA', ?3)";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint8_t der[32];
	char hex[65];

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "INSERT INTO accounts VALUES ('" DIR_URL "', 'KEY', "
	                              "'https://ca.test/acct/1', 'valid');"
	                              "INSERT INTO dns_records (zone, name, value, created) VALUES "
	                              "('example.com', '_acme-challenge.a.example.com', 'tok', 1);"
	                              "PRAGMA user_version = 1;",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, job_sql, -1, &st, NULL), SQLITE_OK);
	for (int i = 1; i <= 2; i++) {
		fake_csr(i, der);
		digest_of(i, hex);
		sqlite3_bind_int(st, 1, i);
		sqlite3_bind_text(st, 2, hex, -1, SQLITE_TRANSIENT);
		sqlite3_bind_blob(st, 3, der, sizeof(der), SQLITE_TRANSIENT);
		/* 1: ACTIVE with a lease until T0 + 60; 2: DONE. */
		sqlite3_bind_int(st, 4, i == 1 ? JOB_ACTIVE : JOB_DONE);
		sqlite3_bind_text(st, 5, "https://ca.test/order/1", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, i == 1 ? T0 + 60 : 0);
		sqlite3_bind_int64(st, 7, T0 + i);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, cert_sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, T0 + 86400);
	sqlite3_bind_int64(st, 3, T0 + 2);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* The store of f closed, its files gone, and a version 1 file in their place. */
static void replace_with_v1_file(struct fx *f)
{
	static const char *const sfx[] = {"", "-wal", "-shm"};
	char p[160];

	store_close(f->s);
	f->s = NULL;
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	write_v1_file(f->path);
}

static void store_migrates_version_1_file_keeping_data(void **state)
{
	struct fx *f = *state;
	struct store_account a;
	struct store_job j;
	struct store_cert c;
	struct store_dns_record *r = NULL;
	size_t n = 0;
	int created = -1;
	char hex[65];

	replace_with_v1_file(f);
	assert_int_equal(pragma_int(f->path, "PRAGMA user_version", NULL, 0), 1);
	reopen(f);
	assert_true(store_migrations_latest() >= 2);
	assert_int_equal(store_schema_version(f->s), store_migrations_latest());
	assert_int_equal(pragma_int(f->path, "PRAGMA user_version", NULL, 0),
	                 store_migrations_latest());

	assert_int_equal(store_account_get(f->s, DIR_URL, &a, NULL), 0);
	assert_string_equal(a.key_pem, "KEY");
	assert_string_equal(a.kid, "https://ca.test/acct/1");
	store_account_free(&a);
	assert_int_equal(store_dns_record_list(f->s, &r, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(r[0].value, "tok");
	store_dns_records_free(r, n);

	/* The old certificate is not revoked and still served; its job stays DONE. */
	digest_of(2, hex);
	assert_int_equal(store_cert_lookup(f->s, hex, T0, &c, NULL), 0);
	assert_string_equal(c.chain_pem, "V1CHAIN");
	store_cert_free(&c);
	assert_int_equal(pragma_int(f->path, "SELECT revoked FROM certs", NULL, 0), 0);
	assert_int_equal(submit(f->s, 2, T0 + 10, &created), 2);
	assert_int_equal(created, 0);
	assert_int_equal(store_job_get(f->s, 2, &j, NULL), 0);
	assert_int_equal(j.state, JOB_DONE);
	store_job_free(&j);

	/* The job held by an old issuer has no owner: nobody new can finish it while
	 * its lease runs, and it is taken over once the lease lapses. */
	assert_int_equal(store_job_get(f->s, 1, &j, NULL), 0);
	assert_int_equal(j.state, JOB_ACTIVE);
	assert_null(j.owner);
	assert_string_equal(j.order_url, "https://ca.test/order/1");
	assert_int_equal(j.created, T0 + 1);
	store_job_free(&j);
	assert_int_equal(store_job_complete(f->s, 1, OWNER_A, "X", T0 + 86400, NULL, NULL),
	                 ACMERA_ERR_NOTFOUND);
	assert_int_equal(claim_one(f->s, OWNER_A, T0 + 61, 60), 1);
	assert_int_equal(store_job_complete(f->s, 1, OWNER_A, "NEW", T0 + 86400, NULL, NULL), 0);
	digest_of(1, hex);
	assert_int_equal(store_cert_lookup(f->s, hex, T0 + 61, &c, NULL), 0);
	assert_string_equal(c.chain_pem, "NEW");
	store_cert_free(&c);
}

static void store_refuses_schema_newer_than_build(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = NULL;
	struct store *s = NULL;
	struct acmera_errmsg e = {{0}};

	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, &s, &e), ACMERA_ERR_STORE);
	assert_null(s);
	assert_non_null(strstr(e.text, "newer"));
}

/* ---- accounts ---- */

static void account_put_get_and_replace(void **state)
{
	struct fx *f = *state;
	struct store_account a = {DIR_URL, "KEY1", NULL, "valid", NULL};
	struct store_account got;
	struct acmera_errmsg e = {{0}};

	assert_int_equal(store_account_get(f->s, DIR_URL, &got, &e), ACMERA_ERR_NOTFOUND);
	assert_int_equal(store_account_put(f->s, &a, &e), 0);
	assert_int_equal(store_account_get(f->s, DIR_URL, &got, &e), 0);
	assert_string_equal(got.directory, DIR_URL);
	assert_string_equal(got.key_pem, "KEY1");
	assert_null(got.kid);
	assert_string_equal(got.status, "valid");
	assert_null(got.next_key_pem);
	store_account_free(&got);

	/* A rollover's key, pending, then cleared again. */
	a.next_key_pem = "KEY-NEXT";
	assert_int_equal(store_account_put(f->s, &a, &e), 0);
	assert_int_equal(store_account_get(f->s, DIR_URL, &got, &e), 0);
	assert_string_equal(got.key_pem, "KEY1");
	assert_string_equal(got.next_key_pem, "KEY-NEXT");
	store_account_free(&got);
	a.next_key_pem = NULL;

	a.key_pem = "KEY2";
	a.kid = "https://ca.test/acct/7";
	a.status = "deactivated";
	assert_int_equal(store_account_put(f->s, &a, &e), 0);
	assert_int_equal(store_account_get(f->s, DIR_URL, &got, &e), 0);
	assert_string_equal(got.key_pem, "KEY2");
	assert_string_equal(got.kid, "https://ca.test/acct/7");
	assert_string_equal(got.status, "deactivated");
	assert_null(got.next_key_pem);
	store_account_free(&got);

	assert_int_equal(store_account_get(f->s, "https://other.test/dir", &got, &e),
	                 ACMERA_ERR_NOTFOUND);
}

/* ---- authorizations ---- */

static void put_authz(struct store *s, const char *domain, const char *status, int sub,
                      int64_t expires)
{
	struct store_authz a = {DIR_URL, (char *)domain, "https://ca.test/authz/x", (char *)status,
	                        sub,     expires};
	struct acmera_errmsg e = {{0}};
	if (store_authz_put(s, &a, &e) != 0)
		fail_msg("authz put: %s", e.text);
}

static int covering(struct store *s, const char *name, int64_t margin, char *domain, size_t n)
{
	struct store_authz a;
	int rc = store_authz_find_covering(s, DIR_URL, name, T0, margin, &a, NULL);
	if (rc == 0 && domain)
		snprintf(domain, n, "%s", a.domain);
	store_authz_free(&a);
	return rc;
}

static void authz_exact_match_covers_case_insensitively(void **state)
{
	struct fx *f = *state;
	struct store_authz got;
	char d[64];

	put_authz(f->s, "Host.Example.COM", "valid", 0, T0 + 3600);
	assert_int_equal(covering(f->s, "host.example.com", 0, d, sizeof(d)), 0);
	assert_string_equal(d, "host.example.com");
	assert_int_equal(covering(f->s, "HOST.example.com.", 0, NULL, 0), 0);
	assert_int_equal(store_authz_get(f->s, DIR_URL, "HOST.EXAMPLE.COM", &got, NULL), 0);
	assert_string_equal(got.domain, "host.example.com");
	assert_int_equal(got.expires, T0 + 3600);
	assert_int_equal(got.subdomains, 0);
	store_authz_free(&got);
	/* Without subdomains, an exact authorization covers no child. */
	assert_int_equal(covering(f->s, "a.host.example.com", 0, NULL, 0), ACMERA_ERR_NOTFOUND);
}

static void authz_ancestor_with_subdomains_covers_descendants(void **state)
{
	struct fx *f = *state;
	char d[64];

	put_authz(f->s, "example.com", "valid", 1, 0); /* expires unknown: valid */
	assert_int_equal(covering(f->s, "dev1.iot.example.com", 0, d, sizeof(d)), 0);
	assert_string_equal(d, "example.com");
	assert_int_equal(covering(f->s, "example.com", 0, d, sizeof(d)), 0);
	/* The most specific authorization wins. */
	put_authz(f->s, "iot.example.com", "valid", 1, T0 + 100);
	assert_int_equal(covering(f->s, "dev1.iot.example.com", 0, d, sizeof(d)), 0);
	assert_string_equal(d, "iot.example.com");
}

static void authz_ancestor_without_subdomains_does_not_cover(void **state)
{
	struct fx *f = *state;

	put_authz(f->s, "example.com", "valid", 0, T0 + 3600);
	assert_int_equal(covering(f->s, "dev1.example.com", 0, NULL, 0), ACMERA_ERR_NOTFOUND);
	assert_int_equal(covering(f->s, "example.com", 0, NULL, 0), 0);
}

static void authz_expired_or_within_margin_does_not_cover(void **state)
{
	struct fx *f = *state;

	put_authz(f->s, "example.com", "valid", 1, T0 - 1);
	assert_int_equal(covering(f->s, "a.example.com", 0, NULL, 0), ACMERA_ERR_NOTFOUND);
	assert_int_equal(covering(f->s, "example.com", 0, NULL, 0), ACMERA_ERR_NOTFOUND);
	put_authz(f->s, "example.com", "valid", 1, T0 + 600);
	assert_int_equal(covering(f->s, "a.example.com", 300, NULL, 0), 0);
	assert_int_equal(covering(f->s, "a.example.com", 600, NULL, 0), ACMERA_ERR_NOTFOUND);
}

static void authz_not_valid_does_not_cover(void **state)
{
	struct fx *f = *state;
	struct store_authz a;

	put_authz(f->s, "example.com", "pending", 1, 0);
	assert_int_equal(covering(f->s, "a.example.com", 0, NULL, 0), ACMERA_ERR_NOTFOUND);
	assert_int_equal(covering(f->s, "example.com", 0, NULL, 0), ACMERA_ERR_NOTFOUND);
	/* Still readable whatever its status. */
	assert_int_equal(store_authz_get(f->s, DIR_URL, "example.com", &a, NULL), 0);
	assert_string_equal(a.status, "pending");
	store_authz_free(&a);
	/* Another directory's authorization counts for nothing here. */
	struct store_authz o = {"https://other.test/dir", "other.com", NULL, "valid", 1, 0};
	assert_int_equal(store_authz_put(f->s, &o, NULL), 0);
	assert_int_equal(covering(f->s, "a.other.com", 0, NULL, 0), ACMERA_ERR_NOTFOUND);
}

static void authz_sibling_label_does_not_cover(void **state)
{
	struct fx *f = *state;

	put_authz(f->s, "xexample.com", "valid", 1, 0);
	assert_int_equal(covering(f->s, "a.example.com", 0, NULL, 0), ACMERA_ERR_NOTFOUND);
	assert_int_equal(covering(f->s, "example.com", 0, NULL, 0), ACMERA_ERR_NOTFOUND);
	assert_int_equal(covering(f->s, "a.xexample.com", 0, NULL, 0), 0);
	/* An underscore in a name is no wildcard. */
	put_authz(f->s, "a_b.com", "valid", 1, 0);
	assert_int_equal(covering(f->s, "x.axb.com", 0, NULL, 0), ACMERA_ERR_NOTFOUND);
}

static void authz_find_rejects_bad_names(void **state)
{
	struct fx *f = *state;
	char longname[300];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(covering(f->s, "", 0, NULL, 0), ACMERA_ERR_INVAL);
	assert_int_equal(covering(f->s, longname, 0, NULL, 0), ACMERA_ERR_INVAL);
}

/* ---- jobs ---- */

static void job_submit_same_csr_joins_existing_job(void **state)
{
	struct fx *f = *state;
	struct store_job j;
	char hex[65];
	int created = -1;
	int64_t id1 = submit(f->s, 1, T0, &created);

	assert_int_equal(created, 1);
	assert_int_equal(submit(f->s, 1, T0 + 10, &created), id1);
	assert_int_equal(created, 0);
	assert_int_not_equal(submit(f->s, 2, T0, &created), id1);
	assert_int_equal(created, 1);

	digest_of(1, hex);
	assert_int_equal(store_job_get_by_digest(f->s, hex, &j, NULL), 0);
	assert_int_equal(j.id, id1);
	assert_string_equal(j.csr_sha256, hex);
	assert_int_equal(j.csr_der_len, 32);
	assert_string_equal(j.names, "dev1.iot.example.com");
	assert_int_equal(j.state, JOB_PENDING);
	assert_int_equal(j.created, T0);
	assert_null(j.order_url);
	assert_null(j.reason);
	store_job_free(&j);
	assert_int_equal(store_job_get(f->s, 9999, &j, NULL), ACMERA_ERR_NOTFOUND);
}

static int job_exists(struct store *s, int i)
{
	char hex[65];
	struct store_job j;
	digest_of(i, hex);
	int rc = store_job_get_by_digest(s, hex, &j, NULL);
	if (rc == 0)
		store_job_free(&j);
	return rc == 0;
}

/* A batch: one commit for many changes, seen by other handles only after it, and
 * a change that fails inside it is undone alone. */
static void batch_commits_once_and_keeps_failed_changes_out(void **state)
{
	struct fx *f = *state;
	struct store *s2 = NULL;
	struct acmera_errmsg e = {{0}};
	uint8_t der[32];
	int64_t id = 0;
	int created = 0;

	exec_sql(f->path, "CREATE TRIGGER boom BEFORE INSERT ON jobs WHEN NEW.names = "
	                  "'boom.example.com' BEGIN SELECT RAISE(ABORT, 'boom'); END");
	assert_int_equal(store_open(f->path, &s2, NULL), 0);
	assert_int_equal(store_batch_end(f->s, &e), ACMERA_ERR_INVAL);
	assert_int_equal(store_batch_begin(f->s, NULL), 0);
	assert_int_equal(store_batch_begin(f->s, &e), ACMERA_ERR_INVAL);
	submit(f->s, 1, T0, NULL);
	fake_csr(2, der);
	assert_int_equal(
	    store_job_submit(f->s, der, sizeof(der), "boom.example.com", T0, &id, &created, &e),
	    ACMERA_ERR_STORE);
	assert_non_null(strstr(e.text, "boom"));
	submit(f->s, 3, T0, NULL);
	assert_true(job_exists(f->s, 1));
	assert_false(job_exists(f->s, 2));
	assert_false(job_exists(s2, 1)); /* not committed yet */
	assert_int_equal(store_batch_end(f->s, NULL), 0);
	assert_true(job_exists(s2, 1));
	assert_false(job_exists(s2, 2));
	assert_true(job_exists(s2, 3));
	/* Outside a batch each change commits by itself again. */
	submit(f->s, 4, T0, NULL);
	assert_true(job_exists(s2, 4));
	/* A batch never ended (a crash, or a close) leaves nothing. */
	assert_int_equal(store_batch_begin(f->s, NULL), 0);
	submit(f->s, 5, T0, NULL);
	reopen(f);
	assert_false(job_exists(f->s, 5));
	assert_false(job_exists(s2, 5));
	store_close(s2);
}

/* An open batch holds no lock before its first change, and a job it finishes is
 * counted for waiters (store_jobs_finished_here) only when it commits. */
static void batch_locks_late_and_counts_finished_jobs_at_commit(void **state)
{
	struct fx *f = *state;
	struct store *s2 = NULL;
	assert_int_equal(store_open(f->path, &s2, NULL), 0);
	assert_int_equal(store_batch_begin(f->s, NULL), 0);
	int64_t id = submit(s2, 1, T0, NULL); /* not kept waiting by f->s */
	assert_int_equal(claim_one(f->s, OWNER_A, T0 + 1, 60), id);
	uint64_t finished = store_jobs_finished_here();
	assert_int_equal(store_job_set_order(f->s, id, OWNER_A, "https://ca.test/o/1", NULL), 0);
	assert_int_equal(store_job_fail(f->s, id, OWNER_A, "refused", NULL), 0);
	assert_int_equal(store_jobs_finished_here(), finished);
	assert_int_equal(store_batch_end(f->s, NULL), 0);
	assert_int_equal(store_jobs_finished_here(), finished + 1);
	struct store_job j;
	assert_int_equal(store_job_get(s2, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_FAILED);
	assert_string_equal(j.order_url, "https://ca.test/o/1");
	store_job_free(&j);
	store_close(s2);
}

static int sync_level(struct store *s)
{
	sqlite3_stmt *st = NULL;
	assert_int_equal(
	    sqlite3_prepare_v2(store_sqlite_db(s), "PRAGMA synchronous", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* A batch begun with store_batch_begin_nosync commits at NORMAL (no sync at its
 * COMMIT) and leaves the handle at FULL for every other commit; the log can be
 * synced through store_wal_open's descriptor. */
static void nosync_batch_commits_and_restores_full_sync(void **state)
{
	struct fx *f = *state;
	struct store *s2 = NULL;
	assert_int_equal(store_open(f->path, &s2, NULL), 0);
	assert_int_equal(sync_level(f->s), 2);
	assert_int_equal(store_batch_begin_nosync(f->s, NULL), 0);
	submit(f->s, 1, T0, NULL);
	assert_int_equal(sync_level(f->s), 1);
	assert_false(job_exists(s2, 1));
	assert_int_equal(store_batch_end(f->s, NULL), 0);
	assert_true(job_exists(s2, 1));
	assert_int_equal(sync_level(f->s), 2);
	/* An empty one changes nothing. */
	assert_int_equal(store_batch_begin_nosync(f->s, NULL), 0);
	assert_int_equal(store_batch_end(f->s, NULL), 0);
	assert_int_equal(sync_level(f->s), 2);
	/* A plain batch after it syncs as usual. */
	assert_int_equal(store_batch_begin(f->s, NULL), 0);
	submit(f->s, 2, T0, NULL);
	assert_int_equal(sync_level(f->s), 2);
	assert_int_equal(store_batch_end(f->s, NULL), 0);
	int fd = store_wal_open(f->s, NULL);
	assert_true(fd >= 0);
	assert_int_equal(fdatasync(fd), 0);
	store_close(s2);
	close(fd);
}

/* A lazy batch commits at NORMAL until it stores a certificate: what it held by
 * then is committed at once (other handles see it), and the rest, the
 * certificate included, at FULL with the batch's end, which syncs both. */
static void lazy_batch_syncs_from_its_first_certificate(void **state)
{
	struct fx *f = *state;
	struct store *s2 = NULL;
	struct store_job j;
	assert_int_equal(store_open(f->path, &s2, NULL), 0);
	int64_t a = submit(s2, 1, T0, NULL), b = submit(s2, 2, T0, NULL);
	assert_int_equal(store_batch_begin_lazy(f->s, NULL), 0);
	assert_int_equal(claim_one(f->s, OWNER_A, T0 + 1, 60), a);
	assert_int_equal(claim_one(f->s, OWNER_A, T0 + 1, 60), b);
	assert_int_equal(sync_level(f->s), 1);
	assert_int_equal(store_job_set_order(f->s, a, OWNER_A, "https://ca.test/o/1", NULL), 0);
	assert_int_equal(store_job_fail(f->s, b, OWNER_A, "refused", NULL), 0);
	assert_int_equal(store_job_get(s2, b, &j, NULL), 0);
	assert_int_equal(j.state, JOB_PENDING); /* nothing committed yet */
	store_job_free(&j);
	uint64_t finished = store_jobs_finished_here();
	assert_int_equal(store_job_complete(f->s, a, OWNER_A, "PEM", T0 + 1000, "CN=CA", NULL), 0);
	/* The part before the certificate is committed, and its failure counted. */
	assert_int_equal(store_job_get(s2, b, &j, NULL), 0);
	assert_int_equal(j.state, JOB_FAILED);
	store_job_free(&j);
	assert_int_equal(store_jobs_finished_here(), finished + 1);
	assert_int_equal(store_job_get(s2, a, &j, NULL), 0);
	assert_int_equal(j.state, JOB_ACTIVE); /* the certificate's part is not */
	assert_string_equal(j.order_url, "https://ca.test/o/1");
	store_job_free(&j);
	assert_int_equal(sync_level(f->s), 2);
	assert_int_equal(store_batch_end(f->s, NULL), 0);
	assert_int_equal(store_job_get(s2, a, &j, NULL), 0);
	assert_int_equal(j.state, JOB_DONE);
	store_job_free(&j);
	assert_int_equal(store_jobs_finished_here(), finished + 2);
	assert_int_equal(sync_level(f->s), 2);
	/* A lazy batch without a certificate ends at NORMAL and restores FULL. */
	assert_int_equal(store_batch_begin_lazy(f->s, NULL), 0);
	submit(f->s, 3, T0, NULL);
	assert_int_equal(sync_level(f->s), 1);
	assert_int_equal(store_batch_end(f->s, NULL), 0);
	assert_true(job_exists(s2, 3));
	assert_int_equal(sync_level(f->s), 2);
	store_close(s2);
}

static void job_submit_resets_failed_job(void **state)
{
	struct fx *f = *state;
	struct store_job j;
	int created = -1;
	int64_t id = submit(f->s, 1, T0, NULL);

	assert_int_equal(store_job_defer(f->s, id, NULL, T0 + 60, "busy", NULL), 0);
	assert_int_equal(claim_one(f->s, OWNER_A, T0 + 60, 60), id);
	assert_int_equal(store_job_set_order(f->s, id, OWNER_A, "https://ca.test/order/1", NULL),
	                 0);
	assert_int_equal(store_job_fail(f->s, id, OWNER_A, "rejected", NULL), 0);
	assert_int_equal(submit(f->s, 1, T0 + 100, &created), id);
	assert_int_equal(created, 0);
	assert_int_equal(store_job_get(f->s, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_PENDING);
	assert_int_equal(j.attempts, 0);
	assert_null(j.reason);
	assert_null(j.order_url);
	assert_int_equal(j.not_before, T0 + 100);
	assert_null(j.owner);
	store_job_free(&j);
}

static void job_submit_reissues_done_job_whose_cert_expired(void **state)
{
	struct fx *f = *state;
	struct store_job j;
	int created = -1;
	int64_t id = submit(f->s, 1, T0, NULL);

	assert_int_equal(claim_one(f->s, OWNER_A, T0, 60), id);
	assert_int_equal(store_job_complete(f->s, id, OWNER_A, "PEM", T0 + 1000, "CN=CA", NULL), 0);
	/* Certificate still valid: join, stay DONE. */
	assert_int_equal(submit(f->s, 1, T0 + 500, &created), id);
	assert_int_equal(created, 0);
	assert_int_equal(store_job_get(f->s, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_DONE);
	store_job_free(&j);
	/* Expired: back to PENDING for a new certificate. */
	assert_int_equal(submit(f->s, 1, T0 + 1000, &created), id);
	assert_int_equal(created, 0);
	assert_int_equal(store_job_get(f->s, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_PENDING);
	store_job_free(&j);
}

static void job_submit_rejects_empty_csr(void **state)
{
	struct fx *f = *state;
	int64_t id = 5;
	int created = 5;
	uint8_t b = 0;

	assert_int_equal(store_job_submit(f->s, &b, 0, "a", T0, &id, &created, NULL),
	                 ACMERA_ERR_INVAL);
	assert_int_equal(id, 0);
	assert_int_equal(created, 0);
}

static void job_claim_respects_not_before_and_order(void **state)
{
	struct fx *f = *state;
	struct store_job *jobs = NULL;
	size_t n = 0;
	int64_t a = submit(f->s, 1, T0, NULL);
	int64_t b = submit(f->s, 2, T0 + 1, NULL);
	int64_t c = submit(f->s, 3, T0 + 2, NULL);

	assert_int_equal(store_job_defer(f->s, a, NULL, T0 + 100, "later", NULL), 0);
	assert_int_equal(store_job_claim(f->s, OWNER_A, T0 + 10, 600, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_int_equal(jobs[0].id, b);
	assert_int_equal(jobs[1].id, c);
	assert_int_equal(jobs[0].state, JOB_ACTIVE);
	assert_int_equal(jobs[0].lease_until, T0 + 610);
	assert_int_equal(jobs[1].csr_der_len, 32);
	store_jobs_free(jobs, n);
	/* Nothing else is due yet. */
	assert_int_equal(store_job_claim(f->s, OWNER_A, T0 + 50, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_null(jobs);
	/* a becomes due, with its attempt counted and reason kept. */
	assert_int_equal(store_job_claim(f->s, OWNER_A, T0 + 100, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].id, a);
	assert_int_equal(jobs[0].attempts, 1);
	assert_string_equal(jobs[0].reason, "later");
	store_jobs_free(jobs, n);
}

static void job_claim_takes_at_most_max_oldest_first(void **state)
{
	struct fx *f = *state;
	/* Ages that follow neither id order nor its reverse. */
	static const int age[12] = {5, 3, 9, 0, 8, 4, 10, 1, 7, 2, 11, 6};
	static const int oldest[5] = {3, 7, 9, 1, 5};
	struct store_job *jobs = NULL;
	size_t n = 0;
	int64_t ids[12];

	for (int i = 0; i < 12; i++)
		ids[i] = submit(f->s, i, T0 + age[i], NULL);
	assert_int_equal(store_job_claim(f->s, OWNER_A, T0 + 20, 60, 5, &jobs, &n, NULL), 0);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(jobs[i].id, ids[oldest[i]]);
	store_jobs_free(jobs, n);
	assert_int_equal(store_job_claim(f->s, OWNER_A, T0 + 20, 60, 0, &jobs, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_null(jobs);
	assert_int_equal(store_job_claim(f->s, OWNER_B, T0 + 20, 60, 100, &jobs, &n, NULL), 0);
	assert_int_equal(n, 7);
	store_jobs_free(jobs, n);
}

static void job_claim_reclaims_expired_lease_only(void **state)
{
	struct fx *f = *state;
	struct store_job *jobs = NULL;
	size_t n = 0;
	int64_t id = submit(f->s, 1, T0, NULL);

	assert_int_equal(store_job_claim(f->s, OWNER_A, T0, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	store_jobs_free(jobs, n);
	/* Lease held: nobody else gets it, up to and including lease_until. */
	assert_int_equal(store_job_claim(f->s, OWNER_B, T0 + 60, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 0);
	/* A renewed lease keeps it. */
	assert_int_equal(store_job_renew_lease(f->s, id, OWNER_A, T0 + 200, NULL), 0);
	assert_int_equal(store_job_claim(f->s, OWNER_B, T0 + 100, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 0);
	/* The issuer died: the lease lapses and another claims it. */
	assert_int_equal(store_job_claim(f->s, OWNER_B, T0 + 201, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].id, id);
	assert_int_equal(jobs[0].lease_until, T0 + 261);
	assert_string_equal(jobs[0].owner, OWNER_B);
	store_jobs_free(jobs, n);
}

static void job_claim_two_handles_never_share_a_job(void **state)
{
	struct fx *f = *state;
	struct store *s2 = NULL;
	struct store_job *jobs = NULL;
	size_t n = 0, total = 0;
	int seen[40] = {0};
	int64_t first = 0;

	for (int i = 0; i < 40; i++) {
		int64_t id = submit(f->s, i, T0 + i, NULL);
		if (i == 0)
			first = id;
	}
	assert_int_equal(store_open(f->path, &s2, NULL), 0);
	for (int round = 0; total < 40 && round < 100; round++) {
		struct store *s = round % 2 ? s2 : f->s;
		const char *owner = round % 2 ? OWNER_B : OWNER_A;
		assert_int_equal(store_job_claim(s, owner, T0 + 100, 600, 3, &jobs, &n, NULL), 0);
		for (size_t i = 0; i < n; i++) {
			int64_t k = jobs[i].id - first;
			assert_true(k >= 0 && k < 40);
			assert_int_equal(seen[k], 0);
			seen[k] = round % 2 + 1;
		}
		total += n;
		store_jobs_free(jobs, n);
	}
	assert_int_equal(total, 40);
	for (int i = 0; i < 40; i++)
		assert_int_not_equal(seen[i], 0);
	store_close(s2);
}

/* Several processes claim at once from one file: every job is claimed once. */
static void job_claim_concurrent_processes_never_share_a_job(void **state)
{
	struct fx *f = *state;
	enum { JOBS = 60, PROCS = 3 };
	int fds[2];
	pid_t pids[PROCS];
	int seen[JOBS] = {0};
	int64_t first = 0, id;
	size_t total = 0;

	for (int i = 0; i < JOBS; i++) {
		id = submit(f->s, i, T0, NULL);
		if (i == 0)
			first = id;
	}
	/* No connection is carried across fork. */
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(pipe(fds), 0);
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0) {
			struct store *s = NULL;
			struct store_job *jobs = NULL;
			size_t n = 0;
			int bad = 0;
			char owner[32];
			snprintf(owner, sizeof(owner), "test:%d", (int)getpid());
			close(fds[0]);
			if (store_open(f->path, &s, NULL) != 0)
				_exit(2);
			do {
				if (store_job_claim(s, owner, T0 + 1, 600, 1, &jobs, &n, NULL)) {
					bad = 1;
					break;
				}
				for (size_t i = 0; i < n; i++)
					if (write(fds[1], &jobs[i].id, sizeof(int64_t)) !=
					    sizeof(int64_t))
						bad = 1;
				store_jobs_free(jobs, n);
			} while (n > 0);
			store_close(s);
			close(fds[1]);
			_exit(bad);
		}
	}
	close(fds[1]);
	while (read(fds[0], &id, sizeof(id)) == sizeof(id)) {
		int64_t k = id - first;
		assert_true(k >= 0 && k < JOBS);
		assert_int_equal(seen[k], 0);
		seen[k] = 1;
		total++;
	}
	close(fds[0]);
	for (int p = 0; p < PROCS; p++) {
		int st = -1;
		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_int_equal(total, JOBS);
	reopen(f);
}

static void job_defer_fail_complete_move_states(void **state)
{
	struct fx *f = *state;
	struct store_job j;
	struct store_cert c;
	struct store_job *jobs = NULL;
	size_t n = 0;
	int64_t counts[4];
	char hex[65];
	int64_t a = submit(f->s, 1, T0, NULL);
	int64_t b = submit(f->s, 2, T0, NULL);
	int64_t c3 = submit(f->s, 3, T0, NULL);

	assert_int_equal(store_job_claim(f->s, OWNER_A, T0, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 3);
	store_jobs_free(jobs, n);

	assert_int_equal(store_job_defer(f->s, a, OWNER_A, T0 + 30, "rate limited", NULL), 0);
	assert_int_equal(claim_one(f->s, OWNER_A, T0 + 30, 60), a);
	assert_int_equal(store_job_defer(f->s, a, OWNER_A, T0 + 90, "rate limited again", NULL), 0);
	assert_int_equal(store_job_get(f->s, a, &j, NULL), 0);
	assert_int_equal(j.state, JOB_PENDING);
	assert_int_equal(j.attempts, 2);
	assert_int_equal(j.not_before, T0 + 90);
	assert_int_equal(j.lease_until, 0);
	assert_string_equal(j.reason, "rate limited again");
	assert_null(j.owner);
	store_job_free(&j);

	assert_int_equal(store_job_fail(f->s, b, OWNER_A, "CA refused", NULL), 0);
	assert_int_equal(store_job_get(f->s, b, &j, NULL), 0);
	assert_int_equal(j.state, JOB_FAILED);
	assert_string_equal(j.reason, "CA refused");
	assert_null(j.owner);
	store_job_free(&j);

	assert_int_equal(store_job_set_order(f->s, c3, OWNER_A, "https://ca.test/order/3", NULL),
	                 0);
	assert_int_equal(
	    store_job_complete(f->s, c3, OWNER_A, "LEAF\nCHAIN\n", T0 + 86400, "CN=Test CA", NULL),
	    0);
	assert_int_equal(store_job_get(f->s, c3, &j, NULL), 0);
	assert_int_equal(j.state, JOB_DONE);
	assert_int_equal(j.lease_until, 0);
	assert_string_equal(j.order_url, "https://ca.test/order/3");
	assert_null(j.owner);
	store_job_free(&j);
	digest_of(3, hex);
	assert_int_equal(store_cert_lookup(f->s, hex, T0, &c, NULL), 0);
	assert_string_equal(c.chain_pem, "LEAF\nCHAIN\n");
	assert_string_equal(c.issuer, "CN=Test CA");
	assert_string_equal(c.csr_sha256, hex);
	assert_int_equal(c.not_after, T0 + 86400);
	store_cert_free(&c);

	/* A late issuer cannot drag a finished job back, not even by hand. */
	assert_int_equal(store_job_defer(f->s, c3, OWNER_A, T0, "late", NULL), ACMERA_ERR_NOTFOUND);
	assert_int_equal(store_job_defer(f->s, c3, NULL, T0, "late", NULL), ACMERA_ERR_NOTFOUND);
	assert_int_equal(store_job_defer(f->s, b, NULL, T0, "late", NULL), ACMERA_ERR_NOTFOUND);
	assert_int_equal(store_job_fail(f->s, c3, OWNER_A, "late", NULL), ACMERA_ERR_NOTFOUND);
	assert_int_equal(store_job_renew_lease(f->s, a, OWNER_A, T0 + 500, NULL),
	                 ACMERA_ERR_NOTFOUND);
	assert_int_equal(store_job_complete(f->s, 9999, OWNER_A, "X", T0, NULL, NULL),
	                 ACMERA_ERR_NOTFOUND);
	assert_int_equal(store_job_set_order(f->s, 9999, OWNER_A, "u", NULL), ACMERA_ERR_NOTFOUND);

	assert_int_equal(store_job_counts(f->s, counts, NULL), 0);
	assert_int_equal(counts[JOB_PENDING], 1);
	assert_int_equal(counts[JOB_ACTIVE], 0);
	assert_int_equal(counts[JOB_DONE], 1);
	assert_int_equal(counts[JOB_FAILED], 1);
}

static void job_claim_records_owner_and_finishing_clears_it(void **state)
{
	struct fx *f = *state;
	struct store_job j;
	int64_t a = submit(f->s, 1, T0, NULL);
	int64_t b = submit(f->s, 2, T0 + 1, NULL);
	int64_t c = submit(f->s, 3, T0 + 2, NULL);

	assert_int_equal(store_job_get(f->s, a, &j, NULL), 0);
	assert_null(j.owner);
	store_job_free(&j);
	assert_int_equal(claim_one(f->s, OWNER_A, T0 + 10, 60), a);
	assert_int_equal(store_job_get(f->s, a, &j, NULL), 0);
	assert_string_equal(j.owner, OWNER_A);
	store_job_free(&j);
	assert_int_equal(store_job_defer(f->s, a, OWNER_A, T0 + 20, "later", NULL), 0);
	assert_int_equal(store_job_get(f->s, a, &j, NULL), 0);
	assert_null(j.owner);
	store_job_free(&j);

	assert_int_equal(claim_one(f->s, OWNER_B, T0 + 10, 60), b);
	assert_int_equal(store_job_fail(f->s, b, OWNER_B, "refused", NULL), 0);
	assert_int_equal(store_job_get(f->s, b, &j, NULL), 0);
	assert_null(j.owner);
	store_job_free(&j);

	assert_int_equal(claim_one(f->s, OWNER_A, T0 + 10, 60), c);
	assert_int_equal(store_job_complete(f->s, c, OWNER_A, "PEM", T0 + 1000, NULL, NULL), 0);
	assert_int_equal(store_job_get(f->s, c, &j, NULL), 0);
	assert_int_equal(j.state, JOB_DONE);
	assert_null(j.owner);
	store_job_free(&j);
}

/* Everything an issuer may do to a job, tried by one that does not hold it. */
static void assert_other_owner_changes_nothing(struct store *s, int64_t id, const char *who)
{
	struct acmera_errmsg e = {{0}};
	char want[96];

	snprintf(want, sizeof(want), "job %lld is no longer held by this issuer", (long long)id);
	assert_int_equal(store_job_renew_lease(s, id, who, T0 + 9999, &e), ACMERA_ERR_NOTFOUND);
	assert_string_equal(e.text, want);
	memset(&e, 0, sizeof(e));
	assert_int_equal(store_job_set_order(s, id, who, "https://ca.test/order/evil", &e),
	                 ACMERA_ERR_NOTFOUND);
	assert_string_equal(e.text, want);
	memset(&e, 0, sizeof(e));
	assert_int_equal(store_job_defer(s, id, who, T0 + 9999, "stolen", &e), ACMERA_ERR_NOTFOUND);
	assert_string_equal(e.text, want);
	memset(&e, 0, sizeof(e));
	assert_int_equal(store_job_fail(s, id, who, "stolen", &e), ACMERA_ERR_NOTFOUND);
	assert_string_equal(e.text, want);
	memset(&e, 0, sizeof(e));
	assert_int_equal(store_job_complete(s, id, who, "STOLEN", T0 + 9999, "CN=X", &e),
	                 ACMERA_ERR_NOTFOUND);
	assert_string_equal(e.text, want);
}

static void job_changes_by_another_owner_are_refused_and_change_nothing(void **state)
{
	struct fx *f = *state;
	struct store_job j;
	struct store_cert c;
	int64_t count = -1;
	char hex[65];
	int64_t id = submit(f->s, 1, T0, NULL);

	digest_of(1, hex);
	assert_int_equal(claim_one(f->s, OWNER_A, T0, 60), id);
	assert_int_equal(store_job_set_order(f->s, id, OWNER_A, "https://ca.test/order/1", NULL),
	                 0);
	assert_other_owner_changes_nothing(f->s, id, OWNER_B);
	/* A token that merely starts like the holder's is another owner. */
	assert_other_owner_changes_nothing(f->s, id, "issuer-a.test:101:5f2");

	assert_int_equal(store_job_get(f->s, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_ACTIVE);
	assert_string_equal(j.owner, OWNER_A);
	assert_int_equal(j.lease_until, T0 + 60);
	assert_string_equal(j.order_url, "https://ca.test/order/1");
	assert_int_equal(j.attempts, 0);
	assert_null(j.reason);
	store_job_free(&j);
	assert_int_equal(store_cert_count(f->s, hex, &count, NULL), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_cert_lookup(f->s, hex, T0, &c, NULL), ACMERA_ERR_NOTFOUND);

	/* The holder still can. */
	assert_int_equal(store_job_renew_lease(f->s, id, OWNER_A, T0 + 120, NULL), 0);
	assert_int_equal(store_job_complete(f->s, id, OWNER_A, "MINE", T0 + 5000, NULL, NULL), 0);
	assert_int_equal(store_cert_lookup(f->s, hex, T0, &c, NULL), 0);
	assert_string_equal(c.chain_pem, "MINE");
	store_cert_free(&c);
}

/* Two issuers on one file; A stalls past its lease, B takes the job over. A's
 * late calls must neither store A's certificate nor disturb B's work. */
static void job_two_issuers_one_lost_its_lease(void **state)
{
	struct fx *f = *state;
	struct store *sb = NULL;
	struct store_job j;
	struct store_cert c;
	int64_t count = -1;
	int64_t counts[4];
	char hex[65];
	int64_t id = submit(f->s, 1, T0, NULL);

	digest_of(1, hex);
	assert_int_equal(store_open(f->path, &sb, NULL), 0);
	assert_int_equal(claim_one(f->s, OWNER_A, T0, 60), id);
	assert_int_equal(store_job_set_order(f->s, id, OWNER_A, "https://ca.test/order/a", NULL),
	                 0);
	/* A's lease lapses unrenewed; B claims the job. */
	assert_int_equal(claim_one(sb, OWNER_B, T0 + 61, 60), id);
	assert_int_equal(store_job_set_order(sb, id, OWNER_B, "https://ca.test/order/b", NULL), 0);

	/* A wakes up: every call is refused. */
	assert_other_owner_changes_nothing(f->s, id, OWNER_A);
	assert_int_equal(store_cert_count(f->s, hex, &count, NULL), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_job_get(f->s, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_ACTIVE);
	assert_string_equal(j.owner, OWNER_B);
	assert_int_equal(j.lease_until, T0 + 121);
	assert_string_equal(j.order_url, "https://ca.test/order/b");
	store_job_free(&j);

	/* B finishes; A is still refused afterwards, and one certificate exists. */
	assert_int_equal(store_job_complete(sb, id, OWNER_B, "FROM-B", T0 + 5000, "CN=CA", NULL),
	                 0);
	assert_int_equal(store_job_complete(f->s, id, OWNER_A, "FROM-A", T0 + 5000, "CN=CA", NULL),
	                 ACMERA_ERR_NOTFOUND);
	assert_int_equal(store_cert_count(f->s, hex, &count, NULL), 0);
	assert_int_equal(count, 1);
	assert_int_equal(store_cert_lookup(f->s, hex, T0 + 100, &c, NULL), 0);
	assert_string_equal(c.chain_pem, "FROM-B");
	store_cert_free(&c);
	assert_int_equal(store_job_counts(f->s, counts, NULL), 0);
	assert_int_equal(counts[JOB_DONE], 1);
	assert_int_equal(counts[JOB_ACTIVE], 0);
	store_close(sb);
}

static void job_defer_without_owner_puts_back_any_unfinished_job(void **state)
{
	struct fx *f = *state;
	struct store_job j;
	int64_t id = submit(f->s, 1, T0, NULL);

	assert_int_equal(claim_one(f->s, OWNER_A, T0, 600), id);
	assert_int_equal(store_job_defer(f->s, id, NULL, T0 + 5, "put back", NULL), 0);
	assert_int_equal(store_job_get(f->s, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_PENDING);
	assert_null(j.owner);
	assert_int_equal(j.lease_until, 0);
	assert_int_equal(j.not_before, T0 + 5);
	assert_int_equal(j.attempts, 1);
	store_job_free(&j);
	/* The former holder has lost it. */
	assert_int_equal(store_job_complete(f->s, id, OWNER_A, "X", T0 + 100, NULL, NULL),
	                 ACMERA_ERR_NOTFOUND);
	/* Still pending: deferring by hand again works; by an "owner" it does not. */
	assert_int_equal(store_job_defer(f->s, id, OWNER_A, T0 + 9, "x", NULL),
	                 ACMERA_ERR_NOTFOUND);
	assert_int_equal(store_job_defer(f->s, id, NULL, T0 + 9, "again", NULL), 0);
	assert_int_equal(store_job_defer(f->s, 9999, NULL, T0, "none", NULL), ACMERA_ERR_NOTFOUND);
}

static void job_owner_must_be_present_and_bounded(void **state)
{
	struct fx *f = *state;
	struct store_job *jobs = (struct store_job *)1;
	struct store_job j;
	size_t n = 7;
	char max[STORE_OWNER_MAX + 1], over[STORE_OWNER_MAX + 2];
	int64_t id = submit(f->s, 1, T0, NULL);

	memset(max, 'm', sizeof(max) - 1);
	max[sizeof(max) - 1] = '\0';
	memset(over, 'o', sizeof(over) - 1);
	over[sizeof(over) - 1] = '\0';
	assert_int_equal(store_job_claim(f->s, NULL, T0, 60, 1, &jobs, &n, NULL), ACMERA_ERR_INVAL);
	assert_null(jobs);
	assert_int_equal(n, 0);
	assert_int_equal(store_job_claim(f->s, "", T0, 60, 1, &jobs, &n, NULL), ACMERA_ERR_INVAL);
	assert_int_equal(store_job_claim(f->s, over, T0, 60, 1, &jobs, &n, NULL), ACMERA_ERR_INVAL);
	/* Refused claims took nothing. */
	assert_int_equal(store_job_get(f->s, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_PENDING);
	store_job_free(&j);

	assert_int_equal(claim_one(f->s, max, T0, 60), id);
	assert_int_equal(store_job_renew_lease(f->s, id, NULL, T0 + 90, NULL), ACMERA_ERR_INVAL);
	assert_int_equal(store_job_set_order(f->s, id, NULL, "u", NULL), ACMERA_ERR_INVAL);
	assert_int_equal(store_job_fail(f->s, id, NULL, "r", NULL), ACMERA_ERR_INVAL);
	assert_int_equal(store_job_complete(f->s, id, NULL, "P", T0 + 90, NULL, NULL),
	                 ACMERA_ERR_INVAL);
	assert_int_equal(store_job_defer(f->s, id, "", T0, "r", NULL), ACMERA_ERR_INVAL);
	assert_int_equal(store_job_complete(f->s, id, over, "P", T0 + 90, NULL, NULL),
	                 ACMERA_ERR_INVAL);
	assert_int_equal(store_job_get(f->s, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_ACTIVE);
	assert_int_equal(j.lease_until, T0 + 60);
	assert_null(j.order_url);
	store_job_free(&j);
	assert_int_equal(store_job_complete(f->s, id, max, "P", T0 + 90, NULL, NULL), 0);
}

/* ---- claims restricted to given jobs (acmera issue on a shared store) ---- */

static void job_claim_ids_takes_only_listed_due_jobs(void **state)
{
	struct fx *f = *state;
	struct store_job *jobs = NULL, j;
	size_t n = 0;
	int64_t id[5];

	for (int i = 0; i < 5; i++)
		id[i] = submit(f->s, i, T0 + i, NULL);
	/* Listed out of age order, with an id that names no job. */
	const int64_t want[] = {id[3], 987654, id[1]};
	assert_int_equal(
	    store_job_claim_ids(f->s, OWNER_A, want, 3, T0 + 10, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_int_equal(jobs[0].id, id[1]);
	assert_int_equal(jobs[1].id, id[3]);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(jobs[i].state, JOB_ACTIVE);
		assert_int_equal(jobs[i].lease_until, T0 + 70);
		assert_string_equal(jobs[i].owner, OWNER_A);
		assert_int_equal(jobs[i].csr_der_len, 32);
	}
	store_jobs_free(jobs, n);
	/* The jobs not listed were left alone. */
	for (int i = 0; i < 5; i += 2) {
		assert_int_equal(store_job_get(f->s, id[i], &j, NULL), 0);
		assert_int_equal(j.state, JOB_PENDING);
		assert_null(j.owner);
		store_job_free(&j);
	}
	/* Claimed ones are not claimed twice; an unrestricted claim takes the rest. */
	assert_int_equal(
	    store_job_claim_ids(f->s, OWNER_B, want, 3, T0 + 10, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_null(jobs);
	assert_int_equal(store_job_claim(f->s, OWNER_B, T0 + 10, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 3);
	store_jobs_free(jobs, n);
}

static void job_claim_ids_respects_not_before_and_leases(void **state)
{
	struct fx *f = *state;
	struct store_job *jobs = NULL;
	size_t n = 0;
	int64_t a = submit(f->s, 1, T0, NULL);
	int64_t b = submit(f->s, 2, T0, NULL);
	const int64_t both[] = {a, b};

	assert_int_equal(store_job_defer(f->s, a, NULL, T0 + 100, "later", NULL), 0);
	assert_int_equal(claim_one(f->s, OWNER_B, T0, 60), b);
	/* a is not due yet and b's lease is held (up to and including lease_until). */
	assert_int_equal(
	    store_job_claim_ids(f->s, OWNER_A, both, 2, T0 + 60, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 0);
	/* b's holder died: its lease lapses and the listed job is taken over. */
	assert_int_equal(
	    store_job_claim_ids(f->s, OWNER_A, both, 2, T0 + 61, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].id, b);
	assert_string_equal(jobs[0].owner, OWNER_A);
	assert_int_equal(jobs[0].lease_until, T0 + 121);
	store_jobs_free(jobs, n);
	assert_int_equal(store_job_renew_lease(f->s, b, OWNER_B, T0 + 500, NULL),
	                 ACMERA_ERR_NOTFOUND);
	/* a once due. */
	assert_int_equal(
	    store_job_claim_ids(f->s, OWNER_A, both, 2, T0 + 100, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].id, a);
	assert_int_equal(jobs[0].attempts, 1);
	store_jobs_free(jobs, n);
}

static void job_claim_ids_takes_at_most_max_oldest_first(void **state)
{
	struct fx *f = *state;
	static const int age[8] = {5, 3, 7, 0, 6, 4, 1, 2};
	struct store_job *jobs = NULL;
	size_t n = 0;
	int64_t id[8];

	for (int i = 0; i < 8; i++)
		id[i] = submit(f->s, i, T0 + age[i], NULL);
	/* Listed: 0 (age 5), 2 (7), 3 (0), 5 (4), 7 (2); oldest three are 3, 7, 5. */
	const int64_t listed[] = {id[0], id[2], id[3], id[5], id[7]};
	assert_int_equal(
	    store_job_claim_ids(f->s, OWNER_A, listed, 5, T0 + 20, 60, 3, &jobs, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_int_equal(jobs[0].id, id[3]);
	assert_int_equal(jobs[1].id, id[7]);
	assert_int_equal(jobs[2].id, id[5]);
	store_jobs_free(jobs, n);
	assert_int_equal(
	    store_job_claim_ids(f->s, OWNER_A, listed, 5, T0 + 20, 60, 0, &jobs, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_null(jobs);
	assert_int_equal(
	    store_job_claim_ids(f->s, OWNER_A, listed, 5, T0 + 20, 60, 10, &jobs, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_int_equal(jobs[0].id, id[0]);
	assert_int_equal(jobs[1].id, id[2]);
	store_jobs_free(jobs, n);
}

static void job_claim_ids_handles_ten_thousand_ids(void **state)
{
	struct fx *f = *state;
	enum { N = 10000 };
	struct store_job *jobs = NULL;
	size_t n = 0;
	int64_t *ids = calloc(N, sizeof(*ids));
	int64_t a = submit(f->s, 1, T0, NULL);
	int64_t b = submit(f->s, 2, T0, NULL);
	int64_t c = submit(f->s, 3, T0, NULL);

	assert_non_null(ids);
	/* Mostly ids of no job, extreme values among them; two real ones at the ends. */
	for (int i = 0; i < N; i++)
		ids[i] = 1000000 + i;
	ids[0] = c;
	ids[1] = INT64_MIN;
	ids[2] = INT64_MAX;
	ids[3] = -1;
	ids[N - 1] = a;
	assert_int_equal(store_job_claim_ids(f->s, OWNER_A, ids, N, T0, 60, N, &jobs, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_int_equal(jobs[0].id, a);
	assert_int_equal(jobs[1].id, c);
	store_jobs_free(jobs, n);
	/* b was never listed. */
	assert_int_equal(claim_one(f->s, OWNER_B, T0, 60), b);
	free(ids);
}

static void job_claim_ids_rejects_bad_arguments_and_claims_nothing(void **state)
{
	struct fx *f = *state;
	struct store_job *jobs = (struct store_job *)1, j;
	size_t n = 7;
	char over[STORE_OWNER_MAX + 2];
	int64_t id = submit(f->s, 1, T0, NULL);

	memset(over, 'o', sizeof(over) - 1);
	over[sizeof(over) - 1] = '\0';
	assert_int_equal(store_job_claim_ids(f->s, OWNER_A, &id, 0, T0, 60, 10, &jobs, &n, NULL),
	                 0);
	assert_null(jobs);
	assert_int_equal(n, 0);
	assert_int_equal(store_job_claim_ids(f->s, OWNER_A, NULL, 1, T0, 60, 10, &jobs, &n, NULL),
	                 ACMERA_ERR_INVAL);
	assert_int_equal(store_job_claim_ids(f->s, OWNER_A, &id, STORE_CLAIM_IDS_MAX + 1, T0, 60,
	                                     10, &jobs, &n, NULL),
	                 ACMERA_ERR_INVAL);
	assert_int_equal(store_job_claim_ids(f->s, NULL, &id, 1, T0, 60, 10, &jobs, &n, NULL),
	                 ACMERA_ERR_INVAL);
	assert_int_equal(store_job_claim_ids(f->s, over, &id, 1, T0, 60, 10, &jobs, &n, NULL),
	                 ACMERA_ERR_INVAL);
	assert_int_equal(store_job_claim_ids(f->s, OWNER_A, &id, 1, T0, -1, 10, &jobs, &n, NULL),
	                 ACMERA_ERR_INVAL);
	assert_null(jobs);
	assert_int_equal(n, 0);
	assert_int_equal(store_job_get(f->s, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_PENDING);
	store_job_free(&j);
}

static void job_claim_ids_two_handles_never_share_a_job(void **state)
{
	struct fx *f = *state;
	struct store *s2 = NULL;
	struct store_job *jobs = NULL;
	size_t n = 0, total = 0;
	int64_t ids[20];
	int seen[20] = {0};

	for (int i = 0; i < 20; i++)
		ids[i] = submit(f->s, i, T0 + i, NULL);
	assert_int_equal(store_open(f->path, &s2, NULL), 0);
	for (int round = 0; total < 20 && round < 50; round++) {
		struct store *s = round % 2 ? s2 : f->s;
		const char *owner = round % 2 ? OWNER_B : OWNER_A;
		assert_int_equal(
		    store_job_claim_ids(s, owner, ids, 20, T0 + 100, 600, 3, &jobs, &n, NULL), 0);
		for (size_t i = 0; i < n; i++) {
			int64_t k = jobs[i].id - ids[0];
			assert_true(k >= 0 && k < 20);
			assert_int_equal(seen[k], 0);
			seen[k] = 1;
		}
		total += n;
		store_jobs_free(jobs, n);
	}
	assert_int_equal(total, 20);
	store_close(s2);
}

/* ---- certificates ---- */

static void cert_lookup_never_returns_expired_cert(void **state)
{
	struct fx *f = *state;
	struct store_cert c;
	int64_t count = -1;
	char hex[65];
	int64_t id = submit(f->s, 1, T0, NULL);

	digest_of(1, hex);
	assert_int_equal(store_cert_lookup(f->s, hex, T0, &c, NULL), ACMERA_ERR_NOTFOUND);
	assert_int_equal(store_cert_count(f->s, hex, &count, NULL), 0);
	assert_int_equal(count, 0);
	assert_int_equal(claim_one(f->s, OWNER_A, T0, 60), id);
	assert_int_equal(store_job_complete(f->s, id, OWNER_A, "OLD", T0 + 100, "CN=CA", NULL), 0);
	assert_int_equal(store_cert_lookup(f->s, hex, T0 + 99, &c, NULL), 0);
	assert_string_equal(c.chain_pem, "OLD");
	store_cert_free(&c);
	assert_int_equal(store_cert_lookup(f->s, hex, T0 + 100, &c, NULL), ACMERA_ERR_NOTFOUND);
	assert_null(c.chain_pem);

	/* Reissued after expiry: the new one is served. */
	assert_int_equal(submit(f->s, 1, T0 + 200, NULL), id);
	assert_int_equal(claim_one(f->s, OWNER_B, T0 + 200, 60), id);
	assert_int_equal(store_job_complete(f->s, id, OWNER_B, "NEW", T0 + 5000, NULL, NULL), 0);
	assert_int_equal(store_cert_lookup(f->s, hex, T0 + 200, &c, NULL), 0);
	assert_string_equal(c.chain_pem, "NEW");
	assert_null(c.issuer);
	store_cert_free(&c);
	/* Of two valid certificates, the newest is served. The API makes a second
	 * one only after revocation, so it is written behind the store's back. */
	exec_sql(f->path, "INSERT INTO certs (csr_sha256, chain_pem, not_after, issuer, issued) "
	                  "SELECT csr_sha256, 'NEWER', 1700004000, 'CN=CA2', issued + 1 FROM certs "
	                  "WHERE chain_pem = 'NEW'");
	assert_int_equal(store_cert_lookup(f->s, hex, T0 + 200, &c, NULL), 0);
	assert_string_equal(c.chain_pem, "NEWER");
	store_cert_free(&c);
	assert_int_equal(store_cert_count(f->s, hex, &count, NULL), 0);
	assert_int_equal(count, 3);
	digest_of(2, hex);
	assert_int_equal(store_cert_count(f->s, hex, &count, NULL), 0);
	assert_int_equal(count, 0);
}

/* A self-signed certificate in PEM as PEM_write_bio_X509 writes it. */
static char *make_cert_pem(const char *cn, long serial)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	BIO *b = BIO_new(BIO_s_mem());
	X509_NAME *name;
	char *data = NULL, *pem;
	long len;

	assert_non_null(k);
	assert_non_null(x);
	assert_non_null(b);
	name = X509_get_subject_name(x);
	assert_true(X509_set_version(x, 2));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
	                                       -1, -1, 0));
	assert_true(X509_set_issuer_name(x, name));
	assert_true(X509_set_pubkey(x, k));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	assert_true(PEM_write_bio_X509(b, x));
	len = BIO_get_mem_data(b, &data);
	assert_true(len > 0);
	pem = strndup(data, (size_t)len);
	assert_non_null(pem);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(k);
	return pem;
}

static char *concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *r = malloc(la + lb + 1);

	assert_non_null(r);
	memcpy(r, a, la);
	memcpy(r + la, b, lb + 1);
	return r;
}

/* Submits CSR i, claims it and completes it with chain. */
static int64_t issue(struct store *s, int i, const char *chain)
{
	int64_t id = submit(s, i, T0, NULL);
	struct acmera_errmsg e = {{0}};

	assert_int_equal(claim_one(s, OWNER_A, T0, 60), id);
	if (store_job_complete(s, id, OWNER_A, chain, T0 + 86400, "CN=CA", &e) != 0)
		fail_msg("complete: %s", e.text);
	return id;
}

static int served(struct store *s, int i)
{
	struct store_cert c;
	char hex[65];
	int rc;

	digest_of(i, hex);
	rc = store_cert_lookup(s, hex, T0, &c, NULL);
	store_cert_free(&c);
	return rc;
}

static void cert_mark_revoked_matches_exact_leaf_only(void **state)
{
	struct fx *f = *state;
	char *leaf = make_cert_pem("dev1.iot.example.com", 1);
	char *other = make_cert_pem("dev2.iot.example.com", 2);
	char *ca = make_cert_pem("Test CA", 3);
	char *chain = concat(leaf, ca);
	char *other_chain = concat(other, ca);
	/* A leaf whose PEM starts like leaf's but goes on: another certificate. */
	size_t body = strlen(leaf) - strlen("-----END CERTIFICATE-----\n");
	char *longer = malloc(strlen(leaf) + 6);
	char *truncated = strndup(leaf, body);
	int64_t marked = -1;

	assert_non_null(longer);
	assert_non_null(truncated);
	memcpy(longer, leaf, body);
	strcpy(longer + body, "QUJD\n-----END CERTIFICATE-----\n");
	issue(f->s, 1, chain);
	issue(f->s, 2, leaf);
	issue(f->s, 3, other_chain);
	issue(f->s, 4, longer);

	/* The CA appears in chains, but is no leaf of any. */
	assert_int_equal(store_cert_mark_revoked(f->s, ca, &marked, NULL), 0);
	assert_int_equal(marked, 0);
	/* Not one whole PEM block: refused, nothing marked. */
	assert_int_equal(store_cert_mark_revoked(f->s, "", &marked, NULL), ACMERA_ERR_INVAL);
	assert_int_equal(store_cert_mark_revoked(f->s, truncated, &marked, NULL), ACMERA_ERR_INVAL);
	assert_int_equal(store_cert_mark_revoked(f->s, chain, &marked, NULL), ACMERA_ERR_INVAL);
	assert_int_equal(store_cert_mark_revoked(f->s, NULL, &marked, NULL), ACMERA_ERR_INVAL);
	assert_int_equal(marked, 0);
	for (int i = 1; i <= 4; i++)
		assert_int_equal(served(f->s, i), 0);

	assert_int_equal(store_cert_mark_revoked(f->s, leaf, &marked, NULL), 0);
	assert_int_equal(marked, 2);
	assert_int_equal(served(f->s, 1), ACMERA_ERR_NOTFOUND);
	assert_int_equal(served(f->s, 2), ACMERA_ERR_NOTFOUND);
	assert_int_equal(served(f->s, 3), 0);
	assert_int_equal(served(f->s, 4), 0);
	/* Again: the same two, already revoked. */
	assert_int_equal(store_cert_mark_revoked(f->s, leaf, &marked, NULL), 0);
	assert_int_equal(marked, 2);
	free(leaf);
	free(other);
	free(ca);
	free(chain);
	free(other_chain);
	free(longer);
	free(truncated);
}

static void cert_revoked_is_not_served_and_submit_reissues(void **state)
{
	struct fx *f = *state;
	struct store_job j;
	struct store_cert c;
	char *leaf = make_cert_pem("dev1.iot.example.com", 1);
	char *leaf2 = make_cert_pem("dev1.iot.example.com", 2);
	int64_t marked = 0, count = 0;
	int created = -1;
	char hex[65];
	int64_t id = issue(f->s, 1, leaf);

	digest_of(1, hex);
	assert_int_equal(store_cert_mark_revoked(f->s, leaf, &marked, NULL), 0);
	assert_int_equal(marked, 1);
	assert_int_equal(store_cert_lookup(f->s, hex, T0, &c, NULL), ACMERA_ERR_NOTFOUND);
	assert_null(c.chain_pem);
	/* Counted all the same: it was issued. */
	assert_int_equal(store_cert_count(f->s, hex, &count, NULL), 0);
	assert_int_equal(count, 1);

	/* The device asks again: the DONE job is worked on anew. */
	assert_int_equal(submit(f->s, 1, T0 + 10, &created), id);
	assert_int_equal(created, 0);
	assert_int_equal(store_job_get(f->s, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_PENDING);
	store_job_free(&j);
	assert_int_equal(claim_one(f->s, OWNER_B, T0 + 10, 60), id);
	assert_int_equal(store_job_complete(f->s, id, OWNER_B, leaf2, T0 + 86400, NULL, NULL), 0);
	assert_int_equal(store_cert_lookup(f->s, hex, T0 + 10, &c, NULL), 0);
	assert_string_equal(c.chain_pem, leaf2);
	store_cert_free(&c);
	/* One revoked and one good certificate: the job stays DONE on a repeat. */
	assert_int_equal(submit(f->s, 1, T0 + 20, &created), id);
	assert_int_equal(store_job_get(f->s, id, &j, NULL), 0);
	assert_int_equal(j.state, JOB_DONE);
	store_job_free(&j);
	assert_int_equal(store_cert_count(f->s, hex, &count, NULL), 0);
	assert_int_equal(count, 2);
	free(leaf);
	free(leaf2);
}

/* A store written before schema step 4 (leaf digests): its certificates are
 * found by their leaf and revoked by it after the migration. */
static void migration_indexes_earlier_certificates_by_leaf(void **state)
{
	struct fx *f = *state;
	char *leaf = make_cert_pem("dev7.iot.example.com", 7);
	char *ca = make_cert_pem("Test CA", 8);
	char *chain = concat(leaf, ca);
	char hex[65];
	struct store_cert c;
	int64_t marked = 0;
	size_t n = strlen(chain) + 256;
	char *insert = malloc(n);

	assert_non_null(insert);
	replace_with_v1_file(f);
	digest_of(2, hex);
	/* PEM text holds no quote, so it goes into the statement as it is. */
	snprintf(insert, n,
	         "INSERT INTO certs (csr_sha256, chain_pem, not_after, issuer, issued) "
	         "VALUES ('%s', '%s', %d, 'CN=Test CA', %d)",
	         hex, chain, T0 + 86400, T0 + 5);
	exec_sql(f->path, insert);
	reopen(f);
	assert_int_equal(store_schema_version(f->s), store_migrations_latest());

	assert_int_equal(store_cert_find_leaf(f->s, leaf, T0 + 10, &c, NULL), 0);
	assert_string_equal(c.chain_pem, chain);
	store_cert_free(&c);
	assert_int_equal(store_cert_find_leaf(f->s, ca, T0 + 10, &c, NULL), ACMERA_ERR_NOTFOUND);
	store_cert_free(&c);
	assert_int_equal(store_cert_mark_revoked(f->s, leaf, &marked, NULL), 0);
	assert_int_equal(marked, 1);
	assert_int_equal(store_cert_find_leaf(f->s, leaf, T0 + 10, &c, NULL), ACMERA_ERR_NOTFOUND);
	store_cert_free(&c);
	free(insert);
	free(leaf);
	free(ca);
	free(chain);
}

/* Statements that read whole tables on purpose: the DNS records still to be
 * removed (a handful), and the job counts of a status report. */
static int scans_by_design(const char *sql_text)
{
	return strstr(sql_text, "FROM dns_records ORDER BY id") ||
	       strstr(sql_text, "COUNT(*) FROM jobs GROUP BY state");
}

/* 1 when a step of a query plan reads a whole table or index: "SCAN t", or a
 * "SEARCH t USING ... INDEX i" without the "(column=?)" that bounds it. A scan
 * along an index that gives the order of ORDER BY ... LIMIT (ordered) stops at
 * the first rows that qualify: that one is bounded. */
static int step_reads_everything(const char *detail, int ordered)
{
	if (strncmp(detail, "SCAN ", 5) == 0)
		return strncmp(detail, "SCAN json_each", 14) != 0 &&
		       !(ordered && strstr(detail, " USING INDEX "));
	return strncmp(detail, "SEARCH ", 7) == 0 && strstr(detail, "INDEX") &&
	       !strchr(detail, '(');
}

static void assert_plan_uses_indexes(sqlite3 *db, const char *sql_text)
{
	char *explain = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql_text);
	sqlite3_stmt *st = NULL;
	char details[16][200];
	size_t n = 0;
	int sorted_apart = 0;

	assert_non_null(explain);
	if (sqlite3_prepare_v2(db, explain, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql_text, sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW && n < 16) {
		const char *detail = (const char *)sqlite3_column_text(st, 3);
		snprintf(details[n++], sizeof(details[0]), "%s", detail ? detail : "");
		sorted_apart |= detail && strstr(detail, "TEMP B-TREE FOR ORDER BY") != NULL;
	}
	sqlite3_finalize(st);
	sqlite3_free(explain);
	int ordered =
	    strstr(sql_text, " ORDER BY ") && strstr(sql_text, " LIMIT ") && !sorted_apart;
	for (size_t i = 0; i < n; i++)
		if (step_reads_everything(details[i], ordered))
			fail_msg("whole-table read \"%s\" in: %s", details[i], sql_text);
}

/* Each lookup of the store stays a b-tree search however many rows the tables
 * hold: no statement of either back-end scans a table (the two above excepted). */
static void every_statement_finds_its_rows_through_an_index(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = store_sqlite_db(f->s);
	const char *q;
	size_t checked = 0;

	for (size_t i = 0; (q = store_sqlite_statement(i)) != NULL; i++) {
		if (strncmp(q, "PRAGMA", 6) == 0 || scans_by_design(q))
			continue;
		assert_plan_uses_indexes(db, q);
		checked++;
	}
	for (size_t i = 0; (q = ca_sqlite_statement(i)) != NULL; i++) {
		assert_plan_uses_indexes(db, q);
		checked++;
	}
	assert_true(checked > 40);
}

/* ---- DNS records ---- */

static void dns_records_add_list_remove(void **state)
{
	struct fx *f = *state;
	struct store_dns_record *r = NULL;
	size_t n = 9;
	int64_t a = 0, b = 0;

	assert_int_equal(store_dns_record_list(f->s, &r, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_dns_record_add(f->s, "example.com", "_acme-challenge.a.example.com",
	                                      "tok-a", T0, &a, NULL),
	                 0);
	assert_int_equal(store_dns_record_add(f->s, "example.com", "_acme-challenge.b.example.com",
	                                      "tok-b", T0 + 1, &b, NULL),
	                 0);
	assert_int_not_equal(a, b);
	reopen(f);
	assert_int_equal(store_dns_record_list(f->s, &r, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].id, a);
	assert_string_equal(r[0].zone, "example.com");
	assert_string_equal(r[0].name, "_acme-challenge.a.example.com");
	assert_string_equal(r[0].value, "tok-a");
	assert_int_equal(r[0].created, T0);
	assert_int_equal(r[1].id, b);
	store_dns_records_free(r, n);

	assert_int_equal(store_dns_record_remove(f->s, a, NULL), 0);
	assert_int_equal(store_dns_record_remove(f->s, a, NULL), ACMERA_ERR_NOTFOUND);
	assert_int_equal(store_dns_record_list(f->s, &r, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(r[0].id, b);
	store_dns_records_free(r, n);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--lease-of") == 0)
		return print_lease(argv[2], argv[3]);
	const struct CMUnitTest tests[] = {
	    T(store_open_creates_private_wal_file_at_latest_version),
	    T(migration_indexes_earlier_certificates_by_leaf),
	    T(every_statement_finds_its_rows_through_an_index),
	    T(store_open_fails_in_missing_directory),
	    T(store_second_handle_keeps_commits_visible_to_other_processes),
	    T(store_reopen_keeps_data_and_version),
	    T(store_migrate_twice_is_a_no_op),
	    T(store_migrate_from_empty_database),
	    T(store_migrates_version_1_file_keeping_data),
	    T(store_refuses_schema_newer_than_build),
	    T(account_put_get_and_replace),
	    T(authz_exact_match_covers_case_insensitively),
	    T(authz_ancestor_with_subdomains_covers_descendants),
	    T(authz_ancestor_without_subdomains_does_not_cover),
	    T(authz_expired_or_within_margin_does_not_cover),
	    T(authz_not_valid_does_not_cover),
	    T(authz_sibling_label_does_not_cover),
	    T(authz_find_rejects_bad_names),
	    T(job_submit_same_csr_joins_existing_job),
	    T(batch_commits_once_and_keeps_failed_changes_out),
	    T(batch_locks_late_and_counts_finished_jobs_at_commit),
	    T(nosync_batch_commits_and_restores_full_sync),
	    T(lazy_batch_syncs_from_its_first_certificate),
	    T(job_submit_resets_failed_job),
	    T(job_submit_reissues_done_job_whose_cert_expired),
	    T(job_submit_rejects_empty_csr),
	    T(job_claim_respects_not_before_and_order),
	    T(job_claim_takes_at_most_max_oldest_first),
	    T(job_claim_reclaims_expired_lease_only),
	    T(job_claim_two_handles_never_share_a_job),
	    T(job_claim_concurrent_processes_never_share_a_job),
	    T(job_defer_fail_complete_move_states),
	    T(job_claim_records_owner_and_finishing_clears_it),
	    T(job_changes_by_another_owner_are_refused_and_change_nothing),
	    T(job_two_issuers_one_lost_its_lease),
	    T(job_defer_without_owner_puts_back_any_unfinished_job),
	    T(job_owner_must_be_present_and_bounded),
	    T(job_claim_ids_takes_only_listed_due_jobs),
	    T(job_claim_ids_respects_not_before_and_leases),
	    T(job_claim_ids_takes_at_most_max_oldest_first),
	    T(job_claim_ids_handles_ten_thousand_ids),
	    T(job_claim_ids_rejects_bad_arguments_and_claims_nothing),
	    T(job_claim_ids_two_handles_never_share_a_job),
	    T(cert_lookup_never_returns_expired_cert),
	    T(cert_mark_revoked_matches_exact_leaf_only),
	    T(cert_revoked_is_not_served_and_submit_reissues),
	    T(dns_records_add_list_remove),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
